"""Library-level rescoring: Elasticsearch QueryRescorer semantics, feature sets, hit parsing.

Expected orders and scores come from an independent scalar re-implementation of Elasticsearch's
``QueryRescorer`` + Lucene's ``QueryRescorer`` written here (float32 via ``struct`` rounding, Java
comparators via ``cmp_to_key``) and, for model scores, from LightGBM's own predictions.
"""

from __future__ import annotations

import math
import struct
from functools import cmp_to_key

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrcompile import Ensemble, TreeArrays
from ltrcompile.rescore import (
    FeatureSet,
    HitParser,
    RescoreInputError,
    RescoreParams,
    Rescorer,
    bind_columns,
    check_name,
    combine,
)


# ---------------------------------------------------------------------- reference (Java semantics)
def f32(x: float) -> float:
    """Round a double to the nearest float32 (overflow -> inf), as Java's (float) cast."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def java_max(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    if a == 0.0 and b == 0.0:
        return b if math.copysign(1, a) < 0 else a
    return a if a >= b else b


def java_min(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    if a == 0.0 and b == 0.0:
        return a if math.copysign(1, a) < 0 else b
    return a if a <= b else b


def java_combine(mode: str, p: float, s: float) -> float:
    # products/sums of two floats computed in double then rounded once == float arithmetic
    return {
        "total": lambda: f32(p + s),
        "multiply": lambda: f32(p * s),
        "avg": lambda: f32(f32(p + s) / 2.0),
        "max": lambda: java_max(p, s),
        "min": lambda: java_min(p, s),
    }[mode]()


def float_compare(a: float, b: float) -> int:
    """Java Float.compare: -0.0 < 0.0, NaN largest."""
    if a < b:
        return -1
    if a > b:
        return 1
    ka, kb = bits(a), bits(b)
    if ka == kb:
        return 0
    return -1 if math.copysign(1, a) < math.copysign(1, b) else 1


def reference_rescore(first, model, window, qw, rqw, mode):
    """[(input index, final float32 score)] in final order.

    ScoreDoc.doc stands for the first-pass rank (Lucene's tie-breaker, unknown to a client).
    """
    n = len(first)
    qw, rqw = f32(qw), f32(rqw)
    docs = [{"i": i, "score": f32(first[i])} for i in range(n)]

    # first-pass TopDocs order: score desc, ties by doc (input order here)
    def first_cmp(a, b):
        if a["score"] > b["score"]:
            return -1
        if a["score"] < b["score"]:
            return 1
        return a["i"] - b["i"]

    docs.sort(key=cmp_to_key(first_cmp))
    for rank, d in enumerate(docs):
        d["doc"] = rank
    top = docs if n < window else docs[:window]
    # Lucene QueryRescorer.rescore: combine, sort by score desc, originalIndex asc, doc asc
    for k, d in enumerate(top):
        d["orig"] = k
        d["score"] = java_combine(mode, f32(d["score"] * qw), f32(f32(model[d["i"]]) * rqw))

    def lucene_cmp(a, b):
        if a["score"] > b["score"]:
            return -1
        if a["score"] < b["score"]:
            return 1
        return (a["orig"] - b["orig"]) or (a["doc"] - b["doc"])

    top = sorted(top, key=cmp_to_key(lucene_cmp))
    # ES QueryRescorer.combine: splice, scale the rest, re-sort all when there is a rest
    out = top + docs[len(top) :]
    if len(out) > len(top):
        for d in out[len(top) :]:
            d["score"] = f32(d["score"] * qw)
        out.sort(
            key=cmp_to_key(
                lambda a, b: float_compare(b["score"], a["score"]) or a["doc"] - b["doc"]
            )
        )
    return [(d["i"], d["score"]) for d in out]


# ---------------------------------------------------------------------- a real one-feature model
def identity_model() -> Ensemble:
    """A real IR model whose score is its single feature (a linear term, no trees)."""
    return Ensemble.from_trees(
        [],
        n_features=1,
        feature_names=["m"],
        linear_output=np.array([0], np.int32),
        linear_feature=np.array([0], np.int32),
        linear_weight=np.array([1.0]),
    )


def stump(feature_names=("a", "b")) -> Ensemble:
    t = TreeArrays.empty(3)
    t.feature[0], t.threshold[0], t.left[0], t.right[0] = 0, 0.5, 1, 2
    t.leaf_value[1, 0], t.leaf_value[2, 0] = -1.0, 2.0
    return Ensemble.from_trees([t], n_features=2, feature_names=list(feature_names))


FS1 = FeatureSet.from_dict({"name": "one", "features": ["m"]})


def run(first, model, window, qw, rqw, mode):
    r = Rescorer(identity_model(), FS1)
    hits = [
        {"id": i, "score": s, "features": [m]}
        for i, (s, m) in enumerate(zip(first, model, strict=True))
    ]
    return r.rescore(
        hits, window_size=window, query_weight=qw, rescore_query_weight=rqw, score_mode=mode
    )


def assert_same(out, ref):
    assert [h["id"] for h in out] == [i for i, _ in ref]
    for h, (_, s) in zip(out, ref, strict=True):
        assert bits(h["score"]) == bits(s), (h, s)


# ---------------------------------------------------------------------- combination semantics
pool = [0.0, 1.0, 1.5, 2.0, 0.25, 3.0, 10.0, 0.1, -1.0, 7.3]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(pool), st.sampled_from(pool + [-2.5, 0.7])),
        min_size=1,
        max_size=25,
    ),
    st.integers(0, 30),
    st.sampled_from([1.0, 0.5, 2.0, 0.0, -1.0, 0.1, 1.7]),
    st.sampled_from([1.0, 0.5, 2.0, 0.0, -1.0, 0.3]),
    st.sampled_from(["total", "multiply", "avg", "max", "min"]),
)
def test_matches_reference_elasticsearch_rule(hits, window, qw, rqw, mode):
    first = [h[0] for h in hits]
    model = [h[1] + 0.0 for h in hits]  # the identity model's sum starts at +0.0: -0.0 scores 0.0
    assert_same(
        run(first, model, window, qw, rqw, mode),
        reference_rescore(first, model, window, qw, rqw, mode),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False, width=32),
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 50),
    st.floats(-10, 10, width=32),
    st.floats(-10, 10, width=32),
    st.sampled_from(["total", "multiply", "avg", "max", "min"]),
)
def test_matches_reference_random_floats(hits, window, qw, rqw, mode):
    first = [h[0] for h in hits]
    model = [h[1] + 0.0 for h in hits]
    assert_same(
        run(first, model, window, qw, rqw, mode),
        reference_rescore(first, model, window, qw, rqw, mode),
    )


def test_hits_beyond_window_can_rise_above_rescored_ones():
    # ES re-sorts everything: a low model score sinks a window hit below non-window hits
    out = run([5.0, 4.0, 3.0], [-10.0, 1.0, 0.0], window=2, qw=1.0, rqw=1.0, mode="total")
    assert [h["id"] for h in out] == [1, 2, 0]
    assert [h["score"] for h in out] == [5.0, 3.0, -5.0]
    assert [h["rescored"] for h in out] == [True, False, True]
    assert out[1]["model_score"] is None


def test_window_takes_top_by_first_pass_score_not_input_order():
    out = run([1.0, 9.0, 5.0], [100.0, 0.0, 0.0], window=1, qw=1.0, rqw=1.0, mode="total")
    # only id 1 (score 9) is rescored; id 0 keeps 1.0 although its model score is high
    assert [h["id"] for h in out] == [1, 2, 0]
    assert [h["rescored"] for h in out] == [True, False, False]


def test_ties_keep_first_pass_order():
    out = run([2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], window=2, qw=1.0, rqw=1.0, mode="total")
    # window {0, 1} -> 3.0 each (tie -> first-pass rank), rest 2.0 in input order
    assert [h["id"] for h in out] == [0, 1, 2, 3]


def test_float32_arithmetic_like_java():
    # 0.1f * 0.1f = 0.010000001f (double would give 0.010000000000000002)
    out = run([0.1], [0.0], window=0, qw=0.1, rqw=1.0, mode="total")
    assert out[0]["score"] == 0.010000001
    # avg rounds (p+s) to float first
    out = run([16777216.0], [1.0], window=1, qw=1.0, rqw=1.0, mode="avg")
    assert out[0]["score"] == 8388608.0


def test_max_min_signed_zero_like_java():
    p = np.array([-0.0, 0.0, 1.0], np.float32)
    s = np.array([0.0, -0.0, np.nan], np.float32)
    mx, mn = combine(p, s, "max"), combine(p, s, "min")
    for a, b, x, y in zip(p, s, mx, mn, strict=True):
        assert bits(float(x)) == bits(java_max(float(a), float(b))) or (
            x != x and java_max(a, b) != java_max(a, b)
        )
        assert bits(float(y)) == bits(java_min(float(a), float(b))) or (
            y != y and java_min(a, b) != java_min(a, b)
        )


def test_overflow_is_an_error_not_inf():
    with pytest.raises(RescoreInputError, match="overflows float32"):
        run([3e38], [3e38], window=1, qw=1.0, rqw=1.0, mode="total")
    with pytest.raises(RescoreInputError, match="float32"):
        run([1e39], [0.0], window=1, qw=1.0, rqw=1.0, mode="total")


def test_params_validation():
    p = RescoreParams.parse({"score_mode": "MAX", "window_size": "5"})
    assert (p.score_mode, p.window_size) == ("max", 5)
    for bad, msg in [
        ({"window_size": -1}, "window_size"),
        ({"window_size": 10001}, "maximum rescore window"),
        ({"window_size": 1.5}, "window_size"),
        ({"window_size": True}, "window_size"),
        ({"score_mode": "sum"}, "score_mode"),
        ({"query_weight": "abc"}, "query_weight"),
        ({"query_weight": math.inf}, "finite"),
        ({"rescore_query_weight": 1e39}, "float32"),
        ({"rescore_query_weight": None}, "number"),
    ]:
        with pytest.raises(RescoreInputError, match=msg):
            RescoreParams.parse(bad)


# ---------------------------------------------------------------------- feature sets
def test_featureset_validation():
    fs = FeatureSet.from_dict(
        {
            "featureset": {
                "name": "movies",
                "features": [
                    {
                        "name": "title_query",
                        "params": ["keywords"],
                        "template": {"match": {"title": "{{keywords}}"}},
                    },
                    {"name": "year", "default": 0},
                ],
            }
        }
    )
    assert fs.features == ("title_query", "year") and fs.defaults == (None, 0.0)
    assert FeatureSet.from_dict(fs.to_dict()) == fs
    bad = [
        ({"name": "x", "features": []}, "non-empty"),
        ({"name": "x", "features": ["a", "a"]}, "twice"),
        ({"name": "x", "features": [{"name": "a", "defualt": 1}]}, "unknown keys"),
        ({"name": "x", "features": [{"name": "a", "default": "1"}]}, "number"),
        ({"name": "../etc", "features": ["a"]}, "invalid feature set name"),
        (
            {"name": "x", "features": ["a"], "feature_normalizers": {"b": {"standard": {}}}},
            "unknown feature",
        ),
        (
            {
                "name": "x",
                "features": ["a"],
                "feature_normalizers": {"a": {"standard": {"mean": 0, "standard_deviation": 0}}},
            },
            "must be positive",
        ),
        (
            {
                "name": "x",
                "features": ["a"],
                "feature_normalizers": {"a": {"min_max": {"minimum": 2, "maximum": 1}}},
            },
            "minimum < maximum",
        ),
        (
            {
                "name": "x",
                "features": ["a"],
                "feature_normalizers": {"a": {"standard": {"mean": 0}}},
            },
            "needs standard_deviation",
        ),
        (
            {"name": "x", "features": ["a"], "feature_normalizers": {"a": {"zscore": {}}}},
            "unknown normalizer type",
        ),
        ({"name": "x", "features": ["a"], "extra": 1}, "unknown feature-set keys"),
    ]
    for doc, msg in bad:
        with pytest.raises(RescoreInputError, match=msg):
            FeatureSet.from_dict(doc)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "-x", "x" * 129, "é", None, 5])
def test_unsafe_names_rejected(name):
    with pytest.raises(RescoreInputError):
        check_name("model", name)


def test_normalizers_in_float32_like_the_plugin():
    fs = FeatureSet.from_dict(
        {
            "name": "n",
            "features": ["a", "b", "c"],
            "feature_normalizers": {
                "a": {"standard": {"mean": 1970, "standard_deviation": 30}},
                "b": {"min_max": {"minimum": 0.1, "maximum": 10}},
            },
        }
    )
    p = HitParser(fs)
    vals = [(1999.0, 7.7, 5.0), (0.3, 0.1, 1.0), (None, None, None)]
    X = p.matrix([list(v) for v in vals], str)
    for row, (a, b, c) in zip(X, vals, strict=True):
        if a is None:  # missing -> NaN, normalized NaN stays NaN
            assert np.isnan(row[:2]).all() and np.isnan(row[2])
            continue
        assert row[0] == f32(f32(f32(a) - f32(1970.0)) / f32(30.0))
        assert row[1] == f32(f32(f32(b) - f32(0.1)) / f32(f32(10.0) - f32(0.1)))
        assert row[2] == c  # no normalizer: the value as sent


# ---------------------------------------------------------------------- hits
FS = FeatureSet.from_dict({"name": "fs", "features": ["a", {"name": "b", "default": 7.0}, "c.d"]})


def test_hits_by_name_vector_and_defaults():
    p = HitParser(FS)
    got = p.native(
        [
            {"id": "x", "score": 1, "features": {"a": 1.5}},
            {"id": "y", "score": 2.5, "features": [1, None, 3]},
            {"id": 3, "score": 0, "features": {"b": None, "c.d": -2}},
        ],
        need_scores=True,
    )
    np.testing.assert_array_equal(got.X, [[1.5, 7.0, np.nan], [1.0, 7.0, 3.0], [np.nan, 7.0, -2.0]])
    assert got.ids == ["x", "y", 3]
    assert got.scores.dtype == np.float32


@pytest.mark.parametrize(
    "hit, msg",
    [
        ({"id": "x", "score": 1, "features": {"zz": 1}}, "unknown feature name"),
        ({"id": "x", "score": 1, "features": [1, 2]}, "has 2 values but feature set 'fs' has 3"),
        ({"id": "x", "score": 1, "features": [1, 2, math.nan]}, "not finite"),
        ({"id": "x", "score": 1, "features": {"a": math.inf}}, "not finite"),
        ({"id": "x", "score": 1, "features": {"a": "1"}}, "must be numbers"),
        ({"id": "x", "score": 1, "features": {"a": True}}, "must be numbers"),
        ({"id": "x", "score": 1, "features": [[1], 2, 3]}, "must be numbers"),
        ({"id": "x", "score": 1, "features": "1,2,3"}, "must be a list"),
        ({"id": "x", "score": 1}, "no 'features'"),
        ({"id": "x", "features": [1, 2, 3]}, "no first-pass 'score'"),
        ({"id": "x", "score": "high", "features": [1, 2, 3]}, "must be a number"),
        ({"id": "x", "score": math.nan, "features": [1, 2, 3]}, "not a finite float32"),
        ({"id": "x", "score": 1e300, "features": [1, 2, 3]}, "not a finite float32"),
        ({"score": 1, "features": [1, 2, 3]}, "needs an 'id'"),
        ({"id": "x", "score": 1, "features": {"a": 10**400}}, "out of range"),
    ],
)
def test_bad_hits_are_errors(hit, msg):
    with pytest.raises(RescoreInputError, match=msg):
        HitParser(FS).native(
            [{"id": "ok", "score": 1, "features": [1, 2, 3]}, hit], need_scores=True
        )


def test_elasticsearch_response_sources():
    p = HitParser(FS)
    body = {
        "took": 3,
        "hits": {
            "hits": [
                {"_id": "1", "_score": 3.5, "_source": {"a": 1.0, "c": {"d": 4.0}, "title": "x"}},
                {"_id": "2", "_score": 2.0, "fields": {"a": [2.0], "b": [5.0]}},
                {
                    "_id": "3",
                    "_score": 1.0,
                    "_source": {"a": 100.0},
                    "fields": {
                        "_ltrlog": [
                            {
                                "log1": [
                                    {"name": "a", "value": 9.0},
                                    {"name": "b"},
                                    {"name": "c.d", "value": 0.5},
                                ]
                            }
                        ]
                    },
                },
            ]
        },
    }
    got = p.es_response(body)
    np.testing.assert_array_equal(got.X, [[1.0, 7.0, 4.0], [2.0, 5.0, np.nan], [9.0, 7.0, 0.5]])
    assert got.ids == ["1", "2", "3"]
    bad = {"hits": {"hits": [{"_id": "1", "_score": None}]}}
    with pytest.raises(RescoreInputError, match="no _score"):
        p.es_response(bad)
    two_logs = {
        "hits": {"hits": [{"_id": "1", "_score": 1, "fields": {"_ltrlog": [{"x": []}, {"y": []}]}}]}
    }
    with pytest.raises(RescoreInputError, match="pass log_name"):
        p.es_response(two_logs)
    assert p.es_response(two_logs, log_name="y").X.shape == (1, 3)
    unknown = {
        "hits": {
            "hits": [
                {
                    "_id": "1",
                    "_score": 1,
                    "fields": {"_ltrlog": [{"x": [{"name": "q", "value": 1}]}]},
                }
            ]
        }
    }
    with pytest.raises(RescoreInputError, match="not in feature set"):
        p.es_response(unknown)


# ---------------------------------------------------------------------- binding
def test_binding_by_name_and_position():
    fs = FeatureSet.from_dict({"name": "fs", "features": ["x", "b", "a"]})
    cols, how = bind_columns(["a", "b"], 2, fs)
    assert how == "name" and cols.tolist() == [2, 1]
    cols, how = bind_columns(["Column_0", "Column_1", "Column_2"], 3, fs)
    assert how == "position" and cols is None
    with pytest.raises(RescoreInputError, match="has 2 features"):
        bind_columns(["p", "q"], 2, fs)
    with pytest.raises(RescoreInputError, match="binding=name"):
        bind_columns(["p", "x", "a"], 3, fs, "name")
    # a stump on (a, b) bound by name into a set ordered (x, b, a)
    r = Rescorer.for_model(stump(), stump(), fs)
    assert r.score_features([{"a": 0.7, "x": 100}, {"a": 0.2}]).tolist() == [2.0, -1.0]


# ---------------------------------------------------------------------- a real LightGBM ranker
def test_lightgbm_ranker_scores_are_lightgbms(tmp_path, rank_data):
    lgb = pytest.importorskip("lightgbm")
    from ltrcompile.frontends import formats

    if "lightgbm-text" not in formats():
        pytest.skip("LightGBM frontend not available")
    import ltrcompile

    Xtr, ytr, gtr, Xte, _, gte = rank_data
    names = [f"f{i}" for i in range(Xtr.shape[1])]
    booster = lgb.train(
        {"objective": "lambdarank", "num_leaves": 15, "verbose": -1, "num_threads": 1},
        lgb.Dataset(Xtr, ytr, group=gtr, feature_name=names),
        num_boost_round=25,
    )
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    reloaded = lgb.Booster(model_file=str(path))
    ens = ltrcompile.load_model(str(path))
    fs = FeatureSet.from_dict({"name": "lr", "features": list(reversed(names))})  # bound by name
    r = Rescorer.for_model(ens, ens, fs)
    q = Xte[: gte[0]]
    first = np.linspace(10, 1, len(q))
    hits = [
        {
            "id": i,
            "score": float(first[i]),
            "features": {n: float(v) for n, v in zip(names, row, strict=True) if v != 0},
        }
        for i, row in enumerate(q)
    ]
    out = r.rescore(
        hits,
        window_size=len(q) // 2,
        query_weight=0.5,
        rescore_query_weight=2.0,
        score_mode="total",
    )
    # sparse rows: absent features are missing (NaN) for the model; LightGBM reads NaN likewise
    Xq = np.where(q == 0, np.nan, q)
    theirs = reloaded.predict(Xq, raw_score=True)
    ref = reference_rescore(list(first), list(theirs), len(q) // 2, 0.5, 2.0, "total")
    assert_same(out, ref)
    by_id = {h["id"]: h for h in out}
    for i, s in enumerate(theirs):
        h = by_id[i]
        if h["rescored"]:
            assert bits(h["model_score"]) == bits(f32(s))


def test_binary_feature_matrix():
    import base64

    p = HitParser(FS)  # features a, b (default 7), c.d
    M = np.array([[1.5, np.nan, -2.0], [np.nan, 3.0, 0.25]])
    for dt in ("float32", "float64"):
        data = base64.b64encode(M.astype("<f4" if dt == "float32" else "<f8").tobytes()).decode()
        got = p.native(
            [{"id": 1, "score": 2.0}, {"id": 2, "score": 1.0}], True, {"dtype": dt, "data": data}
        )
        np.testing.assert_array_equal(got.X, [[1.5, 7.0, -2.0], [np.nan, 3.0, 0.25]])
    ok = base64.b64encode(M.astype("<f8").tobytes()).decode()
    hits = [{"id": 1, "score": 2.0}, {"id": 2, "score": 1.0}]
    bad = [
        ({"dtype": "float16", "data": ok}, "dtype must be"),
        ({"dtype": "float64", "data": ok[:-8]}, "not valid base64|bytes"),
        ({"dtype": "float64", "data": "!!!!"}, "not valid base64"),
        ({"dtype": "float32", "data": ok}, "need 24"),
        (
            {
                "dtype": "float64",
                "data": base64.b64encode(np.array([np.inf] * 6).tobytes()).decode(),
            },
            "infinite",
        ),
        ({"data": ok}, "must be"),
    ]
    for spec, msg in bad:
        with pytest.raises(RescoreInputError, match=msg):
            p.native(hits, True, spec)
    with pytest.raises(RescoreInputError, match="although 'feature_matrix'"):
        p.native(
            [{"id": 1, "score": 1.0, "features": [1, 2, 3]}], True, {"dtype": "float64", "data": ok}
        )
