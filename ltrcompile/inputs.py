"""Turn user input (numpy, scipy sparse, pandas, lists) into the matrix a model compares against.

The rules come from the IR, never from guessing the source: ``sparse_absent`` says whether entries
absent from a sparse row are missing (NaN) or zero, ``int_input_cast`` how non-float arrays are
converted, ``input_cast`` the precision the source compares in, ``normalizers`` per-feature scaling,
and ``input_zero_band`` LightGBM's dense-row rule that ``|x| <= 1e-35`` reads as 0.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from . import normalizers
from .errors import InputDataError

if TYPE_CHECKING:
    from .ir import Ensemble


def _is_dataframe(X: Any) -> bool:
    return type(X).__module__.split(".")[0] == "pandas" and hasattr(X, "columns")


def _is_sparse(X: Any) -> bool:
    return type(X).__module__.split(".")[0] == "scipy" and hasattr(X, "tocsr")


def as_float_matrix(ens: Ensemble, X: Any) -> np.ndarray:
    """The input as a 2-D float32/float64 array with ``n_features`` columns (no model cast yet)."""
    if _is_dataframe(X):
        M = _from_dataframe(ens, X)
    elif _is_sparse(X):
        M = _from_sparse(ens, X)
    else:
        try:
            M = np.asarray(X)
        except Exception as exc:  # ragged lists etc.
            raise InputDataError(f"cannot read the input as a numeric matrix: {exc}") from exc
        if M.ndim == 1:
            raise InputDataError(
                f"expected a 2-D matrix (n_rows, {ens.n_features}); got a 1-D array of length "
                f"{M.shape[0]} (for one row use X.reshape(1, -1))"
            )
        if M.ndim != 2:
            raise InputDataError(f"expected a 2-D matrix; got an array with {M.ndim} dimensions")
        M = _numeric(ens, M)
    if M.shape[1] != ens.n_features:
        raise InputDataError(
            f"the input has {M.shape[1]} feature columns but the model expects {ens.n_features}"
        )
    return M


def _numeric(ens: Ensemble, M: np.ndarray) -> np.ndarray:
    if M.dtype in (np.float32, np.float64):
        return M
    if M.dtype.kind in "biu":
        return M.astype(ens.int_input_cast)
    if M.dtype.kind == "f":  # float16, longdouble
        return M.astype(np.float64)
    raise InputDataError(f"feature values must be numeric; got dtype {M.dtype}")


def _from_sparse(ens: Ensemble, X: Any) -> np.ndarray:
    """Densify a scipy sparse matrix after checking it: the width first (before any allocation),
    then ``indptr`` and the column indices, so a corrupt matrix is an error and never a silent
    wrap-around (numpy would read column ``-1`` as the last one)."""
    shape = getattr(X, "shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 2):
        raise InputDataError(f"expected a 2-D sparse matrix; got shape {shape!r}")
    n_rows, n_cols = (int(v) for v in shape)
    if n_cols != ens.n_features:
        raise InputDataError(f"the input has {n_cols} feature columns but the model expects {ens.n_features}")
    try:
        csr = X.tocsr()
    except (ValueError, IndexError, TypeError, MemoryError, OverflowError) as exc:
        raise InputDataError(f"cannot read the sparse matrix: {type(exc).__name__}: {exc}") from exc
    indptr = np.asarray(csr.indptr)
    indices = np.asarray(csr.indices)
    raw = np.asarray(csr.data)
    if indptr.ndim != 1 or indptr.shape[0] != n_rows + 1:
        raise InputDataError(f"sparse indptr has shape {indptr.shape}; expected ({n_rows + 1},)")
    if indices.ndim != 1 or raw.ndim != 1 or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise InputDataError("sparse indices/indptr must be 1-D integer arrays and data 1-D")
    nnz = indices.shape[0]
    ip = indptr.astype(np.int64)
    if n_rows + 1 > 0 and (ip[0] != 0 or ip[-1] != nnz or raw.shape[0] != nnz or np.any(np.diff(ip) < 0)):
        raise InputDataError(
            f"inconsistent sparse matrix: indptr must start at 0, never decrease and end at the number of "
            f"stored entries ({nnz}; data has {raw.shape[0]}); got indptr[0]={ip[0]}, indptr[-1]={ip[-1]}"
        )
    if nnz:
        idx = indices.astype(np.int64)
        bad = np.flatnonzero((idx < 0) | (idx >= n_cols))
        if bad.size:
            row = int(np.searchsorted(ip, bad[0], side="right") - 1)
            raise InputDataError(
                f"sparse column index {int(idx[bad[0]])} in row {row} is outside [0, {n_cols})"
            )
    data = _numeric(ens, raw)
    fill = np.nan if ens.sparse_absent == "missing" else 0.0
    out = np.full((n_rows, n_cols), fill, dtype=data.dtype if data.dtype.kind == "f" else np.float64)
    rows = np.repeat(np.arange(n_rows), np.diff(ip))
    out[rows, indices] = data
    return out


def _from_dataframe(ens: Ensemble, df: Any) -> np.ndarray:
    cols = [str(c) for c in df.columns]
    if len(set(cols)) != len(cols):
        dups = sorted(c for c, k in Counter(cols).items() if k > 1)
        raise InputDataError(f"the DataFrame has duplicate column names {dups[:10]}; each feature needs one column")
    if ens.feature_names is not None:
        names = ens.feature_names
        missing = [n for n in names if n not in cols]
        extra = [c for c in cols if c not in set(names)]
        if missing or extra:
            raise InputDataError(
                "DataFrame columns do not match the model's feature names"
                + (f"; missing: {missing[:10]}" if missing else "")
                + (f"; unexpected: {extra[:10]}" if extra else "")
            )
        order = [cols.index(n) for n in names]
    else:
        if len(cols) != ens.n_features:
            raise InputDataError(
                f"the DataFrame has {len(cols)} columns but the model expects {ens.n_features}"
            )
        order = list(range(len(cols)))
    n = len(df)
    out = np.empty((n, len(order)), np.float64)
    dtypes = []
    for j, src in enumerate(order):
        s = df.iloc[:, src]
        if str(s.dtype) == "category":
            labels = (ens.feature_categories or {}).get(j)
            if labels is not None and ens.categorical_rule == "xgboost":
                _check_xgboost_categories(cols[src], s, labels)
            if labels is not None:
                codes = s.cat.set_categories(labels).cat.codes.to_numpy()
            else:
                codes = s.cat.codes.to_numpy()
            col = codes.astype(np.float64)
            col[codes < 0] = np.nan
            dtypes.append(np.dtype(np.float32))
        else:
            arr = s.to_numpy()
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                try:
                    arr = arr.astype(np.float64)
                except (TypeError, ValueError) as exc:
                    raise InputDataError(
                        f"column {cols[src]!r} is not numeric (dtype {s.dtype})"
                    ) from exc
            dtypes.append(arr.dtype)
            col = arr.astype(np.float64)
        out[:, j] = col
    if ens.int_input_cast == "float32" and dtypes:
        # LightGBM's pandas path: one target dtype for the whole frame, at least float32
        if np.result_type(*dtypes, np.float32) == np.float32:
            return out.astype(np.float32)
    return out


def _check_xgboost_categories(name: str, s: Any, labels: list[Any]) -> None:
    """XGBoost (3.1+, models that store their categories) refuses a categorical column whose
    categories differ in kind from the training ones (strings for integer categories or the reverse),
    a floating-point category index, and any category of the column's dtype not seen in training --
    even one no row uses. (It also refuses another integer width; the model file does not record the
    width, so that one check is not reproduced.)"""
    cats = s.cat.categories
    kind = np.asarray(cats).dtype.kind if len(cats) else None
    if kind == "f":
        raise InputDataError(
            f"column {name!r}: the category index has a floating-point dtype, which XGBoost refuses "
            "(use strings or integers)"
        )
    if not labels or kind is None:
        return
    trained_numeric = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in labels)
    given_numeric = kind in "iub"
    if trained_numeric != given_numeric:
        raise InputDataError(
            f"column {name!r}: the categories are {'integers' if given_numeric else 'strings'} but the model "
            f"was trained with {'integer' if trained_numeric else 'string'} categories (XGBoost refuses this)"
        )
    known = set(labels)
    unseen = [c for c in cats.tolist() if c not in known]
    if unseen:
        raise InputDataError(
            f"column {name!r}: categories {unseen[:10]} were not in the training set (XGBoost refuses them)"
        )


def model_matrix(ens: Ensemble, X: Any) -> np.ndarray:
    """Float64 C-contiguous matrix holding exactly the values the source library compares."""
    M = as_float_matrix(ens, X)
    if ens.normalizers:
        M = M.astype(np.float64, copy=True)
        apply_normalizers(ens, M)
    if ens.input_cast == "float32":
        with np.errstate(over="ignore"):  # values beyond float32 range become +-inf, as in C
            M = np.asarray(M, np.float32)
    out = np.array(M, dtype=np.float64, order="C", copy=True)
    if ens.input_zero_band > 0 and not _sparse_rows_as_stored(X):
        out[np.abs(out) <= ens.input_zero_band] = 0.0
    if ens.infinite_as_missing:  # Elasticsearch: Numbers.isValidDouble(x) == false -> missing
        out[np.isinf(out)] = np.nan
    return out


def _sparse_rows_as_stored(X: Any) -> bool:
    """LightGBM (4.x Python package) drops ``|x| <= 1e-35`` from dense rows and from csc_matrix
    columns, but compares the stored entries of csr_matrix (and every other scipy sparse type,
    which it converts to CSR) as they are."""
    if not _is_sparse(X):
        return False
    import scipy.sparse

    return not isinstance(X, scipy.sparse.csc_matrix)


def apply_normalizers(ens: Ensemble, M: np.ndarray) -> None:
    """In place, in float32 like the ES LTR plugin's ``FeatureNormalizingRanker`` (the rule is
    :func:`ltrcompile.normalizers.apply_ir`: ``missing_value`` replaces NaN, then the scaling)."""
    normalizers.apply_ir(ens.normalizers, M)
