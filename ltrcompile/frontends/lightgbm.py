"""LightGBM frontend: text model files, ``Booster.dump_model()`` JSON, in-memory boosters.

Both file formats are first read into the same raw per-tree arrays in LightGBM's own terms
(``split_feature``, ``threshold``, ``decision_type``, ``left_child``/``right_child`` with ``~leaf``
for leaves, ``leaf_value``, category sets, linear-leaf terms), which one function then checks and
turns into the IR. The semantics follow LightGBM's ``GBDT::PredictRaw`` / ``Tree::Predict``
(``shared/docs/formats-xgboost-lightgbm.md`` section B):

* node numbering: internal node ``i`` -> ``i``, leaf ``j`` -> ``num_leaves - 1 + j``; ``leaf_id`` is
  LightGBM's leaf index ``j`` (what ``predict(pred_leaf=True)`` returns);
* ``x <= threshold`` in double; ``decision_type`` missing type None -> NaN reads as 0.0, Zero ->
  NaN/0/``|x| <= 1e-35f`` go the default way, NaN -> NaN goes the default way;
* categorical nodes: the stored bitset is the set sent LEFT, NaN and invalid codes go right;
* trees add in double from 0 (the intercept is inside the first trees' leaves), tree ``t`` adds to
  output ``t % num_tree_per_iteration``; ``average_output`` (random forest) divides the transformed
  prediction, not ``raw_score``, by the number of iterations used;
* non-float numpy input is cast to float32 first (LightGBM's Python package does so).

Numbers are parsed the way LightGBM parses them: thresholds, leaf values and linear coefficients
are correctly rounded (Python ``float``), while the objective's ``sigmoid:`` parameter goes through
LightGBM's own hand-written ``Common::Atof``, reproduced here bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import limits
from ..errors import IRValidationError, ModelFormatError, UnsupportedModelError
from ..ir import LIGHTGBM_ZERO_BAND, Ensemble, Missing, Op, TreeArrays

KNOWN_VERSIONS = ("v2", "v3", "v4")
#: LightGBM's own bound on ``num_leaves`` (config.h: ``check = <=131072``)
MAX_NUM_LEAVES = 131072
#: sanity bounds that keep a corrupted header from allocating absurd arrays
MAX_OUTPUTS = 1 << 16
MAX_FEATURE_IDX = (1 << 31) - 2

_INT = r"[+-]?\d+"
# what C strtod/fast_double_parser accept in LightGBM-written files (no hex floats, no "_")
_FLOAT = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
_INT_RE = re.compile(_INT + r"\Z")
_FLOAT_RE = re.compile(_FLOAT + r"\Z")
# a whole space-separated line of them (one regex per line, not per token)
_INT_LINE = re.compile(rf"\s*(?:{_INT}(?:\s+{_INT})*)?\s*\Z")
_LONG_DIGITS = re.compile(r"\d{19}")  # beyond int64
_FLOAT_LINE = re.compile(rf"\s*(?:{_FLOAT}(?:\s+{_FLOAT})*)?\s*\Z")

#: decision_type missing-type bits -> IR policy for numerical nodes
_MISSING_POLICY = {0: Missing.NAN_AS_ZERO, 1: Missing.ZERO_NAN_DEFAULT, 2: Missing.NAN_DEFAULT}
_MISSING_LOOKUP = np.array([_MISSING_POLICY[k] for k in range(3)] + [0], np.uint8)
_MISSING_NAMES = {"None": 0, "Zero": 1, "NaN": 2}

# objective names as LightGBM's ParseObjectiveAlias maps them (applied to the whole line)
_OBJECTIVE_ALIASES = {
    **dict.fromkeys(
        ["regression_l2", "mean_squared_error", "mse", "l2", "l2_root", "root_mean_squared_error", "rmse"],
        "regression",
    ),
    **dict.fromkeys(["mean_absolute_error", "l1", "mae"], "regression_l1"),
    "softmax": "multiclass",
    **dict.fromkeys(["multiclass_ova", "ova", "ovr"], "multiclassova"),
    "xentropy": "cross_entropy",
    "xentlambda": "cross_entropy_lambda",
    "mean_absolute_percentage_error": "mape",
    **dict.fromkeys(["xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart"], "rank_xendcg"),
    **dict.fromkeys(["none", "null", "na"], "custom"),
}
_SQRT_FAMILY = ("regression", "regression_l1", "quantile", "fair", "mape")
_EXP_FAMILY = ("poisson", "gamma", "tweedie")
_IDENTITY_FAMILY = ("huber", "lambdarank", "rank_xendcg")


# ============================================================================ raw model
@dataclass
class _RawTree:
    """One tree in LightGBM's own array layout (after parsing, before any checking)."""

    num_leaves: int
    split_feature: np.ndarray  # int64 (L-1)
    threshold: np.ndarray  # float64 (L-1); categorical nodes: index into cat_boundaries
    decision_type: np.ndarray  # int64 (L-1)
    left_child: np.ndarray  # int64 (L-1)
    right_child: np.ndarray  # int64 (L-1)
    leaf_value: np.ndarray  # float64 (L)
    cat_sets: dict[int, np.ndarray] = field(default_factory=dict)  # internal node -> LEFT set
    # per leaf (const, features, coeffs) for linear trees
    linear: list[tuple[float, np.ndarray, np.ndarray]] | None = None
    # internal_count then leaf_count: the data counts LightGBM's TreeSHAP splits by (data_count())
    cover: np.ndarray | None = None


@dataclass
class _RawModel:
    version: str | None
    num_class: int
    num_tree_per_iteration: int
    max_feature_idx: int
    objective: str | None
    average_output: bool
    feature_names: list[str] | None
    trees: list[_RawTree]
    pandas_categorical: list[Any] | None = None
    categorical_features: list[int] | None = None
    parameters: dict[str, str] = field(default_factory=dict)


# ============================================================================ number parsing
def _pow(base: float, power: int) -> float:
    """LightGBM ``Common::Pow`` (recursive squaring/cubing, double)."""
    if power < 0:
        return 1.0 / _pow(base, -power)
    if power == 0:
        return 1.0
    if power % 2 == 0:
        return _pow(base * base, power // 2)
    if power % 3 == 0:
        return _pow(base * base * base, power // 3)
    return base * _pow(base, power - 1)


def lgb_atof(text: str) -> float:
    """LightGBM's legacy ``Common::Atof`` (not correctly rounded), for ``sigmoid:`` and friends.

    Raises ``ValueError`` where LightGBM would stop with "Unknown token", or when characters are
    left over (LightGBM ignores them; here a corrupted token is an error).
    """
    p = text.lstrip(" ")
    sign = 1.0
    if p[:1] == "-":
        sign, p = -1.0, p[1:]
    elif p[:1] == "+":
        p = p[1:]
    if p[:1].isdigit() or p[:1] in (".", "e", "E"):
        i, n = 0, len(p)
        value = 0.0
        while i < n and "0" <= p[i] <= "9":
            value = value * 10.0 + float(ord(p[i]) - 48)
            i += 1
        if i < n and p[i] == ".":
            right, nn = 0.0, 0
            i += 1
            while i < n and "0" <= p[i] <= "9":
                right = float(ord(p[i]) - 48) + right * 10.0
                nn += 1
                i += 1
            value += right / _pow(10.0, nn)
        frac, scale = False, 1.0
        if i < n and p[i] in "eE":
            i += 1
            if i < n and p[i] == "-":
                frac = True
                i += 1
            elif i < n and p[i] == "+":
                i += 1
            expon = 0
            while i < n and "0" <= p[i] <= "9":
                expon = (expon * 10 + ord(p[i]) - 48) & 0xFFFFFFFF
                i += 1
            expon = min(expon, 308)
            while expon >= 50:
                scale *= 1e50
                expon -= 50
            while expon >= 8:
                scale *= 1e8
                expon -= 8
            while expon > 0:
                scale *= 10.0
                expon -= 1
        out = sign * (value / scale if frac else value * scale)
        rest = p[i:]
    else:
        m = re.match(r"[^ \t,\n\r:]*", p)
        token = m.group(0) if m else ""
        low = token.lower()
        if low in ("na", "nan", "null"):
            out = math.nan
        elif low in ("inf", "infinity"):
            out = sign * 1e308
        else:
            raise ValueError(f"unknown token {token!r}")
        rest = p[len(token) :]
    if rest.strip(" "):
        raise ValueError(f"unexpected characters {rest!r}")
    return out


def _parse_int(tok: str) -> int:
    if not _INT_RE.match(tok):
        raise ValueError(f"{tok!r} is not an integer")
    return int(tok)


# ============================================================================ text format
class _TextReader:
    """Parses ``model_to_string()`` / ``save_model`` output into a :class:`_RawModel`."""

    def __init__(self, text: str, path: str | None) -> None:
        self.path = path
        self.size = len(text)  # characters of model text: the size limits scale with it
        self.nodes = 0  # nodes declared so far, all trees together
        self.lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    def fail(self, msg: str, **where: Any) -> ModelFormatError:
        return ModelFormatError(msg, path=self.path, **where)

    # ---------------------------------------------------------------- header
    def read(self) -> _RawModel:
        lines = self.lines
        i = 0
        header: dict[str, str] = {}
        while i < len(lines):
            line = lines[i]
            if line.startswith("Tree=") or line == "end of trees":
                break
            if line:
                key, eq, value = line.partition("=")
                if eq and "=" in value and key not in ("feature_names", "monotone_constraints"):
                    raise self.fail(f"line {i + 1}: more than one '=' in a header line", field=key)
                if key in header:
                    raise self.fail(f"line {i + 1}: header key given twice", field=key)
                header[key] = value
            i += 1
        if not header:
            raise self.fail("not a LightGBM text model (empty header)")
        version = header.get("version")
        if version is not None and not re.fullmatch(r"v\d+", version):
            raise self.fail(f"malformed version {version[:20]!r}", field="version")
        if version is not None and version not in KNOWN_VERSIONS:
            raise UnsupportedModelError(
                f"LightGBM model format {version!r} is not supported (known: {', '.join(KNOWN_VERSIONS)})",
                path=self.path,
                field="version",
            )
        for key in ("num_class", "label_index", "max_feature_idx", "feature_names", "feature_infos"):
            if key not in header:
                raise self.fail("required header key is missing (truncated or not a LightGBM model?)", field=key)
        num_class = self.header_int(header, "num_class", 1, MAX_OUTPUTS)
        ntpi = (
            self.header_int(header, "num_tree_per_iteration", 1, MAX_OUTPUTS)
            if "num_tree_per_iteration" in header
            else num_class
        )
        max_feature_idx = self.header_int(header, "max_feature_idx", 0, MAX_FEATURE_IDX)
        self.header_int(header, "label_index", 0, MAX_FEATURE_IDX)
        n_features = max_feature_idx + 1
        limits.check_features(n_features, self.size, path=self.path, field="max_feature_idx")
        names = header["feature_names"].split()
        if len(names) != n_features:
            raise self.fail(
                f"{len(names)} feature names for max_feature_idx={max_feature_idx}", field="feature_names"
            )
        infos = header["feature_infos"].split()
        if len(infos) != n_features:
            raise self.fail(f"{len(infos)} entries for {n_features} features", field="feature_infos")
        objective = header.get("objective")
        if objective is not None and not objective.strip():
            raise self.fail("empty objective", field="objective")
        if "tree_sizes" in header:
            try:
                sizes = [_parse_int(t) for t in header["tree_sizes"].split()]
            except ValueError as exc:
                raise self.fail(str(exc), field="tree_sizes") from None
        else:
            sizes = None

        # LightGBM 2.0.x wrote neither ``version`` nor ``tree_sizes`` nor ``end of trees``
        trees, i = self.read_trees(i, needs_end="tree_sizes" in header or "version" in header)
        if sizes is not None and len(sizes) != len(trees):
            raise self.fail(
                f"tree_sizes lists {len(sizes)} trees but the file holds {len(trees)}", field="tree_sizes"
            )
        params, i = self.read_parameters(i)
        cat_feats = _categorical_from_params(params.get("categorical_feature"))
        if cat_feats is None:
            cat_feats = [j for j, s in enumerate(infos) if s != "none" and not s.startswith("[")]
        return _RawModel(
            version=version,
            num_class=num_class,
            num_tree_per_iteration=ntpi,
            max_feature_idx=max_feature_idx,
            objective=objective,
            average_output="average_output" in header,
            feature_names=names,
            trees=trees,
            pandas_categorical=self.read_pandas_categorical(),
            categorical_features=cat_feats,
            parameters=params,
        )

    def header_int(self, header: dict[str, str], key: str, minimum: int, maximum: int) -> int:
        try:
            v = _parse_int(header[key].strip())
        except ValueError as exc:
            raise self.fail(str(exc), field=key) from None
        if not minimum <= v <= maximum:
            raise self.fail(f"must lie in [{minimum}, {maximum}], got {v}", field=key)
        return v

    # ---------------------------------------------------------------- trees
    def read_trees(self, i: int, needs_end: bool) -> tuple[list[_RawTree], int]:
        """The ``Tree=`` blocks from line ``i``. Files with ``version`` or ``tree_sizes`` (every
        writer since 2.1) end the list with ``end of trees``, so a truncated file is caught; without
        them (LightGBM 2.0.x, which wrote no ``end of trees``) the list ends, as in LightGBM's loader, at the end of the file or at the
        first non-empty line that is not ``Tree=`` (2.0.x writes ``feature importances:`` there)."""
        lines = self.lines
        trees: list[_RawTree] = []
        while True:
            while i < len(lines) and not lines[i]:
                i += 1
            if i >= len(lines):
                if not needs_end:
                    return trees, i
                raise self.fail(
                    f"file ends after {len(trees)} trees without 'end of trees' (truncated?)"
                )
            line = lines[i]
            if line == "end of trees":
                return trees, i + 1
            if not needs_end and not line.startswith("Tree="):
                return trees, i
            if not line.startswith("Tree="):
                raise self.fail(f"line {i + 1}: expected 'Tree=' or 'end of trees', found {line[:60]!r}")
            t = len(trees)
            try:
                idx = _parse_int(line[5:])
            except ValueError:
                raise self.fail(f"line {i + 1}: bad tree header {line[:60]!r}", tree=t) from None
            if idx != t:
                raise self.fail(f"tree block says Tree={idx} at position {t}", tree=t, field="Tree")
            i += 1
            block: dict[str, str] = {}
            while i < len(lines) and lines[i] and not lines[i].startswith("Tree=") and lines[i] != "end of trees":
                key, eq, value = lines[i].partition("=")
                if not eq:
                    raise self.fail(f"line {i + 1}: expected key=value, found {lines[i][:60]!r}", tree=t)
                if key in block:
                    raise self.fail(f"line {i + 1}: key given twice", tree=t, field=key)
                block[key] = value
                i += 1
            trees.append(self.tree(block, t))

    def tree(self, kv: dict[str, str], t: int) -> _RawTree:
        def need(key: str) -> str:
            if key not in kv:
                raise self.fail("missing field (truncated file?)", tree=t, field=key)
            return kv[key]

        def ints(key: str, n: int) -> np.ndarray:
            line = need(key)
            toks = line.split()
            if len(toks) != n:
                raise self.fail(f"expected {n} values, found {len(toks)}", tree=t, field=key)
            if not _INT_LINE.match(line):
                bad = next(x for x in toks if not _INT_RE.match(x))
                raise self.fail(f"{bad[:30]!r} is not an integer", tree=t, field=key)
            if _LONG_DIGITS.search(line):
                raise self.fail("integer out of range", tree=t, field=key)
            return np.fromiter(map(int, toks), np.int64, n)

        def floats(key: str, n: int, stod: bool = False) -> np.ndarray:
            line = need(key)
            toks = line.split()
            if len(toks) != n:
                raise self.fail(f"expected {n} values, found {len(toks)}", tree=t, field=key)
            if not _FLOAT_LINE.match(line):
                bad = next(x for x in toks if not _FLOAT_RE.match(x))
                raise self.fail(f"{bad[:30]!r} is not a number", tree=t, field=key)
            out = np.fromiter(map(float, toks), np.float64, n)
            if stod:  # std::stod throws out_of_range on underflow/overflow: LightGBM refuses the file
                tiny = (out != 0) & (np.abs(out) < np.finfo(np.float64).tiny)
                huge = np.isinf(out) & ~np.array([x.lstrip("+-")[:1].isalpha() for x in toks], bool)
                bad = np.flatnonzero(tiny | huge)
                if bad.size:
                    raise self.fail(
                        f"{toks[bad[0]]!r} is out of double range (LightGBM's std::stod rejects it)",
                        tree=t,
                        field=key,
                    )
            return out

        (num_leaves,) = ints("num_leaves", 1)
        (num_cat,) = ints("num_cat", 1)
        if num_leaves < 1:
            raise self.fail(f"num_leaves must be >= 1, got {num_leaves}", tree=t, field="num_leaves")
        if num_leaves > MAX_NUM_LEAVES:
            raise self.fail(f"num_leaves {num_leaves} > {MAX_NUM_LEAVES} (LightGBM's limit)", tree=t, field="num_leaves")
        n_int = int(num_leaves) - 1
        self.nodes += 2 * n_int + 1
        limits.check_nodes(self.nodes, self.size, path=self.path, tree=t, field="num_leaves",
                           what="node count (this tree and those before it)")
        if not 0 <= num_cat <= n_int:
            raise self.fail(f"num_cat={num_cat} outside [0, {n_int}]", tree=t, field="num_cat")
        is_linear = False
        if "is_linear" in kv:
            (lin,) = ints("is_linear", 1)
            if lin not in (0, 1):
                raise self.fail(f"must be 0 or 1, got {lin}", tree=t, field="is_linear")
            is_linear = bool(lin)
        tree = _RawTree(
            num_leaves=int(num_leaves),
            split_feature=ints("split_feature", n_int),
            threshold=floats("threshold", n_int),
            decision_type=ints("decision_type", n_int) if "decision_type" in kv else np.zeros(n_int, np.int64),
            left_child=ints("left_child", n_int),
            right_child=ints("right_child", n_int),
            leaf_value=floats("leaf_value", int(num_leaves)),
        )
        if "leaf_count" in kv and (n_int == 0 or "internal_count" in kv):
            counts = [ints("internal_count", n_int)] if n_int else []
            tree.cover = np.concatenate(counts + [ints("leaf_count", int(num_leaves))]).astype(np.float64)
            if tree.cover.min() < 0:
                raise self.fail("data counts must be >= 0", tree=t, field="leaf_count/internal_count")
        if num_cat > 0:
            bounds = ints("cat_boundaries", int(num_cat) + 1)
            if bounds[0] < 0 or np.any(np.diff(bounds) < 0):
                raise self.fail("must be non-negative and non-decreasing", tree=t, field="cat_boundaries")
            limits.check_bitset_words(int(bounds[-1]), self.size, path=self.path, tree=t, field="cat_boundaries")
            words = ints("cat_threshold", int(bounds[-1]))
            if words.size and (words.min() < 0 or words.max() > 0xFFFFFFFF):
                raise self.fail("bitset words must be 32-bit unsigned", tree=t, field="cat_threshold")
            dt = tree.decision_type
            for node in np.flatnonzero(dt & 1):
                ci = tree.threshold[node]
                if not (math.isfinite(ci) and ci == int(ci) and 0 <= ci < num_cat):
                    raise self.fail(
                        f"categorical split refers to category set {ci!r}, outside [0, {num_cat})",
                        tree=t,
                        node=int(node),
                        field="threshold",
                    )
                k = int(ci)
                tree.cat_sets[int(node)] = _bitset_codes(words[bounds[k] : bounds[k + 1]])
        elif np.any(tree.decision_type & 1):
            node = int(np.flatnonzero(tree.decision_type & 1)[0])
            raise self.fail("categorical split in a tree with num_cat=0", tree=t, node=node, field="decision_type")
        if is_linear:
            L = int(num_leaves)
            const = floats("leaf_const", L, stod=True)
            nfeat = ints("num_features", L)
            if nfeat.min() < 0:
                raise self.fail("negative count", tree=t, field="num_features")
            total = int(nfeat.sum())
            feats = ints("leaf_features", total)
            coefs = floats("leaf_coeff", total, stod=True)
            ends = np.cumsum(nfeat)
            tree.linear = [
                (float(const[j]), feats[ends[j] - nfeat[j] : ends[j]], coefs[ends[j] - nfeat[j] : ends[j]])
                for j in range(L)
            ]
        return tree

    # ---------------------------------------------------------------- after the trees
    def read_parameters(self, i: int) -> tuple[dict[str, str], int]:
        lines = self.lines
        start = None
        for j in range(i, len(lines)):
            if lines[j] == "parameters:":
                start = j
                break
        if start is None:
            return {}, i
        params: dict[str, str] = {}
        for j in range(start + 1, len(lines)):
            line = lines[j]
            if line == "end of parameters":
                return params, j + 1
            if line.startswith("[") and line.endswith("]") and ": " in line:
                key, _, value = line[1:-1].partition(": ")
                params[key] = value
        raise self.fail("'parameters:' block without 'end of parameters' (truncated file?)")

    def read_pandas_categorical(self) -> list[Any] | None:
        lines = self.lines[:-1] if self.lines and self.lines[-1] == "" else self.lines
        key = "pandas_categorical:"
        for line in lines[-2:][::-1]:
            s = line.strip()
            if s.startswith(key):
                try:
                    value = json.loads(s[len(key) :])
                except (ValueError, RecursionError) as exc:  # also an integer beyond 4300 digits
                    raise self.fail(f"invalid JSON: {exc}", field="pandas_categorical") from None
                return _check_pandas_categorical(value, self.path)
        return None


def _categorical_from_params(value: str | None) -> list[int] | None:
    """``[categorical_feature: 1,4]`` -> [1, 4]; None when absent or not plain indices."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return []
    try:
        return sorted({_parse_int(v.strip()) for v in value.split(",")})
    except ValueError:
        return None  # names ("name:c1,c2"): fall back to feature_infos


def _check_pandas_categorical(value: Any, path: str | None) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
        raise ModelFormatError("must be null or a list of category lists", path=path, field="pandas_categorical")
    return value


def _bitset_codes(words: np.ndarray) -> np.ndarray:
    """Category codes whose bit is set in LSB-first 32-bit words."""
    if words.size == 0:
        return np.zeros(0, np.int64)
    bits = np.unpackbits(words.astype("<u4").view(np.uint8), bitorder="little")
    return np.flatnonzero(bits).astype(np.int64)


# ============================================================================ dump_model JSON
def _read_dump(d: Any, path: str | None, size: int | None = None) -> _RawModel:
    def fail(msg: str, **where: Any) -> ModelFormatError:
        return ModelFormatError(msg, path=path, **where)

    if not isinstance(d, dict):
        raise fail("the document is not a JSON object")

    def get_int(key: str, minimum: int, maximum: int, default: int | None = None) -> int:
        if key not in d:
            if default is not None:
                return default
            raise fail("required key is missing", field=key)
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= maximum:
            raise fail(f"must be an integer in [{minimum}, {maximum}], got {v!r}", field=key)
        return v

    version = d.get("version")
    if version is not None and version not in KNOWN_VERSIONS:
        raise UnsupportedModelError(
            f"LightGBM model format {version!r} is not supported (known: {', '.join(KNOWN_VERSIONS)})",
            path=path,
            field="version",
        )
    num_class = get_int("num_class", 1, MAX_OUTPUTS)
    ntpi = get_int("num_tree_per_iteration", 1, MAX_OUTPUTS, default=num_class)
    max_feature_idx = get_int("max_feature_idx", 0, MAX_FEATURE_IDX)
    n_features = max_feature_idx + 1
    limits.check_features(n_features, size, path=path, field="max_feature_idx")
    names = d.get("feature_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            raise fail("must be a list of strings", field="feature_names")
        if len(names) != n_features:
            raise fail(f"{len(names)} feature names for max_feature_idx={max_feature_idx}", field="feature_names")
    objective = d.get("objective")
    if objective is not None and (not isinstance(objective, str) or not objective.strip()):
        raise fail(f"must be a non-empty string, got {objective!r}", field="objective")
    average = d.get("average_output", False)
    if not isinstance(average, bool):
        raise fail("must be true or false", field="average_output")
    info = d.get("tree_info")
    if not isinstance(info, list):
        raise fail("required list is missing", field="tree_info")
    limits.check_trees(len(info), size, path=path, field="tree_info")
    declared = [0]  # nodes declared so far, all trees together
    trees = [_dump_tree(entry, t, path, size, declared) for t, entry in enumerate(info)]
    cat_feats: list[int] | None = None
    infos = d.get("feature_infos")
    if isinstance(infos, dict) and names is not None:
        pos = {n: j for j, n in enumerate(names)}
        cat_feats = sorted(
            pos[k] for k, v in infos.items() if k in pos and isinstance(v, dict) and v.get("values")
        )
    return _RawModel(
        version=version,
        num_class=num_class,
        num_tree_per_iteration=ntpi,
        max_feature_idx=max_feature_idx,
        objective=objective,
        average_output=average,
        feature_names=names,
        trees=trees,
        pandas_categorical=_check_pandas_categorical(d.get("pandas_categorical"), path),
        categorical_features=cat_feats,
    )


def _dump_tree(entry: Any, t: int, path: str | None, size: int | None = None, declared: list[int] | None = None) -> _RawTree:
    def fail(msg: str, node: int | None = None, field: str | None = None) -> ModelFormatError:
        return ModelFormatError(msg, path=path, tree=t, node=node, field=field)

    if not isinstance(entry, dict) or not isinstance(entry.get("tree_structure"), dict):
        raise fail("tree_info entry without a tree_structure object", field="tree_structure")
    L = entry.get("num_leaves")
    if isinstance(L, bool) or not isinstance(L, int) or not 1 <= L <= MAX_NUM_LEAVES:
        raise fail(f"must be an integer in [1, {MAX_NUM_LEAVES}], got {L!r}", field="num_leaves")
    n_int = L - 1
    if declared is not None:  # checked before the arrays are allocated from num_leaves
        declared[0] += 2 * n_int + 1
        limits.check_nodes(declared[0], size, path=path, tree=t, field="num_leaves",
                           what="node count (this tree and those before it)")
    feat = np.full(n_int, -1, np.int64)
    thr = np.zeros(n_int, np.float64)
    dt = np.zeros(n_int, np.int64)
    lc = np.zeros(n_int, np.int64)
    rc = np.zeros(n_int, np.int64)
    seen_int = np.zeros(n_int, bool)
    leaf_value = np.zeros(L, np.float64)
    seen_leaf = np.zeros(L, bool)
    linear: list[tuple[float, np.ndarray, np.ndarray] | None] = [None] * L
    cat_sets: dict[int, np.ndarray] = {}

    def number(node: dict[str, Any], key: str, where: int | None) -> float:
        v = node.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise fail(f"must be a number, got {v!r}", node=where, field=key)
        try:
            return float(v)
        except OverflowError:
            raise fail("number out of double range", node=where, field=key) from None

    counts = np.zeros(n_int + L, np.float64)  # NaN where a node has no count

    def count(node: dict[str, Any], key: str, where: int | None) -> float:
        v = node.get(key)
        if v is None:
            return math.nan
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63:
            raise fail(f"must be an integer in [0, 2**63), got {str(v)[:40]}", node=where, field=key)
        return float(v)

    def visit(node: Any) -> int:
        """Validate one node dict; returns its LightGBM child code (index or ~leaf)."""
        if not isinstance(node, dict):
            raise fail(f"tree node must be an object, got {type(node).__name__}")
        if "split_index" in node:
            i = node["split_index"]
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_int:
                raise fail(f"split_index {i!r} outside [0, {n_int})", field="split_index")
            if seen_int[i]:
                raise fail("split_index appears twice", node=i, field="split_index")
            seen_int[i] = True
            f = node.get("split_feature")
            if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < 1 << 31:
                raise fail(f"must be a feature index, got {f!r}", node=i, field="split_feature")
            feat[i] = f
            kind = node.get("decision_type")
            # dump_model writes both for every split: a document without them is read, not guessed
            if "missing_type" not in node or "default_left" not in node:
                absent = "missing_type" if "missing_type" not in node else "default_left"
                raise fail("split has no " + absent, node=i, field=absent)
            mt = node["missing_type"]
            if not isinstance(mt, str) or mt not in _MISSING_NAMES:
                raise fail(f"unknown missing_type {mt!r}", node=i, field="missing_type")
            dl = node["default_left"]
            if not isinstance(dl, bool):
                raise fail("must be true or false", node=i, field="default_left")
            code = (_MISSING_NAMES[mt] << 2) | (2 if dl else 0)
            if kind == "<=":
                v = number(node, "threshold", i)
                # dump_model clamps |threshold| >= 1e300 to 1e300 (AvoidInf); LightGBM's own
                # bins only ever put +-inf there, so read the clamp value back as infinity
                thr[i] = math.copysign(math.inf, v) if abs(v) == 1e300 else v
            elif kind == "==":
                code |= 1
                s = node.get("threshold")
                if isinstance(s, int) and not isinstance(s, bool):
                    s = str(s)
                if not isinstance(s, str):
                    raise fail(f"categorical threshold must be a string 'a||b', got {s!r}", node=i, field="threshold")
                try:
                    codes = [_parse_int(c) for c in s.split("||")] if s else []
                except ValueError as exc:
                    raise fail(str(exc), node=i, field="threshold") from None
                if any(c < 0 or c >= 1 << 31 for c in codes):
                    raise fail("category codes must lie in [0, 2**31)", node=i, field="threshold")
                cat_sets[i] = np.unique(np.array(codes, np.int64))
            else:
                raise fail(f"unknown decision_type {kind!r}", node=i, field="decision_type")
            dt[i] = code
            counts[i] = count(node, "internal_count", i)
            stack.append((i, "left_child", node.get("left_child")))
            stack.append((i, "right_child", node.get("right_child")))
            return i
        if "leaf_value" not in node:
            raise fail("node has neither split_index nor leaf_value", field="tree_structure")
        j = node.get("leaf_index", 0 if L == 1 else None)
        if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < L:
            raise fail(f"leaf_index {j!r} outside [0, {L})", field="leaf_index")
        if seen_leaf[j]:
            raise fail(f"leaf_index {j} appears twice", field="leaf_index")
        seen_leaf[j] = True
        leaf_value[j] = number(node, "leaf_value", None)
        counts[n_int + j] = count(node, "leaf_count", None)
        if "leaf_const" in node:
            const = number(node, "leaf_const", None)
            fs, cs = node.get("leaf_features", []), node.get("leaf_coeff", [])
            if (
                not isinstance(fs, list)
                or not isinstance(cs, list)
                or len(fs) != len(cs)
                or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 1 << 31 for x in fs)
                or not all(isinstance(x, int | float) and not isinstance(x, bool) and abs(x) <= sys.float_info.max for x in cs)
            ):
                raise fail(f"leaf {j}: leaf_features/leaf_coeff must be equal-length number lists", field="leaf_coeff")
            linear[j] = (const, np.array(fs, np.int64), np.array(cs, np.float64))
        return ~j

    stack: list[tuple[int, str, Any]] = []
    root = visit(entry["tree_structure"])
    if (root >= 0) != (n_int > 0) or (n_int > 0 and root != 0):
        raise fail(f"root must be split 0 (num_leaves={L})", field="tree_structure")
    while stack:
        parent, side, child = stack.pop()
        (lc if side == "left_child" else rc)[parent] = visit(child)
    if not seen_int.all():
        raise fail(f"split_index {int(np.flatnonzero(~seen_int)[0])} is missing", field="split_index")
    if not seen_leaf.all():
        raise fail(f"leaf_index {int(np.flatnonzero(~seen_leaf)[0])} is missing", field="leaf_index")
    has_linear = [x is not None for x in linear]
    if any(has_linear) and not all(has_linear):
        raise fail("some leaves are linear and others are not", field="leaf_const")
    return _RawTree(
        num_leaves=L,
        split_feature=feat,
        threshold=thr,
        decision_type=dt,
        left_child=lc,
        right_child=rc,
        leaf_value=leaf_value,
        cat_sets=cat_sets,
        linear=[x for x in linear if x is not None] if all(has_linear) else None,
        cover=None if np.isnan(counts).any() else counts,
    )


# ============================================================================ raw -> IR
def _tree_arrays(tree: _RawTree, t: int, n_features: int, path: str | None) -> TreeArrays:
    """Check one raw tree the way LightGBM walks it and build tree-local IR arrays."""

    def fail(msg: str, node: int | None = None, field: str | None = None) -> ModelFormatError:
        return ModelFormatError(msg, path=path, tree=t, node=node, field=field)

    L = tree.num_leaves
    n_int = L - 1
    n = n_int + L
    bad = np.flatnonzero(~np.isfinite(tree.leaf_value))
    if bad.size:
        raise UnsupportedModelError(
            f"leaf {int(bad[0])} has the non-finite value {tree.leaf_value[bad[0]]!r}",
            path=path,
            tree=t,
            field="leaf_value",
        )
    ta = TreeArrays.empty(n, op=Op.LE, missing=Missing.NAN_AS_ZERO)
    ta.cover = tree.cover
    ta.leaf_value[n_int:, 0] = tree.leaf_value
    ta.leaf_id[n_int:] = np.arange(L, dtype=np.int32)
    if n_int:
        f = tree.split_feature
        bad = np.flatnonzero((f < 0) | (f >= n_features))
        if bad.size:
            i = int(bad[0])
            raise fail(f"split feature {int(f[i])} outside [0, {n_features})", i, "split_feature")
        dt = tree.decision_type
        bad = np.flatnonzero((dt < 0) | (dt > 15) | (((dt >> 2) & 3) == 3))
        if bad.size:
            i = int(bad[0])
            raise fail(f"bad decision_type {int(dt[i])} (valid: 0..15, missing type 0-2)", i, "decision_type")
        is_cat = (dt & 1).astype(bool)
        thr = tree.threshold
        bad = np.flatnonzero(~is_cat & np.isnan(thr))
        if bad.size:
            raise fail("numerical split has a NaN threshold", int(bad[0]), "threshold")
        codes = []
        for side in ("left_child", "right_child"):
            c = getattr(tree, side)
            bad = np.flatnonzero((c >= n_int) | (c < -L) | (c == 0))
            if bad.size:
                i = int(bad[0])
                raise fail(f"child {int(c[i])} outside [-{L}, {n_int}) or pointing at the root", i, side)
            codes.append(np.where(c >= 0, c, n_int + ~c))
        left, right = codes
        indeg = np.bincount(np.concatenate([left, right]), minlength=n)
        bad = np.flatnonzero(indeg[1:] != 1)
        if bad.size:
            k = int(bad[0]) + 1
            what = f"internal node {k}" if k < n_int else f"leaf {k - n_int}"
            raise fail(f"{what} has {int(indeg[k])} parents (expected exactly 1)", field="left_child/right_child")
        reached = np.zeros(n, bool)
        frontier = np.array([0])
        while frontier.size:
            reached[frontier] = True
            frontier = frontier[frontier < n_int]
            frontier = np.concatenate([left[frontier], right[frontier]])
            frontier = frontier[~reached[frontier]]
        if not reached.all():
            k = int(np.flatnonzero(~reached)[0])
            raise fail("node not reachable from the root (cycle)", k if k < n_int else None, "left_child/right_child")
        ta.feature[:n_int] = f
        ta.threshold[:n_int] = np.where(is_cat, 0.0, thr)
        ta.left[:n_int] = left
        ta.right[:n_int] = right
        ta.default_left[:n_int] = (dt >> 1) & 1
        ta.missing[:n_int] = np.where(is_cat, Missing.NAN_FALSE, _MISSING_LOOKUP[(dt >> 2) & 3])
        ta.categorical[:n_int] = is_cat
        ta.cat_left[:n_int] = is_cat
        for node in np.flatnonzero(is_cat):
            codes_ = tree.cat_sets.get(int(node))
            if codes_ is None:
                raise fail("categorical split without a category set", int(node), "threshold")
            if codes_.size and codes_[-1] >= 1 << 31:
                raise fail("category codes must lie below 2**31", int(node), "cat_threshold")
            ta.cat_sets[int(node)] = codes_
    if tree.linear is not None:
        for j, (const, feats, coefs) in enumerate(tree.linear):
            if not math.isfinite(const) or not np.all(np.isfinite(coefs)):
                raise UnsupportedModelError(
                    f"leaf {j} has a non-finite linear constant or coefficient",
                    path=path,
                    tree=t,
                    field="leaf_const/leaf_coeff",
                )
            if feats.size and (feats.min() < 0 or feats.max() >= n_features):
                raise fail(f"leaf {j}: linear feature outside [0, {n_features})", field="leaf_features")
            ta.linear[n_int + j] = (const, feats.astype(np.int32), coefs)
    return ta


def _transform(objective: str | None, K: int, path: str | None) -> tuple[str, dict[str, Any], str | None]:
    """Objective line -> (transform, params, note), as ``ObjectiveFunction::ConvertOutput``."""
    if objective is None:
        return "identity", {}, "no objective in the model (trained with a custom objective): raw scores"
    line = _OBJECTIVE_ALIASES.get(objective, objective)
    toks = [s for s in line.split(" ") if s]
    kind = toks[0]
    kv = {}
    for s in toks[1:]:
        parts = [p for p in s.split(":") if p]
        if len(parts) == 2:
            kv[parts[0]] = parts[1]

    def fail(msg: str) -> ModelFormatError:
        return ModelFormatError(msg, path=path, field="objective")

    def single() -> None:
        if K != 1:
            raise fail(f"objective {kind!r} has one output but num_tree_per_iteration={K}")

    def sigmoid() -> float:
        if "sigmoid" not in kv:
            raise fail(f"objective {objective!r} has no sigmoid:<value>")
        try:
            a = lgb_atof(kv["sigmoid"])
        except ValueError as exc:
            raise fail(f"bad sigmoid value: {exc}") from None
        if not (math.isfinite(a) and a > 0):
            raise fail(f"sigmoid must be a finite number > 0, got {kv['sigmoid']!r}")
        return a

    def classes() -> None:
        try:
            k = _parse_int(kv.get("num_class", ""))
        except ValueError:
            raise fail(f"objective {objective!r} has no num_class:<int>") from None
        if k != K:
            raise fail(f"objective says num_class:{k} but num_tree_per_iteration={K}")

    if kind in _SQRT_FAMILY:
        single()
        return ("signed_square" if "sqrt" in toks[1:] else "identity"), {}, None
    if kind in _IDENTITY_FAMILY:
        single()
        return "identity", {}, None
    if kind in _EXP_FAMILY:
        single()
        return "exp", {}, None
    if kind == "binary":
        single()
        return "sigmoid", {"alpha": sigmoid()}, None
    if kind == "cross_entropy":
        single()
        return "sigmoid", {"alpha": 1.0}, None
    if kind == "cross_entropy_lambda":
        single()
        return "log1p_exp", {}, None
    if kind == "multiclass":
        classes()
        return "softmax", {}, None
    if kind == "multiclassova":
        classes()
        return "sigmoid", {"alpha": sigmoid()}, None
    if kind == "custom":
        return "identity", {}, "objective 'custom': LightGBM applies no output transform"
    raise UnsupportedModelError(f"unknown LightGBM objective {kind!r}", path=path, field="objective")


def _to_ensemble(
    raw: _RawModel,
    path: str | None,
    *,
    num_iteration: int | None = None,
    start_iteration: int = 0,
    feature_names: list[str] | None = None,
    category_features: list[int] | None = None,
    best_iteration: int | None = None,
    extra_provenance: dict[str, Any] | None = None,
    tree_selection: str | None = None,
) -> Ensemble:
    K = raw.num_tree_per_iteration
    n_features = raw.max_feature_idx + 1
    total_trees = len(raw.trees)
    if total_trees % K:
        raise ModelFormatError(
            f"{total_trees} trees is not a multiple of num_tree_per_iteration={K}",
            path=path,
            field="num_tree_per_iteration",
        )
    total = total_trees // K
    if isinstance(num_iteration, bool) or not isinstance(num_iteration, int | None):
        raise TypeError(f"num_iteration must be an int or None, got {num_iteration!r}")
    if isinstance(start_iteration, bool) or not isinstance(start_iteration, int):
        raise TypeError(f"start_iteration must be an int, got {start_iteration!r}")
    # GBDT::InitPredict
    start = min(max(start_iteration, 0), total)
    n_iter = total - start
    if num_iteration is not None and num_iteration > 0:
        n_iter = min(num_iteration, n_iter)
    if tree_selection is None:
        explicit = start > 0 or (num_iteration is not None and 0 < num_iteration < total)
        tree_selection = "iteration_range" if explicit else "all"
    transform, tparams, note = _transform(raw.objective, K, path)
    # every tree is checked, also those outside the chosen iterations: a corrupt file is an error
    all_trees = [_tree_arrays(tr, i, n_features, path) for i, tr in enumerate(raw.trees)]
    trees = all_trees[start * K : (start + n_iter) * K]

    names = raw.feature_names
    if feature_names is not None:
        names = [str(s) for s in feature_names]
        if len(names) != n_features:
            raise ValueError(f"feature_names has {len(names)} names; the model has {n_features} features")
    if names is not None and len(set(names)) != len(names):
        raise ModelFormatError("feature names are not unique", path=path, field="feature_names")

    feature_categories = None
    pc = raw.pandas_categorical
    if pc:
        feats = raw.categorical_features if category_features is None else [int(f) for f in category_features]
        if feats is None or len(feats) != len(pc):
            raise UnsupportedModelError(
                f"pandas_categorical has {len(pc)} category lists but the model has "
                f"{'unknown' if feats is None else len(feats)} categorical features, so the lists "
                "cannot be bound to columns (ordered or non-categorical pandas category columns?); "
                "pass category_features=[column index of each pandas category column, in order]",
                path=path,
                field="pandas_categorical",
            )
        if any(not 0 <= f < n_features for f in feats):
            raise ValueError(f"category_features {feats} outside [0, {n_features})")
        feature_categories = {int(f): list(labels) for f, labels in zip(feats, pc, strict=True)}

    notes = [note] if note else []
    if raw.average_output and n_iter == 0:
        notes.append("average_output model with no iterations selected: LightGBM would divide by 0")
    provenance: dict[str, Any] = {
        "library": "lightgbm",
        "model_version": raw.version,
        "objective": raw.objective,
        "iteration_range": (start, start + n_iter),
        "total_iterations": total,
        "best_iteration": best_iteration if best_iteration and best_iteration > 0 else None,
        "best_rounds": best_iteration if best_iteration and best_iteration > 0 else None,
        "tree_selection": tree_selection,
    }
    if raw.parameters.get("boosting"):
        provenance["boosting"] = raw.parameters["boosting"]
    if notes:
        provenance["notes"] = notes
    provenance.update(extra_provenance or {})
    try:
        return Ensemble.from_trees(
            trees,
            n_features=n_features,
            n_outputs=K,
            tree_output=np.arange(len(trees)) % K,
            feature_names=names,
            input_cast="float64",
            int_input_cast="float32",
            input_zero_band=LIGHTGBM_ZERO_BAND,
            sparse_absent="zero",
            categorical_rule="lightgbm",
            accumulate="float64",
            average_denominator=float(n_iter) if raw.average_output and n_iter > 0 else None,
            average_raw=False,
            transform=transform,
            transform_params=tparams,
            feature_categories=feature_categories,
            provenance=provenance,
        )
    except IRValidationError as exc:  # every check above should make this unreachable
        raise ModelFormatError(
            exc.reason, path=path, tree=exc.tree, node=exc.node, field=exc.field
        ) from exc


# ============================================================================ public interface
def parse_text(text: str, path: str | None = None, **options: Any) -> Ensemble:
    """A LightGBM text model (``model_to_string()`` output) as an Ensemble."""
    return _to_ensemble(_TextReader(text, path).read(), path, **options)


def parse_dump(doc: Any, path: str | None = None, *, source_bytes: int | None = None, **options: Any) -> Ensemble:
    """A ``Booster.dump_model()`` dict as an Ensemble; ``source_bytes`` (the file's size) scales the
    size limits (:mod:`ltrcompile.limits`), None for a dict built in memory."""
    return _to_ensemble(_read_dump(doc, path, source_bytes), path, **options)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ModelFormatError(f"cannot read the model file: {exc.strerror or exc}", path=path) from exc


def load_text(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """Load a LightGBM text model file (``Booster.save_model``).

    Options: ``num_iteration`` (default: all saved iterations), ``start_iteration`` (drops the
    intercept, as LightGBM does), ``feature_names``, ``category_features`` (feature index of each
    ``pandas_categorical`` list when it cannot be inferred).
    """
    p = os.fspath(path)
    try:
        text = _read(p).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"not UTF-8 text: {exc}", path=p) from exc
    return parse_text(text, p, **options)


def load_dump_json(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """Load a JSON file holding ``Booster.dump_model()`` output (same options as :func:`load_text`)."""
    p = os.fspath(path)
    data = _read(p)
    try:
        doc = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer beyond 4300 digits
        raise ModelFormatError(f"invalid JSON: {exc}", path=p) from exc
    except RecursionError:
        raise ModelFormatError("JSON nested too deeply to read", path=p) from None
    return parse_dump(doc, p, source_bytes=len(data), **options)


FORMATS = {"lightgbm-text": load_text, "lightgbm-json": load_dump_json}

_TEXT_HEAD = re.compile(rb"\s*tree\r?\nversion=")


def sniff(head: bytes, path: str) -> list[str]:
    """``lightgbm-text`` for ``tree\\nversion=...``; ``lightgbm-json`` for a dump_model object."""
    if _TEXT_HEAD.match(head):
        return ["lightgbm-text"]
    s = head.lstrip()
    if s.startswith(b"{") and b'"num_tree_per_iteration"' in s and (
        b'"tree_info"' in s or b'"max_feature_idx"' in s
    ):
        return ["lightgbm-json"]
    return []


def _lgb_class(obj: Any) -> str | None:
    for cls in type(obj).__mro__:
        if cls.__module__.split(".")[0] == "lightgbm" and cls.__name__ in ("Booster", "LGBMModel"):
            return cls.__name__
    return None


def accepts(obj: Any) -> bool:
    """True for a ``lightgbm.Booster`` or a scikit-learn-API ``LGBMModel``."""
    return _lgb_class(obj) is not None


def from_object(obj: Any, **options: Any) -> Ensemble:
    """An in-memory ``lightgbm.Booster`` or fitted ``LGBMModel`` (Booster semantics: the
    transform is ``Booster.predict``'s, not ``predict_proba``'s column layout).

    The model is read from ``model_to_string()``, i.e. exactly as a saved and reloaded file
    predicts; a booster kept in training memory (``keep_training_booster=True``) may differ from
    that in the last bits because the file stores ``sigmoid`` with 6 digits.
    ``num_iteration`` defaults to the booster's ``best_iteration`` when it has one (as
    ``Booster.predict`` does), else all iterations.
    """
    kind = _lgb_class(obj)
    if kind is None:
        raise TypeError(f"not a LightGBM model: {type(obj).__qualname__}")
    import lightgbm

    if kind == "LGBMModel":
        try:
            booster = obj.booster_
        except Exception as exc:  # sklearn's NotFittedError / LightGBMError
            raise ModelFormatError(f"the LightGBM estimator is not fitted: {exc}") from exc
    else:
        booster = obj
    best = int(getattr(booster, "best_iteration", -1) or -1)
    opts = dict(options)
    if opts.get("num_iteration") is None:
        use_best = best > 0 and opts.get("start_iteration", 0) <= 0
        opts["num_iteration"] = best if use_best else -1
        if use_best:
            opts["tree_selection"] = "best_iteration"
    text = booster.model_to_string(num_iteration=-1)
    return parse_text(
        text,
        None,
        best_iteration=best,
        extra_provenance={
            "lightgbm_version": lightgbm.__version__,
            "source": kind,
            "format": "lightgbm-sklearn" if kind == "LGBMModel" else "lightgbm-booster",
        },
        **opts,
    )
