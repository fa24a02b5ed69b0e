"""The single intermediate representation every frontend produces and every backend consumes.

An :class:`Ensemble` is a struct-of-arrays node table (one flat numpy array per node field, all trees
concatenated, children as *global* node indices) plus per-tree and per-model tables. Every semantic the
source libraries disagree on is an explicit field, never implied by where the model came from:

* per node: comparison operator (``<`` or ``<=``), missing-value policy and default direction,
  categorical flag with a sorted category set and which side the set sends rows to;
* per tree: which output it adds to, its weight, and its bag (independently accumulated group);
* per model: the input cast applied before comparing, LightGBM's dense zero band, how absent sparse
  entries read, accumulation precision, base score in margin space, averaging, output transform,
  linear terms, normalizers, feature names and category labels, and source provenance.

See ``docs/ir.md`` for the meaning of every field and which source needs it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass, replace
from enum import IntEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import IRValidationError, LtrCompileError, ModelFormatError
from .irdoc import DocReader

if TYPE_CHECKING:
    from .network import Network

IR_FORMAT = "ltrcompile-ir"
IR_VERSION = 1

#: LightGBM's ``kZeroThreshold`` (``1e-35f`` widened to double): the band treated as zero.
LIGHTGBM_ZERO_BAND = float(np.float32(1e-35))


class Op(IntEnum):
    """Comparison that sends a row LEFT: ``x < t`` (XGBoost) or ``x <= t`` (others)."""

    LT = 0
    LE = 1


class Missing(IntEnum):
    """What a numerical node does with NaN (and, for LightGBM's Zero type, with zero).

    NAN_DEFAULT: NaN goes the default direction (XGBoost, LightGBM ``NaN`` type, scikit-learn).
    NAN_AS_ZERO: NaN is replaced by 0.0, then compared (LightGBM ``None`` type).
    ZERO_NAN_DEFAULT: NaN becomes 0.0; values with ``|x| <= 1e-35f`` go the default direction
        (LightGBM ``Zero`` type).
    NAN_FALSE: no special case; IEEE comparison, so NaN never satisfies the split and goes RIGHT
        (RankLib, plain Java/C comparisons). For categorical nodes: NaN is "not in the set".
    """

    NAN_DEFAULT = 0
    NAN_AS_ZERO = 1
    ZERO_NAN_DEFAULT = 2
    NAN_FALSE = 3


INPUT_CASTS = ("float32", "float64")
ACCUMULATE_MODES = ("float32", "float32_fused", "float64", "float64_kahan")
SPARSE_ABSENT = ("missing", "zero")
#: How a categorical node turns a value into a category code and which codes are invalid.
#: "xgboost": invalid iff v < 0 or v >= 2**24; code = trunc(v).
#: "lightgbm": code = trunc(v) as C int; invalid iff that is negative (v <= -1, v >= 2**31, inf).
#: "sklearn": only exact integers are codes: invalid iff v < 0, v >= 2**31 or v != trunc(v)
#: (HistGradientBoosting >= 1.4 matches raw categories exactly; anything else is unknown).
CATEGORICAL_RULES = ("xgboost", "lightgbm", "sklearn")

# ---------------------------------------------------------------------- provenance
@dataclass(frozen=True)
class Provenance:
    """Where a model came from: recorded in the IR and the manifest, never part of the digest.

    ``iteration_range`` is the ``[begin, end)`` window of boosting rounds the IR keeps (None: the
    format has no rounds); ``total_iterations`` how many rounds the source holds; ``best_iteration``
    the early-stopping iteration as the library reports it and ``best_rounds`` the rounds it keeps
    (XGBoost: ``best_iteration + 1``; LightGBM: ``best_iteration``); ``tree_selection`` which rule
    chose the window (see :mod:`ltrcompile.pipeline`). Format-specific details go in ``extra``.
    """

    library: str | None = None
    version: str | None = None
    format: str | None = None
    source_file: str | None = None
    source: str | None = None
    objective: str | None = None
    iteration_range: tuple[int, int] | None = None
    total_iterations: int | None = None
    best_iteration: int | None = None
    best_rounds: int | None = None
    tree_selection: str | None = None
    notes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = self.iteration_range
        if rng is not None:
            b, e = (int(x) for x in rng)
            if not 0 <= b <= e:
                raise IRValidationError(f"iteration_range {rng!r} is not a window [begin, end)", field="provenance")
            object.__setattr__(self, "iteration_range", (b, e))
        for name in ("total_iterations", "best_iteration", "best_rounds"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, int(v))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | Provenance | None) -> Provenance:
        """Typed fields by name, every other key into ``extra``."""
        if isinstance(d, Provenance):
            return d
        d = dict(d or {})
        extra = dict(d.pop("extra", None) or {})
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        extra.update({k: v for k, v in d.items() if k not in known})
        if kw.get("iteration_range") is not None:
            kw["iteration_range"] = tuple(kw["iteration_range"])
        kw["notes"] = tuple(kw.get("notes") or ())
        return cls(**kw, extra=extra)

    def with_(self, **changes: Any) -> Provenance:
        """A copy with typed fields replaced and other keys set in ``extra``."""
        known = {f.name for f in fields(self)} - {"extra"}
        extra = dict(changes.pop("extra", self.extra))
        extra.update({k: v for k, v in changes.items() if k not in known})
        return replace(self, **{k: v for k, v in changes.items() if k in known}, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON object: typed fields that are set, then ``extra``'s keys."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None or v == ():
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    # read-only mapping view (``prov["objective"]``, ``prov.get("booster")``) over to_dict()
    def __getitem__(self, key: str) -> Any:
        d = self.to_dict()
        if key not in d:
            raise KeyError(key)
        v = d[key]
        return tuple(v) if key == "iteration_range" else v

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def keys(self) -> list[str]:
        return list(self.to_dict())


#: The model fields that turn user input into the matrix the trees read
#: (:func:`ltrcompile.inputs.as_float_matrix`, normalizers): the artifact manifest's ``input`` block
#: and a compiled scorer's input spec are both this record.
@dataclass(frozen=True)
class InputSpec:
    n_features: int
    feature_names: list[str] | None = None
    int_input_cast: str = "float64"
    input_cast: str = "float64"
    input_zero_band: float = 0.0
    sparse_absent: str = "zero"
    feature_categories: dict[int, list[Any]] | None = None
    normalizers: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, ens: Any) -> InputSpec:
        return cls(**{f.name: getattr(ens, f.name) for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.feature_categories is not None:
            d["feature_categories"] = {str(k): v for k, v in self.feature_categories.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputSpec:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["n_features"] = int(kw["n_features"])
        kw["input_zero_band"] = float(kw.get("input_zero_band", 0.0))
        fc = kw.get("feature_categories")
        if fc is not None:
            kw["feature_categories"] = {int(k): v for k, v in fc.items()}
        return cls(**kw)


# ---------------------------------------------------------------------- the node schema (one table)
@dataclass(frozen=True)
class NodeField:
    """One column of the node table.

    ``fill``: the value of a fresh node (:meth:`TreeArrays.empty`). ``per_tree``: False for columns
    :meth:`Ensemble.from_trees` derives itself (category ranges into the global category table).
    ``index``: holds a tree-local node index that becomes global when trees are concatenated.
    ``optional``: None when the source has no such data (written to JSON only when present, so
    other models' digests are unchanged; kept by ``from_trees`` only when every tree has it).
    """

    name: str
    dtype: Any
    fill: float
    doc: str
    per_tree: bool = True
    index: bool = False
    optional: bool = False


#: Every node column: the tree arrays, ``from_trees``, JSON (de)serialization and validation are
#: derived from this table (``leaf_value``, 2-D, is the one column kept apart).
NODE_SCHEMA: tuple[NodeField, ...] = (
    NodeField("feature", np.int32, -1, "split feature index (-1 on leaves)"),
    NodeField("threshold", np.float64, 0.0, "numerical split threshold"),
    NodeField("op", np.uint8, int(Op.LE), "comparison sending a row left (Op)"),
    NodeField("left", np.int32, -1, "left child (-1 on leaves)", index=True),
    NodeField("right", np.int32, -1, "right child (-1 on leaves)", index=True),
    NodeField("default_left", np.uint8, 0, "missing values go left (1) or right (0)"),
    NodeField("missing", np.uint8, int(Missing.NAN_DEFAULT), "missing-value policy (Missing)"),
    NodeField("categorical", np.uint8, 0, "1: categorical split"),
    NodeField("cat_begin", np.int32, 0, "first entry of the node's category set", per_tree=False),
    NodeField("cat_end", np.int32, 0, "one past the last entry of the category set", per_tree=False),
    NodeField("cat_left", np.uint8, 0, "1: the category set goes left, 0: it goes right"),
    NodeField("leaf_id", np.int32, -1, "the source library's leaf identifier (-1 on internal nodes)"),
    NodeField(
        "cover", np.float64, 0.0, "training weight reaching the node, as the source's TreeSHAP reads it",
        optional=True,
    ),
)
NODE_FIELDS = tuple(f.name for f in NODE_SCHEMA)
NODE_DTYPES: dict[str, Any] = {f.name: f.dtype for f in NODE_SCHEMA}
#: the columns a frontend fills per tree (:class:`TreeArrays`)
TREE_FIELDS: tuple[NodeField, ...] = tuple(f for f in NODE_SCHEMA if f.per_tree)


class _TreeArraysBase:
    """Methods of :class:`TreeArrays` (whose node columns are generated from :data:`NODE_SCHEMA`)."""

    leaf_value: np.ndarray
    cat_sets: dict[int, np.ndarray]
    linear: dict[int, tuple[float, np.ndarray, np.ndarray]]

    def __post_init__(self) -> None:
        n = int(np.shape(self.leaf_value)[0])
        for f in TREE_FIELDS:
            if getattr(self, f.name) is None and not f.optional:
                setattr(self, f.name, np.full(n, f.fill, f.dtype))

    @classmethod
    def empty(
        cls,
        n_nodes: int,
        leaf_dim: int = 1,
        *,
        op: Op = Op.LE,
        missing: Missing = Missing.NAN_DEFAULT,
    ) -> TreeArrays:
        """Default-filled arrays: every node a leaf of value 0 with the given operator/policy."""
        t = TreeArrays(leaf_value=np.zeros((n_nodes, leaf_dim), np.float64))
        t.op[:] = int(op)
        t.missing[:] = int(missing)
        return t

    @property
    def n_nodes(self) -> int:
        return int(np.shape(self.leaf_value)[0])

    def reachable_only(self) -> TreeArrays:
        """A copy without nodes unreachable from the root (e.g. XGBoost's deleted nodes).

        Nodes keep their relative order; ``leaf_id`` is left untouched so leaf identifiers stay
        those of the source.
        """
        left: np.ndarray = getattr(self, "left")  # noqa: B009 - generated column
        right: np.ndarray = getattr(self, "right")  # noqa: B009
        n = self.n_nodes
        seen = np.zeros(n, bool)
        stack = [0]
        while stack:
            i = stack.pop()
            if i < 0 or i >= n or seen[i]:
                continue
            seen[i] = True
            if left[i] >= 0:
                stack.append(int(left[i]))
                stack.append(int(right[i]))
        if seen.all():
            return self  # type: ignore[return-value]
        keep = np.flatnonzero(seen)
        remap = np.full(n, -1, np.int64)
        remap[keep] = np.arange(keep.size)
        cols = {
            f.name: None if getattr(self, f.name) is None else np.asarray(getattr(self, f.name))[keep].copy()
            for f in TREE_FIELDS
        }
        for f in TREE_FIELDS:
            if f.index:
                col = cols[f.name]
                col[col >= 0] = remap[col[col >= 0]]
        return TreeArrays(
            **cols,
            leaf_value=self.leaf_value[keep].copy(),
            cat_sets={int(remap[k]): v for k, v in self.cat_sets.items() if seen[k]},
            linear={int(remap[k]): v for k, v in self.linear.items() if seen[k]},
        )


#: One tree with tree-local node indices, as a frontend builds it: one array per
#: :data:`TREE_FIELDS` column (omitted columns get the table's fill value), plus ``leaf_value``
#: ``(n_nodes, leaf_dim)`` float64, ``cat_sets`` (categorical node -> sorted category codes) and
#: ``linear`` (leaf -> ``(const, features, coeffs)`` for LightGBM linear trees). Node 0 is the root;
#: leaves have ``left == right == -1``; ``leaf_id`` is what the source library reports for the leaf.
TreeArrays = make_dataclass(
    "TreeArrays",
    [("leaf_value", np.ndarray)]
    + [(f.name, np.ndarray, field(default=None)) for f in TREE_FIELDS]
    + [
        ("cat_sets", dict, field(default_factory=dict)),
        ("linear", dict, field(default_factory=dict)),
    ],
    bases=(_TreeArraysBase,),
    namespace={"__module__": __name__, "__doc__": "One tree with tree-local node indices (see NODE_SCHEMA)."},
)


@dataclass(eq=False)
class Ensemble:
    """A whole model in IR form. Construct with :meth:`from_trees`; it validates itself."""

    # ---- node table (flat, global indices) ----
    feature: np.ndarray
    threshold: np.ndarray
    op: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    missing: np.ndarray
    categorical: np.ndarray
    cat_begin: np.ndarray
    cat_end: np.ndarray
    cat_left: np.ndarray
    leaf_id: np.ndarray
    leaf_value: np.ndarray  # (n_nodes, leaf_dim)
    categories: np.ndarray  # int32, node ranges [cat_begin, cat_end) sorted ascending
    # ---- tree table ----
    tree_offset: np.ndarray  # (n_trees + 1,) int64
    tree_output: np.ndarray  # int32
    tree_weight: np.ndarray  # float64
    tree_bag: np.ndarray  # int32
    # ---- model ----
    n_features: int
    n_outputs: int
    feature_names: list[str] | None = None
    input_cast: str = "float64"
    int_input_cast: str = "float64"
    input_zero_band: float = 0.0
    # Elasticsearch native models: +-inf inputs are missing (NaN) like NaN itself
    infinite_as_missing: bool = False
    sparse_absent: str = "zero"
    categorical_rule: str = "lightgbm"
    accumulate: str = "float64"
    base_score: np.ndarray = field(default_factory=lambda: np.zeros(1))
    average_denominator: float | None = None
    average_raw: bool = True
    transform: str = "identity"
    transform_params: dict[str, Any] = field(default_factory=dict)
    # linear terms added after the trees, in order, into the accumulator of output linear_output[i]
    linear_output: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    linear_feature: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    linear_weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    linear_skip_missing: bool = False
    # LightGBM linear-tree leaves: per node range into leaf_linear_feature/coeff, plus constant
    leaf_linear_begin: np.ndarray | None = None
    leaf_linear_end: np.ndarray | None = None
    leaf_linear_const: np.ndarray | None = None
    leaf_linear_feature: np.ndarray | None = None
    leaf_linear_coeff: np.ndarray | None = None
    normalizers: list[dict[str, Any]] | None = None
    feature_categories: dict[int, list[Any]] | None = None
    provenance: Provenance = field(default_factory=Provenance)
    # per-node cover (float64, n_nodes): the weights path-dependent TreeSHAP splits by; None when
    # the source format carries none (RankLib, Elasticsearch, XGBoost dumps without stats)
    cover: np.ndarray | None = None
    # a dense network (RankLib RankNet/ListNet) computing the raw outputs instead of trees
    network: Network | None = None

    def __post_init__(self) -> None:
        self.provenance = Provenance.from_dict(self.provenance)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_trees(
        cls,
        trees: list[TreeArrays],
        *,
        n_features: int,
        n_outputs: int = 1,
        tree_output: Any = None,
        tree_weight: Any = None,
        tree_bag: Any = None,
        base_score: Any = None,
        **model: Any,
    ) -> Ensemble:
        """Concatenate tree-local arrays into the flat node table and validate."""
        if not trees:
            leaf_dim = 1
        else:
            leaf_dim = int(trees[0].leaf_value.shape[1])
        sizes = np.array([t.n_nodes for t in trees], np.int64)
        offset = np.zeros(len(trees) + 1, np.int64)
        np.cumsum(sizes, out=offset[1:])
        n_nodes = int(offset[-1])

        cols: dict[str, np.ndarray] = {}
        for f in TREE_FIELDS:
            if f.optional:
                if trees and all(getattr(t, f.name) is not None for t in trees) and f.name not in model:
                    model[f.name] = np.concatenate(
                        [np.asarray(getattr(t, f.name), f.dtype).reshape(-1) for t in trees]
                    )
                continue
            parts = [np.asarray(getattr(t, f.name), f.dtype) for t in trees]
            cols[f.name] = (np.concatenate(parts) if parts else np.zeros(0, f.dtype)).astype(f.dtype, copy=False)
        for i in range(len(trees)):
            lo, hi = int(offset[i]), int(offset[i + 1])
            for f in TREE_FIELDS:
                if f.index:
                    seg = cols[f.name][lo:hi]
                    seg[seg >= 0] += lo
        for i, t in enumerate(trees):
            if t.leaf_value.ndim != 2 or t.leaf_value.shape[1] != leaf_dim:
                raise IRValidationError(
                    f"leaf_value has shape {t.leaf_value.shape}, expected (n_nodes, {leaf_dim})",
                    tree=i,
                    field="leaf_value",
                )
        leaf_value = (
            np.concatenate([np.asarray(t.leaf_value, np.float64) for t in trees])
            if trees
            else np.zeros((0, 1))
        )

        cat_begin = np.zeros(n_nodes, np.int32)
        cat_end = np.zeros(n_nodes, np.int32)
        cat_parts: list[np.ndarray] = []
        pos = 0
        for i, t in enumerate(trees):
            for local in sorted(t.cat_sets):
                vals = np.asarray(t.cat_sets[local], np.int64)
                g = int(offset[i]) + local
                if not 0 <= local < t.n_nodes:
                    raise IRValidationError(
                        "category set attached to a node that does not exist",
                        tree=i,
                        node=local,
                        field="categories",
                    )
                vals = np.unique(vals)
                if vals.size and (vals[0] < 0 or vals[-1] > np.iinfo(np.int32).max):
                    raise IRValidationError(
                        "category codes must lie in [0, 2**31)", tree=i, node=local, field="categories"
                    )
                cat_begin[g] = pos
                cat_parts.append(vals.astype(np.int32))
                pos += vals.size
                cat_end[g] = pos
        categories = np.concatenate(cat_parts) if cat_parts else np.zeros(0, np.int32)

        linear_fields: dict[str, Any] = {}
        if any(t.linear for t in trees):
            lb = np.full(n_nodes, -1, np.int64)  # -1: not a linear leaf
            le = np.full(n_nodes, -1, np.int64)
            lc = np.zeros(n_nodes, np.float64)
            feats: list[np.ndarray] = []
            coefs: list[np.ndarray] = []
            p = 0
            for i, t in enumerate(trees):
                for local in sorted(t.linear):
                    const, f, c = t.linear[local]
                    g = int(offset[i]) + local
                    f = np.asarray(f, np.int32)
                    c = np.asarray(c, np.float64)
                    if f.shape != c.shape:
                        raise IRValidationError(
                            "linear leaf has different numbers of features and coefficients",
                            tree=i,
                            node=local,
                            field="leaf_coeff",
                        )
                    lb[g] = p
                    p += f.size
                    le[g] = p
                    lc[g] = float(const)
                    feats.append(f)
                    coefs.append(c)
            linear_fields = dict(
                leaf_linear_begin=lb,
                leaf_linear_end=le,
                leaf_linear_const=lc,
                leaf_linear_feature=np.concatenate(feats) if feats else np.zeros(0, np.int32),
                leaf_linear_coeff=np.concatenate(coefs) if coefs else np.zeros(0, np.float64),
            )
        n_trees = len(trees)
        ens = cls(
            **cols,
            cat_begin=cat_begin,
            cat_end=cat_end,
            leaf_value=leaf_value,
            categories=categories,
            tree_offset=offset,
            tree_output=_vec(tree_output, n_trees, np.int32, 0),
            tree_weight=_vec(tree_weight, n_trees, np.float64, 1.0),
            tree_bag=_vec(tree_bag, n_trees, np.int32, 0),
            n_features=int(n_features),
            n_outputs=int(n_outputs),
            base_score=_vec(base_score, int(n_outputs), np.float64, 0.0),
            **linear_fields,
            **model,
        )
        ens.validate()
        return ens

    # ------------------------------------------------------------------ basic properties
    @property
    def n_trees(self) -> int:
        return int(self.tree_offset.shape[0] - 1)

    @property
    def n_nodes(self) -> int:
        return int(self.feature.shape[0])

    @property
    def leaf_dim(self) -> int:
        return int(self.leaf_value.shape[1])

    @property
    def n_bags(self) -> int:
        return int(self.tree_bag.max()) + 1 if self.tree_bag.size else 1

    @property
    def has_linear_leaves(self) -> bool:
        return self.leaf_linear_begin is not None

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0

    def tree_of_node(self) -> np.ndarray:
        """Tree index of every node."""
        return np.repeat(np.arange(self.n_trees), np.diff(self.tree_offset))

    def tree_depths(self) -> np.ndarray:
        """Maximum depth (edges from root to deepest leaf) of every tree."""
        depth = np.zeros(self.n_nodes, np.int64)
        # parents precede children in no guaranteed order; propagate by levels.
        frontier = self.tree_offset[:-1].astype(np.int64)
        d = 0
        while frontier.size:
            depth[frontier] = d
            internal = frontier[self.left[frontier] >= 0]
            frontier = np.concatenate([self.left[internal], self.right[internal]]).astype(np.int64)
            d += 1
        tree = self.tree_of_node()
        out = np.zeros(self.n_trees, np.int64)
        np.maximum.at(out, tree, depth)
        return out

    def n_leaves(self) -> int:
        return int(np.count_nonzero(self.left < 0))

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every IR invariant; raise :class:`IRValidationError` naming tree/node/field."""
        if not isinstance(self.provenance, Provenance):  # a plain mapping assigned after construction
            self.provenance = Provenance.from_dict(self.provenance)
        n = self.n_nodes
        for col in NODE_SCHEMA:
            name = col.name
            arr = getattr(self, name)
            if arr is None and col.optional:
                continue
            if not isinstance(arr, np.ndarray) or arr.shape != (n,):
                raise IRValidationError(f"node field must be a 1-D array of length {n}", field=name)
            if arr.dtype != NODE_DTYPES[name]:
                raise IRValidationError(
                    f"node field has dtype {arr.dtype}, expected {np.dtype(NODE_DTYPES[name])}", field=name
                )
        if self.leaf_value.ndim != 2 or self.leaf_value.shape[0] != n or self.leaf_value.shape[1] < 1:
            raise IRValidationError("leaf_value must have shape (n_nodes, leaf_dim)", field="leaf_value")
        off = self.tree_offset
        if off.ndim != 1 or off.size < 1 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 1):
            raise IRValidationError(
                "tree_offset must start at 0, end at n_nodes and give every tree >= 1 node",
                field="tree_offset",
            )
        t_count = self.n_trees
        for name in ("tree_output", "tree_weight", "tree_bag"):
            if getattr(self, name).shape != (t_count,):
                raise IRValidationError(f"must have one entry per tree ({t_count})", field=name)
        if self.n_features < 0:
            raise IRValidationError("n_features must be >= 0", field="n_features")
        if self.n_outputs < 1:
            raise IRValidationError("n_outputs must be >= 1", field="n_outputs")
        if self.feature_names is not None:
            if len(self.feature_names) != self.n_features:
                raise IRValidationError(
                    f"{len(self.feature_names)} feature names for {self.n_features} features",
                    field="feature_names",
                )
            if len(set(self.feature_names)) != len(self.feature_names):
                raise IRValidationError("feature names are not unique", field="feature_names")
        for name, allowed in (
            ("input_cast", INPUT_CASTS),
            ("int_input_cast", INPUT_CASTS),
            ("accumulate", ACCUMULATE_MODES),
            ("sparse_absent", SPARSE_ABSENT),
            ("categorical_rule", CATEGORICAL_RULES),
        ):
            if getattr(self, name) not in allowed:
                raise IRValidationError(
                    f"{getattr(self, name)!r} is not one of {allowed}", field=name
                )
        from .transforms import TRANSFORMS

        if self.transform not in TRANSFORMS:
            raise IRValidationError(
                f"unknown transform {self.transform!r}; known: {sorted(TRANSFORMS)}", field="transform"
            )
        TRANSFORMS[self.transform].check(self)
        if self.base_score.shape != (self.n_outputs,) or not np.all(np.isfinite(self.base_score)):
            raise IRValidationError(
                f"base_score must be {self.n_outputs} finite values", field="base_score"
            )
        if self.average_denominator is not None and not (
            math.isfinite(self.average_denominator) and self.average_denominator > 0
        ):
            raise IRValidationError("average_denominator must be > 0", field="average_denominator")
        if not (self.input_zero_band >= 0 and math.isfinite(self.input_zero_band)):
            raise IRValidationError("input_zero_band must be >= 0", field="input_zero_band")
        if not isinstance(self.infinite_as_missing, bool):
            raise IRValidationError("infinite_as_missing must be a bool", field="infinite_as_missing")
        if self.network is not None:
            self._validate_network()
        if not np.all(np.isfinite(self.tree_weight)):
            raise IRValidationError("tree weights must be finite", field="tree_weight")
        if t_count:
            if self.tree_bag.min() < 0:
                raise IRValidationError("tree_bag must be >= 0", field="tree_bag")
            if self.leaf_dim == 1:
                bad = np.flatnonzero((self.tree_output < 0) | (self.tree_output >= self.n_outputs))
                if bad.size:
                    raise IRValidationError(
                        f"tree_output {self.tree_output[bad[0]]} outside [0, {self.n_outputs})",
                        tree=int(bad[0]),
                        field="tree_output",
                    )
            else:
                if self.leaf_dim != self.n_outputs or np.any(self.tree_output != 0):
                    raise IRValidationError(
                        "vector leaves must have leaf_dim == n_outputs and tree_output == 0",
                        field="leaf_value",
                    )
        self._validate_nodes()
        self._validate_linear()
        self._validate_cover()

    def _validate_cover(self) -> None:
        c = self.cover
        if c is None:
            return
        if not isinstance(c, np.ndarray) or c.shape != (self.n_nodes,):
            raise IRValidationError(f"cover must be a 1-D array of length {self.n_nodes}", field="cover")
        bad = np.flatnonzero(~np.isfinite(c) | (c < 0))
        if bad.size:
            raise self._fail(f"cover {c[bad[0]]!r} is not a finite value >= 0", bad[0], "cover")

    def _fail(self, msg: str, node: int, field: str) -> IRValidationError:
        tree = int(np.searchsorted(self.tree_offset, node, side="right") - 1)
        return IRValidationError(
            msg, tree=tree, node=int(node - self.tree_offset[tree]), field=field
        )

    def _validate_nodes(self) -> None:
        n = self.n_nodes
        if n == 0:
            return
        tree = self.tree_of_node()
        lo = self.tree_offset[tree]
        hi = self.tree_offset[tree + 1]
        leaf = self.left < 0
        internal = ~leaf
        bad = np.flatnonzero(leaf & (self.right >= 0))
        if bad.size:
            raise self._fail("leaf has a right child (left is -1)", bad[0], "right")
        bad = np.flatnonzero(
            internal
            & ((self.left <= lo) | (self.left >= hi) | (self.right <= lo) | (self.right >= hi))
        )
        if bad.size:
            raise self._fail(
                "child index outside its tree (or pointing at the root)", bad[0], "left/right"
            )
        bad = np.flatnonzero(internal & (self.left == self.right))
        if bad.size:
            raise self._fail("left and right child are the same node", bad[0], "left/right")
        children = np.concatenate([self.left[internal], self.right[internal]])
        indeg = np.bincount(children, minlength=n)
        bad = np.flatnonzero(indeg > 1)
        if bad.size:
            raise self._fail("node has more than one parent", bad[0], "left/right")
        # reachability from each root, level by level (a cycle can't be reached from a root)
        reached = np.zeros(n, bool)
        frontier = self.tree_offset[:-1].astype(np.int64)
        while frontier.size:
            reached[frontier] = True
            f_int = frontier[self.left[frontier] >= 0]
            frontier = np.concatenate([self.left[f_int], self.right[f_int]]).astype(np.int64)
            frontier = frontier[~reached[frontier]]
        bad = np.flatnonzero(~reached)
        if bad.size:
            raise self._fail("node is not reachable from its tree's root (cycle or orphan)", bad[0], "left/right")
        bad = np.flatnonzero(internal & ((self.feature < 0) | (self.feature >= self.n_features)))
        if bad.size:
            raise self._fail(
                f"split feature {self.feature[bad[0]]} outside [0, {self.n_features})",
                bad[0],
                "feature",
            )
        bad = np.flatnonzero(internal & (self.op > Op.LE))
        if bad.size:
            raise self._fail("unknown comparison operator", bad[0], "op")
        bad = np.flatnonzero(internal & (self.missing > Missing.NAN_FALSE))
        if bad.size:
            raise self._fail("unknown missing-value policy", bad[0], "missing")
        numeric = internal & (self.categorical == 0)
        bad = np.flatnonzero(numeric & np.isnan(self.threshold))
        if bad.size:
            raise self._fail("numerical split has a NaN threshold", bad[0], "threshold")
        cat = internal & (self.categorical != 0)
        bad = np.flatnonzero(
            cat
            & (
                (self.cat_begin < 0)
                | (self.cat_end < self.cat_begin)
                | (self.cat_end > self.categories.size)
            )
        )
        if bad.size:
            raise self._fail("category range outside the category table", bad[0], "categories")
        bad = np.flatnonzero(leaf & ~np.all(np.isfinite(self.leaf_value), axis=1))
        if bad.size:
            raise self._fail("leaf value is not finite", bad[0], "leaf_value")

    def _validate_network(self) -> None:
        """A network computes the raw outputs alone: no trees, linear terms, base score or mean."""
        assert self.network is not None
        if self.n_trees or self.linear_feature.size or self.has_linear_leaves:
            raise IRValidationError("a network cannot be combined with trees or linear terms", field="network")
        if np.any(self.base_score != 0.0) or self.average_denominator is not None:
            raise IRValidationError("a network model has no base score and no averaging", field="network")
        self.network.validate(self.n_features, self.n_outputs)

    def _validate_linear(self) -> None:
        k = self.linear_feature.size
        if self.linear_output.shape != (k,) or self.linear_weight.shape != (k,):
            raise IRValidationError(
                "linear_output, linear_feature and linear_weight must have equal lengths",
                field="linear_feature",
            )
        if k:
            if np.any((self.linear_feature < 0) | (self.linear_feature >= self.n_features)):
                raise IRValidationError("linear term feature out of range", field="linear_feature")
            if np.any((self.linear_output < 0) | (self.linear_output >= self.n_outputs)):
                raise IRValidationError("linear term output out of range", field="linear_output")
            if not np.all(np.isfinite(self.linear_weight)):
                raise IRValidationError("linear weights must be finite", field="linear_weight")
            if self.n_bags > 1:
                raise IRValidationError("linear terms cannot be combined with bags", field="linear_feature")
        if self.has_linear_leaves:
            f = self.leaf_linear_feature
            assert f is not None
            if np.any((f < 0) | (f >= self.n_features)):
                raise IRValidationError("linear leaf feature out of range", field="leaf_features")
        if self.normalizers:
            from . import normalizers

            for i, spec in enumerate(self.normalizers):
                try:
                    normalizers.check_ir(spec, self.n_features)
                except normalizers.NormalizerError as exc:
                    raise IRValidationError(f"normalizer {i}: {exc}", field="normalizers") from None

    # ------------------------------------------------------------------ scoring (interpreter)
    def predict(self, X: Any, raw_score: bool = False) -> np.ndarray:
        """Score rows with the reference interpreter (see :mod:`ltrcompile.backends.interpreter`)."""
        from .backends.interpreter import predict

        return predict(self, X, raw_score=raw_score)

    def predict_leaf(self, X: Any) -> np.ndarray:
        """Source-library leaf identifiers, shape ``(n_rows, n_trees)``."""
        from .backends.interpreter import predict_leaf

        return predict_leaf(self, X)

    def predict_contrib(self, X: Any) -> np.ndarray:
        """Exact path-dependent TreeSHAP contributions (see :mod:`ltrcompile.explain`)."""
        from .explain import predict_contrib

        return predict_contrib(self, X)

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        # optional columns are written only when present, so other models' digests are unchanged
        nodes = {f.name: _enc(getattr(self, f.name)) for f in NODE_SCHEMA if getattr(self, f.name) is not None}
        nodes["leaf_value"] = _enc(self.leaf_value.ravel())
        d: dict[str, Any] = {
            "format": IR_FORMAT,
            "version": IR_VERSION,
            "model": {
                "n_features": self.n_features,
                "n_outputs": self.n_outputs,
                "leaf_dim": self.leaf_dim,
                "feature_names": self.feature_names,
                "input_cast": self.input_cast,
                "int_input_cast": self.int_input_cast,
                "input_zero_band": _encf(self.input_zero_band),
                "sparse_absent": self.sparse_absent,
                "categorical_rule": self.categorical_rule,
                "accumulate": self.accumulate,
                "base_score": _enc(self.base_score),
                "average_denominator": None
                if self.average_denominator is None
                else _encf(self.average_denominator),
                "average_raw": self.average_raw,
                "transform": self.transform,
                "transform_params": self.transform_params,
                "linear_skip_missing": self.linear_skip_missing,
                "normalizers": self.normalizers,
                "feature_categories": None
                if self.feature_categories is None
                else {str(k): v for k, v in self.feature_categories.items()},
                "provenance": Provenance.from_dict(self.provenance).to_dict(),
            },
            "trees": {
                "offset": _enc(self.tree_offset),
                "output": _enc(self.tree_output),
                "weight": _enc(self.tree_weight),
                "bag": _enc(self.tree_bag),
            },
            "nodes": nodes,
            "categories": _enc(self.categories),
            "linear": {
                "output": _enc(self.linear_output),
                "feature": _enc(self.linear_feature),
                "weight": _enc(self.linear_weight),
            },
        }
        if self.infinite_as_missing:  # written only when set, so other models' digests are unchanged
            d["model"]["infinite_as_missing"] = True
        if self.network is not None:  # likewise
            d["network"] = self.network.to_dict()
        if self.has_linear_leaves:
            d["leaf_linear"] = {
                "begin": _enc(self.leaf_linear_begin),
                "end": _enc(self.leaf_linear_end),
                "const": _enc(self.leaf_linear_const),
                "feature": _enc(self.leaf_linear_feature),
                "coeff": _enc(self.leaf_linear_coeff),
            }
        return d

    def to_json(self, indent: int | None = None) -> str:
        """Versioned JSON; floats round-trip bit-exactly (non-finite values as strings)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str | None = None) -> Ensemble:
        if not isinstance(d, dict) or d.get("format") != IR_FORMAT:
            raise ModelFormatError("not an ltrcompile IR document", path=path, field="format")
        version = d.get("version")
        if version != IR_VERSION:
            raise ModelFormatError(
                f"IR version {version!r} is not supported (this ltrcompile reads {IR_VERSION})",
                path=path,
                field="version",
            )
        _check_model_types(d.get("model"), path)
        r = DocReader(path)
        m = d["model"]  # an object: _check_model_types
        nodes = r.obj(d, "nodes", "nodes")
        leaf_dim = r.integer(m, "leaf_dim", "model.leaf_dim", 1, 2**31 - 1)
        kw: dict[str, Any] = {
            f.name: r.key_array(nodes, f.name, f.dtype, f"nodes.{f.name}")
            for f in NODE_SCHEMA
            if not f.optional or f.name in nodes
        }
        lv = r.key_array(nodes, "leaf_value", np.float64, "nodes.leaf_value")
        if lv.size % leaf_dim:
            raise ModelFormatError(f"{lv.size} leaf values for leaf_dim {leaf_dim}", path=path, field="nodes.leaf_value")
        kw["leaf_value"] = lv.reshape(-1, leaf_dim)
        kw["categories"] = r.key_array(d, "categories", np.int32, "categories")
        t = r.obj(d, "trees", "trees")
        kw.update(
            tree_offset=r.key_array(t, "offset", np.int64, "trees.offset"),
            tree_output=r.key_array(t, "output", np.int32, "trees.output"),
            tree_weight=r.key_array(t, "weight", np.float64, "trees.weight"),
            tree_bag=r.key_array(t, "bag", np.int32, "trees.bag"),
        )
        lin = r.obj(d, "linear", "linear", optional=True) or {"output": [], "feature": [], "weight": []}
        kw.update(
            linear_output=r.key_array(lin, "output", np.int32, "linear.output"),
            linear_feature=r.key_array(lin, "feature", np.int32, "linear.feature"),
            linear_weight=r.key_array(lin, "weight", np.float64, "linear.weight"),
        )
        ll = r.obj(d, "leaf_linear", "leaf_linear", optional=True)
        if ll is not None:
            kw.update(
                leaf_linear_begin=r.key_array(ll, "begin", np.int64, "leaf_linear.begin"),
                leaf_linear_end=r.key_array(ll, "end", np.int64, "leaf_linear.end"),
                leaf_linear_const=r.key_array(ll, "const", np.float64, "leaf_linear.const"),
                leaf_linear_feature=r.key_array(ll, "feature", np.int32, "leaf_linear.feature"),
                leaf_linear_coeff=r.key_array(ll, "coeff", np.float64, "leaf_linear.coeff"),
            )
        if d.get("network") is not None:
            from .network import Network

            try:
                kw["network"] = Network.from_dict(r.network(d["network"]))
            except ValueError as exc:  # Network.from_dict's own refusals (version, weight count)
                if isinstance(exc, LtrCompileError):
                    raise
                raise ModelFormatError(str(exc), path=path, field="network") from None
        denom = m.get("average_denominator")
        ens = cls(
            **kw,
            n_features=r.integer(m, "n_features", "model.n_features", 0, 2**31 - 1),
            n_outputs=r.integer(m, "n_outputs", "model.n_outputs", 1, 2**31 - 1),
            feature_names=m.get("feature_names"),
            input_cast=r.string(m, "input_cast", "model.input_cast"),
            int_input_cast=r.string(m, "int_input_cast", "model.int_input_cast", default="float64"),
            input_zero_band=r.number(m.get("input_zero_band", 0.0), "model.input_zero_band"),
            infinite_as_missing=r.boolean(m, "infinite_as_missing", "model.infinite_as_missing", False),
            sparse_absent=r.string(m, "sparse_absent", "model.sparse_absent"),
            categorical_rule=r.string(m, "categorical_rule", "model.categorical_rule"),
            accumulate=r.string(m, "accumulate", "model.accumulate"),
            base_score=r.key_array(m, "base_score", np.float64, "model.base_score"),
            average_denominator=None if denom is None else r.number(denom, "model.average_denominator"),
            average_raw=r.boolean(m, "average_raw", "model.average_raw", True),
            transform=r.string(m, "transform", "model.transform"),
            transform_params=dict(m.get("transform_params") or {}),
            linear_skip_missing=r.boolean(m, "linear_skip_missing", "model.linear_skip_missing", False),
            normalizers=m.get("normalizers"),
            feature_categories=r.feature_categories(m.get("feature_categories"), "model.feature_categories"),
            provenance=Provenance.from_dict(r.provenance(m.get("provenance"), "model.provenance")),
        )
        ens.validate()
        return ens

    @classmethod
    def from_json(cls, text: str | bytes, *, path: str | None = None) -> Ensemble:
        try:
            d = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, and an integer beyond Python's 4300 digits
            raise ModelFormatError(f"invalid JSON: {exc}", path=path) from exc
        except RecursionError:
            raise ModelFormatError("invalid JSON: nested too deeply", path=path) from None
        return cls.from_dict(d, path=path)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())

    @classmethod
    def load(cls, path: str) -> Ensemble:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(fh.read(), path=str(path))

    def digest(self) -> str:
        """SHA-256 of what decides scores: the canonical JSON without the provenance.

        The content address of compiled artifacts: the same trees read from a renamed copy, or from
        the ``.ubj`` twin of a ``.json`` file, have the same digest (and hit the build cache).
        """
        d = self.to_dict()
        del d["model"]["provenance"]
        text = json.dumps(d, sort_keys=True, allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def input_block(self) -> dict[str, Any]:
        """The artifact manifest's ``input`` block (:class:`InputSpec` as JSON)."""
        return InputSpec.of(self).to_dict()

    def summary(self) -> dict[str, Any]:
        """Counts a human wants to see: trees, leaves, depth, features used, transform."""
        depths = self.tree_depths() if self.n_trees else np.zeros(0)
        used = np.unique(self.feature[self.left >= 0])
        if self.network is not None:
            used = np.unique(self.network.inputs)
        return {
            "trees": self.n_trees,
            "nodes": self.n_nodes,
            "leaves": self.n_leaves(),
            "max_depth": int(depths.max()) if depths.size else 0,
            "n_features": self.n_features,
            "features_used": int(used.size),
            "n_outputs": self.n_outputs,
            "categorical_nodes": int(np.count_nonzero(self.categorical[self.left >= 0])),
            "transform": self.transform,
            "accumulate": self.accumulate,
            "input_cast": self.input_cast,
            "linear_terms": int(self.linear_feature.size),
            "linear_leaves": self.has_linear_leaves,
            **({"network": self.network.shape} if self.network is not None else {}),
            "provenance": Provenance.from_dict(self.provenance).to_dict(),
        }


# ---------------------------------------------------------------------- helpers
_MODEL_TYPES: dict[str, tuple[type, ...]] = {
    "feature_names": (list, type(None)),
    "input_cast": (str,),
    "int_input_cast": (str,),
    "sparse_absent": (str,),
    "categorical_rule": (str,),
    "accumulate": (str,),
    "transform": (str,),
    "transform_params": (dict, type(None)),
    "normalizers": (list, type(None)),
    "feature_categories": (dict, type(None)),
    "provenance": (dict, type(None)),
}


def _check_model_types(m: Any, path: str | None) -> None:
    """The JSON types of the IR document's ``model`` fields, checked before anything uses them (a
    list where a string belongs would otherwise fail later as an unhashable-type bug)."""
    if not isinstance(m, dict):
        raise ModelFormatError("'model' must be an object", path=path, field="model")
    for key, types in _MODEL_TYPES.items():
        if key in m and not isinstance(m[key], types):
            raise ModelFormatError(f"has JSON type {type(m[key]).__name__}", path=path, field=f"model.{key}")
    names = m.get("feature_names")
    if names is not None and not all(isinstance(n, str) for n in names):
        raise ModelFormatError("feature names must be strings", path=path, field="model.feature_names")


def _vec(value: Any, n: int, dtype: Any, default: float) -> np.ndarray:
    if value is None:
        return np.full(n, default, dtype)
    arr = np.asarray(value, dtype)
    if arr.ndim == 0:
        return np.full(n, arr.item(), dtype)
    return arr.copy()


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _encf(v: float) -> float | str:
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _decf(v: Any) -> float:
    if isinstance(v, str):
        if v not in _NONFINITE:
            raise ValueError(f"bad float {v!r}")
        return _NONFINITE[v]
    return float(v)


def _enc(arr: np.ndarray | None) -> list[Any]:
    assert arr is not None
    if arr.dtype.kind == "f":
        if np.all(np.isfinite(arr)):
            return arr.tolist()
        return [_encf(x) for x in arr.tolist()]
    return arr.tolist()


def _dec(values: Any, dtype: Any) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return np.array([_decf(v) for v in values], dtype=dtype) if any(
            isinstance(v, str) for v in values
        ) else np.asarray(values, dtype=dtype).reshape(-1)
    return np.asarray(values, dtype=dtype).reshape(-1)
