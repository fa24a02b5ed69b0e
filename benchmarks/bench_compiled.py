"""Benchmark of ltrcompile's Cython backend against the libraries' own predictors (a script, not a test).

Models: 500-tree rankers trained (fixed seeds, one thread) on the bundled lambdarank data
(``examples/data/lambdarank_rank.{train,test}``, 300 features): XGBoost ``rank:ndcg`` depth 6 and
LightGBM ``lambdarank`` 64 leaves. Rows: the 768 test rows tiled to 1000. For every compiled
strategy: build wall time and peak RSS (build run in a child process), batch time per row for
float64 and float32 input, ``predict_one`` per call (cycling through different rows), and 2-thread
batch time. Library references: XGBoost ``inplace_predict``, LightGBM ``predict`` (batch and one row).
``--peers`` adds treelite+tl2cgen and lleaves (slow to build); ``--big`` builds a synthetic
5,000-tree, 64-leaf model with the data-driven strategy and reports its build time and memory.

Usage::

    python benchmarks/bench_compiled.py [--out bench-results/compiled] [--peers] [--big] [--reps 15]

Timings are single-thread unless stated, best of ``--reps`` calls (median in brackets); they are
noisy on a shared machine, so the script interleaves engines and records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"


# ---------------------------------------------------------------------- data and models
def load_letor(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(DATA / f"lambdarank_rank.{name}"), n_features=300, zero_based=False)
    groups = np.loadtxt(DATA / f"lambdarank_rank.{name}.query", dtype=np.int64)
    return X.toarray(), y, groups


def train_models(out: Path) -> dict[str, Path]:
    paths = {"xgboost": out / "xgb_rank_500.json", "lightgbm": out / "lgb_rank_500.txt"}
    if all(p.exists() for p in paths.values()):
        return paths
    Xtr, ytr, gtr = load_letor("train")
    if not paths["xgboost"].exists():
        import xgboost as xgb

        d = xgb.DMatrix(Xtr, ytr, nthread=1)
        d.set_group(gtr)
        params = {"objective": "rank:ndcg", "max_depth": 6, "eta": 0.1, "nthread": 1, "tree_method": "hist", "seed": 0}
        xgb.train(params, d, 500).save_model(str(paths["xgboost"]))
    if not paths["lightgbm"].exists():
        import lightgbm as lgb

        params = {"objective": "lambdarank", "num_leaves": 64, "num_threads": 1, "verbose": -1,
                  "min_data_in_leaf": 5, "seed": 0, "deterministic": True}
        lgb.train(params, lgb.Dataset(Xtr, ytr, group=gtr), 500).save_model(str(paths["lightgbm"]))
    return paths


def big_model(n_trees: int = 5000, leaves: int = 64, n_features: int = 300, seed: int = 0) -> Any:
    """A synthetic LightGBM-like ensemble: random leaf-wise trees with exactly ``leaves`` leaves."""
    from ltrcompile.ir import Ensemble, Missing, Op, TreeArrays

    rng = np.random.default_rng(seed)
    trees = []
    for _ in range(n_trees):
        n = 2 * leaves - 1
        ta = TreeArrays.empty(n, op=Op.LE, missing=Missing.NAN_AS_ZERO)
        frontier = [0]
        nxt = 1
        while nxt < n:
            i = frontier.pop(int(rng.integers(len(frontier))))
            ta.feature[i] = rng.integers(n_features)
            ta.threshold[i] = float(np.round(rng.normal(), 3))
            ta.left[i], ta.right[i] = nxt, nxt + 1
            frontier += [nxt, nxt + 1]
            nxt += 2
        lv = np.flatnonzero(ta.left < 0)
        ta.leaf_value[lv, 0] = rng.normal(0, 0.1, lv.size)
        ta.leaf_id[lv] = np.arange(lv.size)
        trees.append(ta)
    return Ensemble.from_trees(trees, n_features=n_features, input_zero_band=float(np.float32(1e-35)))


# ---------------------------------------------------------------------- builds (child processes)
_BUILD = r"""
import json, sys, time, resource
spec = json.loads(sys.argv[1])
import ltrcompile
from ltrcompile.backends.cython import compile
if spec["model"] == "big":
    sys.path.insert(0, spec["bench_dir"])
    from bench_compiled import big_model
    ens = big_model()
else:
    ens = ltrcompile.load_model(spec["model"])
t = time.perf_counter()
s = compile(ens, spec["out"], strategy=spec["strategy"], cache=False, progress=False)
dt = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": dt, "self_rss_mb": own / 1024, "children_rss_mb": kids / 1024,
                  "strategy": s.strategy, "build": s.manifest["build_seconds"]}))
"""


def build(model: str, strategy: str, out: Path) -> dict[str, Any]:
    spec = {"model": model, "strategy": strategy, "out": str(out), "bench_dir": str(Path(__file__).parent)}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _BUILD, json.dumps(spec)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"build failed: {r.stderr[-3000:]}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    info["process_wall_s"] = wall
    info["peak_rss_mb"] = max(info["self_rss_mb"], info["children_rss_mb"])
    return info


# ---------------------------------------------------------------------- timing
def timed(fn, reps: int) -> tuple[float, float]:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts), float(np.median(ts))


def per_row(fn, X: np.ndarray, reps: int) -> tuple[float, float]:
    b, m = timed(lambda: fn(X), reps)
    return b / len(X) * 1e6, m / len(X) * 1e6


def per_call_one(fn, rows: list[np.ndarray], reps: int) -> tuple[float, float]:
    def run():
        for x in rows:
            fn(x)

    b, m = timed(run, reps)
    return b / len(rows) * 1e6, m / len(rows) * 1e6


def fmt(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0]:.2f} ({pair[1]:.2f})"


# ---------------------------------------------------------------------- peers
def peer_builds(lib: str, path: Path, out: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    try:
        import tl2cgen
        import treelite

        t = time.perf_counter()
        model = (treelite.frontend.load_xgboost_model if lib == "xgboost" else treelite.frontend.load_lightgbm_model)(str(path))
        src = out / f"treelite-{lib}"
        tl2cgen.generate_c_code(model, dirpath=str(src), params={"parallel_comp": 4})
        so = tl2cgen.create_shared("gcc", str(src), nthread=2, long_build_time_warning=False)
        res["treelite"] = {"build_s": time.perf_counter() - t, "predictor": tl2cgen.Predictor(so, nthread=1)}
    except Exception as exc:  # noqa: BLE001 - a peer that does not work is reported, not fatal
        res["treelite"] = {"error": f"{type(exc).__name__}: {exc}"}
    if lib == "lightgbm":
        try:
            import lleaves

            t = time.perf_counter()
            m = lleaves.Model(model_file=str(path))
            m.compile(cache=str(out / "lleaves.bin"), raw_score=True)
            res["lleaves"] = {"build_s": time.perf_counter() - t, "model": m}
        except Exception as exc:  # noqa: BLE001
            res["lleaves"] = {"error": f"{type(exc).__name__}: {exc}"}
    return res


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "compiled"))
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--strategies", default="auto,ifelse,datadriven")
    ap.add_argument("--peers", action="store_true", help="also build and time treelite+tl2cgen and lleaves")
    ap.add_argument("--big", action="store_true", help="also build a 5,000-tree data-driven model")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "2")

    import ltrcompile

    paths = train_models(out)
    Xte, _, _ = load_letor("test")
    X = np.ascontiguousarray(np.resize(Xte, (1000, Xte.shape[1])))
    X32 = X.astype(np.float32)
    rows = [np.ascontiguousarray(X[i]) for i in range(0, 1000, 5)]
    report: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_start": os.getloadavg()},
        "models": {},
    }
    lines = ["| model | engine | build s | peak RSS MB | batch f64 us/row | batch f32 us/row | one row us | 2 threads us/row |",
             "|---|---|---|---|---|---|---|---|"]
    for lib, path in paths.items():
        ens = ltrcompile.load_model(path)
        want = ens.predict(X, raw_score=True)
        entry: dict[str, Any] = {"trees": ens.n_trees, "leaves": ens.n_leaves(), "engines": {}}
        scorers = {}
        for strategy in args.strategies.split(","):
            info = build(str(path), strategy, out / f"build-{lib}-{strategy}")
            s = ltrcompile.load_compiled(out / f"build-{lib}-{strategy}")
            if not np.array_equal(s.predict(X, raw_score=True), want):
                raise SystemExit(f"{lib}/{strategy}: compiled scores differ from the interpreter")
            scorers[f"ltrcompile {strategy} ({info['strategy']})"] = (s, info)
        native = []
        if lib == "xgboost":
            import xgboost as xgb

            b = xgb.Booster(model_file=str(path))
            b.set_param({"nthread": 1})
            native.append(("xgboost inplace_predict", lambda A, b=b: b.inplace_predict(A), lambda x, b=b: b.inplace_predict(x[None, :])))
        else:
            import lightgbm as lgb

            m = lgb.Booster(model_file=str(path))
            native.append(("lightgbm predict", lambda A, m=m: m.predict(A, num_threads=1), lambda x, m=m: m.predict(x[None, :], num_threads=1)))
        peers = peer_builds(lib, path, out) if args.peers else {}
        results: dict[str, dict[str, Any]] = {}
        for _round in range(2):  # interleave engines; keep the best of both rounds
            for name, (s, info) in scorers.items():
                r = {
                    "build_s": info["seconds"], "peak_rss_mb": info["peak_rss_mb"],
                    "f64": per_row(s.predict, X, args.reps), "f32": per_row(s.predict, X32, args.reps),
                    "one": per_call_one(s.predict_one, rows, max(3, args.reps // 3)),
                    "t2": per_row(lambda A, s=s: s.predict(A, n_threads=2), X, args.reps),
                }
                results[name] = _best(results.get(name), r)
            for name, batch, one in native:
                r = {"f64": per_row(batch, X, args.reps), "f32": per_row(batch, X32, args.reps),
                     "one": per_call_one(one, rows[:40], 3)}
                results[name] = _best(results.get(name), r)
            for name, p in peers.items():
                if "error" in p:
                    results[name] = {"error": p["error"]}
                    continue
                fn = _peer_call(name, p)
                r = {"build_s": p["build_s"], "f64": per_row(fn, X, args.reps), "one": per_call_one(lambda x, fn=fn: fn(x[None, :]), rows[:40], 3)}
                results[name] = _best(results.get(name), r)
        for name, r in results.items():
            if "error" in r:
                lines.append(f"| {lib} | {name} | error: {r['error'][:60]} |  |  |  |  |  |")
                continue
            lines.append(
                f"| {lib} | {name} | {r.get('build_s', 0):.1f} | {r.get('peak_rss_mb', 0):.0f} | {fmt(r.get('f64'))} | "
                f"{fmt(r.get('f32'))} | {fmt(r.get('one'))} | {fmt(r.get('t2'))} |"
            )
        entry["engines"] = results
        report["models"][lib] = entry
    if args.big:
        info = build("big", "datadriven", out / "build-big")
        s = ltrcompile.load_compiled(out / "build-big")
        r = {"build_s": info["seconds"], "peak_rss_mb": info["peak_rss_mb"], "f64": per_row(s.predict, X, 3),
             "one": per_call_one(s.predict_one, rows[:40], 3)}
        report["models"]["big-5000x64"] = {"engines": {"ltrcompile datadriven": r}}
        lines.append(f"| synthetic 5000x64 | ltrcompile datadriven | {r['build_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                     f"{fmt(r['f64'])} | - | {fmt(r['one'])} | - |")
    report["machine"]["loadavg_end"] = os.getloadavg()
    table = "\n".join(lines)
    print(table)
    print(f"\nload average: start {report['machine']['loadavg_start']}, end {report['machine']['loadavg_end']}")
    (out / "report.md").write_text(table + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return 0


def _peer_call(name: str, p: dict[str, Any]) -> Any:
    if name == "treelite":
        import tl2cgen

        pred = p["predictor"]

        def call(A: np.ndarray) -> Any:
            return pred.predict(tl2cgen.DMatrix(A.astype(pred.threshold_type, copy=False), dtype=pred.threshold_type), pred_margin=True)

        return call
    model = p["model"]
    return lambda A: model.predict(A, n_jobs=1)


def _best(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if old is None:
        return new
    merged = dict(new)
    for k, v in new.items():
        if isinstance(v, tuple) and isinstance(old.get(k), tuple):
            merged[k] = min(v, old[k])
    return merged


if __name__ == "__main__":
    raise SystemExit(main())
