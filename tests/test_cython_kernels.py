"""Kernel variants of the Cython backend against the interpreter: categorical edge codes on every
kernel, the early-exit walk, host instruction-set builds and their load-time CPU check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal, require_c_compiler
from cython_zoo import ZOO, ensemble, rows_for

from ltrcompile.backends.cython import IncompatibleArtifactError, Tuning, load_compiled
from ltrcompile.backends.cython import compile as cy_compile
from ltrcompile.backends.cython import isa as isa_mod
from ltrcompile.ir import Ensemble

require_c_compiler()
pytestmark = pytest.mark.usefixtures("private_build_cache")

KERNELS = [
    ("ifelse", Tuning()),
    ("datadriven", Tuning(dd_early_exit=False)),
    ("datadriven", Tuning(dd_early_exit=True)),
]


def _parity(ens: Ensemble, s, X: np.ndarray, what: str) -> None:
    for dt in (np.float64, np.float32):
        Xd = X.astype(dt)
        assert_bit_equal(s.predict(Xd, raw_score=True), ens.predict(Xd, raw_score=True), f"{what} {dt.__name__}")
        np.testing.assert_array_equal(s.predict_leaf(Xd), ens.predict_leaf(Xd), what)
    want = ens.predict(X)
    for i in range(0, len(X), 41):
        assert_bit_equal(np.asarray(s.predict_one(X[i])), want[i], f"{what} predict_one {i}")


CODES = np.array([np.nan, -0.0, 0.0, -0.5, -1.0, -1.5, 0.5, 1.0, 3.0, 3.7, 31.0, 32.0, 39.0, 63.0, 64.0, 65.0, 70001.0, 2.0**24 - 1, 2.0**24,
                  2.0**31 - 1, 2.0**31, 2.0**32 + 3, -(2.0**31), 1e300, np.inf, -np.inf])


@pytest.mark.parametrize("kernel", range(len(KERNELS)))
@pytest.mark.parametrize("rule", ["xgboost", "lightgbm", "sklearn"])
def test_categorical_invalid_negative_nan_and_huge_codes(rule: str, kernel: int) -> None:
    strategy, tuning = KERNELS[kernel]
    ens = ensemble(5, **ZOO[f"cat_{rule}"])
    rng = np.random.default_rng(1)
    X = np.vstack([rng.choice(CODES, (300, ens.n_features)), rows_for(ens, seed=4, n_random=50, max_edge=300)])
    s = cy_compile(ens, strategy=strategy, tuning=tuning, progress=False)
    _parity(ens, s, X, f"{rule}/{strategy}/{tuning.dd_early_exit}")


@pytest.mark.parametrize("early", [False, True])
@pytest.mark.parametrize("name", ["deep_trees", "mixed_ops_all_policies", "xgb_like_lt_f32"])
def test_early_exit_walk(name: str, early: bool) -> None:
    kw = dict(ZOO[name])
    kw["n_trees"] = max(kw.get("n_trees", 6), 20)
    ens = ensemble(13, **kw)
    s = cy_compile(ens, strategy="datadriven", tuning=Tuning(dd_early_exit=early), progress=False)
    X = rows_for(ens, seed=5)
    _parity(ens, s, X, f"{name} early={early}")
    # rows without NaN take the walk without the NaN fix-up
    _parity(ens, s, np.nan_to_num(X, nan=0.25), f"{name} early={early} no-NaN")


def _host_level() -> str:
    level = isa_mod.resolve("native")
    if level == "portable":
        pytest.skip("this CPU has neither AVX2 nor AVX-512: no host-ISA build to test")
    return level


@pytest.mark.parametrize("strategy", ["ifelse", "datadriven"])
def test_host_isa_build_is_exact_and_recorded(strategy: str) -> None:
    level = _host_level()
    for name in ("weights_fused_bags_avg", "vector_leaves", "linear_leaves_fused", "cat_lightgbm"):
        ens = ensemble(21, **ZOO[name])
        s = cy_compile(ens, strategy=strategy, isa="native", progress=False)
        assert s.manifest["isa"]["level"] == level
        assert s.manifest["tuning"]["isa"] == level
        _parity(ens, s, rows_for(ens, seed=6, n_random=100, max_edge=400), f"{name}/{strategy}/{level}")


def test_artifact_for_a_missing_isa_is_refused_and_portable_loads(tmp_path: Path, monkeypatch) -> None:
    level = _host_level()
    ens = ensemble(3, **ZOO["lgb_like_le_band"])
    host = cy_compile(ens, tmp_path / "host", strategy="datadriven", isa=level, progress=False)
    portable = cy_compile(ens, tmp_path / "portable", strategy="datadriven", progress=False)
    assert portable.manifest["isa"]["level"] == "portable"
    assert host.manifest["module"] != portable.manifest["module"]
    # simulate a CPU without AVX2/AVX-512 (a baseline x86-64)
    monkeypatch.setattr(isa_mod, "cpu_flags", lambda: frozenset({"sse", "sse2", "fpu"}))
    with pytest.raises(IncompatibleArtifactError) as exc:
        load_compiled(tmp_path / "host")
    msg = str(exc.value)
    assert level in msg and "avx2" in msg and "isa='portable'" in msg, msg
    s = load_compiled(tmp_path / "portable")
    X = rows_for(ens, seed=7, n_random=50, max_edge=200)
    assert_bit_equal(s.predict(X, raw_score=True), ens.predict(X, raw_score=True), "portable fallback")
    with pytest.raises(ValueError, match="lacks"):
        isa_mod.resolve(level)


def test_unknown_isa_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown isa"):
        cy_compile(ensemble(1), isa="sse9", progress=False)
    assert isa_mod.check_cpu({"level": "avx9"}, "x") is not None
    assert isa_mod.check_cpu(None, "x") is None


def test_auto_picks_straight_line_code_for_small_unbalanced_models() -> None:
    """Small LightGBM leaf-wise models (unbalanced trees) -> ifelse; XGBoost depth-wise trees of the
    same size and large leaf-wise models -> datadriven (the winners measured on the bench models)."""
    import lightgbm as lgb
    import xgboost as xgb

    from ltrcompile.backends.cython.codegen import IFELSE_SMALL_NODES, choose_strategy, unbalanced
    from ltrcompile.backends.cython.lowering import lower
    from ltrcompile.frontends import load_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8))
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + 0.1 * rng.normal(size=3000)
    small = lgb.train({"num_leaves": 31, "verbose": -1, "min_data_in_leaf": 5}, lgb.Dataset(X, y), 40)
    ens = load_model(small)
    assert unbalanced(lower(ens)) and int((ens.left >= 0).sum()) <= IFELSE_SMALL_NODES
    assert choose_strategy(ens, "auto") == "ifelse"
    big = lgb.train({"num_leaves": 31, "verbose": -1, "min_data_in_leaf": 5}, lgb.Dataset(X, y), 400)
    assert choose_strategy(load_model(big), "auto") == "datadriven"
    bal = xgb.train({"max_depth": 6, "verbosity": 0}, xgb.DMatrix(X, y), 40)
    ens = load_model(bal)
    assert not unbalanced(lower(ens))
    assert choose_strategy(ens, "auto") == "datadriven"
