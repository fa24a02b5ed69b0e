"""RankLib RankNet / LambdaRank / ListNet: the IR dense network against RankLib's own score files,
a scalar reference written from the format notes (shared/docs/formats-ranklib-sklearn-es.md 1.8),
the JSON round trip, and typed errors for malformed files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_bit_equal
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_svmlight_file

from ltrcompile.errors import IRValidationError, ModelFormatError
from ltrcompile.frontends import load_model
from ltrcompile.frontends import ranklib as rl
from ltrcompile.ir import Ensemble

DATA = Path(__file__).parent / "data" / "ranklib"
NETWORKS = ["ranknet", "listnet"]


@pytest.fixture(scope="module")
def letor():
    X, _, _ = load_svmlight_file(str(DATA / "test.letor"), n_features=300, zero_based=False, query_id=True)
    Xs, _, _ = load_svmlight_file(str(DATA / "test.sparse.letor"), n_features=300, zero_based=False, query_id=True)
    return X.toarray(), Xs


def ranklib_scores(name: str) -> np.ndarray:
    return np.loadtxt(DATA / f"{name}.scores.tsv", usecols=2)


def assert_ranklib_parity(got: np.ndarray, name: str, what: str) -> None:
    """RankNet: bit-identical. ListNet: bit-identical except 3 of 768 rows where the C library's
    ``exp`` and Java's ``Math.exp`` round differently (one ulp of exp(-s), <= 2 ulps = 1.1e-16 of the
    score; the sums are identical,
    checked in test_listnet_differences_are_exp_ulps)."""
    ref = ranklib_scores(name)
    if name == "ranknet":
        assert_bit_equal(got, ref, what)
        return
    diff = got != ref
    assert int(diff.sum()) <= 3, f"{what}: {int(diff.sum())} rows differ"
    assert np.all(np.abs(got - ref)[diff] <= 2 * np.spacing(ref[diff])), what  # <= 2 ulps of the score
    assert np.abs(got - ref).max() <= 1e-12


@pytest.mark.parametrize("name", NETWORKS)
def test_parity_with_ranklib_scores(name, letor):
    X, Xs = letor
    ens = load_model(DATA / f"{name}.model.txt", n_features=300)
    assert ens.network is not None and ens.n_trees == 0
    assert ens.input_cast == "float32"
    assert_ranklib_parity(ens.predict(X), name, f"{name} dense")
    assert_ranklib_parity(ens.predict(Xs), name, f"{name} sparse")


def test_shapes_and_provenance():
    rn = load_model(DATA / "ranknet.model.txt")
    assert rn.network.shape == [300, 10, 1] and rn.provenance["ranker"] == "RankNet"
    assert [layer.activation for layer in rn.network.layers] == ["sigmoid", "sigmoid"]
    ln = load_model(DATA / "listnet.model.txt")
    assert ln.network.shape == [300, 1] and ln.provenance["ranker"] == "ListNet"
    assert rn.summary()["network"] == [300, 10, 1]


def test_listnet_differences_are_exp_ulps(letor):
    """Where ListNet differs, RankLib's score is 1/(1+e') with e' one ulp from libm's exp(-s): the
    double sum is RankLib's, only the exponential rounds differently."""
    X, _ = letor
    ens = load_model(DATA / "listnet.model.txt", n_features=300)
    ref = ranklib_scores("listnet")
    got = ens.predict(X)
    layer = ens.network.layers[0]
    for r in np.flatnonzero(got != ref):
        s = 0.0
        for i, c in enumerate(ens.network.inputs.tolist()):
            s += float(np.float32(X[r, c])) * float(layer.weights[i, 0])
        s += float(layer.bias[0])
        e = math.exp(-s)
        assert 1.0 / (1.0 + e) == got[r]
        assert ref[r] in (1.0 / (1.0 + math.nextafter(e, math.inf)), 1.0 / (1.0 + math.nextafter(e, -math.inf)))


def test_lambdarank_is_ranknet_format(tmp_path, letor):
    X, _ = letor
    p = tmp_path / "lambdarank.txt"
    p.write_text((DATA / "ranknet.model.txt").read_text().replace("## RankNet", "## LambdaRank", 1))
    ens = load_model(p, n_features=300)
    assert ens.provenance["ranker"] == "LambdaRank"
    assert_ranklib_parity(ens.predict(X), "ranknet", "lambdarank")


def test_nan_reads_as_zero(letor):
    X, _ = letor
    ens = load_model(DATA / "ranknet.model.txt", n_features=300)
    cols = np.arange(0, 300, 4)
    Xz, Xn = X.copy(), X.copy()
    Xz[:, cols] = 0.0
    Xn[:, cols] = np.nan
    assert_bit_equal(ens.predict(Xn), ens.predict(Xz), "NaN = 0")
    assert not np.array_equal(ens.predict(Xz), ens.predict(X))


def test_json_round_trip(letor):
    X, _ = letor
    for name in NETWORKS:
        ens = load_model(DATA / f"{name}.model.txt", n_features=300)
        back = Ensemble.from_json(ens.to_json())
        assert back.digest() == ens.digest()
        assert_bit_equal(back.predict(X), ens.predict(X), name)
        assert back.network.shape == ens.network.shape
    # models without a network write no "network" key (their digests are unchanged)
    assert "network" not in load_model(DATA / "lambdamart.model.txt").to_dict()
    d = load_model(DATA / "listnet.model.txt").to_dict()
    d["network"]["version"] = 99
    with pytest.raises(ModelFormatError, match="network version 99"):
        Ensemble.from_dict(d)
    d["network"]["version"] = 1
    d["network"]["layers"][0]["weights"][5] = "nan"
    with pytest.raises((ModelFormatError, IRValidationError)):
        Ensemble.from_dict(d)


def test_ir_refuses_network_with_trees_or_bad_shapes():
    ens = load_model(DATA / "listnet.model.txt")
    ens.base_score = np.array([0.5])
    with pytest.raises(IRValidationError, match="no base score"):
        ens.validate()
    ens = load_model(DATA / "ranknet.model.txt")
    ens.network.layers[1].weights = np.zeros((9, 1))
    with pytest.raises(IRValidationError, match="layer 2"):
        ens.validate()
    ens = load_model(DATA / "ranknet.model.txt")
    ens.network.layers[0].weights[3, 7] = np.inf
    with pytest.raises(IRValidationError, match="layer 1 neuron 7: weight from source 3"):
        ens.validate()


# --------------------------------------------------------------------------- scalar reference
def write_model(kind: str, fids: list[int], hidden: list[int], lines: dict[tuple[int, int], list[float]]) -> str:
    """RankLib's model() layout, written from the format notes."""
    out = [f"## {kind}", "## Epochs = 3", f"## No. of features = {len(fids)}"]
    out.append(" ".join(map(str, fids)))
    out.append(str(len(hidden)))
    out += [str(h) for h in hidden]
    for (layer, neuron), ws in sorted(lines.items()):
        out.append(" ".join([str(layer), str(neuron), *(repr(w) for w in ws)]))
    return "\n".join(out) + "\n"


def reference_score(fids: list[int], hidden: list[int], lines: dict[tuple[int, int], list[float]], row: list[float]) -> float:
    """Scalar RankNet.eval from the notes: float inputs widened (NaN -> 0), per neuron a double sum
    over the previous layer in order, then the bias weight; sigmoid everywhere incl. the output."""
    F = len(fids)
    sizes = [F, *hidden, 1]
    out = []
    for fid in fids:
        v = float(np.float32(row[fid - 1]))
        out.append(0.0 if math.isnan(v) else v)
    bias = lines[(0, F)]
    b = 0
    for layer in range(1, len(sizes)):
        nxt = []
        for j in range(sizes[layer]):
            s = 0.0
            for i in range(sizes[layer - 1]):
                s += out[i] * lines[(layer - 1, i)][j]
            s += 1.0 * bias[b + j]
            try:
                e = math.exp(-s)
            except OverflowError:
                e = math.inf
            nxt.append(1.0 / (1.0 + e))
        b += sizes[layer]
        out = nxt
    return out[0]


weights = st.floats(-8, 8, allow_nan=False, width=64) | st.sampled_from([0.0, -0.0, 1e-300, 700.0, -700.0])
values = st.floats(-1e6, 1e6, width=32) | st.sampled_from([0.0, -0.0, math.nan, 1e-38, 3e38])


@st.composite
def networks(draw):
    F = draw(st.integers(1, 6))
    fids = draw(st.lists(st.integers(1, 8), min_size=F, max_size=F))
    hidden = draw(st.lists(st.integers(1, 5), max_size=3))
    sizes = [F, *hidden, 1]
    lines = {(0, i): draw(st.lists(weights, min_size=sizes[1], max_size=sizes[1])) for i in range(F)}
    nb = sum(sizes[1:])
    lines[(0, F)] = draw(st.lists(weights, min_size=nb, max_size=nb))
    for layer in range(1, len(hidden) + 1):
        for j in range(sizes[layer]):
            lines[(layer, j)] = draw(st.lists(weights, min_size=sizes[layer + 1], max_size=sizes[layer + 1]))
    rows = draw(st.lists(st.lists(values, min_size=8, max_size=8), min_size=1, max_size=6))
    kind = draw(st.sampled_from(["RankNet", "LambdaRank", "ListNet"]))
    return kind, fids, hidden, lines, rows


@settings(max_examples=150, deadline=None)
@given(networks())
def test_random_networks_match_scalar_reference(case):
    kind, fids, hidden, lines, rows = case
    ens = rl.loads(write_model(kind, fids, hidden, lines), n_features=8)
    X = np.array(rows, np.float64)
    want = [reference_score(fids, hidden, lines, r) for r in rows]
    assert_bit_equal(ens.predict(X), np.array(want), "random network")
    assert_bit_equal(Ensemble.from_json(ens.to_json()).predict(X), np.array(want), "after JSON")


# --------------------------------------------------------------------------- malformed files
GOOD = {(0, 0): [0.5, -0.25], (0, 1): [1.5, 2.0], (0, 2): [0.1, 0.2, 0.3], (1, 0): [1.0], (1, 1): [-1.0]}


def _load_text(tmp_path, text: str):
    p = tmp_path / "net.txt"
    p.write_text(text)
    return load_model(p, format="ranklib")


def test_small_network_loads(tmp_path):
    ens = _load_text(tmp_path, write_model("RankNet", [3, 1], [2], GOOD))
    assert ens.n_features == 3 and ens.network.shape == [2, 2, 1]
    assert ens.network.inputs.tolist() == [2, 0]
    assert ens.network.layers[0].bias.tolist() == [0.1, 0.2]
    assert ens.network.layers[1].bias.tolist() == [0.3]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update({(0, 1): [1.5]}), r"layer 0 neuron 1: expected 2 weights, found 1"),
        (lambda d: d.update({(1, 0): [1.0, 2.0]}), r"layer 1 neuron 0: expected 1 weights, found 2"),
        (lambda d: d.update({(0, 2): [0.1, 0.2]}), r"layer 0 neuron 2 \(the bias neuron\): expected 3 weights"),
        (lambda d: d.pop((1, 1)), r"needs 5 weight lines.*found 4"),
        (lambda d: d.update({(0, 1): [math.nan, 2.0]}), r"layer 0 neuron 1: weight 0 is 'NaN' \(not finite\)"),
        (lambda d: d.update({(1, 1): [math.inf]}), r"layer 1 neuron 1: weight 0 is 'Infinity' \(not finite\)"),
    ],
)
def test_malformed_weights_name_file_layer_and_neuron(tmp_path, mutate, match):
    d = {k: list(v) for k, v in GOOD.items()}
    mutate(d)
    text = write_model("RankNet", [3, 1], [2], d).replace("nan", "NaN").replace("inf", "Infinity")
    with pytest.raises(ModelFormatError, match=match) as ei:
        _load_text(tmp_path, text)
    assert "net.txt" in str(ei.value)


def test_malformed_layout(tmp_path):
    good = write_model("RankNet", [3, 1], [2], GOOD)
    cases = [
        (good.replace("\n1 0 1.0\n", "\n1 1 1.0\n", 1), "a second weight line"),
        (good.replace("\n1 0 1.0\n", "\n2 0 1.0\n", 1), "layer 2 neuron 0: the output layer has no out-links"),
        (good.replace("\n1 0 1.0\n", "\n1 5 1.0\n", 1), "no neuron 5 in layer 1"),
        (good.replace("\n3 1\n", "\n3 0\n", 1), "feature id 0 < 1"),
        (good.replace("\n3 1\n", "\n3  1\n", 1), "feature id '' is not an integer"),
        (good.replace("\n1\n2\n", "\n1\n0\n", 1), "hidden layer 1 has 0 neurons"),
        (good.replace("\n1\n2\n", "\n2\n2\n", 1), "size of hidden layer 2"),
        (good.replace("\n1\n2\n", "\n-1\n2\n", 1), "negative number of hidden layers"),
        ("## RankNet\n1 2\n", "needs a feature-id line and a hidden-layer count"),
        # declared sizes far beyond the file: refused from the line count, nothing allocated
        (good.replace("\n1\n2\n", "\n1\n2000000000\n", 1), "needs 2000000003 weight lines"),
        (good.replace("\n1\n2\n", "\n2000000000\n2\n", 1), "2000000000 hidden layers declared but only"),
        (good.replace("0 1 1.5 2.0", "0 1 1.5 x"), "layer 0 neuron 1: weight 1 'x' is not a number"),
    ]
    for text, match in cases:
        with pytest.raises(ModelFormatError, match=match) as ei:
            _load_text(tmp_path, text)
        assert "net.txt" in str(ei.value), match


# --------------------------------------------------------------------------- export and ES o19s
@pytest.mark.parametrize("name", NETWORKS)
def test_export_ranklib_round_trip(name, tmp_path, letor):
    from ltrcompile.exporters import export_model

    X, _ = letor
    ens = load_model(DATA / f"{name}.model.txt", n_features=300)
    text = export_model(ens, to="ranklib")
    assert text.splitlines()[0] == {"ranknet": "## RankNet", "listnet": "## ListNet"}[name]
    p = tmp_path / f"{name}.txt"
    p.write_text(text)
    back = load_model(p, n_features=300)
    assert back.network.shape == ens.network.shape
    for a, b in zip(back.network.layers, ens.network.layers, strict=True):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    assert_bit_equal(back.predict(X), ens.predict(X), f"{name} reloaded")
    assert_ranklib_parity(back.predict(X), name, f"{name} reloaded vs RankLib")
    # the lines RankLib's loader reads are the original file's, weight for weight
    orig = [ln for ln in (DATA / f"{name}.model.txt").read_text().splitlines() if ln and not ln.startswith("##")]
    ours = [ln for ln in text.splitlines() if ln and not ln.startswith("##")]
    assert len(orig) == len(ours)
    for a, b in zip(orig, ours, strict=True):
        assert [float(t) for t in a.split(" ")] == [float(t) for t in b.split(" ")]


def test_export_refusals():
    from ltrcompile.errors import UnsupportedModelError
    from ltrcompile.exporters import export_model

    ens = load_model(DATA / "ranknet.model.txt")
    with pytest.raises(UnsupportedModelError, match="neural network"):
        export_model(ens, to="es")
    with pytest.raises(UnsupportedModelError, match="neural network as model/linear"):
        export_model(ens, to="o19s", model_type="model/linear", exact=False)
    with pytest.raises(UnsupportedModelError, match="not 'lambdamart'"):
        export_model(ens, to="ranklib", ranker="lambdamart")
    ens.network.layers[1].activation = "identity"
    with pytest.raises(UnsupportedModelError, match="sigmoid"):
        export_model(ens, to="ranklib")


def test_o19s_model_ranklib_with_networks(letor):
    """The plugin runs RankLib's eval, then (float): model/ranklib definitions holding networks."""
    from ltrcompile.exporters import export_model

    X, _ = letor
    names = [f"f{i}" for i in range(300)]
    for name in NETWORKS:
        text = (DATA / f"{name}.model.txt").read_text()
        doc = {"model": {"name": name, "model": {"type": "model/ranklib", "definition": text}}}
        ens = load_model(doc, format="es-ltr", feature_set=names)
        assert ens.network is not None and ens.transform == "to_float32"
        want = ranklib_scores(name).astype(np.float32).astype(np.float64)
        got = ens.predict(X)
        assert np.abs(got - want).max() <= np.spacing(np.float32(1.0)), name
        if name == "ranknet":
            assert_bit_equal(got, want, "ranknet (float)")
        # written back as a _createmodel body and read again: same scores
        body = export_model(ens, to="o19s", name=name)
        assert body["model"]["model"]["type"] == "model/ranklib"
        back = load_model(body, format="es-ltr", feature_set=names)
        assert_bit_equal(back.predict(X), got, f"{name} o19s round trip")
        # feature normalizers compose: applied to the float feature before the network
        doc["model"]["model"]["feature_normalizers"] = {"f0": {"standard": {"mean": 0.5, "standard_deviation": 2.0}}}
        normed = load_model(doc, format="es-ltr", feature_set=names)
        Xn = X.copy()
        Xn[:, 0] = ((X[:, 0].astype(np.float32) - np.float32(0.5)) / np.float32(2.0)).astype(np.float64)
        assert_bit_equal(normed.predict(X), ens.predict(Xn), f"{name} normalized")
