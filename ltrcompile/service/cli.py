"""``ltrcompile serve``: run the rescoring service with uvicorn.

Safe defaults: a store in ``./ltr-store``, loopback only. Binding any other address needs a bearer
token (``--token-file``), which then protects every write endpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import stat
import sys

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ltrcompile serve",
        description="Serve compiled learning-to-rank models over HTTP with Elasticsearch rescore "
        "semantics (OpenAPI docs at /docs, Prometheus metrics at /metrics).",
    )
    p.add_argument(
        "--store", default="ltr-store", help="model store directory (default: ./ltr-store)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 = any free port)")
    p.add_argument(
        "--token-file",
        help="file holding a bearer token required by write endpoints; mandatory off loopback",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY / 2**20,
        help="limit for rescore/score/feature-set bodies in MiB (default: %(default)s)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD / 2**20,
        help="limit for model uploads in MiB (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serving processes sharing the port and the store (default: 1)",
    )
    p.add_argument(
        "--sync-interval",
        type=float,
        default=SYNC_INTERVAL_S,
        help="seconds between two looks at the store for versions activated by another process "
        "or server (default: %(default)s)",
    )
    lim = JobLimits()
    p.add_argument(
        "--upload-cpu-s",
        type=float,
        default=lim.cpu_s,
        help="CPU-time limit of one upload's build process, seconds (default: %(default)s)",
    )
    p.add_argument(
        "--upload-memory-mb",
        type=float,
        default=lim.memory_mb,
        help="address space one upload's build may add to its process, MiB (default: %(default)s)",
    )
    p.add_argument(
        "--upload-timeout-s",
        type=float,
        default=lim.timeout_s,
        help="wall-clock limit of one upload's build, seconds (default: %(default)s)",
    )
    p.add_argument(
        "--upload-slots",
        type=int,
        default=lim.slots,
        help="uploads built at once per serving process (default: %(default)s)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def serve_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = read_token(args.token_file) if args.token_file else None
    if token is None and not is_loopback(args.host):
        print(
            f"ltrcompile serve: refusing to bind {args.host} without --token-file: off loopback "
            "anyone could replace the models (use --host 127.0.0.1 or give a token)",
            file=sys.stderr,
        )
        return 2
    if not 0 <= args.port <= 65535:
        print(f"ltrcompile serve: invalid --port {args.port}", file=sys.stderr)
        return 2
    if not 1 <= args.workers <= 256:
        print(f"ltrcompile serve: --workers must be 1..256; got {args.workers}", file=sys.stderr)
        return 2
    if args.workers > 1 and args.port == 0:
        print("ltrcompile serve: --workers needs an explicit --port", file=sys.stderr)
        return 2
    if args.upload_slots < 1 or args.sync_interval <= 0:
        print("ltrcompile serve: --upload-slots and --sync-interval must be > 0", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from .app import create_app
        from .store import StoreError
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"ltrcompile serve needs the service extra (pip install 'ltrcompile[service]'): {exc}",
            file=sys.stderr,
        )
        return 2
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
        print(f"ltrcompile serve: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, **common)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_main())
