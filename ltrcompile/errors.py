"""Typed errors. Every message names the file, tree, node and field involved where known."""

from __future__ import annotations


class LtrCompileError(Exception):
    """Base class of every error ltrcompile raises on purpose."""


def _locate(
    message: str,
    *,
    path: str | None = None,
    tree: int | None = None,
    node: int | None = None,
    field: str | None = None,
) -> str:
    where = []
    if path is not None:
        where.append(f"file {path!s}")
    if tree is not None:
        where.append(f"tree {tree}")
    if node is not None:
        where.append(f"node {node}")
    if field is not None:
        where.append(f"field '{field}'")
    return f"{', '.join(where)}: {message}" if where else message


class LocatedError(LtrCompileError):
    """An error that knows where in a model it happened."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        tree: int | None = None,
        node: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.path = path
        self.tree = tree
        self.node = node
        self.field = field
        super().__init__(_locate(message, path=path, tree=tree, node=node, field=field))


class ModelFormatError(LocatedError, ValueError):
    """The model file or object is malformed (truncated, wrong types, bad indices...)."""


class UnsupportedModelError(LocatedError):
    """The model uses a construct ltrcompile cannot represent exactly; raised at load time."""


class IRValidationError(LocatedError, ValueError):
    """An Ensemble violates an IR invariant (child out of range, cycle, unreachable node...)."""


class FormatDetectionError(LtrCompileError, ValueError):
    """``format="auto"`` could not decide which frontend reads the source."""


class InputDataError(LtrCompileError, ValueError):
    """The feature matrix given to a scorer is unusable (wrong shape, names, dtype)."""


class OptionError(LtrCompileError, ValueError):
    """An option that is invalid, or does not apply to the given model (refused, never ignored)."""
