"""IR -> o19s / OpenSearch LTR plugin model (``_createmodel`` request body or the bare definition).

The plugin's inputs are float32 Lucene scores. The model type is chosen from the IR's arithmetic
(``model_type="auto"``):

* RankLib-style models (``float32_fused`` trees, RankBoost stumps, double linear terms) ->
  ``model/ranklib`` with the RankLib text of :mod:`.ranklib` (the plugin runs RankLib itself, then
  returns ``(float)`` of its double score);
* float32 linear terms (one per feature, in feature order) -> ``model/linear``;
* other trees -> ``model/xgboost+json``: the plugin adds float32 leaves from 0 in tree order and
  goes left iff ``x < t`` in float32, NaN to the ``missing`` child. float32-accumulated IR
  (XGBoost) converts exactly: every threshold becomes the float32 ``t`` with the same decisions on
  float32 inputs, DART weights are folded into the leaves, a non-zero base_score becomes a one-leaf
  tree (the plugin ignores base_score). Double-accumulated models (LightGBM, scikit-learn) need
  ``exact=False``. ``binary:logistic`` is only exact for models loaded from the plugin (its sigmoid is
  computed in double, XGBoost's in float).

Feature normalizers of the IR are written as ``feature_normalizers``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import normalizers
from ..ir import Ensemble
from . import ranklib as _ranklib_exporter
from ._common import (
    F32,
    Exactness,
    check_plain_trees,
    is_f32,
    left_max32,
    next32,
    node_nan_left,
    preorder,
    where,
)
from ._common import feature_names as _names  # export() has a parameter named feature_names

_JACKSON_INF = 1e39  # Float.parseFloat("1e39") is +Infinity


def export(
    ens: Ensemble,
    *,
    exact: bool = True,
    name: str = "ltrcompile_model",
    body: str = "createmodel",
    model_type: str = "auto",
    feature_names: Any = None,
) -> Any:
    """``body="createmodel"`` (default): ``{"model": {"name", "model": {"type", "definition",
    "feature_normalizers"?}}}`` for ``POST _ltr/_featureset/<set>/_createmodel``; ``body="definition"``:
    the definition alone. The feature set must list the model's features in column order."""
    if body not in ("createmodel", "definition"):
        raise ValueError(f"body must be 'createmodel' or 'definition'; got {body!r}")
    names = _names(ens, feature_names)
    ex = Exactness("the o19s LTR plugin", exact)
    if model_type == "auto":
        model_type = _auto_type(ens)
    if ens.network is not None and model_type != "model/ranklib":
        raise ex.refuse(f"a neural network as {model_type} (the plugin runs networks as model/ranklib)", field="network")
    if model_type == "model/ranklib":
        definition: Any = _ranklib_exporter.export(ens, exact=exact)
        dense = True
    elif model_type == "model/linear":
        definition = _linear(ens, names, ex)
        dense = True
    elif model_type == "model/xgboost+json":
        definition = _xgboost(ens, names, ex)
        dense = False
    else:
        raise ValueError(f"model_type must be auto, model/ranklib, model/linear or model/xgboost+json; got {model_type!r}")
    norms = _normalizers(ens, names, dense, ex)
    ex.finish()
    if body == "definition":
        return definition
    model: dict[str, Any] = {"type": model_type, "definition": definition}
    if norms:
        model["feature_normalizers"] = norms
    return {"model": {"name": name, "model": model}}


def _auto_type(ens: Ensemble) -> str:
    if ens.network is not None:
        return "model/ranklib"
    if ens.n_trees == 0:
        return "model/linear" if ens.accumulate == "float32" else "model/ranklib"
    if ens.accumulate == "float32_fused":
        return "model/ranklib"
    if _ranklib_exporter._rankboost_shaped(ens):
        return "model/ranklib"
    return "model/xgboost+json"


def _normalizers(ens: Ensemble, names: list[str], dense: bool, ex: Exactness) -> dict[str, Any] | None:
    if not ens.normalizers:
        return None
    out: dict[str, Any] = {}
    for spec in ens.normalizers:
        f = spec["feature"]
        mv = spec.get("missing_value")
        if dense:
            ex.need(mv == 0.0, "a normalizer without missing_value=0 (dense plugin models normalise the 0 of an unmatched feature)", field="normalizers")
        else:
            ex.need(mv is None, "a normalizer with missing_value (the plugin's XGBoost models keep NaN)", field="normalizers")
        norm = normalizers.from_ir(spec)
        problem = norm.plugin_problem()
        if problem:
            raise ex.refuse(f"a normalizer the plugin refuses: {problem}", field="normalizers")
        ex.need(norm.is_float32(), "normalizer parameters that are not float32 values", field="normalizers")
        out[names[f]] = norm.to_plugin()
    return out


def _linear(ens: Ensemble, names: list[str], ex: Exactness) -> dict[str, float]:
    if ens.n_trees:
        raise ex.refuse("model/linear holds no trees", field="model_type")
    if ens.n_outputs != 1 or ens.average_denominator is not None:
        raise ex.refuse("several outputs or averaging", field="n_outputs")
    ex.need(ens.accumulate == "float32", f"accumulation {ens.accumulate!r} (model/linear adds in float32)", field="accumulate")
    ex.need(float(ens.base_score[0]) == 0.0, "base_score (model/linear has no intercept)", field="base_score")
    ex.need(ens.linear_skip_missing, "NaN features propagate in the IR (the plugin reads unmatched features as 0)", field="linear_skip_missing")
    ex.need(ens.transform in ("identity", "to_float32"), f"output transform {ens.transform!r}", field="transform")
    feats = ens.linear_feature.astype(np.int64)
    ex.need(bool(np.all(np.diff(feats) > 0)), "terms not in increasing feature order, one per feature (the plugin sums in feature order)", field="linear_feature")
    out: dict[str, float] = {}
    for f, w in zip(feats, ens.linear_weight, strict=True):
        ex.need(is_f32(float(w)), f"weight {float(w)!r} is not a float32 value", field="linear_weight")
        if float(w) != 0.0:  # absent names weigh 0 in the plugin
            out[names[int(f)]] = float(F32(w))
    return out


def _xgboost(ens: Ensemble, names: list[str], ex: Exactness) -> Any:
    if ens.n_trees == 0:
        raise ex.refuse("a model without trees cannot be model/xgboost+json", field="model_type")
    check_plain_trees(ens, ex)
    if ens.linear_feature.size:
        raise ex.refuse("trees combined with linear terms", field="linear_feature")
    if ens.average_denominator is not None or ens.n_bags > 1:
        raise ex.refuse("averaged forests (the plugin only sums trees)", field="average_denominator")
    mode = ens.accumulate
    fused_unit = mode == "float32_fused" and bool(np.all(ens.tree_weight == 1.0))
    ex.need(mode == "float32" or fused_unit, f"accumulation {mode!r} (the plugin adds float32 leaves)", field="accumulate")
    objective = None
    if ens.transform == "sigmoid_to_float32":
        objective = "binary:logistic"
    elif ens.transform == "xgb_sigmoid":
        ex.need(False, "XGBoost's float32 sigmoid (the plugin computes it in double)", field="transform")
        objective = "binary:logistic"
    elif ens.transform not in ("identity", "to_float32"):
        ex.need(False, f"output transform {ens.transform!r} (the raw margin is exported)", field="transform")
    trees: list[Any] = []
    base = float(ens.base_score[0])
    if base != 0.0:
        trees.append({"nodeid": 0, "leaf": float(F32(base))})
    for t in range(ens.n_trees):
        trees.append(_tree(ens, t, names, ex))
    if objective:
        return {"objective": objective, "splits": trees}
    return trees


def _tree(ens: Ensemble, t: int, names: list[str], ex: Exactness) -> dict[str, Any]:
    w = float(ens.tree_weight[t])
    order = list(preorder(ens, t))
    nid = {g: i for i, g in enumerate(order)}
    depth = {order[0]: 0}
    made: dict[int, dict[str, Any]] = {}
    for g in order:
        d = depth[g]
        if ens.left[g] < 0:
            leaf = float(ens.leaf_value[g, 0])
            ex.need(is_f32(leaf), f"leaf value {leaf!r} is not a float32 value", **where(ens, g), field="leaf_value")
            with np.errstate(over="ignore"):
                v = float(F32(float(F32(leaf)) * w))  # f32(leaf * w): the term float32 models add
            if not math.isfinite(v):
                raise ex.refuse("leaf value overflows float32", **where(ens, g), field="leaf_value")
            made[g] = {"nodeid": nid[g], "leaf": v}
            continue
        loc = where(ens, g)
        a = left_max32(int(ens.op[g]), float(ens.threshold[g]), float(ens.input_zero_band))
        if a is None:
            raise ex.refuse("a split that sends no value left", **loc, field="threshold")
        ex.need(a != math.inf, "a split that sends +inf left (the plugin tests x < t)", **loc, field="threshold")
        tp = next32(a) if a < math.inf else math.inf
        lc, rc = int(ens.left[g]), int(ens.right[g])
        depth[lc] = depth[rc] = d + 1
        nan_left = node_nan_left(ens, g)
        made[g] = {
            "nodeid": nid[g],
            "depth": d,
            "split": names[int(ens.feature[g])],
            "split_condition": _JACKSON_INF if math.isinf(tp) else tp,
            "yes": nid[lc],
            "no": nid[rc],
            "missing": nid[lc] if nan_left else nid[rc],
        }
    for g in reversed(order):  # attach children bottom-up
        if ens.left[g] >= 0:
            made[g]["children"] = [made[int(ens.left[g])], made[int(ens.right[g])]]
    return made[order[0]]
