"""NDCG@k of a scored Spark DataFrame, computed in Spark (the evaluation run right after scoring).

Exposed as :func:`ltrcompile.spark.ndcg`; see ``docs/spark.md`` for the conventions.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import LtrCompileError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_NUMERIC = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType", "BooleanType")


class NdcgError(LtrCompileError, ValueError):
    """Bad columns or options for :func:`ndcg` (raised before any Spark job)."""


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


NDCG_CONVENTIONS = {
    # name: (gain, value of a query whose ideal DCG is 0)
    "lightgbm": ("exponential", 1.0),
    "ranklib": ("exponential", 0.0),
    "sklearn": ("linear", 0.0),
}


@dataclasses.dataclass
class NdcgResult:
    """Mean NDCG@k over queries, and the per-query values (a Spark DataFrame: query, ndcg, n_docs)."""

    mean: float
    n_queries: int
    per_query: DataFrame
    k: int
    convention: str


def ndcg(
    df: DataFrame,
    *,
    query_col: str,
    label_col: str,
    score_col: str,
    k: int = 10,
    convention: str = "lightgbm",
    tie_break_col: str | None = None,
) -> NdcgResult:
    """NDCG@k per query and its mean over queries, computed in Spark.

    Documents of a query are ranked by ``score_col``, descending. DCG@k = sum over the first k
    positions i = 1..k of gain(label) / log2(i + 1); NDCG@k = DCG@k / ideal DCG@k (labels sorted
    descending). ``convention``: ``"lightgbm"`` (gain 2^label - 1; a query with no relevant
    document scores 1, as LightGBM's ``ndcg`` metric counts it), ``"ranklib"`` (gain 2^label - 1;
    such a query scores 0, as RankLib's NDCG@k) or ``"sklearn"`` (gain = label, 0 for such queries:
    ``sklearn.metrics.ndcg_score``). Tied scores get the average gain of their tie group at each
    tied position (``ndcg_score``'s default), since Spark defines no row order to decide them by;
    ``tie_break_col`` instead ranks tied documents by that column, ascending (LightGBM and RankLib
    break ties by input order: pass the row's position in the original file to reproduce them).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if convention not in NDCG_CONVENTIONS:
        raise NdcgError(f"convention must be one of {sorted(NDCG_CONVENTIONS)}; got {convention!r}")
    if not isinstance(k, int) or k < 1:
        raise NdcgError(f"k must be a positive integer; got {k!r}")
    for c in (query_col, label_col, score_col) + ((tie_break_col,) if tie_break_col is not None else ()):
        if c not in df.columns:
            raise NdcgError(f"the DataFrame has no column {c!r} (columns: {', '.join(df.columns[:10])})")
    for c in (label_col, score_col):
        name = type(df.schema[c].dataType).__name__
        if name not in _NUMERIC:
            raise NdcgError(f"column {c!r} is {df.schema[c].dataType.simpleString()}, not numeric")
    gain_kind, empty_value = NDCG_CONVENTIONS[convention]
    q, lab, sc = F.col(_quote(query_col)), F.col(_quote(label_col)).cast("double"), F.col(_quote(score_col)).cast("double")
    gain = (F.pow(F.lit(2.0), lab) - F.lit(1.0)) if gain_kind == "exponential" else lab
    tb = F.col(_quote(tie_break_col)) if tie_break_col is not None else F.lit(0)
    base = df.select(q.alias("q"), lab.alias("label"), sc.alias("s"), gain.alias("g"), tb.alias("tb"))

    # ranked DCG with tie groups: the group occupies positions [first, first + size); with a
    # tie-break column every document is its own group
    if tie_break_col is None:
        position = F.rank().over(Window.partitionBy("q").orderBy(F.col("s").desc()))
    else:
        position = F.row_number().over(Window.partitionBy("q").orderBy(F.col("s").desc(), F.col("tb").asc()))
    groups = (
        base.withColumn("first", position)
        .groupBy("q", "s", "first")
        .agg(F.avg("g").alias("mean_gain"), F.count(F.lit(1)).alias("size"))
    )
    disc = _discount_sum(F.col("first"), F.col("first") + F.col("size"), k)
    dcg = groups.groupBy("q").agg(F.sum(F.col("mean_gain") * disc).alias("dcg"), F.sum("size").alias("n_docs"))

    # ideal DCG: labels sorted descending, first k positions
    by_label = Window.partitionBy("q").orderBy(F.col("label").desc())
    ideal = (
        base.withColumn("pos", F.row_number().over(by_label))
        .where(F.col("pos") <= k)
        .groupBy("q")
        .agg(F.sum(F.col("g") / F.log2(F.col("pos") + F.lit(1.0))).alias("idcg"))
    )
    per_query = (
        dcg.join(ideal, "q")
        .select(
            F.col("q").alias(query_col),
            F.when(F.col("idcg") > 0, F.col("dcg") / F.col("idcg")).otherwise(F.lit(empty_value)).alias("ndcg"),
            F.col("n_docs"),
        )
    )
    row = per_query.agg(F.avg("ndcg").alias("m"), F.count(F.lit(1)).alias("n")).collect()[0]
    return NdcgResult(float(row["m"]) if row["n"] else float("nan"), int(row["n"]), per_query, k, convention)


def _discount_sum(first: Any, end: Any, k: int) -> Any:
    """sum of 1/log2(i + 1) for positions i in [first, min(end, k + 1)) (a Spark expression)."""
    from pyspark.sql import functions as F

    cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))])
    table = F.array(*[F.lit(float(v)) for v in cum])  # table[i - 1] = sum over positions < i
    lo = F.least(first, F.lit(k + 1)).cast("int")
    hi = F.least(end, F.lit(k + 1)).cast("int")
    return F.element_at(table, hi) - F.element_at(table, lo)
