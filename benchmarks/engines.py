"""Engine adapters: one small class per way of scoring a model, all with the same interface.

An engine says whether it can run at all (``unavailable``: a package is missing) and on a given
model (``unsupported``), optionally describes a build to run in a measured subprocess
(``build_spec``), loads what it needs (``load``), and then, per timing cell, ``bind``s an input
batch and a thread count into a zero-argument callable. ``raw`` gives the engine's raw margins,
shape (n, k), for the correctness gate. Some engines have several call paths (``labels``), e.g.
the compiled scorer's ``predict`` and ``predict_one``; each is gated and timed on its own.

Every engine is pinned to the cell's thread count through its own setting. Input preparation that
is part of the engine's real cost (XGBoost ``DMatrix``, tl2cgen ``DMatrix``) happens inside the
timed call; the batch itself is the same float64 C-contiguous array for every engine.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import models
from .models import BenchModel

Call = Callable[[], Any]


def _missing(*modules: str) -> str | None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- any import failure makes the engine unavailable
            return f"cannot import {name}: {type(exc).__name__}: {exc}"
    return None


def _as2d(out: Any, n: int) -> np.ndarray:
    return np.asarray(out, np.float64).reshape(n, -1)


class Engine:
    """Base adapter; subclasses override what differs."""

    name = "engine"
    ours = False  # part of ltrcompile (for the speed-up column)
    modules: tuple[str, ...] = ()
    libraries: tuple[str, ...] | None = None  # source libraries it can score; None = all
    build_kind: str | None = None
    cache_builds = False  # peer compilers: reuse a cached build between runs (their code does not change)
    note = ""
    single_thread_only = False

    def __init__(self) -> None:
        self.load_s: float | None = None

    def unavailable(self) -> str | None:
        return _missing(*self.modules)

    def unsupported(self, bm: BenchModel) -> str | None:
        if self.libraries is not None and bm.library not in self.libraries:
            return f"does not read {bm.library} models"
        return None

    def build_spec(self, bm: BenchModel, workdir: Path) -> dict[str, Any] | None:
        return None

    def build_fingerprint(self) -> str:
        """Short hash of what a cached build depends on: module versions and the C compiler."""
        import hashlib

        from .machine import compiler, versions

        v = versions()
        blob = repr([(m, v.get(m)) for m in ("treelite", "tl2cgen", "lleaves", "llvmlite")]) + compiler()
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def labels(self) -> list[str]:
        return [self.name]

    def accepts(self, label: str, batch: int, threads: int) -> bool:
        return not (self.single_thread_only and threads != 1)

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        raise NotImplementedError

    def raw(self, label: str, X: np.ndarray) -> np.ndarray:
        return _as2d(self.bind(label, X, 1)(), len(X))

    def close(self) -> None:
        """Drop loaded objects (engines are per model)."""


# ---------------------------------------------------------------- source libraries
class XGBoostInplace(Engine):
    name = "xgboost.inplace_predict"
    modules = ("xgboost",)
    libraries = ("xgboost",)
    note = "Booster.inplace_predict(X, predict_type='margin'), nthread set on the booster"

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        t0 = time.perf_counter()
        self.bst = models.load_source("xgboost", bm.path)
        self.load_s = time.perf_counter() - t0

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        self.bst.set_param({"nthread": threads})
        bst = self.bst
        return lambda: bst.inplace_predict(X, predict_type="margin")


class XGBoostDMatrix(XGBoostInplace):
    name = "xgboost.predict(DMatrix)"
    note = "Booster.predict(DMatrix(X), output_margin=True); DMatrix construction is inside the timer"

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        import xgboost as xgb

        self.bst.set_param({"nthread": threads})
        bst = self.bst
        return lambda: bst.predict(xgb.DMatrix(X, nthread=threads), output_margin=True)


class LightGBMPredict(Engine):
    name = "lightgbm.predict"
    modules = ("lightgbm",)
    libraries = ("lightgbm",)
    note = "Booster.predict(X, raw_score=True, num_threads=n)"

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        t0 = time.perf_counter()
        self.bst = models.load_source("lightgbm", bm.path)
        self.load_s = time.perf_counter() - t0

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        bst = self.bst
        return lambda: bst.predict(X, raw_score=True, num_threads=threads)


class SklearnPredict(Engine):
    name = "sklearn.predict"
    modules = ("sklearn",)
    libraries = ("sklearn",)
    note = "estimator.predict(X) with n_jobs=n"

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        t0 = time.perf_counter()
        self.est = models.load_source("sklearn", bm.path)
        self.load_s = time.perf_counter() - t0

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        self.est.set_params(n_jobs=threads)
        est = self.est
        return lambda: est.predict(X)


# ---------------------------------------------------------------- peer compilers
class Treelite(Engine):
    name = "treelite+tl2cgen"
    modules = ("treelite", "tl2cgen")
    libraries = ("xgboost", "lightgbm", "sklearn")
    build_kind = "treelite"
    cache_builds = True
    note = ("treelite frontend -> tl2cgen C (parallel_comp = 2 x cores) -> gcc -O3 .so; "
            "Predictor(nthread=n).predict(DMatrix(X), pred_margin=True), DMatrix inside the timer")

    def build_spec(self, bm: BenchModel, workdir: Path) -> dict[str, Any]:
        from .machine import n_cores

        return {"kind": "treelite", "library": bm.library, "model": str(bm.path),
                "out": str(workdir / "treelite"), "parallel_comp": 2 * n_cores(), "nthread": n_cores()}

    F32_INPUT = ".f32-rounded-input"

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        import tl2cgen

        assert build is not None
        # scikit-learn compares float32-cast inputs with float64 thresholds; treelite keeps the
        # float64 input, so it scores some rows differently. The extra variant rounds the input to
        # float32 first (inside the timer), as a careful user would.
        self.variants = [self.name] + ([self.name + self.F32_INPUT] if bm.library == "sklearn" else [])
        self.lib = build["artifact"]
        t0 = time.perf_counter()
        first = tl2cgen.Predictor(self.lib, nthread=1)
        self.load_s = time.perf_counter() - t0
        self.predictors = {1: first}
        self.dtype = first.threshold_type

    def _predictor(self, threads: int) -> Any:
        import tl2cgen

        if threads not in self.predictors:
            self.predictors[threads] = tl2cgen.Predictor(self.lib, nthread=threads)
        return self.predictors[threads]

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        import tl2cgen

        pred, dtype = self._predictor(threads), self.dtype
        np_dtype = np.dtype(dtype)
        if label.endswith(self.F32_INPUT):
            return lambda: pred.predict(
                tl2cgen.DMatrix(X.astype(np.float32).astype(np_dtype), dtype=dtype), pred_margin=True)
        # tl2cgen's DMatrix cannot convert dtypes itself under numpy 2: convert (inside the timer)
        return lambda: pred.predict(tl2cgen.DMatrix(X.astype(np_dtype, copy=False), dtype=dtype), pred_margin=True)

    def labels(self) -> list[str]:
        return self.variants

    def close(self) -> None:
        self.predictors = {}


class Lleaves(Engine):
    name = "lleaves"
    modules = ("lleaves",)
    libraries = ("lightgbm",)
    build_kind = "lleaves"
    cache_builds = True
    note = "lleaves.Model(model_file).compile(raw_score=True) (LLVM); predict(X, n_jobs=n), float64"

    def build_spec(self, bm: BenchModel, workdir: Path) -> dict[str, Any]:
        return {"kind": "lleaves", "library": bm.library, "model": str(bm.path), "out": str(workdir / "lleaves")}

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        import lleaves

        assert build is not None
        t0 = time.perf_counter()
        self.model = lleaves.Model(model_file=str(bm.path))
        self.model.compile(cache=build["artifact"], raw_score=True)
        self.load_s = time.perf_counter() - t0

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        m = self.model
        return lambda: m.predict(X, n_jobs=threads)


# ---------------------------------------------------------------- ltrcompile
class LtrInterpreter(Engine):
    name = "ltrcompile.interpreter"
    ours = True
    modules = ("ltrcompile",)
    single_thread_only = True
    max_batch = 10_000  # a reference, not a contender: larger batches only cost run time
    note = ("Ensemble.predict(X, raw_score=True): the vectorised numpy reference interpreter "
            "(single-threaded; batches up to 10,000)")

    def accepts(self, label: str, batch: int, threads: int) -> bool:
        return threads == 1 and batch <= self.max_batch

    def unsupported(self, bm: BenchModel) -> str | None:
        return bm.ir_error

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        self.ens = bm.ir
        self.load_s = bm.ir_load_s

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        ens = self.ens
        return lambda: ens.predict(X, raw_score=True)


def backend_strategies() -> list[str]:
    """Strategies the compiled backend exposes (empty when the backend is not importable)."""
    try:
        mod = importlib.import_module("ltrcompile.backends.cython")
    except Exception:  # noqa: BLE001
        return []
    if not callable(getattr(mod, "compile", None)):
        return []
    for attr in ("STRATEGIES", "strategies"):
        val = getattr(mod, attr, None)
        if val is not None:
            val = val() if callable(val) else val
            return [str(s) for s in (val.keys() if isinstance(val, dict) else val)]
    return ["default"]


def ltrcompile_compile(ens: Any, out: Path, strategy: str) -> dict[str, float]:
    """Compile ``ens`` into ``out`` without the backend's build cache; returns phase times.

    ``codegen_s`` is code generation, ``compile_s`` the C compiler and linker (parallel jobs, wall),
    both as the backend's manifest records them.
    """
    import ltrcompile

    from .machine import n_cores

    kw: dict[str, Any] = {"progress": False, "cache": False, "jobs": n_cores()}
    if strategy != "default":
        kw["strategy"] = strategy
    t0 = time.perf_counter()
    scorer = ltrcompile.compile(ens, str(out), **kw)
    total = time.perf_counter() - t0
    secs = (getattr(scorer, "manifest", None) or {}).get("build_seconds", {})
    phases: dict[str, float] = {}
    if isinstance(secs.get("codegen"), int | float):
        phases["codegen_s"] = float(secs["codegen"])
    if isinstance(secs.get("total"), int | float):
        phases["compile_s"] = float(secs["total"])
        if isinstance(secs.get("wrapper"), int | float):
            phases["wrapper_s"] = float(secs["wrapper"])
    else:
        phases["compile_s"] = total - phases.get("codegen_s", 0.0)
    return phases


class LtrCompiled(Engine):
    """One compiled strategy of ltrcompile's Cython backend: ``predict`` and ``predict_one``."""

    ours = True
    modules = ("ltrcompile.backends.cython",)
    build_kind = "ltrcompile"

    def __init__(self, strategy: str) -> None:
        super().__init__()
        self.strategy = strategy
        self.name = f"ltrcompile[{strategy}]"
        self.note = (f"ltrcompile.compile(strategy={strategy!r}) -> CompiledScorer.predict(X, raw_score=True, "
                     "n_threads=n); .predict_one(row) at batch 1")

    def unsupported(self, bm: BenchModel) -> str | None:
        return bm.ir_error

    def build_spec(self, bm: BenchModel, workdir: Path) -> dict[str, Any]:
        return {"kind": "ltrcompile", "library": bm.library, "model": str(bm.path),
                "out": str(workdir / f"ltrcompile-{self.strategy}"), "strategy": self.strategy}

    def load(self, bm: BenchModel, build: dict[str, Any] | None) -> None:
        import ltrcompile

        assert build is not None
        t0 = time.perf_counter()
        self.scorer = ltrcompile.load_compiled(build["artifact"])
        self.load_s = time.perf_counter() - t0
        self.has_one = hasattr(self.scorer, "predict_one")

    def labels(self) -> list[str]:
        return [self.name, f"{self.name}.predict_one"] if self.has_one else [self.name]

    def accepts(self, label: str, batch: int, threads: int) -> bool:
        if label.endswith(".predict_one"):
            return batch == 1 and threads == 1
        return True

    def bind(self, label: str, X: np.ndarray, threads: int) -> Call:
        s = self.scorer
        if label.endswith(".predict_one"):
            row = np.ascontiguousarray(X[0])
            return lambda: s.predict_one(row, raw_score=True)
        return lambda: s.predict(X, raw_score=True, n_threads=threads)

    def raw(self, label: str, X: np.ndarray) -> np.ndarray:
        if label.endswith(".predict_one"):
            rows = [np.asarray(self.bind(label, X[i : i + 1], 1)(), np.float64).ravel() for i in range(len(X))]
            return np.vstack(rows)
        return super().raw(label, X)


def all_engines() -> list[Engine]:
    """Every engine this harness knows, ltrcompile's first."""
    eng: list[Engine] = [LtrInterpreter()]
    eng += [LtrCompiled(s) for s in backend_strategies()]
    eng += [XGBoostInplace(), XGBoostDMatrix(), LightGBMPredict(), SklearnPredict(), Treelite(), Lleaves()]
    return eng
