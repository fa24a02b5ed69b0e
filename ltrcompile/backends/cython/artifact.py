"""Artifact directories: content address, manifest, cache location, platform checks, installation.

An artifact is a directory holding ``<module><EXT_SUFFIX>`` (the extension), ``manifest.json``,
``ir.json`` (the IR it was built from), ``build.log`` and ``src/`` (the generated ``.pyx``/``.c``/``.h``
for inspection). The module name ``ltrc_<hash>`` is derived from the IR digest, the code generator
version, the strategy, the tuning knobs and the toolchain, so a changed model can never be served by
a stale module, and an identical build can be reused from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from ...errors import LtrCompileError

ARTIFACT_FORMAT = "ltrcompile-artifact"
ARTIFACT_VERSION = 1
MANIFEST = "manifest.json"
IR_FILE = "ir.json"
LOG_FILE = "build.log"
SRC_DIR = "src"


class ArtifactError(LtrCompileError, ValueError):
    """The directory is not a usable compiled artifact (missing/corrupt files)."""


class IncompatibleArtifactError(ArtifactError):
    """The artifact was built for another platform, Python or ABI than this process."""


def cache_root() -> Path:
    """``$LTRCOMPILE_CACHE``, else ``$XDG_CACHE_HOME/ltrcompile``, else ``~/.cache/ltrcompile``."""
    env = os.environ.get("LTRCOMPILE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ltrcompile"


def platform_info() -> dict[str, Any]:
    """What an extension module binary depends on."""
    return {
        "implementation": sys.implementation.name,
        "python_version": platform.python_version(),
        "cache_tag": sys.implementation.cache_tag,
        "soabi": sysconfig.get_config_var("SOABI"),
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "platform": sysconfig.get_platform(),
        "machine": platform.machine(),
        "byteorder": sys.byteorder,
    }


#: fields that must match for a binary to load
_ABI_FIELDS = ("implementation", "cache_tag", "soabi", "ext_suffix", "platform", "machine", "byteorder")


def check_compatible(manifest: dict[str, Any], where: str) -> None:
    built = manifest.get("python") or {}
    here = platform_info()
    bad = [f for f in _ABI_FIELDS if built.get(f) != here[f]]
    if bad:
        diffs = ", ".join(f"{f}: built {built.get(f)!r}, here {here[f]!r}" for f in bad)
        raise IncompatibleArtifactError(
            f"artifact {where} was built for another platform/Python ABI ({diffs}); "
            "recompile the model on this machine"
        )
    from .isa import check_cpu

    why = check_cpu(manifest.get("isa"), f"artifact {where}")
    if why is not None:
        raise IncompatibleArtifactError(why)


def module_name(ir_digest: str, strategy: str, tuning: dict[str, Any], toolchain: dict[str, Any], codegen_version: str) -> str:
    """``ltrc_<hash>``: the content address of one build."""
    key = json.dumps(
        {
            "ir": ir_digest,
            "codegen": codegen_version,
            "strategy": strategy,
            "tuning": tuning,
            "toolchain": {k: toolchain.get(k) for k in ("cc", "version", "cflags", "ldflags", "openmp", "incbin")},
            "abi": {f: platform_info()[f] for f in _ABI_FIELDS},
        },
        sort_keys=True,
    )
    return "ltrc_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_manifest(path: Path) -> dict[str, Any]:
    mpath = Path(path) / MANIFEST
    try:
        text = mpath.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not a compiled artifact (no {MANIFEST})") from None
    except OSError as exc:
        raise ArtifactError(f"{mpath}: cannot read: {exc}") from exc
    try:
        m = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{mpath}: not valid JSON: {exc}") from exc
    if not isinstance(m, dict) or m.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{mpath}: not an ltrcompile artifact manifest")
    if m.get("format_version") != ARTIFACT_VERSION:
        raise ArtifactError(
            f"{mpath}: artifact format version {m.get('format_version')!r} is not supported "
            f"(this ltrcompile reads {ARTIFACT_VERSION}); recompile the model"
        )
    for k in ("module", "extension", "extension_sha256", "ir_digest"):
        if not isinstance(m.get(k), str):
            raise ArtifactError(f"{mpath}: manifest field {k!r} is missing")
    if not m["module"].isidentifier() or "/" in m["extension"] or "\\" in m["extension"]:
        raise ArtifactError(f"{mpath}: manifest names an invalid module/extension")
    return m


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def artifact_files(manifest: dict[str, Any]) -> list[str]:
    return [manifest["extension"], IR_FILE, LOG_FILE, SRC_DIR, MANIFEST]


def install(staging: Path, target: Path) -> Path:
    """Move a finished artifact from ``staging`` to ``target``.

    A missing or empty target is replaced by one rename; otherwise the artifact's files are moved
    in one by one (manifest last) and files of a previous artifact there are removed. Other files
    in ``target`` are left alone.
    """
    staging = Path(staging)
    target = Path(target)
    if not target.exists():
        try:
            os.replace(staging, target)
            return target
        except OSError:
            if not target.exists():
                raise
    if target.is_dir() and not any(target.iterdir()):
        try:
            target.rmdir()
            os.replace(staging, target)
            return target
        except OSError:
            pass
    if not target.is_dir():
        raise ArtifactError(f"output {target} exists and is not a directory")
    new = read_manifest(staging)
    old_files: list[str] = []
    try:
        old_files = artifact_files(read_manifest(target))
    except ArtifactError:
        pass
    keep = set(artifact_files(new))
    for name in old_files:
        if name not in keep:
            p = target / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    for name in artifact_files(new):
        if name == MANIFEST:
            continue
        src, dst = staging / name, target / name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)
    os.replace(staging / MANIFEST, target / MANIFEST)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def make_staging(target: Path) -> Path:
    parent = Path(target).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{Path(target).name}.build-", dir=parent))
