"""Frontends: one module per source format, each turning a file or in-memory model into the IR.

Every frontend module exposes the same small interface:

* ``FORMATS: dict[str, Callable[..., Ensemble]]`` -- format name -> ``loader(path, **options)``;
* ``sniff(head: bytes, path: str) -> list[str]`` -- which of its formats a file *could* be, judged
  from content (the extension only breaks ties);
* ``accepts(obj) -> bool`` and ``from_object(obj, **options) -> Ensemble`` for in-memory models.

Source libraries (xgboost, lightgbm, scikit-learn) are imported lazily, only for in-memory objects:
reading a saved file never needs the library that wrote it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .. import limits
from ..errors import FormatDetectionError, LtrCompileError, ModelFormatError, OptionError
from ..ir import IR_FORMAT, Ensemble

FRONTEND_MODULES = ("xgboost", "lightgbm", "sklearn", "ranklib", "elasticsearch")
SNIFF_BYTES = 1 << 16


def _modules() -> list[ModuleType]:
    mods = []
    for name in FRONTEND_MODULES:
        try:
            mods.append(importlib.import_module(f"{__name__}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return mods


def _load_ir(path: str, **options: Any) -> Ensemble:
    if options:
        raise TypeError(f"the ltrcompile-ir format takes no options; got {sorted(options)}")
    return Ensemble.load(path)


def formats() -> dict[str, Callable[..., Ensemble]]:
    """Every known format name and its loader."""
    table: dict[str, Callable[..., Ensemble]] = {"ltrcompile-ir": _load_ir}
    for mod in _modules():
        table.update(mod.FORMATS)
    return table


def detect_format(path: str) -> str:
    """The single format a file's content matches; raises if none or several do."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise ModelFormatError(f"cannot read the model file: {exc.strerror or exc}", path=path) from exc
    if not head.strip():
        raise ModelFormatError("the model file is empty", path=path)
    candidates: list[str] = []
    if IR_FORMAT.encode() in head[:4096] and head.lstrip().startswith(b"{"):
        candidates.append("ltrcompile-ir")
    for mod in _modules():
        for fmt in mod.sniff(head, path):
            if fmt not in candidates:
                candidates.append(fmt)
    if not candidates:
        raise FormatDetectionError(
            f"{path}: could not recognise the model format; known formats: "
            f"{', '.join(sorted(formats()))} (pass format=... to choose one)"
        )
    if len(candidates) > 1:
        raise FormatDetectionError(
            f"{path}: ambiguous model format, could be any of {', '.join(candidates)} "
            "(pass format=... to choose one)"
        )
    return candidates[0]


def load_model(source: Any, format: str = "auto", *, num_iteration: Any = None, **options: Any) -> Ensemble:
    """Load a model file or in-memory model into the IR.

    ``source`` is a path (str or os.PathLike) or an in-memory model object (xgboost Booster or
    XGBModel, lightgbm Booster or LGBMModel, fitted scikit-learn tree estimator, an Ensemble).
    ``format`` names the source format when auto-detection is ambiguous. ``num_iteration``: which
    boosting rounds to keep -- None: what the library's own predict does for this object (see
    :mod:`ltrcompile.selection`), 0: all, N: the first N, ``"best"``: the early-stopping best
    iteration; refused where the model has no rounds. Other ``options`` go to the frontend (e.g.
    ``feature_names``, ``base_score``, ``iteration_range``).
    """
    from ..selection import frontend_options

    if isinstance(source, Ensemble):
        if num_iteration is not None or options:
            raise OptionError("an Ensemble is already loaded: no loader options apply to it")
        return source
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ModelFormatError("no such file", path=path)
        table = formats()
        fmt = detect_format(path) if format == "auto" else format
        if fmt not in table:
            raise FormatDetectionError(
                f"unknown format {fmt!r}; known formats: {', '.join(sorted(table))}"
            )
        options.update(frontend_options(fmt, num_iteration))
        try:
            ens = table[fmt](path, **options)
        except LtrCompileError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"cannot read as {fmt}: {exc}", path=path) from exc
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        limits.check_ensemble(ens, size, path=path)
        prov = ens.provenance
        ens.provenance = prov.with_(
            format=prov.format or fmt, source_file=prov.source_file or os.path.basename(path)
        )
        return ens
    for mod in _modules():
        if mod.accepts(source):
            options.update(frontend_options(None, num_iteration, obj=source))
            return mod.from_object(source, **options)
    raise FormatDetectionError(
        f"don't know how to load an object of type {type(source).__module__}.{type(source).__qualname__}"
    )
