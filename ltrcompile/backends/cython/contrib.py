"""Compiled TreeSHAP: per-tree tables built once, a model-independent C kernel (``_treeshap``).

Same contributions as :mod:`ltrcompile.explain` (the reference), by a different algorithm, linear in
the number of nodes per row and tree instead of quadratic in depth per leaf. For one leaf with unique
path features ``1..d`` (zero fractions ``z_k``, one fractions ``o_k`` in {0, 1}), the Shapley weight
``|S|! (d-1-|S|)! / d!`` is the Beta integral of ``t^|S| (1-t)^(d-1-|S|)``, so

    phi_j = value * (o_j - z_j) * integral_0^1 prod_{k != j} (o_k t + z_k (1 - t)) dt,

a polynomial of degree < d in t: Gauss-Legendre with ceil(d/2) points is exact (the idea of Linear
TreeSHAP, Yu et al. 2022, evaluated by quadrature). Per quadrature point the product over a path
factors into one factor per edge: a feature split again below divides out its earlier factor, so an
edge's factor depends only on (earlier o, this o) -- three states -- and is tabled here (``E``); the
contribution ``g = (o - z) / (o t + z (1 - t))`` telescopes the same way (``G``). Per row the kernel
only reads the tables, so everything depending on covers is paid once per model, at build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...explain import accumulates_in_float32, check_explainable, contrib_scale, tree_expected_value
from ...inputs import model_matrix
from ...ir import Ensemble, Op

_RULES = {"xgboost": 0, "lightgbm": 1, "sklearn": 2}


@dataclass
class ContribTables:
    """Everything the kernel reads besides the IR node arrays (all numpy, contiguous)."""

    tree_off: np.ndarray  # int64 (T+1): position ranges
    tree_m: np.ndarray  # int32: quadrature points per tree
    tree_q: np.ndarray  # int64: offset of the tree's points in ``qw``
    tree_bias: np.ndarray  # float64 (T, D): cover-weighted expected value
    ufeat_off: np.ndarray  # int64 (T+1)
    ufeat: np.ndarray  # int32: features each tree splits on
    pos_node: np.ndarray  # int32: IR node at each preorder position
    pos_parent: np.ndarray  # int32: parent position (-1 at roots)
    pos_lchild: np.ndarray  # int32: child positions (-1 at leaves)
    pos_rchild: np.ndarray
    pos_is_left: np.ndarray  # uint8
    pos_prev: np.ndarray  # int32: nearest ancestor edge on the same feature (-1: none)
    pos_eg: np.ndarray  # int64: offset of the edge's E (3 states x m) then w*G (3 x m) in ``EG``
    EG: np.ndarray  # float64
    qw: np.ndarray  # float64 quadrature weights on [0, 1]
    max_nodes: int
    max_m: int


def build_tables(ens: Ensemble) -> ContribTables:
    """Preorder layout, repeated-feature links and the E/G tables of every tree."""
    check_explainable(ens)
    assert ens.cover is not None
    cover = ens.cover
    T = ens.n_trees
    pos_node: list[int] = []
    pos_parent: list[int] = []
    pos_is_left: list[int] = []
    pos_prev: list[int] = []
    zc_l: list[float] = []  # combined zero fraction of the edge's feature after this edge
    zp_l: list[float] = []  # ... before it (1 when the feature is new on the path)
    tree_off = np.zeros(T + 1, np.int64)
    tree_m = np.zeros(T, np.int32)
    ufeat: list[int] = []
    ufeat_off = np.zeros(T + 1, np.int64)
    for t in range(T):
        base = len(pos_node)
        maxd = 0
        # (node, parent position, is_left, {feature: edge position} on the path, unique count)
        stack: list[tuple[int, int, int, dict[int, int], int]] = [(int(ens.tree_offset[t]), -1, 0, {}, 0)]
        while stack:
            node, par, is_left, seen, d = stack.pop()
            p = len(pos_node)
            pos_node.append(node)
            pos_parent.append(par)
            pos_is_left.append(is_left)
            if par >= 0:
                pn = pos_node[par]
                f = int(ens.feature[pn])
                prev = seen.get(f, -1)
                z_edge = float(cover[node]) / float(cover[pn]) if cover[pn] != 0 else 0.0
                zp = zc_l[prev] if prev >= 0 else 1.0
                pos_prev.append(prev)
                zp_l.append(zp)
                zc_l.append(z_edge * zp)
                seen = {**seen, f: p}
            else:
                pos_prev.append(-1)
                zp_l.append(1.0)
                zc_l.append(1.0)
            if ens.left[node] < 0:
                maxd = max(maxd, d)
                continue
            f_here = int(ens.feature[node])
            d2 = d + (0 if f_here in seen else 1)
            stack.append((int(ens.right[node]), p, 0, seen, d2))
            stack.append((int(ens.left[node]), p, 1, seen, d2))
        tree_off[t + 1] = len(pos_node)
        tree_m[t] = max(1, (maxd + 1) // 2)
        lo, hi = int(ens.tree_offset[t]), int(ens.tree_offset[t + 1])
        used = np.unique(ens.feature[lo:hi][ens.left[lo:hi] >= 0])
        ufeat.extend(int(u) for u in used)
        ufeat_off[t + 1] = len(ufeat)
        del base
    n_pos = len(pos_node)
    parent = np.asarray(pos_parent, np.int32)
    node_arr = np.asarray(pos_node, np.int32)
    lchild = np.full(n_pos, -1, np.int32)
    rchild = np.full(n_pos, -1, np.int32)
    is_left = np.asarray(pos_is_left, np.uint8)
    has_par = np.flatnonzero(parent >= 0)
    lchild[parent[has_par][is_left[has_par] == 1]] = has_par[is_left[has_par] == 1]
    rchild[parent[has_par][is_left[has_par] == 0]] = has_par[is_left[has_par] == 0]

    # quadrature points per distinct m, and each tree's offset into qw
    qts: dict[int, np.ndarray] = {}
    qw_of: dict[int, np.ndarray] = {}
    qw_parts: list[np.ndarray] = []
    q_off: dict[int, int] = {}
    total = 0
    for m in sorted(set(int(v) for v in tree_m)):
        x, w = np.polynomial.legendre.leggauss(m)
        qts[m] = (x + 1.0) / 2.0
        qw_of[m] = w / 2.0
        q_off[m] = total
        qw_parts.append(w / 2.0)
        total += m
    tree_q = np.array([q_off[int(m)] for m in tree_m], np.int64)

    # E and G per edge: 3 states x m points each
    m_pos = np.repeat(tree_m, np.diff(tree_off)).astype(np.int64)
    pos_eg = np.zeros(n_pos, np.int64)
    np.cumsum(6 * m_pos[:-1], out=pos_eg[1:])
    EG = np.zeros(int(6 * m_pos.sum()), np.float64)
    zc = np.asarray(zc_l)
    zp = np.asarray(zp_l)
    for m in qts:
        sel = np.flatnonzero((m_pos == m) & (parent >= 0))
        if not sel.size:
            continue
        tq = qts[m][None, :]
        c, pz = zc[sel][:, None], zp[sel][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            f_p1 = tq + pz * (1.0 - tq)  # earlier factor, feature taken so far (> 0)
            f_c1 = tq + c * (1.0 - tq)
            f_c0 = c * (1.0 - tq)
            e0 = f_c1 / f_p1
            e1 = f_c0 / f_p1
            e2 = np.where(pz > 0, c / np.where(pz > 0, pz, 1.0), 0.0) * np.ones_like(tq)
            g_prev = (1.0 - pz) / f_p1
            g0 = (1.0 - c) / f_c1 - g_prev
            g1 = np.where(c > 0, -1.0 / (1.0 - tq) - g_prev, 0.0)
        w = qw_of[m][None, :]  # the quadrature weight is folded into G
        # per edge: E for states 0, 1, 2 (m values each), then w * G for states 0, 1, 2
        block = np.concatenate([e0, e1, e2, w * g0, w * g1, np.zeros_like(g0)], axis=1)
        idx = pos_eg[sel][:, None] + np.arange(6 * m)[None, :]
        EG[idx] = block
    bias = np.array([tree_expected_value(ens, t) for t in range(T)], np.float64).reshape(T, ens.leaf_dim)
    sizes = np.diff(tree_off)
    return ContribTables(
        tree_off=tree_off,
        tree_m=tree_m,
        tree_q=tree_q,
        tree_bias=bias,
        ufeat_off=ufeat_off,
        ufeat=np.asarray(ufeat, np.int32),
        pos_node=node_arr,
        pos_parent=parent,
        pos_lchild=lchild,
        pos_rchild=rchild,
        pos_is_left=is_left,
        pos_prev=np.asarray(pos_prev, np.int32),
        pos_eg=pos_eg,
        EG=EG,
        qw=np.concatenate(qw_parts) if qw_parts else np.zeros(1),
        max_nodes=int(sizes.max()) if sizes.size else 1,
        max_m=int(tree_m.max()) if T else 1,
    )


def tables_for(ens: Ensemble) -> ContribTables:
    """Tables cached on the ensemble object (built on first use)."""
    tab = ens.__dict__.get("_contrib_tables")
    if tab is None:
        tab = build_tables(ens)
        ens.__dict__["_contrib_tables"] = tab
    return tab


def predict_contrib(ens: Ensemble, X: Any) -> np.ndarray:
    """Contributions through the compiled kernel; same shape and meaning as
    :func:`ltrcompile.explain.predict_contrib`."""
    try:
        from . import _treeshap
    except ImportError as exc:  # pragma: no cover - a checkout whose extensions were not built
        raise ImportError(
            "ltrcompile's TreeSHAP kernel (backends/cython/_treeshap) is not built: run `make install` "
            "or `pip install -e .` (or `python setup.py build_ext --inplace`)"
        ) from exc

    tab = tables_for(ens)
    M = model_matrix(ens, X)
    n, F, K = M.shape[0], ens.n_features, ens.n_outputs
    f32 = accumulates_in_float32(ens)
    out = np.zeros((n, K, F + 1), np.float64)
    if ens.n_trees and n:
        _treeshap.tree_contribs(
            M, out,
            tab.tree_off, tab.tree_m, tab.tree_q, np.ascontiguousarray(ens.tree_output, np.int32),
            np.ascontiguousarray(ens.tree_weight, np.float64), tab.tree_bias, tab.ufeat_off, tab.ufeat,
            tab.pos_node, tab.pos_parent, tab.pos_lchild, tab.pos_rchild, tab.pos_is_left, tab.pos_prev,
            tab.pos_eg, tab.EG, tab.qw,
            np.ascontiguousarray(ens.feature, np.int32), np.ascontiguousarray(ens.threshold, np.float64),
            np.ascontiguousarray(ens.op == Op.LT, np.uint8), np.ascontiguousarray(ens.missing, np.uint8),
            np.ascontiguousarray(ens.default_left, np.uint8), np.ascontiguousarray(ens.categorical, np.uint8),
            np.ascontiguousarray(ens.cat_begin, np.int32), np.ascontiguousarray(ens.cat_end, np.int32),
            np.ascontiguousarray(ens.cat_left, np.uint8), np.ascontiguousarray(ens.categories, np.int32),
            np.ascontiguousarray(ens.leaf_value, np.float64),
            _RULES[ens.categorical_rule], f32, tab.max_nodes, tab.max_m,
        )
    if f32:  # the base margin is added last, in float, exactly as the reference does
        o32 = out.astype(np.float32)
        o32[:, :, F] += ens.base_score.astype(np.float32)
        out = o32.astype(np.float64)
    else:
        out[:, :, F] += ens.base_score
    out *= contrib_scale(ens)
    return out[:, 0, :] if K == 1 else out
