"""Scale-out load test: activations under load, a worker killed with ``kill -9`` midway (a
measurement with pass/fail criteria, loopback only, bounded; not a test -- see
tests/test_service_workers.py for the short checks).

``ltrcompile serve --workers W`` on 127.0.0.1 with three versions of one model (LightGBM lambdarank
rankers of different sizes, compiled server-side). Then for ``--duration`` seconds:

* ``--clients`` concurrent clients send binary-matrix rescore requests (one base64 float32 matrix,
  ``--hits`` rows) as fast as the server answers, each on its own keep-alive connection, opened
  anew every ``--reconnect`` requests so connections move between workers (and reach a restarted
  one); every response's model scores are checked against LightGBM's own for the version it names;
* an activator activates the next version (1 -> 2 -> 3 -> 1 ...) every ``--swap-every`` seconds;
* at half time one worker (a child of the supervisor that answered requests) is sent ``SIGKILL``.

Nothing is retried: a request that fails is counted, with the worker its connection was on. The
failures allowed are those lost with the killed worker: at most one per connection to it (the
request it had outstanding when it died, or sent in the moment before the client saw the reset).
Afterwards the server is stopped and the store checked.

Wrong-version response: one whose version is neither the version of the last activation that had
completed (its response received) before the request was sent, nor that of an activation started
before the response arrived -- i.e. older than an activation completed before the request started,
or not an activated version at all.

    .venv/bin/python benchmarks/load_scaleout.py [--workers 2] [--clients 20] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__:  # imported (tests/test_service_workers.py) or run as a script
    from .load_service import DATA, NAMES, free_port, load_letor, payloads, pct, read_response
else:
    from load_service import DATA, NAMES, free_port, load_letor, payloads, pct, read_response

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- models
def train_versions(out: Path, trees: int, n: int = 3) -> list[Path]:
    """``n`` rankers of ``trees``, ``trees + 10``, ... rounds (distinct scores per version)."""
    import lightgbm as lgb

    X, y, g = load_letor(DATA / "lambdarank_rank.train")
    paths = []
    for k in range(n):
        rounds = trees + 10 * k
        path = out / f"scaleout_{rounds}.txt"
        if not path.exists():
            params = {
                "objective": "lambdarank",
                "num_leaves": 31,
                "learning_rate": 0.05,
                "verbose": -1,
                "num_threads": 1,
                "min_data_in_leaf": 5,
                "seed": 11 + k,
            }
            ds = lgb.Dataset(X, y, group=g, feature_name=NAMES)
            lgb.train(params, ds, num_boost_round=rounds).save_model(str(path))
        paths.append(path)
    return paths


def expected_scores(paths: list[Path], bodies: list[bytes]) -> dict[int, list[np.ndarray]]:
    """version -> per body, LightGBM's float32 model score of each row (version k = paths[k-1])."""
    import lightgbm as lgb
    import orjson

    rows = []
    for b in bodies:
        fm = orjson.loads(b)["feature_matrix"]
        rows.append(np.frombuffer(base64.b64decode(fm["data"]), "<f4").reshape(-1, len(NAMES)))
    out = {}
    for v, p in enumerate(paths, 1):
        booster = lgb.Booster(model_file=str(p))
        out[v] = [
            booster.predict(r.astype(np.float64), raw_score=True).astype(np.float32) for r in rows
        ]
    return out


# ---------------------------------------------------------------------- HTTP
class Conn:
    """One HTTP/1.1 keep-alive connection; ``pid`` is the worker that last answered on it."""

    opened = 0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        Conn.opened += 1
        self.id = Conn.opened
        self.pid: int | None = None
        self.used = 0

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(
            b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (method.encode(), path.encode(), len(body)) + body
        )
        await self.writer.drain()
        status, headers, data = await read_response(self.reader)
        self.used += 1
        if "x-served-by" in headers:
            self.pid = int(headers["x-served-by"])
        return status, headers, data

    def close(self) -> None:
        self.writer.close()


async def one_shot(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    c = await Conn.open(port)
    try:
        return await c.request(method, path, body)
    finally:
        c.close()


# ---------------------------------------------------------------------- the run
@dataclass
class Record:
    sent: float
    done: float
    version: int | None  # None: failed
    pid: int | None  # the worker that answered, or the one the connection was on
    error: str | None = None
    scores_ok: bool = True
    conn: int | None = None


@dataclass
class Activation:
    version: int
    started: float
    done: float
    status: int


@dataclass
class Run:
    records: list[Record] = field(default_factory=list)
    activations: list[Activation] = field(default_factory=list)
    kill_at: float | None = None
    victim: int | None = None
    pids_seen: set[int] = field(default_factory=set)
    workers_at_kill: set[int] = field(default_factory=set)


async def client_loop(
    k: int, port: int, bodies, want, end: float, reconnect: int, run: Run
) -> None:
    import orjson

    conn: Conn | None = None
    i = k
    while time.perf_counter() < end:
        if conn is None or conn.used >= reconnect:
            if conn is not None:
                conn.close()
            try:
                conn = await Conn.open(port)
            except OSError as exc:
                run.records.append(
                    Record(time.perf_counter(), time.perf_counter(), None, None, repr(exc))
                )
                conn = None
                await asyncio.sleep(0.05)
                continue
        b = i % len(bodies)
        t = time.perf_counter()
        try:
            status, headers, data = await conn.request("POST", "/models/bench/rescore", bodies[b])
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            run.records.append(
                Record(t, time.perf_counter(), None, conn.pid, type(exc).__name__, conn=conn.id)
            )
            conn.close()
            conn = None
            continue
        done = time.perf_counter()
        if status != 200:
            err = f"HTTP {status} {data[:200]!r}"
            run.records.append(Record(t, done, None, conn.pid, err, conn=conn.id))
        else:
            doc = orjson.loads(data)
            v = int(doc["version"])
            got = {h["id"]: h["model_score"] for h in doc["hits"]}
            exp = want.get(v)
            ok = exp is not None and all(
                np.float32(got[f"doc{j}"]) == s for j, s in enumerate(exp[b].tolist())
            )
            run.records.append(Record(t, done, v, conn.pid, None, ok, conn.id))
            run.pids_seen.add(conn.pid)
        i += 1
    if conn is not None:
        conn.close()


def activator(port: int, versions: list[int], every: float, end: float, run: Run) -> None:
    """A thread (timestamps not delayed by the clients' event loop): the next version every
    ``every`` seconds, each on a new connection."""
    import http.client

    k = 1
    nxt = time.perf_counter() + every
    while True:
        time.sleep(max(0.0, nxt - time.perf_counter()))
        if time.perf_counter() >= end - 1.0:  # the last activation completes within the run
            return
        v = versions[k % len(versions)]
        t = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            c.request("POST", f"/models/bench/versions/{v}/activate")
            resp = c.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:  # its connection was on the victim
            status = -1
            print(f"activation of {v} failed: {exc!r}")
        finally:
            c.close()
        run.activations.append(Activation(v, t, time.perf_counter(), status))
        k += 1
        nxt += every


def killer(server_pid: int, at: float, run: Run) -> None:
    """A thread: at ``at``, SIGKILL the lowest-numbered serving worker that answered requests."""
    time.sleep(max(0.0, at - time.perf_counter()))
    children = worker_pids(server_pid)
    run.workers_at_kill = children
    candidates = sorted(p for p in run.pids_seen if p in children) or sorted(children)
    run.victim = candidates[0]
    run.kill_at = time.perf_counter()
    os.kill(run.victim, signal.SIGKILL)


def worker_pids(server_pid: int) -> set[int]:
    """The supervisor's children that are serving processes (multiprocessing spawns them)."""
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server_pid:
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:  # uvicorn's workers (not multiprocessing's resource tracker)
                out.add(int(d.name))
    return out


async def drive(port, server_pid, bodies, want, args) -> Run:
    import threading

    run = Run()
    start = time.perf_counter()
    end = start + args.duration
    threads = [
        threading.Thread(target=activator, args=(port, [1, 2, 3], args.swap_every, end, run))
    ]
    if args.kill:
        threads.append(
            threading.Thread(target=killer, args=(server_pid, start + args.duration / 2, run))
        )
    for t in threads:
        t.start()
    tasks = [
        client_loop(k, port, bodies, want, end, args.reconnect, run) for k in range(args.clients)
    ]
    await asyncio.gather(*tasks)
    for t in threads:
        t.join()
    return run


# ---------------------------------------------------------------------- analysis
def wrong_versions(run: Run, first: int) -> list[Record]:
    """Responses outside the allowed set (see the module docstring). Activations are sequential;
    one whose call failed (its connection was on the killed worker) may or may not have happened,
    so it is allowed from its start on, until a later one completes."""
    acts = run.activations
    activated = {first, *(a.version for a in acts)}
    bad = []
    for r in run.records:
        if r.version is None:
            continue
        k = -1  # the last activation completed before r was sent
        for j, a in enumerate(acts):
            if a.started >= r.sent:
                break
            if a.status == 200 and a.done < r.sent:
                k = j
        allowed = {acts[k].version if k >= 0 else first}
        if k < 0:
            allowed |= {a.version for a in acts if a.status != 200 and a.done < r.sent}
        for a in acts[k + 1 :]:
            if a.started >= r.done:
                break
            allowed.add(a.version)
        if r.version not in allowed or r.version not in activated:
            bad.append(r)
    return bad


def stale_windows(run: Run) -> list[float]:
    """Per activation: how long after it *started* a request was still sent that got the version
    it replaced (0 if none) -- the propagation delay the clients could observe."""
    acts = [a for a in run.activations if a.status == 200]
    out = []
    for j in range(1, len(acts)):
        a, prev = acts[j], acts[j - 1].version
        nxt = acts[j + 1].started if j + 1 < len(acts) else float("inf")
        late = [
            r.sent - a.started
            for r in run.records
            if r.version == prev and a.started <= r.sent < nxt
        ]
        out.append(max(late, default=0.0))
    return out


def check_store(root: Path, want_active: int, n_versions: int) -> dict:
    """The store after the run: every version complete, the pointer on the last activation,
    every job ready, no staging leftovers, the counter past the last version."""
    from ltrcompile.service.store import ModelStore

    s = ModelStore(root)
    try:
        problems = []
        versions = s.versions("bench")
        if versions != list(range(1, n_versions + 1)):
            problems.append(f"versions {versions}")
        for v in versions:
            d = s.version_dir("bench", v)
            for part in ("meta.json", "ir.json", "compiled"):
                if not (d / part).exists():
                    problems.append(f"version {v} lacks {part}")
        active = s.active_version("bench")
        if active != want_active:
            problems.append(f"ACTIVE is {active}, the last completed activation was {want_active}")
        states = sorted({j["state"] for j in s.list_jobs()})
        if states != ["ready"]:
            problems.append(f"job states {states}")
        leftovers = [p.name for p in s.tmp.iterdir()]
        if leftovers:
            problems.append(f"tmp/ holds {leftovers}")
        counter = json.loads((root / "counters" / "bench.json").read_text())["next_version"]
        if counter != n_versions + 1:
            problems.append(f"next_version {counter}")
        return {"consistent": not problems, "problems": problems, "active": active}
    finally:
        s.close()


def summarize(run: Run, duration: float, first: int) -> dict:
    ok = [r for r in run.records if r.version is not None]
    failed = [r for r in run.records if r.version is None]
    kill = run.kill_at

    def lost(r: Record) -> bool:
        """Failed on a connection to the killed worker once it was killed; a connection that had
        not answered yet (pid unknown) counts when its request was sent by 0.5 s after the kill
        (the dead worker may have accepted it; later ones go to the live workers)."""
        if kill is None or r.done < kill:
            return False
        return r.pid == run.victim or (r.pid is None and r.sent <= kill + 0.5)

    with_victim = [r for r in failed if lost(r)]
    per_conn: dict[int | None, int] = {}
    for r in with_victim:
        per_conn[r.conn] = per_conn.get(r.conn, 0) + 1
    other = [r for r in failed if not lost(r)]
    lat = [(r.done - r.sent) * 1e3 for r in ok]
    acts = [a for a in run.activations if a.status == 200]
    act_lat = [(a.done - a.started) * 1e3 for a in acts]
    stale = [x * 1e3 for x in stale_windows(run)]
    wrong = wrong_versions(run, first)
    by_pid: dict[str, int] = {}
    for r in ok:
        by_pid[str(r.pid)] = by_pid.get(str(r.pid), 0) + 1
    return {
        "requests": len(run.records),
        "ok": len(ok),
        "rps": len(ok) / duration,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat, default=float("nan")),
        "failed": len(failed),
        "failed_with_killed_worker": len(with_victim),
        "of_which_sent_before_the_kill": sum(r.sent <= kill for r in with_victim),
        "connections_failing_more_than_once": sum(n > 1 for n in per_conn.values()),
        "failed_other": len(other),
        "failure_kinds": sorted({r.error or "" for r in failed}),
        "wrong_version": len(wrong),
        "wrong_scores": sum(not r.scores_ok for r in ok),
        "activations": len(acts),
        "activations_failed": len(run.activations) - len(acts),
        "activation_ms_p50": pct(act_lat, 50),
        "activation_ms_p99": pct(act_lat, 99),
        "activation_ms_max": max(act_lat, default=float("nan")),
        "stale_after_activation_start_ms_max": max(stale, default=0.0),
        "victim": run.victim,
        "kill_at_s": None
        if run.kill_at is None
        else run.kill_at - min(r.sent for r in run.records),
        "responses_by_pid": by_pid,
    }


# ---------------------------------------------------------------------- main
def start_server(store: Path, port: int, workers: int, log: Path, cache: Path) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "ltrcompile.service", "--store", str(store), "--port", str(port)]
    cmd += ["--workers", str(workers), "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd,
        stdout=open(log, "ab"),  # noqa: SIM115 -- the child holds it
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "LTRCOMPILE_CACHE": str(cache)},
    )
    for _ in range(900):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--swap-every", type=float, default=0.5)
    ap.add_argument("--hits", type=int, default=100)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--reconnect", type=int, default=50, help="requests per connection")
    ap.add_argument("--no-kill", dest="kill", action="store_false")
    ap.add_argument("--work", default=None, help="directory for models and store (default: temp)")
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    args = ap.parse_args(argv)
    args.duration = min(args.duration, 120.0)
    import httpx

    work = Path(args.work or tempfile.mkdtemp(prefix="ltr-scaleout-"))
    work.mkdir(parents=True, exist_ok=True)
    paths = train_versions(work, args.trees)
    bodies = payloads(args.hits, "binary", 20)
    want = expected_scores(paths, bodies)
    port = free_port()
    store = work / f"store-{port}"
    log = work / "server.log"
    proc = start_server(store, port, args.workers, log, work / "cache")
    url = f"http://127.0.0.1:{port}"
    try:
        c = httpx.Client(base_url=url, timeout=900)
        c.put("/featuresets/bench", json={"features": NAMES}).raise_for_status()
        for k, p in enumerate(paths):
            r = c.post(
                "/models/bench/versions",
                params={"featureset": "bench", "wait": "true", "activate": str(k == 0).lower()},
                content=p.read_bytes(),
            )
            r.raise_for_status()
            print(
                f"version {r.json()['version']}: {p.name} compiled in {r.json()['compile_seconds']:.1f} s"
            )
        load0 = os.getloadavg()
        t = time.perf_counter()
        run = asyncio.run(drive(port, proc.pid, bodies, want, args))
        wall = time.perf_counter() - t
        load1 = os.getloadavg()
        children_after = worker_pids(proc.pid)
        replacements = children_after - run.workers_at_kill if run.victim else set()
        answered = {r.pid for r in run.records if r.version is not None}
    finally:
        stop_server(proc)
    res = summarize(run, wall, first=1)
    last = [a for a in run.activations if a.status == 200]
    res["store"] = check_store(store, last[-1].version if last else 1, len(paths))
    res.update(
        workers=args.workers,
        clients=args.clients,
        duration_s=wall,
        swap_every_s=args.swap_every,
        hits=args.hits,
        trees=[args.trees + 10 * k for k in range(len(paths))],
        cpus=os.cpu_count(),
        loadavg_before=load0,
        loadavg_after=load1,
        worker_pids_after=sorted(children_after),
        replacement_pids=sorted(replacements),
        replacement_answered=bool(replacements & answered),
        victim_replaced=run.victim is not None and bool(replacements),
    )
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    verdict = (
        res["wrong_version"] == 0
        and res["wrong_scores"] == 0
        and res["failed_other"] == 0
        and res["connections_failing_more_than_once"] == 0
        and (not args.kill or res["victim_replaced"])
        and res["store"]["consistent"]
    )
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
