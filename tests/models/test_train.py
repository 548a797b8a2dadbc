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


def _mixed_items() -> list[Item]:
    """drugsCom-like reviews (no themes) beside forum posts with theme labels."""
    rng = np.random.default_rng(4)
    out = [Item(f"this drug was {'awful' if k == 0 else 'fine' if k == 1 else 'great'} for me, week {i}",
                int(k), NO_THEMES, source="drugs") for i, k in enumerate(rng.integers(0, 3, 24))]
    for i in range(36):
        themes = [0] * 7
        themes[i % 7] = 1 + i % 2
        out.append(Item(f"the site {'told us everything' if i % 2 == 0 else 'hid the results'} {i}",
                        2 if i % 2 == 0 else 0, themes))
    return out


def test_drugs_weight_repeats_only_drugscom_reviews():
    from models.train import _weighted

    items = _mixed_items()
    out = _weighted(items, 3)
    drugs = [i for i in items if i.source == "drugs"]
    assert len(out) == len(items) + 2 * len(drugs)
    assert sum(i.source == "drugs" for i in out) == 3 * len(drugs)
    assert _weighted(items, 1) == items


def test_training_with_a_rank_and_weights_gives_loadable_adapters(tiny_encoder_dir, tmp_path):
    import models
    from models.train import train_lora

    lines = []
    kw = dict(rank=2, drugs_weight=2, theme_weight=2.0, encoder_path=tiny_encoder_dir, log=lines.append)
    heads = train_lora(_mixed_items(), seed=13, epochs=2, **kw)
    assert len(lines) == 2 and "drugs" in lines[0] and "forum" in lines[0]
    assert heads.meta["epoch"] in (1, 2)
    assert heads.lora["lora/encoder.layer.0.attention.self.query/A"].shape == (2, 32)
    assert heads.lora["lora/encoder.layer.0.intermediate.dense/B"].shape == (64, 2)
    # Seeded: the same data and seed give the same adapters and heads.
    again = train_lora(_mixed_items(), seed=13, epochs=2, **{**kw, "log": lambda m: None})
    assert all(np.array_equal(heads.lora[k], again.lora[k]) for k in heads.lora)
    assert np.array_equal(heads.themes_W, again.themes_W)
    heads.save(tmp_path / "heads.npz")
    tags = models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "heads.npz").tag([("p1", "", "the site hid it")])
    assert tags[0].sentiment in ("negative", "neutral", "positive")


def test_training_options_are_checked(capsys):
    import pytest

    from models.train import main

    for bad in (["--rank", "0"], ["--drugs-weight", "0"], ["--theme-weight", "-1"]):
        with pytest.raises(SystemExit) as exit:
            main(bad)
        assert exit.value.code == 2
    assert "--rank and --drugs-weight must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--parts", "abk"])  # part k is the dev split: nothing in it is for training
    assert "--parts: letters of the corpus parts with training posts, from abcdefghij" in capsys.readouterr().err


def test_a_refit_takes_the_recipe_the_file_was_trained_with():
    import argparse

    from models.train import take_recipe

    args = argparse.Namespace(method="lora", seed=13, epochs=10, lr=1e-3, rank=8, drugs_weight=1, theme_weight=1.0,
                              parts="abcdefg")
    take_recipe(args, {"rank": 4, "drugs_weight": 3, "theme_weight": 2.0, "epochs": 15, "seed": 7,
                       "trained_on": {"forum_parts": "abcdefgh"}})
    assert (args.rank, args.drugs_weight, args.theme_weight, args.epochs, args.seed, args.parts) == (
        4, 3, 2.0, 15, 7, "abcdefgh")
    take_recipe(args, {"rank": None})  # a file from before these options: nothing changes
    assert args.rank == 4 and args.lr == 1e-3


def test_written_drug_reviews_train_sentiment_only_as_reviews(monkeypatch):
    """Part i's reviews are their own source in the log and carry no theme; the forum
    posts beside them keep theirs. (drugsCom is left out: CI does not install it.)"""
    from models import train

    monkeypatch.setattr(train, "load_drugscom", lambda split: [])
    items, info = train.training_items("hi")
    reviews = [i for i in items if i.source == "review"]
    assert len(reviews) == 600 and info["forum_parts"] == "hi"
    assert all(i.themes == [0] * len(i.themes) and i.sentiment in (0, 1, 2) for i in reviews)
    assert {i.sentiment for i in reviews} == {0, 1, 2}
    forum = [i for i in items if i.source == "forum"]
    assert forum and any(max(i.themes) > 0 for i in forum)
