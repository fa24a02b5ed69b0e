"""The CLI's Spark job: ``ltrcompile score MODEL INPUT.parquet --spark [MASTER] -o OUT.parquet``.

One Spark application reads the Parquet input, adds the score column with
:func:`ltrcompile.spark.score` (the same code path as the Python API) and writes Parquet. Spark's
own console progress bar shows the stages; the last line says how many rows were scored and how
fast. The option rules of the ``--spark`` form live in :func:`check_request`, so the CLI only
forwards what the user gave.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .spark import SparkScoringError, score, ship

DEFAULT_MASTER = "local[*]"
PARQUET_SUFFIXES = (".parquet", ".parq")


@dataclasses.dataclass(frozen=True)
class JobResult:
    """What one scoring job did (the summary line is :meth:`line`)."""

    rows: int
    job_s: float  # the read + score + write job (the rows/s figure)
    total_s: float  # also the session start and, for a model file, the compile on the driver
    master: str
    module: str
    shipped_kib: float
    output: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.job_s if self.job_s > 0 else 0.0

    def line(self) -> str:
        return (f"scored {self.rows:,} rows in {self.job_s:.1f} s ({self.rows_per_s:,.0f} rows/s; "
                f"{self.total_s:.1f} s with the Spark session start) on {self.master}, model "
                f"{self.module} ({self.shipped_kib:.0f} KiB shipped) -> {self.output}")


def is_parquet(path: str) -> bool:
    """A Parquet file (by its suffix) or a directory holding Parquet files (a Spark dataset)."""
    p = Path(path)
    if p.is_dir():
        return any(f.suffix in PARQUET_SUFFIXES for f in p.rglob("*") if f.is_file())
    return p.suffix.lower() in PARQUET_SUFFIXES


def check_request(master: str | None, data: str, output: str | None, given: dict[str, bool]) -> None:
    """Refuse, with a one-line reason, what the ``--spark`` form (or the in-process form) cannot do.

    ``master``: the ``--spark`` value (None: in-process scoring). ``given``: option name -> whether
    the user gave it. Raises :class:`~ltrcompile.spark.SparkScoringError`.
    """
    if master is None:
        if given.get("--features"):
            raise SparkScoringError("--features binds Parquet columns and applies only with --spark")
        if os.path.exists(data) and is_parquet(data):
            raise SparkScoringError(f"DATA {data} is Parquet: score it with --spark [MASTER] -o OUT.parquet")
        return
    for opt in ("--contrib", "--output-format", "--index-base"):
        if given.get(opt):
            raise SparkScoringError(f"{opt} does not apply with --spark (the Spark job writes scores to Parquet)")
    if not master.strip():
        raise SparkScoringError("--spark needs a master URL (local[*], local[2], spark://host:7077, yarn, ...)")
    if not os.path.exists(data):
        raise SparkScoringError(f"DATA {data}: no such Parquet file or directory")
    if not is_parquet(data):
        raise SparkScoringError(f"DATA {data}: --spark reads Parquet (a .parquet file or a directory of them)")
    if not output or output == "-":
        raise SparkScoringError("--spark writes a Parquet dataset: give its path with -o OUT.parquet")
    if os.path.abspath(output) == os.path.abspath(data):
        raise SparkScoringError(f"-o {output} is the input; write the scores somewhere else")
    if os.path.exists(output) and not (os.path.isdir(output) and is_parquet(output)):
        raise SparkScoringError(f"-o {output} exists and is not a Parquet dataset directory; refusing to replace it")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise SparkScoringError(f"-o {output}: directory {parent} does not exist or is not writable")


def parse_features(text: str | None) -> list[str] | None:
    """``--features a,b,c`` as a list of column names (None when not given)."""
    if text is None:
        return None
    cols = [c.strip() for c in text.split(",")]
    if not cols or any(not c for c in cols):
        raise SparkScoringError(f"--features {text!r}: expected comma-separated column names")
    return cols


def _features_for(schema: Any, cols: list[str] | None) -> str | list[str] | None:
    """One named vector/array column is the feature vector; otherwise one column per feature."""
    from pyspark.sql import types as T

    if cols is not None and len(cols) == 1 and cols[0] in schema.fieldNames():
        dt = schema[cols[0]].dataType
        if isinstance(dt, T.ArrayType) or type(dt).__name__ == "VectorUDT":
            return cols[0]
    return cols


def session(master: str, app_name: str) -> Any:
    """A SparkSession for the job, with the console progress bar on; local masters bind loopback
    only and run their Python workers with this interpreter (unless PYSPARK_PYTHON says otherwise)."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.showConsoleProgress", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def run_score_job(
    model: Any,
    input_path: str,
    output_path: str,
    *,
    master: str = DEFAULT_MASTER,
    features: Sequence[str] | None = None,
    raw_score: bool = False,
    on_mismatch: str = "rebuild",
    output_col: str = "score",
    echo: Callable[[str], Any] | None = print,
    name: str | None = None,
) -> JobResult:
    """Read Parquet, score with :func:`ltrcompile.spark.score`, write Parquet (mode overwrite).

    ``model``: anything :func:`ltrcompile.spark.ship` takes (compiled here, on the driver, when it
    is a model file or an Ensemble). ``features``: column names (one per model feature, in model
    order) or one vector/array column; None binds the model's feature names. ``name``: for the
    Spark application's name (default: the model path's last component).
    """
    t0 = time.perf_counter()
    shipped = ship(model)
    if name is None:
        name = Path(model).name if isinstance(model, str | os.PathLike) else type(model).__name__
    spark = session(master, f"ltrcompile score {name}")
    try:
        df = spark.read.parquet(input_path)
        feats = _features_for(df.schema, list(features) if features is not None else None)
        out = score(df, shipped, features=feats, output_col=output_col, raw_score=raw_score,
                    on_mismatch=on_mismatch)
        t1 = time.perf_counter()
        out.write.mode("overwrite").parquet(output_path)
        job_s = time.perf_counter() - t1
        rows = spark.read.parquet(output_path).count()
    finally:
        spark.stop()
    res = JobResult(rows=rows, job_s=job_s, total_s=time.perf_counter() - t0, master=master,
                    module=shipped.module, shipped_kib=shipped.nbytes / 1024, output=output_path)
    if echo is not None:
        echo(res.line())
    return res


__all__ = ["DEFAULT_MASTER", "JobResult", "check_request", "is_parquet", "parse_features", "run_score_job", "session"]
