"""ltrcompile: parse tree-ensemble and learning-to-rank models into one IR, interpret it, compile it.

Quick start::

    import ltrcompile
    ens = ltrcompile.load_model("model.txt")        # LightGBM, XGBoost, sklearn, RankLib, ES LTR...
    scores = ens.predict(X)                          # reference interpreter
    scorer = ltrcompile.compile(ens)                 # native Cython scorer
    scorer.predict(X)
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
    "compile",
    "detect_format",
    "load_compiled",
    "load_model",
]


def compile(ensemble: Any, out_dir: Any = None, **kwargs: Any) -> Any:  # noqa: A001
    """Compile an Ensemble (or anything :func:`load_model` accepts) into a native scorer."""
    from .backends.cython import compile as _compile

    return _compile(load_model(ensemble), out_dir, **kwargs)


def load_compiled(path: Any) -> Any:
    """Load a compiled scorer artifact directory."""
    from .backends.cython import load_compiled as _load

    return _load(path)
