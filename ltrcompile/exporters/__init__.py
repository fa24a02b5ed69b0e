"""Exporters: the IR written out in another engine's model format.

``export_model(ens, to=...)`` with ``to`` one of

* ``"es"`` (``"es-native"``): Elasticsearch trained-model JSON (a dict; :mod:`.es_native`);
* ``"o19s"`` (``"es-ltr"``): o19s / OpenSearch LTR plugin ``_createmodel`` body (a dict; :mod:`.o19s`);
* ``"ranklib"``: RankLib model text (a str; :mod:`.ranklib`).

Every exporter is exact by default: a construct the target cannot reproduce bit for bit (category
sets, float32 vs double sums, vector leaves, NaN handling the target lacks, ...) raises
:class:`~ltrcompile.errors.UnsupportedModelError` naming it. ``exact=False`` exports an approximation
instead and emits an :class:`ExportApproximationWarning` listing the differences (constructs no
target has at all are refused either way). The results load back with ``ltrcompile.load_model``
(dicts directly; RankLib text from a file or with ``ltrcompile.frontends.ranklib.loads``).
"""

from __future__ import annotations

from typing import Any

from ..ir import Ensemble
from ._common import ExportApproximationWarning

TARGETS = {"es": "es_native", "es-native": "es_native", "o19s": "o19s", "es-ltr": "o19s", "opensearch": "o19s", "ranklib": "ranklib"}

__all__ = ["TARGETS", "ExportApproximationWarning", "export_model"]


def export_model(ens: Ensemble, to: str = "es", **opts: Any) -> str | dict[str, Any]:
    """Write ``ens`` in the ``to`` format; ``opts`` go to the target's exporter (``exact``, and e.g.
    ``name``/``body``/``model_type`` for o19s, ``what``/``inference_config`` for es, ``ranker`` for
    ranklib, ``feature_names`` for the JSON targets)."""
    if not isinstance(ens, Ensemble):
        from ..frontends import load_model

        ens = load_model(ens)
    if to not in TARGETS:
        raise ValueError(f"unknown export target {to!r}; known: {sorted(TARGETS)}")
    if TARGETS[to] == "es_native":
        from . import es_native

        return es_native.export(ens, **opts)
    if TARGETS[to] == "o19s":
        from . import o19s

        return o19s.export(ens, **opts)
    from . import ranklib

    return ranklib.export(ens, **opts)
