"""Durable upload jobs, each built in a worker process with CPU-time, memory and wall-clock limits.

An accepted upload is a job record plus the uploaded file in the store (``jobs/<id>/``), written and
fsynced before the server answers 202. A :class:`JobRunner` thread then takes the job's lock and
runs ``python -m ltrcompile.service.worker`` (:mod:`.worker`) -- parsing, compiling and verifying
happen there, never in the serving process -- and, when the build succeeds, commits the version to
the store and hands it to the registry (load, activate). A limit hit, a crash of the worker or a bad
file is a failed job with a reason. A job whose server died (``kill -9``, restart) is found by any
process using the store (its lock is free, its state unfinished) and resumed; after
``MAX_ATTEMPTS`` interrupted runs it is failed with that reason. Version numbers are reserved
before the job is recorded and never handed out again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import ModelStore, StoreError, crash_point

log = logging.getLogger("ltrcompile.service")

#: A job interrupted this many times (its server killed while running it) is failed, not resumed.
MAX_ATTEMPTS = 3
FINISHED = ("ready", "failed")
#: Fields of a job record shown by the API.
PUBLIC_FIELDS = (
    "id",
    "model",
    "version",
    "featureset",
    "format",
    "activate",
    "num_iteration",
    "accept_incomplete",
    "verdict",
    "activation_held",
    "state",
    "error",
    "created",
    "started",
    "finished",
    "compile_seconds",
    "build_cpu_seconds",
    "attempts",
)


@dataclass(frozen=True)
class JobLimits:
    """Per-build limits: CPU seconds and address space (MiB beyond the worker's imports) in the
    worker process (``setrlimit``, inherited by the compiler), and wall-clock seconds."""

    cpu_s: float = 1800.0
    memory_mb: float = 4096.0
    timeout_s: float = 3600.0
    slots: int = 2  # builds at once per server process; other uploads go on meanwhile


def public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job.get(k) for k in PUBLIC_FIELDS}


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


class JobRunner:
    """Runs upload jobs of one store in worker processes; resumes orphaned ones."""

    def __init__(
        self,
        store: ModelStore,
        on_built: Callable[[dict[str, Any]], None],
        limits: JobLimits | None = None,
        scrub: Callable[[str, Path | None, dict[str, Any]], str] | None = None,
        on_finished: Callable[[dict[str, Any]], None] | None = None,
        max_jobs_kept: int = 1000,
    ) -> None:
        self.store = store
        self.limits = limits or JobLimits()
        self._on_built = on_built
        self._on_finished = on_finished
        self._scrub = scrub or (lambda msg, staging, job: msg)
        self._max_kept = max_jobs_kept
        self._local: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(1, self.limits.slots), thread_name_prefix="ltr-job")
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ scheduling
    def start(self, job_id: str) -> None:
        """Queue ``job_id`` here unless this process already has it."""
        with self._lock:
            if job_id in self._local or self._closed:
                return
            self._local.add(job_id)
        try:
            self._pool.submit(self._guarded, job_id)
        except RuntimeError:  # shutting down
            with self._lock:
                self._local.discard(job_id)

    def recover(self) -> list[str]:
        """Start every unfinished job no process is running (its server died); returns them."""
        found = []
        for job in self.store.list_jobs():
            jid = job.get("id", "")
            if job.get("state") in FINISHED or jid in self._local:
                continue
            with contextlib.suppress(StoreError):
                if not self.store.job_running(jid):
                    found.append(jid)
                    self.start(jid)
        return found

    def _guarded(self, job_id: str) -> None:
        try:
            self._run(job_id)
        except Exception:  # never lose the thread; the job is retried by recover()
            log.exception("upload job %s: internal error", job_id)
        finally:
            with self._lock:
                self._local.discard(job_id)

    # ------------------------------------------------------------------ one job
    def _run(self, job_id: str) -> None:
        lock = self.store.lock_job(job_id)
        if lock is None:
            return  # another thread or process runs it
        staging: Path | None = None
        build_log: Path | None = None
        try:
            job = self.store.read_job(job_id)
            if job.get("state") in FINISHED:
                return
            job["attempts"] = int(job.get("attempts", 0)) + 1
            job["owner"] = {"pid": os.getpid(), "host": socket.gethostname()}
            if job["attempts"] > MAX_ATTEMPTS:
                self._fail(
                    job,
                    f"the upload was interrupted {MAX_ATTEMPTS} times (its server stopped while "
                    "building it); not retried",
                    500,
                )
                return
            if job["attempts"] > 1:
                log.warning("resuming upload job %s (attempt %d)", job_id, job["attempts"])
            job["started"] = time.time()
            self.store.write_job(job)
            crash_point("job-started")
            vdir = self.store.version_dir(job["model"], job["version"])
            if not self._committed_by(vdir, job_id):
                staging = self.store.staging_dir(job_id)
                build_log = staging.parent / f"{staging.name}.log"
                ok, status, error = self._build(job, staging)
                if not ok:
                    self._fail(job, self._scrub(error, staging, job), status)
                    return
                self.store.commit_version(
                    job["model"], job["version"], staging, lambda: self._check_cancelled(job_id)
                )
                staging = None
            meta = self.store.version_meta(job["model"], job["version"])
            job["verdict"] = meta.get("verdict")
            job["activation_held"] = meta.get("activation_held")  # why the upload does not activate it
            if job["activation_held"] and job.get("activate"):
                log.warning("%s version %s: %s", job["model"], job["version"], job["activation_held"])
            job["state"] = "activating" if job.get("activate") and not job["activation_held"] else "loading"
            self.store.write_job(job)
            self._on_built(job)
            job["state"] = "ready"
            job["finished"] = time.time()
            self.store.write_job(job)
            self.store.drop_job_body(job_id)
            if self._on_finished is not None:
                self._on_finished(job)
        except StoreError as exc:
            job = self.store.read_job(job_id)
            self._fail(job, str(exc), exc.status)
        finally:
            if staging is not None:
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
            if build_log is not None:
                build_log.unlink(missing_ok=True)
            lock.close()
            self._gc()

    @staticmethod
    def _committed_by(vdir: Path, job_id: str) -> bool:
        """The version is already in the store from an earlier run of this job."""
        try:
            return json.loads((vdir / "meta.json").read_text()).get("job") == job_id
        except (OSError, ValueError):
            return False

    def _check_cancelled(self, job_id: str) -> None:
        marker = self.store.job_dir(job_id) / "cancelled"
        if marker.exists():
            raise StoreError(marker.read_text() or "the upload was cancelled", 409)

    def cancel_model(self, name: str, reason: str) -> None:
        """Unfinished uploads of ``name`` will not be committed (the model is being deleted)."""
        for job in self.store.list_jobs():
            if job.get("model") == name and job.get("state") not in FINISHED:
                with contextlib.suppress(OSError, StoreError):
                    (self.store.job_dir(job["id"]) / "cancelled").write_text(reason)

    def _fail(self, job: dict[str, Any], error: str, status: int) -> None:
        job["state"] = "failed"
        job["error"] = error
        job["status"] = status
        job["finished"] = time.time()
        self.store.write_job(job)
        self.store.drop_job_body(job["id"])
        if self._on_finished is not None:
            self._on_finished(job)

    def _build(self, job: dict[str, Any], staging: Path) -> tuple[bool, int, str]:
        """Run the worker process on ``job``; (ok, http status, reason)."""
        lim = self.limits
        read_fd, write_fd = os.pipe()
        import ltrcompile

        pkg_root = str(Path(ltrcompile.__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (pkg_root, os.environ.get("PYTHONPATH")) if p),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        cmd = [
            sys.executable,
            "-m",
            "ltrcompile.service.worker",
            "--job-dir",
            str(self.store.job_dir(job["id"])),
            "--staging",
            str(staging),
            "--report-fd",
            str(write_fd),
            "--cpu-s",
            str(lim.cpu_s),
            "--memory-mb",
            str(lim.memory_mb),
            "--parent",
            str(os.getpid()),
        ]
        log_path = staging.parent / f"{staging.name}.log"
        with open(log_path, "wb") as logfh:
            try:
                proc = subprocess.Popen(
                    cmd,
                    pass_fds=(write_fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=logfh,
                    stderr=subprocess.STDOUT,
                    cwd=staging,
                    env=env,
                    start_new_session=True,  # its compiler processes die with it on a timeout
                )
            finally:
                os.close(write_fd)
        messages: list[dict[str, Any]] = []
        reader = threading.Thread(
            target=self._read_reports, args=(read_fd, job, messages), daemon=True
        )
        reader.start()
        try:
            rc, cpu, timed_out = _wait(proc, lim.timeout_s)
            job["build_cpu_seconds"] = round(cpu, 3)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers: the compiler, on any exit
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            reader.join(10)
        final = next((m for m in reversed(messages) if "ok" in m), None)
        if timed_out:
            return False, 422, f"the build exceeded its time limit of {lim.timeout_s:g} s"
        if final is not None and final["ok"] and rc == 0:
            return True, 200, ""
        if final is not None and not final["ok"]:
            return False, int(final.get("status", 422)), str(final.get("error"))
        if rc == -signal.SIGXCPU or (rc == -signal.SIGKILL and 0 < lim.cpu_s <= cpu):
            return False, 422, f"the build exceeded its CPU-time limit of {lim.cpu_s:g} s"
        tail = _tail(log_path)
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name
            why = " (out of memory, or killed by someone)" if rc == -signal.SIGKILL else ""
            return False, 500, f"the build process was killed by {name}{why}{tail}"
        return False, 500, f"the build process failed with exit status {rc}{tail}"

    def _read_reports(self, fd: int, job: dict[str, Any], out: list[dict[str, Any]]) -> None:
        with os.fdopen(fd, "r", errors="replace") as fh:
            for line in fh:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                out.append(msg)
                if "state" in msg:
                    job["state"] = msg["state"]
                    if msg.get("format"):
                        job["format"] = msg["format"]
                    if "compile_seconds" in msg:
                        job["compile_seconds"] = msg["compile_seconds"]
                    with contextlib.suppress(OSError):
                        self.store.write_job(job)

    def _gc(self) -> None:
        """Keep the newest ``max_jobs_kept`` finished job records."""
        done = [j for j in self.store.list_jobs() if j.get("state") in FINISHED]
        for j in done[: max(0, len(done) - self._max_kept)]:
            with contextlib.suppress(OSError, StoreError):
                self.store.delete_job(j["id"])


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, float, bool]:
    """Reap ``proc`` with its resource usage: (return code, CPU seconds, timed out)."""
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime, False
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime, True
        time.sleep(0.05)


def _tail(path: Path, n: int = 6) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()[-n:]
    except OSError:
        return ""
    return (": " + " | ".join(lines))[:1500] if lines else ""
