"""Build one uploaded model version into a staging directory: parse, bind, compile, verify.

This is the work a worker process (:mod:`.worker`) does for an upload job, under CPU-time and
memory limits; :func:`build_version` is the single entry point, so whatever performs the build
(this module, or a shared pipeline module) plugs in behind it. It writes the staging directory
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

import numpy as np

from ..errors import LtrCompileError
from ..rescore import FeatureSet, RescoreInputError, bind_columns
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


def compile_scorer(ens: Any, out_dir: Path) -> Any:
    """Compile ``ens`` into ``out_dir`` with the Cython backend; returns the loaded scorer."""
    import ltrcompile

    # one compiler process: the other core keeps serving while a model builds
    return ltrcompile.compile(ens, str(out_dir), progress=False, jobs=1)


def load_scorer(out_dir: Path) -> Any:
    import ltrcompile

    return ltrcompile.load_compiled(str(out_dir))


def verify_scorer(ens: Any, scorer: Any, source: str | None = None) -> dict[str, Any]:
    """Parity of the compiled scorer (:func:`ltrcompile.verify.verify`) or raise.

    Compared on the model's edge rows: compiled vs the reference interpreter, and vs the source
    library's own predictions when it is installed and can read the uploaded file.
    """
    from ..verify import verify

    native_error = None
    try:
        rep = verify(ens, scorer, source=source, edge=VERIFY_EDGE_ROWS)
    except Exception as exc:  # the source library failed to *run*; still check compiled vs IR
        if source is None:
            raise
        native_error = f"native comparison failed to run: {type(exc).__name__}: {exc}"[:500]
        log.warning("%s", native_error)
        rep = verify(ens, scorer, source=None, edge=VERIFY_EDGE_ROWS)
    values = [c for c in rep.checks if c.what != "leaf"]
    summary = {
        "ok": rep.ok,
        "rows": rep.rows_checked,
        "bit_identical": bool(values) and all(c.bit_identical for c in values),
        "checks": [
            {
                "check": c.title,
                "ok": c.ok,
                "bit_identical": c.bit_identical,
                "max_abs_diff": c.to_dict()["max_abs_diff"],
            }
            for c in rep.checks
        ],
        "skipped": list(rep.skipped) + ([native_error] if native_error else []),
        "seconds": round(rep.seconds, 3),
    }
    if not rep.ok:
        raise LtrCompileError("parity check failed; the version was not stored:\n" + rep.format())
    return summary


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
        )


def build_version(
    req: BuildRequest, body: bytes, staging: Path, progress: Callable[..., None]
) -> dict[str, Any]:
    """Parse, bind, compile and verify ``body`` into ``staging``; returns the version's meta.

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
    ens = ltrcompile.load_model(str(src), format=fmt, **_loader_options(fmt, fs, req.options))
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
    t0 = time.perf_counter()
    scorer = compile_scorer(ens, staging / "compiled")
    compile_seconds = time.perf_counter() - t0
    crash_point("after-compile")
    progress("verifying", compile_seconds=compile_seconds)
    parity = verify_scorer(ens, scorer, str(src))
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
        "summary": _jsonable(ens.summary()),
        "parity": parity,
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


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
