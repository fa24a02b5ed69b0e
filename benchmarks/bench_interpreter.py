"""Interpreter throughput on the bundled ranking data (a script, not a test).

Trains the two demo rankers (LightGBM lambdarank, XGBoost rank:ndcg; 500 trees each by default) on
examples/data, then times `Ensemble.predict` on the test rows tiled to batch 1,000 and 100,000.

    .venv/bin/python benchmarks/bench_interpreter.py [--trees 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import demo  # noqa: E402

import ltrcompile  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", type=int, default=500)
    args = ap.parse_args()
    Xtr, ytr, gtr = demo.load_letor("lambdarank_rank.train")
    Xte, _, _ = demo.load_letor("lambdarank_rank.test")
    out = Path(tempfile.mkdtemp(prefix="ltrc-bench-interp-"))
    print(f"# interpreter throughput, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, Python {platform.python_version()}, single process")
    print("| model | batch | seconds | rows/s | us/row |")
    print("|---|---|---|---|---|")
    for kind, trainer, fname in (
        ("lightgbm lambdarank", demo.train_lightgbm, "lgb.txt"),
        ("xgboost rank:ndcg", demo.train_xgboost, "xgb.json"),
    ):
        trainer(Xtr, ytr, gtr, out / fname, args.trees)
        ens = ltrcompile.load_model(out / fname)
        for batch in (1000, 100_000):
            X = np.resize(Xte, (batch, Xte.shape[1]))
            ens.predict(X[:100])
            t0 = time.perf_counter()
            ens.predict(X, raw_score=True)
            dt = time.perf_counter() - t0
            print(f"| {kind} ({ens.n_trees} trees) | {batch} | {dt:.3f} | {batch / dt:,.0f} | {dt / batch * 1e6:.1f} |")


if __name__ == "__main__":
    main()
