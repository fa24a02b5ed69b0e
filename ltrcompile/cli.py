"""Command line: ``compile-model`` and ``ltrcompile`` (compile, inspect, score, verify, export, serve, bench).

Exit codes (the same for every command):

* 0 -- success;
* 1 -- parity mismatch: the compiled scorer does not score like the model (nothing marked good);
* 2 -- bad input: unreadable / malformed model or DATA file, wrong feature count, bad option,
  unwritable output;
* 3 -- unsupported model: a construct ltrcompile cannot represent exactly (unknown objective...);
* 4 -- environment: no C compiler, or an optional component (backend, library, exporter, service,
  benchmarks) is not installed;
* 5 -- verification incomplete (``compile-model``, ``verify``): nothing disagrees, but a reference
  that applies could not run (e.g. the source library is not importable); ``--accept-incomplete``
  accepts it (exit 0, ``parity.json`` records ``"verdict": "incomplete"``);
* 70 -- internal error (a bug: please report it with the ``--debug`` traceback).

Every error ends with one line on stderr naming the file and what is wrong; ``--debug`` (or
``LTRCOMPILE_DEBUG=1``) shows the Python traceback instead. With ``--json`` the result -- or the
error -- is also a JSON object on stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from .errors import (
    FormatDetectionError,
    InputDataError,
    IRValidationError,
    LtrCompileError,
    ModelFormatError,
    UnsupportedModelError,
)
from .pipeline import BUILD_RECORD, PARITY_MARKER

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_UNSUPPORTED = 3
EXIT_ENVIRONMENT = 4
EXIT_INCOMPLETE = 5
EXIT_INTERNAL = 70

# PARITY_MARKER (parity.json): written into an artifact only when its verdict was accepted, and
# records the verdict -- deployments should require it, with "verdict": "verified".
# BUILD_RECORD (compile-model.json): what the artifact was built from; always written.

#: what each exit code means, in the words every help text uses
EXIT_MEANINGS = {
    EXIT_OK: "ok",
    EXIT_MISMATCH: "parity mismatch",
    EXIT_BAD_INPUT: "bad input (model, DATA, options, output path)",
    EXIT_UNSUPPORTED: "unsupported model",
    EXIT_ENVIRONMENT: "environment (no C compiler, missing optional component)",
    EXIT_INCOMPLETE: "verification incomplete (a reference could not run; see --accept-incomplete)",
    EXIT_INTERNAL: "internal error",
}
#: the exit codes each command can return (its help lists exactly these)
COMMAND_EXIT_CODES: dict[str, tuple[int, ...]] = {
    "ltrcompile": tuple(EXIT_MEANINGS),
    "compile": (EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_UNSUPPORTED, EXIT_ENVIRONMENT, EXIT_INCOMPLETE, EXIT_INTERNAL),
    "verify": (EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_UNSUPPORTED, EXIT_ENVIRONMENT, EXIT_INCOMPLETE, EXIT_INTERNAL),
    "inspect": (EXIT_OK, EXIT_BAD_INPUT, EXIT_UNSUPPORTED, EXIT_ENVIRONMENT, EXIT_INTERNAL),
    "score": (EXIT_OK, EXIT_BAD_INPUT, EXIT_UNSUPPORTED, EXIT_ENVIRONMENT, EXIT_INTERNAL),
    # 1: the exported file, read back by ltrcompile, does not score within the error it reported
    "export": (EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_UNSUPPORTED, EXIT_ENVIRONMENT, EXIT_INTERNAL),
    "serve": (EXIT_OK, EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_INTERNAL),
}


def exit_codes_help(command: str) -> str:
    """The ``Exit codes:`` paragraph of ``command``'s help (only the codes it can return)."""
    meanings = dict(EXIT_MEANINGS)
    if command == "export":
        meanings[EXIT_MISMATCH] = "the exported file does not score within its reported error"
    text = ", ".join(f"{c} {meanings[c]}" for c in COMMAND_EXIT_CODES[command])
    return "\b\n" + "\n".join(textwrap.wrap(f"Exit codes: {text}.", 78))


# ============================================================================ errors
class CliError(Exception):
    """A user-facing failure: one line of text and an exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


class ParityMismatch(CliError):
    """The verdict was not accepted: ``mismatch`` (exit 1) or ``incomplete`` (exit 5)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None, code: int = EXIT_MISMATCH) -> None:
        super().__init__(message, code)
        self.result = result


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception raised while running a command."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, UnsupportedModelError):
        return EXIT_UNSUPPORTED
    if isinstance(exc, ModelFormatError | FormatDetectionError | IRValidationError | InputDataError):
        return EXIT_BAD_INPUT
    if isinstance(exc, LtrCompileError):
        backend = sys.modules.get("ltrcompile.backends.cython")
        env_errors = tuple(
            getattr(backend, n) for n in ("CompilerNotFoundError", "BuildError") if hasattr(backend, n)
        )
        if env_errors and isinstance(exc, env_errors):
            return EXIT_ENVIRONMENT  # no working C compiler / the C build failed (see its log)
        return EXIT_BAD_INPUT
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    return EXIT_INTERNAL


def one_line(exc: BaseException) -> str:
    """The error as one line of text."""
    if isinstance(exc, OSError) and exc.filename is not None:
        msg = f"file {exc.filename}: {exc.strerror or exc}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


# ============================================================================ console
class Console:
    """Where messages go: progress and notes to stderr, results to stdout (JSON with ``--json``)."""

    def __init__(self, *, quiet: bool = False, json_mode: bool = False) -> None:
        self.quiet = quiet
        self.json = json_mode
        self.t0 = time.perf_counter()

    def step(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", err=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"note: {message}", err=True)

    def warn(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    def out(self, text: str) -> None:
        """Human output (stdout unless in JSON mode, where it goes to stderr)."""
        if self.json:
            if not self.quiet:
                click.echo(text, err=True)
        else:
            click.echo(text)

    def emit_json(self, obj: Any) -> None:
        click.echo(json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False))

    @contextlib.contextmanager
    def phase(self, message: str) -> Iterator[None]:
        t = time.perf_counter()
        self.step(message)
        yield
        self.step(f"{message.rstrip('.').rstrip()} done ({time.perf_counter() - t:.1f}s)")


def _jsonable(x: Any) -> Any:
    from .verify import _jsonable as j

    return j(x)


# ============================================================================ shared helpers
def _read_feature_names(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise CliError(f"file {path}: cannot read the feature-names file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"file {path}: the feature-names file is not UTF-8 text") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) == 1 and "," in lines[0]:
        lines = [s.strip() for s in lines[0].split(",")]
    if not lines:
        raise CliError(f"file {path}: the feature-names file is empty (expected one name per line)")
    from collections import Counter

    dup = sorted(n for n, k in Counter(lines).items() if k > 1)
    if dup:
        raise CliError(f"file {path}: duplicate feature names {dup[:5]}")
    return lines


def _cli_load(model: str, names_file: str | None, options: Any) -> Any:
    """:func:`ltrcompile.pipeline.load` with option errors turned into one-line CLI errors."""
    from . import pipeline
    from .errors import OptionError

    try:
        return pipeline.load(model, options)
    except OptionError as exc:
        msg = str(exc).replace("num_iteration", "--num-iteration")
        if names_file is not None and "feature names" in msg:
            raise CliError(f"file {names_file}: {msg}") from exc
        raise CliError(f"file {model}: {msg}") from exc
    except LtrCompileError:
        raise
    except TypeError as exc:
        msg = str(exc)
        if "iteration" in msg and options.num_iteration is not None:
            raise CliError(f"file {model}: --num-iteration is not supported for the {options.format} format") from exc
        if "option" in msg or "argument" in msg:
            raise CliError(f"file {model}: {msg}") from exc
        raise
    except ValueError as exc:
        if names_file is not None and "feature" in str(exc) and "name" in str(exc):
            raise CliError(f"file {names_file}: {exc}") from exc
        raise CliError(f"file {model}: {exc}") from exc


def load_for_cli(
    model: str,
    *,
    fmt: str = "auto",
    feature_names_file: str | None = None,
    num_iteration: Any = None,
) -> tuple[Any, list[str]]:
    """Load ``model`` as every command does (:func:`ltrcompile.pipeline.load`); returns
    ``(ensemble, notes)``. The trees kept follow :mod:`ltrcompile.selection`; the first note says
    which rule applied (and when a best iteration exists but is not applied)."""
    loaded = load_source(model, fmt=fmt, feature_names_file=feature_names_file, num_iteration=num_iteration)
    return loaded.ensemble, list(loaded.notes)


def load_source(
    model: str, *, fmt: str = "auto", feature_names_file: str | None = None, num_iteration: Any = None,
) -> Any:
    """The :class:`ltrcompile.pipeline.Loaded` for a model file named on the command line."""
    from .frontends import detect_format
    from .pipeline import LoadOptions

    if not os.path.exists(model):
        raise CliError(f"file {model}: no such file")
    if os.path.isdir(model):
        raise CliError(f"file {model}: is a directory, not a model file")
    if fmt == "auto":
        fmt = detect_format(model)
    names = tuple(_read_feature_names(feature_names_file)) if feature_names_file else None
    try:
        options = LoadOptions(format=fmt, num_iteration=num_iteration, feature_names=names)
    except LtrCompileError as exc:
        raise CliError(str(exc).replace("num_iteration", "--num-iteration")) from exc
    return _cli_load(model, feature_names_file, options)


def _set_names(ens: Any, names: list[str] | None, path: str | None) -> None:
    if names is None:
        return
    if len(names) != ens.n_features:
        raise CliError(
            f"file {path}: {len(names)} feature names but the model has {ens.n_features} features"
        )
    ens.feature_names = list(names)
    ens.validate()


def _read_data(path: str, ens: Any, index_base: str) -> Any:
    from .datafiles import read_data

    base: str | int = index_base if index_base == "auto" else int(index_base)
    ds = read_data(path, ens, index_base=base)
    if ds.ignored_features:
        click.echo(
            f"note: {path}: ignored {ds.ignored_features} feature id(s) beyond the model's "
            f"{ens.n_features} (RankLib reads only the features its model uses)",
            err=True,
        )
    return ds


def _have_backend() -> bool:
    """True when the Cython backend is installed and complete (exposes compile/load_compiled)."""
    import importlib

    try:
        mod = importlib.import_module("ltrcompile.backends.cython")
    except ImportError:
        return False
    return callable(getattr(mod, "compile", None)) and callable(getattr(mod, "load_compiled", None))


def find_c_compiler() -> str | None:
    """The C compiler a build would use (``$CC``, Python's configured CC, cc/gcc/clang), or None."""
    import shlex
    import sysconfig

    candidates = []
    if os.environ.get("CC"):
        candidates.append(shlex.split(os.environ["CC"])[0])
    cfg = sysconfig.get_config_var("CC")
    if cfg:
        candidates.append(shlex.split(cfg)[0])
    candidates += ["cc", "gcc", "clang"]
    for c in candidates:
        found = shutil.which(c)
        if found:
            return found
    return None


NO_COMPILER = (
    "no C compiler found (looked for {looked} on PATH): install one -- "
    "Debian/Ubuntu: apt-get install build-essential; Fedora/RHEL: dnf install gcc; "
    "Alpine: apk add build-base; macOS: xcode-select --install"
)


def _require_toolchain() -> None:
    import sysconfig

    if not _have_backend():
        raise CliError(
            "the Cython backend (ltrcompile.backends.cython) is not part of this installation",
            EXIT_ENVIRONMENT,
        )
    try:
        from .backends.cython.toolchain import find_compiler
    except ImportError:
        pass
    else:
        find_compiler()  # raises CompilerNotFoundError (exit 4) with install instructions
        return
    if find_c_compiler() is None:
        looked = ["$CC"] + (sysconfig.get_config_var("CC") or "").split()[:1]
        looked += [c for c in ("cc", "gcc", "clang") if c not in looked]
        raise CliError(NO_COMPILER.format(looked=", ".join(looked)), EXIT_ENVIRONMENT)


def _is_artifact(path: str) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / f).exists() for f in ("manifest.json", PARITY_MARKER))


def _check_out_dir(out: Path) -> None:
    """Fail early (exit 2) when ``out`` cannot receive an artifact."""
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not _is_artifact(str(out)):
        raise CliError(
            f"output {out}: directory exists, is not empty and is not an ltrcompile artifact "
            "(refusing to replace it; choose another -o)"
        )
    parent = out.parent if str(out.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise CliError(f"output {out}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CliError(f"output {out}: directory {probe} is not writable")








def _sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_build_record(artifact: str) -> dict[str, Any]:
    """``compile-model.json`` of an artifact ({} when absent or unreadable)."""
    try:
        with open(os.path.join(artifact, BUILD_RECORD), encoding="utf-8") as fh:
            d = json.load(fh)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def model_facts(ens: Any) -> dict[str, Any]:
    """Summary numbers for reports: trees, leaves, depth, features, objective, transform."""
    s = ens.summary()
    prov = ens.provenance
    return {
        "format": prov.get("format"),
        "library": prov.get("library"),
        "library_version": prov.get("version") or prov.get("lightgbm_version") or prov.get("model_version"),
        "objective": prov.get("objective") or prov.get("ranker") or prov.get("model_type"),
        "transform": ens.transform,
        "trees": s["trees"],
        "leaves": s["leaves"],
        "nodes": s["nodes"],
        "max_depth": s["max_depth"],
        "n_features": s["n_features"],
        "features_used": s["features_used"],
        "n_outputs": s["n_outputs"],
        "digest": ens.digest(),
    }




# ============================================================================ compile
def run_compile(
    model: str,
    out: str | None,
    *,
    name: str | None,
    fmt: str,
    feature_names: str | None,
    num_iteration: Any,
    raw_score: bool,
    strategy: str | None,
    jobs: int | None,
    verify_data: tuple[str, ...],
    do_verify: bool,
    atol: float,
    index_base: str,
    keep_failed: bool,
    console: Console,
    cache: bool = True,
    accept_incomplete: bool = False,
    isa: str | None = None,
) -> int:
    """``compile-model``: :func:`ltrcompile.pipeline.load` then :func:`~ltrcompile.pipeline.build_loaded`;
    exit 0 only on ``verified`` (or ``incomplete`` with ``--accept-incomplete``)."""
    from . import pipeline

    t_start = time.perf_counter()
    stem = Path(model).name.split(".")[0] or "model"
    out_path = Path(out) if out else Path(f"{name or stem}-compiled")
    out_path = out_path.absolute()
    if atol < 0:
        raise CliError(f"--atol must be >= 0, got {atol}")
    if verify_data and not do_verify:
        raise CliError("--verify DATA and --no-verify contradict each other")
    if accept_incomplete and not do_verify:
        raise CliError("--accept-incomplete and --no-verify contradict each other")
    try:  # every option checked before the model is read
        build_opts = pipeline.BuildOptions(
            strategy=strategy or "auto", isa=isa, jobs=jobs, cache=cache, name=name,
            raw_score=raw_score, progress=not console.quiet,
        )
    except LtrCompileError as exc:
        raise CliError(str(exc)) from exc
    _check_out_dir(out_path)
    _require_toolchain()
    with console.phase(f"reading {model}"):
        loaded = load_source(model, fmt=fmt, feature_names_file=feature_names, num_iteration=num_iteration)
    ens, notes = loaded.ensemble, list(loaded.notes)
    for n in notes:
        console.note(n)
    facts = model_facts(ens)
    console.step(
        f"{facts['format']}: {facts['trees']} trees, {facts['leaves']} leaves, depth {facts['max_depth']}, "
        f"{facts['features_used']}/{facts['n_features']} features, objective {facts['objective']}, "
        f"transform {facts['transform']}"
    )
    datasets = []
    for path in verify_data:
        with console.phase(f"reading DATA {path}"):
            datasets.append(_read_data(path, ens, index_base))
    data = None
    if datasets:
        from .datafiles import DataSet

        data = datasets[0] if len(datasets) == 1 else DataSet(
            path=",".join(d.path for d in datasets),
            format="mixed",
            X=np.vstack([np.asarray(d.X, np.float64) for d in datasets]),
        )
    verify_opts = pipeline.VerifyOptions(
        enabled=do_verify, data=data, atol=atol, accept_incomplete=accept_incomplete
    )
    record = {"feature_names": feature_names, "verify": list(verify_data)}
    with console.phase("compiling and verifying" if do_verify else "compiling"):
        try:
            res = pipeline.build_loaded(
                loaded, out_path, build_opts, verify_opts, keep_rejected=keep_failed, record=record
            )
        except ValueError as exc:
            if isinstance(exc, LtrCompileError):
                raise
            raise CliError(f"compile: {exc}") from exc
    report, decision = res.report, res.decision
    manifest = res.manifest
    result: dict[str, Any] = {
        "ok": decision.accepted,
        "verdict": decision.verdict,
        "model": {"path": os.path.abspath(model), **facts},
        "notes": notes,
        "compile": {
            "artifact": None if res.artifact is None else str(res.artifact),
            "strategy": manifest.get("strategy", build_opts.strategy),
            "jobs": jobs,
            "raw_score": raw_score,
            "seconds": round(res.compile_seconds, 3),
            "module": manifest.get("module"),
            "manifest": manifest,
        },
        "parity": report.to_dict() if report is not None else None,
        "verified": report is not None,
    }
    if not decision.accepted:
        assert report is not None
        code = EXIT_MISMATCH if decision.verdict == pipeline.MISMATCH else EXIT_INCOMPLETE
        result["exit_code"] = code
        console.out(report.format())
        where = (
            f"rejected artifact kept in {out_path.name}.rejected (no {PARITY_MARKER})" if keep_failed
            else f"no artifact written to {out_path}"
        )
        hint = "; pass --accept-incomplete to accept it" if code == EXIT_INCOMPLETE else ""
        raise ParityMismatch(f"{decision.reason}{hint}; {where}", result, code)
    result["total_seconds"] = round(time.perf_counter() - t_start, 3)
    result["exit_code"] = EXIT_OK
    if console.json:
        console.emit_json(result)
    lines = [
        f"compiled {model} -> {out_path}",
        f"  model     {facts['format']}"
        + (f" ({facts['library']} {facts['library_version']})" if facts.get("library_version") else "")
        + f", objective {facts['objective']}, transform {facts['transform']}",
        f"  trees     {facts['trees']} ({facts['leaves']} leaves, max depth {facts['max_depth']}), "
        f"{facts['n_outputs']} output{'s' if facts['n_outputs'] != 1 else ''}; {loaded.selection}",
        f"  features  {facts['n_features']} ({facts['features_used']} used)",
        f"  build     strategy {result['compile']['strategy']}, {res.compile_seconds:.1f}s",
        f"  artifact  {out_path}" + (f" ({PARITY_MARKER} written, verdict {decision.verdict})" if report is not None else " (not verified: no " + PARITY_MARKER + ")"),
        f"  parity    {pipeline.parity_line(report)}",
    ]
    if report is not None:
        for s in report.skipped:
            lines.append(f"            not compared: {s}")
    if report is not None and not console.quiet:
        console.out(report.format(examples=False))
    console.out("\n".join(lines))
    return EXIT_OK


# ============================================================================ inspect
def inspect_model(ens: Any, notes: list[str]) -> dict[str, Any]:
    """Everything ``ltrcompile inspect`` reports, as a dict."""
    from .ir import Missing, Op

    facts = model_facts(ens)
    internal = ens.left >= 0
    depths = ens.tree_depths() if ens.n_trees else np.zeros(0, np.int64)
    tree_of = ens.tree_of_node()
    leaves_per_tree = np.bincount(tree_of[~internal], minlength=ens.n_trees) if ens.n_trees else np.zeros(0)
    depth_hist = {int(d): int(c) for d, c in enumerate(np.bincount(depths)) if c} if depths.size else {}
    leaf_hist: dict[str, int] = {}
    for k in leaves_per_tree:
        lo = 1 << (int(k).bit_length() - 1) if k > 0 else 0
        key = str(lo) if lo <= 1 else f"{lo}-{2 * lo - 1}"
        leaf_hist[key] = leaf_hist.get(key, 0) + 1
    leaf_hist = dict(sorted(leaf_hist.items(), key=lambda kv: int(kv[0].split("-")[0])))
    split_counts = np.bincount(ens.feature[internal], minlength=ens.n_features) if ens.n_features else np.zeros(0, np.int64)
    names = ens.feature_names
    top = [
        {"feature": int(f), "name": names[f] if names else None, "splits": int(split_counts[f])}
        for f in np.argsort(-split_counts, kind="stable")[:10]
        if split_counts[f] > 0
    ]
    used = int(np.count_nonzero(split_counts))
    if ens.network is not None:  # RankLib RankNet / ListNet: every input neuron reads a feature
        used = int(np.unique(ens.network.inputs).size)
    policies = {m.name.lower(): int(np.count_nonzero(ens.missing[internal] == m)) for m in Missing}
    ops = {"<": int(np.count_nonzero(ens.op[internal] == Op.LT)), "<=": int(np.count_nonzero(ens.op[internal] == Op.LE))}
    unusual: list[str] = []
    stumps = int(np.count_nonzero(leaves_per_tree == 1))
    if stumps:
        unusual.append(f"{stumps} tree(s) are a single leaf (constant)")
    ncat = int(np.count_nonzero(ens.categorical[internal]))
    if ncat:
        unusual.append(f"{ncat} categorical split(s)")
    if ens.has_linear_leaves:
        unusual.append("linear-tree leaves (LightGBM linear_tree)")
    if ens.linear_feature.size:
        unusual.append(f"{ens.linear_feature.size} linear term(s)")
    if ens.n_trees and not np.all(ens.tree_weight == 1.0):
        w = np.unique(ens.tree_weight)
        unusual.append(
            f"every tree is weighted by {w[0]:g} (a learning rate applied at scoring time)"
            if w.size == 1
            else f"per-tree weights from {w.min():g} to {w.max():g} (DART or similar)"
        )
    if ens.n_bags > 1:
        unusual.append(f"{ens.n_bags} independently accumulated bags")
    if policies.get("zero_nan_default"):
        unusual.append(f"{policies['zero_nan_default']} split(s) treat zero as missing (LightGBM missing_type=Zero)")
    thr = ens.threshold[internal & (ens.categorical == 0)]
    if thr.size and not np.all(np.isfinite(thr)):
        unusual.append(f"{int(np.count_nonzero(~np.isfinite(thr)))} infinite threshold(s)")
    if depths.size and depths.max() > 20:
        unusual.append(f"very deep trees (max depth {int(depths.max())})")
    if ens.network is not None:
        unusual.append(f"a dense network ({'x'.join(map(str, ens.network.shape))} neurons) instead of trees")
    if ens.normalizers:
        unusual.append(f"{len(ens.normalizers)} feature normalizer(s) applied before scoring")
    if ens.average_denominator is not None:
        unusual.append(f"output averaged over {ens.average_denominator:g} (random forest)")
    if ens.n_features and used < ens.n_features:
        unusual.append(f"{ens.n_features - used} of {ens.n_features} features are never used")
    if internal.any():
        lv = ens.leaf_value[~internal]
        if lv.size and np.abs(lv).max() > 1e6:
            unusual.append(f"very large leaf values (max |v| {np.abs(lv).max():.3g})")
    return {
        **facts,
        "provenance": ens.provenance.to_dict(),
        "n_outputs": ens.n_outputs,
        "input_cast": ens.input_cast,
        "accumulate": ens.accumulate,
        "sparse_absent": ens.sparse_absent,
        "base_score": ens.base_score.tolist(),
        "average_denominator": ens.average_denominator,
        "network": None if ens.network is None else ens.network.shape,
        "depth_histogram": depth_hist,
        "leaves_per_tree_histogram": leaf_hist,
        "feature_names": "present" if names else None,
        "top_features": top,
        "split_operators": ops,
        "missing_policies": {k: v for k, v in policies.items() if v},
        "categorical_splits": ncat,
        "unusual": unusual,
        "notes": notes,
    }


def _importance(ens: Any, data: str | None, index_base: str) -> dict[str, Any]:
    """Mean |TreeSHAP contribution| per feature on DATA's rows or on the model's edge rows."""
    from .edgecases import edge_rows
    from .explain import check_explainable
    from .explain_report import contributions, global_importance

    check_explainable(ens)
    if data:
        X, rows = _read_data(data, ens, index_base).X, f"{data}"
    else:
        X, rows = edge_rows(ens, max_rows=2000), "edge rows"
    C = contributions(ens, X)
    return {"rows": rows, "n_rows": int(C.shape[0]), "features": global_importance(ens, C)}


def _format_inspect(model: str, d: dict[str, Any]) -> str:
    prov = d["provenance"]
    rows: list[tuple[str, str]] = [
        ("format", f"{d['format']}" + (f" ({d['library']} {d['library_version']})" if d.get("library_version") else "")),
        ("objective", f"{d['objective']}   transform {d['transform']}   outputs {d['n_outputs']}"),
        ("trees", f"{d['trees']}   nodes {d['nodes']}   leaves {d['leaves']}   max depth {d['max_depth']}"),
        ("features", f"{d['n_features']} ({d['features_used']} used)   names {'yes' if d['feature_names'] else 'no'}"),
        ("arithmetic", f"inputs as {d['input_cast']}, sums in {d['accumulate']}, absent sparse entries "
         f"read as {d['sparse_absent']}"),
        ("splits", ", ".join(f"{k} x{v}" for k, v in d["split_operators"].items() if v) or "-"),
        ("base score", ", ".join(f"{v:g}" for v in d["base_score"])),
    ]
    for key in ("best_iteration", "iteration_range", "total_iterations", "tree_selection", "booster", "boosting"):
        if prov.get(key) is not None:
            rows.append((key.replace("_", " "), str(prov[key])))
    rows.append(("tree depth", ", ".join(f"{k}: {v}" for k, v in d["depth_histogram"].items()) + "  (trees per depth)"))
    rows.append(("leaves/tree", ", ".join(f"{k}: {v}" for k, v in d["leaves_per_tree_histogram"].items()) + "  (trees)"))
    if d["top_features"]:
        rows.append(("top splits", ", ".join(
            f"{t['name'] or 'f' + str(t['feature'])} ({t['splits']})" for t in d["top_features"][:8])))
    if d["missing_policies"]:
        rows.append(("missing", ", ".join(f"{k} x{v}" for k, v in d["missing_policies"].items())))
    if d.get("importance"):
        imp = d["importance"]
        rows.append((f"importance ({imp['n_rows']} {imp['rows']})" if imp["rows"] == "edge rows" else "importance",
                     ", ".join(f"{t['feature']} {t['mean_abs_contribution']:.4g}" for t in imp["features"][:10])
                     + ("" if imp["rows"] == "edge rows" else f"  (mean |contribution| over {imp['n_rows']} rows of {imp['rows']})")))
    rows += [("unusual", u) for u in d["unusual"]]
    rows += [("note", n) for n in d["notes"]]
    rows.append(("digest", d["digest"]))
    return "\n".join([model] + [f"  {k:<16} {v}" for k, v in rows])


# ============================================================================ score
def _load_scorer(target: str, fmt: str, num_iteration: Any, console: Console) -> tuple[Any, Any, str]:
    """``(ensemble, scorer, kind)`` for a model file or a compiled artifact directory."""
    if os.path.isdir(target):
        ens, scorer = load_artifact(target)
        return ens, scorer, "compiled"
    ens, notes = load_for_cli(target, fmt=fmt, num_iteration=num_iteration)
    for n in notes:
        console.note(n)
    return ens, ens, "interpreter"


def _note_absent_rule(ens: Any, data: str, console: Console) -> None:
    """Once per run: how entries absent from the svmlight rows of DATA read for this model."""
    from .datafiles import ABSENT_WORDS, sniff_format

    if sniff_format(data) != "svmlight":
        return
    src = ens.provenance.library or ens.provenance.format or "this"
    console.note(
        f"absent entries of the svmlight rows in {data} read as {ABSENT_WORDS[ens.sparse_absent]} "
        f"for this model ({src} rule; the IR's sparse_absent={ens.sparse_absent!r})"
    )


def load_artifact(path: str) -> tuple[Any, Any]:
    """``(ensemble, scorer)`` for a compiled artifact directory (the IR is read from the artifact)."""
    from .ir import Ensemble

    if not _have_backend():
        raise CliError(
            f"artifact {path}: the Cython backend is not part of this installation", EXIT_ENVIRONMENT
        )
    import ltrcompile

    try:
        scorer = ltrcompile.load_compiled(path)
    except LtrCompileError:
        raise
    except (OSError, ImportError, ValueError, KeyError) as exc:
        raise CliError(f"artifact {path}: cannot load the compiled scorer: {one_line(exc)}") from exc
    ens = getattr(scorer, "ensemble", None) or getattr(scorer, "ir", None)
    if not isinstance(ens, Ensemble):
        for cand in ("ir.json", "model.ir.json", "ensemble.json"):
            p = os.path.join(path, cand)
            if os.path.exists(p):
                ens = Ensemble.load(p)
                break
    if not isinstance(ens, Ensemble):
        raise CliError(f"artifact {path}: holds no IR (ir.json); recompile it with compile-model")
    return ens, scorer


def _csv_field(name: str, sep: str) -> str:
    """A header field: quoted (CSV rules) when a feature name holds the separator or a quote."""
    if sep in name or '"' in name or "\n" in name:
        return '"' + name.replace('"', '""') + '"'
    return name


def _write_scores(
    ds: Any, scores: np.ndarray, dest: str | None, out_format: str | None,
    contribs: tuple[list[str], np.ndarray] | None = None,
) -> tuple[str, int]:
    n = scores.shape[0]
    S = scores.reshape(n, -1)
    cols = ["score"] if S.shape[1] == 1 else [f"score_{k}" for k in range(S.shape[1])]
    ranks = None
    queries = ds.queries() if ds.qid is not None else []
    if ds.qid is not None and S.shape[1] == 1:
        ranks = np.zeros(n, np.int64)
        for _, idx in queries:
            order = idx[np.argsort(-S[idx, 0], kind="stable")]
            ranks[order] = np.arange(1, order.size + 1)
    kind = out_format or ("json" if dest and dest.endswith(".json") else "csv" if dest and dest.endswith(".csv") else "tsv")
    where = [int(x) for x in ds.lines] if ds.lines is not None else list(range(n))
    if kind == "json":
        rows = []
        for i in range(n):
            r: dict[str, Any] = {("line" if ds.lines is not None else "row"): where[i]}
            if ds.qid is not None:
                r["qid"] = ds.qid[i]
            if ds.ids is not None:
                r["id"] = ds.ids[i]
            if ds.y is not None:
                r["label"] = ds.y[i]
            for k, c in enumerate(cols):
                r[c] = S[i, k]
            if ranks is not None:
                r["rank"] = int(ranks[i])
            if contribs is not None:
                r["contrib"] = dict(zip(contribs[0], contribs[1][i].tolist(), strict=True))
            rows.append(r)
        doc: dict[str, Any] = {"data": ds.path, "rows": rows}
        if ranks is not None:
            doc["queries"] = [
                {"qid": q, "order": [where[j] for j in idx[np.argsort(-S[idx, 0], kind="stable")]]}
                for q, idx in queries
            ]
        text = json.dumps(_jsonable(doc), separators=(",", ":")) + "\n"
    else:
        sep = "," if kind == "csv" else "\t"
        header = ["line" if ds.lines is not None else "row"]
        if ds.qid is not None:
            header.append("qid")
        if ds.ids is not None:
            header.append("id")
        if ds.y is not None:
            header.append("label")
        header += cols
        if ranks is not None:
            header.append("rank")
        if contribs is not None:
            header += [_csv_field(c, sep) for c in contribs[0]]
        out_lines = [sep.join(header)]
        for i in range(n):
            f = [str(where[i])]
            if ds.qid is not None:
                f.append(str(ds.qid[i]))
            if ds.ids is not None:
                f.append(str(ds.ids[i]))
            if ds.y is not None:
                f.append(repr(float(ds.y[i])))
            f += [repr(float(v)) for v in S[i]]
            if ranks is not None:
                f.append(str(int(ranks[i])))
            if contribs is not None:
                f += [repr(v) for v in contribs[1][i].tolist()]
            out_lines.append(sep.join(f))
        text = "\n".join(out_lines) + "\n"
    if dest is None or dest == "-":
        click.echo(text, nl=False)
        return "stdout", n
    try:
        tmp = dest + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, dest)
    except OSError as exc:
        raise CliError(f"output {dest}: cannot write: {exc.strerror or exc}") from None
    return dest, n


# ============================================================================ click plumbing
@dataclasses.dataclass
class RunState:
    """What the error handler of :func:`_run` needs to know about the invocation, filled in by the
    options' callbacks while click parses (``ctx.obj``): no scanning of argv."""

    debug: bool = dataclasses.field(
        default_factory=lambda: os.environ.get("LTRCOMPILE_DEBUG", "") not in ("", "0")
    )
    json: bool = False


def _into_state(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        state = ctx.find_object(RunState)
        if value and state is not None:
            setattr(state, attr, True)
        return value

    return callback


def _debug_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_into_state("debug"),
        help="Show Python tracebacks for errors (also LTRCOMPILE_DEBUG=1).",
    )(f)


def _json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "json_mode", is_flag=True, callback=_into_state("json"), help=help_text)


CONTEXT = {"max_content_width": 100, "help_option_names": ["-h", "--help"]}


def _given(ctx: click.Context, name: str) -> bool:
    """The user passed option ``name`` (not a default)."""
    src = ctx.get_parameter_source(name)
    return src is not None and src not in (
        click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP
    )


def refuse_unless(ctx: click.Context, name: str, applies: bool, reason: str) -> None:
    """An option given where it does not apply is refused with a one-line reason (exit 2)."""
    if not applies and _given(ctx, name):
        flag = "--" + name.replace("_", "-")
        for p in ctx.command.params:
            if p.name == name and isinstance(p, click.Option):
                flag = max(p.opts, key=len)
        raise CliError(f"{flag} refused: {reason}")


class FormatType(click.ParamType):
    """``--format``: ``auto`` or a known format name, checked while parsing (before any work)."""

    name = "format"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "FORMAT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from .frontends import formats

        known = sorted(formats())
        if value == "auto" or value in known:
            return str(value)
        self.fail(f"{value!r} is not a known format; known: auto, {', '.join(known)}", param, ctx)


#: code generation strategies (``ltrcompile.backends.cython.codegen.STRATEGIES`` plus auto)
STRATEGY_CHOICES = ("auto", "ifelse", "datadriven")


def _usage_error_line(exc: click.ClickException, prog: str) -> str:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else prog
    hint = f" (see {where} --help)" if isinstance(exc, click.UsageError) else ""
    return f"{where}: error: {' '.join(exc.format_message().split())}{hint}"


def _run(command: click.Command, argv: list[str] | None, prog: str) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    state = RunState()
    try:
        rv = command.main(args=args, prog_name=prog, standalone_mode=False, obj=state)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        # usage errors: one line naming the command, like every other error
        click.echo(_usage_error_line(exc, prog), err=True)
        return exc.exit_code if exc.exit_code != 1 else EXIT_BAD_INPUT
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except BaseException as exc:  # noqa: BLE001 - every error becomes one line + an exit code
        if isinstance(exc, SystemExit):
            code = exc.code
            if isinstance(code, str):  # SystemExit("message"): the message is the error line
                click.echo(code if code.startswith(prog) else f"{prog}: error: {code}", err=True)
                return EXIT_BAD_INPUT
            return code if isinstance(code, int) else 0
        code = exit_code_for(exc)
        if state.debug:
            import traceback

            traceback.print_exc()
        msg = one_line(exc)
        if code == EXIT_INTERNAL:
            msg = f"internal error: {type(exc).__name__}: {msg} (re-run with --debug for the traceback; please report it)"
        if state.json and not isinstance(exc, _Quiet):
            payload: dict[str, Any] = {"ok": False, "exit_code": code, "error": msg}
            if isinstance(exc, ParityMismatch) and exc.result is not None:
                payload = {**exc.result, **payload}
            click.echo(json.dumps(_jsonable(payload), indent=2))
        click.echo(f"{prog}: error: {msg}", err=True)
        return code
    return int(rv or 0)


class _NumIteration(click.ParamType):
    """``--num-iteration``: an integer >= 0 or ``best`` (:func:`ltrcompile.selection.parse_num_iteration`)."""

    name = "N|best"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from .errors import OptionError
        from .selection import parse_num_iteration

        try:
            return parse_num_iteration(value)
        except OptionError as exc:
            self.fail(str(exc).replace("num_iteration", "--num-iteration"), param, ctx)


NUM_ITERATION = _NumIteration()
NUM_ITERATION_HELP = (
    "Boosting rounds to keep: N (the first N), 0 (all) or best (the early-stopping best iteration); "
    "default: what the source library's own predict uses for this model (docs/cli.md)"
)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    return _debug_option(f)


_compile_options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=str)),
    click.option("-o", "--output", "--out", "out", metavar="OUT_DIR", help="Output path: the artifact directory (default: ./<model>-compiled)."),
    click.option("--name", help="Label stored in the artifact's manifest; also names the default OUT_DIR."),
    click.option("--format", "fmt", type=FormatType(), default="auto", show_default=True, help="Model format; auto-detected from the content."),
    click.option("--feature-names", type=click.Path(exists=True, dir_okay=False), help="File with one feature name per line (default: the model's own)."),
    click.option("--num-iteration", type=NUM_ITERATION, help=NUM_ITERATION_HELP + "."),
    click.option("--raw-score", is_flag=True, help="Mark the artifact for raw margins: `ltrcompile score` then defaults to them."),
    click.option("--strategy", type=click.Choice(STRATEGY_CHOICES), help="Code generation: auto (default), ifelse (straight-line trees) or datadriven (node arrays)."),
    click.option("--jobs", type=click.IntRange(min=1), help="Parallel C compiler jobs."),
    click.option("--no-cache", is_flag=True, help="Always build; never reuse an identical cached build."),
    click.option("--verify", "verify_data", multiple=True, metavar="DATA", type=click.Path(exists=True, dir_okay=False), help="Also verify on these rows (svmlight/LETOR, CSV with header, .npy); repeatable."),
    click.option("--no-verify", is_flag=True, help="Skip parity verification (the artifact then gets no " + PARITY_MARKER + ")."),
    click.option("--accept-incomplete", is_flag=True, help="Accept an incomplete verdict (a reference, e.g. the source library, could not run): exit 0, " + PARITY_MARKER + " records it."),
    click.option("--atol", type=float, default=1e-6, show_default=True, help="Largest accepted |difference| of scores."),
    click.option("--index-base", type=click.Choice(["auto", "0", "1"]), default="auto", show_default=True, help="svmlight feature index base of DATA files."),
    click.option("--keep-failed", is_flag=True, help="On mismatch keep the artifact as OUT_DIR.rejected (never marked good)."),
    _json_option("Machine-readable report on stdout."),
    click.option("-q", "--quiet", is_flag=True, help="No progress output."),
]

COMPILE_HELP = f"""Compile MODEL into a native scorer, verify parity, write the artifact.

MODEL is any supported model file (XGBoost JSON/UBJSON/dump, LightGBM text/JSON,
scikit-learn pickle, RankLib, Elasticsearch LTR, ltrcompile IR), auto-detected.

Verification is on by default: the compiled scorer is compared with the
interpreter and with the source library's own predict (when installed) on edge
rows generated from the model's thresholds plus any --verify DATA rows. Only a
verified artifact gets {PARITY_MARKER}; on a mismatch nothing is written to OUT_DIR
(an existing artifact there is left untouched) and the exit code is 1.

\b
Examples:
  compile-model model.txt -o build/ranker
  compile-model model.json --verify test.letor --json > report.json
  compile-model model.txt --num-iteration 200 --jobs 4 --quiet

{exit_codes_help('compile')}
"""


def _apply(options: list[Callable[..., Any]], f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(options):
        f = opt(f)
    return f


def _compile_callback(**kw: Any) -> int:
    ctx = click.get_current_context()
    for opt in ("verify_data", "atol", "keep_failed"):
        refuse_unless(ctx, opt, not kw["no_verify"], "--no-verify skips the parity check it belongs to")
    console = Console(quiet=kw["quiet"], json_mode=kw["json_mode"])
    return run_compile(
        kw["model"],
        kw["out"],
        name=kw["name"],
        fmt=kw["fmt"],
        feature_names=kw["feature_names"],
        num_iteration=kw["num_iteration"],
        raw_score=kw["raw_score"],
        strategy=kw["strategy"],
        jobs=kw["jobs"],
        verify_data=tuple(kw["verify_data"]),
        do_verify=not kw["no_verify"],
        atol=kw["atol"],
        index_base=kw["index_base"],
        keep_failed=kw["keep_failed"],
        console=console,
        cache=not kw["no_cache"],
        accept_incomplete=kw["accept_incomplete"],
    )


def _make_compile_command(name: str) -> click.Command:
    def callback(**kw: Any) -> int:
        return _compile_callback(**kw)

    return click.command(name=name, help=COMPILE_HELP, context_settings=CONTEXT)(
        _common(_apply(_compile_options, callback))
    )


compile_model_command = _make_compile_command("compile-model")

class _LazyGroup(click.Group):
    """``ltrcompile``: the built-in subcommands plus ``serve`` and ``bench`` (optional parts)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *_LAZY_COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in _LAZY_COMMANDS:
            short, loader = _LAZY_COMMANDS[cmd_name]
            cmd = _LazyCommand(cmd_name, short, loader)
        return cmd


MAIN_HELP = f"""ltrcompile: compile tree-ensemble / learning-to-rank models into exact native scorers.

\b
Examples:
  ltrcompile inspect model.txt
  ltrcompile compile model.txt -o build/ranker --verify test.letor
  ltrcompile score build/ranker test.letor -o scores.tsv
  ltrcompile verify model.txt build/ranker test.letor
  ltrcompile export model.json --to o19s -o model.o19s.json
  ltrcompile serve --store ./ltr-store --port 8080

{exit_codes_help('ltrcompile')}
"""


@click.group(cls=_LazyGroup, help=MAIN_HELP, context_settings=CONTEXT)
@_debug_option
@click.version_option(package_name="ltrcompile", prog_name="ltrcompile")
def cli() -> None:
    pass


cli.add_command(_make_compile_command("compile"))


@cli.command(
    "inspect",
    help=f"""Describe MODEL: format, version, trees, depth and leaf histograms, features
used, objective, transform and anything unusual.

\b
--importance adds global feature importance: the mean |TreeSHAP contribution|
of every feature over the rows of --data (else over the model's own edge rows).

\b
Examples:
  ltrcompile inspect model.txt
  ltrcompile inspect model.json --json | jq .top_features
  ltrcompile inspect model.txt --importance --data test.letor

{exit_codes_help('inspect')}
""",
)
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=FormatType(), default="auto", show_default=True, help="Model format.")
@click.option("--num-iteration", type=NUM_ITERATION, help=NUM_ITERATION_HELP + ".")
@click.option("--feature-names", type=click.Path(exists=True, dir_okay=False), help="File with one feature name per line.")
@click.option("--importance", is_flag=True, help="Global importance: mean |contribution| per feature.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=str), help="Rows for --importance (default: edge rows).")
@click.option("--index-base", type=click.Choice(["auto", "0", "1"]), default="auto", show_default=True, help="svmlight feature index base (--data).")
@_json_option("Machine-readable output.")
@_common
def inspect_command(
    model: str, fmt: str, num_iteration: Any, feature_names: str | None, importance: bool,
    data: str | None, index_base: str, json_mode: bool,
) -> int:
    console = Console(quiet=True, json_mode=json_mode)
    ctx = click.get_current_context()
    refuse_unless(ctx, "data", importance, "it gives the rows for --importance, which was not asked for")
    refuse_unless(ctx, "index_base", data is not None, "it reads the svmlight rows of --data, and none was given")
    ens, notes = load_for_cli(model, fmt=fmt, num_iteration=num_iteration, feature_names_file=feature_names)
    d = inspect_model(ens, notes)
    if importance:
        d["importance"] = _importance(ens, data, index_base)
    d["path"] = os.path.abspath(model)
    if json_mode:
        console.emit_json({"ok": True, "exit_code": 0, **d})
    else:
        console.out(_format_inspect(model, d))
    return EXIT_OK


@cli.command(
    "score",
    help=f"""Score the rows of DATA with a model file (interpreter) or a compiled artifact.

TARGET is a model file or an artifact directory written by compile-model. DATA
is svmlight/LETOR (qid: kept; or a FILE.query group file), CSV with a header
(columns bound by name when the model has names) or .npy. Output: one line per
row with its line number, qid, label, score and -- for queries -- the rank of
the row within its query (1 = best); JSON output also lists the re-ranked order
of every query.

\b
Examples:
  ltrcompile score build/ranker test.letor
  ltrcompile score model.txt test.letor -o scores.json
  ltrcompile score model.txt test.letor --contrib -o why.csv
  ltrcompile score build/ranker rows.csv --raw-score -o scores.csv
  ltrcompile score build/ranker logs.parquet --spark local[2] -o scored.parquet
  ltrcompile score model.txt logs.parquet --spark yarn -o hdfs:///tmp/scored.parquet

With --spark [MASTER] (default local[*]; write --spark=MASTER or put it after
the arguments) DATA is Parquet and the rows are scored by a Spark job that
writes Parquet to -o (DATA's columns plus "score"; see docs/spark.md).

{exit_codes_help('score')}
""",
)
@click.argument("target", metavar="MODEL_OR_ARTIFACT", type=click.Path(exists=True, path_type=str))
@click.argument("data", type=click.Path(path_type=str))
@click.option("-o", "--output", help="Output path: the scores file (.tsv, .csv or .json by extension; default or -: stdout); with --spark, the Parquet output.")
@click.option("--output-format", type=click.Choice(["tsv", "csv", "json"]), help="Force the output format.")
@click.option("--raw-score/--transformed", default=None, help="Raw margins or transformed outputs (default: transformed; for an artifact, as compiled).")
@click.option("--format", "fmt", type=FormatType(), default="auto", show_default=True, help="Model format (model files only).")
@click.option("--num-iteration", type=NUM_ITERATION, help=NUM_ITERATION_HELP + " (model files only).")
@click.option("--index-base", type=click.Choice(["auto", "0", "1"]), default="auto", show_default=True, help="svmlight feature index base.")
@click.option("--contrib", is_flag=True, help="Also write per-feature TreeSHAP contributions (one column per feature, then bias; they sum to the raw score).")
@click.option("--spark", "spark_master", is_flag=False, flag_value="local[*]", default=None, metavar="[MASTER]", help="Score Parquet DATA with a Spark job on MASTER (default local[*]); -o is the Parquet output.")
@click.option("--features", help="With --spark: the feature columns, comma-separated in model order, or one vector/array column (default: the model's feature names).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_common
def score_command(
    target: str, data: str, output: str | None, output_format: str | None, raw_score: bool | None,
    fmt: str, num_iteration: Any, index_base: str, contrib: bool, spark_master: str | None,
    features: str | None, quiet: bool,
) -> int:
    from .spark_job import check_request

    console = Console(quiet=quiet)
    ctx = click.get_current_context()
    artifact = os.path.isdir(target)
    refuse_unless(ctx, "num_iteration", not artifact,
                  f"{target} is an artifact compiled with a fixed tree set (recompile with compile-model --num-iteration)")
    refuse_unless(ctx, "fmt", not artifact, f"{target} is a compiled artifact, not a model file")
    check_request(spark_master, data, output, {
        "--contrib": contrib, "--output-format": output_format is not None,
        "--index-base": index_base != "auto", "--features": features is not None,
    })
    if spark_master is not None:
        return _spark_score(target, data, str(output), spark_master, features, raw_score, fmt, num_iteration, console)
    ens, scorer, kind = _load_scorer(target, fmt, num_iteration, console)
    if raw_score is None:
        raw_score = bool(kind == "compiled" and read_build_record(target).get("raw_score"))
    ds = _read_data(data, ens, index_base)
    _note_absent_rule(ens, data, console)
    if output and output != "-":
        parent = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise CliError(f"output {output}: directory {parent} does not exist or is not writable")
    t = time.perf_counter()
    scores = np.asarray(scorer.predict(ds.X, raw_score=raw_score))
    contribs = None
    if contrib:
        from .explain_report import column_labels, contributions

        C = contributions(ens, ds.X)
        contribs = (column_labels(ens), C.reshape(C.shape[0], -1))
    dt = time.perf_counter() - t
    dest, n = _write_scores(ds, scores, output, output_format, contribs)
    console.step(f"scored {n} rows of {data} with the {kind} scorer in {dt * 1e3:.1f} ms -> {dest}")
    return EXIT_OK


def _spark_score(target: str, data: str, output: str, master: str, features: str | None,
                 raw_score: bool | None, fmt: str, num_iteration: Any, console: Console) -> int:
    """``score --spark``: the model file is loaded as everywhere in the CLI, then one Spark job."""
    from .spark_job import parse_features, run_score_job

    if os.path.isdir(target):
        model: Any = target
        if raw_score is None:
            raw_score = bool(read_build_record(target).get("raw_score"))
    else:
        model, notes = load_for_cli(target, fmt=fmt, num_iteration=num_iteration)
        for n in notes:
            console.note(n)
    run_score_job(model, data, output, master=master, features=parse_features(features),
                  raw_score=bool(raw_score), echo=click.echo, name=os.path.basename(os.path.normpath(target)))
    return EXIT_OK


@cli.command(
    "verify",
    help=f"""Check that ARTIFACT (a compiled scorer) scores like MODEL.

Compares the artifact with the interpreter and the source library (when
installed) on edge rows plus the rows of DATA. Exits 1 on a mismatch, listing
the first differing rows and where their paths through the trees part.

\b
Examples:
  ltrcompile verify model.txt build/ranker
  ltrcompile verify model.txt build/ranker test.letor --json

{exit_codes_help('verify')}
""",
)
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.argument("artifact", type=click.Path(exists=True, path_type=str))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=FormatType(), default="auto", show_default=True, help="Model format.")
@click.option("--num-iteration", type=NUM_ITERATION, help=NUM_ITERATION_HELP + "; default here: as the artifact was built.")
@click.option("--atol", type=float, default=1e-6, show_default=True, help="Largest accepted |difference| of scores.")
@click.option("--index-base", type=click.Choice(["auto", "0", "1"]), default="auto", show_default=True, help="svmlight feature index base.")
@click.option("--no-native", is_flag=True, help="Skip the comparison with the source library (the verdict is then incomplete).")
@click.option("--accept-incomplete", is_flag=True, help="Exit 0 when the verdict is incomplete (a reference could not run).")
@_json_option("Machine-readable report on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_common
def verify_command(
    model: str, artifact: str, data: str | None, fmt: str, num_iteration: Any, atol: float,
    index_base: str, no_native: bool, accept_incomplete: bool, json_mode: bool, quiet: bool,
) -> int:
    from . import pipeline

    console = Console(quiet=quiet, json_mode=json_mode)
    if atol < 0:
        raise CliError(f"--atol must be >= 0, got {atol}")
    if not os.path.isdir(artifact):
        raise CliError(f"artifact {artifact}: not a directory (expected an artifact written by compile-model)")
    art_ens, scorer = load_artifact(artifact)
    record = read_build_record(artifact)
    opts = record.get("options") or {}
    if num_iteration is None:
        num_iteration = opts["num_iteration"] if "num_iteration" in opts else pipeline.reproduce_num_iteration(art_ens)
    with console.phase(f"reading {model}"):
        loaded = load_source(model, fmt=fmt, num_iteration=num_iteration)
    ens, notes = loaded.ensemble, list(loaded.notes)
    if opts.get("feature_names") and art_ens.feature_names and ens.n_features == art_ens.n_features:
        _set_names(ens, art_ens.feature_names, opts["feature_names"])  # as compile-model named them
    for n in notes:
        console.note(n)
    if record.get("model_sha256") and os.path.isfile(model) and record["model_sha256"] != _sha256(model):
        notes.append(f"{model} is not the file the artifact was compiled from ({record.get('model')})")
        console.note(notes[-1])
    if ens.digest() != art_ens.digest():
        notes.append(
            "the artifact was compiled from a different IR than this model reads as "
            f"(digest {art_ens.digest()[:12]} vs {ens.digest()[:12]})"
        )
        console.note(notes[-1])
    if ens.n_features != art_ens.n_features:
        raise ParityMismatch(
            f"artifact {artifact} expects {art_ens.n_features} features but {model} has {ens.n_features}"
        )
    ds = _read_data(data, ens, index_base) if data else None
    with console.phase("verifying parity"):
        report = pipeline.check(
            loaded, scorer, pipeline.VerifyOptions(data=ds, atol=atol, native=not no_native)
        )
    decision = pipeline.decide(report, accept_incomplete)
    code = EXIT_OK if decision.accepted else EXIT_MISMATCH if decision.verdict == pipeline.MISMATCH else EXIT_INCOMPLETE
    result = {
        "ok": decision.accepted,
        "verdict": decision.verdict,
        "exit_code": code,
        "model": {"path": os.path.abspath(model), **model_facts(ens)},
        "artifact": os.path.abspath(artifact),
        "notes": notes,
        "parity": report.to_dict(),
    }
    if json_mode:
        console.emit_json(result)
    console.out(report.format())
    if not decision.accepted:
        msg = str(decision.reason) + ("; pass --accept-incomplete to accept it" if code == EXIT_INCOMPLETE else "")
        if json_mode:
            # the JSON report is already on stdout; only the one-line error remains
            raise _Quiet(code, msg)
        raise ParityMismatch(msg, None, code)
    return EXIT_OK


class _Quiet(CliError):
    """An error whose JSON result was already printed."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message, code)




@cli.command(
    "export",
    help=f"""Convert MODEL into another engine's format (exact, or refused).

\b
--to es      Elasticsearch trained model (PUT _ml/trained_models body)
--to o19s    o19s / OpenSearch LTR plugin (_createmodel body)
--to ranklib RankLib text model

A construct the target cannot reproduce exactly is refused (exit 3) unless
--approximate is given, which exports an approximation and lists the
differences as warnings. One difference is accepted by default: a LightGBM or
scikit-learn model (several trees added in plain double) exported to --to es,
which adds the same double terms with a compensated sum (a few ulps of the
score; --exact refuses it).

Every export proves itself: the written file is read back by ltrcompile's
reader for that format and scored against MODEL on MODEL's edge rows; the
max |Δ| is printed. An export that claimed to be exact and does not read
back bit for bit exits 1. A warning says when the target reads entries absent
from a sparse (svmlight) row differently from MODEL (0 vs missing).

\b
Examples:
  ltrcompile export model.txt --to es -o model.es.json
  ltrcompile export model.json --to o19s --name my_ranker -o model.o19s.json
  ltrcompile export model.txt --to ranklib --approximate > model.ranklib.txt

{exit_codes_help('export')}
""",
)
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--to", "target", required=True, type=click.Choice(["es", "o19s", "ranklib"]), help="Target format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Output path: the exported model file (default or -: stdout).")
@click.option("--name", help="Model name (o19s: the name in the _createmodel body).")
@click.option("--approximate", is_flag=True, help="Export an approximation where the target cannot be exact.")
@click.option("--exact", "strict", is_flag=True, help="Refuse every difference, also the accepted double-sum order of --to es.")
@click.option("--format", "fmt", type=FormatType(), default="auto", show_default=True, help="Model format.")
@click.option("--num-iteration", type=NUM_ITERATION, help=NUM_ITERATION_HELP + ".")
@click.option("--feature-names", type=click.Path(exists=True, dir_okay=False), help="File with one feature name per line.")
@click.option("--featureset", "featureset", type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="es: o19s feature set JSON (_featureset body or GET response) whose query templates become "
              "inference_config.learning_to_rank.feature_extractors (default: the set a plugin model file carries).")
@click.option("--placeholder-extractors", is_flag=True,
              help="es: write a match_none placeholder extractor for each feature without a convertible template.")
@_common
def export_command(
    model: str, target: str, output: str | None, name: str | None, approximate: bool, fmt: str,
    num_iteration: Any, feature_names: str | None, featureset: str | None,
    placeholder_extractors: bool, strict: bool,
) -> int:
    import warnings

    try:
        from .exporters import export_model
    except ImportError as exc:
        if exc.name and exc.name.startswith("ltrcompile.exporters"):
            raise CliError("the exporters (ltrcompile.exporters) are not part of this installation", EXIT_ENVIRONMENT) from None
        raise
    ctx = click.get_current_context()
    refuse_unless(ctx, "name", target == "o19s",
                  f"it names the model in an o19s _createmodel body; --to {target} has no model name")
    refuse_unless(ctx, "strict", not approximate, "--approximate asks for the opposite")
    if output and output != "-":
        parent = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise CliError(f"output {output}: directory {parent} does not exist or is not writable")
    ens, notes = load_for_cli(model, fmt=fmt, num_iteration=num_iteration, feature_names_file=feature_names)
    for n in notes:
        click.echo(f"note: {n}", err=True)
    opts: dict[str, Any] = {"exact": not approximate}
    if target == "es" and not strict:
        opts["accept_sum_order"] = True
    if name is not None:
        opts["name"] = name
    opts.update(_es_extractor_opts(target, model, featureset, placeholder_extractors))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            doc = export_model(ens, to=target, **opts)
        except UnsupportedModelError as exc:
            msg = str(exc).replace("pass exact=False", "pass --approximate")
            if strict and "compensated sum" in msg:
                msg = msg.replace("(pass --approximate", "(drop --exact to accept Elasticsearch's summation order, or pass --approximate")
            raise CliError(msg if exc.path else f"file {model}, {msg}", EXIT_UNSUPPORTED) from exc
        except (ValueError, TypeError) as exc:
            if isinstance(exc, LtrCompileError):
                raise
            raise CliError(f"file {model}: cannot export to {target}: {exc}") from exc
    for w in caught:
        click.echo(f"warning: {' '.join(str(w.message).split())}", err=True)
    if isinstance(doc, bytes):
        text = doc.decode("utf-8")
    elif isinstance(doc, str):
        text = doc
    else:
        text = json.dumps(doc, indent=2)
    if not text.endswith("\n"):
        text += "\n"
    if output is None or output == "-":
        click.echo(text, nl=False)
    else:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise CliError(f"output {output}: cannot write: {exc.strerror or exc}") from None
        click.echo(f"wrote {output} ({target}{', approximate' if caught else ''})", err=True)
    _prove_export(ens, target, text, output, exact_claimed=not caught)
    return EXIT_OK


def _es_extractor_opts(target: str, model: str, featureset: str | None, placeholders: bool) -> dict[str, Any]:
    """--featureset / --placeholder-extractors -> the es exporter's options (es only)."""
    if target != "es":
        if featureset or placeholders:
            raise CliError(f"--featureset and --placeholder-extractors apply to --to es only (not {target})")
        return {}
    from .exporters import es_ltr_config

    if featureset:
        return {"featureset": es_ltr_config.load_featureset(featureset), "placeholder_extractors": placeholders}
    fs = es_ltr_config.featureset_in_model_file(model)
    if fs is not None:
        click.echo(f"note: feature extractors from the feature set {fs.name!r} in {model}", err=True)
        return {"featureset": fs, "placeholder_extractors": placeholders}
    cfg = None if placeholders else es_ltr_config.inference_config_in_model_file(model)
    if cfg is not None:
        click.echo(f"note: inference_config kept as {model} has it", err=True)
        return {"inference_config": cfg}
    if placeholders:
        raise CliError("--placeholder-extractors needs a feature set (--featureset FILE)")
    click.echo("note: no feature set (--featureset): inference_config.learning_to_rank gets no feature_extractors", err=True)
    return {}




def _prove_export(ens: Any, target: str, text: str, output: str | None, *, exact_claimed: bool) -> None:
    """Read the written export back (the file itself when there is one) and print its measured error;
    an export that claimed exactness and does not read back bit for bit is a failure (exit 1)."""
    from .exporters.roundtrip import check_export

    if output is not None and output != "-":
        with open(output, encoding="utf-8") as fh:
            text = fh.read()
    doc: Any = text if target == "ranklib" else json.loads(text)
    rt = check_export(ens, doc, target)
    click.echo(rt.summary(), err=True)
    warning = rt.absent_warning()
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if exact_claimed and not rt.bit_identical:
        raise CliError(
            f"export to {target} was meant to be exact but reads back with max |Δ| {rt.max_abs_diff:.3g} "
            f"on {rt.n_different} edge rows (please report it)",
            EXIT_MISMATCH,
        )


# ============================================================================ serve, bench
def _unavailable(name: str, why: str) -> click.Command:
    """A stand-in for a subcommand whose optional part is not installed: ``-h`` says so (exit 0),
    running it fails with the environment exit code."""

    def callback(**_: Any) -> int:
        raise CliError(why, EXIT_ENVIRONMENT)

    return click.Command(
        name, callback=callback, help=f"Not available in this installation: {why}",
        context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True},
    )


def _load_serve() -> click.Command:
    try:
        from .service.cli import serve_command
    except ImportError as exc:
        return _unavailable(
            "serve",
            f"the rescoring service needs its extra ({one_line(exc)}); install it with "
            "pip install 'ltrcompile[service]'",
        )
    return serve_command


def _load_bench() -> click.Command:
    import importlib

    # the benchmarks package lives in a source checkout, next to the ltrcompile package
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "benchmarks" / "__init__.py").exists():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            break
    try:
        mod = importlib.import_module("benchmarks.__main__")
    except ImportError as exc:
        if exc.name not in ("benchmarks", "benchmarks.__main__", None):
            return _unavailable("bench", f"the benchmarks need {exc.name} (pip install 'ltrcompile[bench]')")
        return _unavailable(
            "bench",
            "the benchmarks package is not importable: run from a source checkout of ltrcompile "
            "(python -m benchmarks)",
        )
    return mod.command


class _LazyCommand(click.Command):
    """A subcommand listed with a fixed one-line help; its real command (optional code) is
    imported only when it is run or asked for its help."""

    def __init__(self, name: str, short_help: str, loader: Callable[[], click.Command]) -> None:
        super().__init__(name, short_help=short_help, help=short_help, context_settings=CONTEXT)
        self._loader = loader
        self._real: click.Command | None = None

    def real(self) -> click.Command:
        if self._real is None:
            self._real = self._loader()
        return self._real

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self.real().make_context(info_name, args, parent=parent, **extra)


_LAZY_COMMANDS = {
    "serve": ("Run the rescoring service (HTTP, Elasticsearch rescore).", _load_serve),
    "bench": ("Run the benchmark suite (source checkout only).", _load_bench),
}


# ============================================================================ entry points
def main(argv: list[str] | None = None) -> int:
    """``ltrcompile`` console script."""
    return _run(cli, argv, "ltrcompile")


def compile_model_main(argv: list[str] | None = None) -> int:
    """``compile-model`` console script."""
    return _run(compile_model_command, argv, "compile-model")


if __name__ == "__main__":
    sys.exit(main())
