"""Regression tests for issue 15 (hardening): one per defect found by fuzzing and crafted inputs,
each rebuilding the file or input that triggered it, plus the valid constructs other projects write.

Expected values come from the source libraries (LightGBM/XGBoost predictions, the exception XGBoost
raises) or, for the Java plugins, from the Java rule quoted in the test.
"""

from __future__ import annotations

import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ltrcompile import limits
from ltrcompile.cli import EXIT_BAD_INPUT, EXIT_INTERNAL, exit_code_for
from ltrcompile.errors import InputDataError, ModelFormatError
from ltrcompile.frontends import elasticsearch as es
from ltrcompile.frontends import lightgbm as lgbf
from ltrcompile.frontends import load_model, ranklib


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``."""

    def boom(signum, frame):
        raise AssertionError(f"still running after {seconds} s (a hang)")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def ranklib_stump(feature: str = "2", threshold: str = "0.5", left: str = "1.0", right: str = "2.0") -> str:
    """A one-split LambdaMART model laid out as RankLib's ``-save`` writes it."""
    return (
        "## LambdaMART\n## No. of trees = 1\n## No. of leaves = 2\n<ensemble>\n"
        '\t<tree id="1" weight="0.1">\n\t\t<split>\n'
        f"\t\t\t<feature> {feature} </feature>\n\t\t\t<threshold> {threshold} </threshold>\n"
        f'\t\t\t<split pos="left">\n\t\t\t\t<output> {left} </output>\n\t\t\t</split>\n'
        f'\t\t\t<split pos="right">\n\t\t\t\t<output> {right} </output>\n\t\t\t</split>\n'
        "\t\t</split>\n\t</tree>\n</ensemble>\n"
    )


# ============================================================================ RankLib numbers
def test_ranklib_huge_exponent_is_parsed_in_bounded_time():
    """``1E999999999`` used to start an exact conversion building a billion-digit integer (the
    parser, and the service it ran in, hung). Float.parseFloat gives Infinity; x <= +inf goes left."""
    t0 = time.monotonic()
    with deadline(10):
        ens = ranklib.loads(ranklib_stump(threshold="1E999999999"))
        assert ranklib.java_float("1E999999999") == np.inf
        assert ranklib.java_float("-1E999999999") == -np.inf
        assert ranklib.java_float("1E-999999999") == 0.0
        assert ranklib.java_double("1e" + "9" * 5000) == np.inf
        assert ranklib.java_float("0." + "0" * 100000 + "1") == 0.0
    assert time.monotonic() - t0 < 5
    assert ens.predict(np.array([[0.0, 1e30]]))[0] == pytest.approx(np.float32(0.1) * np.float32(1.0))
    with deadline(10), pytest.raises(ModelFormatError, match="not finite") as err:
        ranklib.loads(ranklib_stump(left="1E999999999"))
    assert exit_code_for(err.value) == EXIT_BAD_INPUT


@pytest.mark.parametrize(
    "literal, expected",
    [
        # float32 rounding boundaries, worked from the IEEE values: MAX + half an ulp rounds to inf
        ("3.4028235677973366E38", float(np.finfo(np.float32).max)),
        ("3.4028235677973367E38", np.inf),
        ("7.0064923216240854E-46", float(np.float32(1.401298464324817e-45))),  # just above min/2
        ("7.006492321624085E-46", 0.0),  # just below min/2
        ("1" * 400 + "E-362", float(np.float32(1.1111111e37))),  # long mantissa, same value
        ("000123.4500e+0002", float(np.float32(12345.0))),
    ],
)
def test_bounded_java_float_keeps_correct_rounding(literal, expected):
    assert ranklib.java_float(literal) == expected


def test_ranklib_hang_through_o19s_definition():
    doc = {"model": {"name": "m", "model": {"type": "model/ranklib", "definition": ranklib_stump(threshold="1E999999999")}}}
    with deadline(10):
        ens = es.from_object(doc, feature_set=["a", "b"])
    assert ens.threshold[0] == np.inf


def test_ranklib_huge_feature_id_is_capped_by_file_size(tmp_path):
    """Feature 2147483647 in a 300-byte file used to give n_features = 2**31-1 (``inspect`` then
    allocated 16 GiB); the limit scales with the file size."""
    p = tmp_path / "m.txt"
    p.write_text(ranklib_stump(feature="2147483647"))
    with pytest.raises(ModelFormatError, match="feature id 2147483647 exceeds the limit") as err:
        load_model(str(p))
    assert err.value.field == "feature" and str(p) in str(err.value)
    assert exit_code_for(err.value) == EXIT_BAD_INPUT
    assert limits.max_features(p.stat().st_size) < 2**31 - 1
    # a feature id within the floor still loads
    p.write_text(ranklib_stump(feature=str(limits.FEATURE_FLOOR)))
    assert load_model(str(p)).n_features == limits.FEATURE_FLOOR


def test_sklearn_huge_n_features_in_is_capped(tmp_path):
    joblib = pytest.importorskip("joblib")
    from sklearn.tree import DecisionTreeRegressor

    X = np.random.default_rng(0).random((40, 3))
    est = DecisionTreeRegressor(max_depth=2).fit(X, X[:, 0])
    est.n_features_in_ = 2**31
    p = tmp_path / "m.joblib"
    joblib.dump(est, p)
    with pytest.raises(ModelFormatError, match="exceeds the limit") as err:
        load_model(str(p))
    assert err.value.field == "n_features"


# ============================================================================ LightGBM
def _lgb_booster():
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    X = rng.random((300, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = X[:, 0] + 2 * np.nan_to_num(X[:, 1])
    return lgb, lgb.train({"objective": "regression", "num_leaves": 7, "verbose": -1}, lgb.Dataset(X, y), 5), X


def test_lightgbm_dump_missing_type_list_is_a_typed_error(tmp_path):
    """``"missing_type": ["NaN"]`` raised TypeError (unhashable) -> exit 70 instead of 2."""
    _, bst, _ = _lgb_booster()
    doc = bst.dump_model()
    doc["tree_info"][0]["tree_structure"]["missing_type"] = ["NaN"]
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match="missing_type") as err:
        lgbf.load_dump_json(p)
    assert err.value.field == "missing_type" and err.value.tree == 0


def test_lightgbm_2_0_layout_without_end_of_trees(tmp_path):
    """LightGBM 2.0.x wrote no ``version``, ``tree_sizes`` or ``end of trees``: the tree list ended
    at ``feature importances:``. LightGBM's loader (no tree_sizes: read ``Tree=`` blocks until the
    first other line) still loads such a file; so must we, with LightGBM's own predictions."""
    lgb, bst, X = _lgb_booster()
    text = bst.model_to_string()
    lines = [s for s in text.split("\n") if not s.startswith(("version=", "tree_sizes="))]
    body = "\n".join(lines)
    old = body[: body.index("end of trees")] + "\nfeature importances:\nColumn_0=9\nColumn_1=6\n"
    p = tmp_path / "m20.txt"
    p.write_text(old)
    expected = lgb.Booster(model_file=str(p)).predict(X, raw_score=True)
    ens = lgbf.load_text(p)
    np.testing.assert_allclose(ens.predict(X, raw_score=True), expected, rtol=0, atol=1e-12)
    # the same file cut at a tree boundary ends at end of file, as LightGBM's loader does
    cut = old[: old.index("Tree=3")]
    p.write_text(cut)
    assert lgbf.load_text(p).n_trees == 3 == lgb.Booster(model_file=str(p)).num_trees()
    # with version/tree_sizes (every writer since 2.1) 'end of trees' is still required, so a
    # truncated file is caught
    modern = text[: text.index("Tree=3")]
    p.write_text(modern)
    with pytest.raises(ModelFormatError, match="end of trees"):
        lgbf.load_text(p)
    no_sizes = "\n".join(s for s in modern.split("\n") if not s.startswith("tree_sizes="))
    p.write_text(no_sizes)
    with pytest.raises(ModelFormatError, match="end of trees"):
        lgbf.load_text(p)


# ============================================================================ sparse and frames
class _Model:
    pass


@pytest.fixture(scope="module")
def xgb_small():
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.random((200, 3))
    bst = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, X[:, 0] - X[:, 2]), 4)
    return load_model(bst), X


def test_csr_negative_index_is_refused_not_wrapped(xgb_small):
    sp = pytest.importorskip("scipy.sparse")
    ens, X = xgb_small
    bad = sp.csr_matrix((np.array([5.0]), np.array([-1]), np.array([0, 1])), shape=(1, 3))
    with pytest.raises(InputDataError, match="column index -1 in row 0"):
        ens.predict(bad)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda m: m.indices.__setitem__(0, 3), "column index 3 in row 0"),
        (lambda m: m.indices.__setitem__(1, -7), "column index -7 in row 1"),
        (lambda m: m.indptr.__setitem__(1, 3), "inconsistent sparse matrix"),  # beyond nnz
        (lambda m: m.indptr.__setitem__(2, 0), "inconsistent sparse matrix"),  # decreasing
        (lambda m: m.indptr.__setitem__(0, 1), "inconsistent sparse matrix"),
    ],
)
def test_csr_out_of_range_and_bad_indptr_are_typed(xgb_small, mutate, match):
    """Arrays edited in place (scipy checks them only at construction) used to raise a raw
    IndexError, or silently read another column."""
    sp = pytest.importorskip("scipy.sparse")
    ens, _ = xgb_small
    bad = sp.csr_matrix((np.ones(3), np.array([0, 1, 2]), np.array([0, 1, 2, 3])), shape=(3, 3))
    mutate(bad)
    with pytest.raises(InputDataError, match=match):
        ens.predict(bad)


def test_wide_sparse_matrix_is_refused_before_densifying(xgb_small):
    sp = pytest.importorskip("scipy.sparse")
    ens, _ = xgb_small
    wide = sp.csr_matrix((10, 2**31))
    with pytest.raises(InputDataError, match="2147483648 feature columns"):
        ens.predict(wide)
    good = sp.csr_matrix(xgb_small[1][:5])
    np.testing.assert_array_equal(ens.predict(good), ens.predict(xgb_small[1][:5]))


def test_duplicate_dataframe_columns_are_refused(xgb_small):
    pd = pytest.importorskip("pandas")
    ens, X = xgb_small
    df = pd.DataFrame(X[:4], columns=["a", "b", "a"])
    with pytest.raises(InputDataError, match="duplicate column names \\['a'\\]"):
        ens.predict(df)


def test_xgboost_category_checks_follow_xgboost():
    pd = pytest.importorskip("pandas")
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": pd.Categorical(rng.integers(0, 4, 200)), "b": rng.random(200)})
    model = xgb.XGBRegressor(n_estimators=3, enable_categorical=True, tree_method="hist", max_cat_to_onehot=1)
    model.fit(df, rng.random(200))
    ens = load_model(model)
    cases = {
        "strings": pd.DataFrame({"a": pd.Categorical(["0", "1", "2", "3"]), "b": [0.1, 0.2, 0.3, 0.4]}),
        "unseen": pd.DataFrame({"a": pd.Categorical([0, 1, 7, 3]), "b": [0.1, 0.2, 0.3, 0.4]}),
        "unused unseen": pd.DataFrame({"a": pd.Categorical([0, 1, 1, 0], categories=[0, 1, 2, 3, 9]), "b": [0.1] * 4}),
        "float index": pd.DataFrame({"a": pd.Categorical([0.0, 1.0, 2.0, 3.0]), "b": [0.1, 0.2, 0.3, 0.4]}),
    }
    for frame in cases.values():
        with pytest.raises(xgb.core.XGBoostError):  # the library refuses ...
            model.predict(frame)
        with pytest.raises(InputDataError):  # ... and so do we
            ens.predict(frame)
    ok = pd.DataFrame({"a": pd.Categorical([0, 1, 1, 0], categories=[3, 2, 1, 0]), "b": [0.1, 0.2, 0.3, 0.4]})
    np.testing.assert_allclose(ens.predict(ok), model.predict(ok), rtol=1e-6)


# ============================================================================ Elasticsearch
def test_es_native_ensemble_without_aggregate_output_is_a_weighted_sum():
    """``Ensemble.Builder`` starts from ``new WeightedSum()`` (weights null: every weight 1), so an
    ensemble document without ``aggregate_output`` sums its trees (Kahan, like weighted_sum {})."""
    leaf = lambda v: {"tree": {"feature_names": ["a"], "tree_structure": [{"node_index": 0, "leaf_value": v}]}}  # noqa: E731
    doc = {"trained_model": {"ensemble": {"feature_names": ["a"], "target_type": "regression",
                                          "trained_models": [leaf(1.0), leaf(1e-16), leaf(1e-16)]}}}
    ens = es.from_object(doc)
    assert ens.predict(np.zeros((1, 1)))[0] == 1.0000000000000002
    doc["trained_model"]["ensemble"]["aggregate_output"] = {"weighted_sum": {}}
    assert es.from_object(doc).predict(np.zeros((1, 1)))[0] == 1.0000000000000002


def _xgb_dump_and_data():
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(2)
    names = ["f0", "f1", "f2"]
    X = rng.random((400, 3)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    d = xgb.DMatrix(X, (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0.8).astype(float), feature_names=names, feature_types=["float"] * 3)
    bst = xgb.train({"max_depth": 3, "base_score": 0.0, "nthread": 1, "objective": "binary:logitraw"}, d, 5)
    return xgb, bst, names, X.astype(np.float64)


def test_o19s_xgboost_missing_as_zero():
    """OpenSearch LTR (PR #389/#391): top-level ``"missing_as_zero": true`` makes an unmatched
    feature read 0.0 (routed as a real 0.0, not by the missing branch): the model then scores as
    XGBoost does on the rows with NaN replaced by 0."""
    xgb, bst, names, X = _xgb_dump_and_data()
    dump = [json.loads(t) for t in bst.get_dump(dump_format="json")]
    defn = {"objective": "binary:logitraw", "missing_as_zero": True, "splits": dump}
    doc = {"model": {"name": "m", "model": {"type": "model/xgboost+json", "definition": json.dumps(defn)}}}
    ens = es.from_object(doc, feature_set=names)
    zero = np.nan_to_num(X, nan=0.0)
    want = bst.predict(xgb.DMatrix(zero.astype(np.float32), feature_names=names), output_margin=True)
    np.testing.assert_allclose(ens.predict(X), want, rtol=0, atol=1e-6)
    assert ens.provenance["missing_as_zero"] is True
    # default false: NaN follows the missing branch, like XGBoost on the NaN rows
    defn["missing_as_zero"] = False
    doc["model"]["model"]["definition"] = json.dumps(defn)
    nan_want = bst.predict(xgb.DMatrix(X.astype(np.float32), feature_names=names), output_margin=True)
    np.testing.assert_allclose(es.from_object(doc, feature_set=names).predict(X), nan_want, rtol=0, atol=1e-6)
    defn["missing_as_zero"] = "yes"
    doc["model"]["model"]["definition"] = json.dumps(defn)
    with pytest.raises(ModelFormatError, match="missing_as_zero"):
        es.from_object(doc, feature_set=names)


def test_o19s_xgboost_raw_missing_as_zero():
    xgb, bst, names, X = _xgb_dump_and_data()
    raw = json.loads(bst.save_raw("json"))
    raw["missing_as_zero"] = True
    doc = {"model": {"name": "m", "model": {"type": "model/xgboost+json+raw", "definition": json.dumps(raw)}}}
    ens = es.from_object(doc, feature_set=names)
    zero = np.nan_to_num(X, nan=0.0)
    want = bst.predict(xgb.DMatrix(zero.astype(np.float32), feature_names=names), output_margin=True)
    np.testing.assert_allclose(ens.predict(X, raw_score=True), want, rtol=0, atol=1e-6)


# ============================================================================ pickles, isolated
def _hostile_pickle(func_module: str, func: str, *args) -> bytes:
    """A protocol-2 pickle calling ``module.func(*args)`` (what a corrupt or hostile file can do)."""
    import pickle

    class Call:
        def __reduce__(self):
            import importlib

            return getattr(importlib.import_module(func_module), func), args

    return pickle.dumps(Call(), protocol=2)


@pytest.mark.parametrize(
    "payload, match",
    [
        (("ctypes", "string_at", 8, 1), "crashed: the child process was killed by signal 11"),
        (("builtins", "bytearray", 1 << 40), "memory limit"),
        (("time", "sleep", 60), "did not finish within 3 s"),
        (("builtins", "ValueError", "boom"), "not a scikit-learn estimator"),
    ],
)
def test_pickle_is_unpickled_in_a_limited_child(tmp_path, monkeypatch, payload, match):
    """A segfaulting, memory-hungry or hanging pickle is a typed error; the caller lives on."""
    pytest.importorskip("joblib")
    # only the hanging pickle needs a short limit; the others get a generous one, so a child slow to
    # start on a loaded machine (importing scikit-learn) is not mistaken for a hang
    monkeypatch.setenv("LTRCOMPILE_PICKLE_TIMEOUT_S", "3" if payload[1] == "sleep" else "120")
    p = tmp_path / "bad.pkl"
    p.write_bytes(_hostile_pickle(*payload))
    t0 = time.monotonic()
    with pytest.raises(ModelFormatError if "estimator" not in match else Exception, match=match) as err:
        load_model(str(p), format="sklearn-pickle")
    assert exit_code_for(err.value) in (2, 3) and str(p) in str(err.value)
    assert time.monotonic() - t0 < 60


def test_corrupt_pickle_bytes_are_typed(tmp_path):
    """Every single-byte truncation point of a real joblib file: typed errors, never a crash."""
    joblib = pytest.importorskip("joblib")
    from sklearn.tree import DecisionTreeRegressor

    X = np.random.default_rng(1).random((30, 2))
    p = tmp_path / "m.joblib"
    joblib.dump(DecisionTreeRegressor(max_depth=2).fit(X, X[:, 0]), p)
    good = p.read_bytes()
    ens = load_model(str(p))
    assert ens.n_features == 2
    for cut in (len(good) // 3, len(good) - 7):
        p.write_bytes(good[:cut])
        with pytest.raises(ModelFormatError):
            load_model(str(p), format="sklearn-pickle")


# ============================================================================ bugs stay bugs
SEEDS = Path(__file__).parent / "data" / "fuzz" / "seeds"


@pytest.mark.parametrize(
    "module, func, seed, fmt",
    [
        ("xgboost", "_parse_tree", "xgboost-json/binary.json", "xgboost-json"),
        ("ranklib", "_tree_model", "ranklib/lambdamart.txt", "ranklib"),
        ("elasticsearch", "_native_tree", "es-native/ensemble.json", "es-native"),
        ("lightgbm", "_dump_tree", "lightgbm-json/regression.json", "lightgbm-json"),
    ],
)
@pytest.mark.parametrize("bug", [KeyError, TypeError, IndexError])
def test_a_parser_bug_is_not_reported_as_a_bad_file(tmp_path, monkeypatch, module, func, seed, fmt, bug):
    """A stray KeyError/TypeError inside a frontend is a bug in ltrcompile: it reaches the caller as
    itself (CLI exit 70, "please report"), never as a ModelFormatError (exit 2) blaming the file."""
    import importlib

    mod = importlib.import_module(f"ltrcompile.frontends.{module}")

    def broken(*a, **k):
        raise bug("a bug in the parser")

    monkeypatch.setattr(mod, func, broken)
    p = tmp_path / Path(seed).name
    p.write_bytes((SEEDS / seed).read_bytes())
    with pytest.raises(bug, match="a bug in the parser") as err:
        load_model(str(p), format=fmt)
    assert exit_code_for(err.value) == EXIT_INTERNAL


def test_ir_document_fields_are_checked_by_name(tmp_path):
    """The IR reader checks each field's JSON type (it used to map any KeyError/TypeError to
    'malformed IR document'): the error names the field."""
    doc = json.loads((SEEDS / "ltrcompile-ir" / "binary.json").read_text())
    p = tmp_path / "m.ltrc.json"
    cases = [
        (lambda d: d["nodes"].__setitem__("left", "0,1"), "nodes.left"),
        (lambda d: d["nodes"]["threshold"].__setitem__(0, [1]), "nodes.threshold"),
        (lambda d: d["nodes"]["feature"].__setitem__(0, 2**40), "nodes.feature"),
        (lambda d: d["model"].pop("leaf_dim"), "model.leaf_dim"),
        (lambda d: d["model"].__setitem__("n_outputs", "1"), "model.n_outputs"),
        (lambda d: d["model"].__setitem__("average_raw", [True]), "model.average_raw"),
        (lambda d: d.__setitem__("trees", []), "trees"),
        (lambda d: d["model"].__setitem__("provenance", {"iteration_range": 3}), "model.provenance"),
        (lambda d: d["model"].__setitem__("feature_categories", {"x": [1]}), "model.feature_categories"),
    ]
    for edit, field in cases:
        d = json.loads(json.dumps(doc))
        edit(d)
        p.write_text(json.dumps(d))
        with pytest.raises(ModelFormatError) as err:
            load_model(str(p), format="ltrcompile-ir")
        assert err.value.field == field, (field, str(err.value))
        assert exit_code_for(err.value) == EXIT_BAD_INPUT
    p.write_text(json.dumps(doc))
    assert load_model(str(p), format="ltrcompile-ir").n_trees > 0


# ============================================================================ XGBoost reg:expectileerror
def _expectile_file(tmp_path, alphas):
    """XGBoost 3.3+ writes ``reg:expectileerror``; the installed 3.2 cannot, so the file is a model the
    library wrote (``reg:quantileerror``, same tree and output layout: one output per alpha, identity
    for one) with the objective block replaced by what ``ExpectileRegression::SaveConfig`` writes:
    ``{"name": "reg:expectileerror", "expectile_loss_param": {"expectile_alpha": "[...]"}}``."""
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    y = X[:, 0] + rng.normal(0, 0.1, 200)
    bst = xgb.train({"objective": "reg:quantileerror", "quantile_alpha": alphas, "max_depth": 3, "nthread": 1},
                    xgb.DMatrix(X, y), 4)
    doc = json.loads(bst.save_raw("json"))
    doc["learner"]["objective"] = {
        "name": "reg:expectileerror",
        "expectile_loss_param": {"expectile_alpha": "[" + ",".join(str(a) for a in alphas) + "]"},
    }
    p = tmp_path / "expectile.json"
    p.write_text(json.dumps(doc))
    return p, bst, X, doc


def test_xgboost_expectile_single_alpha_is_identity(tmp_path):
    """One alpha: PredTransform and ProbToMargin of expectile_obj.cc only touch outputs 1.., so the
    prediction is the margin (base_score + trees), as for the quantile model the trees came from."""
    import xgboost as xgb

    p, bst, X, _ = _expectile_file(tmp_path, [0.5])
    ens = load_model(str(p))
    assert ens.transform == "identity" and ens.n_outputs == 1
    assert ens.provenance["objective"] == "reg:expectileerror"
    np.testing.assert_array_equal(ens.predict(X).reshape(-1), bst.predict(xgb.DMatrix(X)).astype(np.float64))


def test_xgboost_expectile_several_alphas_refused_by_name(tmp_path):
    from ltrcompile.errors import UnsupportedModelError

    p, _, _, doc = _expectile_file(tmp_path, [0.2, 0.8])
    with pytest.raises(UnsupportedModelError, match="cumulative softplus") as err:
        load_model(str(p))
    assert err.value.field == "objective.expectile_loss_param.expectile_alpha"
    doc["learner"]["objective"]["expectile_loss_param"]["expectile_alpha"] = "[0.2,0.5,0.8]"
    p.write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match="3 expectile alphas for a model with 2 outputs"):
        load_model(str(p))
