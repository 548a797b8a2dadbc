"""The labelled data: the forum corpus loads and is what the model card says it is; the
rated-snippet reader reads the nested archive it expects."""

import io
import tarfile
from collections import Counter

import pytest

from models.corpus import load_forum_corpus, load_hutto
from models.heads import THEMES


def test_forum_corpus_is_complete_and_its_held_out_split_is_fixed():
    ex = load_forum_corpus()
    assert len(ex) >= 800
    assert len({e.id for e in ex}) == len(ex)
    held = [e for e in ex if e.split == "heldout"]
    # The figures in the README and model card are on exactly these posts.
    assert len(held) == 323 and all(e.id[0] in "abc" for e in held)
    voice = [e for e in ex if e.split == "heldout_voice"]
    assert len(voice) == 100 and all(e.id[0] == "g" for e in voice)
    assert Counter(e.sentiment for e in voice) == {"negative": 43, "positive": 33, "neutral": 24}
    dev = [e for e in ex if e.split == "dev"]
    # Chosen on, never trained on: the shipped soup's choice rests on part k; part m (in the
    # plain voice of parts a-c, like the held-out split) was added in session 11.
    assert len(dev) == 800 and Counter(e.part for e in dev) == {"k": 400, "m": 400}
    for split in ("train", "heldout", "dev"):
        stances = Counter((t, s) for e in ex if e.split == split for t, s in e.themes.items())
        assert all(stances[(t, s)] >= 15 for t in THEMES for s in ("builds", "erodes")), split
    for e in ex:
        for m in e.mentions:
            assert 0 <= m.start < m.end <= len(e.text)


def test_a_post_with_an_unknown_split_is_refused(tmp_path):
    (tmp_path / "part_z.jsonl").write_text(
        '{"id": "z-1", "title": "", "text": "fine", "sentiment": "neutral", "split": "helduot"}\n')
    with pytest.raises(ValueError, match="part_z.jsonl:1: bad split 'helduot'"):
        load_forum_corpus(tmp_path)


def _sdist(path, members: dict[str, str]):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as t:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = inner.tell()
        inner.seek(0)
        t.addfile(info, inner)


def test_rated_snippets_are_read_from_the_nested_archive(tmp_path):
    _sdist(tmp_path / "vaderSentiment-3.3.2.tar.gz", {
        "tweets_GroundTruth.txt": "1\t2.5\tLoved it &amp; more\n2\tnot-a-number\tskipped\n",
        "amazonReviewSnippets_GroundTruth.txt": "\ufeff1_1\t-1.25\tBroke in a week.\n",
        "tweets_anonDataRatings.txt": "1\t2.5\t0.5\t[2, 3]\n",  # not the ground truth
    })
    rated = load_hutto(tmp_path)
    assert sorted((r.text, r.score, r.source) for r in rated) == [
        ("Broke in a week.", -1.25, "amazonReviewSnippets"), ("Loved it & more", 2.5, "tweets"),
    ]


def test_missing_rated_snippets_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip download --no-binary"):
        load_hutto(tmp_path)


def test_only_the_train_split_is_trained_on(monkeypatch):
    import models.train
    from models.corpus import Example

    monkeypatch.setattr(models.train, "load_drugscom", lambda split: [Example("d-1", "it worked", "positive", "train")])
    every_part = "".join(sorted({e.part for e in load_forum_corpus()}))
    assert "k" in every_part and "l" in every_part
    items, info = models.train.training_items(every_part)
    trained = {i.text for i in items}
    for e in load_forum_corpus():
        assert (e.text in trained) == (e.split == "train"), e.id
