"""RankLib RankNet / LambdaRank / ListNet model text -> IR dense network.

Layout (``RankNet.loadFromString``, ``model()``; ``shared/docs/formats-ranklib-sklearn-es.md`` 1.8):
lines are trimmed, blank lines and lines starting with ``##`` skipped; then (1) the feature ids,
single-space separated (input neuron order); (2) the number of hidden layers H; (3) H lines with each
hidden layer's size; then one line ``layer neuron w1 w2 ...`` per neuron of every layer but the
output layer: the weights of its out-links in wiring order (``RankNet.wire``):

* input neuron i (layer 0, 0 <= i < F) -> every neuron of layer 1;
* hidden neuron j of layer l -> every neuron of layer l+1;
* the bias neuron (layer 0, index F) -> every neuron of layer 1, then of layer 2, ..., the output.

Java fills missing lines with random initial weights and ignores extra weights; both are refused
here, as are duplicate lines, non-finite weights and layers without neurons, with the file, layer and
neuron named. The weight lists are checked against the declared shape before any matrix is built, so
memory stays proportional to the file.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..network import DenseLayer, Network


def parse_network(text: str, src: Any) -> tuple[Network, list[int]]:
    """(network with input columns = feature id - 1, the feature ids in input order).

    ``src`` makes the errors (``src.err(message, field=...)``: a ModelFormatError naming the file).
    ListNet writes 0 hidden layers but loads hidden layers like RankNet does; so do we.
    """
    from .ranklib import _java_trim, _lines, java_double, java_int

    body = []
    for no, raw in enumerate(_lines(text), start=1):
        s = _java_trim(raw)
        if not s or s.startswith("##"):
            continue
        body.append((no, s))
    if len(body) < 2:
        raise src.err("a neural RankLib model needs a feature-id line and a hidden-layer count", field="layers")

    no, line = body[0]
    feats: list[int] = []
    for k, tok in enumerate(line.split(" ")):
        try:
            fid = java_int(tok)
        except ValueError:
            raise src.err(f"line {no}: input {k}: feature id {tok[:30]!r} is not an integer", field="features") from None
        if fid < 1:
            raise src.err(f"line {no}: input {k}: feature id {fid} < 1 (RankLib ids start at 1)", field="features")
        feats.append(fid)
    F = len(feats)

    no, line = body[1]
    try:
        H = java_int(line)
    except ValueError:
        raise src.err(f"line {no}: number of hidden layers {line[:30]!r} is not an integer", field="layers") from None
    if H < 0:
        raise src.err(f"line {no}: negative number of hidden layers {H}", field="layers")
    if len(body) < 2 + H:
        raise src.err(f"{H} hidden layers declared but only {len(body) - 2} size lines follow", field="layers")
    sizes: list[int] = []
    for h in range(H):
        no, line = body[2 + h]
        try:
            n = java_int(line)
        except ValueError:
            raise src.err(f"line {no}: size of hidden layer {h + 1} {line[:30]!r} is not an integer", field="layers") from None
        if n < 1:
            raise src.err(f"line {no}: hidden layer {h + 1} has {n} neurons (at least 1 needed)", field="layers")
        sizes.append(n)

    width = [F, *sizes, 1]  # neurons per layer (bias not counted); the last is the output
    lines_left = body[2 + H :]
    n_lines = F + 1 + sum(sizes)  # checked before anything is sized by the declared layers
    if len(lines_left) != n_lines:
        raise src.err(
            f"the network {'x'.join(map(str, width))} (plus the bias neuron) needs {n_lines} weight "
            f"lines, one per neuron of layers 0..{H}; found {len(lines_left)}",
            field="weights",
        )
    # expected out-link counts per (layer, neuron): layer 0 has the F inputs plus the bias neuron
    expected: dict[tuple[int, int], int] = {}
    for i in range(F):
        expected[(0, i)] = width[1]
    expected[(0, F)] = sum(width[1:])
    for li in range(1, H + 1):
        for j in range(width[li]):
            expected[(li, j)] = width[li + 1]

    got: dict[tuple[int, int], list[float]] = {}
    for no, line in lines_left:
        toks = line.split(" ")
        if len(toks) < 2:
            raise src.err(f"line {no}: expected 'layer neuron w1 w2 ...'", field="weights")
        try:
            li, j = java_int(toks[0]), java_int(toks[1])
        except ValueError:
            raise src.err(f"line {no}: layer/neuron index {' '.join(toks[:2])[:40]!r} is not an integer", field="weights") from None
        if (li, j) not in expected:
            what = "the output layer has no out-links" if li == H + 1 else f"no neuron {j} in layer {li}"
            raise src.err(f"line {no}: layer {li} neuron {j}: {what}", field="weights")
        if (li, j) in got:
            raise src.err(f"line {no}: layer {li} neuron {j}: a second weight line for this neuron", field="weights")
        want = expected[(li, j)]
        if len(toks) - 2 != want:
            bias = " (the bias neuron)" if (li, j) == (0, F) else ""
            raise src.err(
                f"line {no}: layer {li} neuron {j}{bias}: expected {want} weights, found {len(toks) - 2}",
                field="weights",
            )
        ws = []
        for k, tok in enumerate(toks[2:]):
            try:
                w = java_double(tok)
            except ValueError:
                raise src.err(f"line {no}: layer {li} neuron {j}: weight {k} {tok[:30]!r} is not a number", field="weights") from None
            if not math.isfinite(w):
                raise src.err(f"line {no}: layer {li} neuron {j}: weight {k} is {tok[:30]!r} (not finite)", field="weights")
            ws.append(w)
        got[(li, j)] = ws

    layers = []
    bias = np.asarray(got[(0, F)], np.float64)
    pos = 0
    for li in range(1, H + 2):
        n_in, n_out = width[li - 1], width[li]
        w = np.empty((n_in, n_out), np.float64)
        for i in range(n_in):
            w[i] = got[(li - 1, i)]
        layers.append(DenseLayer(w, bias[pos : pos + n_out].copy(), "sigmoid"))
        pos += n_out
    net = Network(np.asarray(feats, np.int32) - 1, layers, nan_input="zero")
    return net, feats
