"""The compiled TreeSHAP kernel (backends/cython/contrib.py) against the reference (ltrcompile.explain).

Different algorithms (quadrature over per-edge factor tables vs. the unique-path recursion), so
agreement is a real check: within 1e-12 where the source sums in double; where it sums in float
(XGBoost) both round each tree's double contributions to float, so they agree bit for bit except
where a tree's value lies within 1e-12 of a float rounding boundary (then by one float ulp).
Rows: the models' own edge cases (each threshold and one ulp either side, NaN, +-0, +-1e-36, huge,
invalid categories) plus real rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_c_compiler
from hypothesis import given, settings
from hypothesis import strategies as st
from test_explain import _rows, small_models

import ltrcompile
from ltrcompile.backends.cython import contrib
from ltrcompile.edgecases import edge_rows

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


def assert_same(ens, X):
    ref = ens.predict_contrib(X)
    ours = contrib.predict_contrib(ens, X)
    assert ours.shape == ref.shape
    if contrib.accumulates_in_float32(ens):
        ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
        bad = np.abs(ours - ref) > ulp * 1.0 + 1e-12
        assert not bad.any(), float(np.abs(ours - ref).max())
        assert np.mean(ours == ref) > 0.999
    else:
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    return float(np.abs(ours - ref).max())


def _edge(ens, X):
    return np.vstack([X[:100], edge_rows(ens, X, max_rows=400)])


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "binary:logistic", "max_depth": 5},
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 4},
        {"objective": "reg:squarederror", "max_depth": 6, "booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0},
    ],
    ids=["binary", "multiclass", "dart"],
)
def test_xgboost(tmp_path, params):
    X, y = _rows(seed=11)
    if params["objective"] == "binary:logistic":
        y = (y > np.median(y)).astype(float)
    elif params["objective"].startswith("multi"):
        y = np.digitize(y, np.quantile(y, [0.33, 0.66])).astype(float)
    b = xgb.train({**params, "eta": 0.3, "nthread": 1, "seed": 1}, xgb.DMatrix(X, y), 15)
    p = tmp_path / "m.json"
    b.save_model(str(p))
    ens = ltrcompile.load_model(str(p))
    Xe = _edge(ens, X)
    assert_same(ens, Xe)
    Xf = Xe[~(np.abs(Xe) > np.finfo(np.float32).max).any(axis=1)]  # DMatrix refuses inf, > float max
    ref = xgb.Booster(model_file=str(p)).predict(xgb.DMatrix(Xf), pred_contribs=True)
    assert np.abs(contrib.predict_contrib(ens, Xf) - ref).max() <= 1e-6


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "regression", "num_leaves": 31},
        {"objective": "regression", "num_leaves": 15, "zero_as_missing": True},
        {"objective": "regression", "num_leaves": 15, "use_missing": False},
        {"objective": "multiclass", "num_class": 3, "num_leaves": 7},
    ],
    ids=["nan", "zero", "none", "multiclass"],
)
def test_lightgbm(tmp_path, params):
    X, y = _rows(n=500, seed=12)
    if params["objective"] == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    m = lgb.train({**params, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}, lgb.Dataset(X, y), 20)
    p = tmp_path / "m.txt"
    m.save_model(str(p))
    ens = ltrcompile.load_model(str(p))
    Xe = _edge(ens, X)
    assert_same(ens, Xe)
    ref = lgb.Booster(model_file=str(p)).predict(Xe, pred_contrib=True)
    assert np.abs(contrib.predict_contrib(ens, Xe).reshape(ref.shape) - ref).max() <= 1e-6


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
    Xe = _edge(ens, X)
    assert_same(ens, Xe)
    assert np.abs(contrib.predict_contrib(ens, Xe) - lgb.Booster(model_file=str(p)).predict(Xe, pred_contrib=True)).max() <= 1e-6


def test_sklearn_forest_vector_leaves():
    from sklearn.ensemble import RandomForestClassifier

    X, y = _rows(seed=13, nan=0.0)
    clf = RandomForestClassifier(n_estimators=6, max_depth=6, random_state=0).fit(X, np.digitize(y, [0, 1]))
    ens = ltrcompile.load_model(clf)
    assert ens.leaf_dim == 3
    assert_same(ens, _edge(ens, X))


@settings(max_examples=80, deadline=None)
@given(small_models(), st.data())
def test_property_matches_reference(ens, data):
    F = ens.n_features
    vals = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 0.5, 0.7, 1.0, 3.0, 1e-36, np.nan, 1e300])
    rows = np.array(data.draw(st.lists(st.lists(vals, min_size=F, max_size=F), min_size=1, max_size=5)))
    assert_same(ens, rows)


def test_compiled_scorer_hook(tmp_path, private_build_cache):
    require_c_compiler()
    X, y = _rows(seed=14)
    m = lgb.train({"objective": "regression", "num_leaves": 15, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), 10)
    p = tmp_path / "m.txt"
    m.save_model(str(p))
    scorer = ltrcompile.compile(str(p))
    ens = ltrcompile.load_model(str(p))
    np.testing.assert_allclose(scorer.predict_contrib(X), ens.predict_contrib(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scorer.predict_contrib(X).sum(axis=1), scorer.predict(X, raw_score=True), rtol=0, atol=1e-9)


def test_no_covers_is_refused_by_the_kernel_too():
    ta = ltrcompile.TreeArrays.empty(3)
    ta.left[0], ta.right[0], ta.feature[0] = 1, 2, 0
    ens = ltrcompile.Ensemble.from_trees([ta], n_features=1)
    with pytest.raises(ltrcompile.UnsupportedModelError, match="no node covers"):
        contrib.predict_contrib(ens, np.zeros((1, 1)))
