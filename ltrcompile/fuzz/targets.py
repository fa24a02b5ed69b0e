"""What the fuzzer feeds: every frontend format, and the service's request parsing.

A target is a name, a mutation kind (text/json/binary), the directory of its valid seed files and a
function run in the sandboxed child. Model targets load the mutated bytes as a file with
:func:`ltrcompile.frontends.load_model` and, when that succeeds, score two rows (zeros, NaN) with the
interpreter, so a model that loads but cannot be used is found too. The service target runs a body
through the functions the HTTP handlers call (strict JSON, feature-set documents, ``/score`` vectors,
name->value rows and binary matrices, ``/rescore`` hits and parameters).

Typed = an :class:`~ltrcompile.errors.LtrCompileError` whose CLI exit code is not 70 (internal), or
for the service an ``ApiError`` with a 4xx status; everything else is untyped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SEEDS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "fuzz" / "seeds"
#: interpreter scoring is skipped for wider models (the load itself is what is under test)
MAX_SCORED_FEATURES = 1 << 16


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # mutation weights: text | json | binary
    run: Callable[[bytes], Any]
    is_typed: Callable[[BaseException], bool]

    def seeds(self, root: Path = SEEDS_DIR) -> list[bytes]:
        d = root / self.name
        return [p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()] if d.is_dir() else []


def typed_model_error(exc: BaseException) -> bool:
    from ..cli import EXIT_INTERNAL, exit_code_for
    from ..errors import LtrCompileError

    return isinstance(exc, LtrCompileError) and exit_code_for(exc) != EXIT_INTERNAL


def typed_service_error(exc: BaseException) -> bool:
    from ..service.app import ApiError

    if isinstance(exc, ApiError):
        return 400 <= exc.status < 500
    return typed_model_error(exc)


_TMP: list[str] = []


def _scratch() -> str:
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="ltrc-fuzz-"))
    return _TMP[0]


def _model_runner(fmt: str, suffix: str, **options: Any) -> Callable[[bytes], Any]:
    def run(data: bytes) -> Any:
        from ..frontends import load_model

        path = os.path.join(_scratch(), f"case-{os.getpid()}{suffix}")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            ens = load_model(path, format=fmt, **options)
        finally:
            os.unlink(path)
        if ens.n_features <= MAX_SCORED_FEATURES:
            X = np.zeros((2, ens.n_features))
            X[1] = np.nan
            with np.errstate(all="ignore"):
                ens.predict(X)
        return ens

    return run


def _pickle_runner(data: bytes) -> Any:
    """The unpickling child's own code, run here: the fuzz sandbox is already a contained child
    (a fresh interpreter per case would cost seconds); the isolated path is tested in the suite."""
    from ..frontends import sklearn as sk

    path = os.path.join(_scratch(), f"case-{os.getpid()}.joblib")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        d, fitted, loaded_with = sk.load_pickle_here(path)
        ens = sk._finish_pickle(d, fitted, loaded_with, path)
    finally:
        os.unlink(path)
    if ens.n_features <= MAX_SCORED_FEATURES:
        X = np.zeros((2, ens.n_features))
        X[1] = np.nan
        with np.errstate(all="ignore"):
            ens.predict(X)
    return ens


_SERVICE_STATE: dict[str, Any] = {}


def _service_parsers() -> dict[str, Any]:
    """A feature set of three features and a Rescorer over a 3-feature stump (built once)."""
    if not _SERVICE_STATE:
        from ..ir import Ensemble, TreeArrays
        from ..rescore import FeatureSet, Rescorer

        fs = FeatureSet.from_dict({"name": "fs", "features": [{"name": "a"}, {"name": "b", "default": 0.5}, "c"]})
        ta = TreeArrays.empty(3)
        ta.feature[0], ta.threshold[0], ta.left[0], ta.right[0] = 1, 0.25, 1, 2
        ta.leaf_value[1:, 0] = [-1.0, 2.0]
        ta.leaf_id[1:] = [1, 2]
        ens = Ensemble.from_trees([ta], n_features=3, feature_names=["a", "b", "c"])
        _SERVICE_STATE["rescorer"] = Rescorer.for_model(ens, ens, fs)
    return _SERVICE_STATE


def _service_run(data: bytes) -> Any:
    """One body through every parser an endpoint would use; typed errors of a path that does not
    apply are expected, an untyped error on any path is a finding."""
    from ..rescore import FeatureSet, RescoreParams
    from ..service.app import ApiError, loads

    st = _service_parsers()
    rs = st["rescorer"]
    body = loads(data)
    paths: list[Callable[[], Any]] = [lambda: FeatureSet.from_dict(body, None)]
    if isinstance(body, dict):
        if "feature_matrix" in body and "rows" in body:
            n = body["rows"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ApiError(400, "'rows' must be an integer >= 0")
            paths.append(lambda: rs.predict(rs.parser.binary_matrix(body["feature_matrix"], n)))
        if isinstance(body.get("features"), list):
            paths.append(lambda: rs.score_features(body["features"]))
        hits = body.get("hits")
        params = {k: body[k] for k in ("window_size", "query_weight", "rescore_query_weight", "score_mode") if k in body}
        if isinstance(hits, dict):
            paths.append(lambda: rs.rescore_hits(rs.parser.es_response(body), RescoreParams.parse(params)))
        elif isinstance(hits, list):
            paths.append(
                lambda: rs.rescore_hits(
                    rs.parser.native(hits, need_scores=True, feature_matrix=body.get("feature_matrix")),
                    RescoreParams.parse(params),
                )
            )
    first_typed: BaseException | None = None
    ok = False
    for p in paths:
        try:
            with np.errstate(all="ignore"):
                p()
            ok = True
        except BaseException as exc:  # noqa: BLE001
            if not typed_service_error(exc):
                raise
            first_typed = first_typed or exc
    if not ok and first_typed is not None:
        raise first_typed
    return body


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("xgboost-json", "json", _model_runner("xgboost-json", ".json"), typed_model_error),
        Target("xgboost-ubj", "binary", _model_runner("xgboost-ubj", ".ubj"), typed_model_error),
        Target("xgboost-dump", "json", _model_runner("xgboost-dump", ".json"), typed_model_error),
        Target("lightgbm-text", "text", _model_runner("lightgbm-text", ".txt"), typed_model_error),
        Target("lightgbm-json", "json", _model_runner("lightgbm-json", ".json"), typed_model_error),
        Target("ranklib", "text", _model_runner("ranklib", ".txt"), typed_model_error),
        Target("es-ltr", "json", _model_runner("es-ltr", ".json"), typed_model_error),
        Target("es-native", "json", _model_runner("es-native", ".json"), typed_model_error),
        Target("sklearn-pickle", "binary", _pickle_runner, typed_model_error),
        Target("ltrcompile-ir", "json", _model_runner("ltrcompile-ir", ".json"), typed_model_error),
        Target("service-request", "json", _service_run, typed_service_error),
    )
}
