"""The o19s LTR plugin's ``_ltr`` REST paths as aliases over the service's store.

Scripts written for the Elasticsearch LTR plugin (o19s/elasticsearch-learning-to-rank, followed at
commit 1dfed57: ``rest/RestFeatureManager``, ``RestAddFeatureToSet``, ``RestCreateModelFromSet``,
``RestFeatureStoreCaches``, ``RestLTRStats``) work against the service by changing the host: the
same store, versions and bearer-token auth as the native endpoints, answered with the bodies and
status codes Elasticsearch gives for the plugin's documents (``IndexResponse``, ``GetResponse``,
``DeleteResponse`` and ``{"error": {"root_cause", "type", "reason"}, "status"}`` errors). The store
is reported as the plugin's default store (index ``.ltrstore``, store ``_default_``), a document's
id as ``<type>-<name>``. What is mirrored and what deliberately is not: docs/service.md.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import LtrCompileError
from ..rescore import FeatureSet, RescoreInputError, check_name
from .jobs import FINISHED
from .store import StoreError

INDEX = ".ltrstore"
STORE = "_default_"
NODE = "ltrcompile"
_SHARDS = {"total": 1, "successful": 1, "failed": 0}
_ERROR_TYPE = {
    400: "illegal_argument_exception",
    401: "security_exception",
    404: "resource_not_found_exception",
    405: "illegal_argument_exception",
    409: "version_conflict_engine_exception",
    413: "content_too_long_exception",
}
CREATE_WAIT_S = 900.0
#: IndexFeatureStore.VERSION: the store format version the plugin reports in ``GET _ltr``
STORE_VERSION = 2
_ALL = ["GET", "HEAD", "PUT", "POST", "DELETE"]


class LtrError(Exception):
    """An error answered in Elasticsearch's shape (``type`` as Elasticsearch names it)."""

    def __init__(
        self,
        status: int,
        reason: str,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_ or _ERROR_TYPE.get(status, "exception")
        self.headers = headers or {}


def es_error(
    status: int, type_: str, reason: str, headers: dict[str, str] | None = None
) -> Response:
    cause = {"type": type_, "reason": reason}
    if type_ == "version_conflict_engine_exception":
        cause["index"] = INDEX
    return _json({"error": {"root_cause": [cause], **cause}, "status": status}, status, headers)


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    from .app import json_response

    return json_response(obj, status, headers)


def _doc_id(kind: str, name: str) -> str:
    return f"{kind}-{name}"


def _write_response(kind: str, name: str, version: int, result: str) -> dict[str, Any]:
    """Elasticsearch's ``IndexResponse``/``DeleteResponse`` body for a plugin document."""
    out: dict[str, Any] = {
        "_index": INDEX,
        "_id": _doc_id(kind, name),
        "_version": version,
        "result": result,
    }
    if result in ("created", "updated"):
        out["forced_refresh"] = True
    out["_shards"] = _SHARDS
    return out


def _not_found(kind: str, name: str) -> Response:
    return _json({"_index": INDEX, "_id": _doc_id(kind, name), "found": False}, 404)


def _plugin_featureset(fs: FeatureSet) -> dict[str, Any]:
    """``StoredFeatureSet`` as the plugin writes it: ``{"name", "features": [...]}`` (plus our
    ``default`` per feature and ``feature_normalizers`` when there are any)."""
    d = fs.to_dict()
    if not d.get("feature_normalizers"):
        d.pop("feature_normalizers", None)
    return d


def _plugin_features(feats: Any, where: str) -> list[Any]:
    """Features as ``StoredFeature`` parses them: ``template`` mandatory, ``params`` default ``[]``,
    ``template_language`` default ``mustache``."""
    if not isinstance(feats, list):
        raise LtrError(400, f"[{where}] must be a list of features", "parsing_exception")
    out = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise LtrError(400, f"{where}[{i}] must be an object", "parsing_exception")
        if "template" not in f:
            raise LtrError(400, "Field [template] is mandatory", "parsing_exception")
        out.append({"params": [], "template_language": "mustache", **f})
    return out


def _featureset(name: str, doc: Any, features: list[Any]) -> FeatureSet:
    """Build the set; the plugin's messages for duplicate names, an empty set is refused."""
    seen: set[str] = set()
    for f in features:
        n = f.get("name")
        if n in seen:
            raise LtrError(400, f"Feature [{n}] defined twice in this set: [{name}]")
        seen.add(n)
    if not features:
        raise LtrError(
            400,
            f"feature set [{name}] has no features: the service binds models to a set's features, "
            "so it stores no empty sets (create it with its features, or with _addfeatures, which "
            "creates the set)",
        )
    body = {k: v for k, v in doc.items() if k != "name"} if isinstance(doc, dict) else {}
    body["features"] = features
    try:
        return FeatureSet.from_dict({"name": name, **body}, name)
    except RescoreInputError as exc:
        raise LtrError(400, str(exc), "parsing_exception") from None


def _no_validation(body: dict[str, Any]) -> None:
    if "validation" in body:
        raise LtrError(
            400,
            "[validation] runs the feature queries against an Elasticsearch index; the service has "
            "no index to run them on: send the request without 'validation'",
        )


class LtrApi:
    """The ``_ltr`` handlers bound to one :class:`~ltrcompile.service.app.Service`."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.evictions = 0

    # -------------------------------------------------------------- plumbing
    def _wrap(
        self, name: str, fn: Callable[[Request], Awaitable[Response]], write: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        from .app import ApiError

        async def handler(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                if write:
                    self._auth(request)
                resp = await fn(request)
            except LtrError as exc:
                resp = es_error(exc.status, exc.type, str(exc), exc.headers)
            except ApiError as exc:
                t = (
                    "parse_exception"
                    if exc.status == 400
                    else _ERROR_TYPE.get(exc.status, "exception")
                )
                resp = es_error(exc.status, t, str(exc), exc.headers)
            except StoreError as exc:
                resp = es_error(exc.status, _ERROR_TYPE.get(exc.status, "exception"), str(exc))
            except (RescoreInputError, LtrCompileError) as exc:
                resp = es_error(400, "illegal_argument_exception", str(exc))
            except Exception:
                import logging

                logging.getLogger("ltrcompile.service").exception("internal error in %s", name)
                resp = es_error(500, "exception", "internal server error (see the server log)")
            m = self.svc.metrics
            label = self.svc._model_label(request.path_params.get("name"))
            m.requests.labels(label, name, str(resp.status_code)).inc()
            m.latency.labels(label, name).observe(time.perf_counter() - t0)
            return resp

        handler.__name__ = fn.__name__
        return handler

    def _auth(self, request: Request) -> None:
        from .app import ApiError

        try:
            self.svc._check_token(request)
        except ApiError as exc:
            reason = (
                f"missing authentication credentials for REST request [{request.url.path}]"
                if not request.headers.get("authorization")
                else "unable to authenticate with provided credentials and anonymous access is "
                "not allowed for this request"
            )
            raise LtrError(401, reason, "security_exception", exc.headers) from None

    async def _body_json(self, request: Request, limit: int | None = None) -> Any:
        from .app import loads

        raw = await self.svc._body(request, limit or self.svc.max_body)
        if not raw.strip():
            raise LtrError(400, "Missing content or source param.")
        return loads(raw)

    def routes(self) -> list[Route]:
        w = self._wrap
        fs = "/_ltr/_featureset/{fs}"
        return [
            Route(fs, w("ltr_featureset_put", self.fs_put, True), methods=["PUT", "POST"]),
            Route(fs, w("ltr_featureset_get", self.fs_get), methods=["GET"]),
            Route(fs, w("ltr_featureset_delete", self.fs_delete, True), methods=["DELETE"]),
            Route(
                fs + "/_addfeatures",
                w("ltr_addfeatures", self.add_features, True),
                methods=["POST"],
            ),
            Route(
                fs + "/_addfeatures/{query}",
                w("ltr_addfeatures", self.add_features, True),
                methods=["POST"],
            ),
            Route(
                fs + "/_createmodel",
                w("ltr_createmodel", self.create_model, True),
                methods=["POST"],
            ),
            Route("/_ltr/_model/{name}", w("ltr_model_get", self.model_get), methods=["GET"]),
            Route(
                "/_ltr/_model/{name}",
                w("ltr_model_delete", self.model_delete, True),
                methods=["DELETE"],
            ),
            Route(
                "/_ltr/_model/{name}",
                w("ltr_model_put", self.model_put, True),
                methods=["PUT", "POST"],
            ),
            Route("/_ltr/_cachestats", w("ltr_cachestats", self.cache_stats), methods=["GET"]),
            Route(
                "/_ltr/_clearcache", w("ltr_clearcache", self.clear_cache, True), methods=["POST"]
            ),
            Route("/_ltr/_stats", w("ltr_stats", self.stats), methods=["GET"]),
            Route("/_ltr/_stats/{stat}", w("ltr_stats", self.stats), methods=["GET"]),
            Route("/_ltr/_featureset", w("ltr_featureset_search", self.search), methods=["GET"]),
            Route("/_ltr/_model", w("ltr_model_search", self.search), methods=["GET"]),
            Route("/_ltr", w("ltr_store_list", self.store_list), methods=["GET"]),
            Route("/_ltr", w("ltr_store_create", self.store_create, True), methods=["PUT"]),
            Route("/_ltr", w("ltr_store_update", self.store_update, True), methods=["POST"]),
            Route("/_ltr", w("ltr_store_delete", self.store_delete, True), methods=["DELETE"]),
            Route("/_ltr/{store}", w("ltr_named_store", self.named_store), methods=_ALL),
            Route(
                "/_ltr/{store}/{rest:path}", w("ltr_named_store", self.named_store), methods=_ALL
            ),
        ]

    # -------------------------------------------------------------- listing
    async def search(self, request: Request) -> Response:
        """``GET _ltr/_featureset`` / ``GET _ltr/_model`` (``RestSearchStoreElements``): the
        stored documents of that type as a search response, ``prefix`` (case-insensitive name
        prefix, the plugin's ``name.prefix`` edge n-grams), ``from`` (0) and ``size`` (20). Hits
        are in name order with ``_score`` 1.0 (the plugin's order and scores are Lucene's)."""
        kind = "featureset" if request.url.path.rstrip("/").endswith("_featureset") else "model"
        q = request.query_params
        unknown = sorted(set(q) - {"prefix", "from", "size"})
        if unknown:
            raise LtrError(
                400, f"request [{request.url.path}] contains unrecognized parameters: {unknown}"
            )
        start, size = _int_param(q, "from", 0), _int_param(q, "size", 20)
        prefix = q.get("prefix", "").lower()
        store = self.svc.store
        names = store.list_featuresets() if kind == "featureset" else store.list_models()
        names = [n for n in names if n.lower().startswith(prefix)]
        hits = []
        for name in names[start : start + size]:
            try:
                doc = await asyncio.to_thread(self._source, kind, name)
            except StoreError:
                continue  # deleted meanwhile
            hits.append(
                {"_index": INDEX, "_id": _doc_id(kind, name), "_score": 1.0, "_source": doc}
            )
        return _json(
            {
                "took": 0,
                "timed_out": False,
                "_shards": {**_SHARDS, "skipped": 0},
                "hits": {
                    "total": {"value": len(names), "relation": "eq"},
                    "max_score": 1.0 if hits else None,
                    "hits": hits,
                },
            }
        )

    def _source(self, kind: str, name: str) -> dict[str, Any]:
        """The stored document ``{"name", "type", <type>: {...}}`` as the plugin indexes it."""
        if kind == "featureset":
            fs = _plugin_featureset(self.svc.store.get_featureset(name))
            return {"name": name, "type": kind, kind: fs}
        v = self._shown_version(name)
        if v is None:
            raise StoreError(f"no model {name!r}", 404)
        return {"name": name, "type": kind, kind: self._model_source(name, v)}

    def _shown_version(self, name: str) -> int | None:
        """The version the plugin's single model document stands for: the active one (else the
        newest); None when the model has no version."""
        store = self.svc.store
        versions = store.versions(name) if store.model_exists(name) else []
        if not versions:
            return None
        return self.svc.registry.active_version(name) or versions[-1]

    # -------------------------------------------------------------- the store itself
    def _counts(self) -> dict[str, int]:
        """Elements per type, as the plugin's terms aggregation on ``type`` (absent types left out)."""
        store = self.svc.store
        counts = {"featureset": len(store.list_featuresets()), "model": len(store.list_models())}
        return {k: v for k, v in counts.items() if v}

    async def store_list(self, request: Request) -> Response:
        """``GET _ltr``: ``ListStoresAction``'s ``{"stores": {name: {store, index, version,
        counts}}}``; the service has the default store only."""
        info = {"store": STORE, "index": INDEX, "version": STORE_VERSION, "counts": self._counts()}
        return _json({"stores": {STORE: info}})

    async def store_create(self, request: Request) -> Response:
        """``PUT _ltr``: the default store always exists here, so creating it is acknowledged (the
        plugin's index creation would answer resource_already_exists_exception for an existing
        index; scripts run ``DELETE _ltr`` then ``PUT _ltr`` and expect the PUT to succeed)."""
        return _json({"acknowledged": True, "shards_acknowledged": True, "index": INDEX})

    async def store_update(self, request: Request) -> Response:
        raise LtrError(400, "Updating a feature store is not yet supported.")  # the plugin's words

    async def store_delete(self, request: Request) -> Response:
        """``DELETE _ltr``: as the plugin deletes the store's index, every feature set and every
        model (all versions) goes; version numbers are still never reused."""
        store, reg = self.svc.store, self.svc.registry
        for name in store.list_models():
            try:
                await asyncio.to_thread(reg.forget_model, name)
            except StoreError as exc:
                if exc.status != 404:  # deleted meanwhile by another request: fine
                    raise
        with store.locked():
            for name in store.list_featuresets():
                store.delete_featureset(name)
        return _json({"acknowledged": True})

    async def named_store(self, request: Request) -> Response:
        """``/_ltr/{store}/...``: the plugin's named stores (index ``.ltrstore_{store}``)."""
        name = request.path_params["store"]
        if name.startswith("_"):  # one of our own paths with a wrong method or shape
            raise LtrError(
                405 if "rest" not in request.path_params else 400,
                f"no handler found for uri [{request.url.path}] and method [{request.method}]",
            )
        if request.method in ("GET", "HEAD") and "rest" not in request.path_params:
            return _json({"exists": False}, 404)  # RestStoreManager.getStore of a missing store
        raise LtrError(
            400,
            f"feature store [{name}]: the service has the default store only (no named stores); "
            "use the paths without a store name (/_ltr/_featureset/..., /_ltr/_model/...)",
        )

    # -------------------------------------------------------------- feature sets
    async def fs_put(self, request: Request) -> Response:
        """PUT creates (409 if the set exists, as the plugin's CREATE); POST creates or updates."""
        name = check_name("feature set", request.path_params["fs"])
        body = await self._body_json(request)
        if not isinstance(body, dict):
            raise LtrError(400, "the body must be a JSON object", "parsing_exception")
        _no_validation(body)
        kinds = [k for k in ("featureset", "feature", "model") if k in body]
        unknown = sorted(set(body) - {"featureset", "feature", "model"})
        if unknown or len(kinds) != 1:
            raise LtrError(
                400, f"Expected [featureset] in the body; got {sorted(body)}", "parsing_exception"
            )
        if kinds[0] != "featureset":
            # the plugin's own wording (sic)
            raise LtrError(400, f"Excepted a [featureset] but encountered [{kinds[0]}]")
        doc = body["featureset"]
        if not isinstance(doc, dict):
            raise LtrError(400, "[featureset] must be an object", "parsing_exception")
        if doc.get("name", name) != name:
            raise LtrError(
                400,
                f"Name mismatch, send request with [{doc['name']}] but [{name}] used in the URL",
            )
        fs = _featureset(name, doc, _plugin_features(doc.get("features", []), "features"))
        store = self.svc.store
        with store.locked():  # create/update + version read as one step
            try:
                created = store.put_featureset(fs, create_only=request.method == "PUT")
            except StoreError as exc:
                if exc.status != 409:
                    raise
                v = store.featureset_version(name)
                raise LtrError(
                    409,
                    f"[{_doc_id('featureset', name)}]: version conflict, document already exists "
                    f"(current version [{v}])",
                ) from None
            version = store.featureset_version(name)
        res = _write_response("featureset", name, version, "created" if created else "updated")
        return _json(res, 201 if created else 200)

    async def fs_get(self, request: Request) -> Response:
        name = check_name("feature set", request.path_params["fs"])
        store = self.svc.store
        try:
            fs = store.get_featureset(name)
            version = store.featureset_version(name)
        except StoreError as exc:
            if exc.status == 404:
                return _not_found("featureset", name)
            raise
        doc = _plugin_featureset(fs)
        return _json(
            {
                "_index": INDEX,
                "_id": _doc_id("featureset", name),
                "_version": version,
                "found": True,
                "_source": {"name": name, "type": "featureset", "featureset": doc},
            }
        )

    async def fs_delete(self, request: Request) -> Response:
        name = check_name("feature set", request.path_params["fs"])
        store = self.svc.store
        with store.locked():
            try:
                version = store.featureset_version(name)
                store.delete_featureset(name)
            except StoreError as exc:
                if exc.status != 404:
                    raise
                return _json(_write_response("featureset", name, 1, "not_found"), 404)
        return _json(_write_response("featureset", name, version + 1, "deleted"))

    async def add_features(self, request: Request) -> Response:
        """Append (or with ``?merge=true`` update by name) features; creates the set if absent."""
        name = check_name("feature set", request.path_params["fs"])
        if "query" in request.path_params:
            raise LtrError(
                400,
                "features must be provided in the body: _addfeatures/{query} looks features up in "
                "the plugin's store of single features (_ltr/_feature), which the service does not "
                "have",
            )
        q = request.query_params
        unknown = sorted(set(q) - {"merge"})
        if unknown:
            raise LtrError(400, f"request does not support parameters {unknown}")
        merge = q.get("merge", "false").lower()
        if merge not in ("true", "false"):
            raise LtrError(
                400,
                f"Failed to parse value [{q.get('merge')}] as only [true] or [false] are allowed.",
            )
        body = await self._body_json(request)
        if not isinstance(body, dict) or not set(body) <= {"features", "validation"}:
            raise LtrError(400, 'the body must be {"features": [...]}', "parsing_exception")
        _no_validation(body)
        new = _plugin_features(body.get("features"), "features")
        if not new:
            raise LtrError(
                400,
                "features must be provided as a query for the feature store or in the body, none "
                "provided",
            )
        store = self.svc.store
        with store.locked():
            try:
                old = store.get_featureset(name)
            except StoreError as exc:
                if exc.status != 404:
                    raise
                old = None
            if old is None:
                fs = _featureset(name, {}, new)
            else:
                base = _plugin_featureset(old)
                feats = list(base["features"])
                if merge == "true":
                    pos = {f["name"]: i for i, f in enumerate(feats)}
                    for f in new:
                        if f.get("name") in pos:
                            feats[pos[f["name"]]] = f
                        else:
                            feats.append(f)
                else:
                    feats += new
                fs = _featureset(name, base, feats)
            created = store.put_featureset(fs)
            version = store.featureset_version(name)
        res = _write_response("featureset", name, version, "created" if created else "updated")
        return _json(res, 201 if created else 200)

    # -------------------------------------------------------------- models
    async def create_model(self, request: Request) -> Response:
        """``{"model": {"name", "model": {"type", "definition", ...}}}``: compile, verify, store and
        activate version 1 of the model, bound to the stored set (as the plugin copies it)."""
        set_name = check_name("feature set", request.path_params["fs"])
        q = request.query_params
        unknown = sorted(set(q) - {"version"})
        if unknown:
            raise LtrError(400, f"request does not support parameters {unknown}")
        expected = None
        if "version" in q:
            v = q["version"]
            expected = int(v) if v.lstrip("-").isdigit() else -1
            if expected <= 0:
                raise LtrError(400, "version must be a strictly positive long value")
        body = await self._body_json(request, self.svc.max_upload)
        if not isinstance(body, dict):
            raise LtrError(400, "the body must be a JSON object", "parsing_exception")
        _no_validation(body)
        bad = sorted(set(body) - {"model"})
        if bad:
            raise LtrError(
                400,
                f"[create_model_from_set] unknown field [{bad[0]}]",
                "x_content_parse_exception",
            )
        model = body.get("model")
        if not isinstance(model, dict):
            raise LtrError(400, "Missing required value [model]", "parsing_exception")
        if not isinstance(model.get("name"), str):
            raise LtrError(400, "Missing required value [name]", "parsing_exception")
        name = check_name("model", model["name"])
        store = self.svc.store
        try:
            set_version = store.featureset_version(set_name)
        except StoreError as exc:
            if exc.status != 404:
                raise
            raise LtrError(400, f"Stored feature set [{set_name}] does not exist") from None
        if expected is not None and expected != set_version:
            raise LtrError(
                400,
                f"Stored feature set [{set_name}] has version [{set_version}] but [{expected}] "
                "was expected.",
            )
        payload = json.dumps({"model": model}).encode()
        try:
            # the exists-check and the storing of the upload are one locked step (create_only)
            job = await asyncio.to_thread(
                functools.partial(
                    self.svc.registry.submit,
                    name,
                    payload,
                    set_name,
                    fmt="es-ltr",
                    filename="model.json",
                    activate=True,
                    binding="auto",
                    create_only=True,
                )
            )
        except StoreError as exc:
            if exc.status != 409:
                raise
            # RestCreateModelFromSet turns the index's VersionConflictEngineException into this
            raise LtrError(
                405, "Element of type [model] are not updatable, please create a new one instead."
            ) from None
        job = await self._wait_for_job(job["id"])
        if job["state"] != "ready":
            raise LtrError(400, f"model [{name}]: {job['error']}")
        return _json(_write_response("model", name, job["version"], "created"), 201)

    async def _wait_for_job(self, job_id: str) -> dict[str, Any]:
        """The upload job once it is finished (built in a worker process), polled from the store."""
        deadline = time.monotonic() + CREATE_WAIT_S
        while True:
            job = await asyncio.to_thread(self.svc.registry.job, job_id)
            if job["state"] in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise LtrError(504, f"model build {job_id} did not finish in {CREATE_WAIT_S:.0f} s")
            await asyncio.sleep(0.05)

    def _model_source(self, name: str, version: int) -> dict[str, Any]:
        store = self.svc.store
        meta = store.version_meta(name, version)
        fs = FeatureSet.from_dict(meta["featureset"])
        defn: dict[str, Any]
        if meta.get("format") == "es-ltr":
            src = json.loads((store.version_dir(name, version) / meta["source_file"]).read_bytes())
            inner = src.get("model", src)
            defn = inner.get("model", inner) if isinstance(inner, dict) else {}
        else:  # uploaded through /models in another format: no plugin definition to show
            defn = {"type": f"ltrcompile/{meta.get('format')}", "definition": None}
        return {"name": name, "feature_set": _plugin_featureset(fs), "model": defn}

    async def model_get(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        v = self._shown_version(name)
        if v is None:
            return _not_found("model", name)
        return _json(
            {
                "_index": INDEX,
                "_id": _doc_id("model", name),
                "_version": v,
                "found": True,
                "_source": {"name": name, "type": "model", "model": self._model_source(name, v)},
            }
        )

    async def model_put(self, request: Request) -> Response:
        """``PUT/POST _ltr/_model/{name}`` (a model with its own inline ``feature_set``) is not
        served: models here are bound to a stored feature set (``_createmodel``)."""
        name = check_name("model", request.path_params["name"])
        if request.method == "POST":  # RestFeatureManager: POST updates, models never are
            raise LtrError(
                405, "Element of type [model] are not updatable, please create a new one instead."
            )
        raise LtrError(
            400,
            f"model [{name}]: PUT _ltr/_model/{{name}} with an inline feature_set is not supported: "
            "store the set with PUT _ltr/_featureset/{set}, then POST "
            "_ltr/_featureset/{set}/_createmodel (the plugin copies the set into the model the "
            "same way)",
        )

    async def model_delete(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        store = self.svc.store
        versions = store.versions(name) if store.model_exists(name) else []
        try:
            await asyncio.to_thread(self.svc.registry.forget_model, name)
        except StoreError as exc:
            if exc.status != 404:
                raise
            return _json(_write_response("model", name, 1, "not_found"), 404)
        return _json(
            _write_response("model", name, (versions[-1] if versions else 0) + 1, "deleted")
        )

    # -------------------------------------------------------------- caches and stats
    def _served(self) -> dict[str, dict[str, float]]:
        """Per model: requests served (rescore/score answered 200) and rows scored, from metrics."""
        out: dict[str, dict[str, float]] = {}
        for fam in self.svc.metrics.registry.collect():
            for s in fam.samples:
                model = s.labels.get("model")
                if not model:
                    continue
                if s.name == "ltr_requests_total":
                    if (
                        s.labels.get("endpoint") in ("rescore", "score")
                        and s.labels.get("status") == "200"
                    ):
                        out.setdefault(model, {"hits": 0, "rows": 0})["hits"] += s.value
                elif s.name == "ltr_scored_rows_total":
                    out.setdefault(model, {"hits": 0, "rows": 0})["rows"] += s.value
        return out

    def _resident(self) -> dict[str, dict[str, Any]]:
        """Per model: each version held in memory and its bytes (IR arrays + compiled module files)."""
        reg, store = self.svc.registry, self.svc.store
        served = self._served()
        out: dict[str, dict[str, Any]] = {}
        for lv in reg.resident():
            ram = _ir_bytes(lv.rescorer.ensemble) + _dir_bytes(
                store.version_dir(lv.model, lv.version) / "compiled"
            )
            m = out.setdefault(lv.model, {"ram": 0, "count": 0, "versions": {}})
            m["ram"] += ram
            m["count"] += 1
            m["versions"][str(lv.version)] = {
                "ram": ram,
                "active": reg.active_version(lv.model) == lv.version,
            }
        for name, m in out.items():
            s = served.get(name, {"hits": 0, "rows": 0})
            m["hits"] = int(s["hits"])
            m["rows_scored"] = int(s["rows"])
        return out

    def _nodes_header(self) -> dict[str, Any]:
        return {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": NODE}

    async def cache_stats(self, request: Request) -> Response:
        """The plugin's shape (``all``/``stores``/``nodes`` with ``ram``/``count`` per element type),
        plus ``models``: per model its resident versions, bytes and requests served."""
        models = await asyncio.to_thread(self._resident)
        mram = sum(m["ram"] for m in models.values())
        mcount = sum(m["count"] for m in models.values())
        zero = {"ram": 0, "count": 0}
        stat = {
            "total": {"ram": mram, "count": mcount},
            "features": zero,
            "featuresets": zero,
            "models": {"ram": mram, "count": mcount},
        }
        return _json(
            {
                **self._nodes_header(),
                "all": stat,
                "stores": {STORE: stat},
                "nodes": {NODE: {"name": NODE, "hostname": request.url.hostname, "stats": stat}},
                "models": models,
            }
        )

    async def clear_cache(self, request: Request) -> Response:
        """Evict every loaded version that is not active (active versions keep serving)."""
        n = await asyncio.to_thread(self.svc.registry.evict_inactive)
        self.evictions += n
        return _json({"acknowledged": True})

    async def stats(self, request: Request) -> Response:
        """``GET _ltr/_stats[/{stat}]``: ``status``, ``stores``, ``cache`` (comma list or ``_all``)."""
        valid = ("status", "stores", "cache")
        want = request.path_params.get("stat", "_all").split(",")
        if want == ["_all"]:
            want = list(valid)
        elif "_all" in want:
            raise LtrError(
                400, f"Request {request.url.path} contains both _all and individual stats"
            )
        bad = sorted(set(want) - set(valid))
        if bad:
            raise LtrError(
                400,
                f"request [{request.url.path}] contains unrecognized stat: [{', '.join(bad)}]",
            )
        store, reg = self.svc.store, self.svc.registry
        out: dict[str, Any] = self._nodes_header()
        if "status" in want:
            out["status"] = "green"
        if "stores" in want:
            out["stores"] = {
                STORE: {
                    "status": "green",
                    "featureset_count": len(store.list_featuresets()),
                    "feature_count": 0,
                    "model_count": len(store.list_models()),
                }
            }
        node: dict[str, Any] = {}
        if "cache" in want:
            models = await asyncio.to_thread(self._resident)
            empty = {
                "hit_count": 0,
                "eviction_count": 0,
                "entry_count": 0,
                "memory_usage_in_bytes": 0,
            }
            node["cache"] = {
                "feature": empty,
                "featureset": empty,
                "model": {
                    "hit_count": sum(m["hits"] for m in models.values()),
                    "eviction_count": self.evictions,
                    "entry_count": len(reg.resident()),
                    "memory_usage_in_bytes": sum(m["ram"] for m in models.values()),
                },
            }
        out["nodes"] = {NODE: node}
        return _json(out)


def _int_param(q: Any, key: str, default: int) -> int:
    v = q.get(key)
    if v is None:
        return default
    if not v.isdigit() or len(v) > 9:
        raise LtrError(400, f"Failed to parse int parameter [{key}] with value [{v}]")
    return int(v)


def _ir_bytes(ens: Any) -> int:
    if ens is None:
        return 0
    n = sum(v.nbytes for v in vars(ens).values() if isinstance(v, np.ndarray))
    net = getattr(ens, "network", None)
    if net is not None:  # dense layers (RankLib RankNet/ListNet)
        n += net.inputs.nbytes + sum(ly.weights.nbytes + ly.bias.nbytes for ly in net.layers)
    return int(n)


def _dir_bytes(d: Path) -> int:
    if not d.is_dir():
        return 0
    return int(sum(p.stat().st_size for p in d.rglob("*") if p.is_file()))


def ltr_routes(svc: Any) -> list[Route]:
    """The ``_ltr`` routes for ``svc`` (mounted by :func:`~ltrcompile.service.app.create_app`)."""
    return LtrApi(svc).routes()
