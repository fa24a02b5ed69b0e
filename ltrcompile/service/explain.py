"""``explain=true|K`` on the rescore and score endpoints: top-K TreeSHAP contributions per hit.

Only requests that ask pay anything: :func:`explain_k` is one query-string lookup. Contributions are
in the model's raw-margin space (per output they sum, with the bias, to the raw score) and are computed
for the rows as the model sees them (the feature set's columns bound to the model's features).
Models without node covers answer 422 (``CoverMissingError``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..explain_report import contributions, top_k
from ..rescore import RescoreInputError

DEFAULT_K = 10
MAX_K = 1000


def explain_k(query: Any) -> int | None:
    """``explain`` from the query string: None (absent/false/0), DEFAULT_K (true) or K >= 1."""
    v = query.get("explain")
    if v is None:
        return None
    low = v.lower()
    if low in ("false", "no", "0", ""):
        return None
    if low in ("true", "yes"):
        return DEFAULT_K
    if v.isdigit() and len(v) <= 6 and 1 <= int(v) <= MAX_K:
        return int(v)
    raise RescoreInputError(f"explain must be true, false or a number of features 1..{MAX_K}; got {v!r}")


def explain_rows(rescorer: Any, X: np.ndarray, rows: np.ndarray, k: int) -> list[Any]:
    """For each index in ``rows`` of the feature-set matrix ``X``: the per-output top-``k``
    contributions and bias (a single-output model gives one dict, not a list of one)."""
    ens = rescorer.ensemble
    if ens is None:
        raise RescoreInputError("this model version carries no IR, so it cannot explain scores")
    M = X if rescorer.columns is None else X[:, rescorer.columns]
    C = contributions(ens, np.ascontiguousarray(M[rows]))
    out = [top_k(ens, C[i], k) for i in range(C.shape[0])]
    return [o[0] if len(o) == 1 else o for o in out]
