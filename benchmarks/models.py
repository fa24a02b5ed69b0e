"""The model zoo: which models are benchmarked, how each is trained (fixed seeds) and cached.

A trained model is saved in its library's own file format under the cache directory, keyed by a
hash of its configuration, the training data and the library version, so repeated runs reuse it.
Everything downstream (every engine, and the correctness reference) starts from that saved file,
reloaded, exactly as a user would deploy it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import datasets

DEFAULT_CACHE = datasets.REPO / ".cache" / "bench"


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry: a library, an objective and a shape, trained on one data set."""

    id: str
    library: str  # xgboost | lightgbm | sklearn | ranklib
    data: str  # a datasets.LOADERS key ("ranklib" for the shipped RankLib file)
    params: dict[str, Any]
    rounds: int
    purpose: str
    quick: bool = False


ZOO: tuple[ModelSpec, ...] = (
    ModelSpec(
        "lgb-reg-100x31", "lightgbm", "taxi_like",
        {"objective": "regression", "num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 20},
        100, "small regressor: call overhead dominates (lleaves' NYC-taxi shape)", quick=True,
    ),
    ModelSpec(
        "xgb-rank-100", "xgboost", "lambdarank",
        {"objective": "rank:ndcg", "max_depth": 6, "eta": 0.1},
        100, "quick-mode version of the XGBoost demo ranker", quick=True,
    ),
    ModelSpec(
        "xgb-rank-500", "xgboost", "lambdarank",
        {"objective": "rank:ndcg", "max_depth": 6, "eta": 0.1},
        500, "demo ranker (XGBoost rank:ndcg, depth 6)",
    ),
    ModelSpec(
        "lgb-rank-500x64", "lightgbm", "lambdarank",
        {"objective": "lambdarank", "num_leaves": 64, "learning_rate": 0.05, "min_data_in_leaf": 10},
        500, "demo ranker (LightGBM lambdarank, 64 leaves)",
    ),
    ModelSpec(
        "lgb-rank-1000x31", "lightgbm", "lambdarank",
        {"objective": "lambdarank", "num_leaves": 31, "learning_rate": 0.03, "min_data_in_leaf": 10},
        1000, "large ranker: generated code beyond L2, compile time and memory",
    ),
    ModelSpec(
        "skl-rf-100-deep", "sklearn", "binary_classification",
        {"n_estimators": 100, "max_depth": 14, "min_samples_leaf": 3, "max_features": 0.5},
        100, "deep random forest (scikit-learn RandomForestRegressor): code size, deep paths",
    ),
    ModelSpec(
        "lgb-cat-200x31", "lightgbm", "categorical_mix",
        {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 20,
         "max_cat_to_onehot": 4, "cat_smooth": 10},
        200, "categorical splits (4 categorical features, 10-200 levels)",
    ),
    ModelSpec(
        "xgb-mc5-100", "xgboost", "digits5",
        {"objective": "multi:softprob", "num_class": 5, "max_depth": 6, "eta": 0.3},
        100, "multiclass (5 classes x 100 rounds = 500 trees)",
    ),
    ModelSpec(
        "ranklib-lambdamart", "ranklib", "ranklib", {}, 100,
        "RankLib LambdaMART (shipped model file, 100 trees x 10 leaves); no Python RankLib predictor",
    ),
)

SUFFIX = {"xgboost": ".json", "lightgbm": ".txt", "sklearn": ".pkl", "ranklib": ".txt"}


@dataclass
class BenchModel:
    """A trained model on disk plus the rows to gate and time it on."""

    spec: ModelSpec
    path: Path
    pool: np.ndarray  # rows timing batches are drawn from
    gate_X: np.ndarray  # held-out rows for the correctness gate
    gate_ref: np.ndarray  # (n, k) raw output of the source library on gate_X
    n_trees: int
    n_outputs: int
    train_s: float | None  # None when loaded from the cache
    cached: bool
    data_description: str
    info: dict[str, Any] = field(default_factory=dict)
    ir: Any = None  # the ltrcompile Ensemble, when its frontend could load the model
    ir_error: str | None = None  # why it could not
    ir_load_s: float | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def library(self) -> str:
        return self.spec.library

    @property
    def n_features(self) -> int:
        return int(self.pool.shape[1])


def _key(spec: ModelSpec, ds: datasets.Dataset, version: str) -> str:
    blob = json.dumps(
        {"id": spec.id, "lib": spec.library, "params": spec.params, "rounds": spec.rounds,
         "data": ds.fingerprint(), "version": version},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def file_key(path: Path) -> str:
    """Content hash of a model file (for files the zoo does not train, e.g. RankLib's)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _lib_version(lib: str) -> str:
    import importlib

    name = "sklearn" if lib == "sklearn" else lib
    return str(getattr(importlib.import_module(name), "__version__", "?"))


# ---------------------------------------------------------------- trainers (fixed seeds, 1 thread)
def _train_xgboost(spec: ModelSpec, ds: datasets.Dataset, path: Path) -> None:
    import xgboost as xgb

    kw: dict[str, Any] = {}
    if ds.group_train is not None:
        kw["qid"] = np.repeat(np.arange(len(ds.group_train)), ds.group_train)
    dtrain = xgb.DMatrix(ds.X_train, ds.y_train, **kw)
    params = {**spec.params, "nthread": 1, "seed": 7}
    xgb.train(params, dtrain, num_boost_round=spec.rounds).save_model(str(path))


def _train_lightgbm(spec: ModelSpec, ds: datasets.Dataset, path: Path) -> None:
    import lightgbm as lgb

    params = {**spec.params, "num_threads": 1, "deterministic": True, "verbose": -1, "seed": 7}
    dtrain = lgb.Dataset(
        ds.X_train, ds.y_train, group=ds.group_train,
        categorical_feature=list(ds.categorical) or "auto",
    )
    lgb.train(params, dtrain, num_boost_round=spec.rounds).save_model(str(path))


def _train_sklearn(spec: ModelSpec, ds: datasets.Dataset, path: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor

    est = RandomForestRegressor(**spec.params, random_state=7, n_jobs=1).fit(ds.X_train, ds.y_train)
    with open(path, "wb") as fh:
        pickle.dump(est, fh, protocol=pickle.HIGHEST_PROTOCOL)


TRAINERS: dict[str, Callable[[ModelSpec, datasets.Dataset, Path], None]] = {
    "xgboost": _train_xgboost,
    "lightgbm": _train_lightgbm,
    "sklearn": _train_sklearn,
}


# ---------------------------------------------------------------- source-library reference outputs
def load_source(lib: str, path: Path) -> Any:
    """The source library's own model object, reloaded from the saved file."""
    if lib == "xgboost":
        import xgboost as xgb

        bst = xgb.Booster(model_file=str(path))
        bst.set_param({"nthread": 1})
        return bst
    if lib == "lightgbm":
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))
    if lib == "sklearn":
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 -- our own cache file
    raise ValueError(f"no Python predictor for {lib} models")


def source_raw(lib: str, model: Any, X: np.ndarray) -> np.ndarray:
    """Raw margins from the source library, shape (n, k), float64."""
    if lib == "xgboost":
        out = model.inplace_predict(X, predict_type="margin")
    elif lib == "lightgbm":
        out = model.predict(X, raw_score=True, num_threads=1)
    elif lib == "sklearn":
        out = model.predict(X)
    else:
        raise ValueError(lib)
    out = np.asarray(out, np.float64)
    return out.reshape(len(X), -1)


def _n_trees(lib: str, model: Any) -> int:
    if lib == "xgboost":
        return len(model.get_dump())
    if lib == "lightgbm":
        return int(model.num_trees())
    return len(model.estimators_)


def _gate_rows(ds: datasets.Dataset, max_rows: int = 2000) -> np.ndarray:
    return np.ascontiguousarray(ds.X_test[:max_rows])


def prepare(spec: ModelSpec, cache: Path = DEFAULT_CACHE, log: Callable[[str], None] = print) -> BenchModel:
    """Train (or fetch from the cache) one zoo model and compute its gate reference."""
    if spec.library == "ranklib":
        X, ref, model_path = datasets.ranklib_test()
        return BenchModel(
            spec, model_path, pool=X, gate_X=X, gate_ref=ref.reshape(-1, 1), n_trees=spec.rounds,
            n_outputs=1, train_s=None, cached=True,
            data_description=f"LightGBM lambdarank test rows as RankLib LETOR ({len(X)} rows, 300 features, real); "
            "reference = RankLib's own score file",
        )
    ds = datasets.load(spec.data)
    version = _lib_version(spec.library)
    key = _key(spec, ds, version)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{spec.id}-{key}{SUFFIX[spec.library]}"
    train_s: float | None = None
    cached = path.exists()
    if not cached:
        tmp = path.with_name(f"{path.stem}.part{path.suffix}")
        log(f"  training {spec.id} ({spec.library} {version}, {spec.rounds} rounds on {ds.name})...")
        t0 = time.perf_counter()
        TRAINERS[spec.library](spec, ds, tmp)
        train_s = time.perf_counter() - t0
        tmp.replace(path)
    model = load_source(spec.library, path)
    gate_X = _gate_rows(ds)
    ref = source_raw(spec.library, model, gate_X)
    return BenchModel(
        spec, path, pool=np.ascontiguousarray(ds.pool()), gate_X=gate_X, gate_ref=ref,
        n_trees=_n_trees(spec.library, model), n_outputs=ref.shape[1], train_s=train_s,
        cached=cached, data_description=ds.description,
        info={"library_version": version, "cache_key": key},
    )


def select(quick: bool, only: list[str] | None = None) -> list[ModelSpec]:
    """Zoo entries for a run: ``--models`` wins, else the quick set or every full-mode model."""
    if only:
        known = {s.id: s for s in ZOO}
        missing = [m for m in only if m not in known]
        if missing:
            raise SystemExit(f"unknown model id(s): {', '.join(missing)}; known: {', '.join(known)}")
        return [known[m] for m in only]
    if quick:
        return [s for s in ZOO if s.quick]
    return [s for s in ZOO if s.id != "xgb-rank-100"]
