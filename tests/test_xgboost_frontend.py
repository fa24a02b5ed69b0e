"""XGBoost frontend parity against XGBoost itself, on models RELOADED from their saved .json/.ubj.

Every check compares ltrcompile's interpreter with what the installed XGBoost (3.2) returns for the
same file: raw margins from ``predict(DMatrix, output_margin=True)`` and
``inplace_predict(predict_type="margin")``, transformed outputs, and ``pred_leaf`` node ids, on real
rows (the bundled LightGBM lambdarank data, 300 features) plus ``edge_rows`` built from the model's
own thresholds (rows holding +-inf, which DMatrix rejects, only go to ``inplace_predict``).
Models written by XGBoost 1.7.6 and 2.0.3 are checked against the predictions those versions made,
stored next to them in ``tests/data/xgboost`` by ``make_fixtures.py``.

Root causes from ``mismatch-root-causes.md`` covered here: C1 base_score (forms, link, versions),
C2 strict ``<`` at thresholds, C3 float32 thresholds round trip, C4 float32 input cast, C6 sparse
absent = missing, C7 numpy/pandas/CSR/list agree, C9 per-node missing direction, C10 categorical
sets and invalid codes, C11 tree->class map and num_parallel_tree, C13 DART weights, C14 raw vs
transformed for every objective, C17 best_iteration / iteration_range, C18 feature names, C20
compare against the reloaded file, C21 float32 accumulation order, C22 NaN/inf everywhere.
(C5, C8, C12, C15, C16, C19, C23, C24 concern other libraries.)
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import json
import math
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal, ulp_diff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrcompile import (
    Ensemble,
    LtrCompileError,
    ModelFormatError,
    UnsupportedModelError,
    load_model,
)
from ltrcompile.edgecases import edge_rows
from ltrcompile.frontends import detect_format
from ltrcompile.frontends import xgboost as xfe

xgb = pytest.importorskip("xgboost")
pd = pytest.importorskip("pandas")
sp = pytest.importorskip("scipy.sparse")

FIXTURES = Path(__file__).resolve().parent / "data" / "xgboost"
F32 = np.float32


# --------------------------------------------------------------------------- helpers
def train(params: dict, dtrain, rounds: int = 8, **kw):
    p = {"nthread": 1, "seed": 0, "max_depth": 4, "eta": 0.3, "tree_method": "hist"}
    p.update(params)
    return xgb.train({k: v for k, v in p.items() if v is not None}, dtrain, rounds, **kw)


def finite32(M: np.ndarray) -> np.ndarray:
    """Rows DMatrix accepts: no value that is +-inf once rounded to float32."""
    with np.errstate(over="ignore"):
        m32 = np.asarray(M, np.float64).astype(F32)
    return M[np.all(np.isfinite(m32) | np.isnan(m32), axis=1)]


def parity_rows(ens: Ensemble, X: np.ndarray, n_real: int = 250, max_edge: int = 3000) -> np.ndarray:
    real = np.asarray(X[:n_real], np.float64)
    return np.vstack([real, edge_rows(ens, real, max_rows=max_edge)])




def saved(bst, tmp_path: Path, name: str = "m"):
    """Save as .json and .ubj; yield (path, reloaded Booster) for each."""
    out = []
    for ext in ("json", "ubj"):
        path = tmp_path / f"{name}.{ext}"
        bst.save_model(str(path))
        ref = xgb.Booster(model_file=str(path))
        ref.set_param({"nthread": 1})
        out.append((path, ref))
    return out


def check_parity(
    bst,
    X: np.ndarray,
    tmp_path: Path,
    *,
    iteration_range: tuple[int, int] = (0, 0),
    load: dict | None = None,
    inplace: bool = True,
    dmatrix_kw: dict | None = None,
    transform_ulp: int = 0,
    what: str = "",
) -> Ensemble:
    """Margins, transformed output and leaves of ltrcompile vs the reloaded .json and .ubj."""
    ens = None
    for path, ref in saved(bst, tmp_path):
        ens = load_model(path, **(load or {}))
        assert ens.provenance["format"] == f"xgboost-{path.suffix[1:]}"
        assert ens.provenance["library"] == "xgboost"
        M = parity_rows(ens, X)
        Md = finite32(M)
        d = xgb.DMatrix(Md, nthread=1, **(dmatrix_kw or {}))
        tag = f"{what} {path.suffix}"
        theirs = ref.predict(d, output_margin=True, iteration_range=iteration_range)
        assert_bit_equal(ens.predict(Md, raw_score=True), theirs, f"{tag} margin (DMatrix)")
        theirs = ref.predict(d, iteration_range=iteration_range)
        ours = ens.predict(Md)
        if transform_ulp:
            assert ulp_diff(ours, theirs, np.float32) <= transform_ulp, tag
        else:
            assert_bit_equal(ours, theirs, f"{tag} transformed (DMatrix)")
        if iteration_range[0] == 0 and ens.n_trees:
            leaves = ref.predict(d, pred_leaf=True, iteration_range=iteration_range)
            np.testing.assert_array_equal(
                ens.predict_leaf(Md), leaves.reshape(len(Md), -1).astype(np.int32), err_msg=tag
            )
        if inplace:
            theirs = ref.inplace_predict(M, predict_type="margin", iteration_range=iteration_range)
            assert_bit_equal(ens.predict(M, raw_score=True), theirs, f"{tag} margin (inplace, with inf)")
    assert ens is not None
    return ens


@pytest.fixture(scope="module")
def rank(rank_data):
    Xtr, ytr, gtr, Xte, yte, gte = rank_data
    return Xtr, ytr, gtr, Xte, yte, gte


@pytest.fixture(scope="module")
def rank_nan(rank_data):
    """rank_data with 15% of the values replaced by NaN (missing-direction learning)."""
    Xtr = rank_data[0].copy()
    rng = np.random.default_rng(7)
    Xtr[rng.random(Xtr.shape) < 0.15] = np.nan
    return Xtr, rank_data[1]


# --------------------------------------------------------------------------- objectives (C1, C14)
LABELS = {
    "reg:squarederror": lambda y: y,
    "reg:absoluteerror": lambda y: y,
    "reg:pseudohubererror": lambda y: y,
    "binary:logistic": lambda y: (y >= 2).astype(float),
    "binary:logitraw": lambda y: (y >= 2).astype(float),
    "binary:hinge": lambda y: (y >= 2).astype(float),
    "reg:logistic": lambda y: y / 4.0,
    "count:poisson": lambda y: y,
    "reg:gamma": lambda y: y + 1.0,
    "reg:tweedie": lambda y: y,
    "survival:cox": lambda y: y + 1.0,
    "multi:softprob": lambda y: y,
    "multi:softmax": lambda y: y,
}


@pytest.mark.parametrize("objective", sorted(LABELS))
def test_objective_parity(objective, rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    params = {"objective": objective}
    if objective.startswith("multi:"):
        params["num_class"] = 5
    rounds = 4 if objective.startswith("multi:") else 8
    bst = train(params, xgb.DMatrix(Xtr, LABELS[objective](ytr), nthread=1), rounds)
    ens = check_parity(bst, Xtr, tmp_path, what=objective)
    assert ens.provenance["objective"] == objective
    assert ens.transform == xfe.OBJECTIVES[objective][1]


@pytest.mark.parametrize("objective", ["rank:ndcg", "rank:pairwise"])
def test_ranking_objectives_with_groups(objective, rank, tmp_path):
    Xtr, ytr, gtr = rank[0], rank[1], rank[2]
    qid = np.repeat(np.arange(len(gtr)), gtr)
    bst = train({"objective": objective}, xgb.DMatrix(Xtr, ytr, qid=qid, nthread=1), 10)
    ens = check_parity(bst, Xtr, tmp_path, what=objective)
    assert ens.transform == "identity"


def test_survival_aft_quantiles_map_and_squaredlog(rank, tmp_path):
    """The remaining objectives: survival:aft (expf, checked bit-exact; a double exp would be 1 ulp
    off), multi-quantile regression (one output per alpha), rank:map and reg:squaredlogerror."""
    Xtr, ytr, gtr = rank[0], rank[1], rank[2]
    d = xgb.DMatrix(Xtr, nthread=1)
    d.set_float_info("label_lower_bound", ytr + 1.0)
    d.set_float_info("label_upper_bound", np.where(ytr > 2, np.inf, ytr + 1.5))
    bst = train({"objective": "survival:aft"}, d, 8)
    assert check_parity(bst, Xtr, tmp_path, what="aft").transform == "xgb_exp"
    bst = train({"objective": "reg:quantileerror", "quantile_alpha": [0.2, 0.5, 0.9]},
                xgb.DMatrix(Xtr, ytr, nthread=1), 5)
    assert check_parity(bst, Xtr, tmp_path, what="quantiles").n_outputs == 3
    bst = train({"objective": "rank:map"}, xgb.DMatrix(Xtr, (ytr >= 2).astype(float), group=gtr, nthread=1), 5)
    check_parity(bst, Xtr, tmp_path, what="rank:map")
    bst = train({"objective": "reg:squaredlogerror"}, xgb.DMatrix(Xtr, ytr, nthread=1), 5)
    check_parity(bst, Xtr, tmp_path, what="squaredlog")


def test_nan_training_data_learns_missing_directions(rank_nan, tmp_path):
    X, y = rank_nan
    bst = train({"objective": "binary:logistic"}, xgb.DMatrix(X, (y >= 2).astype(float), nthread=1), 10)
    ens = check_parity(bst, X, tmp_path, what="nan")
    internal = ens.left >= 0
    # both default directions occur, so the rows with NaN really test them (C9)
    assert set(np.unique(ens.default_left[internal]).tolist()) == {0, 1}


@pytest.mark.parametrize(
    "objective,base_score",
    [
        ("reg:squarederror", None),
        ("reg:squarederror", 0.3),
        ("reg:squarederror", 3000.0),
        ("binary:logistic", None),
        ("binary:logistic", 0.3),
        ("count:poisson", 0.3),
        ("count:poisson", 3000.0),
        ("reg:gamma", 3000.0),
        ("reg:tweedie", 0.3),
        ("multi:softprob", 0.3),
    ],
)
def test_base_score_variants(objective, base_score, rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    y = LABELS[objective](ytr) if objective in LABELS else ytr
    if base_score == 3000.0:
        y = y + 3000.0
    params = {"objective": objective, "base_score": base_score}
    if objective.startswith("multi:"):
        params["num_class"] = 5
    bst = train(params, xgb.DMatrix(Xtr, y, nthread=1), 5)
    ens = check_parity(bst, Xtr, tmp_path, what=f"{objective} base_score={base_score}")
    if base_score is not None:
        assert ens.provenance["base_score"] == [float(F32(base_score))] * ens.n_outputs


def test_base_score_string_forms_reloaded_by_xgboost(rank, tmp_path):
    """"0.500000" (1.0-1.1), "5E-1" (1.2-3.0) and "[...]" (3.1+) written into a 3.2 model file:
    XGBoost 3.2 reloads each, and we must agree with it."""
    Xtr, ytr = rank[0], rank[1]
    bst = train({"objective": "binary:logistic"}, xgb.DMatrix(Xtr, (ytr >= 2).astype(float), nthread=1), 4)
    doc = json.loads(bst.save_raw("json"))
    rows = finite32(np.vstack([Xtr[:200], np.full((1, Xtr.shape[1]), np.nan)]))
    for form in ("0.500000", "5E-1", "[5E-1]", "2.5E-1", "[2.5E-1]", "0.123457"):
        d2 = copy.deepcopy(doc)
        d2["learner"]["learner_model_param"]["base_score"] = form
        path = tmp_path / "form.json"
        path.write_text(json.dumps(d2))
        ref = xgb.Booster(model_file=str(path))
        ens = load_model(path)
        theirs = ref.predict(xgb.DMatrix(rows, nthread=1), output_margin=True)
        assert_bit_equal(ens.predict(rows, raw_score=True), theirs, form)
        assert_bit_equal(ens.predict(rows), ref.predict(xgb.DMatrix(rows, nthread=1)), form)


def test_parse_base_score_forms():
    src = xfe._Src("x.json")
    assert xfe.parse_base_score("0.500000", src).tolist() == [0.5]
    assert xfe.parse_base_score("5E-1", src).tolist() == [0.5]
    assert xfe.parse_base_score(" [1.7142141E-1,5.00075E-1,-6.714964E-1] ", src).tolist() == [
        float(F32(v)) for v in (1.7142141e-1, 5.00075e-1, -6.714964e-1)
    ]
    for bad in ("", "[]", "abc", "[1,x]", "inf", "1e39", True):
        with pytest.raises(ModelFormatError, match="base_score"):
            xfe.parse_base_score(bad, src)


def test_logistic_base_score_outside_unit_interval(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    bst = train({"objective": "binary:logistic"}, xgb.DMatrix(Xtr, (ytr >= 2).astype(float), nthread=1), 2)
    doc = json.loads(bst.save_raw("json"))
    doc["learner"]["learner_model_param"]["base_score"] = "[1.5E0]"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match=r"base_score.*\[0, 1\]"):
        load_model(path)
    # 3.1+ clamps to [1e-6, 1 - 1e-6]: 1E-9 is accepted by XGBoost 3.2, and by us the same way
    doc["learner"]["learner_model_param"]["base_score"] = "[1E-9]"
    path.write_text(json.dumps(doc))
    ens = load_model(path)
    rows = Xtr[:50]
    ref = xgb.Booster(model_file=str(path))
    assert_bit_equal(ens.predict(rows, raw_score=True), ref.predict(xgb.DMatrix(rows), output_margin=True))
    assert "clamped" in " ".join(ens.provenance["notes"])
    # the 2.0 semantics (CHECK-fail outside (0, 1)) apply to files written by XGBoost < 3.1
    doc["version"] = [2, 0, 3]
    doc["learner"]["learner_model_param"]["base_score"] = "1E0"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match=r"\(0, 1\)"):
        load_model(path)


# --------------------------------------------------------------------------- categorical (C10)
def _cat_frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """30 numeric columns plus a string category column derived from a real feature."""
    cols = {f"n{j}": X[:, j] for j in range(30)}
    j = int(np.argmax([np.unique(X[:, k]).size for k in range(X.shape[1])]))
    edges = np.quantile(X[:, j], np.linspace(0, 1, 13)[1:-1])
    codes = np.digitize(X[:, j], edges)
    labels = ["kiwi", "apple", "fig", "date", "lime", "plum", "pear", "nut", "yam", "bean", "corn", "rye"]
    values = np.array(labels, dtype=object)[codes]
    values[::37] = None
    cols["fruit"] = pd.Categorical(values, categories=labels)
    return pd.DataFrame(cols)


@pytest.mark.parametrize("onehot", [1, 64])
def test_categorical_dataframe_recoded_by_label(onehot, rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    df = _cat_frame(Xtr, ytr)
    bst = train(
        {"objective": "reg:squarederror", "max_cat_to_onehot": onehot},
        xgb.DMatrix(df, ytr, enable_categorical=True, nthread=1),
        8,
    )
    for path, ref in saved(bst, tmp_path):
        ens = load_model(path)
        assert ens.feature_categories == {30: list(df["fruit"].cat.categories)}
        assert ens.categorical[ens.left >= 0].any()
        assert ens.feature_names == list(df.columns)
        for frame in (
            df,
            # same labels, categories in another order: XGBoost 3.1+ re-codes by label, so must we
            df.assign(fruit=pd.Categorical(df["fruit"].astype(object), categories=sorted(df["fruit"].cat.categories))),
        ):
            d = xgb.DMatrix(frame, enable_categorical=True, nthread=1)
            assert_bit_equal(ens.predict(frame, raw_score=True), ref.predict(d, output_margin=True), str(path))
            np.testing.assert_array_equal(ens.predict_leaf(frame), ref.predict(d, pred_leaf=True).astype(np.int32))
            assert_bit_equal(ens.predict(frame, raw_score=True), ref.inplace_predict(frame, predict_type="margin"))
        # numpy input is not re-coded: codes are used as given, invalid codes go left (C10)
        M = parity_rows(ens, np.c_[Xtr[:, :30], df["fruit"].cat.codes.to_numpy().astype(float)])
        M[M[:, 30] == -1, 30] = np.nan
        Md = finite32(M)
        d = xgb.DMatrix(Md, feature_names=list(df.columns), feature_types=["q"] * 30 + ["c"],
                        enable_categorical=True, nthread=1)
        assert_bit_equal(ens.predict(Md, raw_score=True), ref.predict(d, output_margin=True), "numpy codes")


def test_categorical_numpy_feature_types(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    codes = np.digitize(Xtr[:, 7], np.quantile(Xtr[:, 7], np.linspace(0, 1, 10)[1:-1]))
    perm = np.random.default_rng(3).permutation(40)  # sparse codes up to 39
    X = np.c_[Xtr[:, :25], perm[codes].astype(float)]
    X[::29, 25] = np.nan
    ft = ["q"] * 25 + ["c"]
    bst = train(
        {"objective": "multi:softprob", "num_class": 5, "max_cat_to_onehot": 1},
        xgb.DMatrix(X, ytr, feature_types=ft, enable_categorical=True, nthread=1),
        4,
    )
    ens = check_parity(bst, X, tmp_path, dmatrix_kw={"feature_types": ft, "enable_categorical": True},
                       what="numpy categorical")
    assert ens.feature_categories is None
    M = parity_rows(ens, X)
    # the edge rows really hit invalid codes on the categorical feature
    for v in (-1.0, -0.5, 2.7, 16777216.0, 2.0**31):
        assert np.any(M[:, 25] == v)


# --------------------------------------------------------------------------- boosters (C11, C13)
def test_dart_weight_drop(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    bst = train(
        {"booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0, "objective": "binary:logistic"},
        xgb.DMatrix(Xtr, (ytr >= 2).astype(float), nthread=1),
        10,
    )
    ens = check_parity(bst, Xtr, tmp_path, inplace=False, what="dart")
    assert ens.provenance["booster"] == "dart"
    assert np.any(ens.tree_weight != 1.0)
    assert "inplace_predict" in ens.provenance["dart_note"]
    # inplace_predict computes ((base + leaf) - base) * w: close to, but not always bit-equal with,
    # predict(DMatrix), which ltrcompile reproduces
    ref = xgb.Booster(model_file=str(tmp_path / "m.json"))
    rows = Xtr[:500]
    diff = np.abs(ens.predict(rows, raw_score=True) - ref.inplace_predict(rows, predict_type="margin"))
    assert diff.max() <= 1e-5
    # XGBoost 3.3+ folds DART into gbtree with weight_drop inside the model (doc A.8): the same
    # trees and weights in that layout must give what XGBoost 3.2 returned for the original file
    doc = json.loads((tmp_path / "m.json").read_text())
    gb = doc["learner"]["gradient_booster"]
    folded = {"name": "gbtree", "model": {**gb["gbtree"]["model"], "weight_drop": gb["weight_drop"]}}
    doc["learner"]["gradient_booster"] = folded
    ens33 = xfe.from_document(doc, path="dart33.json")
    assert ens33.provenance["booster"] == "dart"
    assert_bit_equal(ens33.predict(rows, raw_score=True), ref.predict(xgb.DMatrix(rows), output_margin=True))


@pytest.mark.parametrize("num_class", [0, 3])
def test_random_forest_num_parallel_tree(num_class, rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    params = {"num_parallel_tree": 3, "subsample": 0.7, "colsample_bynode": 0.6, "eta": 1.0}
    if num_class:
        params.update(objective="multi:softprob", num_class=num_class)
        y = np.minimum(ytr, 2)
    else:
        params.update(objective="reg:squarederror")
        y = ytr
    bst = train(params, xgb.DMatrix(Xtr, y, nthread=1), 3)
    ens = check_parity(bst, Xtr, tmp_path, what="rf")
    assert ens.n_trees == 3 * 3 * max(num_class, 1)
    check_parity(bst, Xtr, tmp_path, iteration_range=(1, 3), load={"iteration_range": (1, 3)}, what="rf range")


def test_multi_output_tree_vector_leaves(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    Y = np.c_[ytr, (ytr >= 2).astype(float), np.log1p(np.abs(Xtr[:, 5]))]
    bst = train(
        {"objective": "reg:squarederror", "multi_strategy": "multi_output_tree", "max_depth": 3},
        xgb.DMatrix(Xtr, Y, nthread=1),
        6,
    )
    ens = check_parity(bst, Xtr, tmp_path, what="multi-target")
    assert ens.leaf_dim == 3 and ens.n_outputs == 3
    # 3.2 writes leaf_weights (rows addressed by the leaves' right_children); the 2.0-3.1
    # node-major base_weights layout is checked against XGBoost 2.0.3 in the fixture tests
    # (XGBoost 3.2 itself crashes loading such a file, so it cannot be the reference there).
    doc = json.loads(bst.save_raw("json"))
    assert "leaf_weights" in doc["learner"]["gradient_booster"]["model"]["trees"][0]


def test_multi_target_one_output_per_tree(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    Y = np.c_[ytr, (ytr >= 2).astype(float)]
    bst = train({"objective": "reg:squarederror"}, xgb.DMatrix(Xtr, Y, nthread=1), 4)
    ens = check_parity(bst, Xtr, tmp_path, what="one output per tree")
    assert ens.n_outputs == 2 and set(ens.tree_output.tolist()) == {0, 1}


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob", "reg:squarederror"])
def test_gblinear(objective, rank_nan, tmp_path):
    X, y = rank_nan
    params = {"booster": "gblinear", "objective": objective, "max_depth": None, "tree_method": None}
    if objective == "binary:logistic":
        y = (y >= 2).astype(float)
    if objective == "multi:softprob":
        params["num_class"] = 3
        y = np.minimum(y, 2)
    bst = train(params, xgb.DMatrix(X, y, nthread=1), 6)
    for path, ref in saved(bst, tmp_path):
        ens = load_model(path)
        assert ens.n_trees == 0 and ens.linear_skip_missing
        rows = finite32(parity_rows(ens, X))
        d = xgb.DMatrix(rows, nthread=1)
        assert_bit_equal(ens.predict(rows, raw_score=True), ref.predict(d, output_margin=True), str(path))
        assert_bit_equal(ens.predict(rows), ref.predict(d), str(path))
        csr = sp.csr_matrix(np.nan_to_num(rows[:300], nan=0.0))
        assert_bit_equal(
            ens.predict(csr, raw_score=True), ref.predict(xgb.DMatrix(csr, nthread=1), output_margin=True)
        )
        # like XGBoost, gblinear ignores the end of an iteration range and refuses a start > 0
        assert_bit_equal(load_model(path, iteration_range=(0, 2)).predict(rows, raw_score=True),
                         ref.predict(d, output_margin=True, iteration_range=(0, 2)))
        with pytest.raises(xgb.core.XGBoostError, match="prediction range"):
            ref.predict(d, iteration_range=(1, 2))
        with pytest.raises(UnsupportedModelError, match="prediction range"):
            load_model(path, iteration_range=(1, 2))


# --------------------------------------------------------------------------- iterations (C17)
def test_iteration_range_and_best_iteration(rank, tmp_path):
    Xtr, ytr, gtr, Xte, yte, gte = rank
    dtr = xgb.DMatrix(Xtr, ytr, qid=np.repeat(np.arange(len(gtr)), gtr), nthread=1)
    dte = xgb.DMatrix(Xte, yte, qid=np.repeat(np.arange(len(gte)), gte), nthread=1)
    bst = train({"objective": "rank:ndcg", "eval_metric": "ndcg@5", "eta": 0.6, "max_depth": 6},
                dtr, 60, evals=[(dte, "test")], early_stopping_rounds=3, verbose_eval=False)
    best = bst.best_iteration
    assert 0 < best + 1 < bst.num_boosted_rounds()
    path = tmp_path / "es.json"
    bst.save_model(str(path))
    ref = xgb.Booster(model_file=str(path))
    rows = finite32(np.vstack([Xte, Xtr[:200]]))
    d = xgb.DMatrix(rows, nthread=1)
    full = load_model(path)  # files default to all trees, as Booster.predict does
    assert full.provenance["best_iteration"] == best
    assert full.n_trees == bst.num_boosted_rounds()
    assert_bit_equal(full.predict(rows), ref.predict(d))
    cases = [
        ({"best_iteration": True}, (0, best + 1)),
        ({"num_iteration": 3}, (0, 3)),
        ({"iteration_range": (2, 5)}, (2, 5)),
        ({"iteration_range": (4, 0)}, (4, bst.num_boosted_rounds())),
        ({"iteration_range": (3, 3)}, None),
    ]
    for opts, rng in cases:
        ens = load_model(path, **opts)
        if rng is None:  # an empty range leaves only the base score
            assert ens.n_trees == 0
            np.testing.assert_array_equal(ens.predict(rows), np.float64(F32(ens.base_score[0])))
            continue
        assert_bit_equal(ens.predict(rows, raw_score=True), ref.predict(d, output_margin=True, iteration_range=rng), str(opts))
        assert_bit_equal(ens.predict(rows, raw_score=True), ref.inplace_predict(rows, predict_type="margin", iteration_range=rng), str(opts))
        if rng[0] == 0:
            np.testing.assert_array_equal(ens.predict_leaf(rows), ref.predict(d, pred_leaf=True, iteration_range=rng).astype(np.int32))
    for bad in (
        {"iteration_range": (0, 999)},
        {"iteration_range": (5, 2)},
        {"iteration_range": (-1, 2)},
        {"iteration_range": 3},
        {"num_iteration": 3, "best_iteration": True},
        {"num_iteration": -2},
    ):
        with pytest.raises(ValueError):
            load_model(path, **bad)
    for rng in ((0, 999), (5, 2)):  # XGBoost refuses these ranges too
        with pytest.raises(xgb.core.XGBoostError):
            ref.predict(d, iteration_range=rng)
    with pytest.raises(TypeError, match="ntree_limit"):
        load_model(path, ntree_limit=3)


def test_sklearn_wrappers_from_object(rank):
    Xtr, ytr, gtr, Xte, yte, gte = rank
    reg = xgb.XGBRegressor(n_estimators=40, max_depth=4, learning_rate=0.5, n_jobs=1, early_stopping_rounds=3)
    reg.fit(Xtr, ytr, eval_set=[(Xte, yte)], verbose=False)
    assert reg.best_iteration + 1 < 40
    ens = load_model(reg)  # the sklearn wrapper predicts with best_iteration, so do we
    assert ens.provenance["format"] == "xgboost-sklearn"
    assert ens.n_trees == reg.best_iteration + 1
    rows = parity_rows(ens, Xte)
    assert_bit_equal(ens.predict(rows), reg.predict(rows), "XGBRegressor.predict")
    assert_bit_equal(ens.predict(rows, raw_score=True), reg.predict(rows, output_margin=True))
    assert load_model(reg, best_iteration=False).n_trees == reg.get_booster().num_boosted_rounds()
    # a plain Booster predicts with all trees
    assert load_model(reg.get_booster()).n_trees == reg.get_booster().num_boosted_rounds()

    clf = xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1)
    clf.fit(Xtr, (ytr >= 2).astype(int))
    ens = load_model(clf)
    assert_bit_equal(ens.predict(rows), clf.predict_proba(rows)[:, 1], "XGBClassifier.predict_proba")

    ranker = xgb.XGBRanker(n_estimators=8, max_depth=3, n_jobs=1)
    ranker.fit(Xtr, ytr, qid=np.repeat(np.arange(len(gtr)), gtr))
    ens = load_model(ranker)
    assert_bit_equal(ens.predict(rows), ranker.predict(rows), "XGBRanker.predict")

    with pytest.raises(UnsupportedModelError, match="missing"):
        load_model(xgb.XGBRegressor(n_estimators=2, missing=0.0, n_jobs=1).fit(Xtr[:100], ytr[:100]))


def test_accepts_only_xgboost_models(rank):
    class MyRegressor(xgb.XGBRegressor):
        pass

    model = MyRegressor(n_estimators=2, max_depth=2, n_jobs=1).fit(rank[0][:200], rank[1][:200])
    assert xfe.accepts(model) and xfe.accepts(model.get_booster())
    assert load_model(model).n_trees == 2
    for other in (object(), {"learner": {}}, np.zeros(3), "model.json"):
        assert not xfe.accepts(other)


# --------------------------------------------------------------------------- inputs (C4, C6, C7)
def test_sparse_absent_is_missing_and_input_kinds_agree(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    bst = train({"objective": "reg:squarederror"}, xgb.DMatrix(sp.csr_matrix(Xtr), ytr, nthread=1), 8)
    path, ref = saved(bst, tmp_path)[0]
    ens = load_model(path)
    rows = Xtr[:400]
    csr = sp.csr_matrix(rows)  # zeros are absent: XGBoost reads them as missing (C6)
    theirs = ref.predict(xgb.DMatrix(csr, nthread=1), output_margin=True)
    assert_bit_equal(ens.predict(csr, raw_score=True), theirs, "csr")
    as_nan = np.where(rows == 0, np.nan, rows)
    assert_bit_equal(ens.predict(as_nan, raw_score=True), theirs, "csr == dense with NaN for absent")
    # dense zeros are values, not missing, and differ somewhere
    dense = ref.predict(xgb.DMatrix(rows, nthread=1), output_margin=True)
    assert_bit_equal(ens.predict(rows, raw_score=True), dense, "dense")
    assert not np.array_equal(dense, theirs)
    # explicit zeros stored in a CSR are present values
    coo = sp.coo_matrix(rows)
    zr, zc = np.nonzero(rows == 0)
    pick = np.random.default_rng(0).choice(zr.size, 2000, replace=False)
    explicit = sp.csr_matrix(
        (np.r_[coo.data, np.zeros(pick.size)], (np.r_[coo.row, zr[pick]], np.r_[coo.col, zc[pick]])),
        shape=rows.shape,
    )
    assert explicit.nnz == coo.nnz + pick.size
    assert_bit_equal(ens.predict(explicit, raw_score=True), ref.predict(xgb.DMatrix(explicit, nthread=1), output_margin=True))
    # numpy float32, float64, lists and DataFrames agree (C7)
    want = ens.predict(rows)
    for other in (rows.astype(np.float32), rows.tolist(), pd.DataFrame(rows)):
        np.testing.assert_array_equal(ens.predict(other), want)


def test_float32_input_cast_and_integer_input(tmp_path):
    rng = np.random.default_rng(5)
    Xi = rng.integers(2**24 - 40, 2**24 + 40, size=(800, 3)).astype(np.int64)
    y = (Xi[:, 0] > 2**24).astype(float) + (Xi[:, 1] % 3 == 0)
    bst = train({"objective": "reg:squarederror", "tree_method": "exact"}, xgb.DMatrix(Xi.astype(float), y, nthread=1), 6)
    path, ref = saved(bst, tmp_path)[0]
    ens = load_model(path)
    # int64 and float64 inputs above 2**24 are rounded to float32 before comparing (C4)
    assert_bit_equal(ens.predict(Xi, raw_score=True), ref.inplace_predict(Xi, predict_type="margin"), "int64")
    assert_bit_equal(ens.predict(Xi, raw_score=True), ref.predict(xgb.DMatrix(Xi, nthread=1), output_margin=True))
    t = float(F32(ens.threshold[0]))
    row = np.full((3, 3), 2.0**24)
    row[:, int(ens.feature[0])] = [np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf)]
    assert_bit_equal(ens.predict(row, raw_score=True), ref.inplace_predict(row, predict_type="margin"))
    assert_bit_equal(ens.predict(row, raw_score=True), ref.predict(xgb.DMatrix(row), output_margin=True))


# --------------------------------------------------------------------------- dumps
def test_get_dump_json_path(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    bst = train({"objective": "binary:logistic"}, xgb.DMatrix(Xtr, (ytr >= 2).astype(float), nthread=1), 8)
    bst.save_model(str(tmp_path / "m.json"))
    ref = xgb.Booster(model_file=str(tmp_path / "m.json"))
    base = json.loads(ref.save_raw("json"))["learner"]["learner_model_param"]["base_score"]
    dump = tmp_path / "dump.json"
    ref.dump_model(str(dump), dump_format="json")
    assert detect_format(str(dump)) == "xgboost-dump"
    rows = finite32(parity_rows(load_model(tmp_path / "m.json"), Xtr))
    d = xgb.DMatrix(rows, nthread=1)

    ens = load_model(dump, base_score=base, objective="binary:logistic", n_features=300)
    assert_bit_equal(ens.predict(rows, raw_score=True), ref.predict(d, output_margin=True), "dump margin")
    assert_bit_equal(ens.predict(rows), ref.predict(d), "dump transformed")
    np.testing.assert_array_equal(ens.predict_leaf(rows), ref.predict(d, pred_leaf=True).astype(np.int32))
    # o19s wrapper with get_dump() strings; no base_score: margin starts at 0, with a note
    wrapper = tmp_path / "o19s.json"
    wrapper.write_text(json.dumps({"objective": "binary:logistic", "splits": ref.get_dump(dump_format="json")}))
    assert detect_format(str(wrapper)) == "xgboost-dump"
    ens0 = load_model(wrapper, n_features=300)
    assert any("base_score" in n for n in ens0.provenance["notes"])
    assert ens0.transform == "xgb_sigmoid"
    zero_base = ref.predict(d, output_margin=True) - np.float32(ens.base_score[0])
    assert np.max(np.abs(ens0.predict(rows, raw_score=True) - zero_base)) < 1e-5


def test_get_dump_multiclass_categorical_and_names(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    df = _cat_frame(Xtr, ytr)
    bst = train({"objective": "multi:softprob", "num_class": 5, "max_cat_to_onehot": 1, "num_parallel_tree": 2},
                xgb.DMatrix(df, ytr, enable_categorical=True, nthread=1), 3)
    bst.save_model(str(tmp_path / "m.json"))
    ref = xgb.Booster(model_file=str(tmp_path / "m.json"))
    full = load_model(tmp_path / "m.json")
    dump = tmp_path / "dump.json"
    ref.dump_model(str(dump), dump_format="json")
    ens = load_model(dump, objective="multi:softprob", num_class=5, num_parallel_tree=2,
                     base_score=full.provenance["base_score"], feature_names=list(df.columns))
    M = finite32(parity_rows(full, np.c_[Xtr[:, :30], df["fruit"].cat.codes.to_numpy().astype(float)]))
    M[M[:, 30] == -1, 30] = np.nan
    d = xgb.DMatrix(M, feature_names=list(df.columns), feature_types=["q"] * 30 + ["c"], enable_categorical=True)
    assert_bit_equal(ens.predict(M, raw_score=True), ref.predict(d, output_margin=True), "categorical dump")
    assert_bit_equal(ens.predict(M), ref.predict(d), "softprob dump")
    np.testing.assert_array_equal(ens.predict_leaf(M), ref.predict(d, pred_leaf=True).reshape(len(M), -1).astype(np.int32))
    # without feature_names, features are numbered by first appearance and bound by name
    ens2 = load_model(dump, objective="multi:softprob", num_class=5, num_parallel_tree=2,
                      base_score=full.provenance["base_score"])
    assert set(ens2.feature_names) <= set(df.columns)
    with pytest.raises(ModelFormatError, match="num_class"):
        load_model(dump, objective="multi:softprob")
    for bad in ({"num_class": "5"}, {"num_parallel_tree": 0}, {"n_features": -1}, {"objective": 3}):
        with pytest.raises((ValueError, TypeError)):
            load_model(dump, **bad)
    with pytest.raises(TypeError, match="num_class"):
        load_model(tmp_path / "m.json", num_class=5)  # only dumps take the dump options


def test_dump_vector_leaves(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    Y = np.c_[ytr, -ytr]
    bst = train({"objective": "reg:squarederror", "multi_strategy": "multi_output_tree", "max_depth": 3},
                xgb.DMatrix(Xtr, Y, nthread=1), 3)
    full = load_model(xfe_save(bst, tmp_path))
    dump = tmp_path / "dump.json"
    bst.dump_model(str(dump), dump_format="json")
    ens = load_model(dump, base_score=full.provenance["base_score"], n_features=300)
    rows = finite32(parity_rows(full, Xtr))
    assert_bit_equal(ens.predict(rows, raw_score=True), bst.predict(xgb.DMatrix(rows), output_margin=True))


def xfe_save(bst, tmp_path: Path) -> Path:
    path = tmp_path / "v.json"
    bst.save_model(str(path))
    return path


# --------------------------------------------------------------------------- file-level behaviour
def test_nonstandard_tokens_ids_and_deleted_nodes(rank, tmp_path):
    """Infinity/NaN tokens, trees stored out of id order and pruned (deleted) nodes: each file is
    rewritten, reloaded by XGBoost 3.2, and we must agree with it."""
    Xtr, ytr = rank[0], rank[1]
    d = xgb.DMatrix(Xtr, ytr, nthread=1)
    bst = train({"objective": "reg:squarederror", "max_depth": 6}, d, 6)
    # XGBoost warns about the deprecated updater only once per process, so whether it warns here
    # depends on test order: silence it rather than expect it
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*updater.*", category=UserWarning)
        pruned = xgb.train({"process_type": "update", "updater": "prune", "gamma": 40.0, "nthread": 1},
                           d, 6, xgb_model=bst)
    doc = json.loads(pruned.save_raw("json"))
    trees = doc["learner"]["gradient_booster"]["model"]["trees"]
    assert sum(int(t["tree_param"]["num_deleted"]) for t in trees) > 0
    t0 = trees[0]
    inner = [i for i, lc in enumerate(t0["left_children"]) if lc != -1]
    text = json.dumps(doc)
    path = tmp_path / "edited.json"
    # a +Infinity threshold (every value goes left) and a -Infinity one (every value goes right)
    doc2 = json.loads(text)
    doc2["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"][inner[1]] = math.inf
    doc2["learner"]["gradient_booster"]["model"]["trees"][1]["split_conditions"][0] = -math.inf
    doc2["learner"]["gradient_booster"]["model"]["trees"].reverse()  # XGBoost loads trees[id]
    raw = json.dumps(doc2)
    assert "Infinity" in raw and "-Infinity" in raw
    path.write_text(raw)
    ref = xgb.Booster(model_file=str(path))
    ens = load_model(path)
    rows = finite32(parity_rows(ens, Xtr))
    dm = xgb.DMatrix(rows, nthread=1)
    assert_bit_equal(ens.predict(rows, raw_score=True), ref.predict(dm, output_margin=True), "edited")
    np.testing.assert_array_equal(ens.predict_leaf(rows), ref.predict(dm, pred_leaf=True).astype(np.int32))
    # deleted nodes are gone from the IR but leaf ids are still XGBoost's node ids
    assert ens.n_nodes < sum(int(t["tree_param"]["num_nodes"]) for t in trees)


def test_sniff_and_auto_detection(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    bst = train({"objective": "reg:squarederror"}, xgb.DMatrix(Xtr[:300], ytr[:300], nthread=1), 2)
    for path, _ in saved(bst, tmp_path):
        assert detect_format(str(path)) == f"xgboost-{path.suffix[1:]}"
    head_json = (tmp_path / "m.json").read_bytes()[:4096]
    assert xfe.sniff(head_json, "x") == ["xgboost-json"]
    assert xfe.sniff(b'  {"learner": {}}', "x.json") == ["xgboost-json"]
    assert xfe.sniff((tmp_path / "m.ubj").read_bytes()[:4096], "x") == ["xgboost-ubj"]
    assert xfe.sniff(b'[{"nodeid": 0, "leaf": 1.5}]', "d.json") == ["xgboost-dump"]
    assert xfe.sniff(b'{"objective": "rank:ndcg", "splits": [{"nodeid": 0, "leaf": 0}]}', "d") == ["xgboost-dump"]
    for other in (b'{"format": "ltrcompile-ir"}', b"tree\nversion=v4\n", b'{"model": {"splits": []}}', b"[1, 2]", b""):
        assert xfe.sniff(other, "x") == []


def test_feature_names_option_and_binding(rank, tmp_path):
    Xtr, ytr = rank[0], rank[1]
    names = [f"feat_{j}" for j in range(Xtr.shape[1])]
    bst = train({"objective": "reg:squarederror"}, xgb.DMatrix(Xtr, ytr, feature_names=names, nthread=1), 3)
    path, ref = saved(bst, tmp_path)[0]
    ens = load_model(path)
    assert ens.feature_names == names
    df = pd.DataFrame(Xtr[:100], columns=names)
    assert_bit_equal(ens.predict(df[names[::-1]], raw_score=True),
                     ref.predict(xgb.DMatrix(df, nthread=1), output_margin=True), "columns bound by name (C18)")
    renamed = load_model(path, feature_names=[f"g{j}" for j in range(300)])
    assert renamed.feature_names[0] == "g0"
    with pytest.raises(ValueError, match="feature_names"):
        load_model(path, feature_names=["a", "b"])


# --------------------------------------------------------------------------- old versions (fixtures)
FIXTURE_MODELS = sorted(p.stem for p in FIXTURES.glob("*.npz"))


@pytest.mark.parametrize("stem", FIXTURE_MODELS)
@pytest.mark.parametrize("ext", ["json", "ubj"])
def test_models_written_by_old_xgboost(stem, ext):
    data = np.load(FIXTURES / f"{stem}.npz")
    meta = json.loads(str(data["meta"]))
    path = FIXTURES / f"{stem}.{ext}"
    ens = load_model(path)
    assert ens.provenance["version"] == meta["xgboost"]
    X = data["X"]
    assert_bit_equal(ens.predict(X, raw_score=True), data["margin"], f"{stem} margin")
    assert_bit_equal(ens.predict(X), data["pred"], f"{stem} transformed")
    if "leaf" in data:
        np.testing.assert_array_equal(ens.predict_leaf(X), data["leaf"].reshape(len(X), -1))
    if "inplace_margin" in data:
        assert_bit_equal(ens.predict(X, raw_score=True), data["inplace_margin"], f"{stem} inplace")
    if "range_margin" in data:
        sliced = load_model(path, iteration_range=tuple(meta["iteration_range"]))
        assert_bit_equal(sliced.predict(X, raw_score=True), data["range_margin"], f"{stem} range")


def test_old_fixture_formats_are_covered():
    stems = set(FIXTURE_MODELS)
    for v in ("1.7.6", "2.0.3"):
        for name in ("binary_cat", "dart", "gblinear", "multi_rf", "poisson", "reg_base3000_exact", "rank_ndcg"):
            assert f"xgb{v}_{name}" in stems
    assert "xgb2.0.3_multi_target" in stems
    doc17 = json.loads((FIXTURES / "xgb1.7.6_multi_rf.json").read_text())
    assert "iteration_indptr" not in doc17["learner"]["gradient_booster"]["model"]
    doc20 = json.loads((FIXTURES / "xgb2.0.3_multi_target.json").read_text())
    tree = doc20["learner"]["gradient_booster"]["model"]["trees"][0]
    assert "leaf_weights" not in tree and tree["tree_param"]["size_leaf_vector"] == "3"
    for stem in stems:
        base = json.loads((FIXTURES / f"{stem}.json").read_text())["learner"]["learner_model_param"]["base_score"]
        assert not base.startswith("[")  # scalar forms only before 3.1
    # tree_method="exact" leaves: base_weights are un-shrunk, so reading them would be wrong (A.2)
    for v in ("1.7.6", "2.0.3"):
        t = json.loads((FIXTURES / f"xgb{v}_reg_base3000_exact.json").read_text())
        t = t["learner"]["gradient_booster"]["model"]["trees"][0]
        leaves = [i for i, c in enumerate(t["left_children"]) if c == -1]
        assert all(t["base_weights"][i] != t["split_conditions"][i] for i in leaves)
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < 2 * 1024 * 1024


# --------------------------------------------------------------------------- malformed input
@pytest.fixture(scope="module")
def small_doc(rank_data):
    Xtr, ytr = rank_data[0][:400], rank_data[1][:400]
    noise = np.random.default_rng(1).integers(0, 3, len(ytr))
    X = np.c_[Xtr[:, :8], (ytr * 3 + noise).astype(float)]  # an informative categorical column
    bst = train({"objective": "binary:logistic", "max_depth": 3, "max_cat_to_onehot": 1},
                xgb.DMatrix(X, (ytr >= 2).astype(float), feature_types=["q"] * 8 + ["c"],
                            enable_categorical=True, nthread=1), 3)
    doc = json.loads(bst.save_raw("json"))
    assert any(1 in t["split_type"] for t in doc["learner"]["gradient_booster"]["model"]["trees"])
    return doc


def _write(tmp_path: Path, doc, name="bad.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _trees(doc):
    return doc["learner"]["gradient_booster"]["model"]["trees"]


def _mut(doc, fn):
    d = copy.deepcopy(doc)
    fn(d)
    return d


MALFORMED = {
    "no learner": (lambda d: d.pop("learner"), r"field 'learner'.*missing key 'learner'"),
    "no objective": (lambda d: d["learner"].pop("objective"), r"missing key 'objective'"),
    "no num_feature": (lambda d: d["learner"]["learner_model_param"].pop("num_feature"), r"num_feature"),
    "bad num_feature": (lambda d: d["learner"]["learner_model_param"].update(num_feature="many"), r"num_feature"),
    "no trees": (lambda d: d["learner"]["gradient_booster"]["model"].pop("trees"), r"missing key 'trees'"),
    "num_trees mismatch": (lambda d: d["learner"]["gradient_booster"]["model"]["gbtree_model_param"].update(num_trees="7"), r"num_trees"),
    "tree_info short": (lambda d: d["learner"]["gradient_booster"]["model"]["tree_info"].pop(), r"tree_info"),
    "tree_info range": (lambda d: d["learner"]["gradient_booster"]["model"]["tree_info"].__setitem__(0, 3), r"tree 0.*tree_info"),
    "split_conditions missing": (lambda d: _trees(d)[1].pop("split_conditions"), r"tree 1, field 'split_conditions'"),
    "split_conditions short": (lambda d: _trees(d)[1]["split_conditions"].pop(), r"tree 1, field 'split_conditions'.*expected"),
    "split_conditions strings": (lambda d: _trees(d)[1].update(split_conditions=["x"] * len(_trees(d)[1]["split_conditions"])), r"tree 1, field 'split_conditions'"),
    "child out of range": (lambda d: _trees(d)[2]["left_children"].__setitem__(0, 999), r"tree 2, node 0, field 'left_children'"),
    "child is root": (lambda d: _trees(d)[2]["right_children"].__setitem__(0, 0), r"tree 2, node 0, field 'right_children'"),
    "cycle": (lambda d: _trees(d)[0]["left_children"].__setitem__(_trees(d)[0]["left_children"][0], 1), r"tree 0, node \d+, field 'left_children'.*twice"),
    "unknown split_type": (lambda d: _trees(d)[0]["split_type"].__setitem__(0, 2), r"tree 0, node 0, field 'split_type'"),
    "feature out of range": (lambda d: _trees(d)[0]["split_indices"].__setitem__(0, 9), r"tree 0, node 0, field 'split_indices'"),
    "default_left 2": (lambda d: _trees(d)[0]["default_left"].__setitem__(0, 2), r"tree 0, node 0, field 'default_left'"),
    "duplicate ids": (lambda d: _trees(d)[1].update(id=0), r"field 'id'"),
    "category segment": (lambda d: [t.update(categories_sizes=[99] * len(t["categories_sizes"])) for t in _trees(d) if t["categories_nodes"]], r"categories_segments"),
    "negative category": (lambda d: [t["categories"].__setitem__(0, -3) for t in _trees(d) if t["categories"]], r"field 'categories'"),
    "leaf NaN": (lambda d: _trees(d)[0]["split_conditions"].__setitem__(_trees(d)[0]["left_children"].index(-1), math.nan), r"tree 0, node \d+, field 'split_conditions'.*not finite"),
    "weights of unknown booster": (lambda d: d["learner"]["gradient_booster"].update(name="gbforest"), r"gbforest"),
    "base_score junk": (lambda d: d["learner"]["learner_model_param"].update(base_score="[0.5,"), r"base_score"),
    "base_score length": (lambda d: d["learner"]["learner_model_param"].update(base_score="[0.5,0.5]"), r"base_score"),
    "version junk": (lambda d: d.update(version="three"), r"version"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_models_name_the_place(case, small_doc, tmp_path):
    fn, pattern = MALFORMED[case]
    path = _write(tmp_path, _mut(small_doc, fn))
    with pytest.raises(LtrCompileError, match=pattern) as info:
        load_model(path, format="xgboost-json")
    assert isinstance(info.value, ModelFormatError | UnsupportedModelError)
    assert str(path) in str(info.value)


def test_unknown_objective_is_unsupported(small_doc, tmp_path):
    doc = _mut(small_doc, lambda d: d["learner"]["objective"].update(name="reg:futureerror"))
    with pytest.raises(UnsupportedModelError, match="reg:futureerror"):
        load_model(_write(tmp_path, doc))


DUMP_OK = [
    {"nodeid": 0, "depth": 0, "split": "f1", "split_condition": 0.5, "yes": 1, "no": 2, "missing": 2,
     "children": [{"nodeid": 1, "leaf": 0.25}, {"nodeid": 2, "leaf": -0.75}]},
]
MALFORMED_DUMPS = {
    "no yes": (lambda t: t.pop("yes"), ModelFormatError, r"node 0, field 'yes'"),
    "yes not a child": (lambda t: t.update(yes=7), ModelFormatError, r"node 0, field 'yes'"),
    "missing elsewhere": (lambda t: t.update(missing=9), ModelFormatError, r"field 'missing'"),
    "one child": (lambda t: t["children"].pop(), ModelFormatError, r"field 'children'"),
    "duplicate nodeid": (lambda t: t["children"][1].update(nodeid=1), ModelFormatError, r"nodeid 1 appears twice"),
    "leaf string": (lambda t: t["children"][0].update(leaf="x"), ModelFormatError, r"node 1, field 'leaf'"),
    "leaf inf": (lambda t: t["children"][0].update(leaf=1e39), ModelFormatError, r"not finite"),
    "threshold string": (lambda t: t.update(split_condition="0.5"), ModelFormatError, r"split_condition"),
    "indicator split": (lambda t: t.pop("split_condition"), UnsupportedModelError, r"indicator"),
    "negative category": (lambda t: t.update(split_condition=[-1, 2]), ModelFormatError, r"category"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_DUMPS))
def test_malformed_dumps(case, tmp_path):
    fn, exc, pattern = MALFORMED_DUMPS[case]
    trees = copy.deepcopy(DUMP_OK)
    fn(trees[0])
    path = _write(tmp_path, trees, "dump.json")
    with pytest.raises(exc, match=pattern):
        load_model(path, format="xgboost-dump")
    ok = load_model(_write(tmp_path, DUMP_OK, "ok.json"))
    assert ok.n_features == 2 and ok.predict([[0, 0.5], [0, 0.4999999], [0, np.nan]]).tolist() == [-0.75, 0.25, -0.75]
    with pytest.raises(ModelFormatError, match="split feature 'f1'"):
        load_model(tmp_path / "ok.json", feature_names=["a", "b"])


def test_truncated_and_garbled_files(small_doc, tmp_path):
    text = json.dumps(small_doc)
    for cut in (1, 10, len(text) // 3, len(text) - 1):
        with pytest.raises(ModelFormatError, match="invalid JSON"):
            load_model(_write(tmp_path, text[:cut]), format="xgboost-json")
    bst = xgb.Booster()
    bst.load_model(bytearray(text.encode()))
    ubj = bytes(bst.save_raw("ubj"))
    for cut in (3, 40, len(ubj) // 2, len(ubj) - 1):
        p = tmp_path / "t.ubj"
        p.write_bytes(ubj[:cut])
        with pytest.raises(ModelFormatError, match="UBJSON"):
            load_model(p, format="xgboost-ubj")
    p.write_bytes(ubj[:20] + b"\x01" + ubj[21:])
    with pytest.raises(LtrCompileError):
        load_model(p, format="xgboost-ubj")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "bin.json", format="xgboost-json")


def test_ubj_decoder_matches_json(small_doc):
    bst = xgb.Booster()
    bst.load_model(bytearray(json.dumps(small_doc).encode()))
    from ltrcompile.frontends import _ubjson

    dec = _ubjson.loads(bytes(bst.save_raw("ubj")))
    js = json.loads(bst.save_raw("json"))

    def norm(v):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, float):
            return float(F32(v)) if math.isfinite(v) else repr(v)
        return v

    assert norm(dec) == norm(js)
    trees = dec["learner"]["gradient_booster"]["model"]["trees"]
    assert trees[0]["split_conditions"].dtype == np.float32  # typed arrays stay numpy arrays


# --------------------------------------------------------------------------- property tests
_LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
_LIBM.logf.restype = ctypes.c_float
_LIBM.logf.argtypes = [ctypes.c_float]

N_FEAT = 5


@st.composite
def xgb_trees(draw, tid: int, n_groups: int):
    """A random valid XGBoost tree object (scalar leaves), node ids shuffled like a pruned tree."""
    n_internal = draw(st.integers(0, 6))
    n = 2 * n_internal + 1
    perm = [0] + draw(st.permutations(list(range(1, n))))
    f32 = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    left = [-1] * n
    right = [-1] * n
    feat = [0] * n
    cond = [0.0] * n
    dleft = [0] * n
    stype = [0] * n
    cat_nodes: list[int] = []
    cats: list[int] = []
    segs: list[int] = []
    sizes: list[int] = []
    for logical in range(n):
        node = perm[logical]
        if logical < n_internal:
            left[node] = perm[2 * logical + 1]
            right[node] = perm[2 * logical + 2]
            feat[node] = draw(st.integers(0, N_FEAT - 1))
            dleft[node] = int(draw(st.booleans()))
            if draw(st.integers(0, 3)) == 0:
                stype[node] = 1
                cond[node] = draw(st.sampled_from([math.nan, 1e-45, 0.0]))
                s = sorted(set(draw(st.lists(st.integers(0, 40), max_size=5))))
                cat_nodes.append(node)
                segs.append(len(cats))
                sizes.append(len(s))
                cats.extend(s)
            else:
                cond[node] = draw(st.one_of(f32, st.sampled_from([0.0, -0.0, 1.5, math.inf, -math.inf])))
        else:
            cond[node] = draw(f32)
    order = sorted(range(len(cat_nodes)), key=lambda k: cat_nodes[k])
    return {
        "base_weights": [0.0] * n,
        "categories": [c for k in order for c in cats[segs[k] : segs[k] + sizes[k]]],
        "categories_nodes": [cat_nodes[k] for k in order],
        "categories_segments": list(np.cumsum([0] + [sizes[k] for k in order])[:-1].tolist()),
        "categories_sizes": [sizes[k] for k in order],
        "default_left": dleft,
        "id": tid,
        "left_children": left,
        "loss_changes": [0.0] * n,
        "parents": [2147483647] * n,
        "right_children": right,
        "split_conditions": [float(F32(c)) if math.isfinite(c) else c for c in cond],
        "split_indices": feat,
        "split_type": stype,
        "sum_hessian": [1.0] * n,
        "tree_param": {"num_deleted": "0", "num_feature": str(N_FEAT), "num_nodes": str(n), "size_leaf_vector": "1"},
    }


@st.composite
def xgb_docs(draw):
    objective = draw(st.sampled_from(["reg:squarederror", "binary:logistic", "multi:softprob", "rank:ndcg"]))
    n_groups = 3 if objective == "multi:softprob" else 1
    n_rounds = draw(st.integers(0, 3))
    n_trees = n_rounds * n_groups
    trees = [draw(xgb_trees(i, n_groups)) for i in range(n_trees)]
    if objective == "binary:logistic":
        base = float(F32(draw(st.floats(0.01, 0.99))))
    else:
        base = float(F32(draw(st.floats(-100, 100))))
    form = draw(st.sampled_from(["{:.6f}", "{!r}", "[{!r}]"]))
    base_str = form.format(float(base))
    doc = {
        "learner": {
            "attributes": {},
            "feature_names": [],
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(n_trees)},
                    "iteration_indptr": [k * n_groups for k in range(n_rounds + 1)],
                    "tree_info": [i % n_groups for i in range(n_trees)],
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": base_str,
                "boost_from_average": "1",
                "num_class": str(n_groups if n_groups > 1 else 0),
                "num_feature": str(N_FEAT),
                "num_target": "1",
            },
            "objective": {"name": objective},
        },
        "version": [3, 2, 0],
    }
    return doc


def _walk_margin(doc, X):
    """Direct per-row walk of an XGBoost JSON document (doc A.3), float32 throughout."""
    L = doc["learner"]
    lmp = L["learner_model_param"]
    obj = L["objective"]["name"]
    groups = max(int(lmp["num_class"]), 1)
    b = F32(float(lmp["base_score"].strip("[]")))
    if obj == "binary:logistic":
        b = F32(-_LIBM.logf(F32(F32(1) / b) - F32(1)))
    model = L["gradient_booster"]["model"]
    out = np.zeros((len(X), groups))
    leaves = np.zeros((len(X), len(model["trees"])), np.int32)
    for r, x in enumerate(X):
        acc = [b] * groups
        for i, t in enumerate(model["trees"]):
            n = 0
            while t["left_children"][n] != -1:
                v = F32(x[t["split_indices"][n]])
                if np.isnan(v):
                    go_left = t["default_left"][n] == 1
                elif t["split_type"][n] == 1:
                    k = t["categories_nodes"].index(n)
                    s = t["categories"][t["categories_segments"][k] : t["categories_segments"][k] + t["categories_sizes"][k]]
                    valid = 0 <= float(v) < 16777216
                    go_left = not (valid and int(float(v)) in s)
                else:
                    go_left = bool(v < F32(t["split_conditions"][n]))
                n = t["left_children"][n] if go_left else t["right_children"][n]
            g = model["tree_info"][i]
            acc[g] = F32(acc[g] + F32(t["split_conditions"][n]))
            leaves[r, i] = n
        out[r] = acc
    return out, leaves


def _ubj_encode(v) -> bytes:
    """Independent UBJSON writer in XGBoost's layout (typed arrays for numeric lists)."""
    if isinstance(v, dict):
        body = b"".join(b"L" + struct.pack(">q", len(k.encode())) + k.encode() + _ubj_encode(x) for k, x in v.items())
        return b"{" + body + b"}"
    if isinstance(v, str):
        return b"SL" + struct.pack(">q", len(v.encode())) + v.encode()
    if isinstance(v, bool):
        return b"T" if v else b"F"
    if isinstance(v, int):
        return b"L" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">f", v)
    if isinstance(v, list):
        if v and all(isinstance(x, float) for x in v):
            return b"[$d#L" + struct.pack(">q", len(v)) + b"".join(struct.pack(">f", x) for x in v)
        if v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            return b"[$l#L" + struct.pack(">q", len(v)) + b"".join(struct.pack(">i", x) for x in v)
        return b"[#L" + struct.pack(">q", len(v)) + b"".join(_ubj_encode(x) for x in v)
    raise TypeError(type(v))


def _probe_rows(doc, rng: np.random.Generator) -> np.ndarray:
    vals = [math.nan, 0.0, -0.0, -1.0, 2.7, 3.0, 40.0, 16777216.0, 1e30, -1e30]
    for t in doc["learner"]["gradient_booster"]["model"]["trees"]:
        for c in t["split_conditions"]:
            if math.isfinite(c):
                c32 = F32(c)
                vals += [float(c32), float(np.nextafter(c32, F32(np.inf))), float(np.nextafter(c32, F32(-np.inf)))]
        vals += [float(c) for c in t["categories"]]
    vals = np.array(vals)
    return vals[rng.integers(0, len(vals), size=(60, N_FEAT))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=xgb_docs(), seed=st.integers(0, 2**16))
def test_property_random_trees_parse_round_trip_and_walk(doc, seed):
    ens = xfe.from_document(copy.deepcopy(doc), path="random.json")
    back = Ensemble.from_json(ens.to_json())
    assert back.to_json() == ens.to_json()
    X = _probe_rows(doc, np.random.default_rng(seed))
    want, want_leaves = _walk_margin(doc, X)
    got = ens.predict(X, raw_score=True).reshape(len(X), -1)
    assert_bit_equal(got, want, "interpreter vs direct walk")
    assert_bit_equal(back.predict(X, raw_score=True).reshape(len(X), -1), want, "round-tripped IR")
    np.testing.assert_array_equal(ens.predict_leaf(X), want_leaves)
    # the same document as UBJSON (typed arrays) gives the same IR
    ubj = _ubj_encode(json.loads(json.dumps(doc)))
    from ltrcompile.frontends import _ubjson

    assert xfe.from_document(_ubjson.loads(ubj), path="random.ubj").to_json() == ens.to_json()


def _mutations():
    junk = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
        st.text(max_size=5), st.lists(st.integers(-5, 5), max_size=4), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
    return st.tuples(st.integers(0, 10**6), st.sampled_from(["delete", "replace", "truncate", "child"]), junk)


def _paths(v, prefix=()):
    yield prefix
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v[:4]):
            yield from _paths(x, prefix + (i,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=xgb_docs(), muts=st.lists(_mutations(), min_size=1, max_size=3))
def test_property_malformed_documents_raise_typed_errors(doc, muts):
    for pick, kind, junk in muts:
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = paths[pick % len(paths)]
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        if kind == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif kind == "replace":
            parent[key] = junk
        elif kind == "truncate" and isinstance(parent[key], list):
            parent[key] = parent[key][: len(parent[key]) // 2]
        elif kind == "child" and isinstance(parent[key], list) and parent[key]:
            parent[key][0] = junk if isinstance(junk, int) and not isinstance(junk, bool) else -7
    try:
        ens = xfe.from_document(doc, path="mutated.json")
    except (ModelFormatError, UnsupportedModelError) as exc:
        assert "mutated.json" in str(exc)
        return
    ens.validate()  # whatever loads is a valid IR
    if ens.n_features <= 1000:
        ens.predict(np.zeros((2, ens.n_features)), raw_score=True)


@settings(max_examples=80, deadline=None)
@given(doc=xgb_docs(), cut=st.floats(0, 1), flip=st.integers(0, 10**6), byte=st.integers(0, 255))
def test_property_truncated_or_flipped_bytes(doc, cut, flip, byte, tmp_path_factory):
    d = tmp_path_factory.mktemp("bytes")
    text = json.dumps(doc).encode()
    ubj = _ubj_encode(json.loads(json.dumps(doc)))
    cases = [
        ("xgboost-json", text[: int(len(text) * cut)]),
        ("xgboost-ubj", ubj[: int(len(ubj) * cut)]),
        ("xgboost-ubj", ubj[: flip % len(ubj)] + bytes([byte]) + ubj[flip % len(ubj) + 1 :]),
        ("xgboost-json", text[: flip % len(text)] + bytes([byte]) + text[flip % len(text) + 1 :]),
    ]
    for i, (fmt, data) in enumerate(cases):
        p = d / f"c{i}"
        p.write_bytes(data)
        try:
            load_model(p, format=fmt)
        except (ModelFormatError, UnsupportedModelError):
            pass
