"""Models in memory: loaded versions, atomic activation, background compile-and-verify uploads.

Serving reads ``Registry.get`` -- a dict lookup returning an immutable :class:`LoadedVersion` -- so a
request sees exactly one version from start to end, and activation is a single reference swap done
only after the new version is compiled, verified, committed to disk and loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LtrCompileError
from ..rescore import FeatureSet, RescoreInputError, Rescorer, bind_columns
from .store import ModelStore, StoreError, crash_point

log = logging.getLogger("ltrcompile.service")

#: Formats whose files can execute code when loaded (pickle/joblib): never accepted over HTTP.
_CODE_FORMAT = re.compile(r"pickle|joblib|cloudpickle|compiled|(?<!es-)native", re.I)
#: File signatures of executables, pickles and archives: refused before any parsing.
_BINARY_MAGIC = (
    (b"\x7fELF", "an ELF binary"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O binary"),
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
)
_EXT_RE = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
#: Edge-case rows checked per upload (thresholds +-1 ulp, NaN, +-0, huge values...).
VERIFY_EDGE_ROWS = 4000


def refuse_executable(body: bytes, fmt: str) -> None:
    """Reject model bodies that are code (pickles) or binaries: only definitions are compiled."""
    if _CODE_FORMAT.search(fmt):
        raise RescoreInputError(
            f"format {fmt!r} can run code when loaded; the service accepts model definitions only"
        )
    for magic, what in _BINARY_MAGIC:
        if body.startswith(magic):
            raise RescoreInputError(
                f"the upload is {what}; the service accepts model definitions only (text, JSON, "
                "UBJSON), never pickles or compiled binaries"
            )


# ---------------------------------------------------------------------- scorer adapter
def compile_scorer(ens: Any, out_dir: Path) -> Any:
    """Compile ``ens`` into ``out_dir`` with the Cython backend; returns the loaded scorer."""
    import ltrcompile

    # one compiler process: the other core keeps serving while a model builds
    return ltrcompile.compile(ens, str(out_dir), progress=False, jobs=1)


def load_scorer(out_dir: Path) -> Any:
    import ltrcompile

    return ltrcompile.load_compiled(str(out_dir))


def verify_scorer(ens: Any, scorer: Any, source: str | None = None) -> dict[str, Any]:
    """Parity of the compiled scorer (:func:`ltrcompile.verify.verify`) or raise.

    Compared on the model's edge rows: compiled vs the reference interpreter, and vs the source
    library's own predictions when it is installed and can read the uploaded file.
    """
    from ..verify import verify

    native_error = None
    try:
        rep = verify(ens, scorer, source=source, edge=VERIFY_EDGE_ROWS)
    except Exception as exc:  # the source library failed to *run*; still check compiled vs IR
        if source is None:
            raise
        native_error = f"native comparison failed to run: {type(exc).__name__}: {exc}"[:500]
        log.warning("%s", native_error)
        rep = verify(ens, scorer, source=None, edge=VERIFY_EDGE_ROWS)
    values = [c for c in rep.checks if c.what != "leaf"]
    summary = {
        "ok": rep.ok,
        "rows": rep.rows_checked,
        "bit_identical": bool(values) and all(c.bit_identical for c in values),
        "checks": [
            {
                "check": c.title,
                "ok": c.ok,
                "bit_identical": c.bit_identical,
                "max_abs_diff": c.to_dict()["max_abs_diff"],
            }
            for c in rep.checks
        ],
        "skipped": list(rep.skipped) + ([native_error] if native_error else []),
        "seconds": round(rep.seconds, 3),
    }
    if not rep.ok:
        raise LtrCompileError("parity check failed; the version was not stored:\n" + rep.format())
    return summary


_ABS_PATH = re.compile(r"(?<![\w.~/-])/(?:[^\s/'\":,;()\[\]]+/)+(?=[^\s/'\":,;()\[\]]*)")


def scrub_paths(message: str, root: Path, staging: Path | None, name: str = "upload") -> str:
    """``message`` without server paths: the staged source file becomes the upload's name, other
    paths under the store lose their directory part, any other absolute directory is dropped."""
    if staging is not None:
        for src in sorted(staging.glob("source*"), key=lambda p: -len(str(p))):
            message = message.replace(str(src), name)
        message = message.replace(str(staging) + os.sep, "").replace(str(staging), "<staging>")
    message = message.replace(str(root) + os.sep, "").replace(str(root), "<store>")
    return _ABS_PATH.sub("", message)


# ---------------------------------------------------------------------- loaded versions
@dataclass(frozen=True)
class LoadedVersion:
    model: str
    version: int
    meta: dict[str, Any]
    rescorer: Rescorer


@dataclass
class Job:
    id: str
    model: str
    version: int
    featureset: str
    format: str
    activate: bool
    state: str = "queued"  # queued, compiling, verifying, ready, failed
    error: str | None = None
    status: int = 200
    created: float = field(default_factory=time.time)
    finished: float | None = None
    compile_seconds: float | None = None
    future: Future[Any] | None = None
    filename: str | None = None

    @property
    def display_name(self) -> str:
        """How error messages name the uploaded file: the client's file name, never our path."""
        return repr(os.path.basename(self.filename)) if self.filename else "upload"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "featureset": self.featureset,
            "format": self.format,
            "activate": self.activate,
            "state": self.state,
            "error": self.error,
            "created": self.created,
            "finished": self.finished,
            "compile_seconds": self.compile_seconds,
        }


class Registry:
    """Loaded model versions and upload jobs over a :class:`ModelStore`."""

    def __init__(self, store: ModelStore, metrics: Any = None, max_jobs_kept: int = 1000) -> None:
        self.store = store
        self.metrics = metrics
        self._active: dict[str, LoadedVersion] = {}
        self._loaded: dict[tuple[str, int], LoadedVersion] = {}
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._max_jobs = max_jobs_kept
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltr-compile")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ loading
    def load_all(self) -> None:
        """Load every model's active version (startup)."""
        for name in self.store.list_models():
            v = self.store.active_version(name)
            if v is None:
                continue
            try:
                lv = self._load(name, v)
            except Exception as exc:  # a broken version must not stop the server
                log.error("cannot load %s version %s: %s", name, v, exc)
                continue
            self._active[name] = lv
            self._gauge(name, v)

    def _load(self, name: str, version: int) -> LoadedVersion:
        key = (name, version)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            vdir = self.store.version_dir(name, version)
            meta = self.store.version_meta(name, version)
            from ..ir import Ensemble

            ens = Ensemble.load(str(vdir / "ir.json"))
            try:
                scorer = load_scorer(vdir / "compiled")
            except Exception as exc:
                # e.g. the artifact was built for another Python: rebuild it (not persisted)
                log.warning("recompiling %s version %s: %s", name, version, exc)
                rebuild = self.store.tmp / f"rebuild-{uuid.uuid4().hex}"
                scorer = compile_scorer(ens, rebuild)
                verify_scorer(ens, scorer, str(vdir / meta["source_file"]))
            fs = FeatureSet.from_dict(meta["featureset"])
            cols = None if meta.get("columns") is None else np.asarray(meta["columns"], np.intp)
            lv = LoadedVersion(
                name, version, meta, Rescorer(scorer, fs, columns=cols, ensemble=ens)
            )
            self._loaded[key] = lv
            return lv

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        if version is None:
            lv = self._active.get(name)
            if lv is None:
                if self.store.model_exists(name):
                    raise StoreError(f"model {name!r} has no active version", 409)
                raise StoreError(f"no model {name!r}", 404)
            return lv
        lv = self._loaded.get((name, version))
        if lv is not None:
            return lv
        if version not in self.store.versions(name):
            raise StoreError(f"model {name!r} has no version {version}", 404)
        return self._load(name, version)

    def active_version(self, name: str) -> int | None:
        lv = self._active.get(name)
        return None if lv is None else lv.version

    def activate(self, name: str, version: int) -> LoadedVersion:
        """Persist the pointer, then swap the served version (one reference assignment)."""
        lv = self.get(name, version)
        with self._lock:
            self.store.set_active(name, version)
            self._active[name] = lv
        self._gauge(name, version)
        return lv

    def forget_model(self, name: str) -> None:
        with self._lock:
            self.store.delete_model(name)
            self._active.pop(name, None)
            for key in [k for k in self._loaded if k[0] == name]:
                del self._loaded[key]
        if self.metrics is not None:
            try:
                self.metrics.active_version.remove(name)
            except KeyError:
                pass

    def forget_version(self, name: str, version: int) -> None:
        with self._lock:
            if self.active_version(name) == version:
                raise StoreError(
                    f"version {version} is the active version of {name!r}; activate another "
                    "version first or delete the model",
                    409,
                )
            self.store.delete_version(name, version)
            self._loaded.pop((name, version), None)

    def resident(self) -> list[LoadedVersion]:
        """Every version held in memory (the active ones and any loaded by ``?version=``)."""
        with self._lock:
            return list(self._loaded.values())

    def evict_inactive(self) -> int:
        """Drop the loaded versions that are not active (they load again on demand); how many."""
        with self._lock:
            keep = {(lv.model, lv.version) for lv in self._active.values()}
            gone = [k for k in self._loaded if k not in keep]
            for k in gone:
                del self._loaded[k]
            return len(gone)

    def _gauge(self, name: str, version: int) -> None:
        if self.metrics is not None:
            self.metrics.active_version.labels(name).set(version)

    # ------------------------------------------------------------------ uploads
    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def job(self, job_id: str) -> Job:
        j = self._jobs.get(job_id)
        if j is None:
            raise StoreError(f"no upload job {job_id!r}", 404)
        return j

    def submit(
        self,
        name: str,
        body: bytes,
        featureset: str,
        fmt: str = "auto",
        filename: str | None = None,
        activate: bool = True,
        binding: str = "auto",
        options: dict[str, Any] | None = None,
    ) -> Job:
        """Validate the cheap parts now, then compile, verify and commit in the background."""
        from ..frontends import formats

        if not body.strip():
            raise RescoreInputError("the upload body is empty; send the model file as the body")
        refuse_executable(body, fmt)
        if fmt != "auto" and fmt not in formats():
            known = sorted(f for f in formats() if not _CODE_FORMAT.search(f))
            raise RescoreInputError(f"unknown format {fmt!r}; known: {', '.join(known)}")
        if binding not in ("auto", "name", "position"):
            raise RescoreInputError(f"binding must be auto, name or position; got {binding!r}")
        fs = self.store.get_featureset(featureset)  # 404 if absent
        ext = ""
        if filename:
            ext = os.path.splitext(os.path.basename(filename))[1]
            if ext and not _EXT_RE.match(ext):
                raise RescoreInputError(f"unusable file name extension {ext!r}")
        version = self.store.reserve_version(name)
        job = Job(uuid.uuid4().hex[:16], name, version, featureset, fmt, activate)
        job.filename = filename
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > self._max_jobs:
                for old in [j for j in self._jobs.values() if j.finished][: len(self._jobs) // 2]:
                    self._jobs.pop(old.id, None)
        job.future = self._pool.submit(self._run, job, body, fs, ext, binding, dict(options or {}))
        return job

    def _run(
        self, job: Job, body: bytes, fs: FeatureSet, ext: str, binding: str, options: dict[str, Any]
    ) -> None:
        staging = None
        try:
            staging = self.store.staging_dir()
            self._build(job, body, fs, ext, binding, options, staging)
            staging = None
            job.state = "ready"
            if self.metrics is not None:
                self.metrics.uploads.labels(job.model, "ready").inc()
        except Exception as exc:
            job.state = "failed"
            job.error = scrub_paths(str(exc), self.store.root, staging, name=job.display_name)
            job.status = getattr(exc, "status", 500 if not _client_fault(exc) else 422)
            if job.status == 500:
                log.error("upload %s failed:\n%s", job.id, traceback.format_exc())
            if self.metrics is not None:
                self.metrics.uploads.labels(job.model, "failed").inc()
        finally:
            job.finished = time.time()
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if job.state == "failed":
                self._drop_if_empty(job.model)

    def _drop_if_empty(self, name: str) -> None:
        """A model whose only upload failed never existed: remove its directory again."""
        with self._lock:
            busy = any(j.model == name and j.finished is None for j in self._jobs.values())
            if busy or self.store.versions(name) or self.store.active_version(name) is not None:
                return
            with contextlib.suppress(StoreError, OSError):
                self.store.delete_model(name)

    def _build(
        self,
        job: Job,
        body: bytes,
        fs: FeatureSet,
        ext: str,
        binding: str,
        options: dict[str, Any],
        staging: Path,
    ) -> None:
        import ltrcompile

        src = staging / f"source{ext}"
        src.write_bytes(body)
        crash_point("after-source-write")
        fmt = job.format
        if fmt == "auto":
            fmt = ltrcompile.detect_format(str(src))
            refuse_executable(body, fmt)
        job.format = fmt
        ens = ltrcompile.load_model(str(src), format=fmt, **_loader_options(fmt, fs, options))
        if ens.n_outputs != 1:
            raise RescoreInputError(
                f"the model has {ens.n_outputs} outputs; rescoring needs one score per hit"
            )
        if ens.normalizers and fs.normalizers:
            model_norm = {
                ens.feature_names[n["feature"]] for n in ens.normalizers if ens.feature_names
            }
            both = sorted(model_norm & set(fs.normalizers))
            if both:
                raise RescoreInputError(
                    f"both the model and feature set {fs.name!r} normalize {both[:5]}; keep one"
                )
        # RankLib files only know the largest feature id used: bind them to a prefix of the set
        allow_fewer = fmt == "ranklib" or binding == "position"
        cols, how = bind_columns(ens.feature_names, ens.n_features, fs, binding, allow_fewer)
        job.state = "compiling"
        t0 = time.perf_counter()
        scorer = compile_scorer(ens, staging / "compiled")
        job.compile_seconds = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.compile_seconds.labels(job.model).observe(job.compile_seconds)
        crash_point("after-compile")
        job.state = "verifying"
        parity = verify_scorer(ens, scorer, str(src))
        ens.save(str(staging / "ir.json"))
        meta = {
            "model": job.model,
            "version": job.version,
            "format": fmt,
            "source_file": src.name,
            "featureset": fs.to_dict(),
            "binding": how,
            "columns": None if cols is None else cols.tolist(),
            "digest": ens.digest(),
            "summary": _jsonable(ens.summary()),
            "parity": parity,
            "compile_seconds": job.compile_seconds,
            "created": time.time(),
        }
        from .store import write_json_atomic

        write_json_atomic(staging / "meta.json", meta)
        self.store.commit_version(job.model, job.version, staging)
        rescorer = Rescorer(scorer, fs, columns=cols, ensemble=ens)
        lv = LoadedVersion(job.model, job.version, meta, rescorer)
        with self._lock:
            self._loaded[(job.model, job.version)] = lv
        if job.activate:
            self.activate(job.model, job.version)


def _client_fault(exc: BaseException) -> bool:
    return isinstance(exc, LtrCompileError | RescoreInputError | ValueError)


def _loader_options(fmt: str, fs: FeatureSet, options: dict[str, Any]) -> dict[str, Any]:
    """Options for the frontend: an ES LTR plugin model takes its feature set from the binding
    (as the plugin's ``_createmodel`` copies the set into the model)."""
    opts = dict(options)
    if fmt == "es-ltr" and "feature_set" not in opts:
        opts["feature_set"] = list(fs.features)
    return opts


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
