"""TreeSHAP contributions (ltrcompile.explain) against each library's own, on models reloaded from file.

Every case checks: the shape/layout the library returns, max |ours - theirs| (1e-6; XGBoost works in
float32, LightGBM in double), and efficiency (each row sums to the raw margin) on every row. An
independent brute-force Shapley computation (all coalitions, cover-weighted expectations) checks the
recursion itself on random small trees, including repeated features, NaN and categorical splits.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ltrcompile
from ltrcompile import Ensemble, Missing, Op, TreeArrays
from ltrcompile.explain import CoverMissingError

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

TOL = 1e-6


def _rows(n=300, f=6, seed=0, nan=0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    X[rng.random(X.shape) < nan] = np.nan
    X[:5, :] = 0.0  # zero rows (LightGBM zero/None missing types)
    if nan:
        X[5, :] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 1]) ** 2 + rng.normal(size=n) * 0.1
    return X, y


def _check(ens: Ensemble, X: np.ndarray, ref: np.ndarray, tol: float = TOL) -> float:
    ours = ens.predict_contrib(X)
    assert ours.shape == ref.shape
    delta = float(np.abs(ours - ref).max())
    assert delta <= tol, delta
    raw = ens.predict(X, raw_score=True)
    total = ours.sum(axis=-1)
    # the trees' margins are float32 sums where the source adds in float32
    eff_tol = 1e-5 if ens.accumulate.startswith("float32") else 1e-9
    np.testing.assert_allclose(total, raw, rtol=0, atol=eff_tol * max(1.0, float(np.abs(raw).max())))
    return delta


# ------------------------------------------------------------------ XGBoost
def _xgb_roundtrip(tmp_path, booster, suffix=".json"):
    p = tmp_path / f"m{suffix}"
    booster.save_model(str(p))
    reloaded = xgb.Booster(model_file=str(p))
    return ltrcompile.load_model(str(p)), reloaded


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "rank:ndcg", "max_depth": 5},
        {"objective": "binary:logistic", "max_depth": 4},
        {"objective": "reg:squarederror", "max_depth": 6, "booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0},
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 4},
        {"objective": "reg:squarederror", "max_depth": 3, "num_parallel_tree": 3, "subsample": 0.7},
    ],
    ids=["rank_ndcg", "binary", "dart", "multiclass", "forest"],
)
@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_pred_contribs(tmp_path, params, suffix):
    X, y = _rows()
    kw = {}
    if params["objective"] == "rank:ndcg":
        kw["qid"] = np.repeat(np.arange(30), 10)
        y = np.clip(np.round(y), 0, 4)
    elif params["objective"] == "binary:logistic":
        y = (y > np.median(y)).astype(float)
    elif params["objective"].startswith("multi"):
        y = np.digitize(y, np.quantile(y, [0.33, 0.66])).astype(float)
    d = xgb.DMatrix(X, y, **kw)
    b = xgb.train({**params, "eta": 0.3, "nthread": 1, "seed": 1}, d, 12)
    ens, reloaded = _xgb_roundtrip(tmp_path, b, suffix)
    ref = reloaded.predict(xgb.DMatrix(X), pred_contribs=True)
    if params.get("booster") == "dart":
        assert not np.all(ens.tree_weight == 1.0)  # DART weights are exercised
    _check(ens, X, ref.astype(np.float64))


def test_xgboost_categorical(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame(
        {
            "c": pd.Categorical(rng.integers(0, 12, n)),
            "x": rng.normal(size=n),
            "d": pd.Categorical(rng.integers(0, 5, n)),
        }
    )
    y = (df["c"].cat.codes % 3) + df["x"] + (df["d"].cat.codes == 2)
    d = xgb.DMatrix(df, y, enable_categorical=True)
    b = xgb.train({"max_depth": 4, "eta": 0.3, "nthread": 1, "max_cat_to_onehot": 1}, d, 10)
    ens, reloaded = _xgb_roundtrip(tmp_path, b)
    assert ens.categorical.any()
    Xn = np.column_stack([df["c"].cat.codes, df["x"], df["d"].cat.codes]).astype(float)
    Xn[:3, 0] = [np.nan, 40.0, -1.0]  # missing, unseen, invalid categories
    dq = xgb.DMatrix(
        pd.DataFrame(
            {
                "c": pd.Categorical.from_codes(np.where(np.isnan(Xn[:, 0]) | (Xn[:, 0] > 11) | (Xn[:, 0] < 0), -1, Xn[:, 0]).astype(int), categories=df["c"].cat.categories),
                "x": Xn[:, 1],
                "d": pd.Categorical.from_codes(Xn[:, 2].astype(int), categories=df["d"].cat.categories),
            }
        ),
        enable_categorical=True,
    )
    Xn[1:3, 0] = np.nan  # pandas codes -1 are missing to XGBoost
    ref = reloaded.predict(dq, pred_contribs=True)
    _check(ens, Xn, ref.astype(np.float64))


def test_xgboost_dump_with_stats(tmp_path):
    X, y = _rows(seed=4)
    b = xgb.train({"max_depth": 4, "eta": 0.3, "nthread": 1}, xgb.DMatrix(X, y), 8)
    p = tmp_path / "dump.json"
    b.dump_model(str(p), with_stats=True, dump_format="json")
    ens = ltrcompile.load_model(str(p), format="xgboost-dump", n_features=X.shape[1])
    assert ens.cover is not None
    ref = b.predict(xgb.DMatrix(X), pred_contribs=True).astype(np.float64)
    ours = ens.predict_contrib(X)
    # dumps carry no base_score: only the bias column differs, by exactly the base margin
    assert np.abs(ours[:, :-1] - ref[:, :-1]).max() <= TOL
    shift = ref[:, -1] - ours[:, -1]
    assert np.ptp(shift) <= TOL


def test_xgboost_dump_without_stats_is_refused(tmp_path):
    X, y = _rows(seed=5)
    b = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, y), 3)
    p = tmp_path / "dump.json"
    b.dump_model(str(p), with_stats=False, dump_format="json")
    ens = ltrcompile.load_model(str(p), format="xgboost-dump", n_features=X.shape[1])
    with pytest.raises(CoverMissingError, match="cover"):
        ens.predict_contrib(X[:2])


# ------------------------------------------------------------------ LightGBM
@pytest.mark.parametrize(
    "params",
    [
        {"objective": "regression", "num_leaves": 15},
        {"objective": "regression", "num_leaves": 15, "zero_as_missing": True},
        {"objective": "regression", "num_leaves": 15, "use_missing": False},
        {"objective": "multiclass", "num_class": 3, "num_leaves": 7},
        {"objective": "binary", "num_leaves": 31, "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7},
    ],
    ids=["nan_missing", "zero_missing", "none_missing", "multiclass", "rf"],
)
def test_lightgbm_pred_contrib(tmp_path, params):
    X, y = _rows(n=500, seed=1)
    if params["objective"] == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    elif params["objective"] == "binary":
        y = (y > np.median(y)).astype(float)
    m = lgb.train({**params, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "seed": 1}, lgb.Dataset(X, y), 15)
    p = tmp_path / "m.txt"
    m.save_model(str(p))
    reloaded = lgb.Booster(model_file=str(p))
    ref = reloaded.predict(X, pred_contrib=True)
    ens = ltrcompile.load_model(str(p))
    # LightGBM lays classes out flat: (n, K * (F + 1)) is our (n, K, F + 1) row-major
    K = ens.n_outputs
    _check(ens, X, ref if K == 1 else ref.reshape(X.shape[0], K, X.shape[1] + 1))


def test_lightgbm_lambdarank_early_stopping(tmp_path, rank_data):
    Xtr, ytr, gtr, Xte, yte, gte = rank_data
    m = lgb.train(
        {"objective": "lambdarank", "num_leaves": 15, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 20},
        lgb.Dataset(Xtr, ytr, group=gtr),
        60,
        valid_sets=[lgb.Dataset(Xte, yte, group=gte)],
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    assert 0 < m.best_iteration < 60
    p = tmp_path / "rank.txt"
    m.save_model(str(p), num_iteration=-1)
    reloaded = lgb.Booster(model_file=str(p))
    X = Xte[:200]
    for it in (None, m.best_iteration):
        ens = ltrcompile.load_model(str(p), num_iteration=it)
        _check(ens, X, reloaded.predict(X, pred_contrib=True, num_iteration=it if it else -1))


def test_lightgbm_categorical(tmp_path):
    rng = np.random.default_rng(7)
    n = 600
    X = np.column_stack([rng.integers(0, 20, n), rng.normal(size=n), rng.integers(0, 6, n)]).astype(float)
    y = (X[:, 0] % 4 == 1) * 2.0 + X[:, 1] + (X[:, 2] == 3)
    m = lgb.train(
        {"objective": "regression", "num_leaves": 15, "verbose": -1, "num_threads": 1, "min_data_per_group": 5,
         "cat_smooth": 1, "max_cat_to_onehot": 4, "min_data_in_leaf": 5},
        lgb.Dataset(X, y, categorical_feature=[0, 2]),
        15,
    )
    p = tmp_path / "cat.txt"
    m.save_model(str(p))
    ens = ltrcompile.load_model(str(p))
    assert ens.categorical.any()
    Xq = X[:100].copy()
    Xq[:4, 0] = [np.nan, 99.0, -3.0, 2.7]  # missing, unseen, negative, non-integer
    _check(ens, Xq, lgb.Booster(model_file=str(p)).predict(Xq, pred_contrib=True))


# ------------------------------------------------------------------ scikit-learn vs shap
def _sk_models():
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeRegressor

    return [
        DecisionTreeRegressor(max_depth=5, random_state=0),
        RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0),
        ExtraTreesRegressor(n_estimators=6, max_depth=4, random_state=0),
        GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0),
        GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0),
        HistGradientBoostingRegressor(max_iter=10, random_state=0),
        RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0),
    ]


@pytest.mark.parametrize("model", _sk_models(), ids=lambda m: type(m).__name__)
def test_sklearn_against_shap(tmp_path, model):
    shap = pytest.importorskip("shap", reason="optional reference: pip install shap (not in the test extra)")
    joblib = pytest.importorskip("joblib")
    X, y = _rows(seed=2, nan=0.0)
    if "Classifier" in type(model).__name__:
        y = np.digitize(y, np.quantile(y, [0.5] if "Gradient" in type(model).__name__ else [0.33, 0.66]))
    model.fit(X, y)
    p = tmp_path / "m.joblib"
    joblib.dump(model, p)
    ens = ltrcompile.load_model(str(p), format="sklearn-pickle")
    explainer = shap.TreeExplainer(joblib.load(p), feature_perturbation="tree_path_dependent")
    sv = np.asarray(explainer.shap_values(X, check_additivity=False))
    ev = np.ravel(explainer.expected_value)
    if sv.ndim == 3:  # shap: (n, F, K) per class -> ours (n, K, F + 1)
        ref = np.concatenate([np.moveaxis(sv, 2, 1), np.broadcast_to(ev[None, :, None], (X.shape[0], ev.size, 1))], axis=2)
    else:
        ref = np.column_stack([sv, np.full(X.shape[0], ev[0])])
    _check(ens, X, ref)


@pytest.mark.parametrize("model", _sk_models(), ids=lambda m: type(m).__name__)
def test_sklearn_against_brute_force(tmp_path, model):
    """Always runs (shap is not a test dependency: its numba needs llvmlite >= 0.45, which breaks the
    lleaves peer in the bench extra): the reloaded pickle against the independent brute force."""
    joblib = pytest.importorskip("joblib")
    X, y = _rows(seed=2, nan=0.0)
    if "Classifier" in type(model).__name__:
        y = np.digitize(y, np.quantile(y, [0.5] if "Gradient" in type(model).__name__ else [0.33, 0.66]))
    model.fit(X, y)
    p = tmp_path / "m.joblib"
    joblib.dump(model, p)
    ens = ltrcompile.load_model(str(p), format="sklearn-pickle")
    rows = X[::50][:6]
    ours = ens.predict_contrib(rows).reshape(len(rows), ens.n_outputs, ens.n_features + 1)
    for i, x in enumerate(rows):
        np.testing.assert_allclose(ours[i], brute_force_shap(ens, x), rtol=0, atol=1e-9)


# ------------------------------------------------------------------ formats without covers
def test_ranklib_has_no_covers():
    from pathlib import Path

    model = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ranklib" / "lambdamart.model.txt"
    if not model.exists():
        model = next(Path(__file__).parent.glob("data/**/*lambdamart*.txt"), None)
    if model is None or not model.exists():
        pytest.skip("no RankLib LambdaMART model in this checkout")
    ens = ltrcompile.load_model(str(model))
    assert ens.cover is None
    with pytest.raises(CoverMissingError, match="carries no node covers"):
        ens.predict_contrib(np.zeros((1, ens.n_features)))


# ------------------------------------------------------------------ brute force (independent)
def brute_force_shap(ens: Ensemble, x: np.ndarray) -> np.ndarray:
    """Shapley values of v(S) = E[f | x_S] (cover-weighted, Lundberg's Algorithm 1), by enumerating
    every coalition. Decisions come from the interpreter's leaf walk on crafted rows, not its rules:
    a node's branch for the row is the side ``predict_leaf`` reaches when only that node matters."""
    F = ens.n_features
    assert ens.cover is not None
    left_of = _decisions_by_walking(ens, x)

    def value(S: frozenset[int]) -> np.ndarray:
        total = np.zeros(ens.n_outputs)
        for t in range(ens.n_trees):

            def g(node: int) -> np.ndarray:
                if ens.left[node] < 0:
                    return ens.leaf_value[node]
                lo, hi = int(ens.left[node]), int(ens.right[node])
                if int(ens.feature[node]) in S:
                    return g(lo if left_of[node] else hi)
                c = ens.cover[node]
                return (ens.cover[lo] * g(lo) + ens.cover[hi] * g(hi)) / c

            v = g(int(ens.tree_offset[t])) * ens.tree_weight[t]
            if ens.leaf_dim > 1:
                total += v
            else:
                total[ens.tree_output[t]] += v[0]
        return total

    phi = np.zeros((ens.n_outputs, F + 1))
    vals = {S: value(frozenset(S)) for r in range(F + 1) for S in itertools.combinations(range(F), r)}
    for j in range(F):
        others = [k for k in range(F) if k != j]
        for r in range(F):
            w = math.factorial(r) * math.factorial(F - r - 1) / math.factorial(F)
            for S in itertools.combinations(others, r):
                phi[:, j] += w * (vals[tuple(sorted(S + (j,)))] - vals[S])
    phi[:, F] = vals[()] + ens.base_score
    if ens.average_denominator is not None and ens.average_raw:  # raw = (trees + base) / denominator
        phi /= ens.average_denominator
    return phi


def _decisions_by_walking(ens: Ensemble, x: np.ndarray) -> dict[int, bool]:
    """Each internal node's branch for row ``x``: score a copy of the tree re-rooted at that node
    with leaves marking the sides (via the interpreter's ``predict_leaf`` on the real row)."""
    out = {}
    for node in np.flatnonzero(ens.left >= 0):
        ta = TreeArrays.empty(3, op=Op(int(ens.op[node])), missing=Missing(int(ens.missing[node])))
        for name in ("feature", "threshold", "default_left", "categorical", "cat_left"):
            getattr(ta, name)[0] = getattr(ens, name)[node]
        ta.left[0], ta.right[0] = 1, 2
        ta.leaf_id[1:] = [1, 2]
        if ens.categorical[node]:
            ta.cat_sets[0] = ens.categories[ens.cat_begin[node] : ens.cat_end[node]]
        one = Ensemble.from_trees([ta], n_features=ens.n_features, categorical_rule=ens.categorical_rule)
        out[int(node)] = bool(one.predict_leaf(x[None, :])[0, 0] == 1)
    return out


@st.composite
def small_models(draw):
    F = draw(st.integers(2, 4))
    K = draw(st.sampled_from([1, 1, 2]))
    trees = []
    for _ in range(draw(st.integers(1, 3))):
        depth = draw(st.integers(1, 4))
        n = 2 ** (depth + 1) - 1
        ta = TreeArrays.empty(n, op=draw(st.sampled_from([Op.LE, Op.LT])), missing=Missing.NAN_DEFAULT)
        cover = np.zeros(n)
        internal = [i for i in range(n) if 2 * i + 2 < n]
        for i in internal:
            ta.left[i], ta.right[i] = 2 * i + 1, 2 * i + 2
            ta.feature[i] = draw(st.integers(0, F - 1))  # repeats along a path are common
            ta.threshold[i] = draw(st.sampled_from([-1.0, 0.0, 0.5, 1.0]))
            ta.default_left[i] = draw(st.booleans())
            if draw(st.integers(0, 5)) == 0:
                ta.categorical[i] = 1
                ta.cat_left[i] = 1
                ta.cat_sets[i] = np.array(sorted(draw(st.sets(st.integers(0, 3), min_size=1, max_size=3))))
        for i in range(n - 1, -1, -1):
            if i in internal:
                cover[i] = cover[2 * i + 1] + cover[2 * i + 2]
            else:
                cover[i] = draw(st.integers(1, 20))
                ta.leaf_value[i, 0] = draw(st.floats(-3, 3, allow_nan=False, width=32))
                ta.leaf_id[i] = i
        ta.cover = cover
        trees.append(ta)
    weight = draw(st.lists(st.sampled_from([1.0, 0.5, 2.0]), min_size=len(trees), max_size=len(trees)))
    out = draw(st.lists(st.integers(0, K - 1), min_size=len(trees), max_size=len(trees)))
    return Ensemble.from_trees(
        trees, n_features=F, n_outputs=K, tree_output=out, tree_weight=weight, base_score=[0.25] * K,
        categorical_rule="lightgbm",
    )


@settings(max_examples=60, deadline=None)
@given(small_models(), st.data())
def test_matches_brute_force_shapley(ens, data):
    F = ens.n_features
    x = np.array(data.draw(st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 0.7, 1.0, 3.0, np.nan]), min_size=F, max_size=F)))
    ours = ens.predict_contrib(x[None, :])
    ours = ours.reshape(1, ens.n_outputs, F + 1)[0]
    ref = brute_force_shap(ens, x)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    raw = np.atleast_1d(ens.predict(x[None, :], raw_score=True)[0])
    np.testing.assert_allclose(ours.sum(axis=1), raw, rtol=0, atol=1e-9)


def test_cover_round_trips_through_ir_json(tmp_path):
    X, y = _rows(seed=6)
    b = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, y), 3)
    p = tmp_path / "m.json"
    b.save_model(str(p))
    ens = ltrcompile.load_model(str(p))
    back = Ensemble.from_json(ens.to_json())
    assert back.cover is not None and np.array_equal(back.cover, ens.cover)
    assert back.digest() == ens.digest()


def test_bad_cover_is_refused():
    ta = TreeArrays.empty(3)
    ta.left[0], ta.right[0], ta.feature[0] = 1, 2, 0
    ta.cover = np.array([2.0, -1.0, 3.0])
    with pytest.raises(ltrcompile.IRValidationError, match="cover"):
        Ensemble.from_trees([ta], n_features=1)
