"""Feature normalizers: the one place their rules live (parse, validate, apply, write back).

Two spellings of the same thing exist:

* the Elasticsearch LTR plugin's JSON, ``{"standard": {"mean": m, "standard_deviation": s}}`` or
  ``{"min_max": {"minimum": a, "maximum": b}}`` per feature name -- read by the Elasticsearch/o19s
  frontend (``feature_normalizers`` of a stored model), by the service's feature sets
  (:class:`ltrcompile.rescore.FeatureSet`) and written by the o19s exporter;
* the IR's entries (``Ensemble.normalizers``), ``{"feature": i, "type": "standard", "mean", "std"}``
  or ``{"feature": i, "type": "min_max", "min", "max"}`` with an optional ``missing_value``.

Both go through :class:`Normalizer`. The rules are the plugin's (o19s elasticsearch-learning-to-rank,
``StandardFeatureNormDefinition`` / ``MinMaxFeatureNormDefinition`` and the rankers'
``StandardFeatureNormalizer`` / ``MinMaxFeatureNormalizer``):

* parameters are parsed as ``float`` (``ObjectParser.declareFloat``: JSON numbers or numeric
  strings, rounded once to float32);
* ``standard``: ``mean`` defaults to 0; ``standard_deviation`` must be > 0 (its default, 0, would
  divide by zero, so a missing one is refused here);
* ``min_max``: ``minimum`` defaults to 0 and ``maximum`` to ``Float.MAX_VALUE``; both must be
  ``>= 0`` ("must be positive") and ``minimum < maximum`` -- the plugin refuses ``minimum: -1``, so
  every reader of plugin JSON here refuses it too;
* applied in float32: ``(v - mean) / std`` and ``(v - min) / (max - min)``, every operation rounded
  to float, NaN stays NaN.

IR normalizers that did not come from plugin JSON (built in Python) only need the arithmetic to be
defined (finite parameters, ``std > 0``, ``min < max``): :func:`check_ir`. Exporting one to the
plugin checks the plugin rule again (:meth:`Normalizer.plugin_problem`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("standard", "min_max")
#: plugin JSON field names per kind, (first parameter, second parameter)
PLUGIN_FIELDS = {"standard": ("mean", "standard_deviation"), "min_max": ("minimum", "maximum")}
#: IR entry keys per kind
IR_FIELDS = {"standard": ("mean", "std"), "min_max": ("min", "max")}
_F32 = np.float32
_FLOAT_MAX = float(np.finfo(np.float32).max)
#: the plugin's defaults for an absent field (None: required)
_DEFAULTS: dict[str, tuple[float | None, float | None]] = {"standard": (0.0, None), "min_max": (0.0, _FLOAT_MAX)}


class NormalizerError(ValueError):
    """A normalizer breaks a rule; ``field`` names the offending part (e.g. ``min_max.minimum``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def plugin_float(v: Any, what: str) -> float:
    """A float field as the plugin parses it: a JSON number or a numeric string, rounded to float32."""
    from .frontends.ranklib import java_float

    try:
        if isinstance(v, str):
            x = java_float(v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            with np.errstate(over="ignore"):
                x = float(_F32(float(v)))
        else:
            raise ValueError
    except (ValueError, OverflowError):
        raise NormalizerError(f"{what} must be a number; got {v!r}", field=what) from None
    if not math.isfinite(x):
        raise NormalizerError(f"{what} must be finite in float32; got {v!r}", field=what)
    return x


@dataclass(frozen=True)
class Normalizer:
    """One feature's normalizer: ``kind`` and its two float32 parameters (mean/std or min/max)."""

    kind: str
    a: float
    b: float

    def arithmetic_problem(self) -> str | None:
        """Why ``apply`` would not be a defined scaling, or None."""
        if self.kind not in KINDS:
            return f"unknown normalizer type {self.kind!r}; known: {list(KINDS)}"
        if not (math.isfinite(self.a) and math.isfinite(self.b)):
            return f"{self.kind} parameters must be finite; got {self.a}, {self.b}"
        if self.kind == "standard" and not self.b > 0:
            return f"standard_deviation must be positive; got {self.b}"
        if self.kind == "min_max" and not self.a < self.b:
            return f"min_max needs minimum < maximum; got {self.a}, {self.b}"
        return None

    def plugin_problem(self) -> str | None:
        """Why the ES LTR plugin would refuse this normalizer, or None."""
        problem = self.arithmetic_problem()
        if problem is None and self.kind == "min_max" and not 0 <= self.a:
            problem = f"min_max needs 0 <= minimum < maximum (plugin rule: both must be positive); got {self.a}, {self.b}"
        return problem

    def is_float32(self) -> bool:
        """Both parameters are float32 values (the plugin stores them as ``float``)."""
        return all(float(_F32(x)) == x for x in (self.a, self.b))

    def apply(self, col: np.ndarray) -> np.ndarray:
        """The plugin's float32 arithmetic on a column (any float dtype in, float32 out)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            v = np.asarray(col).astype(_F32)
            if self.kind == "standard":
                return (v - _F32(self.a)) / _F32(self.b)
            lo, hi = _F32(self.a), _F32(self.b)
            return (v - lo) / (hi - lo)

    def to_plugin(self) -> dict[str, dict[str, float]]:
        fa, fb = PLUGIN_FIELDS[self.kind]
        return {self.kind: {fa: float(_F32(self.a)), fb: float(_F32(self.b))}}

    def to_ir(self, feature: int, missing_value: float | None = None) -> dict[str, Any]:
        ka, kb = IR_FIELDS[self.kind]
        entry: dict[str, Any] = {"feature": feature, "type": self.kind, ka: self.a, kb: self.b}
        if missing_value is not None:
            entry["missing_value"] = missing_value
        return entry


def from_plugin(spec: Any, number: Callable[[Any, str], float] = plugin_float) -> Normalizer:
    """Plugin JSON for one feature (``{"standard": {...}}`` or ``{"min_max": {...}}``), with the
    plugin's defaults and rules; raises :class:`NormalizerError`."""
    if not isinstance(spec, Mapping):
        raise NormalizerError(f"a normalizer must be a JSON object; got {type(spec).__name__}")
    unknown = [k for k in spec if k not in KINDS]
    if unknown:
        raise NormalizerError(f"unknown normalizer type(s) {unknown}; known: {list(KINDS)}")
    if len(spec) != 1:
        raise NormalizerError("exactly one of 'standard', 'min_max' is required")
    ((kind, params),) = spec.items()
    if not isinstance(params, Mapping):
        raise NormalizerError(f"{kind} must be a JSON object; got {type(params).__name__}", field=kind)
    fields = PLUGIN_FIELDS[kind]
    bad = sorted(set(params) - set(fields))
    if bad:
        raise NormalizerError(f"unknown {kind} normalizer field(s) {bad}; known: {list(fields)}", field=kind)
    vals = []
    for name, default in zip(fields, _DEFAULTS[kind], strict=True):
        if name in params:
            vals.append(number(params[name], f"{kind}.{name}"))
        elif default is None:
            raise NormalizerError(f"{kind} normalizer needs {name} (the plugin would divide by 0)", field=f"{kind}.{name}")
        else:
            vals.append(default)
    norm = Normalizer(kind, vals[0], vals[1])
    problem = norm.plugin_problem()
    if problem:
        raise NormalizerError(problem, field=kind)
    return norm


def from_ir(entry: Mapping[str, Any]) -> Normalizer:
    """An IR normalizer entry -> :class:`Normalizer` (no rule checked; see :func:`check_ir`)."""
    kind = entry.get("type")
    if kind not in KINDS:
        raise NormalizerError(f"unknown normalizer type {kind!r}; known: {list(KINDS)}", field="type")
    ka, kb = IR_FIELDS[kind]
    try:
        return Normalizer(kind, float(entry[ka]), float(entry[kb]))
    except (KeyError, TypeError, ValueError):
        raise NormalizerError(f"a {kind} normalizer needs numbers {ka!r} and {kb!r}", field=kind) from None


def check_ir(entry: Mapping[str, Any], n_features: int) -> None:
    """An IR entry is usable: known type, feature in range, defined arithmetic, numeric missing_value."""
    feat = entry.get("feature")
    if isinstance(feat, bool) or not isinstance(feat, int) or not 0 <= feat < n_features:
        raise NormalizerError(f"names feature {feat!r} outside [0, {n_features})", field="feature")
    problem = from_ir(entry).arithmetic_problem()
    if problem:
        raise NormalizerError(problem, field=str(entry.get("type")))
    mv = entry.get("missing_value")
    if mv is not None and (isinstance(mv, bool) or not isinstance(mv, int | float)):
        raise NormalizerError(f"missing_value must be a number or None; got {mv!r}", field="missing_value")


def apply_ir(entries: list[dict[str, Any]] | None, M: np.ndarray) -> None:
    """In place on a float matrix: each IR entry's ``missing_value`` replaces NaN (in float32), then
    the plugin arithmetic (``FeatureNormalizingRanker``)."""
    for entry in entries or []:
        f = entry["feature"]
        with np.errstate(over="ignore"):
            col = M[:, f].astype(_F32)
        if entry.get("missing_value") is not None:
            col = np.where(np.isnan(col), _F32(entry["missing_value"]), col)
        M[:, f] = from_ir(entry).apply(col)


def apply_named(norms: Mapping[str, Normalizer], index: Mapping[str, int], X: np.ndarray) -> None:
    """In place: normalizers keyed by feature name (a feature set's), columns found by ``index``."""
    for fname, norm in norms.items():
        j = index[fname]
        X[:, j] = norm.apply(X[:, j])
