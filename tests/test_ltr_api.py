"""The o19s LTR plugin's ``_ltr`` REST aliases, exercised over loopback HTTP against a real server.

Expected bodies, statuses and messages are the plugin's (o19s/elasticsearch-learning-to-rank at
1dfed57: ``RestFeatureManager``, ``RestAddFeatureToSet``, ``RestCreateModelFromSet``,
``RestFeatureStoreCaches``, ``RestLTRStats``, ``StoredFeature``/``StoredFeatureSet``) and
Elasticsearch's document responses; the model's scores are the plugin's ``model/linear`` float32
arithmetic computed here with numpy float32 scalars.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_service import TOKEN, Server, auth

FEATURES = [
    {
        "name": "title_query",
        "params": ["keywords"],
        "template": {"match": {"title": "{{keywords}}"}},
    },
    {
        "name": "body_query",
        "params": ["keywords"],
        "template_language": "mustache",
        "template": {"match": {"overview": "{{keywords}}"}},
    },
]
WEIGHTS = {"title_query": 0.7, "body_query": 0.31}
CREATE = {
    "model": {"name": "linear_movies", "model": {"type": "model/linear", "definition": WEIGHTS}}
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    store = tmp_path_factory.mktemp("ltrapi") / "s"
    tf = store.parent / "token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    s = Server(store, "--token-file", str(tf))
    try:
        yield s
    finally:
        s.stop()


def es_err(r, status, type_, reason_fragment):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status
    assert body["error"]["type"] == type_
    assert body["error"]["root_cause"][0]["type"] == type_
    assert reason_fragment in body["error"]["reason"], body
    return body


def test_write_paths_need_the_token(srv):
    c = srv.client
    fs = {"featureset": {"features": FEATURES}}
    writes = [
        ("PUT", "/_ltr/_featureset/authfs", fs),
        ("POST", "/_ltr/_featureset/authfs", fs),
        ("DELETE", "/_ltr/_featureset/authfs", None),
        ("POST", "/_ltr/_featureset/authfs/_addfeatures", {"features": FEATURES}),
        ("POST", "/_ltr/_featureset/authfs/_createmodel", CREATE),
        ("DELETE", "/_ltr/_model/linear_movies", None),
        ("POST", "/_ltr/_clearcache", None),
        ("PUT", "/_ltr", None),
        ("DELETE", "/_ltr", None),
        ("PUT", "/_ltr/_model/linear_movies", CREATE),
    ]
    for method, path, body in writes:
        r = c.request(method, path, json=body)
        es_err(
            r,
            401,
            "security_exception",
            f"missing authentication credentials for REST request [{path}]",
        )
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = c.request(method, path, json=body, headers=auth("wrong-token-wrong-token-wrong"))
        es_err(r, 401, "security_exception", "unable to authenticate with provided credentials")
    # nothing was written; reads stay open
    assert c.get("/_ltr/_featureset/authfs").status_code == 404
    assert c.get("/_ltr/_stats").status_code == 200
    assert c.get("/_ltr/_cachestats").status_code == 200


def test_featureset_crud_versions_and_errors(srv):
    c = srv.client
    r = c.put(
        "/_ltr/_featureset/movies", json={"featureset": {"features": FEATURES}}, headers=auth()
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "_index": ".ltrstore",
        "_id": "featureset-movies",
        "_version": 1,
        "result": "created",
        "forced_refresh": True,
        "_shards": {"total": 1, "successful": 1, "failed": 0},
    }
    # PUT is the plugin's CREATE: an existing set is a version conflict
    r = c.put(
        "/_ltr/_featureset/movies", json={"featureset": {"features": FEATURES}}, headers=auth()
    )
    body = es_err(
        r,
        409,
        "version_conflict_engine_exception",
        "[featureset-movies]: version conflict, document already exists (current version [1])",
    )
    assert body["error"]["index"] == ".ltrstore"
    r = c.get("/_ltr/_featureset/movies")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["_id"], got["_version"], got["found"]) == ("featureset-movies", 1, True)
    src = got["_source"]
    assert (src["name"], src["type"]) == ("movies", "featureset")
    # template, template_language and params are kept (defaults filled as StoredFeature parses them)
    assert src["featureset"] == {
        "name": "movies",
        "features": [
            {"name": "title_query", "params": ["keywords"], "template_language": "mustache",
             "template": {"match": {"title": "{{keywords}}"}}},
            {"name": "body_query", "params": ["keywords"], "template_language": "mustache",
             "template": {"match": {"overview": "{{keywords}}"}}},
        ],
    }  # fmt: skip
    # the same store: the native endpoint sees the set, queries included
    native = c.get("/featuresets/movies").json()
    assert [f["name"] for f in native["features"]] == ["title_query", "body_query"]
    assert native["features"][0]["template"] == {"match": {"title": "{{keywords}}"}}
    # POST updates: version 2
    r = c.post("/_ltr/_featureset/movies", json={"featureset": {"name": "movies", "features": FEATURES}}, headers=auth())  # fmt: skip
    assert r.status_code == 200 and r.json()["result"] == "updated" and r.json()["_version"] == 2
    assert c.head("/_ltr/_featureset/movies").status_code == 200
    # 404 shapes
    r = c.get("/_ltr/_featureset/nope")
    assert r.status_code == 404 and r.json() == {
        "_index": ".ltrstore",
        "_id": "featureset-nope",
        "found": False,
    }
    assert c.head("/_ltr/_featureset/nope").status_code == 404
    r = c.delete("/_ltr/_featureset/nope", headers=auth())
    assert (
        r.status_code == 404
        and r.json()["result"] == "not_found"
        and r.json()["_id"] == "featureset-nope"
    )
    # bad bodies, with the plugin's messages
    es_err(
        c.put("/_ltr/_featureset/movies2", json={"featureset": {"name": "other", "features": FEATURES}}, headers=auth()),
        400, "illegal_argument_exception", "Name mismatch, send request with [other] but [movies2] used in the URL",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/movies2", json=CREATE, headers=auth()),
        400, "illegal_argument_exception", "Excepted a [featureset] but encountered [model]",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/movies2", json={"featureset": {"features": [{"name": "x"}]}}, headers=auth()),
        400, "parsing_exception", "Field [template] is mandatory",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/movies2", json={"featureset": {"features": FEATURES + FEATURES[:1]}}, headers=auth()),
        400, "illegal_argument_exception", "Feature [title_query] defined twice in this set",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/movies2", json={"validation": {"index": "tmdb"}, "featureset": {"features": FEATURES}}, headers=auth()),
        400, "illegal_argument_exception", "[validation] runs the feature queries",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/movies2", content=b"", headers=auth()),
        400, "illegal_argument_exception", "Missing content or source param.",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/movies2", content=b"{nope", headers=auth()),
        400, "parse_exception", "invalid JSON",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_featureset/bad%20name", json={"featureset": {"features": FEATURES}}, headers=auth()),
        400, "illegal_argument_exception", "invalid feature set name",
    )  # fmt: skip
    assert c.get("/_ltr/_featureset/movies2").status_code == 404


def test_addfeatures_append_merge_and_create(srv):
    c = srv.client
    r = c.put(
        "/_ltr/_featureset/addfs", json={"featureset": {"features": FEATURES[:1]}}, headers=auth()
    )
    assert r.status_code == 201
    rating = {"name": "user_rating", "params": [], "template": {"function_score": {"field_value_factor": {"field": "vote_average"}}}}  # fmt: skip
    r = c.post("/_ltr/_featureset/addfs/_addfeatures", json={"features": [rating]}, headers=auth())
    assert r.status_code == 200, r.text
    assert (r.json()["result"], r.json()["_version"]) == ("updated", 2)
    feats = c.get("/_ltr/_featureset/addfs").json()["_source"]["featureset"]["features"]
    assert [f["name"] for f in feats] == ["title_query", "user_rating"]
    # names are unique: appending an existing one fails, merge=true updates it in place
    es_err(
        c.post("/_ltr/_featureset/addfs/_addfeatures", json={"features": [rating]}, headers=auth()),
        400, "illegal_argument_exception", "Feature [user_rating] defined twice",
    )  # fmt: skip
    newer = {**rating, "template": {"match_all": {}}}
    r = c.post("/_ltr/_featureset/addfs/_addfeatures?merge=true", json={"features": [newer, FEATURES[1]]}, headers=auth())  # fmt: skip
    assert r.status_code == 200 and r.json()["_version"] == 3
    feats = c.get("/_ltr/_featureset/addfs").json()["_source"]["featureset"]["features"]
    assert [f["name"] for f in feats] == ["title_query", "user_rating", "body_query"]
    assert feats[1]["template"] == {"match_all": {}}
    # a set that does not exist is created (as the plugin does)
    r = c.post("/_ltr/_featureset/fresh/_addfeatures", json={"features": FEATURES}, headers=auth())
    assert r.status_code == 201 and r.json()["result"] == "created" and r.json()["_version"] == 1
    es_err(
        c.post("/_ltr/_featureset/addfs/_addfeatures/title*", headers=auth()),
        400, "illegal_argument_exception", "_ltr/_feature",
    )  # fmt: skip
    es_err(
        c.post("/_ltr/_featureset/addfs/_addfeatures", json={"features": []}, headers=auth()),
        400, "illegal_argument_exception", "none provided",
    )  # fmt: skip
    assert c.delete("/_ltr/_featureset/fresh", headers=auth()).json()["result"] == "deleted"


def plugin_linear(x):
    """o19s LinearRanker: float score = 0; score += w[i] * x[i] (float32), in feature-set order."""
    s = np.float32(0)
    for w, v in zip(WEIGHTS.values(), x, strict=True):
        s = np.float32(s + np.float32(np.float32(w) * np.float32(v)))
    return s


def test_createmodel_get_cache_stats_clearcache_delete(srv):
    c = srv.client
    if c.get("/_ltr/_featureset/movies").status_code == 404:
        assert c.put("/_ltr/_featureset/movies", json={"featureset": {"features": FEATURES}}, headers=auth()).status_code == 201  # fmt: skip
    set_version = c.get("/_ltr/_featureset/movies").json()["_version"]
    # errors first: the plugin's statuses and messages
    es_err(
        c.post("/_ltr/_featureset/nope/_createmodel", json=CREATE, headers=auth()),
        400, "illegal_argument_exception", "Stored feature set [nope] does not exist",
    )  # fmt: skip
    es_err(
        c.post("/_ltr/_featureset/movies/_createmodel", json={"name": "x"}, headers=auth()),
        400, "x_content_parse_exception", "unknown field [name]",
    )  # fmt: skip
    es_err(
        c.post("/_ltr/_featureset/movies/_createmodel", json={"model": {"model": CREATE["model"]["model"]}}, headers=auth()),
        400, "parsing_exception", "Missing required value [name]",
    )  # fmt: skip
    es_err(
        c.post("/_ltr/_featureset/movies/_createmodel?version=99", json=CREATE, headers=auth()),
        400, "illegal_argument_exception", f"has version [{set_version}] but [99] was expected.",
    )  # fmt: skip
    es_err(
        c.post("/_ltr/_featureset/movies/_createmodel?version=0", json=CREATE, headers=auth()),
        400, "illegal_argument_exception", "version must be a strictly positive long value",
    )  # fmt: skip
    bad = {"model": {"name": "broken", "model": {"type": "model/unknown", "definition": {}}}}
    es_err(
        c.post("/_ltr/_featureset/movies/_createmodel", json=bad, headers=auth()),
        400, "illegal_argument_exception", "model/unknown",
    )  # fmt: skip
    assert c.get("/models/broken").status_code == 404  # a failed create leaves nothing behind
    # create: compiled, verified, stored and active before the 201, as version 1 of the model
    r = c.post(
        f"/_ltr/_featureset/movies/_createmodel?version={set_version}", json=CREATE, headers=auth()
    )
    assert r.status_code == 201, r.text
    assert r.json() == {
        "_index": ".ltrstore",
        "_id": "model-linear_movies",
        "_version": 1,
        "result": "created",
        "forced_refresh": True,
        "_shards": {"total": 1, "successful": 1, "failed": 0},
    }
    info = c.get("/models/linear_movies").json()  # the same store and versions
    assert info["active_version"] == 1 and info["version_details"][0]["format"] == "es-ltr"
    es_err(
        c.post("/_ltr/_featureset/movies/_createmodel", json=CREATE, headers=auth()),
        405, "illegal_argument_exception", "Element of type [model] are not updatable, please create a new one instead.",
    )  # fmt: skip
    # GET: the stored document (model with its copy of the feature set)
    got = c.get("/_ltr/_model/linear_movies").json()
    assert (got["_id"], got["_version"], got["found"]) == ("model-linear_movies", 1, True)
    src = got["_source"]
    assert (src["name"], src["type"]) == ("linear_movies", "model")
    assert src["model"]["name"] == "linear_movies"
    assert src["model"]["model"] == {"type": "model/linear", "definition": WEIGHTS}
    assert src["model"]["feature_set"]["name"] == "movies"
    assert src["model"]["feature_set"]["features"][0]["template"] == FEATURES[0]["template"]
    r = c.get("/_ltr/_model/nope")
    assert r.status_code == 404 and r.json() == {
        "_index": ".ltrstore",
        "_id": "model-nope",
        "found": False,
    }
    # serve it: the plugin's float32 linear arithmetic
    rows = [(9.5, 3.25), (0.0, 12.0), (1.7, 0.3)]
    r = c.post("/models/linear_movies/score", json={"features": [list(x) for x in rows]})
    assert r.status_code == 200, r.text
    assert r.json()["scores"] == [float(plugin_linear(x)) for x in rows]
    # a second version through the native API, then version 1 loaded explicitly: two resident
    r = c.post(
        "/models/linear_movies/versions",
        params={"featureset": "movies", "wait": "true"},
        content=json.dumps(CREATE).encode(),
        headers=auth(),
    )
    assert r.status_code == 201, r.text
    assert c.get("/_ltr/_model/linear_movies").json()["_version"] == 2  # the active version
    hits = [{"id": i, "score": 1.0, "features": list(x)} for i, x in enumerate(rows)]
    assert c.post("/models/linear_movies/rescore?version=1", json={"hits": hits}).status_code == 200
    cs = c.get("/_ltr/_cachestats").json()
    assert cs["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    m = cs["models"]["linear_movies"]
    assert m["count"] == 2 and set(m["versions"]) == {"1", "2"}
    assert m["versions"]["2"]["active"] and not m["versions"]["1"]["active"]
    assert all(v["ram"] > 0 for v in m["versions"].values()) and m["ram"] == sum(v["ram"] for v in m["versions"].values())  # fmt: skip
    assert m["hits"] == 2 and m["rows_scored"] == 6  # one score + one rescore request, 3 rows each
    assert cs["all"]["models"]["count"] >= 2 and cs["all"]["total"] == cs["all"]["models"]
    assert cs["stores"]["_default_"] == cs["all"] and cs["all"]["featuresets"] == {
        "ram": 0,
        "count": 0,
    }
    # clear the cache: the non-active version leaves memory, the active one keeps serving
    r = c.post("/_ltr/_clearcache", headers=auth())
    assert r.status_code == 200 and r.json() == {"acknowledged": True}
    m = c.get("/_ltr/_cachestats").json()["models"]["linear_movies"]
    assert m["count"] == 1 and set(m["versions"]) == {"2"}
    assert (
        c.post("/models/linear_movies/score", json={"features": [list(rows[0])]}).status_code == 200
    )
    st = c.get("/_ltr/_stats").json()
    assert st["status"] == "green"
    assert st["stores"]["_default_"]["model_count"] == len(c.get("/models").json()["models"])
    assert st["stores"]["_default_"]["featureset_count"] == len(
        c.get("/featuresets").json()["featuresets"]
    )
    cache = st["nodes"]["ltrcompile"]["cache"]["model"]
    assert cache["eviction_count"] >= 1 and cache["entry_count"] >= 1 and cache["hit_count"] >= 3
    only = c.get("/_ltr/_stats/stores").json()
    assert "stores" in only and "status" not in only and only["nodes"]["ltrcompile"] == {}
    es_err(
        c.get("/_ltr/_stats/bogus"), 400, "illegal_argument_exception", "unrecognized stat: [bogus]"
    )
    es_err(
        c.get("/_ltr/_stats/_all,stores"), 400, "illegal_argument_exception", "contains both _all"
    )
    # delete: gone from both APIs
    r = c.delete("/_ltr/_model/linear_movies", headers=auth())
    assert (
        r.status_code == 200
        and r.json()["result"] == "deleted"
        and r.json()["_id"] == "model-linear_movies"
    )
    assert c.get("/models/linear_movies").status_code == 404
    assert c.get("/_ltr/_model/linear_movies").status_code == 404
    r = c.delete("/_ltr/_model/linear_movies", headers=auth())
    assert r.status_code == 404 and r.json()["result"] == "not_found"
    r = c.delete("/_ltr/_featureset/movies", headers=auth())
    assert r.status_code == 200 and r.json()["result"] == "deleted"
    assert c.get("/_ltr/_featureset/movies").status_code == 404


def test_concurrent_createmodel_exactly_one_wins(srv):
    """The exists-check and the storing of the upload are one locked step in the store: of
    concurrent ``_createmodel`` calls for one name exactly one gets the 201; the others get the
    plugin's answer to the index's version conflict (``RestCreateModelFromSet``: 405,
    ``illegal_argument_exception``), and only version 1 exists."""
    import threading

    import httpx

    c = srv.client
    if c.get("/_ltr/_featureset/racefs").status_code == 404:
        assert c.put("/_ltr/_featureset/racefs", json={"featureset": {"features": FEATURES}}, headers=auth()).status_code == 201  # fmt: skip
    body = {"model": {**CREATE["model"], "name": "race_model"}}
    n = 4
    barrier = threading.Barrier(n)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def create() -> None:
        with httpx.Client(base_url=srv.url, timeout=120) as cl:
            barrier.wait()
            r = cl.post("/_ltr/_featureset/racefs/_createmodel", json=body, headers=auth())
        with lock:
            results.append(r)

    threads = [threading.Thread(target=create) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(results) == n
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [405] * (n - 1), [r.text for r in results]
    won = next(r for r in results if r.status_code == 201).json()
    assert (won["_id"], won["_version"], won["result"]) == ("model-race_model", 1, "created")
    for r in results:
        if r.status_code == 405:
            es_err(r, 405, "illegal_argument_exception", "Element of type [model] are not updatable, please create a new one instead.")  # fmt: skip
    info = c.get("/models/race_model").json()
    assert [v["version"] for v in info["version_details"]] == [1] and info["active_version"] == 1
    assert c.delete("/_ltr/_model/race_model", headers=auth()).status_code == 200
    # the name is free again once the model is deleted (a create-only claim does not outlive it)
    r = c.post("/_ltr/_featureset/racefs/_createmodel", json=body, headers=auth())
    assert r.status_code == 201, r.text
    assert r.json()["_version"] == 2  # version numbers are never reused (the store's counter)
    assert c.delete("/_ltr/_model/race_model", headers=auth()).status_code == 200


def test_concurrent_createmodel_across_two_servers_sharing_the_store(srv):
    """The same, across processes: two servers on one store directory (the store's flock)."""
    import threading

    import httpx

    c = srv.client
    if c.get("/_ltr/_featureset/racefs").status_code == 404:
        assert c.put("/_ltr/_featureset/racefs", json={"featureset": {"features": FEATURES}}, headers=auth()).status_code == 201  # fmt: skip
    tf = srv.store.parent / "token"
    other = Server(srv.store, "--token-file", str(tf))
    try:
        body = {"model": {**CREATE["model"], "name": "race2_model"}}
        urls = [srv.url, other.url] * 2
        barrier = threading.Barrier(len(urls))
        results: list[httpx.Response] = []
        lock = threading.Lock()

        def create(url: str) -> None:
            with httpx.Client(base_url=url, timeout=120) as cl:
                barrier.wait()
                r = cl.post("/_ltr/_featureset/racefs/_createmodel", json=body, headers=auth())
            with lock:
                results.append(r)

        threads = [threading.Thread(target=create, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [201, 405, 405, 405], [r.text for r in results]
        info = c.get("/models/race2_model").json()
        assert [v["version"] for v in info["version_details"]] == [info["active_version"]]
    finally:
        other.stop()
    assert c.delete("/_ltr/_model/race2_model", headers=auth()).status_code == 200


def test_model_put_post_and_named_stores_answer_in_the_plugins_shape(srv):
    c = srv.client
    body = {"model": {**CREATE["model"], "feature_set": {"name": "movies", "features": FEATURES}}}
    # RestFeatureManager: POST is an update, and models are never updatable
    es_err(
        c.post("/_ltr/_model/linear_movies", json=body, headers=auth()),
        405, "illegal_argument_exception", "Element of type [model] are not updatable",
    )  # fmt: skip
    es_err(
        c.put("/_ltr/_model/linear_movies", json=body, headers=auth()),
        400, "illegal_argument_exception", "_createmodel",
    )  # fmt: skip
    es_err(c.put("/_ltr/_model/x", json=body), 401, "security_exception", "missing authentication")
    assert c.get("/_ltr/_model/linear_movies").status_code == 404  # nothing was stored
    # named stores (/_ltr/{store}/...): the service has the default store only
    r = c.get("/_ltr/mystore")
    assert r.status_code == 404 and r.json() == {"exists": False}
    es_err(
        c.put("/_ltr/mystore/_featureset/movies", json={"featureset": {"features": FEATURES}}, headers=auth()),
        400, "illegal_argument_exception", "feature store [mystore]: the service has the default store only",
    )  # fmt: skip
    es_err(
        c.get("/_ltr/_featureset/movies/_nothing_here"),
        400, "illegal_argument_exception", "no handler found for uri [/_ltr/_featureset/movies/_nothing_here] and method [GET]",
    )  # fmt: skip


def test_search_featuresets_and_models(srv):
    """``RestSearchStoreElements``: ``GET _ltr/_featureset|_model`` with prefix/from/size."""
    c = srv.client
    for n in ("list_a1", "list_a2", "list_b1"):
        if c.get(f"/_ltr/_featureset/{n}").status_code == 404:
            assert c.put(f"/_ltr/_featureset/{n}", json={"featureset": {"features": FEATURES}}, headers=auth()).status_code == 201  # fmt: skip
    r = c.get("/_ltr/_featureset", params={"prefix": "LIST_A"})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["timed_out"] is False and res["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert [h["_id"] for h in res["hits"]["hits"]] == ["featureset-list_a1", "featureset-list_a2"]
    src = res["hits"]["hits"][0]["_source"]
    assert (src["name"], src["type"]) == ("list_a1", "featureset")
    assert src["featureset"] == c.get("/_ltr/_featureset/list_a1").json()["_source"]["featureset"]
    page = c.get("/_ltr/_featureset", params={"prefix": "list_", "from": "1", "size": "1"}).json()
    assert page["hits"]["total"]["value"] == 3 and [h["_id"] for h in page["hits"]["hits"]] == ["featureset-list_a2"]  # fmt: skip
    body = {"model": {**CREATE["model"], "name": "list_model"}}
    assert c.post("/_ltr/_featureset/list_a1/_createmodel", json=body, headers=auth()).status_code == 201  # fmt: skip
    res = c.get("/_ltr/_model", params={"prefix": "list_"}).json()
    assert [h["_id"] for h in res["hits"]["hits"]] == ["model-list_model"]
    assert res["hits"]["hits"][0]["_source"] == c.get("/_ltr/_model/list_model").json()["_source"]
    es_err(c.get("/_ltr/_model", params={"size": "x"}), 400, "illegal_argument_exception", "Failed to parse int parameter [size]")  # fmt: skip
    es_err(c.get("/_ltr/_model", params={"bogus": "1"}), 400, "illegal_argument_exception", "unrecognized parameters")  # fmt: skip
    assert c.delete("/_ltr/_model/list_model", headers=auth()).status_code == 200


def test_store_list_create_update_and_delete(srv):
    """``RestStoreManager``: GET/PUT/POST/DELETE ``_ltr`` on the default store. Last in this file:
    ``DELETE _ltr`` removes every feature set and model, as the plugin deletes the store index."""
    c = srv.client
    assert c.put("/_ltr/_featureset/storefs", json={"featureset": {"features": FEATURES}}, headers=auth()).status_code == 201  # fmt: skip
    body = {"model": {**CREATE["model"], "name": "store_model"}}
    assert c.post("/_ltr/_featureset/storefs/_createmodel", json=body, headers=auth()).status_code == 201  # fmt: skip
    r = c.get("/_ltr")
    assert r.status_code == 200
    n_sets = len(c.get("/featuresets").json()["featuresets"])
    n_models = len(c.get("/models").json()["models"])
    assert r.json() == {
        "stores": {
            "_default_": {
                "store": "_default_",
                "index": ".ltrstore",
                "version": 2,
                "counts": {"featureset": n_sets, "model": n_models},
            }
        }
    }
    # the default store always exists: creating it is acknowledged (scripts: DELETE, then PUT)
    r = c.put("/_ltr", headers=auth())
    assert r.status_code == 200 and r.json() == {
        "acknowledged": True,
        "shards_acknowledged": True,
        "index": ".ltrstore",
    }
    es_err(
        c.post("/_ltr", headers=auth()),
        400, "illegal_argument_exception", "Updating a feature store is not yet supported.",
    )  # fmt: skip
    for method in ("PUT", "POST", "DELETE"):
        es_err(c.request(method, "/_ltr"), 401, "security_exception", "missing authentication")
    assert c.get("/_ltr/_model/store_model").status_code == 200  # nothing was deleted
    # DELETE _ltr: everything goes, from both APIs; the store is usable again at once
    r = c.delete("/_ltr", headers=auth())
    assert r.status_code == 200 and r.json() == {"acknowledged": True}
    assert c.get("/_ltr").json()["stores"]["_default_"]["counts"] == {}
    assert c.get("/models").json()["models"] == [] and c.get("/featuresets").json()["featuresets"] == []  # fmt: skip
    assert c.get("/_ltr/_model/store_model").status_code == 404
    assert c.post("/models/store_model/score", json={"features": [[1.0, 2.0]]}).status_code == 404
    assert c.put("/_ltr", headers=auth()).status_code == 200
    assert c.put("/_ltr/_featureset/storefs", json={"featureset": {"features": FEATURES}}, headers=auth()).status_code == 201  # fmt: skip
    r = c.post("/_ltr/_featureset/storefs/_createmodel", json=body, headers=auth())
    assert r.status_code == 201 and r.json()["_version"] == 2  # version numbers are never reused
