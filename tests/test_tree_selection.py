"""The tree-selection policy (ltrcompile.selection), checked against the libraries' own predict.

Early-stopped XGBoost and LightGBM models, real libraries: the default keeps what each library's
``predict`` uses by default for that object, ``num_iteration`` overrides it the same way
everywhere, and an option that does not apply is refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from ltrcompile import load_model
from ltrcompile.errors import OptionError
from ltrcompile.selection import describe

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


def _data(seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 5))
    y = X[:, 0] + 0.5 * X[:, 1] + 0.6 * rng.normal(size=600)
    return X, y


@pytest.fixture(scope="module")
def xgb_early(tmp_path_factory):
    X, y = _data()
    bst = xgb.train(
        {"max_depth": 3, "eta": 0.3, "nthread": 1}, xgb.DMatrix(X[:400], y[:400]), 60,
        evals=[(xgb.DMatrix(X[400:], y[400:]), "v")], early_stopping_rounds=3, verbose_eval=False,
    )
    assert bst.best_iteration + 1 < bst.num_boosted_rounds()
    d = tmp_path_factory.mktemp("xgbes")
    bst.save_model(str(d / "m.json"))
    return d / "m.json", bst, X


@pytest.fixture(scope="module")
def lgb_early(tmp_path_factory):
    X, y = _data(2)
    params = {"objective": "regression", "learning_rate": 0.3, "verbose": -1, "num_threads": 1}
    b = lgb.train(
        params, lgb.Dataset(X[:400], y[:400]), 60,
        valid_sets=[lgb.Dataset(X[400:], y[400:])], callbacks=[lgb.early_stopping(3, verbose=False)],
        keep_training_booster=True,
    )
    assert 0 < b.best_iteration < b.current_iteration()
    d = tmp_path_factory.mktemp("lgbes")
    b.save_model(str(d / "all.txt"), num_iteration=-1)
    return d / "all.txt", b, X


def test_xgboost_file_keeps_every_round_like_booster_predict(xgb_early) -> None:
    path, bst, X = xgb_early
    loaded = xgb.Booster(model_file=str(path))
    assert loaded.attributes()["best_iteration"] == str(bst.best_iteration)
    ens = load_model(path)
    assert ens.provenance.iteration_range == (0, bst.num_boosted_rounds())
    # Booster.predict ignores the recorded best_iteration: every round
    np.testing.assert_array_equal(ens.predict(X).astype(np.float32), loaded.predict(xgb.DMatrix(X)))
    text = describe(ens)
    assert "not applied" in text and "num-iteration best" in text
    best = load_model(path, num_iteration="best")
    want = loaded.predict(xgb.DMatrix(X), iteration_range=(0, bst.best_iteration + 1))
    np.testing.assert_array_equal(best.predict(X).astype(np.float32), want)
    assert best.provenance.tree_selection == "best_iteration"
    first3 = load_model(path, num_iteration=3)
    np.testing.assert_array_equal(first3.predict(X).astype(np.float32), loaded.predict(xgb.DMatrix(X), iteration_range=(0, 3)))
    assert load_model(path, num_iteration=0).n_trees == bst.num_boosted_rounds()


def test_xgboost_sklearn_model_keeps_best_like_its_predict() -> None:
    X, y = _data(3)
    m = xgb.XGBRegressor(n_estimators=60, max_depth=3, learning_rate=0.3, early_stopping_rounds=3, n_jobs=1)
    m.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    assert m.best_iteration + 1 < m.get_booster().num_boosted_rounds()
    ens = load_model(m)
    assert ens.provenance.iteration_range == (0, m.best_iteration + 1)
    np.testing.assert_array_equal(ens.predict(X).astype(np.float32), m.predict(X))
    every = load_model(m, num_iteration=0)
    np.testing.assert_array_equal(
        every.predict(X).astype(np.float32), m.get_booster().predict(xgb.DMatrix(X))
    )


def test_lightgbm_file_and_booster_follow_lightgbm(lgb_early) -> None:
    path, b, X = lgb_early
    from_file = lgb.Booster(model_file=str(path))
    assert from_file.best_iteration == -1  # a text model records no best iteration
    ens = load_model(path)
    assert ens.provenance.iteration_range == (0, b.current_iteration())
    np.testing.assert_array_equal(ens.predict(X), from_file.predict(X))
    mem = load_model(b)  # in memory: Booster.predict uses best_iteration
    assert mem.provenance.iteration_range == (0, b.best_iteration)
    np.testing.assert_array_equal(mem.predict(X), b.predict(X))
    assert "best iteration" in describe(mem)
    np.testing.assert_array_equal(load_model(b, num_iteration=0).predict(X), b.predict(X, num_iteration=b.current_iteration()))
    np.testing.assert_array_equal(load_model(path, num_iteration=4).predict(X), from_file.predict(X, num_iteration=4))
    with pytest.raises(OptionError, match="no best iteration"):
        load_model(path, num_iteration="best")


def test_num_iteration_refused_where_it_does_not_apply(tmp_path) -> None:
    from sklearn.tree import DecisionTreeRegressor

    X, y = _data(4)
    est = DecisionTreeRegressor(max_depth=3).fit(X, y)
    with pytest.raises(OptionError, match="does not apply"):
        load_model(est, num_iteration=2)
    with pytest.raises(OptionError, match="integer >= 0 or 'best'"):
        load_model(est, num_iteration=-3)
