"""Build one engine's artifact in a fresh subprocess and measure it.

Run as ``python -m benchmarks.build '<json spec>'``; prints one ``BUILD-RESULT {json}`` line with
the phase times, the artifact's size and the build's peak memory:

* ``peak_rss_mib``: the largest resident set of any single process of the build: this process's
  high-water mark (``VmHWM``) or the largest RSS sampled from any compiler process it started;
* ``peak_tree_rss_mib``: the largest *sum* over the process tree, sampled every 20 ms with psutil
  (parallel compilers add up; a spike shorter than the interval can be missed).

``getrusage`` is not used: on Linux a forked child's ``ru_maxrss`` starts from its parent's size at
fork time, so it would report the benchmark runner's memory, not the compiler's.

A fresh process per build keeps one build's memory and warm caches out of the next one's numbers.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

MARK = "BUILD-RESULT "


class _TreeSampler(threading.Thread):
    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0  # sum over the tree
        self.peak_child = 0  # any single child process
        self._stop_evt = threading.Event()

    def run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop_evt.is_set():
            total = 0
            try:
                procs = [me, *me.children(recursive=True)]
            except psutil.Error:
                procs = [me]
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p is not me:
                    self.peak_child = max(self.peak_child, rss)
            self.peak = max(self.peak, total)
            self._stop_evt.wait(self.interval)

    def stop(self) -> int:
        self._stop_evt.set()
        self.join(timeout=1)
        return self.peak


def _self_hwm_bytes() -> int:
    """This process's peak resident set (``VmHWM``; reset by exec, unlike ``ru_maxrss``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- builders: return (phases, artifact)
def _treelite(spec: dict[str, Any]) -> tuple[dict[str, float], Path]:
    import tl2cgen
    import treelite

    t0 = time.perf_counter()
    lib, path = spec["library"], spec["model"]
    if lib == "xgboost":
        model = treelite.frontend.load_xgboost_model(path)
    elif lib == "lightgbm":
        model = treelite.frontend.load_lightgbm_model(path)
    elif lib == "sklearn":
        with open(path, "rb") as fh:
            est = pickle.load(fh)  # noqa: S301 -- our own cache file
        model = treelite.sklearn.import_model(est)
    else:
        raise ValueError(f"treelite cannot load {lib} models")
    t1 = time.perf_counter()
    out = Path(spec["out"])
    src = out / "src"
    tl2cgen.generate_c_code(model, dirpath=str(src), params={"parallel_comp": spec["parallel_comp"]})
    t2 = time.perf_counter()
    so = tl2cgen.create_shared("gcc", str(src), nthread=spec["nthread"], long_build_time_warning=False)
    t3 = time.perf_counter()
    return {"parse_s": t1 - t0, "codegen_s": t2 - t1, "compile_s": t3 - t2}, Path(so)


def _lleaves(spec: dict[str, Any]) -> tuple[dict[str, float], Path]:
    import lleaves

    cache = Path(spec["out"]) / "lleaves.bin"
    t0 = time.perf_counter()
    model = lleaves.Model(model_file=spec["model"])
    t1 = time.perf_counter()
    model.compile(cache=str(cache), raw_score=True)
    t2 = time.perf_counter()
    # lleaves generates LLVM IR and compiles it in one call: all of it is reported as compile time
    return {"parse_s": t1 - t0, "compile_s": t2 - t1}, cache


def _ltrcompile(spec: dict[str, Any]) -> tuple[dict[str, float], Path]:
    import ltrcompile

    t0 = time.perf_counter()
    source: Any = spec["model"]
    if spec["library"] == "sklearn":
        with open(source, "rb") as fh:
            source = pickle.load(fh)  # noqa: S301 -- our own cache file
    ens = ltrcompile.load_model(source)
    t1 = time.perf_counter()
    out = Path(spec["out"]) / "artifact"
    phases = {"parse_s": t1 - t0}
    from . import engines

    phases.update(engines.ltrcompile_compile(ens, out, spec["strategy"]))
    return phases, out


BUILDERS = {"treelite": _treelite, "lleaves": _lleaves, "ltrcompile": _ltrcompile}


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    sampler = _TreeSampler()
    sampler.start()
    t0 = time.perf_counter()
    phases, artifact = BUILDERS[spec["kind"]](spec)
    total = time.perf_counter() - t0
    tree_peak = sampler.stop()
    self_peak = _self_hwm_bytes()
    result = {
        "phases": phases,
        "total_s": total,
        "artifact": str(artifact),
        "artifact_bytes": _size(artifact),
        "peak_rss_mib": max(self_peak, sampler.peak_child) / 2**20,
        "peak_rss_self_mib": self_peak / 2**20,
        "peak_rss_child_mib": sampler.peak_child / 2**20,
        "peak_tree_rss_mib": max(tree_peak, self_peak) / 2**20,
    }
    sys.stdout.flush()
    print(MARK + json.dumps(result), flush=True)
    return 0


def run(spec: dict[str, Any], timeout: float, log_path: Path) -> dict[str, Any]:
    """Run one build in a subprocess; raises RuntimeError with the log's tail when it fails."""
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.build", json.dumps(spec)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=repo,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"build did not finish within {timeout:.0f} s") from exc
    wall = time.perf_counter() - t0
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            res = json.loads(line[len(MARK):])
            res["process_wall_s"] = wall
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"build failed (exit {proc.returncode}): {' | '.join(tail)}")


if __name__ == "__main__":
    raise SystemExit(main())
