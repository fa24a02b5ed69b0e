"""Contributions for people: column names, top-K per row, global importance, file output.

Shared by the CLI (``score --contrib``, ``inspect --importance``) and the service (``explain=``), so a
contribution is named and ranked the same way everywhere. Values come from
:func:`contributions`: the compiled kernel when this installation has it built, else the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ir import Ensemble


def contributions(ens: Ensemble, X: Any) -> np.ndarray:
    """TreeSHAP contributions ``(n, K, F + 1)`` (always 3-D here), compiled kernel when built."""
    try:
        from .backends.cython import (
            _treeshap,  # noqa: F401  (built extension present?)
            contrib,
        )
    except ImportError:
        out = ens.predict_contrib(X)
    else:
        out = contrib.predict_contrib(ens, X)
    n = out.shape[0]
    return out.reshape(n, ens.n_outputs, ens.n_features + 1)


def feature_labels(ens: Ensemble) -> list[str]:
    """One label per contribution column: feature names (``f<i>`` when unnamed), then ``bias``."""
    names = list(ens.feature_names) if ens.feature_names else [f"f{i}" for i in range(ens.n_features)]
    return names + ["bias"]


def column_labels(ens: Ensemble) -> list[str]:
    """Flat column labels for ``(n, K * (F + 1))`` tables: ``name`` or ``output<k>:name``."""
    labels = feature_labels(ens)
    if ens.n_outputs == 1:
        return labels
    return [f"output{k}:{c}" for k in range(ens.n_outputs) for c in labels]


def top_k(ens: Ensemble, contrib: np.ndarray, k: int | None) -> list[dict[str, Any]]:
    """Per output of one row (``contrib``: (K, F + 1)): the ``k`` largest |contribution| features
    (all non-zero ones when ``k`` is None), with the bias."""
    labels = feature_labels(ens)
    out = []
    for o in range(contrib.shape[0]):
        phi = contrib[o, :-1]
        order = np.argsort(-np.abs(phi), kind="stable")
        order = order[phi[order] != 0]
        if k is not None:
            order = order[:k]
        out.append(
            {
                "features": [{"feature": labels[j], "index": int(j), "contribution": float(phi[j])} for j in order],
                "bias": float(contrib[o, -1]),
            }
        )
    return out


def global_importance(ens: Ensemble, contrib: np.ndarray, limit: int | None = 20) -> list[dict[str, Any]]:
    """Mean |contribution| per feature over rows and outputs, largest first."""
    labels = feature_labels(ens)
    mean_abs = np.abs(contrib[:, :, :-1]).mean(axis=(0, 1)) if contrib.shape[0] else np.zeros(ens.n_features)
    order = np.argsort(-mean_abs, kind="stable")
    order = order[mean_abs[order] > 0]
    if limit is not None:
        order = order[:limit]
    return [{"feature": labels[j], "index": int(j), "mean_abs_contribution": float(mean_abs[j])} for j in order]
