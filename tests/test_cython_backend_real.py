"""Cython backend on real models: compiled == interpreter == the source library.

Models are trained here with xgboost / lightgbm / scikit-learn (small, one thread), saved, reloaded
through ``ltrcompile.load_model(path)``, compiled, and scored on real rows plus the model's edge rows.
Expected values come from the library itself (the reloaded model's own predictions) or from files
RankLib wrote. Raw margins are compared bit for bit; transformed outputs bit for bit against the
interpreter and within the frontend's documented ulp budget against the library.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal, load_letor, require_c_compiler, ulp_diff

from ltrcompile import load_model
from ltrcompile.backends.cython import compile as cy_compile
from ltrcompile.edgecases import edge_rows

require_c_compiler()
pytestmark = pytest.mark.usefixtures("private_build_cache")

DATA = Path(__file__).parent / "data"


def need_frontend(name: str) -> None:
    try:
        importlib.import_module(f"ltrcompile.frontends.{name}")
    except ModuleNotFoundError:
        pytest.skip(f"the {name} frontend (ltrcompile/frontends/{name}.py) is not committed yet")


def rows(ens, background: np.ndarray, n_edge: int = 2500) -> np.ndarray:
    return np.vstack([background, edge_rows(ens, background, max_rows=n_edge, seed=7)])


def compiled_vs_interpreter(ens, X: np.ndarray, strategies=("datadriven", "ifelse")):
    """Build every strategy; assert compiled == interpreter (raw, output, leaves, one row)."""
    out = {}
    for strategy in strategies:
        s = cy_compile(ens, strategy=strategy, progress=False)
        for dt in (np.float64, np.float32):
            Xd = X.astype(dt)
            assert_bit_equal(s.predict(Xd, raw_score=True), ens.predict(Xd, raw_score=True), f"{strategy} {dt} raw")
            assert_bit_equal(s.predict(Xd), ens.predict(Xd), f"{strategy} {dt} output")
            np.testing.assert_array_equal(s.predict_leaf(Xd), ens.predict_leaf(Xd))
        want = ens.predict(X)
        for i in range(0, len(X), max(1, len(X) // 25)):
            assert_bit_equal(np.asarray(s.predict_one(X[i])), want[i], f"{strategy} predict_one {i}")
        out[strategy] = s
    return out


# ---------------------------------------------------------------------- XGBoost
@pytest.fixture(scope="module")
def xgb():
    need_frontend("xgboost")
    return pytest.importorskip("xgboost")


def xgb_accepts(X: np.ndarray) -> np.ndarray:
    """Rows XGBoost's DMatrix takes: no +-inf after the float32 cast (NaN is missing)."""
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    return ~np.any(np.isinf(X32), axis=1)


def _xgb_native(xgb, path: Path, X: np.ndarray):
    b = xgb.Booster(model_file=str(path))
    b.set_param({"nthread": 1})
    d = xgb.DMatrix(X, missing=np.nan, nthread=1)
    return (
        b.predict(d, output_margin=True),
        b.predict(d),
        b.predict(d, pred_leaf=True).astype(np.int64),
    )


def test_xgboost_ranker(xgb, rank_data, tmp_path):
    Xtr, ytr, gtr, Xte, _, _ = rank_data
    d = xgb.DMatrix(Xtr, ytr, nthread=1)
    d.set_group(gtr)
    b = xgb.train({"objective": "rank:ndcg", "max_depth": 5, "eta": 0.1, "nthread": 1, "tree_method": "hist"}, d, 40)
    path = tmp_path / "xgb_rank.json"
    b.save_model(str(path))
    ens = load_model(path)
    X = rows(ens, Xte)
    sc = compiled_vs_interpreter(ens, X)
    X = X[xgb_accepts(X)]
    raw, out, leaf = _xgb_native(xgb, path, X)
    for s in sc.values():
        assert_bit_equal(s.predict(X, raw_score=True), raw, "vs xgboost margin")
        assert_bit_equal(s.predict(X), out, "vs xgboost predict")
        np.testing.assert_array_equal(s.predict_leaf(X), leaf)


def test_xgboost_binary_with_missing_values_and_multiclass(xgb, binary_data, tmp_path):
    Xtr, ytr, Xte, _ = binary_data
    rng = np.random.default_rng(0)
    Xtr = Xtr.copy()
    Xtr[rng.random(Xtr.shape) < 0.1] = np.nan
    Xte = Xte.copy()
    Xte[rng.random(Xte.shape) < 0.1] = np.nan
    for params, y, name in (
        ({"objective": "binary:logistic"}, ytr, "binary"),
        ({"objective": "multi:softprob", "num_class": 3}, (ytr + (Xtr[:, 0] > 1)).astype(int) % 3, "softprob"),
    ):
        d = xgb.DMatrix(Xtr, y, missing=np.nan, nthread=1)
        b = xgb.train({**params, "max_depth": 4, "nthread": 1, "tree_method": "hist"}, d, 15)
        path = tmp_path / f"xgb_{name}.ubj"
        b.save_model(str(path))
        ens = load_model(path)
        X = rows(ens, Xte[:300], 1500)
        sc = compiled_vs_interpreter(ens, X, ("datadriven",))
        X = X[xgb_accepts(X)]
        raw, out, leaf = _xgb_native(xgb, path, X)
        s = sc["datadriven"]
        assert_bit_equal(s.predict(X, raw_score=True), raw.reshape(s.predict(X, raw_score=True).shape), f"{name} margin")
        assert_bit_equal(s.predict(X), out, f"{name} output")
        np.testing.assert_array_equal(s.predict_leaf(X), leaf.reshape(len(X), -1))


def test_xgboost_categorical(xgb, tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    n = 1500
    df = pd.DataFrame(
        {
            "c1": pd.Categorical(rng.integers(0, 12, n)),
            "x": rng.normal(size=n),
            "c2": pd.Categorical(rng.integers(0, 40, n)),
        }
    )
    y = (df["c1"].cat.codes % 3 == 0).astype(float) + 0.3 * df["x"] + (df["c2"].cat.codes > 20)
    d = xgb.DMatrix(df, y, enable_categorical=True, nthread=1)
    b = xgb.train({"max_depth": 4, "nthread": 1, "tree_method": "hist", "max_cat_to_onehot": 1}, d, 20)
    path = tmp_path / "xgb_cat.json"
    b.save_model(str(path))
    ens = load_model(path)
    assert ens.categorical.any()
    codes = np.column_stack([df["c1"].cat.codes, df["x"], df["c2"].cat.codes]).astype(np.float64)[:400]
    X = rows(ens, codes, 2000)
    sc = compiled_vs_interpreter(ens, X)
    bb = xgb.Booster(model_file=str(path))
    ok = xgb_accepts(X)
    native = bb.inplace_predict(X[ok], predict_type="margin")
    for s in sc.values():
        assert_bit_equal(s.predict(X[ok], raw_score=True), native, "vs xgboost categorical margin")


# ---------------------------------------------------------------------- LightGBM
@pytest.fixture(scope="module")
def lgb():
    need_frontend("lightgbm")
    return pytest.importorskip("lightgbm")


def test_lightgbm_ranker(lgb, rank_data, tmp_path):
    Xtr, ytr, gtr, Xte, _, _ = rank_data
    m = lgb.train(
        {"objective": "lambdarank", "num_leaves": 31, "num_threads": 1, "verbose": -1, "min_data_in_leaf": 5},
        lgb.Dataset(Xtr, ytr, group=gtr),
        30,
    )
    path = tmp_path / "lgb_rank.txt"
    m.save_model(str(path))
    ens = load_model(path)
    X = rows(ens, Xte)
    sc = compiled_vs_interpreter(ens, X)
    native = lgb.Booster(model_file=str(path))
    raw = native.predict(X, raw_score=True, num_threads=1)
    leaf = native.predict(X, pred_leaf=True, num_threads=1)
    for s in sc.values():
        assert_bit_equal(s.predict(X, raw_score=True), raw, "vs lightgbm raw")
        assert_bit_equal(s.predict(X), native.predict(X, num_threads=1), "vs lightgbm predict")
        np.testing.assert_array_equal(s.predict_leaf(X), leaf)


def test_lightgbm_binary_categorical_missing_and_multiclass(lgb, binary_data, tmp_path):
    Xtr, ytr, Xte, _ = binary_data
    rng = np.random.default_rng(2)
    Xtr = Xtr.copy()
    Xtr[:, 3] = rng.integers(0, 20, len(Xtr))
    Xtr[rng.random(Xtr.shape) < 0.05] = np.nan
    Xtr[rng.random(Xtr.shape) < 0.05] = 0.0
    Xte = Xte.copy()
    Xte[:, 3] = rng.integers(-2, 25, len(Xte))
    for params, y, name in (
        ({"objective": "binary", "zero_as_missing": True}, ytr, "binary"),
        ({"objective": "multiclass", "num_class": 3}, (ytr + (np.nan_to_num(Xtr[:, 0]) > 1)).astype(int) % 3, "multiclass"),
        ({"objective": "regression", "linear_tree": True}, ytr + 0.1 * np.nan_to_num(Xtr[:, 1]), "linear"),
    ):
        ds = lgb.Dataset(Xtr, y, categorical_feature=[3] if name != "linear" else "auto")
        m = lgb.train({**params, "num_leaves": 15, "num_threads": 1, "verbose": -1, "min_data_per_group": 5,
                       "cat_smooth": 1}, ds, 15)
        path = tmp_path / f"lgb_{name}.txt"
        m.save_model(str(path))
        ens = load_model(path)
        X = rows(ens, Xte[:300], 1500)
        sc = compiled_vs_interpreter(ens, X, ("datadriven", "ifelse"))
        native = lgb.Booster(model_file=str(path))
        for s in sc.values():
            assert_bit_equal(s.predict(X, raw_score=True), native.predict(X, raw_score=True, num_threads=1), f"{name} raw")
            np.testing.assert_array_equal(s.predict_leaf(X), native.predict(X, pred_leaf=True, num_threads=1))


# ---------------------------------------------------------------------- scikit-learn
@pytest.fixture(scope="module")
def sk():
    need_frontend("sklearn")
    return pytest.importorskip("sklearn")


def test_sklearn_estimators(sk, rank_data, tmp_path):
    import joblib
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )

    Xtr, ytr, _, Xte, _, _ = rank_data
    Xtr, ytr = Xtr[:1200], ytr[:1200]
    models = {
        "gb": GradientBoostingRegressor(n_estimators=25, max_depth=3, random_state=0),
        "rf": RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0, n_jobs=1),
        "hgb": HistGradientBoostingRegressor(max_iter=20, random_state=0),
    }
    for name, est in models.items():
        Xfit = Xtr.copy()
        if name == "hgb":
            Xfit[np.random.default_rng(0).random(Xfit.shape) < 0.05] = np.nan
        est.fit(Xfit, ytr if name != "rf" else (ytr > 0).astype(int))
        path = tmp_path / f"{name}.joblib"
        joblib.dump(est, path)
        ens = load_model(path)
        X = Xte[:300]
        sc = compiled_vs_interpreter(ens, rows(ens, X, 1200), ("datadriven",))
        s = sc["datadriven"]
        native = joblib.load(path)
        if name == "rf":
            theirs = native.predict_proba(X)
            assert_bit_equal(s.predict(X), theirs, "rf predict_proba")
        elif name == "gb":
            assert_bit_equal(s.predict(X), native.predict(X), "gb predict")
            np.testing.assert_array_equal(s.predict_leaf(X), native.apply(X).reshape(len(X), -1))
        else:
            assert_bit_equal(s.predict(X, raw_score=True), native._raw_predict(X)[:, 0], "hgb raw")
            assert ulp_diff(s.predict(X), native.predict(X)) <= 4


# ---------------------------------------------------------------------- RankLib
@pytest.mark.parametrize("name", ["lambdamart", "rf_mart", "coordinate_ascent"])
def test_ranklib_models_score_like_ranklib(name):
    need_frontend("ranklib")
    d = DATA / "ranklib"
    if not (d / f"{name}.model.txt").exists():
        pytest.skip("RankLib fixtures not present")
    X = load_letor(d / "test.letor", n_features=300)[0]
    ens = load_model(d / f"{name}.model.txt", n_features=300)
    s = cy_compile(ens, progress=False)
    ref = np.loadtxt(d / f"{name}.scores.tsv", usecols=2)
    assert_bit_equal(s.predict(X), ref, f"{name} vs RankLib's scores")
    assert_bit_equal(s.predict(X), ens.predict(X), f"{name} vs interpreter")
