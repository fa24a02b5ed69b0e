"""The service's OpenAPI 3.1 document and a self-contained HTML rendering of it (no CDN needed)."""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

_ERR = {"$ref": "#/components/responses/Error"}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"$ref": "#/components/schemas/Name"},
}
_VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_FS = {
    "name": "fs",
    "in": "path",
    "required": True,
    "schema": {"$ref": "#/components/schemas/Name"},
}
_AUTH = [{"bearer": []}]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _q(
    name: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


_RESCORE_QUERY = [
    _q("version", {"type": "integer"}, "serve this version instead of the active one"),
    _q(
        "window_size",
        {"type": "integer", "minimum": 0, "maximum": 10000, "default": 10},
        "top-N hits by first-pass score to rescore (ES default 10)",
    ),
    _q("query_weight", {"type": "number", "default": 1.0}, "weight of the first-pass score"),
    _q("rescore_query_weight", {"type": "number", "default": 1.0}, "weight of the model score"),
    _q(
        "score_mode",
        {"enum": ["total", "multiply", "avg", "max", "min"], "default": "total"},
        "how to combine the weighted scores (Elasticsearch QueryRescoreMode)",
    ),
    _q(
        "rescorer",
        {"enum": ["query", "learning_to_rank"], "default": "query"},
        "query: Elasticsearch's query rescorer with an sltr query; learning_to_rank: "
        "Elasticsearch's native LTR rescorer (the model score replaces the first-pass score; "
        "window_size required and >= from + size; bounded-window shift applied)",
    ),
    _q("from", {"type": "integer", "minimum": 0}, "learning_to_rank: the search's from"),
    _q("size", {"type": "integer", "minimum": 0}, "learning_to_rank: the search's size"),
    _q("log_name", {"type": "string"}, "which fields._ltrlog entry holds the features (ES body)"),
]

_EXPLAIN = _q(
    "explain",
    {"type": "string", "pattern": "^(true|false|[0-9]+)$"},
    "true (top 10) or K (1..1000): per hit, the K features with the largest |TreeSHAP "
    "contribution| (raw-margin space, with the bias); rescore: rescored hits only (native form: "
    "hit.explanation; ES form: _rescore.explanations). 422 for models without node covers.",
)


@lru_cache(maxsize=1)
def openapi_spec() -> dict[str, Any]:
    from .. import __version__

    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "liveness and active versions",
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format"}},
            }
        },
        "/featuresets": {
            "get": {"summary": "list feature sets", "responses": {"200": _json({"type": "object"})}}
        },
        "/featuresets/{fs}": {
            "parameters": [_FS],
            "get": {
                "summary": "get a feature set",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/FeatureSet"}),
                    "404": _ERR,
                },
            },
            "put": {
                "summary": "create or replace a feature set",
                "security": _AUTH,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/FeatureSet"}}
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/FeatureSet"}, "replaced"),
                    "201": _json({"$ref": "#/components/schemas/FeatureSet"}, "created"),
                    "400": _ERR,
                    "401": _ERR,
                },
            },
            "delete": {
                "summary": "delete a feature set (model versions keep their copy)",
                "security": _AUTH,
                "responses": {"200": _json({"type": "object"}), "404": _ERR},
            },
        },
        "/models": {
            "get": {
                "summary": "list models, versions and pending uploads",
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/models/{name}": {
            "parameters": [_NAME],
            "get": {
                "summary": "model details: active version, versions, pending uploads",
                "responses": {"200": _json({"type": "object"}), "404": _ERR},
            },
            "delete": {
                "summary": "delete a model and all its versions",
                "security": _AUTH,
                "responses": {"200": _json({"type": "object"}), "404": _ERR},
            },
        },
        "/models/{name}/versions": {
            "parameters": [_NAME],
            "post": {
                "summary": "upload a model definition as a new version",
                "description": (
                    "The body is the model file exactly as the training library wrote it (LightGBM "
                    "text, XGBoost JSON/UBJSON, RankLib, ES LTR definitions...). It is parsed, "
                    "compiled server-side in the background, checked for parity against the "
                    "reference interpreter and the source library (verdict verified/incomplete/"
                    "mismatch), written to the store atomically, and (activate=true, verdict "
                    "verified or accept_incomplete=true) made the served version by an atomic swap. Pickles and binaries are refused."
                ),
                "security": _AUTH,
                "parameters": [
                    _q("featureset", {"type": "string"}, "feature set to bind the model to", True),
                    _q(
                        "format",
                        {"type": "string", "default": "auto"},
                        "source format; auto-detected by default",
                    ),
                    _q(
                        "filename",
                        {"type": "string"},
                        "original file name (its extension helps detection)",
                    ),
                    _q("activate", {"type": "boolean", "default": True}, "activate when ready"),
                    _q(
                        "wait",
                        {"type": "boolean", "default": False},
                        "answer only when the version is ready (201) or failed",
                    ),
                    _q(
                        "binding",
                        {"enum": ["auto", "name", "position"], "default": "auto"},
                        "how model features map to the feature set",
                    ),
                    _q(
                        "num_iteration",
                        {"type": "string", "pattern": "^([0-9]+|best)$"},
                        "boosting rounds to keep: N, 0 (all) or best; default: what the library's "
                        "own predict uses for the file (XGBoost and LightGBM files: every round)",
                    ),
                    _q(
                        "accept_incomplete",
                        {"type": "boolean", "default": False},
                        "activate the version even when its verification is incomplete (a "
                        "reference, e.g. the source library, could not run); otherwise it is "
                        "stored but not activated and the job's activation_held says why",
                    ),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "202": _json({"$ref": "#/components/schemas/Job"}, "accepted; poll status_url"),
                    "201": _json({"$ref": "#/components/schemas/Job"}, "ready (wait=true)"),
                    "400": _ERR,
                    "401": _ERR,
                    "404": _ERR,
                    "413": _ERR,
                    "422": _ERR,
                },
            },
        },
        "/models/{name}/versions/{version}": {
            "parameters": [_NAME, _VERSION],
            "get": {
                "summary": "version metadata (format, binding, digest, parity, compile time)",
                "responses": {"200": _json({"type": "object"}), "404": _ERR},
            },
            "delete": {
                "summary": "delete an inactive version",
                "security": _AUTH,
                "responses": {"200": _json({"type": "object"}), "404": _ERR, "409": _ERR},
            },
        },
        "/models/{name}/versions/{version}/activate": {
            "parameters": [_NAME, _VERSION],
            "post": {
                "summary": "make this version the served one (atomic; rollback = activate an older one)",
                "security": _AUTH,
                "responses": {"200": _json({"type": "object"}), "404": _ERR},
            },
        },
        "/models/{name}/rescore": {
            "parameters": [_NAME],
            "post": {
                "summary": "re-rank first-pass hits with Elasticsearch rescore semantics",
                "description": (
                    "Body: {hits: [{id, score, features}], window_size, query_weight, "
                    "rescore_query_weight, score_mode} or an Elasticsearch search response as is "
                    "(hits.hits[] with _id, _score and features in _source, fields or "
                    "fields._ltrlog; parameters then go in the query string). The top window_size "
                    "hits by first-pass score get combine(first*query_weight, "
                    "model*rescore_query_weight) in float32; the others first*query_weight; then "
                    "everything is sorted by score, exactly as Elasticsearch's QueryRescorer. "
                    "rescorer=learning_to_rank: the window's scores become (float)(model + "
                    "shift), sorted; hits beyond the window follow, unchanged."
                ),
                "parameters": [*_RESCORE_QUERY, _EXPLAIN],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/RescoreRequest"}
                        }
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/RescoreResponse"}),
                    "400": _ERR,
                    "404": _ERR,
                    "413": _ERR,
                },
            },
        },
        "/models/{name}/score": {
            "parameters": [_NAME, _RESCORE_QUERY[0], _EXPLAIN],
            "post": {
                "summary": "plain model scores for a matrix of feature vectors",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["features"],
                                "properties": {
                                    "features": {
                                        "type": "array",
                                        "items": {
                                            "oneOf": [
                                                {
                                                    "type": "array",
                                                    "items": {"type": ["number", "null"]},
                                                },
                                                {
                                                    "type": "object",
                                                    "additionalProperties": {
                                                        "type": ["number", "null"]
                                                    },
                                                },
                                            ]
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "model": {"type": "string"},
                                "version": {"type": "integer"},
                                "scores": {"type": "array", "items": {"type": "number"}},
                            },
                        }
                    ),
                    "400": _ERR,
                    "404": _ERR,
                },
            },
        },
        "/jobs": {
            "get": {
                "summary": "upload jobs of this server process",
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/jobs/{job}": {
            "get": {
                "summary": "one upload job",
                "parameters": [
                    {"name": "job", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json({"$ref": "#/components/schemas/Job"}), "404": _ERR},
            }
        },
    }
    hit = {
        "type": "object",
        "required": ["id", "score", "features"],
        "properties": {
            "id": {"type": ["string", "integer"]},
            "score": {"type": "number", "description": "first-pass score"},
            "features": {
                "oneOf": [
                    {
                        "type": "array",
                        "items": {"type": ["number", "null"]},
                        "description": "feature-set order; null = missing",
                    },
                    {
                        "type": "object",
                        "additionalProperties": {"type": ["number", "null"]},
                        "description": "by name; absent = missing",
                    },
                ]
            },
        },
    }
    schemas = {
        "Name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
        "FeatureSet": {
            "type": "object",
            "required": ["features"],
            "properties": {
                "name": {"$ref": "#/components/schemas/Name"},
                "features": {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            {"type": "string"},
                            {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "default": {
                                        "type": ["number", "null"],
                                        "description": "value for a missing feature; null = missing (NaN)",
                                    },
                                },
                            },
                        ]
                    },
                },
                "feature_normalizers": {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [
                            {
                                "type": "object",
                                "properties": {
                                    "standard": {
                                        "type": "object",
                                        "properties": {
                                            "mean": {"type": "number"},
                                            "standard_deviation": {"type": "number"},
                                        },
                                    }
                                },
                            },
                            {
                                "type": "object",
                                "properties": {
                                    "min_max": {
                                        "type": "object",
                                        "properties": {
                                            "minimum": {"type": "number"},
                                            "maximum": {"type": "number"},
                                        },
                                    }
                                },
                            },
                        ]
                    },
                },
            },
        },
        "RescoreRequest": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["hits"],
                    "properties": {
                        "hits": {"type": "array", "items": hit},
                        "feature_matrix": {
                            "type": "object",
                            "description": "instead of per-hit features: base64 of the little-endian "
                            "row-major n_hits x n_features matrix (NaN = missing)",
                            "properties": {
                                "dtype": {"enum": ["float32", "float64"]},
                                "data": {"type": "string", "contentEncoding": "base64"},
                            },
                        },
                        "window_size": {"type": "integer", "default": 10},
                        "query_weight": {"type": "number", "default": 1.0},
                        "rescore_query_weight": {"type": "number", "default": 1.0},
                        "score_mode": {"enum": ["total", "multiply", "avg", "max", "min"]},
                        "rescorer": {"enum": ["query", "learning_to_rank"]},
                        "from": {"type": "integer", "minimum": 0},
                        "size": {"type": "integer", "minimum": 0},
                    },
                },
                {
                    "type": "object",
                    "description": "an Elasticsearch search response",
                    "required": ["hits"],
                    "properties": {
                        "hits": {"type": "object", "properties": {"hits": {"type": "array"}}}
                    },
                },
            ]
        },
        "RescoreResponse": {
            "type": "object",
            "description": "native form (ES form: the response with hits.hits re-ordered, _score replaced, and _rescore added)",
            "properties": {
                "model": {"type": "string"},
                "version": {"type": "integer"},
                "hits": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {},
                            "score": {"type": "number"},
                            "first_pass_score": {"type": "number"},
                            "model_score": {"type": ["number", "null"]},
                            "rescored": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "Job": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "model": {"type": "string"},
                "version": {"type": "integer"},
                "state": {"enum": ["queued", "compiling", "verifying", "ready", "failed"]},
                "error": {"type": ["string", "null"]},
                "compile_seconds": {"type": ["number", "null"]},
                "verdict": {"enum": ["verified", "incomplete", "mismatch", None]},
                "activation_held": {
                    "type": ["string", "null"],
                    "description": "why the upload did not activate the version (incomplete "
                    "verification without accept_incomplete=true)",
                },
            },
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
                }
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ltrcompile rescoring service",
            "version": __version__,
            "description": "Serve compiled learning-to-rank models with Elasticsearch rescore semantics.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": _json({"$ref": "#/components/schemas/Error"}, "error")},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@lru_cache(maxsize=1)
def docs_html() -> str:
    spec = openapi_spec()
    rows = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            params = ", ".join(
                f"{p['name']}{'*' if p.get('required') else ''}"
                for p in op.get("parameters", []) + ops.get("parameters", [])
            )
            auth = "token" if op.get("security") else ""
            rows.append(
                f"<tr><td><b>{method.upper()}</b></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}"
                + (
                    f"<br><small>{html.escape(op['description'])}</small>"
                    if op.get("description")
                    else ""
                )
                + f"</td><td><small>{html.escape(params)}</small></td><td>{auth}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ltrcompile service</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{border-top:1px solid #ccc;padding:4px;"
        "vertical-align:top}</style></head><body>"
        f"<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])}</h1>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1). "
        "* = required; 'token' = needs <code>Authorization: Bearer</code> when the server has one.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>auth</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
