"""Cython backend: compiled scorers score exactly like the reference interpreter.

Every test builds real extensions with the real C compiler (small models, a few seconds each) and
compares them with the interpreter (the executable spec): raw margins and transformed outputs
bit-identical, leaf indices identical, for float32 and float64 input, batch and single-row paths,
both strategies. Real-library comparisons live in ``test_cython_backend_real.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal, require_c_compiler
from cython_zoo import TRANSFORM_MODELS, ZOO, ensemble, rows_for, transform_model

from ltrcompile.backends.cython import (
    STRATEGIES,
    CompiledScorer,
    CompilerNotFoundError,
    Tuning,
    load_compiled,
)
from ltrcompile.backends.cython import (
    compile as cy_compile,
)
from ltrcompile.backends.cython.transforms_c import TRANSFORM_C
from ltrcompile.errors import InputDataError, UnsupportedModelError
from ltrcompile.ir import Ensemble
from ltrcompile.transforms import TRANSFORMS

require_c_compiler()
pytestmark = pytest.mark.usefixtures("private_build_cache")


def build(ens: Ensemble, strategy: str = "auto", **kw) -> CompiledScorer:
    return cy_compile(ens, strategy=strategy, progress=False, **kw)


def check_parity(ens: Ensemble, scorer: CompiledScorer, X: np.ndarray, what: str, n_one: int = 40) -> None:
    """Compiled == interpreter on X as float64 and float32: raw, transformed, leaves, one row."""
    for dtype in (np.float64, np.float32):
        Xd = np.ascontiguousarray(X, dtype=dtype)
        tag = f"{what} {np.dtype(dtype).name}"
        raw = ens.predict(Xd, raw_score=True)
        assert_bit_equal(scorer.predict(Xd, raw_score=True), raw, f"{tag} raw")
        assert_bit_equal(scorer.predict(Xd), ens.predict(Xd), f"{tag} transformed")
        np.testing.assert_array_equal(scorer.predict_leaf(Xd), ens.predict_leaf(Xd), err_msg=f"{tag} leaves")
        out = ens.predict(Xd)
        idx = np.linspace(0, len(Xd) - 1, min(n_one, len(Xd))).astype(int)
        for i in idx:
            one = scorer.predict_one(Xd[i])
            assert_bit_equal(np.asarray(one, np.float64), out[i], f"{tag} predict_one row {i}")
            one_raw = scorer.predict_one(Xd[i], raw_score=True)
            assert_bit_equal(np.asarray(one_raw, np.float64), raw[i], f"{tag} predict_one raw row {i}")


# ---------------------------------------------------------------------- the zoo
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_matches_interpreter(name: str, strategy: str) -> None:
    ens = ensemble(sum(map(ord, name)), **ZOO[name])
    scorer = build(ens, strategy)
    assert scorer.strategy == strategy
    check_parity(ens, scorer, rows_for(ens, seed=1), f"{name}/{strategy}")


TUNINGS = [
    dict(dd_block_trees=3, row_block=8, dd_lanes=4),
    dict(dd_lanes=8, dd_block_trees=5, row_block=16),
    dict(dd_aos=True, dd_lanes=8),
    dict(dd_incbin_min=1),  # every big table as a binary file pulled in with .incbin
]


@pytest.mark.parametrize("tuning", range(len(TUNINGS)))
@pytest.mark.parametrize("name", ["xgb_like_lt_f32", "lgb_like_le_band", "mixed_ops_all_policies", "weights_fused_bags_avg", "deep_trees"])
def test_datadriven_kernel_variants(name: str, tuning: int) -> None:
    """Lane counts, block sizes, table layouts all score identically."""
    kw = dict(ZOO[name])
    kw["n_trees"] = max(kw.get("n_trees", 6), 11)
    ens = ensemble(sum(map(ord, name)) + 7, **kw)
    s = build(ens, "datadriven", tuning=Tuning(**TUNINGS[tuning]))
    check_parity(ens, s, rows_for(ens, seed=3), f"{name}/{TUNINGS[tuning]}", n_one=10)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_registered_transform_has_a_c_implementation(name: str) -> None:
    """A transform added to transforms.TRANSFORMS without C code fails here."""
    assert name in TRANSFORM_C, f"transform {name!r} has no C implementation in the Cython backend"
    ens = transform_model(name)
    scorer = build(ens, "datadriven")
    X = rows_for(ens, seed=2, max_edge=600)
    # also extreme margins: saturation, overflow to inf, NaN
    X = np.vstack([X, np.full((2, ens.n_features), np.nan)])
    check_parity(ens, scorer, X, f"transform {name}", n_one=10)


def test_transform_models_cover_the_registry() -> None:
    assert set(TRANSFORM_MODELS) <= set(TRANSFORMS)


def test_transforms_on_extreme_margins() -> None:
    """Huge margins (exp overflow, sigmoid saturation, +-inf, NaN through linear terms)."""
    for name in ("sigmoid", "exp", "log1p_exp", "xgb_sigmoid", "xgb_exp", "signed_square", "softmax", "xgb_softmax", "xgb_argmax", "xgb_hinge", "sigmoid_binary_proba"):
        t = TRANSFORMS[name]
        k = max(1, t.min_outputs)
        params = {p: 0.5 for p in t.params}
        f32 = name.startswith("xgb")
        ens = ensemble(
            11, n_trees=k, n_outputs=k, transform=name, transform_params=params,
            linear_output=np.arange(k, dtype=np.int32), linear_feature=np.zeros(k, np.int32),
            linear_weight=np.ones(k),
            accumulate="float32" if f32 else "float64", input_cast="float32" if f32 else "float64",
        )
        vals = np.array([0.0, -0.0, 1.0, -1.0, 88.0, 89.0, -89.0, 700.0, 710.0, -750.0, 1e30, -1e30, 3e38, np.inf, -np.inf, np.nan])
        X = np.zeros((vals.size, ens.n_features))
        X[:, 0] = vals
        scorer = build(ens, "datadriven")
        check_parity(ens, scorer, X, f"extreme {name}", n_one=vals.size)


def test_unknown_transform_is_rejected_at_compile(monkeypatch) -> None:
    from ltrcompile import transforms as tr

    name = "test_only_transform"
    monkeypatch.setitem(tr.TRANSFORMS, name, tr.Transform(name, "x", lambda r, p: r))
    ens = ensemble(1, n_trees=2, transform=name)
    with pytest.raises(UnsupportedModelError, match="no C implementation"):
        build(ens)


def test_empty_ensemble() -> None:
    ens = Ensemble.from_trees([], n_features=3, base_score=[0.25])
    for strategy in STRATEGIES:
        s = build(ens, strategy)
        X = np.random.default_rng(0).normal(size=(5, 3))
        assert_bit_equal(s.predict(X), ens.predict(X))
        assert s.predict_leaf(X).shape == (5, 0)
        assert s.predict_one(X[0]) == 0.25


# ---------------------------------------------------------------------- inputs
def test_input_layouts_dtypes_sparse_and_frames() -> None:
    pd = pytest.importorskip("pandas")
    sp = pytest.importorskip("scipy.sparse")
    names = [f"f{i}" for i in range(6)]
    ens = ensemble(5, feature_names=names, **ZOO["lgb_like_le_band"])
    s = build(ens)
    X = rows_for(ens, seed=4)
    big = np.asfortranarray(X)
    assert_bit_equal(s.predict(big), ens.predict(big), "fortran order")
    strided = np.repeat(X, 2, axis=0)[::2]
    assert_bit_equal(s.predict(strided), ens.predict(strided), "row stride")
    cols = np.hstack([X, X])[:, ::2]
    assert_bit_equal(s.predict(cols), ens.predict(cols), "column stride")
    swapped = X.astype(">f8")
    assert_bit_equal(s.predict(swapped), ens.predict(swapped), "big endian")
    ints = np.nan_to_num(X, nan=0, posinf=0, neginf=0).clip(-1e6, 1e6).astype(np.int64) + 16777217
    assert_bit_equal(s.predict(ints), ens.predict(ints), "int64 (cast to float32 first)")
    assert_bit_equal(s.predict(X.tolist()), ens.predict(X), "lists")
    Xs = np.where(np.abs(np.nan_to_num(X)) < 0.3, 0.0, X)
    csr = sp.csr_matrix(np.nan_to_num(Xs, nan=0.0))
    assert_bit_equal(s.predict(csr), ens.predict(csr), "csr (no zero band on stored entries)")
    csc = sp.csc_matrix(np.nan_to_num(Xs, nan=0.0))
    assert_bit_equal(s.predict(csc), ens.predict(csc), "csc (zero band)")
    df = pd.DataFrame(X[:, ::-1], columns=names[::-1])
    assert_bit_equal(s.predict(df), ens.predict(df), "DataFrame bound by name")
    with pytest.raises(InputDataError):
        s.predict(pd.DataFrame(X, columns=[f"g{i}" for i in range(6)]))
    with pytest.raises(InputDataError):
        s.predict(X[:, :5])
    with pytest.raises(InputDataError):
        s.predict(X[0])
    # predict_one: lists, ints, non-contiguous, wrong length
    assert s.predict_one(list(X[3])) == s.predict(X[3:4])[0]
    assert s.predict_one(ints[3]) == s.predict(ints[3:4])[0]
    assert s.predict_one(big[3]) == s.predict(X[3:4])[0]
    with pytest.raises(InputDataError):
        s.predict_one(X[3][:4])
    with pytest.raises(InputDataError):
        s.predict_one(X[:2])
    empty = s.predict(np.zeros((0, 6)))
    assert empty.shape == (0,) and empty.dtype == np.float64


def test_output_shapes_match_interpreter() -> None:
    ens = ensemble(9, **ZOO["multi_output_scalar"])
    s = build(ens)
    X = rows_for(ens, seed=3)[:50]
    assert s.predict(X).shape == ens.predict(X).shape == (50, 3)
    assert s.predict(X, raw_score=True).shape == (50, 3)
    assert s.predict_one(X[0]).shape == (3,)
    assert s.predict_leaf(X).dtype == np.int32


# ---------------------------------------------------------------------- threads
def test_many_threads_share_one_scorer_and_n_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    ens = ensemble(21, n_trees=20, **{k: v for k, v in ZOO["lgb_like_le_band"].items()})
    s = build(ens)
    X = rows_for(ens, seed=5)
    X = np.vstack([X] * 4)
    want = ens.predict(X)

    def work(i: int) -> bool:
        part = X[i * 37 : i * 37 + 400]
        ok = np.array_equal(s.predict(part), want[i * 37 : i * 37 + 400], equal_nan=True)
        ok &= all(
            np.array_equal(s.predict_one(part[j]), want[i * 37 + j], equal_nan=True) for j in range(0, len(part), 25)
        )
        return bool(ok)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(32)))
    for nt in (2, 3, 0):
        assert_bit_equal(s.predict(X, n_threads=nt), want, f"n_threads={nt}")
        np.testing.assert_array_equal(s.predict_leaf(X, n_threads=nt), ens.predict_leaf(X))



@pytest.mark.parametrize("strategy", ["ifelse", "datadriven"])
def test_threads_split_rows_in_chunks_exactly(strategy: str) -> None:
    """Rows are handed to threads in chunks of whole row blocks: every split (chunks that do not
    divide the rows, more threads than chunks, a ragged last block) scores like one thread."""
    ens = ensemble(22, n_trees=12, **{k: v for k, v in ZOO["lgb_like_le_band"].items()})
    s = build(ens, strategy)
    base = rows_for(ens, seed=9)
    X = np.ascontiguousarray(np.vstack([base] * (3000 // len(base) + 1))[:2917])
    want = ens.predict(X, raw_score=True)
    want_leaf = ens.predict_leaf(X)
    for n in (256, 257, 1000, 2917):
        for nt in (2, 3, 5, 16):
            assert_bit_equal(s.predict(X[:n], raw_score=True, n_threads=nt), want[:n], f"n={n} n_threads={nt}")
            np.testing.assert_array_equal(s.predict_leaf(X[:n], n_threads=nt), want_leaf[:n])


# ---------------------------------------------------------------------- artifacts
def test_artifact_contents_and_reload(tmp_path: Path) -> None:
    import json

    ens = ensemble(31, feature_names=[f"f{i}" for i in range(6)], **ZOO["xgb_like_lt_f32"])
    out = tmp_path / "art"
    s = build(ens, out_dir=out, name="my model")
    m = json.loads((out / "manifest.json").read_text())
    for key in ("ir_digest", "codegen_version", "strategy", "compiler", "python", "abi_tag", "platform_tag",
                "versions", "provenance", "feature_names", "transform", "n_features", "n_outputs", "built_at",
                "build_seconds"):
        assert key in m, key
    assert m["module"].startswith("ltrc_") and m["module"] in m["extension"]
    assert m["ir_digest"] == ens.digest()
    assert (out / "ir.json").is_file() and (out / "build.log").is_file()
    assert (out / "src" / "ltrc_driver.c").is_file() and (out / "src" / "ltrc_wrapper.pyx").is_file()
    assert not list(out.glob("src/*.o"))
    assert Ensemble.load(str(out / "ir.json")).digest() == ens.digest()
    again = load_compiled(out)
    X = rows_for(ens)
    assert_bit_equal(again.predict(X), s.predict(X))
    assert again.ensemble.digest() == ens.digest()
    assert s.feature_names == ens.feature_names and s.n_features == 6


def test_cache_hit_and_content_addressed_names(tmp_path: Path) -> None:
    import time

    ens = ensemble(41, **ZOO["lgb_like_le_band"])
    s1 = build(ens)
    t = time.perf_counter()
    s2 = build(ens)
    assert time.perf_counter() - t < 1.0, "an identical build must come from the cache"
    assert s1.module_name == s2.module_name and s1.path == s2.path
    # the same name, a changed model -> a new module with new scores
    changed = ensemble(41, **ZOO["lgb_like_le_band"])
    changed.leaf_value = changed.leaf_value + 1.0
    s3 = build(changed)
    assert s3.module_name != s1.module_name
    X = rows_for(ens)
    assert_bit_equal(s3.predict(X), changed.predict(X))
    assert not np.array_equal(s3.predict(X), s1.predict(X))
    # explicit out_dir reuses the cached build; cache=False rebuilds
    out = tmp_path / "copy"
    s4 = build(ens, out_dir=out)
    assert s4.module_name == s1.module_name and (out / "manifest.json").exists()
    s5 = build(ens, out_dir=tmp_path / "fresh", cache=False)
    assert_bit_equal(s5.predict(X), s1.predict(X))


def test_load_rejects_foreign_or_corrupt_artifacts(tmp_path: Path) -> None:
    import json

    from ltrcompile.backends.cython import ArtifactError, IncompatibleArtifactError

    ens = ensemble(51, n_trees=3)
    out = tmp_path / "a"
    build(ens, out_dir=out)
    m = json.loads((out / "manifest.json").read_text())
    m["python"]["soabi"] = "cpython-39-sparc-solaris"
    m["python"]["platform"] = "solaris-sparc"
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IncompatibleArtifactError, match="another platform"):
        load_compiled(out)
    with pytest.raises(ArtifactError):
        load_compiled(tmp_path)
    other = tmp_path / "b"
    build(ensemble(52, n_trees=3), out_dir=other, cache=False)
    # corrupt a COPY: the built module is loaded in this process, and rewriting a mapped shared
    # object in place changes its code under the loader (it crashed at interpreter exit)
    fresh = tmp_path / "c"
    fresh.mkdir()
    for p in other.iterdir():
        if p.is_file():
            data = bytearray(p.read_bytes())
            if p.name.startswith("ltrc_") and p.suffix == ".so":
                data[len(data) // 2] ^= 0xFF
            (fresh / p.name).write_bytes(bytes(data))
    m2 = json.loads((fresh / "manifest.json").read_text())
    m2["module"] = "ltrc_" + "0" * 24  # not loaded in this process yet, so the checksum is checked
    (fresh / "manifest.json").write_text(json.dumps(m2))
    with pytest.raises(ArtifactError, match="checksum"):
        load_compiled(fresh)


def test_pickle_round_trip_in_a_subprocess(tmp_path: Path) -> None:
    import pickle
    import shutil
    import subprocess
    import sys

    ens = ensemble(61, **ZOO["cat_lightgbm"])
    out = tmp_path / "art"
    s = build(ens, out_dir=out)
    X = rows_for(ens)
    blob = pickle.dumps(s)
    shutil.rmtree(out)
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "s.pkl").write_bytes(blob)
    code = (
        "import pickle, numpy as np, sys\n"
        f"s = pickle.loads(open({str(tmp_path / 's.pkl')!r}, 'rb').read())\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, s.predict(np.load({str(tmp_path / 'X.npy')!r})))\n"
    )
    env = dict(os.environ, LTRCOMPILE_CACHE=str(tmp_path / "other-cache"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert_bit_equal(np.load(tmp_path / "out.npy"), ens.predict(X), "unpickled in another process")


def test_hostile_feature_names_and_provenance() -> None:
    names = ['"""; import os; os._exit(3)', "*/ #error boom /*", "back\\slash\\", "new\nline", "nul\0byte", "ünïcødé ✓"]
    ens = ensemble(71, feature_names=names, **ZOO["lgb_like_le_band"])
    ens.provenance = {"source_file": '"; rm -rf / #', "objective": "*/ int x = ;", "model": "\\\n\0"}
    s = build(ens)
    assert s.feature_names == names
    X = rows_for(ens)
    assert_bit_equal(s.predict(X), ens.predict(X))
    src = (s.path / "src").glob("*.[ch]")
    text = "".join(p.read_text() for p in src)
    assert "import os" not in text and "boom" not in text and "rm -rf" not in text


def test_missing_compiler_gives_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    """No compiler on PATH and a bogus $CC: a typed error that says how to install one."""
    import importlib
    import sysconfig

    cfg = (sysconfig.get_config_var("CC") or "").split()
    if cfg and os.path.isabs(cfg[0]) and os.path.exists(cfg[0]):
        pytest.skip("Python's configured CC is an absolute path that exists")
    tcmod = importlib.import_module("ltrcompile.backends.cython.toolchain")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    tcmod.toolchain.cache_clear()
    try:
        with pytest.raises(CompilerNotFoundError, match="apt-get install build-essential"):
            tcmod.toolchain()
        with pytest.raises(CompilerNotFoundError):
            build(ensemble(3, n_trees=1), cache=False)
    finally:
        monkeypatch.undo()
        tcmod.toolchain.cache_clear()


def test_build_failure_is_a_typed_error_and_keeps_the_log(monkeypatch) -> None:
    """A compiler that rejects the build: BuildError with the compiler's message, sources kept."""
    import importlib
    import re

    from ltrcompile.backends.cython import BuildError

    tcmod = importlib.import_module("ltrcompile.backends.cython.toolchain")
    monkeypatch.setenv("LTRCOMPILE_CFLAGS", "-fno-such-option-for-ltrc")
    tcmod.toolchain.cache_clear()
    try:
        with pytest.raises(BuildError, match="no-such-option-for-ltrc") as info:
            build(ensemble(3, n_trees=2), cache=False)
        kept = Path(re.search(r"kept in (.*)\)", str(info.value)).group(1))
        assert "no-such-option-for-ltrc" in (kept / "build.log").read_text()
        assert (kept / "ltrc_driver.c").is_file()
    finally:
        monkeypatch.undo()
        tcmod.toolchain.cache_clear()
    monkeypatch.setenv("LTRCOMPILE_CFLAGS", "-ffast-math")
    tcmod.toolchain.cache_clear()
    try:
        with pytest.raises(ValueError, match="bit-exact"):
            tcmod.toolchain()
    finally:
        monkeypatch.undo()
        tcmod.toolchain.cache_clear()


def test_strategy_argument() -> None:
    ens = ensemble(81, n_trees=2)
    with pytest.raises(ValueError, match="unknown strategy"):
        build(ens, "quickscorer")


# ---------------------------------------------------------------------- big model
@pytest.mark.slow
def test_two_thousand_trees_compile() -> None:
    ens = ensemble(91, n_trees=2000, n_features=30, tree_kw=dict(depth=6))
    X = rows_for(ens, max_edge=300)
    for strategy in ("auto", "ifelse"):
        s = build(ens, strategy)
        assert_bit_equal(s.predict(X, raw_score=True), ens.predict(X, raw_score=True), strategy)
        np.testing.assert_array_equal(s.predict_leaf(X[:50]), ens.predict_leaf(X[:50]))
