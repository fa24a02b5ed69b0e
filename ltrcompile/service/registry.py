"""Models in memory: loaded versions, atomic activation, uploads run as durable background jobs.

Serving reads ``Registry.get`` -- a dict lookup returning an immutable :class:`LoadedVersion` -- so a
request sees exactly one version from start to end, and activation is a single reference swap done
only after the new version is compiled, verified, committed to disk and loaded.

Several processes may serve one store (``serve --workers N``, or servers sharing a directory).
Every request for a model's active version first reads that model's ``ACTIVE`` pointer (one small
file, :meth:`Registry.current`); when it names another version than the one in memory (activated
through another process), that version is loaded -- the old one keeps serving other requests
meanwhile -- swapped in, and served. So a request that starts after an activation returned, on any
process sharing the store, is served the new version (no propagation window on one host), and no
request fails or sees a half-loaded version. A sync thread also looks every ``sync_interval``
seconds, so versions are loaded ahead of the requests, deletions followed and jobs of dead
processes resumed. Uploads are parsed, compiled and verified in worker processes (:mod:`.jobs`);
the serving process only commits, loads and swaps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..rescore import FeatureSet, RescoreInputError, Rescorer
from ..selection import parse_num_iteration
from .build import (  # noqa: F401 -- re-exported: the scorer adapter lives in .build
    _CODE_FORMAT,
    _EXT_RE,
    VERIFY_EDGE_ROWS,
    load_scorer,
    rebuild_scorer,
    refuse_executable,
)
from .jobs import FINISHED, JobLimits, JobRunner, new_job_id, public
from .store import ModelStore, StoreError

log = logging.getLogger("ltrcompile.service")

#: Default seconds between two looks at the store for versions activated by other processes.
SYNC_INTERVAL_S = 0.25
#: Seconds before a version that failed to load here is tried again.
BROKEN_RETRY_S = 5.0
#: Seconds between two scans for jobs whose process died.
RECOVER_INTERVAL_S = 2.0


# ---------------------------------------------------------------------- loaded versions
@dataclass(frozen=True)
class LoadedVersion:
    model: str
    version: int
    meta: dict[str, Any]
    rescorer: Rescorer


class Registry:
    """Loaded model versions and upload jobs over a :class:`ModelStore`."""

    def __init__(
        self,
        store: ModelStore,
        metrics: Any = None,
        max_jobs_kept: int = 1000,
        limits: JobLimits | None = None,
        sync_interval: float = SYNC_INTERVAL_S,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self._active: dict[str, LoadedVersion] = {}
        self._broken: dict[tuple[str, int], float] = {}  # versions that failed to load: when
        self._loaded: dict[tuple[str, int], LoadedVersion] = {}
        self._lock = threading.RLock()
        self.sync_interval = sync_interval
        self.runner = JobRunner(
            store,
            self._on_built,
            limits,
            scrub=lambda msg, staging, job: scrub_paths(
                msg, store.root, staging, name=_display_name(job.get("filename"))
            ),
            on_finished=self._count_upload,
            max_jobs_kept=max_jobs_kept,
        )
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None

    def start(self) -> None:
        """Load the active versions, resume orphaned jobs, start following the store."""
        self.load_all()
        self.runner.recover()
        if self._sync_thread is None and self.sync_interval > 0:
            self._sync_thread = threading.Thread(target=self._follow, name="ltr-sync", daemon=True)
            self._sync_thread.start()

    def close(self) -> None:
        self._stop.set()
        self.runner.close()
        if self._sync_thread is not None:
            self._sync_thread.join(5)

    # ------------------------------------------------------------------ loading
    def load_all(self) -> None:
        """Load every model's active version (startup)."""
        for name in self.store.list_models():
            with contextlib.suppress(StoreError, RescoreInputError):
                self._sync_model(name)

    def _sync_model(self, name: str) -> LoadedVersion | None:
        """Serve what ``models/<name>/ACTIVE`` says now: load that version if it is not loaded
        (the old one serves meanwhile), then swap it in. Returns the version a request should get
        (None: the model has no active version)."""
        v = self.store.active_pointer(name)
        if v is None or not self.store.version_dir(name, v).is_dir():
            with self._lock:
                if not self.store.model_exists(name):
                    self._drop(name)
                elif self.store.active_pointer(name) is None:
                    self._active.pop(name, None)
            return None
        cur = self._active.get(name)
        if cur is not None and cur.version == v:
            return cur
        failed = self._broken.get((name, v))
        if failed is not None and time.monotonic() - failed < BROKEN_RETRY_S:
            return cur
        try:
            lv = self._load(name, v)  # load first: the old version serves meanwhile
        except Exception as exc:  # a broken version must not stop the server
            log.error("cannot load %s version %s: %s", name, v, exc)
            self._broken[(name, v)] = time.monotonic()
            return cur
        with self._lock:
            if self.store.active_pointer(name) == v:
                self._active[name] = lv
        self._gauge(name, v)
        return lv

    def current(self, name: str) -> LoadedVersion | None:
        """The in-memory active version of ``name`` if it is still the one ``ACTIVE`` names (one
        small file read, no lock); None when the pointer moved (or there is none) and
        :meth:`get` must look, and perhaps load, first. This check on every request is what makes
        an activation through any process sharing the store seen by every later request."""
        lv = self._active.get(name)
        if lv is None:
            return None
        try:
            v = self.store.active_pointer(name)
        except (StoreError, OSError):
            return lv
        return lv if v == lv.version else None

    def sync(self) -> None:
        """One look at the store: follow activations and deletions made by other processes."""
        names = set(self.store.list_models())
        for name in names:
            with contextlib.suppress(StoreError, RescoreInputError, OSError):
                self._sync_model(name)
        for name in set(self._active) - names:
            if not self.store.model_exists(name):
                self._drop(name)
        for name, v in list(self._loaded):
            if name in names and not self.store.version_dir(name, v).is_dir():
                self._loaded.pop((name, v), None)

    def _follow(self) -> None:
        last_recover = time.monotonic()
        while not self._stop.wait(self.sync_interval):
            try:
                self.sync()
                if time.monotonic() - last_recover > RECOVER_INTERVAL_S:
                    last_recover = time.monotonic()
                    self.runner.recover()
            except Exception:
                log.exception("store sync failed")

    def _drop(self, name: str) -> None:
        with self._lock:
            self._active.pop(name, None)
            for key in [k for k in self._loaded if k[0] == name]:
                del self._loaded[key]
        if self.metrics is not None:
            with contextlib.suppress(KeyError):
                self.metrics.active_version.remove(name)

    def _load(self, name: str, version: int) -> LoadedVersion:
        key = (name, version)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            vdir = self.store.version_dir(name, version)
            meta = self.store.version_meta(name, version)
            from ..ir import Ensemble

            ens = Ensemble.load(str(vdir / "ir.json"))  # the learning_to_rank shift needs the IR
            try:
                scorer = load_scorer(vdir / "compiled")
            except Exception as exc:
                # e.g. the artifact was built for another Python: rebuild it (not persisted)
                log.warning("recompiling %s version %s: %s", name, version, exc)
                rebuild = self.store.tmp / f"rebuild-{os.getpid()}-{name}-{version}"
                scorer = rebuild_scorer(ens, str(vdir / meta["source_file"]), rebuild)
            fs = FeatureSet.from_dict(meta["featureset"])
            cols = None if meta.get("columns") is None else np.asarray(meta["columns"], np.intp)
            lv = LoadedVersion(
                name, version, meta, Rescorer(scorer, fs, columns=cols, ensemble=ens)
            )
            self._loaded[key] = lv
            return lv

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        if version is None:
            lv = self.current(name)
            if lv is None:  # activated by another process since this one last looked
                lv = self._sync_model(name)
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

    def loaded(self, name: str, version: int) -> LoadedVersion | None:
        """``version`` of ``name`` if it is in memory (versions never change once committed)."""
        return self._loaded.get((name, version))

    def active_version(self, name: str) -> int | None:
        lv = self._active.get(name)
        return None if lv is None else lv.version

    def active_versions(self) -> dict[str, int]:
        return {n: lv.version for n, lv in list(self._active.items())}

    def activate(self, name: str, version: int) -> LoadedVersion:
        """Load, persist the pointer, then swap the served version (one reference assignment)."""
        lv = self.get(name, version)
        with self._lock:
            self.store.set_active(name, version)
            self._active[name] = lv
        self._gauge(name, version)
        return lv

    def forget_model(self, name: str) -> None:
        with self._lock:
            self.runner.cancel_model(name, f"model {name!r} was deleted during the upload")
            self.store.delete_model(name)
            self._drop(name)

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
    def jobs(self) -> list[dict[str, Any]]:
        return [public(j) for j in self.store.list_jobs()]

    def pending(self, name: str) -> list[dict[str, Any]]:
        return [j for j in self.jobs() if j["model"] == name and j["state"] not in FINISHED]

    def job(self, job_id: str) -> dict[str, Any]:
        return public(self.store.read_job(job_id))

    def job_record(self, job_id: str) -> dict[str, Any]:
        return self.store.read_job(job_id)

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
        create_only: bool = False,
        num_iteration: Any = None,
        accept_incomplete: bool = False,
    ) -> dict[str, Any]:
        """Validate the cheap parts, store the job durably, then build it in the background.

        ``create_only``: 409 if the model exists or an upload of it is unfinished; the check and
        the storing of the job are one step under the store's lock, so of two concurrent creates
        of one name (threads, worker processes or servers sharing the store) exactly one wins.
        ``num_iteration``: which boosting rounds to keep (:mod:`ltrcompile.selection`).
        ``accept_incomplete``: activate the version even when its verification is incomplete."""
        from ..frontends import formats

        if not body.strip():
            raise RescoreInputError("the upload body is empty; send the model file as the body")
        refuse_executable(body, fmt)
        if fmt != "auto" and fmt not in formats():
            known = sorted(f for f in formats() if not _CODE_FORMAT.search(f))
            raise RescoreInputError(f"unknown format {fmt!r}; known: {', '.join(known)}")
        if binding not in ("auto", "name", "position"):
            raise RescoreInputError(f"binding must be auto, name or position; got {binding!r}")
        num_iteration = parse_num_iteration(num_iteration)
        fs = self.store.get_featureset(featureset)  # 404 if absent
        ext = ""
        if filename:
            ext = os.path.splitext(os.path.basename(filename))[1]
            if ext and not _EXT_RE.fullmatch(ext):
                raise RescoreInputError(f"unusable file name extension {ext!r}")
        with self.store.locked():  # check, reserve and store as one step
            if create_only and self.store.model_taken(name, FINISHED):
                raise StoreError(f"model {name!r} already exists", 409)
            version = self.store.reserve_version(name)
            job = {
                "id": new_job_id(),
                "model": name,
                "version": version,
                "featureset": featureset,
                "featureset_doc": fs.to_dict(),
                "format": fmt,
                "ext": ext,
                "filename": os.path.basename(filename) if filename else None,
                "activate": activate,
                "binding": binding,
                "options": dict(options or {}),
                "num_iteration": num_iteration,
                "accept_incomplete": bool(accept_incomplete),
                "state": "queued",
                "error": None,
                "status": 200,
                "created": time.time(),
                "started": None,
                "finished": None,
                "compile_seconds": None,
                "attempts": 0,
            }
            self.store.create_job(job, body)
        self.runner.start(job["id"])
        return public(job)

    def _on_built(self, job: dict[str, Any]) -> None:
        """A job's version is committed: load it here; activate it when the upload asked and its
        verdict allows (``activation_held`` says why not)."""
        name, version = job["model"], int(job["version"])
        self._load(name, version)
        if self.metrics is not None and job.get("compile_seconds") is not None:
            self.metrics.compile_seconds.labels(name).observe(job["compile_seconds"])
        if job.get("activate") and not job.get("activation_held"):
            self.activate(name, version)

    def _count_upload(self, job: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.uploads.labels(job["model"], job["state"]).inc()


def _display_name(filename: str | None) -> str:
    """How error messages name the uploaded file: the client's file name, never our path."""
    return repr(os.path.basename(filename)) if filename else "upload"


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
