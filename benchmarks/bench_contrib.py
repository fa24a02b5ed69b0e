"""Single-thread TreeSHAP contributions: ltrcompile's compiled kernel vs the libraries' own.

Engines side by side in one run, on the demo rankers of ``benchmarks/models.py`` (trained there with
fixed seeds and cached, reloaded from their saved files): XGBoost ``predict(DMatrix,
pred_contribs=True)`` (nthread=1; the DMatrix build is part of a call, as for a user), LightGBM
``predict(X, pred_contrib=True, num_threads=1)``, and ``ltrcompile`` ``CompiledScorer.predict_contrib``'s
kernel (:func:`ltrcompile.backends.cython.contrib.predict_contrib`; one-off table build timed
separately). Batch 1 cycles through different rows; batch 1000 is the pool's first 1000 rows. Best of
``--reps`` calls (median in brackets), engines interleaved; the machine facts and load average are
recorded, because timings on a shared machine are noisy. Also reports max |ours - library| on the
1000 rows and, on 20 rows, ours vs the reference interpreter (``Ensemble.predict_contrib``).

Usage::

    python -m benchmarks.bench_contrib [--models xgb-rank-500 lgb-rank-500x64] [--reps 5] [--out bench-results/contrib]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import machine, models

DEFAULT_MODELS = ["xgb-rank-500", "lgb-rank-500x64"]


def _timed(fn: Any, reps: int) -> tuple[float, float]:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def _library_fn(lib: str, model: Any) -> Any:
    if lib == "xgboost":
        import xgboost as xgb

        model.set_param({"nthread": 1})
        return lambda X: model.predict(xgb.DMatrix(X, nthread=1), pred_contribs=True)
    if lib == "lightgbm":
        return lambda X: model.predict(X, pred_contrib=True, num_threads=1)
    raise ValueError(lib)


def bench_model(spec: models.ModelSpec, reps: int, log: Any = print) -> dict[str, Any]:
    import ltrcompile
    from ltrcompile.backends.cython import contrib

    bm = models.prepare(spec, log=log)
    src = models.load_source(spec.library, bm.path)
    lib = _library_fn(spec.library, src)
    ens = ltrcompile.load_model(str(bm.path))
    t = time.perf_counter()
    contrib.tables_for(ens)
    tables_s = time.perf_counter() - t
    ours = lambda X: contrib.predict_contrib(ens, X)  # noqa: E731
    X1000 = np.ascontiguousarray(bm.pool[:1000])
    ref = np.asarray(lib(X1000), np.float64)
    got = ours(X1000).reshape(ref.shape)
    delta_lib = float(np.abs(got - ref).max())
    interp = ens.predict_contrib(X1000[:20])
    delta_interp = float(np.abs(got[:20] - interp.reshape(got[:20].shape)).max())
    eff = float(np.abs(got.reshape(len(X1000), ens.n_outputs, -1).sum(-1) - ens.predict(X1000, raw_score=True).reshape(len(X1000), -1)).max())
    rows = [np.ascontiguousarray(bm.pool[i : i + 1]) for i in range(50)]
    res: dict[str, Any] = {
        "model": spec.id, "library": spec.library, "n_trees": ens.n_trees, "n_features": ens.n_features,
        "table_build_s": tables_s, "table_mb": sum(a.nbytes for a in vars(contrib.tables_for(ens)).values() if isinstance(a, np.ndarray)) / 2**20,
        "max_abs_delta_vs_library": delta_lib, "max_abs_delta_vs_interpreter": delta_interp,
        "max_efficiency_error": eff,
    }
    for name, fn in (("library", lib), ("ltrcompile", ours)):
        it = iter(range(10**9))
        b1 = _timed(lambda fn=fn, it=it: fn(rows[next(it) % len(rows)]), reps * 20)
        b1000 = _timed(lambda fn=fn: fn(X1000), reps)
        res[name] = {"batch1_s": b1[0], "batch1_median_s": b1[1], "batch1000_s": b1000[0], "batch1000_median_s": b1000[1]}
    res["speedup_batch1"] = res["library"]["batch1_s"] / res["ltrcompile"]["batch1_s"]
    res["speedup_batch1000"] = res["library"]["batch1000_s"] / res["ltrcompile"]["batch1000_s"]
    return res


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | trees | library batch 1 | ltrcompile batch 1 | x | library batch 1000 (per row) | ltrcompile batch 1000 (per row) | x | max abs delta vs library | vs interpreter |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        L, C = r["library"], r["ltrcompile"]
        lines.append(
            f"| {r['model']} | {r['n_trees']} | {L['batch1_s'] * 1e6:.0f} us | {C['batch1_s'] * 1e6:.0f} us | "
            f"{r['speedup_batch1']:.1f} | {L['batch1000_s'] * 1e3:.0f} ms ({L['batch1000_s'] * 1e6 / 1000:.0f} us) | "
            f"{C['batch1000_s'] * 1e3:.0f} ms ({C['batch1000_s'] * 1e6 / 1000:.0f} us) | {r['speedup_batch1000']:.1f} | "
            f"{r['max_abs_delta_vs_library']:.2e} | {r['max_abs_delta_vs_interpreter']:.2e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default="bench-results/contrib")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    facts = machine.facts()
    results = [bench_model(s, a.reps) for s in models.select(False, a.models)]
    facts["loadavg_end"] = machine.loadavg()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"machine": facts, "results": results}, indent=2))
    text = f"Machine: {machine.one_line(facts)}; load avg at end {facts['loadavg_end']}\n\n{table(results)}\n"
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
