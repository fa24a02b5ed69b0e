"""Elasticsearch rescore semantics in-process: feature sets, hit parsing and score combination.

This is the library half of the rescoring service (``ltrcompile.service`` adds HTTP and a model
store on top); it has no web dependencies. A :class:`Rescorer` wraps any scorer with a
``predict(X)`` method (a compiled scorer, or an :class:`~ltrcompile.ir.Ensemble`) and a
:class:`FeatureSet`, turns search hits into a feature matrix, and re-ranks them exactly as
Elasticsearch's ``query`` rescorer does with an ``sltr`` rescore query:

* the hits are ranked by first-pass score (descending; ties keep their input order, which for an
  Elasticsearch response is Lucene's doc-id order) and the top ``window_size`` are rescored;
* inside the window ``score = combine(first * query_weight, model * rescore_query_weight)`` with
  ``combine`` one of ``total`` (p+s), ``multiply`` (p*s), ``avg`` ((p+s)/2), ``max``, ``min`` -- every
  operation in float32, as Java does it on ``float`` (``QueryRescoreMode``);
* the window is re-sorted by the new score (ties by first-pass rank, Lucene's ``QueryRescorer``);
* hits beyond the window get ``score = first * query_weight`` and then, only if there are any, *all*
  hits are sorted together by score (``Float.compare``, so ``+0.0`` above ``-0.0``; ties by first-pass
  rank). Hits beyond the window can therefore rise above rescored hits whose new score is lower --
  Elasticsearch does exactly that (``QueryRescorer.combine``).

Elasticsearch's native ``learning_to_rank`` rescorer (model score replaces the first-pass score,
bounded-window shift, ``window_size >= from + size``) is :mod:`ltrcompile.ltr_rescore`, selected with
``rescorer="learning_to_rank"``.

Feature values: a missing feature takes the feature set's default (``None`` = missing, i.e. NaN,
which the model handles with its own missing-value rule); then per-feature ``standard`` /
``min_max`` normalizers are applied in float32 arithmetic, as the ES LTR plugin's
``FeatureNormalizingRanker`` does (also to defaults: NaN stays NaN).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import normalizers
from .errors import InputDataError

SCORE_MODES = ("total", "multiply", "avg", "max", "min")
#: Elasticsearch's default ``window_size`` and ``index.max_rescore_window``.
DEFAULT_WINDOW = 10
MAX_WINDOW = 10_000
#: Names safe as file names and URL path segments.
#: Matched with ``fullmatch`` (``$`` would let a trailing newline through).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FEATURE_KEYS = {"name", "default", "params", "template", "template_language"}
_NUMBER_TYPES = (int, float)
_F32 = np.float32


class RescoreInputError(InputDataError):
    """A rescore/score request is unusable; the message says which hit and field."""


def check_name(kind: str, name: Any) -> str:
    """``name`` if it is a safe identifier (letters, digits, ``._-``; max 128), else raise."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise RescoreInputError(
            f"invalid {kind} name {name!r}: use 1-128 characters from [A-Za-z0-9._-], "
            "starting with a letter or digit"
        )
    return name


def _finite_f32(value: Any, what: str) -> np.float32:
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise RescoreInputError(f"{what} must be a number; got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise RescoreInputError(f"{what} must be finite; got {value!r}")
    with np.errstate(over="ignore"):
        v = _F32(value)
    if not np.isfinite(v):
        raise RescoreInputError(f"{what} = {value!r} is outside the float32 range")
    return v


# ---------------------------------------------------------------------- feature sets
@dataclass(frozen=True)
class FeatureSet:
    """Ordered feature names, per-feature default for missing values, optional normalizers.

    ``normalizers`` uses the ES LTR plugin's shape: ``{name: {"standard": {"mean": m,
    "standard_deviation": s}}}`` or ``{name: {"min_max": {"minimum": a, "maximum": b}}}``.
    ``queries`` keeps, per feature, the plugin's query definition -- ``{"template",
    "template_language", "params"}`` (only the keys given) or ``None`` -- so that a feature set
    stored through the plugin's ``_ltr`` API reads back as sent and exporters can build Elasticsearch
    query extractors from it.
    """

    name: str
    features: tuple[str, ...]
    defaults: tuple[float | None, ...]
    normalizers: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    queries: tuple[Mapping[str, Any] | None, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.features)})
        object.__setattr__(
            self, "parsed_normalizers", {k: normalizers.from_plugin(v) for k, v in self.normalizers.items()}
        )
        if not self.queries:
            object.__setattr__(self, "queries", (None,) * len(self.features))
        elif len(self.queries) != len(self.features):
            raise RescoreInputError("queries must hold one entry (or None) per feature")

    index: dict[str, int] = field(init=False, repr=False, compare=False)
    parsed_normalizers: dict[str, normalizers.Normalizer] = field(init=False, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.features)

    @classmethod
    def from_dict(cls, d: Any, name: str | None = None) -> FeatureSet:
        """Validate a JSON feature-set document (ours, or an ES ``featureset`` document)."""
        if isinstance(d, dict) and set(d) == {"featureset"}:
            d = d["featureset"]
        if not isinstance(d, dict):
            raise RescoreInputError("a feature set must be a JSON object")
        unknown = set(d) - {"name", "features", "feature_normalizers"}
        if unknown:
            raise RescoreInputError(f"unknown feature-set keys: {sorted(unknown)}")
        fs_name = d.get("name", name)
        if name is not None and fs_name != name:
            raise RescoreInputError(f"the body names feature set {fs_name!r} but the URL {name!r}")
        check_name("feature set", fs_name)
        feats = d.get("features")
        if not isinstance(feats, list) or not feats:
            raise RescoreInputError("'features' must be a non-empty list")
        names: list[str] = []
        defaults: list[float | None] = []
        queries: list[dict[str, Any] | None] = []
        for i, f in enumerate(feats):
            if isinstance(f, str):
                f = {"name": f}
            if not isinstance(f, dict):
                raise RescoreInputError(f"features[{i}] must be a name or an object")
            bad = set(f) - _FEATURE_KEYS
            if bad:
                raise RescoreInputError(f"features[{i}]: unknown keys {sorted(bad)}")
            fname = f.get("name")
            if not isinstance(fname, str) or not fname or len(fname) > 256:
                raise RescoreInputError(f"features[{i}].name must be a non-empty string")
            if fname in names:
                raise RescoreInputError(f"feature {fname!r} is listed twice")
            default = f.get("default")
            if default is not None:
                if isinstance(default, bool) or not isinstance(default, _NUMBER_TYPES):
                    raise RescoreInputError(f"features[{i}].default must be a number or null")
                if not math.isfinite(default):
                    raise RescoreInputError(f"features[{i}].default must be finite")
                default = float(default)
            names.append(fname)
            defaults.append(default)
            queries.append(_check_query(i, f))
        norms = d.get("feature_normalizers") or {}
        if not isinstance(norms, dict):
            raise RescoreInputError("'feature_normalizers' must be an object")
        clean: dict[str, dict[str, dict[str, float]]] = {}
        for fname, spec in norms.items():
            if fname not in names:
                raise RescoreInputError(f"feature_normalizers names unknown feature {fname!r}")
            clean[fname] = _check_normalizer(fname, spec)
        return cls(fs_name, tuple(names), tuple(defaults), clean, tuple(queries))

    def to_dict(self) -> dict[str, Any]:
        feats = []
        for n, d, q in zip(self.features, self.defaults, self.queries, strict=True):
            f: dict[str, Any] = {"name": n}
            if d is not None:
                f["default"] = d
            if q:
                f.update(q)
            feats.append(f)
        return {
            "name": self.name,
            "features": feats,
            "feature_normalizers": {k: dict(v) for k, v in self.normalizers.items()},
        }


def _check_query(i: int, f: dict[str, Any]) -> dict[str, Any] | None:
    """The plugin's per-feature query definition, validated as its ``StoredFeature`` parser does."""
    q: dict[str, Any] = {}
    if "template" in f:
        t = f["template"]
        if not isinstance(t, dict | str):
            raise RescoreInputError(f"features[{i}].template must be an object or a string")
        q["template"] = t
    if "template_language" in f:
        lang = f["template_language"]
        if not isinstance(lang, str) or not lang:
            raise RescoreInputError(f"features[{i}].template_language must be a non-empty string")
        q["template_language"] = lang
    if "params" in f:
        ps = f["params"]
        if not isinstance(ps, list) or not all(isinstance(p, str) for p in ps):
            raise RescoreInputError(f"features[{i}].params must be a list of parameter names")
        q["params"] = list(ps)
    return q or None


def _check_normalizer(fname: str, spec: Any) -> dict[str, dict[str, float]]:
    """The plugin's rule (:func:`ltrcompile.normalizers.from_plugin`), in the plugin's JSON shape."""
    try:
        return normalizers.from_plugin(spec).to_plugin()
    except normalizers.NormalizerError as exc:
        raise RescoreInputError(f"normalizer of {fname!r}: {exc}") from None


def apply_normalizers_f32(fs: FeatureSet, X: np.ndarray) -> None:
    """In place, float32 arithmetic like the ES LTR plugin (``(v-mean)/std``, ``(v-min)/(max-min)``)."""
    normalizers.apply_named(fs.parsed_normalizers, fs.index, X)


# ---------------------------------------------------------------------- binding
def bind_columns(
    model_names: Sequence[str] | None,
    n_model_features: int,
    fs: FeatureSet,
    mode: str = "auto",
    allow_fewer: bool = False,
) -> tuple[np.ndarray | None, str]:
    """Which feature-set column feeds each model feature: ``(columns or None=identity, how)``.

    ``name``: every model feature name must be in the set (columns gathered by name);
    ``position``: the model's i-th feature is the set's i-th, as the ES plugin binds RankLib
    models (counts must match, unless ``allow_fewer``: a RankLib model only knows the largest
    feature id it uses); ``auto``: by name when all names are in the set, else by position.
    """
    if mode not in ("auto", "name", "position"):
        raise RescoreInputError(f"binding must be auto, name or position; got {mode!r}")
    names = list(model_names) if model_names else None
    if names is not None and len(names) != n_model_features:
        names = None
    if mode in ("auto", "name") and names is not None and all(n in fs.index for n in names):
        cols = np.array([fs.index[n] for n in names], np.intp)
        if len(cols) == fs.size and np.array_equal(cols, np.arange(fs.size)):
            return None, "name"
        return cols, "name"
    if mode == "name":
        if names is None:
            raise RescoreInputError("binding=name but the model has no feature names")
        missing = [n for n in names if n not in fs.index]
        raise RescoreInputError(
            f"binding=name: model features not in feature set {fs.name!r}: {missing[:10]}"
        )
    if allow_fewer and n_model_features < fs.size:
        return np.arange(n_model_features, dtype=np.intp), "position"
    if n_model_features != fs.size:
        raise RescoreInputError(
            f"the model has {n_model_features} features but feature set {fs.name!r} has "
            f"{fs.size}"
            + ("" if names is None else " and the model's feature names are not all in it")
        )
    return None, "position"


# ---------------------------------------------------------------------- hits
@dataclass
class Hits:
    """Parsed hits: ids, first-pass scores (float32) and the feature-set matrix (float64)."""

    ids: list[Any]
    scores: np.ndarray | None
    X: np.ndarray


def _check_values(vals: list[Any], what: Callable[[int], str]) -> np.ndarray:
    """Float64 array of JSON numbers; ``None`` -> NaN (missing); anything else -> error."""
    types = set(map(type, vals))
    if not types <= {int, float, type(None)}:
        for k, v in enumerate(vals):
            if isinstance(v, bool) or not (v is None or isinstance(v, _NUMBER_TYPES)):
                raise RescoreInputError(
                    f"{what(k)}: feature values must be numbers or null; got {type(v).__name__} {v!r}"
                )
    try:
        arr = np.array(vals, dtype=np.float64)
    except OverflowError as exc:  # int beyond float range
        raise RescoreInputError(f"feature value out of range: {exc}") from exc
    if arr.size and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        if type(None) in types:
            nulls = np.fromiter((v is None for v in vals), bool, len(vals))
            bad &= ~nulls
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise RescoreInputError(f"{what(k)}: feature value {vals[k]!r} is not finite")
    return arr


def _fast_values(vals: list[Any], ndim: int = 1) -> np.ndarray | None:
    """Float64 array when every value is a finite number, else None (then check one by one).

    numpy infers one dtype for all values at once, which is several times faster than checking
    types in Python; strings, nulls and nested lists give a non-numeric dtype. (A JSON true/false
    among numbers is read as 1/0 on this path, as numpy converts it.)
    """
    try:
        arr = np.array(vals)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim != ndim or arr.dtype.kind not in "fiu":
        return None
    arr = arr.astype(np.float64, copy=False)
    return arr if np.isfinite(arr).all() else None


class HitParser:
    """Turns hits (native or Elasticsearch response form) into a :class:`Hits` matrix."""

    def __init__(self, fs: FeatureSet, missing_value: float = math.nan) -> None:
        self.fs = fs
        self.default_row = np.array(
            [missing_value if d is None else d for d in fs.defaults], np.float64
        )

    # -- feature matrix from per-hit vectors or name->value maps
    def matrix(self, features: Sequence[Any], where: Callable[[int], str]) -> np.ndarray:
        n, F = len(features), self.fs.size
        X = np.tile(self.default_row, (n, 1))
        vec_rows: list[int] = []
        vecs: list[Any] = []
        map_rows: list[int] = []
        lengths: list[int] = []
        cols: list[int] = []
        vals: list[Any] = []
        lookup = self.fs.index.__getitem__
        for i, f in enumerate(features):
            if isinstance(f, list):
                if len(f) != F:
                    raise RescoreInputError(
                        f"{where(i)}: feature vector has {len(f)} values but feature set "
                        f"{self.fs.name!r} has {F}"
                    )
                vec_rows.append(i)
                vecs.append(f)
            elif isinstance(f, dict):
                try:
                    cols.extend(map(lookup, f))
                except KeyError:
                    unknown = [k for k in f if k not in self.fs.index]
                    raise RescoreInputError(
                        f"{where(i)}: unknown feature name(s) {unknown[:5]} (feature set "
                        f"{self.fs.name!r})"
                    ) from None
                map_rows.append(i)
                lengths.append(len(f))
                vals.extend(f.values())
            elif f is None:
                continue
            else:
                raise RescoreInputError(
                    f"{where(i)}: 'features' must be a list (feature-set order) or an object "
                    f"(name -> value); got {type(f).__name__}"
                )
        if vecs:
            X[vec_rows] = self._vectors(vecs, vec_rows, where)
        if vals:
            r = np.repeat(np.asarray(map_rows, np.intp), lengths)
            c = np.asarray(cols, np.intp)
            arr = _fast_values(vals)
            if arr is None:
                arr = _check_values(
                    vals, lambda k: f"{where(int(r[k]))}, feature {self.fs.features[cols[k]]!r}"
                )
                nulls = np.isnan(arr)
                if nulls.any():
                    arr = np.where(nulls, self.default_row[c], arr)
            X[r, c] = arr
        if self.fs.normalizers:
            apply_normalizers_f32(self.fs, X)
        return X

    def _vectors(
        self, vecs: list[Any], vec_rows: list[int], where: Callable[[int], str]
    ) -> np.ndarray:
        """Dense vectors -> float64 block; null -> the feature's default."""
        F = self.fs.size
        block = _fast_values(vecs, ndim=2)
        if block is not None:
            return block
        flat = [v for vec in vecs for v in vec]
        arr = _check_values(flat, lambda k: f"{where(vec_rows[k // F])}, feature {k % F}")
        block = arr.reshape(len(vecs), F)
        nulls = np.isnan(block)
        if nulls.any():
            block = np.where(nulls, self.default_row, block)
        return block

    # -- native hits: [{"id", "score", "features"}]
    def native(self, hits: Any, need_scores: bool, feature_matrix: Any = None) -> Hits:
        """Native hits; with ``feature_matrix`` (see :meth:`binary_matrix`) hits carry no features."""
        if not isinstance(hits, list):
            raise RescoreInputError("'hits' must be a list")
        ids: list[Any] = []
        scores: list[Any] = []
        feats: list[Any] = []
        for i, h in enumerate(hits):
            if not isinstance(h, dict):
                raise RescoreInputError(f"hits[{i}] must be an object")
            hid = h.get("id", h.get("_id"))
            if need_scores and (hid is None or isinstance(hid, bool | dict | list)):
                raise RescoreInputError(f"hits[{i}] needs an 'id' (string or number)")
            ids.append(hid)
            if need_scores:
                s = h.get("score", h.get("_score"))
                if s is None:
                    raise RescoreInputError(f"hits[{i}] (id {hid!r}) has no first-pass 'score'")
                scores.append(s)
            if feature_matrix is not None:
                if "features" in h:
                    raise RescoreInputError(
                        f"hits[{i}] (id {hid!r}) has 'features' although 'feature_matrix' is given"
                    )
                continue
            if "features" not in h:
                raise RescoreInputError(f"hits[{i}] (id {hid!r}) has no 'features'")
            feats.append(h["features"])
        if feature_matrix is not None:
            X = self.binary_matrix(feature_matrix, len(hits))
        else:
            X = self.matrix(feats, lambda i: f"hits[{i}] (id {ids[i]!r})")
        return Hits(ids, _first_pass(scores, ids) if need_scores else None, X)

    def binary_matrix(self, spec: Any, n_rows: int) -> np.ndarray:
        """``{"dtype": "float32"|"float64", "data": base64}``: a little-endian row-major matrix.

        The fast path for large requests (no per-number JSON parsing). NaN = missing (the
        feature's default); infinities are an error.
        """
        if not isinstance(spec, dict) or set(spec) != {"dtype", "data"}:
            raise RescoreInputError('\'feature_matrix\' must be {"dtype": ..., "data": <base64>}')
        kind = spec["dtype"]
        dtype = {"float32": "<f4", "float64": "<f8"}.get(kind) if isinstance(kind, str) else None
        if dtype is None:
            raise RescoreInputError("feature_matrix.dtype must be 'float32' or 'float64'")
        if not isinstance(spec["data"], str):
            raise RescoreInputError("feature_matrix.data must be a base64 string")
        try:
            raw = base64.b64decode(spec["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RescoreInputError(f"feature_matrix.data is not valid base64: {exc}") from None
        F = self.fs.size
        want = n_rows * F * np.dtype(dtype).itemsize
        if len(raw) != want:
            raise RescoreInputError(
                f"feature_matrix holds {len(raw)} bytes; {n_rows} hits x {F} features of "
                f"{spec['dtype']} need {want}"
            )
        X = np.frombuffer(raw, dtype).reshape(n_rows, F).astype(np.float64)
        if np.isfinite(X).all():  # the common case: one pass
            if self.fs.normalizers:
                apply_normalizers_f32(self.fs, X)
            return X
        if np.isinf(X).any():
            r, c = np.argwhere(np.isinf(X))[0]
            raise RescoreInputError(
                f"feature_matrix row {r}, feature {self.fs.features[c]!r}: value is infinite"
            )
        nulls = np.isnan(X)
        if nulls.any():
            X = np.where(nulls, self.default_row, X)
        if self.fs.normalizers:
            apply_normalizers_f32(self.fs, X)
        return X

    # -- Elasticsearch search response: {"hits": {"hits": [{"_id", "_score", ...}]}}
    def es_response(self, body: dict[str, Any], log_name: str | None = None) -> Hits:
        hh = body["hits"].get("hits")
        if not isinstance(hh, list):
            raise RescoreInputError("'hits.hits' must be a list")
        ids: list[Any] = []
        scores: list[Any] = []
        feats: list[dict[str, Any]] = []
        for i, h in enumerate(hh):
            if not isinstance(h, dict):
                raise RescoreInputError(f"hits.hits[{i}] must be an object")
            hid = h.get("_id")
            ids.append(hid)
            s = h.get("_score")
            if s is None:
                raise RescoreInputError(
                    f"hits.hits[{i}] (_id {hid!r}) has no _score (a search sorted by a field has "
                    "none; add track_scores or sort by _score)"
                )
            scores.append(s)
            feats.append(self._es_features(h, i, log_name))
        X = self.matrix(feats, lambda i: f"hits.hits[{i}] (_id {ids[i]!r})")
        return Hits(ids, _first_pass(scores, ids, "hits.hits"), X)

    def _es_features(self, h: dict[str, Any], i: int, log_name: str | None) -> dict[str, Any]:
        where = f"hits.hits[{i}] (_id {h.get('_id')!r})"
        out: dict[str, Any] = {}
        fields = h.get("fields") or {}
        source = h.get("_source") or {}
        if not isinstance(fields, dict) or not isinstance(source, dict):
            raise RescoreInputError(f"{where}: 'fields' and '_source' must be objects")
        for fname in self.fs.features:
            v = _lookup(source, fname)
            if v is None and fname in fields:
                v = fields[fname]
            if isinstance(v, list):  # ES "fields" are arrays; the first value counts
                v = v[0] if v else None
            if v is not None:
                out[fname] = v
        log = fields.get("_ltrlog")
        if log is not None:
            out.update(self._ltrlog(log, where, log_name))
        return out

    def _ltrlog(self, log: Any, where: str, log_name: str | None) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        if isinstance(log, dict):
            log = [log]
        if not isinstance(log, list):
            raise RescoreInputError(f"{where}: fields._ltrlog must be a list")
        for item in log:
            if not isinstance(item, dict):
                raise RescoreInputError(f"{where}: fields._ltrlog entries must be objects")
            entries.update(item)
        if log_name is None:
            if len(entries) != 1:
                raise RescoreInputError(
                    f"{where}: fields._ltrlog has log entries {sorted(entries)}; pass log_name"
                )
            (log_name,) = entries
        if log_name not in entries:
            raise RescoreInputError(f"{where}: fields._ltrlog has no log entry {log_name!r}")
        out: dict[str, Any] = {}
        feats = entries[log_name]
        if not isinstance(feats, list):
            raise RescoreInputError(f"{where}: _ltrlog.{log_name} must be a list")
        for e in feats:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise RescoreInputError(f"{where}: _ltrlog.{log_name} items need a 'name'")
            if e["name"] not in self.fs.index:
                raise RescoreInputError(
                    f"{where}: logged feature {e['name']!r} is not in feature set {self.fs.name!r}"
                )
            out[e["name"]] = e.get("value")  # no value: not matched -> missing
        return out


def _lookup(source: dict[str, Any], name: str) -> Any:
    if name in source:
        return source[name]
    if "." in name:  # dotted path into nested _source objects
        cur: Any = source
        for part in name.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    return None


def _first_pass(scores: list[Any], ids: list[Any], where: str = "hits") -> np.ndarray:
    types = set(map(type, scores))
    if not types <= {int, float}:
        for i, s in enumerate(scores):
            if isinstance(s, bool) or not isinstance(s, _NUMBER_TYPES):
                raise RescoreInputError(
                    f"{where}[{i}] (id {ids[i]!r}): first-pass score must be a number; got {s!r}"
                )
    arr = np.array(scores, np.float64)
    with np.errstate(over="ignore"):
        a32 = arr.astype(_F32)
    bad = ~np.isfinite(a32)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RescoreInputError(
            f"{where}[{i}] (id {ids[i]!r}): first-pass score {scores[i]!r} is not a finite float32"
        )
    return a32


# ---------------------------------------------------------------------- combination
def combine(p: np.ndarray, s: np.ndarray, mode: str) -> np.ndarray:
    """``QueryRescoreMode.combine`` on float32 arrays (Java ``float`` semantics)."""
    p = np.asarray(p, _F32)
    s = np.asarray(s, _F32)
    with np.errstate(over="ignore", invalid="ignore"):
        if mode == "total":
            return p + s
        if mode == "multiply":
            return p * s
        if mode == "avg":
            return (p + s) / _F32(2)
        if mode == "max":  # Math.max: NaN wins, +0.0 > -0.0
            out = np.where(p > s, p, s)
            z = (p == s) & (p == 0)
            return np.where(z, np.where(np.signbit(p), s, p), out)
        if mode == "min":  # Math.min: -0.0 < +0.0
            out = np.where(p < s, p, s)
            z = (p == s) & (p == 0)
            return np.where(z, np.where(np.signbit(p), p, s), out)
    raise RescoreInputError(f"score_mode must be one of {', '.join(SCORE_MODES)}; got {mode!r}")


def _float_compare_key(x: np.ndarray) -> np.ndarray:
    """int64 keys ordered like Java ``Float.compare`` (-0.0 < +0.0; all NaN equal and largest)."""
    x = np.where(np.isnan(x), _F32(np.nan), x).astype(_F32)
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF) - 1, i)


@dataclass
class RescoreParams:
    window_size: int = DEFAULT_WINDOW
    query_weight: float = 1.0
    rescore_query_weight: float = 1.0
    score_mode: str = "total"

    @classmethod
    def parse(cls, d: Mapping[str, Any], max_window: int = MAX_WINDOW) -> RescoreParams:
        """Validate request parameters (ES names; ``score_mode`` case-insensitive)."""
        w = d.get("window_size", DEFAULT_WINDOW)
        if isinstance(w, str) and w.strip().lstrip("-").isdigit():
            w = int(w)
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise RescoreInputError(f"window_size must be an integer >= 0; got {w!r}")
        if w > max_window:
            raise RescoreInputError(
                f"window_size {w} is larger than the maximum rescore window {max_window}"
            )
        weights = []
        for key in ("query_weight", "rescore_query_weight"):
            v = d.get(key, 1.0)
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    raise RescoreInputError(f"{key} must be a number; got {v!r}") from None
            weights.append(float(_finite_f32(v, key)))
        mode = d.get("score_mode", "total")
        if not isinstance(mode, str) or mode.lower() not in SCORE_MODES:
            raise RescoreInputError(
                f"score_mode must be one of {', '.join(SCORE_MODES)}; got {mode!r}"
            )
        return cls(w, weights[0], weights[1], mode.lower())


def parse_params(d: Mapping[str, Any], max_window: int = MAX_WINDOW) -> Any:
    """:class:`RescoreParams` (``rescorer=query``, the default) or, for
    ``rescorer=learning_to_rank``, :class:`~ltrcompile.ltr_rescore.LtrRescoreParams`."""
    kind = d.get("rescorer", "query")
    if kind == "learning_to_rank":
        from .ltr_rescore import LtrRescoreParams

        return LtrRescoreParams.parse(d, max_window)
    if kind != "query":
        raise RescoreInputError(f"rescorer must be query or learning_to_rank; got {kind!r}")
    wrong = sorted(k for k in ("from", "size") if d.get(k) is not None)
    if wrong:
        raise RescoreInputError(
            f"{', '.join(wrong)} apply to the learning_to_rank rescorer only (the query rescorer "
            "does not check the window against from + size)"
        )
    return RescoreParams.parse(
        {k: v for k, v in d.items() if k not in ("rescorer", "from", "size")}, max_window
    )


@dataclass
class RescoreResult:
    """Final order (indices into the input hits) and per-input-hit float32 scores."""

    order: np.ndarray
    scores: np.ndarray  # final score of input hit i (float32)
    model_scores: np.ndarray  # model score of input hit i (float32; NaN outside the window)
    rescored: np.ndarray  # bool: input hit i was in the window


def window_of(first: np.ndarray, window_size: int) -> np.ndarray:
    """Input indices of the rescore window, in first-pass order (score desc, ties input order)."""
    rank = np.argsort(-first, kind="stable")
    return rank[: min(window_size, first.shape[0])]


def es_rescore(
    first: np.ndarray, model_window: np.ndarray, p: RescoreParams, window: np.ndarray | None = None
) -> RescoreResult:
    """Elasticsearch ``QueryRescorer`` on float32 first-pass scores.

    ``model_window[k]`` is the model score of the k-th hit of the window (``window_of``).
    """
    first = np.asarray(first, _F32)
    n = first.shape[0]
    rank = np.argsort(-first, kind="stable")  # first-pass order, ties by input position
    w = min(p.window_size, n)
    win = rank[:w] if window is None else window
    qw, rqw = _F32(p.query_weight), _F32(p.rescore_query_weight)
    with np.errstate(over="ignore", invalid="ignore"):
        new_win = combine(first[win] * qw, np.asarray(model_window, _F32) * rqw, p.score_mode)
    # Lucene QueryRescorer: score desc (>, <), ties by original (first-pass) index
    order_win = win[np.argsort(-new_win, kind="stable")]
    scores = np.empty(n, _F32)
    scores[win] = new_win
    model = np.full(n, np.nan, _F32)
    model[win] = model_window
    rescored = np.zeros(n, bool)
    rescored[win] = True
    rest = rank[w:]
    if rest.size:
        with np.errstate(over="ignore"):
            scores[rest] = first[rest] * qw
        spliced = np.concatenate([order_win, rest])
        key = _float_compare_key(scores[spliced])
        order = spliced[np.argsort(-key, kind="stable")]
    else:
        order = order_win
    if not np.isfinite(scores).all():
        i = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise RescoreInputError(
            f"hit {i}: the combined score overflows float32 ({p.score_mode} of first-pass "
            f"{float(first[i])!r} x {p.query_weight} and model {float(model[i])!r} x "
            f"{p.rescore_query_weight})"
        )
    return RescoreResult(order, scores, model, rescored)


def f32_scalars(x: np.ndarray) -> list[Any]:
    """float32 numpy scalars (None for NaN): orjson's OPT_SERIALIZE_NUMPY writes each as the
    shortest decimal that reads back as the same float32, ~50x faster than :func:`f32_json`."""
    vals = list(np.asarray(x, _F32))
    if np.isnan(x).any():
        return [None if v != v else v for v in vals]
    return vals


def f32_json(x: Iterable[Any]) -> list[float | None]:
    """float32 values as the shortest decimal that reads back as the same float32 (as ES prints)."""
    return [None if v != v else float(str(_F32(v))) for v in x]


# ---------------------------------------------------------------------- the rescorer
class Rescorer:
    """A scorer bound to a feature set, with Elasticsearch rescore semantics.

    ``scorer`` is anything with ``predict(X)`` returning one score per row (a compiled scorer or an
    Ensemble); ``columns`` maps feature-set columns to model features (see :func:`bind_columns`).
    """

    def __init__(
        self,
        scorer: Any,
        feature_set: FeatureSet,
        *,
        columns: np.ndarray | None = None,
        missing_value: float = math.nan,
        max_window: int = MAX_WINDOW,
        ensemble: Any = None,
    ) -> None:
        self.scorer = scorer
        self.ensemble = ensemble  # the IR the scorer runs: needed for the learning_to_rank shift
        self._ltr_shift: float | None = None
        self.feature_set = feature_set
        self.columns = columns
        self.parser = HitParser(feature_set, missing_value)
        self.max_window = max_window

    @classmethod
    def for_model(
        cls, scorer: Any, ens: Any, feature_set: FeatureSet, binding: str = "auto"
    ) -> Rescorer:
        """Bind ``scorer`` (which scores ``ens``) to ``feature_set`` by name or position."""
        if getattr(ens, "n_outputs", 1) != 1:
            raise RescoreInputError(
                f"the model has {ens.n_outputs} outputs; rescoring needs one score per hit"
            )
        cols, _ = bind_columns(ens.feature_names, ens.n_features, feature_set, binding)
        return cls(scorer, feature_set, columns=cols, ensemble=ens)

    @property
    def ltr_shift(self) -> float:
        """Elasticsearch's bounded-window shift of this model (``learning_to_rank`` rescorer)."""
        if self._ltr_shift is None:
            if self.ensemble is None:
                raise RescoreInputError(
                    "the learning_to_rank rescorer needs the model's IR (Rescorer(..., ensemble=)) "
                    "to compute Elasticsearch's bounded-window score shift"
                )
            from .ltr_rescore import bounded_window_shift

            self._ltr_shift = bounded_window_shift(self.ensemble)
        return self._ltr_shift

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Model scores (float64) for a feature-set-ordered matrix (defaults/normalizers applied)."""
        M = X if self.columns is None else X[:, self.columns]
        if M.shape[0] == 0:
            return np.zeros(0)
        out = np.asarray(self.scorer.predict(np.ascontiguousarray(M)), np.float64)
        if out.ndim != 1:
            raise RescoreInputError("the model returns more than one score per row")
        return out

    def score_features(self, features: Sequence[Any]) -> np.ndarray:
        """Scores for rows given as vectors (feature-set order) or name->value maps."""
        X = self.parser.matrix(features, lambda i: f"features[{i}]")
        return self.predict(X)

    def rescore_hits(self, hits: Hits, params: Any) -> RescoreResult:
        """Rescore with ``params`` (:func:`parse_params`): the query or learning_to_rank rescorer."""
        if hits.scores is None:
            raise RescoreInputError("rescoring needs first-pass scores")
        if params.window_size > self.max_window:
            raise RescoreInputError(
                f"window_size {params.window_size} is larger than the maximum {self.max_window}"
            )
        win = window_of(hits.scores, params.window_size)
        if getattr(params, "rescorer", "query") == "learning_to_rank":
            from .ltr_rescore import ltr_rescore

            shift = self.ltr_shift
            return ltr_rescore(hits.scores, self.predict(hits.X[win]), win, shift)
        model = self.predict(hits.X[win])
        with np.errstate(over="ignore", invalid="ignore"):
            m32 = model.astype(_F32)
        if not np.isfinite(m32).all():
            k = int(np.flatnonzero(~np.isfinite(m32))[0])
            raise RescoreInputError(
                f"the model's score for hit {int(win[k])} (id {hits.ids[int(win[k])]!r}) is "
                f"{float(model[k])!r}, not a finite float32"
            )
        return es_rescore(hits.scores, m32, params, window=win)

    def rescore(
        self,
        hits: Sequence[Mapping[str, Any]],
        window_size: int | None = None,
        query_weight: float | None = None,
        rescore_query_weight: float | None = None,
        score_mode: str | None = None,
        *,
        rescorer: str = "query",
        from_: int | None = None,
        size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Re-rank native hits ``[{"id", "score", "features"}]``; returns them in the new order.

        ``rescorer="query"`` (default; ``window_size`` defaults to 10) or ``"learning_to_rank"``
        (``window_size`` required, ``>= from_ + size``; see :mod:`ltrcompile.ltr_rescore`).
        Each returned hit is ``{"id", "score" (final, float32), "first_pass_score",
        "model_score" (None outside the window), "rescored"}``.
        """
        given = {
            "window_size": window_size,
            "query_weight": query_weight,
            "rescore_query_weight": rescore_query_weight,
            "score_mode": score_mode,
            "from": from_,
            "size": size,
        }
        params = parse_params(
            {"rescorer": rescorer, **{k: v for k, v in given.items() if v is not None}},
            self.max_window,
        )
        parsed = self.parser.native(list(hits), need_scores=True)
        res = self.rescore_hits(parsed, params)
        return native_response_hits(parsed, res)


def native_response_hits(
    parsed: Hits, res: RescoreResult, numpy_scalars: bool = False
) -> list[dict[str, Any]]:
    """Hits in the new order; floats as Python floats, or float32 numpy scalars for orjson."""
    conv = f32_scalars if numpy_scalars else f32_json
    order = res.order.tolist()
    final = conv(res.scores[order])
    first = conv(parsed.scores[order])  # type: ignore[index]
    model = conv(res.model_scores[order])
    rescored = res.rescored[order].tolist()
    return [
        {
            "id": parsed.ids[i],
            "score": final[k],
            "first_pass_score": first[k],
            "model_score": model[k],
            "rescored": rescored[k],
        }
        for k, i in enumerate(order)
    ]


def es_response_body(
    body: dict[str, Any], parsed: Hits, res: RescoreResult, numpy_scalars: bool = False
) -> dict[str, Any]:
    """The Elasticsearch response with ``hits.hits`` re-ordered and ``_score`` replaced."""
    conv = f32_scalars if numpy_scalars else f32_json
    hh = body["hits"]["hits"]
    order = res.order.tolist()
    final = conv(res.scores[order])
    model = conv(res.model_scores[order])
    first = conv(parsed.scores[order])  # type: ignore[index]
    new_hits = []
    for k, i in enumerate(order):
        h = dict(hh[i])
        h["_score"] = final[k]
        h["_rescore"] = {"first_pass_score": first[k], "model_score": model[k]}
        new_hits.append(h)
    out = dict(body)
    out["hits"] = dict(body["hits"])
    out["hits"]["hits"] = new_hits
    if new_hits:
        out["hits"]["max_score"] = final[0]
    return out
