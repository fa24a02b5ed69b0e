"""The one build pipeline (ltrcompile/pipeline.py) through its callers, with the real libraries.

* Models trained from pandas DataFrames -- XGBoost with feature names (numeric, and with a
  categorical column), LightGBM with a pandas categorical, scikit-learn fitted on a DataFrame --
  go through ``compile-model --verify`` and are compared with their own library: ``verified``.
* The same runs in a child process whose imports hide the library (a ``sitecustomize`` installing
  a meta-path finder that refuses ``xgboost``/``lightgbm``, inherited by every process it starts):
  ``incomplete``, exit 5, nothing written; ``--accept-incomplete``: exit 0 and ``parity.json``
  records ``incomplete``. The service stores such a version but does not activate it unless the
  upload passes ``accept_incomplete=true``.
* Early-stopped XGBoost and LightGBM files give identical scores through ``load_model``,
  ``compile-model`` + ``score``, ``ltrcompile.build`` and the service -- and those of the library's
  own predict on the file.
* A renamed copy and the ``.ubj`` twin have the same digest and hit the build cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_c_compiler

pd = pytest.importorskip("pandas")
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
pytest.importorskip("sklearn")
require_c_compiler()

import ltrcompile  # noqa: E402
from ltrcompile import pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXIT_INCOMPLETE = 5

HIDER = '''\
import sys

_HIDDEN = set(filter(None, __import__("os").environ.get("LTRC_TEST_HIDE", "").split(",")))


class _Hide:
    """Makes the hidden packages unimportable (and unfindable) in this process."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.partition(".")[0])
        return None


sys.meta_path.insert(0, _Hide())
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline-env")
    (d / "hide").mkdir()
    (d / "hide" / "sitecustomize.py").write_text(HIDER)
    base = {**os.environ, "LTRCOMPILE_CACHE": str(d / "cache")}
    base.pop("LTRCOMPILE_DEBUG", None)
    path = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return {"dir": d, "plain": {**base, "PYTHONPATH": path},
            "hidden": {**base, "PYTHONPATH": str(d / "hide") + os.pathsep + path, "LTRC_TEST_HIDE": "xgboost,lightgbm"}}


def cli(env: dict[str, str], *args: object, exe: str = "ltrcompile") -> subprocess.CompletedProcess[str]:
    script = BIN / exe
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ltrcompile"] + (
        ["compile"] if exe == "compile-model" else [])
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=900)


def test_the_hider_really_hides(env):
    code = "import importlib.util as u\ntry:\n import xgboost\nexcept ImportError as e: print('hidden', e.name)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env["hidden"])
    assert p.stdout.strip() == "hidden xgboost", p.stderr
    p = subprocess.run([sys.executable, "-c", "import xgboost; print('ok')"], capture_output=True, text=True,
                       env=env["plain"])
    assert p.stdout.strip() == "ok"


# --------------------------------------------------------------------------- DataFrame models
def _frame(n: int = 400, seed: int = 0, categorical: bool = True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"price": rng.normal(size=n), "clicks": rng.exponential(size=n)})
    if categorical:
        df["colour"] = pd.Categorical(rng.choice(["red", "green", "blue", "amber"], size=n))
    y = df["price"] * 2 - df["clicks"]
    if categorical:
        y = y + df["colour"].cat.codes.to_numpy() * 0.7
    return df, y + 0.1 * rng.normal(size=n)


@pytest.fixture(scope="module")
def df_models(env):
    """name -> (model file, library) for models fitted on DataFrames."""
    d = env["dir"]
    out = {}
    df, y = _frame(categorical=False)
    m = xgb.XGBRegressor(n_estimators=6, max_depth=3, n_jobs=1, random_state=0).fit(df, y)
    assert m.get_booster().feature_names == ["price", "clicks"]
    m.save_model(d / "xgb_named.json")
    out["xgb_named"] = (d / "xgb_named.json", "xgboost")
    dfc, yc = _frame()
    mc = xgb.XGBRegressor(n_estimators=6, max_depth=3, n_jobs=1, random_state=0, tree_method="hist",
                          enable_categorical=True, max_cat_to_onehot=1).fit(dfc, yc)
    assert mc.get_booster().feature_types == ["float", "float", "c"]
    mc.save_model(d / "xgb_cat.json")
    out["xgb_cat"] = (d / "xgb_cat.json", "xgboost")
    b = lgb.train({"objective": "regression", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1,
                   "num_threads": 1, "seed": 1}, lgb.Dataset(dfc, yc), 6)
    b.save_model(str(d / "lgb_cat.txt"))
    assert "pandas_categorical" in (d / "lgb_cat.txt").read_text()
    out["lgb_cat"] = (d / "lgb_cat.txt", "lightgbm")
    import joblib
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

    gb = GradientBoostingRegressor(n_estimators=5, max_depth=3, random_state=0).fit(df, y)
    assert list(gb.feature_names_in_) == ["price", "clicks"]
    joblib.dump(gb, d / "sk_gb.joblib")
    out["sk_gb"] = (d / "sk_gb.joblib", "sklearn")
    hgb = HistGradientBoostingRegressor(max_iter=5, max_depth=3, random_state=0,
                                        categorical_features="from_dtype").fit(dfc, yc)
    joblib.dump(hgb, d / "sk_hgb_cat.joblib")
    out["sk_hgb_cat"] = (d / "sk_hgb_cat.joblib", "sklearn")
    return out


@pytest.mark.parametrize("name", ["xgb_named", "xgb_cat", "lgb_cat", "sk_gb", "sk_hgb_cat"])
def test_dataframe_model_is_verified_against_its_library(df_models, env, name, tmp_path):
    path, lib = df_models[name]
    p = cli(env["plain"], path, "-o", tmp_path / "a", "--json", exe="compile-model")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["verdict"] == "verified", d["parity"]
    assert not d["parity"]["skipped"]
    native = [c for c in d["parity"]["checks"] if c["reference"].startswith(lib if lib != "sklearn" else "scikit")
              or lib in c["reference"]]
    assert native and all(c["ok"] for c in native), d["parity"]["checks"]
    marker = json.loads((tmp_path / "a" / "parity.json").read_text())
    assert marker["verdict"] == "verified" and marker["accepted"] is True


@pytest.mark.parametrize("name", ["xgb_named", "xgb_cat", "lgb_cat"])
def test_library_hidden_is_incomplete_exit_5_unless_accepted(df_models, env, name, tmp_path):
    path, lib = df_models[name]
    out = tmp_path / "a"
    p = cli(env["hidden"], path, "-o", out, "--json", exe="compile-model")
    assert p.returncode == EXIT_INCOMPLETE, (p.stdout, p.stderr)
    d = json.loads(p.stdout)
    assert d["verdict"] == "incomplete" and d["exit_code"] == EXIT_INCOMPLETE
    assert any(f"{lib} is not installed" in s for s in d["parity"]["skipped"]), d["parity"]["skipped"]
    assert {c["reference"] for c in d["parity"]["checks"]} == {"interpreter"}
    assert not out.exists()
    err = [ln for ln in p.stderr.splitlines() if ": error: " in ln]
    assert len(err) == 1 and "incomplete" in err[0] and "--accept-incomplete" in err[0]
    p = cli(env["hidden"], path, "-o", out, "--accept-incomplete", exe="compile-model")
    assert p.returncode == 0, p.stderr
    marker = json.loads((out / "parity.json").read_text())
    assert marker["verdict"] == "incomplete" and marker["accepted"] is True
    assert any(f"{lib} is not installed" in s for s in marker["skipped"])
    # ltrcompile verify: the same rule (and verified once the library is back)
    assert cli(env["hidden"], "verify", path, out).returncode == EXIT_INCOMPLETE
    assert cli(env["hidden"], "verify", path, out, "--accept-incomplete").returncode == 0
    p = cli(env["plain"], "verify", path, out, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["verdict"] == "verified", p.stderr


def test_no_native_is_incomplete(df_models, env, tmp_path):
    path, _ = df_models["xgb_named"]
    assert cli(env["plain"], path, "-o", tmp_path / "a", exe="compile-model").returncode == 0
    assert cli(env["plain"], "verify", path, tmp_path / "a", "--no-native").returncode == EXIT_INCOMPLETE


def test_python_api_raises_on_an_unaccepted_verdict(df_models, tmp_path, monkeypatch):
    monkeypatch.setenv("LTRCOMPILE_CACHE", str(tmp_path / "cache"))
    path, _ = df_models["lgb_cat"]
    res = ltrcompile.build(path, tmp_path / "ok", jobs=1)
    assert res.verdict == "verified" and res.artifact == (tmp_path / "ok").absolute()
    with pytest.raises(pipeline.ParityError, match="incomplete") as ei:
        ltrcompile.build(path, tmp_path / "no", jobs=1, native=False)
    assert ei.value.result.verdict == "incomplete" and not (tmp_path / "no").exists()
    res = ltrcompile.build(path, tmp_path / "yes", jobs=1, native=False, accept_incomplete=True)
    assert json.loads((tmp_path / "yes" / "parity.json").read_text())["verdict"] == "incomplete"
    with pytest.raises(ltrcompile.LtrCompileError, match="unknown strategy"):
        ltrcompile.build(path, tmp_path / "s", strategy="bogus")


# --------------------------------------------------------------------------- early stopping
@pytest.fixture(scope="module")
def early(env):
    d = env["dir"]
    rng = np.random.default_rng(7)
    X = rng.normal(size=(700, 5))
    y = X[:, 0] + 0.5 * X[:, 1] + 0.8 * rng.normal(size=700)
    bst = xgb.train({"max_depth": 3, "eta": 0.5, "nthread": 1, "seed": 0}, xgb.DMatrix(X[:400], y[:400]), 60,
                    evals=[(xgb.DMatrix(X[400:600], y[400:600]), "v")], early_stopping_rounds=5,
                    verbose_eval=False)
    assert bst.best_iteration + 1 < bst.num_boosted_rounds()
    bst.save_model(d / "xgb_early.json")
    b = lgb.train({"objective": "regression", "learning_rate": 0.5, "verbose": -1, "num_threads": 1, "seed": 0},
                  lgb.Dataset(X[:400], y[:400]), 60, valid_sets=[lgb.Dataset(X[400:600], y[400:600])],
                  callbacks=[lgb.early_stopping(5, verbose=False)], keep_training_booster=True)
    assert 0 < b.best_iteration < b.current_iteration()
    b.save_model(str(d / "lgb_early_all.txt"), num_iteration=-1)  # every round in the file
    b.save_model(str(d / "lgb_early.txt"))  # LightGBM's default: the best rounds only
    Xt = X[600:]
    np.save(d / "early_rows.npy", Xt)
    lib = {
        "xgb_early.json": xgb.Booster(model_file=str(d / "xgb_early.json")).predict(xgb.DMatrix(Xt)),
        "lgb_early_all.txt": lgb.Booster(model_file=str(d / "lgb_early_all.txt")).predict(Xt),
        "lgb_early.txt": lgb.Booster(model_file=str(d / "lgb_early.txt")).predict(Xt),
    }
    return d, Xt, lib


def _score_file(env, art: Path, rows: Path) -> np.ndarray:
    p = cli(env["plain"], "score", art, rows, "--output-format", "csv")
    assert p.returncode == 0, p.stderr
    return np.array([float(ln.split(",")[1]) for ln in p.stdout.splitlines()[1:]])


def test_early_stopped_models_score_the_same_everywhere(early, env, tmp_path, monkeypatch):
    from test_service import TOKEN, Server, auth, upload

    d, Xt, lib = early
    monkeypatch.setenv("LTRCOMPILE_CACHE", env["plain"]["LTRCOMPILE_CACHE"])
    store = tmp_path / "store"
    tf = tmp_path / "token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    server = Server(store, "--token-file", str(tf), env={"PYTHONPATH": env["plain"]["PYTHONPATH"]})
    try:
        c = server.client
        r = c.put("/featuresets/five", json={"name": "five", "features": [f"x{i}" for i in range(5)]}, headers=auth())
        assert r.status_code == 201, r.text
        for k, (fname, want) in enumerate(lib.items()):
            path = d / fname
            via_load = ltrcompile.load_model(path).predict(Xt)
            art = tmp_path / f"a{k}"
            p = cli(env["plain"], path, "-o", art, "--json", exe="compile-model")
            assert p.returncode == 0, p.stderr
            assert json.loads(p.stdout)["verdict"] == "verified"
            via_cli = _score_file(env, art, d / "early_rows.npy")
            via_api = ltrcompile.build(path, tmp_path / f"b{k}", jobs=1).scorer.predict(Xt)
            job = upload(c, f"m{k}", path, "five", binding="position")
            assert job["verdict"] == "verified" and not job["activation_held"], job
            r = c.post(f"/models/m{k}/score", json={"features": Xt.tolist()})
            assert r.status_code == 200, r.text
            via_service = np.array(r.json()["scores"])
            np.testing.assert_array_equal(via_cli, via_load, err_msg=fname)
            np.testing.assert_array_equal(via_api, via_load, err_msg=fname)
            np.testing.assert_array_equal(via_service, via_load, err_msg=fname)
            if fname.startswith("xgb"):
                np.testing.assert_array_equal(via_load.astype(np.float32), want, err_msg=fname)
            else:
                np.testing.assert_array_equal(via_load, want, err_msg=fname)
            meta = c.get(f"/models/m{k}/versions/1").json()
            assert "every" in meta["tree_selection"] or "rounds [0," in meta["tree_selection"]
        # the override has one name everywhere: num_iteration=best in the service too
        job = upload(c, "best", d / "xgb_early.json", "five", binding="position", num_iteration="best")
        r = c.post("/models/best/score", json={"features": Xt.tolist()})
        best = xgb.Booster(model_file=str(d / "xgb_early.json"))
        want = best.predict(xgb.DMatrix(Xt), iteration_range=(0, best.best_iteration + 1))
        np.testing.assert_array_equal(np.array(r.json()["scores"]).astype(np.float32), want)
        r = c.post("/models/bad/versions", params={"featureset": "five", "num_iteration": "-1"},
                   content=(d / "xgb_early.json").read_bytes(), headers=auth())
        assert r.status_code == 400 and "num_iteration" in r.text
    finally:
        server.stop()


def test_service_holds_an_incomplete_version_unless_accepted(df_models, env, tmp_path):
    from test_service import TOKEN, Server, auth, upload

    store = tmp_path / "store"
    tf = tmp_path / "token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    hidden = {k: env["hidden"][k] for k in ("PYTHONPATH", "LTRC_TEST_HIDE", "LTRCOMPILE_CACHE")}
    server = Server(store, "--token-file", str(tf), env=hidden)
    try:
        c = server.client
        r = c.put("/featuresets/shop", json={"name": "shop", "features": ["price", "clicks"]}, headers=auth())
        assert r.status_code == 201, r.text
        path, _ = df_models["xgb_named"]
        job = upload(c, "shop", path, "shop")
        assert job["verdict"] == "incomplete" and job["activate"] is True
        assert "not activated" in job["activation_held"] and "xgboost is not installed" in job["activation_held"]
        assert "accept_incomplete=true" in job["activation_held"]
        info = c.get("/models/shop").json()
        assert info["active_version"] is None, info
        meta = c.get("/models/shop/versions/1").json()
        assert meta["verdict"] == "incomplete" and meta["parity"]["verdict"] == "incomplete"
        assert any("xgboost is not installed" in s for s in meta["parity"]["skipped"])
        job = upload(c, "shop", path, "shop", accept_incomplete="true")
        assert job["verdict"] == "incomplete" and job["activation_held"] is None
        assert c.get("/models/shop").json()["active_version"] == 2
    finally:
        server.stop()


# --------------------------------------------------------------------------- digest / cache
def test_renamed_copy_and_ubj_twin_same_digest_and_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("LTRCOMPILE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    bst = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, X[:, 0] - X[:, 1]), 5)
    bst.save_model(tmp_path / "m.json")
    bst.save_model(tmp_path / "m.ubj")
    (tmp_path / "renamed-copy.json").write_bytes((tmp_path / "m.json").read_bytes())
    first = pipeline.build(tmp_path / "m.json", tmp_path / "a", jobs=1)
    assert first.verdict == "verified"
    for k, twin in enumerate(("renamed-copy.json", "m.ubj")):
        again = pipeline.build(tmp_path / twin, tmp_path / f"t{k}", jobs=1)
        assert again.verdict == "verified"
        assert again.ensemble.digest() == first.ensemble.digest()
        assert again.record["ir_digest"] == first.record["ir_digest"]
        assert again.manifest["built_at"] == first.manifest["built_at"]  # copied from the build cache
        assert again.manifest["module"] == first.manifest["module"]
        np.testing.assert_array_equal(again.scorer.predict(X), first.scorer.predict(X))
    assert first.manifest["provenance"]["source_file"] == "m.json"
