# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled path-dependent TreeSHAP kernel (model-independent; the model arrives as tables).

Per row and tree: (1) every internal node's decision, mirroring ``interpreter._go_left``;
(2) top-down, each edge's factor ``E[state]`` at every quadrature point multiplies into ``A`` (the
product of the unique-feature factors ``o t + z (1 - t)`` down to that node); (3) bottom-up,
``S`` = sum over the leaves below of value * ``A``, and each edge adds ``sum_q w_q S G[state]`` to its
split feature. ``state`` is 0 (row went this way at every split on the feature so far), 1 (not at
this one), 2 (not at an earlier one; then G == 0). See ``contrib.py`` for the tables and the maths.
"""

from libc.math cimport isnan, fabs, trunc
from libc.stdlib cimport malloc, free
from libc.string cimport memset

import numpy as np

cdef double ZERO_BAND = <double>(<float>1e-35)

cdef enum:
    NAN_DEFAULT = 0
    NAN_AS_ZERO = 1
    ZERO_NAN_DEFAULT = 2
    NAN_FALSE = 3

cdef enum:
    RULE_XGB = 0
    RULE_LGB = 1
    RULE_SKL = 2


cdef inline bint _in_set(const int* cats, long b, long e, long code) noexcept nogil:
    cdef long lo = b, hi = e, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if cats[mid] < code:
            lo = mid + 1
        else:
            hi = mid
    return lo < e and cats[lo] == code


cdef inline bint _go_left(double v, int node, const double* thr, const unsigned char* op_lt,
                          const unsigned char* missing, const unsigned char* dleft,
                          const unsigned char* categorical, const int* cat_begin, const int* cat_end,
                          const unsigned char* cat_left, const int* cats, int rule) noexcept nogil:
    cdef bint left, valid, in_set
    cdef unsigned char pol = missing[node]
    cdef double t = thr[node]
    if categorical[node]:
        if isnan(v) and pol == NAN_DEFAULT:
            return dleft[node]
        if rule == RULE_XGB:
            valid = v >= 0 and v < 16777216.0
        elif rule == RULE_SKL:
            valid = v >= 0 and v < 2147483648.0 and v == trunc(v)
        else:
            valid = v > -1.0 and v < 2147483648.0
        in_set = valid and _in_set(cats, cat_begin[node], cat_end[node], <long>trunc(v))
        return in_set if cat_left[node] else not in_set
    if isnan(v):
        if pol == NAN_DEFAULT or pol == ZERO_NAN_DEFAULT:
            return dleft[node]
        if pol == NAN_AS_ZERO:
            return (0.0 < t) if op_lt[node] else (0.0 <= t)
        return False
    if pol == ZERO_NAN_DEFAULT and fabs(v) <= ZERO_BAND:
        return dleft[node]
    return (v < t) if op_lt[node] else (v <= t)


def tree_contribs(
    const double[:, ::1] X,
    double[:, :, ::1] out,
    # tree table
    const long[::1] tree_off, const int[::1] tree_m, const long[::1] tree_q, const int[::1] tree_out,
    const double[::1] tree_w, const double[:, ::1] tree_bias, const long[::1] ufeat_off,
    const int[::1] ufeat,
    # positions (preorder, global)
    const int[::1] pos_node, const int[::1] pos_parent, const int[::1] pos_lchild,
    const int[::1] pos_rchild, const unsigned char[::1] pos_is_left, const int[::1] pos_prev,
    const long[::1] pos_eg, const double[::1] EG,
    # quadrature
    const double[::1] qw,
    # IR node arrays
    const int[::1] feature, const double[::1] thr, const unsigned char[::1] op_lt,
    const unsigned char[::1] missing, const unsigned char[::1] dleft,
    const unsigned char[::1] categorical, const int[::1] cat_begin, const int[::1] cat_end,
    const unsigned char[::1] cat_left, const int[::1] cats, const double[:, ::1] leaf_value,
    int rule, bint f32, int max_nodes, int max_m,
):
    """Add every tree's contributions (weighted, summed in the source's precision) into ``out``
    (n_rows, n_outputs, n_features + 1), bias column included; base score and scaling excluded."""
    cdef Py_ssize_t n = X.shape[0], F = X.shape[1]
    cdef int T = tree_off.shape[0] - 1, D = leaf_value.shape[1]
    cdef int mm = max_m if max_m > 0 else 1
    cdef unsigned char* dec = <unsigned char*>malloc(max_nodes + 1)
    cdef unsigned char* oc = <unsigned char*>malloc(max_nodes + 1)
    cdef unsigned char* st = <unsigned char*>malloc(max_nodes + 1)
    cdef double* A = <double*>malloc(sizeof(double) * (max_nodes + 1) * mm)
    cdef double* S = <double*>malloc(sizeof(double) * (max_nodes + 1) * mm * D)
    cdef double* tphi = <double*>malloc(sizeof(double) * (F + 1) * D)
    if dec == NULL or oc == NULL or st == NULL or A == NULL or S == NULL or tphi == NULL:
        free(dec); free(oc); free(st); free(A); free(S); free(tphi)
        raise MemoryError()
    cdef Py_ssize_t r
    cdef long lo, hi, p, i, par, qb, u, e
    cdef int t, m, q, k, s, po, o, node, f, kk
    cdef double acc, wt
    cdef const double* E
    cdef const double* G
    cdef const double* x
    cdef float a32, b32
    with nogil:
        memset(tphi, 0, sizeof(double) * (F + 1) * D)
        # trees outside, rows inside: a tree's tables stay in cache across the batch (each row
        # still adds the trees up in tree order, so the sums are the same as row by row)
        for t in range(T):
            for r in range(n):
                x = &X[r, 0]
                lo = tree_off[t]
                hi = tree_off[t + 1]
                m = tree_m[t]
                qb = tree_q[t]
                # (1) decisions of the internal nodes
                for p in range(lo, hi):
                    node = pos_node[p]
                    if pos_lchild[p] >= 0:
                        dec[p - lo] = _go_left(x[feature[node]], node, &thr[0], &op_lt[0], &missing[0],
                                               &dleft[0], &categorical[0], &cat_begin[0], &cat_end[0],
                                               &cat_left[0], &cats[0] if cats.shape[0] else NULL, rule)
                # (2) top-down products
                for q in range(m):
                    A[q] = 1.0
                for p in range(lo + 1, hi):
                    i = p - lo
                    par = pos_parent[p] - lo
                    e = pos_prev[p]
                    po = 1 if e < 0 else oc[e - lo]
                    o = po & (1 if dec[par] == pos_is_left[p] else 0)
                    oc[i] = o
                    s = 0 if o else (1 if po else 2)
                    st[i] = s
                    E = &EG[pos_eg[p] + s * m]
                    for q in range(m):
                        A[i * m + q] = A[par * m + q] * E[q]
                # (3) bottom-up sums and contributions
                if D == 1:
                    for p in range(hi - 1, lo - 1, -1):
                        i = p - lo
                        if pos_lchild[p] < 0:
                            acc = leaf_value[pos_node[p], 0]
                            for q in range(m):
                                S[i * m + q] = A[i * m + q] * acc
                        else:
                            u = (pos_lchild[p] - lo) * m
                            e = (pos_rchild[p] - lo) * m
                            for q in range(m):
                                S[i * m + q] = S[u + q] + S[e + q]
                        if i > 0 and st[i] != 2:
                            G = &EG[pos_eg[p] + (3 + st[i]) * m]
                            acc = 0.0
                            for q in range(m):
                                acc = acc + S[i * m + q] * G[q]
                            tphi[feature[pos_node[pos_parent[p]]]] += acc
                for p in range(hi - 1, lo - 1, -1):
                    if D == 1:
                        break
                    i = p - lo
                    node = pos_node[p]
                    if pos_lchild[p] < 0:
                        for q in range(m):
                            for k in range(D):
                                S[(i * m + q) * D + k] = A[i * m + q] * leaf_value[node, k]
                    else:
                        u = pos_lchild[p] - lo
                        e = pos_rchild[p] - lo
                        for q in range(m):
                            for k in range(D):
                                S[(i * m + q) * D + k] = S[(u * m + q) * D + k] + S[(e * m + q) * D + k]
                    if i > 0 and st[i] != 2:
                        s = st[i]
                        G = &EG[pos_eg[p] + (3 + s) * m]
                        f = feature[pos_node[pos_parent[p]]]
                        for k in range(D):
                            acc = 0.0
                            for q in range(m):
                                acc = acc + S[(i * m + q) * D + k] * G[q]
                            tphi[f * D + k] += acc
                # fold the tree into the row: weight, precision, output
                wt = tree_w[t]
                for k in range(D):
                    tphi[F * D + k] = tree_bias[t, k]
                for u in range(ufeat_off[t], ufeat_off[t + 1] + 1):
                    f = ufeat[u] if u < ufeat_off[t + 1] else <int>F
                    for k in range(D):
                        kk = k if D > 1 else tree_out[t]
                        if f32:
                            b32 = <float>tphi[f * D + k]
                            b32 = b32 * <float>wt
                            a32 = <float>out[r, kk, f]
                            a32 = a32 + b32
                            out[r, kk, f] = a32
                        else:
                            out[r, kk, f] = out[r, kk, f] + wt * tphi[f * D + k]
                        tphi[f * D + k] = 0.0
    free(dec); free(oc); free(st); free(A); free(S); free(tphi)
