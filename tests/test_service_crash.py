"""Crash safety: a server SIGKILLed at any point of an upload restarts with a consistent store.

The store must then hold either the old state (version 1 active, no trace of version 2) or the
complete new version -- never a half-written one -- and serve LightGBM's exact scores. An upload
that was accepted (its job stored) is resumed after the restart, never lost (no 404), and version
numbers are never handed out twice.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time

import httpx
import numpy as np
import pytest
from test_rescore import bits, f32
from test_service import NAMES, TOKEN, Server, auth, upload, wait_job

lgb = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def two_models(rank_data, tmp_path_factory):
    Xtr, ytr, gtr, Xte, _, _ = rank_data
    d = tmp_path_factory.mktemp("crash-models")
    out = []
    for k, rounds in enumerate((4, 7)):
        b = lgb.train(
            {"objective": "lambdarank", "num_leaves": 7, "verbose": -1, "num_threads": 1},
            lgb.Dataset(Xtr, ytr, group=gtr, feature_name=NAMES),
            num_boost_round=rounds,
        )
        p = d / f"m{k}.txt"
        b.save_model(str(p))
        out.append((p, lgb.Booster(model_file=str(p))))
    return {"files": [p for p, _ in out], "boosters": [b for _, b in out], "X": Xte[:25]}


@pytest.fixture(scope="module")
def base_store(two_models, tmp_path_factory):
    """A store with feature set 'letor' and model 'm' version 1 active (closed cleanly)."""
    m1 = two_models["files"][0]
    root = tmp_path_factory.mktemp("crash-base")
    tf = root / "token"
    tf.write_text(TOKEN)
    tf.chmod(0o600)
    s = Server(root / "store", "--token-file", str(tf))
    try:
        assert (
            s.client.put("/featuresets/letor", json={"features": NAMES}, headers=auth()).status_code
            == 201
        )
        upload(s.client, "m", m1)
    finally:
        s.stop()
    return root / "store", tf


def fresh_copy(base_store, tmp_path):
    store, tf = base_store
    dest = tmp_path / "store"
    shutil.copytree(store, dest)
    return dest, tf


def wait_jobs(s: Server, limit_s: float = 600) -> list[dict]:
    """Every job of the store once none is running (resumed ones included)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        jobs = s.client.get("/jobs").json()["jobs"]
        if all(j["state"] in ("ready", "failed") for j in jobs):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"jobs still running after {limit_s} s: {jobs}")


def check_consistent(store, tf, two_models) -> tuple[list[int], int, list[dict]]:
    """Restart on ``store``; let resumed jobs finish; assert nothing half-written is visible.

    Returns (versions, active version, jobs)."""
    b1, b2 = two_models["boosters"]
    X = two_models["X"]
    s = Server(store, "--token-file", str(tf))
    try:
        jobs = wait_jobs(s)
        for j in jobs:  # every accepted job is still there, finished, failed ones with a reason
            assert s.client.get(f"/jobs/{j['id']}").status_code == 200
            assert j["state"] == "ready" or j["error"], j
        info = s.client.get("/models/m").json()
        versions, active = info["versions"], info["active_version"]
        assert versions in ([1], [1, 2]), info
        assert active in versions
        assert [p.name for p in (store / "tmp").iterdir()] == []  # staging and trash cleaned
        assert [p.name for p in (store / "models").iterdir()] == ["m"]
        for v in versions:
            vdir = store / "models" / "m" / "versions" / str(v)
            meta = json.loads((vdir / "meta.json").read_text())
            assert meta["version"] == v and meta["parity"]["bit_identical"] is True
            assert (vdir / "ir.json").is_file() and any((vdir / "compiled").iterdir())
            rows = [[None if x == 0 else x for x in row] for row in X.tolist()]
            r = s.client.post(f"/models/m/score?version={v}", json={"features": rows})
            assert r.status_code == 200, r.text
            theirs = (b1 if v == 1 else b2).predict(np.where(X == 0, np.nan, X), raw_score=True)
            assert np.array_equal(r.json()["scores"], theirs)
        r = s.client.post(
            "/models/m/rescore", json={"hits": [{"id": 0, "score": 1.0, "features": {"f1": 0.5}}]}
        )
        assert r.status_code == 200 and r.json()["version"] == active
        want = (b1 if active == 1 else b2).predict(
            np.where(np.arange(300) == 1, 0.5, np.nan)[None], raw_score=True
        )
        assert bits(r.json()["hits"][0]["model_score"]) == bits(f32(want[0]))
        # and the store still takes uploads after the crash, never reusing a version number
        handed_out = [j["version"] for j in jobs]
        j = upload(s.client, "m", two_models["files"][1], activate="false")
        assert j["version"] > max([*versions, *handed_out])
        return versions, active, jobs
    finally:
        s.stop()


def start_second_upload(s: Server, two_models) -> httpx.Response:
    """POST the second model as a new version of 'm' (asynchronous: answers 202 with a job)."""
    return s.client.post(
        "/models/m/versions",
        params={"featureset": "letor"},
        content=two_models["files"][1].read_bytes(),
        headers=auth(),
    )


# (crash point, does the server die there, versions after restart, job after restart)
SERVER_POINTS = [
    ("reserve-version", [1], None),  # before the number is written: no job was accepted
    ("after-job-accepted", [1, 2], "ready"),  # job durable, 202 not sent yet: resumed
    ("job-started", [1, 2], "ready"),  # resumed from the stored upload
    ("before-commit-rename", [1, 2], "ready"),  # staging complete and fsynced, not yet renamed
    ("after-commit-rename", [1, 2], "ready"),  # version complete: resumed at the activation
    ("before-replace:ACTIVE", [1, 2], "ready"),  # new pointer written to a temp file only
]


@pytest.mark.parametrize("point, want_versions, want_job", SERVER_POINTS)
def test_kill_server_at_each_step_of_an_upload(
    point, want_versions, want_job, base_store, two_models, tmp_path
):
    store, tf = fresh_copy(base_store, tmp_path)
    s = Server(store, "--token-file", str(tf), env={"LTRCOMPILE_CRASH_AT": point})
    try:
        job_id = None
        try:
            r = start_second_upload(s, two_models)
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
        except httpx.HTTPError:
            pass  # killed before it could answer
        deadline = time.monotonic() + 600
        while s.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if job_id is not None:
                with contextlib.suppress(httpx.HTTPError):
                    job = s.client.get(f"/jobs/{job_id}").json()
                    if job["state"] in ("failed", "ready"):
                        pytest.fail(f"the upload finished before reaching {point}: {job}")
        rc = s.proc.poll()
    finally:
        s.stop()
    assert rc == -signal.SIGKILL, f"server did not die at {point}: rc={rc}"
    versions, active, jobs = check_consistent(store, tf, two_models)
    assert versions == want_versions
    mine = [j for j in jobs if j["version"] == 2]
    if want_job is None:
        assert mine == []
        assert active == 1
    else:
        assert len(mine) == 1 and mine[0]["state"] == want_job, jobs
        assert mine[0]["attempts"] >= 2 or point == "after-job-accepted", mine  # resumed
        assert job_id is None or mine[0]["id"] == job_id
        assert active == 2  # the upload asked for activation; the resumed job did it


@pytest.mark.parametrize("point", ["after-source-write", "after-compile"])
def test_killed_build_process_is_a_failed_job(point, base_store, two_models, tmp_path):
    """The build runs in a worker process: killing it fails the job, with the reason; the server
    keeps serving version 1."""
    store, tf = fresh_copy(base_store, tmp_path)
    s = Server(store, "--token-file", str(tf), env={"LTRCOMPILE_CRASH_AT": point})
    try:
        r = start_second_upload(s, two_models)
        assert r.status_code == 202, r.text
        job = wait_job(s.client, r.json()["id"])
        assert job["state"] == "failed"
        assert "killed by SIGKILL" in job["error"], job
        assert s.proc.poll() is None
        assert s.client.get("/healthz").json()["active"] == {"m": 1}
    finally:
        s.stop()
    versions, active, _ = check_consistent(store, tf, two_models)
    assert versions == [1] and active == 1


def test_version_numbers_are_never_reused(base_store, two_models, tmp_path):
    """Not after a failed first upload, not after deleting the model, not across a kill -9."""
    store, tf = fresh_copy(base_store, tmp_path)
    s = Server(store, "--token-file", str(tf))
    good = two_models["files"][0].read_bytes()
    try:
        c = s.client

        def up(name, body, **params):
            return c.post(
                f"/models/{name}/versions",
                params={"featureset": "letor", "wait": "true", **params},
                content=body,
                headers=auth(),
            )

        r = up("fresh", good.replace(b"Tree=1", b"Tree=one"))
        assert r.status_code == 422 and "version 1 failed" in r.text, r.text
        assert c.get("/models/fresh").status_code == 404  # a failed first upload leaves no model
        r = up("fresh", good)
        assert r.status_code == 201 and r.json()["version"] == 2, r.text
        assert c.delete("/models/fresh", headers=auth()).status_code == 200
        r = up("fresh", good)
        assert r.status_code == 201 and r.json()["version"] == 3, r.text
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(30)
    finally:
        s.stop()
    s = Server(store, "--token-file", str(tf))
    try:
        r = s.client.post(
            "/models/fresh/versions",
            params={"featureset": "letor", "wait": "true"},
            content=good,
            headers=auth(),
        )
        assert r.status_code == 201 and r.json()["version"] == 4, r.text
    finally:
        s.stop()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3, 0.8, 2.0])
def test_sigkill_at_random_moments(delay, base_store, two_models, tmp_path):
    store, tf = fresh_copy(base_store, tmp_path)
    s = Server(store, "--token-file", str(tf))
    try:
        r = start_second_upload(s, two_models)
        assert r.status_code == 202
        job_id = r.json()["id"]
        time.sleep(delay)
        s.proc.send_signal(signal.SIGKILL)
        assert s.proc.wait(60) == -signal.SIGKILL
    finally:
        s.stop()
    versions, active, jobs = check_consistent(store, tf, two_models)
    mine = [j for j in jobs if j["id"] == job_id]
    assert len(mine) == 1 and mine[0]["state"] == "ready", jobs  # accepted (202): resumed
    assert versions == [1, 2] and active == 2
