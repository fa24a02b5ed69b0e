"""Regression tests for the service defects of issue 15, each over loopback HTTP against a real server.

* a name with a trailing newline (``abc%0A``) was accepted (the name regex ended in ``$``);
* a 5000-digit integer in a ``/score`` body gave HTTP 500 (Python's int-digit limit);
* error messages named the server's absolute staging path.
"""

from __future__ import annotations

import json
import re

import pytest
from test_service import NAMES, TOKEN, Server, auth, upload
from test_service import models as models  # noqa: F401 -- the module fixture, shared

lgb = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def srv(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("defects")
    tf = root / "token"
    tf.write_text(TOKEN)
    tf.chmod(0o600)
    s = Server(root / "store", "--token-file", str(tf))
    try:
        r = s.client.put("/featuresets/letor", json={"features": NAMES}, headers=auth())
        assert r.status_code == 201, r.text
        upload(s.client, "ranker", models["a"][0])
        yield s
    finally:
        s.stop()


def _status(r, status: int, fragment: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert fragment in r.json()["error"]["message"], r.text


def test_names_with_a_trailing_newline_are_refused(srv, models):
    c = srv.client
    for name in ("abc%0A", "abc%0D%0A", "abc%0Adef", "%0Aabc", "abc%00"):
        _status(
            c.put(f"/featuresets/{name}", json={"features": ["a"]}, headers=auth()),
            400,
            "invalid feature set name",
        )
        _status(
            c.post(
                f"/models/{name}/versions",
                params={"featureset": "letor"},
                content=models["a"][0].read_bytes(),
                headers=auth(),
            ),
            400,
            "invalid model name",
        )
        _status(c.get(f"/models/{name}"), 400, "invalid model name")
        _status(
            c.post(f"/models/{name}/rescore", json={"hits": []}),
            400,
            "invalid model name",
        )
    # the feature set named in the query string is checked in full too
    _status(
        c.post(
            "/models/ok/versions",
            params={"featureset": "letor\n"},
            content=models["a"][0].read_bytes(),
            headers=auth(),
        ),
        400,
        "invalid feature set name",
    )
    # nothing with a control character was created anywhere in the store
    assert not [p for p in srv.store.rglob("*") if re.search(r"[\x00-\x1f]", p.name)]
    assert c.get("/featuresets").json()["featuresets"] == ["letor"]


def test_huge_integers_are_4xx_not_500(srv):
    c = srv.client
    huge = "9" * 5000
    row = ",".join(["1"] * (len(NAMES) - 1))
    bodies = {
        "/models/ranker/score": [
            f'{{"features": [[{huge},{row}]]}}',
            f'{{"features": [[-{huge},{row}]]}}',
            f'{{"features": [[{"9" * 400},{row}]]}}',  # fits a Python int, not a float
            f'{{"features": [{{"f1": {huge}}}]}}',
            f'{{"rows": {huge}, "feature_matrix": {{"dtype": "float64", "data": ""}}}}',
        ],
        "/models/ranker/rescore": [
            f'{{"hits": [{{"id": 1, "score": {huge}, "features": {{}}}}]}}',
            f'{{"hits": [{{"id": 1, "score": {"9" * 400}, "features": {{}}}}]}}',
            f'{{"hits": [{{"id": 1, "score": 1, "features": {{}}}}], "window_size": {huge}}}',
            f'{{"hits": [{{"id": {huge}, "score": 1, "features": {{}}}}]}}',
        ],
    }
    for path, docs in bodies.items():
        for doc in docs:
            r = c.post(path, content=doc.encode(), headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (path, doc[:80], r.status_code, r.text[:300])
            assert "outside the float64 range" in r.json()["error"]["message"], r.text[:300]
    r = c.put(
        "/featuresets/bigdefault",
        content=f'{{"features": [{{"name": "a", "default": {huge}}}]}}'.encode(),
        headers=auth(),
    )
    assert r.status_code == 400, r.text
    # an integer of up to 20 digits is still a number (read exactly when it fits 64 bits)
    r = c.post("/models/ranker/score", json={"features": [[12345678901234567890] + [1] * 299]})
    assert r.status_code == 200, r.text
    assert c.get("/healthz").status_code == 200


def test_error_messages_carry_no_server_paths(srv, models, tmp_path):
    c = srv.client
    broken = models["a"][0].read_bytes().replace(b"Tree=3", b"Tree=three")
    root = str(srv.store.resolve())
    msgs = []
    for params in (
        {"wait": "true", "filename": "my_model.txt"},
        {"wait": "true"},
        {"wait": "true", "format": "xgboost-json"},
        {"wait": "true", "format": "ranklib"},
    ):
        r = c.post(
            "/models/ranker/versions",
            params={"featureset": "letor", **params},
            content=broken,
            headers=auth(),
        )
        assert r.status_code == 422, r.text
        msgs.append(r.json()["error"]["message"])
    jobs = c.get("/jobs").json()["jobs"]
    msgs += [j["error"] for j in jobs if j["error"]]
    assert len(msgs) >= 8
    for m in msgs:
        assert root not in m and "/tmp" not in m and "stage-" not in m, m
        assert not re.search(r"(?<![\w.])/[\w.-]+/", m), m  # no absolute directory at all
    # the file is still named: by the client's file name when given, else 'upload'
    assert "'my_model.txt'" in msgs[0] and "tree 3" in msgs[0], msgs[0]
    assert "upload" in msgs[1], msgs[1]
    json.dumps(msgs)
