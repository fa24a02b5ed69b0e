"""RankLib frontend: model files written by RankLib's ``-save`` (Lemur RankLib 1.x-2.10, codelibs, RankyMcRankFace).

The first line ``## <ranker name>`` selects the ranker, exactly as ``RankerFactory`` does
(``## `` removed, trimmed, upper-cased). Scoring follows RankLib's Java code
(``shared/docs/formats-ranklib-sklearn-es.md`` section 1, checked against RankLib's own score files):

* features are parsed with ``Float.parseFloat`` -> ``input_cast="float32"``; RankLib feature id ``k``
  is column ``k-1``; an unspecified or NaN feature reads as ``0`` (``DataPoint.getFeatureValue``),
  so every tree node uses ``Missing.NAN_AS_ZERO`` and linear terms skip NaN;
* MART / LambdaMART: one ``<ensemble>``; go left iff ``x <= threshold`` in float32; leaf outputs
  and tree weights are float32; the score is the running float
  ``s = (float)((double)s + (double)leaf * (double)weight)`` (``accumulate="float32_fused"``);
* Random Forests: one ``<ensemble>`` per bag, each accumulated as above (IR ``tree_bag``), bags summed
  in double and divided by the number of bags (``average_denominator``);
* Coordinate Ascent / AdaRank: double ``score += w * x`` in file order (IR linear terms);
  Linear Regression: the same, starting from the ``0:`` value (RankLib's writer bug kept: the
  intercept is whatever the file says);
* RankBoost: ``score += alpha * (x > t ? 1 : 0)`` in double; each weak ranker becomes a one-split
  stump (``x <= t`` -> leaf 0.0, else leaf ``alpha``; ``t`` is a double) accumulated in double;
* RankNet / LambdaRank / ListNet: an IR dense network (:mod:`ltrcompile.network`, parsed by
  :mod:`._ranklib_network`): float32 inputs widened to double, per neuron a double sum in
  link-creation order with the bias last, sigmoid on every non-input neuron including the output.

RankLib's ``-norm`` option is not stored in the model file and is applied *per query* at scoring
time, so it cannot be a model-level normalizer: normalise the rows with :func:`normalize_queries`
(bit-exact with RankLib) before scoring a model trained with ``-norm``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .. import limits
from ..errors import IRValidationError, ModelFormatError
from ..ir import Ensemble, Missing, Op, TreeArrays

FORMAT = "ranklib"

#: upper-cased ``name()`` of every RankLib ranker -> our kind
RANKERS = {
    "MART": "mart",
    "LAMBDAMART": "lambdamart",
    "RANDOM FORESTS": "random_forests",
    "COORDINATE ASCENT": "coordinate_ascent",
    "ADARANK": "adarank",
    "LINEAR REGRESSION": "linear_regression",
    "RANKBOOST": "rankboost",
    "RANKNET": "ranknet",
    "LAMBDARANK": "lambdarank",
    "LISTNET": "listnet",
}
#: canonical first-line names, as RankLib writes them
RANKER_NAMES = {
    "mart": "MART",
    "lambdamart": "LambdaMART",
    "random_forests": "Random Forests",
    "coordinate_ascent": "Coordinate Ascent",
    "adarank": "AdaRank",
    "linear_regression": "Linear Regression",
    "rankboost": "RankBoost",
    "ranknet": "RankNet",
    "lambdarank": "LambdaRank",
    "listnet": "ListNet",
}
_NEURAL = {"ranknet", "lambdarank", "listnet"}
NORMALIZERS = ("zscore", "sum", "linear")
_OPTIONS = {"n_features", "feature_names", "normalizer"}

# ============================================================================ Java number parsing
_JAVA_NUM = re.compile(r"([+-]?)(?:(NaN|Infinity)|((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[fFdD]?)\Z")
_JAVA_INT = re.compile(r"[+-]?\d+\Z")
_F32_MAX = float(np.finfo(np.float32).max)


def _java_trim(s: str) -> str:
    """``String.trim()``: drop every char <= U+0020 at both ends."""
    i, j = 0, len(s)
    while i < j and s[i] <= " ":
        i += 1
    while j > i and s[j - 1] <= " ":
        j -= 1
    return s[i:j]


def _java_decimal(s: str) -> tuple[str, str | None, str | None]:
    m = _JAVA_NUM.match(_java_trim(s))
    if m is None:
        raise ValueError(f"not a Java floating-point literal: {s!r}")
    return m.group(1), m.group(2), m.group(3)


#: significant digits kept from a longer decimal (plus a sticky digit): every float32/float64
#: rounding midpoint has fewer (at most ~770 for a float64 subnormal), so rounding is unchanged
_KEEP_DIGITS = 800
#: decimal exponents beyond which the value is certainly infinite / certainly rounds to zero
_MAX_DECIMAL_EXP = 330
_MIN_DECIMAL_EXP = -345


def _bounded_decimal(digits: str) -> str | None:
    """``digits`` (a matched decimal literal) rewritten with bounded size and the same rounding.

    Returns ``None`` for zero, ``"inf"`` when the value exceeds every float, else a literal with at
    most ``_KEEP_DIGITS`` + 1 significant digits and a small exponent. Without this, a literal such
    as ``1E999999999`` makes exact arithmetic build a billion-digit integer (a hang).
    """
    mant, _, exp_text = digits.replace("E", "e").partition("e")
    int_part, _, frac_part = mant.partition(".")
    sig = (int_part + frac_part).lstrip("0")
    if not sig.strip("0"):
        return None
    exp_sign = -1 if exp_text.startswith("-") else 1
    exp_digits = exp_text.lstrip("+-").lstrip("0") or "0"
    # the value is 0.<sig> * 10**point
    point = len(int_part.lstrip("0")) if int_part.lstrip("0") else -(len(frac_part) - len(frac_part.lstrip("0")))
    if len(exp_digits) > 12:
        return "inf" if exp_sign > 0 else None
    point += exp_sign * int(exp_digits)
    if point > _MAX_DECIMAL_EXP:
        return "inf"
    if point < _MIN_DECIMAL_EXP:
        return None
    sig = sig.rstrip("0")
    if len(sig) > _KEEP_DIGITS:
        sig = sig[:_KEEP_DIGITS] + "1"  # sticky: strictly between the truncation and the next step
    return f"0.{sig}e{point}"


def java_double(s: str) -> float:
    """``Double.parseDouble(s)`` (decimal forms; correctly rounded like Java; bounded cost)."""
    sign, special, digits = _java_decimal(s)
    if special is not None:
        v = math.nan if special == "NaN" else math.inf
    else:
        assert digits is not None
        b = _bounded_decimal(digits)
        v = 0.0 if b is None else (math.inf if b == "inf" else float(b))
    return -v if sign == "-" else v


def java_float(s: str) -> float:
    """``Float.parseFloat(s)``: the decimal rounded once, directly to float32 (returned widened).

    Rounding through double first can differ when the double lands exactly on a float32 rounding
    midpoint; that case is detected and decided with exact rational arithmetic, on a literal
    bounded by :func:`_bounded_decimal` (so the cost is bounded whatever the exponent).
    """
    sign, special, digits = _java_decimal(s)
    if special is not None:
        v = math.nan if special == "NaN" else math.inf
        return -v if sign == "-" else v
    assert digits is not None
    b = _bounded_decimal(digits)
    if b is None or b == "inf":
        r = 0.0 if b is None else math.inf
        return -r if sign == "-" else r
    digits = b
    d = float(digits)
    with np.errstate(over="ignore"):
        f = np.float32(d)
    if float(f) == d or not np.isfinite(f):
        if not np.isfinite(f):
            # float32 overflow: Java rounds to infinity only beyond MAX + half an ulp
            exact = Fraction(digits)
            limit = Fraction(_F32_MAX) + Fraction(2) ** 103
            r = math.inf if exact >= limit else _F32_MAX
            return -r if sign == "-" else r
        return -float(f) if sign == "-" else float(f)
    up = np.float32(np.inf)
    down = np.float32(-np.inf)
    with np.errstate(over="ignore"):
        lo, hi = (f, np.nextafter(f, up)) if float(f) < d else (np.nextafter(f, down), f)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return -float(f) if sign == "-" else float(f)
    mid = (Fraction(float(lo)) + Fraction(float(hi))) / 2
    if Fraction(d) != mid:
        r = float(f)
    else:
        exact = Fraction(digits)
        if exact < mid:
            r = float(lo)
        elif exact > mid:
            r = float(hi)
        else:
            r = float(lo) if (int(lo.view(np.uint32)) & 1) == 0 else float(hi)
    return -r if sign == "-" else r


def java_int(s: str) -> int:
    """``Integer.parseInt(s)`` (no surrounding blanks allowed, int32 range)."""
    if not _JAVA_INT.match(s):
        raise ValueError(f"not an integer: {s!r}")
    v = int(s)
    if not -(2**31) <= v < 2**31:
        raise ValueError(f"integer out of int32 range: {s!r}")
    return v


def java_float_str(x: float) -> str:
    """A decimal that ``Float.parseFloat`` reads back as exactly the float32 value ``x``."""
    f = np.float32(x)
    if not np.isfinite(f):
        if np.isnan(f):
            return "NaN"
        return "Infinity" if f > 0 else "-Infinity"
    if float(f) == 0.0:
        return "-0.0" if math.copysign(1.0, float(f)) < 0 else "0.0"
    return np.format_float_scientific(f, unique=True, exp_digits=1).replace("e+", "E").replace("e-", "E-")


def java_double_str(x: float) -> str:
    """A decimal that ``Double.parseDouble`` reads back as exactly ``x`` (shortest round trip)."""
    x = float(x)
    if not math.isfinite(x):
        if math.isnan(x):
            return "NaN"
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x).replace("e+", "E").replace("e-", "E-")


# ============================================================================ text layout
@dataclass
class _Src:
    path: str | None
    size: int = 0  # characters of model text: the size limits scale with it

    def err(self, message: str, **where: Any) -> ModelFormatError:
        return ModelFormatError(message, path=self.path, **where)


def _lines(text: str) -> list[str]:
    """``BufferedReader.readLine`` split: ``\\n``, ``\\r`` and ``\\r\\n`` end a line."""
    return re.split(r"\r\n|\r|\n", text)


def ranker_kind(text: str) -> str | None:
    """The ranker named by the first line (``RankerFactory``), or None if unknown."""
    first = _lines(text)[0] if text else ""
    name = _java_trim(first.replace("## ", "")).upper()
    return RANKERS.get(name)


def _first_body_line(text: str) -> str | None:
    """First line that is neither blank nor a ``##`` header (linear rankers' loaders)."""
    for line in _lines(text):
        s = _java_trim(line)
        if not s or s.startswith("##"):
            continue
        return s
    return None


def _key_values(line: str) -> list[tuple[str, str]]:
    """``KeyValuePair``: drop from the last ``#``; split on single spaces; key before the first
    ``:``, value after the last ``:``."""
    idx = line.rfind("#")
    if idx != -1:
        line = _java_trim(line[:idx])
    out = []
    for tok in line.split(" "):
        tok = _java_trim(tok)
        if not tok:
            continue
        if ":" not in tok:
            raise ValueError(f"token {tok!r} has no ':'")
        out.append((tok[: tok.index(":")], tok[tok.rindex(":") + 1 :]))
    return out


# ============================================================================ XML (tree ensembles)
@dataclass
class _Elem:
    tag: str
    attrs: dict[str, str]
    children: list[_Elem] = field(default_factory=list)
    text: str = ""


_TOKEN = re.compile(r"<([^<>]*)>|([^<>]+)")
_TAG = re.compile(r"(/?)\s*([A-Za-z_][\w.\-]*)((?:\s+[^<>]*?)?)\s*(/?)\Z", re.DOTALL)
_ATTR = re.compile(r"""([A-Za-z_][\w.\-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _parse_xml(text: str, src: _Src) -> list[_Elem]:
    """The small XML subset RankLib writes -> top-level elements (iterative, no entities/DTDs)."""
    root = _Elem("#document", {})
    stack = [root]
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            raise src.err(f"stray '<' or '>' in the tree XML near character {pos}")
        pos = m.end()
        if m.group(2) is not None:
            if "&" in m.group(2):
                raise src.err("XML entities are not supported in RankLib models")
            stack[-1].text += m.group(2)
            continue
        inner = m.group(1)
        if inner.startswith("?"):
            if not inner.endswith("?"):
                raise src.err("malformed XML processing instruction")
            continue
        if inner.startswith("!"):
            raise src.err("XML comments, DOCTYPE and CDATA are not supported in RankLib models")
        t = _TAG.match(inner)
        if t is None:
            raise src.err(f"malformed XML tag <{inner[:40]}>")
        closing, tag, attr_text, selfclose = t.groups()
        if closing:
            if attr_text.strip() or selfclose:
                raise src.err(f"malformed closing tag </{inner[:40]}>")
            if len(stack) == 1 or stack[-1].tag != tag:
                raise src.err(f"unexpected closing tag </{tag}>")
            stack.pop()
            continue
        attrs: dict[str, str] = {}
        rest = attr_text
        for a in _ATTR.finditer(attr_text):
            attrs[a.group(1)] = a.group(2) if a.group(2) is not None else a.group(3)
        rest = _ATTR.sub("", attr_text)
        if rest.strip():
            raise src.err(f"malformed attributes in <{tag}>")
        el = _Elem(tag, attrs)
        stack[-1].children.append(el)
        if not selfclose:
            stack.append(el)
    if pos != len(text):
        raise src.err("the tree XML ends in the middle of a tag")
    if len(stack) != 1:
        raise src.err(f"the tree XML is truncated: <{stack[-1].tag}> is never closed")
    if root.text.strip():
        raise src.err("text outside the <ensemble> element")
    return root.children


def _model_xml(text: str) -> str:
    """``ModelLineProducer``: each line stripped, ``#`` lines dropped, concatenated without separator."""
    parts = []
    for line in _lines(text):
        s = _java_trim(line)
        if s and not s.startswith("#"):
            parts.append(s)
    return "".join(parts)


def _trees_of(el: _Elem, e_idx: int, src: _Src) -> list[_Elem]:
    """The <tree> children of one <ensemble> (RankLib writes nothing else there)."""
    for c in el.children:
        if c.tag != "tree":
            raise src.err(f"<ensemble> {e_idx + 1} contains <{c.tag}>; expected only <tree> elements")
    if el.text.strip():
        raise src.err(f"unexpected text {el.text.strip()[:30]!r} in <ensemble> {e_idx + 1}")
    return el.children


def _build_tree(tree_el: _Elem, t: int, src: _Src) -> tuple[TreeArrays, float, list[int]]:
    """One ``<tree weight=...>`` -> (tree arrays in pre-order, float32 weight, feature ids used)."""
    w_text = tree_el.attrs.get("weight")
    if w_text is None:
        raise src.err("<tree> has no weight attribute", tree=t, field="weight")
    try:
        weight = java_float(w_text)
    except ValueError:
        raise src.err(f"tree weight {w_text!r} is not a number", tree=t, field="weight") from None
    if not math.isfinite(weight):
        raise src.err(f"tree weight {w_text!r} is not finite", tree=t, field="weight")
    if len(tree_el.children) != 1 or tree_el.children[0].tag != "split":
        raise src.err("<tree> must hold exactly one <split> element", tree=t, field="split")
    feats: list[int] = []
    thr: list[float] = []
    left: list[int] = []
    right: list[int] = []
    leaf: list[float] = []
    # iterative pre-order: (element, parent index, is_right_child)
    stack: list[tuple[_Elem, int, bool]] = [(tree_el.children[0], -1, False)]
    while stack:
        el, parent, is_right = stack.pop()
        i = len(feats)
        if parent >= 0:
            (right if is_right else left)[parent] = i
        kids = el.children
        if el.text.strip():
            raise src.err(f"unexpected text {el.text.strip()[:30]!r} in <split>", tree=t, node=i)
        if kids and kids[0].tag == "feature":
            if len(kids) != 4 or kids[1].tag != "threshold" or kids[2].tag != "split" or kids[3].tag != "split":
                raise src.err(
                    "a split needs exactly <feature>, <threshold>, <split>, <split> (in this order)",
                    tree=t,
                    node=i,
                    field="split",
                )
            try:
                fid = java_int(_java_trim(kids[0].text))
            except ValueError:
                raise src.err(f"feature id {kids[0].text!r} is not an integer", tree=t, node=i, field="feature") from None
            if fid < 1:
                raise src.err(f"feature id {fid} < 1 (RankLib ids start at 1)", tree=t, node=i, field="feature")
            try:
                th = java_float(kids[1].text)
            except ValueError:
                raise src.err(f"threshold {kids[1].text!r} is not a number", tree=t, node=i, field="threshold") from None
            if math.isnan(th):
                raise src.err("threshold is NaN", tree=t, node=i, field="threshold")
            feats.append(fid)
            thr.append(th)
            left.append(-1)
            right.append(-1)
            leaf.append(0.0)
            stack.append((kids[3], i, True))
            stack.append((kids[2], i, False))
        elif len(kids) == 1 and kids[0].tag == "output" and not kids[0].children:
            try:
                v = java_float(kids[0].text)
            except ValueError:
                raise src.err(f"leaf output {kids[0].text!r} is not a number", tree=t, node=i, field="output") from None
            if not math.isfinite(v):
                raise src.err(f"leaf output {kids[0].text.strip()!r} is not finite", tree=t, node=i, field="output")
            feats.append(0)
            thr.append(0.0)
            left.append(-1)
            right.append(-1)
            leaf.append(v)
        else:
            raise src.err(
                "a node must be a split (<feature>, <threshold>, two <split>) or a leaf (one <output>)",
                tree=t,
                node=i,
                field="split",
            )
    n = len(feats)
    ta = TreeArrays.empty(n, op=Op.LE, missing=Missing.NAN_AS_ZERO)
    ta.left[:] = left
    ta.right[:] = right
    internal = ta.left >= 0
    fid_arr = np.asarray(feats, np.int64)
    ta.feature[:] = np.where(internal, fid_arr - 1, -1)
    ta.threshold[:] = np.where(internal, thr, 0.0)
    ta.leaf_value[:, 0] = np.where(internal, 0.0, leaf)
    ta.leaf_id[:] = np.where(internal, -1, np.arange(n))
    return ta, weight, [f for f, i in zip(feats, internal, strict=True) if i]


def _ensembles(text: str, kind: str, src: _Src) -> list[list[tuple[TreeArrays, float, list[int]]]]:
    elems = _parse_xml(_model_xml(text), src)
    if not elems:
        raise src.err("no <ensemble> element found")
    for e in elems:
        if e.tag != "ensemble":
            raise src.err(f"expected <ensemble>, found <{e.tag}>")
    if kind != "random_forests" and len(elems) > 1:
        raise src.err(f"a {RANKER_NAMES[kind]} model holds exactly one <ensemble>; found {len(elems)}")
    out = []
    t = 0
    for e_idx, e in enumerate(elems):
        bag = []
        for tree_el in _trees_of(e, e_idx, src):
            bag.append(_build_tree(tree_el, t, src))
            t += 1
        out.append(bag)
    return out


# ============================================================================ model builders
def _resolve_width(used: list[int], options: dict[str, Any], src: _Src) -> tuple[int, list[str] | None]:
    top = max(used) if used else 0
    n = options.get("n_features")
    names = options.get("feature_names")
    if n is None:
        n = len(names) if names is not None else top
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise TypeError(f"n_features must be a non-negative int; got {n!r}")
    n = int(n)
    limits.check_features(top, src.size, path=src.path, field="feature", what="feature id")
    limits.check_features(n, src.size, path=src.path)
    if n < top:
        raise src.err(f"the model uses feature id {top} but n_features={n}", field="n_features")
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != n:
            raise ValueError(f"{len(names)} feature_names for {n} features")
    return n, names


def _common(kind: str, n: int, names: list[str] | None, options: dict[str, Any], src: _Src, text: str) -> dict[str, Any]:
    prov: dict[str, Any] = {"library": "ranklib", "ranker": RANKER_NAMES[kind]}
    headers = [_java_trim(x)[2:].strip() for x in _lines(text)[1:] if _java_trim(x).startswith("##")]
    if headers:
        prov["headers"] = headers
    norm = options.get("normalizer")
    if norm is not None and norm != "none":
        prov["ranklib_normalizer"] = norm
        prov["input_note"] = (
            f"trained with RankLib -norm {norm}: normalise rows per query with "
            f"ltrcompile.frontends.ranklib.normalize_queries(X, qid, {norm!r}) before scoring"
        )
    return {
        "n_features": n,
        "feature_names": names,
        "input_cast": "float32",
        "int_input_cast": "float32",
        "sparse_absent": "zero",
        "provenance": prov,
    }


def _tree_model(kind: str, text: str, options: dict[str, Any], src: _Src) -> Ensemble:
    bags = _ensembles(text, kind, src)
    trees = [ta for bag in bags for ta, _, _ in bag]
    weights = [w for bag in bags for _, w, _ in bag]
    used = [f for bag in bags for _, _, fs in bag for f in fs]
    n, names = _resolve_width(used, options, src)
    model = _common(kind, n, names, options, src, text)
    kw: dict[str, Any] = {}
    if kind == "random_forests":
        if not bags:
            raise src.err("a Random Forests model needs at least one <ensemble>")
        kw["tree_bag"] = [b for b, bag in enumerate(bags) for _ in bag]
        kw["average_denominator"] = float(len(bags))
        kw["average_raw"] = True
        model["provenance"]["bags"] = len(bags)  # an empty bag scores 0 and still counts in the mean
    return Ensemble.from_trees(
        trees,
        tree_weight=weights,
        accumulate="float32_fused",
        **kw,
        **model,
    )


def _linear_model(kind: str, text: str, options: dict[str, Any], src: _Src) -> Ensemble:
    line = _first_body_line(text)
    if line is None:
        raise src.err(f"the {RANKER_NAMES[kind]} model has no weight line", field="weights")
    try:
        pairs = _key_values(line)
    except ValueError as exc:
        raise src.err(str(exc), field="weights") from None
    feats: list[int] = []
    weights: list[float] = []
    intercepts: list[float] = []
    for i, (k, v) in enumerate(pairs):
        try:
            fid = java_int(k)
        except ValueError:
            raise src.err(f"term {i}: feature id {k!r} is not an integer", field="weights") from None
        try:
            w = java_double(v)
        except ValueError:
            raise src.err(f"term {i}: weight {v!r} is not a number", field="weights") from None
        if not math.isfinite(w):
            raise src.err(f"term {i}: weight {v!r} is not finite", field="weights")
        if kind == "linear_regression" and fid <= 0:
            intercepts.append(w)
            continue
        if fid < 1:
            raise src.err(f"term {i}: feature id {fid} < 1 (RankLib ids start at 1)", field="weights")
        feats.append(fid)
        weights.append(w)
    base = 0.0
    if kind == "linear_regression":
        if len(intercepts) != 1:
            raise src.err(
                f"a Linear Regression model needs exactly one '0:' intercept term; found {len(intercepts)}",
                field="weights",
            )
        base = intercepts[0]
    n, names = _resolve_width(feats, options, src)
    model = _common(kind, n, names, options, src, text)
    return Ensemble.from_trees(
        [],
        base_score=base,
        accumulate="float64",
        linear_output=np.zeros(len(feats), np.int32),
        linear_feature=np.asarray(feats, np.int32) - 1,
        linear_weight=np.asarray(weights, np.float64),
        linear_skip_missing=True,
        **model,
    )


def _rankboost_model(text: str, options: dict[str, Any], src: _Src) -> Ensemble:
    line = _first_body_line(text)
    if line is None:
        raise src.err("the RankBoost model has no weak-ranker line", field="weights")
    idx = line.rfind("#")
    if idx != -1:
        line = _java_trim(line[:idx])
    trees: list[TreeArrays] = []
    used: list[int] = []
    for tok in line.split(" "):
        tok = _java_trim(tok)
        if not tok:
            continue
        t = len(trees)
        parts = tok.split(":")
        if len(parts) < 3:
            raise src.err(f"weak ranker {tok!r} is not fid:threshold:alpha", tree=t, field="weights")
        try:
            fid = java_int(parts[0])
            thr = java_double(parts[1])
            alpha = java_double(parts[2])
        except ValueError as exc:
            raise src.err(f"weak ranker {tok!r}: {exc}", tree=t, field="weights") from None
        if fid < 1:
            raise src.err(f"feature id {fid} < 1 (RankLib ids start at 1)", tree=t, node=0, field="feature")
        if math.isnan(thr):
            raise src.err("threshold is NaN", tree=t, node=0, field="threshold")
        if not math.isfinite(alpha):
            raise src.err(f"alpha {parts[2]!r} is not finite", tree=t, node=2, field="alpha")
        # score += alpha * (x > thr ? 1 : 0)  ==  stump: x <= thr -> 0.0, else alpha
        ta = TreeArrays.empty(3, op=Op.LE, missing=Missing.NAN_AS_ZERO)
        ta.feature[0] = fid - 1
        ta.threshold[0] = thr
        ta.left[0], ta.right[0] = 1, 2
        ta.leaf_value[2, 0] = alpha
        ta.leaf_id[1:] = [1, 2]
        trees.append(ta)
        used.append(fid)
    n, names = _resolve_width(used, options, src)
    model = _common("rankboost", n, names, options, src, text)
    return Ensemble.from_trees(trees, accumulate="float64", **model)


def _network_model(kind: str, text: str, options: dict[str, Any], src: _Src) -> Ensemble:
    from ._ranklib_network import parse_network

    net, feats = parse_network(text, src)
    n, names = _resolve_width(feats, options, src)
    model = _common(kind, n, names, options, src, text)
    model["provenance"]["network"] = net.shape
    return Ensemble.from_trees([], accumulate="float64", network=net, **model)


# ============================================================================ entry points
def _check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise TypeError(f"the ranklib format does not take option(s) {unknown}; known: {sorted(_OPTIONS)}")
    norm = options.get("normalizer")
    if norm is not None and norm not in (*NORMALIZERS, "none"):
        raise ValueError(f"normalizer must be one of {NORMALIZERS} or None; got {norm!r}")


def loads(text: str, *, path: str | None = None, **options: Any) -> Ensemble:
    """A RankLib model as text -> Ensemble (see the module docstring for the options)."""
    _check_options(options)
    src = _Src(path, len(text))
    bom = text.startswith("\ufeff")
    if bom:  # Java RankLib itself fails on a BOM; we read past it
        text = text[1:]
    if not text.strip():
        raise src.err("the RankLib model is empty")
    kind = ranker_kind(text)
    if kind is None:
        first = _lines(text)[0][:60]
        raise src.err(
            f"unknown RankLib ranker on the first line {first!r}; expected '## ' + one of "
            f"{sorted(RANKER_NAMES.values())}",
            field="ranker",
        )
    try:
        if kind in _NEURAL:
            ens = _network_model(kind, text, options, src)
        elif kind in ("mart", "lambdamart", "random_forests"):
            ens = _tree_model(kind, text, options, src)
        elif kind == "rankboost":
            ens = _rankboost_model(text, options, src)
        else:
            ens = _linear_model(kind, text, options, src)
    except IRValidationError as exc:
        raise ModelFormatError(exc.reason, path=path, tree=exc.tree, node=exc.node, field=exc.field) from None
    if bom:
        ens.provenance = ens.provenance.with_(utf8_bom_stripped=True)
    return ens


def load(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """RankLib model file -> Ensemble. Options: ``n_features`` (input width, default: the highest
    feature id used), ``feature_names``, ``normalizer`` (``"zscore"|"sum"|"linear"``: recorded in
    the provenance; normalise inputs with :func:`normalize_queries`)."""
    p = os.fspath(path)
    with open(p, "rb") as fh:
        data = fh.read()
    # RankLib reads its models as ASCII; any byte decodes 1:1 here
    text = data.decode("utf-8") if data.startswith(b"\xef\xbb\xbf") else data.decode("latin-1")
    return loads(text, path=p, **options)


def sniff(head: bytes, path: str) -> list[str]:
    """``ranklib`` when the first line names a RankLib ranker (``## LambdaMART`` ...)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    first = re.split(rb"\r\n|\r|\n", head[:512], maxsplit=1)[0]
    if not first.lstrip().startswith(b"##"):
        return []
    return [FORMAT] if ranker_kind(first.decode("latin-1")) is not None else []


def accepts(obj: Any) -> bool:
    """RankLib is a Java program: there are no in-memory RankLib models in Python."""
    return False


def from_object(obj: Any, **options: Any) -> Ensemble:
    raise TypeError("RankLib models are loaded from files (format='ranklib')")


FORMATS = {FORMAT: load}


# ============================================================================ -norm (per query)
def query_runs(qid: Any) -> list[tuple[int, int]]:
    """RankLib's ranked lists: runs of *consecutive* rows with the same query id."""
    q = np.asarray(qid)
    if q.ndim != 1:
        raise ValueError("qid must be one-dimensional")
    n = q.shape[0]
    if n == 0:
        return []
    change = np.flatnonzero(q[1:] != q[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def normalize_queries(X: Any, qid: Any, method: str = "zscore") -> np.ndarray:
    """RankLib's ``-norm sum|zscore|linear`` applied to ``X`` exactly as RankLib does it.

    Normalisation is per ranked list (consecutive rows with the same ``qid``) and per feature
    column. Values are first rounded to float32 (RankLib parses them with ``Float.parseFloat``)
    and NaN reads as 0 (``getFeatureValue``). Returns a new float32 matrix:

    * ``zscore``: ``mean`` = sequential double sum / n, ``std = sqrt(sum((x-mean)^2) / (n-1))``;
      if ``std > 0`` the values become ``(float)((x - mean) / std)``, else (constant column, or a
      one-row query giving NaN) they are left unchanged;
    * ``sum``: ``norm`` = sequential double sum of ``|x|``; if ``norm > 0``: ``(float)(x / norm)``;
    * ``linear``: float32 min/max starting from ``Float.MAX_VALUE`` / ``Float.MIN_VALUE`` (the
      smallest *positive* float, as RankLib does); ``(x - min) / (max - min)`` in float32 if
      ``max > min``, else 0.
    """
    if method not in NORMALIZERS:
        raise ValueError(f"method must be one of {NORMALIZERS}; got {method!r}")
    with np.errstate(over="ignore"):
        M = np.array(X, dtype=np.float32, copy=True)
    if M.ndim != 2:
        raise ValueError("X must be a 2-D matrix")
    runs = query_runs(qid)
    if sum(e - s for s, e in runs) != M.shape[0]:
        raise ValueError(f"qid has {sum(e - s for s, e in runs)} entries for {M.shape[0]} rows")
    nan = np.isnan(M)
    V = np.where(nan, np.float32(0.0), M)  # what getFeatureValue returns
    out = M.copy()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for s, e in runs:
            x = V[s:e].astype(np.float64)
            k = e - s
            if method == "zscore":
                mean = np.cumsum(x, axis=0)[-1] / k
                dev = x - mean
                std = np.sqrt(np.cumsum(dev * dev, axis=0)[-1] / (k - 1)) if k > 1 else np.full(x.shape[1], np.nan)
                ok = std > 0
                z = ((x - mean) / np.where(ok, std, 1.0)).astype(np.float32)
                out[s:e] = np.where(ok, z, out[s:e])
            elif method == "sum":
                norm = np.cumsum(np.abs(x), axis=0)[-1]
                ok = norm > 0
                z = (x / np.where(ok, norm, 1.0)).astype(np.float32)
                out[s:e] = np.where(ok, z, out[s:e])
            else:
                v = V[s:e]
                lo = _java_min(v)
                hi = _java_max(v)
                ok = hi > lo
                z = ((v - lo) / np.where(ok, hi - lo, np.float32(1.0))).astype(np.float32)
                out[s:e] = np.where(ok, z, np.float32(0.0))
    return out


def _java_min(v: np.ndarray) -> np.ndarray:
    """Column-wise ``Math.min`` fold from ``Float.MAX_VALUE`` (-0.0 < +0.0)."""
    m = np.minimum(np.min(v, axis=0), np.float32(np.finfo(np.float32).max))
    neg_zero = np.any((v == 0) & np.signbit(v), axis=0)
    return np.where((m == 0) & neg_zero, np.float32(-0.0), m).astype(np.float32)


def _java_max(v: np.ndarray) -> np.ndarray:
    """Column-wise ``Math.max`` fold from ``Float.MIN_VALUE`` (1.4e-45, RankLib's initial max)."""
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal)
    m = np.maximum(np.max(v, axis=0), tiny)
    return m.astype(np.float32)
