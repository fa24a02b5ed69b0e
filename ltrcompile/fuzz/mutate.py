"""Mutators: byte-level, number-token and JSON-structure edits of a valid seed file.

Every mutation is a pure function of ``(random.Random, seed bytes)``, so a case is reproduced from
its target, seed index and case number alone. The numbers swapped in are the ones that broke
parsers before: overflowing exponents, int32/int64 edges, huge digit strings, NaN spellings.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

INTERESTING_NUMBERS = (
    "0", "-0", "1", "-1", "2", "7", "255", "65536", "2147483647", "2147483648", "-2147483648",
    "-2147483649", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
    "18446744073709551616", "1e308", "1.8e308", "-1e308", "1E999999999", "-1E999999999", "1e-400",
    "1E-999999999", "3.4028236E38", "3.4028235677973366E38", "1.4E-45", "5e-324", "NaN", "nan",
    "Infinity", "-Infinity", "inf", "0x10", "1.5e", "1e", ".", "-", "1.0.0", "9" * 5000,
    "1" + "0" * 400, "0." + "0" * 400 + "1", "1000000000", "100000000", "16777217", "",
)
INTERESTING_JSON: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, 0.5, "", "x",
    "NaN", [], {}, [None], [[]], {"": None}, [0] * 64, "9" * 300, -0.0,
)
_NUMBER = re.compile(rb"-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(rb"[A-Za-z_][A-Za-z_0-9:.+]*")


def _byte_flip(rng: random.Random, b: bytes) -> bytes:
    if not b:
        return b
    a = bytearray(b)
    i = rng.randrange(len(a))
    a[i] ^= 1 << rng.randrange(8)
    return bytes(a)


def _byte_set(rng: random.Random, b: bytes) -> bytes:
    if not b:
        return b
    a = bytearray(b)
    a[rng.randrange(len(a))] = rng.choice((0, 0xFF, 0x7F, 0x80, ord("{"), ord("["), ord("<"), ord('"'), ord("\n"), rng.randrange(256)))
    return bytes(a)


def _insert(rng: random.Random, b: bytes) -> bytes:
    i = rng.randrange(len(b) + 1)
    junk = rng.choice((b"\x00", b"\n", b"[", b"{", b"<split>", b"=", b" ", b",", b'"', b"\xff\xfe", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))))
    return b[:i] + junk + b[i:]


def _delete(rng: random.Random, b: bytes) -> bytes:
    if len(b) < 2:
        return b
    i = rng.randrange(len(b))
    j = min(len(b), i + rng.choice((1, 1, 2, 4, 16, 64, 256)))
    return b[:i] + b[j:]


def _duplicate(rng: random.Random, b: bytes) -> bytes:
    if len(b) < 2:
        return b
    i = rng.randrange(len(b))
    j = min(len(b), i + rng.choice((1, 8, 64, 512)))
    k = rng.randrange(len(b) + 1)
    return b[:k] + b[i:j] * rng.choice((1, 2, 16)) + b[k:]


def _truncate(rng: random.Random, b: bytes) -> bytes:
    return b[: rng.randrange(len(b) + 1)]


def _number(rng: random.Random, b: bytes) -> bytes:
    spans = [m.span() for m in _NUMBER.finditer(b)]
    if not spans:
        return _insert(rng, b)
    i, j = rng.choice(spans)
    return b[:i] + rng.choice(INTERESTING_NUMBERS).encode() + b[j:]


def _word(rng: random.Random, b: bytes) -> bytes:
    words = [m.span() for m in _WORD.finditer(b)]
    if len(words) < 2:
        return _number(rng, b)
    i, j = rng.choice(words)
    k, m = rng.choice(words)
    return b[:i] + b[k:m] + b[j:]


def _json_paths(doc: Any, limit: int = 4000) -> list[tuple[Any, Any]]:
    """(container, key) for every value in ``doc`` (breadth first, capped)."""
    out: list[tuple[Any, Any]] = []
    todo = [doc]
    while todo and len(out) < limit:
        node = todo.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append((node, k))
            if isinstance(v, dict | list):
                todo.append(v)
    return out


def _json_edit(rng: random.Random, b: bytes) -> bytes:
    try:
        doc = json.loads(b)
    except (ValueError, RecursionError):
        return _number(rng, b)
    paths = _json_paths(doc)
    if not paths:
        return _number(rng, b)
    for _ in range(rng.choice((1, 1, 2, 3))):
        node, key = rng.choice(paths)
        op = rng.randrange(6)
        try:
            if op == 0 and isinstance(node, dict):
                del node[key]
            elif op == 1 and isinstance(node, list) and node:
                node.insert(rng.randrange(len(node) + 1), node[key])
            elif op == 2 and isinstance(node, list) and node:
                del node[key]
            elif op == 3:
                v = node[key]
                node[key] = [v] if rng.random() < 0.5 else {"x": v}
            else:
                node[key] = rng.choice(INTERESTING_JSON)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        return json.dumps(doc).encode()
    except (ValueError, RecursionError):
        return b


MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": _byte_flip,
    "set": _byte_set,
    "insert": _insert,
    "delete": _delete,
    "duplicate": _duplicate,
    "truncate": _truncate,
    "number": _number,
    "word": _word,
    "json": _json_edit,
}
_TEXT_WEIGHTS = {"flip": 1, "set": 1, "insert": 1, "delete": 2, "duplicate": 1, "truncate": 1, "number": 5, "word": 2, "json": 0}
_JSON_WEIGHTS = {**_TEXT_WEIGHTS, "json": 5}
_BINARY_WEIGHTS = {"flip": 4, "set": 4, "insert": 2, "delete": 2, "duplicate": 2, "truncate": 1, "number": 1, "word": 0, "json": 0}
WEIGHTS = {"text": _TEXT_WEIGHTS, "json": _JSON_WEIGHTS, "binary": _BINARY_WEIGHTS}


def mutate(rng: random.Random, seed: bytes, kind: str) -> tuple[bytes, list[str]]:
    """1-3 stacked mutations of ``seed`` chosen by the ``kind`` (text/json/binary) weights."""
    weights = WEIGHTS[kind]
    names = [n for n, w in weights.items() if w]
    data = seed
    used = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name = rng.choices(names, [weights[n] for n in names])[0]
        data = MUTATORS[name](rng, data)
        used.append(name)
    return data, used
