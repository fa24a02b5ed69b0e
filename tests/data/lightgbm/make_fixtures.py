"""Write LightGBM 3.3.x model files (format v3) and 3.3.x's own predictions on fixed rows.

Run with an interpreter that has lightgbm 3.3.x (NOT the project venv), e.g.::

    python3 -m venv /tmp/lgb33
    /tmp/lgb33/bin/pip install lightgbm==3.3.5 "numpy<2" scikit-learn
    /tmp/lgb33/bin/python tests/data/lightgbm/make_fixtures.py

For every model NAME it writes ``NAME.txt`` (``save_model``) and ``NAME.npz`` holding ``rows``
(float64: real rows plus edge rows built from the model's own thresholds), and LightGBM 3.3's
``raw``/``pred``/``leaf`` outputs for those rows given as float64 and (``*32``) as float32. The
tests in ``tests/test_lightgbm_frontend.py`` check bit-exact reproduction without needing 3.3.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np

HERE = Path(__file__).resolve().parent
KZ = float(np.float32(1e-35))
SPECIAL = [np.nan, 0.0, -0.0, 1e-36, -1e-36, KZ, -KZ, 1.0, -1.0, 1e30, -1e30, 1e300, -1e300, np.inf, -np.inf]
BAD_CATS = [-1.0, -0.5, 0.5, 2.7, 31.0, 32.0, 33.0, 64.0, 1000.0, 2.0**31, np.inf, np.nan]
BASE = dict(num_threads=1, deterministic=True, verbose=-1, seed=7, num_leaves=12, min_data_in_leaf=5)


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Six features: 0-3 normal with 15% NaN and some exact zeros, 4 integer categories, 5 uniform."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 4] = rng.integers(0, 24, n)
    X[:, 5] = rng.uniform(-3, 3, n)
    X[:, :4][rng.random((n, 4)) < 0.15] = np.nan
    X[:, 1][rng.random(n) < 0.2] = 0.0
    X[rng.random(n) < 0.05, 4] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + np.isnan(X[:, 1]) + (np.nan_to_num(X[:, 4]) % 5 == 1) + 0.3 * X[:, 5]
    return X, y + rng.normal(scale=0.1, size=n)


def thresholds(text: str) -> dict[int, list[float]]:
    """Numerical thresholds per feature, read from the model text."""
    out: dict[int, list[float]] = {}
    feats: list[int] = []
    for line in text.splitlines():
        if line.startswith("split_feature="):
            feats = [int(v) for v in line.split("=", 1)[1].split()]
        elif line.startswith("decision_type="):
            dts = [int(v) for v in line.split("=", 1)[1].split()]
        elif line.startswith("threshold="):
            thr = [float(v) for v in line.split("=", 1)[1].split()]
        elif line.startswith("left_child="):
            for f, t, d in zip(feats, thr, dts, strict=True):
                if not d & 1:
                    out.setdefault(f, []).append(t)
    return out


def edge_rows(text: str, background: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values: dict[int, np.ndarray] = {}
    for f in range(background.shape[1]):
        vals = list(SPECIAL)
        if f == 4:
            vals += list(range(0, 26)) + BAD_CATS
        for t in thresholds(text).get(f, []):
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
    return np.vstack([background[:200], mixed, *planted])


def build(name: str, params: dict, rounds: int, n: int = 1500, seed: int = 0, **ds: object) -> None:
    X, y = data(n, seed)
    if params.get("objective") == "binary":
        y = (y > np.median(y)).astype(float)
    elif params.get("objective") == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66])).astype(float)
    booster = lgb.train(dict(BASE, **params), lgb.Dataset(X, y, **ds), rounds)
    path = HERE / f"{name}.txt"
    booster.save_model(str(path))
    model = lgb.Booster(model_file=str(path))  # reloaded: the reference
    Xt, _ = data(400, seed + 100)
    rows = edge_rows(path.read_text(), Xt, seed)
    out = {"rows": rows}
    with np.errstate(over="ignore"):
        rows32 = rows.astype(np.float32)
    for suffix, R in (("", rows), ("32", rows32)):
        out["raw" + suffix] = model.predict(R, raw_score=True)
        out["pred" + suffix] = model.predict(R)
        out["leaf" + suffix] = model.predict(R, pred_leaf=True).astype(np.int32)
    np.savez_compressed(HERE / f"{name}.npz", **out)
    print(f"{name}: {path.stat().st_size} bytes model, {len(rows)} rows")


def main() -> None:
    if not lgb.__version__.startswith("3."):
        sys.exit(f"run this with lightgbm 3.x (found {lgb.__version__}); see the module docstring")
    build("v3_regression", {"objective": "regression"}, 12)
    build(
        "v3_binary_categorical",
        {"objective": "binary", "sigmoid": 0.7, "min_data_per_group": 5, "cat_smooth": 1, "max_cat_to_onehot": 2},
        12,
        categorical_feature=[4],
    )
    build("v3_linear", {"objective": "regression", "linear_tree": True}, 8, categorical_feature=[4])
    build("v3_multiclass_zero", {"objective": "multiclass", "num_class": 3, "zero_as_missing": True}, 6)
    build("v3_rf", {"objective": "regression", "boosting": "rf", "bagging_fraction": 0.6, "bagging_freq": 1}, 6)


if __name__ == "__main__":
    main()
