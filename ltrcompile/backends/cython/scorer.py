"""``CompiledScorer``: the Python face of a compiled model.

Fast paths go straight to the extension: float32/float64 numpy arrays with contiguous rows are
scored in place with the GIL released, and ``predict_one`` is the extension's own function. Every
other input (other dtypes or layouts, scipy sparse, pandas, lists) is converted once with
:func:`ltrcompile.inputs.as_float_matrix`, so the DataFrame/sparse rules are the interpreter's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ...errors import InputDataError
from ...inputs import _sparse_rows_as_stored, apply_normalizers, as_float_matrix
from ...ir import InputSpec
from .artifact import (
    IR_FILE,
    MANIFEST,
    ArtifactError,
    cache_root,
    check_compatible,
    read_manifest,
    sha256_file,
)

_MODULES: dict[str, ModuleType] = {}
_MODULES_LOCK = threading.Lock()


def import_extension(module: str, so_path: Path) -> ModuleType:
    """Import ``module`` from ``so_path`` once per process (names are content addresses)."""
    with _MODULES_LOCK:
        mod = _MODULES.get(module)
        if mod is not None:
            return mod
        spec = importlib.util.spec_from_file_location(module, str(so_path))
        if spec is None or spec.loader is None:
            raise ArtifactError(f"{so_path}: cannot be loaded as an extension module")
        try:
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except ImportError as exc:
            raise ArtifactError(f"{so_path}: the extension module failed to load: {exc}") from exc
        _MODULES[module] = mod
        return mod


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return max(1, os.cpu_count() or 1)


def _resolve_threads(n_threads: Any) -> int:
    if n_threads is None:
        return 1
    n = int(n_threads)
    return n if n > 0 else available_cores()


class CompiledScorer:
    """A compiled model loaded from an artifact directory.

    ``predict(X, raw_score=False, n_threads=1)`` and ``predict_leaf(X)`` score like
    :meth:`Ensemble.predict` / :meth:`Ensemble.predict_leaf` (float64 ``(n,)`` or ``(n, k)``; int32
    ``(n, n_trees)``). ``predict_one(x)`` scores one document given as a 1-D array: a float for
    single-output models, else a float64 vector. Safe to call from many threads at once.
    """

    def __init__(self, module: ModuleType, manifest: dict[str, Any], path: Path) -> None:
        self._mod = module
        self.manifest = manifest
        self.path = Path(path)
        self._spec = InputSpec.from_dict(manifest["input"])  # no IR parsing
        self.n_features: int = int(manifest["n_features"])
        self.n_outputs: int = int(manifest["n_outputs"])
        self.n_trees: int = int(manifest["n_trees"])
        self.feature_names: list[str] | None = manifest["input"].get("feature_names")
        self.strategy: str = manifest["strategy"]
        self._ensemble = None
        self._direct = not self._spec.normalizers
        if self._direct:
            # the extension's function itself: no Python frame in between
            self.predict_one = module.predict_one  # type: ignore[method-assign]

    # ------------------------------------------------------------------ inputs
    def _matrix(self, X: Any) -> tuple[np.ndarray, bool]:
        """(float32/float64 matrix with contiguous rows, apply the zero band?)."""
        M = as_float_matrix(self._spec, X)  # type: ignore[arg-type]
        band = not _sparse_rows_as_stored(X)
        if self._spec.normalizers:
            M = np.array(M, dtype=np.float64, copy=True)
            apply_normalizers(self._spec, M)  # type: ignore[arg-type]
        if M.dtype.byteorder not in ("=", "|") or (M.shape[1] > 1 and M.strides[1] != M.itemsize) or (
            M.shape[0] > 1 and (M.strides[0] < 0 or M.strides[0] % M.itemsize)
        ):
            M = np.ascontiguousarray(M)
        return M, band

    # ------------------------------------------------------------------ scoring
    def predict(self, X: Any, raw_score: bool = False, n_threads: int | None = 1) -> np.ndarray:
        """Scores, exactly as the interpreter computes them: float64 ``(n,)`` or ``(n, k)``."""
        if self._direct and n_threads == 1:
            # the common single-thread call: straight into the extension (what _score would do
            # for an accepted input), saving ~1 us of Python per call at batch 1
            out = self._mod.predict(X, bool(raw_score), 1, True)
            if out is not None:
                return out
        return self._score(self._mod.predict, X, (bool(raw_score),), n_threads)

    def predict_leaf(self, X: Any, n_threads: int | None = 1) -> np.ndarray:
        """Source-library leaf ids of every row and tree: int32 ``(n, n_trees)``."""
        return self._score(self._mod.predict_leaf, X, (), n_threads)

    def _score(self, fn: Any, X: Any, args: tuple[bool, ...], n_threads: int | None) -> Any:
        """``fn`` on ``X`` as it is when the extension accepts it, else on the converted matrix."""
        nt = _resolve_threads(n_threads)
        if self._direct:
            out = self._call(fn, X, args, nt, True)
            if out is not None:
                return out
        M, band = self._matrix(X)
        out = self._call(fn, M, args, nt, band)
        if out is None:  # pragma: no cover - _matrix always yields an accepted layout
            raise InputDataError("the input could not be converted to a float matrix")
        return out

    def _call(self, fn: Any, X: Any, args: tuple[bool, ...], nt: int, band: bool) -> Any:
        if nt > 1 and not self._mod.HAVE_OPENMP and isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[0] >= 2 * nt:
            # no OpenMP in this build: plain threads, each scoring a slice with the GIL released
            first = fn(X[:0], *args, 1, band)
            if first is None:
                return None
            bounds = np.linspace(0, X.shape[0], nt + 1).astype(int)
            with ThreadPoolExecutor(max_workers=nt) as pool:
                parts = list(pool.map(lambda i: fn(X[bounds[i] : bounds[i + 1]], *args, 1, band), range(nt)))
            return np.concatenate(parts, axis=0)
        return fn(X, *args, nt, band)

    def predict_contrib(self, X: Any) -> np.ndarray:
        """Exact TreeSHAP contributions through the compiled kernel (:mod:`.contrib`); the same
        values and layout as :meth:`Ensemble.predict_contrib`. Tables are built on first use."""
        from .contrib import predict_contrib

        return predict_contrib(self.ensemble, X)

    def predict_one(self, x: Any, raw_score: bool = False) -> Any:  # replaced per instance when direct
        """Score one document (1-D array): a float, or a float64 vector for several outputs."""
        a = np.asarray(x)
        if a.ndim != 1:
            raise InputDataError(f"predict_one expects a 1-D array; got shape {a.shape}")
        out = self.predict(a.reshape(1, -1), raw_score=raw_score)
        return float(out[0]) if out.ndim == 1 else out[0]

    # ------------------------------------------------------------------ model
    @property
    def ensemble(self) -> Any:
        """The IR this scorer was compiled from (read from the artifact on first use)."""
        if self._ensemble is None:
            from ...ir import Ensemble

            self._ensemble = Ensemble.load(str(self.path / IR_FILE))
        return self._ensemble

    @property
    def module_name(self) -> str:
        return self.manifest["module"]

    def __repr__(self) -> str:
        return (
            f"CompiledScorer({self.manifest['module']}, {self.n_trees} trees, "
            f"{self.n_features} features, strategy={self.strategy}, path={str(self.path)!r})"
        )

    # ------------------------------------------------------------------ pickling
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        files = {
            MANIFEST: (self.path / MANIFEST).read_bytes(),
            IR_FILE: (self.path / IR_FILE).read_bytes(),
            self.manifest["extension"]: (self.path / self.manifest["extension"]).read_bytes(),
        }
        return (_restore, (self.manifest["module"], files))


def load(path: str | os.PathLike[str]) -> CompiledScorer:
    """Load an artifact directory (checks format, platform/ABI and the extension's checksum)."""
    p = Path(path)
    if not p.is_dir():
        raise ArtifactError(f"{p}: not a directory (expected a compiled artifact)")
    m = read_manifest(p)
    check_compatible(m, str(p))
    so = p / m["extension"]
    if not so.is_file():
        raise ArtifactError(f"{p}: the extension module {m['extension']} is missing")
    if m["module"] not in _MODULES and sha256_file(so) != m["extension_sha256"]:
        raise ArtifactError(f"{so}: checksum does not match the manifest (corrupt or modified)")
    mod = import_extension(m["module"], so)
    if getattr(mod, "IR_DIGEST", None) != m["ir_digest"] or getattr(mod, "N_FEATURES", None) != m["n_features"]:
        raise ArtifactError(f"{so}: the extension does not belong to this manifest")
    return CompiledScorer(mod, m, p)


def _restore(module: str, files: dict[str, bytes]) -> CompiledScorer:
    """Unpickle: write the carried artifact into the cache (if not already there) and load it."""
    manifest = json.loads(files[MANIFEST])
    check_compatible(manifest, f"(pickled {module})")
    target = cache_root() / module
    try:
        existing = read_manifest(target)
        if existing.get("extension_sha256") == manifest["extension_sha256"]:
            return load(target)
    except ArtifactError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{module}.unpickle-", dir=target.parent))
    try:
        for name, data in files.items():
            if os.sep in name or name.startswith("."):
                raise ArtifactError(f"pickled scorer carries a bad file name {name!r}")
            (tmp / name).write_bytes(data)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return load(target)


__all__ = ["CompiledScorer", "import_extension", "load"]

