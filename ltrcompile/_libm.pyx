# cython: boundscheck=False, wraparound=False, cdivision=True
"""Element-wise wrappers around the C library's math functions.

XGBoost and LightGBM compute their output transforms with the platform libm (``expf``/``logf`` in
float32 for XGBoost, ``exp``/``log1p`` in double for LightGBM). numpy's vectorised ``exp`` can differ
by one or more ulps, so the interpreter calls these to stay bit-exact. Each function takes a
C-contiguous array and returns a new one of the same dtype.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport exp, expf, log, log1p, logf

cnp.import_array()


def vexp(const double[::1] x):
    cdef Py_ssize_t i, n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = exp(x[i])
    return out


def vlog(const double[::1] x):
    cdef Py_ssize_t i, n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = log(x[i])
    return out


def vlog1p(const double[::1] x):
    cdef Py_ssize_t i, n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = log1p(x[i])
    return out


def vexpf(const float[::1] x):
    cdef Py_ssize_t i, n = x.shape[0]
    out = np.empty(n, dtype=np.float32)
    cdef float[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = expf(x[i])
    return out


def vlogf(const float[::1] x):
    cdef Py_ssize_t i, n = x.shape[0]
    out = np.empty(n, dtype=np.float32)
    cdef float[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = logf(x[i])
    return out
