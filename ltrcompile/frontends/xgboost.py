"""XGBoost frontend: ``save_model`` JSON and UBJSON, ``get_dump`` JSON, in-memory Booster/XGBModel.

What the IR gets (``/work/shared/docs/formats-xgboost-lightgbm.md`` section A, verified against
XGBoost 1.7 / 2.0 / 3.2): every input is rounded to float32 and compared ``x < t`` (strict) against
float32 thresholds; NaN and entries absent from a sparse row are missing and go the node's default
direction; the category list stored on a categorical node is the set sent RIGHT, invalid codes
(``< 0`` or ``>= 2**24``) go left; leaf values are ``split_conditions`` (never ``base_weights``, which
are un-shrunk for ``tree_method="exact"``), except vector-leaf trees (``base_weights`` rows in 2.0-3.1,
``leaf_weights`` via ``right_children`` in 3.2+); the margin starts at ``ProbToMargin(base_score)``
computed in float32 with the C library's ``logf`` and adds one float32 term per tree in index order
(DART: ``f32(leaf * weight_drop)``, as ``predict(DMatrix)`` does; ``inplace_predict`` and the sklearn
wrapper compute ``((base + leaf) - base) * w`` for DART and can differ in the last bits).
``leaf_id`` is the XGBoost node id, which is what ``pred_leaf=True`` returns.

Loader options (all formats): ``iteration_range=(begin, end)`` (boosting rounds, ``end=0`` = all),
``num_iteration=n`` (= ``(0, n)``), ``best_iteration=True/False`` (use ``(0, best_iteration + 1)``;
default False for files and Boosters as ``Booster.predict`` does, True for sklearn ``XGBModel``s that
have one, as their ``predict`` does) and ``feature_names=[...]``. Dumps lose the intercept, the
objective and the class layout, so ``xgboost-dump`` also takes ``base_score`` (as stored by XGBoost,
in output space; default: a margin of 0, noted in the provenance), ``objective``, ``num_class``,
``num_parallel_tree`` and ``n_features``.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import limits, mathlib
from ..errors import IRValidationError, ModelFormatError, UnsupportedModelError
from ..ir import Ensemble, Missing, Op, TreeArrays
from . import _ubjson

__all__ = ["FORMATS", "accepts", "from_object", "load_dump", "load_json", "load_ubj", "sniff"]

F32 = np.float32
#: XGBoost's ``kRtEps``: 3.1+ clamps a logistic ``base_score`` into ``[kRtEps, 1 - kRtEps]``.
RT_EPS = F32(1e-6)
MAX_CATEGORY = 2**31 - 1
#: Sanity bounds on sizes read from a file (feature indices are int32 in the IR; a corrupted
#: ``num_class`` must not make us allocate terabytes for a broadcast base score).
MAX_FEATURES = 2**31 - 1
MAX_OUTPUTS = 1 << 20

#: objective -> (ProbToMargin link, output transform); see doc A.4.
OBJECTIVES: dict[str, tuple[str, str]] = {
    "reg:squarederror": ("identity", "identity"),
    "reg:linear": ("identity", "identity"),
    "reg:squaredlogerror": ("identity", "identity"),
    "reg:pseudohubererror": ("identity", "identity"),
    "reg:absoluteerror": ("identity", "identity"),
    "reg:quantileerror": ("identity", "identity"),
    # 3.3+; one alpha only: see _expectile_outputs
    "reg:expectileerror": ("identity", "identity"),
    "rank:pairwise": ("identity", "identity"),
    "rank:ndcg": ("identity", "identity"),
    "rank:map": ("identity", "identity"),
    "binary:logitraw": ("identity", "identity"),
    "binary:hinge": ("identity", "xgb_hinge"),
    "binary:logistic": ("logit", "xgb_sigmoid"),
    "reg:logistic": ("logit", "xgb_sigmoid"),
    "count:poisson": ("log", "xgb_exp"),
    "reg:gamma": ("log", "xgb_exp"),
    "reg:tweedie": ("log", "xgb_exp"),
    "survival:cox": ("log", "xgb_exp"),
    "survival:aft": ("log", "xgb_exp"),
    "multi:softprob": ("identity", "xgb_softmax"),
    "multi:softmax": ("identity", "xgb_argmax"),
}

_LOADER_OPTIONS = {"iteration_range", "num_iteration", "best_iteration", "feature_names"}
_DUMP_OPTIONS = _LOADER_OPTIONS | {
    "base_score",
    "objective",
    "num_class",
    "num_parallel_tree",
    "n_features",
}


# ============================================================================ error helpers
class _Src:
    """Where we are reading from, for error messages."""

    def __init__(self, path: str | None, size: int | None = None) -> None:
        self.path = path
        self.size = size  # bytes of the source file (None: in memory): the size limits scale with it
        self.nodes = 0  # nodes declared so far, all trees together

    def err(
        self, msg: str, *, tree: int | None = None, node: int | None = None, field: str | None = None
    ) -> ModelFormatError:
        return ModelFormatError(msg, path=self.path, tree=tree, node=node, field=field)

    def obj(self, parent: Any, key: str, field: str, tree: int | None = None) -> dict[str, Any]:
        v = self.get(parent, key, field, tree)
        if not isinstance(v, dict):
            raise self.err(f"expected an object, got {type(v).__name__}", tree=tree, field=field)
        return v

    def get(
        self, parent: Any, key: str, field: str, tree: int | None = None, node: int | None = None
    ) -> Any:
        if not isinstance(parent, dict):
            raise self.err(f"expected an object holding {key!r}", tree=tree, node=node, field=field)
        if key not in parent:
            raise self.err(f"missing key {key!r}", tree=tree, node=node, field=field)
        return parent[key]

    def integer(self, v: Any, field: str, tree: int | None = None, node: int | None = None) -> int:
        """An int written as a JSON integer or (learner params) as a decimal string."""
        if isinstance(v, bool):
            raise self.err(f"expected an integer, got {v!r}", tree=tree, node=node, field=field)
        if isinstance(v, int | np.integer):
            return int(v)
        if isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d+\s*", v):
            if len(v.strip().lstrip("+-")) > 18:  # beyond int64, and int() of 4300+ digits raises
                raise self.err(f"integer {v[:30]!r}... is out of range", tree=tree, node=node, field=field)
            return int(v)
        if isinstance(v, float | np.floating) and math.isfinite(v) and float(v).is_integer():
            return int(v)
        raise self.err(f"expected an integer, got {v!r}", tree=tree, node=node, field=field)

    def int_array(
        self, v: Any, field: str, *, n: int | None = None, tree: int | None = None
    ) -> np.ndarray:
        a = self._array(v, field, tree)
        if a.dtype.kind == "b":
            a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            raise self.err("expected an array of integers", tree=tree, field=field)
        if n is not None and a.shape[0] != n:
            raise self.err(f"array has {a.shape[0]} entries, expected {n}", tree=tree, field=field)
        return a.astype(np.int64)

    def f32_array(
        self, v: Any, field: str, *, n: int | None = None, tree: int | None = None
    ) -> np.ndarray:
        a = self._array(v, field, tree)
        if a.dtype.kind not in "iuf":
            raise self.err("expected an array of numbers", tree=tree, field=field)
        if n is not None and a.shape[0] != n:
            raise self.err(f"array has {a.shape[0]} entries, expected {n}", tree=tree, field=field)
        with np.errstate(over="ignore"):
            return a.astype(np.float64).astype(F32)

    def _array(self, v: Any, field: str, tree: int | None) -> np.ndarray:
        if isinstance(v, np.ndarray):
            a = v
        elif isinstance(v, list):
            if any(isinstance(x, bool) for x in v) and not all(isinstance(x, bool) for x in v):
                raise self.err("array mixes booleans and numbers", tree=tree, field=field)
            try:
                a = np.asarray(v)
            except (ValueError, TypeError, OverflowError) as exc:
                raise self.err(f"not a flat numeric array ({exc})", tree=tree, field=field) from exc
            if a.size == 0:
                a = np.zeros(0, np.int64)
        else:
            raise self.err(f"expected an array, got {type(v).__name__}", tree=tree, field=field)
        if a.ndim != 1:
            raise self.err("expected a flat array", tree=tree, field=field)
        return a


# ============================================================================ parsed model
@dataclass
class _Parsed:
    """A model as read from the source, before iteration slicing."""

    version: tuple[int, ...] | None
    objective: str
    booster: str
    n_features: int
    n_outputs: int
    base_margin: np.ndarray  # float32, one per output, margin space
    feature_names: list[str] | None
    feature_categories: dict[int, list[Any]] | None = None
    trees: list[TreeArrays] = field(default_factory=list)
    tree_info: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tree_weight: np.ndarray | None = None
    indptr: np.ndarray | None = None  # iteration -> first tree; None: no slicing possible
    best_iteration: int | None = None
    linear_weights: np.ndarray | None = None  # gblinear (num_feature, n_groups) float32
    linear_bias: np.ndarray | None = None  # gblinear (n_groups,) float32
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


# ============================================================================ base score
def parse_base_score(value: Any, src: _Src, field: str = "base_score") -> np.ndarray:
    """Every form XGBoost writes (``"0.500000"``, ``"5E-1"``, ``"[a,b,c]"``) -> float32 array."""
    if isinstance(value, bool):
        raise src.err(f"invalid base_score {value!r}", field=field)
    if isinstance(value, int | float | np.integer | np.floating):
        parts: list[Any] = [value]
    elif isinstance(value, list | tuple | np.ndarray):
        parts = list(value)
    elif isinstance(value, str):
        s = value.strip()
        if s[:1] in "[(" and s[-1:] in "])":
            s = s[1:-1]
        parts = [p.strip() for p in s.split(",")] if s.strip() else []
    else:
        raise src.err(f"invalid base_score {value!r}", field=field)
    out = []
    for p in parts:
        try:
            if isinstance(p, bool):
                raise ValueError(p)
            out.append(float(p))
        except (TypeError, ValueError):
            raise src.err(f"invalid base_score {value!r}", field=field) from None
    if not out:
        raise src.err(f"empty base_score {value!r}", field=field)
    with np.errstate(over="ignore"):
        arr = np.asarray(out, np.float64).astype(F32)
    if not np.all(np.isfinite(arr)):
        raise src.err(f"base_score {value!r} is not finite in float32", field=field)
    return arr


def prob_to_margin(
    base: np.ndarray, objective: str, version: tuple[int, ...] | None, src: _Src
) -> tuple[np.ndarray, list[str]]:
    """XGBoost's ``ObjFunction::ProbToMargin`` in float32 (libm ``logf``); returns notes too."""
    link = OBJECTIVES[objective][0]
    b = np.asarray(base, F32)
    notes: list[str] = []
    if link == "identity":
        m = b.copy()
    elif link == "logit":
        if version is None or tuple(version[:2]) >= (3, 1):
            if np.any((b < 0) | (b > 1)):
                raise src.err(
                    f"base_score {b.tolist()} must lie in [0, 1] for {objective}",
                    field="base_score",
                )
            clamped = np.minimum(np.maximum(b, RT_EPS), F32(1) - RT_EPS).astype(F32)
            if np.any(clamped != b):
                notes.append("base_score clamped to [1e-6, 1-1e-6] as XGBoost >= 3.1 does")
            b = clamped
        elif np.any((b <= 0) | (b >= 1)):
            raise src.err(
                f"base_score {b.tolist()} must lie in (0, 1) for {objective}", field="base_score"
            )
        with np.errstate(divide="ignore"):
            inner = (F32(1) / b).astype(F32) - F32(1)
        m = -mathlib.logf(inner.astype(F32))
    else:  # log
        with np.errstate(divide="ignore", invalid="ignore"):
            m = mathlib.logf(b)
    m = np.asarray(m, F32)
    if not np.all(np.isfinite(m)):
        raise UnsupportedModelError(
            f"base_score {b.tolist()} gives a non-finite margin {m.tolist()} for {objective}",
            path=src.path,
            field="base_score",
        )
    return m, notes


def _base_margin(
    value: Any, n_outputs: int, objective: str, version: tuple[int, ...] | None, src: _Src
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A stored ``base_score`` (output space) -> (float32 base per output, its margin, notes)."""
    base = parse_base_score(value, src)
    if base.size == 1:
        base = np.full(n_outputs, base[0], F32)
    elif base.size != n_outputs:
        raise src.err(
            f"base_score has {base.size} values for a model with {n_outputs} outputs",
            field="base_score",
        )
    margin, notes = prob_to_margin(base, objective, version, src)
    return base, margin, notes


def _objective(name: Any, src: _Src) -> str:
    if not isinstance(name, str):
        raise src.err(f"objective name must be a string, got {name!r}", field="objective")
    if name not in OBJECTIVES:
        raise UnsupportedModelError(
            f"objective {name!r} is not supported (supported: {', '.join(sorted(OBJECTIVES))})",
            path=src.path,
            field="objective",
        )
    return name


def _expectile_outputs(obj: dict[str, Any], n_outputs: int, src: _Src) -> None:
    """``reg:expectileerror`` (XGBoost 3.3+, ``expectile_obj.cc``) with one ``expectile_alpha``:
    ``PredTransform`` and ``ProbToMargin`` only touch outputs 1.., so one output is the identity (as
    ``reg:quantileerror``). Several alphas are refused: output ``j`` is then
    ``out[j-1] + kRtEps + SoftPlus(margin[j])`` in float32 (non-crossing reparameterisation) and the
    stored base_score goes through ``SoftPlusInv``; ltrcompile does not reproduce that transform yet."""
    field = "objective.expectile_loss_param.expectile_alpha"
    param = obj.get("expectile_loss_param")
    if param is not None:
        if not isinstance(param, dict):
            raise src.err("expected an object", field="objective.expectile_loss_param")
        alpha = param.get("expectile_alpha")
        if alpha is not None:
            values = parse_base_score(alpha, src, field=field)  # "[0.1,0.9]", as ParamArray writes it
            if values.size != n_outputs:
                raise src.err(f"{values.size} expectile alphas for a model with {n_outputs} outputs", field=field)
    if n_outputs > 1:
        raise UnsupportedModelError(
            f"reg:expectileerror with {n_outputs} alphas: outputs 2.. are cumulative softplus gaps "
            "(out[j] = out[j-1] + 1e-6 + SoftPlus(margin[j]) in float32), a transform ltrcompile does "
            "not reproduce yet; a single-alpha expectile model loads",
            path=src.path,
            field=field,
        )


# ============================================================================ save_model documents
def _version(doc: dict[str, Any], src: _Src) -> tuple[int, ...] | None:
    v = doc.get("version")
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise src.err(f"version must be a list of integers, got {v!r}", field="version")
    return tuple(int(x) for x in v)


def _strings(v: Any, src: _Src, field: str) -> list[str]:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise src.err("expected a list of strings", field=field)
    return list(v)


def parse_document(doc: Any, src: _Src) -> _Parsed:
    """A decoded ``save_model`` document (JSON or UBJSON) -> :class:`_Parsed`."""
    if not isinstance(doc, dict):
        raise src.err("an XGBoost model is a JSON object with a 'learner' key", field="learner")
    version = _version(doc, src)
    learner = src.obj(doc, "learner", "learner")
    lmp = src.obj(learner, "learner_model_param", "learner_model_param")
    n_features = src.integer(src.get(lmp, "num_feature", "num_feature"), "num_feature")
    num_class = src.integer(lmp.get("num_class", "0"), "num_class")
    num_target = src.integer(lmp.get("num_target", "1"), "num_target")
    limits.check_features(n_features, src.size, path=src.path, field="learner_model_param.num_feature")
    if not 0 <= n_features <= MAX_FEATURES or not 0 <= num_class <= MAX_OUTPUTS or not 1 <= num_target <= MAX_OUTPUTS:
        raise src.err(
            f"invalid sizes num_feature={n_features} num_class={num_class} num_target={num_target}",
            field="learner_model_param",
        )
    n_outputs = max(num_class, num_target, 1)
    objective = _objective(src.get(src.obj(learner, "objective", "objective"), "name", "objective"), src)
    if objective == "reg:expectileerror":
        _expectile_outputs(learner["objective"], n_outputs, src)
    stored = src.get(lmp, "base_score", "base_score")
    base, margin, notes = _base_margin(stored, n_outputs, objective, version, src)

    names = _strings(learner.get("feature_names", []), src, "feature_names")
    if names and len(names) != n_features:
        raise src.err(
            f"{len(names)} feature names for num_feature={n_features}", field="feature_names"
        )
    if names and len(set(names)) != len(names):
        raise src.err("feature names are not unique", field="feature_names")

    attrs = learner.get("attributes", {})
    best = None
    if isinstance(attrs, dict) and "best_iteration" in attrs:
        best = src.integer(attrs["best_iteration"], "attributes.best_iteration")

    p = _Parsed(
        version=version,
        objective=objective,
        booster="",
        n_features=n_features,
        n_outputs=n_outputs,
        base_margin=margin,
        feature_names=names or None,
        best_iteration=best,
        notes=notes,
    )
    p.extra["base_score"] = base.tolist()
    gb = src.obj(learner, "gradient_booster", "gradient_booster")
    name = src.get(gb, "name", "gradient_booster.name")
    if name == "gblinear":
        p.booster = "gblinear"
        _parse_gblinear(src.obj(gb, "model", "gradient_booster.model"), p, src)
        return p
    if name == "dart":
        p.booster = "dart"
        inner = src.obj(gb, "gbtree", "gradient_booster.gbtree")
        model = src.obj(inner, "model", "gradient_booster.gbtree.model")
        weights = src.get(gb, "weight_drop", "weight_drop")
    elif name == "gbtree":
        p.booster = "gbtree"
        model = src.obj(gb, "model", "gradient_booster.model")
        weights = model.get("weight_drop")  # 3.3+: DART folded into gbtree
        if weights is not None:
            p.booster = "dart"
    else:
        raise UnsupportedModelError(
            f"gradient booster {name!r} is not supported (gbtree, dart, gblinear)",
            path=src.path,
            field="gradient_booster.name",
        )
    _parse_gbtree(model, p, src)
    if weights is not None:
        w = src.f32_array(weights, "weight_drop")
        n = len(p.trees)
        if w.size > n:
            raise src.err(f"weight_drop has {w.size} entries for {n} trees", field="weight_drop")
        if not np.all(np.isfinite(w)):
            raise src.err("weight_drop values must be finite", field="weight_drop")
        full = np.ones(n, F32)
        full[: w.size] = w  # 3.3+ may store fewer weights than trees (rest are 1)
        p.tree_weight = full
    if "cats" in model:
        p.feature_categories = _parse_cats(model["cats"], n_features, src)
    return p


def _parse_gblinear(model: dict[str, Any], p: _Parsed, src: _Src) -> None:
    w = src.f32_array(src.get(model, "weights", "gradient_booster.model.weights"), "weights")
    G, F = p.n_outputs, p.n_features
    if w.size != (F + 1) * G:
        raise src.err(
            f"gblinear has {w.size} weights, expected (num_feature + 1) * groups = {(F + 1) * G}",
            field="weights",
        )
    if not np.all(np.isfinite(w)):
        raise src.err("gblinear weights must be finite", field="weights")
    p.linear_weights = w[: F * G].reshape(F, G)
    p.linear_bias = w[F * G :]


def _parse_cats(cats: Any, n_features: int, src: _Src) -> dict[int, list[Any]] | None:
    """3.1+ ``cats``: the training category labels per feature (code i = label i)."""
    if not isinstance(cats, dict):
        raise src.err("expected an object", field="cats")
    enc = cats.get("enc", [])
    if isinstance(enc, np.ndarray):
        enc = enc.tolist()
    if not isinstance(enc, list):
        raise src.err("expected a list", field="cats.enc")
    if not enc:
        return None
    if len(enc) != n_features:
        raise src.err(f"{len(enc)} encodings for {n_features} features", field="cats.enc")
    out: dict[int, list[Any]] = {}
    for j, e in enumerate(enc):
        fld = f"cats.enc[{j}]"
        if not isinstance(e, dict):
            raise src.err("expected an object", field=fld)
        values = e.get("values", [])
        if "offsets" in e:  # strings: UTF-8 bytes (written as int8) + offsets
            offsets = src.int_array(e["offsets"], fld + ".offsets")
            raw = src.int_array(values, fld + ".values")
            if raw.size == 0 and offsets.size == 0:
                continue
            if offsets.size < 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != raw.size:
                raise src.err("string offsets do not partition the values", field=fld + ".offsets")
            if np.any((raw < -128) | (raw > 255)):
                raise src.err("string bytes out of range", field=fld + ".values")
            data = bytes((raw & 0xFF).astype(np.uint8).tolist())
            labels: list[Any] = []
            for k in range(offsets.size - 1):
                chunk = data[offsets[k] : offsets[k + 1]]
                try:
                    labels.append(chunk.decode("utf-8"))
                except UnicodeDecodeError:
                    raise UnsupportedModelError(
                        f"category label {k} of feature {j} is not valid UTF-8 ({chunk!r}); "
                        "XGBoost stores non-ASCII labels truncated, so DataFrame re-coding by label "
                        "cannot be reproduced",
                        path=src.path,
                        field=fld + ".values",
                    ) from None
        else:
            arr = src._array(values, fld + ".values", None)
            if arr.size == 0:
                continue
            if arr.dtype.kind in "iu":
                labels = [int(x) for x in arr.tolist()]
            elif arr.dtype.kind == "f":
                labels = [float(x) for x in arr.tolist()]
            else:
                raise src.err("category labels must be numbers", field=fld + ".values")
        if len(set(labels)) != len(labels):
            raise src.err("duplicate category labels", field=fld + ".values")
        out[j] = labels
    return out or None


def _parse_gbtree(model: dict[str, Any], p: _Parsed, src: _Src) -> None:
    trees_json = src.get(model, "trees", "trees")
    if not isinstance(trees_json, list):
        raise src.err("expected a list of trees", field="trees")
    n = len(trees_json)
    gmp = model.get("gbtree_model_param", {})
    if not isinstance(gmp, dict):
        raise src.err("expected an object", field="gbtree_model_param")
    num_trees = src.integer(gmp.get("num_trees", n), "gbtree_model_param.num_trees")
    limits.check_trees(num_trees, src.size, path=src.path, field="gbtree_model_param.num_trees")
    if num_trees != n:
        raise src.err(f"num_trees is {num_trees} but {n} trees are stored", field="num_trees")
    npt = src.integer(gmp.get("num_parallel_tree", 1), "gbtree_model_param.num_parallel_tree")
    if npt < 1:
        raise src.err(f"num_parallel_tree must be >= 1, got {npt}", field="num_parallel_tree")
    p.extra["num_parallel_tree"] = npt
    info = src.int_array(src.get(model, "tree_info", "tree_info"), "tree_info", n=n)
    bad = np.flatnonzero((info < 0) | (info >= p.n_outputs))
    if bad.size:
        raise src.err(
            f"tree_info {info[bad[0]]} outside [0, {p.n_outputs})", tree=int(bad[0]), field="tree_info"
        )
    # XGBoost loads trees[id]; ids must be a permutation of 0..n-1
    order = list(range(n))
    ids = []
    for i, t in enumerate(trees_json):
        if not isinstance(t, dict):
            raise src.err("a tree must be an object", tree=i)
        ids.append(src.integer(t["id"], "id", tree=i) if "id" in t else i)
    if sorted(ids) != order:
        raise src.err("tree ids are not a permutation of 0..num_trees-1", field="id")
    by_id = [None] * n
    for i, tid in enumerate(ids):
        by_id[tid] = trees_json[i]
    trees = [_parse_tree(by_id[i], i, p, src) for i in range(n)]
    dims = {t.leaf_value.shape[1] for t in trees}
    if len(dims) > 1:
        raise src.err("trees mix scalar and vector leaves", field="size_leaf_vector")
    vector = bool(trees) and dims.pop() > 1
    if vector and np.any(info != 0):
        raise src.err("vector-leaf trees must all have tree_info 0", field="tree_info")
    p.trees = trees
    p.tree_info = info
    if "iteration_indptr" in model:
        ind = src.int_array(model["iteration_indptr"], "iteration_indptr")
        if ind.size < 1 or ind[0] != 0 or ind[-1] != n or np.any(np.diff(ind) < 0):
            raise src.err(
                "iteration_indptr must rise from 0 to the number of trees", field="iteration_indptr"
            )
        p.indptr = ind
    else:  # < 2.0: every round has num_parallel_tree trees per output group
        layer = npt * (1 if vector else p.n_outputs)
        if n % layer:
            p.notes.append(
                f"{n} trees is not a multiple of {layer} trees per round; iteration slicing disabled"
            )
            p.indptr = None
        else:
            p.indptr = np.arange(0, n + 1, layer, dtype=np.int64)


def _parse_tree(t: Any, tid: int, p: _Parsed, src: _Src) -> TreeArrays:
    """One tree object -> TreeArrays (deleted / unreachable nodes removed)."""
    if not isinstance(t, dict):
        raise src.err("a tree must be an object", tree=tid)
    tp = src.obj(t, "tree_param", "tree_param", tree=tid)
    n = src.integer(src.get(tp, "num_nodes", "tree_param.num_nodes", tid), "num_nodes", tid)
    if n < 1:
        raise src.err(f"num_nodes must be >= 1, got {n}", tree=tid, field="num_nodes")
    src.nodes += n
    limits.check_nodes(src.nodes, src.size, path=src.path, tree=tid, field="tree_param.num_nodes",
                       what="node count (this tree and those before it)")
    K = src.integer(tp.get("size_leaf_vector", 1), "size_leaf_vector", tid)
    K = max(K, 1)
    if K > 1 and K != p.n_outputs:
        raise src.err(
            f"size_leaf_vector {K} but the model has {p.n_outputs} targets",
            tree=tid,
            field="size_leaf_vector",
        )

    def ints(key: str) -> np.ndarray:
        return src.int_array(src.get(t, key, key, tid), key, n=n, tree=tid)

    left = ints("left_children")
    right = ints("right_children")
    feat = ints("split_indices")
    dleft = ints("default_left")
    cond = src.f32_array(src.get(t, "split_conditions", "split_conditions", tid), "split_conditions", n=n, tree=tid)
    stype = ints("split_type") if "split_type" in t else np.zeros(n, np.int64)

    # walk from the root: reachable nodes only, children in range, every node reached once
    seen = np.zeros(n, bool)
    seen[0] = True
    stack = [0]
    internal: list[int] = []
    leaves: list[int] = []
    while stack:
        i = stack.pop()
        lc = int(left[i])
        if lc == -1:
            leaves.append(i)
            continue
        rc = int(right[i])
        for child, key in ((lc, "left_children"), (rc, "right_children")):
            if not 0 < child < n:
                raise src.err(f"child index {child} outside [1, {n})", tree=tid, node=i, field=key)
            if seen[child]:
                raise src.err(
                    f"child {child} is reached twice (cycle or shared child)", tree=tid, node=i, field=key
                )
            seen[child] = True
            stack.append(child)
        internal.append(i)
    ia = np.asarray(sorted(internal), np.int64)
    la = np.asarray(sorted(leaves), np.int64)

    arr = TreeArrays.empty(n, K, op=Op.LT, missing=Missing.NAN_DEFAULT)
    if ia.size:
        f = feat[ia]
        bad = np.flatnonzero((f < 0) | (f >= p.n_features))
        if bad.size:
            raise src.err(
                f"split feature {f[bad[0]]} outside [0, {p.n_features})",
                tree=tid,
                node=int(ia[bad[0]]),
                field="split_indices",
            )
        st = stype[ia]
        bad = np.flatnonzero((st != 0) & (st != 1))
        if bad.size:
            raise src.err(
                f"unknown split_type {st[bad[0]]} (0 numerical, 1 categorical)",
                tree=tid,
                node=int(ia[bad[0]]),
                field="split_type",
            )
        d = dleft[ia]
        bad = np.flatnonzero((d != 0) & (d != 1))
        if bad.size:
            raise src.err(
                f"default_left must be 0 or 1, got {d[bad[0]]}",
                tree=tid,
                node=int(ia[bad[0]]),
                field="default_left",
            )
        arr.feature[ia] = f
        arr.left[ia] = left[ia]
        arr.right[ia] = right[ia]
        arr.default_left[ia] = d
        thr = cond[ia].astype(np.float64)
        # x < NaN is never true: the same as x < -inf (NaN inputs take the default either way)
        thr[np.isnan(thr)] = -np.inf
        cat = st == 1
        thr[cat] = 0.0
        arr.threshold[ia] = thr
        arr.categorical[ia] = cat
        arr.cat_left[ia] = 0  # XGBoost: the stored set goes RIGHT
        if cat.any():
            sets = _category_sets(t, tid, n, src)
            for node in ia[cat]:
                arr.cat_sets[int(node)] = sets.get(int(node), np.zeros(0, np.int64))
    if K == 1:
        vals = cond[la].astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(vals))
        if bad.size:
            raise src.err("leaf value is not finite", tree=tid, node=int(la[bad[0]]), field="split_conditions")
        arr.leaf_value[la, 0] = vals
    else:
        arr.leaf_value[la] = _vector_leaves(t, tid, n, K, la, right, src)
    arr.leaf_id[la] = la
    if "sum_hessian" in t:  # RTreeNodeStat::sum_hess (float): the cover XGBoost's TreeSHAP splits by
        hess = src.f32_array(t["sum_hessian"], "sum_hessian", n=n, tree=tid).astype(np.float64)
        nodes = np.concatenate([ia, la])
        bad = nodes[~(np.isfinite(hess[nodes]) & (hess[nodes] >= 0))]
        if bad.size:
            raise src.err("sum_hessian must be finite and >= 0", tree=tid, node=int(bad[0]), field="sum_hessian")
        arr.cover = hess
    return arr.reachable_only()


def _vector_leaves(
    t: dict[str, Any], tid: int, n: int, K: int, leaves: np.ndarray, right: np.ndarray, src: _Src
) -> np.ndarray:
    if "leaf_weights" in t:  # 3.2+: right_children[leaf] is the row in leaf_weights
        lw = src.f32_array(t["leaf_weights"], "leaf_weights", tree=tid)
        if lw.size % K:
            raise src.err(f"leaf_weights length {lw.size} is not a multiple of {K}", tree=tid, field="leaf_weights")
        rows = lw.reshape(-1, K)
        idx = right[leaves]
        bad = np.flatnonzero((idx < 0) | (idx >= rows.shape[0]))
        if bad.size:
            raise src.err(
                f"leaf row {idx[bad[0]]} outside [0, {rows.shape[0]})",
                tree=tid,
                node=int(leaves[bad[0]]),
                field="right_children",
            )
        vals = rows[idx].astype(np.float64)
        field_name = "leaf_weights"
    else:  # 2.0-3.1: base_weights is node-major (num_nodes x K)
        bw = src.f32_array(src.get(t, "base_weights", "base_weights", tid), "base_weights", n=n * K, tree=tid)
        vals = bw.reshape(n, K)[leaves].astype(np.float64)
        field_name = "base_weights"
    bad = np.flatnonzero(~np.all(np.isfinite(vals), axis=1))
    if bad.size:
        raise src.err("leaf value is not finite", tree=tid, node=int(leaves[bad[0]]), field=field_name)
    return vals


def _category_sets(t: dict[str, Any], tid: int, n: int, src: _Src) -> dict[int, np.ndarray]:
    """``categories*`` CSR -> {node: sorted category codes} (the set sent right)."""
    keys = ("categories", "categories_nodes", "categories_segments", "categories_sizes")
    for k in keys:
        if k not in t:
            raise src.err(f"categorical split but no {k!r}", tree=tid, field=k)
    cats = src.int_array(t["categories"], "categories", tree=tid)
    nodes = src.int_array(t["categories_nodes"], "categories_nodes", tree=tid)
    segs = src.int_array(t["categories_segments"], "categories_segments", n=nodes.size, tree=tid)
    sizes = src.int_array(t["categories_sizes"], "categories_sizes", n=nodes.size, tree=tid)
    out: dict[int, np.ndarray] = {}
    for j in range(nodes.size):
        node, s, k = int(nodes[j]), int(segs[j]), int(sizes[j])
        if not 0 <= node < n:
            raise src.err(f"categories_nodes entry {node} outside [0, {n})", tree=tid, field="categories_nodes")
        if node in out:
            raise src.err("node listed twice in categories_nodes", tree=tid, node=node, field="categories_nodes")
        if s < 0 or k < 0 or s + k > cats.size:
            raise src.err(
                f"category segment [{s}, {s + k}) outside the {cats.size} categories",
                tree=tid,
                node=node,
                field="categories_segments",
            )
        vals = cats[s : s + k]
        if vals.size and (vals.min() < 0 or vals.max() > MAX_CATEGORY):
            raise src.err("category codes must lie in [0, 2**31)", tree=tid, node=node, field="categories")
        if vals.size:
            limits.check_category(int(vals.max()), src.size, path=src.path, tree=tid, node=node, field="categories")
        out[node] = np.unique(vals)
    return out


# ============================================================================ get_dump JSON
def _dump_trees(doc: Any, src: _Src) -> tuple[list[Any], str | None]:
    objective = None
    if isinstance(doc, dict):
        if "splits" not in doc:
            raise src.err("a dump wrapper object needs a 'splits' list", field="splits")
        objective = doc.get("objective")
        if objective is not None and not isinstance(objective, str):
            raise src.err("objective must be a string", field="objective")
        doc = doc["splits"]
    if not isinstance(doc, list):
        raise src.err("an XGBoost dump is a JSON array of trees", field="splits")
    trees = []
    for i, t in enumerate(doc):
        if isinstance(t, str):  # a json.dump of get_dump(): list of JSON strings
            try:
                t = json.loads(t)
            except (ValueError, RecursionError) as exc:  # also an integer beyond 4300 digits
                raise src.err(f"tree is not valid JSON: {exc}", tree=i) from None
        if not isinstance(t, dict):
            raise src.err("a tree must be an object", tree=i)
        trees.append(t)
    return trees, objective


def _flatten_dump_tree(t: dict[str, Any], tid: int, src: _Src) -> list[dict[str, Any]]:
    """Nodes in visiting order (root first), each checked for its keys; ids unique."""
    nodes: list[dict[str, Any]] = []
    ids: set[int] = set()
    stack = [t]
    while stack:
        nd = stack.pop()
        if not isinstance(nd, dict):
            raise src.err("a node must be an object", tree=tid, field="children")
        nid = src.integer(src.get(nd, "nodeid", "nodeid", tid), "nodeid", tid)
        if nid < 0 or nid > np.iinfo(np.int32).max:
            raise src.err(f"nodeid {nid} out of range", tree=tid, field="nodeid")
        if nid in ids:
            raise src.err(f"nodeid {nid} appears twice", tree=tid, node=nid, field="nodeid")
        ids.add(nid)
        nodes.append(nd)
        if "leaf" in nd:
            continue
        kids = src.get(nd, "children", "children", tid, nid)
        if not isinstance(kids, list) or len(kids) != 2:
            raise src.err("a split node needs exactly two children", tree=tid, node=nid, field="children")
        stack.extend(reversed(kids))
    return nodes


def _feature_resolver(names: list[str] | None) -> Any:
    table = {n: i for i, n in enumerate(names)} if names else None
    seen: dict[str, int] = {}

    def resolve(name: str) -> int | None:
        if table is not None:
            return table.get(name)
        m = re.fullmatch(r"f(\d{1,10})", name)  # longer: beyond int32, a name like any other
        if m:
            return int(m.group(1))
        return seen.setdefault(name, -2 - len(seen))  # provisional id <= -2, numbered later

    resolve.first_seen = seen  # type: ignore[attr-defined]
    return resolve


def parse_dump(doc: Any, src: _Src, options: dict[str, Any]) -> _Parsed:
    trees_json, wrapped_objective = _dump_trees(doc, src)
    objective = options.get("objective") or wrapped_objective
    notes: list[str] = []
    if objective is None:
        objective = "reg:squarederror"
        notes.append("dump has no objective: raw margins are returned as is (identity transform)")
    objective = _objective(objective, src)
    names = options.get("feature_names")
    resolve = _feature_resolver(names)
    npt = int(options.get("num_parallel_tree") or 1)
    num_class = int(options.get("num_class") or 0)

    built: list[TreeArrays] = []
    max_feature = -1
    raw_trees = [_flatten_dump_tree(t, tid, src) for tid, t in enumerate(trees_json)]
    leaf_dims = set()
    for nodes in raw_trees:
        for nd in nodes:
            if "leaf" in nd:
                leaf_dims.add(len(nd["leaf"]) if isinstance(nd["leaf"], list) else 1)
    if len(leaf_dims) > 1:
        raise src.err("trees mix scalar and vector leaves", field="leaf")
    K = leaf_dims.pop() if leaf_dims else 1
    if K < 1:
        raise src.err("a vector leaf must hold at least one value", field="leaf")
    for tid, nodes in enumerate(raw_trees):
        arr, mf = _dump_tree_arrays(nodes, tid, K, resolve, src)
        max_feature = max(max_feature, mf)
        built.append(arr)
    first_seen: dict[str, int] = resolve.first_seen  # type: ignore[attr-defined]
    feature_names = list(names) if names else None
    if first_seen:  # names that are neither f<i> nor given: number them by first appearance
        offset = max_feature + 1
        order = sorted(first_seen, key=lambda s: -first_seen[s])
        remap = {first_seen[s]: offset + k for k, s in enumerate(order)}
        for arr in built:
            neg = arr.feature < -1
            arr.feature[neg] = [remap[int(v)] for v in arr.feature[neg]]
        max_feature = offset + len(order) - 1
        if offset == 0:
            feature_names = order
        notes.append("features named in the dump were numbered in order of first appearance")
    n_features = options.get("n_features")
    if n_features is None:
        n_features = len(names) if names else max_feature + 1
    n_features = int(n_features)
    if max_feature >= n_features:
        raise src.err(f"split feature {max_feature} outside [0, {n_features})", field="split")

    if K > 1:
        n_outputs = K
        info = np.zeros(len(built), np.int64)
    elif objective.startswith("multi:"):
        if num_class < 2:
            raise src.err(f"{objective} dumps need num_class=<k> (k >= 2)", field="num_class")
        n_outputs = num_class
        info = (np.arange(len(built)) // npt) % num_class
    else:
        n_outputs = max(num_class, 1)
        info = (np.arange(len(built)) // npt) % n_outputs
    if "base_score" in options and options["base_score"] is not None:
        _, margin, more = _base_margin(options["base_score"], n_outputs, objective, None, src)
        notes += more
    else:
        margin = np.zeros(n_outputs, F32)
        notes.append("dumps carry no base_score: margin starts at 0 (pass base_score=...)")
    layer = npt * (1 if K > 1 else n_outputs)
    n = len(built)
    p = _Parsed(
        version=None,
        objective=objective,
        booster="gbtree",
        n_features=n_features,
        n_outputs=n_outputs,
        base_margin=margin,
        feature_names=feature_names,
        trees=built,
        tree_info=info,
        indptr=np.arange(0, n + 1, layer, dtype=np.int64) if n % layer == 0 else None,
        notes=notes,
    )
    p.extra["num_parallel_tree"] = npt
    return p


def _dump_tree_arrays(
    nodes: list[dict[str, Any]], tid: int, K: int, resolve: Any, src: _Src
) -> tuple[TreeArrays, int]:
    local = {int(nd["nodeid"]): i for i, nd in enumerate(nodes)}
    arr = TreeArrays.empty(len(nodes), K, op=Op.LT, missing=Missing.NAN_DEFAULT)
    max_feature = -1
    for i, nd in enumerate(nodes):
        nid = int(nd["nodeid"])
        if "leaf" in nd:
            leaf = nd["leaf"]
            vals = leaf if isinstance(leaf, list) else [leaf]
            if len(vals) != K or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in vals
            ):
                raise src.err(f"leaf must be {K} number(s), got {leaf!r}", tree=tid, node=nid, field="leaf")
            _check_float64(vals, src, tid, nid, "leaf")
            with np.errstate(over="ignore"):
                v32 = np.asarray(vals, np.float64).astype(F32)
            if not np.all(np.isfinite(v32)):
                raise src.err("leaf value is not finite", tree=tid, node=nid, field="leaf")
            arr.leaf_value[i] = v32.astype(np.float64)
            arr.leaf_id[i] = nid
            _dump_cover(arr, i, nd, tid, nid, src)
            continue
        split = src.get(nd, "split", "split", tid, nid)
        if not isinstance(split, str):
            raise src.err("split must be a feature name", tree=tid, node=nid, field="split")
        f = resolve(split)
        if f is None:
            raise src.err(f"split feature {split!r} is not in feature_names", tree=tid, node=nid, field="split")
        if f >= limits.INT32_MAX:
            raise src.err(f"split feature index {f} does not fit int32", tree=tid, node=nid, field="split")
        max_feature = max(max_feature, f)
        if "split_condition" not in nd:
            raise UnsupportedModelError(
                "split without split_condition (indicator feature): the dump does not say where "
                "values go; use the save_model JSON instead",
                path=src.path,
                tree=tid,
                node=nid,
                field="split_condition",
            )
        yes = src.integer(src.get(nd, "yes", "yes", tid, nid), "yes", tid, nid)
        no = src.integer(src.get(nd, "no", "no", tid, nid), "no", tid, nid)
        miss = src.integer(src.get(nd, "missing", "missing", tid, nid), "missing", tid, nid)
        kid_ids = {int(c["nodeid"]) for c in nd["children"]}  # checked by _flatten_dump_tree
        if yes == no or {yes, no} != kid_ids:
            raise src.err(
                f"yes/no ({yes}, {no}) must name the two children {sorted(kid_ids)}",
                tree=tid,
                node=nid,
                field="yes",
            )
        if miss not in (yes, no):
            raise src.err(f"missing {miss} is neither yes nor no", tree=tid, node=nid, field="missing")
        cond = nd["split_condition"]
        arr.feature[i] = f
        if isinstance(cond, list):  # categorical: the listed categories go "yes" = right
            codes = src.int_array(cond, "split_condition", tree=tid)
            if codes.size and (codes.min() < 0 or codes.max() > MAX_CATEGORY):
                raise src.err("category codes must lie in [0, 2**31)", tree=tid, node=nid, field="split_condition")
            if codes.size:
                limits.check_category(int(codes.max()), src.size, path=src.path, tree=tid, node=nid, field="split_condition")
            arr.categorical[i] = 1
            arr.cat_left[i] = 0
            arr.cat_sets[i] = np.unique(codes)
            lid, rid = no, yes
        else:
            if isinstance(cond, bool) or not isinstance(cond, int | float):
                raise src.err(f"split_condition must be a number, got {cond!r}", tree=tid, node=nid, field="split_condition")
            _check_float64([cond], src, tid, nid, "split_condition")
            with np.errstate(over="ignore"):
                t32 = float(F32(cond))
            arr.threshold[i] = -math.inf if math.isnan(t32) else t32
            lid, rid = yes, no
        arr.left[i] = local[lid]
        arr.right[i] = local[rid]
        arr.default_left[i] = 1 if miss == lid else 0
        _dump_cover(arr, i, nd, tid, nid, src)
    if arr.cover is not None and np.isnan(arr.cover).any():  # with_stats covers on every node or none
        nid = int(nodes[int(np.flatnonzero(np.isnan(arr.cover))[0])]["nodeid"])
        raise src.err("some nodes have a cover and this one has none", tree=tid, node=nid, field="cover")
    return arr, max_feature


def _check_float64(values: list[Any], src: _Src, tid: int, nid: int, field: str) -> None:
    """JSON integers beyond float64 (``1`` followed by 400 digits): XGBoost's reader refuses them."""
    for v in values:
        if isinstance(v, int) and abs(v) >= 2**1024:
            raise src.err(f"integer of {v.bit_length()} bits is out of float64 range", tree=tid, node=nid, field=field)


def _dump_cover(arr: TreeArrays, i: int, nd: dict[str, Any], tid: int, nid: int, src: _Src) -> None:
    """``cover`` of a ``with_stats`` dump node (the float sum_hess, printed round-trip exact)."""
    if "cover" not in nd:
        return
    c = nd["cover"]
    _check_float64([c], src, tid, nid, "cover")
    if isinstance(c, bool) or not isinstance(c, int | float) or not (math.isfinite(c) and c >= 0):
        raise src.err(f"cover must be a finite number >= 0, got {c!r}", tree=tid, node=nid, field="cover")
    if arr.cover is None:
        arr.cover = np.full(arr.n_nodes, np.nan)
    arr.cover[i] = float(F32(c))


# ============================================================================ IR assembly
def _iteration_range_option(options: dict[str, Any]) -> tuple[int, int] | None:
    """Validate the iteration options (user errors: ValueError / TypeError)."""
    given = [k for k in ("iteration_range", "num_iteration") if options.get(k) is not None]
    if options.get("best_iteration"):
        given.append("best_iteration")
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(given)}")
    best = options.get("best_iteration")
    if best is not None and not isinstance(best, bool | np.bool_):
        raise TypeError(f"best_iteration must be True or False, got {best!r}")
    rng = options.get("iteration_range")
    num_it = options.get("num_iteration")
    if num_it is not None:
        if isinstance(num_it, bool) or not isinstance(num_it, int | np.integer) or num_it < 0:
            raise ValueError(f"num_iteration must be an integer >= 0, got {num_it!r}")
        return (0, int(num_it))
    if rng is None:
        return None
    try:
        b, e = rng
        if any(isinstance(x, bool) or not isinstance(x, int | np.integer) for x in (b, e)):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"iteration_range must be a pair of integers, got {rng!r}") from None
    if b < 0 or e < 0:
        raise ValueError(f"iteration_range {rng!r} has a negative bound")
    return (int(b), int(e))


def _iteration_slice(
    p: _Parsed, options: dict[str, Any], default_best: bool
) -> tuple[int, int, tuple[int, int] | None, str]:
    """Resolve the iteration options -> (first tree, end tree, rounds kept, rule), as XGBoost does.

    ``rule``: ``all``, ``best_iteration`` or ``iteration_range`` (what chose the window)."""
    n = len(p.trees)
    rng = _iteration_range_option(options)
    use_best = options.get("best_iteration")
    if use_best is None and rng is None:
        use_best = default_best and p.best_iteration is not None and p.booster != "gblinear"
    rule = "iteration_range" if rng is not None else "all"
    if use_best:
        if p.best_iteration is None:
            raise ValueError("best_iteration=True but the model has no best_iteration attribute")
        rng = (0, p.best_iteration + 1)
        rule = "best_iteration"
    if p.booster == "gblinear":
        # gblinear checks only that the range starts at 0 and ignores its end
        if rng is not None and rng[0] != 0:
            raise UnsupportedModelError(
                "gblinear models do not support iteration ranges (XGBoost: 'Linear booster does "
                "not support prediction range')",
                field="iteration_range",
            )
        return 0, 0, None, "all"
    layers_all = None if p.indptr is None else p.indptr.size - 1
    if rng is None or rng == (0, 0):
        return 0, n, None if layers_all is None else (0, layers_all), "all"
    if p.indptr is None:
        raise UnsupportedModelError(
            "cannot slice iterations: the number of trees per round is unknown",
            field="iteration_range",
        )
    b, e = rng
    layers = p.indptr.size - 1
    if e == 0:
        e = layers
    if not b <= e <= layers:
        raise ValueError(f"iteration_range ({b}, {e}) is outside the model's {layers} iterations")
    return int(p.indptr[b]), int(p.indptr[e]), (int(b), int(e)), rule


def build_ensemble(
    p: _Parsed, options: dict[str, Any], src: _Src, *, fmt: str, default_best: bool = False
) -> Ensemble:
    """:class:`_Parsed` + loader options -> validated :class:`Ensemble`."""
    lo, hi, rounds, rule = _iteration_slice(p, options, default_best)
    names = options.get("feature_names")
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != p.n_features:
            raise ValueError(f"{len(names)} feature_names for a model with {p.n_features} features")
    else:
        names = p.feature_names
    link_transform = OBJECTIVES[p.objective][1]
    prov: dict[str, Any] = {
        "library": "xgboost",
        "version": ".".join(str(x) for x in p.version) if p.version else None,
        "objective": p.objective,
        "booster": p.booster,
        "best_iteration": p.best_iteration,
        "best_rounds": None if p.best_iteration is None else p.best_iteration + 1,
        "num_trees": len(p.trees),
        "trees_used": hi - lo,
        "iteration_range": rounds,
        "total_iterations": None if p.indptr is None else p.indptr.size - 1,
        "tree_selection": rule,
        "format": fmt,
        "base_score": p.extra.get("base_score"),
        "num_parallel_tree": p.extra.get("num_parallel_tree", 1),
    }
    if p.booster == "dart":
        prov["dart_note"] = (
            "weight_drop applied as f32(leaf * w) like Booster.predict(DMatrix); inplace_predict "
            "and the sklearn wrapper compute ((base + leaf) - base) * w and may differ in the last bits"
        )
    notes = list(p.notes)
    if notes:
        prov["notes"] = notes
    common: dict[str, Any] = dict(
        n_features=p.n_features,
        n_outputs=p.n_outputs,
        feature_names=names,
        input_cast="float32",
        int_input_cast="float32",
        sparse_absent="missing",
        categorical_rule="xgboost",
        accumulate="float32",
        transform=link_transform,
        feature_categories=p.feature_categories,
        provenance=prov,
    )
    try:
        if p.booster == "gblinear":
            assert p.linear_weights is not None and p.linear_bias is not None
            G, F = p.n_outputs, p.n_features
            # gblinear Pred: psum = bias[g] + base_margin[0] (float32, the first margin for every
            # group), then psum += x_f * w[f][g] over present features in index order
            base = (p.linear_bias + p.base_margin[0]).astype(F32)
            out = np.tile(np.arange(G, dtype=np.int32), F)
            feat = np.repeat(np.arange(F, dtype=np.int32), G)
            wts = p.linear_weights.reshape(-1).astype(np.float64)
            return Ensemble.from_trees(
                [],
                base_score=base.astype(np.float64),
                linear_output=out,
                linear_feature=feat,
                linear_weight=wts,
                linear_skip_missing=True,
                **common,
            )
        trees = p.trees[lo:hi]
        weights = None if p.tree_weight is None else p.tree_weight[lo:hi].astype(np.float64)
        vector = bool(trees) and trees[0].leaf_value.shape[1] > 1
        return Ensemble.from_trees(
            trees,
            tree_output=np.zeros(len(trees), np.int32) if vector else p.tree_info[lo:hi],
            tree_weight=weights,
            base_score=p.base_margin.astype(np.float64),
            **common,
        )
    except IRValidationError as exc:
        if exc.field in ("transform", "base_score"):
            raise UnsupportedModelError(exc.reason, path=src.path, field=exc.field) from exc
        raise ModelFormatError(
            exc.reason, path=src.path, tree=exc.tree, node=exc.node, field=exc.field
        ) from exc


# ============================================================================ entry points
def _check_options(options: dict[str, Any], allowed: set[str], fmt: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"the {fmt} format does not take option(s) {unknown}; known: {sorted(allowed)}")


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _decode_json(data: bytes, src: _Src) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise src.err(f"not UTF-8 text: {exc}") from None
    try:
        return json.loads(text)  # accepts XGBoost's bare NaN / Infinity / -Infinity tokens
    except ValueError as exc:  # JSONDecodeError, and an integer beyond Python's 4300 digits
        raise src.err(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise src.err("JSON nested too deeply") from None


def from_document(
    doc: Any, *, path: str | None = None, fmt: str = "xgboost-json", source_bytes: int | None = None, **options: Any
) -> Ensemble:
    """A decoded ``save_model`` document (dict) -> Ensemble; ``source_bytes`` (the file's size) scales
    the size limits (:mod:`ltrcompile.limits`), None for a document built in memory."""
    _check_options(options, _LOADER_OPTIONS, fmt)
    src = _Src(path, source_bytes)
    parsed = parse_document(doc, src)
    return build_ensemble(parsed, options, src, fmt=fmt)


def load_json(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """``Booster.save_model("m.json")`` file -> Ensemble."""
    p = os.fspath(path)
    src = _Src(p)
    data = _read(p)
    doc = _decode_json(data, src)
    return from_document(doc, path=p, fmt="xgboost-json", source_bytes=len(data), **options)


def load_ubj(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """``Booster.save_model("m.ubj")`` file (UBJSON, XGBoost >= 1.6) -> Ensemble."""
    p = os.fspath(path)
    src = _Src(p)
    data = _read(p)
    try:
        doc = _ubjson.loads(data)
    except _ubjson.UBJSONError as exc:
        raise src.err(str(exc)) from None
    return from_document(doc, path=p, fmt="xgboost-ubj", source_bytes=len(data), **options)


def load_dump(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """``get_dump(dump_format="json")`` array (or o19s ``{"objective", "splits"}``) -> Ensemble."""
    p = os.fspath(path)
    data = _read(p)
    return from_dump(_decode_json(data, _Src(p)), path=p, source_bytes=len(data), **options)


def from_dump(doc: Any, *, path: str | None = None, source_bytes: int | None = None, **options: Any) -> Ensemble:
    """A decoded dump (list of tree objects or JSON strings, or the o19s wrapper) -> Ensemble."""
    _check_options(options, _DUMP_OPTIONS, "xgboost-dump")
    for key, low in (("num_class", 0), ("num_parallel_tree", 1), ("n_features", 0)):
        v = options.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low):
            raise ValueError(f"{key} must be an integer >= {low}, got {v!r}")
    obj = options.get("objective")
    if obj is not None and not isinstance(obj, str):
        raise TypeError(f"objective must be a string, got {obj!r}")
    src = _Src(path, source_bytes)
    parsed = parse_dump(doc, src, options)
    return build_ensemble(parsed, options, src, fmt="xgboost-dump")


_DUMP_WRAPPER = re.compile(rb'^\{\s*"(objective|splits)"\s*:')


def sniff(head: bytes, path: str) -> list[str]:
    """Content-based detection of the three XGBoost formats."""
    if head.startswith(b"{L") and b"learner" in head[:32]:
        return ["xgboost-ubj"]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        # XGBoost writes "learner" (and "version") at the top level; a document that merely embeds
        # a model (e.g. an Elasticsearch LTR "definition") is not an XGBoost file
        if re.match(rb'\{\s*"(learner|version)"\s*:', text) or (
            re.search(rb'"learner"\s*:\s*\{', text) and b'"definition"' not in text
        ):
            return ["xgboost-json"]
        if _DUMP_WRAPPER.match(text) and b"nodeid" in text:
            return ["xgboost-dump"]
        return []
    if text.startswith(b"[") and b"nodeid" in text and (b"leaf" in text or b"split" in text):
        return ["xgboost-dump"]
    return []


# ============================================================================ in-memory objects
def _xgb_classes() -> tuple[type, type] | None:
    import sys

    mod = sys.modules.get("xgboost")
    if mod is None:
        return None
    return mod.Booster, mod.XGBModel


def accepts(obj: Any) -> bool:
    """True for ``xgboost.Booster`` and sklearn-API ``xgboost.XGBModel`` instances (subclasses too)."""
    classes = _xgb_classes()  # if xgboost was never imported, obj cannot be one of its models
    return classes is not None and isinstance(obj, classes)


def from_object(obj: Any, **options: Any) -> Ensemble:
    """In-memory Booster / XGBModel -> Ensemble (via ``save_raw("json")``)."""
    import xgboost

    default_best = False
    kind = "xgboost-booster"
    if isinstance(obj, xgboost.XGBModel):
        missing = getattr(obj, "missing", np.nan)
        if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
            raise UnsupportedModelError(
                f"XGBModel(missing={missing!r}): only NaN as the missing value is supported",
                field="missing",
            )
        booster = obj.get_booster()
        default_best = True  # XGBModel.predict uses best_iteration when the model has one
        kind = "xgboost-sklearn"
    elif isinstance(obj, xgboost.Booster):
        booster = obj
    else:
        raise TypeError(f"not an XGBoost model: {type(obj)!r}")
    _check_options(options, _LOADER_OPTIONS, kind)
    src = _Src(None)
    doc = _decode_json(bytes(booster.save_raw("json")), src)
    parsed = parse_document(doc, src)
    ens = build_ensemble(parsed, options, src, fmt=kind, default_best=default_best)
    ens.provenance = ens.provenance.with_(source=f"in-memory {type(obj).__module__}.{type(obj).__qualname__}")
    return ens


FORMATS = {"xgboost-json": load_json, "xgboost-ubj": load_ubj, "xgboost-dump": load_dump}
