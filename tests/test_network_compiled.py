"""Compiled dense networks (Cython backend, templates/ltrc_network.c.j2) against the interpreter:
bit-identical on RankLib's real RankNet/ListNet and on random layer shapes, activations, output
transforms and input rules; the interpreter itself is checked against RankLib in
test_ranklib_network.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal, require_c_compiler
from sklearn.datasets import load_svmlight_file

from ltrcompile.backends.cython import compile as compile_model
from ltrcompile.frontends import load_model
from ltrcompile.ir import Ensemble
from ltrcompile.network import DenseLayer, Network

require_c_compiler()
pytestmark = pytest.mark.usefixtures("private_build_cache")
DATA = Path(__file__).parent / "data" / "ranklib"


@pytest.fixture(scope="module")
def X():
    X, _ = load_svmlight_file(str(DATA / "test.letor"), n_features=300, zero_based=False)
    return X.toarray()


@pytest.mark.parametrize("name", ["ranknet", "listnet"])
def test_real_networks_compiled_equal_interpreter(name, X):
    ens = load_model(DATA / f"{name}.model.txt", n_features=300)
    sc = compile_model(ens, progress=False)
    assert sc.strategy == "network" and sc.n_trees == 0
    want = ens.predict(X)
    assert_bit_equal(sc.predict(X), want, f"{name} float64 rows")
    assert_bit_equal(sc.predict(X.astype(np.float32)), want, f"{name} float32 rows")
    assert_bit_equal(sc.predict(np.asfortranarray(X)), want, f"{name} Fortran order")
    assert_bit_equal(sc.predict(X, n_threads=2), want, f"{name} 2 threads")
    assert_bit_equal(np.array([sc.predict_one(X[i]) for i in range(0, 768, 7)]), want[::7], f"{name} predict_one")
    Xe = X.copy()
    Xe[:, ::3] = np.nan
    Xe[::5, 1] = np.inf
    Xe[::7, 2] = -1e300  # beyond float32: -inf after the input cast
    Xe[::11, 4] = -0.0
    assert_bit_equal(sc.predict(Xe), ens.predict(Xe), f"{name} edge values")
    assert sc.predict_leaf(X).shape == (768, 0)


def test_o19s_network_compiled_with_float_output(X):
    """model/ranklib: (float) of RankLib's eval, i.e. the to_float32 transform after the network."""
    names = [f"f{i}" for i in range(300)]
    doc = {"model": {"name": "n", "model": {"type": "model/ranklib", "definition": (DATA / "ranknet.model.txt").read_text(),
                                            "feature_normalizers": {"f3": {"min_max": {"minimum": 0.0, "maximum": 2.5}}}}}}
    ens = load_model(doc, format="es-ltr", feature_set=names)
    sc = compile_model(ens, progress=False)
    assert_bit_equal(sc.predict(X), ens.predict(X), "o19s ranknet")
    assert_bit_equal(sc.predict(X, raw_score=True), ens.predict(X, raw_score=True), "o19s ranknet raw")


def _random_network(seed: int) -> Ensemble:
    rng = np.random.default_rng(seed)
    n_features = int(rng.integers(1, 12))
    n_in = int(rng.integers(1, 9))
    inputs = rng.integers(0, n_features, n_in).astype(np.int32)
    widths = [n_in, *rng.integers(1, 7, int(rng.integers(0, 4))).tolist()]
    K = int(rng.integers(1, 4))
    widths.append(K)
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        scale = float(rng.choice([0.01, 1.0, 30.0]))
        layers.append(DenseLayer(rng.normal(0, scale, (a, b)), rng.normal(0, scale, b), str(rng.choice(["sigmoid", "identity"]))))
    transform = {1: str(rng.choice(["identity", "to_float32", "sigmoid"])), 2: "softmax", 3: "softmax"}[K]
    net = Network(inputs, layers, nan_input=str(rng.choice(["zero", "propagate"])))
    return Ensemble.from_trees(
        [],
        n_features=n_features,
        n_outputs=K,
        network=net,
        input_cast=str(rng.choice(["float32", "float64"])),
        infinite_as_missing=bool(rng.integers(0, 2)),
        input_zero_band=float(rng.choice([0.0, 1e-3])),
        transform=transform,
        transform_params={"alpha": 1.5} if transform == "sigmoid" else {},
    )


@pytest.mark.parametrize("seed", range(8))
def test_random_networks_compiled_equal_interpreter(seed):
    ens = _random_network(seed)
    ens = Ensemble.from_json(ens.to_json())  # what the artifact stores
    rng = np.random.default_rng(100 + seed)
    M = rng.normal(0, 3, (300, ens.n_features))
    M[rng.random(M.shape) < 0.1] = np.nan
    M[rng.random(M.shape) < 0.05] = np.inf
    M[rng.random(M.shape) < 0.05] = 0.0005
    M[rng.random(M.shape) < 0.05] = -0.0
    sc = compile_model(ens, progress=False)
    for raw in (False, True):
        want = ens.predict(M, raw_score=raw)
        assert_bit_equal(sc.predict(M, raw_score=raw), want, f"seed {seed} raw={raw}")
        got_one = [sc.predict_one(M[i], raw_score=raw) for i in range(5)]
        assert_bit_equal(np.array(got_one).reshape(want[:5].shape), want[:5], f"seed {seed} one")


def test_edge_rows_for_networks(X):
    """verify's edge rows reach every network input with NaN, +-0, tiny, huge and infinite values."""
    from ltrcompile.edgecases import SPECIAL_VALUES, edge_rows

    ens = load_model(DATA / "ranknet.model.txt", n_features=300)
    E = edge_rows(ens, X[:50], max_rows=2000)
    assert E.shape[0] > 100
    # rows are sampled to the budget: most inputs (not necessarily all) see NaN and infinities
    assert np.isnan(E).any(axis=0).sum() > 250 and np.isinf(E).any(axis=0).sum() > 250
    assert set(SPECIAL_VALUES[np.isfinite(SPECIAL_VALUES)].tolist()) <= set(E.ravel().tolist())
    sc = compile_model(ens, progress=False)
    assert_bit_equal(sc.predict(E), ens.predict(E), "edge rows")


def test_network_strategy_option():
    ens = load_model(DATA / "listnet.model.txt")
    with pytest.raises(ValueError, match="does not apply to a dense network"):
        compile_model(ens, strategy="ifelse", progress=False)


def test_network_host_isa_build_uses_the_isa_flags_and_stays_exact(tmp_path: Path, X):
    """isa= reaches the network kernel's compile line (not only the tree units), is recorded, and
    the host build scores bit-identically."""
    from ltrcompile.backends.cython import isa as isa_mod

    level = isa_mod.resolve("native")
    if level == "portable":
        pytest.skip("this CPU has neither AVX2 nor AVX-512: no host-ISA build to test")
    ens = load_model(DATA / "ranknet.model.txt", n_features=300)
    sc = compile_model(ens, tmp_path / "host", isa="native", progress=False)
    assert sc.manifest["isa"]["level"] == level
    log = (tmp_path / "host" / "build.log").read_text()
    march = isa_mod.cflags(level)[0]
    kernel_lines = [ln for ln in log.splitlines() if "-c ltrc_network.c" in ln]
    init_lines = [ln for ln in log.splitlines() if "-c ltrc_init.c" in ln]
    assert kernel_lines and all(march in ln for ln in kernel_lines), log
    assert init_lines and not any(march in ln for ln in init_lines), log
    assert_bit_equal(sc.predict(X), ens.predict(X), "network host-ISA build")
