"""Parity verification: prove that a compiled scorer scores like the model it was compiled from.

One call, one report::

    from ltrcompile.verify import verify
    report = verify(ens, scorer, data=rows, source="model.txt")
    if not report.ok:
        print(report.format())          # human summary, first differing rows with leaf paths
    json.dumps(report.to_dict())        # machine-readable

What is compared, on the model's edge rows (:func:`ltrcompile.edgecases.edge_rows`) plus the given
data rows:

* the candidate (``scorer``; the interpreter when ``scorer`` is None) against the reference
  interpreter (``Ensemble.predict``) -- raw margins, transformed outputs and leaf ids;
* the candidate against the source library's own predict, when the library is installed and the
  source can be loaded by it: XGBoost / LightGBM model files (loaded from the file, with the same
  iteration range as the IR), in-memory boosters (LightGBM: reloaded from its model string, as a
  saved file would be), unpickled scikit-learn / XGBoost / LightGBM estimators. RankLib,
  Elasticsearch and dump formats have no native predictor in Python; the report says so.

Values agree when ``|a - b| <= atol`` (NaN equals NaN, inf equals inf of the same sign); leaf ids
must be identical. The report's ``verdict`` is one of three, never a silent pass:

* ``verified`` -- every applicable reference was compared and agrees: the interpreter, and the
  source library whenever the format has one (RankLib, Elasticsearch, dumps and IR files have no
  Python predictor: not applicable, said in a note);
* ``incomplete`` -- nothing disagrees, but a reference that applies could not run (library not
  installed, failed to load or predict, no source given, native comparison switched off); each is
  listed in ``skipped`` with its reason;
* ``mismatch`` -- a comparison that ran disagrees.

The library is given its input the way it wants it: XGBoost a ``DMatrix`` with the booster's
``feature_names``/``feature_types`` (categorical too), estimators fitted on a DataFrame a DataFrame
with their ``feature_names_in_`` and pandas categoricals rebuilt from the codes.
Nothing here mutates anything: callers decide what a verdict means (the CLI's exit codes,
:mod:`ltrcompile.pipeline`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .edgecases import edge_rows
from .inputs import model_matrix
from .ir import Ensemble, Op

__all__ = [
    "DEFAULT_ATOL",
    "INCOMPLETE",
    "MISMATCH",
    "VERDICTS",
    "VERIFIED",
    "Check",
    "NativeModel",
    "ParityReport",
    "native_model",
    "verify",
]

VERIFIED = "verified"
INCOMPLETE = "incomplete"
MISMATCH = "mismatch"
VERDICTS = (VERIFIED, INCOMPLETE, MISMATCH)

DEFAULT_ATOL = 1e-6
DEFAULT_MAX_ROWS = 20_000
DEFAULT_EDGE_ROWS = 10_000
MAX_EXAMPLES = 5
MAX_TREES_PER_EXAMPLE = 3


class NativeUnavailable(Exception):
    """The source library cannot score this source; the message says why (shown to users).

    Makes the verdict ``incomplete``: a reference that applies did not run."""


class NoNativeLibrary(NativeUnavailable):
    """The source format has no Python predictor at all (RankLib, Elasticsearch, dumps, IR files):
    the native reference does not apply, so its absence does not make the verdict incomplete."""


# ============================================================================ report
@dataclass
class Check:
    """One comparison: ``candidate`` vs ``reference`` on one kind of output.

    ``what`` is ``raw`` (margins), ``output`` (after the transform) or ``leaf`` (leaf ids).
    ``max_abs_diff`` has one entry per output column (empty for leaves); ``mismatched_rows`` counts
    rows beyond ``atol`` (any differing leaf for ``leaf``); ``examples`` are the first such rows.
    """

    candidate: str
    reference: str
    what: str
    rows: int
    ok: bool
    bit_identical: bool
    max_abs_diff: list[float] = field(default_factory=list)
    mismatched_rows: int = 0
    skipped_rows: int = 0
    note: str | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.candidate} vs {self.reference} ({self.what})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "what": self.what,
            "ok": self.ok,
            "rows": self.rows,
            "bit_identical": self.bit_identical,
            "max_abs_diff": [_jsonable(v) for v in self.max_abs_diff],
            "mismatched_rows": self.mismatched_rows,
            "skipped_rows": self.skipped_rows,
            "note": self.note,
            "examples": _jsonable(self.examples),
        }


@dataclass
class ParityReport:
    """Result of :func:`verify`. ``verdict`` is ``verified``/``incomplete``/``mismatch``; ``ok`` is
    True when no comparison that ran disagrees (and one ran); ``skipped`` lists the references
    that apply but did not run (why the verdict is incomplete); everything else explains it."""

    ok: bool
    atol: float
    rows_checked: int
    edge_rows: int
    data_rows: int
    checks: list[Check]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data_file: str | None = None
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if not self.ok and self.checks:
            return MISMATCH
        if self.skipped or not self.checks:
            return INCOMPLETE
        return VERIFIED

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def max_abs_diff(self) -> dict[str, list[float]]:
        """``"compiled vs interpreter (raw)" -> [max |d| per output]`` for value checks."""
        return {c.title: c.max_abs_diff for c in self.checks if c.what != "leaf"}

    @property
    def first_differences(self) -> list[dict[str, Any]]:
        return [e for c in self.failures for e in c.examples][:MAX_EXAMPLES]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "atol": self.atol,
            "rows_checked": self.rows_checked,
            "edge_rows": self.edge_rows,
            "data_rows": self.data_rows,
            "data_file": self.data_file,
            "checks": [c.to_dict() for c in self.checks],
            "skipped": list(self.skipped),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }

    def format(self, *, examples: bool = True) -> str:
        """A short human summary (several lines; first differing rows when not ok)."""
        src = f" + {self.data_rows} from {os.path.basename(self.data_file)}" if self.data_file else ""
        lines = [
            f"parity {self.verdict.upper()} (atol {self.atol:g}) on "
            f"{self.rows_checked} rows ({self.edge_rows} edge rows{src})"
        ]
        for c in self.checks:
            if c.what == "leaf":
                res = "identical" if c.ok else f"{c.mismatched_rows} rows differ"
            else:
                d = ", ".join(_fmt(v) for v in c.max_abs_diff) or "-"
                res = f"max|d| {d}" + (" (bit-identical)" if c.bit_identical else "")
                if not c.ok:
                    res += f"; {c.mismatched_rows} rows beyond atol"
            extra = f" [{c.skipped_rows} rows not comparable]" if c.skipped_rows else ""
            mark = "ok  " if c.ok else "FAIL"
            lines.append(f"  {mark} {c.title:<44} {res}{extra}")
            if c.note:
                lines.append(f"       {c.note}")
        for s in self.skipped:
            lines.append(f"  NOT RUN {s}")
        for n in self.notes:
            lines.append(f"  note {n}")
        if examples and not self.ok:
            shown = [c for c in self.failures if c.what != "leaf"][:1]
            shown += [c for c in self.failures if c.what == "leaf"][:1]
            printed: set[int] = set()
            for c in shown:
                for e in c.examples[:3]:
                    if c.what == "leaf" and e["row"] in printed:
                        continue  # its leaf paths were shown with its values
                    printed.add(e["row"])
                    lines.append(f"  {c.title}: {e['origin']}")
                    if "candidate" in e:
                        lines.append(
                            f"      {c.candidate} {e['candidate']}  {c.reference} {e['reference']}"
                            f"  |d| {_fmt(e['abs_diff'])}"
                        )
                    for t in e.get("trees", []):
                        lines.append(f"      tree {t['tree']}: {t['summary']}")
                    if e.get("leaves_agree"):
                        lines.append(
                            "      every tree reaches the same leaf: the difference is in the leaf "
                            "values, the accumulation or the output transform"
                        )
        return "\n".join(lines)


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    if isinstance(x, float | np.floating):
        v = float(x)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return x


# ============================================================================ native predictors
@dataclass
class NativeModel:
    """The source library's own predictor for a model, with the IR's iteration range.

    Each function takes a float matrix and returns ``(values, rows_used)``: the library may reject
    some rows (XGBoost's DMatrix refuses inf, scikit-learn refuses NaN/inf); those are left out of
    the comparison and counted. ``leaf`` and ``output`` may be None.
    """

    name: str
    raw: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None
    output: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    leaf: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    note: str | None = None


def _all_rows(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def run(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(fn(X)), np.ones(X.shape[0], bool)

    return run


def _lib_version(mod: str) -> str:
    import importlib

    try:
        return str(importlib.import_module(mod).__version__)
    except Exception:  # noqa: BLE001 - version is cosmetic
        return "?"


def _lightgbm_native(booster: Any, ens: Ensemble) -> NativeModel:
    rng = ens.provenance.iteration_range
    start, n_iter = (0, None) if rng is None else (rng[0], rng[1] - rng[0])
    if n_iter is not None and n_iter <= 0:
        raise NativeUnavailable("the IR keeps no iterations; LightGBM would read 0 as 'all'")
    kw: dict[str, Any] = {"num_iteration": n_iter, "start_iteration": start}
    return NativeModel(
        name=f"lightgbm {_lib_version('lightgbm')}",
        raw=_all_rows(lambda X: booster.predict(X, raw_score=True, **kw)),
        output=_all_rows(lambda X: booster.predict(X, **kw)),
        leaf=_all_rows(lambda X: booster.predict(X, pred_leaf=True, **kw)),
    )


def _xgboost_native(booster: Any, ens: Ensemble) -> NativeModel:
    import xgboost

    prov = ens.provenance
    rng = prov.iteration_range or (0, 0)  # None: gblinear, which has no rounds
    dart = prov.get("booster") == "dart"
    try:
        booster.set_param({"nthread": 1})
    except Exception:  # noqa: BLE001 - a read-only booster still predicts
        pass
    f32max = float(np.finfo(np.float32).max)
    # the booster's own feature names and types (a model trained from a DataFrame refuses a
    # DMatrix without them; 'c' columns are categorical, their values the category codes)
    types = booster.feature_types
    described: dict[str, Any] = {"feature_names": booster.feature_names, "feature_types": types}
    if types and "c" in types:
        described["enable_categorical"] = True

    def dmatrix_rows(X: np.ndarray) -> np.ndarray:
        # DMatrix refuses +-inf and values that overflow float32; NaN is missing
        with np.errstate(invalid="ignore"):
            big = np.isinf(X) | (np.abs(X) > f32max)
        return ~big.any(axis=1)

    def via_dmatrix(X: np.ndarray, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
        ok = dmatrix_rows(X)
        out: np.ndarray | None = None
        if ok.any():
            d = xgboost.DMatrix(X[ok], missing=np.nan, nthread=1, **described)
            got = np.asarray(booster.predict(d, iteration_range=rng, **kw))
            out = np.zeros((X.shape[0],) + got.shape[1:], got.dtype)
            out[ok] = got
        else:
            out = np.zeros(X.shape[0])
        if not dart and not ok.all() and kw.get("pred_leaf") is not True:
            # inplace_predict takes inf; it equals predict(DMatrix) except for DART
            ptype = "margin" if kw.get("output_margin") else "value"
            got = np.asarray(booster.inplace_predict(X[~ok], iteration_range=rng, predict_type=ptype, missing=np.nan))
            out = out.astype(np.result_type(out, got))
            out[~ok] = got
            ok = np.ones_like(ok)
        return out, ok

    return NativeModel(
        name=f"xgboost {_lib_version('xgboost')}",
        raw=lambda X: via_dmatrix(X, output_margin=True),
        output=lambda X: via_dmatrix(X),
        leaf=lambda X: via_dmatrix(X, pred_leaf=True),
    )


def _sklearn_native(est: Any, ens: Ensemble) -> NativeModel:
    """A fitted scikit-learn estimator: ``decision_function`` (raw), ``predict_proba`` or
    ``predict`` (output), ``apply`` (leaf ids, trees/forests/GB).

    scikit-learn refuses NaN for estimators without missing-value support and always refuses inf /
    values beyond float32; refused rows are left out of the comparison (and counted).
    """
    out_cols = int(np.asarray(ens.predict(np.zeros((1, ens.n_features)))).reshape(1, -1).shape[1])
    to_input, representable = _sklearn_input(est, ens)

    def tolerant(fn: Callable[[Any], Any]) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        def run(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            X = np.asarray(X, np.float64)
            usable = representable(X)
            if usable.all():
                try:
                    return np.asarray(fn(to_input(X))), np.ones(X.shape[0], bool)
                except ValueError:
                    pass
            with np.errstate(invalid="ignore", over="ignore"):
                x32 = X.astype(np.float32)
            finite = np.isfinite(x32).all(axis=1)
            no_inf = ~np.isinf(x32).any(axis=1)  # NaN but no inf: some estimators accept NaN
            out: np.ndarray | None = None
            ok = np.zeros(X.shape[0], bool)
            tries = [usable & finite, usable & no_inf & ~finite]
            for mask in tries if usable.all() else [usable, *tries]:
                mask = mask & ~ok
                if not mask.any():
                    continue
                try:
                    got = np.asarray(fn(to_input(X[mask])))
                except ValueError:
                    continue
                if out is None:
                    out = np.zeros((X.shape[0],) + got.shape[1:], got.dtype)
                out[mask] = got
                ok |= mask
            return (np.zeros(X.shape[0]) if out is None else out), ok

        return run

    def proba(X: np.ndarray) -> np.ndarray:
        p = np.asarray(est.predict_proba(X))
        return p[:, 1] if p.ndim == 2 and p.shape[1] == 2 and out_cols == 1 else p

    def leaves(X: np.ndarray) -> np.ndarray:
        a = np.asarray(est.apply(X))
        return a.reshape(a.shape[0], -1)  # GB: (n, stages, K) -> stage-major, the IR's tree order

    name = f"scikit-learn {_lib_version('sklearn')} {type(est).__name__}"
    # raw margins equal the library's output when nothing transforms them
    identity = ens.transform == "identity"
    raw = output = None
    if hasattr(est, "predict_proba"):
        output = tolerant(proba)
        if hasattr(est, "decision_function"):
            raw = tolerant(est.decision_function)
        elif identity:
            raw = output
    else:
        output = tolerant(est.predict)
        if identity:
            raw = output
    leaf = tolerant(leaves) if hasattr(est, "apply") else None
    return NativeModel(name=name, raw=raw, output=output, leaf=leaf)


def _sklearn_input(
    est: Any, ens: Ensemble
) -> tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], np.ndarray]]:
    """``(to_input, representable)`` for an estimator: a DataFrame with its ``feature_names_in_``
    (pandas categoricals rebuilt from the category codes, with the labels it was fitted on) when
    it was fitted on one, else the matrix itself. ``representable`` marks rows the estimator's input
    can express (a code that is no category of a pandas categorical cannot)."""
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        return (lambda X: X), (lambda X: np.ones(X.shape[0], bool))
    import pandas as pd

    cats = ens.feature_categories or {}
    names = [str(n) for n in names]

    def codes_ok(v: np.ndarray, k: int) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.isnan(v) | ((v == np.trunc(v)) & (v >= 0) & (v < k))

    def representable(X: np.ndarray) -> np.ndarray:
        ok = np.ones(X.shape[0], bool)
        for j, labels in cats.items():
            ok &= codes_ok(X[:, j], len(labels))
        return ok

    def to_input(X: np.ndarray) -> Any:
        cols: dict[str, Any] = {}
        for j, name in enumerate(names):
            v = X[:, j]
            if j in cats:
                labels = cats[j]
                valid = codes_ok(v, len(labels)) & ~np.isnan(v)
                codes = np.where(valid, v, -1).astype(np.int64)  # -1: NaN (missing)
                cols[name] = pd.Categorical.from_codes(codes, categories=list(labels))
            else:
                cols[name] = v
        return pd.DataFrame(cols, columns=names)

    return to_input, representable


def _from_object(obj: Any, ens: Ensemble) -> NativeModel:
    top = type(obj).__module__.split(".")[0]
    mro = {c.__module__.split(".")[0] + "." + c.__name__ for c in type(obj).__mro__}
    if "lightgbm.Booster" in mro or "lightgbm.LGBMModel" in mro:
        import lightgbm

        booster = obj.booster_ if "lightgbm.LGBMModel" in mro else obj
        # compare with the model as a saved file would reload it (text round trip)
        return _lightgbm_native(lightgbm.Booster(model_str=booster.model_to_string(num_iteration=-1)), ens)
    if "xgboost.Booster" in mro or "xgboost.XGBModel" in mro:
        booster = obj.get_booster() if "xgboost.XGBModel" in mro else obj
        return _xgboost_native(booster.copy(), ens)
    if top == "sklearn" or hasattr(obj, "fit") and hasattr(obj, "predict"):
        return _sklearn_native(obj, ens)
    raise NativeUnavailable(f"no native predictor for a {type(obj).__qualname__}")


def _native_library(path: str, ens: Ensemble) -> str:
    """Which library scores this file natively (``lightgbm``, ``xgboost``, ``pickle``), or raise
    :class:`NativeUnavailable` saying why there is none. Imports nothing."""
    import importlib.util

    fmt = str(ens.provenance.get("format", ""))
    lib = None
    if fmt == "lightgbm-text":
        lib = "lightgbm"
    elif fmt in ("xgboost-json", "xgboost-ubj"):
        lib = "xgboost"
    elif fmt in ("lightgbm-json", "xgboost-dump"):
        raise NoNativeLibrary(
            f"{fmt.split('-')[0]} cannot load its own dump output ({fmt}); compared with the interpreter only"
        )
    elif fmt.startswith("ranklib"):
        raise NoNativeLibrary("RankLib is a Java program with no Python library; compared with the interpreter only")
    elif fmt.startswith(("es-", "elasticsearch", "o19s", "opensearch")):
        raise NoNativeLibrary("Elasticsearch models have no Python predictor; compared with the interpreter only")
    elif fmt == "ltrcompile-ir":
        raise NoNativeLibrary("the source is an ltrcompile IR file: no library to compare with")
    elif "pickle" in fmt or "joblib" in fmt or "sklearn" in fmt:
        return "pickle"
    if lib is None:
        raise NoNativeLibrary(f"no native predictor for the {fmt or 'unknown'} format")
    if importlib.util.find_spec(lib) is None:
        raise NativeUnavailable(
            f"{lib} is not installed, so the model was not compared with its own library (pip install {lib})"
        )
    return lib


def native_model(source: Any, ens: Ensemble) -> NativeModel:
    """The source library's predictor for ``source`` (a model path or in-memory model), in this
    process. Raises :class:`NativeUnavailable` with a user-facing reason when there is none."""
    if isinstance(source, Ensemble):
        raise NoNativeLibrary("the source is an ltrcompile IR: no library to compare with")
    if not isinstance(source, str | os.PathLike):
        return _from_object(source, ens)
    path = os.fspath(source)
    lib = _native_library(path, ens)
    if lib == "lightgbm":
        import lightgbm

        return _lightgbm_native(lightgbm.Booster(model_file=path), ens)
    if lib == "xgboost":
        import xgboost

        return _xgboost_native(xgboost.Booster(model_file=path), ens)
    try:
        import joblib

        obj = joblib.load(path)
    except ImportError:
        import pickle

        with open(path, "rb") as fh:
            obj = pickle.load(fh)  # noqa: S301 - the user's own model, already unpickled by the frontend
    return _from_object(obj, ens)


def _native_predictions(nat: NativeModel, Xs: list[np.ndarray]) -> dict[str, Any]:
    """``what -> (values, rows_used)``, None (no such prediction) or an error string."""
    out: dict[str, Any] = {}
    for what in ("raw", "output", "leaf"):
        fn = getattr(nat, what)
        if fn is None:
            out[what] = None
            continue
        try:
            parts = [fn(X) for X in Xs]
            out[what] = (
                np.concatenate([np.asarray(p[0]) for p in parts]),
                np.concatenate([np.asarray(p[1], bool) for p in parts]),
            )
        except Exception as exc:  # noqa: BLE001 - the library failed to run: reported, not fatal
            out[what] = f"{type(exc).__name__}: {exc}"
    return out


_WORKER = "import sys; from ltrcompile.verify import _worker_main; sys.exit(_worker_main(sys.argv[1:]))"


def _import_native_library(path: str, ens: Ensemble) -> None:
    """Import the library that will score ``path`` (nothing when there is none or it is absent)."""
    import importlib

    try:
        lib = _native_library(path, ens)
    except NativeUnavailable:
        return
    for mod in ("sklearn", "joblib") if lib == "pickle" else (lib,):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass


def _worker_main(argv: list[str]) -> int:
    """Child process of :func:`_isolated_predictions`: load the source with its library, predict."""
    import json

    from . import memlimit

    budget = memlimit.lift()  # a limited parent's budget, re-applied below after the library import
    d = argv[0]
    with open(os.path.join(d, "in.json"), encoding="utf-8") as fh:
        meta = json.load(fh)
    with open(os.path.join(d, "ir.json"), encoding="utf-8") as fh:
        ens = Ensemble.from_json(fh.read())
    if budget > 0:
        _import_native_library(meta["source"], ens)
        memlimit.rebudget(budget)
    with np.load(os.path.join(d, "in.npz")) as z:
        Xs = [z[f"x{i}"] for i in range(int(meta["blocks"]))]
    info: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    try:
        nat = native_model(meta["source"], ens)
    except NativeUnavailable as exc:
        info["unavailable"] = str(exc)
        info["not_applicable"] = isinstance(exc, NoNativeLibrary)
    else:
        info.update(name=nat.name, note=nat.note, results={})
        for what, r in _native_predictions(nat, Xs).items():
            if r is None or isinstance(r, str):
                info["results"][what] = r
            else:
                arrays[f"{what}_values"], arrays[f"{what}_used"] = r
                info["results"][what] = "ok"
    np.savez(os.path.join(d, "out.npz"), **arrays)
    with open(os.path.join(d, "out.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    return 0


def _isolated_predictions(path: str, ens: Ensemble, Xs: list[np.ndarray]) -> tuple[str, str | None, dict[str, Any]]:
    """Native predictions computed in a child process, so that a library that aborts on a file
    (LightGBM's ``[Fatal]`` parse errors terminate the process) cannot take the caller down.
    Returns ``(name, note, results)``; raises :class:`NativeUnavailable` when the child fails."""
    import json
    import signal
    import subprocess
    import sys
    import tempfile

    lib = _native_library(path, ens)
    with tempfile.TemporaryDirectory(prefix="ltrc-native-") as d:
        with open(os.path.join(d, "ir.json"), "w", encoding="utf-8") as fh:
            fh.write(ens.to_json())
        with open(os.path.join(d, "in.json"), "w", encoding="utf-8") as fh:
            json.dump({"source": os.path.abspath(path), "blocks": len(Xs)}, fh)
        np.savez(os.path.join(d, "in.npz"), **{f"x{i}": X for i, X in enumerate(Xs)})
        proc = subprocess.run([sys.executable, "-c", _WORKER, d], capture_output=True, text=True)
        out_json = os.path.join(d, "out.json")
        if proc.returncode != 0 or not os.path.exists(out_json):
            if proc.returncode < 0:
                try:
                    how = f"was killed by {signal.Signals(-proc.returncode).name}"
                except ValueError:
                    how = f"was killed by signal {-proc.returncode}"
            else:
                how = f"exited with status {proc.returncode}"
            last = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
            detail = f": {last[-1]}" if last else ""
            if last and "terminate called" in last[-1] and len(last) > 1:
                detail = f": {last[-2]}"
            raise NativeUnavailable(
                f"{lib} could not score {os.path.basename(path)} (its process {how}{detail[:300]}); "
                "the library that should read this file cannot load it"
            )
        with open(out_json, encoding="utf-8") as fh:
            info = json.load(fh)
        if "unavailable" in info:
            cls = NoNativeLibrary if info.get("not_applicable") else NativeUnavailable
            raise cls(info["unavailable"])
        results: dict[str, Any] = {}
        with np.load(os.path.join(d, "out.npz")) as z:
            for what, r in info["results"].items():
                results[what] = (z[f"{what}_values"], z[f"{what}_used"]) if r == "ok" else r
    return info["name"], info.get("note"), results


# ============================================================================ comparison
def _as2d(a: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(a)
    return a.reshape(n, -1)


def _value_check(
    cand: str, ref: str, what: str, a: np.ndarray, b: np.ndarray, used: np.ndarray, atol: float
) -> tuple[Check, np.ndarray]:
    """Compare float outputs on the rows in ``used``; returns the check and per-row |d| (n,)."""
    n = used.size
    a2 = _as2d(np.asarray(a, np.float64), n)
    b2 = _as2d(np.asarray(b, np.float64), n)
    row_d = np.zeros(n)
    if a2.shape != b2.shape:
        return (
            Check(cand, ref, what, int(used.sum()), False, False,
                  note=f"output shapes differ: {cand} {tuple(np.shape(a))}, {ref} {tuple(np.shape(b))}"),
            row_d,
        )
    a2, b2 = a2[used], b2[used]
    same = (a2 == b2) | (np.isnan(a2) & np.isnan(b2))
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a2 - b2)
    d[same] = 0.0
    d[np.isnan(d)] = np.inf
    bad = (d > atol).any(axis=1) if d.size else np.zeros(0, bool)
    row_d[used] = d.max(axis=1) if d.shape[1] else 0.0
    check = Check(
        cand,
        ref,
        what,
        rows=int(used.sum()),
        ok=not bad.any(),
        bit_identical=bool(same.all()),
        max_abs_diff=[float(x) for x in (d.max(axis=0) if d.shape[0] else np.zeros(d.shape[1]))],
        mismatched_rows=int(bad.sum()),
        skipped_rows=int(n - used.sum()),
    )
    return check, np.where(row_d > atol, row_d, 0.0)


def _leaf_check(
    cand: str, ref: str, a: np.ndarray, b: np.ndarray, used: np.ndarray
) -> tuple[Check, np.ndarray]:
    n = used.size
    a2, b2 = _as2d(a, n), _as2d(b, n)
    bad_rows = np.zeros(n, bool)
    if a2.shape != b2.shape:
        return (
            Check(cand, ref, "leaf", int(used.sum()), True, False,
                  note=f"leaf layouts differ ({a2.shape[1]} vs {b2.shape[1]} per row); not compared"),
            bad_rows,
        )
    diff = (a2 != b2) & used[:, None]
    bad_rows = diff.any(axis=1)
    check = Check(
        cand, ref, "leaf", rows=int(used.sum()), ok=not bad_rows.any(),
        bit_identical=not bad_rows.any(), mismatched_rows=int(bad_rows.sum()),
        skipped_rows=int(n - used.sum()),
    )
    return check, bad_rows


# ============================================================================ leaf paths
class _Paths:
    """Root-to-leaf paths through the IR, for explaining a differing row."""

    def __init__(self, ens: Ensemble) -> None:
        self.ens = ens
        parent = np.full(ens.n_nodes, -1, np.int64)
        internal = np.flatnonzero(ens.left >= 0)
        parent[ens.left[internal]] = internal
        parent[ens.right[internal]] = internal
        self.parent = parent

    def node_of_leaf(self, tree: int, leaf_id: int) -> int | None:
        lo, hi = int(self.ens.tree_offset[tree]), int(self.ens.tree_offset[tree + 1])
        hits = np.flatnonzero((self.ens.leaf_id[lo:hi] == leaf_id) & (self.ens.left[lo:hi] < 0))
        return lo + int(hits[0]) if hits.size else None

    def path(self, node: int) -> list[int]:
        out = [node]
        while self.parent[out[-1]] >= 0:
            out.append(int(self.parent[out[-1]]))
        return out[::-1]

    def describe_split(self, node: int, row: np.ndarray) -> dict[str, Any]:
        e = self.ens
        lo = int(e.tree_offset[np.searchsorted(e.tree_offset, node, side="right") - 1])
        f = int(e.feature[node])
        d: dict[str, Any] = {
            "node": node - lo,
            "feature": f,
            "value": float(row[f]),
        }
        if e.feature_names:
            d["name"] = e.feature_names[f]
        if e.categorical[node]:
            cats = e.categories[e.cat_begin[node] : e.cat_end[node]]
            d["categories"] = cats[:16].tolist()
            d["categories_go"] = "left" if e.cat_left[node] else "right"
        else:
            d["op"] = "<" if e.op[node] == Op.LT else "<="
            d["threshold"] = float(e.threshold[node])
            d["default"] = "left" if e.default_left[node] else "right"
        return d

    def explain(
        self, tree: int, row: np.ndarray, leaves: dict[str, int | None]
    ) -> dict[str, Any]:
        """Where the paths to the leaves named in ``leaves`` (who -> leaf id) part."""
        nodes = {who: (self.node_of_leaf(tree, lid) if lid is not None else None) for who, lid in leaves.items()}
        paths = {who: self.path(nd) for who, nd in nodes.items() if nd is not None}
        out: dict[str, Any] = {"tree": tree, "leaves": {k: _jsonable(v) for k, v in leaves.items()}}
        lo = int(self.ens.tree_offset[tree])
        out["paths"] = {who: [int(x) - lo for x in p] for who, p in paths.items()}
        if len(paths) >= 2:
            seqs = list(paths.values())
            k = 0
            while all(len(s) > k + 1 for s in seqs) and len({s[k + 1] for s in seqs}) == 1:
                k += 1
            split = seqs[0][k]
            if self.ens.left[split] >= 0:
                s = self.describe_split(split, row)
                out["split"] = s
                went = {
                    who: ("left" if len(p) > k + 1 and p[k + 1] == self.ens.left[split] else "right")
                    for who, p in paths.items()
                }
                cond = (
                    f"{s.get('name', 'f' + str(s['feature']))} {s['op']} {s['threshold']!r}"
                    if "op" in s
                    else f"{s.get('name', 'f' + str(s['feature']))} in categories"
                )
                parts = ", ".join(f"{who} went {went[who]} to leaf {leaves[who]}" for who in paths)
                out["summary"] = f"paths part at node {s['node']} ({cond}, value {s['value']!r}): {parts}"
                return out
        parts = ", ".join(f"{who} leaf {lid}" for who, lid in leaves.items())
        out["summary"] = parts + (" (a leaf id not in the IR)" if len(paths) < len(leaves) else "")
        return out


# ============================================================================ verify
@dataclass
class _Block:
    """A batch of rows evaluated together (edge rows, then data rows); ``origin`` takes a
    block-local row index."""

    X: np.ndarray
    origin: Callable[[int], str]


def _stack(blocks: list[_Block], fn: Callable[[np.ndarray], Any]) -> Any:
    """Run ``fn`` on every block and concatenate (element-wise for tuple results)."""
    parts = [fn(b.X) for b in blocks]
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(len(parts[0])))
    return np.concatenate([np.asarray(p) for p in parts])


def verify(
    ensemble: Ensemble,
    scorer: Any = None,
    *,
    data: Any = None,
    source: Any = None,
    atol: float = DEFAULT_ATOL,
    max_rows: int = DEFAULT_MAX_ROWS,
    edge: int = DEFAULT_EDGE_ROWS,
    native: bool = True,
    isolate: bool = True,
    seed: int = 0,
) -> ParityReport:
    """Compare ``scorer`` (or the interpreter) with the interpreter and the source library.

    ``ensemble``: the IR the scorer was built from. ``scorer``: anything with
    ``predict(X, raw_score=...)`` and optionally ``predict_leaf(X)`` (a ``CompiledScorer``); None
    checks the interpreter against the source library only. ``data``: extra rows -- a
    :class:`~ltrcompile.datafiles.DataSet` (its first ``max_rows`` rows) or a 2-D array.
    ``source``: the model file or object the IR came from, for the native comparison (``native``
    False skips it). ``isolate``: load and run the library for a model *file* in a child process,
    so that a library that aborts on a malformed file cannot kill the caller. ``edge``: how many
    generated edge rows at most (0: none). ``atol``: the largest absolute difference accepted for
    raw margins and outputs; leaf ids must match exactly.
    """
    t0 = time.perf_counter()
    if not (atol >= 0 and math.isfinite(atol)):
        raise ValueError(f"atol must be a finite number >= 0, got {atol}")
    blocks: list[_Block] = []
    data_X: np.ndarray | None = None
    data_file = None
    data_origin: Callable[[int], str] = lambda i: f"data row {i}"  # noqa: E731
    if data is not None:
        from .datafiles import DataSet

        if isinstance(data, DataSet):
            data_X = data.X[:max_rows]
            data_file = data.path
            data_origin = data.where
        else:
            data_X = np.asarray(data)[:max_rows]
        if data_X.ndim != 2 or data_X.shape[1] != ensemble.n_features:
            raise ValueError(
                f"data has shape {data_X.shape}; the model expects (n_rows, {ensemble.n_features})"
            )
    if edge:
        bg = None if data_X is None or not len(data_X) else np.asarray(data_X, np.float64)
        E = edge_rows(ensemble, bg, max_rows=int(edge), seed=seed)
        blocks.append(_Block(E, lambda i: f"edge row {i}"))
    n_edge = blocks[0].X.shape[0] if blocks else 0
    if data_X is not None and len(data_X):
        blocks.append(_Block(data_X, data_origin))
    if not blocks:
        raise ValueError("nothing to verify: no edge rows and no data rows")
    n = sum(b.X.shape[0] for b in blocks)
    report = ParityReport(
        ok=True, atol=float(atol), rows_checked=n, edge_rows=n_edge,
        data_rows=n - n_edge, checks=[], data_file=data_file,
    )
    every = np.ones(n, bool)
    interp_raw = _stack(blocks, lambda X: ensemble.predict(X, raw_score=True))
    interp_out = _stack(blocks, ensemble.predict)
    cache: dict[str, np.ndarray] = {}

    def interp_leaf() -> np.ndarray:
        if "leaf" not in cache:
            cache["leaf"] = _stack(blocks, ensemble.predict_leaf)
        return cache["leaf"]

    cand = "compiled" if scorer is not None else "interpreter"
    cand_vals = {"raw": interp_raw, "output": interp_out}
    cand_leaf: np.ndarray | None = None
    ctx = _Context(n)
    if scorer is not None:
        cand_vals = {
            "raw": _stack(blocks, lambda X: scorer.predict(X, raw_score=True)),
            "output": _stack(blocks, lambda X: scorer.predict(X, raw_score=False)),
        }
        for what, ref in (("raw", interp_raw), ("output", interp_out)):
            ctx.add(report, *_value_check(cand, "interpreter", what, cand_vals[what], ref, every, atol),
                    values=(cand_vals[what], ref))
        if hasattr(scorer, "predict_leaf"):
            cand_leaf = _stack(blocks, scorer.predict_leaf)
            ctx.leaf_sources[cand] = _as2d(cand_leaf, n)
            ctx.add(report, *_leaf_check(cand, "interpreter", cand_leaf, interp_leaf(), every))

    nat_name: str | None = None
    results: dict[str, Any] = {}
    if native and source is not None:
        try:
            if isolate and isinstance(source, str | os.PathLike):
                nat_name, nat_note, results = _isolated_predictions(
                    os.fspath(source), ensemble, [b.X for b in blocks]
                )
            else:
                nat = native_model(source, ensemble)
                nat_name, nat_note = nat.name, nat.note
                results = _native_predictions(nat, [b.X for b in blocks])
        except NoNativeLibrary as exc:
            report.notes.append(f"native comparison does not apply: {exc}")
        except NativeUnavailable as exc:
            report.skipped.append(f"native comparison: {exc}")
        except ImportError as exc:
            report.skipped.append(f"native comparison: {exc.name} is not installed")
        else:
            if nat_note:
                report.notes.append(nat_note)
    elif native:
        report.skipped.append("native comparison: no source model given")
    else:
        report.skipped.append("native comparison: switched off (native=False / --no-native)")
    if nat_name is not None:
        if results.get("raw") is None and results.get("output") is None:
            report.skipped.append(f"{nat_name}: the library has neither a raw nor an output prediction")
        for what in ("raw", "output"):
            r = results.get(what)
            if r is None:
                report.notes.append(f"{nat_name} ({what}): the library has no such prediction")
                continue
            if isinstance(r, str):
                report.skipped.append(f"{nat_name} ({what}): failed to run: {r}"[:300])
                continue
            vals, used = r[0], np.asarray(r[1], bool)
            c, rows_bad = _value_check(cand, nat_name, what, cand_vals[what], vals, used, atol)
            if not c.ok and scorer is not None and c.note is None:
                ic, _ = _value_check("interpreter", nat_name, what, interp_raw if what == "raw" else interp_out, vals, used, atol)
                c.note = (
                    "the interpreter differs from the library too: the model was read inexactly "
                    "(frontend/IR), not miscompiled"
                    if not ic.ok
                    else "the interpreter agrees with the library: the compiled scorer is wrong"
                )
            ctx.add(report, c, rows_bad, values=(cand_vals[what], vals))
        r = results.get("leaf")
        if isinstance(r, str):
            report.skipped.append(f"{nat_name} (leaf): {r}"[:300])
        elif r is not None:
            vals, used = r[0], np.asarray(r[1], bool)
            mine = cand_leaf if cand_leaf is not None else interp_leaf()
            c, rows_bad = _leaf_check(cand, nat_name, mine, vals, used)
            if c.note is None:
                ctx.leaf_sources[nat_name] = np.where(used[:, None], _as2d(vals, n), -1)
            ctx.add(report, c, rows_bad)

    report.ok = bool(report.checks) and all(c.ok for c in report.checks)
    if not report.checks:
        report.skipped.append("nothing was compared (no scorer and no native predictor)")
    if not report.ok:
        ctx.examples(report, ensemble, blocks)
    report.seconds = time.perf_counter() - t0
    return report


class _Context:
    """What :func:`verify` keeps to explain failures: bad rows, compared values, leaf ids."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.bad: dict[int, np.ndarray] = {}
        self.values: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.leaf_sources: dict[str, np.ndarray] = {}

    def add(
        self,
        report: ParityReport,
        check: Check,
        rows_bad: np.ndarray,
        values: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        report.checks.append(check)
        self.bad[id(check)] = rows_bad
        if values is not None:
            self.values[id(check)] = (_as2d(values[0], self.n), _as2d(values[1], self.n))

    def examples(self, report: ParityReport, ens: Ensemble, blocks: list[_Block]) -> None:
        """Fill the ``examples`` of failing checks: both values and, for every tree whose leaf
        differs between interpreter, candidate and library, where their paths part."""
        starts = np.cumsum([0] + [b.X.shape[0] for b in blocks])
        paths = _Paths(ens)
        for c in report.checks:
            rows_bad = self.bad.get(id(c))
            if c.ok or rows_bad is None:
                continue
            for i in np.flatnonzero(rows_bad)[:MAX_EXAMPLES]:
                i = int(i)
                k = int(np.searchsorted(starts, i, side="right") - 1)
                local = i - int(starts[k])
                x = blocks[k].X[local : local + 1]
                e: dict[str, Any] = {"row": i, "origin": blocks[k].origin(local)}
                vals = self.values.get(id(c))
                if vals is not None:
                    a, b = vals[0][i], vals[1][i]
                    e["candidate"] = _jsonable(a if a.size > 1 else a[0])
                    e["reference"] = _jsonable(b if b.size > 1 else b[0])
                    with np.errstate(invalid="ignore", over="ignore"):
                        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                    same = (a == b) | (np.isnan(a) & np.isnan(b))
                    d = np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))
                    e["abs_diff"] = float(d.max()) if d.size else 0.0
                mine = ens.predict_leaf(x)[0]
                row = model_matrix(ens, x)[0]
                differing: set[int] = set()
                for L in self.leaf_sources.values():
                    other = L[i]
                    if other.shape == mine.shape:
                        differing |= set(np.flatnonzero((other != mine) & (other >= 0)).tolist())
                trees = []
                for t in sorted(differing)[:MAX_TREES_PER_EXAMPLE]:
                    leaves: dict[str, int | None] = {"interpreter": int(mine[t])}
                    for who, L in self.leaf_sources.items():
                        leaves[who] = int(L[i][t]) if L[i][t] >= 0 else None
                    trees.append(paths.explain(t, row, leaves))
                e["trees"] = trees
                e["trees_differing"] = len(differing)
                if self.leaf_sources and not differing:
                    e["leaves_agree"] = True
                c.examples.append(e)
