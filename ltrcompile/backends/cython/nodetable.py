"""Node arrays for the data-driven strategy, built with numpy (no per-node Python work).

Each internal node becomes ``{threshold | set id, feature | flags << 24, {left, right}}`` where a
child is an internal-node index (``>= 0``) or ``~leaf`` (tree-local leaf index). Flags carry what the
straight-line strategy folds into its code: where NaN goes, ``<`` vs ``<=``, categorical sets,
LightGBM's zero default and the input band. The traversal kernel in ``ltrc_driver.c.j2`` is
specialised on which of these the model uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ...ir import LIGHTGBM_ZERO_BAND, Missing, Op
from .literals import Tables, c_double, c_float, c_int_array
from .plan import BITSET_LIMIT, Plan

F32 = np.float32

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


def _round_f32(t: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Vectorised round_down_f32 (where ``down``) / round_up_f32 (elsewhere)."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = t.astype(F32)
        back = f.astype(np.float64)
        too_big = down & (back > t)
        too_small = ~down & (back < t)
        f = np.where(too_big, np.nextafter(f, F32(-np.inf)), f)
        f = np.where(too_small, np.nextafter(f, F32(np.inf)), f)
    return f.astype(np.float64)


def used_features(plan: Plan) -> np.ndarray:
    """Sorted features any split, linear leaf or linear term reads (the scratch block's columns)."""
    e = plan.ens
    parts = [e.feature[e.left >= 0].astype(np.int64), e.linear_feature.astype(np.int64)]
    if plan.lin_leaf:
        parts.append(plan.lin_leaf["feature"].astype(np.int64))
    return np.unique(np.concatenate(parts))


def node_table(plan: Plan, fmap: np.ndarray, trees: np.ndarray | None = None) -> dict[str, Any]:
    """Template variables of the generic (per-row, branching) node table for the given trees.

    ``fmap`` maps a model feature to its column in the scratch block.
    """
    e = plan.ens
    if e.n_features >= (1 << 24):
        raise UnsupportedModelError(
            "the data-driven strategy supports at most 2**24 - 1 features", field="n_features"
        )
    mask = e.left >= 0
    if trees is not None:
        mask &= np.isin(e.tree_of_node(), np.asarray(trees, np.int64))
    internal = np.flatnonzero(mask)
    n_int = internal.size
    pos = np.full(e.n_nodes, -1, np.int64)
    pos[internal] = np.arange(n_int)

    def ref(child: np.ndarray) -> np.ndarray:
        c = child.astype(np.int64)
        is_leaf = e.left[c] < 0
        return np.where(is_leaf, ~plan.leaf_local[c], pos[c])

    lref = ref(e.left[internal]) if n_int else np.zeros(0, np.int64)
    rref = ref(e.right[internal]) if n_int else np.zeros(0, np.int64)
    roots = e.tree_offset[:-1].astype(np.int64)
    root_ref = np.where(e.left[roots] < 0, ~plan.leaf_local[roots], pos[roots]) if roots.size else roots

    thr = e.threshold[internal].astype(np.float64)
    le = e.op[internal] == Op.LE
    miss = e.missing[internal]
    dl = e.default_left[internal].astype(bool)
    cat = e.categorical[internal].astype(bool)
    with np.errstate(invalid="ignore"):
        zero_cmp = np.where(le, 0.0 <= thr, 0.0 < thr)
    nan_left = np.select(
        [
            (miss == Missing.NAN_DEFAULT) | (miss == Missing.ZERO_NAN_DEFAULT),
            miss == Missing.NAN_AS_ZERO,
        ],
        [dl, zero_cmp],
        default=False,
    )
    nan_left = np.where(cat, dl, nan_left)
    zero = (miss == Missing.ZERO_NAN_DEFAULT) & ~cat
    band = np.zeros(n_int, bool)
    if plan.band > 0:
        B = plan.band
        with np.errstate(invalid="ignore"):
            uniform = np.where(le, (thr >= B) | (thr < -B), (thr > B) | (thr <= -B))
        band = np.where(zero, B > LIGHTGBM_ZERO_BAND, ~uniform) & ~cat
        if e.categorical_rule in ("xgboost", "sklearn"):
            band |= cat
    flags = (
        np.where(nan_left, F_NANL, 0)
        | np.where(le, F_LE, 0)
        | np.where(cat, F_CAT, 0)
        | np.where(zero, F_ZERO, 0)
        | np.where(band, F_BAND, 0)
        | np.where(cat & (e.cat_left[internal] != 0), F_CATL, 0)
        | np.where(cat & (miss == Missing.NAN_DEFAULT), F_NANDEF, 0)
        | np.where(dl, F_DL, 0)
    ).astype(np.int64)
    fx = (fmap[e.feature[internal].astype(np.int64)] & 0xFFFFFF) | flags

    if plan.vtype == "float":
        thr_k = _round_f32(np.where(cat, 0.0, thr), le)
        lit = c_float
    else:
        thr_k = np.where(cat, 0.0, thr)
        lit = c_double

    # category sets
    set_id = np.zeros(n_int, np.int64)
    set_off: list[int] = []
    set_n: list[int] = []
    set_sorted: list[int] = []
    words: list[int] = []
    codes_out: list[int] = []
    for j in np.flatnonzero(cat).tolist():
        n = int(internal[j])
        codes = e.categories[int(e.cat_begin[n]) : int(e.cat_end[n])].astype(np.int64)
        set_id[j] = len(set_off)
        if codes.size and int(codes[-1]) >= BITSET_LIMIT:
            set_off.append(len(codes_out))
            set_n.append(int(codes.size))
            set_sorted.append(1)
            codes_out.extend(codes.tolist())
        else:
            nbits = int(codes[-1]) + 1 if codes.size else 0
            nw = max(1, (nbits + 31) // 32)
            w = np.zeros(nw, np.uint64)
            for c in codes.tolist():
                w[c >> 5] |= np.uint64(1 << (c & 31))
            set_off.append(len(words))
            set_n.append(nbits)
            set_sorted.append(0)
            words.extend(int(v) for v in w.tolist())

    parts = []
    thr_lits = [lit(v) for v in thr_k.tolist()]
    fx_l = fx.tolist()
    l_l = lref.tolist()
    r_l = rref.tolist()
    sid = set_id.tolist()
    catl = cat.tolist()
    for j in range(n_int):
        u = f"{{.set={sid[j]}}}" if catl[j] else f"{{{thr_lits[j]}}}"
        parts.append(f"{{{u},{fx_l[j]}u,{{{l_l[j]},{r_l[j]}}}}}")
    nodes_c = ",\n".join(",".join(parts[i : i + 4]) for i in range(0, len(parts), 4))

    internal_ops = e.op[internal]
    if n_int == 0 or np.all(internal_ops == Op.LE):
        dd_op = "le"
    elif np.all(internal_ops == Op.LT):
        dd_op = "lt"
    else:
        dd_op = "mixed"
    numeric = ~cat
    special = bool(np.any(cat | zero | band))
    if not n_int:
        root_ref = np.zeros_like(root_ref)
    return {
        "n_dd_nodes1": max(1, n_int),
        "dd_nodes": nodes_c if n_int else "{{0},0u,{0,0}}",
        "dd_root": c_int_array(root_ref),
        "dd_has_cat": bool(cat.any()),
        "dd_special": special,
        "dd_op": dd_op,
        "dd_nanl": bool(np.any(nan_left & numeric)),
        "cat_rule": RULE_SUFFIX[e.categorical_rule],
        "n_sets1": max(1, len(set_off)),
        "set_off": c_int_array(set_off),
        "set_n": c_int_array(set_n),
        "set_sorted": c_int_array(set_sorted),
        "n_words1": max(1, len(words)),
        "set_words": c_int_array(words),
        "n_codes1": max(1, len(codes_out)),
        "set_codes": c_int_array(codes_out),
    }


@dataclass
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


def _le_threshold(thr: np.ndarray, le: np.ndarray, vtype: str) -> np.ndarray:
    """Thresholds ``t'`` with ``left iff v <= t'`` for every non-NaN ``v`` of the kernel type.

    ``<=`` nodes keep ``t`` (float kernels: ``round_down_f32``); ``<`` nodes take the largest
    value below ``t`` (float kernels: below ``round_up_f32(t)``); ``< -inf`` becomes NaN (never).
    """
    if vtype == "float":
        up = _round_f32(thr, le).astype(F32)  # RD32 for <=, RU32 for <
        with np.errstate(invalid="ignore"):
            prev = np.nextafter(up, F32(-np.inf))
        out = np.where(le, up, prev).astype(np.float64)
        out[~le & (up == -np.inf)] = np.nan
        return out
    prev = np.nextafter(thr, -np.inf)
    out = np.where(le, thr, prev)
    out[~le & (thr == -np.inf)] = np.nan
    return out


def _fast_nodes(e: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(node can take the branch-free walk, NaN goes left, tree can) for every node/tree."""
    internal = e.left >= 0
    thr = e.threshold
    le = e.op == Op.LE
    miss = e.missing
    dl = e.default_left.astype(bool)
    cat = e.categorical.astype(bool)
    with np.errstate(invalid="ignore"):
        zero_cmp = np.where(le, 0.0 <= thr, 0.0 < thr)
        B = LIGHTGBM_ZERO_BAND
        uniform = np.where(le, (thr >= B) | (thr < -B), (thr > B) | (thr <= -B))
    zero = miss == Missing.ZERO_NAN_DEFAULT
    nan_left = np.select(
        [(miss == Missing.NAN_DEFAULT) | zero, miss == Missing.NAN_AS_ZERO], [dl, zero_cmp], default=False
    )
    # a zero-default node is plain when every |v| <= 1e-35 compares the default way anyway
    zero_plain = zero & uniform & (zero_cmp == dl)
    ok_node = ~internal | (~cat & (~zero | zero_plain))
    tree_ok = np.ones(e.n_trees, bool)
    tree_ok[np.unique(e.tree_of_node()[~ok_node])] = False
    return ok_node, nan_left, tree_ok


def fast_trees(e: Any) -> np.ndarray:
    """Which trees the branch-free walk can take (plain numerical nodes only)."""
    return _fast_nodes(e)[2]


def fast_layout(plan: Plan, fmap: np.ndarray, n_cols: int) -> FastLayout:
    """Branch-free layout (numpy arrays) for trees of plain numerical nodes.

    Per tree, nodes sit in breadth-first order with both children of a node adjacent, so a step is
    ``i = child + !(x[f] <= t')``. Leaves are records that point to themselves (``t' = +inf`` on a
    padding column that is always 0), so a walk may run any number of steps past its leaf; walks
    stop when every lane stands still. ``fx`` = feature | NaN-goes-left << 31.
    """
    e = plan.ens
    T = plan.n_trees
    internal = e.left >= 0
    thr = e.threshold
    le = e.op == Op.LE
    ok_node, nan_left, tree_ok = _fast_nodes(e)

    # breadth-first slots, children adjacent; all trees at once, level by level
    sizes = np.diff(e.tree_offset)
    seg = np.zeros(T + 1, np.int64)
    np.cumsum(np.where(tree_ok, sizes, 0), out=seg[1:])
    slot = np.full(e.n_nodes, -1, np.int64)  # global slot of each node of a fast tree
    fast_trees = np.flatnonzero(tree_ok)
    frontier = e.tree_offset[:-1][fast_trees].astype(np.int64)
    ftree = fast_trees.astype(np.int64)
    slot[frontier] = seg[ftree]
    next_free = seg[:-1] + 1
    depth = np.zeros(T, np.int64)
    level = 0
    while frontier.size:
        is_int = e.left[frontier] >= 0
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
        slot[e.left[fi]] = base
        slot[e.right[fi]] = base + 1
        np.add.at(next_free, ti[start], 2 * counts)
        frontier = np.empty(2 * fi.size, np.int64)
        frontier[0::2] = e.left[fi]
        frontier[1::2] = e.right[fi]
        ftree = np.repeat(ti, 2)
        level += 1

    n_slots = int(seg[-1])
    nodes_in = np.flatnonzero(slot >= 0)
    s = slot[nodes_in]
    f_thr = np.full(n_slots, np.inf)
    f_fx = np.full(n_slots, n_cols, np.int64)  # leaves read the padding column (0.0)
    f_child = np.arange(n_slots, dtype=np.int64)  # leaves point to themselves
    f_leaf = np.full(n_slots, -1, np.int64)
    isi = e.left[nodes_in] >= 0
    ni, si = nodes_in[isi], s[isi]
    f_thr[si] = _le_threshold(thr[ni], le[ni], plan.vtype)
    f_fx[si] = fmap[e.feature[ni].astype(np.int64)]
    f_child[si] = slot[e.left[ni]]
    nl, sl = nodes_in[~isi], s[~isi]
    f_leaf[sl] = plan.leaf_local[nl]
    if n_slots and f_child.max() >= (1 << 31):
        raise UnsupportedModelError("model too large for the data-driven kernel", field="nodes")

    nl_flags = np.zeros(n_slots, np.int64)
    nl_flags[si] = nan_left[ni]
    return FastLayout(
        thr=f_thr, feat=f_fx, child=f_child, leaf=f_leaf, nl=nl_flags, seg=seg, depth=depth,
        tree_ok=tree_ok, n_cols=n_cols,
        nanl=bool(np.any(nan_left & internal & ok_node)),
    )


def _pack(child: np.ndarray, feat: np.ndarray, n_cols: int) -> tuple[bool, np.ndarray]:
    """(4-byte packing?, child delta << 16 | feature, or child << 32 | feature)."""
    n = child.size
    delta = child - np.arange(n, dtype=np.int64)
    pack32 = bool(n_cols < 0xFFFF and (n == 0 or (delta.min() >= 0 and delta.max() < 0x10000)))
    return pack32, ((delta << 16) | feat if pack32 else (child << 32) | feat)


def direct_values(plan: Plan) -> bool:
    """Leaf records can carry the leaf's contribution in their threshold slot (same C type, one
    value per leaf): scoring then reads it from the cache line the walk just touched."""
    return plan.lv_type == plan.vtype and plan.D == 1 and not plan.tree_linear.any()


def fast_table(plan: Plan, L: FastLayout, tables: Tables, aos: bool = False) -> dict[str, Any]:
    """Template variables of the per-tree branch-free table."""
    T = plan.n_trees
    n_slots = L.thr.size
    direct = direct_values(plan)
    if direct and n_slots:
        # the padding column reads -inf, so a leaf record goes "left" (stays) whatever it holds
        thr = L.thr.copy()
        is_leaf = L.leaf >= 0
        slot_tree = np.searchsorted(L.seg, np.arange(n_slots), side="right") - 1
        thr[is_leaf] = plan.LV[plan.leaf_base[slot_tree[is_leaf]] + L.leaf[is_leaf], 0]
        L = FastLayout(**{**L.__dict__, "thr": thr})
    pack32, packed = _pack(L.child, L.feat, L.n_cols)
    root = np.where(L.tree_ok, L.seg[:-1], 0)
    tree_ok, depth, f_thr, f_leaf, nl_flags = L.tree_ok, L.depth, L.thr, L.leaf, L.nl
    # predict_one walks the fast trees sorted by depth (then the generic ones)
    fast_idx = np.flatnonzero(tree_ok)
    order = np.concatenate([fast_idx[np.argsort(depth[fast_idx], kind="stable")], np.flatnonzero(~tree_ok)])
    lit = c_float if plan.vtype == "float" else c_double
    aos_c = (
        ",\n".join(f"{{{lit(t)},{p}u}}" for t, p in zip(f_thr.tolist(), packed.tolist(), strict=True))
        if aos and n_slots
        else "{0,0u}"
    )
    return {
        "n_fast1": max(1, n_slots),
        "fast_aos": aos_c,
        "direct": direct,
        "one_order": c_int_array(order) if T else "0",
        "n_fast_trees": int(fast_idx.size),
        "fast_thr": tables.floats("ltrc_ft", f_thr, plan.vtype) if n_slots and not aos else "0",
        "pack32": pack32,
        "fast_pack": tables.ints("ltrc_fp", packed, "uint32_t" if pack32 else "uint64_t")
        if n_slots and not aos
        else "0",
        "fast_nl": tables.ints("ltrc_fnl", nl_flags, "unsigned char") if n_slots and L.nanl else "0",
        "fast_leaf": tables.ints("ltrc_fleaf", f_leaf) if n_slots else "0",
        "fast_root": c_int_array(root) if T else "0",
        "fast_ok": c_int_array(tree_ok.astype(np.int64)) if T else "0",
        "fast_dmax": c_int_array(np.where(tree_ok, depth, 0)) if T else "0",
        "fast_any": bool(tree_ok.any()),
        "fast_all": bool(tree_ok.all()),
        "fast_nanl": L.nanl,
        "generic_trees": int((~tree_ok).sum()),
        "_tree_ok": tree_ok,
    }

