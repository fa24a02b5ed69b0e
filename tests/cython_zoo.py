"""Hand-built IR ensembles for the Cython backend tests: every semantic the IR can express.

Trees are random but small; thresholds come from a small grid (with values at LightGBM's zero band
edges, +-inf and huge values) so rows land exactly on thresholds often. Rows mix the model's edge
rows (``ltrcompile.edgecases.edge_rows``) with random grid values and NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from ltrcompile.edgecases import edge_rows
from ltrcompile.ir import LIGHTGBM_ZERO_BAND, Ensemble, Missing, Op, TreeArrays

B = LIGHTGBM_ZERO_BAND
GRID = np.array(
    [-3.5, -1.0, -B, -1e-36, 0.0, 1e-36, B, np.nextafter(B, 1), 0.25, 0.5, 1.0, 2.0, 7.75, 1e30, -1e30],
    np.float64,
)


def random_tree(
    rng: np.random.Generator,
    n_features: int,
    *,
    depth: int = 4,
    leaf_dim: int = 1,
    ops: tuple[Op, ...] = (Op.LE,),
    missing: tuple[Missing, ...] = (Missing.NAN_DEFAULT,),
    cat_prob: float = 0.0,
    cat_features: tuple[int, ...] = (),
    big_codes: bool = False,
    float32_thresholds: bool = False,
    linear_leaves: bool = False,
    split_prob: float = 0.8,
    grid: np.ndarray = GRID,
    leaf_scale: float = 1.0,
) -> TreeArrays:
    """A random binary tree in preorder; leaves get random values (and linear terms)."""
    feats: list[int] = []
    thr: list[float] = []
    op: list[int] = []
    left: list[int] = []
    right: list[int] = []
    dl: list[int] = []
    miss: list[int] = []
    cat: list[int] = []
    catl: list[int] = []
    leaf_vals: list[list[float]] = []
    cat_sets: dict[int, np.ndarray] = {}
    linear: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}

    def new() -> int:
        feats.append(-1)
        thr.append(0.0)
        op.append(int(ops[0]))
        left.append(-1)
        right.append(-1)
        dl.append(0)
        miss.append(int(missing[0]))
        cat.append(0)
        catl.append(0)
        leaf_vals.append([0.0] * leaf_dim)
        return len(feats) - 1

    def build(d: int) -> int:
        n = new()
        if d < depth and (d == 0 or rng.random() < split_prob):
            is_cat = bool(cat_features) and rng.random() < cat_prob
            if is_cat:
                feats[n] = int(rng.choice(cat_features))
                cat[n] = 1
                catl[n] = int(rng.integers(0, 2))
                hi = 70000 if big_codes and rng.random() < 0.5 else 40
                size = int(rng.integers(0, 6))
                cat_sets[n] = np.unique(rng.integers(0, hi, size))
                thr[n] = 0.0
            else:
                non_cat = [f for f in range(n_features) if f not in cat_features] or [0]
                feats[n] = int(rng.choice(non_cat))
                t = float(rng.choice(grid))
                if float32_thresholds:
                    t = float(np.float32(t))
                thr[n] = t
            op[n] = int(rng.choice(ops))
            miss[n] = int(rng.choice(missing))
            dl[n] = int(rng.integers(0, 2))
            L = build(d + 1)
            R = build(d + 1)
            left[n], right[n] = L, R
        else:
            vals = np.round(rng.normal(0, 1, leaf_dim), 3) * (1.0 + rng.random()) * leaf_scale
            leaf_vals[n] = [float(v) for v in vals]
            if linear_leaves and rng.random() < 0.7:
                k = int(rng.integers(0, min(3, n_features + 1)))
                fs = rng.choice(n_features, k, replace=False).astype(np.int32)
                cs = np.round(rng.normal(0, 0.5, k), 4)
                linear[n] = (float(np.round(rng.normal(), 3)), fs, cs)
        return n

    build(0)
    n = len(feats)
    ta = TreeArrays.empty(n, leaf_dim)
    ta.feature[:] = feats
    ta.threshold[:] = thr
    ta.op[:] = op
    ta.left[:] = left
    ta.right[:] = right
    ta.default_left[:] = dl
    ta.missing[:] = miss
    ta.categorical[:] = cat
    ta.cat_left[:] = catl
    ta.leaf_value[:] = np.asarray(leaf_vals, np.float64)
    leaves = np.flatnonzero(ta.left < 0)
    ta.leaf_id[leaves] = np.arange(leaves.size) * 3 + 1  # distinct, not node indices
    ta.cat_sets = cat_sets
    ta.linear = linear
    return ta


def ensemble(
    seed: int,
    *,
    n_trees: int = 6,
    n_features: int = 6,
    n_outputs: int = 1,
    vector_leaves: bool = False,
    tree_kw: dict[str, Any] | None = None,
    weights: bool = False,
    bags: int = 1,
    **model: Any,
) -> Ensemble:
    rng = np.random.default_rng(seed)
    kw = dict(tree_kw or {})
    leaf_dim = n_outputs if vector_leaves else 1
    trees = [random_tree(rng, n_features, leaf_dim=leaf_dim, **kw) for _ in range(n_trees)]
    extra: dict[str, Any] = {}
    if weights:
        extra["tree_weight"] = np.round(rng.uniform(0.05, 1.5, n_trees), 4)
    if bags > 1:
        extra["tree_bag"] = np.sort(rng.integers(0, bags, n_trees))
        extra["tree_bag"][: bags] = np.arange(bags)
        extra["tree_bag"] = np.sort(extra["tree_bag"])
    if n_outputs > 1 and not vector_leaves:
        extra["tree_output"] = np.arange(n_trees) % n_outputs
    base = np.round(rng.normal(0, 0.3, n_outputs), 5)
    return Ensemble.from_trees(
        trees, n_features=n_features, n_outputs=n_outputs, base_score=base, **extra, **model
    )


def rows_for(ens: Ensemble, seed: int = 0, n_random: int = 300, max_edge: int = 1500) -> np.ndarray:
    """Edge rows plus random grid rows with NaN and category codes sprinkled in."""
    rng = np.random.default_rng(seed)
    E = edge_rows(ens, max_rows=max_edge, seed=seed)
    pool = np.concatenate([GRID, [np.nan, np.inf, -np.inf, 3.0, 5.0, 39.0, 70001.0, 2.0**31]])
    R = rng.choice(pool, (n_random, ens.n_features))
    codes = rng.integers(0, 40, R.shape).astype(np.float64)
    m = rng.random(R.shape) < 0.3
    R[m] = codes[m]
    return np.vstack([E, R])


#: name -> (builder kwargs) for the zoo; each covers one IR semantic (or a few that combine)
ZOO: dict[str, dict[str, Any]] = {
    "xgb_like_lt_f32": dict(
        tree_kw=dict(ops=(Op.LT,), missing=(Missing.NAN_DEFAULT,), float32_thresholds=True),
        input_cast="float32",
        accumulate="float32",
        sparse_absent="missing",
    ),
    "lgb_like_le_band": dict(
        tree_kw=dict(ops=(Op.LE,), missing=(Missing.NAN_AS_ZERO, Missing.ZERO_NAN_DEFAULT, Missing.NAN_DEFAULT)),
        input_zero_band=B,
        int_input_cast="float32",
    ),
    "zero_default_wide_band": dict(
        tree_kw=dict(ops=(Op.LE, Op.LT), missing=(Missing.ZERO_NAN_DEFAULT,)),
        input_zero_band=0.3,
    ),
    "mixed_ops_all_policies": dict(
        tree_kw=dict(
            ops=(Op.LT, Op.LE),
            missing=(Missing.NAN_DEFAULT, Missing.NAN_AS_ZERO, Missing.ZERO_NAN_DEFAULT, Missing.NAN_FALSE),
            depth=5,
        ),
    ),
    "f32_cast_f64_thresholds": dict(
        tree_kw=dict(ops=(Op.LT, Op.LE), missing=(Missing.NAN_FALSE, Missing.NAN_DEFAULT)),
        input_cast="float32",
        accumulate="float64",
    ),
    "cat_xgboost": dict(
        tree_kw=dict(
            ops=(Op.LT,), missing=(Missing.NAN_DEFAULT, Missing.NAN_FALSE), cat_prob=0.5,
            cat_features=(1, 3), big_codes=True, float32_thresholds=True,
        ),
        categorical_rule="xgboost",
        input_cast="float32",
        accumulate="float32",
        input_zero_band=B,
    ),
    "cat_lightgbm": dict(
        tree_kw=dict(
            ops=(Op.LE,), missing=(Missing.NAN_FALSE, Missing.NAN_AS_ZERO, Missing.NAN_DEFAULT),
            cat_prob=0.5, cat_features=(0, 2), big_codes=True,
        ),
        categorical_rule="lightgbm",
        input_zero_band=B,
    ),
    "cat_sklearn": dict(
        tree_kw=dict(
            ops=(Op.LE,), missing=(Missing.NAN_DEFAULT, Missing.NAN_FALSE), cat_prob=0.6,
            cat_features=(1, 4), big_codes=True,
        ),
        categorical_rule="sklearn",
        input_zero_band=B,
    ),
    "kahan_bags_weights": dict(
        accumulate="float64_kahan", weights=True, bags=2, average_denominator=2.0, n_trees=12,
        tree_kw=dict(leaf_scale=1e15),
    ),
    "kahan_overflow": dict(accumulate="float64_kahan", n_trees=8, tree_kw=dict(leaf_scale=1.5e307)),
    "kahan_linear": dict(
        accumulate="float64_kahan", weights=True, tree_kw=dict(linear_leaves=True),
        linear_output=np.array([0, 0], np.int32), linear_feature=np.array([3, 0], np.int32),
        linear_weight=np.array([1e16, -0.5]),
    ),
    "inf_as_missing": dict(
        infinite_as_missing=True,
        tree_kw=dict(ops=(Op.LE, Op.LT), missing=(Missing.NAN_DEFAULT, Missing.NAN_FALSE, Missing.NAN_AS_ZERO)),
        linear_output=np.array([0], np.int32), linear_feature=np.array([2], np.int32),
        linear_weight=np.array([0.25]), linear_skip_missing=True,
    ),
    "inf_as_missing_f32": dict(
        infinite_as_missing=True, input_cast="float32", accumulate="float32",
        tree_kw=dict(ops=(Op.LT,), missing=(Missing.NAN_DEFAULT,), float32_thresholds=True),
    ),
    "weights_f32": dict(weights=True, accumulate="float32", input_cast="float32"),
    "weights_fused_bags_avg": dict(
        weights=True, accumulate="float32_fused", input_cast="float32", bags=3, average_denominator=3.0,
    ),
    "bags_f64_avg_not_raw": dict(bags=2, average_denominator=7.0, average_raw=False),
    "vector_leaves": dict(n_outputs=3, vector_leaves=True, weights=True, accumulate="float32", input_cast="float32"),
    "multi_output_scalar": dict(n_outputs=3, n_trees=9, transform="softmax"),
    "linear_terms_f64": dict(
        linear_output=np.array([0, 0, 0], np.int32),
        linear_feature=np.array([1, 4, 1], np.int32),
        linear_weight=np.array([0.5, -1.25, 3.0]),
    ),
    "linear_terms_f32_skip": dict(
        linear_output=np.array([0, 0], np.int32),
        linear_feature=np.array([2, 5], np.int32),
        linear_weight=np.array([0.3, -0.7]),
        linear_skip_missing=True, accumulate="float32", input_cast="float32",
    ),
    "linear_leaves": dict(tree_kw=dict(linear_leaves=True, missing=(Missing.NAN_AS_ZERO,)), input_zero_band=B, weights=True),
    "linear_leaves_fused": dict(
        tree_kw=dict(linear_leaves=True), accumulate="float32_fused", weights=True,
    ),
    "deep_trees": dict(n_trees=3, tree_kw=dict(depth=14, split_prob=0.93)),
    "root_leaf_trees": dict(n_trees=5, tree_kw=dict(depth=1, split_prob=0.0)),
    "normalizers": dict(
        normalizers=[
            {"feature": 0, "type": "standard", "mean": 0.5, "std": 2.0},
            {"feature": 3, "type": "min_max", "min": -1.0, "max": 3.0},
        ],
    ),
}

#: transform -> model kwargs that make it valid
TRANSFORM_MODELS: dict[str, dict[str, Any]] = {
    "identity": {},
    "sigmoid": dict(transform_params={"alpha": 0.7}),
    "sigmoid_binary_proba": {},
    "softmax": dict(n_outputs=3),
    "exp": {},
    "signed_square": {},
    "log1p_exp": {},
    "xgb_sigmoid": dict(input_cast="float32", accumulate="float32"),
    "xgb_exp": dict(input_cast="float32", accumulate="float32"),
    "xgb_softmax": dict(n_outputs=4, input_cast="float32", accumulate="float32"),
    "xgb_argmax": dict(n_outputs=3, input_cast="float32", accumulate="float32"),
    "xgb_hinge": dict(input_cast="float32", accumulate="float32"),
}


def transform_model(name: str, seed: int = 3) -> Ensemble:
    from ltrcompile.transforms import TRANSFORMS

    t = TRANSFORMS[name]
    kw = dict(TRANSFORM_MODELS.get(name, {}))
    k = kw.pop("n_outputs", max(1, t.min_outputs))
    params = kw.pop("transform_params", {p: 0.5 for p in t.params})
    return ensemble(seed, n_trees=k * 3, n_outputs=k, transform=name, transform_params=params, **kw)


@st.composite
def models(draw: Any) -> tuple[int, dict[str, Any], str]:
    """Hypothesis: (seed, :func:`ensemble` kwargs, strategy) covering every model-level semantic."""
    from ltrcompile.backends.cython.codegen import STRATEGIES
    from ltrcompile.transforms import TRANSFORMS

    n_outputs = draw(st.sampled_from([1, 1, 1, 2, 3]))
    vector = n_outputs > 1 and draw(st.booleans())
    names = [n for n, t in TRANSFORMS.items() if t.min_outputs <= n_outputs and (t.max_outputs or 99) >= n_outputs]
    transform = draw(st.sampled_from(sorted(names)))
    params = {p: draw(st.sampled_from([0.5, 1.0, 2.5])) for p in TRANSFORMS[transform].params}
    bags = draw(st.sampled_from([1, 1, 2]))
    linear_terms = bags == 1 and draw(st.booleans())
    n_features = draw(st.integers(1, 6))
    cat_features = tuple(range(0, n_features, 2)) if n_features > 1 and draw(st.booleans()) else ()
    tree_kw = dict(
        depth=draw(st.integers(0, 6)),
        ops=tuple(draw(st.lists(st.sampled_from([Op.LT, Op.LE]), min_size=1, max_size=2, unique=True))),
        missing=tuple(draw(st.lists(st.sampled_from(list(Missing)), min_size=1, max_size=4, unique=True))),
        cat_prob=0.4 if cat_features else 0.0,
        cat_features=cat_features,
        big_codes=draw(st.booleans()),
        float32_thresholds=draw(st.booleans()),
        linear_leaves=not vector and draw(st.booleans()),
        split_prob=draw(st.sampled_from([0.6, 0.9])),
    )
    kw = dict(
        n_trees=draw(st.integers(0, 8)) * (1 if vector else n_outputs) or 0,
        n_features=n_features,
        n_outputs=n_outputs,
        vector_leaves=vector,
        tree_kw=tree_kw,
        weights=draw(st.booleans()),
        bags=bags,
        transform=transform,
        transform_params=params,
        input_cast=draw(st.sampled_from(["float32", "float64"])),
        accumulate=draw(st.sampled_from(["float32", "float32_fused", "float64", "float64_kahan"])),
        input_zero_band=draw(st.sampled_from([0.0, LIGHTGBM_ZERO_BAND, 0.3])),
        categorical_rule=draw(st.sampled_from(["xgboost", "lightgbm", "sklearn"])),
        infinite_as_missing=draw(st.booleans()),
    )
    if bags > 1:
        kw["n_trees"] = max(kw["n_trees"], bags)
        kw["average_denominator"] = float(bags)
        kw["average_raw"] = draw(st.booleans())
    if linear_terms:
        k = draw(st.integers(1, 3))
        kw["linear_output"] = np.array([draw(st.integers(0, n_outputs - 1)) for _ in range(k)], np.int32)
        kw["linear_feature"] = np.array([draw(st.integers(0, n_features - 1)) for _ in range(k)], np.int32)
        kw["linear_weight"] = np.array([draw(st.sampled_from([0.5, -1.25, 3.0, 1e-3])) for _ in range(k)])
        kw["linear_skip_missing"] = draw(st.booleans())
    return draw(st.integers(0, 2**31)), kw, draw(st.sampled_from(STRATEGIES))
