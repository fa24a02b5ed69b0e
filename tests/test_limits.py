"""Size limits that scale with the file (issue 15, item 1): tiny files declaring huge models.

Each test writes a small file (most from the library itself, then one field edited) that declares or
implies a huge size -- trees, nodes, category codes, bitset words, input width -- and checks the
typed error names the file and the field (and tree/node where there is one) and is CLI exit 2, and
that the same file without the edit loads.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from ltrcompile import limits
from ltrcompile.cli import EXIT_BAD_INPUT, exit_code_for
from ltrcompile.errors import ModelFormatError
from ltrcompile.frontends import load_model
from ltrcompile.ir import Ensemble, TreeArrays


def refused(path, field, *, tree=None, node=None, match="exceeds the limit"):
    with pytest.raises(ModelFormatError, match=match) as err:
        load_model(str(path))
    e = err.value
    assert e.field == field and str(path) in str(e), str(e)
    if tree is not None:
        assert e.tree == tree, str(e)
    if node is not None:
        assert e.node == node, str(e)
    assert exit_code_for(e) == EXIT_BAD_INPUT
    return e


def test_limits_scale_with_the_file_size():
    assert limits.max_trees(0) == limits.TREE_FLOOR
    assert limits.max_nodes(10**6) == limits.NODE_FLOOR + 10**6
    assert limits.max_bitset_words(0) == limits.CATEGORY_FLOOR // 32 + 1
    assert limits.max_nodes(None) == limits.INT32_MAX  # in-memory: no file size, only the int32 bound
    assert limits.max_features(10**12) == limits.INT32_MAX


# ---------------------------------------------------------------------------- XGBoost
@pytest.fixture(scope="module")
def xgb_doc():
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.random((200, 3))
    X[:, 0] = rng.integers(0, 5, 200)
    dm = xgb.DMatrix(X, rng.random(200), feature_types=["c", "q", "q"], enable_categorical=True)
    bst = xgb.train({"tree_method": "hist", "max_depth": 2, "max_cat_to_onehot": 1}, dm, 3)
    return json.loads(bst.save_raw("json"))


def _write(tmp_path, doc, name="m.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def _first_categorical(doc):
    for t, tree in enumerate(doc["learner"]["gradient_booster"]["model"]["trees"]):
        if tree["categories_nodes"]:
            return t, tree
    raise AssertionError("the model has no categorical split")


def test_xgboost_huge_category_code(tmp_path, xgb_doc):
    """A category code of 2**31-2 used to load (a 256 MiB bitset for the compiled kernels)."""
    assert load_model(str(_write(tmp_path, xgb_doc))).n_trees == 3
    doc = json.loads(json.dumps(xgb_doc))
    t, tree = _first_categorical(doc)
    lo, k = tree["categories_segments"][0], tree["categories_sizes"][0]
    tree["categories"][lo + k - 1] = 2**31 - 2  # the largest code of the node's sorted set
    refused(_write(tmp_path, doc), "categories", tree=t, node=tree["categories_nodes"][0])


def test_xgboost_declared_tree_and_node_counts(tmp_path, xgb_doc):
    doc = json.loads(json.dumps(xgb_doc))
    doc["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] = str(10**12)
    refused(_write(tmp_path, doc), "gbtree_model_param.num_trees")
    doc = json.loads(json.dumps(xgb_doc))
    doc["learner"]["gradient_booster"]["model"]["trees"][1]["tree_param"]["num_nodes"] = str(2**31 - 1)
    refused(_write(tmp_path, doc), "tree_param.num_nodes", tree=1)
    doc = json.loads(json.dumps(xgb_doc))
    doc["learner"]["learner_model_param"]["num_feature"] = str(2**31 - 1)
    refused(_write(tmp_path, doc), "learner_model_param.num_feature")


def _ubj(v) -> bytes:
    """A minimal UBJSON writer (objects, arrays, strings, int64, float64, bools): enough for a model."""
    if isinstance(v, dict):
        out = b"{"
        for k, x in v.items():
            kb = k.encode()
            out += b"L" + struct.pack(">q", len(kb)) + kb + _ubj(x)
        return out + b"}"
    if isinstance(v, list):
        return b"[" + b"".join(_ubj(x) for x in v) + b"]"
    if isinstance(v, bool):
        return b"T" if v else b"F"
    if isinstance(v, int):
        return b"L" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"D" + struct.pack(">d", v)
    sb = v.encode()
    return b"S" + b"L" + struct.pack(">q", len(sb)) + sb


def test_xgboost_ubj_declared_sizes(tmp_path, xgb_doc):
    p = tmp_path / "m.ubj"
    p.write_bytes(_ubj(xgb_doc))
    assert load_model(str(p), format="xgboost-ubj").n_trees == 3
    doc = json.loads(json.dumps(xgb_doc))
    doc["learner"]["gradient_booster"]["model"]["trees"][0]["tree_param"]["num_nodes"] = str(2**31 - 1)
    p.write_bytes(_ubj(doc))
    refused(p, "tree_param.num_nodes", tree=0)
    doc = json.loads(json.dumps(xgb_doc))
    t, tree = _first_categorical(doc)
    lo, k = tree["categories_segments"][0], tree["categories_sizes"][0]
    tree["categories"][lo + k - 1] = 2**31 - 2
    p.write_bytes(_ubj(doc))
    refused(p, "categories", tree=t)


def test_xgboost_dump_huge_category_code(tmp_path):
    dump = [{"nodeid": 0, "depth": 0, "split": "f0", "split_condition": [1, 2**31 - 2], "yes": 1, "no": 2,
             "missing": 2, "children": [{"nodeid": 1, "leaf": 0.5}, {"nodeid": 2, "leaf": -0.5}]}]
    p = tmp_path / "dump.json"
    p.write_text(json.dumps(dump))
    refused(p, "split_condition", tree=0, node=0)
    dump[0]["split_condition"] = [1, 2]
    p.write_text(json.dumps(dump))
    assert load_model(str(p), format="xgboost-dump").n_trees == 1


# ---------------------------------------------------------------------------- LightGBM
@pytest.fixture(scope="module")
def lgb_text():
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    X = rng.random((300, 3))
    X[:, 0] = rng.integers(0, 6, 300)
    ds = lgb.Dataset(X, X[:, 1] + (X[:, 0] == 2), categorical_feature=[0])
    bst = lgb.train({"num_leaves": 4, "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1}, ds, 3)
    return bst.model_to_string(), bst.dump_model()


def test_lightgbm_text_declared_sizes(tmp_path, lgb_text):
    text, _ = lgb_text
    p = tmp_path / "m.txt"
    p.write_text(text)
    assert load_model(str(p)).n_features == 3
    p.write_text(text.replace("max_feature_idx=2", f"max_feature_idx={2**31 - 2}", 1))
    refused(p, "max_feature_idx")
    assert "cat_boundaries=" in text
    lines = text.split("\n")
    i = next(k for k, s in enumerate(lines) if s.startswith("cat_boundaries="))
    bounds = lines[i].split("=")[1].split()
    lines[i] = "cat_boundaries=" + " ".join(bounds[:-1] + [str(10**9)])
    p.write_text("\n".join(lines))
    tree = sum(1 for s in lines[:i] if s.startswith("Tree=")) - 1
    refused(p, "cat_boundaries", tree=tree)


def test_lightgbm_json_declared_sizes(tmp_path, lgb_text):
    _, dump = lgb_text
    p = tmp_path / "m.json"
    p.write_text(json.dumps(dump))
    assert load_model(str(p)).n_features == 3
    d = json.loads(json.dumps(dump))
    d["max_feature_idx"] = 2**31 - 2
    d.pop("feature_names", None)
    p.write_text(json.dumps(d))
    refused(p, "max_feature_idx")


def test_lightgbm_json_node_budget_is_cumulative(tmp_path):
    """Each tree declares LightGBM's largest num_leaves in ~60 bytes: the running node count over the
    trees, not just each tree's own, is what is capped (arrays are allocated from num_leaves)."""
    from ltrcompile.frontends import lightgbm as lgbf

    tree = {"num_leaves": 131072, "tree_structure": {"leaf_value": 0.0}}
    declared = [limits.max_nodes(100) - 10]  # what the trees before this one declared
    with pytest.raises(ModelFormatError, match="node count") as err:
        lgbf._dump_tree(tree, 7, "m.json", 100, declared)
    assert err.value.field == "num_leaves" and err.value.tree == 7


# ---------------------------------------------------------------------------- scikit-learn
def test_sklearn_declared_tree_count():
    pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestRegressor

    from ltrcompile.frontends import sklearn as skf

    X = np.random.default_rng(0).random((50, 3))
    d = skf.describe(RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(X, X[:, 0]))
    assert skf.from_arrays(dict(d)).n_trees == 2
    d["n_trees"] = 10**9
    with pytest.raises(ModelFormatError, match="exceeds the limit") as err:
        skf.from_arrays(d, path="m.npz")
    assert err.value.field == "n_trees"


# ---------------------------------------------------------------------------- every format, after loading
def test_loaded_model_is_checked_whatever_the_format(tmp_path):
    """load_model checks the loaded Ensemble too (one rule for every frontend): an IR document with a
    category code of 2**31-2 names the tree and node."""
    ta = TreeArrays.empty(3)
    ta.feature[0], ta.left[0], ta.right[0] = 0, 1, 2
    ta.categorical[0] = 1
    ta.cat_sets[0] = np.array([1, 2**31 - 2])
    ta.leaf_value[1:, 0] = [1.0, 2.0]
    stump = TreeArrays.empty(1)
    ens = Ensemble.from_trees([stump, ta], n_features=1)
    p = tmp_path / "m.ltrc.json"
    ens.save(str(p))
    refused(p, "categories", tree=1, node=0)
    ta.cat_sets[0] = np.array([1, 2])
    Ensemble.from_trees([stump, ta], n_features=1).save(str(p))
    assert load_model(str(p)).n_trees == 2
