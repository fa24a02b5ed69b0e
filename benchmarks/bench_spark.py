"""Batch scoring on Spark: ``ltrcompile.spark.score`` vs what a user would run instead, and where the time goes.

On the two 500-tree demo rankers of ``benchmarks/models.py`` (trained there with fixed seeds, cached,
reloaded from their saved files), over ``--rows`` rows (default 1,000,000: the bundled lambdarank
rows tiled, 300 double columns plus rid/qid, written once as ``--files`` Parquet files; with
``--layout array`` one ``array<double>`` column ``x`` instead, which every engine then reads), at each
``--masters`` (default ``local[1]`` and ``local[2]``), side by side in one run:

* ``ltrcompile``: :func:`ltrcompile.spark.score` (Arrow UDF, artifact broadcast, per-worker cache);
* ``xgboost.spark``: a ``SparkXGBRankerModel`` built from the saved booster (``n_jobs=1``: one
  thread per task, like ours), ``.transform`` with ``features_cols`` = the 300 columns;
* ``lightgbm mapInPandas``: ``Booster.predict(pdf[features].to_numpy(), num_threads=1)`` inside
  ``mapInPandas`` (the model string broadcast and parsed once per Python worker, which is generous
  to it: a typical user parses it once per partition).

Every timed pass writes ``rid, qid, score`` to Spark's ``noop`` sink (everything is computed,
nothing is written). The split passes over the same rows: ``scan`` (Parquet read into rows, no
Python), ``arrow identity`` (an Arrow UDF taking the 300 columns and returning the first one: the
Arrow transfer both ways and the Python worker), ``arrow + matrix`` (also gathers the row-major
matrix the scorer reads), then scoring; plus each engine's in-process single-thread rows/s on
``--inproc-rows`` rows of the same data (no Spark). Warm-up passes on a small Parquet copy start the
Python workers and load the models first, and check the engines agree. Timings on a shared machine
are noisy: the machine facts and the load average before/after are recorded.

Usage::

    python -m benchmarks.bench_spark [--rows 1000000] [--masters 'local[1],local[2]'] [--batch 10000]
                                     [--layout columns|array] [--reps 1] [--out bench-results/spark]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import datasets, machine, models

DEFAULT_MODELS = ["xgb-rank-500", "lgb-rank-500x64"]
N_FEATURES = 300
NAMES = [f"Column_{i}" for i in range(N_FEATURES)]  # LightGBM's names for numpy-trained models


# ---------------------------------------------------------------- data
def write_parquet(pool: np.ndarray, rows: int, files: int, out: Path, layout: str = "columns") -> Path:
    """``rows`` rows (``pool`` tiled) as ``files`` Parquet files: rid, qid and either Column_0..299
    (double; ``layout="columns"``) or one ``array<double>`` column ``x`` (``layout="array"``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    if (out / "_ROWS").is_file() and (out / "_ROWS").read_text() == f"{rows} {files}":
        return out
    for f in out.glob("*.parquet"):
        f.unlink()
    per = -(-rows // files)
    for k in range(files):
        lo, hi = k * per, min(rows, (k + 1) * per)
        idx = np.arange(lo, hi) % len(pool)
        X = pool[idx]
        cols = {"rid": pa.array(np.arange(lo, hi, dtype=np.int64)),
                "qid": pa.array(np.arange(lo, hi, dtype=np.int64) // 30)}
        if layout == "array":
            offsets = pa.array(np.arange(0, X.size + 1, N_FEATURES, dtype=np.int32))
            cols["x"] = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(X).reshape(-1)))
        else:
            cols.update({n: pa.array(X[:, j]) for j, n in enumerate(NAMES)})
        pq.write_table(pa.table(cols), out / f"part-{k:03d}.parquet", row_group_size=50_000)
    (out / "_ROWS").write_text(f"{rows} {files}")
    return out


# ---------------------------------------------------------------- engines (DataFrame -> rid, qid, score)
def _feature_cols(layout: str) -> list[str]:
    return ["x"] if layout == "array" else list(NAMES)


def _identity(df: Any, gather: bool, layout: str = "columns") -> Any:
    """An Arrow UDF over the feature columns doing no scoring: returns column 0 (or, with ``gather``,
    first builds the scorer's row-major matrix exactly as ltrcompile.spark does and returns zeros)."""
    import warnings

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from ltrcompile.spark import Binding, batch_matrix

    binding = Binding(tuple(_feature_cols(layout)), "columns" if layout == "columns" else "array", "float64")

    def first(*arrays: Any) -> Any:
        if layout == "array":  # a list column cannot come back as a double: return zeros
            import pyarrow as pa

            return pa.array(np.zeros(len(arrays[0])))
        return arrays[0]

    def matrix(*arrays: Any) -> Any:
        import pyarrow as pa

        X = batch_matrix(binding, arrays, N_FEATURES)
        return pa.array(np.zeros(X.shape[0]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        udf = F.arrow_udf(matrix if gather else first, T.DoubleType(), F.ArrowUDFType.SCALAR)
    return df.select("rid", "qid", udf(*[F.col(n) for n in _feature_cols(layout)]).alias("score"))


def _ours(df: Any, artifact: Any, layout: str = "columns") -> Any:
    from ltrcompile import spark as lspark

    feats: Any = "x" if layout == "array" else NAMES
    return lspark.score(df, artifact, features=feats).select("rid", "qid", "score")


def _xgboost_spark(df: Any, model_path: Path, layout: str = "columns") -> Any:
    import xgboost as xgb
    from xgboost.spark import SparkXGBRanker, SparkXGBRankerModel

    ranker = xgb.XGBRanker(n_jobs=1)
    ranker.load_model(str(model_path))
    est = SparkXGBRanker(features_col="x" if layout == "array" else NAMES, prediction_col="score", qid_col="qid")
    # what SparkXGBRanker.fit() returns, with the already-trained booster instead of a Spark training
    m = est._copyValues(SparkXGBRankerModel(xgb_sklearn_model=ranker))  # noqa: SLF001
    return m.transform(df).select("rid", "qid", "score")


def _lightgbm_map_in_pandas(df: Any, model_path: Path, layout: str = "columns") -> Any:
    bc = df.sparkSession.sparkContext.broadcast(Path(model_path).read_text())
    names = list(NAMES)

    def predict(batches: Any) -> Any:
        import lightgbm as lgb

        booster = getattr(lgb, "_ltrc_bench_booster", None)  # once per Python worker (generous)
        if booster is None:
            booster = lgb.Booster(model_str=bc.value)
            lgb._ltrc_bench_booster = booster
        for pdf in batches:
            X = np.stack(pdf["x"].to_numpy()) if layout == "array" else pdf[names].to_numpy()
            s = booster.predict(X, num_threads=1)
            yield pdf[["rid", "qid"]].assign(score=s)

    return df.mapInPandas(predict, "rid long, qid long, score double")


# ---------------------------------------------------------------- timing
def _run(frame: Any) -> float:
    t = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t


def _session(master: str, batch: int) -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    s = (SparkSession.builder.master(master).appName(f"bench_spark {master}")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         .config("spark.driver.memory", "3g")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    return s


def _inproc(bms: dict[str, Any], arts: dict[str, Any], X: np.ndarray) -> dict[str, dict[str, float]]:
    """Single-thread rows/s with no Spark: ltrcompile predict and the library's own predict."""
    out: dict[str, dict[str, float]] = {}
    for mid, bm in bms.items():
        src = models.load_source(bm.spec.library, bm.path)
        if bm.spec.library == "xgboost":
            import xgboost as xgb

            r = xgb.XGBRanker(n_jobs=1)
            r.load_model(str(bm.path))
            lib_name = "xgboost XGBRanker.predict"
            lib = lambda X, r=r: r.predict(X)  # noqa: E731  # what xgboost.spark calls per batch
        else:
            lib_name = "lightgbm predict"
            lib = lambda X, src=src: src.predict(X, num_threads=1)  # noqa: E731
        res = {}
        for name, fn in (("ltrcompile", arts[mid].predict), (lib_name, lib)):
            fn(X[:1000])
            t = time.perf_counter()
            fn(X)
            res[name] = len(X) / (time.perf_counter() - t)
        out[mid] = res
    return out


def bench(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    import ltrcompile

    bms = {m: models.prepare(next(s for s in models.ZOO if s.id == m), log=log) for m in args.models}
    arts = {m: ltrcompile.compile(str(bm.path), progress=False) for m, bm in bms.items()}
    pool = np.ascontiguousarray(datasets.load("lambdarank").pool())
    work = args.workdir
    sfx = "" if args.layout == "columns" else "-array"
    big = write_parquet(pool, args.rows, args.files, work / f"rows-{args.rows}{sfx}", args.layout)
    small = write_parquet(pool, 20_000, 2, work / f"rows-warmup{sfx}", args.layout)
    facts = machine.facts()
    res: dict[str, Any] = {
        "machine": facts, "rows": args.rows, "files": args.files, "batch": args.batch, "reps": args.reps,
        "layout": args.layout,
        "models": {m: {"path": str(bm.path), "n_trees": bm.n_trees, "artifact_kib": sum(
            f.stat().st_size for f in Path(arts[m].path).iterdir() if f.is_file()) / 1024} for m, bm in bms.items()},
        "versions": _versions(), "loadavg_before": machine.loadavg(), "masters": {},
    }
    Xin = pool[np.arange(args.inproc_rows) % len(pool)]
    log(f"in-process single-thread scoring on {len(Xin)} rows ...")
    res["inprocess_rows_per_s"] = _inproc(bms, arts, Xin)
    log(json.dumps(res["inprocess_rows_per_s"]))
    del Xin
    for master in args.masters:
        spark = _session(master, args.batch)
        try:
            res["masters"][master] = _bench_master(spark, bms, arts, big, small, pool, args.reps, args.layout, log)
        finally:
            spark.stop()
        res["loadavg_after_" + master] = machine.loadavg()
    return res


def _engines(bms: dict[str, Any], arts: dict[str, Any], layout: str) -> list[tuple[str, str, Any]]:
    """(model id or '', engine name, DataFrame -> scored frame), in the order they are timed."""
    eng: list[tuple[str, str, Any]] = [
        ("", "scan", lambda df: df.select("rid", "qid", *_feature_cols(layout))),
        ("", "arrow identity", lambda df: _identity(df, False, layout)),
        ("", "arrow + matrix", lambda df: _identity(df, True, layout)),
    ]
    for mid, bm in bms.items():
        eng.append((mid, "ltrcompile", lambda df, a=arts[mid]: _ours(df, a, layout)))
        if bm.spec.library == "xgboost":
            eng.append((mid, "xgboost.spark", lambda df, p=bm.path: _xgboost_spark(df, p, layout)))
        else:
            eng.append((mid, "lightgbm mapInPandas", lambda df, p=bm.path: _lightgbm_map_in_pandas(df, p, layout)))
    return eng


def _bench_master(spark: Any, bms: dict[str, Any], arts: dict[str, Any], big: Path, small: Path,
                  pool: np.ndarray, reps: int, layout: str, log: Any) -> dict[str, Any]:
    eng = _engines(bms, arts, layout)
    sdf = spark.read.parquet(str(small))
    agree: dict[str, float] = {}
    for mid, name, fn in eng:  # warm-up: workers started, models loaded, engines agree
        _run(fn(sdf))
        if mid:
            pdf = fn(sdf).toPandas().sort_values("rid")
            ref = arts[mid].predict(pool[pdf["rid"].to_numpy() % len(pool)])
            agree[f"{mid} {name}"] = float(np.abs(pdf["score"].to_numpy() - ref).max())
    df = spark.read.parquet(str(big))
    n = df.count()
    times: dict[str, list[float]] = {}
    for _ in range(reps):
        for mid, name, fn in eng:
            key = f"{mid} {name}".strip()
            t = _run(fn(df))
            times.setdefault(key, []).append(t)
            log(f"  {spark.sparkContext.master:9s} {key:36s} {t:7.2f} s  {n / t:12,.0f} rows/s")
    best = {k: min(v) for k, v in times.items()}
    out: dict[str, Any] = {"rows": n, "seconds": times, "rows_per_s": {k: n / v for k, v in best.items()},
                           "max_abs_delta_vs_ltrcompile_predict": agree}
    split = {"scan_s": best["scan"], "arrow_and_worker_s": best["arrow identity"] - best["scan"],
             "matrix_gather_s": best["arrow + matrix"] - best["arrow identity"]}
    for mid in bms:
        split[f"{mid} scoring_s"] = best[f"{mid} ltrcompile"] - best["arrow + matrix"]
    out["split"] = split
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    v = {}
    for p in ("pyspark", "pyarrow", "pandas", "xgboost", "lightgbm", "numpy"):
        try:
            v[p] = md.version(p)
        except md.PackageNotFoundError:
            v[p] = "absent"
    import subprocess

    try:
        r = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        v["java"] = (r.stderr or r.stdout).splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        v["java"] = "unknown"
    return v


def table(res: dict[str, Any]) -> str:
    """The Markdown table: rows/s per master and engine, the ratio to the alternative, the split."""
    lines = [f"{res['rows']:,} rows, features as {res.get('layout', 'columns')}, {res['files']} Parquet files, maxRecordsPerBatch {res['batch']}, "
             f"best of {res['reps']}; {machine.one_line(res['machine'])}; load {res['loadavg_before']}", "",
             "| master | model | ltrcompile rows/s | alternative | alternative rows/s | ratio |",
             "|---|---|---:|---|---:|---:|"]
    for master, r in res["masters"].items():
        rps = r["rows_per_s"]
        for mid in res["models"]:
            alt = next(k for k in rps if k.startswith(mid) and not k.endswith("ltrcompile"))
            ours = rps[f"{mid} ltrcompile"]
            lines.append(f"| {master} | {mid} | {ours:,.0f} | {alt[len(mid) + 1:]} | {rps[alt]:,.0f} | "
                         f"{ours / rps[alt]:.2f}x |")
    lines += ["", "| master | scan | + Arrow transfer & Python worker | + matrix gather | "
              + " | ".join(f"{m} scoring" for m in res["models"]) + " |",
              "|---|---:|---:|---:|" + "---:|" * len(res["models"])]
    for master, r in res["masters"].items():
        s = r["split"]
        lines.append(f"| {master} | {s['scan_s']:.1f} s | {s['arrow_and_worker_s']:.1f} s | "
                     f"{s['matrix_gather_s']:.1f} s | " + " | ".join(f"{s[m + ' scoring_s']:.1f} s" for m in res["models"]) + " |")
    lines += ["", "In-process, single thread, no Spark (rows/s): " + "; ".join(
        f"{m}: " + ", ".join(f"{k} {v:,.0f}" for k, v in d.items()) for m, d in res["inprocess_rows_per_s"].items())]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_spark", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=8, help="Parquet files (= input partitions)")
    ap.add_argument("--masters", type=lambda s: [m for m in s.split(",") if m], default=["local[1]", "local[2]"])
    ap.add_argument("--models", type=lambda s: s.split(","), default=DEFAULT_MODELS)
    ap.add_argument("--batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--layout", choices=["columns", "array"], default="columns",
                    help="features as 300 double columns, or as one array<double> column x (every engine reads the same)")
    ap.add_argument("--inproc-rows", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=models.DEFAULT_CACHE / "spark")
    ap.add_argument("--out", type=Path, default=Path("bench-results/spark"))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    res = bench(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spark.json").write_text(json.dumps(res, indent=2))
    md = table(res)
    (args.out / "spark.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
