# ruff: noqa: F811 -- the fixtures imported from test_service are parameters here
"""``explain=true|K`` on the service's score and rescore endpoints, through a real server on loopback.

Expected contributions come from LightGBM's own ``pred_contrib`` on the reloaded model file.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_service import (  # noqa: F401  (fixtures: a real server with ranker_a as 'ranker' v1)
    NAMES,
    models,
    query,
    served,
    server,
    sparse_hits,
)

lgb = pytest.importorskip("lightgbm")


def _check_top(expl, ref_row, k):
    phi = ref_row[:-1]
    want = np.argsort(-np.abs(phi), kind="stable")
    want = want[phi[want] != 0][:k]
    got = expl["features"]
    assert len(got) == min(k, int(np.count_nonzero(phi)))
    assert [g["index"] for g in got] == want.tolist()
    assert [g["feature"] for g in got] == [NAMES[j] for j in want]
    assert np.abs(np.array([g["contribution"] for g in got]) - phi[want]).max() <= 1e-12
    assert abs(expl["bias"] - ref_row[-1]) <= 1e-12


def test_score_explain_k(served, models, query):
    q, _ = query
    rows = q[:15]
    r = served.client.post("/models/ranker/score", params={"explain": "3"}, json={"features": rows.tolist()})
    assert r.status_code == 200, r.text
    body = r.json()
    ref = models["a"][1].predict(rows, pred_contrib=True)
    assert len(body["explanations"]) == len(rows)
    for e, row in zip(body["explanations"], ref, strict=True):
        _check_top(e, row, 3)
    # contributions are raw-margin: all of them plus the bias are the score (lambdarank: identity)
    r_all = served.client.post("/models/ranker/score", params={"explain": "1000"}, json={"features": rows.tolist()})
    for e, s in zip(r_all.json()["explanations"], body["scores"], strict=True):
        assert abs(sum(f["contribution"] for f in e["features"]) + e["bias"] - s) <= 1e-9
    plain = served.client.post("/models/ranker/score", json={"features": rows.tolist()}).json()
    assert "explanations" not in plain and plain["scores"] == body["scores"]


def test_rescore_explain_true(served, models, query):
    q, first = query
    window = 8
    r = served.client.post(
        "/models/ranker/rescore", params={"explain": "true"},
        json={"hits": sparse_hits(q, first), "window_size": window},
    )
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    ref = models["a"][1].predict(np.where(q == 0, np.nan, q), pred_contrib=True)
    n_explained = 0
    for h in hits:
        i = int(h["id"][3:])
        if h["rescored"]:
            _check_top(h["explanation"], ref[i], 10)
            n_explained += 1
        else:
            assert h["explanation"] is None
    assert n_explained == window
    plain = served.client.post("/models/ranker/rescore", json={"hits": sparse_hits(q, first), "window_size": window})
    assert all("explanation" not in h for h in plain.json()["hits"])
    assert [h["id"] for h in plain.json()["hits"]] == [h["id"] for h in hits]


def test_rescore_explain_es_form(served, models, query):
    q, first = query
    es_hits = [
        {"_id": f"doc{i}", "_score": float(first[i]),
         "fields": {"_ltrlog": [{"log_entries": [{"name": n, "value": float(v)} for n, v in zip(NAMES, row, strict=True) if v != 0]}]}}
        for i, row in enumerate(q)
    ]
    body = {"took": 1, "hits": {"total": {"value": len(q)}, "max_score": float(first.max()), "hits": es_hits}}
    r = served.client.post("/models/ranker/rescore", params={"explain": "2", "window_size": "5"}, json=body)
    assert r.status_code == 200, r.text
    ex = r.json()["_rescore"]["explanations"]
    assert len(ex) == 5
    ref = models["a"][1].predict(np.where(q == 0, np.nan, q), pred_contrib=True)
    for e in ex:
        _check_top(e, ref[int(e["_id"][3:])], 2)


@pytest.mark.parametrize("bad", ["maybe", "-1", "1001", "2.5"])
def test_explain_bad_values(served, query, bad):
    q, _ = query
    r = served.client.post("/models/ranker/score", params={"explain": bad}, json={"features": q[:2].tolist()})
    assert r.status_code == 400
    assert "explain" in r.json()["error"]["message"]
