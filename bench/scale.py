"""Scale: the cost of each step at a million posts, each measured against a baseline run
in the same process (or the same run), so the ratios hold on a noisy machine.

    python bench/scale.py [--posts N] [--tag-sample 600] [--out bench/results.json]
    BENCH_POSTS=20000 make bench        # a quick run

Steps, on fictional data from bench/synth.py:
1. ingest: `trustwatch collect` reads an N-post Reddit dump into a new database (the real
   collector, pseudonymisation, masking, upserts, full-text index), in a child process
   whose peak RSS is recorded; baseline: the same rows through plain sqlite3
   `executemany` in one transaction into the same, empty table (indexes and full-text
   index included), so the ratio is trustwatch's own overhead.
2. tag: `trustwatch tag` (MiniLM) against the raw encoder forward pass on the same sample
   of posts, interleaved rounds (bench/throughput.py), in a child process; **measured on
   a sample and extrapolated** to N posts.
3. aggregate: synthetic tags and mentions for all N posts (no model), the first full
   aggregation, then one new week of posts and the incremental update it needs.
4. queries: the entity trend and theme breakdown canned queries and the full-text search
   of posts about an entity, through Datasette in-process, against a trivial page.
5. size: database bytes per post.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SALT_ENV = {"TRUSTWATCH_SALT": "bench-salt-fictional-0123456789"}


def child(code: str, *args: str) -> dict:
    """Run a phase in a fresh interpreter; it prints one JSON object as its last line,
    to which its peak RSS is added. On Linux that is VmHWM, the peak of the child's own
    memory: ru_maxrss would include the parent's peak, which the kernel carries across
    the spawn (the parent has just read a million rows for the SQLite baseline)."""
    wrapper = (
        "import json, resource, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"{code}\n"
        "def _peak_mb():\n"
        "    try:\n"
        "        for line in open('/proc/self/status'):\n"
        "            if line.startswith('VmHWM:'):\n"
        "                return round(int(line.split()[1]) / 1024, 1)\n"
        "    except OSError:\n"
        "        pass\n"
        "    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)\n"
        "out['rss_mb'] = _peak_mb()\n"
        "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                          env={**os.environ, **SALT_ENV, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"phase failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


INGEST = """
import time
from monitor.cli import cli
t = time.perf_counter()
try:
    cli(["collect", "--config", sys.argv[1]], standalone_mode=False)
except SystemExit as e:
    if e.code:
        raise
out = {"seconds": time.perf_counter() - t}
"""

TAG = """
import io, contextlib
from bench import throughput
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    figures = throughput.measure(posts=int(sys.argv[1]), batch=16, rounds=3, source=sys.argv[2])
out = figures
"""


def raw_sqlite_baseline(db_path: Path, target: Path) -> tuple[float, int]:
    """Seconds to insert the ingested rows with plain sqlite3 `executemany`, in one
    transaction, into the same table (its indexes and full-text index included): what
    SQLite itself costs, without trustwatch's reading, checking and pseudonymising."""
    from monitor import storage

    src = sqlite3.connect(db_path)
    cols = [r[1] for r in src.execute("pragma table_info(posts)")]
    rows = src.execute(f"select {', '.join(cols)} from posts").fetchall()
    src.close()
    storage.open_db(target).close()  # the same schema, empty
    dst = sqlite3.connect(target)
    t = time.perf_counter()
    with dst:
        dst.executemany(f"insert into posts values ({', '.join('?' * len(cols))})", rows)
    seconds = time.perf_counter() - t
    dst.close()
    return seconds, len(rows)


def add_synthetic_tags(db, model: str, where: str = "1", seed: int = 11) -> int:
    """Tags and mentions for posts without tags, as a tagger would write them."""
    from bench.synth import ENTITIES, THEMES, _scores

    rng = random.Random(seed)
    n = 0
    last = 0
    while True:
        rows = db.execute(f"select rowid, id, content_hash, length(title) from posts where rowid > ? and {where} "
                          "order by rowid limit 5000", [last]).fetchall()
        if not rows:
            return n
        last = rows[-1][0]
        tags, mentions = [], []
        for _, pid, chash, tlen in rows:
            s, sc = _scores(rng)
            tags.append({"post_id": pid, "model": model, "sentiment": s, **sc, "themes": "{}",
                         "content_hash": chash, "watchlist_hash": "bench", "tagged_at": "2026-11-01T00:00:00Z"})
            if rng.random() < 0.4:
                for k, e in enumerate(rng.sample(ENTITIES, 2 if rng.random() < 0.15 else 1)):
                    ms, msc = _scores(rng)
                    themes = {rng.choice(THEMES): rng.choice(["builds", "erodes"])} if rng.random() < 0.3 else {}
                    mentions.append({"post_id": pid, "entity_id": e[0], "model": model, "start": tlen + 10 * k,
                                     "end": tlen + 10 * k + 5, "surface": e[3], "sentiment": ms, **msc,
                                     "themes": json.dumps(themes)})
        with db.atomic():
            db["post_tags"].insert_all(tags, pk=("post_id", "model"), batch_size=1000)
            db["mentions"].insert_all(mentions, pk=("post_id", "model", "start"), batch_size=1000)
        n += len(rows)


def time_requests(ds, path: str, count: int, cookies: dict) -> list[float]:
    import asyncio

    async def go():
        out = []
        for i in range(count + 3):
            t = time.perf_counter()
            r = await ds.client.get(path, cookies=cookies)
            if r.status_code != 200:
                raise SystemExit(f"{path}: HTTP {r.status_code}")
            if i >= 3:  # the first three warm the caches
                out.append((time.perf_counter() - t) * 1000)
        return out

    return asyncio.run(go())


def pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=int(os.environ.get("BENCH_POSTS", 1_000_000)))
    ap.add_argument("--tag-sample", type=int, default=300)
    ap.add_argument("--queries", type=int, default=40, help="requests per query")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--workdir", type=Path, help="keep the databases here (default: a temporary folder)")
    args = ap.parse_args(argv)

    from bench import synth

    tmpdir = None if args.workdir else tempfile.TemporaryDirectory()
    work = args.workdir or Path(tmpdir.name)
    work.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    n = args.posts
    results: dict = {"posts": n}

    t = time.perf_counter()
    synth.write_dump(work / "dump.ndjson", n)
    log(f"dump: {n} fictional posts written in {time.perf_counter() - t:.0f} s")
    (work / "trustwatch.toml").write_text(
        '[database]\npath = "bench.db"\n\n' + "\n".join(
            f'[[watch]]\nid = "{e[0]}"\nkind = "{e[1]}"\nname = "{e[2]}"\naliases = ["{e[3]}"]\n' for e in synth.ENTITIES)
        + '\n[[source]]\nname = "bench-dump"\ntype = "reddit-dump"\npath = "dump.ndjson"\n', encoding="utf-8")

    ingest = child(INGEST, str(work / "trustwatch.toml"))
    raw_s, raw_n = raw_sqlite_baseline(work / "bench.db", work / "raw.db")
    results["ingest_posts_per_s"] = round(raw_n / ingest["seconds"], 1)
    results["ingest_vs_raw_sqlite"] = round(raw_s / ingest["seconds"], 3)
    results["peak_rss_mb_ingest"] = ingest["rss_mb"]
    log(f"ingest: {raw_n} posts in {ingest['seconds']:.1f} s ({results['ingest_posts_per_s']:.0f}/s); "
        f"plain sqlite3 {raw_s:.1f} s; peak RSS {ingest['rss_mb']} MB")
    (work / "raw.db").unlink()

    tag = child(TAG, str(args.tag_sample), str(work / "dump.ndjson"))
    results["tag_posts_per_s"] = tag["tag_posts_per_s"]
    results["tag_vs_encoder"] = tag["tag_vs_encoder"]
    results["tag_vs_encoder_cut256"] = tag["tag_vs_encoder_cut256"]
    results["tag_tokens_median"] = tag["tokens_median"]
    results["tag_hours_extrapolated"] = round(n / tag["tag_posts_per_s"] / 3600, 2)
    results["peak_rss_mb_tag"] = tag["rss_mb"]
    log(f"tag (sample of {args.tag_sample}): {tag['tag_posts_per_s']} posts/s, "
        f"{tag['tag_vs_encoder']} of the raw encoder ({tag['tag_vs_encoder_cut256']} of it cut at 256 tokens); {n} posts would take {results['tag_hours_extrapolated']} h")

    from monitor import aggregate, storage

    db = storage.open_db(work / "bench.db")
    storage.register_model(db, synth.MODEL)
    t = time.perf_counter()
    add_synthetic_tags(db, synth.MODEL["id"])
    log(f"synthetic tags and mentions for {n} posts in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    first = aggregate.update(db, synth.MODEL["id"])
    results["aggregate_full_s"] = round(time.perf_counter() - t, 2)
    import datetime as dt

    start = storage_date(db.execute("select max(created_at) from posts").fetchone()[0]) + dt.timedelta(days=1)
    weekly = max(1, n // 104)
    new_rows = []
    for i, (row, _, _) in enumerate(synth.posts(weekly, seed=99, weeks=1)):
        when = start + dt.timedelta(seconds=7 * 86400 * i // weekly)
        new_rows.append(dict(row, id=row["id"].replace("bench:", "bench:new"),
                             created_at=when.strftime("%Y-%m-%dT%H:%M:%SZ")))
    with db.atomic():
        db["posts"].insert_all(new_rows, pk="id", batch_size=1000)
    add_synthetic_tags(db, synth.MODEL["id"], where="id like 'bench:new%'", seed=12)
    t = time.perf_counter()
    update = aggregate.update(db, synth.MODEL["id"])
    results["aggregate_update_s"] = round(time.perf_counter() - t, 3)
    log(f"aggregate: first build {results['aggregate_full_s']} s ({first.weeks} weeks); one new week "
        f"({len(new_rows)} posts) {results['aggregate_update_s']} s ({update.weeks} weeks recomputed)")
    db.close()

    from monitor.serve import make_datasette

    ds = make_datasette(work / "bench.db")
    cookies = {"ds_actor": ds.sign({"a": {"id": "bench"}}, "actor")}
    queries = {
        "baseline": "/-/versions.json",
        "entity_trend": "/bench/entity_trend.json?entity=lakeshore",
        "theme_breakdown": "/bench/theme_breakdown.json?entity=lakeshore",
        "fts_search": "/bench/search_posts_about_entity.json?entity=lakeshore&q=placebo",
    }
    import asyncio

    asyncio.run(ds.invoke_startup())
    p50s, p95s = [], []
    for name, path in queries.items():
        times = time_requests(ds, path, args.queries, cookies)
        results[f"query_{name}_p50_ms"], results[f"query_{name}_p95_ms"] = pct(times, 50), pct(times, 95)
        if name != "baseline":
            p50s.append(results[f"query_{name}_p50_ms"])
            p95s.append(results[f"query_{name}_p95_ms"])
    results["query_p50_ms"], results["query_p95_ms"] = max(p50s), max(p95s)
    results["query_p95_vs_baseline"] = round(results["query_p95_ms"] / max(results["query_baseline_p95_ms"], 0.1), 1)

    size = sum(p.stat().st_size for p in work.glob("bench.db*"))
    results["db_bytes_per_post"] = round(size / (n + len(new_rows)))
    results["peak_rss_mb"] = max(results["peak_rss_mb_ingest"], results["peak_rss_mb_tag"])
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, no GPU"
    if tmpdir:
        tmpdir.cleanup()

    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\n{n} fictional posts on {results['machine']} ({args.out.name})\n")
    rows = [
        ("ingest_posts_per_s", "posts/s, dump -> database", None),
        ("ingest_vs_raw_sqlite", "of plain sqlite3 executemany", 0.3),
        ("tag_posts_per_s", f"posts/s, MiniLM, sample of {args.tag_sample} (extrapolated)", None),
        ("tag_vs_encoder", "of the raw encoder forward", 0.85),
        ("aggregate_update_s", "s for one new week on top of all posts", None),
        ("query_p50_ms", "ms, slowest of trend / themes / FTS", None),
        ("query_p95_ms", "ms, slowest of trend / themes / FTS", 100),
        ("db_bytes_per_post", "bytes", None),
        ("peak_rss_mb", "MB (ingest / tag: "
         f"{results['peak_rss_mb_ingest']} / {results['peak_rss_mb_tag']})", None),
    ]
    for key, what, target in rows:
        mark = ""
        if target is not None:
            ok = results[key] <= target if key == "query_p95_ms" else results[key] >= target
            mark = f"  target {'<' if key == 'query_p95_ms' else '>='} {target}: {'met' if ok else 'NOT met'}"
        print(f"{key:22} {results[key]:>10}  {what}{mark}")
    return 0


def storage_date(iso: str):
    import datetime as dt

    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


if __name__ == "__main__":
    sys.exit(main())
