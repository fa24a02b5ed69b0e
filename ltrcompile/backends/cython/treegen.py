"""Straight-line C for trees: one function per tree, one block function per group of trees.

A tree becomes a flat sequence of ``if (!cond) goto nR;`` statements in depth-first order (the left
child falls through), so arbitrarily deep trees never nest braces. A tree function returns the
tree-local index of the leaf it reaches. A block function walks its rows and, for each row, calls
its trees in model order, stores the leaf indices and adds the leaf contributions to the row's
accumulators -- the same code serves ``predict`` and ``predict_leaf``. Every decision is read from
the :class:`~.lowering.LoweredModel`; this module only formats it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .literals import c_double, c_float_array, c_int_array, c_literal
from .lowering import LoweredModel

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


def partition(lm: LoweredModel, block_nodes: int, max_block_trees: int, unit_nodes: int) -> list[Unit]:
    """Group consecutive trees into blocks (about ``block_nodes`` internal nodes each) and blocks
    into translation units (about ``unit_nodes`` each)."""
    blocks: list[Block] = []
    t = 0
    T = lm.n_trees
    while t < T:
        t0 = t
        nodes = 0
        while t < T and (t == t0 or (nodes + lm.internal_count[t] <= block_nodes and t - t0 < max_block_trees)):
            nodes += int(lm.internal_count[t])
            t += 1
        blocks.append(Block(len(blocks), t0, t))
    units: list[Unit] = []
    cur: list[Block] = []
    nodes = 0
    for b in blocks:
        bn = int(lm.internal_count[b.t0 : b.t1].sum())
        if cur and nodes + bn > unit_nodes:
            units.append(Unit(len(units), cur))
            cur, nodes = [], 0
        cur.append(b)
        nodes += bn
    if cur:
        units.append(Unit(len(units), cur))
    return units


# ---------------------------------------------------------------------- conditions
def _value(lm: LoweredModel, n: int) -> str:
    x = f"x[{int(lm.feature[n])}]"
    return f"ltrc_bandv({x}, band)" if lm.band_node[n] else x


def _cat_condition(lm: LoweredModel, n: int, set_name: str, sets: list[str]) -> str:
    """Categorical nodes read the row's code column ``c[j]`` (see :func:`code_statements`)."""
    S = lm.sets
    s = int(lm.set_id[n])
    code = f"c[{int(lm.code_slot[n])}]"
    if S.sorted[s]:
        codes = S.sorted_codes(s)
        sets.append(f"static const int32_t {set_name}[{codes.size}] = {{{c_int_array(codes)}}};")
        inexpr = f"ltrc_cin_sorted({code}, {set_name}, {codes.size})"
    elif int(S.n[s]) <= 64:  # the bitset as a 64-bit literal
        words = [int(w) for w in S.bitset(s).tolist()] + [0]
        inexpr = f"ltrc_cin_u64({code}, {words[0] | (words[1] << 32)}ull, {int(S.n[s])})"
    else:
        words = S.bitset(s)
        sets.append(f"static const uint32_t {set_name}[{words.size}] = {{{c_int_array(words)}}};")
        inexpr = f"ltrc_cin_bits({code}, {set_name}, {int(S.n[s])})"
    res = inexpr if lm.cat_left[n] else f"!{inexpr}"
    if lm.nan_default[n]:
        return f"({code} == LTRC_CODE_NAN ? {int(lm.default_left[n])} : {res})"
    return res


def code_statements(lm: LoweredModel, slots: list[int], x: str = "x", c: str = "c") -> list[str]:
    """C statements filling the code columns ``slots`` of one row (``c[j]``) from its values."""
    out = []
    for j in slots:
        v = f"{x}[{int(lm.code_feature[j])}]"
        if lm.code_band[j]:
            v = f"ltrc_bandv({v}, band)"
        out.append(f"{c}[{j}] = ltrc_catcode((double){v});")
    return out


def condition(lm: LoweredModel, n: int, set_name: str, sets: list[str]) -> str:
    """C expression that is true when the row goes LEFT at internal node ``n``."""
    if lm.categorical[n]:
        return _cat_condition(lm, n, set_name, sets)
    V = _value(lm, n)
    t = c_literal(float(lm.thr[n]), lm.value_type)
    le = bool(lm.op_le[n])
    if lm.nan_left[n]:
        cmp = f"!({V} {'>' if le else '>='} {t})"
    else:
        cmp = f"({V} {'<=' if le else '<'} {t})"
    if lm.zero_default[n]:
        z = f"(LTRC_FABS({V}) > {c_literal(lm.zero_k, lm.value_type)})"
        return f"(!{z} || {cmp})" if lm.default_left[n] else f"({z} && {cmp})"
    return cmp


# ---------------------------------------------------------------------- trees
def tree_reads_codes(lm: LoweredModel, t: int) -> bool:
    return bool(lm.categorical[int(lm.tree_offset[t]) : int(lm.tree_offset[t + 1])].any())


def _block_codes(lm: LoweredModel, b: Block) -> list[int]:
    """The code columns the trees of block ``b`` read."""
    lo, hi = int(lm.tree_offset[b.t0]), int(lm.tree_offset[b.t1])
    cs = lm.code_slot[lo:hi]
    return sorted(set(cs[cs >= 0].tolist()))


def tree_function(lm: LoweredModel, t: int) -> tuple[str, list[str]]:
    """C text of ``ltrc_tree_<t>`` and the static category sets it uses."""
    lo = int(lm.tree_offset[t])
    inline = "LTRC_ALWAYS" if lm.internal_count[t] <= INLINE_LIMIT else "LTRC_NOINLINE"
    band_arg = ", int band" if lm.band > 0 else ""
    code_arg = ", const int32_t* LTRC_RESTRICT c" if tree_reads_codes(lm, t) else ""
    lines = [f"{inline} int32_t ltrc_tree_{t}(const ltrc_v* LTRC_RESTRICT x{band_arg}{code_arg}) {{"]
    if lm.band > 0:
        lines.append("    (void)band;")
    sets: list[str] = []
    left, right = lm.left, lm.right
    leaf_local = lm.leaf_local
    hi = int(lm.tree_offset[t + 1])
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
        cond = condition(lm, n, f"ltrc_s{n}", sets)
        lines.append(f"    {label}if (!({cond})) goto n{R - lo};")
        stack.append(R)
        stack.append(L)
    lines.append("}")
    return "\n".join(lines), sets


# ---------------------------------------------------------------------- blocks
def block_function(lm: LoweredModel, b: Block, lv_off: dict[int, int]) -> str:
    """C text of ``ltrc_blk_<b>``: rows outer, its trees in order inner."""
    D = lm.leaf_dim
    trees = range(b.t0, b.t1)
    slots: list[int] = sorted({int(lm.tree_slot[t]) + c for t in trees for c in range(D)})
    band = ", band" if lm.band > 0 else ""
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
    codes = _block_codes(lm, b)
    if codes:  # categorical features: values -> codes once per row, not at every node
        out.append(f"        int32_t c[{max(codes) + 1}];")
        out.extend(f"        {st}" for st in code_statements(lm, codes))
    out.append("        int32_t k;")
    for j, t in enumerate(trees):
        s = int(lm.tree_slot[t])
        off = lv_off[t]
        carg = ", c" if tree_reads_codes(lm, t) else ""
        out.append(f"        k = ltrc_tree_{t}(x{band}{carg}); l[{j}] = k;")
        first = 0
        if lm.tree_linear[t]:
            w = float(lm.tree_weight[t])
            g = int(lm.leaf_base[t])
            out.append(
                f"        {{ double v = ltrc_linleaf(x, {g} + k, band); LTRC_LINACC(a{s}, v, {c_double(w)}); }}"
            )
            first = 1
        for c in range(first, D):
            idx = f"ltrc_lv[{off * D + c} + k]" if D == 1 else f"ltrc_lv[{off * D + c} + k * {D}]"
            out.append(f"        LTRC_ACCUM(a{s + c}, {idx});")
    for s in slots:
        out.append(f"        ar[{s}] = a{s};")
    out.append("    }")
    out.append("}")
    return "\n".join(out)


def unit_source(lm: LoweredModel, u: Unit, header: str) -> Iterator[str]:
    """Yield the pieces of one translation unit's C text."""
    yield header
    yield '#include "ltrc_model.h"\n'
    # leaf contributions of this unit's trees, weight applied, in accumulation precision
    lo = int(lm.leaf_base[u.t0])
    hi = int(lm.leaf_base[u.t1])
    lv_off = {t: int(lm.leaf_base[t]) - lo for t in range(u.t0, u.t1)}
    vals = lm.leaf_values[lo:hi]
    yield (
        f"static const ltrc_lvt ltrc_lv[{max(1, vals.size)}] = {{\n"
        f"{c_float_array(vals, lm.leaf_type) if vals.size else '0'}\n}};\n"
    )
    for b in u.blocks:
        for t in range(b.t0, b.t1):
            fn, sets = tree_function(lm, t)
            if sets:
                yield "\n".join(sets) + "\n"
            yield fn + "\n"
        yield block_function(lm, b, lv_off) + "\n"
