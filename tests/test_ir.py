"""IR invariants: validation errors, bit-exact JSON round trips, and the vectorised interpreter
against a plain per-row walker written from the IR specification (docs/ir.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrcompile import Ensemble, IRValidationError, Missing, ModelFormatError, Op, TreeArrays
from ltrcompile.edgecases import edge_rows
from ltrcompile.ir import LIGHTGBM_ZERO_BAND

F = 4


# --------------------------------------------------------------------------- strategies
@st.composite
def trees(draw, leaf_dim: int = 1, rule: str = "xgboost"):
    """A random valid tree (local indices, node 0 the root) built breadth-first."""
    n_internal = draw(st.integers(0, 6))
    n = 2 * n_internal + 1
    t = TreeArrays.empty(n, leaf_dim)
    # node i (internal, i < n_internal) gets children 2i+1, 2i+2 in a shuffled numbering
    perm = [0] + draw(st.permutations(list(range(1, n))))
    inv = {v: i for i, v in enumerate(perm)}
    finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    for logical in range(n):
        node = perm[logical]
        if logical < n_internal:
            t.feature[node] = draw(st.integers(0, F - 1))
            t.left[node] = perm[2 * logical + 1]
            t.right[node] = perm[2 * logical + 2]
            t.op[node] = draw(st.sampled_from([Op.LT, Op.LE]))
            t.missing[node] = draw(st.sampled_from(list(Missing)))
            t.default_left[node] = draw(st.booleans())
            if draw(st.integers(0, 4)) == 0:
                t.categorical[node] = 1
                t.cat_left[node] = draw(st.booleans())
                t.cat_sets[node] = np.array(
                    draw(st.lists(st.integers(0, 70), min_size=0, max_size=5)), np.int64
                )
            else:
                t.threshold[node] = draw(
                    st.one_of(finite, st.sampled_from([0.0, -0.0, LIGHTGBM_ZERO_BAND, -LIGHTGBM_ZERO_BAND, math.inf]))
                )
        else:
            t.leaf_value[node] = [draw(finite) for _ in range(leaf_dim)]
            t.leaf_id[node] = node
    assert len(inv) == n
    return t


@st.composite
def ensembles(draw):
    leaf_dim = draw(st.sampled_from([1, 1, 1, 3]))
    n_outputs = leaf_dim if leaf_dim > 1 else draw(st.sampled_from([1, 2]))
    rule = draw(st.sampled_from(["xgboost", "lightgbm", "sklearn"]))
    ts = draw(st.lists(trees(leaf_dim, rule), min_size=1, max_size=5))
    n_trees = len(ts)
    tree_output = [0] * n_trees if leaf_dim > 1 else draw(
        st.lists(st.integers(0, n_outputs - 1), min_size=n_trees, max_size=n_trees)
    )
    accumulate = draw(st.sampled_from(["float32", "float32_fused", "float64", "float64_kahan"]))
    weights = draw(st.lists(st.sampled_from([1.0, 0.1, 0.5, 2.0]), min_size=n_trees, max_size=n_trees))
    bags = draw(st.lists(st.integers(0, 1), min_size=n_trees, max_size=n_trees))
    return Ensemble.from_trees(
        ts,
        n_features=F,
        n_outputs=n_outputs,
        tree_output=tree_output,
        tree_weight=weights,
        tree_bag=bags,
        base_score=draw(st.lists(st.floats(-3, 3, width=32), min_size=n_outputs, max_size=n_outputs)),
        input_cast=draw(st.sampled_from(["float32", "float64"])),
        input_zero_band=draw(st.sampled_from([0.0, LIGHTGBM_ZERO_BAND])),
        categorical_rule=rule,
        accumulate=accumulate,
        average_denominator=draw(st.sampled_from([None, 3.0])),
        average_raw=draw(st.booleans()),
    )


# --------------------------------------------------------------------------- reference walker
def _reference_raw(ens: Ensemble, row: np.ndarray) -> list[float]:
    """Per-row scalar walk written directly from docs/ir.md (independent of the interpreter)."""
    x = [float(v) for v in row]
    if ens.input_cast == "float32":
        with np.errstate(over="ignore"):
            x = [float(np.float32(v)) for v in x]
    x = [0.0 if (ens.input_zero_band > 0 and abs(v) <= ens.input_zero_band) else v for v in x]
    bags: dict[int, list[float]] = {}
    kahan: dict[tuple[int, int], list[float]] = {}  # (bag, output) -> [sum, compensation, simple]
    for t in range(ens.n_trees):
        b = int(ens.tree_bag[t])
        acc = bags.setdefault(b, [float(ens.base_score[k]) if b == 0 else 0.0 for k in range(ens.n_outputs)])
        n = int(ens.tree_offset[t])
        while ens.left[n] >= 0:
            v = x[ens.feature[n]]
            pol = ens.missing[n]
            if ens.categorical[n]:
                if math.isnan(v) and pol == Missing.NAN_DEFAULT:
                    go_left = bool(ens.default_left[n])
                else:
                    if math.isnan(v):
                        valid = False
                    elif ens.categorical_rule == "xgboost":
                        valid = 0 <= v < 2**24
                    elif ens.categorical_rule == "sklearn":
                        valid = 0 <= v < 2**31 and v == math.trunc(v)
                    else:
                        valid = -1 < v < 2**31
                    cats = set(ens.categories[ens.cat_begin[n] : ens.cat_end[n]].tolist())
                    in_set = valid and int(v) in cats
                    go_left = in_set if ens.cat_left[n] else not in_set
            else:
                if math.isnan(v) and pol in (Missing.NAN_AS_ZERO, Missing.ZERO_NAN_DEFAULT):
                    v = 0.0
                if (pol == Missing.NAN_DEFAULT and math.isnan(v)) or (
                    pol == Missing.ZERO_NAN_DEFAULT and abs(v) <= LIGHTGBM_ZERO_BAND
                ):
                    go_left = bool(ens.default_left[n])
                else:
                    thr = ens.threshold[n]
                    go_left = v < thr if ens.op[n] == Op.LT else v <= thr
            n = ens.left[n] if go_left else ens.right[n]
        w = float(ens.tree_weight[t])
        outs = range(ens.n_outputs) if ens.leaf_dim > 1 else [int(ens.tree_output[t])]
        for j, k in enumerate(outs):
            leaf = float(ens.leaf_value[n, j if ens.leaf_dim > 1 else 0])
            if ens.accumulate == "float64":
                acc[k] = acc[k] + leaf * w
            elif ens.accumulate == "float64_kahan":  # Java DoubleStream.sum over [start, terms...]
                st_ = kahan.setdefault((b, k), [acc[k], 0.0, acc[k]])
                y = leaf * w - st_[1]
                t_ = st_[0] + y
                st_[1] = (t_ - st_[0]) - y
                st_[0] = t_
                st_[2] += leaf * w
                r = st_[0] - st_[1]
                acc[k] = st_[2] if (math.isnan(r) and math.isinf(st_[2])) else r
            elif ens.accumulate == "float32":
                acc[k] = float(np.float32(np.float32(acc[k]) + np.float32(np.float32(leaf) * np.float32(w))))
            else:
                acc[k] = float(np.float32(float(np.float32(acc[k])) + leaf * w))
    f32 = ens.accumulate in ("float32", "float32_fused")
    raw = [float(np.float32(v)) if f32 else v for v in bags.get(0, list(ens.base_score))]
    for b in sorted(k for k in bags if k != 0):
        raw = [r + float(np.float32(v)) if f32 else r + v for r, v in zip(raw, bags[b], strict=True)]
    return raw


# --------------------------------------------------------------------------- tests
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ensembles())
def test_json_round_trip_is_bit_exact(ens: Ensemble) -> None:
    back = Ensemble.from_json(ens.to_json())
    assert back.to_json() == ens.to_json()
    assert back.digest() == ens.digest()
    for name in ("threshold", "leaf_value", "base_score", "tree_weight"):
        a, b = getattr(ens, name), getattr(back, name)
        assert a.tobytes() == b.tobytes(), name
    X = edge_rows(ens, max_rows=300)
    np.testing.assert_array_equal(back.predict(X, raw_score=True), ens.predict(X, raw_score=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ensembles(), st.integers(0, 2**31 - 1))
def test_interpreter_matches_scalar_reference(ens: Ensemble, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = np.vstack([edge_rows(ens, max_rows=200, seed=seed), rng.normal(0, 50, (20, F))])
    raw = ens.predict(X, raw_score=True).reshape(len(X), -1)
    if ens.average_denominator is not None and ens.average_raw:
        raw = raw * ens.average_denominator  # undo averaging; compare sums
    for i, row in enumerate(X):
        ref = _reference_raw(ens, row)
        got = raw[i].tolist()
        if ens.average_denominator is not None and ens.average_raw:
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
        else:
            assert got == ref or np.array_equal(np.array(got), np.array(ref), equal_nan=True), (i, row, got, ref)


def _stump() -> TreeArrays:
    t = TreeArrays.empty(3)
    t.feature[0] = 0
    t.threshold[0] = 0.5
    t.left[0], t.right[0] = 1, 2
    t.leaf_value[1:, 0] = [1.0, 2.0]
    t.leaf_id[1:] = [1, 2]
    return t


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda t: t.left.__setitem__(0, 7), "left/right"),
        (lambda t: t.right.__setitem__(0, 1), "left/right"),
        (lambda t: t.feature.__setitem__(0, 9), "feature"),
        (lambda t: t.threshold.__setitem__(0, np.nan), "threshold"),
        (lambda t: t.leaf_value.__setitem__((1, 0), np.inf), "leaf_value"),
        (lambda t: t.op.__setitem__(0, 5), "op"),
        (lambda t: t.missing.__setitem__(0, 9), "missing"),
        (lambda t: t.right.__setitem__(1, 2), "right"),
    ],
)
def test_validation_names_tree_node_field(mutate, field) -> None:
    bad = _stump()
    mutate(bad)
    with pytest.raises(IRValidationError) as info:
        Ensemble.from_trees([_stump(), bad], n_features=2)
    err = info.value
    assert err.tree == 1 and err.field == field
    assert "tree 1" in str(err)


def test_cycle_is_rejected() -> None:
    t = TreeArrays.empty(5)
    t.feature[[0, 3, 4]] = 0
    t.left[0], t.right[0] = 1, 2
    t.left[3], t.right[3] = 4, 4  # 3 <-> 4 unreachable
    with pytest.raises(IRValidationError):
        Ensemble.from_trees([t], n_features=1)
    t.left[3], t.right[3] = 4, 1
    t.left[4], t.right[4] = 3, 2
    t.feature[4] = 0
    with pytest.raises(IRValidationError, match="parent|reachable"):
        Ensemble.from_trees([t], n_features=1)


def test_model_level_validation() -> None:
    with pytest.raises(IRValidationError, match="transform"):
        Ensemble.from_trees([_stump()], n_features=1, transform="nope")
    with pytest.raises(IRValidationError, match="accumulate"):
        Ensemble.from_trees([_stump()], n_features=1, accumulate="float16")
    with pytest.raises(IRValidationError, match="tree_output"):
        Ensemble.from_trees([_stump()], n_features=1, tree_output=[3])
    with pytest.raises(IRValidationError, match="feature names"):
        Ensemble.from_trees([_stump()], n_features=1, feature_names=["a", "b"])
    with pytest.raises(IRValidationError, match="softmax"):
        Ensemble.from_trees([_stump()], n_features=1, transform="softmax")


def test_from_json_errors_are_typed() -> None:
    good = Ensemble.from_trees([_stump()], n_features=1).to_json()
    with pytest.raises(ModelFormatError):
        Ensemble.from_json(good[: len(good) // 2])
    with pytest.raises(ModelFormatError, match="version"):
        Ensemble.from_json(good.replace('"version": 1', '"version": 99'))
    with pytest.raises(ModelFormatError):
        Ensemble.from_json('{"format": "something-else"}')


def test_reachable_only_drops_deleted_nodes_and_keeps_leaf_ids() -> None:
    t = TreeArrays.empty(5)
    t.feature[0] = 0
    t.left[0], t.right[0] = 3, 4  # nodes 1, 2 are deleted
    t.leaf_value[3:, 0] = [5.0, 6.0]
    t.leaf_id[3:] = [3, 4]
    ens = Ensemble.from_trees([t.reachable_only()], n_features=1)
    assert ens.n_nodes == 3
    np.testing.assert_array_equal(ens.predict_leaf(np.array([[-1.0], [1.0]])), [[3], [4]])


def test_predict_shapes_and_input_errors() -> None:
    from ltrcompile import InputDataError

    ens = Ensemble.from_trees([_stump()], n_features=2)
    assert ens.predict(np.zeros((3, 2))).shape == (3,)
    with pytest.raises(InputDataError, match="2 feature|expects 2"):
        ens.predict(np.zeros((3, 3)))
    with pytest.raises(InputDataError, match="1-D"):
        ens.predict(np.zeros(2))
    with pytest.raises(InputDataError, match="numeric"):
        ens.predict(np.array([["a", "b"]]))


def test_sparse_absent_rule() -> None:
    sp = pytest.importorskip("scipy.sparse")
    t = _stump()
    t.default_left[0] = 1
    for absent, expected in (("missing", 1.0), ("zero", 1.0)):
        ens = Ensemble.from_trees([t], n_features=2, sparse_absent=absent)
        assert ens.predict(sp.csr_matrix(np.zeros((1, 2))))[0] == expected
    t.threshold[0] = -1.0
    miss = Ensemble.from_trees([t], n_features=2, sparse_absent="missing")
    zero = Ensemble.from_trees([t], n_features=2, sparse_absent="zero")
    X = sp.csr_matrix(np.zeros((1, 2)))
    assert miss.predict(X)[0] == 1.0  # absent = NaN -> default left
    assert zero.predict(X)[0] == 2.0  # absent = 0.0 > -1 -> right


def test_dataframe_binds_by_name() -> None:
    pd = pytest.importorskip("pandas")
    from ltrcompile import InputDataError

    ens = Ensemble.from_trees([_stump()], n_features=2, feature_names=["a", "b"])
    df = pd.DataFrame({"b": [9.0, 9.0], "a": [0.0, 1.0]})
    np.testing.assert_array_equal(ens.predict(df), [1.0, 2.0])
    with pytest.raises(InputDataError, match="missing"):
        ens.predict(pd.DataFrame({"a": [0.0], "c": [1.0]}))
