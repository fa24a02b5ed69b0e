"""The rescoring service, tested through a REAL server process on loopback.

Models are real LightGBM rankers trained on the bundled lambdarank data; expected model scores come
from LightGBM's own predictions on the reloaded model file, the combination from the independent
Elasticsearch reference in ``test_rescore.py``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_rescore import bits, f32, reference_rescore

lgb = pytest.importorskip("lightgbm")

N_FEATURES = 300
NAMES = [f"f{i}" for i in range(N_FEATURES)]
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token-for-tests-0123456789"


# ---------------------------------------------------------------------- server harness
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m ltrcompile.service`` in a subprocess on 127.0.0.1:<free port>."""

    def __init__(
        self, store: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None
    ):
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "ltrcompile.service",
            "--store",
            str(store),
            "--port",
            str(self.port),
        ]
        cmd += ["--log-level", "warning", *args]
        self.log = log or store.parent / f"server-{self.port}.log"
        self._logfh = open(self.log, "wb")  # noqa: SIM115
        # share compiled builds of identical models between the test servers
        cache = os.environ.get("LTRCOMPILE_CACHE", str(Path.home() / ".cache" / "ltrcompile"))
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=self._logfh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LTRCOMPILE_CACHE": cache, **(env or {})},
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start in 90 s")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self._logfh.close()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_job(client: httpx.Client, job_id: str, limit_s: float = 600) -> dict:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        j = client.get(f"/jobs/{job_id}").json()
        if j["state"] in ("ready", "failed"):
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {limit_s} s")


def upload(
    client: httpx.Client, name: str, path: Path, featureset: str = "letor", **params
) -> dict:
    r = client.post(
        f"/models/{name}/versions",
        params={"featureset": featureset, "filename": path.name, **params},
        content=path.read_bytes(),
        headers=auth(),
    )
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "ready", job["error"]
    return job


# ---------------------------------------------------------------------- models and data
@pytest.fixture(scope="module")
def models(rank_data, tmp_path_factory):
    """Two small LightGBM rankers (files + reloaded Boosters) with named features."""
    Xtr, ytr, gtr, *_ = rank_data
    d = tmp_path_factory.mktemp("models")
    out = {}
    for key, rounds, leaves in (("a", 12, 7), ("b", 20, 15)):
        booster = lgb.train(
            {
                "objective": "lambdarank",
                "num_leaves": leaves,
                "verbose": -1,
                "num_threads": 1,
                "seed": 1,
            },
            lgb.Dataset(Xtr, ytr, group=gtr, feature_name=NAMES),
            num_boost_round=rounds,
        )
        path = d / f"ranker_{key}.txt"
        booster.save_model(str(path))
        out[key] = (path, lgb.Booster(model_file=str(path)))
    return out


@pytest.fixture(scope="module")
def query(rank_data):
    """The first test query as sparse rows (absent = missing) and first-pass scores with ties."""
    *_, Xte, _, gte = rank_data
    q = Xte[: int(gte[0])]
    first = np.round(np.linspace(12.0, 2.0, len(q)), 0)  # rounded: many first-pass ties
    return q, first


def sparse_hits(q, first):
    return [
        {
            "id": f"doc{i}",
            "score": float(first[i]),
            "features": {n: float(v) for n, v in zip(NAMES, row, strict=True) if v != 0},
        }
        for i, row in enumerate(q)
    ]


def expected(booster, q, first, window, qw=1.0, rqw=1.0, mode="total"):
    """LightGBM's own scores for the rows, combined by the reference rule: [(id, f32 score)]."""
    model = booster.predict(np.where(q == 0, np.nan, q), raw_score=True)
    return [
        (f"doc{i}", s)
        for i, s in reference_rescore(list(first), list(model), window, qw, rqw, mode)
    ], model


def assert_rescored(resp_hits, want):
    assert [h["id"] for h in resp_hits] == [i for i, _ in want]
    assert [bits(h["score"]) for h in resp_hits] == [bits(s) for _, s in want]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "ltr"
    tf = store.parent / "token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    s = Server(store, "--token-file", str(tf), "--max-body-mb", "4", "--max-upload-mb", "8")
    try:
        r = s.client.put(
            "/featuresets/letor", json={"name": "letor", "features": NAMES}, headers=auth()
        )
        assert r.status_code == 201, r.text
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def served(server, models):
    """Model 'ranker' with version 1 = ranker_a active."""
    job = upload(server.client, "ranker", models["a"][0])
    assert job["version"] == 1
    return server


# ---------------------------------------------------------------------- round trip
def test_upload_then_rescore_matches_lightgbm_and_reference(served, models, query):
    q, first = query
    c = served.client
    window = 10
    r = c.post(
        "/models/ranker/rescore",
        json={
            "hits": sparse_hits(q, first),
            "window_size": window,
            "query_weight": 0.7,
            "rescore_query_weight": 1.3,
            "score_mode": "total",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "ranker" and body["version"] == 1
    assert r.headers["x-model-version"] == "1"
    assert "score;dur=" in r.headers["server-timing"]
    want, model = expected(models["a"][1], q, first, window, 0.7, 1.3, "total")
    assert_rescored(body["hits"], want)
    for h in body["hits"]:
        i = int(h["id"][3:])
        assert h["rescored"] == (h["model_score"] is not None)
        if h["rescored"]:
            assert bits(h["model_score"]) == bits(f32(model[i]))
    assert sum(h["rescored"] for h in body["hits"]) == window
    # the same hits with the features as one base64 float64 matrix (NaN = missing)
    import base64

    data = base64.b64encode(np.where(q == 0, np.nan, q).astype("<f8").tobytes()).decode()
    r = c.post(
        "/models/ranker/rescore",
        json={
            "hits": [{"id": f"doc{i}", "score": float(first[i])} for i in range(len(q))],
            "feature_matrix": {"dtype": "float64", "data": data},
            "window_size": window,
            "query_weight": 0.7,
            "rescore_query_weight": 1.3,
        },
    )
    assert r.status_code == 200, r.text
    assert_rescored(r.json()["hits"], want)
    r = c.post(
        "/models/ranker/score",
        json={"rows": len(q), "feature_matrix": {"dtype": "float64", "data": data}},
    )
    assert np.array_equal(r.json()["scores"], model)


def test_rescore_equals_the_compiled_scorer(served, query):
    """The served numbers are the stored compiled artifact's, loaded independently here."""
    import ltrcompile

    vdir = served.store / "models" / "ranker" / "versions" / "1"
    if not (vdir / "compiled").is_dir() or not list((vdir / "compiled").iterdir()):
        pytest.fail("no compiled artifact in the store")
    from ltrcompile.service.registry import load_scorer

    scorer = load_scorer(vdir / "compiled")
    q, first = query
    Xq = np.where(q == 0, np.nan, q)
    mine = np.asarray(scorer.predict(Xq), np.float64)
    r = served.client.post(
        "/models/ranker/score",
        json={"features": [[None if v == 0 else v for v in row] for row in q.tolist()]},
    )
    assert r.status_code == 200, r.text
    assert np.array_equal(np.array(r.json()["scores"]), mine)
    r = served.client.post(
        "/models/ranker/rescore", json={"hits": sparse_hits(q, first), "window_size": len(q)}
    )
    got = {h["id"]: h["model_score"] for h in r.json()["hits"]}
    assert all(bits(got[f"doc{i}"]) == bits(f32(s)) for i, s in enumerate(mine))
    assert ltrcompile.load_model(str(vdir / "ir.json")).n_trees == 12


def test_score_endpoint_is_lightgbm_predict(served, models, query):
    q, _ = query
    rows = [row.tolist() for row in q[:20]]  # dense vectors: zeros are values here
    r = served.client.post("/models/ranker/score", json={"features": rows})
    assert r.status_code == 200, r.text
    theirs = models["a"][1].predict(q[:20], raw_score=True)
    assert np.array_equal(np.array(r.json()["scores"]), theirs)  # JSON doubles round-trip exactly


def test_elasticsearch_response_body_as_is(served, models, query):
    q, first = query
    hits = []
    for i, row in enumerate(q):
        log = [
            {"name": n, "value": float(v)} if v != 0 else {"name": n}
            for n, v in zip(NAMES, row, strict=True)
        ]
        hits.append(
            {
                "_index": "docs",
                "_id": f"doc{i}",
                "_score": float(first[i]),
                "_source": {"title": f"t{i}"},
                "fields": {"_ltrlog": [{"log_entry1": log}]},
            }
        )
    es = {
        "took": 5,
        "timed_out": False,
        "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": 12.0, "hits": hits},
    }
    r = served.client.post(
        "/models/ranker/rescore",
        params={"window_size": 25, "score_mode": "max", "query_weight": 0.5},
        json=es,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    want, _ = expected(models["a"][1], q, first, 25, 0.5, 1.0, "max")
    out = [{"id": h["_id"], "score": h["_score"]} for h in body["hits"]["hits"]]
    assert_rescored(out, want)
    assert body["took"] == 5 and body["hits"]["total"]["value"] == len(hits)
    assert body["hits"]["max_score"] == out[0]["score"]
    assert body["hits"]["hits"][0]["_source"]["title"].startswith("t")
    assert body["_rescore"]["version"] == 1
    # features in _source instead of the log
    hits2 = [
        {
            "_id": f"doc{i}",
            "_score": float(first[i]),
            "_source": {n: float(v) for n, v in zip(NAMES, row, strict=True) if v != 0},
        }
        for i, row in enumerate(q)
    ]
    r = served.client.post(
        "/models/ranker/rescore?window_size=25&score_mode=max&query_weight=0.5",
        json={"hits": {"hits": hits2}},
    )
    assert_rescored(
        [{"id": h["_id"], "score": h["_score"]} for h in r.json()["hits"]["hits"]], want
    )


# ---------------------------------------------------------------------- versions
def test_versions_activate_rollback_delete(served, models, query):
    c = served.client
    q, first = query
    job = upload(c, "ranker", models["b"][0], activate="false")
    v2 = job["version"]
    assert v2 == 2

    def served_version():
        r = c.post(
            "/models/ranker/rescore",
            json={"hits": sparse_hits(q[:30], first[:30]), "window_size": 30},
        )
        assert r.status_code == 200, r.text
        return r.json()

    assert served_version()["version"] == 1
    pinned = c.post(
        "/models/ranker/rescore?version=2",
        json={"hits": sparse_hits(q[:30], first[:30]), "window_size": 30},
    )
    want_b, _ = expected(models["b"][1], q[:30], first[:30], 30)
    assert_rescored(pinned.json()["hits"], want_b)
    assert (
        c.post(f"/models/ranker/versions/{v2}/activate", headers=auth()).json()["active_version"]
        == 2
    )
    assert_rescored(served_version()["hits"], want_b)
    info = c.get("/models/ranker").json()
    assert info["active_version"] == 2 and info["versions"] == [1, 2]
    assert info["version_details"][1]["parity"]["bit_identical"] is True
    assert c.get("/models/ranker/versions/2").json()["active"] is True
    # rollback
    assert c.post("/models/ranker/versions/1/activate", headers=auth()).status_code == 200
    assert served_version()["version"] == 1
    r = c.delete("/models/ranker/versions/1", headers=auth())
    assert r.status_code == 409 and "active version" in r.json()["error"]["message"]
    assert c.delete("/models/ranker/versions/2", headers=auth()).status_code == 200
    assert c.get("/models/ranker").json()["versions"] == [1]
    assert c.get("/models/ranker/versions/2").status_code == 404
    # a deleted version number is never reused
    job = upload(c, "ranker", models["b"][0], activate="false")
    assert job["version"] == 3
    assert c.delete("/models/ranker/versions/3", headers=auth()).status_code == 200


def test_hot_swap_under_load(served, models, query):
    """Concurrent rescoring while versions swap: 0 failures, each response from exactly one version."""
    c = served.client
    q, first = query
    q, first = q[:40], first[:40]
    job = upload(c, "ranker", models["b"][0], activate="false")
    vb = job["version"]
    want = {
        1: expected(models["a"][1], q, first, 40)[0],
        vb: expected(models["b"][1], q, first, 40)[0],
    }
    payload = {"hits": sparse_hits(q, first), "window_size": 40}
    stop = threading.Event()
    results: list[tuple[int, int, list]] = []
    errors: list[str] = []

    def worker():
        with httpx.Client(base_url=served.url, timeout=30) as wc:
            for _ in range(400):  # bounded
                if stop.is_set():
                    break
                try:
                    r = wc.post("/models/ranker/rescore", json=payload)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    continue
                b = r.json()
                results.append((b["version"], int(r.headers["x-model-version"]), b["hits"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    swaps = 0
    try:
        for _ in range(6):
            for v in (vb, 1):
                time.sleep(0.05)
                assert (
                    c.post(f"/models/ranker/versions/{v}/activate", headers=auth()).status_code
                    == 200
                )
                swaps += 1
    finally:
        time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:5]
    seen = {v for v, _, _ in results}
    assert seen == {1, vb}, f"swaps did not interleave with requests: saw {seen}"
    for v, hv, hits in results:
        assert v == hv
        assert_rescored(hits, want[v])
    assert swaps == 12
    assert c.delete(f"/models/ranker/versions/{vb}", headers=auth()).status_code == 200


# ---------------------------------------------------------------------- bad input -> 4xx
def _err(r, status, fragment):
    assert r.status_code == status, (r.status_code, r.text)
    msg = r.json()["error"]["message"]
    assert fragment in msg, msg


def test_rescore_bad_input(served, query):
    c = served.client
    q, first = query
    ok = sparse_hits(q[:3], first[:3])
    R = "/models/ranker/rescore"
    _err(c.post("/models/nope/rescore", json={"hits": ok}), 404, "no model 'nope'")
    _err(c.post("/models/..%2F..%2Fetc/rescore", json={"hits": ok}), 404, "not found")
    _err(c.post(R, content=b"{not json"), 400, "invalid JSON")
    _err(c.post(R, content=b""), 400, "empty")
    _err(c.post(R, content=b'{"hits": [{"id": 1, "score": NaN, "features": {}}]}'), 400, "NaN")
    _err(
        c.post(R, content=b'{"hits": [{"id": 1, "score": Infinity, "features": {}}]}'),
        400,
        "Infinity",
    )
    _err(
        c.post(R, content=b'{"hits": [{"id": 1, "score": 1e999, "features": {}}]}'),
        400,
        "not a finite float32",
    )
    _err(
        c.post(R, content=b'{"hits": [{"id": 1, "score": 1, "features": {"f1": -1e999}}]}'),
        400,
        "not finite",
    )
    _err(c.post(R, json=[1, 2]), 400, "JSON object")
    _err(c.post(R, json={"hits": 5}), 400, "'hits' must be")
    _err(
        c.post(R, json={"hits": [{"id": "a", "score": 1, "features": [1.0] * 299}]}),
        400,
        "has 299 values but feature set 'letor' has 300",
    )
    _err(
        c.post(R, json={"hits": [{"id": "a", "score": 1, "features": {"f1": 1, "title": 2}}]}),
        400,
        "unknown feature name(s) ['title']",
    )
    _err(
        c.post(R, json={"hits": [{"id": "a", "features": {"f1": 1}}]}), 400, "no first-pass 'score'"
    )
    _err(
        c.post(R, json={"hits": [{"id": "a", "score": "1", "features": {"f1": 1}}]}),
        400,
        "must be a number",
    )
    _err(
        c.post(R, json={"hits": [{"id": "a", "score": 1, "features": {"f1": "x"}}]}),
        400,
        "must be numbers",
    )
    _err(c.post(R, json={"hits": ok, "window_size": 10001}), 400, "maximum rescore window")
    _err(c.post(R, json={"hits": ok, "window_size": -3}), 400, "window_size")
    _err(c.post(R, json={"hits": ok, "score_mode": "sum"}), 400, "score_mode")
    _err(
        c.post(R + "?window_size=5", json={"hits": ok, "window_size": 5}),
        400,
        "both in the body and in the query",
    )
    _err(c.post(R + "?version=x", json={"hits": ok}), 400, "version must be")
    _err(c.post(R + "?version=99", json={"hits": ok}), 404, "no version 99")
    _err(
        c.post(R, json={"hits": {"hits": [{"_id": "a", "_score": None, "_source": {}}]}}),
        400,
        "has no _score",
    )
    _err(
        c.post(R, json={"hits": [{"id": "a", "score": 3e38, "features": {}}], "query_weight": 10}),
        400,
        "overflows float32",
    )
    too_many = [{"id": i, "score": 1.0, "features": {}} for i in range(10001)]
    _err(c.post(R, json={"hits": too_many}), 413, "limit is 10000")
    big = b'{"hits": [' + b" " * (5 << 20) + b"]}"
    _err(c.post(R, content=big), 413, "exceeds the limit")
    _err(c.post("/models/ranker/score", json={"rows": []}), 400, "features")
    _err(c.post("/models/ranker/score", json={"features": [[1, 2]]}), 400, "has 2 values")
    # the server is still healthy and still right after all that
    assert c.get("/healthz").json()["status"] == "ok"


def test_store_writes_bad_input(served, models, tmp_path):
    c = served.client
    path = models["a"][0]
    H = auth()

    def up(name="ranker", body=b"x", **params):
        return c.post(f"/models/{name}/versions", params=params, content=body, headers=H)

    _err(up(featureset="letor", body=b""), 400, "empty")
    _err(up(), 400, "'featureset' is required")
    _err(up(featureset="nope", body=path.read_bytes()), 404, "no feature set 'nope'")
    _err(up(name="bad name!", featureset="letor"), 400, "invalid model name")
    _err(up(name=".hidden", featureset="letor"), 400, "invalid model name")
    _err(up(featureset="letor", body=path.read_bytes(), format="madeup"), 400, "unknown format")
    _err(up(featureset="letor", body=b"\x80\x04\x95" + b"\x00" * 20), 400, "Python pickle")
    _err(up(featureset="letor", body=b"\x7fELF\x02\x01\x01" + b"\x00" * 40), 400, "ELF binary")
    _err(up(featureset="letor", body=b"PK\x03\x04" + b"\x00" * 40), 400, "zip archive")
    _err(
        up(featureset="letor", body=path.read_bytes(), format="sklearn-pickle"), 400, "can run code"
    )
    _err(up(featureset="letor", body=path.read_bytes(), binding="fuzzy"), 400, "binding")
    _err(
        up(featureset="letor", body=path.read_bytes(), color="red"), 400, "unknown query parameters"
    )
    _err(up(featureset="letor", body=path.read_bytes(), wait="maybe"), 400, "true or false")
    _err(up(featureset="letor", body=b"x" * (9 << 20)), 413, "exceeds the limit")
    # a broken model file: the job fails with a message; nothing is stored or activated
    broken = path.read_bytes().replace(b"Tree=3", b"Tree=three")
    before = c.get("/models/ranker").json()
    r = up(featureset="letor", body=broken, wait="true")
    assert r.status_code == 422, r.text
    assert "failed" in r.json()["error"]["message"]
    after = c.get("/models/ranker").json()
    assert (
        after["versions"] == before["versions"]
        and after["active_version"] == before["active_version"]
    )
    # a failed first upload leaves no model behind
    r = up(name="brandnew", featureset="letor", body=broken, wait="true")
    assert r.status_code == 422
    _err(c.get("/models/brandnew"), 404, "no model 'brandnew'")
    # a model whose features do not fit the feature set
    small = tmp_path / "small.txt"
    X = np.random.default_rng(0).random((200, 5))
    lgb.train(
        {"objective": "regression", "verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0]), 3
    ).save_model(str(small))
    r = up(featureset="letor", body=small.read_bytes(), wait="true")
    _err(r, 422, "has 5 features but feature set 'letor' has 300")
    # feature sets
    _err(
        c.put("/featuresets/fs2", json={"name": "other", "features": ["a"]}, headers=H),
        400,
        "the URL",
    )
    _err(c.put("/featuresets/fs2", json={"features": ["a", "a"]}, headers=H), 400, "twice")
    _err(c.put("/featuresets/fs2", content=b"[", headers=H), 400, "invalid JSON")
    _err(c.get("/featuresets/none"), 404, "no feature set")
    _err(c.delete("/models/none", headers=H), 404, "no model")
    _err(c.post("/models/ranker/versions/77/activate", headers=H), 404, "no version 77")
    _err(c.get("/jobs/zzz"), 404, "no upload job")


def test_auth(served):
    c = served.client
    fs = {"features": ["a"]}
    _err(c.put("/featuresets/authfs", json=fs), 401, "needs 'Authorization: Bearer")
    _err(
        c.put("/featuresets/authfs", json=fs, headers=auth("wrong-token-wrong-token")),
        401,
        "invalid bearer token",
    )
    _err(
        c.put("/featuresets/authfs", json=fs, headers={"Authorization": f"Basic {TOKEN}"}),
        401,
        "invalid",
    )
    _err(c.post("/models/ranker/versions/1/activate"), 401, "Bearer")
    _err(c.delete("/models/ranker"), 401, "Bearer")
    _err(c.post("/models/x/versions?featureset=letor", content=b"abc"), 401, "Bearer")
    assert c.put("/featuresets/authfs", json=fs, headers=auth()).status_code == 201
    assert c.delete("/featuresets/authfs", headers=auth()).status_code == 200
    # reads and scoring stay open
    assert c.get("/models").status_code == 200
    assert c.get("/featuresets/letor").status_code == 200


def test_refuses_public_bind_without_token(tmp_path):
    def service(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "ltrcompile.service", "--store", str(tmp_path / "s"), *args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)

    for host in ("0.0.0.0", "::", "192.0.2.1"):
        r = service("--host", host)
        assert r.returncode == 2 and "refusing to bind" in r.stderr, r.stderr
    bad = tmp_path / "tok"
    bad.write_text("short")
    r = service("--token-file", str(bad))
    assert r.returncode != 0 and "at least 16" in r.stderr


def test_open_server_without_token_on_loopback(tmp_path, models):
    s = Server(tmp_path / "open")
    try:
        c = s.client
        assert c.put("/featuresets/letor", json={"features": NAMES}).status_code == 201
        r = c.post(
            "/models/m/versions",
            params={"featureset": "letor", "wait": "true"},
            content=models["a"][0].read_bytes(),
        )
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "ready"
        # a second server may share the store: it serves the same version
        s2 = Server(tmp_path / "open")
        try:
            assert s2.client.get("/healthz").json()["active"] == {"m": 1}
        finally:
            s2.stop()
    finally:
        s.stop()


def test_metrics_health_and_docs(served):
    c = served.client
    c.post("/models/ranker/rescore", json={"hits": []})
    m = c.get("/metrics").text
    assert 'ltr_requests_total{endpoint="rescore",model="ranker",status="200"}' in m
    assert 'ltr_request_seconds_bucket{endpoint="rescore",le="0.005",model="ranker"}' in m
    assert 'ltr_scoring_seconds_count{endpoint="rescore",model="ranker"}' in m
    assert 'ltr_model_active_version{model="ranker"} 1.0' in m
    assert 'ltr_compile_seconds_count{model="ranker"}' in m
    assert 'ltr_uploads_total{model="ranker",outcome="ready"}' in m
    assert 'model="nope"' not in m  # unknown names are not labels
    spec = c.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/models/{name}/rescore" in spec["paths"]
    assert "/models/{name}/rescore" in c.get("/docs").text
    h = c.get("/healthz").json()
    assert h["status"] == "ok" and h["active"]["ranker"] == 1


def test_xgboost_ranker_round_trip(served, rank_data, query, tmp_path):
    """An XGBoost rank:ndcg model (JSON file) served with XGBoost's own margins."""
    xgb = pytest.importorskip("xgboost")
    Xtr, ytr, gtr, *_ = rank_data
    qid = np.repeat(np.arange(len(gtr)), gtr)
    booster = xgb.train(
        {"objective": "rank:ndcg", "max_depth": 4, "eta": 0.3, "nthread": 1, "seed": 3},
        xgb.DMatrix(Xtr, ytr, qid=qid, feature_names=NAMES),
        num_boost_round=15,
    )
    path = tmp_path / "xgb_ranker.json"
    booster.save_model(str(path))
    reloaded = xgb.Booster(model_file=str(path))
    job = upload(served.client, "xgb", path)
    assert job["format"].startswith("xgboost")
    q, first = query
    Xq = np.where(q == 0, np.nan, q)
    theirs = reloaded.predict(
        xgb.DMatrix(Xq, missing=np.nan, feature_names=NAMES), output_margin=True
    )
    r = served.client.post(
        "/models/xgb/rescore",
        json={
            "hits": sparse_hits(q, first),
            "window_size": 30,
            "score_mode": "multiply",
            "rescore_query_weight": 0.25,
        },
    )
    assert r.status_code == 200, r.text
    want = [
        (f"doc{i}", s)
        for i, s in reference_rescore(list(first), list(theirs), 30, 1.0, 0.25, "multiply")
    ]
    assert_rescored(r.json()["hits"], want)
    assert r.json()["version"] == 1


def test_featureset_normalizers_and_defaults_end_to_end(served, tmp_path):
    """Raw values in, ES-plugin float32 normalization + defaults applied, LightGBM's score out."""
    rng = np.random.default_rng(5)
    raw = np.column_stack([rng.normal(1970, 30, 400), rng.uniform(0, 10, 400), rng.random(400)])
    mean, std, lo, hi = 1970.0, 30.0, 0.0, 10.0

    def norm(a, b):  # the plugin's float32 arithmetic, computed independently with struct rounding
        return f32(f32(f32(a) - f32(mean)) / f32(std)), f32(
            f32(f32(b) - f32(lo)) / f32(f32(hi) - f32(lo))
        )

    Xn = np.array([[*norm(a, b), c] for a, b, c in raw])
    names = ["release_year", "vote_average", "popularity"]
    y = Xn[:, 0] * 2 + Xn[:, 1] - Xn[:, 2]
    path = tmp_path / "norm.txt"
    lgb.train(
        {"objective": "regression", "verbose": -1, "num_threads": 1, "num_leaves": 7},
        lgb.Dataset(Xn, y, feature_name=names),
        10,
    ).save_model(str(path))
    booster = lgb.Booster(model_file=str(path))
    fs = {
        "features": [
            {"name": "release_year"},
            {"name": "vote_average"},
            {"name": "popularity", "default": 0.25},
        ],
        "feature_normalizers": {
            "release_year": {"standard": {"mean": mean, "standard_deviation": std}},
            "vote_average": {"min_max": {"minimum": lo, "maximum": hi}},
        },
    }
    c = served.client
    assert c.put("/featuresets/movies", json=fs, headers=auth()).status_code == 201
    upload(c, "movies", path, featureset="movies")
    rows = [
        {"release_year": float(a), "vote_average": float(b), "popularity": float(p)}
        for a, b, p in raw[:50]
    ]
    rows.append({"release_year": 1999.5})  # vote_average missing (NaN), popularity -> default 0.25
    r = c.post("/models/movies/score", json={"features": rows})
    assert r.status_code == 200, r.text
    want_rows = [[*norm(a, b), p] for a, b, p in raw[:50]] + [[norm(1999.5, 0)[0], np.nan, 0.25]]
    theirs = booster.predict(np.array(want_rows))
    assert np.array_equal(np.array(r.json()["scores"]), theirs)


def test_ranklib_lambdamart_scores_are_ranklibs(served):
    """A real RankLib LambdaMART file (../shared) served with RankLib's own score file's numbers."""
    from conftest import SHARED

    d = SHARED / "data" / "ranklib"
    if not (d / "lambdamart.model.txt").exists():
        pytest.skip("shared/data/ranklib not present")
    from ltrcompile.frontends import formats

    if "ranklib" not in formats():
        pytest.skip("RankLib frontend not available")
    rows, qids = [], []
    for line in (d / "test.letor").read_text().splitlines()[:120]:
        parts = line.split()
        qids.append(int(parts[1].split(":")[1]))
        rows.append([float(p.split(":")[1]) for p in parts[2:]])
    scores = [
        float(x.split("\t")[2])
        for x in (d / "lambdamart.scores.tsv").read_text().splitlines()[:120]
    ]
    c = served.client
    fs = {"features": [{"name": f"f{i + 1}", "default": 0} for i in range(300)]}
    assert c.put("/featuresets/ranklib300", json=fs, headers=auth()).status_code == 201
    upload(c, "lambdamart", d / "lambdamart.model.txt", featureset="ranklib300")
    assert c.get("/models/lambdamart/versions/1").json()["format"] == "ranklib"
    r = c.post("/models/lambdamart/score", json={"features": rows})
    assert r.status_code == 200, r.text
    assert r.json()["scores"] == scores
    # by name, zeros left out (missing -> the feature set's default 0, as the ES plugin does)
    hits = [
        {"id": i, "score": 1.0, "features": {f"f{j + 1}": v for j, v in enumerate(row) if v != 0}}
        for i, row in enumerate(rows[:40])
    ]
    r = c.post("/models/lambdamart/rescore", json={"hits": hits, "window_size": 40})
    got = {h["id"]: h["model_score"] for h in r.json()["hits"]}
    assert all(bits(got[i]) == bits(f32(scores[i])) for i in range(40))


def test_es_ltr_plugin_linear_model_with_normalizers(served):
    """An ES LTR plugin model document (model/linear + feature_normalizers) bound to a feature set."""
    from ltrcompile.frontends import formats

    if "es-ltr" not in formats():
        pytest.skip("Elasticsearch frontend not available")
    c = served.client
    fs = {
        "featureset": {
            "name": "movie_features",
            "features": [
                {
                    "name": "title_query",
                    "params": ["keywords"],
                    "template": {"match": {"title": "{{keywords}}"}},
                },
                {
                    "name": "body_query",
                    "params": ["keywords"],
                    "template": {"match": {"overview": "{{keywords}}"}},
                },
                {"name": "release_year", "default": 0},
            ],
        }
    }
    assert c.put("/featuresets/movie_features", json=fs, headers=auth()).status_code == 201
    weights = {"title_query": 0.7, "body_query": 0.31, "release_year": -0.25}
    doc = {
        "model": {
            "name": "linear_movies",
            "model": {
                "type": "model/linear",
                "definition": weights,
                "feature_normalizers": {
                    "release_year": {"standard": {"mean": 1970, "standard_deviation": 30}}
                },
            },
        }
    }
    import json as _json

    r = c.post(
        "/models/linear_movies/versions",
        params={"featureset": "movie_features", "wait": "true"},
        content=_json.dumps(doc).encode(),
        headers=auth(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "es-ltr"
    rows = [(9.5, 3.25, 1999.0), (0.0, 12.0, 1950.0), (1.5, None, None)]
    hits = [
        {
            "id": i,
            "score": 10.0 - i,
            "features": {k: v for k, v in zip(weights, row, strict=True) if v is not None},
        }
        for i, row in enumerate(rows)
    ]
    r = c.post(
        "/models/linear_movies/rescore",
        json={"hits": hits, "window_size": 3, "score_mode": "total"},
    )
    assert r.status_code == 200, r.text
    got = {h["id"]: h for h in r.json()["hits"]}
    for i, row in enumerate(rows):
        # the plugin, by hand: unmatched = 0 (feature default), normalize in float32, float32 w*x sums
        vals = [0.0 if v is None else v for v in row]
        vals[2] = f32(f32(f32(vals[2]) - f32(1970.0)) / f32(30.0))
        score = 0.0
        for w, x in zip(weights.values(), vals, strict=True):
            score = f32(score + f32(f32(w) * f32(x)))
        assert bits(got[i]["model_score"]) == bits(score), (i, got[i], score)
        assert bits(got[i]["score"]) == bits(f32(f32(10.0 - i) + score))
    # normalizing the same feature twice (model and feature set) is refused
    fs2 = {
        "features": ["title_query", "body_query", "release_year"],
        "feature_normalizers": {"release_year": {"min_max": {"minimum": 1900, "maximum": 2030}}},
    }
    assert c.put("/featuresets/movie_norm", json=fs2, headers=auth()).status_code == 201
    r = c.post(
        "/models/linear_movies/versions",
        params={"featureset": "movie_norm", "wait": "true"},
        content=_json.dumps(doc).encode(),
        headers=auth(),
    )
    _err(r, 422, "normalize ['release_year']")
