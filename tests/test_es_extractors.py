"""``export --to es`` with the feature set's query templates as Elasticsearch feature extractors.

The schema the exported body is checked against is Elasticsearch's own parser (elastic/elasticsearch,
``x-pack/plugin/core/src/main/java/org/elasticsearch/xpack/core/ml/inference/trainedmodel/``
``LearningToRankConfig.java`` -- fields ``num_top_feature_importance_values``,
``feature_extractors`` (named objects, duplicate ``feature_name`` refused), ``default_params`` --
and ``ltr/QueryExtractorBuilder.java`` -- ``query_extractor`` with ``feature_name`` (mandatory
string), ``query`` (mandatory object), ``default_score`` (optional float, must be >= 0)), plus
``LearningToRankConfig.validateTrainedModelInput``: no ``input.field_names`` for this model type.
The feature-set bodies are the o19s plugin's ``_featureset`` documents (``StoredFeature``: name,
params, template_language (default mustache), template as an object or a string).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal

from ltrcompile.errors import ModelFormatError, UnsupportedModelError
from ltrcompile.exporters import ExportApproximationWarning, export_model
from ltrcompile.exporters import es_ltr_config as lc
from ltrcompile.frontends import elasticsearch as es
from ltrcompile.frontends import load_model

ROOT = Path(__file__).resolve().parent.parent

# The plugin docs' movie feature set (PUT _ltr/_featureset/movie_features), every template form.
MOVIE_FEATURES = {
    "featureset": {
        "name": "movie_features",
        "features": [
            {
                "name": "title_query",
                "params": ["keywords"],
                "template_language": "mustache",
                "template": {"match": {"title": "{{keywords}}"}},
            },
            {  # a string template: the plugin keeps it as text and renders it, then parses JSON
                "name": "overview_query",
                "params": ["keywords"],
                "template_language": "mustache",
                "template": '{"match": {"overview": "{{keywords}}"}}',
            },
            {  # template_language defaults to mustache, params to []
                "name": "user_rating",
                "template": {
                    "function_score": {
                        "functions": [{"field_value_factor": {"field": "vote_average", "missing": 0}}],
                        "query": {"match_all": {}},
                    }
                },
            },
        ],
    }
}
DERIVED = {
    "name": "title_query_boost",
    "params": ["some_multiplier"],
    "template_language": "derived_expression",
    "template": "title_query * some_multiplier",
}
SCRIPTED = {
    "name": "custom_title_query_boost",
    "params": ["some_multiplier"],
    "template_language": "script_feature",
    "template": {
        "lang": "painless",
        "source": "params.feature_vector.get('title_query') * (long)params.some_multiplier",
        "params": {"some_multiplier": "some_multiplier"},
    },
}
EXPLORER = {
    "name": "title_df_mean",
    "params": ["keywords"],
    "template": {"match_explorer": {"type": "mean_raw_df", "query": {"match": {"title": "{{keywords}}"}}}},
}
UNQUOTED = {  # mustache outside a JSON string: valid for the plugin, not a query object for ES
    "name": "boosted_title",
    "params": ["keywords", "b"],
    "template": '{"match": {"title": {"query": "{{keywords}}", "boost": {{b}}}}}',
}

# one XGBoost tree over the three features (o19s model/xgboost+json), with the set inline: the
# PUT _ltr/_model body shape, which carries the feature set as the plugin stores it
XGB_TREE = [
    {"nodeid": 0, "depth": 0, "split": "title_query", "split_condition": 1.5, "yes": 1, "no": 2, "missing": 1,
     "children": [{"nodeid": 1, "leaf": -0.25},
                  {"nodeid": 2, "depth": 1, "split": "user_rating", "split_condition": 7.0, "yes": 3, "no": 4,
                   "missing": 4, "children": [{"nodeid": 3, "leaf": 0.5}, {"nodeid": 4, "leaf": 1.25}]}]},
]  # fmt: skip
MODEL_DOC = {
    "model": {
        "name": "movie_xgb",
        "feature_set": MOVIE_FEATURES["featureset"],
        "model": {"type": "model/xgboost+json", "definition": json.dumps(XGB_TREE)},
    }
}

GOLDEN_EXTRACTORS = [
    {"query_extractor": {"feature_name": "title_query", "query": {"match": {"title": "{{keywords}}"}}}},
    {"query_extractor": {"feature_name": "overview_query", "query": {"match": {"overview": "{{keywords}}"}}}},
    {"query_extractor": {"feature_name": "user_rating", "query": {"function_score": {
        "functions": [{"field_value_factor": {"field": "vote_average", "missing": 0}}],
        "query": {"match_all": {}}}}}},
]  # fmt: skip

# TrainedModelConfig fields a PUT _ml/trained_models body may carry (the ones this exporter writes)
_PUT_FIELDS = {"definition", "compressed_definition", "inference_config", "description", "input", "tags", "metadata"}


def check_es_schema(body):
    """Field by field, what Elasticsearch's parsers accept (see the module docstring)."""
    assert set(body) <= _PUT_FIELDS, set(body) - _PUT_FIELDS
    assert "field_names" not in body.get("input", {}), "learning_to_rank refuses input.field_names"
    ic = body["inference_config"]
    assert list(ic) == ["learning_to_rank"]  # one named inference config
    ltr = ic["learning_to_rank"]
    assert set(ltr) <= {"num_top_feature_importance_values", "feature_extractors", "default_params"}
    if "default_params" in ltr:
        assert isinstance(ltr["default_params"], dict)
    exs = ltr.get("feature_extractors", [])
    assert isinstance(exs, list)
    names = []
    for e in exs:
        assert isinstance(e, dict) and list(e) == ["query_extractor"], e  # one named object each
        q = e["query_extractor"]
        assert set(q) <= {"feature_name", "query", "default_score"} and {"feature_name", "query"} <= set(q)
        assert isinstance(q["feature_name"], str)
        assert isinstance(q["query"], dict) and len(q["query"]) == 1  # one query type
        if "default_score" in q:
            assert isinstance(q["default_score"], float) and q["default_score"] >= 0
        names.append(q["feature_name"])
    assert len(set(names)) == len(names), "duplicate [feature_name] values"
    # every feature the trained model reads has an extractor (ES binds features by name)
    model_names = body["definition"]["trained_model"]["ensemble"]["feature_names"]
    assert set(model_names) <= set(names)
    json.dumps(body, allow_nan=False)  # plain JSON, no NaN/Infinity


def approx_export(ens, **opts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportApproximationWarning)
        return export_model(ens, to="es", exact=False, **opts)


# ---------------------------------------------------------------------------- golden body
def test_golden_body_from_the_model_documents_feature_set():
    ens = es.from_object(MODEL_DOC)
    fs = lc.read_featureset(MODEL_DOC)
    body = approx_export(ens, featureset=fs)
    check_es_schema(body)
    assert body["inference_config"] == {"learning_to_rank": {"feature_extractors": GOLDEN_EXTRACTORS}}
    assert "description" not in body  # no placeholders
    # the trained model binds the same names, in the feature set's order
    assert body["definition"]["trained_model"]["ensemble"]["feature_names"] == [
        "title_query", "overview_query", "user_rating",
    ]  # fmt: skip
    # round trip through the ES frontend: same features, same decisions, scores within float32
    back = load_model(body)
    assert back.feature_names == ["title_query", "overview_query", "user_rating"]
    X = np.array([[0.0, 3.0, 9.0], [1.5, 0.0, 6.5], [2.0, 1.0, 7.0], [3.25, 2.0, 9.5], [np.nan, 1.0, 1.0]])
    assert_bit_equal(back.predict(X), ens.predict(X).astype(np.float64), "ES export vs o19s model")


def test_every_accepted_featureset_document_shape_gives_the_same_extractors(tmp_path):
    ens = es.from_object(MODEL_DOC)
    fsdoc = MOVIE_FEATURES["featureset"]
    shapes = {
        "_featureset body": MOVIE_FEATURES,
        "bare set": fsdoc,
        "GET _ltr/_featureset": {"_index": ".ltrstore", "_id": "featureset-movie_features", "_version": 1,
                                 "found": True, "_source": {"name": "movie_features", "type": "featureset",
                                                            "featureset": fsdoc}},
        "PUT _ltr/_model body": MODEL_DOC,
        "GET _ltr/_model": {"_index": ".ltrstore", "_id": "model-movie_xgb", "found": True,
                            "_source": {"name": "movie_xgb", "type": "model", "model": MODEL_DOC["model"]}},
    }  # fmt: skip
    for what, doc in shapes.items():
        body = approx_export(ens, featureset=doc)
        assert body["inference_config"]["learning_to_rank"]["feature_extractors"] == GOLDEN_EXTRACTORS, what
        p = tmp_path / "fs.json"
        p.write_text(json.dumps(doc))
        assert approx_export(ens, featureset=str(p))["inference_config"] == body["inference_config"], what


def test_exact_es_model_with_extractors_and_default_params_round_trips():
    """An Elasticsearch-origin model exports exactly; the extractors ride along untouched."""
    exact_es_body()


def exact_es_body():
    trees = [{"tree": {"feature_names": ["title_query", "user_rating"], "tree_structure": [
        {"node_index": 0, "split_feature": 1, "threshold": 6.5, "decision_type": "lte", "default_left": True,
         "left_child": 1, "right_child": 2},
        {"node_index": 1, "leaf_value": -1.5}, {"node_index": 2, "leaf_value": 2.75}]}}]
    doc = {"trained_model": {"ensemble": {"feature_names": ["title_query", "user_rating"], "target_type": "regression",
                                          "aggregate_output": {"weighted_sum": {}}, "trained_models": trees}}}  # fmt: skip
    ens = es.from_object(doc)
    body = export_model(ens, to="es", featureset=MOVIE_FEATURES, default_params={"keywords": "star wars"})
    check_es_schema(body)
    ltr = body["inference_config"]["learning_to_rank"]
    assert ltr["default_params"] == {"keywords": "star wars"}
    # only the features the model reads, in the model's order
    assert [e["query_extractor"]["feature_name"] for e in ltr["feature_extractors"]] == ["title_query", "user_rating"]
    assert ltr["feature_extractors"] == [GOLDEN_EXTRACTORS[0], GOLDEN_EXTRACTORS[2]]
    back = load_model(body)
    X = np.array([[0.0, 6.5], [1.0, 6.500000000000001], [np.nan, np.nan], [2.0, -np.inf]])
    assert_bit_equal(back.predict(X), ens.predict(X), "ES -> ES with extractors")
    return body


def test_es_body_round_trips_through_the_es_frontend_and_the_cli(tmp_path):
    """ES body -> ltrcompile's ES frontend -> ES exporter: the same body, inference_config kept
    (extractors, default_params, and a default_score the o19s set has no field for)."""
    body = exact_es_body()
    body["inference_config"]["learning_to_rank"]["feature_extractors"][1]["query_extractor"]["default_score"] = 0.5
    check_es_schema(body)
    src = tmp_path / "es_model.json"
    src.write_text(json.dumps(body))
    p = cli("export", src, "--to", "es")
    assert p.returncode == 0, p.stderr
    assert "inference_config kept" in p.stderr
    assert json.loads(p.stdout) == body
    # a GET _ml/trained_models response with the one model reads the same
    src.write_text(json.dumps({"count": 1, "trained_model_configs": [{"model_id": "m", **body}]}))
    p = cli("export", src, "--to", "es")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["inference_config"] == body["inference_config"]


# ---------------------------------------------------------------------------- refused / placeholders
@pytest.mark.parametrize(
    ("feature", "why"),
    [
        (DERIVED, "template_language 'derived_expression'"),
        (SCRIPTED, "template_language 'script_feature'"),
        (EXPLORER, "the plugin's own query type(s) ['match_explorer']"),
        (UNQUOTED, "string template is not JSON"),
        ({"name": "two_queries", "template": {"match": {"a": "x"}, "term": {"b": "y"}}}, "not one query object"),
    ],
)
def test_unconvertible_features_are_refused_by_name_or_placeheld(feature, why):
    fsdoc = {"featureset": {"name": "movie_features", "features": [*MOVIE_FEATURES["featureset"]["features"], feature]}}
    names = ["title_query", "overview_query", "user_rating", feature["name"]]
    tree = XGB_TREE  # the model ignores the extra feature; ES would still compute it for the model
    ens = es.from_object({"model": {"name": "m", "model": {"type": "model/xgboost+json", "definition": json.dumps(tree)}}},
                         feature_set=names)  # fmt: skip
    with pytest.raises(UnsupportedModelError, match=rf"feature \[{feature['name']}\].*{re.escape(why)}") as ei:
        approx_export(ens, featureset=fsdoc)
    assert "--placeholder-extractors" in str(ei.value)
    with pytest.warns(lc.PlaceholderExtractorWarning, match=rf"\[{feature['name']}\]"):
        body = approx_export(ens, featureset=fsdoc, placeholder_extractors=True)
    check_es_schema(body)
    exs = body["inference_config"]["learning_to_rank"]["feature_extractors"]
    assert exs[:3] == GOLDEN_EXTRACTORS
    assert exs[3] == {"query_extractor": {"feature_name": feature["name"], "query": {"match_none": {}}}}
    assert feature["name"] in body["description"] and "placeholder" in body["description"]


def test_feature_without_template_and_set_mismatch():
    ens = es.from_object(MODEL_DOC)
    no_template = lc.read_featureset(MODEL_DOC)
    bare = {"name": "names_only", "features": ["title_query", "overview_query", "user_rating"]}
    with pytest.raises(UnsupportedModelError, match=r"feature \[title_query\].*has no template"):
        approx_export(ens, featureset=bare)
    other = {"featureset": {"name": "other", "features": MOVIE_FEATURES["featureset"]["features"][:2]}}
    with pytest.raises(UnsupportedModelError, match=r"no feature\(s\) \['user_rating'\]"):
        approx_export(ens, featureset=other)
    with pytest.raises(ValueError, match="either inference_config or featureset"):
        approx_export(ens, featureset=no_template, inference_config={"learning_to_rank": {}})
    with pytest.raises(ModelFormatError, match="no feature set in the document"):
        lc.read_featureset({"model": {"name": "x", "model": {"type": "model/linear", "definition": {}}}})
    # ltrcompile's per-feature missing-value default has no Elasticsearch counterpart: inexact
    with_default = {"name": "d", "features": [{**f, "default": 0.5} if f["name"] == "user_rating" else f
                                              for f in MOVIE_FEATURES["featureset"]["features"]]}  # fmt: skip
    with pytest.raises(UnsupportedModelError, match=r"feature \[user_rating\] has default 0.5"):
        export_model(ens, to="es", featureset=with_default)


def test_unnamed_ranklib_model_takes_the_sets_names_by_position():
    text = "## LambdaMART\n## No. of trees = 1\n<ensemble>\n<tree id=\"1\" weight=\"0.1\">\n<split>\n<feature> 2 </feature>\n<threshold> 0.5 </threshold>\n<split pos=\"left\">\n<output> -1.0 </output>\n</split>\n<split pos=\"right\">\n<output> 2.0 </output>\n</split>\n</split>\n</tree>\n</ensemble>\n"  # fmt: skip
    from ltrcompile.frontends import ranklib as rl

    ens = rl.loads(text, n_features=2)
    assert ens.feature_names is None
    body = approx_export(ens, featureset=MOVIE_FEATURES)
    check_es_schema(body)
    assert body["definition"]["trained_model"]["ensemble"]["feature_names"] == ["title_query", "overview_query"]
    assert body["inference_config"]["learning_to_rank"]["feature_extractors"] == GOLDEN_EXTRACTORS[:2]


# ---------------------------------------------------------------------------- the command line
def cli(*args):
    return subprocess.run([sys.executable, "-m", "ltrcompile", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip


def test_cli_export_es_reads_the_models_own_set_or_featureset(tmp_path):
    model = tmp_path / "movie_xgb.json"
    model.write_text(json.dumps(MODEL_DOC))
    p = cli("export", model, "--to", "es", "--approximate")
    assert p.returncode == 0, p.stderr
    assert "feature extractors from the feature set 'movie_features'" in p.stderr
    body = json.loads(p.stdout)
    check_es_schema(body)
    assert body["inference_config"]["learning_to_rank"]["feature_extractors"] == GOLDEN_EXTRACTORS
    # --featureset wins over the model's copy; an unconvertible feature names itself (exit 3)...
    fs = tmp_path / "fs.json"
    feats = MOVIE_FEATURES["featureset"]["features"]
    fs.write_text(json.dumps({"featureset": {"name": "movie_features", "features": [*feats[:2], {**DERIVED, "name": "user_rating"}]}}))  # fmt: skip
    p = cli("export", model, "--to", "es", "--approximate", "--featureset", fs)
    assert p.returncode == 3 and "feature [user_rating]" in p.stderr and "derived_expression" in p.stderr, p.stderr
    # ... or is written as a placeholder, said on stderr and in the body
    out = tmp_path / "es.json"
    p = cli("export", model, "--to", "es", "--approximate", "--featureset", fs, "--placeholder-extractors", "-o", out)
    assert p.returncode == 0, p.stderr
    assert "placeholder" in p.stderr and "[user_rating]" in p.stderr
    body = json.loads(out.read_text())
    check_es_schema(body)
    assert body["inference_config"]["learning_to_rank"]["feature_extractors"][2] == {
        "query_extractor": {"feature_name": "user_rating", "query": {"match_none": {}}}
    }
    assert "user_rating" in body["description"]
    # the options are es-only; placeholders need a set
    p = cli("export", model, "--to", "o19s", "--featureset", fs)
    assert p.returncode == 2 and "--to es only" in p.stderr
    plain = tmp_path / "plain.json"
    names_only = {"name": "n", "features": ["title_query", "overview_query", "user_rating"]}
    plain.write_text(json.dumps({"model": {"name": "m", "feature_set": names_only, "model": MODEL_DOC["model"]["model"]}}))  # fmt: skip
    p = cli("export", plain, "--to", "es", "--approximate", "--placeholder-extractors")
    assert p.returncode == 2 and "needs a feature set" in p.stderr
    p = cli("export", plain, "--to", "es", "--approximate")
    assert p.returncode == 0 and "no feature_extractors" in p.stderr, p.stderr
    assert json.loads(p.stdout)["inference_config"] == {"learning_to_rank": {}}
