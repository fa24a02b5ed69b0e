"""One benchmark run: models -> builds -> correctness gate -> timed cells -> result dict.

Per model: train or fetch it, load it into the ltrcompile IR, build every engine that needs a build
(each in a measured subprocess), load the builds, gate every engine's raw output against the
source library's, then time all gated engines together in each (threads, batch) cell. Engines that
cannot run are kept in the results with the reason, so a report always shows what was left out.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import os
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import build, engines, machine, models, protocol
from .datasets import DataUnavailable


@dataclass
class Config:
    """What a run covers and how long each cell may take."""

    quick: bool = False
    model_ids: list[str] | None = None
    engine_filter: list[str] | None = None
    batches: tuple[int, ...] = (1, 10, 100, 1_000, 10_000, 100_000)
    threads: tuple[int, ...] = (1,)
    budget: protocol.Budget = field(default_factory=protocol.Budget)
    build_timeout_s: float = 420.0  # per build; a peer compiler slower than this is reported as such
    cache: Path = models.DEFAULT_CACHE
    workdir: Path | None = None
    keep_builds: bool = False
    reuse_builds: bool = True  # reuse cached treelite / lleaves builds (their compile times as measured then)
    edge_rows: int = 2000
    seed: int = 1234
    specs: list[models.ModelSpec] | None = None  # explicit models (tests); overrides quick/model_ids
    model_timeout_s: float = 1200.0  # watchdog: a model taking longer (a hung engine) ends the run
    engine_factory: Callable[[], list[engines.Engine]] = engines.all_engines

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": "quick" if self.quick else "full",
            "models": self.model_ids,
            "engines": self.engine_filter,
            "batches": list(self.batches),
            "threads": list(self.threads),
            "budget": dataclasses.asdict(self.budget),
            "gate_rtol": protocol.RTOL,
            "input": "float64 C-contiguous rows resampled from the model's data pool, same batch for every engine",
        }


def _engine_selected(cfg: Config, name: str) -> bool:
    if not cfg.engine_filter:
        return True
    return any(f.lower() in name.lower() for f in cfg.engine_filter)


def _load_ir(bm: models.BenchModel) -> None:
    try:
        import ltrcompile
    except ImportError as exc:
        bm.ir_error = f"ltrcompile not importable: {exc}"
        return
    source: Any = bm.path
    if bm.library == "sklearn":
        source = models.load_source("sklearn", bm.path)
    t0 = time.perf_counter()
    try:
        bm.ir = ltrcompile.load_model(source)
    except Exception as exc:  # noqa: BLE001 -- a missing or failing frontend skips ltrcompile for this model
        bm.ir_error = f"ltrcompile cannot load this model yet: {_first_line(exc)}"
        return
    bm.ir_load_s = time.perf_counter() - t0


def _model_record(bm: models.BenchModel) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": bm.id, "library": bm.library, "purpose": bm.spec.purpose, "params": bm.spec.params,
        "rounds": bm.spec.rounds, "data": bm.data_description, "n_trees": bm.n_trees,
        "n_features": bm.n_features, "n_outputs": bm.n_outputs, "train_s": bm.train_s,
        "cached": bm.cached, "model_file": str(bm.path), "model_bytes": bm.path.stat().st_size,
        "gate_rows": len(bm.gate_X), **bm.info,
    }
    if bm.ir is not None:
        depths = bm.ir.tree_depths()
        rec.update(n_nodes=bm.ir.n_nodes, n_leaves=bm.ir.n_leaves(), max_depth=int(depths.max()),
                   mean_depth=float(depths.mean()), ir_load_s=bm.ir_load_s)
    else:
        rec["ir_error"] = bm.ir_error
    return rec


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _edge_check(bm: models.BenchModel, eng: engines.Engine, label: str, edge: np.ndarray | None,
                edge_ref: np.ndarray | None) -> dict[str, Any] | None:
    """Agreement with the source library on the model's edge rows (reported, not gating)."""
    if edge is None or edge_ref is None:
        return None
    X = edge[:200] if label.endswith(".predict_one") else edge
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # edge values beyond float32 range
            out = eng.raw(label, X)
    except Exception as exc:  # noqa: BLE001
        return {"error": _first_line(exc)}
    g = protocol.gate(edge_ref[: len(X)], out)
    return {"n": g.n, "n_exact": g.n_exact, "max_abs": g.max_abs, "passed": g.passed}


def _edge_rows(bm: models.BenchModel, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    if bm.ir is None or bm.library == "ranklib" or n <= 0:
        return None, None
    from ltrcompile.edgecases import edge_rows

    X = np.ascontiguousarray(edge_rows(bm.ir, background=bm.gate_X[:256], max_rows=n, seed=3))
    src = models.load_source(bm.library, bm.path)
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return X, models.source_raw(bm.library, src, X)
    except ValueError:
        # scikit-learn refuses infinities and values beyond float32: keep the rows it accepts
        keep = ~np.any(np.isinf(X) | (np.abs(np.nan_to_num(X)) > np.finfo(np.float32).max), axis=1)
        X = np.ascontiguousarray(X[keep])
        return X, models.source_raw(bm.library, src, X)


def _predict_call_s(seen: list[tuple[int, float]], batch: int) -> float:
    """Expected seconds per call at ``batch`` from the engine's calls at smaller batches.

    A line through the last two points (fixed cost + per-row cost), so a call dominated by fixed
    overhead at small batches is not extrapolated as if all of it grew with the rows.
    """
    if not seen:
        return 0.0
    b1, t1 = seen[-1]
    if len(seen) == 1 or seen[-2][0] == b1:
        return t1 * batch / b1
    b0, t0 = seen[-2]
    slope = max((t1 - t0) / (b1 - b0), t1 / b1 * 0.1)
    return t1 + slope * (batch - b1)


def _batch(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pool), n, replace=n > len(pool))
    return np.ascontiguousarray(pool[idx], dtype=np.float64)


def _cell_row(bm: models.BenchModel, eng: engines.Engine, label: str, threads: int, batch: int,
              t: protocol.Timing | None, status: str, reason: str, load: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": bm.id, "engine": label, "ours": eng.ours, "threads": threads, "batch": batch,
        "status": status, "reason": reason, **load,
    }
    if t is not None and t.samples_ns:
        s = t.stats()
        med = s["median_ns"]
        row.update(
            n=s["n"], min_us=s["min_ns"] / 1e3, median_us=med / 1e3, p99_us=s["p99_ns"] / 1e3,
            mean_us=s["mean_ns"] / 1e3, us_per_row=med / 1e3 / batch, rows_per_s=batch / (med / 1e9),
            ns_per_tree_row=med / (batch * bm.n_trees),
        )
    return row


class Runner:
    """Runs the configured models; ``log`` receives progress lines."""

    def __init__(self, cfg: Config, log: Callable[[str], None] = print,
                 checkpoint: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg = cfg
        self.log = log
        self.checkpoint = checkpoint  # called with the partial result after every model
        self.current = ""  # what the run is doing now (named by the watchdog)

    def _watchdog(self, spec: models.ModelSpec, result: dict[str, Any]) -> threading.Timer:
        """Arm a timer that ends the run if this model hangs (a native call cannot be interrupted).

        The partial results are written first; ``faulthandler`` follows 30 s later in case the
        hung call holds the GIL and this timer's thread cannot run.
        """
        limit = self.cfg.model_timeout_s

        def fire() -> None:
            reason = f"did not finish within {limit:.0f} s; hung during: {self.current}"
            self.log(f"WATCHDOG: model {spec.id} {reason}; writing partial results and stopping")
            result["skipped_models"].append({"id": spec.id, "reason": reason})
            result["aborted"] = reason
            if self.checkpoint is not None:
                self.checkpoint(result)
            os._exit(3)

        timer = threading.Timer(limit, fire)
        timer.daemon = True
        timer.start()
        faulthandler.dump_traceback_later(limit + 30, exit=True)
        return timer

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        t_start = time.perf_counter()
        facts = machine.facts()
        self.log(f"machine: {machine.one_line(facts)}")
        result: dict[str, Any] = {"machine": facts, "config": cfg.to_dict(), "models": [], "engines": {},
                                  "cells": [], "builds": [], "gate": [], "skipped_models": []}
        work = cfg.workdir or Path(tempfile.mkdtemp(prefix="ltrc-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        try:
            for spec in cfg.specs or models.select(cfg.quick, cfg.model_ids):
                t0 = time.perf_counter()
                timer = self._watchdog(spec, result)
                try:
                    self._one_model(spec, work, result)
                except Exception as exc:  # noqa: BLE001 -- report it and go on with the other models
                    self.log("".join(traceback.format_exception(exc)))
                    self._skip_model(result, spec.id, f"the harness failed on this model: {_first_line(exc)}")
                finally:
                    timer.cancel()
                    faulthandler.cancel_dump_traceback_later()
                if self.checkpoint is not None:
                    self.checkpoint(result)
                self.log(f"  [{spec.id} done in {time.perf_counter() - t0:.0f} s; "
                         f"run {time.perf_counter() - t_start:.0f} s so far]")
        finally:
            if not cfg.keep_builds and cfg.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        facts["loadavg_end"] = machine.loadavg()
        result["elapsed_s"] = time.perf_counter() - t_start
        return result

    # ------------------------------------------------------------------ per model
    def _one_model(self, spec: models.ModelSpec, work: Path, result: dict[str, Any]) -> None:
        cfg = self.cfg
        self.log(f"\n== {spec.id}: {spec.purpose}")
        try:
            bm = models.prepare(spec, cfg.cache, log=self.log)
        except DataUnavailable as exc:
            self._skip_model(result, spec.id, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 -- one model failing to train must not end the run
            self._skip_model(result, spec.id, f"could not train or load it: {_first_line(exc)}")
            return
        _load_ir(bm)
        if bm.library == "ranklib" and bm.ir is not None and bm.ir.n_features < bm.n_features:
            # RankLib reads only the feature ids the model uses: pass exactly those columns
            bm.pool = bm.gate_X = np.ascontiguousarray(bm.gate_X[:, : bm.ir.n_features])
        if bm.ir_error:
            self.log(f"  note: {bm.ir_error}")
        mrec = _model_record(bm)
        result["models"].append(mrec)
        self.log(f"  {bm.n_trees} trees, {bm.n_features} features, {bm.n_outputs} output(s)"
                 f"{', ' + str(mrec['n_leaves']) + ' leaves' if 'n_leaves' in mrec else ''}; "
                 f"{'cached model' if bm.cached else f'trained in {bm.train_s:.1f} s'}")
        mdir = work / spec.id
        ready: list[tuple[engines.Engine, str]] = []
        load_info: dict[str, dict[str, Any]] = {}
        edge, edge_ref = _edge_rows(bm, cfg.edge_rows)
        engs = [e for e in cfg.engine_factory() if _engine_selected(cfg, e.name)]
        for eng in engs:
            result["engines"].setdefault(eng.name, eng.note)
            reason = eng.unavailable() or eng.unsupported(bm)
            if reason:
                self._skip(result, bm, eng.name, "skipped", reason)
                continue
            try:
                brec = self._build(bm, eng, mdir)
            except RuntimeError as exc:
                self._skip(result, bm, eng.name, "build-failed", str(exc))
                continue
            try:
                eng.load(bm, brec)
            except Exception as exc:  # noqa: BLE001
                self._skip(result, bm, eng.name, "load-failed", _first_line(exc))
                continue
            if brec is not None:
                result["builds"].append({"model": bm.id, "engine": eng.name, "n_trees": bm.n_trees,
                                         "n_nodes": mrec.get("n_nodes"), "load_s": eng.load_s, **brec})
            for label in eng.labels():
                g, edge_info = self._gate(bm, eng, label, edge, edge_ref)
                grec = {"model": bm.id, "engine": label, **g.to_dict(), "edge": edge_info}
                result["gate"].append(grec)
                load_info[label] = {"load_s": eng.load_s}
                if g.passed:
                    ready.append((eng, label))
                    self.log(f"  gate {label}: ok ({g.n_exact}/{g.n} rows bit-exact, max|d| {g.max_abs:.2g})"
                             + (f"; edge rows {edge_info['n_exact']}/{edge_info['n']} exact"
                                if edge_info and "n_exact" in edge_info else ""))
                else:
                    self.log(f"  gate {label}: FAILED -- {g.reason}; not timed")
                    self._skip(result, bm, label, "gate-failed", g.reason, eng.ours)
        self._time_model(bm, ready, load_info, result)
        for eng in engs:
            eng.close()

    def _build(self, bm: models.BenchModel, eng: engines.Engine, mdir: Path) -> dict[str, Any] | None:
        """Build ``eng``'s artifact in a measured subprocess (peer builds reused from the cache)."""
        cfg = self.cfg
        cache_dir = None
        if eng.cache_builds and cfg.reuse_builds:
            key = bm.info.get("cache_key") or models.file_key(bm.path)
            cache_dir = cfg.cache / "builds" / f"{bm.id}-{key}-{eng.build_kind}-{eng.build_fingerprint()}"
            rec_path = cache_dir / "record.json"
            if rec_path.exists():
                brec = json.loads(rec_path.read_text())
                if brec.get("failed"):
                    raise RuntimeError(f"{brec['failed']} (cached result of {brec.get('built_at', '?')}; "
                                       "--rebuild to try again)")
                if Path(brec["artifact"]).exists():
                    self.log(f"  {eng.name}: reusing the build measured on {brec.get('built_at', '?')} "
                             f"(total {brec['total_s']:.1f} s; --rebuild to measure again)")
                    brec["reused"] = True
                    return brec
        workdir = cache_dir or mdir
        spec_b = eng.build_spec(bm, workdir)
        if spec_b is None:
            return None
        self.current = f"{bm.id}: building {eng.name}"
        self.log(f"  building {eng.name}...")
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
        try:
            brec = build.run(spec_b, cfg.build_timeout_s, workdir / f"{eng.build_kind}.build.log")
        except RuntimeError as exc:
            if cache_dir is not None:
                shutil.rmtree(cache_dir, ignore_errors=True)
                if "did not finish" in str(exc):  # remember timeouts: retrying costs the same again
                    cache_dir.mkdir(parents=True, exist_ok=True)
                    (cache_dir / "record.json").write_text(json.dumps(
                        {"failed": str(exc), "built_at": time.strftime("%Y-%m-%d %H:%M")}))
            raise
        brec["built_at"] = time.strftime("%Y-%m-%d %H:%M")
        brec["load_avg_after"] = machine.loadavg()
        ph = brec["phases"]
        self.log(f"    {', '.join(f'{k} {v:.2f}' for k, v in ph.items())}; peak RSS "
                 f"{brec['peak_rss_mib']:.0f} MiB (tree {brec['peak_tree_rss_mib']:.0f} MiB); "
                 f"artifact {brec['artifact_bytes'] / 1024:.0f} KiB")
        if cache_dir is not None:
            (cache_dir / "record.json").write_text(json.dumps(brec))
        brec["reused"] = False
        return brec

    def _skip_model(self, result: dict[str, Any], model_id: str, reason: str) -> None:
        self.log(f"  SKIP model {model_id}: {reason}")
        result["skipped_models"].append({"id": model_id, "reason": reason})

    def _gate(self, bm: models.BenchModel, eng: engines.Engine, label: str, edge: np.ndarray | None,
              edge_ref: np.ndarray | None) -> tuple[protocol.GateResult, dict[str, Any] | None]:
        X, ref = bm.gate_X, bm.gate_ref
        if label.endswith(".predict_one"):
            X, ref = X[:200], ref[:200]
        self.current = f"{bm.id}: correctness gate of {label}"
        try:
            out = eng.raw(label, X)
        except Exception as exc:  # noqa: BLE001
            return protocol.GateResult(False, len(X), 0, np.inf, np.inf, f"raised {_first_line(exc)}"), None
        return protocol.gate(ref, out), _edge_check(bm, eng, label, edge, edge_ref)

    def _skip(self, result: dict[str, Any], bm: models.BenchModel, label: str, status: str, reason: str,
              ours: bool | None = None) -> None:
        if status == "skipped":
            self.log(f"  skip {label}: {reason}")
        elif status != "gate-failed":
            self.log(f"  {status} {label}: {reason}")
        result["cells"].append({"model": bm.id, "engine": label, "ours": bool(ours) if ours is not None
                                else label.startswith("ltrcompile"), "threads": None, "batch": None,
                                "status": status, "reason": reason})

    # ------------------------------------------------------------------ timing
    def _time_model(self, bm: models.BenchModel, ready: list[tuple[engines.Engine, str]],
                    load_info: dict[str, dict[str, Any]], result: dict[str, Any]) -> None:
        cfg = self.cfg
        if not ready:
            return
        for threads in cfg.threads:
            seen: dict[str, list[tuple[int, float]]] = {}  # label -> [(batch, seconds per call)]
            for batch in cfg.batches:
                X = _batch(bm.pool, batch, cfg.seed + batch)
                calls: list[tuple[str, Any]] = []
                pre_skipped: dict[str, str] = {}
                owners: dict[str, engines.Engine] = {}
                for eng, label in ready:
                    if not eng.accepts(label, batch, threads):
                        continue
                    owners[label] = eng
                    guess = _predict_call_s(seen.get(label, []), batch)
                    if guess > cfg.budget.max_call_s:
                        pre_skipped[label] = (f"too slow for this cell (about {guess:.0f} s per call "
                                              f"> {cfg.budget.max_call_s:g} s cap)")
                        continue
                    calls.append((label, eng.bind(label, X, threads)))
                la0 = machine.loadavg()
                t0 = time.perf_counter()
                self.current = f"{bm.id}: timing cell threads={threads} batch={batch} ({', '.join(c[0] for c in calls)})"
                timings = protocol.time_cell(calls, cfg.budget)
                cell_s = time.perf_counter() - t0
                la1 = machine.loadavg()
                load = {"loadavg_before": la0[:1], "loadavg_after": la1[:1],
                        "overloaded": bool(la1 and la1[0] > machine.n_cores())}
                parts = []
                for label, eng in owners.items():
                    t = timings.get(label)
                    if t is not None and t.samples_ns:
                        row = _cell_row(bm, eng, label, threads, batch, t, "ok", "", load | load_info[label])
                        seen.setdefault(label, []).append((batch, row["median_us"] / 1e6))
                        parts.append(f"{label} {row['median_us']:.1f}")
                    else:
                        reason = pre_skipped.get(label) or (t.skipped if t else "") or "not timed"
                        row = _cell_row(bm, eng, label, threads, batch, None, "skipped", reason, load)
                        seen.setdefault(label, []).append((batch, 2 * cfg.budget.max_call_s))
                        parts.append(f"{label} skipped")
                    result["cells"].append(row)
                self.log(f"  t={threads} b={batch:>6} ({cell_s:4.1f} s) median us/call: " + "; ".join(parts))
