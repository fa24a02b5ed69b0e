"""Cython backend: compile an IR ensemble into an importable native scorer.

``compile(ensemble)`` generates C for the model (straight-line trees for small and medium models,
node arrays plus one specialised traversal kernel for very large ones), wraps it in a small Cython
module, builds it with the system C compiler and returns a :class:`CompiledScorer`. Builds are
content-addressed and cached; see ``docs/backend.md``.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...ir import Ensemble
from .artifact import (
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    IR_FILE,
    LOG_FILE,
    MANIFEST,
    SRC_DIR,
    ArtifactError,
    IncompatibleArtifactError,
    cache_root,
    install,
    make_staging,
    module_name,
    platform_info,
    read_manifest,
    sha256_file,
    write_json,
)
from .scorer import CompiledScorer, load

if TYPE_CHECKING:
    from .build import BuildError
    from .codegen import CODEGEN_VERSION, STRATEGIES, Tuning
    from .toolchain import CompilerNotFoundError

# The code generator and the build machinery (with their imports) load on first use, so that
# loading and scoring a compiled artifact does not pay for them.
_LAZY = {
    "BuildError": "build",
    "CODEGEN_VERSION": "codegen",
    "STRATEGIES": "codegen",
    "Tuning": "codegen",
    "CompilerNotFoundError": "toolchain",
}


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{sub}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "CODEGEN_VERSION",
    "STRATEGIES",
    "ArtifactError",
    "BuildError",
    "CompiledScorer",
    "CompilerNotFoundError",
    "IncompatibleArtifactError",
    "Tuning",
    "cache_root",
    "compile",
    "load_compiled",
]


def load_compiled(path: str | os.PathLike[str]) -> CompiledScorer:
    """Load a compiled artifact directory written by :func:`compile`."""
    return load(path)


def _try_load(path: Path, module: str) -> CompiledScorer | None:
    try:
        m = read_manifest(path)
    except ArtifactError:
        return None
    if m.get("module") != module:
        return None
    try:
        return load(path)
    except ArtifactError:
        return None


def _versions() -> dict[str, str]:
    import Cython
    import numpy

    from ... import __version__

    return {"ltrcompile": __version__, "cython": Cython.__version__, "numpy": numpy.__version__}


def compile(  # noqa: A001 - the public name the package exports
    ensemble: Any,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    strategy: str = "auto",
    jobs: int | None = None,
    cache: bool = True,
    progress: bool = True,
    name: str | None = None,
    tuning: Tuning | None = None,
    isa: str | None = None,
) -> CompiledScorer:
    """Compile ``ensemble`` into a native scorer and load it.

    ``out_dir``: artifact directory (default: ``<cache>/<module>``, cache = ``$LTRCOMPILE_CACHE`` or
    ``~/.cache/ltrcompile``). ``strategy``: ``"auto"``, ``"ifelse"`` (straight-line trees) or
    ``"datadriven"`` (node arrays + one kernel; compile time nearly independent of model size).
    ``jobs``: parallel compiler processes (default: available cores). ``cache``: reuse an identical
    existing build. ``progress``: show progress on stderr. ``name``: a label stored in the manifest.
    ``isa``: ``"portable"`` (default: any CPU of the platform), ``"avx2"``, ``"avx512"`` or
    ``"native"`` (the best this CPU has); host builds keep the exactness flags and are refused at
    load time on a CPU without the instructions (see ``isa.py``). Overrides ``tuning.isa``.
    """
    from .build import BuildError, Progress, build_extension
    from .codegen import Tuning, choose_strategy, generate, generator_fingerprint, write_sources
    from .toolchain import toolchain

    if not isinstance(ensemble, Ensemble):
        from ...frontends import load_model

        ensemble = load_model(ensemble)
    ens: Ensemble = ensemble
    ens.validate()
    from dataclasses import replace

    from .isa import resolve

    strat = choose_strategy(ens, strategy)
    tune = tuning or Tuning()
    tune = replace(tune, isa=resolve(isa if isa is not None else tune.isa))
    tc = toolchain()
    ir_json = ens.to_json()
    ir_digest = ens.digest()  # what decides scores, not where the model came from
    fingerprint = generator_fingerprint()
    module = module_name(ir_digest, strat, tune.to_dict(), tc.to_dict(), fingerprint)
    default_target = cache_root() / module
    target = Path(out_dir) if out_dir is not None else default_target

    if cache:
        hit = _try_load(target, module)
        if hit is not None:
            return hit
        if out_dir is not None and default_target.resolve() != target.resolve():
            cached = _try_load(default_target, module)
            if cached is not None:
                staging = make_staging(target)
                shutil.rmtree(staging)
                shutil.copytree(default_target, staging)
                install(staging, target)
                return load(target)

    bar = Progress(progress, f"{module} ({strat}, {ens.n_trees} trees)")
    t_start = time.perf_counter()
    staging = make_staging(target)
    try:
        t = time.perf_counter()
        src = generate(
            ens,
            module,
            strat,
            ir_digest,
            tune,
            progress=lambda done, total: bar.update("generating code", done, total),
            incbin=tc.incbin,
        )
        build_dir = staging / SRC_DIR
        write_sources(src, build_dir)
        (staging / IR_FILE).write_text(ir_json, encoding="utf-8")
        codegen_s = time.perf_counter() - t
        so, times = build_extension(src, build_dir, tc, jobs=jobs, progress=bar)
        final_so = staging / so.name
        os.replace(so, final_so)
        os.replace(build_dir / "build.log", staging / LOG_FILE)
        for p in build_dir.glob("*.o"):
            p.unlink()
        manifest = _manifest(
            ens, module, strat, tune, tc, ir_digest, fingerprint, final_so, src, name,
            codegen_s, times, time.perf_counter() - t_start,
        )
        write_json(staging / MANIFEST, manifest)
        install(staging, target)
    except BuildError as exc:
        # keep the sources and build.log of a failed build for the bug report
        bar.close()
        raise BuildError(f"{exc}\n(generated sources and build.log kept in {staging / SRC_DIR})") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        bar.close()
        raise
    bar.close(f"built in {time.perf_counter() - t_start:.1f}s -> {target}")
    return load(target)


def _manifest(
    ens: Ensemble,
    module: str,
    strategy: str,
    tune: Tuning,
    tc: Any,
    ir_digest: str,
    fingerprint: str,
    so: Path,
    src: Any,
    name: str | None,
    codegen_s: float,
    times: dict[str, float],
    total_s: float,
) -> dict[str, Any]:
    from ...transforms import TRANSFORMS
    from .codegen import CODEGEN_VERSION
    from .isa import manifest_entry

    py = platform_info()
    return {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_VERSION,
        "name": name,
        "module": module,
        "extension": so.name,
        "extension_sha256": sha256_file(so),
        "extension_bytes": so.stat().st_size,
        "ir_digest": ir_digest,
        "ir_file": IR_FILE,
        "codegen_version": CODEGEN_VERSION,
        "generator_fingerprint": fingerprint,
        "strategy": strategy,
        "tuning": tune.to_dict(),
        "isa": manifest_entry(tune.isa),
        "compiler": tc.to_dict(),
        "python": py,
        "abi_tag": py["soabi"],
        "platform_tag": py["platform"],
        "host": {"system": platform.system(), "release": platform.release()},
        "versions": _versions(),
        "provenance": ens.provenance.to_dict(),
        "feature_names": ens.feature_names,
        "n_features": ens.n_features,
        "n_outputs": ens.n_outputs,
        "output_dim": TRANSFORMS[ens.transform].out_dim(ens.n_outputs),
        "n_trees": ens.n_trees,
        "n_nodes": ens.n_nodes,
        "transform": ens.transform,
        "transform_params": ens.transform_params,
        "input": ens.input_block(),
        "sources": sorted(src.files) + sorted(src.binaries) + ["ltrc_wrapper.pyx", "ltrc_wrapper.c"],
        "build_seconds": {"codegen": round(codegen_s, 3), **{k: round(v, 3) for k, v in times.items()}, "all": round(total_s, 3)},
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

