"""C literals that round-trip exactly, and float32 threshold rounding.

Every number reaches generated C as a C99 hexadecimal float (``float.hex()``), so the compiler reads
back the exact bits; infinities become ``INFINITY`` and NaN ``NAN``. Model strings never reach
generated source: only numbers and identifiers we make up ourselves do.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def c_double(v: float) -> str:
    """Exact C ``double`` literal."""
    v = float(v)
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if v == 0.0:
        return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
    return v.hex()


def c_float(v: float) -> str:
    """Exact C ``float`` literal; ``v`` must already be a float32 value."""
    v32 = F32(v)
    if float(v32) != float(v) and not math.isnan(float(v)):
        raise ValueError(f"{v!r} is not representable as float32")
    v = float(v32)
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if v == 0.0:
        return "-0.0f" if math.copysign(1.0, v) < 0 else "0.0f"
    return v.hex() + "f"


def c_literal(v: float, ctype: str) -> str:
    return c_float(v) if ctype == "float" else c_double(v)


def round_down_f32(t: float) -> float:
    """Largest float32 ``<= t``: for float32 ``v``, ``double(v) <= t`` iff ``v <= round_down_f32(t)``."""
    if math.isnan(t):
        raise ValueError("NaN threshold")
    with np.errstate(over="ignore"):
        f = F32(t)
    if float(f) > t:
        f = np.nextafter(f, F32(-np.inf))
    return float(f)


def round_up_f32(t: float) -> float:
    """Smallest float32 ``>= t``: for float32 ``v``, ``double(v) < t`` iff ``v < round_up_f32(t)``."""
    if math.isnan(t):
        raise ValueError("NaN threshold")
    with np.errstate(over="ignore"):
        f = F32(t)
    if float(f) < t:
        f = np.nextafter(f, F32(np.inf))
    return float(f)


def c_int_array(values: np.ndarray | list[int], per_line: int = 24) -> str:
    """Comma-separated integers, wrapped (the body of a C array initializer)."""
    vals = [str(int(v)) for v in values]
    if not vals:
        return "0"
    return ",\n".join(",".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line))


def c_float_array(values: np.ndarray | list[float], ctype: str, per_line: int = 8) -> str:
    """Comma-separated exact float literals, wrapped."""
    conv = c_float if ctype == "float" else c_double
    vals = [conv(v) for v in np.asarray(values, np.float64).ravel().tolist()]
    if not vals:
        return "0"
    return ",\n".join(",".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line))
