"""C bodies of the output transforms, one per name in :data:`ltrcompile.transforms.TRANSFORMS`.

Each entry returns the body of ``static void ltrc_transform(const double* r, double* o)`` for a model
with ``K`` raw outputs. The arithmetic mirrors ``transforms.py`` operation by operation, with the same
libm calls (``exp``/``log1p`` in double, ``expf`` in float) and numpy's NaN rules (``max``/``argmax``
propagate NaN, ``sign(NaN)`` is NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .literals import c_double, c_float

_F88 = c_float(float(np.float32(88.7)))
_F1E16 = c_float(float(np.float32(1e-16)))

Body = Callable[[int, dict[str, Any]], str]


def _identity(K: int, p: dict[str, Any]) -> str:
    return f"for (int k = 0; k < {K}; k++) o[k] = r[k];"


def _sigmoid(K: int, p: dict[str, Any]) -> str:
    neg_a = c_double(-float(p["alpha"]))
    return f"for (int k = 0; k < {K}; k++) o[k] = 1.0 / (1.0 + exp({neg_a} * r[k]));"


def _sigmoid_binary_proba(K: int, p: dict[str, Any]) -> str:
    return "double p1 = 1.0 / (1.0 + exp(-r[0]));\no[0] = 1.0 - p1;\no[1] = p1;"


# max with numpy semantics: NaN anywhere -> NaN
_DMAX = """double m = r[0];
for (int k = 1; k < K_; k++) { if (m != m) break; if (!(r[k] <= m)) m = r[k]; }"""


def _sigmoid2_binary_proba(K: int, p: dict[str, Any]) -> str:
    return "double p1 = 1.0 / (1.0 + exp(-(2.0 * r[0])));\no[0] = 1.0 - p1;\no[1] = p1;"


def _to_float32(K: int, p: dict[str, Any]) -> str:
    return f"for (int k = 0; k < {K}; k++) o[k] = (double)(float)r[k];"


def _sigmoid_to_float32(K: int, p: dict[str, Any]) -> str:
    return f"""for (int k = 0; k < {K}; k++) {{
    double x = (double)(float)r[k];
    o[k] = (double)(float)(1.0 / (1.0 + exp(-x)));
}}"""


def _softmax(K: int, p: dict[str, Any]) -> str:
    return (
        _DMAX.replace("K_", str(K))
        + f"""
double e[{K}];
for (int k = 0; k < {K}; k++) e[k] = exp(r[k] - m);
double s = e[0];
for (int k = 1; k < {K}; k++) s = s + e[k];
for (int k = 0; k < {K}; k++) o[k] = e[k] / s;"""
    )


def _exp(K: int, p: dict[str, Any]) -> str:
    return f"for (int k = 0; k < {K}; k++) o[k] = exp(r[k]);"


def _signed_square(K: int, p: dict[str, Any]) -> str:
    return f"""for (int k = 0; k < {K}; k++) {{
    double v = r[k];
    double s = v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : (v == 0.0 ? 0.0 : v));
    o[k] = s * v * v;
}}"""


def _log1p_exp(K: int, p: dict[str, Any]) -> str:
    return f"for (int k = 0; k < {K}; k++) o[k] = log1p(exp(r[k]));"


def _xgb_sigmoid(K: int, p: dict[str, Any]) -> str:
    return f"""for (int k = 0; k < {K}; k++) {{
    float m = (float)r[k];
    float x = -m;
    if (!(x != x) && !(x < {_F88})) x = {_F88};
    float d = expf(x) + 1.0f;
    d = d + {_F1E16};
    o[k] = (double)(1.0f / d);
}}"""


def _xgb_exp(K: int, p: dict[str, Any]) -> str:
    return f"for (int k = 0; k < {K}; k++) o[k] = (double)expf((float)r[k]);"


def _xgb_softmax(K: int, p: dict[str, Any]) -> str:
    return f"""float m[{K}];
for (int k = 0; k < {K}; k++) m[k] = (float)r[k];
float w = m[0];
for (int k = 1; k < {K}; k++) {{ if (w != w) break; if (!(m[k] <= w)) w = m[k]; }}
float e[{K}];
for (int k = 0; k < {K}; k++) e[k] = expf(m[k] - w);
double s = (double)e[0];
for (int k = 1; k < {K}; k++) s = s + (double)e[k];
float sf = (float)s;
for (int k = 0; k < {K}; k++) o[k] = (double)(e[k] / sf);"""


def _xgb_argmax(K: int, p: dict[str, Any]) -> str:
    # numpy argmax: the first NaN wins, else the first strict maximum
    return f"""int best = 0;
float bv = (float)r[0];
if (bv == bv) {{
    for (int k = 1; k < {K}; k++) {{
        float v = (float)r[k];
        if (v != v) {{ best = k; break; }}
        if (v > bv) {{ bv = v; best = k; }}
    }}
}}
o[0] = (double)best;"""


def _xgb_hinge(K: int, p: dict[str, Any]) -> str:
    return f"for (int k = 0; k < {K}; k++) o[k] = ((float)r[k] > 0.0f) ? 1.0 : 0.0;"


TRANSFORM_C: dict[str, Body] = {
    "identity": _identity,
    "sigmoid": _sigmoid,
    "sigmoid_binary_proba": _sigmoid_binary_proba,
    "sigmoid2_binary_proba": _sigmoid2_binary_proba,
    "softmax": _softmax,
    "exp": _exp,
    "signed_square": _signed_square,
    "log1p_exp": _log1p_exp,
    "xgb_sigmoid": _xgb_sigmoid,
    "xgb_exp": _xgb_exp,
    "xgb_softmax": _xgb_softmax,
    "xgb_argmax": _xgb_argmax,
    "xgb_hinge": _xgb_hinge,
    "to_float32": _to_float32,
    "sigmoid_to_float32": _sigmoid_to_float32,
}


def transform_body(name: str, K: int, params: dict[str, Any]) -> str:
    return TRANSFORM_C[name](K, params)
