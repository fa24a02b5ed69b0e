"""IR -> RankLib model text (LambdaMART / Random Forests ensembles, RankBoost, Coordinate Ascent, Linear Regression).

RankLib reads features as float32 (``Float.parseFloat``; an unspecified or NaN feature is 0), tests
``x <= threshold`` in float32, and accumulates ``s = (float)((double)s + leaf * weight)`` per tree.
The exporter writes, for every node, the float32 threshold that sends exactly the same float32
inputs left as the IR node does (so float64 and ``x < t`` models convert exactly on RankLib's input
domain), and requires that NaN goes where 0 goes (RankLib cannot tell them apart). Exact sources:
RankLib models themselves, and float32-accumulated models (XGBoost: leaves are folded with their
DART weight, base_score becomes a one-leaf tree). Float64-accumulated trees (LightGBM,
scikit-learn) only with ``exact=False`` (leaves rounded to float32, sums in float32).

Stump ensembles accumulated in double with a 0 left leaf (RankLib RankBoost) are written as
RankBoost (``fid:threshold:alpha``, double threshold); linear models as Coordinate Ascent, or as
Linear Regression when there is an intercept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..frontends.ranklib import java_double_str, java_float_str
from ..ir import Ensemble, Op
from ._common import (
    F32,
    Exactness,
    check_plain_trees,
    is_f32,
    left_max32,
    node_nan_left,
    where,
)

TRANSFORMS_OK = ("identity", "to_float32")


def export(ens: Ensemble, *, exact: bool = True, ranker: str = "auto", **opts: Any) -> str:
    """The RankLib model text for ``ens``. ``ranker``: ``auto`` or one of ``lambdamart``,
    ``random_forests``, ``rankboost``, ``coordinate_ascent``, ``linear_regression`` (trees and
    linear models); ``ranknet``, ``lambdarank``, ``listnet`` (dense networks)."""
    if opts:
        raise TypeError(f"unknown ranklib export option(s) {sorted(opts)}")
    ex = Exactness("RankLib", exact)
    if ens.normalizers:
        raise ex.refuse("feature normalizers (RankLib stores no normalisation in its model files)", field="normalizers")
    if ens.transform not in TRANSFORMS_OK:
        ex.need(False, f"output transform {ens.transform!r} (RankLib scores are raw margins; the margin is exported)", field="transform")
    if ens.network is not None:  # RankNet / LambdaRank / ListNet
        from ._ranklib_network import export_network

        text = export_network(ens, ex, ranker)
        ex.finish()
        return text
    if ens.n_trees and ens.linear_feature.size:
        raise ex.refuse("trees combined with linear terms", field="linear_feature")
    if ens.n_trees == 0:
        text = _linear(ens, ex, ranker)
    else:
        check_plain_trees(ens, ex)
        if ranker in ("auto", "rankboost") and _rankboost_shaped(ens):
            text = _rankboost(ens, ex)
        elif ranker == "rankboost":
            raise ex.refuse("only stumps with a 0.0 left leaf, accumulated in double, are RankBoost models", field="ranker")
        else:
            text = _ensembles(ens, ex, ranker)
    ex.finish()
    return text


# ---------------------------------------------------------------------------- shared node logic
def _threshold(ens: Ensemble, g: int, ex: Exactness) -> float:
    """float32 threshold t' with (x <= t') == IR decision for every float32 x; NaN -> 0 checked."""
    a = left_max32(int(ens.op[g]), float(ens.threshold[g]), float(ens.input_zero_band))
    loc = where(ens, g)
    if a is None:
        raise ex.refuse("a split that sends no value left", **loc, field="threshold")
    nan_left = node_nan_left(ens, g)
    zero_left = 0.0 <= a
    ex.need(
        nan_left == zero_left,
        "NaN goes " + ("left" if nan_left else "right") + " but 0 goes " + ("left" if zero_left else "right")
        + " (RankLib reads NaN and unspecified features as 0)",
        **loc,
        field="default_left",
    )
    return a  # absent entries are NaN when sparse_absent == "missing": covered by the NaN check


def _leaf_f32(ens: Ensemble, g: int, fold: float, ex: Exactness) -> float:
    """The float32 leaf RankLib will read: the IR leaf (float32_fused), or f32(leaf * weight), the
    term a float32-accumulated model adds (exact for XGBoost, DART included)."""
    leaf = float(ens.leaf_value[g, 0])
    ex.need(is_f32(leaf), f"leaf value {leaf!r} is not a float32 value", **where(ens, g), field="leaf_value")
    with np.errstate(over="ignore"):
        r = float(F32(float(F32(leaf)) * fold))
    if not math.isfinite(r):
        raise ex.refuse(f"leaf value {leaf!r} overflows float32", **where(ens, g), field="leaf_value")
    return r


# ---------------------------------------------------------------------------- tree ensembles
def _ensembles(ens: Ensemble, ex: Exactness, ranker: str) -> str:
    mode = ens.accumulate
    ex.need(mode in ("float32", "float32_fused"), f"accumulation {mode!r} (RankLib adds trees in float32)", field="accumulate")
    n_bags = ens.n_bags
    denom = ens.average_denominator
    per_tree_bags = False
    if denom is not None:
        if n_bags > 1 and denom == n_bags and ens.average_raw:
            pass
        elif n_bags == 1 and denom == ens.n_trees and ens.average_raw and ranker in ("auto", "random_forests"):
            per_tree_bags = True  # a forest mean: one tree per bag
            ex.need(mode == "float32_fused" or bool(np.all(ens.tree_weight == 1.0)), "forest mean of weighted trees")
        else:
            raise ex.refuse(f"averaging by {denom} over {n_bags} bag(s) has no RankLib form", field="average_denominator")
    elif n_bags > 1:
        raise ex.refuse("bags without averaging", field="tree_bag")
    if ranker not in ("auto", "lambdamart", "random_forests"):
        raise ex.refuse(f"a tree ensemble cannot be written as {ranker!r}", field="ranker")
    rf = n_bags > 1 or per_tree_bags or ranker == "random_forests"
    base = float(ens.base_score[0])
    bags: list[list[str]] = []
    bag_of = np.arange(ens.n_trees) if per_tree_bags else ens.tree_bag
    n_out_bags = ens.n_trees if per_tree_bags else n_bags
    for b in range(n_out_bags):
        trees: list[str] = []
        if b == 0 and base != 0.0:
            if mode == "float32_fused":
                ex.need(is_f32(base), "base_score is not a float32 value", field="base_score")
            trees.append(_leaf_tree(float(F32(base)), 1.0))
        for t in np.flatnonzero(bag_of == b):
            trees.append(_tree(ens, int(t), ex))
        bags.append(trees)
    name = "Random Forests" if rf else "LambdaMART"
    head = [f"## {name}"]
    if rf:
        head.append(f"## No. of bags = {n_out_bags}")
    head.append(f"## No. of trees = {sum(len(b) for b in bags)}")
    head.append("## Exported by ltrcompile" + _origin(ens))
    out = "\n".join(head) + "\n\n"
    for b, trees in enumerate(bags):
        out += "<ensemble>\n"
        for i, tree in enumerate(trees):
            out += tree.replace('<tree id="?"', f'<tree id="{i + 1}"', 1)
        out += "</ensemble>\n"
        if rf and b < len(bags) - 1:
            out += "\n"
    return out


def _origin(ens: Ensemble) -> str:
    src = ens.provenance.get("format") or ens.provenance.get("library")
    return f" from a {src} model" if src else ""


def _leaf_tree(v: float, w: float) -> str:
    return (
        f'\t<tree id="?" weight="{java_float_str(w)}">\n\t\t<split>\n'
        f"\t\t\t<output> {java_float_str(v)} </output>\n\t\t</split>\n\t</tree>\n"
    )


def _tree(ens: Ensemble, t: int, ex: Exactness) -> str:
    w = float(ens.tree_weight[t])
    if ens.accumulate == "float32_fused":
        ex.need(is_f32(w), "tree weight is not a float32 value", tree=t, field="tree_weight")
        fold = 1.0  # RankLib's own arithmetic: leaf * weight in double, per tree
    else:
        fold, w = w, 1.0  # XGBoost: f32(leaf * w) is the term it adds; RankLib adds leaf * 1
    lines = [f'\t<tree id="?" weight="{java_float_str(w)}">\n']
    # iterative pre-order with explicit close tags
    stack: list[tuple[int, int, str | None]] = [(int(ens.tree_offset[t]), 2, None)]
    while stack:
        g, depth, pos = stack.pop()
        if g < 0:  # close marker
            lines.append("\t" * depth + "</split>\n")
            continue
        ind = "\t" * depth
        lines.append(ind + ("<split>\n" if pos is None else f'<split pos="{pos}">\n'))
        if ens.left[g] < 0:
            v = _leaf_f32(ens, g, fold, ex)
            lines.append(ind + f"\t<output> {java_float_str(v)} </output>\n")
            lines.append(ind + "</split>\n")
            continue
        a = _threshold(ens, g, ex)
        lines.append(ind + f"\t<feature> {int(ens.feature[g]) + 1} </feature>\n")
        lines.append(ind + f"\t<threshold> {java_float_str(a)} </threshold>\n")
        stack.append((-1, depth, None))
        stack.append((int(ens.right[g]), depth + 1, "right"))
        stack.append((int(ens.left[g]), depth + 1, "left"))
    lines.append("\t</tree>\n")
    return "".join(lines)


# ---------------------------------------------------------------------------- RankBoost
def _rankboost_shaped(ens: Ensemble) -> bool:
    if ens.accumulate != "float64" or ens.n_bags > 1 or ens.average_denominator is not None:
        return False
    sizes = np.diff(ens.tree_offset)
    if not np.all(sizes == 3):
        return False
    roots = ens.tree_offset[:-1]
    lefts = ens.left[roots]
    return bool(np.all(lefts >= 0) and np.all(ens.leaf_value[lefts, 0] * ens.tree_weight == 0.0))


def _rankboost(ens: Ensemble, ex: Exactness) -> str:
    ex.need(ens.input_cast == "float32", "inputs compared in double (RankLib reads float32)", field="input_cast")
    ex.need(float(ens.base_score[0]) == 0.0, "base_score (RankBoost has no intercept)", field="base_score")
    toks = []
    for t in range(ens.n_trees):
        g = int(ens.tree_offset[t])
        loc = where(ens, g)
        thr = float(ens.threshold[g])
        band = float(ens.input_zero_band)
        ex.need(band == 0.0, "LightGBM zero band", **loc, field="threshold")
        # RankBoost: alpha * (x > thr) with double thr; x <= t (LE) == !(x > t); x < t == x <= prev(t)
        if ens.op[g] == Op.LT:
            thr = float(np.nextafter(thr, -np.inf))
        if math.isinf(thr):
            raise ex.refuse("an infinite RankBoost threshold", **loc, field="threshold")
        nan_left = node_nan_left(ens, g)
        ex.need(nan_left == (0.0 <= thr), "NaN does not go where 0 goes (RankLib reads NaN as 0)", **loc, field="default_left")
        alpha = float(ens.leaf_value[int(ens.right[g]), 0]) * float(ens.tree_weight[t])
        toks.append(f"{int(ens.feature[g]) + 1}:{java_double_str(thr)}:{java_double_str(alpha)}")
    return f"## RankBoost\n## Exported by ltrcompile{_origin(ens)}\n" + " ".join(toks)


# ---------------------------------------------------------------------------- linear models
def _linear(ens: Ensemble, ex: Exactness, ranker: str) -> str:
    ex.need(ens.accumulate == "float64", f"linear terms accumulated as {ens.accumulate!r} (RankLib adds in double)", field="accumulate")
    ex.need(ens.linear_skip_missing, "NaN features propagate in the IR but read as 0 in RankLib", field="linear_skip_missing")
    if ens.n_outputs != 1:
        raise ex.refuse("several outputs", field="n_outputs")
    if ens.average_denominator is not None:
        raise ex.refuse("an averaged linear model", field="average_denominator")
    base = float(ens.base_score[0])
    terms = " ".join(
        f"{int(f) + 1}:{java_double_str(float(w))}" for f, w in zip(ens.linear_feature, ens.linear_weight, strict=True)
    )
    if ranker == "auto":
        ranker = "linear_regression" if base != 0.0 else "coordinate_ascent"
    if ranker == "coordinate_ascent":
        ex.need(base == 0.0, "base_score (Coordinate Ascent has no intercept)", field="base_score")
        return f"## Coordinate Ascent\n## Exported by ltrcompile{_origin(ens)}\n{terms}"
    if ranker == "linear_regression":
        sep = " " if terms else ""
        return f"## Linear Regression\n## Exported by ltrcompile{_origin(ens)}\n0:{java_double_str(base)}{sep}{terms}"
    raise ex.refuse(f"a linear model cannot be written as {ranker!r}", field="ranker")


__all__ = ["export"]
