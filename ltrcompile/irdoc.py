"""Reading an ltrcompile IR document field by field (:meth:`ltrcompile.ir.Ensemble.from_dict`).

Every value is checked for its JSON type and range before it is used, and a wrong one is a
:class:`~ltrcompile.errors.ModelFormatError` naming the file and the field (``nodes.left``,
``model.n_outputs``...). Nothing here catches ``KeyError``/``TypeError`` wholesale: an exception
other than a typed error from reading a document is a bug in ltrcompile (CLI exit 70, please report),
never reported as a malformed file.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ModelFormatError

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class DocReader:
    """Typed access to one IR document; ``path`` is named in every error."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def err(self, msg: str, field: str) -> ModelFormatError:
        return ModelFormatError(msg, path=self.path, field=field)

    def obj(self, parent: dict[str, Any], key: str, field: str, *, optional: bool = False) -> dict[str, Any] | None:
        if key not in parent or (optional and parent[key] is None):
            if optional:
                return None
            raise self.err("required key is missing", field)
        v = parent[key]
        if not isinstance(v, dict):
            raise self.err(f"must be an object, got JSON type {type(v).__name__}", field)
        return v

    def value(self, parent: dict[str, Any], key: str, field: str) -> Any:
        if key not in parent:
            raise self.err("required key is missing", field)
        return parent[key]

    def integer(self, parent: dict[str, Any], key: str, field: str, lo: int, hi: int) -> int:
        v = self.value(parent, key, field)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.err(f"must be an integer in [{lo}, {hi}], got {_short(v)}", field)
        return v

    def number(self, v: Any, field: str) -> float:
        """A JSON number, or ``"nan"``/``"inf"``/``"-inf"`` (how the IR writes non-finite floats)."""
        if isinstance(v, str) and v in _NONFINITE:
            return _NONFINITE[v]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.err(f"must be a number, got {_short(v)}", field)
        try:
            return float(v)
        except OverflowError:  # an integer beyond float64
            raise self.err(f"number {_short(v)} is out of float64 range", field) from None

    def boolean(self, parent: dict[str, Any], key: str, field: str, default: bool) -> bool:
        v = parent.get(key, default)
        if not isinstance(v, bool):
            raise self.err(f"must be true or false, got {_short(v)}", field)
        return v

    def array(self, v: Any, dtype: Any, field: str) -> np.ndarray:
        """A flat JSON list of numbers -> ``dtype`` array; integers must fit ``dtype``."""
        if not isinstance(v, list):
            raise self.err(f"must be a list, got JSON type {type(v).__name__}", field)
        dt = np.dtype(dtype)
        if dt.kind == "f":
            return np.array([self.number(x, field) for x in v], dtype=dt)
        info = np.iinfo(dt)
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                raise self.err(f"must be a list of integers, got {_short(x)}", field)
            if not info.min <= x <= info.max:
                raise self.err(f"integer {_short(x)} does not fit {dt.name}", field)
        return np.array(v, dtype=dt).reshape(-1)

    def key_array(self, parent: dict[str, Any], key: str, dtype: Any, field: str) -> np.ndarray:
        return self.array(self.value(parent, key, field), dtype, field)

    def string(self, parent: dict[str, Any], key: str, field: str, default: str | None = None) -> str:
        v = parent[key] if key in parent else default
        if v is None:
            raise self.err("required key is missing", field)
        if not isinstance(v, str):
            raise self.err(f"must be a string, got {_short(v)}", field)
        return v

    def feature_categories(self, v: Any, field: str) -> dict[int, list[Any]] | None:
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self.err("must be an object", field)
        out: dict[int, list[Any]] = {}
        for k, labels in v.items():
            if not (k.isascii() and k.isdigit()) or len(k) > 10:
                raise self.err(f"key {_short(k)} is not a feature index", field)
            if not isinstance(labels, list):
                raise self.err(f"feature {k}: labels must be a list", field)
            out[int(k)] = labels
        return out

    def provenance(self, v: Any, field: str) -> dict[str, Any] | None:
        """The provenance object with the JSON types its typed fields need."""
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self.err("must be an object", field)
        rng = v.get("iteration_range")
        if rng is not None and not (
            isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in rng)
        ):
            raise self.err(f"iteration_range must be [begin, end], got {_short(rng)}", field)
        for key in ("total_iterations", "best_iteration", "best_rounds"):
            x = v.get(key)
            if x is not None and (isinstance(x, bool) or not isinstance(x, int)):
                raise self.err(f"{key} must be an integer or null, got {_short(x)}", field)
        notes = v.get("notes")
        if notes is not None and not isinstance(notes, list):
            raise self.err("notes must be a list", field)
        extra = v.get("extra")
        if extra is not None and not isinstance(extra, dict):
            raise self.err("extra must be an object", field)
        return v

    def network(self, v: Any, field: str = "network") -> dict[str, Any]:
        """The JSON shape :meth:`ltrcompile.network.Network.from_dict` reads."""
        if not isinstance(v, dict):
            raise self.err("must be an object", field)
        layers = self.value(v, "layers", field + ".layers")
        if not isinstance(layers, list):
            raise self.err("must be a list", field + ".layers")
        for i, ld in enumerate(layers):
            f = f"{field}.layers[{i}]"
            if not isinstance(ld, dict):
                raise self.err("must be an object", f)
            self.integer(ld, "n_in", f + ".n_in", 0, 2**31 - 1)
            self.integer(ld, "n_out", f + ".n_out", 0, 2**31 - 1)
            self.key_array(ld, "weights", np.float64, f + ".weights")
            self.key_array(ld, "bias", np.float64, f + ".bias")
            self.string(ld, "activation", f + ".activation")
        self.key_array(v, "inputs", np.int32, field + ".inputs")
        self.string(v, "nan_input", field + ".nan_input", default="zero")
        return v


def _short(v: Any) -> str:
    if isinstance(v, int) and v.bit_length() > 200:
        return f"<an integer of {v.bit_length()} bits>"
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."
