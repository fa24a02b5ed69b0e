"""The fuzzer's fixed replay corpus (``tests/data/fuzz/corpus``) and its sandbox's classification.

Each corpus file (past findings named ``issue15-*``, plus sampled mutations) runs in the same forked,
limited child as ``make fuzz``; none may end as an untyped error, hang, crash or memory blowup.
"""

from __future__ import annotations

import ctypes
import time

import pytest

from ltrcompile.errors import ModelFormatError
from ltrcompile.fuzz import BAD, CORPUS_DIR, TARGETS, Limits, replay, run_case
from ltrcompile.fuzz.runner import CRASH, HANG, LOADED, MEMORY, TYPED, UNTYPED


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_replay_corpus(target):
    results = replay(TARGETS[target])
    assert results, f"no corpus files for {target} under {CORPUS_DIR}"
    bad = [(f, r.outcome, r.detail) for f, r in results if r.outcome in BAD]
    assert not bad, bad


def test_every_seed_loads():
    """The seeds are valid models (else every mutation would test only the error paths)."""
    for name, t in TARGETS.items():
        for i, s in enumerate(t.seeds()):
            r = run_case(t.run, s, t.is_typed)
            assert r.outcome == LOADED, (name, i, r.detail)


def _typed(exc):
    return isinstance(exc, ModelFormatError)


def _spin(_):
    while True:
        pass


def _sleep(_):
    time.sleep(60)


def _hog(_):
    return bytearray(1 << 34)


def _segv(_):
    return ctypes.string_at(8, 1)


def _bad_file(_):
    raise ModelFormatError("bad", path="x")


def _bug(_):
    raise KeyError("stray")


@pytest.mark.parametrize(
    "fn, outcome",
    [(len, LOADED), (_bad_file, TYPED), (_bug, UNTYPED), (_spin, HANG), (_sleep, HANG), (_hog, MEMORY), (_segv, CRASH)],
)
def test_sandbox_classifies_outcomes(fn, outcome):
    res = run_case(fn, b"data", _typed, Limits(wall_s=3, cpu_s=1, memory_mb=256))
    assert res.outcome == outcome, res
