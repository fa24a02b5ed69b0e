"""The lowering stage: IR ``Ensemble`` -> :class:`LoweredModel`, computed once with numpy.

This is the only place where the kernel semantics of a node are decided; every emitter (straight-line
trees, node tables, the branch-free walk) and the numpy evaluator (:mod:`.lowered_eval`) only format
or execute what is recorded here:

* the kernel value type: ``float`` when the IR compares in float32, else ``double``;
* per node, where NaN goes, folded into one comparison (default direction; ``0 OP t`` for
  NAN_AS_ZERO; right for NAN_FALSE), so ``!(v > t)`` / ``v <= t`` (and the ``<`` forms) decide it;
* per node, the threshold in the kernel type: float32 kernels compare float32 values against
  ``round_down_f32(t)`` (``<=``) or ``round_up_f32(t)`` (``<``), which is exactly ``double(v) OP t``;
  and the branch-free walk's ``<=``-only threshold (``left iff v <= le_thr``);
* per node, whether the input zero band can change the decision (only there is it applied) and
  LightGBM's zero-default rule (``|v| <= 1e-35f`` goes the default way);
* category sets as bitsets (largest code below :data:`BITSET_LIMIT`) or sorted code arrays;
* category codes: each (feature, banded?) pair that categorical nodes read gets one code column,
  converted once per row (``ltrc_catcode``: the code, or -1 invalid, or -2 NaN) before any tree;
* leaf tables with tree weights applied in the accumulation precision, accumulator slots, base scores;
* which nodes and trees the branch-free walk can take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ...ir import LIGHTGBM_ZERO_BAND, Ensemble, Missing, Op
from ...transforms import TRANSFORMS

F32 = np.float32

#: categorical sets whose largest code is below this become bitsets; larger ones sorted arrays
BITSET_LIMIT = 1 << 16

#: accumulation mode -> (accumulator C type, leaf table C type)
_ACC_TYPES = {
    "float64": ("double", "double"),
    "float64_kahan": ("ltrc_kahan", "double"),
    "float32": ("float", "float"),
    "float32_fused": ("float", "double"),
}


def round_f32(t: np.ndarray | float, down: np.ndarray | bool) -> np.ndarray:
    """Largest float32 ``<= t`` where ``down`` (``round_down_f32``), smallest float32 ``>= t``
    elsewhere (``round_up_f32``), as float64. For a float32 ``v``: ``double(v) <= t`` iff
    ``v <= round_down_f32(t)`` and ``double(v) < t`` iff ``v < round_up_f32(t)``."""
    t = np.asarray(t, np.float64)
    down = np.broadcast_to(np.asarray(down, bool), t.shape)
    if np.isnan(t).any():
        raise ValueError("NaN threshold")
    with np.errstate(over="ignore", invalid="ignore"):
        f = t.astype(F32)
        back = f.astype(np.float64)
        f = np.where(down & (back > t), np.nextafter(f, F32(-np.inf)), f)
        f = np.where(~down & (back < t), np.nextafter(f, F32(np.inf)), f)
    return f.astype(np.float64)


def to_f32(v: np.ndarray | float) -> np.ndarray:
    """Round to nearest float32 (how the sources store float32 weights and leaves), as float64."""
    with np.errstate(over="ignore"):
        return np.asarray(v, np.float64).astype(F32).astype(np.float64)


@dataclass(frozen=True)
class CategorySets:
    """Category sets, one per categorical internal node (``LoweredModel.set_id``).

    Set ``s`` is a bitset of ``n[s]`` bits in ``words[off[s]:]`` (uint32 words) when ``not
    sorted[s]``, else ``n[s]`` sorted codes in ``codes[off[s]:]``.
    """

    off: np.ndarray
    n: np.ndarray
    sorted: np.ndarray  # bool
    words: np.ndarray  # uint32 values (int64)
    codes: np.ndarray  # int64

    @property
    def count(self) -> int:
        return int(self.off.size)

    def bitset(self, s: int) -> np.ndarray:
        """The uint32 words of bitset ``s`` (at least one)."""
        o, nb = int(self.off[s]), int(self.n[s])
        return self.words[o : o + max(1, (nb + 31) // 32)]

    def sorted_codes(self, s: int) -> np.ndarray:
        o = int(self.off[s])
        return self.codes[o : o + int(self.n[s])]


@dataclass(frozen=True)
class LinearLeaves:
    """LightGBM linear leaves, per global leaf (``begin < 0``: a plain leaf)."""

    begin: np.ndarray
    end: np.ndarray
    const: np.ndarray
    feature: np.ndarray  # per term
    coeff: np.ndarray  # per term


@dataclass(frozen=True)
class LoweredModel:
    """Everything the emitters need, decided once (see the module docstring)."""

    # ---- model
    value_type: str  # "float" | "double": element type the trees compare
    acc_mode: str  # IR accumulation mode
    acc_type: str  # accumulator C type ("ltrc_kahan": compensated double sum)
    leaf_type: str  # leaf table C type
    n_trees: int
    n_features: int
    n_outputs: int  # raw outputs (K)
    leaf_dim: int  # values per leaf (D)
    n_bags: int
    n_slots: int  # accumulators per row: n_bags * n_outputs
    out_dim: int  # transformed output width
    categorical_rule: str
    infinite_as_missing: bool
    int_input_cast_f32: bool
    band: float  # input zero band (0: none)
    band_k: float  # the band in the kernel type (|v| <= band_k reads as 0)
    zero_k: float  # LightGBM's 1e-35 in the kernel type
    # ---- structure (global node indices, trees in preorder)
    tree_offset: np.ndarray  # (n_trees + 1,)
    left: np.ndarray  # (n_nodes,) -1 on leaves
    right: np.ndarray
    tree_of_node: np.ndarray
    internal_count: np.ndarray  # (n_trees,)
    depth: np.ndarray  # (n_trees,) max depth
    # ---- nodes (values on leaves are meaningless)
    feature: np.ndarray  # int64
    categorical: np.ndarray  # bool
    op_le: np.ndarray  # bool: <= (else <)
    thr: np.ndarray  # threshold in the kernel type (0 on categorical nodes)
    le_thr: np.ndarray  # left iff v <= le_thr for non-NaN v of the kernel type (NaN: never)
    nan_left: np.ndarray  # numerical: NaN goes left; categorical: default_left
    zero_default: np.ndarray  # numerical ZERO_NAN_DEFAULT: |v| <= zero_k goes the default way
    default_left: np.ndarray
    band_node: np.ndarray  # apply the input zero band before deciding
    cat_left: np.ndarray  # categorical: in-set goes left
    nan_default: np.ndarray  # categorical: NaN goes the default way
    set_id: np.ndarray  # categorical: index into ``sets`` (-1 elsewhere)
    code_slot: np.ndarray  # categorical: the code column the node reads (-1 elsewhere)
    code_feature: np.ndarray  # (n_codes,) feature each code column is converted from
    code_band: np.ndarray  # (n_codes,) bool: converted from the banded value
    sets: CategorySets
    fast_node: np.ndarray  # the branch-free walk can take the node (plain numerical)
    fast_tree: np.ndarray  # (n_trees,) every node of the tree can
    # ---- leaves and accumulation
    leaf_base: np.ndarray  # (n_trees + 1,) global leaf offset of each tree
    leaf_local: np.ndarray  # (n_nodes,) tree-local leaf index, -1 on internal nodes
    leaf_values: np.ndarray  # (n_leaves, leaf_dim) contributions, weight applied, leaf_type values
    leaf_raw: np.ndarray  # (n_leaves,) raw leaf_value[:, 0] (linear-leaf NaN fallback)
    leaf_ids: np.ndarray  # (n_leaves,) int32 source leaf ids
    tree_slot: np.ndarray  # (n_trees,) first accumulator a tree adds to
    tree_weight: np.ndarray  # (n_trees,) float64 (linear leaves multiply by it at run time)
    tree_linear: np.ndarray  # (n_trees,) bool: tree has linear leaves
    base_acc: np.ndarray  # (n_slots,) initial accumulators (acc_type values)
    linear_leaves: LinearLeaves | None
    # ---- after the trees
    linear_output: np.ndarray
    linear_feature: np.ndarray
    linear_weight: np.ndarray  # float32-rounded for float32 accumulation
    linear_skip_missing: bool
    average_denominator: float | None
    average_raw: bool
    transform: str
    transform_params: dict[str, Any]

    @property
    def n_leaves(self) -> int:
        return int(self.leaf_base[-1])

    @property
    def n_nodes(self) -> int:
        return int(self.left.size)

    @property
    def internal(self) -> np.ndarray:
        return self.left >= 0

    @property
    def n_codes(self) -> int:
        """Category-code columns (one per feature, banded or not, that categorical nodes read)."""
        return int(self.code_feature.size)


def _check(ens: Ensemble) -> None:
    from .transforms_c import TRANSFORM_C

    if ens.transform not in TRANSFORM_C:
        raise UnsupportedModelError(
            f"transform {ens.transform!r} has no C implementation in the Cython backend "
            f"(implemented: {sorted(TRANSFORM_C)})",
            field="transform",
        )
    if ens.transform not in TRANSFORMS:  # pragma: no cover - validate() already checks
        raise UnsupportedModelError(f"unknown transform {ens.transform!r}", field="transform")
    if ens.accumulate not in _ACC_TYPES:
        raise UnsupportedModelError(
            f"accumulation mode {ens.accumulate!r} has no C implementation in the Cython backend",
            field="accumulate",
        )
    if ens.categorical_rule not in ("xgboost", "lightgbm", "sklearn"):
        raise UnsupportedModelError(
            f"categorical rule {ens.categorical_rule!r} has no C implementation in the Cython backend",
            field="categorical_rule",
        )


def _category_sets(ens: Ensemble, cat_nodes: np.ndarray) -> CategorySets:
    off: list[int] = []
    n: list[int] = []
    srt: list[bool] = []
    words: list[int] = []
    codes_out: list[int] = []
    for node in cat_nodes.tolist():
        codes = ens.categories[int(ens.cat_begin[node]) : int(ens.cat_end[node])].astype(np.int64)
        if codes.size and int(codes[-1]) >= BITSET_LIMIT:
            off.append(len(codes_out))
            n.append(int(codes.size))
            srt.append(True)
            codes_out.extend(codes.tolist())
        else:
            nbits = int(codes[-1]) + 1 if codes.size else 0
            w = np.zeros(max(1, (nbits + 31) // 32), np.int64)
            np.bitwise_or.at(w, codes >> 5, np.left_shift(1, codes & 31))
            off.append(len(words))
            n.append(nbits)
            srt.append(False)
            words.extend(w.tolist())
    return CategorySets(
        off=np.asarray(off, np.int64),
        n=np.asarray(n, np.int64),
        sorted=np.asarray(srt, bool),
        words=np.asarray(words, np.int64),
        codes=np.asarray(codes_out, np.int64),
    )


def lower(ens: Ensemble) -> LoweredModel:
    """Lower ``ens``; raise :class:`UnsupportedModelError` for what the backend cannot emit."""
    _check(ens)
    T, K, D = ens.n_trees, ens.n_outputs, ens.leaf_dim
    f32 = ens.input_cast == "float32"
    mode = ens.accumulate
    acc_type, leaf_type = _ACC_TYPES[mode]
    left = ens.left.astype(np.int64)
    internal = left >= 0
    is_leaf = ~internal
    tree_of = ens.tree_of_node().astype(np.int64)

    # ---- node decisions
    thr = ens.threshold.astype(np.float64)
    le = ens.op == Op.LE
    miss = ens.missing
    dl = ens.default_left.astype(bool)
    cat = ens.categorical.astype(bool) & internal
    num = internal & ~cat
    thr_num = np.where(num, thr, 0.0)
    with np.errstate(invalid="ignore"):
        zero_cmp = np.where(le, 0.0 <= thr_num, 0.0 < thr_num)  # where 0.0 (NaN as zero) goes
    zero = (miss == Missing.ZERO_NAN_DEFAULT) & num
    nan_left = np.select(
        [(miss == Missing.NAN_DEFAULT) | (miss == Missing.ZERO_NAN_DEFAULT), miss == Missing.NAN_AS_ZERO],
        [dl, zero_cmp],
        default=False,
    )
    nan_left = np.where(cat, dl, nan_left) & internal

    def uniform(B: float) -> np.ndarray:
        """Every v with |v| <= B compares the same way as 0 does."""
        with np.errstate(invalid="ignore"):
            return np.where(le, (thr_num >= B) | (thr_num < -B), (thr_num > B) | (thr_num <= -B))

    band = float(ens.input_zero_band)
    band_node = np.zeros(ens.n_nodes, bool)
    if band > 0:
        band_node = np.where(zero, band > LIGHTGBM_ZERO_BAND, ~uniform(band)) & num
        if ens.categorical_rule in ("xgboost", "sklearn"):
            band_node |= cat

    if f32:
        thr_k = np.where(num, round_f32(thr_num, le), 0.0)
        up = thr_k.astype(F32)
        with np.errstate(invalid="ignore"):
            prev = np.nextafter(up, F32(-np.inf)).astype(np.float64)
    else:
        thr_k = thr_num
        up = thr_k
        prev = np.nextafter(thr_k, -np.inf)
    le_thr = np.where(le, thr_k, prev)
    le_thr[num & ~le & (up == -np.inf)] = np.nan  # v < -inf: never
    le_thr[~num] = 0.0

    # a zero-default node is plain when every |v| <= 1e-35 compares the default way anyway
    zero_plain = zero & uniform(LIGHTGBM_ZERO_BAND) & (zero_cmp == dl)
    fast_node = is_leaf | (num & (~zero | zero_plain))
    fast_tree = np.ones(T, bool)
    fast_tree[np.unique(tree_of[~fast_node])] = False

    cat_nodes = np.flatnonzero(cat)
    set_id = np.full(ens.n_nodes, -1, np.int64)
    set_id[cat_nodes] = np.arange(cat_nodes.size)
    # one code column per (feature, banded?) pair the categorical nodes read
    pairs = np.stack([ens.feature[cat_nodes].astype(np.int64), band_node[cat_nodes].astype(np.int64)], axis=1)
    code_pairs, inverse = np.unique(pairs.reshape(-1, 2), axis=0, return_inverse=True)
    code_slot = np.full(ens.n_nodes, -1, np.int64)
    code_slot[cat_nodes] = inverse.ravel()

    # ---- leaves
    leaf_nodes = np.flatnonzero(is_leaf)
    counts = np.bincount(tree_of[leaf_nodes], minlength=T) if T else np.zeros(0, np.int64)
    leaf_base = np.zeros(T + 1, np.int64)
    np.cumsum(counts, out=leaf_base[1:])
    leaf_local = np.full(ens.n_nodes, -1, np.int64)
    if leaf_nodes.size:
        leaf_local[leaf_nodes] = np.arange(leaf_nodes.size) - leaf_base[tree_of[leaf_nodes]]
    w = ens.tree_weight[tree_of[leaf_nodes]] if leaf_nodes.size else np.zeros(0)
    raw = ens.leaf_value[leaf_nodes].reshape(leaf_nodes.size, D)
    if mode == "float32":
        lv = (raw.astype(F32) * w.astype(F32)[:, None]).astype(F32).astype(np.float64)
    else:
        lv = raw * w[:, None]
    tree_slot = (ens.tree_bag.astype(np.int64) * K + (ens.tree_output if D == 1 else 0)).astype(np.int64)
    base_acc = np.zeros(ens.n_bags * K, np.float64)
    base_acc[:K] = ens.base_score
    if acc_type == "float":
        base_acc = to_f32(base_acc)

    tree_linear = np.zeros(T, bool)
    lin: LinearLeaves | None = None
    if ens.has_linear_leaves:
        lb, lend, lc = ens.leaf_linear_begin, ens.leaf_linear_end, ens.leaf_linear_const
        assert lb is not None and lend is not None and lc is not None
        has = lb[leaf_nodes] >= 0
        if has.any():
            tree_linear[np.unique(tree_of[leaf_nodes[has]])] = True
        lin = LinearLeaves(
            begin=lb[leaf_nodes].astype(np.int64),
            end=lend[leaf_nodes].astype(np.int64),
            const=lc[leaf_nodes].astype(np.float64),
            feature=np.asarray(ens.leaf_linear_feature, np.int64),
            coeff=np.asarray(ens.leaf_linear_coeff, np.float64),
        )
    lw = np.asarray(ens.linear_weight, np.float64)
    if mode in ("float32", "float32_fused"):
        lw = to_f32(lw)

    return LoweredModel(
        value_type="float" if f32 else "double",
        acc_mode=mode,
        acc_type=acc_type,
        leaf_type=leaf_type,
        n_trees=T,
        n_features=ens.n_features,
        n_outputs=K,
        leaf_dim=D,
        n_bags=ens.n_bags,
        n_slots=ens.n_bags * K,
        out_dim=TRANSFORMS[ens.transform].out_dim(K),
        categorical_rule=ens.categorical_rule,
        infinite_as_missing=bool(ens.infinite_as_missing),
        int_input_cast_f32=ens.int_input_cast == "float32",
        band=band,
        band_k=float(round_f32(band, True)) if f32 else band,
        zero_k=float(round_f32(LIGHTGBM_ZERO_BAND, True)) if f32 else LIGHTGBM_ZERO_BAND,
        tree_offset=ens.tree_offset.astype(np.int64),
        left=left,
        right=ens.right.astype(np.int64),
        tree_of_node=tree_of,
        internal_count=(np.bincount(tree_of[internal], minlength=T) if T else np.zeros(0)).astype(np.int64),
        depth=np.asarray(ens.tree_depths() if T else np.zeros(0), np.int64),
        feature=np.where(internal, ens.feature, 0).astype(np.int64),
        categorical=cat,
        op_le=le & internal,
        thr=thr_k,
        le_thr=le_thr,
        nan_left=nan_left,
        zero_default=zero,
        default_left=dl & internal,
        band_node=band_node,
        cat_left=ens.cat_left.astype(bool) & cat,
        nan_default=cat & (miss == Missing.NAN_DEFAULT),
        set_id=set_id,
        code_slot=code_slot,
        code_feature=code_pairs[:, 0].copy(),
        code_band=code_pairs[:, 1].astype(bool),
        sets=_category_sets(ens, cat_nodes),
        fast_node=fast_node,
        fast_tree=fast_tree,
        leaf_base=leaf_base,
        leaf_local=leaf_local,
        leaf_values=lv,
        leaf_raw=raw[:, 0].copy() if raw.size else np.zeros(0),
        leaf_ids=ens.leaf_id[leaf_nodes].astype(np.int32),
        tree_slot=tree_slot,
        tree_weight=np.asarray(ens.tree_weight, np.float64),
        tree_linear=tree_linear,
        base_acc=base_acc,
        linear_leaves=lin,
        linear_output=np.asarray(ens.linear_output, np.int64),
        linear_feature=np.asarray(ens.linear_feature, np.int64),
        linear_weight=lw,
        linear_skip_missing=bool(ens.linear_skip_missing),
        average_denominator=None if ens.average_denominator is None else float(ens.average_denominator),
        average_raw=bool(ens.average_raw),
        transform=ens.transform,
        transform_params=dict(ens.transform_params),
    )


def used_features(lm: LoweredModel) -> np.ndarray:
    """Sorted features any split, linear leaf or linear term reads."""
    parts = [lm.feature[lm.internal], lm.linear_feature]
    if lm.linear_leaves is not None:
        parts.append(lm.linear_leaves.feature)
    return np.unique(np.concatenate(parts).astype(np.int64))
