"""A small UBJSON decoder for XGBoost's ``.ubj`` model files (no third-party dependency).

XGBoost writes big-endian UBJSON (``src/common/json.cc`` ``UBJWriter``): objects ``{`` key value ...
``}`` with keys written as a length (``L`` int64) plus UTF-8 bytes, strings ``S`` + length + bytes,
integers ``i U I l L``, ``d`` float32 / ``D`` float64 numbers, ``T F Z``, arrays ``[#L<n>`` + n values
and typed arrays ``[$<t>#L<n>`` + n raw big-endian elements. Typed arrays decode to numpy arrays
(native byte order) so large models stay fast; everything else decodes to Python values. Any
truncation or unknown marker raises :class:`UBJSONError` with the byte offset.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

_SCALARS: dict[int, tuple[str, int]] = {
    ord("i"): (">b", 1),
    ord("U"): (">B", 1),
    ord("I"): (">h", 2),
    ord("l"): (">i", 4),
    ord("L"): (">q", 8),
    ord("d"): (">f", 4),
    ord("D"): (">d", 8),
}
_TYPED: dict[int, str] = {
    ord("i"): ">i1",
    ord("U"): ">u1",
    ord("I"): ">i2",
    ord("l"): ">i4",
    ord("L"): ">i8",
    ord("d"): ">f4",
    ord("D"): ">f8",
}
_INT_MARKERS = b"iUIlL"
MAX_DEPTH = 256


class UBJSONError(ValueError):
    """The bytes are not valid (XGBoost-style) UBJSON; the message names the byte offset."""


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.buf = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        self.pos = 0
        self.n = len(self.buf)

    def fail(self, msg: str) -> UBJSONError:
        return UBJSONError(f"UBJSON byte {self.pos}: {msg}")

    def take(self, k: int) -> memoryview:
        if k < 0 or self.pos + k > self.n:
            raise self.fail(f"truncated: need {k} more bytes, {self.n - self.pos} left")
        out = self.buf[self.pos : self.pos + k]
        self.pos += k
        return out

    def marker(self) -> int:
        c = self.peek("a type marker")
        self.pos += 1
        return c

    def peek(self, expected: str = "a value or a closing bracket") -> int:
        """The next marker, not consumed; 'N' (UBJSON's no-op) is skipped wherever one is expected."""
        while True:
            if self.pos >= self.n:
                raise self.fail(f"truncated: expected {expected}")
            c = self.buf[self.pos]
            if c != ord("N"):
                return c
            self.pos += 1

    def scalar(self, m: int) -> Any:
        fmt, size = _SCALARS[m]
        return struct.unpack(fmt, self.take(size))[0]

    def length(self) -> int:
        m = self.marker()
        if m not in _INT_MARKERS:
            raise self.fail(f"expected an integer length marker, got {chr(m)!r}")
        k = int(self.scalar(m))
        if k < 0:
            raise self.fail(f"negative length {k}")
        return k

    def string(self) -> str:
        k = self.length()
        raw = bytes(self.take(k))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string is not valid UTF-8: {exc}") from exc

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")
        m = self.marker()
        if m == ord("{"):
            return self.obj(depth + 1)
        if m == ord("["):
            return self.array(depth + 1)
        if m in _SCALARS:
            return self.scalar(m)
        if m == ord("S"):
            return self.string()
        if m == ord("T"):
            return True
        if m == ord("F"):
            return False
        if m == ord("Z"):
            return None
        if m == ord("C"):
            return int(self.scalar(ord("i")))
        if m == ord("H"):
            text = self.string()
            try:
                return float(text)
            except ValueError as exc:
                raise self.fail(f"bad high-precision number {text!r}") from exc
        self.pos -= 1
        raise self.fail(f"unknown type marker {chr(m)!r}")

    def obj(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.peek() == ord("#"):  # count-optimised object (not written by XGBoost)
            self.pos += 1
            for _ in range(self.length()):
                key = self.string()
                out[key] = self.value(depth)
            return out
        while self.peek() != ord("}"):
            key = self.string()
            out[key] = self.value(depth)
        self.pos += 1
        return out

    def array(self, depth: int) -> Any:
        c = self.peek()
        if c == ord("$"):
            self.pos += 1
            t = self.marker()
            if t not in _TYPED:
                raise self.fail(f"typed array of unsupported element type {chr(t)!r}")
            if self.marker() != ord("#"):
                raise self.fail("typed array without a '#' count")
            count = self.length()
            dt = np.dtype(_TYPED[t])
            raw = self.take(count * dt.itemsize)
            return np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="))
        if c == ord("#"):
            self.pos += 1
            count = self.length()
            if count > self.n - self.pos:  # every element takes at least one byte
                raise self.fail(f"array count {count} exceeds the remaining bytes")
            return [self.value(depth) for _ in range(count)]
        items = []
        while self.peek() != ord("]"):
            items.append(self.value(depth))
        self.pos += 1
        return items


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Decode one UBJSON value; trailing bytes other than no-ops are an error."""
    r = _Reader(data)
    out = r.value(0)
    while r.pos < r.n and r.buf[r.pos] == ord("N"):
        r.pos += 1
    if r.pos != r.n:
        raise r.fail(f"{r.n - r.pos} unexpected trailing bytes")
    return out
