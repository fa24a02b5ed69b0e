"""Output transforms: the table shared by the interpreter and the code generator.

Each transform maps the raw margins of one row (``n_outputs`` values, float64 holding the exact
accumulated values) to the library's transformed output. The arithmetic of each entry reproduces one
source library exactly, including precision (float32 for XGBoost) and the libm functions it calls;
see ``docs/ir.md``. The Cython backend emits the same arithmetic in C for every name listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import mathlib
from .errors import IRValidationError

if TYPE_CHECKING:
    from .ir import Ensemble

F32 = np.float32


@dataclass(frozen=True)
class Transform:
    name: str
    doc: str
    apply: Callable[[np.ndarray, dict[str, Any]], np.ndarray]  # (n, k) float64 -> (n, m) float64
    out_dim: Callable[[int], int] = lambda k: k
    min_outputs: int = 1
    max_outputs: int | None = None
    params: tuple[str, ...] = ()

    def check(self, ens: Ensemble) -> None:
        k = ens.n_outputs
        if k < self.min_outputs or (self.max_outputs is not None and k > self.max_outputs):
            raise IRValidationError(
                f"transform {self.name!r} does not apply to a model with {k} outputs",
                field="transform",
            )
        for p in self.params:
            v = ens.transform_params.get(p)
            if not isinstance(v, int | float) or not np.isfinite(v):
                raise IRValidationError(
                    f"transform {self.name!r} needs a finite numeric parameter {p!r}",
                    field="transform_params",
                )


def _identity(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return r.copy()


def _sigmoid(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # LightGBM: 1.0 / (1.0 + exp(-sigmoid * x)), double
    a = float(p["alpha"])
    return 1.0 / (1.0 + mathlib.exp(-a * r))


def _sigmoid_binary_proba(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # scikit-learn binary classifiers: proba[:, 1] = expit(x); proba[:, 0] = 1 - proba[:, 1]
    p1 = 1.0 / (1.0 + mathlib.exp(-r[:, 0]))
    return np.stack([1.0 - p1, p1], axis=1)


def _sigmoid2_binary_proba(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # scikit-learn GradientBoostingClassifier(loss="exponential"): proba[:, 1] = expit(2 * x)
    p1 = 1.0 / (1.0 + mathlib.exp(-(2.0 * r[:, 0])))
    return np.stack([1.0 - p1, p1], axis=1)


def _softmax(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # LightGBM Common::Softmax / scikit-learn: max, exp(x - max), sequential sum, divide (double)
    m = r.max(axis=1, keepdims=True)
    e = mathlib.exp(r - m)
    s = e[:, 0].copy()
    for j in range(1, e.shape[1]):
        s += e[:, j]
    return e / s[:, None]


def _exp(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return mathlib.exp(r)


def _signed_square(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # LightGBM regression sqrt: Sign(x) * x * x
    return np.sign(r) * r * r


def _log1p_exp(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # LightGBM cross_entropy_lambda: log1p(exp(x))
    return mathlib.log1p(mathlib.exp(r))


def _xgb_sigmoid(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # XGBoost common::Sigmoid in float32: x = min(-m, 88.7f); 1 / (expf(x) + 1 + 1e-16f)
    m = r.astype(F32)
    x = np.minimum(-m, F32(88.7))
    out = F32(1.0) / (mathlib.expf(x) + F32(1.0) + F32(1e-16))
    return out.astype(np.float64)


def _xgb_exp(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return mathlib.expf(r.astype(F32)).astype(np.float64)


def _xgb_softmax(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # XGBoost common::Softmax: float max, expf(x - max) in float, sum in double, divide in float
    m = r.astype(F32)
    wmax = m.max(axis=1, keepdims=True)
    e = mathlib.expf(m - wmax)
    s = e[:, 0].astype(np.float64)
    for j in range(1, e.shape[1]):
        s += e[:, j].astype(np.float64)
    return (e / s.astype(F32)[:, None]).astype(np.float64)


def _xgb_argmax(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # multi:softmax: index of the first maximum (strict >), float32 -> (n, 1)
    return np.argmax(r.astype(F32), axis=1).astype(np.float64)[:, None]


def _xgb_hinge(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return (r.astype(F32) > 0).astype(np.float64)


def _to_float32(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # Java (float) of a double result (o19s LTR plugin's RanklibRanker.score)
    with np.errstate(over="ignore"):
        return r.astype(F32).astype(np.float64)


def _sigmoid_to_float32(r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    # o19s LTR plugin SigmoidNormalizer: (float) (1 / (1 + Math.exp(-x))) with x the float margin
    with np.errstate(over="ignore"):
        x = r.astype(F32).astype(np.float64)
        return (1.0 / (1.0 + mathlib.exp(-x))).astype(F32).astype(np.float64)


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("identity", "raw margin unchanged", _identity),
        Transform(
            "sigmoid",
            "1/(1+exp(-alpha*x)) in double, per output (LightGBM binary, multiclassova, xentropy)",
            _sigmoid,
            params=("alpha",),
        ),
        Transform(
            "sigmoid_binary_proba",
            "scikit-learn binary classifier: [1-expit(x), expit(x)]",
            _sigmoid_binary_proba,
            out_dim=lambda k: 2,
            max_outputs=1,
        ),
        Transform(
            "sigmoid2_binary_proba",
            "scikit-learn GB exponential loss: [1-expit(2x), expit(2x)]",
            _sigmoid2_binary_proba,
            out_dim=lambda k: 2,
            max_outputs=1,
        ),
        Transform("softmax", "softmax in double (LightGBM multiclass, scikit-learn)", _softmax, min_outputs=2),
        Transform("exp", "exp(x) in double (LightGBM poisson/gamma/tweedie)", _exp),
        Transform("signed_square", "sign(x)*x*x (LightGBM regression sqrt)", _signed_square),
        Transform("log1p_exp", "log1p(exp(x)) (LightGBM cross_entropy_lambda)", _log1p_exp),
        Transform("xgb_sigmoid", "XGBoost float32 sigmoid (binary:logistic, reg:logistic)", _xgb_sigmoid),
        Transform("xgb_exp", "XGBoost float32 expf (count:poisson, reg:gamma, reg:tweedie, survival)", _xgb_exp),
        Transform("xgb_softmax", "XGBoost multi:softprob softmax (float exps, double sum)", _xgb_softmax, min_outputs=2),
        Transform(
            "xgb_argmax",
            "XGBoost multi:softmax: index of the first maximum",
            _xgb_argmax,
            out_dim=lambda k: 1,
            min_outputs=2,
        ),
        Transform("xgb_hinge", "XGBoost binary:hinge: 1 if margin > 0 else 0", _xgb_hinge),
        Transform("to_float32", "round to float32 (Java (float) of a double; o19s model/ranklib)", _to_float32),
        Transform(
            "sigmoid_to_float32",
            "(float)(1/(1+exp(-x))) in double of the float32 margin (o19s LTR plugin xgboost sigmoid)",
            _sigmoid_to_float32,
        ),
    )
}


def apply_transform(ens: Ensemble, raw: np.ndarray) -> np.ndarray:
    """Apply ``ens.transform`` to raw margins of shape ``(n, n_outputs)``."""
    t = TRANSFORMS[ens.transform]
    return t.apply(np.ascontiguousarray(raw, np.float64), ens.transform_params)
