"""Load on the served instance: latency of what anonymous visitors open (the dashboard,
a report page, the partner audit, canned queries, public views) under concurrent
clients, through `trustwatch serve` on loopback, against a trivial page of the same
server as the baseline.

    python bench/load.py [--posts 20000] [--clients 20] [--requests 200] [--seconds 30] [--json FILE]

Bounded in time and count: each page gets at most --requests requests or --seconds
seconds, whichever ends first. The database is synthetic (bench/synth.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAGES = [
    ("baseline: /-/versions.json", "/-/versions.json"),
    ("dashboard", "/-/trust"),
    ("report page", "/-/trust/lakeshore"),
    ("partner audit page", "/-/compare?ids=als-hope&ids=lupus-lantern&ids=mn-circle"),
    ("canned: entity_trend", "/{db}/entity_trend.json?entity=lakeshore"),
    ("canned: theme_breakdown", "/{db}/theme_breakdown.json?entity=lakeshore"),
    ("canned: recent_alerts", "/{db}/recent_alerts.json"),
    ("public view, faceted", "/{db}/public_entity_weekly.json?_facet=kind"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def hammer(base: str, path: str, clients: int, requests: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + seconds

    async def worker(client):
        nonlocal issued, errors
        while issued < requests and time.perf_counter() < stop_at:
            issued += 1
            t = time.perf_counter()
            try:
                r = await client.get(path)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t)
            errors += not ok

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) >= 2 else latencies * 99
    return {"requests": len(latencies), "errors": errors, "p50_ms": round(q[49] * 1000, 1),
            "p95_ms": round(q[94] * 1000, 1), "max_ms": round(latencies[-1] * 1000, 1),
            "per_s": round(len(latencies) / elapsed, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=200, help="per page")
    ap.add_argument("--seconds", type=float, default=30, help="per page")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    import httpx

    from bench import synth

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        synth.fill_db(tmp / "bench.db", args.posts)
        print(f"synthetic database: {args.posts} posts in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        (tmp / "trustwatch.toml").write_text('[database]\npath = "bench.db"\n', encoding="utf-8")
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--config", str(tmp / "trustwatch.toml"),
                                   "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(base + "/-/versions.json", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.time() > deadline:
                    print(f"error: the server did not start: {server.stderr.read().decode()[-500:]}", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            results = {}
            for name, path in PAGES:
                results[name] = asyncio.run(hammer(base, path.format(db="bench"), args.clients, args.requests,
                                                   args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=20)

    base_p95 = results[PAGES[0][0]]["p95_ms"] or 0.1
    print(f"\n{args.clients} concurrent anonymous clients, {args.posts} synthetic posts, "
          f"{platform.machine()} with {os.cpu_count()} CPUs\n")
    print(f"{'page':32} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'req/s':>7} {'p95 / baseline':>15}")
    for name, r in results.items():
        print(f"{name:32} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8} "
              f"{r['per_s']:>7} {r['p95_ms'] / base_p95:>15.1f}")
        r["p95_vs_baseline"] = round(r["p95_ms"] / base_p95, 2)
    if args.json:
        args.json.write_text(json.dumps({"posts": args.posts, "clients": args.clients,
                                         "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                                         "pages": results}, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["errors"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
