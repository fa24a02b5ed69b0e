"""HTTP rescoring service: compiled scorers behind Elasticsearch rescore semantics.

Needs the ``service`` extra (starlette, uvicorn, prometheus-client). See ``docs/service.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve_main"]


def create_app(store_dir: str, token: str | None = None, **limits: Any) -> Any:
    from .app import create_app as _create

    return _create(store_dir, token, **limits)


def serve_main(argv: list[str] | None = None) -> int:
    from .cli import serve_main as _main

    return _main(argv)
