"""Elasticsearch-side models: the o19s / OpenSearch LTR plugin (``es-ltr``) and native trained models (``es-native``).

``es-ltr`` -- a model as the LTR plugin stores it (followed: o19s/elasticsearch-learning-to-rank
v1.5.12-es9.0.8, commit 1dfed57; the OpenSearch fork scores the same way). Accepted documents:
the ``_createmodel`` request body ``{"model": {"name", "model": {"type", "definition",
"feature_normalizers"?}}}``, the ``PUT _ltr/_model/<name>`` body (same, plus ``"feature_set"``), the
stored document ``{"name", "type": "model", "model": {...}}`` and a ``GET`` response with ``_source``.
The feature set (ordered feature names; ordinal = position) comes inline or from the option
``feature_set=`` (a list of names or the featureset JSON). Scoring reproduces the plugin:

* every feature is a float (a Lucene score); ``feature_normalizers`` (``standard``:
  ``(v - mean) / standard_deviation``, ``min_max``: ``(v - minimum) / (maximum - minimum)``) run in
  float32 before the model (IR ``normalizers``; dense models normalise the 0 of an unmatched feature);
* ``model/ranklib``: RankLib's own arithmetic (:mod:`.ranklib`), feature-set ordinal ``i`` = RankLib id
  ``i+1``, unmatched = 0, final score ``(float)`` of RankLib's double (transform ``to_float32``);
* ``model/linear``: ``float score = 0; score += w[i] * x[i]`` over all ordinals in float32;
* ``model/xgboost+json`` (``get_dump(dump_format="json")`` trees, optionally wrapped as
  ``{"objective", "splits"}``): float32 thresholds, go left iff ``x < t`` in float32, NaN (unmatched
  feature, since v1.5.9 / PRs #480 and #482) goes to the ``missing`` child, leaves summed in float32
  from 0 in tree order, **no base_score**; ``binary:logistic``/``reg:logistic`` -> ``(float)(1/(1+exp(-x)))``
  in double (transform ``sigmoid_to_float32``); objectives other than those and
  ``binary:logitraw``, ``rank:pairwise|ndcg|map``, ``reg:linear`` are rejected like the plugin does;
* ``model/xgboost+json+raw`` (``save_model`` JSON): same evaluator; the plugin's leaf value is
  ``base_weights[n]`` (XGBoost's un-shrunk weight, *not* the value XGBoost adds), reproduced by default
  (``raw_leaves="plugin"``); ``raw_leaves="xgboost"`` uses ``split_conditions[n]`` instead (XGBoost's
  leaf values, still without base_score).

Option ``legacy_missing=True`` reproduces plugin versions before v1.5.9 for the XGBoost types
(unmatched features read 0, the missing branch is ignored); a definition with the OpenSearch LTR
plugin's top-level ``"missing_as_zero": true`` (object form of ``model/xgboost+json``, and
``model/xgboost+json+raw``) asks for the same arithmetic for that one model.

``es-native`` -- an Elasticsearch trained-model definition (``PUT _ml/trained_models`` body with
``definition`` or ``compressed_definition``, the ``definition`` itself, or a ``GET`` response), as
eland writes it: a ``tree`` or an ``ensemble`` of trees. Reproduces ``TreeInferenceModel`` and
``EnsembleInferenceModel``: features are doubles bound by name; a NaN **or infinite** value is missing
and goes to ``default_left`` (IR ``infinite_as_missing``); ``decision_type`` ``lte|lt|gte|gt`` compare
with ``Double.compare``; nodes are addressed by their position in ``tree_structure``;
``weighted_sum`` (also an ensemble without ``aggregate_output``: ``Ensemble.Builder`` starts from
``new WeightedSum()``, weights 1) adds ``leaf * weight`` with Java's Kahan-compensated ``DoubleStream.sum()`` (IR
``float64_kahan``); ``exponent`` is ``exp`` of the plain double sum. Classification models,
preprocessors and nested ensembles are rejected. The LTR rescorer's bounded-window shift (a constant
per model) and its final ``(float)`` cast belong to the rescorer, not to the model: see
:mod:`ltrcompile.ltr_rescore` (``rescorer=learning_to_rank``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import normalizers
from ..errors import IRValidationError, ModelFormatError, UnsupportedModelError
from ..ir import Ensemble, Missing, Op, TreeArrays
from . import ranklib as _ranklib

FORMAT_LTR = "es-ltr"
FORMAT_NATIVE = "es-native"
PLUGIN_VERSION = "o19s/elasticsearch-learning-to-rank v1.5.12-es9.0.8 (1dfed57)"
MODEL_TYPES = ("model/ranklib", "model/linear", "model/xgboost+json", "model/xgboost+json+raw")
#: objective -> transform, exactly the plugin's table (XGBoostJsonParser / XGBoostRawJsonParser)
PLUGIN_OBJECTIVES = {
    "binary:logitraw": "identity",
    "rank:ndcg": "identity",
    "rank:map": "identity",
    "rank:pairwise": "identity",
    "reg:linear": "identity",
    "binary:logistic": "sigmoid_to_float32",
    "reg:logistic": "sigmoid_to_float32",
}
_LTR_OPTIONS = {"feature_set", "raw_leaves", "legacy_missing", "n_features"}
_NATIVE_OPTIONS = {"signed_zero", "model_index"}
_MAX_DECOMPRESSED = 1 << 31
_F32 = np.float32


# ============================================================================ JSON with number text
class _Num(str):
    """A JSON number kept as its text, so float32 fields can be rounded once like Jackson does."""


def _no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")  # Elasticsearch's JSON parser rejects these
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@dataclass
class _Src:
    path: str | None

    def err(self, message: str, **where: Any) -> ModelFormatError:
        return ModelFormatError(message, path=self.path, **where)

    def unsupported(self, message: str, **where: Any) -> UnsupportedModelError:
        return UnsupportedModelError(message, path=self.path, **where)


def _decode(text: str | bytes, src: _Src, what: str = "document") -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise src.err(f"the {what} is not UTF-8 text: {exc}") from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(
            text, parse_float=_Num, parse_int=_Num, parse_constant=_reject_constant, object_pairs_hook=_no_dups
        )
    except ValueError as exc:  # json.JSONDecodeError, and _no_dups / _reject_constant
        raise src.err(f"the {what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise src.err(f"the {what} is nested too deeply") from None


def _is_num(v: Any) -> bool:
    return isinstance(v, _Num | float | int | np.floating | np.integer) and not isinstance(v, bool)


def _f32(v: Any, src: _Src, what: str, **where: Any) -> float:
    """A float field as the plugin parses it (Jackson ``floatValue``: the decimal rounded to float)."""
    try:
        if isinstance(v, str):  # _Num, or a string: ObjectParser float fields take those (Float.parseFloat)
            return _ranklib.java_float(v)
        if _is_num(v):
            with np.errstate(over="ignore"):
                return float(_F32(float(v)))
    except (ValueError, OverflowError):
        pass
    raise src.err(f"{what} must be a number; got {v!r}", **where)


def _f64(v: Any, src: _Src, what: str, **where: Any) -> float:
    """A double field (``Double.parseDouble`` / Jackson ``doubleValue``)."""
    try:
        if isinstance(v, _Num | str):
            return _ranklib.java_double(v)
        if _is_num(v):
            return float(v)
    except (ValueError, OverflowError):
        pass
    raise src.err(f"{what} must be a number; got {v!r}", **where)


def _int(v: Any, src: _Src, what: str, **where: Any) -> int:
    if isinstance(v, _Num | str) and len(str(v)) <= 20 and re.fullmatch(r"-?\d+", str(v)):
        i = int(v)
    elif isinstance(v, int | np.integer) and not isinstance(v, bool):
        i = int(v)
    else:
        raise src.err(f"{what} must be an integer; got {v!r}", **where)
    if not -(2**31) <= i < 2**31:
        raise src.err(f"{what} {i} is outside the int range", **where)
    return i


def _obj(v: Any, src: _Src, what: str, **where: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise src.err(f"{what} must be a JSON object; got {type(v).__name__}", **where)
    return v


def _list(v: Any, src: _Src, what: str, **where: Any) -> list[Any]:
    if not isinstance(v, list):
        raise src.err(f"{what} must be a JSON array; got {type(v).__name__}", **where)
    return v


# ============================================================================ feature sets
def _feature_set_names(fs: Any, src: _Src) -> tuple[list[str], str | None]:
    """A feature set given as a list of names, the featureset JSON, a stored document or a GET response."""
    if isinstance(fs, str):
        fs = _decode(fs, src, "feature set")
    if isinstance(fs, list | tuple) and all(isinstance(x, str) for x in fs):
        names, set_name = [str(x) for x in fs], None
    else:
        d = _obj(fs, src, "feature_set", field="feature_set")
        if "_source" in d:
            d = _obj(d["_source"], src, "_source", field="feature_set")
        if "featureset" in d and isinstance(d["featureset"], dict):
            d = d["featureset"]
        feats = _list(d.get("features", []), src, "feature_set.features", field="feature_set")
        names = []
        for i, f in enumerate(feats):
            if isinstance(f, str):
                names.append(f)
                continue
            f = _obj(f, src, f"feature_set.features[{i}]", field="feature_set")
            name = f.get("name")
            if not isinstance(name, str):
                raise src.err(f"feature_set.features[{i}] has no name", field="feature_set")
            names.append(name)
        set_name = d.get("name") if isinstance(d.get("name"), str) else None
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise src.err(f"feature [{n}] defined twice in the feature set", field="feature_set")
        seen.add(n)
    return names, set_name


# ============================================================================ es-ltr documents
def _unwrap_ltr(doc: Any, src: _Src) -> dict[str, Any]:
    """Any accepted document shape -> the StoredLtrModel object ``{"name"?, "feature_set"?, "model"}``."""
    d = _obj(doc, src, "the LTR model document")
    if "_source" in d:
        d = _obj(d["_source"], src, "_source")
    inner = d.get("model")
    if not isinstance(inner, dict):
        raise src.err("no 'model' object: expected an LTR plugin model document", field="model")
    if isinstance(inner.get("model"), dict):
        return inner  # {"model": {"name", "feature_set"?, "model": {...}}} or stored {"name","type","model": {...}}
    if "type" in inner and "definition" in inner:
        return d  # already the StoredLtrModel object
    raise src.err("'model' must hold the model definition object {type, definition}", field="model")


def _normalizers(spec: Any, names: list[str], dense: bool, src: _Src) -> list[dict[str, Any]] | None:
    if spec is None:
        return None
    spec = _obj(spec, src, "feature_normalizers", field="feature_normalizers")
    out = []
    for fname, norm in spec.items():
        where = {"field": f"feature_normalizers.{fname}"}
        if fname not in names:
            raise src.err(f"feature {fname!r} not found in the feature set", **where)
        try:
            parsed = normalizers.from_plugin(norm, lambda v, what, w=where: _f32(v, src, what, **w))
        except normalizers.NormalizerError as exc:
            raise src.err(str(exc), **where) from None
        entry = parsed.to_ir(names.index(fname))
        if dense:
            entry["missing_value"] = 0.0  # an unmatched feature is 0 in dense rankers, then normalised
        out.append(entry)
    return out or None


def _definition_json(defn: Any, src: _Src, mtype: str) -> Any:
    if isinstance(defn, str):
        return _decode(defn, src, f"{mtype} definition")
    return defn


def from_ltr_document(doc: Any, *, path: str | None = None, **options: Any) -> Ensemble:
    """A decoded LTR plugin model document -> Ensemble (see the module docstring)."""
    unknown = sorted(set(options) - _LTR_OPTIONS)
    if unknown:
        raise TypeError(f"the es-ltr format does not take option(s) {unknown}; known: {sorted(_LTR_OPTIONS)}")
    src = _Src(path)
    stored = _unwrap_ltr(doc, src)
    md = _obj(stored["model"], src, "model", field="model")
    mtype = md.get("type")
    if mtype not in MODEL_TYPES:
        raise src.unsupported(f"model type {mtype!r} is not one of {MODEL_TYPES}", field="model.type")
    if "definition" not in md:
        raise src.err("model.definition is mandatory", field="model.definition")
    names: list[str] | None = None
    set_name = None
    if options.get("feature_set") is not None:
        names, set_name = _feature_set_names(options["feature_set"], src)
    elif stored.get("feature_set") is not None:
        names, set_name = _feature_set_names(stored["feature_set"], src)
    raw_leaves = options.get("raw_leaves", "plugin")
    if raw_leaves not in ("plugin", "xgboost"):
        raise ValueError(f"raw_leaves must be 'plugin' or 'xgboost'; got {raw_leaves!r}")
    legacy = bool(options.get("legacy_missing", False))
    defn = md["definition"]
    try:
        if mtype == "model/ranklib":
            ens = _ranklib_model(defn, names, options.get("n_features"), src)
        elif mtype == "model/linear":
            ens = _linear_model(_definition_json(defn, src, mtype), names, src)
        elif mtype == "model/xgboost+json":
            ens = _xgb_dump_model(_definition_json(defn, src, mtype), names, legacy, src)
        else:
            ens = _xgb_raw_model(_definition_json(defn, src, mtype), names, raw_leaves, legacy, src)
        if md.get("feature_normalizers") and ens.feature_names is None:
            raise src.err("feature_normalizers need a feature set (feature_set=...)", field="feature_normalizers")
        dense = mtype in ("model/ranklib", "model/linear")
        norms = _normalizers(md.get("feature_normalizers"), ens.feature_names or [], dense, src)
        if norms:
            ens.normalizers = norms
            ens.validate()
    except IRValidationError as exc:
        raise ModelFormatError(exc.reason, path=path, tree=exc.tree, node=exc.node, field=exc.field) from None
    extra: dict[str, Any] = {
        "library": "elasticsearch-ltr-plugin",
        "plugin_version_followed": PLUGIN_VERSION,
        "model_type": mtype,
    }
    if isinstance(stored.get("name"), str):
        extra["model_name"] = stored["name"]
    if set_name:
        extra["feature_set"] = set_name
    if legacy:
        extra["legacy_missing"] = True
    ens.provenance = ens.provenance.with_(**extra)
    return ens


# ---------------------------------------------------------------------------- model/ranklib
def _ranklib_model(defn: Any, names: list[str] | None, n_features: Any, src: _Src) -> Ensemble:
    if not isinstance(defn, str):
        raise src.err("a model/ranklib definition must be the RankLib model text (a string)", field="model.definition")
    opts: dict[str, Any] = {}
    if names is not None:
        opts["feature_names"] = names
    elif n_features is not None:
        opts["n_features"] = n_features
    try:
        ens = _ranklib.loads(defn, path=src.path, **opts)
    except ModelFormatError as exc:
        if exc.field == "n_features" and names is not None:
            raise src.err(
                f"the RankLib model uses a feature id above the feature set size {len(names)} "
                "(the plugin fails on every document)",
                field="model.definition",
            ) from None
        raise
    ens.transform = "to_float32"  # RanklibRanker.score: (float) ranker.eval(point)
    prov = ens.provenance
    ens.provenance = prov.with_(
        ranklib_ranker=prov.get("ranker"), extra={k: v for k, v in prov.extra.items() if k != "ranker"}
    )
    ens.validate()
    return ens


# ---------------------------------------------------------------------------- model/linear
def _linear_model(defn: Any, names: list[str] | None, src: _Src) -> Ensemble:
    if names is None:
        raise src.err("model/linear needs the feature set (feature_set=[...]): weights are bound by name", field="feature_set")
    d = _obj(defn, src, "model/linear definition", field="model.definition")
    weights = np.zeros(len(names), np.float64)
    for fname, w in d.items():
        if fname not in names:
            raise src.err(f"feature [{fname}] is unknown", field="model.definition")
        if not _is_num(w):  # the plugin requires VALUE_NUMBER here
            raise src.err(f"weight of {fname!r} must be a number; got {w!r}", field="model.definition")
        weights[names.index(fname)] = _f32(w, src, f"weight of {fname!r}", field="model.definition")
    if not np.all(np.isfinite(weights)):
        raise src.err("linear weights must be finite", field="model.definition")
    n = len(names)
    return Ensemble.from_trees(
        [],
        n_features=n,
        feature_names=list(names),
        input_cast="float32",
        int_input_cast="float32",
        sparse_absent="zero",
        accumulate="float32",
        # every ordinal in order, zero weights included (0 * inf is NaN in the plugin too)
        linear_output=np.zeros(n, np.int32),
        linear_feature=np.arange(n, dtype=np.int32),
        linear_weight=weights,
        linear_skip_missing=True,
        provenance={},
    )


# ---------------------------------------------------------------------------- model/xgboost+json
_DUMP_KEYS = {"nodeid", "depth", "split", "split_condition", "yes", "no", "missing", "leaf", "children"}


def _xgb_tree_from_dump(tree: Any, t: int, index: dict[str, int], src: _Src) -> TreeArrays:
    nodes = _Nodes()
    stack: list[tuple[Any, int, bool, str]] = [(tree, -1, False, "tree")]
    while stack:
        node, parent, is_right, where = stack.pop()
        i = nodes.link(parent, is_right)
        loc = {"tree": t, "node": i}
        node = _obj(node, src, f"{where}", **loc)
        bad = set(node) - _DUMP_KEYS
        if bad:
            raise src.err(f"unknown node field(s) {sorted(bad)} (the plugin's parser is strict; dump without with_stats)", **loc)
        if "nodeid" not in node:
            raise src.err("node has no nodeid", **loc, field="nodeid")
        nid = _int(node["nodeid"], src, "nodeid", **loc, field="nodeid")
        if "leaf" in node:
            v = _f32(node["leaf"], src, "leaf", **loc, field="leaf")
            if not math.isfinite(v):
                raise src.err("leaf value is not finite", **loc, field="leaf")
            nodes.leaf(nid, v)
            continue
        need = ("split_condition", "split", "yes", "no", "depth", "children")
        missing = [k for k in need if k not in node]
        if missing:
            raise src.err(f"split node lacks {missing}", **loc, field=missing[0])
        kids = _list(node["children"], src, "children", **loc, field="children")
        if len(kids) != 2:
            raise src.err("a split needs exactly 2 children", **loc, field="children")
        yes = _int(node["yes"], src, "yes", **loc, field="yes")
        no = _int(node["no"], src, "no", **loc, field="no")
        _int(node["depth"], src, "depth", **loc, field="depth")
        kid_ids = [k.get("nodeid") if isinstance(k, dict) else None for k in kids]
        try:
            ok = int(kid_ids[0]) == yes and int(kid_ids[1]) == no  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):  # a non-integer, or 1e999 -> inf
            ok = False
        if not ok:
            raise src.err("children[0]/children[1] must be the 'yes'/'no' nodes", **loc, field="children")
        if "missing" not in node:
            raise src.err("split has no 'missing' (the plugin fails with a NullPointerException)", **loc, field="missing")
        miss = _int(node["missing"], src, "missing", **loc, field="missing")
        fname = node["split"]
        if not isinstance(fname, str):
            raise src.err(f"split must be a feature name; got {fname!r}", **loc, field="split")
        if fname not in index:
            raise src.err(f"unknown feature [{fname}] (not in the feature set)", **loc, field="split")
        th = _f32(node["split_condition"], src, "split_condition", **loc, field="split_condition")
        if math.isnan(th):
            raise src.err("split_condition is NaN", **loc, field="split_condition")
        nodes.split(nid, index[fname], th, miss == yes)  # Split.eval: missingNodeId == leftNodeId -> left
        stack.append((kids[1], i, True, f"{where}.children[1]"))
        stack.append((kids[0], i, False, f"{where}.children[0]"))
    return nodes.arrays()


class _Nodes:
    """One plugin XGBoost tree's nodes in pre-order (the order both parsers walk), then TreeArrays:
    go left iff ``x < t``, NaN to the default child."""

    def __init__(self) -> None:
        self.feats: list[int] = []
        self.thr: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.dleft: list[int] = []
        self.leaf_value: list[float] = []
        self.ids: list[int] = []

    def link(self, parent: int, is_right: bool) -> int:
        """The index the next node will get, recorded as ``parent``'s child (root: ``parent < 0``)."""
        i = len(self.feats)
        if parent >= 0:
            (self.right if is_right else self.left)[parent] = i
        return i

    def _add(self, nid: int, feat: int, th: float, dleft: bool, value: float) -> None:
        self.feats.append(feat)
        self.thr.append(th)
        self.left.append(-1)
        self.right.append(-1)
        self.dleft.append(int(dleft))
        self.leaf_value.append(value)
        self.ids.append(nid)

    def leaf(self, nid: int, value: float) -> None:
        self._add(nid, -1, 0.0, False, value)

    def split(self, nid: int, feat: int, th: float, default_left: bool) -> None:
        self._add(nid, feat, th, default_left, 0.0)  # children are filled in by link()

    def arrays(self) -> TreeArrays:
        ta = TreeArrays.empty(len(self.feats), op=Op.LT, missing=Missing.NAN_DEFAULT)
        ta.feature[:] = self.feats
        ta.threshold[:] = self.thr
        ta.left[:] = self.left
        ta.right[:] = self.right
        ta.default_left[:] = self.dleft
        ta.leaf_value[:, 0] = self.leaf_value
        ta.leaf_id[:] = np.where(ta.left < 0, np.asarray(self.ids, np.int64), -1)
        return ta


def _xgb_common(trees: list[TreeArrays], names: list[str], transform: str, legacy: bool, extra: dict[str, Any]) -> Ensemble:
    if legacy:  # before v1.5.9: dense vector, unmatched = 0, missing branch ignored
        for ta in trees:
            ta.missing[:] = int(Missing.NAN_AS_ZERO)
    return Ensemble.from_trees(
        trees,
        n_features=len(names),
        feature_names=list(names),
        input_cast="float32",
        int_input_cast="float32",
        sparse_absent="zero" if legacy else "missing",
        accumulate="float32",  # float sum = 0; sum += 1F * leaf
        categorical_rule="xgboost",
        transform=transform,
        provenance=extra,
    )


def _xgb_dump_model(defn: Any, names: list[str] | None, legacy: bool, src: _Src) -> Ensemble:
    if names is None:
        raise src.err("model/xgboost+json needs the feature set (feature_set=[...]): splits name features", field="feature_set")
    transform = "identity"
    objective = None
    if isinstance(defn, dict):
        bad = set(defn) - {"objective", "splits", "missing_as_zero"}
        if bad:
            raise src.err(f"unknown field(s) {sorted(bad)} in the XGBoost definition object", field="model.definition")
        legacy = _missing_as_zero(defn, src) or legacy
        if "objective" in defn:
            objective = defn["objective"]
            if objective not in PLUGIN_OBJECTIVES:
                raise src.unsupported(f"objective [{objective}] is not a valid XGBoost objective for the plugin", field="objective")
            transform = PLUGIN_OBJECTIVES[objective]
        if "splits" not in defn:
            raise src.err("XGBoost model missing required field [splits]", field="splits")
        trees_json = _list(defn["splits"], src, "splits", field="splits")
    else:
        trees_json = _list(defn, src, "the XGBoost definition", field="model.definition")
    if not trees_json:
        raise src.err("XGBoost model must define at least one tree", field="splits")
    index = {n: i for i, n in enumerate(names)}
    trees = [_xgb_tree_from_dump(tj, t, index, src) for t, tj in enumerate(trees_json)]
    prov: dict[str, Any] = {"base_score": "ignored by the plugin (not part of the dump)"}
    if objective:
        prov["objective"] = objective
    if isinstance(defn, dict) and defn.get("missing_as_zero") is True:
        prov["missing_as_zero"] = True
    return _xgb_common(trees, names, transform, legacy, prov)


def _missing_as_zero(defn: dict[str, Any], src: _Src) -> bool:
    """The definition's optional top-level ``missing_as_zero`` (OpenSearch LTR, PR #389 / #391):
    when true a feature that does not match reads 0.0 -- the feature vector's default becomes 0.0
    instead of NaN -- so it goes through every split as a real 0.0 would and the per-node missing
    direction is never used: the same arithmetic as ``legacy_missing``. Default false."""
    v = defn.get("missing_as_zero", False)
    if not isinstance(v, bool):
        raise src.err(f"missing_as_zero must be true or false; got {v!r}", field="missing_as_zero")
    return v


# ---------------------------------------------------------------------------- model/xgboost+json+raw
def _xgb_raw_model(defn: Any, names: list[str] | None, raw_leaves: str, legacy: bool, src: _Src) -> Ensemble:
    d = _obj(defn, src, "model/xgboost+json+raw definition", field="model.definition")
    mas = _missing_as_zero(d, src)
    legacy = mas or legacy
    learner = _obj(d.get("learner"), src, "learner", field="learner")
    fnames = learner.get("feature_names")
    ftypes = learner.get("feature_types")
    if not isinstance(fnames, list) or not all(isinstance(x, str) for x in fnames):
        raise src.err("learner.feature_names must be a list of names", field="learner.feature_names")
    if not isinstance(ftypes, list):
        raise src.err("learner.feature_types is required", field="learner.feature_types")
    if names is None:
        names = list(fnames)
    unknown = [f for f in fnames if f not in names]
    if unknown:
        raise src.err(f"unknown features in model: {unknown}", field="learner.feature_names")
    if len(fnames) != len(ftypes):
        raise src.err("feature names list and feature types list must have the same length", field="learner.feature_types")
    bad_types = [x for x in ftypes if x != "float"]
    if bad_types:
        raise src.unsupported(f"the plugin only supports 'float' feature types; found {bad_types[0]!r}", field="learner.feature_types")
    objective = _obj(learner.get("objective"), src, "learner.objective", field="learner.objective").get("name")
    if objective not in PLUGIN_OBJECTIVES:
        raise src.unsupported(f"objective [{objective}] is not a valid XGBoost objective for the plugin", field="learner.objective")
    gb = _obj(learner.get("gradient_booster"), src, "learner.gradient_booster", field="gradient_booster")
    model = _obj(gb.get("model"), src, "gradient_booster.model (gbtree)", field="gradient_booster.model")
    trees_json = _list(model.get("trees"), src, "gradient_booster.model.trees", field="trees")
    col = [names.index(f) for f in fnames]
    trees = []
    for t, tj in enumerate(trees_json):
        tj = _obj(tj, src, "tree", tree=t)
        arr: dict[str, list[Any]] = {}
        for key in ("left_children", "right_children", "split_indices", "split_conditions", "default_left", "base_weights"):
            arr[key] = _list(tj.get(key), src, key, tree=t, field=key)
        leaf_key = "base_weights" if raw_leaves == "plugin" else "split_conditions"
        trees.append(_raw_tree(arr, leaf_key, col, t, src))
    prov: dict[str, Any] = {
        "objective": objective,
        "raw_leaves": raw_leaves,
        "base_score": "ignored by the plugin",
    }
    if mas:
        prov["missing_as_zero"] = True
    if raw_leaves == "plugin":
        prov["leaf_values"] = "base_weights (the plugin's choice; XGBoost itself adds split_conditions)"
    return _xgb_common(trees, names, PLUGIN_OBJECTIVES[objective], legacy, prov)


def _raw_tree(arr: dict[str, list[Any]], leaf_key: str, col: list[int], t: int, src: _Src) -> TreeArrays:
    lc, rc = arr["left_children"], arr["right_children"]
    nodes = _Nodes()
    seen: set[int] = set()
    stack: list[tuple[int, int, bool]] = [(0, -1, False)]
    while stack:
        nid, parent, is_right = stack.pop()
        i = nodes.link(parent, is_right)
        loc = {"tree": t, "node": nid}
        if not (0 <= nid < len(lc) and nid < len(rc)):
            raise src.err(f"child node reference {nid} is invalid", **loc, field="left_children")
        if nid in seen:
            raise src.err("node reached twice (cycle or shared child)", **loc, field="left_children")
        seen.add(nid)
        a = _int(lc[nid], src, "left_children", **loc, field="left_children")
        b = _int(rc[nid], src, "right_children", **loc, field="right_children")
        if a != -1 and b != -1:
            try:
                fidx = _int(arr["split_indices"][nid], src, "split_indices", **loc, field="split_indices")
                th = _f32(arr["split_conditions"][nid], src, "split_conditions", **loc, field="split_conditions")
                dl = _int(arr["default_left"][nid], src, "default_left", **loc, field="default_left")
            except IndexError:
                raise src.err("node arrays have different lengths", **loc) from None
            if not 0 <= fidx < len(col):
                raise src.err(f"split index {fidx} has no feature name", **loc, field="split_indices")
            if math.isnan(th):
                raise src.err("split condition is NaN", **loc, field="split_conditions")
            nodes.split(nid, col[fidx], th, dl == 1)
            stack.append((b, i, True))
            stack.append((a, i, False))
        else:
            try:
                v = _f32(arr[leaf_key][nid], src, leaf_key, **loc, field=leaf_key)
            except IndexError:
                raise src.err(f"{leaf_key} has no entry for node {nid}", **loc, field=leaf_key) from None
            if not math.isfinite(v):
                raise src.err("leaf value is not finite", **loc, field=leaf_key)
            nodes.leaf(nid, v)
    return nodes.arrays()


# ============================================================================ es-native
def _unwrap_native(doc: Any, src: _Src, model_index: int | None) -> dict[str, Any]:
    """Any accepted shape -> ``trained_model`` object ({"ensemble": ...} or {"tree": ...})."""
    d = _obj(doc, src, "the trained model document")
    if "trained_model_configs" in d:
        cfgs = _list(d["trained_model_configs"], src, "trained_model_configs")
        if len(cfgs) != 1 and model_index is None:
            raise src.err(f"{len(cfgs)} trained models in the response; pass model_index=", field="trained_model_configs")
        try:
            d = _obj(cfgs[model_index or 0], src, "trained_model_configs entry")
        except IndexError:
            raise src.err(f"model_index {model_index} out of range", field="trained_model_configs") from None
    if "compressed_definition" in d and "definition" not in d:
        d = {"definition": _decompress(d["compressed_definition"], src)}
    if "definition" in d:
        d = _obj(d["definition"], src, "definition", field="definition")
    if "preprocessors" in d and d["preprocessors"]:
        raise src.unsupported("trained-model preprocessors (encodings) are not supported", field="preprocessors")
    if "trained_model" in d:
        d = _obj(d["trained_model"], src, "trained_model", field="trained_model")
    kinds = [k for k in ("ensemble", "tree") if k in d]
    if len(kinds) != 1:
        other = [k for k in d if k not in ("ensemble", "tree")]
        if other and not kinds:
            raise src.unsupported(f"trained model type(s) {other} are not supported (only tree and ensemble)", field="trained_model")
        raise src.err("expected a trained_model with exactly one of 'ensemble', 'tree'", field="trained_model")
    return d


def _decompress(b64: Any, src: _Src) -> Any:
    if not isinstance(b64, str):
        raise src.err("compressed_definition must be a base64 string", field="compressed_definition")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise src.err("compressed_definition is not valid base64", field="compressed_definition") from None
    try:
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = dec.decompress(raw, _MAX_DECOMPRESSED)
        if dec.unconsumed_tail:
            raise src.err("compressed_definition expands beyond 2 GiB", field="compressed_definition")
    except zlib.error as exc:
        raise src.err(f"compressed_definition is not gzip data: {exc}", field="compressed_definition") from None
    return _decode(out, src, "compressed_definition")


_OPS = {"lte": ("le", False), "lt": ("lt", False), "gte": ("lt", True), "gt": ("le", True)}


def _native_tree(tree: Any, t: int, columns: dict[str, int], signed_zero: str, src: _Src) -> tuple[TreeArrays, list[str]]:
    tr = _obj(tree, src, "tree", tree=t)
    tnames = tr.get("feature_names")
    if not isinstance(tnames, list) or not all(isinstance(x, str) for x in tnames):
        raise src.err("tree.feature_names must be a list of names", tree=t, field="feature_names")
    if "target_type" in tr and tr["target_type"] != "regression":
        raise src.unsupported(f"target_type {tr['target_type']!r}: only regression models are supported", tree=t, field="target_type")
    nodes = _list(tr.get("tree_structure"), src, "tree_structure", tree=t, field="tree_structure")
    if not nodes:
        raise src.err("[tree_structure] must not be empty", tree=t, field="tree_structure")
    n = len(nodes)
    ta = TreeArrays.empty(n, op=Op.LE, missing=Missing.NAN_DEFAULT)
    for i, node in enumerate(nodes):
        loc = {"tree": t, "node": i}
        node = _obj(node, src, "node", **loc)
        ta.leaf_id[i] = i
        lc = _int(node.get("left_child", -1), src, "left_child", **loc, field="left_child")
        if lc < 0:  # NodeBuilder.build: no left child -> leaf
            lv = node.get("leaf_value")
            vals = lv if isinstance(lv, list) else ([] if lv is None else [lv])
            if len(vals) != 1:
                if len(vals) > 1:
                    raise src.unsupported("vector leaf values (classification) are not supported", **loc, field="leaf_value")
                raise src.err("leaf has no leaf_value", **loc, field="leaf_value")
            v = _f64(vals[0], src, "leaf_value", **loc, field="leaf_value")
            if not math.isfinite(v):
                raise src.err("leaf_value is not finite", **loc, field="leaf_value")
            ta.leaf_value[i, 0] = v
            continue
        rc = _int(node.get("right_child", -1), src, "right_child", **loc, field="right_child")
        if not (0 < lc < n and 0 < rc < n):
            raise src.err(f"child index ({lc}, {rc}) outside the tree_structure of {n} nodes", **loc, field="left_child")
        sf = _int(node.get("split_feature", -1), src, "split_feature", **loc, field="split_feature")
        if not 0 <= sf < len(tnames):
            raise src.err(f"split_feature {sf} is out of bounds for feature_names", **loc, field="split_feature")
        dt = node.get("decision_type", "lte")
        if not isinstance(dt, str) or dt.lower() not in _OPS:
            raise src.unsupported(f"decision_type {dt!r} is not one of lte, lt, gte, gt", **loc, field="decision_type")
        op, swap = _OPS[dt.lower()]
        dl = node.get("default_left", False)
        if isinstance(dl, str) and dl in ("true", "false"):
            dl = dl == "true"
        if not isinstance(dl, bool):
            raise src.err(f"default_left must be a boolean; got {dl!r}", **loc, field="default_left")
        th = _f64(node["threshold"], src, "threshold", **loc, field="threshold") if "threshold" in node else math.nan
        if math.isnan(th):
            # Double.compare(x, NaN) < 0 for every non-NaN x: lt/lte always left, gt/gte always right
            op, th = ("le", math.inf) if not swap else ("lt", -math.inf)
            swap = False
        elif th == 0.0:
            neg = math.copysign(1.0, th) < 0
            # Double.compare orders -0.0 < +0.0: these four differ from IEEE for inputs of +-0.0
            if (dt.lower(), neg) in (("lte", True), ("lt", False), ("gte", False), ("gt", True)):
                if signed_zero != "ieee":
                    raise src.unsupported(
                        f"decision_type {dt!r} with threshold {th!r}: Elasticsearch's Double.compare sends "
                        "-0.0 and +0.0 different ways, which IEEE comparisons cannot; pass "
                        "signed_zero='ieee' to accept IEEE semantics for inputs of exactly +-0.0",
                        **loc,
                        field="threshold",
                    )
        ta.feature[i] = columns[tnames[sf]]
        ta.threshold[i] = th
        ta.op[i] = int(Op.LE if op == "le" else Op.LT)
        # gte/gt: left iff not (x < t) / not (x <= t) -> swap children (missing handled before)
        ta.left[i], ta.right[i] = (rc, lc) if swap else (lc, rc)
        ta.default_left[i] = int(dl) ^ int(swap)
        ta.leaf_id[i] = -1
    # ES walks positions from node 0 and rejects cycles/shared children (Tree.detectCycle)
    seen = np.zeros(n, bool)
    stack = [0]
    while stack:
        k = stack.pop()
        if seen[k]:
            raise src.err("[tree] contains a cycle or a node with two parents", tree=t, node=k, field="left_child")
        seen[k] = True
        if ta.left[k] >= 0:
            stack += [int(ta.left[k]), int(ta.right[k])]
    return ta.reachable_only(), tnames


def from_native_document(doc: Any, *, path: str | None = None, **options: Any) -> Ensemble:
    """A decoded Elasticsearch trained-model document -> Ensemble (see the module docstring)."""
    unknown = sorted(set(options) - _NATIVE_OPTIONS)
    if unknown:
        raise TypeError(f"the es-native format does not take option(s) {unknown}; known: {sorted(_NATIVE_OPTIONS)}")
    signed_zero = options.get("signed_zero", "strict")
    if signed_zero not in ("strict", "ieee"):
        raise ValueError(f"signed_zero must be 'strict' or 'ieee'; got {signed_zero!r}")
    src = _Src(path)
    tm = _unwrap_native(doc, src, options.get("model_index"))
    try:
        if "tree" in tm:
            tree_docs = [tm["tree"]]
            declared = tm["tree"].get("feature_names") if isinstance(tm["tree"], dict) else None
            weights: list[float] | None = None
            aggregate = "single"
        else:
            ens_doc = _obj(tm["ensemble"], src, "ensemble", field="ensemble")
            tt = ens_doc.get("target_type", "regression")
            if tt != "regression":
                raise src.unsupported(f"target_type {tt!r}: only regression ensembles are supported", field="target_type")
            subs = _list(ens_doc.get("trained_models"), src, "trained_models", field="trained_models")
            if not subs:
                raise src.err("an ensemble needs trained_models", field="trained_models")
            tree_docs = []
            for t, sub in enumerate(subs):
                sub = _obj(sub, src, "trained_models entry", tree=t)
                if set(sub) != {"tree"}:
                    raise src.unsupported(f"sub-model {sorted(sub)}: only trees are supported (no nested ensembles)", tree=t)
                tree_docs.append(sub["tree"])
            declared = ens_doc.get("feature_names")
            # Ensemble.Builder starts from ``new WeightedSum()``: no aggregate_output = unweighted sum
            agg = _obj(ens_doc.get("aggregate_output", {"weighted_sum": {}}), src, "aggregate_output", field="aggregate_output")
            if len(agg) != 1:
                raise src.err("aggregate_output must name exactly one aggregator", field="aggregate_output")
            ((aggregate, params),) = agg.items()
            if aggregate not in ("weighted_sum", "exponent"):
                raise src.unsupported(
                    f"aggregate_output {aggregate!r} (classification) is not supported; only weighted_sum and exponent",
                    field="aggregate_output",
                )
            params = _obj(params or {}, src, aggregate, field="aggregate_output")
            weights = None
            if params.get("weights") is not None:
                wl = _list(params["weights"], src, "weights", field="aggregate_output.weights")
                weights = [_f64(w, src, "weight", field="aggregate_output.weights") for w in wl]
                if len(weights) != len(tree_docs):
                    raise src.err(f"{len(weights)} weights for {len(tree_docs)} models", field="aggregate_output.weights")
                if not all(math.isfinite(w) for w in weights):
                    raise src.err("aggregate weights must be finite", field="aggregate_output.weights")
        # columns: declared ensemble feature names first, then any other name the trees use
        names: list[str] = []
        if isinstance(declared, list) and all(isinstance(x, str) for x in declared):
            names = list(dict.fromkeys(declared))
        for td in tree_docs:
            fn = td.get("feature_names") if isinstance(td, dict) else None
            if isinstance(fn, list):
                names += [x for x in fn if isinstance(x, str) and x not in names]
        columns = {nm: i for i, nm in enumerate(names)}
        trees = [_native_tree(td, t, columns, signed_zero, src)[0] for t, td in enumerate(tree_docs)]
        kw: dict[str, Any] = {}
        if aggregate == "exponent":
            kw.update(accumulate="float64", transform="exp")
            for t, ta in enumerate(trees):
                w = 1.0 if weights is None else weights[t]
                with np.errstate(over="ignore"):
                    if not np.all(np.isfinite(ta.leaf_value * w)):
                        raise src.unsupported("leaf * weight overflows (ES would skip that term)", tree=t, field="leaf_value")
        else:
            kw.update(accumulate="float64_kahan" if aggregate == "weighted_sum" else "float64")
        ens = Ensemble.from_trees(
            trees,
            n_features=len(names),
            feature_names=names,
            tree_weight=weights,
            input_cast="float64",
            int_input_cast="float64",
            sparse_absent="missing",
            infinite_as_missing=True,
            provenance={"library": "elasticsearch", "aggregate_output": aggregate},
            **kw,
        )
    except IRValidationError as exc:
        raise ModelFormatError(exc.reason, path=path, tree=exc.tree, node=exc.node, field=exc.field) from None
    return ens


# ============================================================================ entry points
def _load(path: str | os.PathLike[str], from_document: Any, options: dict[str, Any]) -> Ensemble:
    p = os.fspath(path)
    with open(p, "rb") as fh:
        doc = _decode(fh.read(), _Src(p))
    return from_document(doc, path=p, **options)


def load_ltr(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """LTR plugin model document (JSON file) -> Ensemble."""
    return _load(path, from_ltr_document, options)


def load_native(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """Elasticsearch trained-model JSON file -> Ensemble."""
    return _load(path, from_native_document, options)


FORMATS = {FORMAT_LTR: load_ltr, FORMAT_NATIVE: load_native}

_LTR_TYPE = re.compile(rb'"type"\s*:\s*"model/(?:ranklib|linear|xgboost\+json(?:\+raw)?)"')
_NATIVE_KEYS = re.compile(rb'"(?:trained_model|tree_structure|compressed_definition|trained_model_configs)"\s*:')


def sniff(head: bytes, path: str) -> list[str]:
    """``es-ltr`` for a plugin model document, ``es-native`` for a trained-model definition."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"{"):
        return []
    if re.match(rb'\{\s*"(?:model|_index|_id|_source|name|type|validation)"\s*:', text) and _LTR_TYPE.search(text):
        return [FORMAT_LTR]
    # "tree_structure" also keys LightGBM's dump_model() trees (which have num_tree_per_iteration)
    if _NATIVE_KEYS.search(text) and b'"learner"' not in text and b'"num_tree_per_iteration"' not in text:
        return [FORMAT_NATIVE]
    return []


def _kind_of(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    d = obj.get("_source", obj) if isinstance(obj.get("_source"), dict) else obj
    m = d.get("model")
    if isinstance(m, dict) and (isinstance(m.get("model"), dict) or ("type" in m and "definition" in m)):
        return FORMAT_LTR
    if any(k in d for k in ("trained_model", "definition", "compressed_definition", "trained_model_configs")):
        return FORMAT_NATIVE
    if ("ensemble" in d or "tree" in d) and len(d) <= 2:
        return FORMAT_NATIVE
    return None


def accepts(obj: Any) -> bool:
    """Decoded JSON documents (dicts) of either format, e.g. what the exporters return."""
    return _kind_of(obj) is not None


def from_object(obj: Any, **options: Any) -> Ensemble:
    kind = _kind_of(obj)
    if kind == FORMAT_LTR:
        return from_ltr_document(obj, **options)
    if kind == FORMAT_NATIVE:
        return from_native_document(obj, **options)
    raise TypeError("not an Elasticsearch model document")
