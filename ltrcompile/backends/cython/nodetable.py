"""Node arrays for the data-driven strategy, formatted from the lowered model with numpy.

Each internal node of the generic table becomes ``{threshold | set id, feature | flags << 24, {left,
right}}`` where a child is an internal-node index (``>= 0``) or ``~leaf`` (tree-local leaf index).
Flags carry what the straight-line strategy folds into its code: where NaN goes, ``<`` vs ``<=``,
categorical sets, LightGBM's zero default and the input band; a categorical node's feature field
names the row's category-code column (converted once per row), not the feature. Trees of plain
numerical nodes go to
the branch-free table instead. Every decision comes from :class:`~.lowering.LoweredModel`; this
module only lays it out. The traversal kernel in ``ltrc_driver.c.j2`` is specialised on which flags
the model uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...errors import UnsupportedModelError
from .contexts import FastTableCtx, NodeTableCtx
from .literals import Tables, c_double, c_float, c_int_array
from .lowering import LoweredModel

#: categorical rule -> suffix of the C helpers (ltrc_code_xgb, ...)
RULE_SUFFIX = {"xgboost": "xgb", "lightgbm": "lgb", "sklearn": "skl"}

F_NANL = 1 << 24
F_LE = 1 << 25
F_CAT = 1 << 26
F_ZERO = 1 << 27
F_BAND = 1 << 28
F_CATL = 1 << 29
F_NANDEF = 1 << 30
F_DL = 1 << 31


def node_table(
    lm: LoweredModel, fmap: np.ndarray, trees: np.ndarray | None = None, code_col0: int = 0
) -> NodeTableCtx:
    """The generic (per-row, branching) node table for the given trees.

    ``fmap`` maps a model feature to its column in the scratch block; categorical nodes read the
    row's category-code column ``code_col0 + code_slot`` instead.
    """
    if lm.n_features + 1 + lm.n_codes >= (1 << 24):
        raise UnsupportedModelError(
            "the data-driven strategy supports at most 2**24 - 1 features", field="n_features"
        )
    mask = lm.internal.copy()
    if trees is not None:
        mask &= np.isin(lm.tree_of_node, np.asarray(trees, np.int64))
    internal = np.flatnonzero(mask)
    n_int = internal.size
    pos = np.full(lm.n_nodes, -1, np.int64)
    pos[internal] = np.arange(n_int)

    def ref(child: np.ndarray) -> np.ndarray:
        return np.where(lm.left[child] < 0, ~lm.leaf_local[child], pos[child])

    lref = ref(lm.left[internal])
    rref = ref(lm.right[internal])
    roots = lm.tree_offset[:-1]
    root_ref = ref(roots) if roots.size and n_int else np.zeros(roots.size, np.int64)

    cat = lm.categorical[internal]
    flags = (
        np.where(lm.nan_left[internal], F_NANL, 0)
        | np.where(lm.op_le[internal], F_LE, 0)
        | np.where(cat, F_CAT, 0)
        | np.where(lm.zero_default[internal], F_ZERO, 0)
        | np.where(lm.band_node[internal], F_BAND, 0)
        | np.where(lm.cat_left[internal], F_CATL, 0)
        | np.where(lm.nan_default[internal], F_NANDEF, 0)
        | np.where(lm.default_left[internal], F_DL, 0)
    ).astype(np.int64)
    col = np.where(cat, code_col0 + lm.code_slot[internal], fmap[lm.feature[internal]])
    fx = (col & 0xFFFFFF) | flags
    lit = c_float if lm.value_type == "float" else c_double
    thr_lits = [lit(v) for v in lm.thr[internal].tolist()]
    parts = []
    for sid, iscat, t, f, lr, rr in zip(
        lm.set_id[internal].tolist(), cat.tolist(), thr_lits, fx.tolist(), lref.tolist(), rref.tolist(), strict=True
    ):
        u = f"{{.set={sid}}}" if iscat else f"{{{t}}}"
        parts.append(f"{{{u},{f}u,{{{lr},{rr}}}}}")
    nodes_c = ",\n".join(",".join(parts[i : i + 4]) for i in range(0, len(parts), 4))
    S = lm.sets
    return NodeTableCtx(
        n_dd_nodes1=max(1, n_int),
        dd_nodes=nodes_c if n_int else "{{0},0u,{0,0}}",
        dd_root=c_int_array(root_ref),
        dd_has_cat=bool(cat.any()),
        n_sets1=max(1, S.count),
        set_off=c_int_array(S.off),
        set_n=c_int_array(S.n),
        set_sorted=c_int_array(S.sorted.astype(np.int64)),
        n_words1=max(1, S.words.size),
        set_words=c_int_array(S.words),
        n_codes1=max(1, S.codes.size),
        set_codes=c_int_array(S.codes),
    )


@dataclass(frozen=True)
class FastLayout:
    """Per-slot arrays of the branch-free table (see :func:`fast_layout`)."""

    thr: np.ndarray  # left iff x <= thr (kernel type values)
    feat: np.ndarray  # scratch column (leaves: the padding column)
    child: np.ndarray  # left child slot (leaves: themselves)
    leaf: np.ndarray  # tree-local leaf index, -1 on internal slots
    nl: np.ndarray  # NaN goes left
    seg: np.ndarray  # (n_trees + 1,) first slot of each tree (fast trees only)
    depth: np.ndarray  # (n_trees,) max depth
    tree_ok: np.ndarray  # (n_trees,) tree is in the table
    n_cols: int
    nanl: bool  # any node sends NaN left


def fast_layout(lm: LoweredModel, fmap: np.ndarray, n_cols: int) -> FastLayout:
    """Branch-free layout (numpy arrays) for the trees the lowering marks ``fast_tree``.

    Per tree, nodes sit in breadth-first order with both children of a node adjacent, so a step is
    ``i = child + !(x[f] <= le_thr)``. Leaves are records that point to themselves (``t' = +inf`` on
    a padding column that is always 0), so a walk may run any number of steps past its leaf; walks
    stop when every lane stands still.
    """
    T = lm.n_trees
    tree_ok = lm.fast_tree
    left, right = lm.left, lm.right
    # breadth-first slots, children adjacent; all trees at once, level by level
    sizes = np.diff(lm.tree_offset)
    seg = np.zeros(T + 1, np.int64)
    np.cumsum(np.where(tree_ok, sizes, 0), out=seg[1:])
    slot = np.full(lm.n_nodes, -1, np.int64)  # global slot of each node of a fast tree
    ok_trees = np.flatnonzero(tree_ok)
    frontier = lm.tree_offset[:-1][ok_trees]
    ftree = ok_trees.astype(np.int64)
    slot[frontier] = seg[ftree]
    next_free = seg[:-1] + 1
    depth = np.zeros(T, np.int64)
    level = 0
    while frontier.size:
        is_int = left[frontier] >= 0
        fi = frontier[is_int]
        ti = ftree[is_int]
        if fi.size == 0:
            break
        depth[ti] = level + 1
        # rank of each internal node among its tree's internal nodes at this level
        start = np.r_[0, np.flatnonzero(np.diff(ti)) + 1]
        counts = np.diff(np.r_[start, ti.size])
        rank = np.arange(ti.size) - np.repeat(start, counts)
        base = next_free[ti] + 2 * rank
        slot[left[fi]] = base
        slot[right[fi]] = base + 1
        np.add.at(next_free, ti[start], 2 * counts)
        frontier = np.empty(2 * fi.size, np.int64)
        frontier[0::2] = left[fi]
        frontier[1::2] = right[fi]
        ftree = np.repeat(ti, 2)
        level += 1

    n_slots = int(seg[-1])
    nodes_in = np.flatnonzero(slot >= 0)
    s = slot[nodes_in]
    f_thr = np.full(n_slots, np.inf)
    f_fx = np.full(n_slots, n_cols, np.int64)  # leaves read the padding column (0.0)
    f_child = np.arange(n_slots, dtype=np.int64)  # leaves point to themselves
    f_leaf = np.full(n_slots, -1, np.int64)
    isi = left[nodes_in] >= 0
    ni, si = nodes_in[isi], s[isi]
    f_thr[si] = lm.le_thr[ni]
    f_fx[si] = fmap[lm.feature[ni]]
    f_child[si] = slot[left[ni]]
    f_leaf[s[~isi]] = lm.leaf_local[nodes_in[~isi]]
    if n_slots and f_child.max() >= (1 << 31):
        raise UnsupportedModelError("model too large for the data-driven kernel", field="nodes")
    nl_flags = np.zeros(n_slots, np.int64)
    nl_flags[si] = lm.nan_left[ni]
    return FastLayout(
        thr=f_thr, feat=f_fx, child=f_child, leaf=f_leaf, nl=nl_flags, seg=seg, depth=depth,
        tree_ok=tree_ok, n_cols=n_cols, nanl=bool(nl_flags.any()),
    )


def _pack(child: np.ndarray, feat: np.ndarray, n_cols: int) -> tuple[bool, np.ndarray]:
    """(4-byte packing?, child delta << 16 | feature, or child << 32 | feature)."""
    n = child.size
    delta = child - np.arange(n, dtype=np.int64)
    pack32 = bool(n_cols < 0xFFFF and (n == 0 or (delta.min() >= 0 and delta.max() < 0x10000)))
    return pack32, ((delta << 16) | feat if pack32 else (child << 32) | feat)


def direct_values(lm: LoweredModel) -> bool:
    """Leaf records can carry the leaf's contribution in their threshold slot (same C type, one
    value per leaf): scoring then reads it from the cache line the walk just touched."""
    return lm.leaf_type == lm.value_type and lm.leaf_dim == 1 and not lm.tree_linear.any()


def fast_table(lm: LoweredModel, L: FastLayout, tables: Tables, aos: bool = False) -> FastTableCtx:
    """The per-tree branch-free table."""
    T = lm.n_trees
    n_slots = L.thr.size
    direct = direct_values(lm)
    if direct and n_slots:
        # the padding column reads -inf, so a leaf record goes "left" (stays) whatever it holds
        thr = L.thr.copy()
        is_leaf = L.leaf >= 0
        slot_tree = np.searchsorted(L.seg, np.arange(n_slots), side="right") - 1
        thr[is_leaf] = lm.leaf_values[lm.leaf_base[slot_tree[is_leaf]] + L.leaf[is_leaf], 0]
        L = replace(L, thr=thr)
    pack32, packed = _pack(L.child, L.feat, L.n_cols)
    root = np.where(L.tree_ok, L.seg[:-1], 0)
    tree_ok, depth = L.tree_ok, L.depth
    # predict_one walks the fast trees sorted by depth (then the generic ones)
    fast_idx = np.flatnonzero(tree_ok)
    order = np.concatenate([fast_idx[np.argsort(depth[fast_idx], kind="stable")], np.flatnonzero(~tree_ok)])
    lit = c_float if lm.value_type == "float" else c_double
    aos_c = (
        ",\n".join(f"{{{lit(t)},{p}u}}" for t, p in zip(L.thr.tolist(), packed.tolist(), strict=True))
        if aos and n_slots
        else "{0,0u}"
    )
    return FastTableCtx(
        n_fast1=max(1, n_slots),
        fast_aos=aos_c,
        direct=direct,
        one_order=c_int_array(order) if T else "0",
        n_fast_trees=int(fast_idx.size),
        fast_thr=tables.floats("ltrc_ft", L.thr, lm.value_type) if n_slots and not aos else "0",
        pack32=pack32,
        fast_pack=tables.ints("ltrc_fp", packed, "uint32_t" if pack32 else "uint64_t")
        if n_slots and not aos
        else "0",
        fast_nl=tables.ints("ltrc_fnl", L.nl, "unsigned char") if n_slots and L.nanl else "0",
        fast_leaf=tables.ints("ltrc_fleaf", L.leaf) if n_slots else "0",
        fast_root=c_int_array(root) if T else "0",
        fast_ok=c_int_array(tree_ok.astype(np.int64)) if T else "0",
        fast_dmax=c_int_array(np.where(tree_ok, depth, 0)) if T else "0",
        fast_all=bool(tree_ok.all()),
        fast_nanl=L.nanl,
    )
