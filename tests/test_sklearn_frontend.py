"""scikit-learn frontend parity: every estimator is trained with the installed scikit-learn (1.9),
saved with joblib, RELOADED from that file, and our interpreter must reproduce the reloaded
estimator's raw margins (``predict`` / ``predict_proba`` for trees and forests, ``decision_function``
for GB classifiers, ``_raw_predict`` for HGB) bit for bit, its transformed output (``predict_proba`` /
``predict``) within a few ulp (0 measured), and ``apply``'s leaf ids exactly, on real rows plus edge
rows given as float64 and float32. Arrays exported from scikit-learn 1.3.2 and 1.2.2 with those
versions' own predictions live in tests/data/sklearn (see make_fixtures.py). Root causes from
shared/docs/mismatch-root-causes.md are named where a test covers one.
"""

from __future__ import annotations

import gzip
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_bit_equal, ulp_diff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrcompile import Ensemble, ModelFormatError, UnsupportedModelError
from ltrcompile.edgecases import INVALID_CATEGORIES, edge_rows
from ltrcompile.frontends import detect_format, load_model
from ltrcompile.frontends import sklearn as skf
from ltrcompile.ir import Missing

sklearn = pytest.importorskip("sklearn")
joblib = pytest.importorskip("joblib")
from sklearn import ensemble as E  # noqa: E402
from sklearn import tree as T  # noqa: E402
from sklearn.dummy import DummyClassifier, DummyRegressor  # noqa: E402
from sklearn.tree._tree import NODE_DTYPE, Tree  # noqa: E402

FIXTURES = Path(__file__).parent / "data" / "sklearn"
TRANSFORM_ULP = 4  # exp-based transforms: numpy/scipy exp vs libm exp (0 measured on x86-64 glibc)


# --------------------------------------------------------------------------- helpers
def reload(tmp_path: Path, est, name: str = "model.joblib", **dump):
    """Save with joblib and return (path, estimator as reloaded from that file)."""
    path = tmp_path / name
    joblib.dump(est, path, **dump)
    return path, joblib.load(path)


def as32(X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.asarray(X, np.float32)


def family(est) -> str:
    return skf.SUPPORTED[type(est).__name__][0]


def sk_outputs(est, X):
    """scikit-learn's own (raw, transformed, leaf ids in IR tree order or None)."""
    fam = family(est)
    clf = hasattr(est, "classes_")
    if fam == "hgb":
        raw = est._raw_predict(X)
        raw = raw[:, 0] if raw.shape[1] == 1 else raw
        return raw, est.predict_proba(X) if clf else est.predict(X), None
    if fam == "gb":
        raw = est.decision_function(X) if clf else est.predict(X)
        out = est.predict_proba(X) if clf else est.predict(X)
    else:
        raw = out = est.predict_proba(X) if clf else est.predict(X)
    return raw, out, np.asarray(est.apply(X)).reshape(X.shape[0], -1).astype(np.int64)


def accepted(est, X: np.ndarray) -> np.ndarray:
    """Rows the estimator's public predict accepts (it casts to float32 and rejects inf; GB also NaN)."""
    fam = family(est)
    if fam == "hgb":  # float64, inf allowed -- except in categorical columns (OrdinalEncoder)
        cat = getattr(est, "is_categorical_", None)
        if getattr(est, "_preprocessor", None) is None or cat is None:
            return np.ones(len(X), bool)
        return ~np.any(np.isinf(X[:, np.asarray(cat, bool)]), axis=1)
    X32 = as32(X)
    ok = ~np.any(np.isinf(X32), axis=1)
    if fam == "gb":
        ok &= ~np.any(np.isnan(X32), axis=1)
    return ok


def sk_trees(est) -> list:
    if hasattr(est, "tree_"):
        return [est.tree_]
    return [e.tree_ for e in np.asarray(est.estimators_, dtype=object).ravel()]


def check_parity(ens: Ensemble, est, X: np.ndarray, *, what: str = "", sparse: bool = False) -> dict:
    """Raw bit-exact, transformed within TRANSFORM_ULP, leaves identical; float64 and float32 rows."""
    ok = accepted(est, X) & accepted(est, as32(X))
    Xa = X[ok]
    assert len(Xa), "no rows to compare"
    exact_transform = ens.transform == "identity"
    stats = {"rows": len(Xa), "transform_ulp": 0}
    for name, M in (("float64", Xa), ("float32", as32(Xa))):
        tag = f"{what} {name}"
        raw, out, leaf = sk_outputs(est, M)
        assert_bit_equal(ens.predict(M, raw_score=True), raw, f"{tag} raw")
        ours = ens.predict(M)
        if exact_transform:
            assert_bit_equal(ours, out, f"{tag} transformed")
        else:
            assert ours.shape == out.shape
            d = ulp_diff(ours, out)
            assert d <= TRANSFORM_ULP, f"{tag} transformed differs by {d} ulp"
            stats["transform_ulp"] = max(stats["transform_ulp"], d)
        if leaf is not None:
            np.testing.assert_array_equal(ens.predict_leaf(M), leaf, f"{tag} leaf")
        elif family(est) == "hgb":
            check_hgb_leaves(ens, est, M, tag)
    if sparse:  # C6: absent sparse entries read as 0.0
        S = sp.csr_matrix(Xa[~np.isnan(Xa).any(axis=1)])  # sparse input may not hold NaN
        raw, _, leaf = sk_outputs(est, S)
        assert_bit_equal(ens.predict(S, raw_score=True), raw, f"{what} csr raw")
        if leaf is not None:
            np.testing.assert_array_equal(ens.predict_leaf(S), leaf, f"{what} csr leaf")
    if family(est) != "hgb" and (~ok).any():
        # rows predict() rejects (inf after the float32 cast; NaN for GB): each tree's own apply,
        # the code predict runs after validation, must route them as we do
        R32 = as32(X[~ok])
        theirs = np.stack([t.apply(R32) for t in sk_trees(est)], axis=1)
        np.testing.assert_array_equal(ens.predict_leaf(X[~ok]), theirs, f"{what} rejected rows: tree_.apply")
    return stats


def check_hgb_leaves(ens: Ensemble, est, X: np.ndarray, tag: str) -> None:
    """HGB has no apply(): our leaf ids (node indices) must pick the value each of scikit-learn's
    own tree predictors returns for the row."""
    Xp = est._preprocess_X(X, reset=False)
    known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    leaves = ens.predict_leaf(X)
    t = 0
    for preds in est._predictors:
        for p in preds:
            theirs = p.predict(Xp, known, f_idx_map, 1)
            assert np.all(p.nodes["is_leaf"][leaves[:, t]] == 1), f"{tag} tree {t}: not a leaf"
            assert_bit_equal(p.nodes["value"][leaves[:, t]], theirs, f"{tag} tree {t} leaf value")
            t += 1


def check_file(tmp_path: Path, est, background: np.ndarray, *, max_rows: int = 4000, **kw) -> Ensemble:
    """joblib file -> ltrcompile (auto-detected) vs the estimator reloaded from the same file."""
    path, model = reload(tmp_path, est)
    assert detect_format(str(path)) == "sklearn-pickle"
    ens = load_model(path)
    rows = np.vstack([background, edge_rows(ens, background, max_rows=max_rows)])
    check_parity(ens, model, rows, what=type(est).__name__, **kw)
    return ens


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """HGB predicts with OpenMP threads; the machine is shared, so use one."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def rank(rank_data):
    Xtr, ytr, _, Xte, _, _ = rank_data
    return Xtr, ytr, Xte[:300]


@pytest.fixture(scope="module")
def rank_nan(rank):
    """The ranking features with 10% NaN (C8: trees trained with NaN)."""
    Xtr, ytr, Xte = rank
    rng = np.random.default_rng(5)
    Xn, Xt = Xtr.copy(), Xte.copy()
    Xn[rng.random(Xn.shape) < 0.1] = np.nan
    Xt[rng.random(Xt.shape) < 0.1] = np.nan
    return Xn, ytr, Xt


@pytest.fixture(scope="module")
def binary(binary_data):
    Xtr, ytr, Xte, _ = binary_data
    return Xtr[:2000], ytr[:2000].astype(int), Xte[:300]


# --------------------------------------------------------------------------- trees and forests
@pytest.mark.parametrize("nan", [False, True])
def test_decision_tree_regressor(tmp_path, rank, rank_nan, nan):
    Xtr, ytr, Xte = rank_nan if nan else rank
    est = T.DecisionTreeRegressor(max_depth=10, min_samples_leaf=3, random_state=0).fit(Xtr, ytr)
    ens = check_file(tmp_path, est, Xte, sparse=not nan)
    assert (ens.input_cast, ens.int_input_cast, ens.transform) == ("float32", "float32", "identity")
    assert np.all(ens.missing[ens.left >= 0] == Missing.NAN_DEFAULT)  # sklearn >= 1.3 trees
    assert ens.provenance["estimator"] == "DecisionTreeRegressor"
    assert ens.provenance["version"] == sklearn.__version__


@pytest.mark.parametrize("n_classes", [2, 5])
def test_decision_tree_classifier(tmp_path, rank_nan, binary, n_classes):
    if n_classes == 2:
        Xtr, ytr, Xte = binary
        w = None
    else:
        Xtr, ytr, Xte = rank_nan
        ytr = ytr.astype(int)
        w = np.random.default_rng(1).uniform(0.1, 2.0, len(ytr))  # fractions that are not k/n
    est = T.DecisionTreeClassifier(max_depth=8, random_state=0).fit(Xtr, ytr, sample_weight=w)
    ens = check_file(tmp_path, est, Xte)
    assert ens.leaf_dim == ens.n_outputs == n_classes
    assert ens.provenance["classes"] == list(range(n_classes))


@pytest.mark.parametrize(
    "cls", [E.RandomForestRegressor, E.ExtraTreesRegressor, E.RandomForestClassifier, E.ExtraTreesClassifier]
)
def test_forests(tmp_path, rank_nan, cls):
    """C12: per-tree outputs summed in double in tree order, then divided by the tree count."""
    Xtr, ytr, Xte = rank_nan
    y = ytr.astype(int) if "Classifier" in cls.__name__ else ytr
    est = cls(n_estimators=7, max_depth=7, random_state=0, n_jobs=1).fit(Xtr, y)
    ens = check_file(tmp_path, est, Xte)
    assert ens.average_denominator == 7.0 and ens.average_raw
    assert ens.n_trees == 7 and ens.provenance["n_estimators"] == 7


def test_forest_sparse_input(tmp_path, rank):
    Xtr, ytr, Xte = rank
    est = E.RandomForestClassifier(n_estimators=5, max_depth=6, random_state=1, n_jobs=1)
    path, model = reload(tmp_path, est.fit(sp.csr_matrix(Xtr), ytr.astype(int)))
    check_parity(load_model(path), model, Xte, what="rf csr", sparse=True)


@pytest.mark.parametrize("cls", [T.DecisionTreeRegressor, E.RandomForestRegressor, E.ExtraTreesRegressor])
def test_multi_output_regression(tmp_path, rank, cls):
    """Vector leaves: one leaf value per target."""
    Xtr, ytr, Xte = rank
    Y = np.c_[ytr, np.sin(Xtr[:, 0]), -ytr]
    kw = {} if cls is T.DecisionTreeRegressor else {"n_estimators": 4, "n_jobs": 1}
    est = cls(max_depth=6, random_state=0, **kw).fit(Xtr, Y)
    ens = check_file(tmp_path, est, Xte)
    assert ens.leaf_dim == ens.n_outputs == 3


def test_extra_tree_single(tmp_path, binary):
    Xtr, ytr, Xte = binary
    est = T.ExtraTreeClassifier(max_depth=9, random_state=4).fit(Xtr, ytr)
    check_file(tmp_path, est, Xte)


def test_integer_input_cast_straight_to_float32(tmp_path):
    """int64 input is cast to float32 in one rounding (2**24 + 1 -> 2**24), as check_array does."""
    rng = np.random.default_rng(0)
    X = (2**24 + rng.integers(-40, 40, size=(600, 3))).astype(np.int64)
    y = (X[:, 0] % 7).astype(float) + X[:, 1] % 2
    est = T.DecisionTreeRegressor(max_depth=8, random_state=0).fit(X, y)
    path, model = reload(tmp_path, est)
    ens = load_model(path)
    Xt = (2**24 + rng.integers(-50, 50, size=(400, 3))).astype(np.int64)
    assert_bit_equal(ens.predict(Xt), model.predict(Xt), "int64 rows")
    np.testing.assert_array_equal(ens.predict_leaf(Xt)[:, 0], model.apply(Xt))


def test_float32_cast_and_nan_direction_are_load_bearing(tmp_path, rank_nan):
    """C4/C8: the edge rows must catch a float64 comparison and a wrong NaN direction."""
    Xtr, ytr, Xte = rank_nan
    est = T.DecisionTreeRegressor(max_depth=10, random_state=0).fit(Xtr, ytr)
    path, model = reload(tmp_path, est)
    ens = load_model(path)
    rows = np.vstack([Xte, edge_rows(ens, Xte, max_rows=4000)])
    rows = rows[accepted(model, rows)]
    theirs = model.predict(rows)
    assert_bit_equal(ens.predict(rows), theirs, "baseline")
    d = ens.to_dict()
    d["model"]["input_cast"] = "float64"
    wrong_cast = Ensemble.from_dict(d)
    assert np.any(wrong_cast.predict(rows) != theirs), "no edge row separates float32 from float64"
    d = ens.to_dict()
    d["nodes"]["default_left"] = [1 - v for v in d["nodes"]["default_left"]]
    wrong_nan = Ensemble.from_dict(d)
    assert np.any(wrong_nan.predict(rows) != theirs), "no NaN row reaches a split"


# --------------------------------------------------------------------------- gradient boosting
@pytest.mark.parametrize(
    ("loss", "extra"),
    [("squared_error", {}), ("absolute_error", {}), ("huber", {"alpha": 0.8}), ("quantile", {"alpha": 0.3})],
)
def test_gb_regressor_losses(tmp_path, rank, loss, extra):
    """C15: base score = init estimator's prediction; raw += learning_rate * leaf per stage."""
    Xtr, ytr, Xte = rank
    est = E.GradientBoostingRegressor(
        loss=loss, n_estimators=15, max_depth=4, learning_rate=0.3, subsample=0.8, random_state=0, **extra
    ).fit(Xtr, ytr)
    ens = check_file(tmp_path, est, Xte, sparse=True)
    assert np.all(ens.tree_weight == 0.3) and ens.transform == "identity"
    assert ens.base_score[0] != 0.0


def test_gb_init_zero_and_dummy(tmp_path, rank):
    Xtr, ytr, Xte = rank
    zero = E.GradientBoostingRegressor(n_estimators=6, init="zero", random_state=0).fit(Xtr, ytr)
    assert load_model(zero).base_score.tolist() == [0.0]
    check_file(tmp_path, zero, Xte)
    const = E.GradientBoostingRegressor(
        n_estimators=6, init=DummyRegressor(strategy="constant", constant=2.5), random_state=0
    ).fit(Xtr, ytr)
    assert load_model(const).base_score.tolist() == [2.5]
    check_file(tmp_path, const, Xte)


@pytest.mark.parametrize(
    ("kind", "loss", "init"),
    [
        ("binary", "log_loss", None),
        ("binary", "exponential", None),
        ("binary", "log_loss", "zero"),
        ("multi", "log_loss", None),
        ("multi", "log_loss", "zero"),
        ("multi", "log_loss", DummyClassifier(strategy="most_frequent")),
    ],
)
def test_gb_classifier(tmp_path, rank, binary, kind, loss, init):
    if kind == "binary":
        Xtr, ytr, Xte = binary
    else:
        Xtr, ytr, Xte = rank
        ytr = ytr.astype(int)
    est = E.GradientBoostingClassifier(
        loss=loss, init=init, n_estimators=10, max_depth=3, learning_rate=0.2, random_state=0
    ).fit(Xtr, ytr)
    ens = check_file(tmp_path, est, Xte, max_rows=2500)
    K = 1 if kind == "binary" else len(np.unique(ytr))
    assert ens.n_outputs == K and ens.n_trees == 10 * K
    expected = {"binary": "sigmoid_binary_proba", "multi": "softmax"}[kind]
    if loss == "exponential":
        expected = "sigmoid2_binary_proba"
    assert ens.transform == expected
    if init == "zero":
        assert np.all(ens.base_score == 0.0)


def test_gb_early_stopping_uses_fitted_stages(tmp_path, rank):
    Xtr, ytr, Xte = rank
    est = E.GradientBoostingRegressor(
        n_estimators=200, n_iter_no_change=2, validation_fraction=0.2, random_state=0
    ).fit(Xtr, ytr)
    assert est.n_estimators_ < 200
    ens = check_file(tmp_path, est, Xte, max_rows=1500)
    assert ens.n_trees == est.n_estimators_


def test_gb_nan_follows_apply(tmp_path, rank):
    """GB.predict rejects NaN; apply routes it by missing_go_to_left and so do we (leaf ids)."""
    Xtr, ytr, Xte = rank
    est = E.GradientBoostingRegressor(n_estimators=5, random_state=0).fit(Xtr, ytr)
    path, model = reload(tmp_path, est)
    ens = load_model(path)
    X = Xte.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.3] = np.nan
    with pytest.raises(ValueError):
        model.predict(X)
    np.testing.assert_array_equal(ens.predict_leaf(X), model.apply(X).astype(np.int64))


@pytest.mark.parametrize(
    ("init", "msg"),
    [
        ("linear", "LinearRegression"),
        ("tree", "DecisionTreeRegressor"),
        ("stratified", "stratified"),
    ],
)
def test_gb_custom_init_rejected(rank, binary, init, msg):
    """C15: an init estimator whose prediction depends on X can't be a constant base score."""
    from sklearn.linear_model import LinearRegression

    if init == "stratified":
        Xtr, ytr, _ = binary
        est = E.GradientBoostingClassifier(n_estimators=3, init=DummyClassifier(strategy="stratified"))
    else:
        Xtr, ytr, _ = rank
        init_est = LinearRegression() if init == "linear" else T.DecisionTreeRegressor(max_depth=2)
        est = E.GradientBoostingRegressor(n_estimators=3, init=init_est)
    est.fit(Xtr[:500], ytr[:500])
    with pytest.raises(UnsupportedModelError, match=msg) as info:
        load_model(est)
    assert info.value.field == "init"


# --------------------------------------------------------------------------- HistGradientBoosting
@pytest.mark.parametrize(
    ("loss", "transform"),
    [("squared_error", "identity"), ("absolute_error", "identity"), ("quantile", "identity"),
     ("poisson", "exp"), ("gamma", "exp")],
)
def test_hgb_regressor(tmp_path, rank_nan, loss, transform):
    Xtr, ytr, Xte = rank_nan
    y = ytr + 0.5 if loss in ("poisson", "gamma") else ytr
    kw = {"quantile": 0.7} if loss == "quantile" else {}
    est = E.HistGradientBoostingRegressor(loss=loss, max_iter=12, max_leaf_nodes=15, random_state=0, **kw)
    ens = check_file(tmp_path, est.fit(Xtr, y), Xte)
    assert ens.transform == transform
    assert (ens.input_cast, ens.int_input_cast) == ("float64", "float64")
    assert ens.base_score.tolist() == est._baseline_prediction.ravel().tolist()


@pytest.mark.parametrize("kind", ["binary", "multi"])
def test_hgb_classifier(tmp_path, rank_nan, binary, kind):
    if kind == "binary":
        Xtr, ytr, Xte = binary
    else:
        Xtr, ytr, Xte = rank_nan
        ytr = ytr.astype(int)
    est = E.HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=12, random_state=0).fit(Xtr, ytr)
    ens = check_file(tmp_path, est, Xte)
    assert ens.transform == ("sigmoid_binary_proba" if kind == "binary" else "softmax")


def _categorical_data(n: int, seed: int):
    """Column 1 categorical (values 3, 7, 11, ..., 59: not 0..k-1), column 3 categorical 0..4 with NaN."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 1] = 3 + 4 * rng.integers(0, 15, n)
    X[:, 3] = rng.integers(0, 5, n)
    X[rng.random(n) < 0.1, 3] = np.nan
    X[rng.random(n) < 0.1, 0] = np.nan
    y = X[:, 2] + np.isin(X[:, 1], [7, 19, 23, 43]) * 2.0 - (X[:, 3] == 2) + np.isnan(X[:, 3])
    return X, y + rng.normal(scale=0.1, size=n)


@pytest.mark.parametrize("task", ["regression", "binary", "multi"])
def test_hgb_categorical(tmp_path, task):
    """C10: categorical splits incl. unknown, non-integer, negative and huge category values."""
    X, y = _categorical_data(1500, 0)
    Xte, _ = _categorical_data(300, 1)
    if task == "regression":
        est = E.HistGradientBoostingRegressor(max_iter=10, categorical_features=[1, 3], random_state=0)
    else:
        est = E.HistGradientBoostingClassifier(max_iter=10, categorical_features=[1, 3], random_state=0)
        y = (y > np.median(y)).astype(int) if task == "binary" else np.digitize(y, np.quantile(y, [0.3, 0.6]))
    est.fit(X, y)
    cat_nodes = []
    for preds in est._predictors:
        for p in preds:
            n = p.nodes
            cat_nodes += n["missing_go_to_left"][(n["is_categorical"] == 1) & (n["is_leaf"] == 0)].tolist()
    assert 0 in cat_nodes and 1 in cat_nodes, "want categorical splits with both missing directions"
    # unseen categories (5, 6, 63), non-integers, negatives, beyond 2**31, inf
    odd = np.array([5.0, 6.0, 63.0, 7.5, -7.0, -0.0, 2.0**31 + 7, np.inf, -np.inf, np.nan, 1e300])
    extra = Xte[: odd.size * 2].copy()
    extra[: odd.size, 1] = odd
    extra[odd.size :, 3] = np.resize(np.r_[odd, INVALID_CATEGORIES], odd.size)
    ens = check_file(tmp_path, est, np.vstack([Xte, extra]))
    assert ens.categorical_rule == "sklearn"
    cat = (ens.categorical == 1) & (ens.left >= 0)
    assert set(np.unique(ens.feature[cat])) <= {1, 3}
    codes = np.unique(ens.categories)
    assert set(codes.tolist()) <= set(range(3, 60, 4)) | set(range(5))  # raw values, not ordinal codes
    # the exact-integer rule is load-bearing: truncating 7.5 to category 7 (LightGBM's rule) differs
    rows = np.vstack([Xte, extra])
    rows = rows[accepted(est, rows)]
    d = ens.to_dict()
    d["model"]["categorical_rule"] = "lightgbm"
    truncating = Ensemble.from_dict(d)
    assert np.any(truncating.predict(rows, raw_score=True) != ens.predict(rows, raw_score=True))


def test_hgb_categorical_pandas(tmp_path):
    """String categories from a DataFrame: ordinal codes + feature_categories; bound by column name."""
    pd = pytest.importorskip("pandas")
    X, y = _categorical_data(1200, 2)
    labels = np.array([f"c{i:02d}" for i in range(60)])
    df = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    df["b"] = pd.Categorical(labels[X[:, 1].astype(int)])
    est = E.HistGradientBoostingRegressor(max_iter=8, categorical_features="from_dtype", random_state=0)
    path, model = reload(tmp_path, est.fit(df, y))
    ens = load_model(path)
    assert ens.feature_names == ["a", "b", "c", "d", "e"]
    assert ens.feature_categories is not None and 1 in ens.feature_categories
    Xt, _ = _categorical_data(300, 3)
    dt = pd.DataFrame(Xt, columns=list("abcde"))
    col = labels[Xt[:, 1].astype(int)].astype(object)
    col[:10] = "never-seen"  # unknown category -> missing direction
    dt["b"] = pd.Categorical(col)
    assert_bit_equal(ens.predict(dt, raw_score=True), model._raw_predict(dt)[:, 0], "pandas raw")
    assert_bit_equal(ens.predict(dt), model.predict(dt), "pandas predict")
    shuffled = dt[["e", "c", "a", "d", "b"]]
    assert_bit_equal(ens.predict(shuffled), model.predict(dt), "columns bound by name")


def test_hgb_early_stopping(tmp_path, rank):
    Xtr, ytr, Xte = rank
    est = E.HistGradientBoostingRegressor(max_iter=300, early_stopping=True, n_iter_no_change=2, random_state=0)
    est.fit(Xtr, ytr)
    assert est.n_iter_ < 300
    ens = check_file(tmp_path, est, Xte, max_rows=1500)
    assert ens.n_trees == est.n_iter_


# --------------------------------------------------------------------------- files and formats
@pytest.mark.parametrize("cls", [E.RandomForestRegressor, E.GradientBoostingRegressor])
def test_feature_names_from_dataframe(tmp_path, rank, cls):
    """C18: names from feature_names_in_; a DataFrame is bound by name, not position."""
    pd = pytest.importorskip("pandas")
    Xtr, ytr, Xte = rank
    cols = [f"f{i}" for i in range(Xtr.shape[1])]
    kw = {"n_jobs": 1} if cls is E.RandomForestRegressor else {}
    est = cls(n_estimators=3, max_depth=5, random_state=0, **kw)
    path, model = reload(tmp_path, est.fit(pd.DataFrame(Xtr, columns=cols), ytr))
    ens = load_model(path)
    assert ens.feature_names == cols
    df = pd.DataFrame(Xte, columns=cols)
    assert_bit_equal(ens.predict(df[cols[::-1]]), model.predict(df), "DataFrame bound by name")


@pytest.mark.parametrize("how", ["joblib", "joblib-zlib", "joblib-gzip", "joblib-bz2", "joblib-xz", "pickle", "pickle-p2"])
def test_pickle_flavours_detected(tmp_path, binary, how):
    Xtr, ytr, Xte = binary
    est = E.GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0).fit(Xtr, ytr)
    path = tmp_path / "m.bin"
    if how.startswith("pickle"):
        with open(path, "wb") as fh:
            pickle.dump(est, fh, protocol=2 if how == "pickle-p2" else pickle.HIGHEST_PROTOCOL)
    else:
        compress = {"joblib": 0, "joblib-zlib": ("zlib", 3), "joblib-gzip": ("gzip", 3),
                    "joblib-bz2": ("bz2", 3), "joblib-xz": ("xz", 3)}[how]
        joblib.dump(est, path, compress=compress)
    assert detect_format(str(path)) == "sklearn-pickle"
    ens = load_model(path)
    model = joblib.load(path)
    assert_bit_equal(ens.predict(Xte, raw_score=True), model.decision_function(Xte), how)
    assert ens.provenance["format"] == "sklearn-pickle"


def test_sniff_rejects_other_formats(tmp_path):
    assert skf.sniff(b"tree\nversion=v4\n", "m.txt") == []
    assert skf.sniff(b'{"learner": {}}', "m.json") == []
    assert skf.sniff(pickle.dumps({"a": 1}), "m.pkl") == []
    assert skf.sniff(pickle.dumps("xgboost.sklearn XGBRegressor"), "m.pkl") == []
    assert skf.sniff(gzip.compress(b"not a pickle"), "m.gz") == []
    assert skf.sniff(b"\x78\x9c garbage", "m.z") == []


def test_in_memory_and_ir_round_trip(binary):
    Xtr, ytr, Xte = binary
    est = E.HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(Xtr, ytr)
    ens = load_model(est)
    assert ens.provenance["source"].startswith("in-memory sklearn.")
    back = Ensemble.from_json(ens.to_json())
    assert_bit_equal(back.predict(Xte, raw_score=True), est.decision_function(Xte), "IR JSON round trip")
    assert ulp_diff(back.predict(Xte), est.predict_proba(Xte)) <= TRANSFORM_ULP


def test_describe_savez_round_trip(tmp_path, rank_nan):
    """The pickle-free exchange path: describe() -> numpy.savez -> numpy.load -> from_arrays."""
    Xtr, ytr, Xte = rank_nan
    est = E.ExtraTreesClassifier(n_estimators=4, max_depth=6, random_state=0, n_jobs=1).fit(Xtr, ytr.astype(int))
    np.savez(tmp_path / "m.npz", **skf.describe(est))
    with np.load(tmp_path / "m.npz") as z:
        ens = skf.from_arrays(z, path=str(tmp_path / "m.npz"))
    check_parity(ens, est, Xte, what="npz")


# --------------------------------------------------------------------------- other scikit-learn versions
def _fixture(name: str):
    with np.load(FIXTURES / name) as z:
        desc = {k: z[k] for k in z.files if not k.startswith("expected.")}
        exp = {k[len("expected.") :]: z[k] for k in z.files if k.startswith("expected.")}
    return desc, exp


VERSION_FIXTURES = sorted(p.name for p in FIXTURES.glob("sk*.npz") if "hgbr_cat" not in p.name)


@pytest.mark.parametrize("name", VERSION_FIXTURES)
def test_older_sklearn_arrays(name):
    """Arrays exported by scikit-learn 1.3.2 / 1.2.2 vs those versions' own predictions."""
    desc, exp = _fixture(name)
    ens = skf.from_arrays(desc, path=name)
    rows = exp["rows"]
    assert ens.provenance["version"] == str(desc["sklearn_version"])
    for M in (rows, as32(rows)):
        raw = ens.predict(M, raw_score=True)
        assert_bit_equal(raw, exp["raw"].reshape(raw.shape), f"{name} raw")
        out = ens.predict(M)
        if ens.transform == "identity":
            assert_bit_equal(out, exp["out"].reshape(out.shape), f"{name} out")
        else:  # 1.2/1.3 GB multiclass: exp(x - logsumexp(x)), not softmax (3 ulp measured)
            assert ulp_diff(out, exp["out"].reshape(out.shape)) <= TRANSFORM_ULP
        if "leaf" in exp:
            np.testing.assert_array_equal(ens.predict_leaf(M), exp["leaf"], f"{name} leaf")
    if "nan_leaf" in exp:
        np.testing.assert_array_equal(ens.predict_leaf(exp["nan_rows"]), exp["nan_leaf"], f"{name} NaN")
    old = str(desc["sklearn_version"]).startswith("1.2.")
    if "n_trees" in desc:  # 1.2 trees have no missing_go_to_left: NaN compares false -> right
        expected = Missing.NAN_FALSE if old else Missing.NAN_DEFAULT
        assert np.all(ens.missing[ens.left >= 0] == expected)


@pytest.mark.parametrize("version", ["1.3.2", "1.2.2"])
def test_tree_value_counts_before_1_4(version):
    """C12: before 1.4 tree_.value holds weighted counts; predict_proba divides by their sum."""
    desc, exp = _fixture(f"sk{version}_rfc3.npz")
    v = desc["tree0.value"][:, 0, :]
    assert np.any(np.abs(v.sum(axis=1) - 1.0) > 0.5), "fixture should hold counts"
    as_fractions = dict(desc, sklearn_version="1.4.0")
    wrong = skf.from_arrays(as_fractions).predict(exp["rows"], raw_score=True)
    assert not np.allclose(wrong, exp["raw"])
    ok = skf.from_arrays(desc).predict(exp["rows"], raw_score=True)
    assert_bit_equal(ok, exp["raw"], "counts normalised")


def test_hgb_categorical_before_1_4_rejected():
    desc, _ = _fixture("sk1.3.2_hgbr_cat.npz")
    with pytest.raises(UnsupportedModelError, match="before 1.4") as info:
        skf.from_arrays(desc, path="sk1.3.2_hgbr_cat.npz")
    assert info.value.field == "categorical_features"


@pytest.mark.parametrize("name", ["sk1.3.2_dtc3", "sk1.3.2_rfc3"])
def test_pickle_from_sklearn_1_3(name):
    """A 1.3.2 pickle loads in 1.9 (with a version warning); its counts are read as 1.3 did."""
    ens = skf.load_pickle(FIXTURES / f"{name}.joblib")
    _, exp = _fixture(f"{name}.npz")
    assert ens.provenance["version"] == "1.3.2"
    assert ens.provenance["loaded_with"] == sklearn.__version__
    assert_bit_equal(ens.predict(exp["rows"], raw_score=True), exp["raw"], f"{name} raw")
    np.testing.assert_array_equal(ens.predict_leaf(exp["rows"]), exp["leaf"])


@pytest.mark.parametrize(("name", "why"), [("sk1.2.2_dtc3", "incompatible dtype"), ("sk1.3.2_gbc3", "_gb_losses")])
def test_incompatible_old_pickles(name, why):
    path = FIXTURES / f"{name}.joblib"
    with pytest.raises(ModelFormatError, match=why) as info:
        load_model(path)
    assert info.value.path == str(path) and "from_arrays" in str(info.value)


# --------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    "est",
    [T.DecisionTreeRegressor(), T.DecisionTreeClassifier(), E.RandomForestRegressor(), E.ExtraTreesClassifier(),
     E.GradientBoostingClassifier(), E.HistGradientBoostingRegressor(), E.HistGradientBoostingClassifier()],
    ids=lambda e: type(e).__name__,
)
def test_unfitted(est):
    with pytest.raises(ModelFormatError, match="not fitted"):
        load_model(est)


def test_unsupported_estimators(rank):
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xtr, ytr, _ = rank
    X, y = Xtr[:300], ytr[:300]
    pipe = make_pipeline(StandardScaler(), T.DecisionTreeRegressor(max_depth=2)).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=r"Pipeline.*pipe\[-1\]"):
        load_model(pipe)
    grid = GridSearchCV(T.DecisionTreeRegressor(), {"max_depth": [2]}, cv=2).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="best_estimator_"):
        load_model(grid)
    for est in (LinearRegression().fit(X, y), E.IsolationForest(n_estimators=3, random_state=0).fit(X),
                E.AdaBoostRegressor(n_estimators=2, random_state=0).fit(X, y)):
        with pytest.raises(UnsupportedModelError, match=type(est).__name__):
            load_model(est)
    multi = T.DecisionTreeClassifier(max_depth=3).fit(X, np.c_[y > 1, y > 2])
    with pytest.raises(UnsupportedModelError, match="multi-output"):
        load_model(multi)
    from ltrcompile.errors import OptionError

    with pytest.raises(OptionError, match="does not apply"):  # no boosting rounds to select
        load_model(T.DecisionTreeRegressor(max_depth=2).fit(X, y), num_iteration=3)


def test_corrupted_files(tmp_path, binary):
    Xtr, ytr, _ = binary
    est = E.RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0, n_jobs=1).fit(Xtr, ytr)
    good = tmp_path / "good.joblib"
    joblib.dump(est, good)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "header-only": data[:64],
        "garbage-tail": data[:200] + b"\x00\xff" * 300,
        "zlib-truncated": joblib_bytes(est, tmp_path, ("zlib", 3))[:300],
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.joblib"
        p.write_bytes(blob)
        with pytest.raises(ModelFormatError) as info:
            skf.load_pickle(p)
        assert info.value.path == str(p), name
    other = tmp_path / "dict.pkl"
    other.write_bytes(pickle.dumps({"sklearn.tree": 1}))
    with pytest.raises(UnsupportedModelError, match="not a scikit-learn estimator"):
        skf.load_pickle(other)


def joblib_bytes(est, tmp_path: Path, compress) -> bytes:
    p = tmp_path / "tmp.joblib"
    joblib.dump(est, p, compress=compress)
    return p.read_bytes()


def test_bad_descriptions():
    est = T.DecisionTreeRegressor(max_depth=3, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 3)), np.arange(50.0))
    good = skf.describe(est)
    for mutate, field in [
        (lambda d: d.update(format="something-else"), "format"),
        (lambda d: d.update(format_version=99), "format_version"),
        (lambda d: d.pop("n_trees"), "n_trees"),
        (lambda d: d.update(estimator="SVC"), "estimator"),
        (lambda d: d.update({"tree0.value": d["tree0.value"][:, :, :0]}), "value"),
        (lambda d: d.update(n_features="three"), "n_features"),
        (lambda d: d.update(sklearn_version="banana"), "sklearn_version"),
    ]:
        d = dict(good)
        mutate(d)
        with pytest.raises((ModelFormatError, UnsupportedModelError)) as info:
            skf.from_arrays(d, path="x.npz")
        assert info.value.field == field, (field, str(info.value))


# --------------------------------------------------------------------------- property tests
@st.composite
def sk_trees_st(draw):
    """A random scikit-learn tree (node arrays) plus rows that hit its thresholds."""
    F = draw(st.integers(1, 4))
    n_outputs = draw(st.integers(1, 2))
    grid = draw(st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=1, max_size=6, unique=True))
    max_depth = draw(st.integers(0, 5))
    left, right, feat, thr, mgl = [], [], [], [], []

    def grow(depth: int) -> int:
        i = len(left)
        left.append(-1), right.append(-1), feat.append(-2), thr.append(-2.0), mgl.append(0)
        if depth < max_depth and draw(st.booleans()):
            feat[i] = draw(st.integers(0, F - 1))
            t = draw(st.sampled_from(grid))
            # sklearn thresholds: float64 midpoints of float32 values (sometimes float32 exact)
            thr[i] = float(t) if draw(st.booleans()) else float(np.nextafter(np.float32(t), np.float32(9))) / 2 + t / 2
            mgl[i] = int(draw(st.booleans()))
            left[i] = grow(depth + 1)
            right[i] = grow(depth + 1)
        return i

    grow(0)
    n = len(left)
    perm = np.arange(n)
    if n > 2 and draw(st.booleans()):  # ids in another order (best-first builders), root stays 0
        perm[1:] = 1 + np.array(draw(st.permutations(range(n - 1))))
    inv = np.empty(n, np.int64)
    inv[perm] = np.arange(n)  # old id -> new id is perm; new position of old node i is perm[i]

    def remap(ch):
        return [-1 if c == -1 else int(perm[c]) for c in ch]

    arrs = {}
    for name, vals in (("left", remap(left)), ("right", remap(right)), ("feature", feat), ("threshold", thr), ("mgl", mgl)):
        a = np.empty(n, np.float64 if name == "threshold" else np.int64)
        a[perm] = vals
        arrs[name] = a
    value = np.array(draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=n * n_outputs,
                                   max_size=n * n_outputs))).reshape(n, n_outputs, 1)
    edge = np.array([v for t in grid for v in (t, np.nextafter(t, 9), np.nextafter(t, -9))] + [np.nan, 0.0, -0.0])
    rows = np.array(draw(st.lists(st.lists(st.sampled_from(edge.tolist()), min_size=F, max_size=F),
                                  min_size=1, max_size=30)))
    return F, n_outputs, arrs, value, rows, max_depth


def _real_tree(F, n_outputs, arrs, value, max_depth):
    """Install the arrays into a real fitted DecisionTreeRegressor: scikit-learn is the oracle."""
    rng = np.random.default_rng(0)
    est = T.DecisionTreeRegressor(max_depth=1).fit(rng.normal(size=(4, F)), rng.normal(size=(4, n_outputs)).squeeze())
    n = arrs["left"].size
    nodes = np.zeros(n, NODE_DTYPE)
    nodes["left_child"], nodes["right_child"] = arrs["left"], arrs["right"]
    nodes["feature"], nodes["threshold"] = arrs["feature"], arrs["threshold"]
    nodes["missing_go_to_left"] = arrs["mgl"]
    nodes["n_node_samples"] = 1
    nodes["weighted_n_node_samples"] = 1.0
    tree = Tree(F, np.ones(n_outputs, np.intp), n_outputs)
    tree.__setstate__({"max_depth": max_depth, "node_count": n, "nodes": nodes, "values": np.ascontiguousarray(value)})
    est.tree_ = tree
    return est


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sk_trees_st())
def test_property_tree_arrays_match_sklearn(case):
    """Random tree structures/thresholds/NaN directions: describe() -> from_arrays() == sklearn."""
    F, n_outputs, arrs, value, rows, max_depth = case
    est = _real_tree(F, n_outputs, arrs, value, max_depth)
    ens = load_model(est)
    for M in (rows, as32(rows)):
        np.testing.assert_array_equal(ens.predict_leaf(M)[:, 0], est.apply(M))
        assert_bit_equal(ens.predict(M, raw_score=True), est.predict(M), "raw")


@st.composite
def corrupted(draw):
    F, n_outputs, arrs, value, _, _ = draw(sk_trees_st())
    n = arrs["left"].size
    internal = np.flatnonzero(arrs["left"] != -1)
    kinds = ["child_oob", "child_neg", "short", "value_nan", "feature_2d"]
    if internal.size:
        kinds += ["one_leaf_child", "child_root", "cycle", "dup_child", "feature_oob", "threshold_nan", "mgl_2"]
    kind = draw(st.sampled_from(kinds))
    a = {k: v.copy() for k, v in arrs.items()}
    value = value.copy()
    i = int(draw(st.sampled_from(internal.tolist()))) if internal.size else 0
    side = draw(st.sampled_from(["left", "right"]))
    if kind == "child_oob":
        a[side][draw(st.integers(0, n - 1))] = n + draw(st.integers(0, 5))
    elif kind == "child_neg":
        a[side][draw(st.integers(0, n - 1))] = -2 - draw(st.integers(0, 5))
    elif kind == "short":
        a[draw(st.sampled_from(["left", "right", "feature", "threshold", "mgl"]))] = a["left"][:-1]
    elif kind == "value_nan":
        leaf = int(draw(st.sampled_from(np.flatnonzero(arrs["left"] == -1).tolist())))
        value[leaf, 0, 0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "feature_2d":
        a["feature"] = a["feature"].reshape(-1, 1)
    elif kind == "one_leaf_child":
        a[side][i] = -1
    elif kind == "child_root":
        a[side][i] = 0
    elif kind == "cycle":  # i points at itself: a loop (and a second parent, or the root)
        a[side][i] = i
    elif kind == "dup_child":
        a["right"][i] = a["left"][i]
    elif kind == "feature_oob":
        a["feature"][i] = draw(st.sampled_from([F, F + 3, -1, -2]))
    elif kind == "threshold_nan":
        a["threshold"][i] = np.nan
    elif kind == "mgl_2":
        a["mgl"][i] = 2
    return F, a, value


@settings(max_examples=200, deadline=None)
@given(corrupted())
def test_property_corrupted_arrays_raise_typed_errors(case):
    F, a, value = case
    d = {
        "format": skf.ARRAYS_FORMAT, "format_version": 1, "estimator": "DecisionTreeRegressor",
        "sklearn_version": "1.9.1", "n_features": F, "n_trees": 1,
        "tree0.children_left": a["left"], "tree0.children_right": a["right"], "tree0.feature": a["feature"],
        "tree0.threshold": a["threshold"], "tree0.value": value, "tree0.missing_go_to_left": a["mgl"],
    }
    with pytest.raises(ModelFormatError) as info:
        skf.from_arrays(d, path="bad.npz")
    assert info.value.path == "bad.npz"


def test_warnings_do_not_leak(tmp_path, rank):
    """Loading a same-version file emits no version warning and records no loaded_with."""
    Xtr, ytr, _ = rank
    path, _ = reload(tmp_path, T.DecisionTreeRegressor(max_depth=3).fit(Xtr, ytr))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens = load_model(path)
    assert "loaded_with" not in ens.provenance
