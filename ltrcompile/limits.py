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


def _size(source_bytes: int | None) -> str:
    return "an in-memory" if source_bytes is None else f"a {source_bytes}-byte"


def max_features(source_bytes: int | None) -> int:
    """The largest input width a model read from ``source_bytes`` bytes may declare or imply
    (``None``: an in-memory source, no file size to scale with: only the int32 bound)."""
    if source_bytes is None:
        return INT32_MAX
    return min(INT32_MAX, FEATURE_FLOOR + FEATURES_PER_BYTE * max(0, int(source_bytes)))


def max_category(source_bytes: int | None) -> int:
    """The largest categorical value (bitset bit) a model of ``source_bytes`` bytes may use."""
    if source_bytes is None:
        return INT32_MAX
    return min(INT32_MAX, CATEGORY_FLOOR + CATEGORIES_PER_BYTE * max(0, int(source_bytes)))


def check_features(
    n: int, source_bytes: int | None, *, path: str | None = None, field: str = "n_features", what: str = "input width"
) -> int:
    """``n`` if it is within :func:`max_features`, else a :class:`ModelFormatError` naming ``field``."""
    cap = max_features(source_bytes)
    if n > cap:
        raise ModelFormatError(
            f"{what} {n} exceeds the limit {cap} for {_size(source_bytes)} model "
            f"({FEATURE_FLOOR} + {FEATURES_PER_BYTE} per byte)",
            path=path,
            field=field,
        )
    return n


def check_category(
    value: int, source_bytes: int | None, *, path: str | None = None, tree: int | None = None,
    node: int | None = None, field: str = "categories",
) -> int:
    """``value`` if it is a category within :func:`max_category`, else a :class:`ModelFormatError`."""
    cap = max_category(source_bytes)
    if value > cap:
        raise ModelFormatError(
            f"category {value} exceeds the limit {cap} for {_size(source_bytes)} model",
            path=path, tree=tree, node=node, field=field,
        )
    return value


# ---------------------------------------------------------------------------- trees, nodes, bitsets
#: trees any model may have regardless of file size; a tree takes at least one byte in every format
TREE_FLOOR = 1 << 16
TREES_PER_BYTE = 1
#: nodes (all trees together) any model may have regardless of file size; a node takes at least a
#: byte in every format (UBJSON int8 arrays are the densest), so a real model is never refused
NODE_FLOOR = 1 << 22
NODES_PER_BYTE = 1


def _scaled(floor: int, per_byte: int, source_bytes: int | None) -> int:
    if source_bytes is None:  # an in-memory source: no file size to scale with
        return INT32_MAX
    return min(INT32_MAX, floor + per_byte * max(0, int(source_bytes)))


def max_trees(source_bytes: int | None) -> int:
    """The most trees a model read from ``source_bytes`` bytes may declare or hold."""
    return _scaled(TREE_FLOOR, TREES_PER_BYTE, source_bytes)


def max_nodes(source_bytes: int | None) -> int:
    """The most nodes (one tree's, or all trees' together) a ``source_bytes``-byte model may have."""
    return _scaled(NODE_FLOOR, NODES_PER_BYTE, source_bytes)


def max_bitset_words(source_bytes: int | None) -> int:
    """The most 32-bit category bitset words a ``source_bytes``-byte model may declare."""
    if source_bytes is None:
        return INT32_MAX // 32 + 1
    return max_category(source_bytes) // 32 + 1


def _refuse(what: str, n: int, cap: int, source_bytes: int | None, **where: object) -> ModelFormatError:
    return ModelFormatError(f"{what} {n} exceeds the limit {cap} for {_size(source_bytes)} model", **where)  # type: ignore[arg-type]


def check_trees(
    n: int, source_bytes: int | None, *, path: str | None = None, field: str = "trees", what: str = "tree count"
) -> int:
    """``n`` if a model of ``source_bytes`` bytes may have that many trees, else a typed error."""
    cap = max_trees(source_bytes)
    if n > cap:
        raise _refuse(what, n, cap, source_bytes, path=path, field=field)
    return n


def check_nodes(
    n: int, source_bytes: int | None, *, path: str | None = None, tree: int | None = None,
    field: str = "nodes", what: str = "node count",
) -> int:
    """``n`` if a model of ``source_bytes`` bytes may have that many nodes, else a typed error."""
    cap = max_nodes(source_bytes)
    if n > cap:
        raise _refuse(what, n, cap, source_bytes, path=path, tree=tree, field=field)
    return n


def check_bitset_words(
    n: int, source_bytes: int | None, *, path: str | None = None, tree: int | None = None,
    node: int | None = None, field: str = "cat_threshold",
) -> int:
    """``n`` if a model of ``source_bytes`` bytes may declare that many bitset words, else a typed error."""
    cap = max_bitset_words(source_bytes)
    if n > cap:
        raise _refuse("bitset word count", n, cap, source_bytes, path=path, tree=tree, node=node, field=field)
    return n


def check_ensemble(ens: object, source_bytes: int, *, path: str | None = None) -> None:
    """Every size limit on a loaded :class:`~ltrcompile.ir.Ensemble`: input width, trees, nodes and
    category codes. :func:`ltrcompile.frontends.load_model` calls it for every format, after the
    frontend's own checks of declared sizes (made before anything is allocated from them)."""
    import numpy as np

    check_features(ens.n_features, source_bytes, path=path)  # type: ignore[attr-defined]
    check_trees(ens.n_trees, source_bytes, path=path)  # type: ignore[attr-defined]
    check_nodes(int(ens.left.size), source_bytes, path=path, what="node count (all trees)")  # type: ignore[attr-defined]
    cats = ens.categories  # type: ignore[attr-defined]
    if cats.size:
        k = int(np.argmax(cats))
        if int(cats[k]) > max_category(source_bytes):
            node = np.flatnonzero((ens.cat_begin <= k) & (ens.cat_end > k) & (ens.categorical != 0))  # type: ignore[attr-defined]
            g = int(node[0]) if node.size else None
            tree = None if g is None else int(np.searchsorted(ens.tree_offset, g, side="right") - 1)  # type: ignore[attr-defined]
            local = None if g is None or tree is None else g - int(ens.tree_offset[tree])  # type: ignore[attr-defined]
            check_category(int(cats[k]), source_bytes, path=path, tree=tree, node=local)
