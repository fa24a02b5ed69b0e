"""``python -m benchmarks [--quick] [--out DIR] ...``: run the benchmark and write its reports.

Exit status: 0 when the run completed and every ltrcompile engine passed the correctness gate,
1 when an ltrcompile engine failed it (a correctness bug, whatever the timings say), 2 on bad usage,
3 when the watchdog stopped a hung run (partial reports are written first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import machine, models, protocol, report
from .runner import Config, Runner


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def _list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark ltrcompile against XGBoost, LightGBM, scikit-learn, treelite+tl2cgen and lleaves.",
    )
    ap.add_argument("--quick", action="store_true",
                    help="about two minutes: two small models, batches 1/100/10000, short cells")
    ap.add_argument("--out", type=Path, default=None,
                    help="results directory (default bench-results/quick or bench-results/full)")
    ap.add_argument("--models", type=_list, default=None, help="comma-separated model ids (see --list)")
    ap.add_argument("--engines", type=_list, default=None,
                    help="comma-separated substrings of engine names to keep (e.g. ltrcompile,lleaves)")
    ap.add_argument("--batches", type=_ints, default=None, help="comma-separated batch sizes")
    ap.add_argument("--threads", type=_ints, default=None, help="comma-separated thread counts (default 1,all cores)")
    ap.add_argument("--seconds", type=float, default=None, help="sampled seconds per engine per cell")
    ap.add_argument("--max-call-s", type=float, default=None, help="skip an engine in a cell above this per call")
    ap.add_argument("--cache", type=Path, default=models.DEFAULT_CACHE, help="trained-model cache directory")
    ap.add_argument("--workdir", type=Path, default=None, help="keep build outputs here (default: temp, removed)")
    ap.add_argument("--build-timeout", type=float, default=None,
                    help="seconds one engine's build may take (default 300 full, 180 quick)")
    ap.add_argument("--model-timeout", type=float, default=None,
                    help="seconds one model may take before the watchdog stops the run (default 1200 full, 420 quick)")
    ap.add_argument("--rebuild", action="store_true",
                    help="rebuild treelite/lleaves artifacts instead of reusing (and re-reporting) cached builds")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ap.add_argument("--list", action="store_true", help="list models and engines, then exit")
    ap.add_argument("--from-json", type=Path, default=None, metavar="RESULTS_JSON",
                    help="rewrite the reports (Markdown, CSV, plots) from an earlier run's results.json")
    return ap


def _list_all() -> None:
    from .engines import all_engines

    print("models (* = in --quick):")
    for s in models.ZOO:
        print(f"  {'*' if s.quick else ' '} {s.id:20s} {s.library:9s} {s.purpose}")
    print("engines:")
    for e in all_engines():
        why = e.unavailable()
        print(f"    {e.name:32s} {'unavailable: ' + why if why else 'available'}")


def config_from(args: argparse.Namespace) -> Config:
    cores = machine.n_cores()
    if args.quick:
        cfg = Config(quick=True, batches=(1, 100, 10_000), threads=tuple(sorted({1, cores})),
                     budget=protocol.Budget(seconds=0.08, min_reps=5, max_reps=1000, warmup=2, max_call_s=2.0),
                     build_timeout_s=180.0, model_timeout_s=420.0)
    else:
        cfg = Config(quick=False, threads=tuple(sorted({1, cores})),
                     budget=protocol.Budget(seconds=0.2, min_reps=10, max_reps=3000, warmup=3, max_call_s=3.0),
                     build_timeout_s=300.0)
    cfg.model_ids = args.models
    cfg.engine_filter = args.engines
    if args.batches:
        cfg.batches = tuple(sorted(args.batches))
    if args.threads:
        cfg.threads = tuple(args.threads)
    if args.seconds is not None or args.max_call_s is not None:
        b = cfg.budget
        cfg.budget = protocol.Budget(
            seconds=args.seconds if args.seconds is not None else b.seconds, min_reps=b.min_reps,
            max_reps=b.max_reps, warmup=b.warmup,
            max_call_s=args.max_call_s if args.max_call_s is not None else b.max_call_s,
        )
    cfg.cache = args.cache
    cfg.workdir = args.workdir
    cfg.keep_builds = args.workdir is not None
    cfg.reuse_builds = not args.rebuild
    if args.build_timeout is not None:
        cfg.build_timeout_s = args.build_timeout
    if args.model_timeout is not None:
        cfg.model_timeout_s = args.model_timeout
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # OpenMP runtimes that spin after a parallel region steal the (2) cores from the next engine in
    # the round-robin and from each other; passive waiting keeps the interleaved engines independent.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.list:
        _list_all()
        return 0
    cfg = config_from(args)
    out = args.out or (Path("bench-results") / ("quick" if cfg.quick else "full"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        result.pop("speedups", None)
    else:
        def checkpoint(partial: dict[str, Any]) -> None:  # reports so far, in case a later model hangs
            report.write_all(partial, out, plots=False)

        result = Runner(cfg, checkpoint=checkpoint).run()
    paths = report.write_all(result, out, plots=not args.no_plots)
    print(f"\nfinished in {time.perf_counter() - t0:.0f} s; results:")
    for p in paths:
        print(f"  {p}")
    print()
    print(report.summary_text(result))
    bad = report.ours_gate_failures(result)
    if bad:
        print("ltrcompile FAILED the correctness gate: " + json.dumps(
            [{"model": g["model"], "engine": g["engine"], "reason": g["reason"]} for g in bad]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
