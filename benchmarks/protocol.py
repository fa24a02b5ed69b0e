"""Timing protocol and correctness gate.

Timing: every engine of a cell is warmed up, then engines are called round-robin (one call each per
repetition, starting point rotated) so background load hits them alike; each engine gets enough
repetitions for a stable median within the cell's time budget; the GC is off inside a cell.

Gate: before anything is timed, each engine's raw output on held-out rows is compared with the
source library's; an engine that disagrees is reported as failing and never timed.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: One warm-up call is enough for calls longer than this.
SELF_WARMING_S = 0.05


@dataclass(frozen=True)
class Budget:
    """How long a cell may take, per engine."""

    seconds: float = 0.3  # sampled time wanted per engine per cell
    min_reps: int = 10  # at least this many timed calls (fewer only for slow calls, see reps_for)
    max_reps: int = 3000
    warmup: int = 3
    max_call_s: float = 8.0  # a warm-up call slower than this skips the engine for that cell

    def reps_for(self, est_s: float) -> int:
        """Repetitions for an engine whose call takes about ``est_s`` seconds."""
        floor = self.min_reps if est_s < 0.05 else (5 if est_s < 1.0 else 3)
        want = math.ceil(self.seconds / max(est_s, 1e-9))
        return int(min(self.max_reps, max(floor, want)))


@dataclass
class Timing:
    """Samples of one engine in one cell (nanoseconds per call)."""

    label: str
    samples_ns: list[int] = field(default_factory=list)
    skipped: str | None = None

    def stats(self) -> dict[str, float]:
        if not self.samples_ns:
            return {}
        a = np.asarray(self.samples_ns, np.float64)
        return {
            "n": int(a.size),
            "min_ns": float(a.min()),
            "median_ns": float(np.median(a)),
            "p99_ns": float(np.percentile(a, 99, method="higher")),
            "mean_ns": float(a.mean()),
        }


def time_cell(calls: list[tuple[str, Callable[[], Any]]], budget: Budget) -> dict[str, Timing]:
    """Time zero-argument callables round-robin; returns one :class:`Timing` per label."""
    out = {label: Timing(label) for label, _ in calls}
    live: list[tuple[str, Callable[[], Any], int]] = []
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for label, fn in calls:
            est = math.inf
            for _ in range(max(1, budget.warmup)):
                t0 = time.perf_counter_ns()
                fn()
                est = min(est, (time.perf_counter_ns() - t0) / 1e9)
                if est > SELF_WARMING_S:  # a call this long warms caches by itself
                    break
            if est > budget.max_call_s:
                out[label].skipped = f"too slow for this cell ({est:.1f} s per call > {budget.max_call_s:g} s cap)"
                continue
            live.append((label, fn, budget.reps_for(est)))
        rep = 0
        while live:
            k = len(live)
            start = rep % k
            for i in range(k):
                label, fn, _ = live[(start + i) % k]
                t0 = time.perf_counter_ns()
                fn()
                out[label].samples_ns.append(time.perf_counter_ns() - t0)
            rep += 1
            live = [e for e in live if len(out[e[0]].samples_ns) < e[2]]
    finally:
        if gc_was:
            gc.enable()
    return out


@dataclass
class GateResult:
    """Agreement of one engine's raw output with the source library's."""

    passed: bool
    n: int
    n_exact: int
    max_abs: float
    max_rel: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "n": self.n, "n_exact": self.n_exact,
                "max_abs": self.max_abs, "max_rel": self.max_rel, "reason": self.reason}


#: Gate tolerance: |out - ref| <= RTOL * max(1, |ref|). Generous enough for a different but valid
#: float32 summation order in another compiler, tight enough to catch any wrong split or leaf.
RTOL = 1e-5


def gate(ref: np.ndarray, out: Any, rtol: float = RTOL) -> GateResult:
    """Compare raw outputs (NaN equals NaN); a shape mismatch or any larger difference fails."""
    ref = np.asarray(ref, np.float64)
    try:
        got = np.asarray(out, np.float64).reshape(ref.shape)
    except (ValueError, TypeError) as exc:
        shape = getattr(out, "shape", None)
        return GateResult(False, len(ref), 0, math.inf, math.inf, f"output shape {shape} != {ref.shape}: {exc}")
    both_nan = np.isnan(ref) & np.isnan(got)
    same = (got == ref) | both_nan
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(got - ref))
    diff = np.where(np.isnan(diff), np.inf, diff)
    scale = np.maximum(1.0, np.abs(np.nan_to_num(ref, nan=0.0, posinf=0.0, neginf=0.0)))
    rel = diff / scale
    rows_exact = int(np.count_nonzero(same.reshape(len(ref), -1).all(axis=1)))
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    ok = bool(max_rel <= rtol)
    reason = "" if ok else f"max |d| = {max_abs:.3g} (relative {max_rel:.3g} > {rtol:g})"
    return GateResult(ok, len(ref), rows_exact, max_abs, max_rel, reason)
