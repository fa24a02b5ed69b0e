"""RankLib dense networks (RankNet, ListNet): interpreter vs compiled, side by side (a script, not a test).

Loads the RankLib model files in tests/data/ranklib, checks both engines agree bit for bit on the
test rows, then times ``Ensemble.predict`` and ``CompiledScorer.predict`` (one thread) on the rows
tiled to ``--rows``, and ``predict_one``. Prints the machine line, versions and ratios.

    .venv/bin/python benchmarks/bench_network.py [--rows 15360] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ltrcompile  # noqa: E402
from benchmarks import machine  # noqa: E402
from ltrcompile.datafiles import read_data  # noqa: E402

DATA = ROOT / "tests" / "data" / "ranklib"


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=15360)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print("# RankLib networks, one thread;", machine.one_line(machine.facts()))
    print("| model | neurons | rows | interpreter ms | compiled ms | ratio | predict_one us |")
    print("|---|---|---|---|---|---|---|")
    for name in ("ranknet", "listnet"):
        ens = ltrcompile.load_model(DATA / f"{name}.model.txt", n_features=300)
        X0 = read_data(DATA / "test.letor", ens).X
        sc = ltrcompile.compile(ens, progress=False)
        if not np.array_equal(sc.predict(X0), ens.predict(X0)):
            raise SystemExit(f"{name}: compiled and interpreter scores differ")
        X = np.resize(X0, (args.rows, X0.shape[1]))
        ti = _best(lambda e=ens, X=X: e.predict(X), args.repeat)
        tc = _best(lambda s=sc, X=X: s.predict(X), args.repeat)
        rows = X0[:1000]
        t1 = _best(lambda s=sc, rows=rows: [s.predict_one(r) for r in rows], args.repeat) / len(rows)
        shape = "x".join(map(str, ens.network.shape))
        print(f"| {name} | {shape} | {args.rows} | {ti * 1e3:.1f} | {tc * 1e3:.2f} | {ti / tc:.1f}x | {t1 * 1e6:.2f} |")
    print("# load average at end:", machine.loadavg())


if __name__ == "__main__":
    main()
