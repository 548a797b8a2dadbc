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
            device: str = "cpu", workers: int = 1) -> dict:
    """Raw encoder forward against `trustwatch tag` on the same posts (the demo's, or the
    first of a dump file), interleaved rounds; prints the figures and returns them."""
    import torch

    from models import load_tagger
    from models.tagger import full_text
    from monitor.config import load_config
    from monitor.cli import DEMO_DIR

    demo_cfg = load_config(DEMO_DIR / "trustwatch.toml")
    n_posts = posts
    posts = dump_posts(source, n_posts) if source else demo_posts(n_posts)
    tagger = load_tagger(demo_cfg.watch, batch_size=batch, int8=int8, device=device)
    texts = [full_text(p.title, p.text) for p in posts]
    lengths = sorted(tagger.encoder.token_lengths(texts))
    tagger.encoder.encode(texts[:32], batch_size=batch)  # warm up

    raws, cuts, tags = [], [], []
    mentions = 0
    for _ in range(rounds):  # interleaved rounds: a busy moment hits every side
        t0 = time.perf_counter()
        tagger.encoder.encode(texts, batch_size=batch, max_length=MODEL_LIMIT)
        raws.append(len(posts) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        tagger.encoder.encode(texts, batch_size=batch, max_length=256)
        cuts.append(len(posts) / (time.perf_counter() - t0))
        rate, mentions = tag_once(posts, tagger, demo_cfg.watch, workers)
        tags.append(rate)
    overhead = pipeline_overhead(posts, tagger, demo_cfg.watch, workers)
    ratios = sorted(t / r for t, r in zip(tags, raws))
    cut_ratio = statistics.median(t / c for t, c in zip(tags, cuts))
    raw, tag = statistics.median(raws), statistics.median(tags)

    print(f"posts: {len(posts)}, tokens per post median {lengths[len(lengths) // 2]}, "
          f"p90 {lengths[int(len(lengths) * 0.9)]}; {mentions} mentions; "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; {device_name(device)}; "
          f"encoder {'int8' if int8 else 'fp16' if device.startswith('cuda') else 'fp32'}; tag workers {workers}")
    print(f"raw encoder forward: {raw:7.1f} posts/s (median; whole posts up to {MODEL_LIMIT} tokens)")
    print(f"  cut at 256 tokens: {statistics.median(cuts):7.1f} posts/s")
    print(f"trustwatch tag:      {tag:7.1f} posts/s (median)")
    print(f"tag_vs_encoder:      {statistics.median(ratios):7.2f}  (median of {rounds} rounds; "
          f"range {ratios[0]:.2f}-{ratios[-1]:.2f}; against the 256-token cut {cut_ratio:.2f})")
    print(f"tag without the encoder: {overhead:7.1f} posts/s ({workers} worker(s): chunking, mentions, heads, SQLite; "
          f"{1000 / overhead:.2f} ms per post, the ceiling on any accelerator)")
    return {"tag_posts_per_s": round(tag, 1), "tag_without_encoder_posts_per_s": round(overhead, 1), "raw_posts_per_s": round(raw, 1),
            "tag_vs_encoder": round(statistics.median(ratios), 3),
            "raw_cut256_posts_per_s": round(statistics.median(cuts), 1), "tag_vs_encoder_cut256": round(cut_ratio, 3),
            "tokens_median": lengths[len(lengths) // 2], "posts": len(posts), "mentions": mentions,
            "encoder": "int8" if int8 else "fp16" if device.startswith("cuda") else "fp32",
            "device": device_name(device), "workers": workers}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return "CPU"


class NullEncoder:
    """Stands in for the encoder: vectors of the right shape at no cost, so the rest of
    `trustwatch tag` can be timed alone."""

    def __init__(self, dim: int):
        self.dim, self.path = dim, "null"

    def encode(self, texts, batch_size: int = 16, max_length: int | None = None):
        import numpy as np

        out = np.random.default_rng(len(texts)).normal(size=(len(texts), self.dim)).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def pipeline_overhead(posts, tagger, watch, workers: int = 1) -> float:
    """posts/s of `trustwatch tag` with the encoder's forward taken out (best of 3)."""
    import copy

    null = copy.copy(tagger)
    null.encoder = NullEncoder(tagger.encoder.dim)
    return max(tag_once(posts, null, watch, workers)[0] for _ in range(3))


def tag_once(posts, tagger, watch, workers: int = 1) -> tuple[float, int]:
    """`trustwatch tag` of the posts into a new database: (posts/s, mentions stored)."""
    from monitor import pipeline, storage
    from monitor.config import Config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(path=Path(tmp) / "bench.toml", database=Path(tmp) / "bench.db", watch=watch)
        db = storage.open_db(cfg.database)
        storage.save_posts(db, posts)
        t0 = time.perf_counter()
        n = pipeline.tag(cfg, db, log=lambda m: None, tagger=tagger, workers=workers)
        rate = n / (time.perf_counter() - t0)
        mentions = db.execute("select count(*) from mentions").fetchone()[0]
        db.close()
    return rate, mentions


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
    ap.add_argument("--workers", type=int, default=1, help="tag's worker processes ([model] workers)")
    args = ap.parse_args(argv)
    if args.synthetic:
        from bench.synth import write_dump

        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / "synthetic.ndjson"
            write_dump(dump, args.posts)
            measure(args.posts, args.batch, args.rounds, str(dump), args.int8, args.device, args.workers)
    else:
        measure(args.posts, args.batch, args.rounds, args.dump, args.int8, args.device, args.workers)


if __name__ == "__main__":
    main()
