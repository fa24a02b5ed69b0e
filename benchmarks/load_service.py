"""Bounded loopback load test of the rescoring service (a measurement, not a test).

Trains a LightGBM lambdarank model (500 trees by default) on the bundled example data, starts
``python -m ltrcompile.service`` on 127.0.0.1, uploads the model (compiled server-side), then:

1. open loop: requests at a fixed rate (default 200/s, 100 hits each) for a fixed time; latency is
   measured from each request's *scheduled* send time, so a stalled server is not hidden;
2. closed loop: N concurrent clients as fast as possible -> sustained requests/s;
3. where the time goes: the server's ``Server-Timing`` header (body read, JSON + feature matrix,
   scoring, response) against the client-observed latency, plus an in-process breakdown.

Client and server share this machine's cores, so the numbers include the client's CPU use.

    .venv/bin/python benchmarks/load_service.py [--trees 500] [--rate 200] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
N_FEATURES = 300
NAMES = [f"f{i}" for i in range(N_FEATURES)]


def load_letor(path: Path):
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(path), n_features=N_FEATURES, zero_based=False)
    groups = np.loadtxt(str(path) + ".query", dtype=np.int64)
    return X.toarray(), y, groups


def train(out: Path, trees: int) -> Path:
    import lightgbm as lgb

    path = out / f"lambdarank_{trees}.txt"
    if path.exists():
        return path
    X, y, g = load_letor(DATA / "lambdarank_rank.train")
    booster = lgb.train(
        {
            "objective": "lambdarank",
            "num_leaves": 31,
            "learning_rate": 0.05,
            "verbose": -1,
            "num_threads": 1,
            "min_data_in_leaf": 5,
            "seed": 7,
        },
        lgb.Dataset(X, y, group=g, feature_name=NAMES),
        num_boost_round=trees,
    )
    booster.save_model(str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payloads(n_hits: int, form: str, count: int, seed: int = 0) -> list[bytes]:
    """``count`` different rescore bodies of ``n_hits`` real test rows each."""
    import orjson

    X, _, _ = load_letor(DATA / "lambdarank_rank.test")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        rows = X[rng.choice(len(X), n_hits, replace=False)]
        first = np.sort(rng.gamma(2.0, 3.0, n_hits))[::-1]
        if form == "binary":  # one base64 float32 matrix for all hits (ES features are floats)
            import base64

            data = base64.b64encode(rows.astype("<f4").tobytes()).decode()
            ids = [{"id": f"doc{i}", "score": float(first[i])} for i in range(n_hits)]
            out.append(
                orjson.dumps(
                    {
                        "hits": ids,
                        "feature_matrix": {"dtype": "float32", "data": data},
                        "window_size": n_hits,
                        "score_mode": "total",
                    }
                )
            )
            continue
        hits = []
        for i, row in enumerate(rows):
            if form == "dense":
                feats = row.tolist()
            else:  # by name, only the logged (non-zero) features
                feats = {NAMES[j]: float(row[j]) for j in np.flatnonzero(row)}
            hits.append({"id": f"doc{i}", "score": float(first[i]), "features": feats})
        out.append(orjson.dumps({"hits": hits, "window_size": n_hits, "score_mode": "total"}))
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response off ``reader``: status, lower-cased headers, body (Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k:
            headers[k.strip().lower()] = v.strip()
    data = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, data


class RawClient:
    """A lean HTTP/1.1 keep-alive client (asyncio streams, pre-encoded requests).

    httpx spends ~2 ms of CPU per 130 KiB request here, on the same two cores as the server; this
    client spends ~0.2 ms, so it measures the server rather than the load generator.
    """

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.all: list[asyncio.StreamWriter] = []

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._send(reader, writer, path, body)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()  # the server closed an idle keep-alive connection: retry once
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.all.append(writer)
        return await self._send(reader, writer, path, body)

    async def _send(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), self.host.encode(), len(body)) + body
        )
        await writer.drain()
        status, headers, data = await read_response(reader)
        self.idle.append((reader, writer))
        return status, headers, data

    async def aclose(self) -> None:
        for w in self.all:
            w.close()


class HttpxClient:
    def __init__(self, url: str) -> None:
        import httpx

        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.c = httpx.AsyncClient(base_url=url, limits=limits, timeout=30)

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        r = await self.c.post(path, content=body, headers={"content-type": "application/json"})
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content

    async def aclose(self) -> None:
        await self.c.aclose()


def make_client(kind: str, url: str) -> RawClient | HttpxClient:
    return RawClient(url) if kind == "raw" else HttpxClient(url)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), to get server CPU per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def timing(header: str) -> dict[str, float]:
    parts = {}
    for item in header.split(","):
        name, _, dur = item.strip().partition(";dur=")
        parts[name] = float(dur)
    return parts


def pct(a: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(a), q)) if a else float("nan")


async def open_loop(kind: str, url: str, bodies: list[bytes], rate: float, duration: float) -> dict:
    n = int(rate * duration)
    lat: list[float] = []
    svc: list[dict[str, float]] = []
    errors = 0
    error_kinds: dict[str, int] = {}
    client = make_client(kind, url)
    cpu0 = time.process_time()
    t0 = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        sched = t0 + i / rate
        await asyncio.sleep(max(0.0, sched - time.perf_counter()))
        try:
            status, headers, _ = await client.post("/models/bench/rescore", bodies[i % len(bodies)])
        except Exception as exc:  # counted and shown, never hidden
            errors += 1
            error_kinds[type(exc).__name__] = error_kinds.get(type(exc).__name__, 0) + 1
            return
        done = time.perf_counter()
        if status != 200:
            errors += 1
            error_kinds[f"HTTP {status}"] = error_kinds.get(f"HTTP {status}", 0) + 1
            return
        lat.append(done - sched)
        svc.append(timing(headers["server-timing"]))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    await client.aclose()
    return {
        "requests": n,
        "errors": errors,
        "error_kinds": error_kinds,
        "wall_s": wall,
        "achieved_rps": len(lat) / wall,
        "client_cpu_ms_per_req": cpu / max(1, n) * 1e3,
        "lat": lat,
        "svc": svc,
    }


async def closed_loop(
    kind: str, url: str, bodies: list[bytes], concurrency: int, duration: float
) -> dict:
    lat: list[float] = []
    errors = 0
    clients = [make_client(kind, url) for _ in range(concurrency)]
    end = time.perf_counter() + duration

    async def worker(k: int) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < end:
            t = time.perf_counter()
            status, _, _ = await clients[k].post("/models/bench/rescore", bodies[i % len(bodies)])
            if status != 200:
                errors += 1
            lat.append(time.perf_counter() - t)
            i += concurrency

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall = time.perf_counter() - start
    for c in clients:
        await c.aclose()
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / wall, "lat": lat}


def in_process(model: Path, body: bytes, reps: int = 300) -> dict[str, float]:
    """Per-stage cost without HTTP, on the compiled scorer the server uses."""
    import orjson

    import ltrcompile
    from ltrcompile.pipeline import compile_into
    from ltrcompile.rescore import FeatureSet, RescoreParams, Rescorer, native_response_hits
    from ltrcompile.service.build import SERVICE_BUILD

    ens = ltrcompile.load_model(str(model))
    with tempfile.TemporaryDirectory() as d:
        scorer = compile_into(ens, Path(d) / "compiled", SERVICE_BUILD)  # what the server does
        r = Rescorer.for_model(scorer, ens, FeatureSet.from_dict({"name": "b", "features": NAMES}))
        stages = {
            "json_decode": 0.0,
            "feature_matrix": 0.0,
            "predict": 0.0,
            "rescore_incl_predict": 0.0,
            "response_json": 0.0,
        }
        for _ in range(reps):
            t0 = time.perf_counter()
            doc = orjson.loads(body)
            t1 = time.perf_counter()
            hits = r.parser.native(doc["hits"], True, doc.get("feature_matrix"))
            t2 = time.perf_counter()
            r.predict(hits.X)
            t3 = time.perf_counter()
            res = r.rescore_hits(hits, RescoreParams.parse(doc))
            t4 = time.perf_counter()
            orjson.dumps(
                {"hits": native_response_hits(hits, res, numpy_scalars=True)},
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
            t5 = time.perf_counter()
            stages["json_decode"] += t1 - t0
            stages["feature_matrix"] += t2 - t1
            stages["predict"] += t3 - t2
            stages["rescore_incl_predict"] += t4 - t3
            stages["response_json"] += t5 - t4
    return {k: v / reps * 1e3 for k, v in stages.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trees", type=int, default=500)
    ap.add_argument("--hits", type=int, default=100)
    ap.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per phase (bounded)")
    ap.add_argument("--concurrency", type=int, default=4, help="closed-loop clients")
    ap.add_argument(
        "--form",
        choices=["dense", "sparse", "binary"],
        default="dense",
        help="features as full vectors, by name (non-zero only), or one base64 float32 matrix",
    )
    ap.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="load generator: httpx.AsyncClient, or a lean asyncio HTTP/1.1 client",
    )
    ap.add_argument(
        "--work", default=None, help="directory for the model and store (default: temp)"
    )
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    args = ap.parse_args(argv)
    args.duration = min(args.duration, 120.0)

    work = Path(args.work or tempfile.mkdtemp(prefix="ltr-load-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model = train(work, args.trees)
    print(f"model: {model} ({args.trees} trees, trained/cached in {time.perf_counter() - t:.1f} s)")

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = work / f"store-{port}"
    log = open(work / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltrcompile.service",
            "--store",
            str(store),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={"LTRCOMPILE_CACHE": str(work / "cache"), **os.environ},
    )
    results: dict = {
        "trees": args.trees,
        "hits": args.hits,
        "form": args.form,
        "cpus": os.cpu_count(),
    }
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        c = httpx.Client(base_url=url, timeout=900)
        c.put("/featuresets/bench", json={"features": NAMES}).raise_for_status()
        t = time.perf_counter()
        r = c.post(
            "/models/bench/versions",
            params={"featureset": "bench", "wait": "true"},
            content=model.read_bytes(),
        )
        r.raise_for_status()
        job = r.json()
        results["upload_s"] = time.perf_counter() - t
        results["compile_s"] = job["compile_seconds"]
        print(
            f"upload -> ready in {results['upload_s']:.1f} s (compile {job['compile_seconds']:.1f} s)"
        )
        bodies = payloads(args.hits, args.form, 50)
        results["body_kib"] = float(np.mean([len(b) for b in bodies]) / 1024)
        for b in bodies[:5]:  # warm up
            c.post("/models/bench/rescore", content=b, headers={"content-type": "application/json"})
        asyncio.run(closed_loop(args.client, url, bodies, 2, 2.0))

        cpu0 = proc_cpu_s(proc.pid)
        ol = asyncio.run(open_loop(args.client, url, bodies, args.rate, args.duration))
        server_cpu_ms = (proc_cpu_s(proc.pid) - cpu0) / max(1, len(ol["lat"])) * 1e3
        load = os.getloadavg()
        lat = [x * 1e3 for x in ol["lat"]]
        svc = ol["svc"]
        mean_client = float(np.mean(lat)) if lat else float("nan")
        svc_mean = {k: float(np.mean([s[k] for s in svc])) for k in svc[0]} if svc else {}
        in_app = sum(svc_mean.values())
        work_ms = in_app - svc_mean.get("read", 0.0)
        results["open_loop"] = {
            "target_rps": args.rate,
            "achieved_rps": ol["achieved_rps"],
            "requests": ol["requests"],
            "client": args.client,
            "server_cpu_ms_per_req": server_cpu_ms,
            "loadavg_1m": load[0],
            "client_cpu_ms_per_req": ol["client_cpu_ms_per_req"],
            "errors": ol["errors"],
            "error_kinds": ol["error_kinds"],
            "p50_ms": pct(lat, 50),
            "p90_ms": pct(lat, 90),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat) if lat else None,
            "mean_ms": mean_client,
            "server_mean_ms": svc_mean,
            "share_scoring": svc_mean.get("score", 0) / mean_client if lat else None,
            "share_json_and_features": svc_mean.get("parse", 0) / mean_client if lat else None,
            "share_other_http": (mean_client - in_app) / mean_client if lat else None,
            # where the server's own time goes (body read excluded: it waits for the client)
            "app_share_scoring": svc_mean.get("score", 0) / work_ms if svc else None,
            "app_share_json_features": svc_mean.get("parse", 0) / work_ms if svc else None,
            "app_share_response": svc_mean.get("render", 0) / work_ms if svc else None,
        }
        cl = asyncio.run(closed_loop(args.client, url, bodies, args.concurrency, args.duration))
        cl_lat = [x * 1e3 for x in cl["lat"]]
        results["closed_loop"] = {
            "concurrency": args.concurrency,
            "rps": cl["rps"],
            "requests": cl["requests"],
            "errors": cl["errors"],
            "p50_ms": pct(cl_lat, 50),
            "p99_ms": pct(cl_lat, 99),
        }
        results["in_process_ms"] = in_process(model, bodies[0])
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    o, cl = results["open_loop"], results["closed_loop"]
    print(
        f"\nrequest body: {results['body_kib']:.0f} KiB ({args.hits} hits, {args.form} features); "
        f"client {args.client} ({o['client_cpu_ms_per_req']:.2f} ms CPU per request)"
    )
    print(
        f"open loop  {o['target_rps']:.0f} req/s for {args.duration:.0f} s: achieved {o['achieved_rps']:.1f} req/s, "
        f"errors {o['errors']} {o['error_kinds'] or ''}, p50 {o['p50_ms']:.2f} ms, p90 {o['p90_ms']:.2f} ms, "
        f"p99 {o['p99_ms']:.2f} ms, max {o['max_ms']:.2f} ms"
    )
    sm = o["server_mean_ms"]
    print(
        "  server-side mean ms: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sm.items())
        + f" | client-observed mean {o['mean_ms']:.3f}"
    )
    print(
        f"  share of the server's work (parse + score + render): scoring "
        f"{o['app_share_scoring']:.0%}, JSON decode + feature matrix "
        f"{o['app_share_json_features']:.0%}, response JSON {o['app_share_response']:.0%}"
    )
    print(
        f"  share of latency: scoring {o['share_scoring']:.0%}, JSON decode + feature matrix "
        f"{o['share_json_and_features']:.0%}, HTTP/ASGI/client/queueing {o['share_other_http']:.0%}"
    )
    print(
        f"  server CPU per request {o['server_cpu_ms_per_req']:.2f} ms (-> at most "
        f"{1000 / o['server_cpu_ms_per_req']:.0f} req/s on one dedicated core); "
        f"load average during the run {o['loadavg_1m']:.2f} on {results['cpus']} cores"
    )
    print(
        f"closed loop x{cl['concurrency']}: {cl['rps']:.1f} req/s sustained, errors {cl['errors']}, "
        f"p50 {cl['p50_ms']:.2f} ms, p99 {cl['p99_ms']:.2f} ms"
    )
    print(
        "in-process per request (ms): "
        + ", ".join(f"{k} {v:.3f}" for k, v in results["in_process_ms"].items())
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
