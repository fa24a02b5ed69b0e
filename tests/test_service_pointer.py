"""Two service apps over one store, in one process (no sync thread): the ``ACTIVE`` pointer read
on every request is what makes an activation through one seen by the other's next request.

The quick counterpart of tests/test_service_workers.py (real servers, ``--workers 2``, slow).
"""

from __future__ import annotations

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")
from starlette.testclient import TestClient  # noqa: E402

from ltrcompile.service.app import create_app  # noqa: E402

NAMES = [f"f{i}" for i in range(300)]


@pytest.fixture(scope="module")
def two_files(rank_data, tmp_path_factory):
    Xtr, ytr, gtr, *_ = rank_data
    d = tmp_path_factory.mktemp("pointer-models")
    out = []
    for k, rounds in enumerate((3, 5)):
        b = lgb.train(
            {"objective": "lambdarank", "num_leaves": 5, "verbose": -1, "num_threads": 1},
            lgb.Dataset(Xtr, ytr, group=gtr, feature_name=NAMES),
            num_boost_round=rounds,
        )
        p = d / f"m{k}.txt"
        b.save_model(str(p))
        out.append((p, lgb.Booster(model_file=str(p))))
    return out


def test_activation_through_one_app_is_the_next_request_of_the_other(tmp_path, two_files):
    store = tmp_path / "store"
    X = np.random.default_rng(5).random((4, len(NAMES)))
    want = {v: b.predict(X, raw_score=True) for v, (_, b) in enumerate(two_files, 1)}
    # a sync interval of an hour: the background look never runs during the test
    with (
        TestClient(create_app(str(store), sync_interval=3600)) as a,
        TestClient(create_app(str(store), sync_interval=3600)) as b,
    ):
        assert a.put("/featuresets/letor", json={"features": NAMES}).status_code == 201
        for k, (path, _) in enumerate(two_files):
            r = a.post(
                "/models/m/versions",
                params={"featureset": "letor", "wait": "true", "activate": str(k == 0).lower()},
                content=path.read_bytes(),
            )
            assert r.status_code == 201, r.text

        def served(client) -> int:
            r = client.post("/models/m/score", json={"features": X.tolist()})
            assert r.status_code == 200, r.text
            v = r.json()["version"]
            assert np.array_equal(r.json()["scores"], want[v])
            return v

        assert served(b) == 1  # b loads what ACTIVE names on its first request
        for via, other, v in ((a, b, 2), (b, a, 1), (b, a, 2), (a, b, 1)):
            assert via.post(f"/models/m/versions/{v}/activate").status_code == 200
            assert served(other) == v and served(via) == v
        # a deletion through one is the other's next 404
        assert a.delete("/models/m").status_code == 200
        assert b.post("/models/m/score", json={"features": X.tolist()}).status_code == 404
