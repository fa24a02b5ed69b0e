"""Straight-line C for trees: one function per tree, one block function per group of trees.

A tree becomes a flat sequence of ``if (!cond) goto nR;`` statements in depth-first order (the left
child falls through), so arbitrarily deep trees never nest braces. A tree function returns the
tree-local index of the leaf it reaches. A block function walks its rows and, for each row, calls
its trees in model order, stores the leaf indices and adds the leaf contributions to the row's
accumulators -- the same code serves ``predict`` and ``predict_leaf``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .literals import c_double, c_float_array, c_int_array, c_literal
from .nodetable import RULE_SUFFIX
from .plan import BITSET_LIMIT, NodeDecision, Plan

#: trees with more internal nodes than this are not force-inlined into their block
INLINE_LIMIT = 512


@dataclass
class Block:
    index: int
    t0: int
    t1: int  # trees [t0, t1)


@dataclass
class Unit:
    index: int
    blocks: list[Block]

    @property
    def t0(self) -> int:
        return self.blocks[0].t0

    @property
    def t1(self) -> int:
        return self.blocks[-1].t1


def partition(plan: Plan, block_nodes: int, max_block_trees: int, unit_nodes: int) -> list[Unit]:
    """Group consecutive trees into blocks (about ``block_nodes`` internal nodes each) and blocks
    into translation units (about ``unit_nodes`` each)."""
    blocks: list[Block] = []
    t = 0
    T = plan.n_trees
    while t < T:
        t0 = t
        nodes = 0
        while t < T and (t == t0 or (nodes + plan.internal_count[t] <= block_nodes and t - t0 < max_block_trees)):
            nodes += int(plan.internal_count[t])
            t += 1
        blocks.append(Block(len(blocks), t0, t))
    units: list[Unit] = []
    cur: list[Block] = []
    nodes = 0
    for b in blocks:
        bn = int(plan.internal_count[b.t0 : b.t1].sum())
        if cur and nodes + bn > unit_nodes:
            units.append(Unit(len(units), cur))
            cur, nodes = [], 0
        cur.append(b)
        nodes += bn
    if cur:
        units.append(Unit(len(units), cur))
    return units


# ---------------------------------------------------------------------- conditions
def _value(d: NodeDecision) -> str:
    x = f"x[{d.feature}]"
    return f"ltrc_bandv({x}, band)" if d.band else x


def _cat_condition(plan: Plan, d: NodeDecision, set_name: str, sets: list[str]) -> str:
    assert d.cat_set is not None
    codes = d.cat_set
    rule = RULE_SUFFIX[plan.ens.categorical_rule]
    V = _value(d)
    cv = f"(double){V}"
    if codes.size and int(codes[-1]) >= BITSET_LIMIT:
        sets.append(
            f"static const int32_t {set_name}[{codes.size}] = {{{c_int_array(codes)}}};"
        )
        inexpr = f"ltrc_in_sorted_{rule}({cv}, {set_name}, {codes.size})"
    else:
        nbits = (int(codes[-1]) + 1) if codes.size else 0
        nwords = max(1, (nbits + 31) // 32)
        words = np.zeros(nwords, np.uint64)
        for c in codes.tolist():
            words[c >> 5] |= np.uint64(1 << (c & 31))
        sets.append(
            f"static const uint32_t {set_name}[{nwords}] = {{{c_int_array(words)}}};"
        )
        inexpr = f"ltrc_in_bits_{rule}({cv}, {set_name}, {nbits})"
    res = inexpr if d.cat_left else f"!{inexpr}"
    if d.nan_default:
        return f"(({V}) != ({V}) ? {int(d.default_left)} : {res})"
    return res


def condition(plan: Plan, d: NodeDecision, set_name: str, sets: list[str]) -> str:
    """C expression that is true when the row goes LEFT."""
    if d.categorical:
        return _cat_condition(plan, d, set_name, sets)
    V = _value(d)
    t = c_literal(d.thr, plan.vtype)
    if d.nan_left:
        cmp = f"!({V} {'>' if d.op_le else '>='} {t})"
    else:
        cmp = f"({V} {'<=' if d.op_le else '<'} {t})"
    if d.zero_default:
        z = f"(LTRC_FABS({V}) > {c_literal(plan.zero_k, plan.vtype)})"
        return f"(!{z} || {cmp})" if d.default_left else f"({z} && {cmp})"
    return cmp


# ---------------------------------------------------------------------- trees
def tree_function(plan: Plan, t: int) -> tuple[str, list[str]]:
    """C text of ``ltrc_tree_<t>`` and the static category sets it uses."""
    e = plan.ens
    lo = int(e.tree_offset[t])
    inline = "LTRC_ALWAYS" if plan.internal_count[t] <= INLINE_LIMIT else "LTRC_NOINLINE"
    band_arg = ", int band" if plan.band > 0 else ""
    lines = [f"{inline} int32_t ltrc_tree_{t}(const ltrc_v* LTRC_RESTRICT x{band_arg}) {{"]
    if plan.band > 0:
        lines.append("    (void)band;")
    sets: list[str] = []
    left, right = e.left, e.right
    leaf_local = plan.leaf_local
    hi = int(e.tree_offset[t + 1])
    rs = right[lo:hi]
    targets = set(rs[rs >= 0].tolist())
    stack = [lo]
    while stack:
        n = stack.pop()
        label = f"n{n - lo}: " if n in targets else ""
        L = int(left[n])
        if L < 0:
            lines.append(f"    {label}return {int(leaf_local[n])};")
            continue
        R = int(right[n])
        cond = condition(plan, plan.decision(n), f"ltrc_s{n}", sets)
        lines.append(f"    {label}if (!({cond})) goto n{R - lo};")
        stack.append(R)
        stack.append(L)
    lines.append("}")
    return "\n".join(lines), sets


# ---------------------------------------------------------------------- blocks
def _acc_stmt(plan: Plan, var: str, expr: str) -> str:
    return f"LTRC_ACCUM({var}, {expr});"


def block_function(plan: Plan, b: Block, lv_off: dict[int, int]) -> str:
    """C text of ``ltrc_blk_<b>``: rows outer, its trees in order inner."""
    D = plan.D
    trees = range(b.t0, b.t1)
    slots: list[int] = sorted(
        {int(plan.tree_slot[t]) + c for t in trees for c in range(D)}
    )
    band = ", band" if plan.band > 0 else ""
    out = [
        f"void LTRC_HIDDEN ltrc_blk_{b.index}(const ltrc_v* LTRC_RESTRICT X, ptrdiff_t xs, int nr,",
        "        ltrc_acc* LTRC_RESTRICT acc, int32_t* LTRC_RESTRICT L, ptrdiff_t ldl, int band) {",
        "    (void)band;",
        "    for (int r = 0; r < nr; r++) {",
        "        const ltrc_v* LTRC_RESTRICT x = X + (ptrdiff_t)r * xs;",
        "        int32_t* LTRC_RESTRICT l = L + (ptrdiff_t)r * ldl;",
        "        ltrc_acc* LTRC_RESTRICT ar = acc + (ptrdiff_t)r * LTRC_NA;",
    ]
    for s in slots:
        out.append(f"        ltrc_acc a{s} = ar[{s}];")
    out.append("        int32_t k;")
    for j, t in enumerate(trees):
        s = int(plan.tree_slot[t])
        off = lv_off[t]
        out.append(f"        k = ltrc_tree_{t}(x{band}); l[{j}] = k;")
        first = 0
        if plan.tree_linear[t]:
            w = float(plan.ens.tree_weight[t])
            g = int(plan.leaf_base[t])
            out.append(
                f"        {{ double v = ltrc_linleaf(x, {g} + k, band); LTRC_LINACC(a{s}, v, {c_double(w)}); }}"
            )
            first = 1
        for c in range(first, D):
            idx = f"ltrc_lv[{off * D + c} + k]" if D == 1 else f"ltrc_lv[{off * D + c} + k * {D}]"
            out.append("        " + _acc_stmt(plan, f"a{s + c}", idx))
    for s in slots:
        out.append(f"        ar[{s}] = a{s};")
    out.append("    }")
    out.append("}")
    return "\n".join(out)


def unit_source(plan: Plan, u: Unit, header: str) -> Iterator[str]:
    """Yield the pieces of one translation unit's C text."""
    yield header
    yield '#include "ltrc_model.h"\n'
    # leaf contributions of this unit's trees, weight applied, in accumulation precision
    lo = int(plan.leaf_base[u.t0])
    hi = int(plan.leaf_base[u.t1])
    lv_off = {t: int(plan.leaf_base[t]) - lo for t in range(u.t0, u.t1)}
    vals = plan.LV[lo:hi]
    yield (
        f"static const ltrc_lvt ltrc_lv[{max(1, vals.size)}] = {{\n"
        f"{c_float_array(vals, plan.lv_type) if vals.size else '0'}\n}};\n"
    )
    for b in u.blocks:
        for t in range(b.t0, b.t1):
            fn, sets = tree_function(plan, t)
            if sets:
                yield "\n".join(sets) + "\n"
            yield fn + "\n"
        yield block_function(plan, b, lv_off) + "\n"
