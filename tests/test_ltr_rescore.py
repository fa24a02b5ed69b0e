"""Elasticsearch's native ``learning_to_rank`` rescorer: a golden set worked from Elasticsearch's source.

Expected values come from Elasticsearch itself where it states them (its ``BoundedWindowInferenceModel``
test tree and its "[from + size: 4]" integration test), from LightGBM's own predictions, and from an
independent scalar re-implementation of ``LearningToRankRescorer`` written here (Java ``(float)``
casts via ``struct``, ``Float.compare`` and the doc-id tie-break via ``cmp_to_key``, Java's
compensated ``DoubleStream.sum`` for the bound). In-process, then over loopback HTTP against a real
server.
"""

from __future__ import annotations

import json
import math
from functools import cmp_to_key

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rescore import bits, f32, float_compare

import ltrcompile
from ltrcompile import Ensemble, TreeArrays
from ltrcompile.ltr_rescore import LtrRescoreParams, bounded_window_shift
from ltrcompile.rescore import FeatureSet, RescoreInputError, Rescorer, parse_params


# ---------------------------------------------------------------------- reference (Java semantics)
def java_double_sum(values):
    """JDK 21 ``DoubleStream.sum``: Kahan summation, final ``sum - compensation``."""
    s = c = simple = 0.0
    for v in values:
        y = v - c
        t = s + y
        c = (t - s) - y
        s = t
        simple += v
    r = s - c
    return simple if math.isnan(r) and math.isinf(simple) else r


def reference_ltr(first, model, window, shift):
    """[(input index, float32 score, rescored)] in final order (LearningToRankRescorer.rescore).

    ``ScoreDoc.doc`` is the input position (the service's stand-in for Lucene's doc id).
    """
    n = len(first)
    docs = [{"i": i, "score": f32(first[i])} for i in range(n)]
    # first-pass TopDocs: score desc, ties by doc asc
    docs.sort(key=cmp_to_key(lambda a, b: float_compare(b["score"], a["score"]) or a["i"] - b["i"]))
    top, rest = docs[:window], docs[window:]
    for d in top:
        d["score"] = f32(model[d["i"]] + shift)  # (float) of the double prediction + adjustment
    top.sort(key=cmp_to_key(lambda a, b: float_compare(b["score"], a["score"]) or a["i"] - b["i"]))
    return [(d["i"], d["score"], True) for d in top] + [(d["i"], d["score"], False) for d in rest]


# ---------------------------------------------------------------------- real IR models
def lookup_model(values) -> Ensemble:
    """One real tree on feature ``m``: the model's score for ``m = i`` is ``values[i]``."""
    k = len(values)
    t = TreeArrays.empty(2 * k - 1)
    for i in range(k - 1):  # split i at node 2i: left leaf 2i+1, right the next split (or leaf)
        node, leaf, nxt = 2 * i, 2 * i + 1, 2 * i + 2
        t.feature[node], t.threshold[node], t.left[node], t.right[node] = 0, i + 0.5, leaf, nxt
        t.leaf_value[leaf, 0] = values[i]
    t.leaf_value[2 * k - 2, 0] = values[k - 1]
    return Ensemble.from_trees([t], n_features=1, feature_names=["m"], accumulate="float64")


FS1 = FeatureSet.from_dict({"name": "one", "features": ["m"]})


def ltr(values, first, ms, window, **kw):
    ens = lookup_model(values)
    r = Rescorer.for_model(ens, ens, FS1)
    hits = [
        {"id": i, "score": s, "features": [m]}
        for i, (s, m) in enumerate(zip(first, ms, strict=True))
    ]
    return r.rescore(hits, window_size=window, rescorer="learning_to_rank", **kw)


def assert_reference(out, ref):
    assert [h["id"] for h in out] == [i for i, _, _ in ref]
    assert [bits(h["score"]) for h in out] == [bits(s) for _, s, _ in ref]
    assert [h["rescored"] for h in out] == [r for _, _, r in ref]


#: the tree of Elasticsearch's BoundedWindowInferenceModelTests.getModel(-5.0, 1.2, 6.5)
ES_BOUNDED_TREE = {
    "trained_model": {
        "tree": {
            "feature_names": ["foo", "bar"],
            "target_type": "regression",
            "tree_structure": [
                {"node_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "lte",
                 "default_left": True, "left_child": 1, "right_child": 2},
                {"node_index": 1, "split_feature": 1, "threshold": 0.8, "decision_type": "lte",
                 "default_left": True, "left_child": 3, "right_child": 4},
                {"node_index": 2, "leaf_value": 6.5},
                {"node_index": 3, "leaf_value": -5.0},
                {"node_index": 4, "leaf_value": 1.2},
            ],
        }
    }
}  # fmt: skip
FS_FOOBAR = {"name": "foobar", "features": ["foo", "bar"]}


@pytest.fixture(scope="module")
def es_tree_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("es") / "bounded_tree.json"
    p.write_text(json.dumps(ES_BOUNDED_TREE))
    return p


# ---------------------------------------------------------------------- golden cases
def test_elasticsearch_bounded_window_test_values(es_tree_file):
    """ES's own expectations: min leaf -5.0 -> shift 5.0; foo=-10 -> 0.0, foo=12 -> 11.5."""
    ens = ltrcompile.load_model(str(es_tree_file), format="es-native")
    assert bounded_window_shift(ens) == 5.0
    r = Rescorer.for_model(ens, ens, FeatureSet.from_dict(FS_FOOBAR))
    out = r.rescore(
        [
            {"id": "low", "score": 9.0, "features": {"foo": -10.0, "bar": 0.0}},
            {"id": "high", "score": 1.0, "features": {"foo": 12.0, "bar": 0.0}},
            {"id": "mid", "score": 5.0, "features": {"foo": 0.0, "bar": 1.0}},
        ],
        window_size=3,
        rescorer="learning_to_rank",
    )
    assert [(h["id"], h["score"]) for h in out] == [("high", 11.5), ("mid", 6.2), ("low", 0.0)]
    assert all(h["rescored"] for h in out)
    assert bits(out[1]["score"]) == bits(f32(1.2 + 5.0))


def test_window_smaller_than_from_plus_size_is_refused():
    # Elasticsearch's own integration test: size=5 (from unset = -1) and window 2 -> "4"
    with pytest.raises(RescoreInputError, match=r"^rescorer \[window_size\] is too small and "
                       r"should be at least the value of \[from \+ size: 4\] but was \[2\]$"):  # fmt: skip
        parse_params({"rescorer": "learning_to_rank", "window_size": 2, "size": 5})
    with pytest.raises(RescoreInputError, match=r"\[from \+ size: 20\] but was \[19\]"):
        parse_params({"rescorer": "learning_to_rank", "window_size": 19, "from": 10, "size": 10})
    p = parse_params({"rescorer": "learning_to_rank", "window_size": 20, "from": "10", "size": 10})
    assert (p.window_size, p.from_, p.size) == (20, 10, 10)
    # unset from and size: -1 + -1, so any window passes the check (as in ES)
    assert parse_params({"rescorer": "learning_to_rank", "window_size": 0}).window_size == 0
    with pytest.raises(RescoreInputError, match=r"^window_size is required for rescorer of type \[learning_to_rank\]$"):  # fmt: skip
        parse_params({"rescorer": "learning_to_rank", "size": 3})
    with pytest.raises(RescoreInputError, match=r"\[from\] parameter cannot be negative but was \[-2\]"):  # fmt: skip
        parse_params({"rescorer": "learning_to_rank", "window_size": 5, "from": -2})
    with pytest.raises(RescoreInputError, match=r"\[size\] parameter cannot be negative, found \[-1\]"):  # fmt: skip
        parse_params({"rescorer": "learning_to_rank", "window_size": 5, "size": -1})
    with pytest.raises(RescoreInputError, match="larger than the maximum rescore window"):
        parse_params({"rescorer": "learning_to_rank", "window_size": 10_001})
    # options of the other rescorer are refused, not ignored
    with pytest.raises(RescoreInputError, match="score_mode belong to the query rescorer"):
        parse_params({"rescorer": "learning_to_rank", "window_size": 5, "score_mode": "max"})
    with pytest.raises(RescoreInputError, match="from, size apply to the learning_to_rank"):
        parse_params({"window_size": 5, "from": 0, "size": 5})
    with pytest.raises(RescoreInputError, match="rescorer must be query or learning_to_rank"):
        parse_params({"rescorer": "rrf", "window_size": 5})
    assert isinstance(
        parse_params({"rescorer": "learning_to_rank", "window_size": 1}), LtrRescoreParams
    )


def test_ties_break_by_doc_id_not_by_first_pass_rank():
    # equal model scores: LearningToRankRescorer sorts ties by doc id, the input position here
    out = ltr([0.5], [1.0, 3.0, 2.0], [0, 0, 0], window=3)
    assert [h["id"] for h in out] == [0, 1, 2]
    assert [h["score"] for h in out] == [0.5, 0.5, 0.5]
    # the query rescorer keeps first-pass order for ties instead
    ens = lookup_model([0.5])
    q = Rescorer.for_model(ens, ens, FS1).rescore(
        [{"id": i, "score": s, "features": [0]} for i, s in enumerate([1.0, 3.0, 2.0])],
        window_size=3,
    )
    assert [h["id"] for h in q] == [1, 2, 0]


def test_negative_model_scores_and_the_unweighted_bound():
    """Two trees, weights 1 and 2: ES's bound sums the per-tree minimum leaves *without* weights
    (WeightedSum.aggregate), so the shift is 2.5 and the lowest score stays negative."""
    t1, t2 = TreeArrays.empty(3), TreeArrays.empty(3)
    for t, lo, hi in ((t1, -2.0, 1.0), (t2, -0.5, 0.25)):
        t.feature[0], t.threshold[0], t.left[0], t.right[0] = 0, 0.5, 1, 2
        t.leaf_value[1, 0], t.leaf_value[2, 0] = lo, hi
    ens = Ensemble.from_trees(
        [t1, t2],
        n_features=1,
        feature_names=["m"],
        tree_weight=[1.0, 2.0],
        accumulate="float64_kahan",
    )
    assert bounded_window_shift(ens) == 2.5
    r = Rescorer.for_model(ens, ens, FS1)
    out = r.rescore(
        [
            {"id": "a", "score": 5.0, "features": [0.0]},
            {"id": "b", "score": 4.0, "features": [1.0]},
        ],
        window_size=2,
        rescorer="learning_to_rank",
    )
    # a: -2 + 2*(-0.5) + 2.5 = -0.5 ; b: 1 + 2*0.25 + 2.5 = 4.0
    assert [(h["id"], h["score"], h["model_score"]) for h in out] == [
        ("b", 4.0, 4.0),
        ("a", -0.5, -0.5),
    ]


def test_non_negative_models_are_not_shifted():
    ens = lookup_model([0.25, 3.0, 1.0])
    assert bounded_window_shift(ens) == 0.0
    out = ltr([0.25, 3.0, 1.0], [1.0, 1.0, 1.0], [0, 1, 2], window=3)
    assert [(h["id"], h["score"]) for h in out] == [(1, 3.0), (2, 1.0), (0, 0.25)]


def test_hits_outside_the_window_stay_below_rescored_hits():
    # first-pass 100/90 are outside a window of 2 (first-pass order: 300, 200 are the window);
    # the window's model scores are tiny, yet the rest never rises above them (unlike `query`)
    out = ltr([-1.0, 0.001], [100.0, 300.0, 90.0, 200.0], [0, 0, 0, 1], window=2)
    assert [h["id"] for h in out] == [3, 1, 0, 2]
    assert [h["rescored"] for h in out] == [True, True, False, False]
    assert [bits(h["score"]) for h in out] == [bits(v) for v in (1.001 + 0.0, 0.0, 100.0, 90.0)]
    assert out[2]["model_score"] is None
    # window 0: nothing is rescored, first-pass order stays
    out = ltr([-1.0, 0.001], [100.0, 300.0], [0, 1], window=0)
    assert [(h["id"], h["score"], h["rescored"]) for h in out] == [
        (1, 300.0, False),
        (0, 100.0, False),
    ]


def test_float32_cast_of_the_double_prediction():
    # (float)(0.1 + 0.2 + shift 0) rounds once; 16777217 is not a float32
    out = ltr([0.1 + 0.2, 16777217.0, 1e-46], [1.0, 2.0, 3.0], [0, 1, 2], window=3)
    assert [bits(h["score"]) for h in out] == [bits(f32(16777217.0)), bits(f32(0.1 + 0.2)), 0]
    with pytest.raises(RescoreInputError, match="not a finite float32"):
        ltr([1e39], [1.0], [0], window=1)


def test_bound_is_javas_compensated_sum_of_per_tree_minimums():
    trees = []
    mins = [-0.1] * 10
    for v in mins:
        t = TreeArrays.empty(3)
        t.feature[0], t.threshold[0], t.left[0], t.right[0] = 0, 0.5, 1, 2
        t.leaf_value[1, 0], t.leaf_value[2, 0] = v, v + 1.0
        trees.append(t)
    ens = Ensemble.from_trees(trees, n_features=1, accumulate="float64_kahan", base_score=[0.3])
    bound = java_double_sum([0.3, *mins])
    assert bound != sum([0.3, *mins])  # the compensated sum is not the naive one here
    assert bounded_window_shift(ens) == -bound


def test_shift_refused_where_elasticsearch_has_no_such_model():
    lin = Ensemble.from_trees(
        [],
        n_features=1,
        feature_names=["m"],
        linear_output=np.array([0], np.int32),
        linear_feature=np.array([0], np.int32),
        linear_weight=np.array([1.0]),
    )
    with pytest.raises(RescoreInputError, match="tree ensembles only"):
        bounded_window_shift(lin)
    sq = lookup_model([-1.0, 1.0])
    sq.transform = "signed_square"
    with pytest.raises(RescoreInputError, match="signed_square"):
        bounded_window_shift(sq)
    ex = lookup_model([-3.0, 1.0])
    ex.transform = "exp"
    assert bounded_window_shift(ex) == 0.0  # ES exponent: bound exp(...) > 0
    # a Rescorer without the IR cannot compute the shift: refused, never guessed
    r = Rescorer(lookup_model([1.0]), FS1)
    with pytest.raises(RescoreInputError, match="needs the model's IR"):
        r.rescore(
            [{"id": 1, "score": 1.0, "features": [0]}], window_size=1, rescorer="learning_to_rank"
        )


pool = [0.0, 1.0, 1.5, -2.0, 0.25, 3.0, 10.0, 0.1, -1.0, 7.3, 1.0000001, 1e-9]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(pool), min_size=1, max_size=6, unique=True),
    st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0, 2.5, 7.0, -1.0]), st.integers(0, 5)), min_size=1, max_size=25),
    st.integers(0, 30),
)  # fmt: skip
def test_matches_reference_rescorer(values, hits, window):
    first = [s for s, _ in hits]
    ms = [m % len(values) for _, m in hits]
    out = ltr(values, first, ms, window)
    shift = max(0.0, -min(values))
    ref = reference_ltr(first, [values[m] for m in ms], window, shift)
    assert_reference(out, ref)


def test_lightgbm_ranker_is_lightgbms_score_plus_the_bound(tmp_path, rank_data):
    lgb = pytest.importorskip("lightgbm")
    Xtr, ytr, gtr, Xte, _, gte = rank_data
    names = [f"f{i}" for i in range(Xtr.shape[1])]
    booster = lgb.train(
        {"objective": "lambdarank", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 3},
        lgb.Dataset(Xtr, ytr, group=gtr, feature_name=names),
        num_boost_round=15,
    )
    path = tmp_path / "r.txt"
    booster.save_model(str(path))
    booster = lgb.Booster(model_file=str(path))

    def leaves(node):
        if "leaf_value" in node:
            return [node["leaf_value"]]
        return leaves(node["left_child"]) + leaves(node["right_child"])

    mins = [min(leaves(t["tree_structure"])) for t in booster.dump_model()["tree_info"]]
    bound = java_double_sum(mins)
    shift = -bound if bound < 0 else 0.0
    assert shift > 0
    ens = ltrcompile.load_model(str(path))
    fs = FeatureSet.from_dict({"name": "letor", "features": names})
    r = Rescorer.for_model(ens, ens, fs)
    assert r.ltr_shift == shift
    q = Xte[: int(gte[0])]
    first = list(np.round(np.linspace(9.0, 1.0, len(q))))
    hits = [
        {
            "id": i,
            "score": first[i],
            "features": {n: v for n, v in zip(names, row, strict=True) if v != 0},
        }
        for i, row in enumerate(q)
    ]
    out = r.rescore(hits, window_size=12, rescorer="learning_to_rank", size=10)
    model = booster.predict(np.where(q == 0, np.nan, q), raw_score=True)
    assert_reference(out, reference_ltr(first, list(model), 12, shift))


# ---------------------------------------------------------------------- over loopback HTTP
@pytest.fixture(scope="module")
def ltr_server(tmp_path_factory, es_tree_file):
    from test_service import TOKEN, Server, auth, upload

    store = tmp_path_factory.mktemp("ltrstore") / "s"
    tf = store.parent / "token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    s = Server(store, "--token-file", str(tf))
    try:
        r = s.client.put("/featuresets/foobar", json=FS_FOOBAR, headers=auth())
        assert r.status_code == 201, r.text
        job = upload(s.client, "esbw", es_tree_file, featureset="foobar", format="es-native")
        assert job["format"] == "es-native"
        yield s
    finally:
        s.stop()


def test_http_learning_to_rank_native_hits(ltr_server):
    c = ltr_server.client
    hits = [
        {"id": "low", "score": 9.0, "features": {"foo": -10.0, "bar": 0.0}},
        {"id": "out", "score": 0.5, "features": {"foo": 12.0, "bar": 0.0}},
        {"id": "high", "score": 1.0, "features": {"foo": 12.0, "bar": 0.0}},
        {"id": "mid", "score": 5.0, "features": {"foo": 0.0, "bar": 1.0}},
    ]
    r = c.post(
        "/models/esbw/rescore",
        json={"hits": hits, "rescorer": "learning_to_rank", "window_size": 3, "size": 3},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rescorer"] == "learning_to_rank" and body["score_shift"] == 5.0
    assert (body["window_size"], body["from"], body["size"]) == (3, None, 3)
    got = [(h["id"], h["score"], h["rescored"]) for h in body["hits"]]
    assert got == [
        ("high", 11.5, True),
        ("mid", 6.2, True),
        ("low", 0.0, True),
        ("out", 0.5, False),
    ]
    assert bits(body["hits"][1]["score"]) == bits(f32(6.2))
    # the default stays the query rescorer: total of first-pass and (unshifted) model score
    r = c.post("/models/esbw/rescore", json={"hits": hits, "window_size": 4})
    assert r.status_code == 200, r.text
    assert r.json()["rescorer"] == "query"
    got = [(h["id"], bits(h["score"])) for h in r.json()["hits"]]
    want = [("high", 7.5), ("out", 7.0), ("mid", f32(f32(1.2) + 5.0)), ("low", 4.0)]
    assert got == [(i, bits(v)) for i, v in want]


def test_http_learning_to_rank_es_response_and_errors(ltr_server):
    c = ltr_server.client
    es = {
        "hits": {
            "max_score": 9.0,
            "hits": [
                {"_id": "a", "_score": 9.0, "_source": {"foo": -10.0, "bar": 0.0}},
                {"_id": "b", "_score": 3.0, "fields": {"_ltrlog": [{"log": [{"name": "foo", "value": 12.0}, {"name": "bar", "value": 0.0}]}]}},
            ],
        }
    }  # fmt: skip
    r = c.post(
        "/models/esbw/rescore?rescorer=learning_to_rank&window_size=2&from=0&size=2", json=es
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(h["_id"], h["_score"]) for h in out["hits"]["hits"]] == [("b", 11.5), ("a", 0.0)]
    assert out["hits"]["max_score"] == 11.5 and out["_rescore"]["score_shift"] == 5.0

    def err(url, body, fragment):
        r = c.post(url, json=body)
        assert r.status_code == 400, r.text
        assert fragment in r.json()["error"]["message"], r.text

    err(
        "/models/esbw/rescore?rescorer=learning_to_rank&window_size=1&from=1&size=1",
        es,
        "rescorer [window_size] is too small and should be at least the value of "
        "[from + size: 2] but was [1]",
    )
    err("/models/esbw/rescore?rescorer=learning_to_rank", es, "window_size is required for rescorer of type [learning_to_rank]")  # fmt: skip
    err(
        "/models/esbw/rescore",
        {"hits": [], "rescorer": "learning_to_rank", "window_size": 2, "query_weight": 2},
        "query_weight belong to the query rescorer",
    )
    err(
        "/models/esbw/rescore",
        {"hits": [], "window_size": 2, "size": 2},
        "apply to the learning_to_rank",
    )
    err(
        "/models/esbw/rescore?rescorer=ltr&window_size=2",
        es,
        "rescorer must be query or learning_to_rank",
    )


def test_shift_refused_for_ranklib_networks():
    from conftest import SHARED

    path = SHARED / "data" / "ranklib" / "ranknet.model.txt"
    if not path.exists():
        pytest.skip("shared/data/ranklib not present")
    ens = ltrcompile.load_model(str(path), format="ranklib")
    assert ens.network is not None
    with pytest.raises(RescoreInputError, match="neural network"):
        bounded_window_shift(ens)
