"""Smoke tests of the benchmark harness plumbing (benchmarks/): gate, protocol, model cache, one tiny
end-to-end run and its reports. No timing assertions: timings on a shared 2-core machine mean nothing
in a test; only that they were taken, gated and written."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import datasets, engines, models, protocol, report  # noqa: E402
from benchmarks.runner import Config, Runner  # noqa: E402

TINY = models.ModelSpec(
    "tiny-lgb", "lightgbm", "taxi_like",
    {"objective": "regression", "num_leaves": 7, "learning_rate": 0.2, "min_data_in_leaf": 20},
    8, "test model",
)


# ---------------------------------------------------------------- gate
def test_gate_identical_outputs_pass_bit_exact():
    ref = np.array([[0.5], [-1.25], [np.nan], [3e10]])
    g = protocol.gate(ref, ref.copy())
    assert g.passed and g.n_exact == 4 and g.max_abs == 0.0


def test_gate_tolerance_is_relative_above_one():
    ref = np.array([1e4, 0.25, -2.0])
    small = ref + np.array([1e4 * 5e-6, 0.0, 0.0])  # within 1e-5 relative
    big = ref + np.array([0.0, 2e-5, 0.0])  # 2e-5 absolute at |ref| < 1 exceeds the tolerance
    ok, bad = protocol.gate(ref, small), protocol.gate(ref, big)
    assert ok.passed and ok.n_exact == 2
    assert not bad.passed and "max |d|" in bad.reason and bad.n_exact == 2


def test_gate_fails_on_nan_mismatch_shape_and_inf():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert not protocol.gate(ref, np.array([[1.0, np.nan], [3.0, 4.0]])).passed
    assert not protocol.gate(ref, np.array([[1.0, 2.0], [3.0, np.inf]])).passed
    r = protocol.gate(ref, np.zeros(3))
    assert not r.passed and "shape" in r.reason


# ---------------------------------------------------------------- protocol
def test_reps_for_budget():
    b = protocol.Budget(seconds=0.5, min_reps=10, max_reps=100, max_call_s=4.0)
    assert b.reps_for(1e-7) == 100  # capped
    assert b.reps_for(0.01) == 50  # budget / call time
    assert b.reps_for(0.3) == 5  # slow calls: at least 5
    assert b.reps_for(2.0) == 3  # very slow calls: at least 3


def test_time_cell_round_robin_and_skip():
    order: list[str] = []
    calls = [(name, (lambda n=name: order.append(n))) for name in ("a", "b", "c")]
    b = protocol.Budget(seconds=1e-9, min_reps=4, max_reps=4, warmup=1)
    out = protocol.time_cell(calls, b)
    assert all(len(out[n].samples_ns) == 4 for n in "abc")
    timed = order[3:]  # after one warm-up call each
    assert len(timed) == 12
    for i in range(0, 12, 3):  # every repetition calls each engine once before any engine repeats
        assert sorted(timed[i : i + 3]) == ["a", "b", "c"]
    assert timed[0] != timed[3]  # starting engine rotates
    slow = protocol.time_cell(calls, protocol.Budget(max_call_s=0.0, warmup=1))
    assert all(t.skipped and not t.samples_ns for t in slow.values())
    st = out["a"].stats()
    assert st["n"] == 4 and st["min_ns"] <= st["median_ns"] <= st["p99_ns"]


# ---------------------------------------------------------------- data and model cache
def test_synthetic_data_looks_real():
    ds = datasets.taxi_like(n_rows=4000)
    X = ds.pool()
    assert np.isnan(X[:, 3]).any() and np.isnan(X[:, 6]).any()  # missing values
    assert np.array_equal(X[:, 0], np.round(X[:, 0]))  # integer-valued hour
    dist = X[:, 3][~np.isnan(X[:, 3])]
    assert np.mean(dist) > 1.3 * np.median(dist)  # right-skewed
    assert abs(np.corrcoef(X[:, 4], X[:, 5])[0, 1]) > 0.3  # correlated coordinates
    cat = datasets.categorical_mix(n_rows=4000)
    assert cat.categorical == (0, 1, 2, 3)
    counts = np.bincount(cat.X_train[:, 3].astype(int))
    assert counts.max() > 10 * np.median(counts[counts > 0])  # Zipf-like category frequencies


def test_model_cache_reuses_the_saved_file(tmp_path):
    a = models.prepare(TINY, tmp_path, log=lambda s: None)
    b = models.prepare(TINY, tmp_path, log=lambda s: None)
    assert not a.cached and a.train_s is not None
    assert b.cached and b.train_s is None and b.path == a.path
    assert b.gate_ref.shape == (len(b.gate_X), 1)
    assert np.array_equal(a.gate_ref, b.gate_ref)


# ---------------------------------------------------------------- end to end
class LightGBMFirstHalf(engines.LightGBMPredict):
    """A real engine that scores a different function: only the first half of the trees."""

    name = "lightgbm.first-half"

    def bind(self, label, X, threads):
        bst, k = self.bst, self.bst.num_trees() // 2
        return lambda: bst.predict(X, raw_score=True, num_threads=threads, num_iteration=k)


def _factory() -> list[engines.Engine]:
    return [engines.LtrInterpreter(), engines.LightGBMPredict(), LightGBMFirstHalf()]


def test_tiny_run_gates_times_and_reports(tmp_path):
    cfg = Config(
        specs=[TINY], batches=(1, 10), threads=(1,), cache=tmp_path / "cache",
        budget=protocol.Budget(seconds=0.001, min_reps=2, max_reps=3, warmup=1),
        engine_factory=_factory, edge_rows=300,
    )
    lines: list[str] = []
    result = Runner(cfg, log=lines.append).run()

    gate = {g["engine"]: g for g in result["gate"]}
    assert gate["ltrcompile.interpreter"]["passed"]
    assert gate["ltrcompile.interpreter"]["n_exact"] == gate["ltrcompile.interpreter"]["n"]
    assert gate["lightgbm.predict"]["passed"]
    assert not gate["lightgbm.first-half"]["passed"]
    assert gate["ltrcompile.interpreter"]["edge"]["n"] > 0

    timed = [c for c in result["cells"] if c["batch"] is not None]
    assert {(c["engine"], c["batch"]) for c in timed} == {
        (e, b) for e in ("ltrcompile.interpreter", "lightgbm.predict") for b in (1, 10)
    }
    assert all(c["status"] == "ok" and c["n"] >= 2 and c["median_us"] > 0 for c in timed)
    failed = [c for c in result["cells"] if c["engine"] == "lightgbm.first-half"]
    assert [c["status"] for c in failed] == ["gate-failed"]  # reported, never timed
    assert report.ours_gate_failures(result) == []

    sp = report.speedups(result)
    assert {(s["batch"], s["best_ours"], s["best_other"]) for s in sp} == {
        (1, "ltrcompile.interpreter", "lightgbm.predict"), (10, "ltrcompile.interpreter", "lightgbm.predict")
    }

    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    paths = report.write_all(result, out)
    names = {p.name for p in paths}
    assert {"results.json", "results.csv", "builds.csv", "results.md", "latency-tiny-lgb.png"} <= names
    data = json.loads((out / "results.json").read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["models"][0]["n_trees"] == 8
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert sum(r["status"] == "ok" for r in rows) == 4
    md = (out / "results.md").read_text()
    assert "tiny-lgb" in md and "**FAIL**" in md and "lightgbm.first-half" in md
    assert (out / "latency-tiny-lgb.png").read_bytes()[:4] == b"\x89PNG"

    # the reports can be rewritten from the JSON alone (python -m benchmarks --from-json)
    from benchmarks import main

    again = tmp_path / "again"
    assert main(["--from-json", str(out / "results.json"), "--out", str(again), "--no-plots"]) == 0

    def body(text: str) -> list[str]:  # everything after the header, without image links
        return [ln for ln in text.split("\n## ", 1)[1].splitlines() if ln and not ln.startswith("![")]

    assert body((again / "results.md").read_text()) == body(md)


@pytest.mark.slow
def test_build_subprocess_measures_a_real_compiler(tmp_path):
    pytest.importorskip("lleaves")
    from benchmarks import build

    bm = models.prepare(TINY, tmp_path / "cache", log=lambda s: None)
    eng = engines.Lleaves()
    if eng.unavailable():
        pytest.skip(eng.unavailable())
    rec = build.run(eng.build_spec(bm, tmp_path / "work"), 300, tmp_path / "build.log")
    assert rec["artifact_bytes"] > 0 and rec["peak_rss_mib"] > 10 and rec["phases"]["compile_s"] > 0
    eng.load(bm, rec)
    assert protocol.gate(bm.gate_ref, eng.raw("lleaves", bm.gate_X)).passed


def test_call_time_prediction_separates_fixed_cost():
    from benchmarks.runner import _predict_call_s

    assert _predict_call_s([], 1000) == 0.0
    assert _predict_call_s([(10, 0.001)], 100) == pytest.approx(0.01)  # one point: per-row scaling
    # 1 ms fixed + 2 us per row: the line through two points, not 100x the batch-100 time
    guess = _predict_call_s([(10, 0.00102), (100, 0.0012)], 10_000)
    assert guess == pytest.approx(0.0012 + 9_900 * 2e-6, rel=0.01)
