"""Write scikit-learn 1.3 / 1.2 model fixtures: plain tree arrays + that version's own predictions.

Pickles are tied to the scikit-learn version that wrote them, so the main fixtures are the fitted
estimators' arrays in the layout of ``ltrcompile.frontends.sklearn.describe`` (extracted here by
this script's own code, without importing ltrcompile) saved with ``numpy.savez``. Run with an
interpreter that has the old scikit-learn (NOT the project venv), e.g.::

    python3.11 -m venv /tmp/skl13 && /tmp/skl13/bin/pip install scikit-learn==1.3.2 "numpy<2"
    python3.11 -m venv /tmp/skl12 && /tmp/skl12/bin/pip install scikit-learn==1.2.2 "numpy<2" "scipy<1.14"
    /tmp/skl13/bin/python tests/data/sklearn/make_fixtures.py
    /tmp/skl12/bin/python tests/data/sklearn/make_fixtures.py

For every model NAME it writes ``sk{VERSION}_{NAME}.npz`` holding the description plus
``expected.rows`` (float64: real rows and edge rows from the model's own thresholds, all finite in
float32 and accepted by that version's ``predict``), ``expected.raw`` (``predict_proba`` for tree and
forest classifiers, ``decision_function`` / ``_raw_predict`` for GB and HGB, ``predict`` for
regressors), ``expected.out`` (``predict_proba`` or ``predict``), ``expected.leaf`` (``apply``, trees
in IR order; not for HGB) and, for tree models, ``expected.nan_rows`` with ``expected.nan_leaf``:
NaN rows routed by each tree's own ``tree_.apply`` on float32 input (the code path every
``predict`` uses; public ``predict`` rejects NaN for most of these versions' estimators).
It also writes a few joblib pickles (``sk{VERSION}_{NAME}.joblib``) to test loading files written
by another scikit-learn version.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

HERE = Path(__file__).resolve().parent
VERSION = sklearn.__version__
V = tuple(int(x) for x in VERSION.split(".")[:2])
SPECIAL = [0.0, -0.0, 1e-36, -1e-36, 1.0, -1.0, 1e30, -1e30, 3.0e38, -3.0e38]


def data(n: int, seed: int, nan: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Six features: 0-3 normal, 4 small integers, 5 uniform; optional NaN in 0-2."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 4] = rng.integers(0, 9, n)
    X[:, 5] = rng.uniform(-3, 3, n)
    if nan:
        X[:, :3][rng.random((n, 3)) < nan] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + np.isnan(X[:, 1]) + (X[:, 4] % 3 == 1) + 0.3 * X[:, 5]
    return X, y + rng.normal(scale=0.2, size=n)


def classes(y: np.ndarray, k: int) -> np.ndarray:
    return np.digitize(y, np.quantile(y, np.linspace(0, 1, k + 1)[1:-1]))


# ---------------------------------------------------------------------------- description
def put_tree(d: dict, i: int, t) -> None:
    p = f"tree{i}."
    d[p + "children_left"] = np.asarray(t.children_left)
    d[p + "children_right"] = np.asarray(t.children_right)
    d[p + "feature"] = np.asarray(t.feature)
    d[p + "threshold"] = np.asarray(t.threshold)
    d[p + "value"] = np.asarray(t.value)
    if hasattr(t, "missing_go_to_left"):
        d[p + "missing_go_to_left"] = np.asarray(t.missing_go_to_left)


def tree_list(est) -> list:
    if hasattr(est, "tree_"):
        return [est.tree_]
    if isinstance(est.estimators_, list):
        return [e.tree_ for e in est.estimators_]
    return [e.tree_ for e in np.asarray(est.estimators_, dtype=object).ravel()]  # GB: stage-major


def describe(est) -> dict:
    d = {
        "format": "ltrcompile-sklearn-arrays",
        "format_version": 1,
        "estimator": type(est).__name__,
        "sklearn_version": VERSION,
        "n_features": int(est.n_features_in_),
    }
    if hasattr(est, "classes_"):
        d["classes"] = np.asarray(est.classes_)
    name = type(est).__name__
    if name.startswith("HistGradientBoosting"):
        K = int(est.n_trees_per_iteration_)
        d.update(n_iterations=len(est._predictors), K=K, loss=str(est.loss))
        d["baseline"] = np.asarray(est._baseline_prediction, np.float64).reshape(-1)
        for i, preds in enumerate(est._predictors):
            for k, p in enumerate(preds):
                d[f"pred{i}_{k}.nodes"] = p.nodes
                d[f"pred{i}_{k}.raw_left_cat_bitsets"] = p.raw_left_cat_bitsets
        known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        d["known_cat_bitsets"], d["f_idx_map"] = known, f_idx_map
        d["column_order"] = np.arange(est.n_features_in_)
        if est.is_categorical_ is not None:
            d["is_categorical"] = np.asarray(est.is_categorical_)
        return d
    trees = tree_list(est)
    d["n_trees"] = len(trees)
    for i, t in enumerate(trees):
        put_tree(d, i, t)
    if name.startswith("GradientBoosting"):
        n_stages, K = est.estimators_.shape
        d.update(n_stages=n_stages, K=K, learning_rate=float(est.learning_rate), loss=str(est.loss))
        d["init_raw"] = np.asarray(est._raw_predict_init(np.zeros((1, 6), np.float32)), np.float64).ravel()
    return d


# ---------------------------------------------------------------------------- rows
def thresholds(est) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for t in tree_list(est):
        internal = t.children_left != -1
        for f, thr in zip(t.feature[internal], t.threshold[internal], strict=True):
            out.setdefault(int(f), []).append(float(thr))
    return out


def edge_rows(est, background: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    thr = thresholds(est) if not type(est).__name__.startswith("Hist") else {}
    values = {}
    for f in range(background.shape[1]):
        vals = list(SPECIAL)
        for t in thr.get(f, []):
            t32 = np.float32(t)
            vals += [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), float(t32),
                     float(np.nextafter(t32, np.float32(np.inf))), float(np.nextafter(t32, np.float32(-np.inf)))]
        values[f] = np.array(vals, np.float64)
    longest = max(v.size for v in values.values())
    mixed = background[rng.integers(0, len(background), 2 * longest)].copy()
    for f, v in values.items():
        mixed[:, f] = v[rng.permutation(np.resize(np.arange(v.size), len(mixed)))]
    planted = []
    for f, v in values.items():
        rows = background[rng.integers(0, len(background), v.size)].copy()
        rows[:, f] = v
        planted.append(rows)
    out = np.vstack([background, mixed, *planted])
    return out[np.all(np.isfinite(out.astype(np.float32)), axis=1)]


def nan_rows(background: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = background[rng.integers(0, len(background), 200)].copy()
    rows[rng.random(rows.shape) < 0.3] = np.nan
    rows[:6] = np.nan
    return rows


# ---------------------------------------------------------------------------- outputs
def outputs(est, rows: np.ndarray) -> dict:
    name = type(est).__name__
    out = {}
    is_clf = hasattr(est, "classes_")
    if name.startswith("HistGradientBoosting"):
        out["raw"] = est._raw_predict(rows)
        out["out"] = est.predict_proba(rows) if is_clf else est.predict(rows)
        return out
    if name.startswith("GradientBoosting"):
        out["raw"] = est.decision_function(rows) if is_clf else est.predict(rows)
        out["out"] = est.predict_proba(rows) if is_clf else est.predict(rows)
    else:
        out["raw"] = out["out"] = est.predict_proba(rows) if is_clf else est.predict(rows)
    out["leaf"] = np.asarray(est.apply(rows)).reshape(len(rows), -1).astype(np.int64)
    return out


def save(name: str, est, background: np.ndarray, nan_ok: bool, seed: int, pickle: bool = False) -> None:
    d = describe(est)
    rows = edge_rows(est, background, seed)
    nr = nan_rows(background, seed + 1)
    if nan_ok:
        rows = np.vstack([rows, nr])
    for k, v in outputs(est, rows).items():
        d["expected." + k] = v
    d["expected.rows"] = rows
    if "n_trees" in d:
        X32 = nr.astype(np.float32)
        d["expected.nan_rows"] = nr
        d["expected.nan_leaf"] = np.stack([t.apply(X32) for t in tree_list(est)], axis=1).astype(np.int64)
    stem = f"sk{VERSION}_{name}"
    np.savez_compressed(HERE / f"{stem}.npz", **d)
    if pickle:
        joblib.dump(est, HERE / f"{stem}.joblib")
    print(stem, "rows", len(rows), "trees", d.get("n_trees", d.get("n_iterations")))


def main() -> None:
    warnings.simplefilter("ignore")
    X, y = data(400, 1)
    Xn, yn = data(400, 2, nan=0.15)
    w = np.random.default_rng(3).uniform(0.2, 3.0, len(X))  # non-integer weighted class counts
    nan_trees = V >= (1, 3)  # DecisionTree* splitter="best" fit/predict NaN from 1.3
    Xt, yt = (Xn, yn) if nan_trees else (X, y)
    old = V < (1, 3)  # 1.2: only what differs (no missing_go_to_left; old pickles)
    bg, bgn = X[:150], Xn[:150]

    m = DecisionTreeClassifier(max_depth=7, random_state=0).fit(Xt, classes(yt, 3), sample_weight=w)
    save("dtc3", m, bg, nan_trees, 10, pickle=True)
    m = DecisionTreeRegressor(max_depth=6, random_state=0).fit(Xt, np.c_[yt, -yt])  # 2 outputs
    save("dtr2", m, bg, nan_trees, 11)
    m = RandomForestClassifier(n_estimators=6, max_depth=5, random_state=0, n_jobs=1)
    save("rfc3", m.fit(X, classes(y, 3), sample_weight=w), bg, False, 12, pickle=not old)
    m = GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, classes(y, 3))
    save("gbc3", m, bg, False, 14, pickle=not old)
    m = GradientBoostingRegressor(n_estimators=8, max_depth=3, init="zero", random_state=0).fit(X, y)
    save("gbr_zero", m, bg, False, 18)
    if old:
        return
    m = ExtraTreesRegressor(n_estimators=5, max_depth=5, random_state=0, n_jobs=1).fit(X, y)
    save("etr", m, bg, False, 13)
    m = GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, y > 0.3)
    save("gbc2", m, bg, False, 15)
    m = GradientBoostingClassifier(n_estimators=8, max_depth=3, loss="exponential", random_state=0)
    save("gbc2_exp", m.fit(X, y > 0.3), bg, False, 16)
    m = GradientBoostingRegressor(n_estimators=8, max_depth=3, loss="huber", random_state=0).fit(X, y)
    save("gbr_huber", m, bg, False, 17)
    m = HistGradientBoostingClassifier(max_iter=6, max_leaf_nodes=8, random_state=0).fit(Xn, classes(yn, 3))
    save("hgbc3", m, bgn, True, 19)
    m = HistGradientBoostingRegressor(max_iter=6, loss="poisson", random_state=0).fit(Xn, np.exp(yn / 4))
    save("hgbr_poisson", m, bgn, True, 20)
    m = HistGradientBoostingRegressor(max_iter=4, categorical_features=[4], random_state=0).fit(Xn, yn)
    save("hgbr_cat", m, bgn, True, 21)


if __name__ == "__main__":
    main()
