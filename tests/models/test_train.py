"""The training steps that run without the real encoder: the sentiment head refit."""

import numpy as np

from models.train import NO_THEMES, Item, refit_sentiment


def _items(n: int = 240) -> list[Item]:
    words = {0: "awful terrible rude", 1: "the form arrived on tuesday", 2: "wonderful kind helpful"}
    rng = np.random.default_rng(3)
    return [Item(f"{words[int(k)]} visit {i}", int(k), NO_THEMES) for i, k in enumerate(rng.integers(0, 3, n))]


def test_refit_replaces_a_poor_sentiment_head_and_says_so(tiny_tagger):
    from tests.conftest import make_heads

    heads = make_heads(32, seed=5)
    before = heads.sentiment_W.copy()
    lines = []
    out = refit_sentiment(heads, _items(), seed=13, log=lines.append, encoder=tiny_tagger.encoder)
    info = out.meta["sentiment_head"]
    assert info["l2"] in (1e-4, 1e-3, 1e-2)
    assert info["validation_macro_f1"] > info["joint_head_validation_macro_f1"]
    assert info["validation_macro_f1"] > 0.9  # the three kinds of text are easy to tell apart
    assert not np.array_equal(out.sentiment_W, before)
    assert len(lines) == 3


def test_refit_keeps_the_joint_head_when_it_is_better(tiny_tagger):
    from tests.conftest import make_heads

    items = _items()
    first = refit_sentiment(make_heads(32, seed=5), items, seed=13, log=lambda m: None, encoder=tiny_tagger.encoder)
    again = refit_sentiment(first, items, seed=13, log=lambda m: None, encoder=tiny_tagger.encoder)
    # Refitting a head that is already the best fit finds nothing better: it is kept.
    assert again.meta["sentiment_head"]["refit"] is None
    assert np.array_equal(again.sentiment_W, first.sentiment_W)
