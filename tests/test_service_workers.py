"""Scale-out: ``serve --workers 2``, and two servers on one store directory, over loopback HTTP.

An activation made through any process sharing the store is served by every process to every
request that starts after the activation returned (docs/service.md: the propagation bound on one
host is zero). Each scoring response names the process that answered (``X-Served-By``), so the
tests prove that both processes were asked, and each is checked against LightGBM's own scores.
A worker killed with ``kill -9`` is replaced by the supervisor and the store stays served.

The servers run with a sync interval of a minute, so the background look at the store cannot be
what propagates an activation within a test: the per-request check of the ``ACTIVE`` pointer is.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from test_service import NAMES, ROOT, TOKEN, Server, auth, upload
from test_service import models as models  # noqa: F401 -- the module fixture, shared

lgb = pytest.importorskip("lightgbm")
pytestmark = pytest.mark.slow  # several server processes, a minute each

#: ``--sync-interval``: longer than any test here (see the module docstring).
SLOW_SYNC = ("--sync-interval", "60")
#: Requests per round are sent until both processes have answered; never more than this.
MAX_PER_ROUND = 400


def token_file(root):
    tf = root / "token"
    tf.write_text(TOKEN)
    tf.chmod(0o600)
    return tf


def score_fresh(url: str, X: np.ndarray) -> tuple[int, int, list[float]]:
    """One /score request on a new connection: (version, answering pid, scores)."""
    rows = [[None if np.isnan(v) else v for v in row] for row in X.tolist()]  # null = missing
    r = httpx.post(url + "/models/m/score", json={"features": rows}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == int(r.headers["x-model-version"])
    return body["version"], int(r.headers["x-served-by"]), body["scores"]


def pids_of(url: str, want: int, tries: int = 300) -> set[int]:
    """The pids /healthz reports over fresh connections, once ``want`` distinct ones answered."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(httpx.get(url + "/healthz", timeout=10).json()["pid"])
        if len(seen) >= want:
            break
    return seen


def round_after_activation(urls, X, pids, version, want_scores) -> dict[int, int]:
    """Concurrent fresh-connection requests (8 at a time) until every pid in ``pids`` answered:
    every one must be ``version`` with its exact scores. Returns responses per pid."""
    per_pid: dict[int, int] = {}
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while sent < MAX_PER_ROUND and not pids <= set(per_pid):
            batch = list(pool.map(lambda k: score_fresh(urls[k % len(urls)], X), range(16)))
            sent += len(batch)
            for v, pid, scores in batch:
                assert v == version, f"pid {pid} served version {v} after {version} was activated"
                assert np.array_equal(scores, want_scores[version])
                per_pid[pid] = per_pid.get(pid, 0) + 1
    assert pids <= set(per_pid), f"not every process answered in {sent} requests: {per_pid}"
    return per_pid


@pytest.fixture
def two_versions(models):
    X = np.random.default_rng(3).random((8, len(NAMES)))
    X[X < 0.3] = np.nan
    want = {
        1: models["a"][1].predict(X, raw_score=True),
        2: models["b"][1].predict(X, raw_score=True),
    }
    return X, want


def setup_model(s: Server, models) -> None:
    c = s.client
    assert c.put("/featuresets/letor", json={"features": NAMES}, headers=auth()).status_code == 201
    assert upload(c, "m", models["a"][0])["version"] == 1
    assert upload(c, "m", models["b"][0], activate="false")["version"] == 2


def test_workers_see_every_activation_at_once_and_a_killed_worker_is_replaced(
    tmp_path, models, two_versions
):
    X, want = two_versions
    tf = str(token_file(tmp_path))
    s = Server(tmp_path / "store", "--workers", "2", "--token-file", tf, *SLOW_SYNC)
    try:
        setup_model(s, models)
        pids = pids_of(s.url, 2)
        assert len(pids) == 2, f"only {pids} answered /healthz over 300 fresh connections"
        totals: dict[int, int] = {}
        for version in (2, 1, 2, 1, 2, 1):
            # each activation goes through whichever worker takes the connection
            r = httpx.post(f"{s.url}/models/m/versions/{version}/activate", headers=auth())
            assert r.status_code == 200 and r.json()["active_version"] == version, r.text
            for pid, n in round_after_activation([s.url], X, pids, version, want).items():
                totals[pid] = totals.get(pid, 0) + n
        assert set(totals) == pids

        # kill -9 one worker: the supervisor starts another, which serves the active version
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        now: set[int] = set()
        while time.monotonic() < deadline:
            now = pids_of(s.url, 2, tries=50)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.5)
        assert len(now) == 2 and victim not in now, f"no replacement for {victim}: {now}"
        assert s.proc.poll() is None
        r = httpx.post(f"{s.url}/models/m/versions/2/activate", headers=auth())
        assert r.status_code == 200, r.text
        round_after_activation([s.url], X, now, 2, want)
        info = s.client.get("/models/m").json()
        assert info["active_version"] == 2 and info["versions"] == [1, 2]
    finally:
        s.stop()


def test_two_servers_on_one_store_directory(tmp_path, models, two_versions):
    X, want = two_versions
    tf = str(token_file(tmp_path))
    a = Server(tmp_path / "store", "--token-file", tf, *SLOW_SYNC)
    b = None
    try:
        setup_model(a, models)
        b = Server(tmp_path / "store", "--token-file", tf, *SLOW_SYNC, log=tmp_path / "b.log")
        pa = a.client.get("/healthz").json()["pid"]
        pb = b.client.get("/healthz").json()["pid"]
        assert pa != pb
        for via, version in ((b, 2), (a, 1), (a, 2), (b, 1)):
            r = via.client.post(f"/models/m/versions/{version}/activate", headers=auth())
            assert r.status_code == 200, r.text
            # the very next request to either server gets it (no propagation window)
            round_after_activation([a.url, b.url], X, {pa, pb}, version, want)
        # an upload through one server is built there and served by the other
        job = upload(b.client, "m", models["a"][0])
        assert job["version"] == 3
        want3 = {3: want[1]}
        round_after_activation([a.url, b.url], X, {pa, pb}, 3, want3)
        assert a.client.get("/models/m").json()["versions"] == [1, 2, 3]
        # deleting the model through one server: the other answers 404 at once
        assert b.client.delete("/models/m", headers=auth()).status_code == 200
        r = a.client.post("/models/m/score", json={"features": [[0.0] * len(NAMES)]})
        assert r.status_code == 404, r.text
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_short_scaleout_load_run(tmp_path):
    """benchmarks/load_scaleout.py for 6 s (6 clients, activations every 0.5 s, a worker killed at
    3 s): 0 wrong-version responses, scores exact, failures only on the killed worker's
    connections (one each), the worker replaced, the store consistent. (The 60 s run with 20
    clients is the benchmark; docs/service.md has its figures.)"""
    import json
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks import load_scaleout

    out = tmp_path / "run.json"
    argv = ["--duration", "6", "--clients", "6", "--trees", "20", "--work", str(tmp_path)]
    rc = load_scaleout.main([*argv, "--json", str(out)])
    res = json.loads(out.read_text())
    assert res["wrong_version"] == 0 and res["wrong_scores"] == 0, res
    assert res["failed_other"] == 0 and res["connections_failing_more_than_once"] == 0, res
    assert res["store"]["consistent"], res["store"]
    assert res["victim_replaced"] and res["activations"] >= 4, res
    assert res["ok"] > 50 and len(res["responses_by_pid"]) >= 2, res
    assert rc == 0
