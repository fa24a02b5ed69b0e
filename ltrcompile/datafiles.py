"""Read DATA files (rows to score or to verify with) into the matrix a model expects.

Three formats, chosen by extension and content (``fmt="auto"``):

* ``svmlight`` -- svmlight / LETOR text: ``label [qid:Q] index:value ... [# comment]``. Query ids
  are kept; without them, a LightGBM-style ``FILE.query`` companion (group sizes, one per line)
  numbers the queries 1, 2, ... Indices are 1-based unless the file uses index 0 (``index_base``
  forces either). Absent entries follow the model's ``sparse_absent`` rule: NaN (missing) for
  XGBoost, 0.0 for the others.
* ``csv`` -- comma- or tab-separated with a header row. When the model has real feature names the
  columns are bound by name (any order); otherwise positionally. Columns named ``label`` /
  ``relevance`` / ``target``, ``qid`` / ``query_id`` and ``doc_id`` / ``docid`` / ``id`` are read as
  labels, query ids and row ids. Empty cells, ``nan``, ``NA`` and ``null`` are missing (NaN).
* ``npy`` -- a 2-D numeric NumPy array (``np.save``), one column per feature.

Every problem raises :class:`~ltrcompile.errors.InputDataError` whose message names the file and,
for text formats, the line.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputDataError

if TYPE_CHECKING:
    from .ir import Ensemble

DATA_FORMATS = ("svmlight", "csv", "npy")
LABEL_COLUMNS = ("label", "relevance", "target")
QID_COLUMNS = ("qid", "query_id")
ID_COLUMNS = ("doc_id", "docid", "id")
_MISSING_CELLS = frozenset({"", "nan", "na", "n/a", "null", "none", "?"})
#: feature names frontends invent when the source had none; such models bind columns by position
_PLACEHOLDER = re.compile(r"^(Column_|f|feature_?|x)\d+$", re.I)


@dataclass
class DataSet:
    """Rows read from a DATA file.

    ``X`` is ``(n_rows, n_features)``, float64 from text files (``.npy`` keeps its dtype, so the
    model's own integer/float32 input rules apply); ``y`` the labels (or None); ``qid`` the query id of
    every row (int64 for svmlight, strings for CSV; or None); ``ids`` CSV row ids (or None);
    ``lines`` the 1-based line of every row in a text file (None for ``.npy``).
    """

    path: str
    format: str
    X: np.ndarray
    y: np.ndarray | None = None
    qid: np.ndarray | None = None
    ids: np.ndarray | None = None
    lines: np.ndarray | None = None
    binding: str = "position"
    ignored_features: int = 0

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def where(self, i: int) -> str:
        """Where row ``i`` came from, for messages: ``data.txt line 17 (qid 3)``."""
        s = f"{os.path.basename(self.path)} "
        s += f"line {int(self.lines[i])}" if self.lines is not None else f"row {i}"
        if self.qid is not None:
            s += f" (qid {self.qid[i]})"
        return s

    def queries(self) -> list[tuple[Any, np.ndarray]]:
        """``(qid, row indices)`` per query in order of first appearance (all rows if no qids)."""
        if self.qid is None:
            return [(None, np.arange(self.n_rows))]
        _, first, inverse = np.unique(self.qid, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        return [(self.qid[first[k]], np.flatnonzero(inverse == k)) for k in order]


#: how each ``sparse_absent`` rule reads an entry absent from an svmlight row, in words
ABSENT_WORDS = {"zero": "0", "missing": "missing (NaN)"}

def _fail(path: str, message: str, line: int | None = None) -> InputDataError:
    where = f"file {path}" + (f", line {line}" if line is not None else "")
    return InputDataError(f"{where}: {message}")


def sniff_format(path: str) -> str:
    """``svmlight``, ``csv`` or ``npy`` judged from the extension, then the first data line."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return "npy"
    if ext in (".csv", ".tsv"):
        return "csv"
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise _fail(path, f"cannot read the data file: {exc.strerror or exc}") from exc
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    for raw in head.splitlines():
        line = raw.split(b"#", 1)[0].strip()
        if not line:
            continue
        toks = line.split()
        if len(toks) >= 1 and all(b":" in t for t in toks[1:]) and b"," not in line:
            return "svmlight"
        return "csv"
    raise _fail(path, "the data file is empty")


def read_data(
    path: str | os.PathLike[str],
    model: Ensemble | None = None,
    *,
    n_features: int | None = None,
    feature_names: list[str] | None = None,
    absent: str | None = None,
    fmt: str = "auto",
    index_base: str | int = "auto",
    extra_features: str | None = None,
) -> DataSet:
    """Read a DATA file for ``model`` (or for ``n_features`` / ``feature_names`` without one).

    ``absent`` (``"missing"`` or ``"zero"``) overrides how absent svmlight entries read; the default
    is the model's ``sparse_absent`` (``"zero"`` without a model). ``index_base`` is ``"auto"``,
    0 or 1 for svmlight indices. ``extra_features``: what an svmlight index beyond the model's
    features does -- ``"error"`` (the default) or ``"ignore"`` (the default for RankLib models, also
    inside the ES LTR plugin: their width is the highest feature id they use, the rest is ignored).
    """
    p = os.fspath(path)
    if model is not None:
        n_features = model.n_features if n_features is None else n_features
        feature_names = model.feature_names if feature_names is None else feature_names
        absent = model.sparse_absent if absent is None else absent
    if n_features is None:
        raise TypeError("read_data needs a model or n_features")
    if extra_features is None:
        prov = model.provenance if model is not None else {}
        ranklib = prov.get("library") == "ranklib" or prov.get("model_type") == "model/ranklib"
        extra_features = "ignore" if ranklib else "error"
    if extra_features not in ("error", "ignore"):
        raise ValueError(f"extra_features must be 'error' or 'ignore', got {extra_features!r}")
    absent = absent or "zero"
    if not os.path.exists(p):
        raise _fail(p, "no such file")
    if os.path.isdir(p):
        raise _fail(p, "is a directory, not a data file")
    kind = sniff_format(p) if fmt == "auto" else fmt
    if kind == "svmlight":
        return _read_svmlight(p, n_features, absent, index_base, extra_features == "ignore")
    if kind == "csv":
        return _read_csv(p, n_features, feature_names)
    if kind == "npy":
        return _read_npy(p, n_features)
    raise ValueError(f"unknown data format {fmt!r}; known: {', '.join(DATA_FORMATS)}")


# ---------------------------------------------------------------------------- svmlight / LETOR
def _read_svmlight(
    path: str, n_features: int, absent: str, index_base: str | int, ignore_extra: bool
) -> DataSet:
    labels: list[float] = []
    qids: list[int] = []
    lines: list[int] = []
    row_ptr = [0]
    cols: list[int] = []
    vals: list[float] = []
    seen_qid = None
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise _fail(path, f"cannot read the data file: {exc.strerror or exc}") from exc
    with fh:
        try:
            for lineno, raw in enumerate(fh, 1):
                body = raw.split("#", 1)[0].split()
                if not body:
                    continue
                try:
                    labels.append(float(body[0]))
                except ValueError:
                    raise _fail(
                        path, f"the label {body[0]!r} is not a number (svmlight/LETOR row)", lineno
                    ) from None
                toks = body[1:]
                has_qid = bool(toks) and toks[0].startswith("qid:")
                if seen_qid is None:
                    seen_qid = has_qid
                elif has_qid != seen_qid:
                    raise _fail(path, "some rows have qid: and some do not", lineno)
                if has_qid:
                    try:
                        qids.append(int(toks[0][4:]))
                    except ValueError:
                        raise _fail(
                            path, f"query id {toks[0][4:]!r} is not an integer", lineno
                        ) from None
                    toks = toks[1:]
                start = len(cols)
                for tok in toks:
                    idx, sep, val = tok.partition(":")
                    if not sep:
                        raise _fail(path, f"expected index:value, got {tok!r}", lineno)
                    try:
                        j = int(idx)
                        v = float(val)
                    except ValueError:
                        if idx == "qid":
                            raise _fail(path, "qid: must come right after the label", lineno) from None
                        raise _fail(path, f"expected index:value, got {tok!r}", lineno) from None
                    if j < 0:
                        raise _fail(path, f"negative feature index {j}", lineno)
                    cols.append(j)
                    vals.append(v)
                if len(set(cols[start:])) != len(cols) - start:
                    raise _fail(path, "a feature index appears twice in the row", lineno)
                row_ptr.append(len(cols))
                lines.append(lineno)
        except UnicodeDecodeError as exc:
            raise _fail(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not labels:
        raise _fail(path, "the data file holds no rows")
    c = np.asarray(cols, np.int64)
    base = index_base
    if base == "auto":
        base = 0 if c.size and c.min() == 0 else 1
    base = int(base)
    if base not in (0, 1):
        raise ValueError(f"index_base must be 'auto', 0 or 1, got {index_base!r}")
    n = len(labels)
    rows_of = np.repeat(np.arange(n), np.diff(np.asarray(row_ptr, np.int64)))  # entry -> row
    if base == 1 and c.size and c.min() == 0:
        k = int(np.argmax(c == 0))
        raise _fail(path, "feature index 0 in a file read with 1-based indices", lines[rows_of[k]])
    c -= base
    vals_arr = np.asarray(vals, np.float64)
    bad = np.flatnonzero(c >= n_features)
    ignored = 0
    if bad.size and ignore_extra:
        keep = c < n_features
        ignored = int(np.unique(c[~keep]).size)
        c, vals_arr, rows_of = c[keep], vals_arr[keep], rows_of[keep]
    elif bad.size:
        k = int(bad[0])
        raise _fail(
            path,
            f"feature index {int(c[k]) + base} is beyond the model's {n_features} features "
            f"(indices read {base}-based; the highest index in the file is {int(c.max()) + base})",
            lines[rows_of[k]],
        )
    X = np.full((n, n_features), np.nan if absent == "missing" else 0.0)
    X[rows_of, c] = vals_arr
    qid = np.asarray(qids, np.int64) if seen_qid else _query_file(path, n)
    return DataSet(
        path=path,
        format="svmlight",
        X=X,
        y=np.asarray(labels, np.float64),
        qid=qid,
        lines=np.asarray(lines, np.int64),
        ignored_features=ignored,
    )


def _query_file(path: str, n_rows: int) -> np.ndarray | None:
    """Query ids 1, 2, ... from LightGBM's ``FILE.query`` group sizes, when that file exists."""
    qpath = path + ".query"
    if not os.path.exists(qpath):
        return None
    sizes: list[int] = []
    with open(qpath, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            s = raw.strip()
            if not s:
                continue
            try:
                k = int(s)
            except ValueError:
                raise _fail(qpath, f"group size {s!r} is not an integer", lineno) from None
            if k < 0:
                raise _fail(qpath, f"negative group size {k}", lineno)
            sizes.append(k)
    if sum(sizes) != n_rows:
        raise _fail(
            qpath, f"the group sizes add up to {sum(sizes)} rows but {path} holds {n_rows} rows"
        )
    return np.repeat(np.arange(1, len(sizes) + 1, dtype=np.int64), sizes)


# ---------------------------------------------------------------------------- CSV
def _cell(text: str, path: str, line: int, column: str) -> float:
    s = text.strip()
    if s.lower() in _MISSING_CELLS:
        return np.nan
    try:
        return float(s)
    except ValueError:
        raise _fail(path, f"column {column!r}: {text!r} is not a number", line) from None


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return s.strip().lower() in _MISSING_CELLS - {""}
    return True


def _read_csv(path: str, n_features: int, feature_names: list[str] | None) -> DataSet:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except OSError as exc:
        raise _fail(path, f"cannot read the data file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    first = text.split("\n", 1)[0]
    delim = "\t" if path.lower().endswith(".tsv") or ("\t" in first and "," not in first) else ","
    reader = csv.reader(text.splitlines(), delimiter=delim)
    records: list[tuple[int, list[str]]] = [
        (i, r) for i, r in enumerate(reader, 1) if r and any(c.strip() for c in r)
    ]
    if not records:
        raise _fail(path, "the data file is empty")
    header_line, header = records[0]
    if all(_is_number(c) for c in header):
        # no header: every column is a feature, in model order
        names = [f"column {j + 1}" for j in range(len(header))]
        body = records
        has_header = False
    else:
        names = [c.strip() for c in header]
        body = records[1:]
        has_header = True
        dup = sorted({c for c in names if names.count(c) > 1})
        if dup:
            raise _fail(path, f"duplicate column names in the header: {dup}", header_line)
    if not body:
        raise _fail(path, "the data file has a header but no rows")
    width = len(names)
    for line, r in body:
        if len(r) != width:
            raise _fail(path, f"{len(r)} fields, but the header has {width}", line)

    lower = [c.lower() for c in names]
    model_names = set(feature_names or [])

    def meta(candidates: tuple[str, ...]) -> int | None:
        if not has_header:
            return None
        for c in candidates:
            if c in lower and names[lower.index(c)] not in model_names:
                return lower.index(c)
        return None

    label_col, qid_col, id_col = meta(LABEL_COLUMNS), meta(QID_COLUMNS), meta(ID_COLUMNS)
    meta_cols = {c for c in (label_col, qid_col, id_col) if c is not None}
    data_cols = [j for j in range(width) if j not in meta_cols]
    binding = "position"
    real_names = feature_names is not None and not all(
        _PLACEHOLDER.match(n) for n in feature_names
    )
    if has_header and feature_names is not None and set(feature_names) <= set(names):
        order = [names.index(n) for n in feature_names]
        extra = [names[j] for j in data_cols if names[j] not in model_names]
        if extra:
            raise _fail(
                path,
                f"columns that are not model features: {extra[:10]} (the model's features are "
                "bound by name; remove these columns or name them label/qid/doc_id)",
                header_line,
            )
        binding = "name"
    elif has_header and real_names:
        assert feature_names is not None
        missing = [n for n in feature_names if n not in names]
        raise _fail(
            path,
            f"{len(missing)} of the model's {len(feature_names)} features have no column: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}",
            header_line,
        )
    else:
        if len(data_cols) != n_features:
            raise _fail(
                path,
                f"{len(data_cols)} feature columns but the model expects {n_features}"
                + (f" (label/qid/id columns found: {[names[j] for j in sorted(meta_cols)]})" if meta_cols else ""),
                header_line,
            )
        order = data_cols
    n = len(body)
    X = np.empty((n, n_features), np.float64)
    for i, (line, r) in enumerate(body):
        for k, j in enumerate(order):
            X[i, k] = _cell(r[j], path, line, names[j])
    y = None
    if label_col is not None:
        y = np.array([_cell(r[label_col], path, line, names[label_col]) for line, r in body])
    qid = None
    if qid_col is not None:
        raw = [r[qid_col].strip() for _, r in body]
        try:
            qid = np.array([int(s) for s in raw], np.int64)
        except ValueError:
            qid = np.array(raw, dtype=object)
    ids = None if id_col is None else np.array([r[id_col].strip() for _, r in body], dtype=object)
    return DataSet(
        path=path,
        format="csv",
        X=X,
        y=y,
        qid=qid,
        ids=ids,
        lines=np.array([line for line, _ in body], np.int64),
        binding=binding,
    )


# ---------------------------------------------------------------------------- .npy
def _read_npy(path: str, n_features: int) -> DataSet:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise _fail(path, f"not a plain numeric .npy array ({exc})") from None
    except OSError as exc:
        raise _fail(path, f"cannot read the .npy file: {exc.strerror or exc}") from None
    if not isinstance(arr, np.ndarray):
        raise _fail(path, "expected one array (.npy), got an archive")
    if arr.dtype.kind not in "biuf":
        raise _fail(path, f"the array holds {arr.dtype} values; expected numbers")
    if arr.ndim != 2:
        raise _fail(path, f"expected a 2-D array (rows, {n_features}); got shape {arr.shape}")
    if arr.shape[1] != n_features:
        raise _fail(path, f"{arr.shape[1]} feature columns but the model expects {n_features}")
    return DataSet(path=path, format="npy", X=arr)
