"""Benchmark data: the real data sets the repository ships or finds beside it, and synthetic ones.

Every data set is a :class:`Dataset` with a training split (to fit a model) and a held-out split
(for the correctness gate); timing batches are drawn from both. Real data is used wherever it
exists; synthetic generators imitate real data (correlated columns, skewed and integer-valued
features, missing values) because uniform noise is the worst case for branch prediction and
would misstate every compiled engine's speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DATA = REPO / "examples" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"


class DataUnavailable(RuntimeError):
    """A real data set is not present on this machine (the model that needs it is skipped)."""


@dataclass
class Dataset:
    """Rows for training, gating and timing one model."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    group_train: np.ndarray | None = None
    description: str = ""
    categorical: tuple[int, ...] = ()

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def pool(self) -> np.ndarray:
        """All rows (train and test) that timing batches are drawn from."""
        return np.vstack([self.X_test, self.X_train])

    def fingerprint(self) -> str:
        """Cheap content key for the model cache."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.X_train, self.y_train):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def _letor(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    path = EXAMPLES_DATA / name
    if not path.exists():
        raise DataUnavailable(f"{path} not found")
    X, y = load_svmlight_file(str(path), n_features=300, zero_based=False)
    groups = np.loadtxt(f"{path}.query", dtype=np.int64)
    return np.asarray(X.toarray(), np.float64), y, groups


def lambdarank() -> Dataset:
    """LightGBM's lambdarank example (bundled in examples/data): 300 sparse LTR features."""
    Xtr, ytr, gtr = _letor("lambdarank_rank.train")
    Xte, yte, _ = _letor("lambdarank_rank.test")
    return Dataset(
        "lambdarank", Xtr, ytr, Xte, yte, group_train=gtr,
        description=f"LightGBM lambdarank example: {len(Xtr)} train / {len(Xte)} test rows, 300 features (real)",
    )


def binary_classification() -> Dataset:
    """LightGBM's binary-classification example (HIGGS-like physics features, 28 columns)."""
    base = SHARED_DATA / "lightgbm-examples"
    parts = []
    for split in ("train", "test"):
        path = base / f"binary_classification_binary.{split}"
        if not path.exists():
            raise DataUnavailable(f"{path} not found (shared/ is expected beside the repository)")
        a = np.loadtxt(path, dtype=np.float64)
        parts.append((a[:, 1:], a[:, 0]))
    (Xtr, ytr), (Xte, yte) = parts
    return Dataset(
        "binary_classification", Xtr, ytr, Xte, yte,
        description=f"LightGBM binary-classification example: {len(Xtr)} train / {len(Xte)} test rows, 28 features (real)",
    )


def digits(n_classes: int = 5) -> Dataset:
    """scikit-learn's bundled handwritten digits (8x8 pixels, values 0..16), first ``n_classes`` classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(n_class=n_classes, return_X_y=True)
    X = X.astype(np.float64)
    rng = np.random.default_rng(11)
    order = rng.permutation(len(X))
    cut = int(len(X) * 0.8)
    tr, te = order[:cut], order[cut:]
    return Dataset(
        f"digits{n_classes}", X[tr], y[tr].astype(np.float64), X[te], y[te].astype(np.float64),
        description=f"scikit-learn digits, classes 0-{n_classes - 1}: {len(tr)} train / {len(te)} test rows, 64 features (real)",
    )


def _split(name: str, X: np.ndarray, y: np.ndarray, desc: str, cats: tuple[int, ...] = ()) -> Dataset:
    cut = int(len(X) * 0.8)
    return Dataset(name, X[:cut], y[:cut], X[cut:], y[cut:], description=desc, categorical=cats)


def taxi_like(n_rows: int = 20000, seed: int = 3) -> Dataset:
    """Synthetic trip-fare regression in the spirit of the NYC-taxi model used by lleaves.

    8 columns: pickup hour (integer, bimodal), weekday (integer), passenger count (integer, mostly
    1), trip distance (log-normal, 2 % missing), pickup latitude/longitude (mixture of three
    clusters, correlated), a duration estimate correlated with distance and hour (3 % missing),
    and a surcharge flag. Target: a fare with hour effects and noise.
    """
    rng = np.random.default_rng(seed)
    n = n_rows
    hour = np.where(rng.random(n) < 0.55, rng.normal(18, 3, n), rng.normal(8.5, 2, n))
    hour = np.clip(np.round(hour), 0, 23) % 24
    weekday = rng.choice(7, n, p=[0.13, 0.14, 0.15, 0.15, 0.16, 0.15, 0.12]).astype(np.float64)
    passengers = rng.choice(np.arange(1, 7), n, p=[0.7, 0.14, 0.05, 0.03, 0.05, 0.03]).astype(np.float64)
    dist = rng.lognormal(0.7, 0.8, n)
    centre = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    lat0 = np.array([40.75, 40.70, 40.64])[centre]
    lon0 = np.array([-73.98, -73.95, -73.78])[centre]
    lat = lat0 + rng.normal(0, 0.02, n)
    lon = lon0 + 0.6 * (lat - lat0) + rng.normal(0, 0.02, n)
    rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))
    duration = dist * (3.2 + 1.5 * rush) + rng.gamma(2.0, 1.5, n)
    surcharge = (rng.random(n) < 0.1 + 0.3 * (hour >= 20)).astype(np.float64)
    fare = 2.5 + 2.1 * dist + 0.35 * duration + 1.0 * surcharge + 4.5 * (centre == 2) + rng.normal(0, 1.2, n)
    X = np.column_stack([hour, weekday, passengers, dist, lat, lon, duration, surcharge])
    X[rng.random(n) < 0.02, 3] = np.nan
    X[rng.random(n) < 0.03, 6] = np.nan
    return _split("taxi_like", X, fare, f"synthetic taxi-fare regression: {n} rows, 8 features (3 integer, 2 with NaN)")


def categorical_mix(n_rows: int = 20000, seed: int = 5) -> Dataset:
    """Synthetic binary task with 4 categorical columns (10, 30, 100, 200 levels, Zipf-like
    frequencies) and 6 correlated numeric columns (two log-normal, two with 5 % missing)."""
    rng = np.random.default_rng(seed)
    n = n_rows
    levels = (10, 30, 100, 200)
    cats = []
    effect = np.zeros(n)
    for k in levels:
        p = 1.0 / np.arange(1, k + 1) ** 1.1
        c = rng.choice(k, n, p=p / p.sum())
        effect += rng.normal(0, 0.8, k)[c]
        cats.append(c.astype(np.float64))
    cov = np.full((6, 6), 0.4) + 0.6 * np.eye(6)
    num = rng.multivariate_normal(np.zeros(6), cov, n)
    num[:, 0] = np.exp(num[:, 0])
    num[:, 1] = np.exp(0.5 * num[:, 1]) * 10
    logit = effect + 0.8 * num[:, 2] - 0.5 * np.log1p(num[:, 0]) + 0.3 * num[:, 3] * num[:, 4]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    num[rng.random(n) < 0.05, 3] = np.nan
    num[rng.random(n) < 0.05, 5] = np.nan
    X = np.column_stack(cats + [num])
    return _split(
        "categorical_mix", X, y,
        f"synthetic binary task: {n} rows, 4 categorical (10-200 levels) + 6 numeric features with NaN",
        cats=(0, 1, 2, 3),
    )


def ranklib_test() -> tuple[np.ndarray, np.ndarray, Path]:
    """RankLib's reference LambdaMART model, its test rows (dense, 300 features) and its own scores."""
    base = SHARED_DATA / "ranklib"
    model, scores = base / "lambdamart.model.txt", base / "lambdamart.scores.tsv"
    if not model.exists() or not scores.exists():
        raise DataUnavailable(f"{base}/lambdamart.* not found")
    Xte, _, _ = _letor("lambdarank_rank.test")
    ref = np.loadtxt(scores, dtype=np.float64, usecols=2)
    if len(ref) != len(Xte):
        raise DataUnavailable(f"{scores}: {len(ref)} scores for {len(Xte)} test rows")
    return Xte, ref, model


LOADERS = {
    "lambdarank": lambdarank,
    "binary_classification": binary_classification,
    "digits5": digits,
    "taxi_like": taxi_like,
    "categorical_mix": categorical_mix,
}


def load(name: str) -> Dataset:
    return LOADERS[name]()
