"""Exact per-feature contributions: path-dependent TreeSHAP, the readable reference.

``predict_contrib(ens, X)`` returns what XGBoost's ``pred_contribs=True`` and LightGBM's
``pred_contrib=True`` return: per row and output, one Shapley value per feature plus a last "bias"
column (the model's expected raw margin), and the row sums to the raw margin. Shape ``(n_rows,
n_features + 1)`` for one output; ``(n_rows, n_outputs, n_features + 1)`` for several (XGBoost's
layout; LightGBM's flat ``(n_rows, n_outputs * (n_features + 1))`` is ``.reshape(n_rows, -1)`` of it).

The expectation is the one the libraries use (Lundberg et al. 2018, "tree path dependent"): at a split
on a feature outside the coalition, rows go both ways weighted by the children's share of the parent's
**cover** (``Ensemble.cover``: XGBoost's per-node hessian sums, LightGBM's per-node data counts,
scikit-learn's ``weighted_n_node_samples``). Formats without covers (RankLib, Elasticsearch/o19s,
XGBoost dumps without stats) raise :class:`CoverMissingError`: path-dependent contributions are not
defined without them. The split decision itself is the interpreter's (:func:`goes_left`), so NaN,
default directions, zero bands and categorical sets mean here what they mean when scoring.

This module is Algorithm 2 of the paper (extend / unwind the unique path), vectorised over rows: a
row's one-fraction at a split is 1 when it takes that branch, so both children are visited with a
per-row 0/1 array instead of following one "hot" child. It is the executable spec; the compiled kernel
(:mod:`ltrcompile.backends.cython.contrib`) uses a different, faster algorithm and is tested against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UnsupportedModelError
from .inputs import model_matrix
from .ir import Ensemble


class CoverMissingError(UnsupportedModelError):
    """The model carries no node covers, so path-dependent TreeSHAP is undefined for it."""


def check_explainable(ens: Ensemble) -> None:
    """Refuse (typed, at the start) what path-dependent TreeSHAP cannot explain exactly."""
    src = ens.provenance.get("format") or ens.provenance.get("source") or "this model's format"
    if getattr(ens, "network", None) is not None:
        raise UnsupportedModelError("TreeSHAP explains tree ensembles; this model is a network", field="network")
    if ens.cover is None:
        raise CoverMissingError(
            f"{src} carries no node covers (training weight per node), which path-dependent "
            "TreeSHAP needs; load the model from a format that stores them (XGBoost JSON/UBJSON "
            "save_model, an XGBoost dump with with_stats=True, a LightGBM model file, a "
            "scikit-learn estimator)",
            field="cover",
        )
    if ens.has_linear_leaves:
        raise UnsupportedModelError("contributions of linear-tree leaves are not supported", field="leaf_linear")
    if ens.linear_feature.size:
        raise UnsupportedModelError("contributions of linear terms are not supported", field="linear_feature")


def contrib_scale(ens: Ensemble) -> float:
    """Factor the summed tree contributions get so rows sum to ``predict(raw_score=True)``."""
    if ens.average_denominator is not None and ens.average_raw:
        return 1.0 / ens.average_denominator
    return 1.0


def output_columns(ens: Ensemble, t: int) -> slice | int:
    """Which outputs tree ``t``'s leaf vector adds to."""
    return slice(None) if ens.leaf_dim > 1 else int(ens.tree_output[t])


def tree_expected_value(ens: Ensemble, t: int) -> np.ndarray:
    """Cover-weighted mean leaf value of tree ``t`` (leaf_dim,): the sum over leaves of the value
    times the product of ``cover(child) / cover(parent)`` along the path -- exactly the baseline the
    unique-path recursion's contributions are measured from."""
    assert ens.cover is not None
    root = int(ens.tree_offset[t])

    def mean(node: int) -> np.ndarray:
        if ens.left[node] < 0:
            return ens.leaf_value[node]
        c = ens.cover[node]
        lo, hi = int(ens.left[node]), int(ens.right[node])
        return _ratio(ens.cover[lo], c) * mean(lo) + _ratio(ens.cover[hi], c) * mean(hi)

    return np.asarray(mean(root), np.float64)


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b != 0 else 0.0


@dataclass
class _El:
    """One element of the unique path: feature, zero fraction, per-row one fraction and weight."""

    feature: int
    zero: float
    one: np.ndarray
    pweight: np.ndarray


def _extend(path: list[_El], zero: float, one: np.ndarray, feature: int) -> None:
    d = len(path)
    path.append(_El(feature, zero, one, np.full(one.shape, 1.0 if d == 0 else 0.0)))
    for i in range(d - 1, -1, -1):
        path[i + 1].pweight = path[i + 1].pweight + one * path[i].pweight * (i + 1) / (d + 1)
        path[i].pweight = zero * path[i].pweight * (d - i) / (d + 1)


def _unwind(path: list[_El], index: int) -> list[_El]:
    """A copy of ``path`` with element ``index`` removed (its feature split again below)."""
    d = len(path) - 1
    one, zero = path[index].one, path[index].zero
    hot = one != 0
    nxt = path[d].pweight
    out = [_El(e.feature, e.zero, e.one, e.pweight) for e in path]
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(d - 1, -1, -1):
            w_hot = nxt * (d + 1) / ((i + 1) * one)
            w_cold = out[i].pweight * (d + 1) / (zero * (d - i)) if zero != 0 else np.zeros_like(nxt)
            new = np.where(hot, w_hot, w_cold)
            nxt = np.where(hot, out[i].pweight - new * zero * (d - i) / (d + 1), nxt)
            out[i].pweight = new
    # features and fractions after ``index`` shift down one place; the weights stay where they are
    keep = [e for j, e in enumerate(path) if j != index]
    return [_El(keep[i].feature, keep[i].zero, keep[i].one, out[i].pweight) for i in range(d)]


def _unwound_sum(path: list[_El], index: int) -> np.ndarray:
    d = len(path) - 1
    one, zero = path[index].one, path[index].zero
    hot = one != 0
    nxt = path[d].pweight
    total = np.zeros_like(nxt)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(d - 1, -1, -1):
            t_hot = nxt * (d + 1) / ((i + 1) * one)
            t_cold = (path[i].pweight / zero) / ((d - i) / (d + 1)) if zero != 0 else np.zeros_like(nxt)
            total = total + np.where(hot, t_hot, t_cold)
            nxt = np.where(hot, path[i].pweight - t_hot * zero * ((d - i) / (d + 1)), nxt)
    return total


def _tree_shap(ens: Ensemble, t: int, left_of: dict[int, np.ndarray], phi: np.ndarray) -> None:
    """Add tree ``t``'s contributions (unweighted) into ``phi[:, :, :n_features]``
    (``phi``: n_rows, leaf_dim, >= n_features)."""
    assert ens.cover is not None
    cover = ens.cover
    n = phi.shape[0]

    def visit(node: int, path: list[_El], zero: float, one: np.ndarray, feature: int) -> None:
        path = [_El(e.feature, e.zero, e.one, e.pweight) for e in path]
        _extend(path, zero, one, feature)
        if ens.left[node] < 0:
            value = ens.leaf_value[node]
            for i in range(1, len(path)):
                e = path[i]
                w = _unwound_sum(path, i) * (e.one - e.zero)
                phi[:, :, e.feature] += w[:, None] * value[None, :]
            return
        f = int(ens.feature[node])
        in_zero, in_one = 1.0, np.ones(n)
        k = next((i for i, e in enumerate(path) if e.feature == f), None)
        if k is not None:  # already split on f above: undo that split and redo it here
            in_zero, in_one = path[k].zero, path[k].one
            path = _unwind(path, k)
        goes = left_of[node]
        for child, taken in ((int(ens.left[node]), goes), (int(ens.right[node]), ~goes)):
            visit(child, path, _ratio(cover[child], cover[node]) * in_zero, in_one * taken, f)

    visit(int(ens.tree_offset[t]), [], 1.0, np.ones(n), -1)


def node_decisions(ens: Ensemble, M: np.ndarray, t: int) -> dict[int, np.ndarray]:
    """Per internal node of tree ``t``: does each row of the model matrix go left (bool (n,))."""
    from .backends.interpreter import goes_left

    lo, hi = int(ens.tree_offset[t]), int(ens.tree_offset[t + 1])
    nodes = lo + np.flatnonzero(ens.left[lo:hi] >= 0)
    if not nodes.size:
        return {}
    v = M[:, ens.feature[nodes]]
    dec = goes_left(ens, np.broadcast_to(nodes, v.shape), v)
    return {int(nd): dec[:, j] for j, nd in enumerate(nodes)}


def predict_contrib(ens: Ensemble, X: Any) -> np.ndarray:
    """Path-dependent TreeSHAP contributions; see the module docstring for shape and meaning."""
    check_explainable(ens)
    M = model_matrix(ens, X)
    n, F, K = M.shape[0], ens.n_features, ens.n_outputs
    f32 = accumulates_in_float32(ens)
    out = np.zeros((n, K, F + 1), np.float32 if f32 else np.float64)
    for t in range(ens.n_trees):
        phi = np.zeros((n, ens.leaf_dim, F + 1), np.float64)
        _tree_shap(ens, t, node_decisions(ens, M, t), phi)
        phi[:, :, F] = tree_expected_value(ens, t)
        cols = output_columns(ens, t)
        tree_phi = phi if ens.leaf_dim > 1 else phi[:, 0, :]
        if f32:  # as XGBoost: per-tree float contributions, times the float weight, float sums
            out[:, cols, :] += tree_phi.astype(np.float32) * np.float32(ens.tree_weight[t])
        else:
            out[:, cols, :] += float(ens.tree_weight[t]) * tree_phi
    out[:, :, F] += ens.base_score.astype(out.dtype)  # the libraries add the base margin last
    res = out.astype(np.float64) * contrib_scale(ens)
    return res[:, 0, :] if K == 1 else res


def accumulates_in_float32(ens: Ensemble) -> bool:
    """Whether the source adds tree outputs in float (XGBoost, RankLib): contributions then follow
    the same precision -- each tree's contributions rounded to float, weighted and summed in
    float -- so they match the library's own to its last bits instead of drifting by T float ulps."""
    return ens.accumulate in ("float32", "float32_fused")
