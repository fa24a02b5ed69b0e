"""Benchmark harness: ltrcompile against the libraries that trained the model and peer compilers.

``python -m benchmarks [--quick]`` (also ``make bench`` / ``make bench-quick`` / ``ltrcompile bench``)
trains a zoo of models with fixed seeds (cached under ``.cache/bench/``), builds every engine in a
measured subprocess, gates every engine's raw output against the source library, times all engines
round-robin per (threads, batch) cell, and writes JSON, CSV, Markdown and PNG results (default
``bench-results/``). See ``docs/benchmarks.md``.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point (``python -m benchmarks``); returns the exit status."""
    from .__main__ import main as _main

    return _main(argv)
