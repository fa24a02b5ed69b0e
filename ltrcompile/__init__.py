"""ltrcompile: parse tree-ensemble and learning-to-rank models into one IR, interpret it, compile it.

Quick start::

    import ltrcompile
    ens = ltrcompile.load_model("model.txt")        # LightGBM, XGBoost, sklearn, RankLib, ES LTR...
    scores = ens.predict(X)                          # reference interpreter
    scorer = ltrcompile.compile(ens)                 # native Cython scorer
    scorer.predict(X)

    # or the whole build in one call -- load, compile, verify, write the artifact (what
    # compile-model and the service do, see ltrcompile.pipeline):
    res = ltrcompile.build("model.txt", "build/ranker", data=X_valid)
    res.verdict                                      # "verified" (else ParityError is raised)
"""

from __future__ import annotations

from typing import Any

from .errors import (
    FormatDetectionError,
    InputDataError,
    IRValidationError,
    LtrCompileError,
    ModelFormatError,
    UnsupportedModelError,
)
from .frontends import detect_format, load_model
from .ir import Ensemble, Missing, Op, TreeArrays

__version__ = "0.1.0"

__all__ = [
    "Ensemble",
    "FormatDetectionError",
    "IRValidationError",
    "InputDataError",
    "LtrCompileError",
    "Missing",
    "ModelFormatError",
    "Op",
    "TreeArrays",
    "UnsupportedModelError",
    "build",
    "compile",
    "detect_format",
    "load_compiled",
    "load_model",
]


def build(source: Any, out: Any = None, **options: Any) -> Any:
    """Load ``source``, compile it, verify parity and write the artifact to ``out``.

    The one build pipeline (:func:`ltrcompile.pipeline.build`; ``compile-model`` and the service
    use it too). Options: ``format``, ``num_iteration`` (which boosting rounds: None = what the
    source library's own predict uses, 0 = all, N, ``"best"``), ``feature_names``, ``strategy``,
    ``isa``, ``jobs``, ``cache``, ``name``, ``data`` (extra rows to verify on), ``atol``,
    ``native`` (compare with the source library), ``accept_incomplete``. Returns a
    :class:`~ltrcompile.pipeline.BuildResult` (``verdict``, ``report``, ``scorer``, ``artifact``);
    raises :class:`~ltrcompile.pipeline.ParityError` on ``mismatch``, or on ``incomplete``
    without ``accept_incomplete``.
    """
    from .pipeline import build as _build

    return _build(source, out, **options)


def compile(ensemble: Any, out_dir: Any = None, **kwargs: Any) -> Any:  # noqa: A001
    """Compile an Ensemble (or anything :func:`load_model` accepts) into a native scorer."""
    from .backends.cython import compile as _compile

    return _compile(load_model(ensemble), out_dir, **kwargs)


def load_compiled(path: Any) -> Any:
    """Load a compiled scorer artifact directory."""
    from .backends.cython import load_compiled as _load

    return _load(path)
