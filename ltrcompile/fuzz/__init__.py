"""Mutation fuzzer for every frontend and for the service's request parsing (``make fuzz``).

Each case is one mutated copy of a valid seed file, run in a forked child with CPU, wall-clock and
memory limits (:mod:`.runner`) and classified as loaded, typed error, untyped error, hang, crash or
memory blowup. A case is a pure function of (target, run seed, case number), so any finding is
reproduced by its number. ``tests/data/fuzz/corpus`` holds a fixed replay corpus (the files that
found past defects plus a sample of cases) that ``make test`` runs through the same sandbox.

Usage: ``python -m ltrcompile.fuzz run --cases 10000`` (table on stdout, findings under
``fuzz-findings/``), ``python -m ltrcompile.fuzz replay`` (the corpus; exit 1 on any defect).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .mutate import mutate
from .runner import BAD, OUTCOMES, Limits, Result, run_case, run_case_here
from .targets import SEEDS_DIR, TARGETS, Target

__all__ = [
    "BAD", "CORPUS_DIR", "OUTCOMES", "TARGETS", "Campaign", "Limits", "Result", "case_bytes",
    "markdown_table", "replay", "run_campaign", "run_case",
]

CORPUS_DIR = SEEDS_DIR.parent / "corpus"
DEFAULT_LIMITS = Limits()


def case_bytes(target: Target, seeds: list[bytes], run_seed: int, i: int) -> tuple[bytes, str]:
    """The bytes of case ``i`` of a run, and a description (seed index and mutators)."""
    rng = random.Random(f"{target.name}:{run_seed}:{i}")
    s = rng.randrange(len(seeds))
    data, ops = mutate(rng, seeds[s], target.kind)
    return data, f"seed {s}, {'+'.join(ops)}"


@dataclass
class Campaign:
    target: str
    cases: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    findings: list[tuple[int, str, str]] = field(default_factory=list)  # (case, outcome, detail)


def run_campaign(
    target: Target,
    cases: int,
    *,
    run_seed: int = 0,
    start: int = 0,
    step: int = 1,
    limits: Limits = DEFAULT_LIMITS,
    findings_dir: Path | None = None,
    seeds_dir: Path = SEEDS_DIR,
    in_process: bool = False,
) -> Campaign:
    """Cases ``start, start+step, ...`` (below ``cases``) of one target; defects saved to
    ``findings_dir/<target>/case<i>.bin`` with a ``.txt`` saying what happened. ``in_process``: run
    each case here (:func:`.runner.run_case_here`) instead of in a forked child."""
    seeds = target.seeds(seeds_dir)
    if not seeds:
        raise FileNotFoundError(f"no seed files for {target.name} under {seeds_dir}")
    warm(target, seeds)
    c = Campaign(target.name)
    for i in range(start, cases, step):
        data, how = case_bytes(target, seeds, run_seed, i)
        res = (run_case_here if in_process else run_case)(target.run, data, target.is_typed, limits)
        c.cases += 1
        c.counts[res.outcome] += 1
        c.seconds += res.seconds
        if res.outcome in BAD:
            c.findings.append((i, res.outcome, res.detail))
            if findings_dir is not None:
                d = findings_dir / target.name
                d.mkdir(parents=True, exist_ok=True)
                (d / f"case{i}.bin").write_bytes(data)
                (d / f"case{i}.txt").write_text(f"{res.outcome}: {res.detail}\n{how}, run seed {run_seed}\n")
    return c


def warm(target: Target, seeds: list[bytes]) -> None:
    """Run the valid seeds once in this process, so every module a case needs is imported before
    the forks (a fork then costs milliseconds instead of an import of scikit-learn per case)."""
    import numpy as np

    for s in seeds:
        try:
            with np.errstate(all="ignore"):
                target.run(s)
        except Exception:  # noqa: BLE001,S110 - a seed that fails here is reported by its case
            pass


def replay(target: Target, corpus_dir: Path = CORPUS_DIR, limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, Result]]:
    """Every corpus file of ``target`` through the sandbox: (file name, result)."""
    d = corpus_dir / target.name
    if not d.is_dir():
        return []
    warm(target, target.seeds())
    return [(p.name, run_case(target.run, p.read_bytes(), target.is_typed, limits)) for p in sorted(d.iterdir()) if p.is_file()]


def markdown_table(campaigns: list[Campaign]) -> str:
    head = "| target | cases | " + " | ".join(OUTCOMES) + " | ms/case |"
    sep = "|" + "---|" * (len(OUTCOMES) + 3)
    rows = [head, sep]
    for c in campaigns:
        ms = 1000 * c.seconds / c.cases if c.cases else 0.0
        rows.append(f"| {c.target} | {c.cases} | " + " | ".join(str(c.counts.get(o, 0)) for o in OUTCOMES) + f" | {ms:.0f} |")
    return "\n".join(rows)
