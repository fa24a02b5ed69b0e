"""`make demo`: train two small rankers on the bundled LightGBM lambdarank data, load them into the
ltrcompile IR, score the test rows with the interpreter and the compiled scorer, check parity against
the native libraries (as reloaded from their saved files) and print a short table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import ltrcompile

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def load_letor(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(DATA / name), n_features=300, zero_based=False)
    groups = np.loadtxt(DATA / f"{name}.query", dtype=np.int64)
    return X.toarray(), y, groups


def train_lightgbm(X, y, groups, path: Path, n_trees: int) -> None:
    import lightgbm as lgb

    params = {
        "objective": "lambdarank",
        "num_leaves": 31,
        "learning_rate": 0.1,
        "min_data_in_leaf": 10,
        "num_threads": 1,
        "deterministic": True,
        "verbose": -1,
        "seed": 7,
    }
    bst = lgb.train(params, lgb.Dataset(X, y, group=groups), num_boost_round=n_trees)
    bst.save_model(str(path))


def train_xgboost(X, y, groups, path: Path, n_trees: int) -> None:
    import xgboost as xgb

    qid = np.repeat(np.arange(len(groups)), groups)
    dtrain = xgb.DMatrix(X, y, qid=qid)
    params = {"objective": "rank:ndcg", "max_depth": 6, "eta": 0.1, "nthread": 1, "seed": 7}
    bst = xgb.train(params, dtrain, num_boost_round=n_trees)
    bst.save_model(str(path))


def native_raw(kind: str, path: Path, X: np.ndarray) -> np.ndarray:
    if kind == "lightgbm":
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path)).predict(X, raw_score=True)
    import xgboost as xgb

    bst = xgb.Booster(model_file=str(path))
    bst.set_param({"nthread": 1})
    return bst.inplace_predict(X, predict_type="margin").astype(np.float64)


def timed(fn, repeat: int) -> float:
    fn()
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return float(np.median(best))


def compiled_backend_available() -> bool:
    try:
        import ltrcompile.backends.cython  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trees", type=int, default=100, help="boosting rounds per model (default 100)")
    ap.add_argument("--out", default=None, help="where to write models and artifacts (default: a temp dir)")
    args = ap.parse_args(argv)

    Xtr, ytr, gtr = load_letor("lambdarank_rank.train")
    Xte, _, gte = load_letor("lambdarank_rank.test")
    out = Path(args.out or tempfile.mkdtemp(prefix="ltrcompile-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"data: {len(Xtr)} training rows / {len(gtr)} queries, {len(Xte)} test rows / {len(gte)} queries, "
          f"{Xte.shape[1]} features (LightGBM's lambdarank example)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; output in {out}\n")

    rows = []
    ok = True
    for kind, trainer, fname in (
        ("lightgbm", train_lightgbm, "lgb_lambdarank.txt"),
        ("xgboost", train_xgboost, "xgb_rank_ndcg.json"),
    ):
        path = out / fname
        t0 = time.perf_counter()
        trainer(Xtr, ytr, gtr, path, args.trees)
        train_s = time.perf_counter() - t0
        ens = ltrcompile.load_model(path)
        ref = native_raw(kind, path, Xte)
        interp = ens.predict(Xte, raw_score=True)
        d_interp = float(np.max(np.abs(interp - ref)))
        same_interp = int(np.count_nonzero(interp == ref))
        row = {
            "model": f"{kind} ({ens.n_trees} trees)",
            "train_s": train_s,
            "interp_maxd": d_interp,
            "interp_bitexact": f"{same_interp}/{len(ref)}",
            "interp_us_row": timed(lambda e=ens: e.predict(Xte, raw_score=True), 3) / len(Xte) * 1e6,
            "native_us_row": timed(lambda k=kind, p=path: native_raw(k, p, Xte), 3) / len(Xte) * 1e6,
        }
        ok &= d_interp <= 1e-6
        if compiled_backend_available():
            t0 = time.perf_counter()
            scorer = ltrcompile.compile(ens, out / f"{kind}-artifact", progress=False)
            row["compile_s"] = time.perf_counter() - t0
            comp = scorer.predict(Xte, raw_score=True)
            d_comp = float(np.max(np.abs(comp - ref)))
            row["compiled_maxd"] = d_comp
            row["compiled_bitexact"] = f"{int(np.count_nonzero(comp == ref))}/{len(ref)}"
            row["compiled_us_row"] = timed(lambda s=scorer: s.predict(Xte, raw_score=True), 20) / len(Xte) * 1e6
            x1 = np.ascontiguousarray(Xte[0])
            row["compiled_one_us"] = timed(lambda s=scorer, x=x1: s.predict_one(x), 2000) * 1e6
            ok &= d_comp <= 1e-6
        rows.append(row)

    cols = [
        ("model", "model", "{}"),
        ("interp_bitexact", "interp bit-exact", "{}"),
        ("interp_maxd", "interp max|d|", "{:.1e}"),
        ("compiled_bitexact", "compiled bit-exact", "{}"),
        ("compiled_maxd", "compiled max|d|", "{:.1e}"),
        ("native_us_row", "native us/row", "{:.2f}"),
        ("interp_us_row", "interp us/row", "{:.2f}"),
        ("compiled_us_row", "compiled us/row", "{:.3f}"),
        ("compiled_one_us", "predict_one us", "{:.2f}"),
        ("compile_s", "compile s", "{:.1f}"),
    ]
    cols = [c for c in cols if any(c[0] in r for r in rows)]
    table = [[c[1] for c in cols]] + [[c[2].format(r[c[0]]) if c[0] in r else "-" for c in cols] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(cols))]
    print("Parity vs the native library (raw margins of the 768 test rows, model reloaded from file)"
          " and single-thread timing at batch 768:")
    for i, t in enumerate(table):
        print("| " + " | ".join(s.ljust(w) for s, w in zip(t, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\nparity:", "OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
