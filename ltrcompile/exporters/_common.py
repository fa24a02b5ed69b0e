"""What every exporter needs: refusal bookkeeping, per-node decision boundaries, tree walks.

A target engine compares its own input type (float32 for RankLib and the o19s plugin, double for
Elasticsearch) with its own operator. An IR node's decision, seen on the target's inputs, is always
"left iff x <= a" for some boundary ``a`` (comparisons are monotone, and the input cast and
LightGBM's zero band are monotone maps), so the exporters compute ``a`` exactly and write the
target threshold/operator that reproduces it. NaN goes where the IR node sends it (default child,
or where 0 goes for ``NAN_AS_ZERO``), and each exporter checks the target can say the same.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnsupportedModelError
from ..ir import Ensemble, Missing, Op

F32 = np.float32


class ExportApproximationWarning(UserWarning):
    """An export with ``exact=False`` differs from the IR model; the message lists how."""


@dataclass
class Exactness:
    """Collects what a target cannot reproduce: raise at once (exact) or warn at the end."""

    target: str
    exact: bool
    notes: list[str] = field(default_factory=list)

    def need(self, ok: bool, message: str, **where: Any) -> None:
        if ok:
            return
        if self.exact:
            raise UnsupportedModelError(
                f"cannot export exactly to {self.target}: {message} (pass exact=False to export an approximation)",
                **where,
            )
        self.note(message, **where)

    def note(self, message: str, **where: Any) -> None:
        """A difference accepted even in exact mode (the caller decided it is tolerable): warned."""
        loc = ", ".join(f"{k} {v}" for k, v in where.items() if v is not None)
        note = f"{loc}: {message}" if loc else message
        if note not in self.notes:
            self.notes.append(note)

    def refuse(self, message: str, **where: Any) -> UnsupportedModelError:
        return UnsupportedModelError(f"cannot export to {self.target}: {message}", **where)

    def finish(self) -> None:
        if self.notes:
            shown = "; ".join(self.notes[:8]) + (f"; ... ({len(self.notes)} in all)" if len(self.notes) > 8 else "")
            warnings.warn(f"{self.target} export is approximate: {shown}", ExportApproximationWarning, stacklevel=3)


# ---------------------------------------------------------------------------- float32 grid
def next32(x: float) -> float:
    return float(np.nextafter(F32(x), F32(np.inf)))


def prev32(x: float) -> float:
    return float(np.nextafter(F32(x), F32(-np.inf)))


def floor32(t: float) -> float:
    """Largest float32 <= t (t a double, may be +-inf)."""
    with np.errstate(over="ignore"):
        f = float(F32(t))
    return prev32(f) if f > t else f


def below32(t: float) -> float:
    """Largest float32 < t."""
    f = floor32(t)
    return f if f < t else prev32(f)


def left_max32(op: int, t: float, band: float) -> float | None:
    """Largest float32 ``x`` the node sends left (after LightGBM's zero band), None if none does.

    -inf means only -inf goes left; +inf means every value does.
    """
    if op == Op.LE:
        a0: float | None = floor32(t)
    else:
        a0 = below32(t) if t > -math.inf else None
    if band <= 0:
        return a0
    zero_left = (0.0 <= t) if op == Op.LE else (0.0 < t)
    hi = floor32(band)  # largest float32 inside the band
    lo = -hi  # smallest float32 inside the band (symmetric)
    if zero_left:
        return hi if a0 is None else max(a0, hi)
    below_band = prev32(lo)
    return None if a0 is None else min(a0, below_band)


def node_nan_left(ens: Ensemble, g: int) -> bool | None:
    """Where the IR node sends NaN (True = left); None for LightGBM's Zero policy (0 also defaults)."""
    pol = int(ens.missing[g])
    if pol == Missing.NAN_DEFAULT:
        return bool(ens.default_left[g])
    if pol == Missing.NAN_FALSE:
        return False
    if pol == Missing.NAN_AS_ZERO:
        t = float(ens.threshold[g])
        return (0.0 <= t) if ens.op[g] == Op.LE else (0.0 < t)
    return None


# ---------------------------------------------------------------------------- model checks
def check_plain_trees(ens: Ensemble, ex: Exactness) -> None:
    """Constructs no target can express: refused even with exact=False."""
    if ens.n_outputs != 1 or ens.leaf_dim != 1:
        raise ex.refuse(f"{ens.n_outputs} outputs / vector leaves (multiclass or multi-target models)", field="n_outputs")
    internal = ens.left >= 0
    cat = np.flatnonzero(internal & (ens.categorical != 0))
    if cat.size:
        raise ex.refuse("categorical splits (category sets) have no equivalent", **where(ens, int(cat[0])), field="categorical")
    if ens.has_linear_leaves:
        raise ex.refuse("linear-tree leaves (LightGBM linear_tree)", field="leaf_linear")
    zero = np.flatnonzero(internal & (ens.missing == Missing.ZERO_NAN_DEFAULT))
    if zero.size:
        raise ex.refuse(
            "LightGBM zero_as_missing nodes (0 and NaN both take the default branch)", **where(ens, int(zero[0])), field="missing"
        )


def feature_names(ens: Ensemble, names: Any = None) -> list[str]:
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != ens.n_features or len(set(names)) != len(names):
            raise ValueError(f"feature_names must be {ens.n_features} unique names")
        return names
    if ens.feature_names is not None:
        return list(ens.feature_names)
    return [f"f{i}" for i in range(ens.n_features)]


def preorder(ens: Ensemble, t: int) -> Iterator[int]:
    """Global node indices of tree ``t`` in pre-order (root, left subtree, right subtree)."""
    stack = [int(ens.tree_offset[t])]
    while stack:
        g = stack.pop()
        yield g
        if ens.left[g] >= 0:
            stack.append(int(ens.right[g]))
            stack.append(int(ens.left[g]))


def where(ens: Ensemble, g: int) -> dict[str, int]:
    t = int(np.searchsorted(ens.tree_offset, g, side="right") - 1)
    return {"tree": t, "node": int(g - ens.tree_offset[t])}


def is_f32(v: float) -> bool:
    with np.errstate(over="ignore"):
        return math.isfinite(v) and float(F32(v)) == v
