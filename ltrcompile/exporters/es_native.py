"""IR -> Elasticsearch trained-model definition (``PUT _ml/trained_models/<id>`` body, eland's shape).

Elasticsearch compares double feature values with ``Double.compare`` and adds the trees with a
Kahan-compensated double sum (``weighted_sum``). Decisions always convert exactly: for a float32
model every threshold becomes the double boundary between the float32 values that go left and
those that go right (``lt``/``lte`` chosen by the rounding tie rule), LightGBM's zero band is
folded into the threshold, NaN goes to ``default_left`` as in the IR (for ``NAN_AS_ZERO`` nodes:
where 0 goes). Elasticsearch also sends +-infinity to ``default_left``; the IR compares them unless
the model came from Elasticsearch, so infinite inputs are outside the exported model's exact domain.

Sums: exact for models that came from Elasticsearch (``float64_kahan``), single trees and
``exponent`` (``exp`` of a plain double sum) models. Float32 sums (XGBoost, RankLib) and
multi-tree double sums (LightGBM, scikit-learn: ES's compensated sum can differ in the last bit)
need ``exact=False``.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

from ..ir import Ensemble, Op
from ..rescore import FeatureSet
from . import es_ltr_config
from ._common import (
    F32,
    Exactness,
    check_plain_trees,
    left_max32,
    next32,
    node_nan_left,
    preorder,
    where,
)
from ._common import feature_names as _names  # export() has a parameter named feature_names

_DBL_MAX = sys.float_info.max
#: float32 rounding boundary to -inf/+inf: |x| >= 2**128 - 2**103 rounds to infinity (ties to even)
_F32_OVERFLOW = 2.0**128 - 2.0**103


def export(
    ens: Ensemble,
    *,
    exact: bool = True,
    what: str = "put_body",
    feature_names: Any = None,
    inference_config: Any = None,
    featureset: Any = None,
    placeholder_extractors: bool = False,
    default_params: Any = None,
    accept_sum_order: bool = False,
) -> dict[str, Any]:
    """``what="put_body"`` (default): ``{"definition", "inference_config"}``; ``"definition"``: the
    definition alone. ``inference_config`` defaults to ``{"learning_to_rank": {}}``, or, given
    ``featureset`` (a :class:`~ltrcompile.rescore.FeatureSet` or any plugin document holding one,
    see :func:`.es_ltr_config.read_featureset`), to its ``feature_extractors`` built from the
    set's query templates (:mod:`.es_ltr_config`; ``placeholder_extractors`` and
    ``default_params`` go there). A model without feature names takes the set's names by
    position, as the plugin binds them. ``accept_sum_order``: a plain double sum of several trees
    (LightGBM, scikit-learn) is exported even with ``exact=True`` -- Elasticsearch adds the same
    double terms with a compensated sum, a difference of a few ulps of the score (measured in
    docs/cli.md) -- and reported as a warning."""
    if what not in ("put_body", "definition"):
        raise ValueError(f"what must be 'put_body' or 'definition'; got {what!r}")
    fs = _featureset(featureset, inference_config)
    if fs is not None and feature_names is None and ens.feature_names is None:
        if fs.size < ens.n_features:
            raise ValueError(
                f"feature set {fs.name!r} has {fs.size} features; the model reads {ens.n_features}"
            )
        feature_names = list(fs.features[: ens.n_features])
    names = _names(ens, feature_names)
    ex = Exactness("Elasticsearch", exact)
    if fs is not None:
        for n, d in zip(fs.features, fs.defaults, strict=True):
            ex.need(
                d is None or n not in names,
                f"feature [{n}] has default {d} for missing values; Elasticsearch leaves a "
                "feature whose query does not match missing (the model's default_left)",
                field="featureset",
            )
    if ens.network is not None:
        raise ex.refuse("a neural network (Elasticsearch's trained models here are tree ensembles)", field="network")
    if ens.n_trees == 0:
        raise ex.refuse("a model without trees (linear models have no trained-model form)", field="linear_feature")
    check_plain_trees(ens, ex)
    if ens.linear_feature.size:
        raise ex.refuse("trees combined with linear terms", field="linear_feature")
    if ens.normalizers:
        raise ex.refuse("feature normalizers", field="normalizers")
    weights = ens.tree_weight.astype(np.float64).copy()
    base = float(ens.base_score[0])
    n_terms = ens.n_trees + (base != 0.0)
    aggregate = "weighted_sum"
    if ens.transform == "exp" and ens.accumulate == "float64":
        aggregate = "exponent"  # exp(plain double sum), Exponent.aggregate
    else:
        ex.need(ens.transform == "identity", f"output transform {ens.transform!r} (the raw margin is exported)", field="transform")
        mode = ens.accumulate
        msg = f"accumulation {mode!r} over {n_terms} terms (Elasticsearch adds in double with a compensated sum)"
        if mode == "float64" and n_terms > 1 and accept_sum_order:
            ex.note(msg + ": the same double terms, summed in another order", field="accumulate")
        else:
            ex.need(mode == "float64_kahan" or (mode == "float64" and n_terms <= 1), msg, field="accumulate")
    if ens.average_denominator is not None:
        ex.need(False, f"averaging by {ens.average_denominator} (folded into the tree weights)", field="average_denominator")
        weights = weights / ens.average_denominator
    trees = []
    if base != 0.0:
        trees.append(_leaf_tree(names, base))
        weights = np.concatenate([[1.0], weights])
    for t in range(ens.n_trees):
        trees.append(_tree(ens, t, names, ex))
    params: dict[str, Any] = {}
    if not np.all(weights == 1.0):
        params["weights"] = [float(w) for w in weights]
    definition = {
        "trained_model": {
            "ensemble": {
                "feature_names": names,
                "target_type": "regression",
                "aggregate_output": {aggregate: params},
                "trained_models": trees,
            }
        }
    }
    ex.finish()
    if what == "definition":
        return definition
    if fs is None:
        return {"definition": definition, "inference_config": inference_config or {"learning_to_rank": {}}}
    cfg = es_ltr_config.learning_to_rank_config(fs, names, placeholders=placeholder_extractors, default_params=default_params)
    body: dict[str, Any] = {"definition": definition, "inference_config": cfg.inference_config}
    if cfg.description():
        body["description"] = cfg.description()
    return body


def _featureset(featureset: Any, inference_config: Any) -> FeatureSet | None:
    if featureset is None:
        return None
    if inference_config is not None:
        raise ValueError("give either inference_config or featureset (which builds it), not both")
    if isinstance(featureset, FeatureSet):
        return featureset
    if isinstance(featureset, str | os.PathLike):
        return es_ltr_config.load_featureset(featureset)
    return es_ltr_config.read_featureset(featureset)


def _leaf_tree(names: list[str], v: float) -> dict[str, Any]:
    return {"tree": {"feature_names": names, "target_type": "regression", "tree_structure": [{"node_index": 0, "leaf_value": v}]}}


def _boundary(ens: Ensemble, g: int) -> tuple[str, float]:
    """(decision_type, threshold) sending exactly the IR's left values left, for finite doubles."""
    op, t, band = int(ens.op[g]), float(ens.threshold[g]), float(ens.input_zero_band)
    if ens.input_cast == "float32":
        a = left_max32(op, t, band)
        if a is None:
            return "lt", -_DBL_MAX  # nothing goes left
        if a == math.inf:
            return "lte", _DBL_MAX
        if a == -math.inf:
            return "lte", -_F32_OVERFLOW
        b = next32(a)
        if b == math.inf:
            return "lt", _F32_OVERFLOW  # the tie rounds to +inf (F32_MAX is odd)
        mid = (a + b) / 2.0
        even = (int(F32(a).view(np.uint32)) & 1) == 0
        return ("lte" if even else "lt"), mid
    # float64 inputs: the same comparison, LightGBM's zero band folded in
    dt = "lte" if op == Op.LE else "lt"
    if band > 0:
        zero_left = (0.0 <= t) if op == Op.LE else (0.0 < t)
        if zero_left and not ((op == Op.LE and t >= band) or (op == Op.LT and t > band)):
            dt, t = "lte", band
        elif not zero_left and not ((op == Op.LE and t < -band) or (op == Op.LT and t <= -band)):
            dt, t = "lt", -band
    if t == math.inf:
        return "lte", _DBL_MAX
    if t == -math.inf:
        return ("lt", -_DBL_MAX)  # only -inf (missing in Elasticsearch) would go left
    if t == 0.0:  # Double.compare orders -0.0 < +0.0; these forms agree with IEEE for both zeros
        t = 0.0 if dt == "lte" else -0.0
    return dt, t


def _tree(ens: Ensemble, t: int, names: list[str], ex: Exactness) -> dict[str, Any]:
    order = list(preorder(ens, t))
    pos = {g: i for i, g in enumerate(order)}
    nodes = []
    for g in order:
        i = pos[g]
        if ens.left[g] < 0:
            v = float(ens.leaf_value[g, 0])
            if not math.isfinite(v):
                raise ex.refuse("a non-finite leaf", **where(ens, g), field="leaf_value")
            nodes.append({"node_index": i, "leaf_value": v})
            continue
        dt, thr = _boundary(ens, g)
        nodes.append(
            {
                "node_index": i,
                "split_feature": int(ens.feature[g]),
                "threshold": thr,
                "decision_type": dt,
                "default_left": bool(node_nan_left(ens, g)),
                "left_child": pos[int(ens.left[g])],
                "right_child": pos[int(ens.right[g])],
            }
        )
    return {"tree": {"feature_names": names, "target_type": "regression", "tree_structure": nodes}}
