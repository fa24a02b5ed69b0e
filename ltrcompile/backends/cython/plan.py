"""Everything the code generators need, derived once from an Ensemble.

The plan fixes the kernel's value type (``float`` when the IR compares in float32, else ``double``),
the accumulator type, a compact leaf numbering (tree-local leaf indices; the generated tree code
returns them), leaf tables with tree weights already applied in the accumulation precision, and
per-node decisions with NaN handling folded into the comparison:

* a numerical node sends NaN one fixed way (default direction, ``0 OP t`` for NAN_AS_ZERO, right for
  NAN_FALSE), so ``!(v >= t)`` / ``v < t`` (and the ``<=`` forms) decide it with one comparison;
* float32 kernels compare float32 values against ``round_down_f32(t)`` (``<=``) or
  ``round_up_f32(t)`` (``<``), which is exactly ``double(v) OP t``;
* the input zero band is applied only at nodes whose decision can change inside the band.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import UnsupportedModelError
from ...ir import LIGHTGBM_ZERO_BAND, Ensemble, Missing, Op
from ...transforms import TRANSFORMS
from .literals import round_down_f32, round_up_f32

F32 = np.float32

#: categorical sets whose largest code is below this become bitsets; larger ones sorted arrays
BITSET_LIMIT = 1 << 16


@dataclass
class NodeDecision:
    """How one internal node decides; ``thr``/``zero_band`` are in the kernel's value type."""

    feature: int
    categorical: bool
    nan_left: bool  # where NaN goes (numerical); for categorical nodes only when nan_default
    op_le: bool = True
    thr: float = 0.0
    zero_default: bool = False  # ZERO_NAN_DEFAULT: |v| <= 1e-35f goes the default way
    default_left: bool = False
    band: bool = False  # apply the input zero band before deciding
    cat_left: bool = False
    nan_default: bool = False  # categorical: NaN goes the default way
    cat_set: np.ndarray | None = None


@dataclass
class Plan:
    ens: Ensemble
    vtype: str  # "float" | "double": element type the trees compare
    acc_mode: str
    acc_type: str  # accumulator variable type ("ltrc_kahan": compensated double sum)
    lv_type: str  # leaf table element type
    n_trees: int
    n_features: int
    K: int  # raw outputs
    D: int  # leaf_dim
    n_bags: int
    NA: int  # accumulator slots per row: n_bags * K
    out_dim: int  # transformed output width
    leaf_base: np.ndarray  # (n_trees + 1,) global leaf offset of each tree
    leaf_local: np.ndarray  # (n_nodes,) tree-local leaf index, -1 on internal nodes
    LV: np.ndarray  # (n_leaves, D) leaf contributions (weight applied), float64 holding lv_type values
    LVRAW: np.ndarray  # (n_leaves,) raw leaf_value[:, 0] (linear-leaf NaN fallback)
    LID: np.ndarray  # (n_leaves,) int32 source leaf ids
    tree_slot: np.ndarray  # (n_trees,) first accumulator slot a tree adds to
    tree_linear: np.ndarray  # (n_trees,) bool: tree has linear leaves
    band: float  # input zero band (0: none)
    band_k: float  # the band in the kernel type (compare |v| <= band_k)
    zero_k: float  # LightGBM's 1e-35f in the kernel type
    base_acc: np.ndarray  # (NA,) initial accumulators (float64 holding acc_type values)
    internal_count: np.ndarray  # (n_trees,) internal nodes per tree
    depth: np.ndarray  # (n_trees,) max depth
    lin_leaf: dict[str, np.ndarray] = field(default_factory=dict)  # per global leaf tables

    @property
    def n_leaves(self) -> int:
        return int(self.leaf_base[-1])

    def tree_nodes(self, t: int) -> range:
        return range(int(self.ens.tree_offset[t]), int(self.ens.tree_offset[t + 1]))

    def decision(self, n: int) -> NodeDecision:
        """The decision of global internal node ``n``."""
        e = self.ens
        f = int(e.feature[n])
        miss = int(e.missing[n])
        dl = bool(e.default_left[n])
        if e.categorical[n]:
            cats = e.categories[int(e.cat_begin[n]) : int(e.cat_end[n])]
            nan_default = miss == Missing.NAN_DEFAULT
            return NodeDecision(
                feature=f,
                categorical=True,
                nan_left=dl,
                default_left=dl,
                cat_left=bool(e.cat_left[n]),
                nan_default=nan_default,
                cat_set=np.asarray(cats, np.int64),
                band=self.band > 0 and e.categorical_rule in ("xgboost", "sklearn"),
            )
        t = float(e.threshold[n])
        le = int(e.op[n]) == Op.LE
        if miss in (Missing.NAN_DEFAULT, Missing.ZERO_NAN_DEFAULT):
            nan_left = dl
        elif miss == Missing.NAN_AS_ZERO:
            nan_left = (0.0 <= t) if le else (0.0 < t)
        else:
            nan_left = False
        zero_default = miss == Missing.ZERO_NAN_DEFAULT
        band = False
        if self.band > 0:
            B = self.band
            if zero_default and B <= LIGHTGBM_ZERO_BAND:
                band = False
            elif zero_default:
                band = True
            else:
                uniform = (t >= B or t < -B) if le else (t > B or t <= -B)
                band = not uniform
        if self.vtype == "float":
            thr = round_down_f32(t) if le else round_up_f32(t)
        else:
            thr = t
        return NodeDecision(
            feature=f,
            categorical=False,
            nan_left=nan_left,
            op_le=le,
            thr=thr,
            zero_default=zero_default,
            default_left=dl,
            band=band,
        )


def make_plan(ens: Ensemble) -> Plan:
    """Derive the plan; raise :class:`UnsupportedModelError` for what the backend cannot emit."""
    from .transforms_c import TRANSFORM_C

    if ens.transform not in TRANSFORM_C:
        raise UnsupportedModelError(
            f"transform {ens.transform!r} has no C implementation in the Cython backend "
            f"(implemented: {sorted(TRANSFORM_C)})",
            field="transform",
        )
    if ens.transform not in TRANSFORMS:  # pragma: no cover - validate() already checks
        raise UnsupportedModelError(f"unknown transform {ens.transform!r}", field="transform")
    T = ens.n_trees
    K = ens.n_outputs
    D = ens.leaf_dim
    n_bags = ens.n_bags
    vtype = "float" if ens.input_cast == "float32" else "double"
    mode = ens.accumulate
    if mode not in ("float32", "float32_fused", "float64", "float64_kahan"):
        raise UnsupportedModelError(
            f"accumulation mode {mode!r} has no C implementation in the Cython backend", field="accumulate"
        )
    if ens.categorical_rule not in ("xgboost", "lightgbm", "sklearn"):
        raise UnsupportedModelError(
            f"categorical rule {ens.categorical_rule!r} has no C implementation in the Cython backend",
            field="categorical_rule",
        )
    acc_type = {"float64": "double", "float64_kahan": "ltrc_kahan"}.get(mode, "float")
    lv_type = "float" if mode == "float32" else "double"

    is_leaf = ens.left < 0
    tree_of = ens.tree_of_node()
    leaf_nodes = np.flatnonzero(is_leaf)
    counts = np.bincount(tree_of[leaf_nodes], minlength=T) if T else np.zeros(0, np.int64)
    leaf_base = np.zeros(T + 1, np.int64)
    np.cumsum(counts, out=leaf_base[1:])
    leaf_local = np.full(ens.n_nodes, -1, np.int64)
    if leaf_nodes.size:
        leaf_local[leaf_nodes] = np.arange(leaf_nodes.size) - leaf_base[tree_of[leaf_nodes]]

    w = ens.tree_weight[tree_of[leaf_nodes]] if leaf_nodes.size else np.zeros(0)
    raw = ens.leaf_value[leaf_nodes]  # (n_leaves, D)
    if mode == "float32":
        LV = (raw.astype(F32) * w.astype(F32)[:, None]).astype(F32).astype(np.float64)
    else:
        LV = raw * w[:, None]
    LVRAW = raw[:, 0].copy() if raw.size else np.zeros(0)
    LID = ens.leaf_id[leaf_nodes].astype(np.int32)

    tree_slot = (ens.tree_bag.astype(np.int64) * K + (ens.tree_output if D == 1 else 0)).astype(np.int64)
    base_acc = np.zeros(n_bags * K, np.float64)
    base_acc[:K] = ens.base_score
    if acc_type == "float":
        base_acc = base_acc.astype(F32).astype(np.float64)

    tree_linear = np.zeros(T, bool)
    lin_leaf: dict[str, np.ndarray] = {}
    if ens.has_linear_leaves:
        lb = ens.leaf_linear_begin
        le = ens.leaf_linear_end
        lc = ens.leaf_linear_const
        assert lb is not None and le is not None and lc is not None
        has = lb[leaf_nodes] >= 0
        tree_linear = np.zeros(T, bool)
        if has.any():
            tree_linear[np.unique(tree_of[leaf_nodes[has]])] = True
        lin_leaf = {
            "begin": lb[leaf_nodes].astype(np.int64),
            "end": le[leaf_nodes].astype(np.int64),
            "const": lc[leaf_nodes].astype(np.float64),
            "feature": np.asarray(ens.leaf_linear_feature, np.int64),
            "coeff": np.asarray(ens.leaf_linear_coeff, np.float64),
        }

    band = float(ens.input_zero_band)
    band_k = round_down_f32(band) if vtype == "float" else band
    zero_k = round_down_f32(LIGHTGBM_ZERO_BAND) if vtype == "float" else LIGHTGBM_ZERO_BAND
    internal_count = np.bincount(tree_of[~is_leaf], minlength=T) if T else np.zeros(0, np.int64)
    depth = ens.tree_depths() if T else np.zeros(0, np.int64)
    out_dim = TRANSFORMS[ens.transform].out_dim(K)
    return Plan(
        ens=ens,
        vtype=vtype,
        acc_mode=mode,
        acc_type=acc_type,
        lv_type=lv_type,
        n_trees=T,
        n_features=ens.n_features,
        K=K,
        D=D,
        n_bags=n_bags,
        NA=n_bags * K,
        out_dim=out_dim,
        leaf_base=leaf_base,
        leaf_local=leaf_local,
        LV=LV,
        LVRAW=LVRAW,
        LID=LID,
        tree_slot=tree_slot,
        tree_linear=tree_linear,
        band=band,
        band_k=band_k,
        zero_k=zero_k,
        base_acc=base_acc,
        internal_count=internal_count.astype(np.int64),
        depth=np.asarray(depth, np.int64),
        lin_leaf=lin_leaf,
    )
