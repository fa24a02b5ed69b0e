"""``python -m ltrcompile.fuzz run|replay|corpus`` -- see the package docstring."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from . import (
    BAD,
    CORPUS_DIR,
    OUTCOMES,
    TARGETS,
    Campaign,
    Limits,
    case_bytes,
    markdown_table,
    replay,
    run_campaign,
)
from .runner import limit_this_process


def _shard(args: tuple[str, int, int, int, int, Limits, str | None, bool]) -> Campaign:
    name, cases, seed, start, step, limits, findings, in_process = args
    if in_process:
        limit_this_process(limits)
    return run_campaign(
        TARGETS[name], cases, run_seed=seed, start=start, step=step, limits=limits,
        findings_dir=Path(findings) if findings else None, in_process=in_process,
    )


def _merge(parts: list[Campaign]) -> Campaign:
    c = Campaign(parts[0].target)
    for p in parts:
        c.cases += p.cases
        c.counts.update(p.counts)
        c.seconds += p.seconds
        c.findings.extend(p.findings)
    return c


def cmd_run(a: argparse.Namespace) -> int:
    names = a.targets or list(TARGETS)
    limits = Limits(wall_s=a.wall, cpu_s=a.cpu, memory_mb=a.memory_mb)
    t0 = time.time()
    results = []
    ctx = get_context("fork")
    with ProcessPoolExecutor(max_workers=a.jobs, mp_context=ctx) as pool:
        for name in names:
            jobs = [(name, a.cases, a.seed, k, a.jobs, limits, a.findings, a.in_process) for k in range(a.jobs)]
            c = _merge(list(pool.map(_shard, jobs)))
            results.append(c)
            print(markdown_table([c]).splitlines()[-1], flush=True)
            for i, outcome, detail in c.findings[:20]:
                print(f"    case {i}: {outcome}: {detail}", flush=True)
    table = markdown_table(results)
    print()
    print(table)
    meta = {
        "cases_per_target": a.cases, "run_seed": a.seed, "jobs": a.jobs, "in_process": a.in_process,
        "limits": {"wall_s": a.wall, "cpu_s": a.cpu, "memory_mb": a.memory_mb},
        "python": sys.version.split()[0], "machine": platform.platform(), "cpus": os.cpu_count(),
        "wall_seconds": round(time.time() - t0, 1),
    }
    print(f"\n{json.dumps(meta)}")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "meta": meta,
            "targets": {c.target: {"cases": c.cases, **{o: c.counts.get(o, 0) for o in OUTCOMES},
                                   "findings": c.findings[:200]} for c in results},
        }, indent=1))
    return 1 if any(c.counts.get(o) for c in results for o in BAD) else 0


def cmd_replay(a: argparse.Namespace) -> int:
    bad = 0
    for name in a.targets or list(TARGETS):
        res = replay(TARGETS[name], Path(a.corpus))
        n_bad = [(f, r) for f, r in res if r.outcome in BAD]
        print(f"{name}: {len(res)} files, {len(n_bad)} defects")
        for f, r in n_bad:
            print(f"    {f}: {r.outcome}: {r.detail}")
        bad += len(n_bad)
    return 1 if bad else 0


def cmd_corpus(a: argparse.Namespace) -> int:
    """Sample ``--per-target`` cases per target into the replay corpus (deterministic names)."""
    for name in a.targets or list(TARGETS):
        t = TARGETS[name]
        seeds = t.seeds()
        out = Path(a.corpus) / name
        out.mkdir(parents=True, exist_ok=True)
        for i in range(a.per_target):
            data, _ = case_bytes(t, seeds, a.seed, i)
            if len(data) <= a.max_bytes:
                (out / f"sample-{a.seed}-{i:04d}.bin").write_bytes(data)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ltrcompile.fuzz", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="a fuzz campaign: a table of outcomes per target")
    r.add_argument("--cases", type=int, default=10_000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    r.add_argument("--wall", type=float, default=10.0, help="wall-clock seconds per case")
    r.add_argument("--cpu", type=int, default=8, help="CPU seconds per case")
    r.add_argument("--memory-mb", type=int, default=1024, help="extra address space per case")
    r.add_argument("--findings", default="fuzz-findings", help="where defects are saved ('' = nowhere)")
    r.add_argument("--json", help="also write the results as JSON")
    r.add_argument(
        "--in-process", action="store_true",
        help="run each case in the worker process (no fork per case: ~10x faster on a busy machine; "
        "hangs cut by SIGALRM, memory by one address-space limit; a crash ends the run)",
    )
    r.add_argument("targets", nargs="*", metavar="TARGET")
    r.set_defaults(fn=cmd_run)
    rp = sub.add_parser("replay", help="run the fixed replay corpus")
    rp.add_argument("--corpus", default=str(CORPUS_DIR))
    rp.add_argument("targets", nargs="*", metavar="TARGET")
    rp.set_defaults(fn=cmd_replay)
    c = sub.add_parser("corpus", help="add sampled cases to the replay corpus")
    c.add_argument("--corpus", default=str(CORPUS_DIR))
    c.add_argument("--per-target", type=int, default=40)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--max-bytes", type=int, default=16384)
    c.add_argument("targets", nargs="*", metavar="TARGET")
    c.set_defaults(fn=cmd_corpus)
    a = p.parse_args(argv)
    if getattr(a, "targets", None):
        unknown = [t for t in a.targets if t not in TARGETS]
        if unknown:
            p.error(f"unknown targets {unknown}; known: {sorted(TARGETS)}")
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
