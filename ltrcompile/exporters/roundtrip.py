"""Export that proves itself: read an exported model back through ltrcompile's own frontend for
that format and compare it with the source on the source model's edge rows.

:func:`check_export` returns a :class:`RoundTrip` (typed, frozen): the largest |difference| of the
scores over the rows the target reads as the source does, the rows it reads differently *by design*
(Elasticsearch sends +-inf down the missing branch; the IR compares them) kept apart with their own
largest difference, and the rule each side applies to entries absent from a sparse (svmlight) row.
The CLI prints it after every export and fails (exit 1) when an export that claimed to be exact
does not read back bit for bit.

Scores are compared as the two models output them when their output transforms agree, else as raw
margins (an approximate Elasticsearch export drops the transform and exports the margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..datafiles import ABSENT_WORDS
from ..edgecases import edge_rows
from ..ir import Ensemble
from . import TARGETS


@dataclass(frozen=True)
class RoundTrip:
    """How the exported model, read back, scores against the source on its edge rows."""

    target: str
    n_rows: int
    compared: str  # "outputs" or "raw margins"
    max_abs_diff: float  # over the rows inside the target's domain
    n_different: int
    n_outside: int  # rows the target reads differently by design (+-inf as missing)
    outside_max_abs_diff: float | None
    outside_reason: str | None
    source_absent: str
    target_absent: str

    @property
    def bit_identical(self) -> bool:
        return self.n_different == 0

    @property
    def absent_differs(self) -> bool:
        return self.source_absent != self.target_absent

    def summary(self) -> str:
        """One line: the measured error of the export."""
        if self.bit_identical:
            head = f"round trip: {self.target} read back scores bit-identically on {self.n_rows} edge rows"
        else:
            head = (
                f"round trip: {self.target} read back differs on {self.n_different} of {self.n_rows} edge rows, "
                f"max |Δ| {self.max_abs_diff:.3g} ({self.compared})"
            )
        if self.n_outside:
            head += (
                f"; {self.n_outside} rows with {self.outside_reason} excluded "
                f"(max |Δ| {self.outside_max_abs_diff:.3g} there)"
            )
        return head

    def absent_warning(self) -> str | None:
        """The warning to print when the target reads absent sparse entries differently."""
        if not self.absent_differs:
            return None
        return (
            f"the {self.target} model reads entries absent from a sparse (svmlight) row as "
            f"{ABSENT_WORDS[self.target_absent]}, the source as {ABSENT_WORDS[self.source_absent]}: "
            "`ltrcompile score` of the two on svmlight rows with absent entries gives different "
            "scores (write every feature explicitly, or score dense CSV/.npy rows)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "rows": self.n_rows,
            "compared": self.compared,
            "bit_identical": self.bit_identical,
            "max_abs_diff": self.max_abs_diff,
            "n_different": self.n_different,
            "n_outside_domain": self.n_outside,
            "outside_max_abs_diff": self.outside_max_abs_diff,
            "outside_reason": self.outside_reason,
            "source_sparse_absent": self.source_absent,
            "target_sparse_absent": self.target_absent,
        }


def read_back(doc: str | dict[str, Any], target: str, feature_names: list[str] | None = None) -> Ensemble:
    """The exported document as ltrcompile's frontend for ``target`` reads it."""
    kind = TARGETS[target]
    if kind == "ranklib":
        from ..frontends import ranklib

        text = doc if isinstance(doc, str) else str(doc)
        return ranklib.loads(text)
    from ..frontends import elasticsearch

    if kind == "o19s":
        opts = {"feature_set": feature_names} if feature_names else {}
        return elasticsearch.from_ltr_document(doc, **opts)
    return elasticsearch.from_object(doc)


def _scores(ens: Ensemble, rows: np.ndarray, raw: bool) -> np.ndarray:
    return np.asarray(ens.predict(rows, raw_score=raw), dtype=np.float64).reshape(rows.shape[0], -1)


def _max_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    n = int(np.count_nonzero(~same.all(axis=1)))
    if n == 0:
        return 0.0, 0
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    d[same] = 0.0
    d[~same & ~np.isfinite(d)] = np.inf  # NaN on one side only, or inf vs finite
    return float(d.max()), n


def check_export(ens: Ensemble, doc: str | dict[str, Any], target: str, *, max_rows: int = 20000) -> RoundTrip:
    """Read ``doc`` back and compare it with ``ens`` on ``ens``'s edge rows."""
    back = read_back(doc, target, ens.feature_names)
    rows = edge_rows(ens, max_rows=max_rows)
    if back.n_features < ens.n_features:  # RankLib knows only up to the highest feature id it uses
        rows_back = rows[:, : back.n_features]
    else:
        rows_back = rows
    raw = ens.transform != back.transform or ens.n_outputs != back.n_outputs
    a = _scores(ens, rows, raw)
    b = _scores(back, rows_back, raw)
    outside = np.zeros(rows.shape[0], bool)
    reason = None
    if bool(back.infinite_as_missing) != bool(ens.infinite_as_missing):
        outside = np.isinf(rows).any(axis=1)
        reason = "+-inf features (Elasticsearch reads them as missing)"
    max_d, n_diff = _max_diff(a[~outside], b[~outside])
    out_d = _max_diff(a[outside], b[outside])[0] if outside.any() else None
    return RoundTrip(
        target=target,
        n_rows=int(rows.shape[0]),
        compared="raw margins" if raw else "outputs",
        max_abs_diff=max_d,
        n_different=n_diff,
        n_outside=int(outside.sum()),
        outside_max_abs_diff=out_d,
        outside_reason=reason if outside.any() else None,
        source_absent=ens.sparse_absent,
        target_absent=back.sparse_absent,
    )
