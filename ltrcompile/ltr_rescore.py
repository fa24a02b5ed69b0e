"""Elasticsearch's native ``learning_to_rank`` rescorer (ML plugin, 8.12+), in-process.

Worked from Elasticsearch's source (``x-pack/plugin/ml/.../inference/ltr/LearningToRankRescorer``,
``LearningToRankRescorerBuilder``, ``server/.../search/rescore/RescorerBuilder``, and in
``x-pack/plugin/core``: ``LocalModel.inferLtr`` -> ``InferenceDefinition.infer``,
``BoundedWindowInferenceModel``, ``EnsembleInferenceModel``, ``WeightedSum``):

* ``window_size`` is required (``RescorerBuilder.parseFromXContent``: "window_size is required for
  rescorer of type [learning_to_rank]") and must be ``>= from + size``
  (``LearningToRankRescorerBuilder.validate``). An unset ``from`` or ``size`` is -1 in
  ``SearchSourceBuilder``, so ``size=5`` alone needs a window of only 4 -- exactly as Elasticsearch
  checks it (its own test expects "[from + size: 4]" for ``size=5``).
* The top ``window_size`` hits by first-pass score are rescored; the model score **replaces** the
  first-pass score: ``hit.score = (float) prediction`` (a double from the model, cast once).
* Because the config is a ``LearningToRankConfig``, ``InferenceDefinition`` wraps the model in a
  ``BoundedWindowInferenceModel``: ``prediction += max(0, -min_predicted_value)`` (in double) --
  the shift that keeps Lucene scores non-negative. For a tree ensemble ``min_predicted_value`` is
  ``aggregate_output.aggregate(per-tree minimum leaf)``, and ``WeightedSum.aggregate`` is a plain
  (Kahan-compensated) sum that does *not* apply the weights; for ``exponent`` or a logistic output
  the bound is positive and there is no shift. :func:`bounded_window_shift` computes it from the IR
  as Elasticsearch would for the model's trained-model form (a non-zero base score is the first
  one-leaf tree, as ``export --to es`` writes it).
* The window is sorted by ``Float.compare`` descending, ties by Lucene doc id ascending. The service
  has no doc ids: the input position of a hit stands for its doc id (for hits of an Elasticsearch
  response with equal first-pass scores that is Lucene's order).
* Elasticsearch truncates each shard's hits to the window (``topN``), so hits beyond the window are
  never returned. Here they are kept, **below** every rescored hit, in first-pass order with their
  first-pass score and ``rescored: false`` -- a rescored hit never falls below a non-rescored one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rescore import (
    MAX_WINDOW,
    RescoreInputError,
    RescoreResult,
    _float_compare_key,
)

NAME = "learning_to_rank"
#: Transforms whose output is never negative: Elasticsearch's bound is >= 0, so no shift.
_NON_NEGATIVE = frozenset(
    {"sigmoid", "exp", "xgb_sigmoid", "xgb_exp", "sigmoid_to_float32", "log1p_exp", "xgb_hinge"}
)
#: Transforms that keep the sign and order of the raw margin (the bound is the margin's bound).
_MARGIN = frozenset({"identity", "to_float32"})
_F32 = np.float32


@dataclass(frozen=True)
class LtrRescoreParams:
    """``learning_to_rank`` parameters; ``from_``/``size`` are -1 when unset, as in Elasticsearch."""

    window_size: int
    from_: int = -1
    size: int = -1
    rescorer: str = NAME

    @classmethod
    def parse(cls, d: Mapping[str, Any], max_window: int = MAX_WINDOW) -> LtrRescoreParams:
        """Validate as Elasticsearch does; options of the ``query`` rescorer are refused."""
        wrong = sorted(k for k in ("query_weight", "rescore_query_weight", "score_mode") if k in d)
        if wrong:
            raise RescoreInputError(
                f"{', '.join(wrong)} belong to the query rescorer; the learning_to_rank rescorer "
                "replaces the first-pass score with the model score"
            )
        if d.get("window_size") is None:
            raise RescoreInputError(f"window_size is required for rescorer of type [{NAME}]")
        w = _int(d["window_size"], "window_size")
        if w < 0:
            raise RescoreInputError(f"window_size must be an integer >= 0; got {w}")
        if w > max_window:
            raise RescoreInputError(
                f"window_size {w} is larger than the maximum rescore window {max_window}"
            )
        frm, size = -1, -1
        if d.get("from") is not None:
            frm = _int(d["from"], "from")
            if frm < 0:
                raise RescoreInputError(f"[from] parameter cannot be negative but was [{frm}]")
        if d.get("size") is not None:
            size = _int(d["size"], "size")
            if size < 0:
                raise RescoreInputError(f"[size] parameter cannot be negative, found [{size}]")
        if w < frm + size:
            raise RescoreInputError(
                "rescorer [window_size] is too small and should be at least the value of "
                f"[from + size: {frm + size}] but was [{w}]"
            )
        return cls(w, frm, size)


def _int(v: Any, key: str) -> int:
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise RescoreInputError(f"{key} must be an integer; got {v!r}")
    return v


def bounded_window_shift(ens: Any) -> float:
    """``max(0, -min_predicted_value)`` of ``BoundedWindowInferenceModel`` for ``ens`` (a double).

    The bound is the Kahan-compensated double sum (Java ``DoubleStream.sum``, the interpreter's
    ``float64_kahan`` rule) of ``[base score] + [minimum leaf of each tree]``, weights not applied,
    as ``EnsembleInferenceModel``/``WeightedSum.aggregate`` compute it.
    """
    from .backends import interpreter
    from .ir import Ensemble, TreeArrays

    if getattr(ens, "n_outputs", 1) != 1:
        raise RescoreInputError("the learning_to_rank rescorer needs a single-output model")
    if getattr(ens, "network", None) is not None:
        raise RescoreInputError(
            "a neural network (RankNet/ListNet) has no Elasticsearch trained-model form: the "
            "learning_to_rank rescorer's bounded-window shift is undefined for it"
        )
    if ens.transform in _NON_NEGATIVE:
        return 0.0
    if ens.transform not in _MARGIN:
        raise RescoreInputError(
            f"output transform {ens.transform!r} has no Elasticsearch trained-model form: the "
            "learning_to_rank rescorer's bounded-window shift is undefined for it"
        )
    if ens.n_trees == 0 or ens.linear_feature.size or ens.leaf_linear_feature is not None:
        raise RescoreInputError(
            "the learning_to_rank rescorer's bounded-window shift is defined for tree ensembles "
            "only (Elasticsearch's trained models); this model has linear terms or no trees"
        )
    leaf = ens.left < 0
    off = ens.tree_offset
    mins = []
    for t in range(ens.n_trees):
        lo, hi = int(off[t]), int(off[t + 1])
        mins.append(float(ens.leaf_value[lo:hi, 0][leaf[lo:hi]].min()))
    stumps = []
    for v in mins:
        s = TreeArrays.empty(1)
        s.leaf_value[0, 0] = v
        stumps.append(s)
    bound_model = Ensemble.from_trees(
        stumps, n_features=1, accumulate="float64_kahan", base_score=[float(ens.base_score[0])]
    )
    bound = float(interpreter.raw_margins(bound_model, np.zeros((1, 1)))[0, 0])
    return 0.0 - bound if bound < 0.0 else 0.0


def ltr_rescore(
    first: np.ndarray, model_window: np.ndarray, window: np.ndarray, shift: float = 0.0
) -> RescoreResult:
    """``LearningToRankRescorer.rescore`` on float32 first-pass scores.

    ``window`` holds the input indices of the window (:func:`~ltrcompile.rescore.window_of`), ``model_window[k]`` the
    model's double score of ``window[k]``; the hit's score becomes ``(float)(model + shift)``.
    """
    first = np.asarray(first, _F32)
    n = first.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        m32 = (np.asarray(model_window, np.float64) + float(shift)).astype(_F32)
    if not np.isfinite(m32).all():
        k = int(np.flatnonzero(~np.isfinite(m32))[0])
        raise RescoreInputError(
            f"the model's score for hit {int(window[k])} is {float(model_window[k])!r} (shift "
            f"{shift!r}), not a finite float32"
        )
    # SCORE_DOC_COMPARATOR: Float.compare(o2.score, o1.score), then Integer.compare(o1.doc, o2.doc)
    by_doc = np.argsort(window, kind="stable")
    win_doc = window[by_doc]
    key = _float_compare_key(m32[by_doc])
    order_win = win_doc[np.argsort(-key, kind="stable")]
    scores = first.copy()
    scores[window] = m32
    model = np.full(n, np.nan, _F32)
    model[window] = m32
    rescored = np.zeros(n, bool)
    rescored[window] = True
    rank = np.argsort(-first, kind="stable")
    rest = rank[~rescored[rank]]  # first-pass order, below every rescored hit
    order = np.concatenate([order_win, rest]) if rest.size else order_win
    return RescoreResult(order, scores, model, rescored)
