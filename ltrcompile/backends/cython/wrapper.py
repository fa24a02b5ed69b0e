"""The model-independent Cython wrapper, compiled once per toolchain and Python ABI.

Cythonizing and compiling the wrapper costs about as much CPU as a medium model's trees, and its
text does not depend on the model: every model links the same object file and gets its own module
name from a two-line generated ``PyInit_ltrc_<hash>``. The object is cached under
``<cache>/wrapper/<key>/``, keyed by the wrapper's text, Cython, numpy, the compiler, its flags and
the Python ABI; concurrent builds race harmlessly (atomic rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from .artifact import cache_root
from .toolchain import Toolchain

PYX = "ltrc_wrapper.pyx"
C = "ltrc_wrapper.c"
OBJ = "ltrc_wrapper.o"
API_H = "ltrc_api.h"

_lock = threading.Lock()


def wrapper_sources() -> dict[str, str]:
    """Rendered wrapper pyx and API header (the same for every model)."""
    from .codegen import CODEGEN_VERSION, _env

    env = _env()
    return {
        PYX: env.get_template("ltrc_wrapper.pyx.j2").render(codegen_version=CODEGEN_VERSION),
        API_H: env.get_template("ltrc_api.h.j2").render(codegen_version=CODEGEN_VERSION),
    }


def wrapper_key(tc: Toolchain, sources: dict[str, str]) -> str:
    import Cython
    import numpy

    blob = json.dumps(
        {
            "sources": sources,
            "cython": Cython.__version__,
            "numpy": numpy.__version__,
            "toolchain": tc.to_dict(),
            "include": list(tc.include_dirs),
            "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
            "python": sys.version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def ensure_wrapper(tc: Toolchain, run: object, log: object) -> Path:
    """Directory holding the compiled wrapper object (built now if not cached).

    ``run(cmd, cwd, log, what)`` executes one build command (see :mod:`.build`).
    """
    sources = wrapper_sources()
    key = wrapper_key(tc, sources)
    final = cache_root() / "wrapper" / key
    if (final / OBJ).is_file():
        return final
    with _lock:
        if (final / OBJ).is_file():
            return final
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
            persistent = True
        except OSError:  # read-only cache: build privately, don't cache
            tmp = Path(tempfile.mkdtemp(prefix="ltrc-wrapper-"))
            persistent = False
        try:
            for name, text in sources.items():
                (tmp / name).write_text(text, encoding="utf-8")
            run([sys.executable, "-m", "cython", "-3", "--fast-fail", PYX, "-o", C], tmp, log, "cython wrapper")  # type: ignore[operator]
            inc = [f"-I{tmp}", *(f"-I{d}" for d in tc.include_dirs)]
            run([*tc.cc, *tc.cflags, *inc, "-c", C, "-o", OBJ], tmp, log, "cc wrapper")  # type: ignore[operator]
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not persistent:
            return tmp
        try:
            os.replace(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (final / OBJ).is_file():
                raise
        return final
