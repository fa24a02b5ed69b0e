"""LightGBM frontend parity: every model is trained with the installed lightgbm, saved, RELOADED
from its file, and our interpreter must reproduce the reloaded booster's raw scores, transformed
scores and leaf indices bit for bit on real rows plus edge rows (float64, float32 and CSR input).
Files written by lightgbm 3.3.5 (tests/data/lightgbm, see make_fixtures.py) carry 3.3.5's own
predictions. Root causes from shared/docs/mismatch-root-causes.md that apply to LightGBM:

C1 no base score, intercept inside the first trees (start_iteration drops it): test_start_and_num_iteration
C2 rows exactly on / one ulp (float32 and float64) beside every threshold: check_parity via edge_rows
C3 thresholds round-trip (17 digits parsed exactly, IR JSON): test_ir_json_round_trip_is_exact, property test
C4/C13 input casts (float32 rows, int arrays -> float32): check_parity, test_integer_input_cast_to_float32
C5/C9 None/Zero/NaN missing types: test_missing_types, test_lightgbm_3_3_files[v3_multiclass_zero]
C6 sparse vs dense (absent = 0, CSR keeps tiny values, CSC does not): check_parity, test_zero_band_dense_vs_csr
C7 same rows as numpy/list/DataFrame/CSR/CSC/COO: test_input_kinds
C10 categorical bitsets (left set, NaN/negative/huge codes right, pandas re-coding): test_categorical_*,
    test_pandas_*
C11 tree -> class = index % num_class, softmax / one-vs-all: test_multiclass, test_multiclassova
C12 rf averaging by iterations used, raw not averaged: test_random_forest_*
C13 DART (weights folded into saved leaves): test_dart
C14 every objective raw + transformed, sigmoid alpha != 1: test_regression_objectives, test_binary*, ...
C16 linear trees: test_linear_tree, test_lightgbm_3_3_files[v3_linear], property test
C17 best_iteration / num_iteration: test_early_stopping_best_iteration, test_start_and_num_iteration
C18 DataFrame columns bound by name: test_dataframe_columns_bound_by_name
C19 +-inf thresholds (text) and the 1e300 clamp (dump JSON): test_infinite_thresholds
C20 parity against the reloaded file; sigmoid parsed with LightGBM's Atof: everywhere, test_binary_sigmoid_*
C21 double accumulation in tree order: bit-exact raw scores everywhere
C22 NaN/inf everywhere, malformed files: edge rows, property and mutation tests
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_bit_equal

from ltrcompile import Ensemble, ModelFormatError
from ltrcompile.edgecases import edge_rows
from ltrcompile.errors import UnsupportedModelError
from ltrcompile.frontends import detect_format, load_model
from ltrcompile.frontends import lightgbm as lgbf
from ltrcompile.ir import LIGHTGBM_ZERO_BAND, Missing

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")

FIXTURES = Path(__file__).parent / "data" / "lightgbm"
BASE = dict(num_threads=1, deterministic=True, verbose=-1, seed=3, num_leaves=15, min_data_in_leaf=5)


# --------------------------------------------------------------------------- helpers
def train_and_reload(tmp_path: Path, params: dict, X, y, rounds: int = 8, **ds):
    """Train, save to a file, and return (path, booster reloaded from that file)."""
    booster = lgb.train(dict(BASE, **params), lgb.Dataset(X, y, **ds), rounds)
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    return path, lgb.Booster(model_file=str(path))


def as32(X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return X.astype(np.float32)


def check_parity(ens: Ensemble, model, X: np.ndarray, *, sparse: bool = True, what: str = "") -> None:
    """Raw, transformed and leaf outputs equal the reloaded booster's; dense64/dense32/CSR."""
    for name, M in (("float64", X), ("float32", as32(X))):
        tag = f"{what} {name}"
        assert_bit_equal(ens.predict(M, raw_score=True), model.predict(M, raw_score=True), f"{tag} raw")
        assert_bit_equal(ens.predict(M), model.predict(M), f"{tag} transformed")
        np.testing.assert_array_equal(ens.predict_leaf(M), model.predict(M, pred_leaf=True), f"{tag} leaf")
    if sparse:  # absent entries read as 0; stored tiny values are NOT zeroed (unlike dense rows)
        for name, M in (("csr64", sp.csr_matrix(X)), ("csr32", sp.csr_matrix(as32(X)))):
            tag = f"{what} {name}"
            assert_bit_equal(ens.predict(M, raw_score=True), model.predict(M, raw_score=True), f"{tag} raw")
            np.testing.assert_array_equal(ens.predict_leaf(M), model.predict(M, pred_leaf=True), f"{tag} leaf")


def check_file(path: Path, model, background: np.ndarray, **kw) -> Ensemble:
    """Text path + dump_model() JSON path, both against the reloaded booster."""
    ens = lgbf.load_text(path)
    rows = np.vstack([background, edge_rows(ens, background, max_rows=6000)])
    check_parity(ens, model, rows, what=path.name, **kw)
    jpath = path.with_suffix(".json")
    jpath.write_text(json.dumps(model.dump_model()))
    ens_j = lgbf.load_dump_json(jpath)
    assert_bit_equal(ens_j.predict(rows, raw_score=True), model.predict(rows, raw_score=True), "json raw")
    assert_bit_equal(ens_j.predict(rows), model.predict(rows), "json transformed")
    np.testing.assert_array_equal(ens_j.predict_leaf(rows), model.predict(rows, pred_leaf=True))
    return ens


@pytest.fixture(scope="module")
def rank(rank_data):
    Xtr, ytr, gtr, Xte, yte, gte = rank_data
    return Xtr, ytr, gtr, Xte[:300]


@pytest.fixture(scope="module")
def rank_nan(rank):
    """The ranking features with 10% NaN (C5: models trained with NaN get NaN-type nodes)."""
    Xtr, ytr, gtr, Xte = rank
    rng = np.random.default_rng(5)
    Xn, Xt = Xtr.copy(), Xte.copy()
    Xn[rng.random(Xn.shape) < 0.1] = np.nan
    Xt[rng.random(Xt.shape) < 0.1] = np.nan
    return Xn, ytr, gtr, Xt


# --------------------------------------------------------------------------- objectives (C14)
REGRESSION_OBJECTIVES = [
    ("regression", {}, "identity"),
    ("regression_l1", {}, "identity"),
    ("huber", {}, "identity"),
    ("fair", {}, "identity"),
    ("quantile", {"alpha": 0.7}, "identity"),
    ("mape", {}, "identity"),
    ("regression", {"reg_sqrt": True}, "signed_square"),
    ("regression_l1", {"reg_sqrt": True}, "signed_square"),
    ("huber", {"reg_sqrt": True}, "identity"),  # LightGBM disables sqrt for huber
    ("poisson", {}, "exp"),
    ("gamma", {}, "exp"),
    ("tweedie", {"tweedie_variance_power": 1.3}, "exp"),
]


@pytest.mark.parametrize(("objective", "extra", "transform"), REGRESSION_OBJECTIVES)
def test_regression_objectives(tmp_path, rank, objective, extra, transform):
    Xtr, ytr, _, Xte = rank
    y = ytr + 1.0 if objective in ("gamma", "mape") else ytr
    path, model = train_and_reload(tmp_path, dict(objective=objective, **extra), Xtr, y)
    ens = check_file(path, model, Xte)
    assert ens.transform == transform
    assert ens.provenance["objective"].split()[0] == objective


@pytest.mark.parametrize("sigmoid", [1.0, 0.7])
def test_binary(tmp_path, binary_data, sigmoid):
    Xtr, ytr, Xte, _ = binary_data
    path, model = train_and_reload(tmp_path, dict(objective="binary", sigmoid=sigmoid), Xtr, ytr)
    ens = check_file(path, model, Xte[:500])
    assert (ens.transform, ens.transform_params) == ("sigmoid", {"alpha": sigmoid})


def test_binary_sigmoid_parsed_like_lightgbm_atof(tmp_path, binary_data):
    """'sigmoid:3.64219' is read by LightGBM's imprecise Common::Atof, not correctly rounded: the
    transformed output is only bit-exact with the emulated parser (C20: compare with the file)."""
    Xtr, ytr, Xte, _ = binary_data
    path, model = train_and_reload(tmp_path, dict(objective="binary", sigmoid=3.64219), Xtr, ytr)
    assert "objective=binary sigmoid:3.64219\n" in path.read_text()
    ens = check_file(path, model, Xte)
    alpha = ens.transform_params["alpha"]
    assert alpha != float("3.64219")  # Atof is one ulp off here
    naive = Ensemble.from_dict({**ens.to_dict()})
    naive.transform_params = {"alpha": float("3.64219")}
    rows = np.vstack([Xte, edge_rows(ens, Xte)])
    assert not np.array_equal(naive.predict(rows), model.predict(rows))  # the emulation matters


def test_cross_entropy(tmp_path, rank):
    Xtr, ytr, _, Xte = rank
    path, model = train_and_reload(tmp_path, dict(objective="cross_entropy"), Xtr, ytr / 4.0)
    ens = check_file(path, model, Xte)
    assert (ens.transform, ens.transform_params) == ("sigmoid", {"alpha": 1.0})


def test_cross_entropy_lambda(tmp_path, rank):
    Xtr, ytr, _, Xte = rank
    path, model = train_and_reload(tmp_path, dict(objective="cross_entropy_lambda"), Xtr, ytr / 4.0)
    assert check_file(path, model, Xte).transform == "log1p_exp"


@pytest.mark.parametrize("num_class", [3, 5])
def test_multiclass(tmp_path, rank, num_class):
    """C11: tree t adds to class t % num_class; softmax in double."""
    Xtr, ytr, _, Xte = rank
    y = np.minimum(ytr, num_class - 1)
    path, model = train_and_reload(tmp_path, dict(objective="multiclass", num_class=num_class), Xtr, y, rounds=4)
    ens = check_file(path, model, Xte)
    assert ens.n_outputs == num_class and ens.transform == "softmax"
    np.testing.assert_array_equal(ens.tree_output, np.arange(ens.n_trees) % num_class)


def test_multiclassova(tmp_path, rank):
    Xtr, ytr, _, Xte = rank
    y = np.minimum(ytr, 2)
    params = dict(objective="multiclassova", num_class=3, sigmoid=1.3)
    path, model = train_and_reload(tmp_path, params, Xtr, y, rounds=4)
    ens = check_file(path, model, Xte)
    assert (ens.transform, ens.n_outputs) == ("sigmoid", 3)


@pytest.mark.parametrize("objective", ["lambdarank", "rank_xendcg"])
def test_ranking(tmp_path, rank, objective):
    Xtr, ytr, gtr, Xte = rank
    path, model = train_and_reload(tmp_path, dict(objective=objective), Xtr, ytr, group=gtr)
    assert check_file(path, model, Xte).transform == "identity"


def test_custom_objective_is_raw(tmp_path, rank):
    """A user objective leaves no objective line: LightGBM applies no transform."""
    Xtr, ytr, _, Xte = rank

    def l2(preds, ds):
        return preds - ds.get_label(), np.ones_like(preds)

    path, model = train_and_reload(tmp_path, dict(objective=l2), Xtr, ytr, rounds=4)
    assert "\nobjective=" not in path.read_text()
    ens = check_file(path, model, Xte)
    assert ens.transform == "identity" and "custom objective" in ens.provenance["notes"][0]


# --------------------------------------------------------------------------- model kinds
def test_random_forest_average(tmp_path, rank):
    """C12: rf divides predict() by the iterations used, but raw_score=True is the plain sum."""
    Xtr, ytr, _, Xte = rank
    params = dict(objective="regression", boosting="rf", bagging_fraction=0.6, bagging_freq=1)
    path, model = train_and_reload(tmp_path, params, Xtr, ytr, rounds=6)
    ens = check_file(path, model, Xte)
    assert ens.average_denominator == 6.0 and ens.average_raw is False
    raw = model.predict(Xte, raw_score=True)
    assert not np.allclose(raw, model.predict(Xte))  # LightGBM itself: raw is not averaged
    part = lgbf.load_text(path, num_iteration=4, start_iteration=1)
    assert part.average_denominator == 4.0
    for M in (Xte, as32(Xte)):
        kw = dict(num_iteration=4, start_iteration=1)
        assert_bit_equal(part.predict(M), model.predict(M, **kw), "rf slice")
        assert_bit_equal(part.predict(M, raw_score=True), model.predict(M, raw_score=True, **kw), "rf slice raw")


def test_random_forest_binary_multiclass(tmp_path, rank):
    Xtr, ytr, _, Xte = rank
    params = dict(objective="multiclass", num_class=3, boosting="rf", bagging_fraction=0.6, bagging_freq=1)
    path, model = train_and_reload(tmp_path, params, Xtr, np.minimum(ytr, 2), rounds=3)
    ens = check_file(path, model, Xte)
    assert ens.average_denominator == 3.0  # iterations, not trees (lleaves divides by trees)


def test_dart(tmp_path, rank):
    """C13: DART rescales dropped trees by rewriting their saved leaves; the file is a plain sum."""
    Xtr, ytr, _, Xte = rank
    params = dict(objective="binary", boosting="dart", drop_rate=0.5, skip_drop=0.0)
    path, model = train_and_reload(tmp_path, params, Xtr, (ytr > 1).astype(float), rounds=10)
    ens = check_file(path, model, Xte)
    assert ens.provenance["boosting"] == "dart" and np.all(ens.tree_weight == 1.0)


def test_linear_tree(tmp_path, rank_nan):
    """C16: linear leaves = const + sum(coeff * x), falling back to leaf_value on any NaN."""
    Xtr, ytr, _, Xte = rank_nan
    path, model = train_and_reload(tmp_path, dict(objective="regression", linear_tree=True), Xtr[:, :40], ytr)
    ens = check_file(path, model, Xte[:, :40])
    assert ens.has_linear_leaves
    assert ens.leaf_linear_coeff is not None and ens.leaf_linear_coeff.size > 0


@pytest.mark.parametrize(
    ("params", "policy"),
    [
        ({}, Missing.NAN_DEFAULT),
        ({"zero_as_missing": True}, Missing.ZERO_NAN_DEFAULT),
        ({"use_missing": False}, Missing.NAN_AS_ZERO),
    ],
)
def test_missing_types(tmp_path, rank_nan, params, policy):
    """C5/C6/C9: the three LightGBM missing types on NaN training data, dense and CSR input."""
    Xtr, ytr, _, Xte = rank_nan
    path, model = train_and_reload(tmp_path, dict(objective="regression", **params), Xtr, ytr)
    ens = check_file(path, model, Xte)
    numeric = (ens.left >= 0) & (ens.categorical == 0)
    assert policy in set(ens.missing[numeric].tolist())


def test_zero_band_dense_vs_csr(tmp_path, rank):
    """LightGBM drops |x| <= 1e-35f from dense rows only; CSR entries are compared as stored."""
    Xtr, ytr, _, Xte = rank
    sign = np.where(np.arange(Xtr.shape[1]) % 2, 1.0, -1.0)  # negatives next to zeros: -1e-35f edges
    Xtr, Xte = Xtr * sign, Xte * sign
    path, model = train_and_reload(tmp_path, dict(objective="regression"), Xtr, ytr)
    ens = lgbf.load_text(path)
    at_band = (ens.left >= 0) & (ens.threshold == -LIGHTGBM_ZERO_BAND)
    assert at_band.any()  # LightGBM puts bin edges at +-1e-35f
    blocks = []
    for f in np.unique(ens.feature[at_band]):
        for v in (-LIGHTGBM_ZERO_BAND, LIGHTGBM_ZERO_BAND, -1e-36, 1e-36):
            b = Xte[:60].copy()
            b[:, f] = v
            blocks.append(b)
    rows = np.vstack(blocks)
    dense, csr = model.predict(rows, raw_score=True), model.predict(sp.csr_matrix(rows), raw_score=True)
    assert not np.array_equal(dense, csr)  # the two input kinds really differ in LightGBM
    assert_bit_equal(ens.predict(rows, raw_score=True), dense, "dense")
    assert_bit_equal(ens.predict(sp.csr_matrix(rows), raw_score=True), csr, "csr")
    assert_bit_equal(ens.predict(sp.csc_matrix(rows), raw_score=True), model.predict(sp.csc_matrix(rows), raw_score=True), "csc")


def test_input_kinds(tmp_path, rank):
    """C7: numpy, list, DataFrame, CSR, CSC and int arrays of the same rows each give what LightGBM
    gives for that kind of input (tiny values included: dense-like kinds zero them, CSR not)."""
    Xtr, ytr, _, Xte = rank
    sign = np.where(np.arange(30) % 2, 1.0, -1.0)
    path, model = train_and_reload(tmp_path, dict(objective="regression"), Xtr[:, :30] * sign, ytr)
    ens = lgbf.load_text(path)
    rows = Xte[:120, :30] * sign
    rows[::3, ::2] = -LIGHTGBM_ZERO_BAND
    rows[1::3, 1::2] = 1e-36
    frame = pd.DataFrame(rows, columns=ens.feature_names)
    kinds = {
        "numpy": rows,
        "list": rows.tolist(),
        "frame": frame,
        "frame32": frame.astype(np.float32),
        "csr": sp.csr_matrix(rows),
        "csr_array": sp.csr_array(rows),
        "coo": sp.coo_matrix(rows),
        "csc": sp.csc_matrix(rows),
        "int32": (rows * 1000).astype(np.int32),
    }
    for kind, M in kinds.items():
        assert_bit_equal(ens.predict(M, raw_score=True), model.predict(M, raw_score=True), kind)
        np.testing.assert_array_equal(ens.predict_leaf(M), model.predict(M, pred_leaf=True), kind)


def test_dataframe_columns_bound_by_name(tmp_path, binary_data):
    """C18: a DataFrame is bound by the model's feature names, never silently by position."""
    from ltrcompile.errors import InputDataError

    Xtr, ytr, Xte, _ = binary_data
    names = [f"feat_{i}" for i in range(Xtr.shape[1])]
    booster = lgb.train(dict(BASE, objective="binary"), lgb.Dataset(pd.DataFrame(Xtr, columns=names), ytr), 5)
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    model = lgb.Booster(model_file=str(path))
    ens = lgbf.load_text(path)
    test = pd.DataFrame(Xte[:300], columns=names)
    shuffled = test[names[::-1]]
    assert_bit_equal(ens.predict(shuffled), model.predict(test), "shuffled columns")
    with pytest.raises(lgb.basic.LightGBMError):  # LightGBM itself only notices when asked to
        model.predict(shuffled, validate_features=True)
    with pytest.raises(InputDataError, match="feat_0"):
        ens.predict(test.rename(columns={"feat_0": "other"}))


def test_integer_input_cast_to_float32(tmp_path):
    """C4/C13: LightGBM's Python package casts int arrays to float32 (16777217 -> 16777216)."""
    rng = np.random.default_rng(0)
    X = (16777216 + rng.integers(0, 6, size=(400, 2))).astype(np.float64)
    y = X[:, 0] % 2 + 0.1 * X[:, 1]
    path, model = train_and_reload(tmp_path, dict(objective="regression", num_leaves=4, min_data_in_leaf=2), X, y)
    ens = lgbf.load_text(path)
    Xi = X.astype(np.int64)
    assert not np.array_equal(model.predict(Xi), model.predict(X))  # the cast is observable
    assert_bit_equal(ens.predict(Xi), model.predict(Xi), "int64")
    assert_bit_equal(ens.predict(X), model.predict(X), "float64")


# --------------------------------------------------------------------------- categorical (C10)
def _cat_data(rank, nan: bool = True):
    Xtr, ytr, _, Xte = rank
    Xc, Xt = Xtr[:, :40].copy(), Xte[:, :40].copy()
    src = Xtr[:, 7]
    edges = np.unique(np.quantile(src, np.linspace(0, 1, 31)[1:-1]))
    codes = np.sort(np.random.default_rng(2).choice(70, edges.size + 1, replace=False))  # multi-word
    Xc[:, 0] = codes[np.digitize(src, edges)]
    Xt[:, 0] = codes[np.digitize(Xte[:, 7], edges)]
    Xc[:, 1] = (Xtr[:, 9] * 7).astype(int) % 40 + 30  # codes 30..69: bitsets of several words
    Xt[:, 1] = (Xte[:, 9] * 7).astype(int) % 40 + 30
    if nan:
        rng = np.random.default_rng(1)
        Xc[rng.random(len(Xc)) < 0.05, 0] = np.nan
    return Xc, ytr, Xt


def test_categorical_numpy(tmp_path, rank):
    Xc, y, Xt = _cat_data(rank)
    params = dict(objective="regression", min_data_per_group=5, cat_smooth=1, max_cat_to_onehot=2)
    path, model = train_and_reload(tmp_path, params, Xc, y, categorical_feature=[0, 1])
    ens = check_file(path, model, Xt)
    cat = (ens.left >= 0) & (ens.categorical == 1)
    assert cat.any() and np.all(ens.cat_left[cat] == 1)
    assert np.all(ens.missing[cat] == Missing.NAN_FALSE)
    assert ens.categories.max() >= 32  # multi-word bitsets decoded LSB-first
    assert ens.feature_categories is None


def test_categorical_one_hot_style(tmp_path, rank):
    Xc, y, Xt = _cat_data(rank, nan=False)
    params = dict(objective="binary", max_cat_to_onehot=64, min_data_per_group=5)
    path, model = train_and_reload(tmp_path, params, Xc, (y > 1).astype(float), categorical_feature=[0])
    check_file(path, model, Xt)


def _frame(X: np.ndarray, labels: list[str], codes: np.ndarray, *, ordered_col: bool = False):
    df = pd.DataFrame({f"f{j}": X[:, j] for j in range(2, 12)})
    df.insert(1, "color", pd.Categorical.from_codes(codes, categories=labels))
    if ordered_col:
        df["size"] = pd.Categorical.from_codes(codes % 3, categories=["S", "M", "L"], ordered=True)
    return df


def test_pandas_categorical(tmp_path, rank):
    """C10/C7: pandas labels -> training codes via pandas_categorical; unseen labels -> NaN;
    a frame whose categories are listed in another order is re-coded the same way."""
    Xc, y, Xt = _cat_data(rank, nan=False)
    labels = [f"c{k:02d}" for k in range(70)]
    df = _frame(Xc, labels, Xc[:, 0].astype(int))
    params = dict(objective="regression", min_data_per_group=5, cat_smooth=1, max_cat_to_onehot=2)
    booster = lgb.train(dict(BASE, **params), lgb.Dataset(df, y), 8)
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    model = lgb.Booster(model_file=str(path))
    ens = lgbf.load_text(path)
    assert ens.feature_categories == {1: labels}
    assert ens.feature_names == list(df.columns)
    test = _frame(Xt, labels, Xt[:, 0].astype(int))
    values = test["color"].astype(object).to_numpy().copy()
    values[::7] = "purple"  # never seen in training
    values[3::11] = None
    shuffled = labels[::-1] + ["purple"]
    test["color"] = pd.Categorical(values, categories=shuffled)
    test["f2"] = test["f2"].astype(np.float32)
    for frame in (test, test.astype({c: np.float32 for c in test.columns if c != "color"})):
        assert_bit_equal(ens.predict(frame, raw_score=True), model.predict(frame, raw_score=True), "pandas raw")
        np.testing.assert_array_equal(ens.predict_leaf(frame), model.predict(frame, pred_leaf=True))
    # the JSON dump carries pandas_categorical and the categorical features too
    jpath = tmp_path / "model.json"
    jpath.write_text(json.dumps(model.dump_model()))
    ens_j = lgbf.load_dump_json(jpath)
    assert ens_j.feature_categories == {1: labels}
    assert_bit_equal(ens_j.predict(test, raw_score=True), model.predict(test, raw_score=True), "json pandas")


def test_pandas_ordered_category_needs_binding(tmp_path, rank):
    """An ordered category column is in pandas_categorical but is not a categorical feature:
    the lists cannot be bound by themselves, so loading fails loudly unless told."""
    Xc, y, Xt = _cat_data(rank, nan=False)
    labels = [f"c{k:02d}" for k in range(70)]
    df = _frame(Xc, labels, Xc[:, 0].astype(int), ordered_col=True)
    params = dict(objective="regression", min_data_per_group=5, cat_smooth=1)
    booster = lgb.train(dict(BASE, **params), lgb.Dataset(df, y), 5)
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    with pytest.raises(UnsupportedModelError, match="pandas_categorical") as err:
        lgbf.load_text(path)
    assert "category_features" in str(err.value)
    size_col = list(df.columns).index("size")
    ens = lgbf.load_text(path, category_features=[1, size_col])
    assert ens.feature_categories == {1: labels, size_col: ["S", "M", "L"]}
    model = lgb.Booster(model_file=str(path))
    test = _frame(Xt, labels, Xt[:, 0].astype(int), ordered_col=True)
    assert_bit_equal(ens.predict(test, raw_score=True), model.predict(test, raw_score=True), "ordered")


# --------------------------------------------------------------------------- iterations (C17)
def test_early_stopping_best_iteration(tmp_path, rank):
    Xtr, ytr, gtr, Xte = rank
    train = lgb.Dataset(Xtr[:2000], ytr[:2000])
    valid = lgb.Dataset(Xtr[2000:], ytr[2000:], reference=train)
    params = dict(BASE, objective="regression", learning_rate=0.5, num_leaves=31)
    booster = lgb.train(
        params, train, 60, valid_sets=[valid], callbacks=[lgb.early_stopping(3, verbose=False)],
        keep_training_booster=True,
    )
    best = booster.best_iteration
    assert 0 < best < booster.current_iteration()
    full = lgb.Booster(model_str=booster.model_to_string(num_iteration=-1))  # reloaded, all trees
    ens = lgbf.from_object(booster)  # in memory: defaults to best_iteration like predict()
    prov = ens.provenance
    assert prov.best_iteration == best and prov.iteration_range == (0, best) and prov.tree_selection == "best_iteration"
    assert ens.n_trees == best
    assert_bit_equal(ens.predict(Xte), full.predict(Xte, num_iteration=best), "best_iteration")
    everything = lgbf.from_object(booster, num_iteration=-1)
    assert_bit_equal(everything.predict(Xte), full.predict(Xte, num_iteration=-1), "all iterations")
    path = tmp_path / "model.txt"
    booster.save_model(str(path))  # saves up to best_iteration
    saved = lgbf.load_text(path)
    assert saved.n_trees == best
    assert_bit_equal(saved.predict(Xte), lgb.Booster(model_file=str(path)).predict(Xte), "saved best")


@pytest.mark.parametrize(("start", "num"), [(0, 3), (2, 4), (3, None), (5, 100), (0, 0), (-2, -1), (9, 1)])
def test_start_and_num_iteration(tmp_path, rank, start, num):
    """GBDT::InitPredict clamping; start_iteration > 0 drops the intercept just as LightGBM does."""
    Xtr, ytr, _, Xte = rank
    path, model = train_and_reload(tmp_path, dict(objective="multiclass", num_class=3), Xtr, np.minimum(ytr, 2))
    kw = {"start_iteration": start, "num_iteration": num}
    ens = lgbf.load_text(path, **kw)
    rows = np.vstack([Xte, edge_rows(ens, Xte, max_rows=2000)]) if ens.n_trees else Xte
    for M in (rows, as32(rows)):
        assert_bit_equal(ens.predict(M, raw_score=True), model.predict(M, raw_score=True, **kw), "raw")
        assert_bit_equal(ens.predict(M), model.predict(M, **kw), "transformed")
        np.testing.assert_array_equal(ens.predict_leaf(M), model.predict(M, pred_leaf=True, **kw))


def test_from_object_booster_and_sklearn(tmp_path, binary_data):
    Xtr, ytr, Xte, _ = binary_data
    clf = lgb.LGBMClassifier(n_estimators=6, num_leaves=8, n_jobs=1, deterministic=True, verbose=-1)
    clf.fit(Xtr, ytr)
    assert lgbf.accepts(clf) and lgbf.accepts(clf.booster_) and not lgbf.accepts(object())
    ens = load_model(clf)
    path = tmp_path / "m.txt"
    clf.booster_.save_model(str(path))
    model = lgb.Booster(model_file=str(path))
    assert_bit_equal(ens.predict(Xte), model.predict(Xte), "sklearn")
    assert_bit_equal(ens.predict(Xte), clf.predict_proba(Xte)[:, 1], "predict_proba[:, 1]")
    assert ens.provenance["source"] == "LGBMModel" and ens.provenance["lightgbm_version"] == lgb.__version__
    with pytest.raises(ModelFormatError, match="not fitted"):
        lgbf.from_object(lgb.LGBMRegressor())


def test_feature_names_option(tmp_path, binary_data):
    Xtr, ytr, Xte, _ = binary_data
    path, _ = train_and_reload(tmp_path, dict(objective="binary"), Xtr, ytr, rounds=2)
    names = [f"feat_{i}" for i in range(Xtr.shape[1])]
    assert lgbf.load_text(path).feature_names == [f"Column_{i}" for i in range(Xtr.shape[1])]
    assert lgbf.load_text(path, feature_names=names).feature_names == names
    with pytest.raises(ValueError, match="feature_names"):
        lgbf.load_text(path, feature_names=names[:-1])


# --------------------------------------------------------------------------- formats, old versions
@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("v3_*.txt")))
def test_lightgbm_3_3_files(name):
    """Format v3 files written by lightgbm 3.3.5, checked against 3.3.5's own predictions."""
    ens = lgbf.load_text(FIXTURES / f"{name}.txt")
    assert ens.provenance["model_version"] == "v3"
    ref = np.load(FIXTURES / f"{name}.npz")
    rows = ref["rows"]
    for suffix, M in (("", rows), ("32", as32(rows))):
        assert_bit_equal(ens.predict(M, raw_score=True), ref["raw" + suffix], f"{name} raw{suffix}")
        assert_bit_equal(ens.predict(M), ref["pred" + suffix], f"{name} pred{suffix}")
        np.testing.assert_array_equal(ens.predict_leaf(M), ref["leaf" + suffix])


def test_v3_fixture_kinds():
    """The old-version fixtures really cover categorical splits, linear trees, rf and Zero type."""
    cat = lgbf.load_text(FIXTURES / "v3_binary_categorical.txt")
    assert cat.categorical[cat.left >= 0].any() and cat.transform_params == {"alpha": 0.7}
    lin = lgbf.load_text(FIXTURES / "v3_linear.txt")
    assert lin.has_linear_leaves and lin.categorical[lin.left >= 0].any()
    assert lgbf.load_text(FIXTURES / "v3_rf.txt").average_denominator == 6.0
    zero = lgbf.load_text(FIXTURES / "v3_multiclass_zero.txt")
    assert Missing.ZERO_NAN_DEFAULT in set(zero.missing[zero.left >= 0].tolist())


def test_format_detection(tmp_path):
    src = FIXTURES / "v3_binary_categorical.txt"
    model = lgb.Booster(model_file=str(src))
    jpath = tmp_path / "dump.json"
    jpath.write_text(json.dumps(model.dump_model(), indent=2))
    assert detect_format(str(src)) == "lightgbm-text"
    assert detect_format(str(jpath)) == "lightgbm-json"
    a, b = load_model(src), load_model(jpath)
    assert a.provenance["format"] == "lightgbm-text" and b.provenance["format"] == "lightgbm-json"
    rows = np.load(FIXTURES / "v3_binary_categorical.npz")["rows"]
    assert_bit_equal(a.predict(rows), b.predict(rows), "text vs json")
    assert lgbf.sniff(b'{"ltrcompile-ir": 1}', "x.json") == []
    assert lgbf.sniff(b"tree\r\nversion=v4\r\n", "m.txt") == ["lightgbm-text"]


def test_ir_json_round_trip_is_exact():
    ens = lgbf.load_text(FIXTURES / "v3_linear.txt")
    back = Ensemble.from_json(ens.to_json())
    assert back.digest() == ens.digest()
    rows = np.load(FIXTURES / "v3_linear.npz")["rows"]
    assert_bit_equal(back.predict(rows), ens.predict(rows), "round trip")


def test_crlf_and_tree_sizes_tolerated(tmp_path):
    """Windows line endings and stale tree_sizes (e.g. after editing a file) still load."""
    text = (FIXTURES / "v3_regression.txt").read_text()
    text = re.sub(r"tree_sizes=(\d+)", lambda m: f"tree_sizes={int(m.group(1)) + 17}", text)
    path = tmp_path / "crlf.txt"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    ref = np.load(FIXTURES / "v3_regression.npz")
    ens = lgbf.load_text(path)
    assert_bit_equal(ens.predict(ref["rows"], raw_score=True), ref["raw"], "crlf")


def test_infinite_thresholds(tmp_path):
    """C19: LightGBM writes 'inf' thresholds (last numeric bin before the NaN bin); the text keeps
    them, dump_model() clamps them to 1e300 -- both must route +-1e300 / +-inf like LightGBM."""
    text = (FIXTURES / "v3_regression.txt").read_text()
    assert re.search(r"^threshold=.*\binf\b", text, re.M)  # real training produced them
    lines = [s for s in text.split("\n") if not s.startswith("tree_sizes=")]  # LightGBM seeks by them
    k = next(i for i, s in enumerate(lines) if s.startswith("threshold="))
    vals = lines[k].split("=", 1)[1].split()
    vals[0], vals[-1] = "-inf", "1e300"
    lines[k] = "threshold=" + " ".join(vals)
    path = tmp_path / "inf.txt"
    path.write_text("\n".join(lines))
    model = lgb.Booster(model_file=str(path))
    ens = lgbf.load_text(path)
    rows = np.vstack([np.load(FIXTURES / "v3_regression.npz")["rows"], edge_rows(ens)])
    assert_bit_equal(ens.predict(rows, raw_score=True), model.predict(rows, raw_score=True), "inf text")
    jpath = tmp_path / "inf.json"
    jpath.write_text(json.dumps(lgb.Booster(model_file=str(FIXTURES / "v3_regression.txt")).dump_model()))
    orig = lgb.Booster(model_file=str(FIXTURES / "v3_regression.txt"))
    assert "1e+300" in jpath.read_text()
    assert_bit_equal(
        lgbf.load_dump_json(jpath).predict(rows, raw_score=True), orig.predict(rows, raw_score=True), "inf json"
    )


def test_constant_trees(tmp_path):
    """num_leaves=1 trees (no split possible) become one leaf; linear constant trees too."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = rng.normal(size=50)
    for extra in ({}, {"linear_tree": True}):
        params = dict(objective="regression", min_data_in_leaf=100, **extra)
        path, model = train_and_reload(tmp_path, params, X, y, rounds=3)
        assert "num_leaves=1\n" in path.read_text()
        check_file(path, model, X)


# --------------------------------------------------------------------------- bad input
def _text(name: str = "v3_binary_categorical") -> str:
    return (FIXTURES / f"{name}.txt").read_text()


def _load(tmp_path: Path, text: str) -> Ensemble:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    return lgbf.load_text(path)


def _sub_line(text: str, key: str, new: str, tree: int = 0) -> str:
    start = text.index(f"Tree={tree}\n")
    i = text.index(f"\n{key}=", start) + 1
    j = text.index("\n", i)
    return text[:i] + new + text[j:]


@pytest.mark.parametrize(
    ("key", "value", "field", "node"),
    [
        ("threshold", "threshold=1 2", "threshold", None),
        ("left_child", "left_child=1 2 3 4 5 6 7 8 9 10 99", "left_child", 10),
        ("left_child", "left_child=abc", "left_child", None),
        ("split_feature", "split_feature=0 0 0 0 0 0 0 0 0 0 9", "split_feature", 10),
        ("decision_type", "decision_type=2 2 2 2 2 2 2 2 2 2 12", "decision_type", 10),
        ("decision_type", "decision_type=2 2 2 2 2 2 2 2 2 2 18", "decision_type", 10),
        ("leaf_value", "leaf_value=1 2 3", "leaf_value", None),
        ("num_leaves", "num_leaves=0", "num_leaves", None),
        ("num_leaves", "num_leaves=x", "num_leaves", None),
        ("num_leaves", "num_leaves=1000000000", "num_leaves", None),
        ("cat_boundaries", "cat_boundaries=3 1", "cat_boundaries", None),
        ("cat_threshold", "cat_threshold=1 -2", "cat_threshold", None),
    ],
)
def test_bad_tree_fields_name_the_place(tmp_path, key, value, field, node):
    text = _text()
    tree = 4
    assert "Tree=4\nnum_leaves=12\nnum_cat=1\n" in text  # 11 internal nodes, one categorical
    with pytest.raises(ModelFormatError) as err:
        _load(tmp_path, _sub_line(text, key, value, tree))
    e = err.value
    assert (e.tree, e.field) == (tree, field) and str(tmp_path / "bad.txt") in str(e)
    if node is not None:
        assert e.node == node


def test_bad_structure(tmp_path):
    text = _text("v3_regression")
    block = text[text.index("Tree=1\n") :]
    left = re.search(r"left_child=(.*)", block).group(1).split()
    right = re.search(r"right_child=(.*)", block).group(1).split()
    # point an internal node back at its parent: a cycle (LightGBM would loop forever)
    parent = next(i for i, c in enumerate(left) if int(c) > 0)
    child = int(left[parent])
    cyc_left = left.copy()
    cyc_left[child] = str(parent) if parent else str(child)
    bad = _sub_line(text, "left_child", "left_child=" + " ".join(cyc_left), 1)
    with pytest.raises(ModelFormatError, match="parents|cycle|root") as err:
        _load(tmp_path, bad)
    assert err.value.tree == 1
    # a leaf used twice
    dup_right = right.copy()
    leafs = [i for i, c in enumerate(right) if int(c) < 0]
    dup_right[leafs[0]] = right[leafs[1]]
    with pytest.raises(ModelFormatError, match="parents"):
        _load(tmp_path, _sub_line(text, "right_child", "right_child=" + " ".join(dup_right), 1))


def test_missing_and_bad_header(tmp_path):
    text = _text("v3_regression")
    for key in ("num_class", "max_feature_idx", "feature_names", "feature_infos", "label_index"):
        bad = re.sub(rf"^{key}=.*\n", "", text, count=1, flags=re.M)
        with pytest.raises(ModelFormatError, match=key):
            _load(tmp_path, bad)
    with pytest.raises(ModelFormatError, match="feature_names"):
        _load(tmp_path, text.replace("feature_names=Column_0 ", "feature_names="))
    with pytest.raises(ModelFormatError, match="multiple of num_tree_per_iteration"):
        _load(tmp_path, text.replace("num_tree_per_iteration=1", "num_tree_per_iteration=5"))
    with pytest.raises(ModelFormatError, match="tree_sizes"):
        _load(tmp_path, re.sub(r"^(tree_sizes=.*)$", r"\1 100", text, count=1, flags=re.M))
    with pytest.raises(ModelFormatError, match="Tree=5 at position 4"):
        _load(tmp_path, text.replace("Tree=4\n", "Tree=5\n"))
    with pytest.raises(ModelFormatError, match="no such file"):
        load_model(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    ("old", "new", "error", "match"),
    [
        ("version=v3", "version=v9", UnsupportedModelError, "v9"),
        ("objective=regression", "objective=survival_cox", UnsupportedModelError, "survival_cox"),
        ("objective=regression", "objective=binary", ModelFormatError, "sigmoid"),
        ("objective=regression", "objective=binary sigmoid:-1", ModelFormatError, "sigmoid"),
        ("objective=regression", "objective=binary sigmoid:nan", ModelFormatError, "sigmoid"),
        ("objective=regression", "objective=multiclass num_class:3", ModelFormatError, "num_class"),
        ("objective=regression", "objective=", ModelFormatError, "objective"),
    ],
)
def test_objective_and_version_errors(tmp_path, old, new, error, match):
    text = _text("v3_regression")
    assert old in text
    with pytest.raises(error, match=match):
        _load(tmp_path, text.replace(old, new, 1))


def test_objective_aliases_and_custom(tmp_path):
    text = _text("v3_regression")
    for objective, transform in [("xentropy", "sigmoid"), ("mae", "identity"), ("none", "identity"), ("custom", "identity")]:
        assert _load(tmp_path, text.replace("objective=regression", f"objective={objective}", 1)).transform == transform


def test_non_finite_leaf_and_nan_threshold(tmp_path):
    text = _text("v3_regression")
    lv = re.search(r"Tree=2\n(?:.*\n)*?leaf_value=(\S+)", text).group(1)
    with pytest.raises(UnsupportedModelError, match="non-finite") as err:
        _load(tmp_path, text.replace(f"leaf_value={lv}", "leaf_value=nan", 1))
    assert err.value.tree is not None
    thr = re.search(r"threshold=(\S+)", text).group(1)
    with pytest.raises(ModelFormatError, match="NaN threshold"):
        _load(tmp_path, text.replace(f"threshold={thr}", "threshold=nan", 1))


def test_truncated_and_garbage_files(tmp_path):
    text = _text("v3_linear")
    end = text.index("end of trees")
    for cut in (0, 10, 200, len(text) // 3, end - 1, end + 5):
        with pytest.raises(ModelFormatError):
            _load(tmp_path, text[:cut])
    pe = text.index("end of parameters")
    with pytest.raises(ModelFormatError, match="end of parameters"):
        _load(tmp_path, text[:pe])
    with pytest.raises(ModelFormatError, match="pandas_categorical"):
        _load(tmp_path, text.rstrip("\n") + "\npandas_categorical:[[1, 2]\n")
    (tmp_path / "bin.txt").write_bytes(b"tree\nversion=v4\n\xff\xfe")
    with pytest.raises(ModelFormatError, match="UTF-8"):
        lgbf.load_text(tmp_path / "bin.txt")
    (tmp_path / "bad.json").write_text('{"tree_info": [')
    with pytest.raises(ModelFormatError, match="invalid JSON"):
        lgbf.load_dump_json(tmp_path / "bad.json")


def _drop_id(node: dict) -> None:
    node.pop("split_index" if "split_index" in node else "leaf_value")


def test_bad_dump_json(tmp_path):
    model = lgb.Booster(model_file=str(FIXTURES / "v3_binary_categorical.txt"))
    good = model.dump_model()

    def load(doc):
        p = tmp_path / "d.json"
        p.write_text(json.dumps(doc))
        return lgbf.load_dump_json(p)

    load(good)
    for mutate, match in [
        (lambda d: d.pop("max_feature_idx"), "max_feature_idx"),
        (lambda d: d.pop("tree_info"), "tree_info"),
        (lambda d: d["tree_info"][1].__setitem__("num_leaves", 3), "outside"),
        (lambda d: d["tree_info"][1]["tree_structure"].__setitem__("decision_type", "<"), "decision_type"),
        (lambda d: d["tree_info"][1]["tree_structure"].__setitem__("missing_type", "Maybe"), "missing_type"),
        (lambda d: d["tree_info"][1]["tree_structure"].__setitem__("threshold", "x"), "number"),
        (lambda d: d["tree_info"][1]["tree_structure"].__setitem__("left_child", 5), "object"),
        (lambda d: _drop_id(d["tree_info"][1]["tree_structure"]["left_child"]), "neither split_index nor leaf_value"),
        (lambda d: d["tree_info"][0]["tree_structure"].__setitem__("split_feature", 77), "split feature"),
        (lambda d: d["tree_info"][0].__setitem__("num_leaves", 10**9), "num_leaves"),  # no 8 GB alloc
    ]:
        doc = json.loads(json.dumps(good))
        mutate(doc)
        with pytest.raises(ModelFormatError, match=match):
            load(doc)
    with pytest.raises(ModelFormatError, match="JSON object"):
        load([1, 2])


# --------------------------------------------------------------------------- property tests
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

N_FEAT = 4
SPECIAL_THRESHOLDS = [0.0, -0.0, LIGHTGBM_ZERO_BAND, -LIGHTGBM_ZERO_BAND, 1e-36, math.inf, -math.inf, 1.5, -2.25]


@st.composite
def lgb_tree(draw, linear: bool) -> str:
    """One random valid tree block grown the way LightGBM grows trees (split a leaf: the leaf keeps
    its index on the left, the new leaf takes the next index on the right)."""
    L = draw(st.integers(1, 8))
    left: list[int] = []
    right: list[int] = []
    parent_of_leaf: dict[int, tuple[int, str]] = {}
    for new_leaf in range(1, L):
        j = draw(st.integers(0, new_leaf - 1))
        node = len(left)
        if j in parent_of_leaf:
            p, side = parent_of_leaf[j]
            (left if side == "l" else right)[p] = node
        left.append(~j)
        right.append(~new_leaf)
        parent_of_leaf[j] = (node, "l")
        parent_of_leaf[new_leaf] = (node, "r")
    n_int = L - 1
    feats, thr, dts, words, bounds = [], [], [], [], [0]
    for _ in range(n_int):
        feats.append(draw(st.integers(0, N_FEAT - 1)))
        dl = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            k = draw(st.integers(1, 3))
            words += [draw(st.integers(0, 2**32 - 1)) for _ in range(k)]
            bounds.append(len(words))
            thr.append(repr(float(len(bounds) - 2)))
            dts.append(1 | (2 * dl) | (draw(st.integers(0, 2)) << 2))
        else:
            t = draw(st.one_of(st.sampled_from(SPECIAL_THRESHOLDS), st.floats(-1e6, 1e6, allow_nan=False)))
            thr.append(repr(t))
            dts.append((2 * dl) | (draw(st.integers(0, 2)) << 2))
    leaves = [repr(draw(st.floats(-10, 10, allow_nan=False))) for _ in range(L)]
    lines = [
        f"num_leaves={L}",
        f"num_cat={len(bounds) - 1}",
        "split_feature=" + " ".join(map(str, feats)),
        "threshold=" + " ".join(thr),
        "decision_type=" + " ".join(map(str, dts)),
        "left_child=" + " ".join(map(str, left)),
        "right_child=" + " ".join(map(str, right)),
        "leaf_value=" + " ".join(leaves),
    ]
    if len(bounds) > 1:
        lines += ["cat_boundaries=" + " ".join(map(str, bounds)), "cat_threshold=" + " ".join(map(str, words))]
    lines.append(f"is_linear={int(linear)}")
    if linear:
        nf = [draw(st.integers(0, 2)) for _ in range(L)]
        fs = [draw(st.integers(0, N_FEAT - 1)) for _ in range(sum(nf))]
        cs = [repr(draw(st.floats(-3, 3, allow_subnormal=False))) for _ in range(sum(nf))]  # stod
        lines += [
            "leaf_const=" + " ".join(repr(draw(st.floats(-5, 5, allow_subnormal=False))) for _ in range(L)),
            "num_features=" + " ".join(map(str, nf)),
            "leaf_features=" + " ".join(map(str, fs)) + " ",
            "leaf_coeff=" + " ".join(cs) + " ",
        ]
    lines.append("shrinkage=1")
    return "\n".join(lines)


@st.composite
def lgb_model(draw) -> str:
    objective, K = draw(
        st.sampled_from(
            [("regression", 1), ("binary sigmoid:0.5", 1), ("multiclass num_class:3", 3), ("poisson", 1)]
        )
    )
    linear = draw(st.booleans())
    n_trees = K * draw(st.integers(1, 3))
    trees = [draw(lgb_tree(linear)) for _ in range(n_trees)]
    head = [
        "tree", "version=v4", f"num_class={K}", f"num_tree_per_iteration={K}", "label_index=0",
        f"max_feature_idx={N_FEAT - 1}", f"objective={objective}",
        "feature_names=" + " ".join(f"f{i}" for i in range(N_FEAT)),
        "feature_infos=" + " ".join(["none"] * N_FEAT), "",
    ]
    body = "".join(f"Tree={i}\n{t}\n\n\n" for i, t in enumerate(trees))
    return "\n".join(head) + "\n" + body + "end of trees\n\nfeature_importances:\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lgb_model())
def test_random_models_match_lightgbm_and_round_trip(text):
    """Random valid text models: parse, agree with LightGBM loading the same text on edge rows,
    and survive the IR JSON round trip bit-exactly."""
    ens = lgbf.parse_text(text)
    model = lgb.Booster(model_str=text)
    rows = edge_rows(ens, max_rows=800)
    assert_bit_equal(ens.predict(rows, raw_score=True), model.predict(rows, raw_score=True), "raw")
    np.testing.assert_array_equal(ens.predict_leaf(rows), model.predict(rows, pred_leaf=True))
    back = Ensemble.from_json(ens.to_json())
    assert back.digest() == ens.digest()
    assert_bit_equal(back.predict(rows, raw_score=True), ens.predict(rows, raw_score=True), "round trip")


REQUIRED_TREE_KEYS = (
    "num_leaves", "num_cat", "split_feature", "threshold", "left_child", "right_child", "leaf_value",
    "cat_boundaries", "cat_threshold", "leaf_const", "num_features", "leaf_features", "leaf_coeff",
)
REQUIRED_HEADER_KEYS = ("num_class", "label_index", "max_feature_idx", "feature_names", "feature_infos")
PARSED_KEYS = REQUIRED_TREE_KEYS + ("decision_type", "is_linear")
MUTATION_SOURCES = {name: _text(name) for name in ("v3_binary_categorical", "v3_linear", "v3_multiclass_zero")}


def _parse_or_typed_error(text: str) -> Ensemble | None:
    try:
        return lgbf.parse_text(text, "mutant.txt")
    except (ModelFormatError, UnsupportedModelError) as exc:
        assert exc.path == "mutant.txt"
        return None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(MUTATION_SOURCES)), st.data())
def test_truncated_files_always_raise(name, data):
    text = MUTATION_SOURCES[name]
    cut = data.draw(st.integers(0, text.index("end of trees") + len("end of trees") - 1))
    with pytest.raises(ModelFormatError):
        lgbf.parse_text(text[:cut], "mutant.txt")
    anywhere = data.draw(st.integers(0, len(text)))
    _parse_or_typed_error(text[:anywhere])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(MUTATION_SOURCES)),
    st.data(),
    st.one_of(
        st.text(alphabet="xyz!#.,-+eE:;", min_size=1, max_size=4),
        st.sampled_from(["1.5.3", "--1", "0x10", "1e", "nan", "inf", "-7", "1e999", "99999999999", "3.0"]),
    ),
)
def test_corrupted_numbers(name, data, garbage):
    """Replacing one number in a tree line: either still a valid model or a typed error; in a
    parsed integer field, non-integers always raise."""
    text = MUTATION_SOURCES[name]
    lines = text.split("\n")
    start = lines.index("Tree=0")
    stop = lines.index("end of trees")
    candidates = [i for i in range(start, stop) if "=" in lines[i] and lines[i].split("=", 1)[1].strip() and not lines[i].startswith("Tree=")]
    i = data.draw(st.sampled_from(candidates))
    key, value = lines[i].split("=", 1)
    toks = value.split()
    k = data.draw(st.integers(0, len(toks) - 1))
    toks[k] = garbage
    lines[i] = key + "=" + " ".join(toks)
    mutant = "\n".join(lines)
    result = _parse_or_typed_error(mutant)
    int_keys = ("num_leaves", "num_cat", "split_feature", "left_child", "right_child", "decision_type", "cat_boundaries", "cat_threshold", "num_features", "leaf_features", "is_linear")
    if key in int_keys and not re.fullmatch(r"[+-]?\d+", garbage):
        assert result is None
    if key in ("threshold", "leaf_value", "leaf_const", "leaf_coeff") and not lgbf._FLOAT_RE.match(garbage):
        assert result is None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(MUTATION_SOURCES)), st.data())
def test_dropped_lines(name, data):
    text = MUTATION_SOURCES[name]
    lines = text.split("\n")
    i = data.draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    result = _parse_or_typed_error("\n".join(lines[:i] + lines[i + 1 :]))
    key = line.split("=", 1)[0]
    in_trees = lines.index("Tree=0") <= i < lines.index("end of trees")
    must_fail = (
        (in_trees and key in REQUIRED_TREE_KEYS)
        or (not in_trees and "=" in line and key in REQUIRED_HEADER_KEYS)
        or line == "end of trees"
        or line == "end of parameters"
        or re.fullmatch(r"Tree=\d+", line) is not None
    )
    if must_fail:
        assert result is None, f"dropping {line[:40]!r} was accepted"


DUMP_SOURCE = lgb.Booster(model_file=str(FIXTURES / "v3_linear.txt")).dump_model()
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=False), st.text(max_size=3),
    st.sampled_from([[], {}, "1||x", "<=", "==", "NaN", "Zero", [1, "a"], [10**30], 10**12, 10**400, -(10**30)]),
)


@settings(max_examples=200, deadline=None)
@given(st.data(), JSON_VALUES, st.booleans())
def test_dump_json_mutations(data, value, delete):
    """Deleting or replacing any key of any node of a dump_model() document: a typed error or a
    valid model, never another exception."""
    doc = json.loads(json.dumps(DUMP_SOURCE))
    target = doc
    for _ in range(data.draw(st.integers(0, 8))):
        children = [v for v in (target.values() if isinstance(target, dict) else target) if isinstance(v, dict | list) and v]
        if not children:
            break
        target = data.draw(st.sampled_from(children))
    if isinstance(target, dict) and target:
        key = data.draw(st.sampled_from(sorted(target)))
        if delete:
            del target[key]
        else:
            target[key] = value
    elif isinstance(target, list) and target:
        target[data.draw(st.integers(0, len(target) - 1))] = value
    try:
        lgbf.parse_dump(doc, "mutant.json")
    except (ModelFormatError, UnsupportedModelError) as exc:
        assert exc.path == "mutant.json"
