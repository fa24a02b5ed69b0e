"""Machine facts recorded in every result file, so numbers from different machines never mix."""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

LIBRARIES = (
    "ltrcompile", "numpy", "xgboost", "lightgbm", "sklearn", "treelite", "tl2cgen", "lleaves",
    "llvmlite", "Cython", "matplotlib", "psutil",
)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def n_cores() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return ""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    for line in _run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def caches() -> dict[str, str]:
    """Per-core cache sizes from /sys (cpu0), e.g. {'L1d': '32K', 'L1i': '32K', 'L2': '512K', 'L3': '32768K'}."""
    out: dict[str, str] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            level = (idx / "level").read_text().strip()
            kind = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[name] = size
    return out


def cpu_flags() -> list[str]:
    """The SIMD-relevant CPU flags (the full list is long and mostly irrelevant)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    wanted = ("sse4_2", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512vl")
    flags = set(m.group(1).split()) if m else set()
    return [f for f in wanted if f in flags]


def compiler() -> str:
    cc = os.environ.get("CC", "gcc")
    first = _run([cc, "--version"]).splitlines()
    return first[0] if first else f"{cc}: not found"


DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def versions() -> dict[str, str]:
    out: dict[str, str] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- any import failure means "not available"
            out[name] = f"not available ({type(exc).__name__})"
            continue
        ver = getattr(mod, "__version__", None)
        if ver is None:
            try:
                ver = importlib.metadata.version(DISTRIBUTIONS.get(name, name))
            except importlib.metadata.PackageNotFoundError:
                ver = "?"
        out[name] = str(ver)
    return out


def git_commit() -> str:
    repo = Path(__file__).resolve().parent.parent
    rev = _run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]).strip()
    dirty = _run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"]).strip()
    return f"{rev}{' (+local changes)' if dirty else ''}" if rev else "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def facts() -> dict[str, Any]:
    """Everything known about the machine and software stack, as a JSON-able dict."""
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": n_cores(),
        "logical_cpus": os.cpu_count(),
        "caches": caches(),
        "cpu_flags": cpu_flags(),
        "memory_gib": memory_gib(),
        "compiler": compiler(),
        "cflags_env": os.environ.get("CFLAGS", ""),
        "versions": versions(),
        "git": git_commit(),
        "loadavg_start": loadavg(),
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS") if k in os.environ},
    }


def one_line(f: dict[str, Any]) -> str:
    c = f.get("caches", {})
    cache = ", ".join(f"{k} {v}" for k, v in c.items())
    return (f"{f['cpu']}, {f['cores']} cores ({cache}), {f['memory_gib']} GiB, {f['compiler']}, "
            f"Python {f['versions'].get('python')}, load avg at start {f['loadavg_start']}")
