"""One build pipeline: load a model, compile it, verify it, write the artifact.

Every build goes through this module, with typed hand-offs (:class:`LoadOptions` →
:class:`Loaded` → :class:`BuildOptions`/:class:`VerifyOptions` → :class:`BuildResult`):

* ``compile-model`` / ``ltrcompile compile`` (:func:`ltrcompile.cli.run_compile`): :func:`load`,
  then :func:`build_loaded` (staging directory, moved into place only when accepted);
* ``ltrcompile verify`` (:func:`ltrcompile.cli.verify_command`): :func:`load` with the options the
  artifact was built with (:func:`reproduce_num_iteration`), :func:`check`, :func:`decide`;
* ``ltrcompile score`` / ``inspect`` / ``export`` on a model file: :func:`load` (through
  ``cli.load_for_cli``), so they see the same trees;
* the service's upload (:func:`ltrcompile.service.build.build_version`, in a worker process):
  :func:`load`, then :func:`build_artifact` into the version's staging ``compiled/`` directory;
  the registry's rebuild of an artifact built for another Python (``Registry._load``):
  :func:`build_artifact` again;
* the Python API: :func:`ltrcompile.build` (= :func:`build`, raising :class:`ParityError` unless
  the verdict is accepted).

**Which trees a model keeps** (:mod:`ltrcompile.selection`, one policy for every caller): what the
source library's own ``predict`` does by default for that object --

* XGBoost model files (JSON/UBJSON) and ``xgboost.Booster``: every round (``Booster.predict``
  ignores a saved ``best_iteration``);
* XGBoost scikit-learn models in memory (``XGBModel``): ``best_iteration + 1`` rounds when early
  stopping set it (as ``XGBModel.predict``);
* LightGBM model files: every saved round (a loaded file has ``best_iteration`` -1);
* LightGBM ``Booster``/``LGBMModel`` in memory: ``best_iteration`` when set, else every round;
* scikit-learn, RankLib, Elasticsearch, IR: every tree.

``num_iteration`` (``--num-iteration``; the service's ``num_iteration`` query parameter)
overrides it: ``0`` every round, ``N`` the first N, ``"best"`` the early-stopping best iteration;
refused, with the reason, where the model has no rounds. :attr:`Loaded.selection` says in one
sentence which rule applied, and when a best iteration exists but is not applied.

**Verdicts** (:func:`decide`): ``verified`` is accepted; ``mismatch`` never; ``incomplete`` (a
reference that applies could not run, e.g. the source library is not importable) only when
``accept_incomplete`` is set. An accepted artifact gets ``parity.json`` recording the verdict; a
rejected one gets nothing in place (``compile-model --keep-failed`` keeps it aside with
``parity-failed.json``). The service stores an incomplete version but does not activate it unless
the upload passed ``accept_incomplete=true``; its job and version records say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LtrCompileError, OptionError
from .ir import Ensemble
from .selection import NumIteration, describe, parse_num_iteration
from .verify import DEFAULT_ATOL, DEFAULT_EDGE_ROWS, INCOMPLETE, MISMATCH, VERIFIED, ParityReport

__all__ = [
    "BUILD_RECORD",
    "PARITY_FAILED",
    "PARITY_MARKER",
    "STRATEGIES",
    "BuildOptions",
    "BuildResult",
    "Decision",
    "LoadOptions",
    "Loaded",
    "ParityError",
    "VerifyOptions",
    "build",
    "build_artifact",
    "build_loaded",
    "check",
    "compile_into",
    "decide",
    "load",
    "parity_line",
    "parity_summary",
    "reproduce_num_iteration",
]

#: written into an artifact that was verified and accepted; records the verdict
PARITY_MARKER = "parity.json"
#: written instead into a rejected artifact kept aside (``--keep-failed``)
PARITY_FAILED = "parity-failed.json"
#: what the artifact was built from (source path and sha256, options); always written
BUILD_RECORD = "compile-model.json"
#: ``strategy`` values the Cython backend knows (``network`` is chosen by ``auto`` for networks)
STRATEGIES = ("auto", "ifelse", "datadriven", "network")
ISAS = ("portable", "avx2", "avx512", "native")


class ParityError(LtrCompileError):
    """The build's verdict was not accepted (``mismatch``, or ``incomplete`` without
    ``accept_incomplete``); ``result`` is the :class:`BuildResult` (no artifact in place)."""

    def __init__(self, message: str, result: BuildResult) -> None:
        super().__init__(message)
        self.result = result


# ============================================================================ options
@dataclass(frozen=True)
class LoadOptions:
    """How to read the source: ``format`` (``auto``: detected from the content),
    ``num_iteration`` (see the module docstring), ``feature_names`` (bind these names to the
    model's features, in order), ``frontend`` (format-specific loader options)."""

    format: str = "auto"
    num_iteration: NumIteration = None
    feature_names: tuple[str, ...] | None = None
    frontend: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_iteration", parse_num_iteration(self.num_iteration))
        if self.feature_names is not None:
            object.__setattr__(self, "feature_names", tuple(str(n) for n in self.feature_names))


@dataclass(frozen=True)
class BuildOptions:
    """How to compile: backend ``strategy``, ``isa``, compiler ``jobs``, build ``cache``, a
    manifest ``name``, ``raw_score`` (the artifact defaults to raw margins when scored)."""

    strategy: str = "auto"
    isa: str | None = None
    jobs: int | None = None
    cache: bool = True
    name: str | None = None
    raw_score: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise OptionError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES[:3])}")
        if self.isa is not None and self.isa not in ISAS:
            raise OptionError(f"unknown isa {self.isa!r}; choose one of {', '.join(ISAS)}")
        if self.jobs is not None and (isinstance(self.jobs, bool) or int(self.jobs) < 1):
            raise OptionError(f"jobs must be an integer >= 1, got {self.jobs!r}")


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: ``enabled`` (False: no check, no ``parity.json``), extra ``data`` rows (a
    :class:`~ltrcompile.datafiles.DataSet` or 2-D array), ``atol``, generated ``edge`` rows,
    ``native`` (compare with the source library), ``accept_incomplete``."""

    enabled: bool = True
    data: Any = None
    atol: float = DEFAULT_ATOL
    edge: int = DEFAULT_EDGE_ROWS
    native: bool = True
    accept_incomplete: bool = False

    def __post_init__(self) -> None:
        if not (self.atol >= 0 and np.isfinite(self.atol)):
            raise OptionError(f"atol must be a finite number >= 0, got {self.atol}")


# ============================================================================ results
@dataclass(frozen=True)
class Loaded:
    """A loaded source: the IR, the source it came from (path or object, for the native
    comparison), the detected format, notes for the user and the tree-selection sentence."""

    ensemble: Ensemble
    source: Any
    format: str | None
    options: LoadOptions
    notes: tuple[str, ...] = ()
    selection: str = ""

    @classmethod
    def of(cls, ens: Ensemble, source: Any = None) -> Loaded:
        """An IR already in memory (e.g. a stored version's ``ir.json``), with its source file."""
        return cls(ens, source, ens.provenance.format, LoadOptions(), (), describe(ens))


@dataclass(frozen=True)
class Decision:
    """What a verdict means: ``accepted`` (the artifact may be marked good) and why not."""

    verdict: str | None
    accepted: bool
    reason: str | None = None


@dataclass
class BuildResult:
    """The outcome of a build. ``artifact``: where it is (None when rejected and not kept);
    ``report``: the parity report (None when verification was off); ``decision``: the verdict and
    whether it was accepted."""

    loaded: Loaded
    scorer: Any
    artifact: Path | None
    report: ParityReport | None
    decision: Decision
    compile_seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def ensemble(self) -> Ensemble:
        return self.loaded.ensemble

    @property
    def verdict(self) -> str | None:
        return self.decision.verdict

    @property
    def accepted(self) -> bool:
        return self.decision.accepted

    def parity_summary(self) -> dict[str, Any] | None:
        return None if self.report is None else parity_summary(self.report)


# ============================================================================ load
def load(source: Any, options: LoadOptions | None = None) -> Loaded:
    """Read ``source`` (path or in-memory model) into the IR with the one tree-selection policy."""
    from .frontends import detect_format, load_model

    opts = options or LoadOptions()
    fmt = opts.format
    if isinstance(source, str | os.PathLike) and fmt == "auto":
        fmt = detect_format(os.fspath(source))
    kw: dict[str, Any] = dict(opts.frontend)
    names = list(opts.feature_names) if opts.feature_names is not None else None
    name_after = False
    if names is not None:
        kw["feature_names"] = names
    try:
        ens = load_model(source, format=fmt, num_iteration=opts.num_iteration, **kw)
    except TypeError as exc:
        if names is None or "feature_names" not in str(exc):
            raise
        kw.pop("feature_names")  # this format takes no feature_names option: name them here
        ens = load_model(source, format=fmt, num_iteration=opts.num_iteration, **kw)
        name_after = True
    if name_after and names is not None:
        if len(names) != ens.n_features:
            raise OptionError(f"{len(names)} feature names but the model has {ens.n_features} features")
        ens.feature_names = names
        ens.validate()
    selection = describe(ens, opts.num_iteration)
    notes = [f"trees: {selection}"] + [str(n) for n in ens.provenance.notes]
    return Loaded(ens, source, ens.provenance.format or (fmt if fmt != "auto" else None), opts, tuple(notes), selection)


def reproduce_num_iteration(ens: Ensemble) -> int | None:
    """The ``num_iteration`` that reads the same rounds as ``ens`` kept from its source file."""
    prov = ens.provenance
    rng, total = prov.iteration_range, prov.total_iterations
    if rng is None or rng[0] != 0:
        return None
    return 0 if total is not None and rng[1] >= total else rng[1]


# ============================================================================ compile / verify
def compile_into(ens: Ensemble, out_dir: str | os.PathLike[str] | None, options: BuildOptions) -> Any:
    """Compile ``ens`` with the Cython backend into ``out_dir``; returns the loaded scorer.

    With ``cache`` the build goes through the build cache (``$LTRCOMPILE_CACHE``): built there
    once, keyed by the IR's semantic digest, and copied into ``out_dir`` -- so a renamed copy or
    another format of the same trees is not built again. Without it, built in ``out_dir`` only.
    """
    from .backends.cython import compile as backend_compile

    kw = dict(strategy=options.strategy, jobs=options.jobs, progress=options.progress,
              name=options.name, isa=options.isa)
    if options.cache and out_dir is not None:
        backend_compile(ens, None, cache=True, **kw)  # into the cache (or found there)
    return backend_compile(ens, None if out_dir is None else str(out_dir), cache=options.cache, **kw)


def check(loaded: Loaded, scorer: Any, options: VerifyOptions) -> ParityReport:
    """Parity of ``scorer`` against the interpreter and the source library.

    When the library fails to *run* in this process (not a mismatch: an exception), the compiled
    scorer is still checked against the interpreter and the failure makes the verdict incomplete.
    """
    from .verify import verify

    kw = dict(data=options.data, atol=options.atol, edge=options.edge)
    try:
        return verify(loaded.ensemble, scorer, source=loaded.source, native=options.native, **kw)
    except Exception as exc:  # noqa: BLE001 - the library itself raised: reported, not fatal
        if loaded.source is None or not options.native:
            raise
        rep = verify(loaded.ensemble, scorer, source=None, native=False, **kw)
        rep.skipped[:] = [f"native comparison failed to run: {type(exc).__name__}: {exc}"[:500]]
        return rep


def decide(report: ParityReport | None, accept_incomplete: bool = False) -> Decision:
    """The one rule for what a verdict means (CLI exit codes, installing, service activation)."""
    if report is None:
        return Decision(None, True, "not verified (verification switched off)")
    v = report.verdict
    if v == VERIFIED:
        return Decision(v, True)
    if v == MISMATCH:
        return Decision(v, False, f"parity mismatch {parity_line(report, verdict=False)}")
    assert v == INCOMPLETE
    why = "; ".join(report.skipped) or "a reference could not run"
    if accept_incomplete:
        return Decision(v, True, f"verification incomplete, accepted on request: {why}")
    return Decision(v, False, f"verification incomplete: {why}")


def parity_line(report: ParityReport | None, verdict: bool = True) -> str:
    """One line: the verdict, then each reference with its max |difference|."""
    if report is None:
        return "NOT VERIFIED (--no-verify)"
    parts = []
    seen = set()
    for c in report.checks:
        if c.what != "raw" or c.reference in seen:
            continue
        seen.add(c.reference)
        d = max(c.max_abs_diff or [0.0 if c.ok else float("inf")])
        if c.ok:
            parts.append(f"= {c.reference} ({'bit-identical' if c.bit_identical else f'max|d| {d:.3g}'})")
        else:
            parts.append(f"!= {c.reference} (max|d| {d:.3g})")
    head = f"{report.verdict.upper()} " if verdict else ""
    text = f"{head}(atol {report.atol:g}) on {report.rows_checked} rows: " + ", ".join(parts)
    if report.skipped and verdict:
        text += f"; not compared: {len(report.skipped)} (see skipped)"
    return text


def parity_summary(report: ParityReport) -> dict[str, Any]:
    """The compact parity record kept in service version metadata and job results."""
    values = [c for c in report.checks if c.what != "leaf"]
    return {
        "verdict": report.verdict,
        "ok": report.ok,
        "rows": report.rows_checked,
        "bit_identical": bool(values) and all(c.bit_identical for c in values),
        "checks": [
            {"check": c.title, "ok": c.ok, "bit_identical": c.bit_identical,
             "max_abs_diff": c.to_dict()["max_abs_diff"]}
            for c in report.checks
        ],
        "skipped": list(report.skipped),
        "notes": list(report.notes),
        "seconds": round(report.seconds, 3),
    }


# ============================================================================ artifacts
def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars, tuples and paths turned into what :mod:`json` writes."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return x


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(jsonable(obj), indent=2) + "\n", encoding="utf-8")


def _record(loaded: Loaded, build: BuildOptions, verify: VerifyOptions, extra: dict[str, Any]) -> dict[str, Any]:
    src = loaded.source
    is_file = isinstance(src, str | os.PathLike) and os.path.isfile(src)
    data = verify.data
    return {
        "model": os.path.abspath(src) if is_file else type(src).__qualname__,
        "model_sha256": _sha256(os.fspath(src)) if is_file else None,
        "format": loaded.format,
        "ir_digest": loaded.ensemble.digest(),
        "raw_score": build.raw_score,
        "tree_selection": loaded.selection,
        "options": {
            "format": loaded.options.format,
            "num_iteration": loaded.options.num_iteration,
            "feature_names": list(loaded.options.feature_names) if loaded.options.feature_names else None,
            "strategy": build.strategy, "isa": build.isa, "jobs": build.jobs, "cache": build.cache,
            "name": build.name, "no_verify": not verify.enabled, "atol": verify.atol,
            "native": verify.native, "accept_incomplete": verify.accept_incomplete,
            "verify": getattr(data, "path", None),
            **extra,
        },
        "notes": list(loaded.notes),
    }


def _manifest(scorer: Any) -> dict[str, Any]:
    m = getattr(scorer, "manifest", None)
    if isinstance(m, dict):
        return m
    return m.to_dict() if m is not None and hasattr(m, "to_dict") else {}


def build_artifact(
    loaded: Loaded, artifact_dir: str | os.PathLike[str], build: BuildOptions | None = None,
    verify: VerifyOptions | None = None, *, record: dict[str, Any] | None = None,
    after_compile: Callable[[float], None] | None = None,
) -> BuildResult:
    """Compile, verify and write the artifact into ``artifact_dir`` (created; nothing is moved).

    ``after_compile(seconds)`` is called between compiling and verifying (progress reports).
    Writes the compiled scorer, ``compile-model.json`` (``record`` adds to its options) and,
    when verification ran, ``parity.json`` (accepted) or ``parity-failed.json`` (rejected), each
    recording the verdict and the decision.
    """
    build = build or BuildOptions()
    verify = verify or VerifyOptions()
    out = Path(artifact_dir)
    t0 = time.perf_counter()
    scorer = compile_into(loaded.ensemble, out, build)
    compile_s = time.perf_counter() - t0
    if after_compile is not None:
        after_compile(compile_s)
    rec = _record(loaded, build, verify, dict(record or {}))
    _write_json(out / BUILD_RECORD, rec)
    report = check(loaded, scorer, verify) if verify.enabled else None
    decision = decide(report, verify.accept_incomplete)
    if report is not None:
        doc = {**report.to_dict(), "accepted": decision.accepted, "decision": decision.reason}
        _write_json(out / (PARITY_MARKER if decision.accepted else PARITY_FAILED), doc)
    return BuildResult(loaded, scorer, out, report, decision, compile_s, _manifest(scorer), rec)


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` (the old artifact is removed only after the new one is in
    place). The directory gets the usual umask permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rmdir(old)
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_loaded(
    loaded: Loaded, out: str | os.PathLike[str], build: BuildOptions | None = None,
    verify: VerifyOptions | None = None, *, keep_rejected: bool = False,
    record: dict[str, Any] | None = None,
) -> BuildResult:
    """:func:`build_artifact` in a staging directory next to ``out``, moved into place only when
    the verdict is accepted (an existing artifact at ``out`` stays untouched otherwise). A
    rejected build is discarded, or kept as ``<out>.rejected`` with ``keep_rejected``."""
    out_path = Path(out).absolute()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.staging-", dir=out_path.parent))
    try:
        res = build_artifact(loaded, staging, build, verify, record=record)
        if res.accepted:
            _move_into_place(staging, out_path)
            res.artifact = out_path
        elif keep_rejected:
            rejected = out_path.with_name(out_path.name + ".rejected")
            if rejected.exists():
                shutil.rmtree(rejected)
            os.replace(staging, rejected)
            res.artifact = rejected
        else:
            res.artifact = None
        return res
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def build(
    source: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    format: str = "auto",  # noqa: A002 - the option's name everywhere
    num_iteration: NumIteration = None,
    feature_names: list[str] | tuple[str, ...] | None = None,
    strategy: str = "auto",
    isa: str | None = None,
    jobs: int | None = None,
    cache: bool = True,
    name: str | None = None,
    data: Any = None,
    atol: float = DEFAULT_ATOL,
    native: bool = True,
    accept_incomplete: bool = False,
) -> BuildResult:
    """Load ``source``, compile, verify and write the artifact to ``out`` -- the Python API
    (``ltrcompile.build``). ``out`` None: ``./<model>-compiled`` for a file, else a new temporary
    directory. Raises :class:`ParityError` when the verdict is ``mismatch``, or ``incomplete``
    without ``accept_incomplete`` (nothing is written to ``out`` then)::

        res = ltrcompile.build("model.json", "build/ranker", data=X_valid)
        res.verdict, res.report.format(), res.scorer.predict(X)
    """
    b = BuildOptions(strategy=strategy, isa=isa, jobs=jobs, cache=cache, name=name)
    v = VerifyOptions(data=data, atol=atol, native=native, accept_incomplete=accept_incomplete)
    loaded = load(source, LoadOptions(format=format, num_iteration=num_iteration,
                                      feature_names=None if feature_names is None else tuple(feature_names)))
    if out is None:
        if isinstance(source, str | os.PathLike):
            out = f"{Path(os.fspath(source)).name.split('.')[0] or 'model'}-compiled"
        else:
            out = tempfile.mkdtemp(prefix="ltrcompile-")
    res = build_loaded(loaded, out, b, v)
    if not res.accepted:
        raise ParityError(f"{res.decision.reason}; nothing written to {out}", res)
    return res
