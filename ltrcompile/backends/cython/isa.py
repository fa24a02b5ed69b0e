"""Host instruction-set builds: which ISA levels exist, what the CPU has, and the load-time check.

``isa="portable"`` (the default) builds for the platform's baseline and runs on any CPU of it.
``"avx2"`` (x86-64-v3) and ``"avx512"`` (x86-64-v4) build the generated units for that level and let
the traversal kernel use gathers; ``"native"`` picks the best level this CPU has. Exactness flags are
kept (``-ffp-contract=off``, no fast-math), so a host build scores bit-identically to the portable
one. The level and the CPU flags it needs are recorded in the manifest; loading an artifact on a CPU
that lacks one of them raises :class:`~.artifact.IncompatibleArtifactError` before the extension is
imported (running it would die with SIGILL), naming the missing flags and the portable fallback.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

#: level -> (gcc -march value, /proc/cpuinfo flags the level needs)
LEVELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "portable": ("", ()),
    "avx2": ("x86-64-v3", ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave")),
    "avx512": (
        "x86-64-v4",
        ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave",
         "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
    ),
}
CHOICES = ("portable", "avx2", "avx512", "native")


def _is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags of this machine (Linux ``/proc/cpuinfo``; empty where unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def missing_flags(level: str, flags: frozenset[str] | None = None) -> list[str]:
    """Flags ``level`` needs that the CPU (``flags``, default this one) lacks."""
    have = cpu_flags() if flags is None else flags
    return [f for f in LEVELS[level][1] if f not in have]


def resolve(isa: str) -> str:
    """A concrete level for ``isa``; ``ValueError`` for unknown names or levels this host cannot run
    (an artifact we could not even test here)."""
    if isa not in CHOICES:
        raise ValueError(f"unknown isa {isa!r}; choose one of {CHOICES}")
    if isa == "portable":
        return isa
    if not _is_x86_64():
        if isa == "native":
            return "portable"
        raise ValueError(f"isa={isa!r} needs an x86-64 CPU (this is {platform.machine()})")
    if isa == "native":
        for lvl in ("avx512", "avx2"):
            if not missing_flags(lvl):
                return lvl
        return "portable"
    miss = missing_flags(isa)
    if miss:
        raise ValueError(f"isa={isa!r}: this CPU lacks {', '.join(miss)}; use isa='portable' or 'native'")
    return isa


def cflags(level: str) -> list[str]:
    """Extra compiler flags of the generated units for ``level``."""
    march = LEVELS[level][0]
    return [f"-march={march}", "-mtune=generic"] if march else []


def manifest_entry(level: str) -> dict[str, object]:
    return {"level": level, "march": LEVELS[level][0] or None, "cpu_flags": list(LEVELS[level][1])}


def check_cpu(entry: object, where: str, flags: frozenset[str] | None = None) -> str | None:
    """Why this CPU cannot run an artifact whose manifest ``isa`` entry is ``entry`` (None: it can)."""
    if entry is None:
        return None  # artifacts from before host-ISA builds are portable
    if not isinstance(entry, dict) or entry.get("level") not in LEVELS:
        return f"{where}: unknown instruction-set level {entry!r} in the manifest"
    level = str(entry["level"])
    if level == "portable":
        return None
    if not _is_x86_64() and flags is None:
        return f"{where}: built for {level} (x86-64), this machine is {platform.machine()}"
    need = [str(f) for f in entry.get("cpu_flags") or LEVELS[level][1]]
    have = cpu_flags() if flags is None else flags
    miss = [f for f in need if f not in have]
    if miss:
        return (
            f"{where}: built for {level} ({LEVELS[level][0]}), but this CPU lacks {', '.join(miss)}; "
            "rebuild it with isa='portable' (runs on any CPU) or isa='native'"
        )
    return None
