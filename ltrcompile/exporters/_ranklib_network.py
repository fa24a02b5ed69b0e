"""IR dense network -> RankLib RankNet / LambdaRank / ListNet model text (``RankNet.model()`` layout).

RankLib can express exactly: float32 inputs (``input_cast="float32"``) with NaN read as 0, sigmoid
on every layer, one output neuron, inputs that are feature columns (RankLib id = column + 1). The
weights are written with the shortest decimal ``Double.parseDouble`` reads back exactly, so the
reloaded model computes the same sums bit for bit.
"""

from __future__ import annotations

from ..frontends.ranklib import RANKER_NAMES, java_double_str
from ..ir import Ensemble
from ._common import Exactness

NETWORK_RANKERS = ("ranknet", "lambdarank", "listnet")


def export_network(ens: Ensemble, ex: Exactness, ranker: str) -> str:
    """The model text; ``ranker``: ``auto`` (the source's, else RankNet) or one of NETWORK_RANKERS."""
    net = ens.network
    assert net is not None
    if ens.n_outputs != 1:
        raise ex.refuse(f"a network with {ens.n_outputs} outputs (RankLib networks have one output neuron)", field="network")
    for li, layer in enumerate(net.layers, start=1):
        if layer.activation != "sigmoid":
            raise ex.refuse(f"layer {li} activation {layer.activation!r} (RankLib neurons are sigmoid units)", field="network")
    ex.need(net.nan_input == "zero", "NaN inputs propagate in the IR (RankLib reads NaN features as 0)", field="network.nan_input")
    ex.need(ens.input_cast == "float32", "float64 inputs (RankLib parses features as float32)", field="input_cast")
    ex.need(ens.input_zero_band == 0.0 and not ens.infinite_as_missing, "input zero band / infinite-as-missing", field="input_cast")
    if ranker == "auto":
        src = str(ens.provenance.get("ranker") or ens.provenance.get("ranklib_ranker") or "RankNet")
        kind = {v: k for k, v in RANKER_NAMES.items()}.get(src, "ranknet")
        ranker = kind if kind in NETWORK_RANKERS else "ranknet"
    if ranker not in NETWORK_RANKERS:
        raise ex.refuse(f"a network is written as one of {NETWORK_RANKERS}, not {ranker!r}", field="ranker")
    hidden = [layer.n_out for layer in net.layers[:-1]]
    if ranker == "listnet" and hidden:
        ranker = "ranknet"  # ListNet writes no hidden layers; RankNet's loader reads the same weights
    name = RANKER_NAMES[ranker]
    F = int(net.inputs.size)
    out = [f"## {name}", f"## No. of features = {F}"]
    if ranker != "listnet":
        out.append(f"## No. of hidden layers = {len(hidden)}")
        out += [f"## Layer {i}: {n} neurons" for i, n in enumerate(hidden, start=1)]
    out.append(" ".join(str(int(c) + 1) for c in net.inputs.tolist()))
    out.append(str(len(hidden)))
    out += [str(n) for n in hidden]

    def row(layer: int, neuron: int, ws: list[float]) -> str:
        return " ".join([str(layer), str(neuron), *(java_double_str(w) for w in ws)])

    first = net.layers[0]
    out += [row(0, i, first.weights[i].tolist()) for i in range(F)]
    out.append(row(0, F, [w for layer in net.layers for w in layer.bias.tolist()]))
    for li, layer in enumerate(net.layers[1:], start=1):
        out += [row(li, j, layer.weights[j].tolist()) for j in range(layer.n_in)]
    return "\n".join(out) + "\n"
