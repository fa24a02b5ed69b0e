"""The command line, driven as a real subprocess on real model files.

Models are trained here with the real libraries and saved; expected scores come from those libraries
(reloaded from the saved files) or from files they wrote. Every error path checks the documented exit
code and that stderr is ONE line naming the file, with no Python traceback (unless --debug).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")
sk_datasets = pytest.importorskip("sklearn.datasets")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEST_LETOR = ROOT / "examples" / "data" / "lambdarank_rank.test"
RANKLIB = SHARED / "data" / "ranklib"


#: one build cache for the module's runs (identical builds are reused, ~/.cache stays untouched)
_SHARED_ENV: dict[str, str] = {}


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, exe: str = "ltrcompile",
        timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run a console script of the venv (falls back to python -m ltrcompile)."""
    script = BIN / exe
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ltrcompile"] + (
        ["compile"] if exe == "compile-model" else []
    )
    full_env = {**os.environ, **_SHARED_ENV, **(env or {})}
    full_env.pop("LTRCOMPILE_DEBUG", None)
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=full_env, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    err_lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr, p.stderr
    errs = [ln for ln in err_lines if ": error: " in ln]
    assert len(errs) == 1, p.stderr
    assert err_lines[-1] == errs[0], "the error must be the last line"
    for n in needles:
        assert n in errs[0], (n, errs[0])
    return errs[0]


# --------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def models(rank_data, tmp_path_factory):
    """Small real models of each library, saved to files, plus data files."""
    d = tmp_path_factory.mktemp("cli")
    _SHARED_ENV["LTRCOMPILE_CACHE"] = str(d / "build-cache")
    Xtr, ytr, gtr, Xte, yte, gte = rank_data
    params = dict(objective="lambdarank", num_leaves=7, min_data_in_leaf=20, num_threads=1,
                  deterministic=True, verbose=-1, seed=5)
    bst = lgb.train(params, lgb.Dataset(Xtr, ytr, group=gtr), 10)
    bst.save_model(str(d / "rank.txt"))
    qid = np.repeat(np.arange(len(gtr)), gtr)
    xb = xgb.train({"objective": "rank:ndcg", "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 1},
                   xgb.DMatrix(Xtr, ytr, qid=qid), 8)
    xb.save_model(str(d / "rank.json"))
    xb.save_model(str(d / "rank.ubj"))
    # an early-stopped XGBoost model: best_iteration saved in the file
    Xv, yv = Xte[:300], yte[:300]
    xs = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "eta": 0.8, "nthread": 1, "seed": 1},
                   xgb.DMatrix(Xtr, ytr), 60, evals=[(xgb.DMatrix(Xv, yv), "v")],
                   early_stopping_rounds=3, verbose_eval=False)
    xs.save_model(str(d / "early.json"))
    # a model with real feature names, for CSV binding
    rng = np.random.default_rng(0)
    Xn = rng.random((300, 3))
    yn = 2 * Xn[:, 0] - Xn[:, 2] + 0.1 * Xn[:, 1]
    nb = lgb.train(dict(objective="regression", num_leaves=6, verbose=-1, num_threads=1, min_data_in_leaf=5),
                   lgb.Dataset(Xn, yn, feature_name=["price", "clicks", "age"]), 5)
    nb.save_model(str(d / "named.txt"))
    bparams = dict(objective="binary", num_leaves=5, num_threads=1, verbose=-1, seed=2, min_data_in_leaf=20)
    lgb.train(bparams, lgb.Dataset(Xtr, (ytr > 1).astype(float)), 6).save_model(str(d / "binary.txt"))
    mparams = dict(objective="multiclass", num_class=3, num_leaves=5, num_threads=1, verbose=-1, seed=2,
                   min_data_in_leaf=20)
    lgb.train(mparams, lgb.Dataset(Xtr, np.minimum(ytr, 2)), 4).save_model(str(d / "multi.txt"))
    np.save(d / "test.npy", Xte[:50])
    import joblib
    from sklearn.ensemble import GradientBoostingClassifier

    gb = GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0)
    gb.fit(Xtr[:800], (ytr[:800] > 0).astype(int))
    joblib.dump(gb, d / "gb.joblib")
    return d


# --------------------------------------------------------------------------- help & plumbing
def test_help_texts_have_examples_and_exit_codes():
    for exe, args in (("ltrcompile", ["--help"]), ("compile-model", ["--help"]),
                      ("ltrcompile", ["score", "--help"]), ("ltrcompile", ["verify", "--help"]),
                      ("ltrcompile", ["inspect", "--help"])):
        p = run(*args, exe=exe)
        assert p.returncode == 0, p.stderr
        assert "Examples:" in p.stdout and "Exit codes: 0 ok, " in p.stdout
        # a parity mismatch is only possible where a parity check runs
        assert ("1 parity mismatch" in p.stdout) == (args[0] in ("--help", "verify") or exe == "compile-model")


def test_python_dash_m_entry_point():
    p = subprocess.run([sys.executable, "-m", "ltrcompile", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "ltrcompile" in p.stdout


def test_usage_error_is_exit_2():
    p = run("inspect")
    assert p.returncode == 2 and "Missing argument" in p.stderr and "Traceback" not in p.stderr
    p = run("frobnicate")
    assert p.returncode == 2


# --------------------------------------------------------------------------- inspect
def test_inspect_lightgbm_json(models):
    p = run("inspect", models / "rank.txt", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    native = lgb.Booster(model_file=str(models / "rank.txt"))
    dump = native.dump_model()
    assert d["ok"] is True and d["format"] == "lightgbm-text" and d["objective"] == "lambdarank"
    assert d["trees"] == native.num_trees() == 10
    assert d["n_features"] == native.num_feature()
    assert d["leaves"] == sum(t["num_leaves"] for t in dump["tree_info"])
    assert sum(d["depth_histogram"].values()) == 10
    assert sum(d["leaves_per_tree_histogram"].values()) == 10
    used = {int(f) for f in np.flatnonzero(native.feature_importance("split"))}
    assert d["features_used"] == len(used)
    top = d["top_features"][0]
    assert top["splits"] == int(native.feature_importance("split").max())
    assert any("never used" in u for u in d["unusual"])


def test_inspect_xgboost_human(models):
    p = run("inspect", models / "rank.ubj")
    assert p.returncode == 0, p.stderr
    assert "xgboost-ubj" in p.stdout and "rank:ndcg" in p.stdout
    assert re.search(r"trees\s+8\b", p.stdout)


def test_inspect_early_stopped_xgboost_states_the_policy(models):
    """An XGBoost file keeps every round, as Booster.predict does; inspect says the best iteration
    exists but is not applied, and --num-iteration best applies it."""
    native = xgb.Booster(model_file=str(models / "early.json"))
    best = native.best_iteration
    total = native.num_boosted_rounds()
    assert best + 1 < total
    d = json.loads(run("inspect", models / "early.json", "--json").stdout)
    assert d["trees"] == total
    assert any(f"best_iteration {best}" in n and "not applied" in n and "Booster.predict" in n for n in d["notes"])
    p = run("inspect", models / "early.json")
    assert "not applied" in p.stdout and "--num-iteration best" in p.stdout
    db = json.loads(run("inspect", models / "early.json", "--json", "--num-iteration", "best").stdout)
    assert db["trees"] == best + 1
    d0 = json.loads(run("inspect", models / "early.json", "--json", "--num-iteration", "0").stdout)
    assert d0["trees"] == total
    d5 = json.loads(run("inspect", models / "early.json", "--json", "--num-iteration", "5").stdout)
    assert d5["trees"] == 5
    bad = run("inspect", models / "early.json", "--num-iteration", "-2")
    assert bad.returncode == 2 and "--num-iteration must be an integer >= 0 or 'best'" in bad.stderr


needs_ranklib = pytest.mark.skipif(
    not (RANKLIB / "lambdamart.model.txt").exists(), reason="shared/data/ranklib is absent",
)


def test_inspect_and_score_sklearn_pickle(models, tmp_path):
    import joblib

    d = json.loads(run("inspect", models / "gb.joblib", "--json").stdout)
    est = joblib.load(models / "gb.joblib")
    assert d["format"] == "sklearn-pickle" and d["trees"] == est.n_estimators_
    out = tmp_path / "s.csv"
    assert run("score", models / "gb.joblib", TEST_LETOR, "-o", out, "--raw-score").returncode == 0
    X, _ = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)
    got = np.array([float(ln.split(",")[3]) for ln in out.read_text().splitlines()[1:]])
    np.testing.assert_array_equal(got, est.decision_function(X.toarray()))
    assert_one_line_error(run("inspect", models / "gb.joblib", "--num-iteration", "2"), 2, "--num-iteration")


@needs_ranklib
def test_inspect_ranklib():
    p = run("inspect", RANKLIB / "lambdamart.model.txt", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    text = (RANKLIB / "lambdamart.model.txt").read_text()
    assert d["format"] == "ranklib" and d["objective"] == "LambdaMART"
    assert d["trees"] == text.count("<tree ")
    assert d["leaves"] == text.count("<output>")


@needs_ranklib
@pytest.mark.parametrize("name", ["mart", "lambdamart", "rf_mart", "coordinate_ascent", "rankboost", "linear_regression"])
def test_score_ranklib_matches_ranklib_score_file(name, tmp_path):
    """RankLib's own -score output (qid, index in query, score) is the reference."""
    out = tmp_path / "s.tsv"
    p = run("score", RANKLIB / f"{name}.model.txt", RANKLIB / "test.letor", "-o", out)
    assert p.returncode == 0, p.stderr
    ref = [ln.split("\t") for ln in (RANKLIB / f"{name}.scores.tsv").read_text().splitlines()]
    rows = [ln.split("\t") for ln in out.read_text().splitlines()[1:]]
    assert len(rows) == len(ref) == 768
    for (q, _i, s), r in zip(ref, rows, strict=True):
        assert r[1] == q
        assert float(r[3]) == float(s), (name, r, s)


@needs_ranklib
def test_inspect_ranklib_neural_network():
    p = run("inspect", RANKLIB / "ranknet.model.txt", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["format"] == "ranklib" and d["network"] == [300, 10, 1] and d["trees"] == 0


# --------------------------------------------------------------------------- score
def test_score_letor_matches_lightgbm_and_ranks_per_query(models, tmp_path):
    out = tmp_path / "scores.tsv"
    p = run("score", models / "rank.txt", TEST_LETOR, "-o", out)
    assert p.returncode == 0, p.stderr
    rows = [ln.split("\t") for ln in out.read_text().splitlines()]
    assert rows[0] == ["line", "qid", "label", "score", "rank"]
    body = rows[1:]
    X, y = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)
    want = lgb.Booster(model_file=str(models / "rank.txt")).predict(X.toarray())
    got = np.array([float(r[3]) for r in body])
    np.testing.assert_array_equal(got, want)
    groups = np.loadtxt(str(TEST_LETOR) + ".query", dtype=np.int64)
    qid = np.array([int(r[1]) for r in body])
    rank = np.array([int(r[4]) for r in body])
    start = 0
    for q, g in enumerate(groups, 1):
        sl = slice(start, start + g)
        assert (qid[sl] == q).all()
        order = np.argsort(-want[sl], kind="stable")
        assert rank[sl][order].tolist() == list(range(1, g + 1))
        start += g


def test_score_json_has_reranked_order(models, tmp_path):
    out = tmp_path / "s.json"
    p = run("score", models / "rank.json", TEST_LETOR, "-o", out, "--raw-score")
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    X, _ = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)
    X = X.toarray()
    # XGBoost reads absent svmlight entries as missing: that is how the file's rows reach it
    Xm = np.where(X == 0, np.nan, X)
    stored = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)[0]
    Xm = np.full(X.shape, np.nan)
    r, c = stored.nonzero()
    Xm[r, c] = np.asarray(stored[r, c]).ravel()
    native = xgb.Booster(model_file=str(models / "rank.json"))
    want = native.predict(xgb.DMatrix(Xm, missing=np.nan), output_margin=True)
    got = np.array([row["score"] for row in doc["rows"]])
    np.testing.assert_array_equal(got.astype(np.float32), want)
    q1 = doc["queries"][0]
    lines = [row["line"] for row in doc["rows"] if row["qid"] == q1["qid"]]
    by_line = {row["line"]: row["score"] for row in doc["rows"]}
    assert sorted(q1["order"]) == sorted(lines)
    assert [by_line[ln] for ln in q1["order"]] == sorted((by_line[ln] for ln in lines), reverse=True)


def test_score_csv_by_name_and_npy(models, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("doc_id,age,price,clicks\na,0.5,0.1,0.9\nb,0.2,0.8,0.1\n")
    p = run("score", models / "named.txt", csv)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "line\tid\tscore"
    native = lgb.Booster(model_file=str(models / "named.txt"))
    want = native.predict(np.array([[0.1, 0.9, 0.5], [0.8, 0.1, 0.2]]))
    assert [float(ln.split("\t")[2]) for ln in lines[1:]] == want.tolist()
    p = run("score", models / "rank.txt", models / "test.npy", "--output-format", "csv")
    assert p.returncode == 0, p.stderr
    got = np.array([float(ln.split(",")[1]) for ln in p.stdout.splitlines()[1:]])
    np.testing.assert_array_equal(got, lgb.Booster(model_file=str(models / "rank.txt")).predict(np.load(models / "test.npy")))


def test_score_multiclass_columns(models):
    p = run("score", models / "multi.txt", models / "test.npy", "--output-format", "csv")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "row,score_0,score_1,score_2"
    got = np.array([[float(v) for v in ln.split(",")[1:]] for ln in lines[1:]])
    want = lgb.Booster(model_file=str(models / "multi.txt")).predict(np.load(models / "test.npy"))
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- exit codes & one-line errors
def test_corrupted_model_exit_2(models, tmp_path):
    bad = tmp_path / "truncated.json"
    raw = (models / "rank.json").read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    for exe, args in (("ltrcompile", ["inspect", bad]), ("compile-model", [bad, "-o", tmp_path / "o"]),
                      ("ltrcompile", ["score", bad, TEST_LETOR])):
        p = run(*args, exe=exe)
        assert_one_line_error(p, 2, str(bad))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert_one_line_error(run("inspect", garbage), 2, str(garbage), "could not recognise")
    half = tmp_path / "half.txt"
    half.write_text((models / "rank.txt").read_text()[:4000])
    assert_one_line_error(run("inspect", half), 2, str(half))


def test_missing_and_directory_model_exit_2(tmp_path):
    assert_one_line_error(run("inspect", tmp_path / "nope.txt"), 2, "nope.txt", "does not exist")


def test_unknown_objective_exit_3(models, tmp_path):
    bad = tmp_path / "obj.txt"
    bad.write_text((models / "rank.txt").read_text().replace("objective=lambdarank", "objective=mystery_loss"))
    assert_one_line_error(run("inspect", bad), 3, str(bad), "mystery_loss")


def test_data_with_wrong_feature_count_exit_2(models, tmp_path):
    letor = tmp_path / "wide.letor"
    letor.write_text("1 qid:1 1:0.5 2:0.25\n0 qid:1 1:0.1 301:0.7\n")
    assert_one_line_error(run("score", models / "rank.txt", letor), 2, str(letor), "line 2", "301")
    csv = tmp_path / "narrow.csv"
    csv.write_text("a,b\n1,2\n")
    assert_one_line_error(run("score", models / "rank.txt", csv), 2, str(csv), "2 feature columns", "expects 300")
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((2, 5)))
    assert_one_line_error(run("score", models / "rank.txt", npy), 2, str(npy), "expects 300")
    csv2 = tmp_path / "names.csv"
    csv2.write_text("price,clicks\n1,2\n")
    assert_one_line_error(run("score", models / "named.txt", csv2), 2, str(csv2), "['age']")


def test_output_under_a_file_exit_2(models, tmp_path):
    f = tmp_path / "plain-file"
    f.write_text("x")
    assert_one_line_error(run(models / "rank.txt", "-o", f / "art", exe="compile-model"), 2, str(f), "not a directory")
    assert_one_line_error(run(models / "rank.txt", "-o", f, exe="compile-model"), 2, str(f), "not a directory")
    assert_one_line_error(run("score", models / "rank.txt", TEST_LETOR, "-o", f / "s.tsv"), 2, "s.tsv")


def test_unwritable_output_exit_2(models, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        assert_one_line_error(run("score", models / "rank.txt", TEST_LETOR, "-o", ro / "s.tsv"), 2, "not writable")
        p = run(models / "rank.txt", "-o", ro / "art", exe="compile-model")
        assert_one_line_error(p, 2, str(ro), "not writable")
    finally:
        ro.chmod(0o700)
    assert_one_line_error(run("score", models / "rank.txt", TEST_LETOR, "-o", tmp_path / "no" / "dir" / "s.tsv"),
                          2, "does not exist")


def test_output_dir_that_is_not_an_artifact_is_refused(models, tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("do not delete")
    p = run(models / "rank.txt", "-o", other, exe="compile-model")
    assert_one_line_error(p, 2, str(other), "not an ltrcompile artifact")
    assert (other / "thesis.tex").read_text() == "do not delete"


def test_debug_shows_traceback(models, tmp_path):
    bad = tmp_path / "obj.txt"
    bad.write_text((models / "rank.txt").read_text().replace("objective=lambdarank", "objective=mystery_loss"))
    p = run("--debug", "inspect", bad)
    assert p.returncode == 3 and "Traceback" in p.stderr
    p = run("inspect", bad, env={"LTRCOMPILE_DEBUG": "1"})
    assert p.returncode == 3


def test_json_error_object(models, tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text('{"learner": {')
    p = run("inspect", bad, "--json")
    assert p.returncode == 2
    d = json.loads(p.stdout)
    assert d["ok"] is False and d["exit_code"] == 2 and str(bad) in d["error"]


# --------------------------------------------------------------------------- delegation
def test_serve_delegates_to_the_service_cli():
    p = run("serve", "--help")
    assert p.returncode == 0 and "--store" in p.stdout and "ltrcompile serve" in p.stdout


def test_bench_delegates_to_benchmarks_package():
    p = run("bench", "--help", cwd=Path("/"))
    assert p.returncode == 0, p.stderr
    assert "python -m benchmarks" in p.stdout


def test_export_ranklib_to_o19s_scores_like_ranklib(models, tmp_path):
    if not (RANKLIB / "lambdamart.model.txt").exists():
        pytest.skip("shared/data/ranklib is absent")
    out = tmp_path / "m.o19s.json"
    p = run("export", RANKLIB / "lambdamart.model.txt", "--to", "o19s", "--name", "lm", "-o", out)
    assert p.returncode == 0, p.stderr
    body = json.loads(out.read_text())
    assert body["model"]["name"] == "lm" and body["model"]["model"]["type"] == "model/ranklib"
    # the exported plugin model, read back, scores test.letor exactly as RankLib did
    scores = tmp_path / "s.tsv"
    assert run("score", out, RANKLIB / "test.letor", "-o", scores).returncode == 0
    ref = [float(ln.split("\t")[2]) for ln in (RANKLIB / "lambdamart.scores.tsv").read_text().splitlines()]
    got = [float(ln.split("\t")[3]) for ln in scores.read_text().splitlines()[1:]]
    assert got == ref


def test_export_refuses_inexact_unless_approximate(models, tmp_path):
    p = run("export", models / "rank.txt", "--to", "ranklib")
    assert_one_line_error(p, 3, str(models / "rank.txt"), "--approximate")
    out = tmp_path / "approx.txt"
    p = run("export", models / "rank.txt", "--to", "ranklib", "--approximate", "-o", out)
    assert p.returncode == 0, p.stderr
    assert "warning:" in p.stderr and out.read_text().startswith("## ")
    assert_one_line_error(run("export", models / "rank.txt", "--to", "es", "--name", "x"), 2, "--name")


# --------------------------------------------------------------------------- compile / verify (backend)
def test_no_c_compiler_exit_4(models, tmp_path):
    env = {"PATH": str(tmp_path / "empty-bin"), "CC": ""}
    p = subprocess.run([sys.executable, "-m", "ltrcompile", "compile", str(models / "rank.txt"), "-o",
                        str(tmp_path / "art")], capture_output=True, text=True, env=dict(os.environ, **env))
    assert_one_line_error(p, 4, "no C compiler found", "apt-get install build-essential")
    assert not (tmp_path / "art").exists()


@pytest.fixture(scope="module")
def lgb_artifact(models):
    """compile-model of the LightGBM ranker, verified on the LETOR rows: (artifact, JSON report)."""
    art = models / "ranker"
    p = run(models / "rank.txt", "-o", art, "--verify", TEST_LETOR, "--json", exe="compile-model")
    assert p.returncode == 0, p.stderr
    return art, json.loads(p.stdout)


def test_compile_model_lightgbm_json_report(models, lgb_artifact):
    art, d = lgb_artifact
    native = lgb.Booster(model_file=str(models / "rank.txt"))
    assert d["ok"] is True and d["exit_code"] == 0 and d["verified"] is True
    assert d["model"]["trees"] == native.num_trees() and d["model"]["format"] == "lightgbm-text"
    assert d["compile"]["artifact"] == str(art)
    par = d["parity"]
    assert par["ok"] is True and par["data_rows"] == 768 and par["rows_checked"] > 768
    refs = {(c["reference"].split()[0], c["what"]) for c in par["checks"]}
    assert {("interpreter", "raw"), ("lightgbm", "raw"), ("lightgbm", "output")} <= refs
    marker = json.loads((art / "parity.json").read_text())
    assert marker["ok"] is True
    # the artifact scores the LETOR rows exactly like lightgbm
    p = run("score", art, TEST_LETOR, "--output-format", "csv")
    assert p.returncode == 0, p.stderr
    got = np.array([float(ln.split(",")[3]) for ln in p.stdout.splitlines()[1:]])
    X, _ = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)
    np.testing.assert_array_equal(got, native.predict(X.toarray()))


def test_compile_model_xgboost_human_summary_and_verify_command(models, tmp_path):
    art = tmp_path / "x"
    p = run(models / "rank.ubj", "-o", art, exe="compile-model")
    assert p.returncode == 0, p.stderr
    for key in ("trees", "features", "artifact", "parity    VERIFIED"):
        assert key in p.stdout
    assert "xgboost" in p.stdout
    p = run("verify", models / "rank.ubj", art, TEST_LETOR, "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["ok"] and any(c["reference"].startswith("xgboost") for c in d["parity"]["checks"])


def test_verify_detects_tampered_model_exit_1(models, lgb_artifact, tmp_path):
    """verify MODEL' ARTIFACT where MODEL' has one leaf value changed: exit 1 with the differing rows.
    (LightGBM itself aborts on the edited file -- its tree_sizes header no longer matches -- which the
    report states; the CLI survives because the library runs in a child process.)"""
    art = lgb_artifact[0]
    text = (models / "rank.txt").read_text()
    m = re.search(r"^leaf_value=(\S+)", text, re.M)
    assert m
    tampered = tmp_path / "tampered.txt"
    tampered.write_text(text.replace(m.group(0), f"leaf_value={float(m.group(1)) + 0.5!r}", 1))
    p = run("verify", tampered, art, TEST_LETOR)
    err = assert_one_line_error(p, 1, "parity mismatch")
    assert "MISMATCH" in p.stdout and "compiled vs interpreter (raw)" in p.stdout
    assert "lambdarank_rank.test line" in p.stdout or "edge row" in p.stdout
    assert "lightgbm could not score tampered.txt" in p.stdout
    assert err
    p = run("verify", tampered, art, "--json")
    assert p.returncode == 1
    d = json.loads(p.stdout)
    assert d["ok"] is False and d["parity"]["checks"][0]["max_abs_diff"][0] == pytest.approx(0.5)


def test_no_verify_writes_no_marker(models, tmp_path):
    art = tmp_path / "nv"
    p = run(models / "rank.txt", "-o", art, "--no-verify", "--json", exe="compile-model")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["verified"] is False and d["parity"] is None
    assert art.is_dir() and not (art / "parity.json").exists()


def test_recompile_replaces_previous_artifact(models, tmp_path):
    art = tmp_path / "r"
    assert run(models / "rank.txt", "-o", art, "-q", exe="compile-model").returncode == 0
    first = json.loads((art / "parity.json").read_text())
    assert run(models / "rank.json", "-o", art, "-q", exe="compile-model").returncode == 0
    second = json.loads((art / "parity.json").read_text())
    assert first["ok"] and second["ok"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".r.")]
    assert leftovers == []
    shutil.rmtree(art)


def test_feature_names_file(models, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("".join(f"feat{i}\n" for i in range(1, 301)))
    d = json.loads(run("inspect", models / "rank.txt", "--feature-names", names, "--json").stdout)
    native = lgb.Booster(model_file=str(models / "rank.txt"))
    best = int(np.argmax(native.feature_importance("split")))
    assert d["top_features"][0]["name"] == f"feat{best + 1}"
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    assert_one_line_error(run("inspect", models / "rank.txt", "--feature-names", short), 2, str(short), "2 names")
    dup = tmp_path / "dup.txt"
    dup.write_text("a\na\n")
    assert_one_line_error(run("inspect", models / "rank.txt", "--feature-names", dup), 2, str(dup), "duplicate")


# --------------------------------------------------------------------------- forced mismatches
def _visited_leaf_values(model: Path) -> list[float]:
    """Leaf values of the LightGBM model, most visited by the LETOR test rows first (per lightgbm)."""
    native = lgb.Booster(model_file=str(model))
    X, _ = sk_datasets.load_svmlight_file(str(TEST_LETOR), n_features=300, zero_based=False)
    leaves = native.predict(X.toarray(), pred_leaf=True)
    trees = [[float(v) for v in ln[len("leaf_value="):].split()]
             for ln in model.read_text().splitlines() if ln.startswith("leaf_value=")]
    counts: dict[tuple[int, int], int] = {}
    for row in leaves:
        for t, leaf in enumerate(row):
            counts[(t, int(leaf))] = counts.get((t, int(leaf)), 0) + 1
    return [trees[t][leaf] for (t, leaf), _ in sorted(counts.items(), key=lambda kv: -kv[1])]


def _tamper_extension(art: Path, model: Path, delta: float = 0.5) -> float:
    """Change one leaf value inside the compiled extension (its bytes in the binary) and re-sign the
    manifest, as a miscompiled or corrupted-but-consistent build would look. Returns the value."""
    import hashlib
    import struct

    manifest = json.loads((art / "manifest.json").read_text())
    so = art / manifest["extension"]
    data = so.read_bytes()
    visited = _visited_leaf_values(model)
    every_leaf = [float(v) for ln in model.read_text().splitlines() if ln.startswith("leaf_value=")
                  for v in ln[len("leaf_value="):].split()]
    for v in visited:
        pat = struct.pack("<d", v)
        # a value held by exactly one leaf of the model; the backend may store it more than once
        # (a value table and a leaf record), so every copy in the binary changes together
        if every_leaf.count(v) == 1 and data.count(pat) >= 1:
            # new inode (write + rename): never rewrite a shared object that may be mapped
            tmp = so.with_name(so.name + ".tmp")
            tmp.write_bytes(data.replace(pat, struct.pack("<d", v + delta)))
            os.replace(tmp, so)
            manifest["extension_sha256"] = hashlib.sha256(so.read_bytes()).hexdigest()
            (art / "manifest.json").write_text(json.dumps(manifest))
            return v
    pytest.fail("no unique leaf value found in the extension")


def test_verify_detects_tampered_artifact_exit_1(models, lgb_artifact, tmp_path):
    art = tmp_path / "a"
    shutil.copytree(lgb_artifact[0], art)
    _tamper_extension(art, models / "rank.txt")
    p = run("verify", models / "rank.txt", art, TEST_LETOR)
    assert_one_line_error(p, 1, "parity mismatch")
    assert "FAIL compiled vs interpreter (raw)" in p.stdout
    assert "FAIL compiled vs lightgbm" in p.stdout
    assert "the interpreter agrees with the library: the compiled scorer is wrong" in p.stdout
    assert "every tree reaches the same leaf" in p.stdout  # leaf ids fine, a leaf VALUE is wrong
    d = json.loads(run("verify", models / "rank.txt", art, TEST_LETOR, "--json").stdout)
    raw = [c for c in d["parity"]["checks"] if c["what"] == "raw" and c["reference"] == "interpreter"][0]
    assert raw["ok"] is False and raw["max_abs_diff"][0] == pytest.approx(0.5)
    assert raw["mismatched_rows"] > 0 and raw["examples"][0]["abs_diff"] == pytest.approx(0.5)


def test_compile_model_rejects_a_poisoned_build_cache_exit_1(models, tmp_path):
    """A cached build whose binary no longer matches its IR (bit rot, a codegen bug, tampering) is
    reused by the backend's content-addressed cache; verification catches it: exit 1, nothing
    marked good, and the previous good artifact at OUT_DIR is left untouched."""
    env = {"LTRCOMPILE_CACHE": str(tmp_path / "cache")}
    model = models / "rank.txt"
    warm = subprocess.run(
        [sys.executable, "-c", "import sys, ltrcompile; ltrcompile.compile(ltrcompile.load_model(sys.argv[1]), progress=False)",
         str(model)], capture_output=True, text=True, env=dict(os.environ, **env))
    assert warm.returncode == 0, warm.stderr
    (cached,) = [p for p in (tmp_path / "cache").iterdir() if (p / "manifest.json").exists()]
    _tamper_extension(cached, model)
    out = tmp_path / "ranker"
    p = run(model, "-o", out, "--no-cache", "-q", exe="compile-model", env=env)  # fresh build: fine
    assert p.returncode == 0, p.stderr
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    p = run(model, "-o", out, "--json", exe="compile-model", env=env)  # reuses the poisoned cache
    assert_one_line_error(p, 1, "parity mismatch", "no artifact written")
    d = json.loads(p.stdout)
    assert d["ok"] is False and d["exit_code"] == 1 and d["compile"]["artifact"] is None
    assert d["parity"]["ok"] is False
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
    assert json.loads((out / "parity.json").read_text())["ok"] is True  # still the good one
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".ranker.")]  # no staging left
    p = run(model, "-o", tmp_path / "second", "--keep-failed", "-q", exe="compile-model", env=env)
    assert p.returncode == 1
    rejected = tmp_path / "second.rejected"
    assert not (tmp_path / "second").exists()
    assert (rejected / "parity-failed.json").exists() and not (rejected / "parity.json").exists()


def test_raw_score_artifact_scores_raw_margins_by_default(models, tmp_path):
    art = tmp_path / "bin"
    p = run(models / "binary.txt", "-o", art, "--raw-score", "--json", exe="compile-model")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["compile"]["raw_score"] is True
    native = lgb.Booster(model_file=str(models / "binary.txt"))
    X = np.load(models / "test.npy")
    for flag, want in (([], native.predict(X, raw_score=True)), (["--transformed"], native.predict(X))):
        p = run("score", art, models / "test.npy", "--output-format", "csv", *flag)
        assert p.returncode == 0, p.stderr
        got = np.array([float(ln.split(",")[1]) for ln in p.stdout.splitlines()[1:]])
        np.testing.assert_array_equal(got, want)


def test_compile_early_stopped_xgboost_keeps_every_round_like_booster_predict(models, tmp_path):
    native = xgb.Booster(model_file=str(models / "early.json"))
    total = native.num_boosted_rounds()
    X = np.load(models / "test.npy")
    for opt, rounds in (((), total), (("--num-iteration", "best"), native.best_iteration + 1)):
        art = tmp_path / f"e{len(opt)}"
        p = run(models / "early.json", "-o", art, "--json", *opt, exe="compile-model")
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        assert d["model"]["trees"] == rounds and d["verdict"] == "verified"
        # parity held against xgboost predicting with the same iteration range
        assert any(c["reference"].startswith("xgboost") and c["ok"] for c in d["parity"]["checks"])
        assert json.loads((art / "parity.json").read_text())["verdict"] == "verified"
        p = run("score", art, models / "test.npy", "--output-format", "csv")
        got = np.array([float(ln.split(",")[1]) for ln in p.stdout.splitlines()[1:]])
        want = native.predict(xgb.DMatrix(X), iteration_range=(0, rounds))
        np.testing.assert_array_equal(got.astype(np.float32), want)
        if not opt:  # the default is what Booster.predict does
            np.testing.assert_array_equal(want, native.predict(xgb.DMatrix(X)))
        # verify reproduces the artifact's rounds from the build record
        p = run("verify", models / "early.json", art, "--json")
        assert p.returncode == 0 and json.loads(p.stdout)["verdict"] == "verified", p.stderr


@needs_ranklib
def test_compile_ranklib_says_no_native_library_and_scores_like_ranklib(tmp_path):
    art = tmp_path / "lm"
    p = run(RANKLIB / "lambdamart.model.txt", "-o", art, "--verify", RANKLIB / "test.letor", "--json",
            exe="compile-model")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["parity"]["verdict"] == "verified" and not d["parity"]["skipped"]
    assert any("RankLib is a Java program" in s for s in d["parity"]["notes"])
    assert {c["reference"] for c in d["parity"]["checks"]} == {"interpreter"}
    assert "native comparison does not apply: RankLib" in p.stderr  # the human summary goes to stderr with --json
    out = tmp_path / "s.tsv"
    assert run("score", art, RANKLIB / "test.letor", "-o", out).returncode == 0
    ref = [float(ln.split("\t")[2]) for ln in (RANKLIB / "lambdamart.scores.tsv").read_text().splitlines()]
    got = [float(ln.split("\t")[3]) for ln in out.read_text().splitlines()[1:]]
    assert got == ref


def test_unknown_strategy_exit_2_and_datadriven_verifies(models, tmp_path):
    p = run(models / "rank.txt", "-o", tmp_path / "s", "--strategy", "bogus", exe="compile-model")
    assert_one_line_error(p, 2, "bogus")
    assert not (tmp_path / "s").exists()
    p = run(models / "rank.txt", "-o", tmp_path / "d", "--strategy", "datadriven", "--json", exe="compile-model")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["compile"]["strategy"] == "datadriven" and d["parity"]["ok"] is True
    assert all(c["bit_identical"] for c in d["parity"]["checks"] if c["what"] != "leaf")
