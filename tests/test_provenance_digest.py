"""Typed provenance, the semantic IR digest and the one-table node schema.

Real XGBoost/LightGBM models: a renamed copy and the ``.ubj`` twin of a ``.json`` model read as
the same IR digest (only where the model came from differs), and the build cache is hit.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from ltrcompile import Ensemble, TreeArrays, load_model
from ltrcompile.ir import NODE_FIELDS, NODE_SCHEMA, TREE_FIELDS, InputSpec, Provenance

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def xgb_files(tmp_path_factory):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = X[:, 0] + 0.3 * rng.normal(size=300)
    dtrain = xgb.DMatrix(X[:200], y[:200])
    dvalid = xgb.DMatrix(X[200:], y[200:])
    bst = xgb.train(
        {"max_depth": 3, "eta": 0.3, "nthread": 1}, dtrain, 40,
        evals=[(dvalid, "v")], early_stopping_rounds=3, verbose_eval=False,
    )
    d = tmp_path_factory.mktemp("xgbfiles")
    bst.save_model(str(d / "m.json"))
    bst.save_model(str(d / "m.ubj"))
    shutil.copy(d / "m.json", d / "renamed-copy.json")
    return d, bst, X


def test_provenance_is_frozen_and_typed(xgb_files) -> None:
    d, bst, _ = xgb_files
    ens = load_model(d / "m.json")
    prov = ens.provenance
    assert isinstance(prov, Provenance)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prov.library = "other"  # type: ignore[misc]
    assert prov.library == "xgboost" and prov.format == "xgboost-json" and prov.source_file == "m.json"
    rounds = bst.num_boosted_rounds()
    assert prov.iteration_range == (0, rounds) and all(isinstance(x, int) for x in prov.iteration_range)
    assert prov.total_iterations == rounds
    assert prov.best_iteration == bst.best_iteration and prov.best_rounds == bst.best_iteration + 1
    # the JSON round trip keeps the types (ints, a tuple), nothing is a formatted string
    back = Ensemble.from_json(ens.to_json()).provenance
    assert back == prov and back.iteration_range == (0, rounds)
    raw = json.loads(ens.to_json())["model"]["provenance"]
    assert raw["iteration_range"] == [0, rounds]
    sliced = load_model(d / "m.json", iteration_range=(1, 3)).provenance
    assert sliced.iteration_range == (1, 3) and sliced.tree_selection == "iteration_range"


def test_with_keeps_typed_fields_and_extra() -> None:
    p = Provenance.from_dict({"library": "x", "iteration_range": [0, 4], "booster": "gbtree"})
    assert p.iteration_range == (0, 4) and p.extra["booster"] == "gbtree" and p["booster"] == "gbtree"
    q = p.with_(source_file="a.json", custom=1)
    assert q.source_file == "a.json" and q.extra == {"booster": "gbtree", "custom": 1}
    assert p.source_file is None  # the original is unchanged
    with pytest.raises(Exception, match="iteration_range"):
        Provenance(iteration_range=(5, 2))


def test_digest_ignores_file_name_and_format(xgb_files) -> None:
    d, _, X = xgb_files
    a = load_model(d / "m.json")
    b = load_model(d / "renamed-copy.json")
    c = load_model(d / "m.ubj")
    assert a.provenance.source_file != b.provenance.source_file
    assert a.provenance.format != c.provenance.format
    assert a.digest() == b.digest() == c.digest()
    np.testing.assert_array_equal(a.predict(X), c.predict(X))


def test_digest_covers_what_changes_scores(xgb_files) -> None:
    d, _, _ = xgb_files
    a = load_model(d / "m.json")
    fewer = load_model(d / "m.json", num_iteration=2)
    assert fewer.digest() != a.digest()
    renamed = load_model(d / "m.json", feature_names=["a", "b", "c", "d"])
    assert renamed.digest() != a.digest()
    moved = Ensemble.from_json(a.to_json())
    moved.base_score = moved.base_score + 1.0
    assert moved.digest() != a.digest()


def test_renamed_copy_and_ubj_twin_hit_the_build_cache(xgb_files, tmp_path, monkeypatch) -> None:
    from conftest import require_c_compiler

    require_c_compiler()
    import ltrcompile

    monkeypatch.setenv("LTRCOMPILE_CACHE", str(tmp_path / "cache"))
    d, _, X = xgb_files
    first = ltrcompile.compile(load_model(d / "m.json"), progress=False, jobs=1)
    built_at = first.manifest["built_at"]
    for twin in ("renamed-copy.json", "m.ubj"):
        again = ltrcompile.compile(load_model(d / twin), progress=False, jobs=1)
        assert again.path == first.path and again.manifest["built_at"] == built_at
        np.testing.assert_array_equal(again.predict(X), first.predict(X))
    assert first.manifest["provenance"]["source_file"] == "m.json"
    assert first.manifest["ir_digest"] == load_model(d / "m.ubj").digest()


def test_lightgbm_iteration_window_is_typed(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=300)
    b = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), 6)
    b.save_model(str(tmp_path / "m.txt"))
    full = load_model(tmp_path / "m.txt").provenance
    assert full.iteration_range == (0, 6) and full.total_iterations == 6 and full.tree_selection == "all"
    part = load_model(tmp_path / "m.txt", num_iteration=4, start_iteration=1).provenance
    assert part.iteration_range == (1, 5) and part.tree_selection == "iteration_range"


def test_node_schema_is_the_single_source() -> None:
    assert NODE_FIELDS == tuple(f.name for f in NODE_SCHEMA)
    t = TreeArrays.empty(3)
    for f in TREE_FIELDS:
        col = getattr(t, f.name)
        if f.optional:
            assert col is None  # absent until the frontend has the data (e.g. cover)
            continue
        assert col.dtype == f.dtype and col.shape == (3,)
        assert np.all(col == f.fill) or f.name in ("op", "missing")
    ens_fields = {f.name for f in dataclasses.fields(Ensemble)}
    assert set(NODE_FIELDS) <= ens_fields
    t.feature[0], t.left[0], t.right[0] = 0, 1, 2
    t.leaf_value[1:, 0] = [1.0, 2.0]
    ens = Ensemble.from_trees([t, t], n_features=1)
    assert ens.left.tolist() == [1, -1, -1, 4, -1, -1]  # index columns became global
    d = json.loads(ens.to_json())
    assert set(d["nodes"]) == {f.name for f in NODE_SCHEMA if not f.optional} | {"leaf_value"}
    bad = Ensemble.from_json(ens.to_json())
    bad.threshold = bad.threshold.astype(np.float32)
    with pytest.raises(Exception, match="dtype"):
        bad.validate()


def test_manifest_input_block_is_the_input_spec(xgb_files) -> None:
    d, _, _ = xgb_files
    ens = load_model(d / "m.json", feature_names=["a", "b", "c", "d"])
    block = ens.input_block()
    assert set(block) == {f.name for f in dataclasses.fields(InputSpec)}
    spec = InputSpec.from_dict(json.loads(json.dumps(block)))
    assert spec == InputSpec.of(ens)
