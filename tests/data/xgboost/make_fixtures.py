"""Write small XGBoost model files plus the native predictions of the XGBoost that wrote them.

Run with an OLD XGBoost in a throwaway venv outside the repo, e.g.::

    python3 -m venv /tmp/xgb17 && /tmp/xgb17/bin/pip install xgboost==1.7.6 "numpy<2" pandas
    /tmp/xgb17/bin/python tests/data/xgboost/make_fixtures.py
    python3 -m venv /tmp/xgb20 && /tmp/xgb20/bin/pip install xgboost==2.0.3 "numpy<2" pandas
    /tmp/xgb20/bin/python tests/data/xgboost/make_fixtures.py

For every model ``xgb<version>_<name>`` it writes ``.json``, ``.ubj`` (XGBoost >= 1.6) and ``.npz``
holding the input rows ``X`` (random rows with NaN plus rows on, and one float32/float64 ulp around,
every threshold of the model, and invalid category codes), and what that XGBoost returned for them
via ``predict(DMatrix)``: ``margin`` (output_margin=True), ``pred`` (transformed), ``leaf``
(pred_leaf, tree models), optionally ``range_margin`` for ``meta["iteration_range"]``, and
``inplace_margin`` (inplace_predict, not for DART). The tests reproduce them bit-exactly without
the old XGBoost installed. This script must not import ltrcompile (it runs on old stacks).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = xgb.__version__
MAJOR_MINOR = tuple(int(x) for x in VERSION.split(".")[:2])
N_FEATURES = 6
CAT = 5  # index of the categorical feature
N_CATS = 12


def training_data(seed: int, n: int = 600, categorical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[rng.random(X.shape) < 0.1] = np.nan
    if categorical:
        X[:, CAT] = rng.integers(0, N_CATS, n).astype(np.float64)
        X[rng.random(n) < 0.05, CAT] = np.nan
    signal = np.nan_to_num(X[:, 0]) - 0.7 * np.nan_to_num(X[:, 1]) + 0.3 * np.nan_to_num(X[:, 2]) ** 2
    if categorical:
        signal = signal + np.where(np.isin(X[:, CAT], [1, 4, 7, 9]), 1.5, -0.5)
    return X, signal + 0.3 * rng.normal(size=n)


def model_thresholds(booster: xgb.Booster) -> list[tuple[int, float]]:
    doc = json.loads(booster.save_raw("json"))
    gb = doc["learner"]["gradient_booster"]
    model = gb["gbtree"]["model"] if gb["name"] == "dart" else gb.get("model", {})
    out = []
    for t in model.get("trees", []):
        stype = t.get("split_type") or [0] * len(t["left_children"])
        for i, lc in enumerate(t["left_children"]):
            if lc != -1 and stype[i] == 0:
                out.append((int(t["split_indices"][i]), float(t["split_conditions"][i])))
    return out


def eval_rows(booster: xgb.Booster, X_train: np.ndarray, seed: int, categorical: bool) -> np.ndarray:
    """Random training rows, then rows planting every threshold (and its neighbours)."""
    rng = np.random.default_rng(seed + 1000)
    base = X_train[rng.choice(len(X_train), 120, replace=False)].copy()
    planted = []
    for f, t in model_thresholds(booster):
        t32 = np.float32(t)
        for v in (
            float(t32),
            float(np.nextafter(t32, np.float32(np.inf))),
            float(np.nextafter(t32, np.float32(-np.inf))),
            float(np.nextafter(float(t32), np.inf)),
            float(np.nextafter(float(t32), -np.inf)),
        ):
            row = X_train[rng.integers(len(X_train))].copy()
            row[f] = v
            planted.append(row)
    specials = []
    for v in (np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e30, -1e30, 3.0e38):
        row = X_train[rng.integers(len(X_train))].copy()
        row[rng.integers(CAT if categorical else N_FEATURES)] = v
        specials.append(row)
    if categorical:
        for v in (-1.0, -0.5, 0.5, 2.7, 11.0, 12.0, 100.0, 16777215.0, 16777216.0, 2.0**31, np.nan):
            row = X_train[rng.integers(len(X_train))].copy()
            row[CAT] = v
            specials.append(row)
    planted = np.array(planted) if planted else np.zeros((0, N_FEATURES))
    if len(planted) > 400:
        planted = planted[rng.choice(len(planted), 400, replace=False)]
    return np.vstack([base, planted, np.array(specials)])


def dmatrix(X: np.ndarray, y: np.ndarray | None = None, categorical: bool = False, **kw) -> xgb.DMatrix:
    if categorical:
        types = ["q"] * N_FEATURES
        types[CAT] = "c"
        return xgb.DMatrix(X, y, feature_types=types, enable_categorical=True, nthread=1, **kw)
    return xgb.DMatrix(X, y, nthread=1, **kw)


def write(name: str, booster: xgb.Booster, X_train: np.ndarray, seed: int, *, categorical: bool = False,
          linear: bool = False, dart: bool = False, iteration_range: tuple[int, int] | None = None,
          meta: dict | None = None) -> None:
    stem = os.path.join(HERE, f"xgb{VERSION}_{name}")
    booster.save_model(stem + ".json")
    if MAJOR_MINOR >= (1, 6):
        booster.save_model(stem + ".ubj")
    rows = eval_rows(booster, X_train, seed, categorical) if not linear else X_train[:200]
    d = dmatrix(rows, categorical=categorical)
    out = {
        "X": rows,
        "margin": booster.predict(d, output_margin=True),
        "pred": booster.predict(d),
    }
    if not linear:
        out["leaf"] = booster.predict(d, pred_leaf=True).astype(np.int32)
    if iteration_range is not None:
        out["range_margin"] = booster.predict(d, output_margin=True, iteration_range=iteration_range)
        if iteration_range[0] == 0:  # XGBoost's pred_leaf only takes ranges starting at 0
            out["range_leaf"] = booster.predict(
                d, pred_leaf=True, iteration_range=iteration_range
            ).astype(np.int32)
    if not dart and not linear and not categorical:
        out["inplace_margin"] = booster.inplace_predict(rows, predict_type="margin")
    info = {"xgboost": VERSION, "name": name, "iteration_range": iteration_range, **(meta or {})}
    out["meta"] = np.array(json.dumps(info))
    np.savez_compressed(stem + ".npz", **out)
    print("wrote", stem, {k: np.shape(v) for k, v in out.items()})


def train(params: dict, d: xgb.DMatrix, rounds: int) -> xgb.Booster:
    base = {"nthread": 1, "seed": 0, "max_depth": 3, "eta": 0.3}
    base.update(params)
    return xgb.train({k: v for k, v in base.items() if v is not None}, d, rounds)


def main() -> None:
    X, y = training_data(1, categorical=True)
    cat_params = {"objective": "binary:logistic", "tree_method": "hist", "max_cat_to_onehot": 1}
    b = train(cat_params, dmatrix(X, (y > 0).astype(float), categorical=True), 8)
    write("binary_cat", b, X, 1, categorical=True)

    X, y = training_data(2)
    b = train({"objective": "reg:squarederror", "base_score": 3000.0, "tree_method": "exact"},
              dmatrix(X, y + 3000.0), 8)
    write("reg_base3000_exact", b, X, 2)

    X, y = training_data(3)
    b = train({"objective": "count:poisson", "tree_method": "hist"}, dmatrix(X, np.exp(y / 3).round()), 8)
    write("poisson", b, X, 3)

    X, y = training_data(4)
    b = train({"objective": "reg:logistic", "base_score": 0.3, "tree_method": "hist"},
              dmatrix(X, 1 / (1 + np.exp(-y))), 6)
    write("logistic_base03", b, X, 4)

    X, y = training_data(5)
    cls = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    b = train({"objective": "multi:softprob", "num_class": 3, "num_parallel_tree": 2,
               "subsample": 0.8, "colsample_bynode": 0.8, "tree_method": "hist"},
              dmatrix(X, cls.astype(float)), 4)
    write("multi_rf", b, X, 5, iteration_range=(1, 3))

    X, y = training_data(6)
    b = train({"booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0, "objective": "reg:squarederror",
               "tree_method": "hist"}, dmatrix(X, y), 8)
    write("dart", b, X, 6, dart=True)

    X, y = training_data(7)
    b = train({"booster": "gblinear", "objective": "binary:logistic", "max_depth": None},
              dmatrix(X, (y > 0).astype(float)), 6)
    write("gblinear", b, X, 7, linear=True)

    X, y = training_data(8, n=300)
    groups = np.full(30, 10)
    rel = np.digitize(y, np.quantile(y, [0.5, 0.8, 0.95]))
    b = train({"objective": "rank:ndcg", "tree_method": "hist"}, dmatrix(X, rel.astype(float), group=groups), 6)
    write("rank_ndcg", b, X, 8, iteration_range=(2, 5))

    if MAJOR_MINOR >= (2, 0):
        X, y = training_data(9)
        Y = np.c_[y, -y + np.nan_to_num(X[:, 3]), np.nan_to_num(X[:, 4]) * 2]
        b = train({"objective": "reg:squarederror", "multi_strategy": "multi_output_tree",
                   "tree_method": "hist"}, dmatrix(X, Y), 5)
        write("multi_target", b, X, 9)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        raise SystemExit(__doc__)
    main()
