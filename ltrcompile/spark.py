"""Batch scoring and offline NDCG on Apache Spark (PySpark), with compiled ltrcompile scorers.

``score(df, model)`` adds a score column to a Spark DataFrame. The model is compiled once on the
driver; its artifact (manifest, IR, extension module: a few hundred KiB) is broadcast once, and each
Python worker writes it into its local ltrcompile cache and loads it once per content hash, then
reuses it for every task it runs. Rows reach the scorer as Arrow batches through an Arrow UDF
(``pyspark.sql.functions.arrow_udf``, Spark >= 4.1): only the feature columns travel to Python, each
column's buffer is read without copying and gathered once into the row-major matrix the scorer
reads, and the GIL-free scorer writes the batch's scores into one float64 buffer that goes back to
the JVM as it is. There is no per-row Python code anywhere.

When a worker's platform or Python ABI differs from the one the artifact was built for, the worker
rebuilds the scorer from the IR the artifact carries (``on_mismatch="rebuild"``; the build lands in
that machine's content-addressed cache, so it happens once per machine), or scores with the
reference interpreter (``"interpret"``), or fails (``"error"``). A rebuild on a machine without a C
compiler falls back to the interpreter. Either fallback is logged on the executor's stderr.

The CLI job (``ltrcompile score ... --spark``) is in :mod:`ltrcompile.spark_job`. See ``docs/spark.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputDataError, LtrCompileError
from .ndcg import NDCG_CONVENTIONS, NdcgError, NdcgResult, ndcg

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("ltrcompile.spark")

MISMATCH_POLICIES = ("rebuild", "interpret", "error")

#: the artifact files a worker needs (the generated sources and build log stay on the driver)
_MANIFEST = "manifest.json"
_IR = "ir.json"


class SparkScoringError(LtrCompileError, ValueError):
    """The DataFrame or the options cannot be scored with this model (raised before any job runs)."""


# ============================================================================ the shipped model
@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """What goes to the executors: the artifact's files and the facts the driver binds columns by.

    Built by :func:`ship` without importing the extension, so a driver on another platform than the
    executors (a laptop submitting to a Linux cluster) can ship an artifact built for them.
    """

    module: str
    key: str  # content hash of the extension (the per-worker cache key)
    files: dict[str, bytes]  # manifest.json, ir.json, the extension module
    n_features: int
    feature_names: list[str] | None
    int_input_cast: str
    n_outputs: int
    output_dim: int

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.files[_MANIFEST])

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.files.values())

    def out_dim(self, raw_score: bool) -> int:
        return self.n_outputs if raw_score else self.output_dim


def ship(model: Any) -> ShippedModel:
    """Read (or first compile) ``model`` into a :class:`ShippedModel`.

    ``model``: a :class:`~ltrcompile.backends.cython.CompiledScorer`, a compiled artifact directory,
    a model file (any format :func:`ltrcompile.load_model` reads; compiled here, once, on the driver),
    an :class:`~ltrcompile.Ensemble`, or a :class:`ShippedModel` (returned as it is).
    """
    from .backends.cython.artifact import read_manifest, sha256_file

    if isinstance(model, ShippedModel):
        return model
    path = _artifact_dir(model)
    m = read_manifest(path)
    ext = path / m["extension"]
    if not ext.is_file():
        raise SparkScoringError(f"{path}: the extension module {m['extension']} is missing")
    if sha256_file(ext) != m["extension_sha256"]:
        raise SparkScoringError(f"{ext}: checksum does not match the manifest (corrupt or modified)")
    if not (path / _IR).is_file():
        raise SparkScoringError(f"{path}: holds no {_IR}; recompile the model")
    files = {name: (path / name).read_bytes() for name in (_MANIFEST, _IR, m["extension"])}
    inp = m.get("input") or {}
    return ShippedModel(
        module=m["module"],
        key=m["extension_sha256"],
        files=files,
        n_features=int(m["n_features"]),
        feature_names=m.get("feature_names"),
        int_input_cast=str(inp.get("int_input_cast", "float64")),
        n_outputs=int(m["n_outputs"]),
        output_dim=int(m.get("output_dim", m["n_outputs"])),
    )


def _artifact_dir(model: Any) -> Path:
    from .backends.cython import CompiledScorer
    from .ir import Ensemble

    if isinstance(model, CompiledScorer):
        return model.path
    if isinstance(model, Ensemble):
        return _compile(model).path
    if isinstance(model, str | os.PathLike):
        p = Path(model)
        if p.is_dir():
            return p
        if p.is_file():
            from .frontends import load_model

            return _compile(load_model(str(p))).path
        raise SparkScoringError(f"{p}: no such model file or artifact directory")
    raise SparkScoringError(
        f"model must be a CompiledScorer, an artifact directory, a model file or an Ensemble; "
        f"got {type(model).__name__}"
    )


def _compile(ens: Any) -> Any:
    from .backends.cython import compile as compile_ensemble

    return compile_ensemble(ens, progress=False)


# ============================================================================ column binding
@dataclasses.dataclass(frozen=True)
class Binding:
    """How the DataFrame's columns become the model's feature matrix (decided on the driver)."""

    columns: tuple[str, ...]  # feature columns in model order, or the one vector/array column
    kind: str  # "columns" | "vector" | "array"
    dtype: str  # "float32" | "float64": the matrix handed to the scorer


_INT_TYPES = ("ByteType", "ShortType", "IntegerType", "LongType")
_NP = {"ByteType": "int8", "ShortType": "int16", "IntegerType": "int32", "LongType": "int64",
       "FloatType": "float32", "DoubleType": "float64", "BooleanType": "bool",
       "DecimalType": "float64"}


def bind(schema: Any, shipped: ShippedModel, features: str | Sequence[str] | None) -> Binding:
    """Check the DataFrame ``schema`` against the model and choose the columns and matrix dtype.

    ``features=None``: one numeric column per model feature name. A list: those columns, in model
    feature order. A string: one column holding each row's feature vector (a Spark ML vector or an
    array of numbers). Columns of one batch become the matrix ``numpy.column_stack`` would build
    (integer and boolean columns then convert as the model's ``int_input_cast`` says, exactly like
    an integer numpy matrix passed to ``predict``); nulls are missing values (NaN).
    """
    from pyspark.sql import types as T

    by_name = {f.name: f for f in schema.fields}
    if isinstance(features, str):
        f = by_name.get(features)
        if f is None:
            raise SparkScoringError(f"the DataFrame has no column {features!r} (columns: {_few(by_name)})")
        dt = f.dataType
        if type(dt).__name__ == "VectorUDT":
            return Binding((features,), "vector", "float64")
        if isinstance(dt, T.ArrayType):
            et = type(dt.elementType).__name__
            if et not in _NP:
                raise SparkScoringError(
                    f"column {features!r} is an array of {dt.elementType.simpleString()}; "
                    "a feature vector column must hold numbers"
                )
            return Binding((features,), "array", _matrix_dtype([et], shipped.int_input_cast))
        raise SparkScoringError(
            f"column {features!r} is {dt.simpleString()}; features=<one column> must name a Spark ML "
            "vector or an array column (pass a list for one column per feature)"
        )
    if features is None:
        if not shipped.feature_names:
            raise SparkScoringError(
                "the model has no feature names to bind columns by: pass features=[...] (one column "
                "per feature, in model order) or features='<vector or array column>'"
            )
        cols = list(shipped.feature_names)
    else:
        cols = [str(c) for c in features]
        if len(cols) != shipped.n_features:
            raise SparkScoringError(
                f"features= names {len(cols)} columns but the model has {shipped.n_features} features"
            )
    missing = [c for c in cols if c not in by_name]
    if missing:
        raise SparkScoringError(
            f"the DataFrame lacks {len(missing)} of the model's {len(cols)} feature columns: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}"
        )
    types = []
    for c in cols:
        dt = by_name[c].dataType
        name = type(dt).__name__
        if name not in _NP:
            raise SparkScoringError(
                f"feature column {c!r} is {dt.simpleString()}, not numeric; cast it (or drop it "
                "from features=) before scoring"
            )
        types.append(name)
    return Binding(tuple(cols), "columns", _matrix_dtype(types, shipped.int_input_cast))


def _matrix_dtype(spark_types: list[str], int_input_cast: str) -> str:
    """The dtype ``numpy.column_stack`` gives these columns, with integers cast as the model says."""
    dt = np.result_type(*[np.dtype(_NP[t]) for t in spark_types])
    if dt.kind in "biu":
        return "float32" if int_input_cast == "float32" else "float64"
    return "float32" if dt == np.float32 else "float64"


def _few(d: dict[str, Any]) -> str:
    names = list(d)
    return ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")


# ============================================================================ the driver side
def score(
    df: DataFrame,
    model: Any,
    *,
    features: str | Sequence[str] | None = None,
    output_col: str = "score",
    raw_score: bool = False,
    on_mismatch: str = "rebuild",
) -> DataFrame:
    """``df`` with a score column added (lazy: nothing runs until an action).

    ``model``: see :func:`ship`. ``features``: see :func:`bind`. Single-output models give a
    ``double`` column; models with several outputs (multiclass probabilities, raw margins of a
    multi-output model) give an ``array<double>`` column holding one row's outputs in model order.
    ``raw_score``: margins instead of transformed outputs. ``on_mismatch``: what a worker does when
    its platform/Python ABI differs from the artifact's: ``"rebuild"`` from the shipped IR (falls
    back to the interpreter when no C compiler is there), ``"interpret"`` or ``"error"``.
    Column and option errors are raised here, before any Spark job.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if on_mismatch not in MISMATCH_POLICIES:
        raise SparkScoringError(f"on_mismatch must be one of {MISMATCH_POLICIES}; got {on_mismatch!r}")
    if not isinstance(output_col, str) or not output_col:
        raise SparkScoringError("output_col must be a non-empty column name")
    if output_col in df.columns:
        raise SparkScoringError(f"the DataFrame already has a column {output_col!r}; pick another output_col")
    shipped = ship(model)
    binding = bind(df.schema, shipped, features)
    dim = shipped.out_dim(bool(raw_score))
    out_type: Any = T.DoubleType() if dim == 1 else T.ArrayType(T.DoubleType(), containsNull=False)
    spark = df.sparkSession
    bc = _broadcast(spark, shipped)
    task = _Task(shipped.key, bc, binding, bool(raw_score), dim, on_mismatch, shipped.n_features)
    with warnings.catch_warnings():  # "prefer type hints": a partial carries none; the type is given
        warnings.simplefilter("ignore", UserWarning)
        udf = F.arrow_udf(partial(_score_batch, task), out_type, F.ArrowUDFType.SCALAR)
    args = []
    for c in binding.columns:
        col = F.col(_quote(c))
        dt = df.schema[c].dataType
        if type(dt).__name__ == "DecimalType":
            col = col.cast("double")  # Spark's exact decimal -> double rounding, on the JVM
        args.append(col)
    return df.withColumn(output_col, udf(*args))


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


#: broadcasts by (SparkContext id, content hash): one broadcast per model per application
_BROADCASTS: dict[tuple[int, str], Any] = {}


def _broadcast(spark: SparkSession, shipped: ShippedModel) -> Any:
    sc = spark.sparkContext
    key = (id(sc), shipped.key)
    bc = _BROADCASTS.get(key)
    if bc is None:
        bc = sc.broadcast({"module": shipped.module, "files": shipped.files})
        _BROADCASTS[key] = bc
    return bc


# ============================================================================ the worker side
@dataclasses.dataclass(frozen=True)
class _Task:
    """Everything one UDF call needs; small (the artifact travels in the broadcast)."""

    key: str
    broadcast: Any
    binding: Binding
    raw_score: bool
    out_dim: int
    on_mismatch: str
    n_features: int


class _Interpreted:
    """The reference interpreter behind the scorer interface (the mismatch fallback)."""

    kind = "interpreter"

    def __init__(self, ens: Any) -> None:
        self._ens = ens

    def predict(self, X: np.ndarray, raw_score: bool = False) -> np.ndarray:
        return self._ens.predict(X, raw_score=raw_score)


#: per Python worker process: (content hash, policy) -> loaded scorer, reused across tasks
_SCORERS: dict[tuple[str, str], Any] = {}
_SCORERS_LOCK = threading.Lock()


def _scorer(task: _Task) -> Any:
    k = (task.key, task.on_mismatch)
    s = _SCORERS.get(k)
    if s is not None:
        return s
    with _SCORERS_LOCK:
        s = _SCORERS.get(k)
        if s is None:
            s = load_shipped(task.broadcast.value, task.on_mismatch)
            _SCORERS[k] = s
    return s


def load_shipped(payload: dict[str, Any], on_mismatch: str) -> Any:
    """Materialize a broadcast artifact on this machine: the shipped scorer, a rebuild or the
    interpreter, as ``on_mismatch`` says (see the module docstring)."""
    from .backends.cython.artifact import IncompatibleArtifactError
    from .backends.cython.scorer import _restore

    module, files = payload["module"], payload["files"]
    try:
        return _restore(module, files)
    except IncompatibleArtifactError as exc:
        if on_mismatch == "error":
            raise
        why = str(exc)
    from .ir import Ensemble

    ens = Ensemble.from_json(files[_IR], path=f"(shipped {module}) {_IR}")
    if on_mismatch == "rebuild":
        from .backends.cython import CompilerNotFoundError

        t = time.perf_counter()
        try:
            s = _compile(ens)
        except CompilerNotFoundError as exc:
            log.warning("ltrcompile.spark: %s; no C compiler on this executor (%s): scoring %s with the "
                        "interpreter (slower, same scores)", why, exc, module)
            return _Interpreted(ens)
        log.warning("ltrcompile.spark: %s; rebuilt %s from its IR on this executor in %.1f s -> %s",
                    why, module, time.perf_counter() - t, s.path)
        return s
    log.warning("ltrcompile.spark: %s; scoring %s with the interpreter (on_mismatch='interpret')",
                why, module)
    return _Interpreted(ens)


def _score_batch(task: _Task, *arrays: Any) -> Any:
    """One Arrow batch: feature arrays in, one score array out (never a Python loop over rows)."""
    import pyarrow as pa

    X = batch_matrix(task.binding, arrays, task.n_features)
    out = np.asarray(_scorer(task).predict(X, raw_score=task.raw_score), dtype=np.float64)
    n = X.shape[0]
    if task.out_dim == 1:
        return pa.array(out.reshape(n))
    flat = np.ascontiguousarray(out.reshape(n, task.out_dim)).reshape(-1)
    offsets = pa.array(np.arange(0, n * task.out_dim + 1, task.out_dim, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(flat))


def batch_matrix(binding: Binding, arrays: Sequence[Any], n_features: int) -> np.ndarray:
    """The Arrow arrays of one batch as the scorer's row-major float matrix (nulls -> NaN)."""
    dtype = np.dtype(binding.dtype)
    if binding.kind == "columns":
        n = len(arrays[0]) if arrays else 0
        # each column is copied contiguously into one row of a (features, n) block, then the block
        # is transposed in one pass: about 1.5x faster than writing strided columns of (n, features)
        F = np.empty((len(arrays), n), dtype)
        for j, a in enumerate(arrays):
            F[j] = _numeric(a, dtype)
        return np.ascontiguousarray(F.T)
    a = arrays[0]
    if binding.kind == "vector":
        return _vectors(a, n_features)
    return _lists(a, n_features, dtype)


def _numeric(a: Any, dtype: np.dtype) -> np.ndarray:
    """One Arrow numeric array as numpy (zero-copy unless it has nulls or another dtype)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if pa.types.is_boolean(a.type) or pa.types.is_integer(a.type):
        if a.null_count:
            a = a.cast(pa.float64())
    if a.null_count:
        a = pc.fill_null(a.cast(pa.from_numpy_dtype(dtype) if pa.types.is_floating(a.type) else pa.float64()),
                         np.nan)
    v = a.to_numpy(zero_copy_only=False)
    return v if v.dtype == dtype else v.astype(dtype)


def _lists(a: Any, n_features: int, dtype: np.dtype) -> np.ndarray:
    """An Arrow list<number> array (one list per row) as an ``(n, n_features)`` matrix."""
    import pyarrow as pa

    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    n = len(a)
    if a.null_count:
        raise InputDataError(f"the feature array column holds {a.null_count} null rows (a whole row "
                             "cannot be missing; use null elements for missing features)")
    offsets = a.offsets.to_numpy()
    lengths = np.diff(offsets)
    if n and (lengths != n_features).any():
        bad = int(np.flatnonzero(lengths != n_features)[0])
        raise InputDataError(f"a feature array holds {int(lengths[bad])} values; the model has "
                             f"{n_features} features")
    values = _numeric(a.values.slice(int(offsets[0]), n * n_features) if n else a.values.slice(0, 0), dtype)
    return values.reshape(n, n_features)


def _vectors(a: Any, n_features: int) -> np.ndarray:
    """Spark ML vectors (their Arrow struct form) as a dense float64 matrix.

    A sparse vector's absent entries are 0.0, as in ``Vector.toArray()`` (and in ``xgboost.spark``,
    which densifies them the same way unless told otherwise); a NaN entry is a missing value.
    """
    import pyarrow as pa

    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    n = len(a)
    if a.null_count:
        raise InputDataError(f"the feature vector column holds {a.null_count} null rows")
    kinds = a.field("type").to_numpy(zero_copy_only=False)
    vals = a.field("values")
    voff = vals.offsets.to_numpy()
    flat = vals.values.to_numpy(zero_copy_only=False)[voff[0]:voff[-1]] if n else np.zeros(0)
    lens = np.diff(voff)
    dense = kinds == 1
    if dense.all():
        if n and (lens != n_features).any():
            bad = int(np.flatnonzero(lens != n_features)[0])
            raise InputDataError(f"a feature vector has {int(lens[bad])} values; the model has {n_features} features")
        return np.ascontiguousarray(flat, dtype=np.float64).reshape(n, n_features)
    sizes = a.field("size").to_numpy(zero_copy_only=False)
    bad_dense = dense & (lens != n_features)
    bad_sparse = ~dense & (np.nan_to_num(sizes.astype(np.float64), nan=-1) != n_features)
    if bad_dense.any() or bad_sparse.any():
        raise InputDataError(f"feature vectors must have size {n_features} (the model's feature count)")
    X = np.zeros((n, n_features), np.float64)
    rows = np.repeat(np.arange(n), lens)
    cols = np.arange(flat.size) - np.repeat(voff[:-1] - voff[0], lens)
    sparse_elem = np.repeat(~dense, lens)
    if sparse_elem.any():
        idx = a.field("indices")
        ioff = idx.offsets.to_numpy()
        cols[sparse_elem] = idx.values.to_numpy(zero_copy_only=False)[ioff[0]:ioff[-1]]
    X[rows, cols] = flat
    return X


__all__ = [
    "MISMATCH_POLICIES",
    "NDCG_CONVENTIONS",
    "Binding",
    "NdcgError",
    "NdcgResult",
    "ShippedModel",
    "SparkScoringError",
    "bind",
    "load_shipped",
    "ndcg",
    "score",
    "ship",
]
