"""On-disk model store: feature sets, versioned models and upload jobs; crash-safe, shareable.

Layout under the store root::

    featuresets/<name>.json              one feature set per file (atomic replace)
    models/<name>/ACTIVE                 {"version": v} -- the pointer, replaced atomically
    models/<name>/versions/<v>/          a complete version: source file, meta.json, ir.json, compiled/
    counters/<name>.json                 {"next_version": n} -- kept when the model is deleted, so
                                         version numbers are never reused
    jobs/<id>/job.json, body             an accepted upload: its record and the uploaded file
    jobs/<id>/lock                       flock held by the process running the job
    tmp/                                 staging and trash
    .lock                                flock held for the few milliseconds of each change

Every write goes to a temporary name in the same file system, is fsynced, then renamed into place
(and the parent directory fsynced). A version directory is built under ``tmp/`` and renamed into
``versions/`` only once it is complete, so after a crash at any point the store holds either the
old state or the whole new version, never part of one. Deletions rename into ``tmp/`` first.

Several processes (``serve --workers N``, or several servers on one shared directory) may use one
store: each change (reserving a version number, committing, activating, deleting) holds ``.lock``
(``flock``, which Linux also maps onto NFS byte-range locks), and a running job holds its own
lock, so a job whose process died is recognised by any other process and resumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..rescore import NAME_RE, FeatureSet, RescoreInputError, check_name

#: A temp file older than this is a leftover of a dead writer (writes take milliseconds).
STALE_TMP_S = 120.0
_JOB_ID_LEN = 16


class StoreError(Exception):
    """A store operation failed; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def crash_point(name: str) -> None:
    """Fault injection for the crash-safety tests: SIGKILL ourselves at a named point."""
    if os.environ.get("LTRCOMPILE_CRASH_AT") == name:
        os.kill(os.getpid(), 9)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        crash_point(f"before-replace:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below ``root`` (files first, then directories bottom-up)."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _read_json(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def check_job_id(job_id: str) -> str:
    if len(job_id) != _JOB_ID_LEN or not all(c in "0123456789abcdef" for c in job_id):
        raise StoreError(f"no upload job {job_id!r}", 404)
    return job_id


class ModelStore:
    """Feature sets, model versions and upload jobs on disk. Thread- and process-safe."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("featuresets", "models", "counters", "jobs", "tmp"):
            (self.root / sub).mkdir(exist_ok=True)
        self._tlock = threading.RLock()
        self._pointer_paths: dict[str, str] = {}
        self._depth = 0
        self._lockfile = open(self.root / ".lock", "a+")  # noqa: SIM115 -- held open for life
        self._clean_tmp()

    def close(self) -> None:
        self._lockfile.close()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive against every thread and every process using this store (re-entrant)."""
        with self._tlock:
            if self._depth == 0:
                fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ paths
    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def _fs_path(self, name: str) -> Path:
        return self.root / "featuresets" / f"{check_name('feature set', name)}.json"

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / check_name("model", name)

    def version_dir(self, name: str, version: int) -> Path:
        return self.model_dir(name) / "versions" / str(int(version))

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / check_job_id(job_id)

    def _clean_tmp(self) -> None:
        """Remove leftovers of dead writers; never what a live process (here or another server
        sharing the store) is still working on."""
        now = time.time()
        with self.locked():
            for p in self.tmp.iterdir():
                if p.name.startswith("stage-"):  # stage-<job id>-<random>: its job's lock tells
                    job_id = p.name.split("-")[1]
                    with contextlib.suppress(StoreError):
                        if self.job_running(job_id):
                            continue
                elif not p.name.startswith("trash-") and now - _mtime(p) < STALE_TMP_S:
                    continue
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            dirs = [self.root / "featuresets", self.root / "counters"]
            dirs += [*self.root.glob("models/*"), *self.root.glob("jobs/*")]
            for d in dirs:
                for p in d.glob(".*.tmp"):
                    if now - _mtime(p) >= STALE_TMP_S:
                        p.unlink(missing_ok=True)
            for d in (self.root / "models").iterdir():
                # a commit that died between creating the model directory and the rename
                if not d.is_dir() or not NAME_RE.fullmatch(d.name):
                    continue
                if not self.versions(d.name) and not (d / "ACTIVE").exists():
                    shutil.rmtree(d, ignore_errors=True)

    def _trash(self, path: Path) -> None:
        dest = self.tmp / f"trash-{uuid.uuid4().hex}"
        os.replace(path, dest)
        fsync_dir(path.parent)
        shutil.rmtree(dest, ignore_errors=True)

    # ------------------------------------------------------------------ feature sets
    def put_featureset(self, fs: FeatureSet, create_only: bool = False) -> bool:
        """Create or replace (``create_only``: 409 if it exists); True when it was created.

        Each write bumps the set's version (``_version`` in the file; 1 when created)."""
        with self.locked():
            path = self._fs_path(fs.name)
            created = not path.exists()
            if create_only and not created:
                raise StoreError(f"feature set {fs.name!r} already exists", 409)
            version = 1 if created else self.featureset_version(fs.name) + 1
            write_json_atomic(path, {**fs.to_dict(), "_version": version})
            return created

    def featureset_version(self, name: str) -> int:
        """How many times the set was written since it was created (files without one: 1)."""
        try:
            v = _read_json(self._fs_path(name)).get("_version", 1)
        except FileNotFoundError:
            raise StoreError(f"no feature set {name!r}", 404) from None
        return int(v) if isinstance(v, int) and v > 0 else 1

    def get_featureset(self, name: str) -> FeatureSet:
        path = self._fs_path(name)
        try:
            doc = _read_json(path)
            if isinstance(doc, dict):
                doc.pop("_version", None)
            return FeatureSet.from_dict(doc, name)
        except FileNotFoundError:
            raise StoreError(f"no feature set {name!r}", 404) from None
        except (ValueError, RescoreInputError) as exc:
            raise StoreError(f"feature set {name!r} on disk is unreadable: {exc}", 500) from exc

    def list_featuresets(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "featuresets").glob("*.json"))

    def delete_featureset(self, name: str) -> None:
        """Models keep the copy of the feature set they were uploaded with (as in ES LTR)."""
        with self.locked():
            path = self._fs_path(name)
            if not path.exists():
                raise StoreError(f"no feature set {name!r}", 404)
            path.unlink()
            fsync_dir(path.parent)

    # ------------------------------------------------------------------ models
    def list_models(self) -> list[str]:
        return sorted(p.name for p in (self.root / "models").iterdir() if p.is_dir())

    def model_exists(self, name: str) -> bool:
        return self.model_dir(name).is_dir()

    def model_taken(self, name: str, finished: tuple[str, ...]) -> bool:
        """The model exists, or an upload of it is not yet in a state of ``finished``: it will
        exist if that upload succeeds. Call under :meth:`locked` to act on the answer
        atomically (creation: check, then store the job, in one locked step)."""
        if self.model_exists(name):
            return True
        return any(
            j.get("model") == name and j.get("state") not in finished for j in self.list_jobs()
        )

    def versions(self, name: str) -> list[int]:
        d = self.model_dir(name) / "versions"
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())

    def version_meta(self, name: str, version: int) -> dict[str, Any]:
        path = self.version_dir(name, version) / "meta.json"
        try:
            return _read_json(path)
        except FileNotFoundError:
            raise StoreError(f"model {name!r} has no version {version}", 404) from None

    def active_version(self, name: str) -> int | None:
        v = self.active_pointer(name)
        return v if v is not None and self.version_dir(name, v).is_dir() else None

    def active_pointer(self, name: str) -> int | None:
        """The version ``models/<name>/ACTIVE`` names right now (None: no pointer), read from the
        file every time: a few microseconds (the path is remembered once the file was found, raw
        ``os`` calls), cheap enough for every request. Content, not ``stat``: inode numbers are
        reused and file times are coarse, so two quick activations can leave identical ``stat``
        results."""
        path = self._pointer_paths.get(name)
        known = path is not None
        if not known:
            path = str(self.model_dir(name) / "ACTIVE")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        if not known:
            self._pointer_paths[name] = path  # a model that exists: bounded by the store
        try:
            return int(json.loads(raw)["version"])
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"model {name!r}: its ACTIVE pointer is unreadable", 500) from None

    def reserve_version(self, name: str) -> int:
        """The next version number of ``name``; never handed out twice, across processes, crashes
        and deletions of the model (the counter outlives the model directory)."""
        with self.locked():
            counter = self.root / "counters" / f"{check_name('model', name)}.json"
            nxt = 1
            for path in (counter, self.model_dir(name) / "model.json"):  # model.json: older stores
                with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
                    nxt = max(nxt, int(_read_json(path)["next_version"]))
            nxt = max([nxt, *(v + 1 for v in self.versions(name))])
            crash_point("reserve-version")
            write_json_atomic(counter, {"next_version": nxt + 1})
            return nxt

    def staging_dir(self, job_id: str) -> Path:
        p = self.tmp / f"stage-{check_job_id(job_id)}-{uuid.uuid4().hex[:8]}"
        p.mkdir()
        return p

    def commit_version(
        self, name: str, version: int, staging: Path, still_wanted: Any = None
    ) -> Path:
        """fsync the complete staging tree and rename it into ``versions/<version>``.

        ``still_wanted()`` is checked under the store lock (e.g. the job was not cancelled by a
        deletion of the model meanwhile)."""
        fsync_tree(staging)
        crash_point("before-commit-rename")
        with self.locked():
            if still_wanted is not None:
                still_wanted()
            dest = self.version_dir(name, version)
            if dest.exists():
                raise StoreError(f"model {name!r} version {version} already exists", 409)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, dest)
            fsync_dir(dest.parent)
            fsync_dir(self.root / "models")
        crash_point("after-commit-rename")
        return dest

    def set_active(self, name: str, version: int) -> None:
        with self.locked():
            if not self.version_dir(name, version).is_dir():
                raise StoreError(f"model {name!r} has no version {version}", 404)
            write_json_atomic(self.model_dir(name) / "ACTIVE", {"version": int(version)})

    def delete_version(self, name: str, version: int) -> None:
        with self.locked():
            d = self.version_dir(name, version)
            if not d.is_dir():
                raise StoreError(f"model {name!r} has no version {version}", 404)
            if self.active_version(name) == version:
                raise StoreError(
                    f"version {version} is the active version of {name!r}; activate another "
                    "version first or delete the model",
                    409,
                )
            self._trash(d)

    def delete_model(self, name: str) -> None:
        with self.locked():
            d = self.model_dir(name)
            if not d.is_dir():
                raise StoreError(f"no model {name!r}", 404)
            self._trash(d)

    # ------------------------------------------------------------------ upload jobs
    def create_job(self, record: dict[str, Any], body: bytes) -> None:
        """Store an accepted upload durably (record and file) before it is acknowledged."""
        job_id = check_job_id(record["id"])
        stage = self.tmp / f"newjob-{job_id}"
        stage.mkdir()
        with open(stage / "body", "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        write_json_atomic(stage / "job.json", record)
        (stage / "lock").touch()
        fsync_dir(stage)
        os.rename(stage, self.root / "jobs" / job_id)
        fsync_dir(self.root / "jobs")
        crash_point("after-job-accepted")

    def read_job(self, job_id: str) -> dict[str, Any]:
        try:
            return _read_json(self.job_dir(job_id) / "job.json")
        except (FileNotFoundError, NotADirectoryError):
            raise StoreError(f"no upload job {job_id!r}", 404) from None

    def write_job(self, record: dict[str, Any]) -> None:
        d = self.job_dir(record["id"])
        if d.is_dir():
            write_json_atomic(d / "job.json", record)

    def job_body_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "body"

    def drop_job_body(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.job_body_path(job_id).unlink()

    def list_jobs(self) -> list[dict[str, Any]]:
        out = []
        for d in (self.root / "jobs").iterdir():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError):
                out.append(_read_json(d / "job.json"))
        return sorted(out, key=lambda j: (j.get("created", 0), j.get("id", "")))

    def lock_job(self, job_id: str) -> IO[Any] | None:
        """Take the job's lock (non-blocking): the open file holding it, or None if another
        process or thread runs the job. The lock dies with its process (``kill -9`` included)."""
        try:
            fh = open(self.job_dir(job_id) / "lock", "a+")  # noqa: SIM115 -- returned
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return None
        return fh

    def job_running(self, job_id: str) -> bool:
        fh = self.lock_job(job_id)
        if fh is None:
            return self.job_dir(job_id).is_dir()
        fh.close()
        return False

    def delete_job(self, job_id: str) -> None:
        d = self.job_dir(job_id)
        if d.is_dir():
            self._trash(d)


def _mtime(p: Path) -> float:
    try:
        return p.lstat().st_mtime
    except FileNotFoundError:
        return 0.0
