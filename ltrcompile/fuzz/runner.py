"""Run one fuzz case in a forked child with CPU-time, wall-clock and memory limits; classify it.

A fork of the already-imported fuzz process costs a few milliseconds (a fresh interpreter per case
would cost a second), and the child's limits keep a hang or an allocation spree from touching the
parent: the child sets ``RLIMIT_AS`` (its current size plus the memory budget) and ``RLIMIT_CPU``,
the parent kills it when the wall-clock budget runs out. The child reports one JSON line through a
pipe; a child that dies without reporting crashed (signal) or was stopped (limits).
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .. import memlimit

#: outcome classes, in the order the table shows them
LOADED = "loaded"
TYPED = "typed error"
UNTYPED = "untyped error"
HANG = "hang"
CRASH = "crash"
MEMORY = "memory blowup"
OUTCOMES = (LOADED, TYPED, UNTYPED, HANG, CRASH, MEMORY)
#: the outcomes that are defects
BAD = (UNTYPED, HANG, CRASH, MEMORY)


@dataclass(frozen=True)
class Limits:
    """Per-case budget: wall-clock and CPU seconds, and extra address space in MiB."""

    wall_s: float = 10.0
    cpu_s: int = 8
    memory_mb: int = 1024


@dataclass(frozen=True)
class Result:
    outcome: str
    detail: str = ""
    seconds: float = 0.0


class Typed(Exception):
    """Raised by a target's ``classify`` hook to mark an exception as an intended (typed) error."""


def outcome_of(exc: BaseException, is_typed: Callable[[BaseException], bool]) -> tuple[str, str]:
    """The outcome class and detail of an exception a case raised (the one rule for both runners)."""
    if isinstance(exc, MemoryError):
        return MEMORY, f"MemoryError: {exc}"[:500]
    if is_typed(exc):
        return TYPED, f"{type(exc).__name__}: {exc}"[:300]
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    return UNTYPED, f"{type(exc).__name__}: {str(exc)[:300]} at {where}"


def _child(fn: Callable[[bytes], object], data: bytes, limits: Limits, is_typed: Callable[[BaseException], bool], w: int) -> None:
    outcome, detail = UNTYPED, ""
    try:
        faulthandler.disable()  # a crash is reported by the parent, not dumped by the child
        cap = memlimit.address_space() + limits.memory_mb * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            fn(data)
            outcome = LOADED
        except BaseException as exc:  # noqa: BLE001 - classifying every exception is the point
            outcome, detail = outcome_of(exc, is_typed)
    except BaseException as exc:  # noqa: BLE001
        outcome, detail = UNTYPED, f"fuzz harness: {type(exc).__name__}: {exc}"[:300]
    try:
        os.write(w, json.dumps({"outcome": outcome, "detail": detail}).encode()[:60000])
    finally:
        os._exit(0)


def run_case(
    fn: Callable[[bytes], object], data: bytes, is_typed: Callable[[BaseException], bool], limits: Limits | None = None
) -> Result:
    """``fn(data)`` in a forked child under ``limits``; the outcome class and a one-line detail."""
    limits = limits or Limits()
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(r)
        _child(fn, data, limits, is_typed, w)
    os.close(w)
    chunks: list[bytes] = []
    timed_out = False
    deadline = t0 + limits.wall_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - t0
    if timed_out:
        return Result(HANG, f"no answer within {limits.wall_s} s", seconds)
    raw = b"".join(chunks)
    if raw:
        try:
            rep = json.loads(raw)
            return Result(rep["outcome"], rep["detail"], seconds)
        except (ValueError, KeyError):
            pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return Result(HANG, f"stopped by {signal.Signals(sig).name} (CPU limit)", seconds)
        return Result(CRASH, f"killed by {signal.Signals(sig).name}", seconds)
    return Result(CRASH, f"exited with status {os.WEXITSTATUS(status)} without reporting", seconds)


class _WallClock(BaseException):
    """Raised by the in-process wall-clock alarm (a BaseException: no ``except Exception`` eats it)."""


def limit_this_process(limits: Limits) -> None:
    """The address-space limit of :func:`run_case_here` runs: this process's size plus ``memory_mb``
    (soft only: a later shard may set it again)."""
    memlimit.limit(limits.memory_mb)


def run_case_here(
    fn: Callable[[bytes], object], data: bytes, is_typed: Callable[[BaseException], bool], limits: Limits | None = None
) -> Result:
    """``fn(data)`` in this process: no fork, so about ten times as many cases per second on a busy
    machine, for sweeps that look for untyped errors. A hang is cut by a SIGALRM at ``wall_s`` (only
    between Python bytecodes), a memory blowup is a ``MemoryError`` under :func:`limit_this_process`,
    and a crash ends the whole run: use the forked :func:`run_case` (the default) for the record."""
    limits = limits or Limits()

    def alarm(signum: int, frame: object) -> None:
        raise _WallClock

    old = signal.signal(signal.SIGALRM, alarm)
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, limits.wall_s)
    try:
        fn(data)
        outcome, detail = LOADED, ""
    except _WallClock:
        outcome, detail = HANG, f"no answer within {limits.wall_s} s (in process)"
    except BaseException as exc:  # noqa: BLE001 - classifying every exception is the point
        outcome, detail = outcome_of(exc, is_typed)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return Result(outcome, detail, time.monotonic() - t0)
