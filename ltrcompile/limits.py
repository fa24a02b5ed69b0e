"""Size limits that scale with the size of the model file: a tiny file cannot declare a huge model.

A model's declared or implied sizes (input width, categories, bitset words) decide how much memory
later stages allocate (``inspect`` and ``verify`` build rows of ``n_features`` values, a bitset of
``2**31`` categories is 256 MiB). Each limit is a fixed floor, generous for every real model, plus a
multiple of the source's size in bytes, so a model that is big for real (and so comes in a big
file) still loads. One function per limit; every frontend calls these instead of its own constant.
"""

from __future__ import annotations

from .errors import ModelFormatError

#: input columns any model may use regardless of file size (2**24: hashed feature spaces)
FEATURE_FLOOR = 1 << 24
#: extra input columns allowed per byte of the model file
FEATURES_PER_BYTE = 8
#: largest category value any model may use regardless of file size (bitsets of 2 MiB)
CATEGORY_FLOOR = 1 << 24
CATEGORIES_PER_BYTE = 8
#: the IR stores feature indices and category values as int32
INT32_MAX = 2**31 - 1


def max_features(source_bytes: int) -> int:
    """The largest input width a model read from ``source_bytes`` bytes may declare or imply."""
    return min(INT32_MAX, FEATURE_FLOOR + FEATURES_PER_BYTE * max(0, int(source_bytes)))


def max_category(source_bytes: int) -> int:
    """The largest categorical value (bitset bit) a model of ``source_bytes`` bytes may use."""
    return min(INT32_MAX, CATEGORY_FLOOR + CATEGORIES_PER_BYTE * max(0, int(source_bytes)))


def check_features(
    n: int, source_bytes: int, *, path: str | None = None, field: str = "n_features", what: str = "input width"
) -> int:
    """``n`` if it is within :func:`max_features`, else a :class:`ModelFormatError` naming ``field``."""
    cap = max_features(source_bytes)
    if n > cap:
        raise ModelFormatError(
            f"{what} {n} exceeds the limit {cap} for a {source_bytes}-byte model "
            f"({FEATURE_FLOOR} + {FEATURES_PER_BYTE} per byte)",
            path=path,
            field=field,
        )
    return n


def check_category(
    value: int, source_bytes: int, *, path: str | None = None, tree: int | None = None,
    node: int | None = None, field: str = "categories",
) -> int:
    """``value`` if it is a category within :func:`max_category`, else a :class:`ModelFormatError`."""
    cap = max_category(source_bytes)
    if value > cap:
        raise ModelFormatError(
            f"category {value} exceeds the limit {cap} for a {source_bytes}-byte model",
            path=path, tree=tree, node=node, field=field,
        )
    return value
