"""``ltrcompile score --contrib`` and ``ltrcompile inspect --importance`` (in-process CLI main)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import ltrcompile
from ltrcompile.cli import main

lgb = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X[:, 0] * 2 + X[:, 1] ** 2
    m = lgb.train({"objective": "regression", "num_leaves": 7, "verbose": -1, "num_threads": 1},
                  lgb.Dataset(X, y, feature_name=["price", "bm25_title", "age", "clicks"]), 10)
    p = d / "m.txt"
    m.save_model(str(p))
    data = d / "rows.npy"
    np.save(data, X[:20])
    return p, data, X[:20], m


def test_score_contrib_csv(model, tmp_path):
    p, data, X, booster = model
    out = tmp_path / "why.csv"
    assert main(["score", str(p), str(data), "--contrib", "--raw-score", "-o", str(out), "-q"]) == 0
    rows = list(csv.reader(out.open()))
    header = rows[0]
    assert header[-5:] == ["price", "bm25_title", "age", "clicks", "bias"]
    vals = np.array([[float(v) for v in r[-5:]] for r in rows[1:]])
    ref = booster.predict(X, pred_contrib=True)
    assert np.abs(vals - ref).max() <= 1e-12
    score = np.array([float(r[header.index("score")]) for r in rows[1:]])
    np.testing.assert_allclose(vals.sum(axis=1), score, rtol=0, atol=1e-9)


def test_score_contrib_json(model, tmp_path):
    p, data, X, booster = model
    out = tmp_path / "why.json"
    assert main(["score", str(p), str(data), "--contrib", "-o", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    first = doc["rows"][0]["contrib"]
    assert list(first) == ["price", "bm25_title", "age", "clicks", "bias"]
    ref = booster.predict(X[:1], pred_contrib=True)[0]
    assert np.abs(np.array(list(first.values())) - ref).max() <= 1e-12


def test_inspect_importance(model, capsys):
    p, data, X, booster = model
    assert main(["inspect", str(p), "--importance", "--data", str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    imp = doc["importance"]
    ref = np.abs(booster.predict(X, pred_contrib=True)[:, :-1]).mean(axis=0)
    assert imp["n_rows"] == 20
    assert imp["features"][0]["feature"] == ["price", "bm25_title", "age", "clicks"][int(np.argmax(ref))]
    for f in imp["features"]:
        assert abs(f["mean_abs_contribution"] - ref[f["index"]]) <= 1e-12
    assert main(["inspect", str(p), "--importance"]) == 0  # edge rows by default
    assert "importance" in capsys.readouterr().out


def test_contrib_refused_without_covers(tmp_path, capsys):
    ta = ltrcompile.TreeArrays.empty(3)
    ta.left[0], ta.right[0], ta.feature[0] = 1, 2, 0
    ens = ltrcompile.Ensemble.from_trees([ta], n_features=1)
    p = tmp_path / "m.ir.json"
    ens.save(str(p))
    data = tmp_path / "x.npy"
    np.save(data, np.zeros((2, 1)))
    code = main(["score", str(p), str(data), "--contrib", "-q"])
    assert code != 0
    assert "no node covers" in capsys.readouterr().err
