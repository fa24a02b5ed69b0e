"""Build an extension module from generated sources: cython + cc, in parallel, then link.

The Cython wrapper and every C translation unit compile as separate processes (``jobs`` at a time,
largest first), then one link step makes ``<module><EXT_SUFFIX>``. Every command and its output go
to ``build.log``; a failing step raises :class:`BuildError` quoting the end of its output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...errors import LtrCompileError
from .codegen import Sources
from .scorer import available_cores
from .toolchain import Toolchain
from .wrapper import ensure_wrapper


class BuildError(LtrCompileError, RuntimeError):
    """The C compiler or Cython failed on generated code (a bug in ltrcompile: please report it)."""


class Progress:
    """A one-line progress display on stderr (tqdm when installed); silent when disabled."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self._bar = None
        self._lock = threading.Lock()
        self._tty = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self._last = ""

    def update(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            line = f"ltrcompile: {self.label}: {phase} {done}/{total}"
            if line == self._last:
                return
            self._last = line
            if self._tty:
                sys.stderr.write("\r" + line + "\x1b[K")
            elif done == total or done == 0:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def close(self, message: str | None = None) -> None:
        if not self.enabled:
            return
        if self._tty:
            sys.stderr.write("\r\x1b[K")
        if message:
            sys.stderr.write(f"ltrcompile: {self.label}: {message}\n")
        sys.stderr.flush()


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, text: str) -> None:
        with self._lock:
            self._fh.write(text)
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _run(cmd: list[str], cwd: Path, log: _Log, what: str) -> float:
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        log.write(f"$ {' '.join(cmd)}\n{exc}\n")
        raise BuildError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    dt = time.perf_counter() - t
    out = (r.stdout or "") + (r.stderr or "")
    log.write(f"$ {' '.join(cmd)}\n# {what}: exit {r.returncode} in {dt:.2f}s\n{out}\n")
    if r.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {r.returncode}):\n{tail}")
    return dt


def build_extension(
    src: Sources,
    build_dir: Path,
    tc: Toolchain,
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, float]]:
    """Compile and link; returns the extension's path and per-step seconds."""
    build_dir = Path(build_dir)
    jobs = max(1, jobs or available_cores())
    log = _Log(build_dir / "build.log")
    times: dict[str, float] = {}
    inc = [f"-I{build_dir}", *(f"-I{d}" for d in tc.include_dirs)]
    cc = list(tc.cc)
    cflags = list(tc.cflags)
    objects: list[str] = []
    total = len(src.units) + 2
    done = [0]
    lock = threading.Lock()

    def step() -> None:
        with lock:
            done[0] += 1
            if progress is not None:
                progress.update("compiling", done[0], total)

    def compile_c(name: str) -> None:
        obj = name[:-2] + ".o"
        flags = [*cflags, *src.unit_flags.get(name, [])]
        times[name] = _run([*cc, *flags, *inc, "-c", name, "-o", obj], build_dir, log, f"cc {name}")
        step()

    wrapper_dir: list[Path] = []

    def wrapper() -> None:
        t = time.perf_counter()
        wrapper_dir.append(ensure_wrapper(tc, _run, log))
        times["wrapper"] = time.perf_counter() - t
        step()

    log.write(f"# ltrcompile build of {src.module} ({src.strategy}), {jobs} jobs\n")
    t0 = time.perf_counter()
    if progress is not None:
        progress.update("compiling", 0, total)
    order = sorted(src.units, key=lambda n: -src.unit_weights.get(n, 0))
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(wrapper)]
            futures += [pool.submit(compile_c, n) for n in order]
            for f in futures:
                f.result()
        wobj = wrapper_dir[0] / "ltrc_wrapper.o"
        objects = [str(wobj)] + [n[:-2] + ".o" for n in src.units]
        for name in ("ltrc_wrapper.pyx", "ltrc_wrapper.c"):  # for inspection
            if (wrapper_dir[0] / name).is_file():
                shutil.copyfile(wrapper_dir[0] / name, build_dir / name)
        so = build_dir / f"{src.module}{tc.ext_suffix}"
        times["link"] = _run(
            [*cc, *objects, *tc.ldflags, "-o", so.name], build_dir, log, "link"
        )
        step()
    finally:
        log.write(f"# total {time.perf_counter() - t0:.2f}s\n")
        log.close()
    times["total"] = time.perf_counter() - t0
    return so, times
