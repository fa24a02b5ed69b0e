"""The C library's math functions over numpy arrays of any shape.

Uses the compiled ``ltrcompile._libm`` module when it is built (``pip install`` builds it); otherwise
falls back to calling libm through ctypes one element at a time (slow, but the same bits).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import numpy as np

try:  # pragma: no cover - which branch runs depends on the install
    from . import _libm as _compiled
except ImportError:  # pragma: no cover
    _compiled = None


def _ctypes_fn(name: str, ctype: type) -> Callable[[np.ndarray], np.ndarray]:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    fn = getattr(lib, name)
    fn.restype = ctype
    fn.argtypes = [ctype]
    dtype = np.float32 if ctype is ctypes.c_float else np.float64

    def run(x: np.ndarray) -> np.ndarray:
        return np.fromiter((fn(float(v)) for v in x), dtype=dtype, count=x.size)

    return run


def _wrap(name: str, dtype: type) -> Callable[[np.ndarray], np.ndarray]:
    ctype = ctypes.c_float if dtype is np.float32 else ctypes.c_double
    kernel = getattr(_compiled, "v" + name) if _compiled is not None else _ctypes_fn(name, ctype)

    def f(x: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(x, dtype=dtype)
        return kernel(a.reshape(-1)).reshape(a.shape)

    f.__name__ = name
    f.__doc__ = f"libm ``{name}`` element-wise ({np.dtype(dtype).name})."
    return f


exp = _wrap("exp", np.float64)
log = _wrap("log", np.float64)
log1p = _wrap("log1p", np.float64)
expf = _wrap("expf", np.float32)
logf = _wrap("logf", np.float32)

COMPILED = _compiled is not None
