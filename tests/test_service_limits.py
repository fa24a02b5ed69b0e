"""Uploads are built in worker processes with CPU-time and memory limits: the server never blocks.

Over loopback HTTP against a real server with lowered limits: an upload that would run for a long
time (a large, valid RankLib ensemble: 20,000 trees) or exhaust memory fails with the limit as its
reason, while ``/healthz`` keeps answering within 1 s, scoring goes on and another upload is built
and served meanwhile. Also the 600-byte RankLib file of issue 15 whose ``1E999999999`` threshold
hung the parser (and with it the whole service).
"""

from __future__ import annotations

import re
import threading
import time

import httpx
import numpy as np
import pytest
from test_service import NAMES, TOKEN, Server, auth, upload, wait_job
from test_service import models as models  # noqa: F401 -- the module fixture, shared

lgb = pytest.importorskip("lightgbm")


def ranklib_ensemble(n_trees: int, depth: int = 3) -> str:
    """A valid RankLib LambdaMART model file of ``n_trees`` complete trees over features 1..50."""

    def node(d: int, k: int, indent: int) -> str:
        ind = "\t" * indent
        if d == 0:
            return f"{ind}<output> {((k % 97) - 48) / 1000.0} </output>\n"
        s = (
            f"{ind}<feature> {(k * 7 + d) % 50 + 1} </feature>\n"
            f"{ind}<threshold> {((k * 13 + d) % 100) / 100.0} </threshold>\n"
        )
        for i, pos in enumerate(("left", "right")):
            s += f'{ind}<split pos="{pos}">\n{node(d - 1, 2 * k + i, indent + 1)}{ind}</split>\n'
        return s

    head = (
        f"## LambdaMART\n## No. of trees = {n_trees}\n## No. of leaves = {2**depth}\n"
        "## No. of threshold candidates = 256\n## Learning rate = 0.1\n## Stop early = 100\n\n"
    )
    trees = [
        f'\t<tree id="{t + 1}" weight="0.1">\n\t\t<split>\n{node(depth, t, 3)}\t\t</split>\n\t</tree>\n'
        for t in range(n_trees)
    ]
    return head + "<ensemble>\n" + "".join(trees) + "</ensemble>\n"


def start_server(root, *limits: str) -> Server:
    tf = root / "token"
    tf.write_text(TOKEN)
    tf.chmod(0o600)
    s = Server(root / "store", "--token-file", str(tf), "--upload-slots", "2", *limits)
    r = s.client.put("/featuresets/letor", json={"features": NAMES}, headers=auth())
    assert r.status_code == 201, r.text
    return s


def watch(url: str, X: np.ndarray, want: np.ndarray, stop: threading.Event, out: list) -> None:
    """Every 50 ms until ``stop``, each on a fresh connection: ``/healthz`` (when it was asked,
    its latency or inf) and a score request on model 'small' (when, whether exact)."""
    while not stop.is_set():
        t, p = time.time(), time.perf_counter()
        try:
            ok = httpx.get(url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        out.append(("healthz", t, time.perf_counter() - p if ok else float("inf")))
        t = time.time()
        try:
            r = httpx.post(url + "/models/small/score", json={"features": X.tolist()}, timeout=30)
            exact = r.status_code == 200 and np.array_equal(r.json()["scores"], want)
        except httpx.HTTPError:
            exact = False
        out.append(("score", t, exact))
        time.sleep(0.05)


def expensive_upload_meanwhile(s: Server, body: bytes, models, name: str) -> dict:
    """POST ``body`` and, right after, another upload; while the expensive build runs, /healthz
    answers within 1 s and scoring is exact, and the other upload is built meanwhile.

    "Meanwhile" is read from the jobs' own build windows (``started``..``finished``, server
    clock) and from when each probe was sent, not from sleeps: on a loaded machine either build
    may finish first, but the two must have run at the same time."""
    c = s.client
    first = upload(c, "small", models["a"][0])  # served during the expensive build
    X = np.random.default_rng(1).random((5, len(NAMES)))
    want = models["a"][1].predict(X, raw_score=True)
    probes: list[tuple] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(s.url, X, want, stop, probes))
    watcher.start()
    try:
        r = c.post(
            f"/models/{name}/versions",
            params={"featureset": "letor", "format": "ranklib"},
            content=body,
            headers=auth(),
        )
        assert r.status_code == 202, r.text
        big = r.json()["id"]
        r = c.post(
            "/models/small/versions",
            params={"featureset": "letor", "activate": "false"},
            content=models["b"][0].read_bytes(),
            headers=auth(),
        )
        assert r.status_code == 202, r.text
        other = wait_job(c, r.json()["id"], 300)
        result = wait_job(c, big, 300)
    finally:
        stop.set()
        watcher.join(60)
    assert other["state"] == "ready", other
    # the other upload was built while the expensive one ran (the two build windows overlap)
    assert other["started"] < result["finished"] and result["started"] < other["finished"], (
        result,
        other,
    )
    r = c.post(f"/models/small/score?version={other['version']}", json={"features": X.tolist()})
    assert r.status_code == 200, r.text
    assert np.array_equal(r.json()["scores"], models["b"][1].predict(X, raw_score=True))
    during = [p for p in probes if result["started"] <= p[1] <= result["finished"]]
    health = [p[2] for p in during if p[0] == "healthz"]
    scored = [p[2] for p in during if p[0] == "score"]
    assert len(health) >= 3 and len(scored) >= 3, (len(health), len(scored), result)
    assert max(health) < 1.0, f"/healthz took {max(health):.2f} s during the build ({len(health)})"
    assert all(scored), f"{scored.count(False)} of {len(scored)} score requests failed or inexact"
    assert s.proc.poll() is None
    assert first["version"] == 1
    return result


def test_upload_that_runs_too_long_hits_the_cpu_limit(tmp_path, models):
    s = start_server(tmp_path, "--upload-cpu-s", "8")
    try:
        body = ranklib_ensemble(20_000).encode()  # 24 MB, valid: well over 8 s of CPU to build
        job = expensive_upload_meanwhile(s, body, models, "huge")
        assert job["state"] == "failed", job
        assert job["error"] == "the build exceeded its CPU-time limit of 8 s", job
        assert 7 <= job["build_cpu_seconds"] < 20, job  # ~8 s: the soft limit
        info = s.client.get("/models/huge")
        assert info.status_code == 404, info.text  # nothing was stored
        # the 600-byte file whose 1E999999999 threshold hung the RankLib parser (issue 15):
        # the bounded parser reads it as Java does (+inf, a valid threshold): it builds in well under
        # a second instead of hanging the service
        hang = re.sub(
            r"<threshold> \S+ <", "<threshold> 1E999999999 <", ranklib_ensemble(2, 1), count=1
        )
        assert "1E999999999" in hang and len(hang) < 700
        t = time.monotonic()
        r = s.client.post(
            "/models/hang/versions",
            params={"featureset": "letor", "format": "ranklib", "wait": "true"},
            content=hang.encode(),
            headers=auth(),
        )
        assert r.status_code == 201, r.text
        assert time.monotonic() - t < 60
        h = time.perf_counter()
        assert s.client.get("/healthz").status_code == 200
        assert time.perf_counter() - h < 1.0
    finally:
        s.stop()


def test_upload_that_exhausts_memory_hits_the_memory_limit(tmp_path, models):
    s = start_server(tmp_path, "--upload-memory-mb", "256")
    try:
        body = ranklib_ensemble(20_000).encode()
        job = expensive_upload_meanwhile(s, body, models, "huge")
        assert job["state"] == "failed", job
        assert job["error"] == "the build exceeded its memory limit of 256 MiB", job
        assert s.client.get("/models/huge").status_code == 404
        # and the server's own memory did not grow by the model's size
        assert s.client.get("/healthz").json()["active"] == {"small": 1}  # v2: not activated
    finally:
        s.stop()
