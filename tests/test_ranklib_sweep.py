"""Every RankLib model in the shared data set loads (none refused) and scores as RankLib did.

The file list is discovered, not written down: a model file added to ``../shared/data/ranklib``
(or to the in-repo copy, ``tests/data/ranklib``, when the shared one is absent) is checked
without editing this test. Tree and linear rankers and RankNet/LambdaRank are bit-identical;
ListNet within 2 ulps where the C library's ``exp`` and Java's ``Math.exp`` round differently
(checked row by row in test_ranklib_network.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal
from sklearn.datasets import load_svmlight_file

from ltrcompile.frontends import load_model
from ltrcompile.frontends import ranklib as rl

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ranklib"
LOCAL = Path(__file__).parent / "data" / "ranklib"
DATA = SHARED if (SHARED / "test.letor").exists() else LOCAL
MODELS = sorted(p.name[: -len(".model.txt")] for p in DATA.glob("*.model.txt"))
#: ListNet's output sigmoid goes through exp; where libm and Math.exp differ by an ulp
EXP_ULPS = {"listnet": 3}


def test_the_data_set_is_complete():
    """Every model has RankLib's score file, and no model lacks one (a refused model would)."""
    assert len(MODELS) >= 12, MODELS
    for name in MODELS:
        assert (DATA / f"{name}.scores.tsv").exists(), name


@pytest.fixture(scope="module")
def letor():
    X, _, qid = load_svmlight_file(str(DATA / "test.letor"), n_features=300, zero_based=False, query_id=True)
    return X.toarray(), qid


@pytest.mark.parametrize("name", MODELS)
def test_every_ranklib_model_matches_ranklibs_scores(name, letor):
    X, qid = letor
    opts = {"normalizer": "zscore"} if name.endswith("_norm_zscore") else {}
    ens = load_model(DATA / f"{name}.model.txt", n_features=300, **opts)  # none refused
    assert ens.provenance["format"] == "ranklib"
    if opts:
        X = rl.normalize_queries(X, qid, "zscore")
    ref = np.loadtxt(DATA / f"{name}.scores.tsv", usecols=2)
    got = ens.predict(X)
    if name not in EXP_ULPS:
        assert_bit_equal(got, ref, name)
        return
    diff = got != ref
    assert int(diff.sum()) <= EXP_ULPS[name], f"{name}: {int(diff.sum())} rows differ"
    assert np.all(np.abs(got - ref)[diff] <= 2 * np.spacing(ref[diff])), name
