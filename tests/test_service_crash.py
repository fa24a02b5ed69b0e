"""Crash safety: a server SIGKILLed at any point of an upload restarts with a consistent store.

The store must then hold either the old state (version 1 active, no trace of version 2) or the
complete new version -- never a half-written one -- and serve LightGBM's exact scores.
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
from test_service import NAMES, TOKEN, Server, auth, upload

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


def check_consistent(store, tf, two_models) -> tuple[list[int], int]:
    """Restart on ``store``; assert nothing half-written is visible; returns (versions, active)."""
    b1, b2 = two_models["boosters"]
    X = two_models["X"]
    s = Server(store, "--token-file", str(tf))
    try:
        info = s.client.get("/models/m").json()
        versions, active = info["versions"], info["active_version"]
        assert versions in ([1], [1, 2]), info
        assert active in versions
        assert list((store / "tmp").iterdir()) == []  # staging and trash cleaned
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
        # and the store still takes uploads after the crash
        j = upload(s.client, "m", two_models["files"][1], activate="false")
        assert j["version"] > max(versions)
        return versions, active
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


@pytest.mark.parametrize(
    "point, want_versions",
    [
        ("before-replace:model.json", [1]),  # reserving the version number
        ("after-source-write", [1]),
        ("after-compile", [1]),
        ("before-commit-rename", [1]),  # staging complete and fsynced, not yet renamed
        ("after-commit-rename", [1, 2]),  # version complete, pointer not yet switched
        ("before-replace:ACTIVE", [1, 2]),  # new pointer written to a temp file only
    ],
)
def test_kill_at_each_step_of_an_upload(point, want_versions, base_store, two_models, tmp_path):
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
                    if job["state"] == "failed":
                        pytest.fail(f"the upload failed before reaching {point}: {job['error']}")
        rc = s.proc.poll()
    finally:
        s.stop()
    assert rc == -signal.SIGKILL, f"server did not die at {point}: rc={rc}"
    versions, active = check_consistent(store, tf, two_models)
    assert versions == want_versions
    assert active == 1


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3, 0.8, 2.0])
def test_sigkill_at_random_moments(delay, base_store, two_models, tmp_path):
    store, tf = fresh_copy(base_store, tmp_path)
    s = Server(store, "--token-file", str(tf))
    try:
        r = start_second_upload(s, two_models)
        assert r.status_code == 202
        time.sleep(delay)
        s.proc.send_signal(signal.SIGKILL)
        assert s.proc.wait(60) == -signal.SIGKILL
    finally:
        s.stop()
    versions, active = check_consistent(store, tf, two_models)
    if versions == [1, 2]:  # the new version completed: it was committed whole
        assert active in (1, 2)
    else:
        assert active == 1
