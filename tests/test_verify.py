"""Library-level parity verification (ltrcompile.verify) and DATA file readers (ltrcompile.datafiles).

Reference values come from the source libraries (lightgbm / xgboost predict on the model reloaded
from its saved file) and from scikit-learn's svmlight reader/writer -- never from our own code.
A "tampered scorer" is a real scorer (the interpreter of an IR whose leaf value or threshold was
changed), so the mismatch path runs end to end without mocks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ltrcompile
from ltrcompile import Ensemble, InputDataError
from ltrcompile.datafiles import read_data, sniff_format
from ltrcompile.verify import native_model, verify

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")
sk_datasets = pytest.importorskip("sklearn.datasets")

ROOT = Path(__file__).resolve().parent.parent
TEST_LETOR = ROOT / "examples" / "data" / "lambdarank_rank.test"


# --------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def lgb_model(rank_data, tmp_path_factory):
    """A small LightGBM lambdarank model saved to a file: (path, booster reloaded from it)."""
    Xtr, ytr, gtr, *_ = rank_data
    params = dict(objective="lambdarank", num_leaves=7, min_data_in_leaf=20, num_threads=1,
                  deterministic=True, verbose=-1, seed=5)
    bst = lgb.train(params, lgb.Dataset(Xtr, ytr, group=gtr), 12)
    path = tmp_path_factory.mktemp("lgb") / "rank.txt"
    bst.save_model(str(path))
    return path, lgb.Booster(model_file=str(path))


@pytest.fixture(scope="module")
def xgb_model(rank_data, tmp_path_factory):
    Xtr, ytr, gtr, *_ = rank_data
    qid = np.repeat(np.arange(len(gtr)), gtr)
    d = xgb.DMatrix(Xtr, ytr, qid=qid)
    bst = xgb.train({"objective": "rank:ndcg", "max_depth": 4, "eta": 0.3, "nthread": 1, "seed": 1}, d, 10)
    path = tmp_path_factory.mktemp("xgb") / "rank.json"
    bst.save_model(str(path))
    return path, xgb.Booster(model_file=str(path))


def _copy(ens: Ensemble) -> Ensemble:
    return Ensemble.from_dict(ens.to_dict())


# --------------------------------------------------------------------------- verify: success
def test_interpreter_matches_lightgbm_on_edge_and_letor_rows(lgb_model):
    path, native = lgb_model
    ens = ltrcompile.load_model(path)
    ds = read_data(TEST_LETOR, ens)
    rep = verify(ens, None, data=ds, source=str(path))  # isolated: the library runs in a child
    assert rep.ok, rep.format()
    assert rep.data_rows == 768 and rep.edge_rows > 0
    assert rep.rows_checked == rep.edge_rows + rep.data_rows
    whats = {(c.reference.split()[0], c.what) for c in rep.checks}
    assert whats == {("lightgbm", "raw"), ("lightgbm", "output"), ("lightgbm", "leaf")}
    assert all(c.bit_identical for c in rep.checks)
    # the report's own claim, checked against lightgbm directly on the data rows
    np.testing.assert_array_equal(ens.predict(ds.X, raw_score=True), native.predict(ds.X, raw_score=True))
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["ok"] is True and d["rows_checked"] == rep.rows_checked
    assert d["checks"][0]["max_abs_diff"] == [0.0]


def test_scorer_checks_include_interpreter_and_native(lgb_model):
    path, _ = lgb_model
    ens = ltrcompile.load_model(path)
    rep = verify(ens, _copy(ens), source=str(path), edge=2000, isolate=False)
    assert rep.ok, rep.format()
    titles = [c.title for c in rep.checks]
    assert "compiled vs interpreter (raw)" in titles
    assert "compiled vs interpreter (leaf)" in titles
    assert any(t.startswith("compiled vs lightgbm") and t.endswith("(leaf)") for t in titles)
    assert set(rep.max_abs_diff) == {c.title for c in rep.checks if c.what != "leaf"}


def test_xgboost_native_includes_rows_dmatrix_refuses(xgb_model):
    """XGBoost's DMatrix refuses inf; those rows are compared through inplace_predict."""
    path, native = xgb_model
    ens = ltrcompile.load_model(path)
    X = np.zeros((3, ens.n_features))
    X[0, :] = np.inf
    X[1, :5] = 1e300
    X[2, :] = np.nan
    nat = native_model(str(path), ens)
    vals, used = nat.raw(X)
    assert used.all()
    np.testing.assert_array_equal(vals, native.inplace_predict(X, predict_type="margin"))
    rep = verify(ens, None, data=X, source=str(path), isolate=False)
    assert rep.ok, rep.format()
    leaf = [c for c in rep.checks if c.what == "leaf"][0]
    raw = [c for c in rep.checks if c.what == "raw"][0]
    assert raw.skipped_rows == 0
    # pred_leaf needs a DMatrix: rows holding inf or values beyond float32 are left out, and counted
    from ltrcompile.edgecases import edge_rows

    E = edge_rows(ens, X, max_rows=10_000)
    with np.errstate(invalid="ignore"):
        refused = int((np.abs(np.vstack([E, X])) > np.finfo(np.float32).max).any(axis=1).sum())
    assert leaf.skipped_rows == refused and leaf.rows == rep.rows_checked - refused > 0


def test_lightgbm_dump_has_no_native_predictor(lgb_model, tmp_path):
    path, native = lgb_model
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(native.dump_model()))
    ens = ltrcompile.load_model(dump)
    rep = verify(ens, _copy(ens), source=str(dump), edge=500, isolate=False)
    assert rep.ok and rep.verdict == "verified" and not rep.skipped  # no library applies: not incomplete
    assert any("dump" in s and "does not apply" in s for s in rep.notes)
    assert all(c.reference == "interpreter" for c in rep.checks)


def test_in_memory_booster_is_compared_as_reloaded(rank_data):
    Xtr, ytr, gtr, Xte, *_ = rank_data
    params = dict(objective="regression", num_leaves=5, num_threads=1, verbose=-1, seed=1)
    bst = lgb.train(params, lgb.Dataset(Xtr, ytr), 5)
    ens = ltrcompile.load_model(bst)
    rep = verify(ens, None, data=Xte[:100], source=bst, edge=500)
    assert rep.ok, rep.format()
    assert any(c.reference.startswith("lightgbm") for c in rep.checks)


# --------------------------------------------------------------------------- verify: mismatch
def test_changed_leaf_value_is_reported_with_values(lgb_model):
    path, native = lgb_model
    ens = ltrcompile.load_model(path)
    bad = _copy(ens)
    leaf = int(np.flatnonzero(bad.left < 0)[2])
    bad.leaf_value[leaf, 0] += 0.25
    ds = read_data(TEST_LETOR, ens)
    rep = verify(ens, bad, data=ds, source=str(path), isolate=False)
    assert not rep.ok
    failing = {c.title for c in rep.failures}
    assert "compiled vs interpreter (raw)" in failing
    assert any(t.startswith("compiled vs lightgbm") for t in failing)
    leaf_checks = [c for c in rep.checks if c.what == "leaf"]
    assert leaf_checks and all(c.ok for c in leaf_checks)  # same leaves, different value
    c = rep.failures[0]
    assert c.max_abs_diff[0] == pytest.approx(0.25, abs=1e-12)
    ex = c.examples[0]
    assert ex["leaves_agree"] is True
    i = ex["row"]
    # the reported reference value is lightgbm's / the interpreter's score of that row
    assert abs(ex["candidate"] - ex["reference"]) == pytest.approx(0.25, abs=1e-12)
    assert "every tree reaches the same leaf" in rep.format()
    assert i < rep.rows_checked
    native_check = [x for x in rep.failures if x.reference.startswith("lightgbm")][0]
    assert "compiled scorer is wrong" in (native_check.note or "")


def test_changed_threshold_names_the_node_where_paths_part(lgb_model):
    path, native = lgb_model
    ens = ltrcompile.load_model(path)
    bad = _copy(ens)
    node = int(np.flatnonzero(bad.left[: int(bad.tree_offset[1])] >= 0)[0])  # root of tree 0
    bad.threshold[node] = -1e9 if bad.threshold[node] > 0 else 1e9  # every row goes one way
    ds = read_data(TEST_LETOR, ens)
    rep = verify(ens, bad, data=ds, source=str(path), isolate=False)
    assert not rep.ok
    leaf_fail = [c for c in rep.failures if c.what == "leaf"]
    assert leaf_fail
    ex = leaf_fail[0].examples[0]
    t0 = [t for t in ex["trees"] if t["tree"] == 0][0]
    assert t0["split"]["node"] == 0
    assert t0["split"]["feature"] == int(ens.feature[0])
    assert t0["split"]["threshold"] == float(ens.threshold[0])
    assert t0["paths"]["interpreter"][0] == 0 and t0["paths"]["compiled"][0] == 0
    # the interpreter and lightgbm agree on the leaf; the tampered scorer does not
    lib = [k for k in t0["leaves"] if k.startswith("lightgbm")][0]
    assert t0["leaves"][lib] == t0["leaves"]["interpreter"] != t0["leaves"]["compiled"]
    row = ex["row"]
    origin = ex["origin"]
    if row >= rep.edge_rows:
        assert "lambdarank_rank.test line" in origin and "qid" in origin
    assert "paths part at node 0" in rep.format()


def test_atol_is_respected(lgb_model):
    path, _ = lgb_model
    ens = ltrcompile.load_model(path)
    bad = _copy(ens)
    bad.leaf_value[bad.left < 0] += 1e-9
    assert not verify(ens, bad, native=False, edge=300, atol=0.0).ok
    rep = verify(ens, bad, native=False, edge=300, atol=1e-6)
    assert rep.ok and not rep.checks[0].bit_identical
    with pytest.raises(ValueError):
        verify(ens, bad, atol=-1.0)


def test_nothing_compared_is_not_ok(lgb_model):
    path, _ = lgb_model
    ens = ltrcompile.load_model(path)
    rep = verify(ens, None, native=False, edge=100)
    assert not rep.ok and rep.verdict == "incomplete"
    assert any("nothing was compared" in s for s in rep.skipped)
    assert any("switched off" in s for s in rep.skipped)


def test_data_with_wrong_width_is_refused(lgb_model):
    path, _ = lgb_model
    ens = ltrcompile.load_model(path)
    with pytest.raises(ValueError, match="expects"):
        verify(ens, None, data=np.zeros((3, 7)), source=str(path), isolate=False)


# --------------------------------------------------------------------------- datafiles: svmlight
def test_letor_with_query_file_matches_sklearn_and_group_sizes():
    ds = read_data(TEST_LETOR, n_features=300)
    X, y = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)
    np.testing.assert_array_equal(ds.X, X.toarray())
    np.testing.assert_array_equal(ds.y, y)
    groups = np.loadtxt(str(TEST_LETOR) + ".query", dtype=np.int64)
    _, counts = np.unique(ds.qid, return_counts=True)
    np.testing.assert_array_equal(counts, groups)
    assert ds.lines[0] == 1 and ds.format == "svmlight"
    assert [len(idx) for _, idx in ds.queries()] == groups.tolist()


def test_ranklib_letor_qids_are_kept():
    p = ROOT.parent / "shared" / "data" / "ranklib" / "test.letor"
    if not p.exists():
        pytest.skip("shared/data/ranklib not present")
    ds = read_data(p, n_features=300)
    X, y, q = sk_datasets.load_svmlight_file(str(p), n_features=300, zero_based=False, query_id=True)
    np.testing.assert_array_equal(ds.X, X.toarray())
    np.testing.assert_array_equal(ds.qid, q)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    n_rows=st.integers(1, 12),
    n_features=st.integers(1, 9),
    zero_based=st.booleans(),
)
def test_svmlight_round_trip_with_sklearn_writer(tmp_path, data, n_rows, n_features, zero_based):
    """Whatever scikit-learn's svmlight writer produces, we read what scikit-learn's reader reads."""
    vals = st.one_of(
        st.just(0.0),
        st.floats(allow_nan=False, allow_infinity=False, width=64),
    )
    X = np.array(data.draw(st.lists(st.lists(vals, min_size=n_features, max_size=n_features),
                                    min_size=n_rows, max_size=n_rows)))
    y = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n_rows, max_size=n_rows)), float)
    qid = np.sort(np.array(data.draw(st.lists(st.integers(1, 5), min_size=n_rows, max_size=n_rows))))
    path = tmp_path / f"d{os.getpid()}_{data.draw(st.integers(0, 10**9))}.svm"
    sk_datasets.dump_svmlight_file(X, y, str(path), zero_based=zero_based, query_id=qid)
    ref_X, ref_y, ref_q = sk_datasets.load_svmlight_file(
        str(path), n_features=n_features, zero_based=zero_based, query_id=True
    )
    ds = read_data(path, n_features=n_features, index_base=0 if zero_based else 1)
    np.testing.assert_array_equal(ds.X, ref_X.toarray())
    np.testing.assert_array_equal(ds.y, ref_y)
    np.testing.assert_array_equal(ds.qid, ref_q)
    # absent entries as missing: stored entries unchanged, the others NaN
    dm = read_data(path, n_features=n_features, absent="missing", index_base=0 if zero_based else 1)
    stored = ref_X.toarray() != 0
    np.testing.assert_array_equal(dm.X[stored], ref_X.toarray()[stored])
    assert np.isnan(dm.X[~stored]).all()


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("1 1:0.5\n0 2:abc\n", 2, "expected index:value"),
        ("1 1:0.5\nx 2:1\n", 2, "is not a number"),
        ("1 qid:1 1:0.5\n0 2:1\n", 2, "some rows have qid"),
        ("1 qid:a 1:0.5\n", 1, "not an integer"),
        ("1 1:0.5 1:0.7\n", 1, "appears twice"),
        ("# header\n1 1:0.5\n1 9:1\n", 3, "beyond the model's 4 features"),
        ("1 1:0.5 -2:1\n", 1, "negative feature index"),
        ("1 1:0.5 qid:3\n", 1, "qid: must come right after the label"),
    ],
)
def test_svmlight_errors_name_file_and_line(tmp_path, text, line, what):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(InputDataError) as ei:
        read_data(p, n_features=4, fmt="svmlight")
    msg = str(ei.value)
    assert f"file {p}, line {line}:" in msg and what in msg


def test_index_base_auto_and_forced(tmp_path):
    p = tmp_path / "z.svm"
    p.write_text("1 0:1.5 2:2.5\n")
    assert read_data(p, n_features=3).X.tolist() == [[1.5, 0.0, 2.5]]
    with pytest.raises(InputDataError, match="index 0 in a file read with 1-based"):
        read_data(p, n_features=3, index_base=1)
    q = tmp_path / "o.svm"
    q.write_text("1 1:1.5 3:2.5\n")
    assert read_data(q, n_features=3).X.tolist() == [[1.5, 0.0, 2.5]]
    assert read_data(q, n_features=4, index_base=0).X.tolist() == [[0.0, 1.5, 0.0, 2.5]]


def test_query_file_must_add_up(tmp_path):
    p = tmp_path / "d.svm"
    p.write_text("1 1:1\n0 1:2\n1 1:3\n")
    (tmp_path / "d.svm.query").write_text("2\n2\n")
    with pytest.raises(InputDataError, match=r"d\.svm\.query: the group sizes add up to 4 rows"):
        read_data(p, n_features=1)
    (tmp_path / "d.svm.query").write_text("2\n1\n")
    assert read_data(p, n_features=1).qid.tolist() == [1, 1, 2]


def test_not_utf8_and_empty_files(tmp_path):
    p = tmp_path / "b.svm"
    p.write_bytes(b"1 1:0.5\n\xff\xfe 2:1\n")
    with pytest.raises(InputDataError, match="not UTF-8"):
        read_data(p, n_features=3, fmt="svmlight")
    e = tmp_path / "e.txt"
    e.write_text("\n\n")
    with pytest.raises(InputDataError, match="empty"):
        read_data(e, n_features=3)
    with pytest.raises(InputDataError, match="no such file"):
        read_data(tmp_path / "missing.txt", n_features=3)


# --------------------------------------------------------------------------- datafiles: CSV / npy
def _named_model(tmp_path: Path) -> Ensemble:
    rng = np.random.default_rng(0)
    X = rng.random((200, 3))
    y = X[:, 0] * 2 - X[:, 2]
    bst = lgb.train(dict(objective="regression", num_leaves=4, verbose=-1, num_threads=1, min_data_in_leaf=5),
                    lgb.Dataset(X, y, feature_name=["price", "clicks", "age"]), 3)
    bst.save_model(str(tmp_path / "named.txt"))
    return ltrcompile.load_model(tmp_path / "named.txt")


def test_csv_binds_columns_by_name_in_any_order(tmp_path):
    ens = _named_model(tmp_path)
    p = tmp_path / "rows.csv"
    p.write_text("qid,age,label,price,clicks,doc_id\n7,1.5,1,0.25,,d1\n7,NaN,0,2,3,d2\n9,4,2,5,6,d3\n")
    ds = read_data(p, ens)
    assert ds.binding == "name"
    expect = np.array([[0.25, np.nan, 1.5], [2, 3, np.nan], [5, 6, 4]])
    np.testing.assert_array_equal(ds.X, expect)
    assert ds.qid.tolist() == [7, 7, 9] and ds.y.tolist() == [1, 0, 2]
    assert ds.ids.tolist() == ["d1", "d2", "d3"] and ds.lines.tolist() == [2, 3, 4]


def test_csv_name_errors(tmp_path):
    ens = _named_model(tmp_path)
    p = tmp_path / "rows.csv"
    for text, error in (
        ("price,clicks\n1,2\n", r"rows\.csv, line 1: 1 of the model's 3 features have no column: \['age'\]"),
        ("price,clicks,age,colour\n1,2,3,4\n", r"not model features: \['colour'\]"),
        ("price,clicks,age\n1,2,3\n1,two,3\n", r"line 3: column 'clicks': 'two' is not a number"),
        ("price,clicks,age\n1,2,3\n1,2\n", r"line 3: 2 fields, but the header has 3"),
    ):
        p.write_text(text)
        with pytest.raises(InputDataError, match=error):
            read_data(p, ens)


def test_csv_positional_without_model_names(tmp_path):
    p = tmp_path / "rows.csv"
    p.write_text("a,b,label\n1,2,0\n3,4,1\n")
    ds = read_data(p, n_features=2)
    assert ds.binding == "position" and ds.X.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == [0, 1]
    with pytest.raises(InputDataError, match=r"2 feature columns but the model expects 3"):
        read_data(p, n_features=3)
    t = tmp_path / "rows.tsv"
    t.write_text("1\t2\n3\t4\n")  # no header: all numeric
    assert read_data(t, n_features=2).X.tolist() == [[1, 2], [3, 4]]


def test_npy(tmp_path):
    p = tmp_path / "x.npy"
    A = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(p, A)
    ds = read_data(p, n_features=3)
    assert ds.X.dtype == np.float32 and ds.lines is None
    np.testing.assert_array_equal(ds.X, A)
    with pytest.raises(InputDataError, match="3 feature columns but the model expects 4"):
        read_data(p, n_features=4)
    np.save(p, np.zeros(3))
    with pytest.raises(InputDataError, match="expected a 2-D array"):
        read_data(p, n_features=3)
    np.save(p, np.array([["a"]]))
    with pytest.raises(InputDataError, match="expected numbers"):
        read_data(p, n_features=1)


def test_sniff(tmp_path):
    (tmp_path / "a.txt").write_text("# c\n2 qid:1 1:0.5 3:1\n")
    (tmp_path / "b.txt").write_text("f1,f2\n1,2\n")
    assert sniff_format(str(tmp_path / "a.txt")) == "svmlight"
    assert sniff_format(str(tmp_path / "b.txt")) == "csv"
    assert sniff_format(str(TEST_LETOR)) == "svmlight"


def test_extra_svmlight_features_ignored_only_on_request(tmp_path):
    p = tmp_path / "d.svm"
    p.write_text("1 qid:1 1:0.5 3:2 7:9\n0 qid:1 2:1\n")
    with pytest.raises(InputDataError, match="line 1: feature index 7 is beyond the model's 3 features"):
        read_data(p, n_features=3)
    ds = read_data(p, n_features=3, extra_features="ignore")
    assert ds.X.tolist() == [[0.5, 0.0, 2.0], [0.0, 1.0, 0.0]] and ds.ignored_features == 1


# --------------------------------------------------------------------------- scikit-learn sources
@pytest.mark.parametrize("kind", ["gb_binary", "rf_multiclass_nan", "hgb_binary"])
def test_sklearn_pickle_compared_with_the_unpickled_estimator(kind, rank_data, tmp_path):
    joblib = pytest.importorskip("joblib")
    ens_mod = pytest.importorskip("sklearn.ensemble")
    Xtr, ytr, *_ = rank_data
    X, y = Xtr[:600].copy(), ytr[:600]
    if kind == "gb_binary":
        est = ens_mod.GradientBoostingClassifier(n_estimators=4, max_depth=3, random_state=0)
        est.fit(X, (y > 0).astype(int))
    elif kind == "rf_multiclass_nan":
        X[::5, 3] = np.nan
        est = ens_mod.RandomForestClassifier(n_estimators=3, max_depth=4, n_jobs=1, random_state=0)
        est.fit(X, np.minimum(y, 2).astype(int))
    else:
        X[::5, 3] = np.nan
        est = ens_mod.HistGradientBoostingClassifier(max_iter=4, random_state=0)
        est.fit(X, (y > 0).astype(int))
    path = tmp_path / "est.pkl"
    joblib.dump(est, path)
    ens = ltrcompile.load_model(path)
    rep = verify(ens, None, data=X[:200], source=str(path), edge=1500, isolate=False)
    assert rep.ok, rep.format()
    checks = {c.what: c for c in rep.checks}
    assert checks["output"].reference.startswith("scikit-learn")
    assert checks["output"].rows > 200 and checks["output"].bit_identical
    if kind != "hgb_binary":  # HistGradientBoosting has no apply()
        assert "leaf" in checks
    # the rows scikit-learn refuses (inf, beyond float32) are counted, not silently compared
    assert checks["output"].skipped_rows + checks["output"].rows == rep.rows_checked
    want = est.predict_proba(X[:200])
    got = ens.predict(X[:200])
    np.testing.assert_array_equal(got.reshape(200, -1)[:, -1], want[:, -1])


def test_library_that_aborts_on_the_file_cannot_kill_the_caller(lgb_model, tmp_path):
    """LightGBM terminates the process on a file whose tree_sizes header no longer matches (here:
    one leaf value edited by hand). Our frontend reads the file; the native check runs in a child
    process, so verify() survives and says why the library comparison is missing."""
    path, _ = lgb_model
    text = path.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("leaf_value="))
    vals = line[len("leaf_value="):].split()
    vals[0] = repr(float(vals[0]) + 0.5)
    edited = tmp_path / "edited.txt"
    edited.write_text(text.replace(line, "leaf_value=" + " ".join(vals), 1))
    ens = ltrcompile.load_model(edited)
    rep = verify(ens, _copy(ens), source=str(edited), edge=300)
    assert rep.ok and rep.verdict == "incomplete"  # compiled vs interpreter proved, the library did not run
    assert any("lightgbm could not score edited.txt" in s and "Model format error" in s for s in rep.skipped), rep.skipped
    assert all(c.reference == "interpreter" for c in rep.checks)
