"""ltrcompile.spark on a real local[2] Spark (one session for the module): scores equal in-process
``predict`` bit for bit, column binding and its errors, the platform-mismatch paths, NDCG.

Needs Java; without it the module skips with the reason (``LTRC_REQUIRE_SPARK=1``, set by
``.ci/run``, turns that skip into a failure).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, assert_bit_equal, load_letor, require_c_compiler

RANKLIB = Path(__file__).parent / "data" / "ranklib"
N_FEATURES = 300
NAMES = [f"Column_{i}" for i in range(N_FEATURES)]  # LightGBM's names for numpy-trained models


def _java_problem() -> str | None:
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") else None
    java = java or shutil.which("java")
    if java is None:
        return "no Java runtime (JAVA_HOME unset and no java on PATH): the Spark tests need a JVM"
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"java -version failed: {exc}"
    return None


def _require_spark() -> None:
    why = _java_problem()
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        why = why or f"pyspark/pyarrow not installed ({exc}); install the 'spark' extra"
    if why:
        if os.environ.get("LTRC_REQUIRE_SPARK", "") not in ("", "0"):
            pytest.fail(f"LTRC_REQUIRE_SPARK is set but {why}", pytrace=False)
        pytest.skip(why, allow_module_level=True)


_require_spark()
require_c_compiler()

import ltrcompile  # noqa: E402
from ltrcompile import spark as lspark  # noqa: E402


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ltrc-spark-cache")


@pytest.fixture(scope="module")
def spark(cache_dir):
    """One local[2] session; its Python workers inherit the private build cache and this Python."""
    from pyspark.sql import SparkSession

    saved = {k: os.environ.get(k) for k in ("LTRCOMPILE_CACHE", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    os.environ["LTRCOMPILE_CACHE"] = str(cache_dir)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ltrcompile-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "500")  # several batches per task
        .config("spark.driver.memory", "1g")
        .config("spark.driver.bindAddress", "127.0.0.1")  # loopback only
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def data():
    Xtr, ytr, gtr = load_letor(DATA / "lambdarank_rank.train", n_features=N_FEATURES)
    Xte, yte, gte = load_letor(DATA / "lambdarank_rank.test", n_features=N_FEATURES)
    qte = np.repeat(np.arange(len(gte)), gte)
    return Xtr, ytr, gtr, Xte, yte, qte


@pytest.fixture(scope="module")
def test_df(spark, data):
    """The bundled lambdarank test rows: rid, qid, label, Column_0..Column_299 (double)."""
    import pandas as pd

    _, _, _, Xte, yte, qte = data
    pdf = pd.DataFrame(Xte, columns=NAMES)
    pdf.insert(0, "label", yte)
    pdf.insert(0, "qid", qte.astype(np.int64))
    pdf.insert(0, "rid", np.arange(len(Xte), dtype=np.int64))
    return spark.createDataFrame(pdf).repartition(3).cache()


@pytest.fixture(scope="module")
def xgb_model(data, tmp_path_factory, cache_dir):
    import xgboost as xgb

    Xtr, ytr, gtr, *_ = data
    qid = np.repeat(np.arange(len(gtr)), gtr)
    bst = xgb.train({"objective": "rank:ndcg", "max_depth": 4, "eta": 0.3, "nthread": 1, "seed": 3},
                    xgb.DMatrix(Xtr, ytr, qid=qid), num_boost_round=15)
    path = tmp_path_factory.mktemp("xgb") / "ranker.json"
    bst.save_model(str(path))
    return bst, path, ltrcompile.compile(str(path), progress=False)


@pytest.fixture(scope="module")
def lgb_model(data, tmp_path_factory, cache_dir):
    import lightgbm as lgb

    Xtr, ytr, gtr, Xte, yte, qte = data
    res: dict = {}
    dtr = lgb.Dataset(Xtr, ytr, group=gtr)
    dte = lgb.Dataset(Xte, yte, group=np.bincount(qte), reference=dtr)
    bst = lgb.train({"objective": "lambdarank", "num_leaves": 15, "learning_rate": 0.1, "verbose": -1,
                     "num_threads": 1, "deterministic": True, "seed": 3, "metric": "ndcg", "eval_at": [5, 10]},
                    dtr, num_boost_round=15, valid_sets=[dte],
                    valid_names=["test"], callbacks=[lgb.record_evaluation(res)])
    path = tmp_path_factory.mktemp("lgb") / "ranker.txt"
    bst.save_model(str(path))
    return bst, path, ltrcompile.compile(str(path), progress=False), res["test"]


def _scores(df, col="score"):
    """Scores of a scored DataFrame in rid order (float64 (n,) or (n, k))."""
    pdf = df.select("rid", col).toPandas().sort_values("rid")
    v = pdf[col].to_numpy()
    return np.array([np.asarray(r, np.float64) for r in v]) if v.dtype == object else v.astype(np.float64)


# ---------------------------------------------------------------- parity on the bundled data
def test_xgboost_ranker_bit_equal(test_df, data, xgb_model):
    bst, _, scorer = xgb_model
    Xte = data[3]
    got = _scores(lspark.score(test_df, scorer, features=NAMES))  # a CompiledScorer
    assert_bit_equal(got, scorer.predict(Xte), "spark vs in-process predict")
    np.testing.assert_allclose(got, bst.inplace_predict(Xte), rtol=0, atol=1e-6)


def test_lightgbm_ranker_from_model_file_bit_equal(test_df, data, lgb_model):
    bst, path, scorer, _ = lgb_model
    Xte = data[3]
    got = _scores(lspark.score(test_df, str(path)))  # a model file, bound by its feature names
    assert_bit_equal(got, scorer.predict(Xte), "spark vs in-process predict")
    np.testing.assert_allclose(got, bst.predict(Xte, raw_score=True), rtol=0, atol=1e-6)


def test_ranklib_ensemble_bit_equal_to_ranklib_own_scores(test_df, data):
    ens = ltrcompile.load_model(str(RANKLIB / "lambdamart.model.txt"), n_features=N_FEATURES)
    got = _scores(lspark.score(test_df, ens, features=NAMES, output_col="s"), "s")  # an Ensemble
    ranklib_own = np.loadtxt(RANKLIB / "lambdamart.scores.tsv", usecols=2)
    # RankLib's test.letor is these rows with svmlight-absent features written as 0, in this order
    assert_bit_equal(got, ranklib_own, "spark vs RankLib's scores")
    assert_bit_equal(got, ens.predict(data[3]), "spark vs interpreter")


def test_artifact_directory_and_raw_score(test_df, data, xgb_model, tmp_path):
    _, _, scorer = xgb_model
    art = tmp_path / "art"
    shutil.copytree(scorer.path, art)
    got = _scores(lspark.score(test_df, str(art), features=NAMES, raw_score=True))
    assert_bit_equal(got, scorer.predict(data[3], raw_score=True), "artifact dir")


def test_columns_in_another_order_and_extra_columns(test_df, data, lgb_model):
    _, _, scorer, _ = lgb_model
    from pyspark.sql import functions as F

    shuffled = test_df.select("rid", F.lit("doc").alias("title"), *reversed(NAMES), "qid")
    got = _scores(lspark.score(shuffled, scorer))
    assert_bit_equal(got, scorer.predict(data[3]), "reordered columns")


def test_vector_and_array_columns(spark, test_df, data, lgb_model):
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import functions as F

    _, _, scorer, _ = lgb_model
    X = data[3].copy()
    X[::7, 5] = np.nan  # a NaN entry of a vector is a missing value
    ref = scorer.predict(X)
    rows = []
    for i, x in enumerate(X):  # every other row as a sparse vector (absent entries are 0.0)
        nz = np.flatnonzero(x)
        rows.append((i, Vectors.sparse(len(x), nz.tolist(), x[nz].tolist()) if i % 2 else Vectors.dense(x.tolist())))
    vec = spark.createDataFrame(rows, ["rid", "features"]).repartition(3)
    assert_bit_equal(_scores(lspark.score(vec, scorer, features="features")), ref, "dense+sparse vectors")
    dense_only = spark.createDataFrame([(i, Vectors.dense(x.tolist())) for i, x in enumerate(X)], ["rid", "features"])
    assert_bit_equal(_scores(lspark.score(dense_only, scorer, features="features")), ref, "dense vectors")
    ref = scorer.predict(data[3])
    arr = test_df.select("rid", F.array(*[F.col(c) for c in NAMES]).alias("x"))
    assert_bit_equal(_scores(lspark.score(arr, scorer, features="x")), ref, "array<double>")
    arr32 = arr.select("rid", F.col("x").cast("array<float>").alias("x"))
    ref32 = scorer.predict(data[3].astype(np.float32))
    assert_bit_equal(_scores(lspark.score(arr32, scorer, features="x")), ref32, "array<float>")


def test_nulls_are_missing_exactly_as_nan(test_df, data, lgb_model, xgb_model):
    from pyspark.sql import functions as F

    X = data[3].copy()
    # the most used split features, so that missing values change the path
    hot = [int(c) for c in np.argsort(-np.count_nonzero(X, axis=0))[:6]]
    rid = np.arange(len(X))
    df = test_df
    for j, c in enumerate(hot):
        col = F.col(NAMES[c])
        if j % 2 == 0:
            df = df.withColumn(NAMES[c], F.when(F.col("rid") % 3 == j % 3, F.lit(None)).otherwise(col))
        else:
            df = df.withColumn(NAMES[c], F.when(F.col("rid") % 4 == 1, F.lit(float("nan"))).otherwise(col))
        X[(rid % 3 == j % 3) if j % 2 == 0 else (rid % 4 == 1), c] = np.nan
    n_null = df.where(F.col(NAMES[hot[0]]).isNull()).count()
    n_nan = df.where(F.isnan(NAMES[hot[1]])).count()
    assert n_null > 0 and n_nan > 0
    for scorer in (lgb_model[2], xgb_model[2]):
        ref = scorer.predict(X)
        assert not np.array_equal(ref, scorer.predict(data[3])), "the missing values must matter"
        assert_bit_equal(_scores(lspark.score(df, scorer, features=NAMES)), ref, "nulls/NaN")
    # null elements of an array column too
    arr = df.select("rid", F.array(*[F.col(c) for c in NAMES]).alias("x"))
    assert_bit_equal(_scores(lspark.score(arr, lgb_model[2], features="x")), lgb_model[2].predict(X), "array nulls")


def test_multi_output_model_gives_an_array_column(test_df, data, tmp_path):
    import xgboost as xgb
    from pyspark.sql import types as T

    Xtr, ytr, *_ = data
    bst = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1, "seed": 1},
                    xgb.DMatrix(Xtr, np.minimum(ytr, 2)), num_boost_round=4)
    bst.save_model(str(tmp_path / "mc.json"))
    scorer = ltrcompile.compile(str(tmp_path / "mc.json"), progress=False)
    out = lspark.score(test_df, scorer, features=NAMES, output_col="probs")
    assert out.schema["probs"].dataType == T.ArrayType(T.DoubleType(), False)
    got = _scores(out, "probs")
    assert got.shape == (len(data[3]), 3)
    assert_bit_equal(got, scorer.predict(data[3]), "multiclass probabilities")
    np.testing.assert_allclose(got, bst.inplace_predict(data[3]), rtol=0, atol=1e-6)
    raw = _scores(lspark.score(test_df, scorer, features=NAMES, output_col="m", raw_score=True), "m")
    assert_bit_equal(raw, scorer.predict(data[3], raw_score=True), "multiclass margins")


# ---------------------------------------------------------------- errors before any job
def _no_job(spark, fn):
    sc = spark.sparkContext
    sc.setJobGroup("ltrc-no-job", "must not run")
    try:
        with pytest.raises(lspark.SparkScoringError) as ei:
            fn()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert list(sc.statusTracker().getJobIdsForGroup("ltrc-no-job")) == []
    return str(ei.value)


def test_missing_and_string_columns_fail_before_the_job(spark, test_df, lgb_model):
    from pyspark.sql import functions as F

    scorer = lgb_model[2]
    msg = _no_job(spark, lambda: lspark.score(test_df.drop("Column_7", "Column_9"), scorer))
    assert "Column_7" in msg and "Column_9" in msg and "lacks 2" in msg
    msg = _no_job(spark, lambda: lspark.score(test_df.withColumn("Column_3", F.col("Column_3").cast("string")), scorer))
    assert "'Column_3'" in msg and "string" in msg and "not numeric" in msg
    msg = _no_job(spark, lambda: lspark.score(test_df, scorer, features="rid"))
    assert "vector or an array" in msg
    msg = _no_job(spark, lambda: lspark.score(test_df, scorer, features=NAMES[:5]))
    assert "5 columns" in msg and "300 features" in msg
    msg = _no_job(spark, lambda: lspark.score(test_df, scorer, output_col="label"))
    assert "already has a column 'label'" in msg
    msg = _no_job(spark, lambda: lspark.score(test_df, scorer, on_mismatch="hope"))
    assert "on_mismatch" in msg


def test_unnamed_model_needs_features(spark, test_df, xgb_model):
    msg = _no_job(spark, lambda: lspark.score(test_df, xgb_model[2]))
    assert "no feature names" in msg and "features=" in msg


# ---------------------------------------------------------------- platform/ABI mismatch (simulated)
@pytest.fixture(scope="module")
def foreign_artifact(data, tmp_path_factory):
    """A model built here, its manifest edited to claim another platform and Python ABI."""
    import lightgbm as lgb

    Xtr, ytr, gtr, *_ = data
    root = tmp_path_factory.mktemp("foreign")
    bst = lgb.train({"objective": "lambdarank", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 11},
                    lgb.Dataset(Xtr, ytr, group=gtr), num_boost_round=5)
    bst.save_model(str(root / "m.txt"))
    native = ltrcompile.compile(str(root / "m.txt"), root / "native", progress=False)
    art = root / "foreign"
    shutil.copytree(native.path, art)
    m = json.loads((art / "manifest.json").read_text())
    m["python"] = {**m["python"], "soabi": "cpython-399-aarch64-linux-gnu", "platform": "linux-aarch64",
                   "machine": "aarch64", "ext_suffix": ".cpython-399-aarch64-linux-gnu.so"}
    (art / "manifest.json").write_text(json.dumps(m))
    return native, art


def test_mismatch_interpret_then_rebuild_then_error(spark, test_df, data, foreign_artifact, cache_dir):
    native, art = foreign_artifact
    ref = native.predict(data[3])
    rebuilt = cache_dir / native.module_name  # where an executor's rebuild of this IR lands
    assert not rebuilt.exists()

    got = _scores(lspark.score(test_df, str(art), on_mismatch="interpret"))
    assert_bit_equal(got, ref, "interpreter fallback")
    assert not rebuilt.exists(), "interpret must not build"

    got = _scores(lspark.score(test_df, str(art), on_mismatch="rebuild"))
    assert_bit_equal(got, ref, "rebuilt from the shipped IR")
    assert (rebuilt / "manifest.json").is_file(), "the rebuild is cached on the executor"

    from pyspark.errors import PythonException

    with pytest.raises(PythonException, match="IncompatibleArtifactError"):
        _scores(lspark.score(test_df, str(art), on_mismatch="error"))


def test_mismatch_log_lines_and_no_compiler_fallback(spark, data, foreign_artifact, caplog):
    """What each path logs, and the rebuild's no-compiler branch, in this process: the executor's
    stderr goes to the JVM, not to this test; the executors run this same function."""
    from ltrcompile.backends.cython import toolchain as tc

    native, art = foreign_artifact
    payload = {"module": native.module_name, "files": lspark.ship(str(art)).files}
    caplog.set_level("WARNING", logger="ltrcompile.spark")
    s = lspark.load_shipped(payload, "interpret")
    assert s.kind == "interpreter"
    assert "another platform/Python ABI" in caplog.text and "on_mismatch='interpret'" in caplog.text
    caplog.clear()
    s = lspark.load_shipped(payload, "rebuild")
    assert s.module_name == native.module_name
    assert f"rebuilt {native.module_name} from its IR on this executor" in caplog.text
    caplog.clear()
    with pytest.MonkeyPatch.context() as mp:
        def no_cc(*a, **k):
            raise tc.CompilerNotFoundError("no C compiler (test)")

        mp.setattr(tc, "toolchain", no_cc)
        s = lspark.load_shipped(payload, "rebuild")
    assert s.kind == "interpreter"
    assert "no C compiler on this executor" in caplog.text
    assert_bit_equal(s.predict(data[3]), native.predict(data[3]), "no-compiler fallback")


# ---------------------------------------------------------------- NDCG
def _sklearn_ndcg(y, s, q, k, exponential, empty):
    from sklearn.metrics import ndcg_score

    out = {}
    for qq in np.unique(q):
        i = q == qq
        g = (2.0 ** y[i] - 1.0) if exponential else y[i]
        if i.sum() < 2:
            continue
        out[int(qq)] = empty if g.max() <= 0 else float(ndcg_score([g], [s[i]], k=k))
    return out


@pytest.mark.parametrize("convention", ["lightgbm", "ranklib", "sklearn"])
def test_ndcg_matches_sklearn(spark, test_df, data, lgb_model, convention):
    from pyspark.sql import functions as F

    scorer = lgb_model[2]
    _, _, _, Xte, yte, qte = data
    yte = np.where(qte < 3, 0.0, yte)  # three queries without a relevant document
    scored = lspark.score(test_df, scorer).withColumn(
        "label", F.when(F.col("qid") < 3, F.lit(0.0)).otherwise(F.col("label")))
    # coarse scores: many ties, which sklearn averages over (and so must we)
    coarse = scored.withColumn("score", F.round(F.col("score"), 1))
    s_coarse = np.round(scorer.predict(Xte), 1)
    assert len(np.unique(s_coarse)) < len(s_coarse) / 4
    multi = np.bincount(qte)[qte] >= 2
    exponential, empty = {"lightgbm": (True, 1.0), "ranklib": (True, 0.0), "sklearn": (False, 0.0)}[convention]
    for df, s, k in ((scored, scorer.predict(Xte), 10), (coarse, s_coarse, 5)):
        res = lspark.ndcg(df.where(F.col("rid").isin([int(r) for r in np.flatnonzero(multi)])),
                          query_col="qid", label_col="label", score_col="score", k=k, convention=convention)
        ref = _sklearn_ndcg(yte, s, qte, k, exponential, empty)
        per = {int(r["qid"]): r["ndcg"] for r in res.per_query.collect()}
        assert set(per) == set(ref)
        np.testing.assert_allclose([per[q] for q in sorted(ref)], [ref[q] for q in sorted(ref)], rtol=0, atol=1e-12)
        assert res.mean == pytest.approx(np.mean(list(ref.values())), abs=1e-12)
        assert res.n_queries == len(ref)


def test_ndcg_lightgbm_convention_equals_lightgbm_metric(test_df, data, lgb_model):
    """LightGBM's own ndcg@5/@10 on the test set (all queries, the same model)."""
    _, _, scorer, evals = lgb_model
    scored = lspark.score(test_df, scorer)
    for k in (5, 10):
        res = lspark.ndcg(scored, query_col="qid", label_col="label", score_col="score", k=k,
                          tie_break_col="rid")  # LightGBM: stable sort, ties in input order
        assert res.mean == pytest.approx(evals[f"ndcg@{k}"][-1], abs=1e-9)


def test_ndcg_errors(test_df):
    with pytest.raises(lspark.NdcgError, match="no column 'nope'"):
        lspark.ndcg(test_df, query_col="nope", label_col="label", score_col="Column_0")
    with pytest.raises(lspark.NdcgError, match="convention"):
        lspark.ndcg(test_df, query_col="qid", label_col="label", score_col="Column_0", convention="x")
    with pytest.raises(lspark.NdcgError, match="positive"):
        lspark.ndcg(test_df, query_col="qid", label_col="label", score_col="Column_0", k=0)


# ---------------------------------------------------------------- the CLI job
def test_cli_spark_job_scores_parquet_bit_equal(spark, test_df, data, xgb_model, tmp_path, cache_dir):
    """``ltrcompile score MODEL IN.parquet --spark local[1] -o OUT.parquet`` in its own process (its
    own JVM): an unnamed model file bound by --features, scores equal in-process predict."""
    _, path, scorer = xgb_model
    src = tmp_path / "in.parquet"
    test_df.select("rid", "qid", *NAMES).write.parquet(str(src))
    out = tmp_path / "out.parquet"
    env = {**os.environ, "LTRCOMPILE_CACHE": str(cache_dir), "PYSPARK_PYTHON": sys.executable}
    r = subprocess.run(
        [sys.executable, "-m", "ltrcompile", "score", str(path), str(src), "--spark", "local[1]",
         "-o", str(out), "--features", ",".join(NAMES)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith(f"scored {len(data[3]):,} rows in ") and " rows/s" in last and str(out) in last, last
    got = _scores(spark.read.parquet(str(out)))
    assert_bit_equal(got, scorer.predict(data[3]), "CLI spark job vs in-process predict")
    cols = spark.read.parquet(str(out)).columns
    assert cols[:2] == ["rid", "qid"] and cols[-1] == "score"


@pytest.mark.parametrize(("args", "needle"), [
    (["--spark", "--contrib"], "--contrib does not apply with --spark"),
    (["--spark", "local[1]", "--output-format", "csv"], "--output-format does not apply with --spark"),
    (["--spark"], "give its path with -o"),
    (["--features", "a,b"], "applies only with --spark"),
])
def test_cli_spark_refusals_are_one_line_before_any_jvm(tmp_path, lgb_model, args, needle, capsys):
    from ltrcompile.cli import EXIT_BAD_INPUT, main

    src = tmp_path / "in.parquet"
    src.write_bytes(b"PAR1")  # only its name is looked at before the refusal
    assert main(["score", str(lgb_model[1]), str(src), *args]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_cli_spark_needs_parquet_and_in_process_refuses_parquet(tmp_path, lgb_model, capsys):
    from ltrcompile.cli import EXIT_BAD_INPUT, main

    csv = tmp_path / "rows.csv"
    csv.write_text("Column_0\n1\n")
    assert main(["score", str(lgb_model[1]), str(csv), "--spark", "-o", str(tmp_path / "o.parquet")]) == EXIT_BAD_INPUT
    assert "--spark reads Parquet" in capsys.readouterr().err
    pq = tmp_path / "d"
    pq.mkdir()
    (pq / "part-0.parquet").write_bytes(b"PAR1")
    assert main(["score", str(lgb_model[1]), str(pq)]) == EXIT_BAD_INPUT
    assert "is Parquet: score it with --spark" in capsys.readouterr().err
