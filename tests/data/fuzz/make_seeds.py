"""Write the fuzzer's seed files: small valid models of every format, written by the libraries.

Run from the repository root with the project venv (``python tests/data/fuzz/make_seeds.py``);
it rewrites ``tests/data/fuzz/seeds/<target>/``. Seeds are kept small (a few KB) so a mutation
touches the structure often. XGBoost, LightGBM and scikit-learn write their own files; the
Elasticsearch documents wrap those models exactly as the o19s plugin and Elasticsearch take them;
the RankLib seeds are cut from RankLib's own model files in ``tests/data/ranklib``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeRegressor

from ltrcompile.frontends import load_model

HERE = Path(__file__).parent
SEEDS = HERE / "seeds"
RANKLIB = HERE.parent / "ranklib"
NAMES = ["f0", "f1", "f2", "f3"]


def out(target: str, name: str, data: bytes | str) -> None:
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


def data(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.random((n, 4)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 1.0).astype(np.float64)
    return X, y


def ranklib_head(text: str, n_trees: int) -> str:
    """The first ``n_trees`` trees of each ensemble of a RankLib tree model, still valid."""
    parts = re.split(r"(?=<tree )|(?=</ensemble>)", text)
    keep, seen = [], 0
    for p in parts:
        if p.startswith("<tree "):
            seen += 1
            if seen > n_trees:
                continue
        elif p.startswith("</ensemble>"):
            seen = 0
        keep.append(p)
    return "".join(keep)


def main() -> None:
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    X, y = data()
    Xc = X.copy()
    Xc[:, 3] = np.floor(np.nan_to_num(Xc[:, 3]) * 5)
    # ---- XGBoost
    d = xgb.DMatrix(X, y, feature_names=NAMES, feature_types=["float"] * 4)
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, d, 3)
    dc = xgb.DMatrix(Xc, y, feature_names=NAMES, feature_types=["float", "float", "float", "c"], enable_categorical=True)
    cat = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "tree_method": "hist", "max_cat_to_onehot": 1, "nthread": 1}, dc, 2)
    lin = xgb.train({"booster": "gblinear", "nthread": 1}, d, 2)
    for name, b in (("binary", bst), ("categorical", cat), ("gblinear", lin)):
        out("xgboost-json", f"{name}.json", bytes(b.save_raw("json")))
        out("xgboost-ubj", f"{name}.ubj", bytes(b.save_raw("ubj")))
    out("xgboost-dump", "binary.json", "[" + ",".join(bst.get_dump(dump_format="json")) + "]")
    # ---- LightGBM
    reg = lgb.train({"objective": "regression", "num_leaves": 5, "verbose": -1}, lgb.Dataset(X, y), 3)
    lcat = lgb.train({"objective": "binary", "num_leaves": 5, "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1},
                     lgb.Dataset(Xc, y, categorical_feature=[3]), 2)
    for name, b in (("regression", reg), ("categorical", lcat)):
        out("lightgbm-text", f"{name}.txt", b.model_to_string())
        out("lightgbm-json", f"{name}.json", json.dumps(b.dump_model()))
    # ---- RankLib (RankLib's own files, cut short)
    for f in ("adarank", "rankboost", "linear_regression", "coordinate_ascent"):
        out("ranklib", f"{f}.txt", (RANKLIB / f"{f}.model.txt").read_bytes())
    out("ranklib", "lambdamart.txt", ranklib_head((RANKLIB / "lambdamart.model.txt").read_text(), 2))
    rf = (RANKLIB / "rf_mart.model.txt").read_text()
    ends = [m.end() for m in re.finditer(r"</ensemble>\s*", rf)]
    out("ranklib", "rf_mart.txt", rf[: ends[1]])  # the first two bags
    # ---- o19s LTR plugin documents (createmodel bodies)
    rl = ranklib_head((RANKLIB / "lambdamart.model.txt").read_text(), 2)
    fs300 = {"name": "fs", "features": [{"name": f"feat_{i}"} for i in range(300)]}
    dump = [json.loads(t) for t in bst.get_dump(dump_format="json")]
    ltr_docs = {
        "ranklib": {"model": {"name": "m", "model": {"type": "model/ranklib", "definition": rl}, "feature_set": fs300}},
        "xgboost": {"model": {"name": "m", "feature_set": {"name": "s", "features": [{"name": n} for n in NAMES]},
                              "model": {"type": "model/xgboost+json",
                                        "definition": json.dumps({"objective": "binary:logistic", "missing_as_zero": True, "splits": dump})}}},
        "linear": {"model": {"name": "m", "feature_set": {"name": "s", "features": [{"name": n} for n in NAMES]},
                             "model": {"type": "model/linear", "definition": {"f0": 0.5, "f1": -1.25, "f3": 2.0}}}},
        "raw": {"model": {"name": "m", "feature_set": {"name": "s", "features": [{"name": n} for n in NAMES]},
                          "model": {"type": "model/xgboost+json+raw", "definition": bytes(bst.save_raw("json")).decode()}}},
    }
    for name, doc in ltr_docs.items():
        out("es-ltr", f"{name}.json", json.dumps(doc))
    # ---- Elasticsearch native (eland's layout of a scikit-learn tree / ensemble)
    tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(np.nan_to_num(X), y)
    out("es-native", "tree.json", json.dumps({"trained_model": {"tree": es_tree(tree)}}))
    forest = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(np.nan_to_num(X), y)
    out("es-native", "ensemble.json", json.dumps({"trained_model": {"ensemble": {
        "feature_names": NAMES, "target_type": "regression",
        "aggregate_output": {"weighted_sum": {"weights": [0.5, 0.5]}},
        "trained_models": [{"tree": es_tree(e)} for e in forest.estimators_]}}}))
    # ---- scikit-learn pickles (joblib)
    Xf = np.nan_to_num(X)
    out("sklearn-pickle", "dtr.joblib", dump_joblib(DecisionTreeRegressor(max_depth=3, random_state=0).fit(Xf, y)))
    out("sklearn-pickle", "gbc.joblib", dump_joblib(GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(Xf, y)))
    out("sklearn-pickle", "hgb.joblib", dump_joblib(HistGradientBoostingRegressor(max_iter=2, max_depth=2).fit(X, y)))
    # ---- ltrcompile's own IR
    out("ltrcompile-ir", "binary.json", load_model(bst).to_json())
    out("ltrcompile-ir", "lightgbm.json", load_model(lcat).to_json())
    # ---- service request bodies
    bodies = {
        "featureset": {"name": "fs", "features": [{"name": "a"}, {"name": "b", "default": 0.5}, "c"],
                       "feature_normalizers": {"a": {"standard": {"mean": 1.0, "standard_deviation": 2.0}}}},
        "score_vectors": {"features": [[0.1, 0.2, 0.3], [1.0, None, 2.5]]},
        "score_maps": {"features": [{"a": 1.0, "b": 0.1}, {"c": 3.0}]},
        "score_binary": {"rows": 2, "feature_matrix": {"dtype": "float32", "data": "AACAPwAAAEAAAEBAAACAQAAAoEAAAMBA"}},
        "rescore_native": {"hits": [{"id": "1", "score": 1.5, "features": [0.1, 0.2, 0.3]},
                                    {"id": "2", "score": 0.5, "features": {"a": 2.0}}],
                           "window_size": 2, "query_weight": 1.0, "rescore_query_weight": 2.0, "score_mode": "total"},
        "rescore_es": {"hits": {"total": {"value": 1}, "hits": [{"_id": "1", "_score": 1.0, "fields": {"_ltrlog": [
            {"log": [{"name": "a", "value": 1.0}, {"name": "b", "value": 0.0}, {"name": "c"}]}]}}]}},
    }
    for name, body in bodies.items():
        out("service-request", f"{name}.json", json.dumps(body))


def es_tree(est: DecisionTreeRegressor) -> dict:
    """A fitted scikit-learn tree in Elasticsearch's ``tree`` layout (as eland writes it)."""
    t = est.tree_
    nodes = []
    for i in range(t.node_count):
        if t.children_left[i] == -1:
            nodes.append({"node_index": i, "leaf_value": [float(t.value[i][0][0])]})
        else:
            nodes.append({"node_index": i, "split_feature": int(t.feature[i]), "threshold": float(t.threshold[i]),
                          "decision_type": "lte", "default_left": True,
                          "left_child": int(t.children_left[i]), "right_child": int(t.children_right[i])})
    return {"feature_names": NAMES, "tree_structure": nodes, "target_type": "regression"}


def dump_joblib(est: object) -> bytes:
    import io

    buf = io.BytesIO()
    joblib.dump(est, buf)
    return buf.getvalue()




def regressions() -> None:
    """The replay corpus's named files: inputs that found defects (issue 15), rebuilt from the seeds."""
    corpus = HERE / "corpus"

    def put(target: str, name: str, data: bytes | str) -> None:
        d = corpus / target
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data.encode() if isinstance(data, str) else data)

    lm = (SEEDS / "ranklib" / "lambdamart.txt").read_text()
    thr = re.search(r"<threshold>\s*(\S+)\s*</threshold>", lm)
    put("ranklib", "issue15-huge-exponent.txt", lm.replace(thr.group(0), "<threshold> 1E999999999 </threshold>", 1))
    fid = re.search(r"<feature>\s*(\d+)\s*</feature>", lm)
    put("ranklib", "issue15-feature-2147483647.txt", lm.replace(fid.group(0), "<feature> 2147483647 </feature>", 1))
    doc = json.loads((SEEDS / "es-ltr" / "ranklib.json").read_text())
    doc["model"]["model"]["definition"] = doc["model"]["model"]["definition"].replace(thr.group(0), "<threshold> 1E999999999 </threshold>", 1)
    put("es-ltr", "issue15-ranklib-huge-exponent.json", json.dumps(doc))
    lg = json.loads((SEEDS / "lightgbm-json" / "regression.json").read_text())
    lg["tree_info"][0]["tree_structure"]["missing_type"] = ["NaN"]
    put("lightgbm-json", "issue15-missing-type-list.json", json.dumps(lg))
    big = "9" * 5000
    for target, name in (("lightgbm-json", "regression.json"), ("es-native", "tree.json"), ("xgboost-json", "binary.json"),
                         ("xgboost-dump", "binary.json"), ("ltrcompile-ir", "binary.json"), ("service-request", "score_binary.json")):
        text = (SEEDS / target / name).read_text()
        m = re.search(r"[:\[,]\s*(-?\d+)\s*[,\]}]", text)
        put(target, "issue15-5000-digit-int.json", text[: m.start(1)] + big + text[m.end(1):])
    body = json.loads((SEEDS / "service-request" / "score_binary.json").read_text())
    body["feature_matrix"]["dtype"] = {"x": "float32"}
    put("service-request", "issue15-dtype-object.json", json.dumps(body))
    ir = json.loads((SEEDS / "ltrcompile-ir" / "binary.json").read_text())
    for key, bad in (("feature_names", [[1], "b", "c", "d"]), ("transform", {"x": 1}), ("feature_categories", 1.5)):
        v = json.loads(json.dumps(ir))
        v["model"][key] = bad
        put("ltrcompile-ir", f"issue15-model-{key}-type.json", json.dumps(v))
    v = json.loads(json.dumps(ir))
    v["nodes"]["feature"][0] = 2**64
    put("ltrcompile-ir", "issue15-int-overflow.json", json.dumps(v))


if __name__ == "__main__":
    main()
    regressions()
