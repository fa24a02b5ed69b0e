"""An o19s feature set -> Elasticsearch's ``inference_config.learning_to_rank`` (feature extractors).

Elasticsearch (8.12+) computes a learning-to-rank model's features itself, from the trained model's
``inference_config``. The schema, as Elasticsearch parses it (``LearningToRankConfig`` and
``ltr/QueryExtractorBuilder`` in ``x-pack/plugin/core/.../ml/inference/trainedmodel``)::

    {"learning_to_rank": {
        "feature_extractors": [                     # named objects; ES writes them as this array
            {"query_extractor": {"feature_name": "<name>",      # mandatory, unique in the list
                                 "query": {<query DSL>},         # mandatory, a query object
                                 "default_score": <float >= 0>}} # optional, 0 when absent
        ],
        "default_params": {<param>: <value>},        # optional, merged under the rescorer's params
        "num_top_feature_importance_values": <int>}} # optional

At search time (``LearningToRankService.applyParams``) Elasticsearch renders each query's JSON text
as a mustache template with the rescorer's ``params`` merged over ``default_params``; a template
that names a parameter nobody gave is replaced by ``match_none`` (``match_all`` boosted by
``default_score`` when that is positive). A document the query does not match has no value for
the feature (``QueryFeatureExtractor`` puts nothing in the feature map), which the model treats as
missing (``default_left``).

What is converted, per feature of the o19s feature set (``StoredFeature``: ``name``, ``template``,
``template_language`` (default ``mustache``), ``params``):

* ``template_language: mustache`` with an object ``template`` -> ``query`` as is (the o19s template
  is the query itself, as in the plugin's docs, so ``{{param}}`` placeholders inside JSON strings
  keep working: both engines render mustache over the query's JSON text);
* ``mustache`` with a string ``template`` -> parsed as JSON; it must be one query object.
  A string template whose mustache tags sit outside JSON strings (``{"boost": {{b}}}``) is not JSON
  and is refused: Elasticsearch's ``query`` field takes an object, not template text;
* ``params`` (the names the plugin *requires*, failing the query when one is missing) have no
  Elasticsearch counterpart and are not written: a missing parameter makes Elasticsearch match no
  document for that feature instead of failing;
* refused, naming the feature: a feature without ``template``; ``template_language`` other than
  ``mustache`` (``derived_expression``, ``script_feature``, a script language: Elasticsearch has no
  extractor that computes a feature from other features or from a script); a query object with
  not exactly one query type; the plugin's own query types (``match_explorer``, ``term_stat``,
  ``sltr``, ``validating_ltr``, ``ltr``), which Elasticsearch does not know.

Not checked here: the query DSL itself. Elasticsearch parses every ``query`` at ``PUT`` time
(``QueryProvider.fromXContent``, strict), before any mustache rendering, so a placeholder in a
field the DSL types (``"boost": "{{b}}"``, a boolean) or an unknown query type is refused there,
as is a field a given Elasticsearch version does not know.

``placeholders=True`` writes ``{"match_none": {}}`` for each refused feature instead (the feature is
always missing in Elasticsearch) and lists them (:class:`PlaceholderExtractorWarning`, and the
body's ``description`` when :mod:`.es_native` writes it).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ModelFormatError, UnsupportedModelError
from ..rescore import FeatureSet, RescoreInputError

MUSTACHE = "mustache"
PLACEHOLDER_QUERY: dict[str, Any] = {"match_none": {}}
#: query types the o19s plugin registers (LtrQueryParserPlugin.getQueries) and Elasticsearch lacks
PLUGIN_QUERIES = ("match_explorer", "term_stat", "sltr", "validating_ltr", "ltr")


class PlaceholderExtractorWarning(UserWarning):
    """Features exported with a ``match_none`` placeholder query (no convertible template)."""


@dataclass(frozen=True)
class LtrConfig:
    """The ``inference_config`` body and the features written as placeholders (with why)."""

    inference_config: dict[str, Any]
    placeholders: tuple[tuple[str, str], ...]

    def description(self) -> str | None:
        if not self.placeholders:
            return None
        names = ", ".join(n for n, _ in self.placeholders)
        return (
            "ltrcompile export: placeholder query extractors (match_none: the feature is always "
            f"missing) for {names}; replace them with the features' queries before serving"
        )


def read_featureset(doc: Any, *, path: str | None = None) -> FeatureSet:
    """A feature set with its queries from any of the plugin's documents: the ``_featureset``
    request body ``{"featureset": {...}}`` (or the bare object), a ``GET _ltr/_featureset``
    response, or a model document carrying its copy of the set (``PUT _ltr/_model`` body,
    ``GET _ltr/_model`` response, stored ``{"name", "type": "model", "model": {...}}``)."""
    found = _find_featureset(doc)
    if found is None:
        raise ModelFormatError(
            "no feature set in the document: expected {\"featureset\": {\"features\": [...]}}, "
            "a GET _ltr/_featureset response, or a model document with \"feature_set\"",
            path=path,
            field="featureset",
        )
    if "name" not in found:
        found = {**found, "name": "featureset"}  # the plugin takes the name from the URL
    try:
        return FeatureSet.from_dict(found)
    except RescoreInputError as exc:
        raise ModelFormatError(f"feature set: {exc}", path=path, field="featureset") from None


def load_featureset(path: str | os.PathLike[str]) -> FeatureSet:
    """:func:`read_featureset` of a JSON file."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            doc = json.loads(fh.read().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"not a JSON document: {exc}", path=p) from None
    return read_featureset(doc, path=p)


def featureset_in_model_file(path: str | os.PathLike[str]) -> FeatureSet | None:
    """The feature set a plugin model file carries (``feature_set`` with at least one template),
    or None (not JSON, no set, or a set of bare names)."""
    doc = _json_object_file(path)
    if doc is None:
        return None
    model = _model_object(doc)
    if model is None or not isinstance(model.get("feature_set"), dict):
        return None
    try:
        fs = read_featureset(model["feature_set"], path=os.fspath(path))
    except ModelFormatError:
        return None
    return fs if any(q and "template" in q for q in fs.queries) else None


def inference_config_in_model_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``learning_to_rank`` inference config an Elasticsearch trained-model file carries (a
    ``PUT _ml/trained_models`` body, or a ``GET`` response with one model), kept as it is so that
    re-exporting the model keeps its extractors, ``default_params`` and ``default_score``s."""
    doc = _json_object_file(path)
    if doc is None:
        return None
    cfgs = doc.get("trained_model_configs")
    if isinstance(cfgs, list) and len(cfgs) == 1 and isinstance(cfgs[0], dict):
        doc = cfgs[0]
    cfg = doc.get("inference_config")
    if isinstance(cfg, dict) and list(cfg) == ["learning_to_rank"] and isinstance(cfg["learning_to_rank"], dict):
        return cfg
    return None


def _json_object_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    try:
        with open(os.fspath(path), "rb") as fh:
            doc = json.loads(fh.read().decode("utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def learning_to_rank_config(
    fs: FeatureSet,
    feature_names: Sequence[str],
    *,
    placeholders: bool = False,
    default_params: Mapping[str, Any] | None = None,
) -> LtrConfig:
    """``{"learning_to_rank": {"feature_extractors": [...]}}`` for the model's ``feature_names``
    (in that order), each built from the set's feature of the same name (see the module notes)."""
    missing = [n for n in feature_names if n not in fs.index]
    if missing:
        raise UnsupportedModelError(
            f"cannot export to Elasticsearch: feature set {fs.name!r} has no feature(s) "
            f"{missing} that the model reads (the set has {list(fs.features)})",
            field="featureset",
        )
    extractors = []
    held: list[tuple[str, str]] = []
    for name in feature_names:
        query, why = _query_of(name, fs.queries[fs.index[name]])
        if query is None:
            if not placeholders:
                raise UnsupportedModelError(
                    f"cannot export to Elasticsearch: feature [{name}] of feature set "
                    f"{fs.name!r}: {why} (pass placeholders=True / --placeholder-extractors to "
                    "write a match_none placeholder query for it)",
                    field=f"featureset.features.{name}",
                )
            held.append((name, why))
            query = dict(PLACEHOLDER_QUERY)
        extractors.append({"query_extractor": {"feature_name": name, "query": query}})
    ltr: dict[str, Any] = {"feature_extractors": extractors}
    if default_params:
        if not isinstance(default_params, Mapping) or not all(
            isinstance(k, str) for k in default_params
        ):
            raise ValueError("default_params must be an object with string keys")
        ltr["default_params"] = dict(default_params)
    if held:
        listed = "; ".join(f"[{n}]: {w}" for n, w in held)
        warnings.warn(
            f"Elasticsearch export: match_none placeholder query extractors for {listed}",
            PlaceholderExtractorWarning,
            stacklevel=2,
        )
    return LtrConfig({"learning_to_rank": ltr}, tuple(held))


def _query_of(name: str, q: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """(the query object, "") or (None, why it cannot be converted)."""
    if not q or "template" not in q:
        return None, "it has no template (query)"
    lang = q.get("template_language", MUSTACHE)
    if lang != MUSTACHE:
        return None, (
            f"template_language {lang!r}: Elasticsearch's extractors are mustache-templated queries "
            "only (no derived expressions or scripts over other features)"
        )
    t = q["template"]
    if isinstance(t, str):
        try:
            t = json.loads(t)
        except ValueError:
            return None, (
                "its string template is not JSON (mustache tags outside JSON strings?); "
                "Elasticsearch's query_extractor takes a query object"
            )
    if not isinstance(t, dict) or len(t) != 1:
        return None, "its template is not one query object ({\"<query type>\": {...}})"
    plugin = sorted(_plugin_queries(t))
    if plugin:
        return None, f"it uses the plugin's own query type(s) {plugin}, unknown to Elasticsearch"
    return t, ""


def _plugin_queries(node: Any, top: bool = True) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k in PLUGIN_QUERIES and (k != "ltr" or top):
                found.add(k)
            found |= _plugin_queries(v, False)
    elif isinstance(node, list):
        for v in node:
            found |= _plugin_queries(v, False)
    return found


def _model_object(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The ``StoredLtrModel`` object ``{"name", "feature_set", "model": {type, definition}}``."""
    if isinstance(doc.get("_source"), dict):
        doc = doc["_source"]
    inner = doc.get("model")
    if not isinstance(inner, dict):
        return None
    if isinstance(inner.get("model"), dict):
        return inner
    if "type" in inner and "definition" in inner:
        return doc
    return None


def _find_featureset(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("_source"), dict):
        doc = doc["_source"]
    if isinstance(doc.get("featureset"), dict):
        return doc["featureset"]
    if "features" in doc:
        return doc
    model = _model_object(doc)
    if model is not None and isinstance(model.get("feature_set"), dict):
        return _find_featureset(model["feature_set"])
    return None
