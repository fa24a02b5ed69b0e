"""The C toolchain: which compiler, which flags, and whether it has OpenMP.

Flags keep IEEE semantics: ``-O2`` without ``-ffast-math``, and ``-ffp-contract=off`` so the compiler
never fuses ``a + b * c`` into one FMA (that would change results in the last bit). The baseline ISA
is kept (no ``-march=native``) so an artifact runs on any CPU of its platform.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import LtrCompileError


class CompilerNotFoundError(LtrCompileError, RuntimeError):
    """No working C compiler: the Cython backend cannot build anything."""


NO_COMPILER_HELP = (
    "no C compiler found (looked for $CC, Python's configured CC, cc, gcc and clang on PATH). "
    "The Cython backend compiles models to native code and needs one: "
    "Debian/Ubuntu: apt-get install build-essential (or gcc); Fedora/RHEL: dnf install gcc; "
    "Alpine: apk add build-base; macOS: xcode-select --install"
)

BASE_CFLAGS = (
    "-O2",
    "-fPIC",
    "-fvisibility=hidden",
    "-fno-strict-aliasing",
    "-ffp-contract=off",
    "-fno-fast-math",
    "-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION",
)

#: -fno-tree-slp-vectorize: gcc 12.2's straight-line (SLP) vectorizer drops float roundings: in
#: ``a0 = (float)((double)a0 + c0); a1 = ...`` chains (float32_fused accumulation of two outputs)
#: and in ``o[k] = (double)(float)r[k]`` over two outputs (to_float32), at -O2 and -O3, so scores
#: came out up to 3 float ulps off. Found by the property test; reproduced in 10 lines of C. The
#: loop vectorizer computes the same patterns correctly and is kept (SLP off costs ~3 % on XGBoost
#: rankers, turning off all vectorization ~10 %).
#: gcc's predictive commoning spends half the compile time on tree code and gains nothing there.
OPTIONAL_CFLAGS = ("-fno-tree-slp-vectorize", "-fno-predictive-commoning", "-fno-semantic-interposition")


@dataclass(frozen=True)
class Toolchain:
    cc: tuple[str, ...]  # compiler command (may carry flags such as -pthread)
    version: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    openmp: bool
    incbin: bool = False  # the assembler takes .incbin (large tables as binary files)
    include_dirs: tuple[str, ...] = field(default_factory=tuple)
    ext_suffix: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "cc": list(self.cc),
            "version": self.version,
            "cflags": list(self.cflags),
            "ldflags": list(self.ldflags),
            "openmp": self.openmp,
            "incbin": self.incbin,
        }


def _candidates() -> list[list[str]]:
    out: list[list[str]] = []
    if os.environ.get("CC"):
        out.append(shlex.split(os.environ["CC"]))
    cfg = sysconfig.get_config_var("CC")
    if cfg:
        out.append(shlex.split(cfg))
    out += [["cc"], ["gcc"], ["clang"]]
    return out


def find_compiler() -> list[str]:
    """The compiler command a build uses; :class:`CompilerNotFoundError` when there is none."""
    for cand in _candidates():
        if cand and shutil.which(cand[0]):
            return [shutil.which(cand[0]) or cand[0], *cand[1:]]
    raise CompilerNotFoundError(NO_COMPILER_HELP)


def _version(cc: list[str]) -> str:
    try:
        r = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _probe(cc: list[str], flags: list[str], source: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="ltrc-probe-") as d:
        c = Path(d) / "probe.c"
        c.write_text(source)
        try:
            r = subprocess.run(
                [*cc, *flags, "-shared", "-fPIC", str(c), "-o", str(Path(d) / "probe.so")],
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return r.returncode == 0


_OMP_SRC = """
#include <omp.h>
int ltrc_probe(int n) { int s = 0;
#pragma omp parallel for reduction(+:s) num_threads(2)
for (int i = 0; i < n; i++) s += i;
return s + omp_get_max_threads(); }
"""


_INCBIN_SRC = r"""
__asm__(".section .rodata\n.balign 64\nltrc_probe_data:\n.incbin \"probe.bin\"\n.previous\n");
extern const int ltrc_probe_data[] __attribute__((visibility("hidden")));
int ltrc_probe(void) { return ltrc_probe_data[0]; }
"""


def _probe_incbin(cc: list[str]) -> bool:
    """Does ``.incbin`` work (ELF/GNU assembler syntax), with paths relative to the build dir?"""
    if sys.platform.startswith(("win", "darwin", "cygwin")):
        return False
    with tempfile.TemporaryDirectory(prefix="ltrc-probe-") as d:
        (Path(d) / "probe.c").write_text(_INCBIN_SRC)
        (Path(d) / "probe.bin").write_bytes(b"\x01\x00\x00\x00")
        try:
            r = subprocess.run(
                [*cc, "-O2", "-fPIC", "-shared", "probe.c", "-o", "probe.so"], cwd=d, capture_output=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return r.returncode == 0


@functools.lru_cache(maxsize=1)
def toolchain() -> Toolchain:
    """Detect once per process (compiler, version, OpenMP support)."""
    cc = find_compiler()
    if not _probe(cc, [], "int ltrc_probe(void) { return 0; }\n"):
        raise CompilerNotFoundError(
            f"the C compiler {' '.join(cc)} cannot build a shared library; " + NO_COMPILER_HELP
        )
    openmp = os.environ.get("LTRCOMPILE_NO_OPENMP", "") == "" and _probe(cc, ["-fopenmp"], _OMP_SRC)
    cflags = list(BASE_CFLAGS)
    # optional flags: only where the compiler knows them (clang lacks predictive commoning)
    for flag in OPTIONAL_CFLAGS:
        if _probe(cc, ["-Werror", flag], "int ltrc_probe(void) { return 0; }\n"):
            cflags.append(flag)
    ldflags = ["-shared"]
    if sys.platform == "darwin":
        ldflags = ["-bundle", "-undefined", "dynamic_lookup"]
    # opt-in extras (e.g. -march=native for a machine-local cache); part of the content address
    extra = shlex.split(os.environ.get("LTRCOMPILE_CFLAGS", ""))
    for flag in extra:
        if flag.startswith(("-ffast-math", "-Ofast", "-ffp-contract=fast", "-funsafe-math", "-fassociative")):
            raise ValueError(f"LTRCOMPILE_CFLAGS: {flag} would break bit-exact scores; refusing it")
    cflags += extra
    if openmp:
        cflags.append("-fopenmp")
        ldflags.append("-fopenmp")
    ldflags.append("-lm")
    import numpy as np

    inc = (sysconfig.get_paths()["include"], np.get_include())
    return Toolchain(
        cc=tuple(cc),
        version=_version(cc),
        cflags=tuple(cflags),
        ldflags=tuple(ldflags),
        openmp=openmp,
        incbin=_probe_incbin(cc),
        include_dirs=inc,
        ext_suffix=sysconfig.get_config_var("EXT_SUFFIX") or ".so",
    )
