"""Reference interpreter: the executable specification of the IR.

Vectorised numpy over rows *and* trees: all (row, tree) walkers advance one level per step, so the
Python loop runs ``max_depth`` times per chunk of rows, not once per row. Accumulation reproduces
each source's arithmetic exactly (precision and order), so its raw margins are bit-identical to the
source libraries' where the IR says how they add up. Every other backend is tested against this.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..inputs import model_matrix
from ..ir import LIGHTGBM_ZERO_BAND, Ensemble, Missing, Op
from ..transforms import TRANSFORMS

#: Upper bound on (rows x trees) walkers held at once (memory ~ 40 bytes each).
_WALKERS_PER_CHUNK = 1 << 20


class _Prepared:
    """Per-ensemble lookup tables, built once and cached on the ensemble object."""

    def __init__(self, ens: Ensemble) -> None:
        self.roots = ens.tree_offset[:-1].astype(np.int64)
        self.feature = np.where(ens.feature >= 0, ens.feature, 0).astype(np.int64)
        self.left = ens.left.astype(np.int64)
        self.right = ens.right.astype(np.int64)
        self.default_left = ens.default_left.astype(bool)
        self.op_lt = ens.op == Op.LT
        self.missing = ens.missing
        self.categorical = ens.categorical.astype(bool)
        self.cat_left = ens.cat_left.astype(bool)
        # sorted keys (node << 32 | code) for vectorised set membership
        cat_nodes = np.flatnonzero(ens.categorical.astype(bool) & (ens.left >= 0))
        parts = [
            (np.int64(n) << np.int64(32)) + ens.categories[ens.cat_begin[n] : ens.cat_end[n]].astype(np.int64)
            for n in cat_nodes
        ]
        self.cat_keys = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        self.has_cat = bool(cat_nodes.size)
        internal = ens.left >= 0
        self.threshold = ens.threshold
        self.all_le = bool(np.all(ens.op[internal] == Op.LE))
        self.all_lt = bool(np.all(ens.op[internal] == Op.LT))
        self.has_zero_policy = bool(np.any(ens.missing[internal] == Missing.ZERO_NAN_DEFAULT))


def _prepared(ens: Ensemble) -> _Prepared:
    p = ens.__dict__.get("_interp_cache")
    if p is None:
        p = _Prepared(ens)
        ens.__dict__["_interp_cache"] = p
    return p


def _go_left(ens: Ensemble, P: _Prepared, node: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Decision for walkers at internal ``node`` seeing value ``v``: True = go left.

    The plain comparison is computed for every walker; NaN, zero-band and categorical walkers are
    then fixed up on (usually small) subsets.
    """
    thr = P.threshold[node]
    with np.errstate(invalid="ignore"):
        if P.all_le:
            left = v <= thr
        elif P.all_lt:
            left = v < thr
        else:
            left = np.where(P.op_lt[node], v < thr, v <= thr)
    nan_idx = np.flatnonzero(np.isnan(v))
    if nan_idx.size:
        nn = node[nan_idx]
        pol = P.missing[nn]
        res = left[nan_idx]  # all False: IEEE comparison with NaN (NAN_FALSE)
        to_default = (pol == Missing.NAN_DEFAULT) | (pol == Missing.ZERO_NAN_DEFAULT)
        res = np.where(to_default, P.default_left[nn], res)
        as_zero = pol == Missing.NAN_AS_ZERO  # NaN -> 0.0, then compared
        if as_zero.any():
            t0 = P.threshold[nn]
            res = np.where(as_zero, np.where(P.op_lt[nn], 0.0 < t0, 0.0 <= t0), res)
        left[nan_idx] = res
    if P.has_zero_policy:
        z = np.flatnonzero((np.abs(v) <= LIGHTGBM_ZERO_BAND) & (P.missing[node] == Missing.ZERO_NAN_DEFAULT))
        if z.size:
            left[z] = P.default_left[node[z]]
    if P.has_cat:
        idx = np.flatnonzero(P.categorical[node])
        if idx.size:
            cv = v[idx]
            cn = node[idx]
            with np.errstate(invalid="ignore"):
                if ens.categorical_rule == "xgboost":
                    valid = (cv >= 0) & (cv < 16777216.0)
                elif ens.categorical_rule == "sklearn":  # exact integers only
                    valid = (cv >= 0) & (cv < 2147483648.0) & (cv == np.trunc(cv))
                else:  # lightgbm: C int truncation; negative after truncation is invalid
                    valid = (cv > -1.0) & (cv < 2147483648.0)
            code = np.zeros(cv.shape, np.int64)
            code[valid] = np.trunc(cv[valid]).astype(np.int64)
            keys = (cn.astype(np.int64) << np.int64(32)) + code
            in_set = np.zeros(cv.shape, bool)
            if P.cat_keys.size:
                pos = np.minimum(np.searchsorted(P.cat_keys, keys), P.cat_keys.size - 1)
                in_set = valid & (P.cat_keys[pos] == keys)
            res = np.where(P.cat_left[cn], in_set, ~in_set)
            # categorical nodes: NaN goes the default way under NAN_DEFAULT, else it is "not in
            # the set"; no NaN->0 and no zero band
            nan_default = np.isnan(cv) & (P.missing[cn] == Missing.NAN_DEFAULT)
            left[idx] = np.where(nan_default, P.default_left[cn], res)
    return left


def _leaf_nodes(ens: Ensemble, M: np.ndarray) -> np.ndarray:
    """Final node of every (row, tree) walker: int64 array (n_rows, n_trees)."""
    P = _prepared(ens)
    n, T = M.shape[0], ens.n_trees
    flat_M = np.ascontiguousarray(M).reshape(-1)
    row_base = np.repeat(np.arange(n, dtype=np.int64) * M.shape[1], T)
    node = np.tile(P.roots, n)
    if node.size == 0:  # no rows or no trees (else the loop below never ends)
        return node.reshape(n, T)
    still = P.left[node] >= 0
    active: np.ndarray | None = None if still.all() else np.flatnonzero(still)
    while active is None or active.size:
        nd = node if active is None else node[active]
        rb = row_base if active is None else row_base[active]
        v = flat_M[rb + P.feature[nd]]
        nxt = np.where(_go_left(ens, P, nd, v), P.left[nd], P.right[nd])
        still = P.left[nxt] >= 0
        if active is None:
            node = nxt
            if not still.all():
                active = np.flatnonzero(still)
        else:
            node[active] = nxt
            active = active[still]
    return node.reshape(n, T)


def _leaf_values(ens: Ensemble, M: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """Per-walker leaf outputs (n_rows, n_trees, leaf_dim), linear leaves evaluated."""
    vals = ens.leaf_value[leaves]  # (n, T, D)
    if ens.has_linear_leaves:
        lb, le = ens.leaf_linear_begin, ens.leaf_linear_end
        const = ens.leaf_linear_const
        feats, coefs = ens.leaf_linear_feature, ens.leaf_linear_coeff
        assert lb is not None and le is not None and const is not None
        assert feats is not None and coefs is not None
        # LightGBM linear leaf: out = const; for each (f, c): NaN -> fall back to leaf_value;
        # else out += c * x[f] (double, in order). Non-linear leaves have begin == -1.
        r_idx, t_idx = np.nonzero(lb[leaves] >= 0)
        nodes = leaves[r_idx, t_idx]
        begin, end = lb[nodes], le[nodes]
        out = const[nodes].copy()
        nan_hit = np.zeros(out.shape, bool)
        max_terms = int((end - begin).max()) if end.size else 0
        for k in range(max_terms):
            live = begin + k < end
            j = (begin + k)[live]
            x = M[r_idx[live], feats[j]]
            nan_hit[live] |= np.isnan(x)
            out[live] = out[live] + coefs[j] * x
        res = np.where(nan_hit, ens.leaf_value[nodes, 0], out)
        vals = vals.copy()
        vals[r_idx, t_idx, 0] = res
    return vals


def _accumulate(ens: Ensemble, M: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Raw margins (n_rows, n_outputs) with the source's precision and order."""
    n = vals.shape[0]
    K, D = ens.n_outputs, ens.leaf_dim
    mode = ens.accumulate
    w = ens.tree_weight
    n_bags = ens.n_bags
    bag_acc = []
    for b in range(n_bags):
        out = np.zeros((n, K), np.float64)
        tree_idx_bag = np.flatnonzero(ens.tree_bag == b) if n_bags > 1 else np.arange(ens.n_trees)
        for k in range(K):
            if D == 1:
                t_idx = tree_idx_bag[ens.tree_output[tree_idx_bag] == k]
                contrib = vals[:, t_idx, 0]
            else:
                t_idx = tree_idx_bag
                contrib = vals[:, t_idx, k]
            start = ens.base_score[k] if b == 0 else 0.0
            wt = w[t_idx]
            if mode == "float64":
                c = contrib if np.all(wt == 1.0) else contrib * wt
                seq = np.concatenate([np.full((n, 1), start), c], axis=1)
                out[:, k] = np.cumsum(seq, axis=1)[:, -1]  # add.accumulate is sequential
            elif mode == "float32":
                c = contrib.astype(np.float32)
                if not np.all(wt == 1.0):
                    c = (c * wt.astype(np.float32)).astype(np.float32)
                seq = np.concatenate([np.full((n, 1), np.float32(start)), c], axis=1)
                out[:, k] = np.cumsum(seq, axis=1, dtype=np.float32)[:, -1]
            elif mode == "float64_kahan":
                # Java DoubleStream.sum() of [start, leaf*w, ...] (Elasticsearch weighted_sum):
                # Kahan-compensated, final s - c; a NaN result of an infinite simple sum -> simple sum
                c = contrib if np.all(wt == 1.0) else contrib * wt
                s_, comp = np.zeros(n), np.zeros(n)
                simple = np.zeros(n)
                with np.errstate(invalid="ignore", over="ignore"):
                    for v in [np.full(n, float(start))] + [c[:, j] for j in range(t_idx.size)]:
                        y = v - comp
                        t = s_ + y
                        comp = (t - s_) - y
                        s_ = t
                        simple = simple + v
                    r = s_ - comp
                out[:, k] = np.where(np.isnan(r) & np.isinf(simple), simple, r)
            else:  # float32_fused: acc = (float)((double)acc + (double)leaf * (double)w)
                acc = np.full(n, np.float32(start), np.float32)
                for j in range(t_idx.size):
                    acc = (acc.astype(np.float64) + contrib[:, j] * wt[j]).astype(np.float32)
                out[:, k] = acc
        bag_acc.append(out)
    raw = bag_acc[0]
    for b in range(1, n_bags):
        raw = raw + bag_acc[b]
    if ens.linear_feature.size:
        raw = _add_linear(ens, M, raw)
    return raw


def _add_linear(ens: Ensemble, M: np.ndarray, raw: np.ndarray) -> np.ndarray:
    raw = raw.copy()
    f32 = ens.accumulate in ("float32", "float32_fused")
    for o, f, wgt in zip(ens.linear_output, ens.linear_feature, ens.linear_weight, strict=True):
        x = M[:, f]
        if f32:
            term = (x.astype(np.float32) * np.float32(wgt)).astype(np.float32)
            new = (raw[:, o].astype(np.float32) + term).astype(np.float64)
        else:
            new = raw[:, o] + wgt * x
        if ens.linear_skip_missing:
            new = np.where(np.isnan(x), raw[:, o], new)
        raw[:, o] = new
    return raw


def raw_margins(ens: Ensemble, M: np.ndarray) -> np.ndarray:
    """Raw (un-averaged) margins for a prepared model matrix."""
    if ens.network is not None:  # a dense network computes the raw outputs (no trees)
        from ..network import forward

        return forward(ens.network, M)
    n = M.shape[0]
    out = np.empty((n, ens.n_outputs), np.float64)
    step = max(1, _WALKERS_PER_CHUNK // max(1, ens.n_trees))
    for s in range(0, n, step):
        m = M[s : s + step]
        if ens.n_trees:
            vals = _leaf_values(ens, m, _leaf_nodes(ens, m))
        else:
            vals = np.zeros((m.shape[0], 0, ens.leaf_dim))
        out[s : s + step] = _accumulate(ens, m, vals)
    return out


def predict(ens: Ensemble, X: Any, raw_score: bool = False) -> np.ndarray:
    """Raw margins or transformed outputs; shape (n,) for one output, else (n, k). float64."""
    M = model_matrix(ens, X)
    raw = raw_margins(ens, M)
    if ens.average_denominator is not None and (ens.average_raw or not raw_score):
        raw = raw / ens.average_denominator
    out = raw if raw_score else TRANSFORMS[ens.transform].apply(raw, ens.transform_params)
    return out[:, 0] if out.shape[1] == 1 else out


def predict_leaf(ens: Ensemble, X: Any) -> np.ndarray:
    """Source-library leaf identifiers for every row and tree: int32 (n_rows, n_trees)."""
    M = model_matrix(ens, X)
    n = M.shape[0]
    out = np.empty((n, ens.n_trees), np.int32)
    step = max(1, _WALKERS_PER_CHUNK // max(1, ens.n_trees))
    for s in range(0, n, step):
        out[s : s + step] = ens.leaf_id[_leaf_nodes(ens, M[s : s + step])]
    return out


def goes_left(ens: Ensemble, node: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The IR's split decision (True = left) for internal nodes ``node`` seeing model-matrix
    values ``v`` (same shape): the one rule every walker here uses, for other modules (TreeSHAP)."""
    return _go_left(ens, _prepared(ens), np.asarray(node, np.int64).ravel(), np.asarray(v).ravel()).reshape(
        np.shape(v)
    )
