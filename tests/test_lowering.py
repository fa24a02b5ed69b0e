"""The lowering stage on its own: the numpy evaluator of LoweredModel against the interpreter.

No C compiler involved: a difference here is a lowering bug (threshold rounding, NaN direction, zero
band, category sets, leaf tables, accumulation), not a code generation or compiler one. Both the
straight-line decision (per-node band, folded NaN) and the branch-free walk's ``<=``-only thresholds
on banded rows are executed.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_bit_equal
from cython_zoo import TRANSFORM_MODELS, ZOO, ensemble, models, rows_for, transform_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrcompile.backends.cython import lowered_eval as ev
from ltrcompile.backends.cython.contexts import CommonCtx, render_context
from ltrcompile.backends.cython.lowering import lower, round_f32
from ltrcompile.ir import Ensemble

F32 = np.float32


def _check(ens: Ensemble, X: np.ndarray, what: str) -> None:
    lm = lower(ens)
    for dt in (np.float64, np.float32):
        Xd = X.astype(dt)
        want_raw = ens.predict(Xd, raw_score=True)
        want = ens.predict(Xd)
        want_leaf = ens.predict_leaf(Xd)
        for fast in (False, True):
            tag = f"{what} {dt.__name__} fast={fast}"
            np.testing.assert_array_equal(ev.predict_leaf(lm, Xd, fast=fast), want_leaf, tag)
            assert_bit_equal(ev.predict(lm, Xd, raw_score=True, fast=fast), want_raw, tag + " raw")
            assert_bit_equal(ev.predict(lm, Xd, fast=fast), want, tag)


@pytest.mark.parametrize("name", sorted(n for n, kw in ZOO.items() if "normalizers" not in kw))
def test_zoo_lowering_matches_interpreter(name: str) -> None:
    ens = ensemble(7, **ZOO[name])
    _check(ens, rows_for(ens, seed=2, n_random=200, max_edge=800), name)


@pytest.mark.parametrize("name", sorted(TRANSFORM_MODELS))
def test_transform_models_lowering(name: str) -> None:
    ens = transform_model(name)
    _check(ens, rows_for(ens, seed=3, n_random=80, max_edge=300), name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_random_models_lowering_matches_interpreter(case) -> None:
    seed, kw, _ = case
    ens = ensemble(seed, **kw)
    _check(ens, rows_for(ens, seed=seed % 1000, n_random=100, max_edge=400), "random")


def test_categorical_codes_edge_values() -> None:
    """Invalid, negative, fractional, NaN, huge and >= 2**31 codes under every categorical rule."""
    codes = [np.nan, -0.0, 0.0, -0.5, -1.0, -1.5, 0.5, 1.0, 3.0, 3.7, 39.0, 70001.0, 2.0**24 - 1, 2.0**24,
             2.0**31 - 1, 2.0**31, 2.0**32 + 3, -(2.0**31), 1e300, np.inf, -np.inf]
    for rule, cats in (("xgboost", (1, 3)), ("lightgbm", (0, 2)), ("sklearn", (1, 4))):
        kw = dict(ZOO[f"cat_{rule}"])
        ens = ensemble(5, **kw)
        rng = np.random.default_rng(0)
        X = rng.choice(np.array(codes), (400, ens.n_features))
        _check(ens, X, f"codes {rule} {cats}")


@given(st.floats(allow_nan=False, width=64), st.floats(allow_nan=False, width=32))
def test_round_f32_is_exact_for_float32_values(t: float, v: float) -> None:
    """For float32 v: double(v) <= t iff v <= round_down_f32(t); double(v) < t iff v < round_up_f32(t)."""
    down = float(round_f32(t, True))
    up = float(round_f32(t, False))
    assert float(F32(down)) == down and float(F32(up)) == up
    assert (v <= t) == (v <= down)
    assert (v < t) == (v < up)


def test_round_f32_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        round_f32(np.nan, True)


def test_template_contexts_are_typed() -> None:
    with pytest.raises(TypeError):
        CommonCtx(codegen_version="1", module="m", strategy="ifelse", vtyp="float")  # type: ignore[call-arg]
    lm = lower(ensemble(1))
    from ltrcompile.backends.cython.codegen import Tuning, _common

    c = _common(lm, "m", "ifelse", Tuning())
    with pytest.raises(ValueError, match="twice"):
        render_context(c, c)


@pytest.mark.parametrize("rule", ["xgboost", "lightgbm", "sklearn"])
def test_category_code_columns(rule: str) -> None:
    """Each categorical node reads one code column, converted from its own feature and with the
    band exactly where the node applies it; numerical nodes read none."""
    lm = lower(ensemble(5, **ZOO[f"cat_{rule}"]))
    cat = lm.categorical
    assert cat.any() and lm.n_codes >= 1
    assert (lm.code_slot[~cat] == -1).all()
    slot = lm.code_slot[cat]
    assert (slot >= 0).all() and (slot < lm.n_codes).all()
    np.testing.assert_array_equal(lm.code_feature[slot], lm.feature[cat])
    np.testing.assert_array_equal(lm.code_band[slot], lm.band_node[cat])
    assert len({(int(f), bool(b)) for f, b in zip(lm.code_feature, lm.code_band, strict=True)}) == lm.n_codes
