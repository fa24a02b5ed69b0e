"""A numpy evaluator of :class:`~.lowering.LoweredModel`: what the generated C computes, without C.

It executes the lowered decisions (kernel-type thresholds, folded NaN directions, per-node zero band,
zero-default rule, category sets) and the C accumulation macros operation by operation, so a test
that compares it with the interpreter separates lowering bugs from C bugs. ``fast=True`` walks the
trees the branch-free kernel takes with its ``<=``-only thresholds on banded rows, as that kernel does.
Slow by design (one numpy step per tree level); for tests only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...transforms import TRANSFORMS
from .lowering import LoweredModel

F32 = np.float32


def kernel_rows(lm: LoweredModel, X: Any) -> np.ndarray:
    """Rows as the kernel sees them: cast to its value type, +-inf -> NaN where the model says so."""
    with np.errstate(over="ignore"):
        V = np.asarray(X, np.float64).astype(F32 if lm.value_type == "float" else np.float64)
    V = V.astype(np.float64)
    if lm.infinite_as_missing:
        V[np.isinf(V)] = np.nan
    return V


def _banded(lm: LoweredModel, v: np.ndarray, on: np.ndarray | bool) -> np.ndarray:
    return np.where(on & (np.abs(v) <= lm.band_k), 0.0, v)


def _codes(rule: str, cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, code) like ltrc_code_xgb/lgb/skl."""
    with np.errstate(invalid="ignore"):
        if rule == "xgboost":
            valid = (cv >= 0.0) & (cv < 16777216.0)
        elif rule == "lightgbm":
            valid = (cv > -1.0) & (cv < 2147483648.0)
        else:
            valid = (cv >= 0.0) & (cv < 2147483648.0) & (np.trunc(cv) == cv)
    code = np.zeros(cv.shape, np.int64)
    code[valid] = np.trunc(cv[valid]).astype(np.int64)
    return valid, code


def _in_sets(lm: LoweredModel, sid: np.ndarray, code: np.ndarray, valid: np.ndarray) -> np.ndarray:
    S = lm.sets
    out = np.zeros(sid.shape, bool)
    for j in np.flatnonzero(valid).tolist():
        s, c = int(sid[j]), int(code[j])
        if S.sorted[s]:
            out[j] = bool(np.isin(c, S.sorted_codes(s)))
        else:
            out[j] = c < int(S.n[s]) and bool((int(S.bitset(s)[c >> 5]) >> (c & 31)) & 1)
    return out


def _go_left(lm: LoweredModel, node: np.ndarray, v: np.ndarray, band: bool) -> np.ndarray:
    """The lowered decision (straight-line code's ``condition``) at ``node`` for value ``v``."""
    if band and lm.band > 0:
        v = _banded(lm, v, lm.band_node[node])
    t = lm.thr[node]
    with np.errstate(invalid="ignore"):
        cmp = np.where(lm.op_le[node], v <= t, v < t)
        left = np.where(np.isnan(v), lm.nan_left[node], cmp)
        z = np.abs(v) > lm.zero_k
        zl = np.where(lm.default_left[node], ~z | left, z & left)
    left = np.where(lm.zero_default[node], zl, left)
    cat = np.flatnonzero(lm.categorical[node])
    if cat.size:
        cn, cv = node[cat], v[cat]
        valid, code = _codes(lm.categorical_rule, cv)
        inset = _in_sets(lm, lm.set_id[cn], code, valid)
        res = np.where(lm.cat_left[cn], inset, ~inset)
        left[cat] = np.where(lm.nan_default[cn] & np.isnan(cv), lm.default_left[cn], res)
    return left


def _go_left_fast(lm: LoweredModel, node: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The branch-free walk's decision: ``v <= le_thr``, NaN by ``nan_left`` (rows already banded)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(v), lm.nan_left[node], v <= lm.le_thr[node])


def leaves(lm: LoweredModel, X: Any, band: bool = True, fast: bool = False) -> np.ndarray:
    """Tree-local leaf index of every (row, tree): int64 ``(n, n_trees)``."""
    V = kernel_rows(lm, X)
    if fast and band and lm.band > 0:
        V = _banded(lm, V, True)
    n = V.shape[0]
    out = np.zeros((n, lm.n_trees), np.int64)
    rows = np.arange(n)
    for t in range(lm.n_trees):
        node = np.full(n, lm.tree_offset[t], np.int64)
        use_fast = fast and bool(lm.fast_tree[t])
        while True:
            act = np.flatnonzero(lm.left[node] >= 0)
            if not act.size:
                break
            nd = node[act]
            v = V[rows[act], lm.feature[nd]]
            go = _go_left_fast(lm, nd, v) if use_fast else _go_left(lm, nd, v, band)
            node[act] = np.where(go, lm.left[nd], lm.right[nd])
        out[:, t] = lm.leaf_local[node]
    return out


def predict_leaf(lm: LoweredModel, X: Any, band: bool = True, fast: bool = False) -> np.ndarray:
    """Source leaf ids, int32 ``(n, n_trees)``."""
    L = leaves(lm, X, band, fast)
    return lm.leaf_ids[lm.leaf_base[:-1][None, :] + L].astype(np.int32)


class _Acc:
    """One accumulator per row in the model's precision (the LTRC_ACCUM / LTRC_LINACC macros)."""

    def __init__(self, mode: str, start: float, n: int) -> None:
        self.mode = mode
        if mode == "float64_kahan":
            y = start - 0.0
            s = 0.0 + y
            self.s = np.full(n, s)
            self.c = np.full(n, (s - 0.0) - y)
            self.simple = np.full(n, 0.0 + start)
        elif mode in ("float32", "float32_fused"):
            self.a = np.full(n, F32(start), F32)
        else:
            self.a = np.full(n, float(start))

    def add(self, v: np.ndarray) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            if self.mode == "float64_kahan":
                y = v - self.c
                t = self.s + y
                self.c = (t - self.s) - y
                self.s = t
                self.simple = self.simple + v
            elif self.mode == "float32":
                self.a = (self.a + np.asarray(v).astype(F32)).astype(F32)
            elif self.mode == "float32_fused":
                self.a = (self.a.astype(np.float64) + v).astype(F32)
            else:
                self.a = self.a + v

    def add_linear(self, v: np.ndarray, w: float) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            if self.mode == "float32":
                self.a = (self.a + (v.astype(F32) * F32(w)).astype(F32)).astype(F32)
            else:
                self.add(v * w)

    def value(self) -> np.ndarray:
        if self.mode == "float64_kahan":
            with np.errstate(invalid="ignore"):
                r = self.s - self.c
            return np.where(np.isnan(r) & np.isinf(self.simple), self.simple, r)
        return self.a.astype(np.float64)


def _linear_leaf(lm: LoweredModel, V: np.ndarray, g: np.ndarray, band: bool) -> np.ndarray:
    ll = lm.linear_leaves
    assert ll is not None
    out = np.empty(g.size)
    for r, gi in enumerate(g.tolist()):
        b, e = int(ll.begin[gi]), int(ll.end[gi])
        if b < 0:
            out[r] = lm.leaf_raw[gi]
            continue
        acc = float(ll.const[gi])
        for i in range(b, e):
            xv = float(V[r, ll.feature[i]])
            if band and lm.band > 0 and abs(xv) <= lm.band_k:
                xv = 0.0
            if xv != xv:
                acc = float(lm.leaf_raw[gi])
                break
            acc = acc + float(ll.coeff[i]) * xv
        out[r] = acc
    return out


def raw_margins(lm: LoweredModel, X: Any, band: bool = True, fast: bool = False) -> np.ndarray:
    """Un-averaged raw margins ``(n, n_outputs)`` with the C accumulation order and precision."""
    V = kernel_rows(lm, X)
    n = V.shape[0]
    L = leaves(lm, X, band, fast)
    accs = [_Acc(lm.acc_mode, float(lm.base_acc[s]), n) for s in range(lm.n_slots)]
    D = lm.leaf_dim
    for t in range(lm.n_trees):
        s = int(lm.tree_slot[t])
        g = lm.leaf_base[t] + L[:, t]
        first = 0
        if lm.tree_linear[t]:
            accs[s].add_linear(_linear_leaf(lm, V, g, band), float(lm.tree_weight[t]))
            first = 1
        for c in range(first, D):
            accs[s + c].add(lm.leaf_values[g, c])
    K = lm.n_outputs
    r = np.stack([accs[k].value() for k in range(K)], axis=1) if K else np.zeros((n, 0))
    with np.errstate(over="ignore", invalid="ignore"):
        for b in range(1, lm.n_bags):
            r = r + np.stack([accs[b * K + k].value() for k in range(K)], axis=1)
        f32 = lm.acc_mode in ("float32", "float32_fused")
        for o, f, w in zip(lm.linear_output.tolist(), lm.linear_feature.tolist(), lm.linear_weight.tolist(), strict=True):
            xv = V[:, f]
            if band and lm.band > 0:
                xv = _banded(lm, xv, True)
            if f32:
                p = (xv.astype(F32) * F32(w)).astype(F32)
                nv = (r[:, o].astype(F32) + p).astype(F32).astype(np.float64)
            else:
                nv = r[:, o] + w * xv
            r[:, o] = np.where(np.isnan(xv), r[:, o], nv) if lm.linear_skip_missing else nv
    return r


def predict(lm: LoweredModel, X: Any, raw_score: bool = False, band: bool = True, fast: bool = False) -> np.ndarray:
    """Scores like ``Ensemble.predict``: ``(n,)`` for one output, else ``(n, k)``."""
    r = raw_margins(lm, X, band, fast)
    if lm.average_denominator is not None and (lm.average_raw or not raw_score):
        r = r / lm.average_denominator
    out = r if raw_score else TRANSFORMS[lm.transform].apply(r, lm.transform_params)
    return out[:, 0] if out.shape[1] == 1 else out
