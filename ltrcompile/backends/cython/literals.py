"""C literals that round-trip exactly (float32 rounding itself is decided in :mod:`.lowering`).

Every number reaches generated C as a C99 hexadecimal float (``float.hex()``), so the compiler reads
back the exact bits; infinities become ``INFINITY`` and NaN ``NAN``. Model strings never reach
generated source: only numbers and identifiers we make up ourselves do.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def _c_number(v: float, suffix: str) -> str:
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if v == 0.0:
        return ("-0.0" if math.copysign(1.0, v) < 0 else "0.0") + suffix
    return v.hex() + suffix


def c_double(v: float) -> str:
    """Exact C ``double`` literal."""
    return _c_number(float(v), "")


def c_float(v: float) -> str:
    """Exact C ``float`` literal; ``v`` must already be a float32 value."""
    v32 = float(F32(v))
    if v32 != float(v) and not math.isnan(float(v)):
        raise ValueError(f"{v!r} is not representable as float32")
    return _c_number(v32, "f")


def c_literal(v: float, ctype: str) -> str:
    return c_float(v) if ctype == "float" else c_double(v)


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


_NP_TYPES = {
    "float": np.float32,
    "double": np.float64,
    "int32_t": np.int32,
    "int16_t": np.int16,
    "uint32_t": np.uint32,
    "uint64_t": np.uint64,
    "unsigned char": np.uint8,
}


class Tables:
    """Renders static tables as C text, or -- large ones on toolchains with ``.incbin`` -- as raw
    binary files the assembler pulls in (no parsing: a 5,000-tree model compiles in seconds).

    ``names`` lists the tables that became binary (the template emits ``LTRC_INCBIN`` for them);
    ``binaries`` maps file name -> bytes (native byte order: artifacts are platform-bound).
    """

    def __init__(self, incbin: bool, min_elements: int = 16384) -> None:
        self.incbin = incbin
        self.min_elements = min_elements
        self.names: set[str] = set()
        self.binaries: dict[str, bytes] = {}

    def ints(self, name: str, values: np.ndarray, ctype: str = "int32_t") -> str:
        if self._binary(name, values, ctype):
            return ""
        return c_int_array(values) if len(values) else "0"

    def floats(self, name: str, values: np.ndarray, ctype: str) -> str:
        if self._binary(name, values, ctype):
            return ""
        return c_float_array(values, ctype) if len(values) else "0"

    def _binary(self, name: str, values: np.ndarray, ctype: str) -> bool:
        arr = np.asarray(values)
        if not self.incbin or arr.size < self.min_elements:
            return False
        if ctype in ("float", "double"):
            data = arr.astype(_NP_TYPES[ctype])
            if not np.array_equal(data.astype(np.float64), arr.astype(np.float64), equal_nan=True):
                raise ValueError(f"table {name}: values are not exact {ctype}s")
        else:
            data = arr.astype(np.int64)
            info = np.iinfo(_NP_TYPES[ctype])
            if data.size and (data.min() < info.min or data.max() > info.max):
                raise ValueError(f"table {name}: values outside {ctype}")
            data = data.astype(_NP_TYPES[ctype])
        self.names.add(name)
        self.binaries[name + ".bin"] = np.ascontiguousarray(data).tobytes()
        return True
