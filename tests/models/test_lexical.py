import math

import numpy as np
import pytest

from models.heads import SENTIMENTS, Heads
from models.lexical import Lexical, choose_weight, fit_lexical, folds, terms, vocabulary

# Fictional review snippets: the words decide the class.
NEG = ["awful side effects, I stopped", "terrible nausea and awful headaches", "worst week, awful rash",
       "stopped it, terrible dizziness", "awful, would not take again", "terrible experience overall"]
NEU = ["some days fine, some days not", "hard to say yet, week two", "mixed so far, some days fine",
       "no change yet, hard to say", "too early to say, mixed", "mixed feelings, no change"]
POS = ["great results, no side effects", "wonderful, my pain is gone", "great so far, feel wonderful",
       "life changing, great drug", "wonderful relief, great sleep", "great, would recommend"]


def test_terms_are_lowercase_unigrams_and_bigrams():
    assert terms("Lakeshore's NURSES were great, a b") == [
        "lakeshore", "nurses", "were", "great", "lakeshore nurses", "nurses were", "were great"]


def test_vectors_are_sublinear_tfidf_of_unit_length():
    texts = ["good good site", "good sponsor", "bad site", "bad bad sponsor"]
    vocab, idf = vocabulary(texts)
    # Terms in fewer than two texts are left out.
    assert set(vocab) == {"bad", "good", "site", "sponsor"}
    assert idf[vocab["good"]] == pytest.approx(math.log(5 / 3) + 1)
    lex = Lexical(vocab, idf, np.zeros((3, 4)), np.zeros(3), 0.5)
    (cols, vals), = lex.rows(["Good good SITE, unseen words"])
    got = dict(zip(cols.tolist(), vals.tolist()))
    g, s = (1 + math.log(2)) * idf[vocab["good"]], idf[vocab["site"]]
    norm = math.hypot(g, s)
    assert got == pytest.approx({vocab["good"]: g / norm, vocab["site"]: s / norm})
    (cols, vals), = lex.rows(["nothing known here"])
    assert len(cols) == 0
    assert lex.predict(["nothing known here"])[0] == pytest.approx([1 / 3] * 3)


def test_fit_learns_which_words_carry_sentiment():
    texts = NEG + NEU + POS
    labels = [0] * 6 + [1] * 6 + [2] * 6
    lex = fit_lexical(texts, labels, 1e-4)
    pred = lex.predict(["awful nausea, stopped", "great relief", "mixed, hard to say"]).argmax(1)
    assert [SENTIMENTS[p] for p in pred] == ["negative", "positive", "neutral"]


def test_folds_deal_each_class_out_evenly():
    labels = [0] * 10 + [1] * 5 + [2] * 5
    parts = folds(labels, 5, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(20))
    assert all(sum(labels[i] == 0 for i in f) == 2 for f in parts)
    assert [f.tolist() for f in parts] == [f.tolist() for f in folds(labels, 5, seed=1)]


def test_blend_weight_is_the_smallest_within_a_tie_of_the_best():
    gold = ["negative", "positive", "neutral", "positive"]
    # Columns: negative, neutral, positive. The head gets the second and third wrong.
    head = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7]])
    lex = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    # The second is right from a weight of 0.23, the third from 0.42: 0.5 is the first in
    # the grid to get all four.
    assert choose_weight(head, lex, gold, log=lambda *_: None) == 0.5
    # When the lexical model changes nothing, every weight ties and the head stays alone.
    assert choose_weight(lex, lex, gold, log=lambda *_: None) == 0.0


def _with_lexical(heads: Heads, weight: float) -> Heads:
    lex = fit_lexical(NEG + NEU + POS, [0] * 6 + [1] * 6 + [2] * 6, 1e-4)
    heads.lexical = lex.arrays()
    heads.meta["lexical"] = {"weight": weight}
    return heads


def test_heads_file_keeps_the_lexical_model_and_refuses_a_damaged_one(tmp_path):
    from conftest import make_heads
    from models.errors import ModelLoadError

    h = _with_lexical(make_heads(8), 0.4)
    h.save(tmp_path / "h.npz")
    back = Heads.load(tmp_path / "h.npz").lexical_model
    assert back.weight == 0.4
    texts = ["awful rash", "great relief"]
    assert np.allclose(back.predict(texts), h.lexical_model.predict(texts), atol=1e-6)
    assert make_heads(8).lexical_model is None
    h.lexical["lexical/W"] = h.lexical["lexical/W"][:, :3]
    h.save(tmp_path / "bad.npz")
    with pytest.raises(ModelLoadError, match="lexical model is damaged"):
        Heads.load(tmp_path / "bad.npz")


def test_post_sentiment_blends_the_lexical_reading_and_mentions_keep_the_encoders(
        tiny_encoder_dir, tmp_path, tiny_sentiment_dir):
    import models
    from conftest import FIXTURES, make_heads
    from monitor.config import load_watchlist

    watch = load_watchlist(FIXTURES / "watchlist.toml")
    make_heads(32).save(tmp_path / "plain.npz")
    _with_lexical(make_heads(32), 1.0).save(tmp_path / "all-lexical.npz")
    _with_lexical(make_heads(32), 0.5).save(tmp_path / "half.npz")
    items = [("1", "", "Awful nausea at Lakeshore, I stopped."), ("2", "", "Great relief, great sleep.")]
    plain = models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "plain.npz").tag(items)
    full = models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "all-lexical.npz").tag(items)
    half = models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "half.npz").tag(items)
    assert [t.sentiment for t in full] == ["negative", "positive"]
    # At weight 1 the post sentiment is the lexical model's alone.
    lexical = Heads.load(tmp_path / "all-lexical.npz").lexical_model.predict([text for _, _, text in items])
    for tag, row in zip(full, lexical):
        assert [tag.scores[s] for s in SENTIMENTS] == pytest.approx(row.tolist(), abs=1e-4)
    assert [t.scores for t in full] != [t.scores for t in plain]
    # A post with no term the model knows gets the encoder's reading, not the model's prior.
    unknown = [("3", "", "+1 \U0001F44D"), ("4", "", "")]
    assert [t.scores for t in models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "all-lexical.npz").tag(unknown)] == [
        t.scores for t in models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "plain.npz").tag(unknown)]
    for p, f, h in zip(plain, full, half):
        for s in SENTIMENTS:
            assert h.scores[s] == pytest.approx((p.scores[s] + f.scores[s]) / 2, abs=2e-4)
    assert [m.scores for m in full[0].mentions] == [m.scores for m in plain[0].mentions]
    assert full[0].mentions and full[0].themes == plain[0].themes
    # A hub sentiment model replaces the heads' sentiment, lexical part included.
    hub = models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "all-lexical.npz",
                             sentiment=str(tiny_sentiment_dir)).tag(items)
    hub_plain = models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "plain.npz",
                                   sentiment=str(tiny_sentiment_dir)).tag(items)
    assert [t.scores for t in hub] == [t.scores for t in hub_plain]


def test_the_command_fits_on_posts_chooses_the_weight_on_dev_and_measures(tmp_path, monkeypatch, tiny_encoder_dir):
    import models.corpus
    import models.encoder
    import models.lexical
    import models.soup
    import models.train
    from conftest import make_heads
    from models.corpus import Example
    from models.train import Item

    posts = [Item(t, y, [0] * 7, source="drugs" if k % 2 else "forum")
             for y, group in enumerate((NEG, NEU, POS)) for k, t in enumerate(group)]
    # Mention contexts are not whole posts: the lexical model never sees them.
    mention = Item("great great great", 0, [0] * 7, source="mention")
    seen = []
    monkeypatch.setattr(models.train, "training_items",
                        lambda parts: (seen.append(parts) or posts + [mention], {"forum_parts": parts}))
    dev = [Example(f"k-{i}", text, SENTIMENTS[y], "dev")
           for i, (text, y) in enumerate([("awful rash, stopped", 0), ("hard to say, mixed", 1),
                                          ("great relief", 2), ("terrible nausea", 0), ("wonderful sleep", 2),
                                          ("+1 \U0001F44D", 2)])]
    train = [Example(f"{part}-1", "a post", "neutral", "train") for part in "ab"]
    monkeypatch.setattr(models.corpus, "load_forum_corpus", lambda *folder: train + dev)
    monkeypatch.setattr(models.corpus, "drugscom_zip", lambda: tmp_path)
    monkeypatch.setattr(models.encoder, "default_encoder_path", lambda: tiny_encoder_dir)
    monkeypatch.setattr(models.lexical, "L2_GRID", (1e-3, 1e-2))  # fewer fits: seconds, not half a minute
    measured = []
    monkeypatch.setattr(models.soup, "measure", lambda tagger: measured.append(tagger) or {"dev": "figures"})
    readings = []  # the encoder heads' dev readings the weight is chosen against
    choose = models.lexical.choose_weight
    monkeypatch.setattr(models.lexical, "choose_weight",
                        lambda head, lex, gold, log: readings.append((head, lex)) or choose(head, lex, gold, log))
    make_heads(32).save(tmp_path / "run.npz")
    models.lexical.main([str(tmp_path / "run.npz"), "--parts", "ab", "--out", str(tmp_path / "out.npz")])
    assert seen == ["ab"]
    out = Heads.load(tmp_path / "out.npz")
    info = out.meta["lexical"]
    assert info["texts"] == len(posts) and info["forum_parts"] == "ab" and info["weight_chosen_on"] == "dev"
    assert "great great" not in out.lexical_model.vocab
    # The random tiny heads read the dev posts badly; the words read them right.
    assert info["weight"] > 0 and out.lexical_model.weight == info["weight"]
    assert out.meta["metrics"] == {"dev": "figures"} and measured[0].planner.lexical is not None
    # Run again on its own output: the weight is chosen against the encoder heads alone,
    # not against the blend the file already has.
    models.lexical.main([str(tmp_path / "out.npz"), "--parts", "ab", "--out", str(tmp_path / "again.npz")])
    assert Heads.load(tmp_path / "again.npz").meta["lexical"]["weight"] == info["weight"]
    assert len(readings) == 2 and np.array_equal(readings[0][0], readings[1][0])
    blended = measured[0].tag([(e.id, "", e.text) for e in dev])
    assert not np.allclose(readings[1][0], [[t.scores[s] for s in SENTIMENTS] for t in blended], atol=1e-3)
    # As in tagging, the post with no known term keeps the encoder's reading at every weight.
    head, lex = readings[0]
    assert np.array_equal(lex[-1], head[-1]) and not np.allclose(lex[:-1], head[:-1])


def test_without_a_dev_split_the_command_stops_before_fitting(tmp_path, capsys, monkeypatch):
    import models.corpus
    import models.lexical
    from conftest import make_heads
    from models.corpus import Example

    monkeypatch.setattr(models.corpus, "load_forum_corpus",
                        lambda *folder: [Example("a-1", "a post", "neutral", "train")])
    monkeypatch.setattr(models.corpus, "drugscom_zip", lambda: tmp_path)
    monkeypatch.setattr(models.lexical, "choose_l2", lambda *a, **k: pytest.fail("fitted before checking"))
    make_heads(32).save(tmp_path / "run.npz")
    with pytest.raises(SystemExit) as e:
        models.lexical.main([str(tmp_path / "run.npz"), "--parts", "a", "--out", str(tmp_path / "out.npz")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "no dev split" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("meta", [{}, {"lexical": {"weight": 1.5}}, {"lexical": {"weight": "half"}},
                                  {"lexical": {"weight": None}}, {"lexical": 0.5}])
def test_a_lexical_model_without_a_sound_weight_is_refused(tmp_path, meta):
    from conftest import make_heads
    from models.errors import ModelLoadError

    h = _with_lexical(make_heads(8), 0.5)
    h.meta.pop("lexical")
    h.meta.update(meta)
    h.save(tmp_path / "h.npz")
    with pytest.raises(ModelLoadError, match="lexical model is damaged"):
        Heads.load(tmp_path / "h.npz")


def test_a_refit_or_a_soup_leaves_the_lexical_model_out():
    from conftest import make_heads
    from models.train import drop_lexical

    h = _with_lexical(make_heads(8), 0.5)
    assert drop_lexical(h) is True
    assert h.lexical_model is None and "lexical" not in h.meta
    assert drop_lexical(h) is False


def test_the_command_says_what_is_wrong_in_one_line(tmp_path, capsys):
    import models.lexical

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for args, says in ([[str(tmp_path / "junk.npz")], "not a trustwatch heads file"],
                       [[str(tmp_path / "junk.npz"), "--parts", "az"], "--parts: letters of the corpus parts"]):
        with pytest.raises(SystemExit) as e:
            models.lexical.main([*args, "--out", str(tmp_path / "out.npz")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert says in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out.npz").exists()
