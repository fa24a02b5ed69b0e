"""``python -m benchmarks [--quick] [--out DIR] ...``: run the benchmark and write its reports.

Exit status: 0 when the run completed and every ltrcompile engine passed the correctness gate,
1 when an ltrcompile engine failed it (a correctness bug, whatever the timings say), 2 on bad usage,
3 when the watchdog stopped a hung run (partial reports are written first).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

from . import machine, models, protocol, report
from .runner import Config, Runner


class _Ints(click.ParamType):
    name = "ints"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            vals = tuple(int(v.replace("_", "")) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"expected comma-separated integers, got {value!r}", param, ctx)
        if not vals or min(vals) < 1:
            self.fail(f"expected positive integers, got {value!r}", param, ctx)
        return vals


class _Names(click.ParamType):
    name = "names"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        return value if isinstance(value, list) else [v.strip() for v in str(value).split(",") if v.strip()]


HELP = """Benchmark ltrcompile against XGBoost, LightGBM, scikit-learn, treelite+tl2cgen and lleaves.

\b
Examples:
  python -m benchmarks --quick
  ltrcompile bench --models lgb-reg-100x31 --engines ltrcompile,lightgbm --batches 1,100

\b
Exit codes: 0 ok (every ltrcompile engine passed the correctness gate), 1 an
ltrcompile engine failed the correctness gate, 2 bad usage, 3 the watchdog
stopped a hung run (partial reports written), 4 environment (ltrcompile bench:
the benchmarks package or one of its libraries is missing).
"""


@click.command("bench", help=HELP, context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="About two minutes: two small models, batches 1/100/10000, short cells.")
@click.option("--out", "-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output path: the results directory (default bench-results/quick or bench-results/full).")
@click.option("--models", type=_Names(), default=None, help="Comma-separated model ids (see --list).")
@click.option("--engines", type=_Names(), default=None,
              help="Comma-separated substrings of engine names to keep (e.g. ltrcompile,lleaves).")
@click.option("--batches", type=_Ints(), default=None, help="Comma-separated batch sizes.")
@click.option("--threads", type=_Ints(), default=None, help="Comma-separated thread counts (default 1,all cores).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None, help="Sampled seconds per engine per cell.")
@click.option("--max-call-s", type=click.FloatRange(min=0, min_open=True), default=None, help="Skip an engine in a cell above this per call.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=models.DEFAULT_CACHE, show_default=True, help="Trained-model cache directory.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Keep build outputs here (default: temp, removed).")
@click.option("--build-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds one engine's build may take (default 300 full, 180 quick).")
@click.option("--model-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds one model may take before the watchdog stops the run (default 1200 full, 420 quick).")
@click.option("--rebuild", is_flag=True, help="Rebuild treelite/lleaves artifacts instead of reusing (and re-reporting) cached builds.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.option("--list", "list_", is_flag=True, help="List models and engines, then exit.")
@click.option("--from-json", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, metavar="RESULTS_JSON",
              help="Rewrite the reports (Markdown, CSV, plots) from an earlier run's results.json.")
def command(**kw: Any) -> int:
    kw["list"] = kw.pop("list_")
    return run(SimpleNamespace(**kw))


def _list_all() -> None:
    from .engines import all_engines

    print("models (* = in --quick):")
    for s in models.ZOO:
        print(f"  {'*' if s.quick else ' '} {s.id:20s} {s.library:9s} {s.purpose}")
    print("engines:")
    for e in all_engines():
        why = e.unavailable()
        print(f"    {e.name:32s} {'unavailable: ' + why if why else 'available'}")


def config_from(args: SimpleNamespace) -> Config:
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
    """``python -m benchmarks``: parse ``argv`` (default: the process's) and run; the exit status."""
    try:
        rv = command.main(args=argv, prog_name="python -m benchmarks", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    return int(rv or 0)


def run(args: SimpleNamespace) -> int:
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
