"""The build process of one upload job: ``python -m ltrcompile.service.worker`` (run by :mod:`.jobs`).

It limits itself first (``resource.setrlimit``: CPU seconds, address space -- inherited by the C
compiler it starts), lowers its priority, dies with its server (``PR_SET_PDEATHSIG`` and a parent
watch), then builds the version into the staging directory with :func:`.build.build_version`.
It reports on the file descriptor ``--report-fd`` as JSON lines: ``{"state": ...}`` while it
works, then one ``{"ok": true}`` or ``{"ok": false, "error": ..., "status": ..., "limit": ...}``.
A CPU-time limit hit kills it with ``SIGXCPU``; the server turns the signal into the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .. import memlimit

EXIT_BAD_UPLOAD = 3
EXIT_MEMORY = 4
EXIT_INTERNAL = 5


def _die_with_parent(parent: int) -> None:
    """The build is useless once its server is gone: follow it (Linux prctl, then polling)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(EXIT_INTERNAL)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(EXIT_INTERNAL)

    threading.Thread(target=watch, daemon=True).start()


def set_cpu_limit(cpu_s: float) -> None:
    """CPU seconds: SIGXCPU at the soft limit, SIGKILL 5 s later (the compiler inherits it)."""
    if cpu_s > 0:
        soft = max(1, int(cpu_s + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))


def set_memory_limit(memory_mb: float) -> None:
    """Address space: ``memory_mb`` beyond what the process maps once its libraries are imported
    (so the limit measures the upload's work, not the interpreter); a hit is a MemoryError in
    Python and a failed allocation in C. The compiler processes inherit the same cap; the native
    reference child re-applies the budget after importing its library (:mod:`ltrcompile.memlimit`)."""
    memlimit.limit(memory_mb)


def _preload() -> None:
    """Import what every build needs before the memory limit is set."""
    import ltrcompile.backends.cython  # noqa: F401
    import ltrcompile.frontends
    import ltrcompile.verify  # noqa: F401

    ltrcompile.frontends.formats()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ltrcompile.service.worker")
    ap.add_argument("--job-dir", required=True)
    ap.add_argument("--staging", required=True)
    ap.add_argument("--report-fd", type=int, required=True)
    ap.add_argument("--cpu-s", type=float, default=0)
    ap.add_argument("--memory-mb", type=float, default=0)
    ap.add_argument("--parent", type=int, required=True)
    args = ap.parse_args(argv)
    report_fh = os.fdopen(args.report_fd, "w", buffering=1)

    def report(**msg: Any) -> None:
        report_fh.write(json.dumps(msg) + "\n")

    def out_of_memory() -> int:
        report(
            ok=False,
            limit="memory",
            status=422,
            error=f"the build exceeded its memory limit of {args.memory_mb:g} MiB",
        )
        return EXIT_MEMORY

    set_cpu_limit(args.cpu_s)
    _die_with_parent(args.parent)
    os.nice(5)  # serving comes first on a busy machine
    from .build import BuildRequest, build_version, client_fault

    _preload()
    job_dir = Path(args.job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    body = (job_dir / "body").read_bytes()
    req = BuildRequest.from_job(job)
    staging = Path(args.staging)
    os.chdir(staging)  # relative paths in whatever the libraries print
    try:
        set_memory_limit(args.memory_mb)

        def progress(state: str, **info: Any) -> None:
            report(state=state, **info)

        build_version(req, body, staging, progress)
    except MemoryError:
        return out_of_memory()
    except Exception as exc:
        bad = client_fault(exc)
        if not bad:
            traceback.print_exc()
        msg = str(exc) if bad else f"{type(exc).__name__}: {exc}"
        report(ok=False, status=getattr(exc, "status", 422 if bad else 500), error=msg)
        return EXIT_BAD_UPLOAD if bad else EXIT_INTERNAL
    report(ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
