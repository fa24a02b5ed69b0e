"""Typed template contexts: what each template of ``templates/`` is rendered with.

Each emitter builds one of these records (a misspelled or missing key is a ``TypeError`` at
construction, not a template failure on an untested path) and :func:`render_context` flattens them
with :func:`dataclasses.asdict`. Text fields hold C text produced by :mod:`.literals` (numbers and
identifiers we make up only; never model strings).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CommonCtx:
    """Every generated file (``ltrc_model.h``, ``ltrc_api.h``, ``ltrc_init.c``, the driver)."""

    codegen_version: str
    module: str
    strategy: str  # "ifelse" | "datadriven"
    vtype: str  # value type the trees compare ("float" | "double")
    acc_type: str  # accumulator C type
    lv_type: str  # leaf table C type
    acc_mode: str  # IR accumulation mode (selects the LTRC_ACCUM macros)
    n_features: int
    n_trees: int
    K: int  # raw outputs
    D: int  # values per leaf
    NA: int  # accumulators per row (bags x outputs)
    out_dim: int  # transformed outputs
    row_block: int  # rows per block
    band: bool  # the model has an input zero band
    inf_missing: bool  # +-inf reads as missing
    band_k: str  # C literal: the band in the kernel type
    zero_k: str  # C literal: LightGBM's 1e-35 in the kernel type
    linear_leaves: bool
    cat_rule: str  # categorical rule: suffix of the ltrc_code_* helper (xgb | lgb | skl)
    n_codes: int  # category-code columns (LoweredModel.code_feature)


@dataclass(frozen=True)
class LinearLeafCtx:
    """Linear-leaf tables (driver), per global leaf and per term."""

    ll_begin: str
    ll_end: str
    ll_const: str
    n_ll1: int  # terms (at least 1)
    ll_feat: str
    ll_coef: str
    lvraw: str  # plain leaf values (NaN fallback)


@dataclass(frozen=True)
class DriverCtx:
    """The driver unit, both strategies."""

    n_leaves1: int  # leaves (at least 1): size of the leaf-id table
    n_trees1: int  # trees (at least 1)
    lid: str  # source leaf id per global leaf
    leaf_base: str  # first global leaf of each tree
    base_acc: str  # initial accumulators
    n_bags: int
    transform_body: str
    linear_terms: str  # C statements adding the linear terms
    average: bool
    average_raw: bool  # average the raw margins too
    average_denominator: str
    parallel_min_rows: int
    ir_digest: str
    int_cast_f32: bool
    n_blocks: int  # tree blocks
    block_t0: str  # first tree of each block (+ n_trees)
    tbmax: int  # most trees in one block (leaf scratch width)


@dataclass(frozen=True)
class TablesCtx:
    """Which tables became ``.incbin`` binaries (known once every other part is built)."""

    bins: list[str]


@dataclass(frozen=True)
class IfelseCtx:
    """Straight-line strategy: the block functions the tree units define."""

    n_blocks1: int


@dataclass(frozen=True)
class FastTableCtx:
    """Data-driven strategy: the branch-free table (see ``nodetable.fast_table``)."""

    n_fast1: int  # slots (at least 1)
    fast_aos: str  # threshold + pack records (array-of-structs layout)
    direct: bool  # leaf records hold the leaf contribution in their threshold slot
    one_order: str  # predict_one tree order: fast trees by depth, then the generic ones
    n_fast_trees: int
    fast_thr: str
    pack32: bool  # child delta and feature fit one uint32
    fast_pack: str
    fast_nl: str  # per slot: NaN goes left
    fast_leaf: str  # per slot: tree-local leaf (-1 internal)
    fast_root: str
    fast_ok: str  # per tree: in the table
    fast_dmax: str  # per tree: walk length
    fast_all: bool
    fast_nanl: bool  # some node sends NaN left


@dataclass(frozen=True)
class NodeTableCtx:
    """Data-driven strategy: the generic (branching) node table for the other trees."""

    n_dd_nodes1: int
    dd_nodes: str
    dd_root: str
    dd_has_cat: bool
    n_sets1: int
    set_off: str
    set_n: str
    set_sorted: str
    n_words1: int
    set_words: str
    n_codes1: int
    set_codes: str


@dataclass(frozen=True)
class DataDrivenCtx:
    """Data-driven strategy: scratch-block columns, lanes and per-tree tables."""

    n_cols: int  # features the model reads (scratch-block columns)
    identity_cols: bool  # every feature is read, in order
    used_cols: str
    lanes: int  # walks interleaved at batch
    one_lanes: int  # walks interleaved for one row
    aos: bool
    dd_slot: str  # accumulator slot per tree
    n_lv1: int
    dd_lv: str  # leaf contributions
    dd_tlin: str  # per tree: has linear leaves
    dd_tw: str  # per tree: weight (linear leaves)
    early_exit: bool  # lockstep walks stop once every lane stands on a leaf (4-byte packing only)
    code_cols: list[int]  # scratch column each category-code column is converted from


def render_context(*parts: Any) -> dict[str, Any]:
    """Flatten context records into one template namespace; a field defined twice is a bug."""
    out: dict[str, Any] = {}
    for p in parts:
        d = asdict(p)
        dup = out.keys() & d.keys()
        if dup:
            raise ValueError(f"template context fields defined twice: {sorted(dup)}")
        out.update(d)
    return out
