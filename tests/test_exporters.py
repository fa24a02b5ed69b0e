"""Exporters: export -> load back -> the same scores, against the source library where there is one.

Each target has its own input domain: RankLib and the o19s plugin read float32 values (so rows are
rounded to float32 first), Elasticsearch reads doubles but treats +-inf as missing (so rows with an
infinity are left out for models that do not come from Elasticsearch). Within those domains an
exact export must reproduce every bit; ``exact=False`` exports must decide every split the same way.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from conftest import assert_bit_equal, load_letor

from ltrcompile.edgecases import edge_rows
from ltrcompile.errors import UnsupportedModelError
from ltrcompile.exporters import ExportApproximationWarning, export_model
from ltrcompile.frontends import elasticsearch as es
from ltrcompile.frontends import load_model
from ltrcompile.frontends import ranklib as rl

DATA = Path(__file__).parent / "data" / "ranklib"
NAMES = [f"f{i}" for i in range(300)]


def f32_rows(E):
    with np.errstate(over="ignore"):
        return E.astype(np.float32).astype(np.float64)


def finite_rows(E):
    return E[~np.isinf(E).any(axis=1)]


def no_inf32(E):
    with np.errstate(over="ignore"):
        return E[~np.isinf(E.astype(np.float32)).any(axis=1)]


def reload(out, to, ens):
    if to == "ranklib":
        return rl.loads(out, n_features=ens.n_features)
    if to == "o19s":
        return es.from_object(out, feature_set=ens.feature_names or NAMES[: ens.n_features])
    return load_model(out)


@pytest.fixture(scope="module")
def letor():
    return load_letor(DATA / "test.letor", n_features=300)[0]


@pytest.fixture(scope="module")
def nan_data(rank_data):
    Xtr, ytr, gtr, Xte, _, _ = rank_data
    rng = np.random.default_rng(7)
    Xtr = Xtr.copy()
    Xtr[rng.random(Xtr.shape) < 0.05] = np.nan
    Xte = f32_rows(Xte)
    Xn = Xte.copy()
    Xn[rng.random(Xn.shape) < 0.05] = np.nan
    return Xtr, ytr, gtr, Xte, Xn


# ============================================================================ RankLib models
@pytest.mark.parametrize("name", ["mart", "rf_lambdamart", "rankboost", "coordinate_ascent", "linear_regression", "adarank"])
@pytest.mark.parametrize("to", ["ranklib", "o19s"])
def test_ranklib_models_round_trip(name, to, letor):
    ens = load_model(DATA / f"{name}.model.txt", n_features=300)
    out = export_model(ens, to=to)
    if to == "o19s":
        assert out["model"]["model"]["type"] == "model/ranklib"
    back = reload(out, to, ens)
    ref = np.loadtxt(DATA / f"{name}.scores.tsv", usecols=2)
    assert_bit_equal(back.predict(letor, raw_score=True), ref, "reloaded export vs RankLib's scores")
    E = f32_rows(edge_rows(ens, letor, max_rows=4000))
    assert_bit_equal(back.predict(E, raw_score=True), ens.predict(E, raw_score=True), "edge rows")


def test_ranklib_text_numbers_are_java_literals():
    ens = load_model(DATA / "lambdamart.model.txt")
    text = export_model(ens, to="ranklib")
    assert text.startswith("## LambdaMART\n")
    import re

    for tok in re.findall(r"<(?:threshold|output)> (\S+) <", text) + re.findall(r'weight="([^"]+)"', text):
        rl.java_float(tok)  # Float.parseFloat accepts it
    assert "e" not in "".join(re.findall(r"<threshold> (\S+) <", text))  # Java exponent letter is E


# ============================================================================ XGBoost
@pytest.fixture(scope="module")
def xgb_models(nan_data):
    Xtr, ytr, gtr, _, _ = nan_data
    d = xgb.DMatrix(Xtr, ytr)
    d.set_group(gtr)
    common = {"max_depth": 4, "nthread": 1, "tree_method": "hist"}
    return {
        "ndcg": xgb.train({"objective": "rank:ndcg", **common}, d, 15),
        "squarederror": xgb.train({"objective": "reg:squarederror", **common}, xgb.DMatrix(Xtr, ytr), 10),
        "dart": xgb.train({"booster": "dart", "rate_drop": 0.3, "objective": "reg:squarederror", "seed": 1, **common},
                          xgb.DMatrix(Xtr, ytr), 8),
    }


def _margin(bst, X):
    return bst.predict(xgb.DMatrix(np.asarray(X, np.float32)), output_margin=True).astype(np.float64)


@pytest.mark.parametrize("kind", ["ndcg", "squarederror", "dart"])
def test_xgboost_to_o19s_is_exact(kind, xgb_models, nan_data):
    bst = xgb_models[kind]
    ens = load_model(bst)
    out = export_model(ens, to="o19s")
    assert out["model"]["model"]["type"] == "model/xgboost+json"
    if float(ens.base_score[0]) != 0.0:
        assert out["model"]["model"]["definition"][0] == {"nodeid": 0, "leaf": float(np.float32(ens.base_score[0]))}
    back = reload(out, "o19s", ens)
    Xn = nan_data[4]
    E = no_inf32(f32_rows(np.vstack([edge_rows(ens, Xn, max_rows=4000), Xn])))
    assert_bit_equal(back.predict(E), _margin(bst, E), f"{kind}: plugin model vs XGBoost margin")


def test_xgboost_to_ranklib_only_nan_differs(xgb_models, nan_data):
    bst = xgb_models["ndcg"]
    ens = load_model(bst)
    with pytest.raises(UnsupportedModelError, match="NaN goes") as e:
        export_model(ens, to="ranklib")
    assert e.value.tree is not None and e.value.node is not None
    with pytest.warns(ExportApproximationWarning, match="NaN"):
        text = export_model(ens, to="ranklib", exact=False)
    back = reload(text, "ranklib", ens)
    Xte = nan_data[3]  # no NaN: the only approximation is NaN handling
    E = edge_rows(ens, Xte, max_rows=4000)
    E = no_inf32(f32_rows(E[~np.isnan(E).any(axis=1)]))
    assert_bit_equal(back.predict(E), _margin(bst, E), "RankLib float sums == XGBoost float sums")


def test_xgboost_to_es_needs_exact_false(xgb_models, nan_data):
    bst = xgb_models["ndcg"]
    ens = load_model(bst)
    with pytest.raises(UnsupportedModelError, match="accumulation 'float32'"):
        export_model(ens, to="es")
    with pytest.warns(ExportApproximationWarning):
        body = export_model(ens, to="es", exact=False)
    back = load_model(body)
    Xn = nan_data[4]
    E = no_inf32(finite_rows(np.vstack([edge_rows(ens, Xn, max_rows=4000), Xn])))
    ours, ref = back.predict(E), _margin(bst, E)
    assert np.max(np.abs(ours - ref)) <= 1e-5  # float32 sum vs double sum only: same leaves
    assert np.max(np.abs(ours - ref)) > 0  # and the difference is real, which is why exact refuses


def test_xgboost_transform_needs_exact_false(xgb_models, nan_data):
    Xtr, ytr = nan_data[0], nan_data[1]
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, xgb.DMatrix(Xtr, (ytr > 1).astype(float)), 5)
    ens = load_model(bst)
    for to in ("o19s", "es", "ranklib"):
        with pytest.raises(UnsupportedModelError, match="transform|sigmoid"):
            export_model(ens, to=to)
    with pytest.warns(ExportApproximationWarning):
        out = export_model(ens, to="o19s", exact=False)
    assert out["model"]["model"]["definition"]["objective"] == "binary:logistic"


# ============================================================================ LightGBM
def test_lightgbm_exports(rank_data):
    lgb = pytest.importorskip("lightgbm")
    pytest.importorskip("ltrcompile.frontends.lightgbm")
    Xtr, ytr, gtr, Xte, _, _ = rank_data
    m = lgb.train({"objective": "lambdarank", "num_leaves": 8, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
                  lgb.Dataset(Xtr, ytr, group=gtr), 12)
    ens = load_model(m)
    native = m.predict(Xte, raw_score=True)
    for to in ("es", "o19s", "ranklib"):
        with pytest.raises(UnsupportedModelError, match="float64"):
            export_model(ens, to=to)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExportApproximationWarning)
            out = export_model(ens, to=to, exact=False)
        back = reload(out, to, ens)
        X = Xte if to == "es" else f32_rows(Xte)  # RankLib and the plugin read float32 (this data is 2-decimal)
        tol = 1e-12 if to == "es" else 2e-6
        assert np.max(np.abs(back.predict(X, raw_score=True) - native)) <= tol, to
    # edge rows: decisions (zero band included) survive the conversion; only summation rounding differs
    E = finite_rows(np.vstack([edge_rows(ens, Xte, max_rows=4000), Xte]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportApproximationWarning)
        back = load_model(export_model(ens, to="es", exact=False))
    assert np.max(np.abs(back.predict(E) - m.predict(E, raw_score=True))) <= 1e-12


def test_lightgbm_categorical_and_zero_as_missing_refused(rank_data):
    lgb = pytest.importorskip("lightgbm")
    pytest.importorskip("ltrcompile.frontends.lightgbm")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, (400, 3)).astype(float)
    y = (X[:, 0] == 2) + rng.normal(0, 0.1, 400)
    cat = lgb.train({"objective": "regression", "num_leaves": 4, "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1},
                    lgb.Dataset(X, y, categorical_feature=[0]), 3)
    for to in ("es", "o19s", "ranklib"):
        with pytest.raises(UnsupportedModelError, match="categorical") as e:
            export_model(load_model(cat), to=to, exact=False)
        assert e.value.field == "categorical" and e.value.tree is not None
    zam = lgb.train({"objective": "regression", "num_leaves": 4, "verbose": -1, "zero_as_missing": True},
                    lgb.Dataset(X[:, 1:], y), 3)
    with pytest.raises(UnsupportedModelError, match="zero_as_missing"):
        export_model(load_model(zam), to="es", exact=False)


# ============================================================================ scikit-learn
def test_sklearn_tree_to_es_is_exact(rank_data):
    pytest.importorskip("ltrcompile.frontends.sklearn")
    from sklearn.tree import DecisionTreeRegressor

    Xtr, ytr, _, Xte, _, _ = rank_data
    dt = DecisionTreeRegressor(max_depth=6, random_state=0).fit(Xtr, ytr)
    ens = load_model(dt)
    back = load_model(export_model(ens, to="es"))
    E = finite_rows(np.vstack([edge_rows(ens, Xte, max_rows=4000), Xte]))
    with np.errstate(over="ignore"):
        sk_ok = ~np.isnan(E).any(axis=1) & ~np.isinf(E.astype(np.float32)).any(axis=1)
    # scikit-learn refuses NaN (tree trained without it) and values beyond float32: those rows are
    # checked against the IR (missing_go_to_left, float32 cast) instead
    assert_bit_equal(back.predict(E[sk_ok]), dt.predict(E[sk_ok]), "ES double compare of the float32-boundary thresholds")
    assert_bit_equal(back.predict(E[~sk_ok]), ens.predict(E[~sk_ok]), "NaN and huge rows")


def test_sklearn_ensembles_approximate(rank_data):
    pytest.importorskip("ltrcompile.frontends.sklearn")
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

    Xtr, ytr, _, Xte, _, _ = rank_data
    for est in (GradientBoostingRegressor(n_estimators=8, max_depth=3, random_state=0),
                RandomForestRegressor(n_estimators=4, max_depth=4, random_state=0, n_jobs=1)):
        est.fit(Xtr, ytr)
        ens = load_model(est)
        E = finite_rows(np.vstack([edge_rows(ens, Xte, max_rows=3000), Xte]))
        E = no_inf32(E[~np.isnan(E).any(axis=1)])  # these estimators refuse NaN and float32 overflow
        for to in ("es", "ranklib"):
            with pytest.raises(UnsupportedModelError):
                export_model(ens, to=to)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExportApproximationWarning)
                back = reload(export_model(ens, to=to, exact=False), to, ens)
            X = E if to == "es" else f32_rows(E)
            tol = 1e-12 if to == "es" else 1e-5
            assert np.max(np.abs(back.predict(X) - est.predict(X))) <= tol, (type(est).__name__, to)


# ============================================================================ Elasticsearch-origin models
def test_es_native_round_trip_keeps_everything():
    trees = []
    rng = np.random.default_rng(5)
    for k in range(6):
        thr = float(rng.normal())
        trees.append({"tree": {"feature_names": ["a", "b"], "tree_structure": [
            {"node_index": 0, "split_feature": k % 2, "threshold": thr, "decision_type": ["lte", "lt", "gt", "gte"][k % 4],
             "default_left": bool(k % 3), "left_child": 1, "right_child": 2},
            {"node_index": 1, "leaf_value": float(rng.normal())}, {"node_index": 2, "leaf_value": float(rng.normal()) * 1e-9}]}})
    doc = {"trained_model": {"ensemble": {"feature_names": ["a", "b"], "target_type": "regression",
                                          "aggregate_output": {"weighted_sum": {"weights": [0.5, 1, 2, 1e-3, 3, 1]}},
                                          "trained_models": trees}}}
    ens = es.from_object(doc)
    back = load_model(export_model(ens, to="es"))
    assert back.accumulate == "float64_kahan" and back.infinite_as_missing
    E = np.vstack([edge_rows(ens, max_rows=2000), [[np.inf, -np.inf], [np.nan, 0.0]]])
    assert_bit_equal(back.predict(E), ens.predict(E), "ES -> ES")


def test_o19s_linear_round_trip():
    doc = {"model": {"name": "lin", "model": {"type": "model/linear", "definition": {"a": 0.5, "c": -1.25},
                                              "feature_normalizers": {"a": {"standard": {"mean": 3, "standard_deviation": 2}}}}}}
    ens = es.from_object(doc, feature_set=["a", "b", "c"])
    out = export_model(ens, to="o19s", name="lin")
    assert out == {"model": {"name": "lin", "model": {"type": "model/linear", "definition": {"a": 0.5, "c": -1.25},
                                                        "feature_normalizers": {"a": {"standard": {"mean": 3.0, "standard_deviation": 2.0}}}}}}
    back = es.from_object(out, feature_set=["a", "b", "c"])
    X = np.random.default_rng(0).normal(size=(100, 3)) * 10
    X[::7, 0] = np.nan
    assert_bit_equal(back.predict(X), ens.predict(X), "linear")


def test_export_api_errors(xgb_models):
    ens = load_model(xgb_models["ndcg"])
    with pytest.raises(ValueError, match="unknown export target"):
        export_model(ens, to="onnx")
    with pytest.raises(TypeError):
        export_model(ens, to="ranklib", bogus=1)
    defn = export_model(ens, to="o19s", body="definition")
    assert isinstance(defn, list) and json.loads(json.dumps(defn)) == defn
    with pytest.warns(ExportApproximationWarning):
        assert set(export_model(ens, to="es", exact=False, what="definition")) == {"trained_model"}
