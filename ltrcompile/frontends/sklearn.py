"""scikit-learn frontend: fitted tree estimators (in memory or pickled with joblib/pickle) -> IR.

Supported: ``DecisionTree{Regressor,Classifier}``, ``ExtraTree{Regressor,Classifier}``,
``RandomForest{Regressor,Classifier}``, ``ExtraTrees{Regressor,Classifier}``,
``GradientBoosting{Regressor,Classifier}`` and ``HistGradientBoosting{Regressor,Classifier}``.

**Security: loading a pickle (``load_pickle``, format ``sklearn-pickle``) runs code stored in the
file.** Only load files you trust, exactly as with ``joblib.load``/``pickle.load``. For an exchange
format that runs no code, export the estimator with :func:`describe` where it was trained, save that
dict with ``numpy.savez`` and read it back with :func:`from_arrays` (``numpy.load`` refuses pickled
objects by default).

Every estimator is first turned into a flat dict of numpy arrays in scikit-learn's own terms
(:func:`describe`: ``tree_`` arrays, HGB predictor nodes and bitsets, the GB init prediction computed
by scikit-learn itself, the version that fitted it); :func:`from_arrays` turns that dict into the IR.
The semantics, read from scikit-learn 1.9 and 1.3 (``shared/docs/formats-ranklib-sklearn-es.md``
section 3):

* trees, forests, GB: ``X`` is cast to float32 first, then ``(double)x32 <= threshold`` sends a row
  left (``input_cast="float32"``, integers cast straight to float32). NaN goes to
  ``missing_go_to_left`` (scikit-learn >= 1.3 stores it on every split, whether or not the tree saw
  NaN in training); trees from older versions have no such field and compare NaN with ``<=``, so NaN
  goes right (``Missing.NAN_FALSE``). GB ``predict`` rejects NaN but ``apply`` routes it by
  ``missing_go_to_left``; we follow ``apply`` so scores and leaf ids agree. Inputs beyond the float32
  range become +-inf (scikit-learn's ``predict`` rejects them; its tree code sends inf right);
* ``leaf_id`` is scikit-learn's node id (what ``apply`` returns); HGB has no ``apply``: node index;
* classifier trees/forests: leaves are per-class probability vectors exactly as ``predict_proba``
  returns them: ``tree_.value`` as is from 1.4 (fractions), ``value / value.sum()`` in double (zero
  sum -> 1) before 1.4 (weighted counts) -- decided by the version that *fitted* the tree (a pickle's
  recorded version when it differs from the running one);
* forests: per-tree outputs are summed in double in tree order and divided by the number of trees
  (``average_denominator``, raw output averaged too) -- the order ``n_jobs=1`` gives;
* GB: ``base_score`` = the init estimator's raw prediction (computed by scikit-learn for the
  X-independent ``Dummy*`` inits and ``init="zero"``; any other init estimator is rejected), then
  ``raw += learning_rate * leaf`` stage by stage in double, tree ``(stage, k)`` adding to output k;
* HGB: X compared as float64 with ``<=``; leaves already include the learning rate; ``base_score``
  = ``_baseline_prediction``. Categorical splits (scikit-learn >= 1.4, which ordinal-encodes the
  categorical columns and moves them first): the IR works on the raw category values (integers in
  ``[0, 2**31)``; string categories use their ordinal codes and ``feature_categories``), and with
  ``categorical_rule="sklearn"`` only exact integer values can match -- any value not a known
  category goes the missing-value direction, as scikit-learn does;
* transforms: regression identity (HGB poisson/gamma: ``exp``); binary log-loss classifiers
  ``sigmoid_binary_proba`` (``[1 - expit(x), expit(x)]``), GB exponential loss
  ``sigmoid2_binary_proba`` (``expit(2x)``), multiclass ``softmax``; tree/forest classifiers output
  ``predict_proba`` directly (identity).
"""

from __future__ import annotations

import bz2
import lzma
import math
import os
import re
import warnings
import zlib
from typing import Any

import numpy as np

from .. import limits
from ..errors import IRValidationError, LtrCompileError, ModelFormatError, UnsupportedModelError
from ..ir import Ensemble, Missing, Op, TreeArrays

ARRAYS_FORMAT = "ltrcompile-sklearn-arrays"
ARRAYS_VERSION = 1

#: estimator class -> (family, task)
SUPPORTED: dict[str, tuple[str, str]] = {
    "DecisionTreeRegressor": ("tree", "regression"),
    "DecisionTreeClassifier": ("tree", "classification"),
    "ExtraTreeRegressor": ("tree", "regression"),
    "ExtraTreeClassifier": ("tree", "classification"),
    "RandomForestRegressor": ("forest", "regression"),
    "RandomForestClassifier": ("forest", "classification"),
    "ExtraTreesRegressor": ("forest", "regression"),
    "ExtraTreesClassifier": ("forest", "classification"),
    "GradientBoostingRegressor": ("gb", "regression"),
    "GradientBoostingClassifier": ("gb", "classification"),
    "HistGradientBoostingRegressor": ("hgb", "regression"),
    "HistGradientBoostingClassifier": ("hgb", "classification"),
}

#: wrappers people pass by mistake -> what to pass instead
_WRAPPER_HINTS = {
    "Pipeline": "pipeline preprocessing is not compiled; pass the final estimator (pipe[-1]) and "
    "apply the preprocessing yourself",
    "GridSearchCV": "pass best_estimator_",
    "RandomizedSearchCV": "pass best_estimator_",
    "HalvingGridSearchCV": "pass best_estimator_",
    "HalvingRandomSearchCV": "pass best_estimator_",
    "CalibratedClassifierCV": "calibration maps are not supported",
    "TransformedTargetRegressor": "the target transform is not supported; pass regressor_",
}

_GB_REGRESSION_LOSSES = ("squared_error", "absolute_error", "huber", "quantile", "ls", "lad")
_HGB_IDENTITY_LOSSES = ("squared_error", "absolute_error", "quantile", "least_squares", "least_absolute_deviation")
_HGB_LOG_LOSSES = ("poisson", "gamma")
_CLASSIFIER_LOSSES = ("log_loss", "deviance", "auto", "binary_crossentropy", "categorical_crossentropy")
_DUMMY_CLASSIFIER_STRATEGIES = ("prior", "most_frequent", "constant")
_MAX_CATEGORY = 2**31


# ============================================================================ small helpers
def parse_version(text: str) -> tuple[int, int]:
    """``"1.3.2"``, ``"1.4.dev0"``, ``"1.5.0rc1"`` -> (major, minor); ``"pre-0.18"`` -> (0, 17)."""
    if text.startswith("pre-"):
        return (0, 17)
    m = re.match(r"(\d+)\.(\d+)", text)
    if not m:
        raise ModelFormatError(f"cannot read scikit-learn version {text!r}", field="sklearn_version")
    return int(m.group(1)), int(m.group(2))


def _scalar(d: dict[str, Any], key: str, kind: type, path: str | None) -> Any:
    """A scalar entry (plain value or 0-d array from ``numpy.load``) converted to ``kind``."""
    if key not in d:
        raise ModelFormatError("missing entry", path=path, field=key)
    v = d[key]
    if isinstance(v, np.ndarray):
        if v.ndim != 0:
            raise ModelFormatError(f"expected a scalar, got shape {v.shape}", path=path, field=key)
        v = v.item()
    try:
        if kind is str:
            if not isinstance(v, str):
                raise TypeError(type(v).__name__)
            return v
        if kind is int:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise TypeError(type(v).__name__)
            return int(v)
        if kind is float:
            return float(v)
        if kind is bool:
            return bool(v)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFormatError(f"expected {kind.__name__}, got {v!r}", path=path, field=key) from exc
    raise AssertionError(kind)


def _array(
    d: dict[str, Any], key: str, path: str | None, *, ndim: int | None = None, kind: str = "fiub"
) -> np.ndarray:
    if key not in d:
        raise ModelFormatError("missing array", path=path, field=key)
    a = np.asarray(d[key])
    if ndim is not None and a.ndim != ndim:
        raise ModelFormatError(f"expected {ndim} dimensions, got shape {a.shape}", path=path, field=key)
    if a.dtype.kind not in kind:
        raise ModelFormatError(f"unexpected dtype {a.dtype}", path=path, field=key)
    return a


def _int_array(d: dict[str, Any], key: str, path: str | None) -> np.ndarray:
    a = _array(d, key, path, ndim=1, kind="iub")
    return a.astype(np.int64)


# ============================================================================ trees
def leaf_values(
    value: np.ndarray,
    *,
    task: str,
    n_classes: int,
    counts: bool,
    path: str | None = None,
    tree: int | None = None,
) -> np.ndarray:
    """``tree_.value`` (n_nodes, n_outputs, max_n_classes) -> IR leaf vectors (n_nodes, leaf_dim).

    Regression: the node mean of every output. Classification (one output): the class
    probabilities ``predict_proba`` returns -- the stored fractions, or for weighted counts
    (scikit-learn < 1.4) ``value / value.sum()`` computed as scikit-learn did (zero sum -> 1).
    """
    value = np.asarray(value)
    if value.ndim != 3 or value.dtype.kind not in "fiu":
        raise ModelFormatError(
            f"tree_.value must be a 3-D numeric array, got shape {value.shape} dtype {value.dtype}",
            path=path,
            tree=tree,
            field="value",
        )
    value = value.astype(np.float64, copy=False)
    if task == "regression":
        if value.shape[2] != 1:
            raise ModelFormatError(
                f"regression tree_.value must have shape (n, n_outputs, 1), got {value.shape}",
                path=path,
                tree=tree,
                field="value",
            )
        return np.ascontiguousarray(value[:, :, 0])
    if value.shape[1] != 1:
        raise UnsupportedModelError(
            f"multi-output classification ({value.shape[1]} outputs) is not supported",
            path=path,
            tree=tree,
            field="n_outputs",
        )
    if not 1 <= n_classes <= value.shape[2]:
        raise ModelFormatError(
            f"n_classes {n_classes} does not fit tree_.value of shape {value.shape}",
            path=path,
            tree=tree,
            field="value",
        )
    proba = np.ascontiguousarray(value[:, 0, :n_classes])
    if counts:
        normalizer = proba.sum(axis=1)[:, np.newaxis]
        normalizer[normalizer == 0.0] = 1.0
        proba = proba / normalizer
    return proba


def tree_arrays(
    children_left: Any,
    children_right: Any,
    feature: Any,
    threshold: Any,
    leaf_value: Any,
    missing_go_to_left: Any = None,
    *,
    n_features: int,
    path: str | None = None,
    tree: int | None = None,
    cover: Any = None,
) -> TreeArrays:
    """One scikit-learn ``Tree`` (node arrays as ``tree_`` exposes them) -> :class:`TreeArrays`.

    Node ids are kept (root 0), so ``leaf_id`` is what ``apply`` returns. Splits are ``x <= t``; NaN
    follows ``missing_go_to_left`` when given (scikit-learn >= 1.3), else goes right (plain ``<=``).
    Raises :class:`ModelFormatError` naming the tree, node and field for malformed arrays.
    """

    def fail(msg: str, node: int | None, fld: str) -> ModelFormatError:
        return ModelFormatError(msg, path=path, tree=tree, node=node, field=fld)

    arrays = {}
    for name, a in (
        ("children_left", children_left),
        ("children_right", children_right),
        ("feature", feature),
        ("threshold", threshold),
    ):
        arr = np.asarray(a)
        if arr.ndim != 1:
            raise fail(f"must be 1-D, got shape {arr.shape}", None, name)
        want = "f" if name == "threshold" else "iu"
        if arr.dtype.kind not in want and not (want == "f" and arr.dtype.kind in "iu"):
            raise fail(f"unexpected dtype {arr.dtype}", None, name)
        arrays[name] = arr
    n = arrays["children_left"].shape[0]
    if n < 1:
        raise fail("tree has no nodes", None, "node_count")
    for name, arr in arrays.items():
        if arr.shape[0] != n:
            raise fail(f"length {arr.shape[0]} != node_count {n}", None, name)
    lv = np.asarray(leaf_value)
    if lv.ndim != 2 or lv.shape[0] != n or lv.shape[1] < 1 or lv.dtype.kind not in "fiu":
        raise fail(f"leaf values must have shape ({n}, k), got {lv.shape}", None, "value")
    left = arrays["children_left"].astype(np.int64)
    right = arrays["children_right"].astype(np.int64)
    feat = arrays["feature"].astype(np.int64)
    thr = arrays["threshold"].astype(np.float64)
    lv = lv.astype(np.float64)
    for name, ch in (("children_left", left), ("children_right", right)):
        bad = np.flatnonzero((ch < -1) | (ch >= n))
        if bad.size:
            raise fail(f"child id {ch[bad[0]]} outside [-1, {n})", int(bad[0]), name)
    internal = left != -1
    bad = np.flatnonzero(internal != (right != -1))
    if bad.size:
        raise fail("exactly one child is -1 (TREE_LEAF)", int(bad[0]), "children_right")
    bad = np.flatnonzero(internal & ((feat < 0) | (feat >= n_features)))
    if bad.size:
        raise fail(f"split feature {feat[bad[0]]} outside [0, {n_features})", int(bad[0]), "feature")
    bad = np.flatnonzero(internal & np.isnan(thr))
    if bad.size:
        raise fail("split threshold is NaN", int(bad[0]), "threshold")
    bad = np.flatnonzero(~internal & ~np.all(np.isfinite(lv), axis=1))
    if bad.size:
        raise fail("leaf value is not finite", int(bad[0]), "value")
    if missing_go_to_left is not None:
        mgl = np.asarray(missing_go_to_left)
        if mgl.shape != (n,) or mgl.dtype.kind not in "iub":
            raise fail(f"must be {n} booleans, got shape {mgl.shape} dtype {mgl.dtype}", None, "missing_go_to_left")
        mgl = mgl.astype(np.int64)
        bad = np.flatnonzero(internal & (mgl != 0) & (mgl != 1))
        if bad.size:
            raise fail(f"value {mgl[bad[0]]} is not 0/1", int(bad[0]), "missing_go_to_left")
    t = TreeArrays.empty(
        n,
        lv.shape[1],
        op=Op.LE,
        missing=Missing.NAN_DEFAULT if missing_go_to_left is not None else Missing.NAN_FALSE,
    )
    t.left[internal] = left[internal]
    t.right[internal] = right[internal]
    t.feature[internal] = feat[internal]
    t.threshold[internal] = thr[internal]
    if missing_go_to_left is not None:
        t.default_left[internal] = mgl[internal]
    leaves = np.flatnonzero(~internal)
    t.leaf_value[leaves] = lv[leaves]
    t.leaf_id[leaves] = leaves
    t.cover = _cover(cover, n, fail, "weighted_n_node_samples")
    return t


def _cover(cover: Any, n: int, fail: Any, name: str) -> np.ndarray | None:
    """Per-node training weight (``weighted_n_node_samples`` / HGB ``count``), the cover the
    ``shap`` package's TreeExplainer splits by for scikit-learn trees; None when absent."""
    if cover is None:
        return None
    c = np.asarray(cover)
    if c.shape != (n,) or c.dtype.kind not in "fiu":
        raise fail(f"must be {n} numbers, got shape {c.shape} dtype {c.dtype}", None, name)
    c = c.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(c) | (c < 0))
    if bad.size:
        raise fail(f"{c[bad[0]]!r} is not a finite value >= 0", int(bad[0]), name)
    return c


def _sk_tree(d: dict[str, Any], i: int, path: str | None) -> tuple[np.ndarray, ...]:
    p = f"tree{i}."
    mgl_key = p + "missing_go_to_left"
    return (
        _array(d, p + "children_left", path, ndim=1),
        _array(d, p + "children_right", path, ndim=1),
        _array(d, p + "feature", path, ndim=1),
        _array(d, p + "threshold", path, ndim=1),
        _array(d, p + "value", path, ndim=3),
        None if mgl_key not in d else _array(d, mgl_key, path, ndim=1),
    )


# ============================================================================ describe (live -> arrays)
def _require_sklearn_estimator(obj: Any) -> tuple[str, str, str]:
    cls = type(obj)
    name = cls.__name__
    module = cls.__module__
    if not module.startswith("sklearn."):
        raise UnsupportedModelError(f"{module}.{cls.__qualname__} is not a scikit-learn estimator")
    if name in _WRAPPER_HINTS:
        raise UnsupportedModelError(f"{name} is not supported: {_WRAPPER_HINTS[name]}", field="estimator")
    if name not in SUPPORTED:
        raise UnsupportedModelError(
            f"scikit-learn {name} is not supported; supported estimators: {', '.join(SUPPORTED)}",
            field="estimator",
        )
    family, task = SUPPORTED[name]
    return name, family, task


def _not_fitted(name: str, attr: str) -> ModelFormatError:
    return ModelFormatError(f"{name} is not fitted (no {attr}); call fit() first", field=attr)


def _put_tree(d: dict[str, Any], i: int, tree_: Any) -> None:
    p = f"tree{i}."
    d[p + "children_left"] = np.asarray(tree_.children_left)
    d[p + "children_right"] = np.asarray(tree_.children_right)
    d[p + "feature"] = np.asarray(tree_.feature)
    d[p + "threshold"] = np.asarray(tree_.threshold)
    d[p + "value"] = np.asarray(tree_.value)
    d[p + "weighted_n_node_samples"] = np.asarray(tree_.weighted_n_node_samples)
    if hasattr(tree_, "missing_go_to_left"):
        d[p + "missing_go_to_left"] = np.asarray(tree_.missing_go_to_left)


def _gb_init_raw(est: Any, name: str, n_features: int) -> np.ndarray:
    """The init estimator's raw prediction, computed by scikit-learn (X-independent inits only)."""
    init = est.init_
    if isinstance(init, str):
        if init != "zero":
            raise UnsupportedModelError(f"{name} init_={init!r} is not supported", field="init")
    else:
        iname = type(init).__name__
        imod = type(init).__module__
        ok = imod.startswith("sklearn.dummy") and (
            iname == "DummyRegressor"
            or (iname == "DummyClassifier" and getattr(init, "strategy", None) in _DUMMY_CLASSIFIER_STRATEGIES)
        )
        if not ok:
            what = f"{imod}.{iname}"
            if iname == "DummyClassifier":
                what += f"(strategy={getattr(init, 'strategy', None)!r})"
            raise UnsupportedModelError(
                f"{name} with init={what}: only init='zero' and the default/deterministic Dummy "
                "estimators (whose prediction does not depend on X) can be expressed as a constant "
                "base score",
                field="init",
            )
    X0 = np.zeros((1, n_features), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "X does not have valid feature names" on DataFrame fits
        raw = np.asarray(est._raw_predict_init(X0), np.float64)
    return raw.reshape(-1).copy()


def describe(est: Any) -> dict[str, Any]:
    """A fitted estimator as a flat dict of numpy arrays and scalars (``numpy.savez``-able).

    Keys (all estimators): ``format``, ``format_version``, ``estimator`` (class name),
    ``sklearn_version`` (the version the fit is interpreted with), ``n_features``, optional
    ``feature_names`` and ``classes``. Trees/forests/GB: ``n_trees`` and per tree ``tree{i}.``
    ``children_left``, ``children_right``, ``feature``, ``threshold``, ``value`` and (>= 1.3)
    ``missing_go_to_left``. GB adds ``n_stages``, ``K``, ``learning_rate``, ``loss``, ``init_raw``.
    HGB: ``n_iterations``, ``K``, ``loss``, ``baseline``, per predictor ``pred{i}_{k}.nodes`` and
    ``.raw_left_cat_bitsets``, ``known_cat_bitsets``, ``f_idx_map``, ``column_order`` and, for
    categorical models, ``is_categorical`` and ``categories{j}`` per original column ``j``.
    """
    import sklearn

    name, family, task = _require_sklearn_estimator(est)
    d: dict[str, Any] = {
        "format": ARRAYS_FORMAT,
        "format_version": ARRAYS_VERSION,
        "estimator": name,
        "sklearn_version": sklearn.__version__,
    }
    n_features = getattr(est, "n_features_in_", None)
    if n_features is None and family in ("tree", "forest", "gb"):
        n_features = getattr(est, "n_features_", None)
    if n_features is None:
        raise _not_fitted(name, "n_features_in_")
    d["n_features"] = int(n_features)
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        d["feature_names"] = np.asarray([str(s) for s in names])
    if task == "classification":
        classes = getattr(est, "classes_", None)
        if classes is None:
            raise _not_fitted(name, "classes_")
        if isinstance(classes, list):
            raise UnsupportedModelError(f"multi-output {name} is not supported", field="n_outputs")
        d["classes"] = np.asarray(classes)
    if family == "tree":
        if not hasattr(est, "tree_"):
            raise _not_fitted(name, "tree_")
        d["n_trees"] = 1
        _put_tree(d, 0, est.tree_)
    elif family == "forest":
        trees = getattr(est, "estimators_", None)
        if not trees:
            raise _not_fitted(name, "estimators_")
        d["n_trees"] = len(trees)
        for i, e in enumerate(trees):
            _put_tree(d, i, e.tree_)
    elif family == "gb":
        stages = getattr(est, "estimators_", None)
        if stages is None or not hasattr(est, "init_"):
            raise _not_fitted(name, "estimators_")
        stages = np.asarray(stages, dtype=object)
        n_stages, K = stages.shape
        d.update(n_stages=n_stages, K=K, n_trees=n_stages * K)
        d["learning_rate"] = float(est.learning_rate)
        d["loss"] = str(est.loss)
        for s in range(n_stages):
            for k in range(K):
                _put_tree(d, s * K + k, stages[s, k].tree_)
        d["init_raw"] = _gb_init_raw(est, name, int(n_features))
    else:
        _describe_hgb(est, name, d)
    return d


def _describe_hgb(est: Any, name: str, d: dict[str, Any]) -> None:
    predictors = getattr(est, "_predictors", None)
    if predictors is None or not hasattr(est, "_baseline_prediction"):
        raise _not_fitted(name, "_predictors")
    K = int(est.n_trees_per_iteration_)
    d.update(n_iterations=len(predictors), K=K, loss=str(est.loss))
    d["baseline"] = np.asarray(est._baseline_prediction, np.float64).reshape(-1).copy()
    for i, preds in enumerate(predictors):
        if len(preds) != K:
            raise ModelFormatError(f"iteration {i} has {len(preds)} predictors, expected {K}", field="_predictors")
        for k, p in enumerate(preds):
            d[f"pred{i}_{k}.nodes"] = np.asarray(p.nodes)
            d[f"pred{i}_{k}.raw_left_cat_bitsets"] = np.asarray(p.raw_left_cat_bitsets)
    known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    d["known_cat_bitsets"] = np.asarray(known)
    d["f_idx_map"] = np.asarray(f_idx_map)
    n = d["n_features"]
    is_cat = getattr(est, "is_categorical_", None)
    pre = getattr(est, "_preprocessor", None)
    if is_cat is None or not np.any(is_cat):
        d["column_order"] = np.arange(n)
        return
    is_cat = np.asarray(is_cat, bool)
    d["is_categorical"] = is_cat
    if pre is None:
        # scikit-learn < 1.4 bins raw values: the model compares uint8(x); see from_arrays
        d["column_order"] = np.arange(n)
        return
    # >= 1.4: ColumnTransformer([("encoder", OrdinalEncoder, is_cat), ("numerical", ..., ~is_cat)])
    tr = {t[0]: t[2] for t in pre.transformers_}
    if (
        set(tr) - {"remainder"} != {"encoder", "numerical"}
        or not np.array_equal(np.asarray(tr["encoder"], bool), is_cat)
        or not np.array_equal(np.asarray(tr["numerical"], bool), ~is_cat)
    ):
        raise UnsupportedModelError(
            f"{name}: unexpected categorical preprocessor layout {list(tr)}", field="_preprocessor"
        )
    d["column_order"] = np.concatenate([np.flatnonzero(is_cat), np.flatnonzero(~is_cat)])
    encoder = pre.named_transformers_["encoder"]
    for j, cats in zip(np.flatnonzero(is_cat), encoder.categories_, strict=True):
        cats = np.asarray(cats)
        if cats.dtype == object:
            keep = [c for c in cats.tolist() if not (isinstance(c, float) and math.isnan(c)) and c is not None]
            if all(isinstance(c, str) for c in keep):
                cats = np.asarray(keep, dtype=str)
            elif all(isinstance(c, int | float) and not isinstance(c, bool) for c in keep):
                cats = np.asarray(keep, dtype=np.float64)
            else:
                raise UnsupportedModelError(
                    f"{name}: categories of column {j} mix types ({sorted({type(c).__name__ for c in keep})})",
                    field="categories",
                )
        elif cats.dtype.kind == "f":
            cats = cats[~np.isnan(cats)]
        d[f"categories{j}"] = cats


# ============================================================================ arrays -> IR
def from_arrays(d: Any, *, path: str | None = None) -> Ensemble:
    """The :func:`describe` dict (or a ``numpy.load`` of it) -> :class:`Ensemble`."""
    if not hasattr(d, "keys"):
        raise ModelFormatError("expected a dict of arrays", path=path)
    d = {k: d[k] for k in d.keys()}
    try:
        fmt = _scalar(d, "format", str, path)
        if fmt != ARRAYS_FORMAT:
            raise ModelFormatError(f"not an {ARRAYS_FORMAT} document ({fmt!r})", path=path, field="format")
        fv = _scalar(d, "format_version", int, path)
        if fv != ARRAYS_VERSION:
            raise ModelFormatError(
                f"version {fv} is not supported (this ltrcompile reads {ARRAYS_VERSION})", path=path, field="format_version"
            )
        name = _scalar(d, "estimator", str, path)
        if name not in SUPPORTED:
            raise UnsupportedModelError(f"scikit-learn {name} is not supported", path=path, field="estimator")
        family, task = SUPPORTED[name]
        version = _scalar(d, "sklearn_version", str, path)
        try:
            vt = parse_version(version)
        except ModelFormatError as exc:
            raise ModelFormatError(exc.reason, path=path, field="sklearn_version") from None
        n_features = _scalar(d, "n_features", int, path)
        if n_features < 1:
            raise ModelFormatError("n_features must be >= 1", path=path, field="n_features")
        limits.check_features(n_features, _payload_bytes(d), path=path)
        feature_names = None
        if "feature_names" in d:
            fn = np.asarray(d["feature_names"])
            if fn.shape != (n_features,) or fn.dtype.kind not in "UO":
                raise ModelFormatError(f"expected {n_features} names", path=path, field="feature_names")
            feature_names = [str(s) for s in fn.tolist()]
        classes = None
        if task == "classification":
            c = np.asarray(d.get("classes", np.zeros(0)))
            if c.ndim != 1 or c.size < 1:
                raise ModelFormatError("classifier without classes", path=path, field="classes")
            classes = c
        common = dict(
            feature_names=feature_names,
            provenance={
                "library": "scikit-learn",
                "version": version,
                "estimator": name,
                **({"classes": _jsonable(classes)} if classes is not None else {}),
            },
        )
        if family == "hgb":
            ens = _hgb_ensemble(d, name, task, vt, n_features, path, common)
        else:
            ens = _tree_ensemble(d, name, family, task, vt, n_features, classes, path, common)
    except IRValidationError as exc:
        raise ModelFormatError(exc.reason, path=path, tree=exc.tree, node=exc.node, field=exc.field) from exc
    return ens


def _payload_bytes(d: dict[str, Any]) -> int:
    """Bytes of model data in a :func:`describe` dict: what the size limits scale with."""
    return sum(v.nbytes if isinstance(v, np.ndarray) else len(str(v)) for v in d.values())


def _jsonable(a: np.ndarray) -> list[Any]:
    out = []
    for v in a.tolist():
        out.append(v if isinstance(v, str | int | float | bool) or v is None else str(v))
    return out


def _tree_ensemble(
    d: dict[str, Any],
    name: str,
    family: str,
    task: str,
    vt: tuple[int, int],
    n_features: int,
    classes: np.ndarray | None,
    path: str | None,
    common: dict[str, Any],
) -> Ensemble:
    n_trees = _scalar(d, "n_trees", int, path)
    if n_trees < 1:
        raise ModelFormatError("no trees", path=path, field="n_trees")
    limits.check_trees(n_trees, _payload_bytes(d), path=path, field="n_trees")
    if family == "tree" and n_trees != 1:
        raise ModelFormatError(f"{name} must have exactly one tree", path=path, field="n_trees")
    gb = family == "gb"
    counts = vt < (1, 4)  # tree_.value holds weighted class counts before scikit-learn 1.4
    n_classes = 0 if classes is None else int(classes.size)
    trees = []
    for i in range(n_trees):
        cl, cr, feat, thr, value, mgl = _sk_tree(d, i, path)
        if gb:
            if value.shape[1:] != (1, 1):
                raise ModelFormatError(
                    f"GB regression tree value must have shape (n, 1, 1), got {value.shape}",
                    path=path,
                    tree=i,
                    field="value",
                )
            lv = value[:, 0, :].astype(np.float64)
        else:
            lv = leaf_values(value, task=task, n_classes=n_classes, counts=counts, path=path, tree=i)
        cover = d.get(f"tree{i}.weighted_n_node_samples")
        trees.append(
            tree_arrays(cl, cr, feat, thr, lv, mgl, n_features=n_features, path=path, tree=i, cover=cover)
        )
    dims = {t.leaf_value.shape[1] for t in trees}
    if len(dims) != 1:
        raise ModelFormatError(f"trees disagree on the number of outputs {sorted(dims)}", path=path, field="value")
    model: dict[str, Any] = dict(
        input_cast="float32",
        int_input_cast="float32",
        sparse_absent="zero",
        accumulate="float64",
        **common,
    )
    model["provenance"]["n_estimators"] = n_trees
    if not gb:
        leaf_dim = dims.pop()
        if family == "forest" and n_trees > 1:
            model.update(average_denominator=float(n_trees), average_raw=True)
        return Ensemble.from_trees(trees, n_features=n_features, n_outputs=leaf_dim, transform="identity", **model)
    n_stages = _scalar(d, "n_stages", int, path)
    K = _scalar(d, "K", int, path)
    if K < 1 or n_stages * K != n_trees:
        raise ModelFormatError(f"{n_stages} stages x {K} trees != {n_trees} trees", path=path, field="K")
    lr = _scalar(d, "learning_rate", float, path)
    if not math.isfinite(lr):
        raise ModelFormatError("learning_rate is not finite", path=path, field="learning_rate")
    init = _array(d, "init_raw", path, ndim=1, kind="f").astype(np.float64)
    if init.shape != (K,) or not np.all(np.isfinite(init)):
        raise ModelFormatError(f"init_raw must be {K} finite values", path=path, field="init_raw")
    loss = _scalar(d, "loss", str, path)
    transform = _gb_transform(name, task, loss, K, n_classes, path)
    model["provenance"].update(n_estimators=n_stages, loss=loss, learning_rate=lr)
    return Ensemble.from_trees(
        trees,
        n_features=n_features,
        n_outputs=K,
        tree_output=np.tile(np.arange(K), n_stages),
        tree_weight=lr,
        base_score=init,
        transform=transform,
        **model,
    )


def _gb_transform(name: str, task: str, loss: str, K: int, n_classes: int, path: str | None) -> str:
    if task == "regression":
        if loss not in _GB_REGRESSION_LOSSES or K != 1:
            raise UnsupportedModelError(f"{name} loss {loss!r} is not supported", path=path, field="loss")
        return "identity"
    expected_k = 1 if n_classes == 2 else n_classes
    if K != expected_k:
        raise ModelFormatError(f"{K} trees per stage for {n_classes} classes", path=path, field="K")
    if loss == "exponential" and K == 1:
        return "sigmoid2_binary_proba"
    if loss in _CLASSIFIER_LOSSES:
        return "sigmoid_binary_proba" if K == 1 else "softmax"
    raise UnsupportedModelError(f"{name} loss {loss!r} is not supported", path=path, field="loss")


# ---------------------------------------------------------------------------- HGB
def _bits(words: np.ndarray) -> np.ndarray:
    """Set bits of a 256-bit bitset stored as 8 little-endian uint32 words -> sorted codes."""
    w = np.asarray(words, np.uint64)
    idx = np.arange(w.size * 32)
    return idx[((w[idx // 32] >> (idx % 32).astype(np.uint64)) & np.uint64(1)).astype(bool)]


def _hgb_transform(name: str, task: str, loss: str, K: int, n_classes: int, path: str | None) -> str:
    if task == "regression":
        if K != 1:
            raise ModelFormatError(f"regressor with {K} trees per iteration", path=path, field="K")
        if loss in _HGB_IDENTITY_LOSSES:
            return "identity"
        if loss in _HGB_LOG_LOSSES:
            return "exp"
        raise UnsupportedModelError(f"{name} loss {loss!r} is not supported", path=path, field="loss")
    if loss not in _CLASSIFIER_LOSSES:
        raise UnsupportedModelError(f"{name} loss {loss!r} is not supported", path=path, field="loss")
    expected_k = 1 if n_classes == 2 else n_classes
    if K != expected_k:
        raise ModelFormatError(f"{K} trees per iteration for {n_classes} classes", path=path, field="K")
    return "sigmoid_binary_proba" if K == 1 else "softmax"


def _hgb_categories(
    d: dict[str, Any], n_features: int, path: str | None
) -> tuple[dict[int, np.ndarray], dict[int, list[Any]]]:
    """Per original categorical column: code -> IR category value, and pandas labels if strings."""
    code_values: dict[int, np.ndarray] = {}
    labels: dict[int, list[Any]] = {}
    for j in range(n_features):
        key = f"categories{j}"
        if key not in d:
            continue
        cats = np.asarray(d[key])
        if cats.ndim != 1:
            raise ModelFormatError("categories must be 1-D", path=path, field=key)
        if cats.dtype.kind in "US":
            code_values[j] = np.arange(cats.size, dtype=np.int64)
            labels[j] = [str(c) for c in cats.tolist()]
            continue
        if cats.dtype.kind not in "fiu":
            raise ModelFormatError(f"unexpected dtype {cats.dtype}", path=path, field=key)
        v = cats.astype(np.float64)
        ok = np.isfinite(v) & (v >= 0) & (v < _MAX_CATEGORY) & (v == np.trunc(v))
        if not ok.all():
            bad = v[~ok][0]
            raise UnsupportedModelError(
                f"category value {bad!r} of column {j}: only integer categories in [0, 2**31) or "
                "string categories can be compiled",
                path=path,
                field=key,
            )
        code_values[j] = v.astype(np.int64)
    return code_values, labels


def _hgb_ensemble(
    d: dict[str, Any],
    name: str,
    task: str,
    vt: tuple[int, int],
    n_features: int,
    path: str | None,
    common: dict[str, Any],
) -> Ensemble:
    n_iter = _scalar(d, "n_iterations", int, path)
    limits.check_trees(n_iter, _payload_bytes(d), path=path, field="n_iterations", what="iteration count")
    K = _scalar(d, "K", int, path)
    loss = _scalar(d, "loss", str, path)
    if n_iter < 0 or K < 1:
        raise ModelFormatError(f"bad shape {n_iter} iterations x {K}", path=path, field="K")
    n_classes = len(common["provenance"].get("classes", []))
    transform = _hgb_transform(name, task, loss, K, n_classes, path)
    baseline = _array(d, "baseline", path, ndim=1, kind="f").astype(np.float64)
    if baseline.shape != (K,) or not np.all(np.isfinite(baseline)):
        raise ModelFormatError(f"baseline must be {K} finite values", path=path, field="baseline")
    order = _int_array(d, "column_order", path)
    if order.shape != (n_features,) or not np.array_equal(np.sort(order), np.arange(n_features)):
        raise ModelFormatError("column_order is not a permutation of the columns", path=path, field="column_order")
    has_cat = "is_categorical" in d and bool(np.any(d["is_categorical"]))
    if has_cat and vt < (1, 4):
        raise UnsupportedModelError(
            f"{name} with categorical features fitted by scikit-learn {'.'.join(map(str, vt))}: before 1.4 "
            "the model compares uint8(x) against raw-value bitsets, which cannot be represented",
            path=path,
            field="categorical_features",
        )
    code_values, labels = _hgb_categories(d, n_features, path) if has_cat else ({}, {})
    known = np.asarray(d.get("known_cat_bitsets", np.zeros((0, 8), np.uint32)))
    f_idx_map = np.asarray(d.get("f_idx_map", np.zeros(n_features, np.uint32))).astype(np.int64)
    trees = []
    for i in range(n_iter):
        for k in range(K):
            t = len(trees)
            trees.append(
                _hgb_tree(d, f"pred{i}_{k}", t, order, code_values, known, f_idx_map, n_features, path)
            )
    if not trees:
        raise UnsupportedModelError(f"{name} has no trees", path=path, field="_predictors")
    common["provenance"].update(n_estimators=n_iter, loss=loss)
    return Ensemble.from_trees(
        trees,
        n_features=n_features,
        n_outputs=K,
        tree_output=np.tile(np.arange(K), n_iter),
        base_score=baseline,
        input_cast="float64",
        int_input_cast="float64",
        sparse_absent="zero",
        categorical_rule="sklearn",
        accumulate="float64",
        transform=transform,
        feature_categories=labels or None,
        **common,
    )


_NODE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "is_categorical", "bitset_idx")


def _hgb_tree(
    d: dict[str, Any],
    key: str,
    t: int,
    order: np.ndarray,
    code_values: dict[int, np.ndarray],
    known: np.ndarray,
    f_idx_map: np.ndarray,
    n_features: int,
    path: str | None,
) -> TreeArrays:
    def fail(msg: str, node: int | None, fld: str) -> ModelFormatError:
        return ModelFormatError(msg, path=path, tree=t, node=node, field=fld)

    nodes = np.asarray(d.get(key + ".nodes"))
    if nodes.ndim != 1 or nodes.dtype.names is None:
        raise fail("predictor nodes must be a 1-D record array", None, key + ".nodes")
    missing = [f for f in _NODE_FIELDS if f not in nodes.dtype.names]
    if missing:
        raise fail(f"predictor nodes lack fields {missing}", None, key + ".nodes")
    n = nodes.shape[0]
    if n < 1:
        raise fail("tree has no nodes", None, "nodes")
    is_leaf = nodes["is_leaf"].astype(bool)
    internal = ~is_leaf
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    feat = nodes["feature_idx"].astype(np.int64)
    for name, ch in (("left", left), ("right", right)):
        bad = np.flatnonzero(internal & ((ch < 1) | (ch >= n)))
        if bad.size:
            raise fail(f"child index {ch[bad[0]]} outside [1, {n})", int(bad[0]), name)
    bad = np.flatnonzero(internal & ((feat < 0) | (feat >= n_features)))
    if bad.size:
        raise fail(f"feature_idx {feat[bad[0]]} outside [0, {n_features})", int(bad[0]), "feature_idx")
    value = nodes["value"].astype(np.float64)
    bad = np.flatnonzero(is_leaf & ~np.isfinite(value))
    if bad.size:
        raise fail("leaf value is not finite", int(bad[0]), "value")
    thr = nodes["num_threshold"].astype(np.float64)
    cat = internal & nodes["is_categorical"].astype(bool)
    bad = np.flatnonzero(internal & ~cat & np.isnan(thr))
    if bad.size:
        raise fail("split threshold is NaN", int(bad[0]), "num_threshold")
    tr = TreeArrays.empty(n, 1, op=Op.LE, missing=Missing.NAN_DEFAULT)
    tr.left[internal] = left[internal]
    tr.right[internal] = right[internal]
    tr.feature[internal] = order[feat[internal]]
    tr.threshold[internal & ~cat] = thr[internal & ~cat]
    tr.default_left[internal] = nodes["missing_go_to_left"][internal] != 0
    leaves = np.flatnonzero(is_leaf)
    tr.leaf_value[leaves, 0] = value[leaves]
    tr.leaf_id[leaves] = leaves
    if "count" in nodes.dtype.names:
        tr.cover = _cover(nodes["count"], n, fail, "count")
    if cat.any():
        bitsets = np.asarray(d.get(key + ".raw_left_cat_bitsets", np.zeros((0, 8), np.uint32)))
        if bitsets.ndim != 2 or bitsets.shape[1] != 8:
            raise fail(f"expected shape (n, 8), got {bitsets.shape}", None, "raw_left_cat_bitsets")
        for node in np.flatnonzero(cat):
            _hgb_cat_node(tr, int(node), nodes[node], order, code_values, bitsets, known, f_idx_map, fail)
    return tr


def _hgb_cat_node(
    tr: TreeArrays,
    node: int,
    rec: Any,
    order: np.ndarray,
    code_values: dict[int, np.ndarray],
    bitsets: np.ndarray,
    known: np.ndarray,
    f_idx_map: np.ndarray,
    fail: Any,
) -> None:
    """scikit-learn: left set -> left, other known categories -> right, anything else (unknown
    values, negative, non-integer) -> the missing direction. Encoded with one category set whose
    complement is the missing side: missing left -> set = known minus left-set, in-set goes right;
    missing right -> set = left-set, in-set goes left."""
    f_model = int(rec["feature_idx"])
    col = int(order[f_model])
    if col not in code_values:
        raise fail(f"categorical split on column {col}, which has no categories", node, "is_categorical")
    b = int(rec["bitset_idx"])
    if not 0 <= b < bitsets.shape[0]:
        raise fail(f"bitset_idx {b} outside [0, {bitsets.shape[0]})", node, "bitset_idx")
    m = int(f_idx_map[f_model]) if 0 <= f_model < f_idx_map.size else -1
    if not 0 <= m < known.shape[0]:
        raise fail(f"no known-category bitset for feature {f_model}", node, "known_cat_bitsets")
    values = code_values[col]
    left_codes = _bits(bitsets[b])
    known_codes = _bits(known[m])
    for codes in (left_codes, known_codes):
        if codes.size and codes[-1] >= values.size:
            raise fail(f"category code {codes[-1]} beyond the {values.size} categories", node, "raw_left_cat_bitsets")
    if rec["missing_go_to_left"]:
        codes = np.setdiff1d(known_codes, left_codes)
        tr.cat_left[node] = 0
    else:
        codes = left_codes
        tr.cat_left[node] = 1
    tr.categorical[node] = 1
    tr.threshold[node] = 0.0
    tr.cat_sets[node] = np.unique(values[codes]).astype(np.int32)


# ============================================================================ entry points
def _check_options(options: dict[str, Any], kind: str) -> None:
    if options:
        raise TypeError(f"the {kind} format takes no options; got {sorted(options)}")


def accepts(obj: Any) -> bool:
    """True for any scikit-learn object: supported estimators load, others get a clear error."""
    return type(obj).__module__.startswith("sklearn.")


def from_object(obj: Any, **options: Any) -> Ensemble:
    """Fitted in-memory estimator -> Ensemble (via :func:`describe` and :func:`from_arrays`)."""
    _check_options(options, "sklearn")
    try:
        ens = from_arrays(describe(obj))
    except LtrCompileError:
        raise
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
        raise ModelFormatError(f"cannot read {type(obj).__name__}: {exc!r}") from exc
    ens.provenance = ens.provenance.with_(source=f"in-memory {type(obj).__module__}.{type(obj).__qualname__}")
    return ens


def _fitted_version(caught: list[warnings.WarningMessage]) -> str | None:
    for w in caught:
        v = getattr(w.message, "original_sklearn_version", None)
        if isinstance(v, str):
            return v
        m = re.search(r"from version (\S+) when using version", str(w.message))
        if m:
            return m.group(1)
    return None


def load_pickle(path: str | os.PathLike[str], **options: Any) -> Ensemble:
    """A joblib or pickle file holding a fitted estimator -> Ensemble.

    **Unpickling runs code from the file: only load files you trust.** The file is unpickled in a
    child process (:mod:`._pickle_child`) under memory and time limits (``LTRCOMPILE_PICKLE_MEMORY_MB``,
    default 1024 + 32 bytes per byte of file; ``LTRCOMPILE_PICKLE_TIMEOUT_S``, default 120), which
    hands back only the :func:`describe` arrays: a corrupt pickle that crashes, hangs or exhausts
    memory is a :class:`ModelFormatError` here, never a crash of the caller. When the file was written
    by another scikit-learn version, the version it records decides how ``tree_.value`` is read.
    """
    from ._pickle_child import unpickle_isolated

    p = os.fspath(path)
    _check_options(options, "sklearn-pickle")
    d, fitted, loaded_with = unpickle_isolated(p)
    return _finish_pickle(d, fitted, loaded_with, p)


def load_pickle_here(path: str) -> tuple[dict[str, Any], str | None, str]:
    """The child's half of :func:`load_pickle`: unpickle *in this process* and describe the
    estimator. Only call it where a crash is contained (the child process, the fuzzer's sandbox)."""
    try:
        import joblib
    except ImportError as exc:  # pragma: no cover - joblib ships with scikit-learn
        raise UnsupportedModelError("reading sklearn pickles needs joblib (pip install scikit-learn)", path=path) from exc
    import sklearn

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obj = joblib.load(path)
    except MemoryError:
        raise
    except Exception as exc:  # unpickling can raise anything; the file is what is wrong
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelFormatError(
            f"cannot unpickle: {type(exc).__name__}: {first[:300]} (a pickle loads only with a compatible "
            "scikit-learn; to move a model between versions, save ltrcompile.frontends.sklearn."
            "describe(est) with numpy.savez where it was trained and read it with from_arrays)",
            path=path,
        ) from exc
    if not accepts(obj):
        raise UnsupportedModelError(
            f"the file holds a {type(obj).__module__}.{type(obj).__qualname__}, not a scikit-learn estimator",
            path=path,
        )
    try:
        d = describe(obj)
    except LtrCompileError as exc:
        if isinstance(exc, ModelFormatError | UnsupportedModelError) and exc.path is None:
            raise type(exc)(exc.reason, path=path, tree=exc.tree, node=exc.node, field=exc.field) from exc
        raise
    except (AttributeError, TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
        # the attributes of an unpickled object are whatever the file says: wrong types and sizes
        raise ModelFormatError(f"cannot read {type(obj).__name__}: {exc!r}"[:500], path=path) from exc
    return d, _fitted_version(caught), sklearn.__version__


def _finish_pickle(d: dict[str, Any], fitted: str | None, loaded_with: str, p: str) -> Ensemble:
    if fitted is not None:
        d["sklearn_version"] = fitted
    try:
        ens = from_arrays(d, path=p)
    except LtrCompileError as exc:
        if isinstance(exc, ModelFormatError | UnsupportedModelError) and exc.path is None:
            raise type(exc)(exc.reason, path=p, tree=exc.tree, node=exc.node, field=exc.field) from exc
        raise
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise ModelFormatError(f"cannot read the estimator's arrays: {exc!r}"[:500], path=p) from exc
    if fitted is not None:
        ens.provenance = ens.provenance.with_(loaded_with=loaded_with)
    return ens


# a module name "sklearn.*" as pickle writes it: GLOBAL ("c" + text), SHORT_BINUNICODE (0x8c + 1-byte
# length), BINUNICODE ("X" + 4-byte length) or BINUNICODE8 (0x8d + 8-byte length)
_SK_MODULE = re.compile(rb"(?:c|\x8c.|X.{4}|\x8d.{8})sklearn\.[a-z_]", re.DOTALL)


def _decompressed_head(head: bytes) -> bytes:
    """First bytes of a joblib-compressed file (zlib, gzip, bz2, xz/lzma), else ``b""``."""
    try:
        if head[:1] == b"\x78":
            return zlib.decompressobj().decompress(head, 4096)
        if head[:2] == b"\x1f\x8b":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
        if head[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(head, 4096)
        if head[:6] == b"\xfd7zXZ\x00" or head[:1] == b"\x5d":
            return lzma.LZMADecompressor().decompress(head, 4096)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return b""
    return b""


def sniff(head: bytes, path: str) -> list[str]:
    """A pickle (protocol >= 2) naming a ``sklearn.`` module, plain or joblib-compressed."""
    for data in (head, _decompressed_head(head)):
        if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5 and _SK_MODULE.search(data):
            return ["sklearn-pickle"]
    return []


FORMATS = {"sklearn-pickle": load_pickle}

