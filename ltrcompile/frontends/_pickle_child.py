"""Unpickle a scikit-learn model in a child process with memory and time limits.

Unpickling runs code from the file, and a corrupt pickle can segfault the interpreter or allocate
without bound. The parent (:func:`unpickle_isolated`) starts ``python -m
ltrcompile.frontends._pickle_child FILE OUTDIR``; the child imports scikit-learn, caps its address
space (``RLIMIT_AS``: its size after the imports plus the budget) and CPU time, unpickles and
describes the estimator (:func:`ltrcompile.frontends.sklearn.load_pickle_here`), and writes the
description with ``numpy.savez`` (no object arrays, read back with ``allow_pickle=False``) plus a
JSON status. Whatever happens to the child, the parent raises a typed error naming the file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LtrCompileError, ModelFormatError, UnsupportedModelError

_ERRORS = {"ModelFormatError": ModelFormatError, "UnsupportedModelError": UnsupportedModelError}
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def memory_budget_mb(file_bytes: int) -> int:
    """Address space the child may add after its imports: 1 GiB plus 32 bytes per file byte."""
    env = os.environ.get("LTRCOMPILE_PICKLE_MEMORY_MB")
    return int(env) if env else 1024 + (32 * file_bytes) // (1 << 20)


def timeout_s() -> float:
    return float(os.environ.get("LTRCOMPILE_PICKLE_TIMEOUT_S", "120"))


def unpickle_isolated(path: str) -> tuple[dict[str, Any], str | None, str]:
    """(describe dict, version that fitted it or None, scikit-learn version that read it)."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ModelFormatError(f"cannot read the model file: {exc.strerror or exc}", path=path) from exc
    budget = memory_budget_mb(size)
    limit = timeout_s()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    with tempfile.TemporaryDirectory(prefix="ltrc-unpickle-") as out:
        cmd = [sys.executable, "-m", "ltrcompile.frontends._pickle_child", os.path.abspath(path), out, str(budget), str(int(limit))]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, timeout=limit + 5, check=False)
        except subprocess.TimeoutExpired:
            raise ModelFormatError(f"unpickling did not finish within {limit:.0f} s (corrupt or hostile pickle?)", path=path) from None
        status_file = Path(out) / "status.json"
        if not status_file.exists():
            rc = proc.returncode
            how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
            if rc < 0 and -rc in (9, 24):  # SIGKILL / SIGXCPU: the CPU limit
                how += f" (CPU limit {limit:.0f} s)"
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise ModelFormatError(f"unpickling crashed: the child process {how} {tail[0][:200]}".rstrip(), path=path)
        status = json.loads(status_file.read_text())
        if status["ok"]:
            with np.load(Path(out) / "model.npz", allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            return d, status.get("fitted"), status["loaded_with"]
    kind = status["kind"]
    if kind == "memory":
        raise ModelFormatError(f"unpickling needs more than the memory limit ({budget} MiB)", path=path)
    if kind in _ERRORS:
        raise _ERRORS[kind](status["reason"], path=path, tree=status.get("tree"), node=status.get("node"), field=status.get("field"))
    # anything else is a bug in ltrcompile's reading code: exit 70, please report
    raise RuntimeError(f"reading the unpickled model failed in ltrcompile: {status['reason']}")


def _plain(d: dict[str, Any]) -> dict[str, np.ndarray]:
    """The description as arrays numpy saves without pickling (strings as unicode arrays)."""
    out: dict[str, np.ndarray] = {}
    for k, v in d.items():
        a = np.asarray(v)
        if a.dtype == object:
            try:
                a = np.asarray(a.tolist())
            except (ValueError, TypeError):
                pass
            if a.dtype == object:
                raise ModelFormatError(f"holds Python objects of mixed types ({type(v).__name__})", field=k)
        out[k] = a
    return out


def _child(path: str, out: str, budget_mb: int, cpu_s: int) -> None:
    import joblib  # noqa: F401
    import sklearn  # noqa: F401 - imported before the limit so the budget is all the pickle's

    from . import sklearn as sk

    status: dict[str, Any]
    try:
        vm = _vm_bytes()
        if vm:
            cap = vm + budget_mb * (1 << 20)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        d, fitted, loaded_with = sk.load_pickle_here(path)
        np.savez(os.path.join(out, "model.npz"), **_plain(d))
        status = {"ok": True, "fitted": fitted, "loaded_with": loaded_with}
    except MemoryError:
        status = {"ok": False, "kind": "memory"}
    except LtrCompileError as exc:
        status = {"ok": False, "kind": type(exc).__name__, "reason": getattr(exc, "reason", str(exc)),
                  "tree": getattr(exc, "tree", None), "node": getattr(exc, "node", None), "field": getattr(exc, "field", None)}
        if status["kind"] not in _ERRORS:
            status["kind"], status["reason"] = "ModelFormatError", str(exc)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as an internal error
        status = {"ok": False, "kind": "internal", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    with open(os.path.join(out, "status.json"), "w") as fh:
        json.dump(status, fh)


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
