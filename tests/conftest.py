"""Shared fixtures: the bundled real ranking data and parity assertions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

#: property tests search new random examples on every local run (they have found real converter and
#: compiler bugs that way); CI (.ci/run) replays a fixed, derandomized set so that a landing never
#: depends on luck. Pick with LTRC_HYPOTHESIS_PROFILE=ci|default.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("LTRC_HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
SHARED = Path(os.environ.get("LTRCOMPILE_SHARED", ROOT.parent / "shared"))


def load_letor(path: Path, n_features: int | None = None):
    """svmlight/LETOR file -> (X float64 dense, y, group sizes or qid)."""
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(path), n_features=n_features, zero_based=False)
    qpath = Path(str(path) + ".query")
    groups = np.loadtxt(qpath, dtype=np.int64) if qpath.exists() else None
    return X.toarray(), y, groups


@pytest.fixture(scope="session")
def rank_data():
    """LightGBM's lambdarank example (bundled): Xtr, ytr, gtr, Xte, yte, gte (300 features)."""
    Xtr, ytr, gtr = load_letor(DATA / "lambdarank_rank.train", n_features=300)
    Xte, yte, gte = load_letor(DATA / "lambdarank_rank.test", n_features=300)
    return Xtr, ytr, gtr, Xte, yte, gte


@pytest.fixture(scope="session")
def binary_data():
    """LightGBM's binary example from ../shared (skipped when shared/ is absent)."""
    d = SHARED / "data" / "lightgbm-examples"
    if not (d / "binary_classification_binary.train").exists():
        pytest.skip("shared/data/lightgbm-examples not present")
    tr = np.loadtxt(d / "binary_classification_binary.train")
    te = np.loadtxt(d / "binary_classification_binary.test")
    return tr[:, 1:], tr[:, 0], te[:, 1:], te[:, 0]


def ulp_diff(a: np.ndarray, b: np.ndarray, dtype=np.float64) -> int:
    """Largest distance in units of last place between two float arrays (NaN==NaN)."""
    a = np.asarray(a, dtype).ravel()
    b = np.asarray(b, dtype).ravel()
    assert a.shape == b.shape
    both_nan = np.isnan(a) & np.isnan(b)
    itype = np.int64 if dtype == np.float64 else np.int32
    ia = a.view(itype).astype(np.int64)
    ib = b.view(itype).astype(np.int64)
    big = np.int64(1) << (63 if dtype == np.float64 else 31)
    ia = np.where(ia < 0, -(ia + big), ia)  # two's-complement ordering of floats
    ib = np.where(ib < 0, -(ib + big), ib)
    d = np.abs(ia - ib)
    d[both_nan] = 0
    return int(d.max()) if d.size else 0


def assert_bit_equal(ours, theirs, what: str = "") -> None:
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    same = (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
    if not same.all():
        i = np.flatnonzero(~same.ravel())[:5]
        raise AssertionError(
            f"{what}: {int((~same).sum())} of {same.size} values differ; first at {i.tolist()}: "
            f"ours={ours.ravel()[i].tolist()} theirs={theirs.ravel()[i].tolist()} "
            f"max|d|={np.nanmax(np.abs(ours - theirs))}"
        )


def require_c_compiler() -> None:
    """Skip the calling test module (at import) when no C compiler is usable for the Cython backend."""
    from ltrcompile.backends.cython import CompilerNotFoundError
    from ltrcompile.backends.cython.toolchain import toolchain

    try:
        toolchain()
    except CompilerNotFoundError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no C compiler: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def private_build_cache(tmp_path_factory):
    """Builds of the using module go to a private cache (never the user's ~/.cache)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTRCOMPILE_CACHE", str(tmp_path_factory.mktemp("ltrc-cache")))
        yield
