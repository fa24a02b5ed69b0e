"""Dense feed-forward networks in the IR (RankLib RankNet, LambdaRank and ListNet).

A :class:`Network` is a stack of fully connected layers over chosen model-matrix columns. The one
arithmetic rule (:func:`forward`) is RankLib's ``Neuron.computeOutput`` / ``LogiFunction``
(``shared/docs/formats-ranklib-sklearn-es.md`` section 1.8):

* the input neurons read the model matrix (so the IR's input cast -- float32 for RankLib, then
  widened to double -- and normalizers apply first); NaN reads as 0.0 when ``nan_input="zero"``
  (RankLib's ``getFeatureValue``);
* every neuron of a layer sums in double, in link-creation order: ``s = 0.0``, then
  ``s = s + a[i] * w[i, j]`` for the previous layer's neurons ``i = 0, 1, ...``, then ``s = s + b[j]``
  (the bias neuron outputs 1.0 and is wired last);
* ``sigmoid`` is ``1.0 / (1.0 + exp(-s))`` with the C library's ``exp`` (Java's ``Math.exp`` may
  differ from it by one ulp on some arguments; see ``docs/formats.md``); ``identity`` is ``s``.

The network's last layer gives the model's raw outputs; the IR's output transform applies after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import mathlib
from .errors import IRValidationError

NETWORK_VERSION = 1
ACTIVATIONS = ("sigmoid", "identity")
NAN_INPUTS = ("zero", "propagate")


@dataclass(eq=False)
class DenseLayer:
    """One fully connected layer: ``weights[i, j]`` links source ``i`` to neuron ``j``; ``bias[j]``
    is added after all sources."""

    weights: np.ndarray  # (n_in, n_out) float64
    bias: np.ndarray  # (n_out,) float64
    activation: str = "sigmoid"

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[1])


@dataclass(eq=False)
class Network:
    """Input columns plus layers; the last layer's width is the model's number of raw outputs."""

    inputs: np.ndarray  # int32 (n_inputs,): the model-matrix column each input neuron reads
    layers: list[DenseLayer]
    nan_input: str = "zero"

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out if self.layers else 0

    @property
    def shape(self) -> list[int]:
        """Neurons per layer, input layer first (bias neurons not counted)."""
        return [int(self.inputs.size)] + [layer.n_out for layer in self.layers]

    # ------------------------------------------------------------------ invariants
    def validate(self, n_features: int, n_outputs: int) -> None:
        """Shapes chain, weights finite, inputs in range; errors name the layer and neuron."""
        if not isinstance(self.inputs, np.ndarray) or self.inputs.ndim != 1:
            raise IRValidationError("network inputs must be a 1-D int array", field="network.inputs")
        bad = np.flatnonzero((self.inputs < 0) | (self.inputs >= n_features))
        if bad.size:
            raise IRValidationError(
                f"network input neuron {int(bad[0])} reads column {int(self.inputs[bad[0]])} outside "
                f"[0, {n_features})",
                field="network.inputs",
            )
        if self.nan_input not in NAN_INPUTS:
            raise IRValidationError(f"unknown nan_input {self.nan_input!r}", field="network.nan_input")
        if not self.layers:
            raise IRValidationError("a network needs at least one layer", field="network.layers")
        width = int(self.inputs.size)
        for li, layer in enumerate(self.layers, start=1):
            where = f"network.layers[{li - 1}]"
            w, b = layer.weights, layer.bias
            if not isinstance(w, np.ndarray) or w.ndim != 2 or w.shape[0] != width or w.dtype != np.float64:
                raise IRValidationError(
                    f"layer {li}: weights must be a float64 ({width}, n_out) matrix; got "
                    f"{getattr(w, 'shape', None)}",
                    field=f"{where}.weights",
                )
            if w.shape[1] < 1:
                raise IRValidationError(f"layer {li} has no neurons", field=f"{where}.weights")
            if not isinstance(b, np.ndarray) or b.shape != (w.shape[1],) or b.dtype != np.float64:
                raise IRValidationError(
                    f"layer {li}: bias must be a float64 vector of {w.shape[1]} values", field=f"{where}.bias"
                )
            if layer.activation not in ACTIVATIONS:
                raise IRValidationError(
                    f"layer {li}: unknown activation {layer.activation!r}", field=f"{where}.activation"
                )
            nf = np.argwhere(~np.isfinite(w))
            if nf.size:
                i, j = (int(v) for v in nf[0])
                raise IRValidationError(
                    f"layer {li} neuron {j}: weight from source {i} is not finite", field=f"{where}.weights"
                )
            nf = np.flatnonzero(~np.isfinite(b))
            if nf.size:
                raise IRValidationError(
                    f"layer {li} neuron {int(nf[0])}: bias weight is not finite", field=f"{where}.bias"
                )
            width = w.shape[1]
        if width != n_outputs:
            raise IRValidationError(
                f"the network's last layer has {width} neurons but the model has {n_outputs} outputs",
                field="network.layers",
            )

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": NETWORK_VERSION,
            "inputs": self.inputs.tolist(),
            "nan_input": self.nan_input,
            "layers": [
                {
                    "activation": layer.activation,
                    "n_in": layer.n_in,
                    "n_out": layer.n_out,
                    "weights": layer.weights.ravel().tolist(),  # row-major: source-major
                    "bias": layer.bias.tolist(),
                }
                for layer in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Network:
        if not isinstance(d, dict):
            raise ValueError("network must be an object")
        if d.get("version") != NETWORK_VERSION:
            raise ValueError(f"network version {d.get('version')!r} is not supported (this ltrcompile reads {NETWORK_VERSION})")
        layers = []
        for ld in d["layers"]:
            n_in, n_out = int(ld["n_in"]), int(ld["n_out"])
            w = np.asarray(ld["weights"], np.float64)
            if w.size != n_in * n_out:
                raise ValueError(f"layer has {w.size} weights for {n_in} x {n_out}")
            layers.append(
                DenseLayer(w.reshape(n_in, n_out), np.asarray(ld["bias"], np.float64).reshape(-1), str(ld["activation"]))
            )
        return cls(np.asarray(d["inputs"], np.int32).reshape(-1), layers, str(d.get("nan_input", "zero")))


# ---------------------------------------------------------------------- the arithmetic
def activate(name: str, s: np.ndarray) -> np.ndarray:
    """A layer's activation on its sums (RankLib ``LogiFunction``: ``1/(1+exp(-s))`` in double)."""
    if name == "identity":
        return s
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + mathlib.exp(-s))


def input_values(net: Network, M: np.ndarray) -> np.ndarray:
    """What the input neurons output: the model-matrix columns, NaN read as 0 (RankLib)."""
    a = M[:, net.inputs.astype(np.int64)]
    if net.nan_input == "zero":
        a = np.where(np.isnan(a), 0.0, a)
    return np.ascontiguousarray(a, np.float64)


def forward(net: Network, M: np.ndarray) -> np.ndarray:
    """Raw outputs ``(n_rows, n_outputs)`` for a model matrix: per neuron a double sum over the
    sources in order, bias last, then the activation; vectorised over rows (each row's sums run
    in exactly RankLib's order)."""
    a = input_values(net, M)
    n = a.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in net.layers:
            s = np.zeros((n, layer.n_out), np.float64)
            w = layer.weights
            for i in range(layer.n_in):
                s += a[:, i, None] * w[i][None, :]
            s += layer.bias[None, :]
            a = activate(layer.activation, s)
    return a
