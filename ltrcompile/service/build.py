"""Build one uploaded model version into a staging directory: parse, bind, compile, verify.

This is the work a worker process (:mod:`.worker`) does for an upload job, under CPU-time and
memory limits; :func:`build_version` is the single entry point, and the build itself is
:mod:`ltrcompile.pipeline`'s (the same load/compile/verify/write path as ``compile-model``). It writes the staging directory
(source file, ``ir.json``, ``compiled/``, ``meta.json``) and nothing else: committing the version
to the store and activating it is the server's part (:mod:`.jobs`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LtrCompileError
from ..pipeline import (
    BuildOptions,
    BuildResult,
    Loaded,
    LoadOptions,
    VerifyOptions,
    build_artifact,
    decide,
    jsonable,
)
from ..pipeline import load as pipeline_load
from ..rescore import FeatureSet, RescoreInputError, bind_columns
from ..selection import NumIteration
from ..verify import MISMATCH
from .store import crash_point, write_json_atomic

log = logging.getLogger("ltrcompile.service")

#: Formats whose files can execute code when loaded (pickle/joblib): never accepted over HTTP.
_CODE_FORMAT = re.compile(r"pickle|joblib|cloudpickle|compiled|(?<!es-)native", re.I)
#: File signatures of executables, pickles and archives: refused before any parsing.
_BINARY_MAGIC = (
    (b"\x7fELF", "an ELF binary"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O binary"),
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
)
_EXT_RE = re.compile(r"\.[A-Za-z0-9]{1,10}")  # fullmatch
#: Edge-case rows checked per upload (thresholds +-1 ulp, NaN, +-0, huge values...).
VERIFY_EDGE_ROWS = 4000


def refuse_executable(body: bytes, fmt: str) -> None:
    """Reject model bodies that are code (pickles) or binaries: only definitions are compiled."""
    if _CODE_FORMAT.search(fmt):
        raise RescoreInputError(
            f"format {fmt!r} can run code when loaded; the service accepts model definitions only"
        )
    for magic, what in _BINARY_MAGIC:
        if body.startswith(magic):
            raise RescoreInputError(
                f"the upload is {what}; the service accepts model definitions only (text, JSON, "
                "UBJSON), never pickles or compiled binaries"
            )


#: how the service compiles: one compiler process (the other core keeps serving while a model builds)
SERVICE_BUILD = BuildOptions(jobs=1)
#: how the service verifies: edge rows only; an incomplete verdict is stored (not activated unless
#: the upload passed accept_incomplete=true, see :func:`activation_hold`)
SERVICE_VERIFY = VerifyOptions(edge=VERIFY_EDGE_ROWS, accept_incomplete=True)


def load_scorer(out_dir: Path) -> Any:
    import ltrcompile

    return ltrcompile.load_compiled(str(out_dir))


def _refuse_mismatch(res: BuildResult) -> None:
    if res.verdict == MISMATCH:
        assert res.report is not None
        raise LtrCompileError("parity check failed; the version was not stored:\n" + res.report.format())


def activation_hold(res: BuildResult, accept_incomplete: bool) -> str | None:
    """Why a stored version must not be activated by its upload (None: it may be)."""
    decision = decide(res.report, accept_incomplete)
    if decision.accepted:
        return None
    return (
        f"not activated: {decision.reason}; upload with accept_incomplete=true, or activate this "
        "version explicitly, to serve it"
    )


def rebuild_scorer(ens: Any, source: str | None, out_dir: Path) -> Any:
    """Compile and verify a stored version's IR again (its artifact was built for another
    Python); a mismatch raises."""
    res = build_artifact(Loaded.of(ens, source), out_dir, SERVICE_BUILD, SERVICE_VERIFY)
    _refuse_mismatch(res)
    return res.scorer


@dataclass(frozen=True)
class BuildRequest:
    """What a job builds: the upload as accepted (its feature set copied at that moment)."""

    job_id: str
    model: str
    version: int
    featureset: FeatureSet
    format: str
    ext: str
    binding: str
    options: dict[str, Any] = field(default_factory=dict)
    num_iteration: NumIteration = None
    accept_incomplete: bool = False

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> BuildRequest:
        return cls(
            job["id"],
            job["model"],
            int(job["version"]),
            FeatureSet.from_dict(job["featureset_doc"]),
            job["format"],
            job.get("ext", ""),
            job.get("binding", "auto"),
            dict(job.get("options") or {}),
            job.get("num_iteration"),
            bool(job.get("accept_incomplete", False)),
        )


def build_version(
    req: BuildRequest, body: bytes, staging: Path, progress: Callable[..., None]
) -> dict[str, Any]:
    """Parse, bind, compile and verify ``body`` into ``staging`` through :mod:`ltrcompile.pipeline`
    (``pipeline.load``, ``pipeline.build_artifact`` into ``staging/compiled``); returns the
    version's meta. A mismatch raises; an incomplete verdict is stored with ``activation_held``
    saying why the upload does not activate it (unless ``accept_incomplete``).

    ``progress(state, **info)`` reports the stage (``parsing``, ``compiling``, ``verifying``).
    Raises an :class:`LtrCompileError`/:class:`RescoreInputError` for a bad upload.
    """
    import ltrcompile

    fs = req.featureset
    src = staging / f"source{req.ext}"
    src.write_bytes(body)
    crash_point("after-source-write")
    fmt = req.format
    progress("parsing")
    if fmt == "auto":
        fmt = ltrcompile.detect_format(str(src))
        refuse_executable(body, fmt)
    progress("parsing", format=fmt)
    loaded = pipeline_load(str(src), LoadOptions(
        format=fmt, num_iteration=req.num_iteration, frontend=_loader_options(fmt, fs, req.options)
    ))
    ens = loaded.ensemble
    if ens.n_outputs != 1:
        raise RescoreInputError(
            f"the model has {ens.n_outputs} outputs; rescoring needs one score per hit"
        )
    if ens.normalizers and fs.normalizers:
        model_norm = {ens.feature_names[n["feature"]] for n in ens.normalizers if ens.feature_names}
        both = sorted(model_norm & set(fs.normalizers))
        if both:
            raise RescoreInputError(
                f"both the model and feature set {fs.name!r} normalize {both[:5]}; keep one"
            )
    # RankLib files only know the largest feature id used: bind them to a prefix of the set
    allow_fewer = fmt == "ranklib" or req.binding == "position"
    cols, how = bind_columns(ens.feature_names, ens.n_features, fs, req.binding, allow_fewer)
    progress("compiling")

    def compiled(seconds: float) -> None:
        crash_point("after-compile")
        progress("verifying", compile_seconds=seconds)

    res = build_artifact(loaded, staging / "compiled", SERVICE_BUILD, SERVICE_VERIFY, after_compile=compiled)
    _refuse_mismatch(res)
    compile_seconds = res.compile_seconds
    ens.save(str(staging / "ir.json"))
    meta = {
        "model": req.model,
        "version": req.version,
        "job": req.job_id,
        "format": fmt,
        "source_file": src.name,
        "featureset": fs.to_dict(),
        "binding": how,
        "columns": None if cols is None else cols.tolist(),
        "digest": ens.digest(),
        "summary": jsonable(ens.summary()),
        "parity": res.parity_summary(),
        "verdict": res.verdict,
        "activation_held": activation_hold(res, req.accept_incomplete),
        "num_iteration": req.num_iteration,
        "tree_selection": loaded.selection,
        "compile_seconds": compile_seconds,
        "created": time.time(),
    }
    write_json_atomic(staging / "meta.json", meta)
    return meta


def client_fault(exc: BaseException) -> bool:
    """Whether a build failure is the upload's fault (4xx) rather than the service's (500)."""
    return isinstance(exc, LtrCompileError | RescoreInputError | ValueError)


def _loader_options(fmt: str, fs: FeatureSet, options: dict[str, Any]) -> dict[str, Any]:
    """Options for the frontend: an ES LTR plugin model takes its feature set from the binding
    (as the plugin's ``_createmodel`` copies the set into the model)."""
    opts = dict(options)
    if fmt == "es-ltr" and "feature_set" not in opts:
        opts["feature_set"] = list(fs.features)
    return opts
