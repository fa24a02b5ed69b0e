"""On-disk model store: feature sets and versioned models, crash-safe.

Layout under the store root::

    featuresets/<name>.json              one feature set per file (atomic replace)
    models/<name>/model.json             {"next_version": n} -- version numbers are never reused
    models/<name>/ACTIVE                 {"version": v} -- the pointer, replaced atomically
    models/<name>/versions/<v>/          a complete version: source file, meta.json, ir.json, compiled/
    tmp/                                 staging and trash; emptied when the store is opened
    .lock                                flock: one server per store

Every write goes to a temporary name in the same file system, is fsynced, then renamed into place
(and the parent directory fsynced). A version directory is built under ``tmp/`` and renamed into
``versions/`` only once it is complete, so after a crash at any point the store holds either the
old state or the whole new version, never part of one. Deletions rename into ``tmp/`` first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from ..rescore import NAME_RE, FeatureSet, RescoreInputError, check_name


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


class ModelStore:
    """Feature sets and model versions on disk. Thread-safe; one process per root (flock)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._lockfile = open(self.root / ".lock", "a+")  # noqa: SIM115 -- held for the lifetime
        try:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lockfile.close()
            raise StoreError(f"store {self.root} is in use by another process", 409) from exc
        for sub in ("featuresets", "models", "tmp"):
            (self.root / sub).mkdir(exist_ok=True)
        self._clean_tmp()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)
        self._lockfile.close()

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

    def _clean_tmp(self) -> None:
        """Remove leftovers of interrupted uploads and deletions (never visible state)."""
        for p in self.tmp.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        for d in (self.root / "featuresets", *self.root.glob("models/*")):
            for p in d.glob(".*.tmp"):
                p.unlink(missing_ok=True)
        for d in (self.root / "models").iterdir():
            # a model whose first upload never completed: it was never visible, drop it
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
        with self._lock:
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
        with self._lock:
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
        try:
            v = int(_read_json(self.model_dir(name) / "ACTIVE")["version"])
        except FileNotFoundError:
            return None
        return v if self.version_dir(name, v).is_dir() else None

    def reserve_version(self, name: str) -> int:
        """The next version number of ``name`` (creating the model); never handed out twice."""
        with self._lock:
            d = self.model_dir(name)
            (d / "versions").mkdir(parents=True, exist_ok=True)
            try:
                nxt = int(_read_json(d / "model.json")["next_version"])
            except FileNotFoundError:
                nxt = 1
            nxt = max([nxt, *(v + 1 for v in self.versions(name))])
            write_json_atomic(d / "model.json", {"next_version": nxt + 1})
            return nxt

    def staging_dir(self) -> Path:
        p = self.tmp / f"stage-{uuid.uuid4().hex}"
        p.mkdir()
        return p

    def commit_version(self, name: str, version: int, staging: Path) -> Path:
        """fsync the complete staging tree and rename it into ``versions/<version>``."""
        fsync_tree(staging)
        crash_point("before-commit-rename")
        with self._lock:
            dest = self.version_dir(name, version)
            if dest.exists():
                raise StoreError(f"model {name!r} version {version} already exists", 409)
            if not self.model_dir(name).is_dir():
                raise StoreError(f"model {name!r} was deleted during the upload", 409)
            os.rename(staging, dest)
            fsync_dir(dest.parent)
        crash_point("after-commit-rename")
        return dest

    def set_active(self, name: str, version: int) -> None:
        with self._lock:
            if not self.version_dir(name, version).is_dir():
                raise StoreError(f"model {name!r} has no version {version}", 404)
            write_json_atomic(self.model_dir(name) / "ACTIVE", {"version": int(version)})

    def delete_version(self, name: str, version: int) -> None:
        with self._lock:
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
        with self._lock:
            d = self.model_dir(name)
            if not d.is_dir():
                raise StoreError(f"no model {name!r}", 404)
            self._trash(d)
