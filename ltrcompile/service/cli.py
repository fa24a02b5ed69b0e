"""``ltrcompile serve``: run the rescoring service with uvicorn.

Safe defaults: a store in ``./ltr-store``, loopback only. Binding any other address needs a bearer
token (``--token-file``), which then protects every write endpoint.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import stat
import sys
from types import SimpleNamespace
from typing import Any

import click

from .app import CONFIG_ENV, DEFAULT_MAX_BODY, DEFAULT_MAX_UPLOAD
from .jobs import JobLimits
from .registry import SYNC_INTERVAL_S


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: str) -> str:
    """The token in ``path`` (surrounding whitespace stripped); must be non-empty."""
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise SystemExit(
            f"ltrcompile serve: cannot read --token-file {path}: {exc.strerror}"
        ) from None
    if not token or any(c.isspace() for c in token):
        raise SystemExit(f"ltrcompile serve: --token-file {path} must hold one non-empty token")
    if len(token) < 16:
        raise SystemExit("ltrcompile serve: the token must be at least 16 characters")
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"ltrcompile serve: warning: {path} is readable by group/others (chmod 600 it)",
            file=sys.stderr,
        )
    return token


def _serve_help() -> str:
    from ..cli import exit_codes_help

    return f"""Serve compiled learning-to-rank models over HTTP with Elasticsearch rescore
semantics (OpenAPI docs at /docs, Prometheus metrics at /metrics).

Safe defaults: a store in ./ltr-store, loopback only. Binding any other address
needs --token-file, whose bearer token then protects every write endpoint.

\b
Examples:
  ltrcompile serve --store ./ltr-store --port 8080
  ltrcompile serve --host 0.0.0.0 --token-file token.txt --workers 4

{exit_codes_help("serve")}
"""


_LIM = JobLimits()


@click.command("serve", help=_serve_help(), context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]})
@click.option("--store", default="ltr-store", show_default=True, type=click.Path(file_okay=False), help="Model store directory.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: any free port).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), help="File holding a bearer token required by write endpoints; mandatory off loopback.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_MAX_BODY / 2**20, show_default=True, help="Limit for rescore/score/feature-set bodies, MiB.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_MAX_UPLOAD / 2**20, show_default=True, help="Limit for model uploads, MiB.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True, help="Serving processes sharing the port and the store.")
@click.option("--sync-interval", type=click.FloatRange(min=0, min_open=True), default=SYNC_INTERVAL_S, show_default=True, help="Seconds between two background looks at the store (preloading versions activated by another process or server, following deletions, resuming dead processes' uploads); every request also checks its model's ACTIVE pointer itself.")
@click.option("--upload-cpu-s", type=click.FloatRange(min=0, min_open=True), default=_LIM.cpu_s, show_default=True, help="CPU-time limit of one upload's build process, seconds.")
@click.option("--upload-memory-mb", type=click.FloatRange(min=0, min_open=True), default=_LIM.memory_mb, show_default=True, help="Address space one upload's build may add to its process, MiB.")
@click.option("--upload-timeout-s", type=click.FloatRange(min=0, min_open=True), default=_LIM.timeout_s, show_default=True, help="Wall-clock limit of one upload's build, seconds.")
@click.option("--upload-slots", type=click.IntRange(min=1), default=_LIM.slots, show_default=True, help="Uploads built at once per serving process.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True, help="Server log level.")
def serve_command(**kw: Any) -> int:
    return _serve(SimpleNamespace(**kw))


def serve_main(argv: list[str] | None = None) -> int:
    """``python -m ltrcompile.service`` / ``ltrcompile serve``: the same command, the same errors."""
    from ..cli import _run

    return _run(serve_command, argv, "ltrcompile serve")


def _serve(args: SimpleNamespace) -> int:
    from ..cli import CliError

    token = read_token(args.token_file) if args.token_file else None
    if token is None and not is_loopback(args.host):
        raise CliError(
            f"refusing to bind {args.host} without --token-file: off loopback anyone could replace "
            "the models (use --host 127.0.0.1 or give a token)"
        )
    if args.workers > 1 and args.port == 0:
        raise CliError("--workers needs an explicit --port")
    try:
        import uvicorn

        from .app import create_app
        from .store import StoreError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CliError(
            f"ltrcompile serve needs the service extra (pip install 'ltrcompile[service]'): {exc}", 4
        ) from None
    # build cache of identical models inside the store (shared by its processes)
    os.environ.setdefault("LTRCOMPILE_CACHE", os.path.join(os.path.abspath(args.store), "cache"))
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    limits = {
        "max_body": int(args.max_body_mb * 2**20),
        "max_upload": int(args.max_upload_mb * 2**20),
        "sync_interval": args.sync_interval,
    }
    job_limits = JobLimits(
        cpu_s=args.upload_cpu_s,
        memory_mb=args.upload_memory_mb,
        timeout_s=args.upload_timeout_s,
        slots=args.upload_slots,
    )
    common = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": False,
        "server_header": False,
    }
    if args.workers > 1:
        # N processes accept on one socket; each is a full server on the shared store, and the
        # supervisor restarts one that dies. The token file is read by each process itself.
        os.environ[CONFIG_ENV] = json.dumps(
            {
                "store": os.path.abspath(args.store),
                "token_file": os.path.abspath(args.token_file) if args.token_file else None,
                "limits": {**limits, "job_limits": dataclasses.asdict(job_limits)},
            }
        )
        uvicorn.run(
            "ltrcompile.service.app:create_app_from_env",
            factory=True,
            workers=args.workers,
            **common,
        )
        return 0
    try:
        app = create_app(args.store, token, job_limits=job_limits, **limits)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    uvicorn.run(app, **common)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_main())
