"""How many cores does this machine really give tag's worker processes?

    python bench/cpu_scaling.py [--counts 1,2,4,8,15] [--posts 2000]

N processes each do the same slice of a tag worker's job (chunking, mention matching and
the shipped bag-of-words reading, then tokenizing, single-threaded, over the same
synthetic posts) at the same time; the
aggregate posts/s against N x one process's rate says how well the machine scales. A
virtual machine or container can show 16 CPUs yet give far fewer cores' worth of time:
on the H200 machine lent in session 5, tag without the encoder ran slower with 8 and 15
workers than with 4, and this is the check for why. Also prints the CPUs the process may
use (affinity mask, cgroup quota), which `[model] workers = 0` (auto) follows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_WORK = None  # (planner, tokenize, items) in each worker


def _init(planner, tokenize, items) -> None:
    global _WORK
    _WORK = (planner, tokenize, items)


def _slice(barrier) -> int:
    planner, tokenize, items = _WORK
    barrier.wait()  # every process starts its slice together
    texts, _plans = planner.plan(items)
    tokenize(texts)
    return len(items)


def measure(counts: list[int], posts: int = 2000) -> list[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from transformers import AutoTokenizer

    from bench.synth import write_dump
    from bench.throughput import dump_posts
    from models.encoder import Tokenize, default_encoder_path, quiet_transformers
    from models.heads import DEFAULT_HEADS, Heads
    from models.tagger import Planner
    from monitor.cli import DEMO_DIR
    from monitor.config import load_config
    from monitor.pipeline import _ONE_THREAD, cgroup_cpu_quota, usable_cpus

    with tempfile.TemporaryDirectory() as tmp:
        write_dump(Path(tmp) / "posts.ndjson", posts)
        items = [(p.id, p.title, p.text) for p in dump_posts(str(Path(tmp) / "posts.ndjson"), posts)]
    quiet_transformers()
    tokenize = Tokenize(AutoTokenizer.from_pretrained(str(default_encoder_path())), 256, 256)
    heads = Heads.load(DEFAULT_HEADS)
    planner = Planner(load_config(DEMO_DIR / "trustwatch.toml").watch, heads.theme_thresholds, heads.lexical_model)
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    quota = cgroup_cpu_quota()
    print(f"os.cpu_count {os.cpu_count()}, affinity {affinity}, cgroup CPU quota "
          f"{'none' if quota is None else f'{quota:g}'}, usable {usable_cpus()}; {posts} posts per process")
    os.environ.update(_ONE_THREAD)  # as tag's workers run
    rows, one = [], None
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    for n in counts:
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init, initargs=(planner, tokenize, items)) as pool:
            ready = manager.Barrier(n, timeout=300)
            assert len(set(pool.map(_hold, [ready] * n))) == n
            go = manager.Barrier(n, timeout=300)
            t0 = time.perf_counter()
            done = sum(pool.map(_slice, [go] * n))
            rate = done / (time.perf_counter() - t0)
        one = one or rate / n
        rows.append({"processes": n, "posts_per_s": round(rate, 1), "speedup": round(rate / one, 2),
                     "efficiency": round(rate / one / n, 2)})
        print(f"{n:3d} processes: {rate:8.1f} posts/s  speedup {rate / one:5.2f}  efficiency {rate / one / n:4.2f}",
              flush=True)
    manager.shutdown()
    return rows


def _hold(barrier) -> int:
    barrier.wait()  # n tasks waiting at once: n distinct processes, each started and loaded
    return os.getpid()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1,2,4,8", help="numbers of processes to try, in order (first: the baseline)")
    ap.add_argument("--posts", type=int, default=2000, help="posts each process works through")
    args = ap.parse_args(argv)
    try:
        counts = [int(c) for c in args.counts.split(",")]
        if any(c < 1 for c in counts):
            raise ValueError
    except ValueError:
        ap.error(f"--counts: a list of positive numbers, such as 1,2,4,8 (got {args.counts})")
    measure(counts, args.posts)


if __name__ == "__main__":
    main()
