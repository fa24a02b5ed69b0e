"""RankLib frontend: every model file RankLib wrote scores test.letor exactly as RankLib's own score files say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_svmlight_file

from ltrcompile.errors import FormatDetectionError, ModelFormatError, UnsupportedModelError
from ltrcompile.frontends import detect_format, load_model
from ltrcompile.frontends import ranklib as rl

DATA = Path(__file__).parent / "data" / "ranklib"
TREE_AND_LINEAR = [
    "mart",
    "lambdamart",
    "rf_mart",
    "rf_lambdamart",
    "coordinate_ascent",
    "linear_regression",
    "rankboost",
    "adarank",
    "lambdamart_feature_subset",
]


@pytest.fixture(scope="module")
def letor():
    X, _, qid = load_svmlight_file(str(DATA / "test.letor"), n_features=300, zero_based=False, query_id=True)
    Xs, _, qs = load_svmlight_file(str(DATA / "test.sparse.letor"), n_features=300, zero_based=False, query_id=True)
    assert (qid == qs).all()
    return X.toarray(), Xs, qid


def ranklib_scores(name: str) -> np.ndarray:
    return np.loadtxt(DATA / f"{name}.scores.tsv", usecols=2)


@pytest.mark.parametrize("name", TREE_AND_LINEAR)
def test_bit_exact_against_ranklib_scores(name, letor):
    X, Xs, _ = letor
    ens = load_model(DATA / f"{name}.model.txt", n_features=300)
    assert ens.provenance["format"] == "ranklib"
    ref = ranklib_scores(name)
    assert_bit_equal(ens.predict(X), ref, f"{name} dense")
    # the sparse file: absent features read 0 (RankLib -missingZero); scipy CSR straight in
    assert_bit_equal(ens.predict(Xs), ref, f"{name} sparse")
    assert_bit_equal(ens.predict(Xs.toarray()), ref, f"{name} sparse dense")


def test_zscore_model_with_per_query_normalisation(letor):
    X, _, qid = letor
    ens = load_model(DATA / "lambdamart_norm_zscore.model.txt", n_features=300, normalizer="zscore")
    assert "normalize_queries" in ens.provenance["input_note"]
    Z = rl.normalize_queries(X, qid, "zscore")
    assert Z.dtype == np.float32
    assert_bit_equal(ens.predict(Z), ranklib_scores("lambdamart_norm_zscore"), "zscore")
    # without the per-query normalisation the scores are wrong: the test can fail
    assert not np.array_equal(ens.predict(X), ranklib_scores("lambdamart_norm_zscore"))


def test_random_forest_structure():
    ens = load_model(DATA / "rf_lambdamart.model.txt")
    assert ens.n_bags == 5 and ens.average_denominator == 5.0 and ens.average_raw
    assert ens.accumulate == "float32_fused" and ens.input_cast == "float32"
    assert np.all(ens.tree_weight == np.float32(0.1))


def test_width_defaults_to_highest_feature_id_and_option_checks():
    ens = load_model(DATA / "adarank.model.txt")
    assert ens.n_features == 253  # highest id used (100:, 151:, 120:, 253:)
    with pytest.raises(ModelFormatError, match="n_features"):
        load_model(DATA / "adarank.model.txt", n_features=100)
    ens = load_model(DATA / "adarank.model.txt", feature_names=[f"q{i}" for i in range(300)])
    assert ens.n_features == 300 and ens.feature_names[0] == "q0"
    with pytest.raises(TypeError, match="does not take"):
        load_model(DATA / "adarank.model.txt", tree_limit=3)
    with pytest.raises(ValueError, match="normalizer"):
        load_model(DATA / "adarank.model.txt", normalizer="minmax")


def test_nan_reads_as_zero(letor):
    """DataPoint.getFeatureValue returns 0 for NaN: a NaN cell scores like a 0 cell."""
    X, _, _ = letor
    for name in ("lambdamart", "rankboost", "coordinate_ascent", "rf_mart"):
        ens = load_model(DATA / f"{name}.model.txt", n_features=300)
        Xz = X.copy()
        Xn = X.copy()
        cols = np.arange(0, 300, 3)
        Xz[:, cols] = 0.0
        Xn[:, cols] = np.nan
        assert np.array_equal(ens.predict(Xn), ens.predict(Xz)), name


def test_format_detection_and_neural_nets(tmp_path):
    assert detect_format(str(DATA / "lambdamart.model.txt")) == "ranklib"
    assert detect_format(str(DATA / "rankboost.model.txt")) == "ranklib"
    for name in ("ranknet", "listnet"):  # dense networks: tests/test_ranklib_network.py
        assert detect_format(str(DATA / f"{name}.model.txt")) == "ranklib"
        assert load_model(DATA / f"{name}.model.txt").network is not None
    p = tmp_path / "m.txt"
    p.write_text("## Some Other Ranker\n1:2\n")
    with pytest.raises(FormatDetectionError):
        detect_format(str(p))
    with pytest.raises(ModelFormatError, match="unknown RankLib ranker"):
        load_model(p, format="ranklib")


def test_bom_and_irregular_layout(tmp_path, letor):
    """A UTF-8 BOM (Java RankLib itself chokes on it) and odd whitespace/CRLF still parse."""
    X, _, _ = letor
    text = (DATA / "lambdamart.model.txt").read_text()
    odd = text.replace("\t", "   ").replace("<feature>", "<feature>  ").replace("\n", "\r\n")
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbf" + odd.encode())
    ens = load_model(p, n_features=300)
    assert ens.provenance.get("utf8_bom_stripped") is True
    assert_bit_equal(ens.predict(X), ranklib_scores("lambdamart"), "bom")


def test_java_float_parsing():
    # a decimal just above a float32 rounding midpoint: Java gives 1.0000001, a double detour 1.0
    assert rl.java_float("1.0000000596046447753906250000001") == float(np.float32(1.0000001))
    assert rl.java_float("1.00000005960464477539062500") == 1.0  # exactly the midpoint: to even
    assert rl.java_float(" 0.1f ") == float(np.float32(0.1))
    assert rl.java_float("3.4028235E38") == float(np.finfo(np.float32).max)
    assert rl.java_float("3.4028236E38") == np.inf  # beyond MAX + half an ulp
    assert rl.java_float("3.5E38") == np.inf
    assert rl.java_float("-Infinity") == -np.inf
    for bad in ("1_0", "inf", "0x1p3", "", "1e", "nan"):
        with pytest.raises(ValueError):
            rl.java_float(bad)


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=True))
def test_java_float_round_trips_every_float32(x):
    assert rl.java_float(rl.java_float_str(x)) == x or (x == 0 and rl.java_float(rl.java_float_str(x)) == 0)


# ---------------------------------------------------------------------------- parser properties
def _tree_xml(rng, depth, max_fid):
    """A random RankLib tree as text plus its (feature, threshold, leaf) pre-order listing."""
    nodes = []

    def rec(d, ind):
        if d == 0 or rng.random() < 0.3:
            v = float(np.float32(rng.normal()))
            nodes.append(("leaf", v))
            return f'{ind}<output> {v!r} </output>\n'
        f = int(rng.integers(1, max_fid + 1))
        t = float(np.float32(rng.normal()))
        nodes.append(("split", f, t))
        left = rec(d - 1, ind + "\t")
        right = rec(d - 1, ind + "\t")
        return (
            f"{ind}<feature> {f} </feature>\n{ind}<threshold> {t!r} </threshold>\n"
            f'{ind}<split pos="left">\n{left}{ind}</split>\n{ind}<split pos="right">\n{right}{ind}</split>\n'
        )

    body = rec(depth, "\t\t\t")
    return f"\t\t<split>\n{body}\t\t</split>\n", nodes


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_trees=st.integers(0, 4), depth=st.integers(0, 5))
def test_parser_reads_generated_trees(seed, n_trees, depth):
    rng = np.random.default_rng(seed)
    text = "## LambdaMART\n## No. of trees = 9\n\n<ensemble>\n"
    listing = []
    weights = []
    for i in range(n_trees):
        xml, nodes = _tree_xml(rng, depth, 12)
        w = float(np.float32(rng.uniform(0.01, 1)))
        weights.append(w)
        listing.append(nodes)
        text += f'\t<tree id="{i + 1}" weight="{w!r}">\n{xml}\t</tree>\n'
    text += "</ensemble>\n"
    ens = rl.loads(text, n_features=12)
    assert ens.n_trees == n_trees
    assert np.array_equal(ens.tree_weight, weights)
    for t, nodes in enumerate(listing):
        lo = int(ens.tree_offset[t])
        for k, node in enumerate(nodes):
            g = lo + k
            if node[0] == "leaf":
                assert ens.left[g] == -1 and ens.leaf_value[g, 0] == node[1]
            else:
                assert ens.feature[g] == node[1] - 1 and ens.threshold[g] == node[2]


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, 3000), junk=st.sampled_from(["", "<", ">", "</split>", "<split>", "&amp;", "abc", "<!-- x -->"]))
def test_corrupted_models_raise_typed_errors(cut, junk):
    text = (DATA / "mart.model.txt").read_text()[:6000]
    bad = text[: 200 + cut] + junk + text[200 + cut :]
    try:
        ens = rl.loads(bad)
    except (ModelFormatError, UnsupportedModelError):
        return
    assert ens.n_trees >= 0  # if it parses, it is a valid model


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("## LambdaMART\n<ensemble><tree weight=\"0.1\"><split><feature>0</feature><threshold>1</threshold>"
         "<split><output>1</output></split><split><output>2</output></split></split></tree></ensemble>", "ids start at 1"),
        ("## LambdaMART\n<ensemble><tree><split><output>1</output></split></tree></ensemble>", "weight"),
        ("## LambdaMART\n<ensemble><tree weight=\"0.1\"><split><feature>2</feature><threshold>x</threshold>"
         "<split><output>1</output></split><split><output>2</output></split></split></tree></ensemble>", "threshold"),
        ("## LambdaMART\n<ensemble><tree weight=\"0.1\"><split><output>NaN</output></split></tree></ensemble>", "not finite"),
        ("## LambdaMART\n<ensemble><tree weight=\"0.1\"><split><output>1</output>", "truncated"),
        ("## LambdaMART\n<ensemble></ensemble><ensemble></ensemble>", "exactly one"),
        ("## Linear Regression\n1:0.5 2:0.25", "intercept"),
        ("## Coordinate Ascent\n1:abc", "weight"),
        ("## Coordinate Ascent\n## only headers", "no weight line"),
        ("## RankBoost\n3:0.5", "fid:threshold:alpha"),
    ],
)
def test_bad_models_name_the_problem(text, match):
    with pytest.raises(ModelFormatError, match=match):
        rl.loads(text)


def test_bad_node_is_located():
    text = (
        '## MART\n<ensemble><tree weight="0.1"><split><feature>2</feature><threshold>1</threshold>'
        '<split><output>1</output></split><split><feature>3</feature><threshold>oops</threshold>'
        "<split><output>1</output></split><split><output>2</output></split></split></split></tree></ensemble>"
    )
    with pytest.raises(ModelFormatError) as e:
        rl.loads(text, path="m.txt")
    assert (e.value.tree, e.value.node, e.value.field, e.value.path) == (0, 2, "threshold", "m.txt")


# ---------------------------------------------------------------------------- -norm helper
def test_normalize_queries_hand_checked():
    """RankLib's definitions on tiny queries (values worked out by hand from the Java source)."""
    X = np.array([[1.0, -1.0, 5.0], [3.0, -3.0, 5.0], [2.0, 7.0, np.nan]])
    qid = [1, 1, 2]
    s = rl.normalize_queries(X, qid, "sum")
    assert s[:2].tolist() == [[0.25, -0.25, 0.5], [0.75, -0.75, 0.5]]
    assert s[2, 0] == 1.0 and s[2, 1] == 1.0 and np.isnan(s[2, 2])  # |NaN| reads 0: norm 0, unchanged
    lin = rl.normalize_queries(X, qid, "linear")
    # column 1 is all negative: max starts at Float.MIN_VALUE (RankLib bug) -> (x+3)/(3 + 1.4e-45) in float
    assert lin[:2, 0].tolist() == [0.0, 1.0]
    assert lin[0, 1] == np.float32(2.0) / np.float32(3.0) and lin[1, 1] == 0.0
    assert lin[0, 2] == 0.0 and lin[2].tolist() == [0.0, 0.0, 0.0]  # constant / one-row -> 0
    z = rl.normalize_queries(X, qid, "zscore")
    r = np.float32(1 / np.sqrt(2))  # mean 2, sample std sqrt(2)
    assert z[:2, 0].tolist() == [-r, r] and z[:2, 2].tolist() == [5.0, 5.0]  # constant: unchanged
    assert z[2, :2].tolist() == [2.0, 7.0] and np.isnan(z[2, 2])  # one-row query: std NaN, unchanged
    # a qid that comes back later starts a new ranked list
    assert rl.query_runs([1, 1, 2, 1]) == [(0, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError):
        rl.normalize_queries(X, [1, 2], "zscore")
