"""Figures for the tagger: drugsCom test sentiment, the forum corpus held-out split, and
its second held-out set in the sarcastic, implicit voice of real subreddits (part g).

``python -m models.evaluate`` prints them for the shipped model."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from typing import Sequence

from .corpus import CORPUS_DIR, Example, load_drugscom, load_forum_corpus
from .heads import SENTIMENTS
from .mentions import Entity


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = SENTIMENTS) -> float:
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred))
        fp = sum(g != label and p == label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def corpus_entities() -> list[Entity]:
    data = tomllib.loads((CORPUS_DIR / "watchlist.toml").read_text(encoding="utf-8"))
    return [
        Entity(id=w["id"], kind=w["kind"], name=w["name"], aliases=tuple(w.get("aliases", [])),
               partners=tuple(w.get("partners", [])))
        for w in data["watch"]
    ]


def evaluate_forum(tagger, examples: list[Example]) -> dict:
    tags = tagger.tag([(e.id, "", e.text) for e in examples])
    gold_s = [e.sentiment for e in examples]
    pred_s = [t.sentiment for t in tags]
    th = Counter()
    for e, t in zip(examples, tags):
        g = set(e.themes.items())
        p = set(t.themes.items())
        th["tp"] += len(g & p)
        th["fp"] += len(p - g)
        th["fn"] += len(g - p)
    mc = Counter()
    ms_right = ms_total = 0
    for e, t in zip(examples, tags):
        g = {(m.entity, m.start, m.end): m for m in e.mentions}
        p = {(m.entity, m.start, m.end): m for m in t.mentions}
        mc["tp"] += len(g.keys() & p.keys())
        mc["fp"] += len(p.keys() - g.keys())
        mc["fn"] += len(g.keys() - p.keys())
        for k in g.keys() & p.keys():
            ms_total += 1
            ms_right += g[k].sentiment == p[k].sentiment
    return {
        "posts": len(examples),
        "post_sentiment_macro_f1": round(macro_f1(gold_s, pred_s), 4),
        "theme_micro": prf(th["tp"], th["fp"], th["fn"]),
        "mention": prf(mc["tp"], mc["fp"], mc["fn"]),
        "mention_sentiment_accuracy": round(ms_right / ms_total, 4) if ms_total else 0.0,
        "mentions_matched": ms_total,
    }


def evaluate_drugscom(tagger, examples: list[Example]) -> dict:
    tags = tagger.tag([(e.id, "", e.text) for e in examples])
    return {
        "reviews": len(examples),
        "macro_f1": round(macro_f1([e.sentiment for e in examples], [t.sentiment for t in tags]), 4),
    }


def corpus_tagger(tagger):
    """The same model, watching the corpus' (fictional) watchlist."""
    from .tagger import Tagger

    return Tagger(tagger.encoder, tagger.heads, corpus_entities(),
                  sentiment_model=tagger.sentiment_model, theme_model=tagger.theme_model,
                  batch_size=tagger.batch_size)


def evaluate(tagger) -> dict:
    """Every figure, on data never trained on."""
    corpus = load_forum_corpus()
    forum_tagger = corpus_tagger(tagger)
    return {
        "drugscom_test": evaluate_drugscom(tagger, load_drugscom("test")),
        "forum_heldout": evaluate_forum(forum_tagger, [e for e in corpus if e.split == "heldout"]),
        "forum_heldout_voice": evaluate_forum(forum_tagger, [e for e in corpus if e.split == "heldout_voice"]),
    }


def main() -> None:
    from . import load_tagger

    print(json.dumps(evaluate(load_tagger()), indent=2))


if __name__ == "__main__":
    main()
