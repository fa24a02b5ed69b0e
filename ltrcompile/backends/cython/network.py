"""Generate the sources of a compiled dense network (IR ``Ensemble.network``).

The C entry points are the ones every compiled model provides (``ltrc_api.h``), so the shared Cython
wrapper, the artifact format and :class:`CompiledScorer` are unchanged. ``templates/ltrc_network.c.j2``
holds the kernel: row blocks of ``Tuning.row_block`` rows, feature-major scratch, sums in the IR's
order (see :func:`ltrcompile.network.forward`). Only numbers reach the generated source.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir import Ensemble
from ...transforms import TRANSFORMS
from .literals import c_double, c_float_array, c_int_array
from .transforms_c import transform_body

STRATEGY = "network"


def generate_network(ens: Ensemble, module: str, ir_digest: str, tuning: Any) -> Any:
    """All sources for the network model ``ens`` as module ``module`` (a ``codegen.Sources``)."""
    from .codegen import CODEGEN_VERSION, Sources, _env

    net = ens.network
    assert net is not None
    env = _env()
    src = Sources(module=module, strategy=STRATEGY)
    K = ens.n_outputs
    layers = net.layers
    woff = np.cumsum([0] + [layer.weights.size for layer in layers])[:-1]
    boff = np.cumsum([0] + [layer.n_out for layer in layers])[:-1]
    weights = np.concatenate([layer.weights.ravel() for layer in layers])
    bias = np.concatenate([layer.bias for layer in layers])
    ctx = {
        "codegen_version": CODEGEN_VERSION,
        "module": module,
        "shape": "x".join(map(str, net.shape)),
        "n_features": ens.n_features,
        "K": K,
        "out_dim": TRANSFORMS[ens.transform].out_dim(K),
        "row_block": int(tuning.row_block),
        "n_inputs": int(net.inputs.size),
        "n_layers": len(layers),
        "max_width": max(net.shape),
        "inputs": c_int_array(net.inputs),
        "nin": ", ".join(str(layer.n_in) for layer in layers),
        "nout": ", ".join(str(layer.n_out) for layer in layers),
        "sig": ", ".join("1" if layer.activation == "sigmoid" else "0" for layer in layers),
        "woff": ", ".join(str(int(v)) for v in woff),
        "boff": ", ".join(str(int(v)) for v in boff),
        "n_weights": int(weights.size),
        "weights": c_float_array(weights, "double"),
        "n_bias": int(bias.size),
        "bias": c_float_array(bias, "double"),
        "transform_body": transform_body(ens.transform, K, dict(ens.transform_params)),
        "cast_f32": ens.input_cast == "float32",
        "zero_band": ens.input_zero_band > 0,
        "band_k": c_double(ens.input_zero_band),
        "inf_missing": bool(ens.infinite_as_missing),
        "nan_zero": net.nan_input == "zero",
        "parallel_min_rows": int(tuning.parallel_min_rows),
        "ir_digest": ir_digest,
        "int_cast_f32": ens.int_input_cast == "float32",
    }
    src.files["ltrc_api.h"] = env.get_template("ltrc_api.h.j2").render(**ctx)
    src.files["ltrc_network.c"] = env.get_template("ltrc_network.c.j2").render(**ctx)
    src.units.append("ltrc_network.c")
    src.unit_weights["ltrc_network.c"] = int(weights.size) // 64 + 1
    src.unit_flags["ltrc_network.c"] = ["-O3"]  # the row loops vectorise (element-wise: same bits)
    src.files["ltrc_init.c"] = env.get_template("ltrc_init.c.j2").render(**ctx)
    src.units.append("ltrc_init.c")
    src.unit_weights["ltrc_init.c"] = 1
    return src
