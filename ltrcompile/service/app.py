"""The rescoring service as an ASGI app (Starlette): feature sets, model versions, rescore, score.

``create_app(store_dir, token=None)`` builds the app; ``ltrcompile serve`` (:mod:`.cli`) runs it with
uvicorn. Every error is a JSON ``{"error": {"status", "message"}}`` with a 4xx status saying what is
wrong with the request; only a bug in the service itself gives a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import LtrCompileError, OptionError
from ..rescore import (
    MAX_WINDOW,
    FeatureSet,
    RescoreInputError,
    check_name,
    es_response_body,
    native_response_hits,
    parse_params,
)
from ..selection import parse_num_iteration
from .explain import explain_k, explain_rows
from .jobs import FINISHED, JobLimits
from .openapi import docs_html, openapi_spec
from .registry import SYNC_INTERVAL_S, Registry
from .store import ModelStore, StoreError

try:
    import orjson
except ImportError:  # optional speed-up (service extra)
    orjson = None

log = logging.getLogger("ltrcompile.service")

DEFAULT_MAX_BODY = 32 << 20  # rescore / score / feature-set requests
DEFAULT_MAX_UPLOAD = 128 << 20  # model definitions
DEFAULT_MAX_HITS = 10_000
UPLOAD_WAIT_S = 900.0
_RESCORE_PARAMS = (
    "window_size",
    "query_weight",
    "rescore_query_weight",
    "score_mode",
    "rescorer",
    "from",
    "size",
)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


# ---------------------------------------------------------------------- JSON
def _reject_constant(token: str) -> Any:
    raise ApiError(400, f"invalid JSON: {token} is not a JSON number")


#: Integers with more digits than this are read as floats, as orjson does (a 64-bit integer has
#: at most 20 digits); beyond the float64 range they are refused, never turned into a Python int
#: that later overflows (or that the int-to-string digit limit refuses: a 500 before this).
_MAX_INT_DIGITS = 20


def _parse_int(token: str) -> int | float:
    if len(token) - token.startswith("-") <= _MAX_INT_DIGITS:
        return int(token)
    value = float(token)
    if math.isinf(value):
        raise ApiError(
            400,
            f"invalid JSON: an integer of {len(token.lstrip('-'))} digits is outside the "
            "float64 range",
        )
    return value


def loads(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity tokens (orjson when installed; stdlib for error messages)."""
    if not body.strip():
        raise ApiError(400, "the request body is empty; expected JSON")
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the stdlib parser below names the problem (or reads 1e999 as inf, flagged later)
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_int=_parse_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # anything else the decoder refuses is still the request's fault
        raise ApiError(400, f"invalid JSON: {exc}") from None


def dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status, headers=headers, media_type="application/json")


# ---------------------------------------------------------------------- metrics
class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        lat = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
        self.requests = Counter(
            "ltr_requests", "HTTP requests", ["model", "endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ltr_request_seconds",
            "request latency inside the app (body read to response built)",
            ["model", "endpoint"],
            buckets=lat,
            registry=self.registry,
        )
        self.scoring = Histogram(
            "ltr_scoring_seconds",
            "time spent in the model's predict per request",
            ["model", "endpoint"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0),
            registry=self.registry,
        )
        self.hits = Counter(
            "ltr_scored_rows", "rows scored by a model", ["model"], registry=self.registry
        )
        self.active_version = Gauge(
            "ltr_model_active_version",
            "active version per model",
            ["model"],
            registry=self.registry,
        )
        self.compile_seconds = Histogram(
            "ltr_compile_seconds",
            "server-side compile duration per upload",
            ["model"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.uploads = Counter(
            "ltr_uploads", "model uploads by outcome", ["model", "outcome"], registry=self.registry
        )


# ---------------------------------------------------------------------- the app
class Service:
    """Handlers bound to one store, registry, token and limits."""

    def __init__(
        self,
        store_dir: str,
        token: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        max_upload: int = DEFAULT_MAX_UPLOAD,
        max_hits: int = DEFAULT_MAX_HITS,
        max_window: int = MAX_WINDOW,
        job_limits: JobLimits | None = None,
        sync_interval: float = SYNC_INTERVAL_S,
    ) -> None:
        self.store = ModelStore(store_dir)
        self.metrics = Metrics()
        self.registry = Registry(
            self.store, self.metrics, limits=job_limits, sync_interval=sync_interval
        )
        self.registry.start()
        self._token = token.encode() if token else None
        self.max_body = max_body
        self.max_upload = max_upload
        self.max_hits = max_hits
        self.max_window = max_window

    def close(self) -> None:
        self.registry.close()
        self.store.close()

    # -------------------------------------------------------------- plumbing
    def _check_token(self, request: Request) -> None:
        if self._token is None:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)
        if not ok:
            raise ApiError(
                401,
                "this endpoint changes the store and needs 'Authorization: Bearer <token>'"
                if not auth
                else "invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="ltrcompile"'},
            )

    async def _body(self, request: Request, limit: int) -> bytes:
        cl = request.headers.get("content-length")
        if cl is not None and cl.isdigit() and int(cl) > limit:
            raise ApiError(
                413, f"request body of {int(cl)} bytes exceeds the limit of {limit} bytes"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _model_label(self, name: Any) -> str:
        if not isinstance(name, str):
            return ""
        if name in self.registry.active_versions():
            return name
        try:
            return name if self.store.model_exists(name) else "_unknown"
        except RescoreInputError:
            return "_invalid"

    def endpoint(
        self, name: str, write: bool = False
    ) -> Callable[[Callable[..., Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
        """Wrap a handler: auth for writes, error mapping to JSON 4xx, metrics."""

        def wrap(
            fn: Callable[..., Awaitable[Response]],
        ) -> Callable[[Request], Awaitable[Response]]:
            async def handler(request: Request) -> Response:
                t0 = time.perf_counter()
                try:
                    if write:
                        self._check_token(request)
                    resp = await fn(request)
                except ApiError as exc:
                    resp = _error(exc.status, str(exc), exc.headers)
                except StoreError as exc:
                    resp = _error(exc.status, str(exc))
                except RescoreInputError as exc:
                    resp = _error(400, str(exc))
                except LtrCompileError as exc:
                    resp = _error(422, str(exc))
                except Exception:
                    log.exception("internal error in %s", name)
                    resp = _error(500, "internal server error (see the server log)")
                model = self._model_label(request.path_params.get("name"))
                self.metrics.requests.labels(model, name, str(resp.status_code)).inc()
                self.metrics.latency.labels(model, name).observe(time.perf_counter() - t0)
                return resp

            handler.__name__ = fn.__name__
            handler.__doc__ = fn.__doc__
            return handler

        return wrap

    # -------------------------------------------------------------- routes
    def routes(self) -> list[Route]:
        e = self.endpoint
        return [
            Route("/healthz", e("healthz")(self.healthz), methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
            Route("/featuresets", e("featureset_list")(self.fs_list), methods=["GET"]),
            Route("/featuresets/{fs}", e("featureset_get")(self.fs_get), methods=["GET"]),
            Route("/featuresets/{fs}", e("featureset_put", True)(self.fs_put), methods=["PUT"]),
            Route(
                "/featuresets/{fs}",
                e("featureset_delete", True)(self.fs_delete),
                methods=["DELETE"],
            ),
            Route("/models", e("model_list")(self.model_list), methods=["GET"]),
            Route("/models/{name}", e("model_get")(self.model_get), methods=["GET"]),
            Route("/models/{name}", e("model_delete", True)(self.model_delete), methods=["DELETE"]),
            Route("/models/{name}/versions", e("upload", True)(self.upload), methods=["POST"]),
            Route(
                "/models/{name}/versions/{version}",
                e("version_get")(self.version_get),
                methods=["GET"],
            ),
            Route(
                "/models/{name}/versions/{version}",
                e("version_delete", True)(self.version_delete),
                methods=["DELETE"],
            ),
            Route(
                "/models/{name}/versions/{version}/activate",
                e("activate", True)(self.activate),
                methods=["POST"],
            ),
            Route("/models/{name}/rescore", e("rescore")(self.rescore), methods=["POST"]),
            Route("/models/{name}/score", e("score")(self.score), methods=["POST"]),
            Route("/jobs", e("job_list")(self.job_list), methods=["GET"]),
            Route("/jobs/{job}", e("job_get")(self.job_get), methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> Response:
        """Liveness, the versions this process serves, and which process answered."""
        return json_response(
            {"status": "ok", "active": self.registry.active_versions(), "pid": os.getpid()}
        )

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_spec())

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(docs_html())

    # feature sets
    async def fs_list(self, request: Request) -> Response:
        return json_response({"featuresets": self.store.list_featuresets()})

    async def fs_get(self, request: Request) -> Response:
        return json_response(self.store.get_featureset(request.path_params["fs"]).to_dict())

    async def fs_put(self, request: Request) -> Response:
        name = check_name("feature set", request.path_params["fs"])
        fs = FeatureSet.from_dict(loads(await self._body(request, self.max_body)), name)
        created = self.store.put_featureset(fs)
        return json_response(fs.to_dict(), 201 if created else 200)

    async def fs_delete(self, request: Request) -> Response:
        self.store.delete_featureset(request.path_params["fs"])
        return json_response({"deleted": request.path_params["fs"]})

    # models
    def _model_info(self, name: str) -> dict[str, Any]:
        versions = self.store.versions(name)
        pending = self.registry.pending(name)
        return {
            "name": name,
            "active_version": self.registry.active_version(name),
            "versions": versions,
            "pending": pending,
        }

    async def model_list(self, request: Request) -> Response:
        return json_response({"models": [self._model_info(n) for n in self.store.list_models()]})

    async def model_get(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        info = self._model_info(name)
        if not self.store.model_exists(name) and not info["pending"]:
            raise ApiError(404, f"no model {name!r}")
        info["version_details"] = [
            _version_view(self.store.version_meta(name, v)) for v in info["versions"]
        ]
        return json_response(info)

    async def model_delete(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        self.registry.forget_model(name)
        return json_response({"deleted": name})

    async def version_get(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        meta = self.store.version_meta(name, _version_param(request.path_params["version"]))
        view = _version_view(meta)
        view["active"] = self.registry.active_version(name) == meta["version"]
        return json_response(view)

    async def version_delete(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        v = _version_param(request.path_params["version"])
        await asyncio.to_thread(self.registry.forget_version, name, v)
        return json_response({"deleted": {"model": name, "version": v}})

    async def activate(self, request: Request) -> Response:
        name = check_name("model", request.path_params["name"])
        v = _version_param(request.path_params["version"])
        # loading a non-resident version may take a moment: keep the event loop serving
        lv = await asyncio.to_thread(self.registry.activate, name, v)
        return json_response({"model": name, "active_version": lv.version})

    async def upload(self, request: Request) -> Response:
        """Body = the model file. Query: featureset (required), format, filename, activate, wait,
        binding, num_iteration (boosting rounds to keep), accept_incomplete (activate even when
        the verification is incomplete)."""
        name = check_name("model", request.path_params["name"])
        q = request.query_params
        unknown = set(q) - {
            "featureset", "format", "filename", "activate", "wait", "binding", "num_iteration",
            "accept_incomplete",
        }
        if unknown:
            raise ApiError(400, f"unknown query parameters: {sorted(unknown)}")
        fs = q.get("featureset")
        if not fs:
            raise ApiError(
                400, "query parameter 'featureset' is required (the feature set to bind)"
            )
        activate = _bool_param(q, "activate", True)
        wait = _bool_param(q, "wait", False)
        accept_incomplete = _bool_param(q, "accept_incomplete", False)
        try:
            num_iteration = parse_num_iteration(q.get("num_iteration"))
        except OptionError as exc:
            raise ApiError(400, str(exc)) from None
        body = await self._body(request, self.max_upload)
        job = await asyncio.to_thread(
            functools.partial(
                self.registry.submit,
                name,
                body,
                check_name("feature set", fs),
                q.get("format", "auto"),
                q.get("filename"),
                activate,
                q.get("binding", "auto"),
                num_iteration=num_iteration,
                accept_incomplete=accept_incomplete,
            )
        )
        if not wait:
            return json_response(
                {**job, "status_url": f"/jobs/{job['id']}"},
                202,
                {"Location": f"/jobs/{job['id']}"},
            )
        record = await self._wait_job(job["id"], UPLOAD_WAIT_S)
        if record["state"] != "ready":
            raise ApiError(
                int(record.get("status") or 500),
                f"upload of {name!r} version {record['version']} failed: {record['error']}",
            )
        return json_response(self.registry.job(job["id"]), 201)

    async def _wait_job(self, job_id: str, limit_s: float) -> dict[str, Any]:
        """The job's record once finished (it may run in any process sharing the store)."""
        deadline = time.monotonic() + limit_s
        delay = 0.02
        while True:
            record = self.registry.job_record(job_id)
            if record["state"] in FINISHED:
                return record
            if time.monotonic() > deadline:
                raise ApiError(
                    504, f"upload job {job_id} still {record['state']} after {limit_s:g} s"
                )
            await asyncio.sleep(delay)
            delay = min(0.2, delay * 1.5)

    async def job_list(self, request: Request) -> Response:
        return json_response({"jobs": self.registry.jobs()})

    async def job_get(self, request: Request) -> Response:
        return json_response(self.registry.job(request.path_params["job"]))

    # serving
    async def _served(self, request: Request) -> Any:
        """The version a scoring request gets: the active one as the store says now, or
        ``?version=``. A version not in memory yet is loaded off the event loop."""
        name = request.path_params["name"]
        v = request.query_params.get("version")
        version = None if v is None else _version_param(v)
        lv = self.registry.current(name) if version is None else self.registry.loaded(name, version)
        if lv is None:
            lv = await asyncio.to_thread(self.registry.get, name, version)
        return lv

    async def rescore(self, request: Request) -> Response:
        """Rescore native hits or an Elasticsearch search response (see the OpenAPI doc)."""
        t0 = time.perf_counter()
        lv = await self._served(request)
        body = loads(await self._body(request, self.max_body))
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object with 'hits'")
        t_read = time.perf_counter()
        params = self._rescore_params(request, body)
        hits = body.get("hits")
        parser = lv.rescorer.parser
        es_form = isinstance(hits, dict)
        if es_form:
            n = len(hits.get("hits") or [])
            self._check_hits(n)
            parsed = parser.es_response(body, request.query_params.get("log_name"))
        elif isinstance(hits, list):
            self._check_hits(len(hits))
            parsed = parser.native(
                hits, need_scores=True, feature_matrix=body.get("feature_matrix")
            )
        else:
            raise ApiError(
                400,
                "'hits' must be a list of {id, score, features} or an Elasticsearch response's "
                'hits object ({"hits": {"hits": [...]}})',
            )
        t_parse = time.perf_counter()
        res = lv.rescorer.rescore_hits(parsed, params)
        k_explain = explain_k(request.query_params)
        t_score = time.perf_counter()
        model = lv.model
        self.metrics.scoring.labels(model, "rescore").observe(t_score - t_parse)
        self.metrics.hits.labels(model).inc(int(res.rescored.sum()))
        info = {"model": model, "version": lv.version, **_params_view(params, lv.rescorer)}
        if es_form:
            out = es_response_body(body, parsed, res, numpy_scalars=orjson is not None)
            out["_rescore"] = info
        else:
            out = {
                **info,
                "hits": native_response_hits(parsed, res, numpy_scalars=orjson is not None),
            }
        if k_explain is not None:  # rescored hits only, in the response's order
            rows = np.asarray([i for i in res.order.tolist() if res.rescored[i]], np.int64)
            why = explain_rows(lv.rescorer, parsed.X, rows, k_explain)
            if es_form:
                info["explanations"] = [{"_id": parsed.ids[i], **_one(w)} for i, w in zip(rows.tolist(), why, strict=True)]
            else:
                by_row = dict(zip(rows.tolist(), why, strict=True))
                for hit, i in zip(out["hits"], res.order.tolist(), strict=True):
                    hit["explanation"] = by_row.get(i)
        payload = dumps(out)
        t_end = time.perf_counter()
        return Response(
            payload,
            200,
            media_type="application/json",
            headers={
                "Server-Timing": _timing(
                    read=t_read - t0,
                    parse=t_parse - t_read,
                    score=t_score - t_parse,
                    render=t_end - t_score,
                ),
                "X-Model-Version": str(lv.version),
                "X-Served-By": str(os.getpid()),
            },
        )

    def _rescore_params(self, request: Request, body: dict[str, Any]) -> Any:
        q = request.query_params
        merged: dict[str, Any] = {}
        for key in _RESCORE_PARAMS:
            in_body = key in body and not isinstance(body.get("hits"), dict)
            if in_body and key in q:
                raise ApiError(400, f"{key} is given both in the body and in the query string")
            if in_body:
                merged[key] = body[key]
            elif key in q:
                merged[key] = q[key]
        if isinstance(body.get("hits"), dict) and isinstance(body.get("rescore"), dict):
            raise ApiError(
                400, "pass rescore parameters in the query string for an ES response body"
            )
        return parse_params(merged, self.max_window)

    def _check_hits(self, n: int) -> None:
        if n > self.max_hits:
            raise ApiError(413, f"{n} hits in one request; the limit is {self.max_hits}")

    async def score(self, request: Request) -> Response:
        """Plain model scores for ``{"features": [[...], ...] | [{name: value}, ...]}``."""
        t0 = time.perf_counter()
        lv = await self._served(request)
        body = loads(await self._body(request, self.max_body))
        if isinstance(body, dict) and "feature_matrix" in body and "rows" in body:
            n = body["rows"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ApiError(400, "'rows' must be an integer >= 0")
            self._check_hits(n)
            t_read = time.perf_counter()
            X = lv.rescorer.parser.binary_matrix(body["feature_matrix"], n)
        else:
            if not isinstance(body, dict) or not isinstance(body.get("features"), list):
                raise ApiError(
                    400,
                    'the body must be {"features": [...]} with one vector (feature-set order) or '
                    'one name->value object per row, or {"rows": n, "feature_matrix": {...}}',
                )
            feats = body["features"]
            self._check_hits(len(feats))
            t_read = time.perf_counter()
            X = lv.rescorer.parser.matrix(feats, lambda i: f"features[{i}]")
        t_parse = time.perf_counter()
        if X.shape[0] > 2000:  # big batches: keep the event loop serving
            scores = await asyncio.to_thread(lv.rescorer.predict, X)
        else:
            scores = lv.rescorer.predict(X)
        t_score = time.perf_counter()
        self.metrics.scoring.labels(lv.model, "score").observe(t_score - t_parse)
        self.metrics.hits.labels(lv.model).inc(X.shape[0])
        bad = [i for i, s in enumerate(scores.tolist()) if not math.isfinite(s)]
        if bad:
            raise ApiError(
                422, f"the model's score for row {bad[0]} is not finite ({scores[bad[0]]!r})"
            )
        doc: dict[str, Any] = {"model": lv.model, "version": lv.version, "scores": scores.tolist()}
        k_explain = explain_k(request.query_params)
        if k_explain is not None:
            doc["explanations"] = await asyncio.to_thread(
                explain_rows, lv.rescorer, X, np.arange(X.shape[0]), k_explain
            )
        payload = dumps(doc)
        return Response(
            payload,
            200,
            media_type="application/json",
            headers={
                "Server-Timing": _timing(
                    read=t_read - t0,
                    parse=t_parse - t_read,
                    score=t_score - t_parse,
                    render=time.perf_counter() - t_score,
                ),
                "X-Model-Version": str(lv.version),
                "X-Served-By": str(os.getpid()),
            },
        )


def _one(why: Any) -> dict[str, Any]:
    """An explanation as an object (several outputs: under "outputs")."""
    return why if isinstance(why, dict) else {"outputs": why}


def _params_view(params: Any, rescorer: Any) -> dict[str, Any]:
    """The rescore parameters echoed in a response (per rescorer)."""
    if getattr(params, "rescorer", "query") == "learning_to_rank":
        return {
            "rescorer": "learning_to_rank",
            "window_size": params.window_size,
            "from": None if params.from_ < 0 else params.from_,
            "size": None if params.size < 0 else params.size,
            "score_shift": rescorer.ltr_shift,
        }
    return {
        "rescorer": "query",
        "window_size": params.window_size,
        "query_weight": params.query_weight,
        "rescore_query_weight": params.rescore_query_weight,
        "score_mode": params.score_mode,
    }


def _timing(**parts: float) -> str:
    return ", ".join(f"{k};dur={v * 1000:.3f}" for k, v in parts.items())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"status": status, "message": message}}, status, headers)


def _version_param(v: str) -> int:
    if not v.isdigit() or len(v) > 9:
        raise ApiError(400, f"version must be a positive integer; got {v!r}")
    return int(v)


def _bool_param(q: Any, key: str, default: bool) -> bool:
    v = q.get(key)
    if v is None:
        return default
    if v.lower() in ("1", "true", "yes"):
        return True
    if v.lower() in ("0", "false", "no"):
        return False
    raise ApiError(400, f"query parameter {key} must be true or false; got {v!r}")


def _version_view(meta: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "model",
        "version",
        "format",
        "binding",
        "digest",
        "summary",
        "parity",
        "verdict",
        "activation_held",
        "tree_selection",
        "compile_seconds",
        "created",
    )
    view = {k: meta.get(k) for k in keep}
    view["featureset"] = meta["featureset"]["name"]
    return view


#: Environment variable carrying ``create_app`` arguments to ``serve --workers N`` processes.
CONFIG_ENV = "LTRCOMPILE_SERVICE_CONFIG"


def create_app_from_env() -> Starlette:
    """App factory of each ``serve --workers N`` process: arguments from ``$LTRCOMPILE_SERVICE_CONFIG``
    (the token is read from its file by each process, never passed in the environment)."""
    cfg = json.loads(os.environ[CONFIG_ENV])
    token = None
    if cfg.get("token_file"):
        from .cli import read_token

        token = read_token(cfg["token_file"])
    limits = dict(cfg.get("limits") or {})
    if "job_limits" in limits:
        limits["job_limits"] = JobLimits(**limits["job_limits"])
    return create_app(cfg["store"], token, **limits)


def create_app(
    store_dir: str,
    token: str | None = None,
    **limits: Any,
) -> Starlette:
    """The ASGI app over the store at ``store_dir``; ``token`` protects every write endpoint."""
    svc = Service(store_dir, token, **limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        svc.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        what = "method not allowed" if status == 405 else "not found"
        return _error(status, f"{what}: {request.method} {request.url.path} (see /docs)")

    from .ltr_api import ltr_routes  # the o19s plugin's _ltr paths over the same store

    app = Starlette(
        routes=[*svc.routes(), *ltr_routes(svc)],
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.service = svc
    return app
