import numpy as np
import pytest

from models.heads import SENTIMENTS, THEMES, Heads
from models.tagger import chunks, full_text, label_mapping


def test_full_text_joins_title_and_text():
    assert full_text("T", "body") == "T\n\nbody"
    assert full_text("", "body") == "body"


def test_chunks_cover_everything_and_respect_the_limit():
    text = " ".join(f"Sentence number {i} is here." for i in range(300))
    cs = chunks(text, limit=200)
    assert all(len(c) <= 200 for c in cs)
    assert " ".join(cs).split() == text.split()


def test_chunks_cut_a_giant_sentence_at_words():
    text = "word " * 1000
    cs = chunks(text, limit=100)
    assert all(len(c) <= 100 for c in cs)
    assert sum(len(c.split()) for c in cs) == 1000


def test_tagger_output_shape_and_labels(tiny_tagger):
    tags = tiny_tagger.tag([
        ("1", "Lakeshore CRI", "Great nurses at Lakeshore, but Calloway's paperwork was awful."),
        ("2", "", "Nothing watched here."),
        ("3", None, ""),
    ])
    assert [t.id for t in tags] == ["1", "2", "3"]
    for t in tags:
        assert t.sentiment in SENTIMENTS
        assert set(t.scores) == set(SENTIMENTS)
        assert abs(sum(t.scores.values()) - 1) < 1e-3
        assert set(t.themes) <= set(THEMES)
        assert set(t.themes.values()) <= {"builds", "erodes"}
    text = full_text("Lakeshore CRI", "Great nurses at Lakeshore, but Calloway's paperwork was awful.")
    assert [(m.entity, text[m.start:m.end]) for m in tags[0].mentions] == [
        ("lakeshore", "Lakeshore CRI"), ("lakeshore", "Lakeshore"), ("calloway", "Calloway's"),
    ]
    assert tags[1].mentions == []


def test_mention_deep_in_a_long_post_is_tagged_from_its_own_context(tiny_tagger):
    filler = "We drove for hours and it rained the whole way. " * 200
    tag = tiny_tagger.tag([("long", "", filler + "Then Lakeshore closed the study.")])[0]
    assert [m.entity for m in tag.mentions] == ["lakeshore"]
    assert tag.mentions[0].start > 9000
    # Tagged from its sentence and its own chunk, not from the start of the post.
    last_chunk = chunks(filler + "Then Lakeshore closed the study.")[-1]
    alone = tiny_tagger.tag([("short", "", last_chunk)])[0]
    assert tag.mentions[0].scores == alone.mentions[0].scores
    first_chunk = tiny_tagger.tag([("first", "", chunks(filler)[0] + " Lakeshore.")])[0]
    assert first_chunk.mentions[0].scores != tag.mentions[0].scores


def test_theme_thresholds_decide_presence():
    from models.tagger import stances

    p = np.array([[0.6, 0.3, 0.1]] + [[0.9, 0.05, 0.05]] * 6)
    assert stances(p) == {}
    assert stances(p, np.array([0.35] + [0.5] * 6)) == {"transparency": "builds"}


def test_model_id_names_version(tiny_tagger):
    assert tiny_tagger.model_id.endswith("@test-1")
    info = tiny_tagger.describe()
    assert info["sentiment_labels"] == list(SENTIMENTS) and info["themes"] == list(THEMES)


def test_heads_roundtrip_and_bad_file(tmp_path):
    from conftest import make_heads
    from models.errors import ModelLoadError

    h = make_heads(8)
    h.save(tmp_path / "h.npz")
    h2 = Heads.load(tmp_path / "h.npz")
    X = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    assert np.allclose(h.sentiment(X), h2.sentiment(X))
    assert h2.themes(X).shape == (4, 7, 3)
    (tmp_path / "bad.npz").write_text("nope")
    with pytest.raises(ModelLoadError):
        Heads.load(tmp_path / "bad.npz")
    with pytest.raises(ModelLoadError):
        Heads.load(tmp_path / "missing.npz")


def test_heads_must_fit_encoder(tiny_encoder_dir, tmp_path):
    import models
    from conftest import make_heads

    make_heads(16).save(tmp_path / "h16.npz")
    with pytest.raises(models.ModelLoadError, match="16-dimensional"):
        models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "h16.npz")


@pytest.mark.parametrize(
    "labels, expected",
    [
        (["negative", "neutral", "positive"], [0, 1, 2]),
        (["POSITIVE", "NEGATIVE"], [2, 0]),
        (["LABEL_0", "LABEL_1", "LABEL_2"], [0, 1, 2]),
        (["1 star", "2 stars", "3 stars", "4 stars", "5 stars"], [0, 0, 1, 2, 2]),
    ],
)
def test_label_mapping(labels, expected):
    m = label_mapping(labels)
    assert m.argmax(1).tolist() == expected


def test_label_mapping_refuses_unknown_labels():
    assert label_mapping(["joy", "anger"]) is None


def test_hub_sentiment_model_from_config(tiny_encoder_dir, tiny_heads_path, tiny_sentiment_dir):
    import models

    t = models.load_tagger(encoder=tiny_encoder_dir, heads=tiny_heads_path, sentiment=str(tiny_sentiment_dir))
    tag = t.tag([("1", "", "some text")])[0]
    assert tag.scores["neutral"] == 0.0  # a two-label model never says neutral
    assert abs(tag.scores["negative"] + tag.scores["positive"] - 1) < 1e-3
    assert "tiny-sentiment" in t.model_id
    # The tokenizing step is made once, not on every batch (making one copies the tokenizer).
    made = t.sentiment_model._tokenize[t.batch_size]  # made by the first tag call
    again = t.tag([("2", "", "other text"), ("3", "", "more")])
    assert t.sentiment_model.tokenize_for(t.batch_size) is made and len(again) == 2


def test_hub_sentiment_model_missing_is_a_clear_error(tiny_encoder_dir, tiny_heads_path, tmp_path):
    import models

    with pytest.raises(models.ModelLoadError, match="cannot load sentiment model"):
        models.load_tagger(encoder=tiny_encoder_dir, heads=tiny_heads_path, sentiment=str(tmp_path / "nope"))


def test_cuda_without_a_gpu_is_a_clear_error(tiny_encoder_dir, tiny_heads_path, tiny_sentiment_dir):
    import torch

    import models

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(models.ModelLoadError, match="no CUDA device"):
        models.load_tagger(encoder=tiny_encoder_dir, heads=tiny_heads_path, device="cuda")
    from models.tagger import HubSentiment

    with pytest.raises(models.ModelLoadError, match="no CUDA device"):
        HubSentiment(str(tiny_sentiment_dir), device="cuda")


def _tiny_nli(out, tiny_encoder_dir, entail_bias: float):
    """A tiny NLI-style classifier whose verdict is fixed by its bias: 'entailment' wins
    by ``entail_bias`` logits (negative: 'contradiction' wins)."""
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out.mkdir()
    for f in tiny_encoder_dir.iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special")):
            shutil.copy(f, out / f.name)
    labels = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=3, id2label=labels,
                     label2id={v: k for k, v in labels.items()})
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, entail_bias]))
    model.save_pretrained(out)
    return out


def test_hub_theme_model_decides_themes_from_entailment(tiny_encoder_dir, tiny_heads_path, tmp_path):
    import models
    from models.mentions import Entity

    site = [Entity(id="lakeshore", kind="site", name="Lakeshore")]
    yes = _tiny_nli(tmp_path / "nli-yes", tiny_encoder_dir, 3.0)
    no = _tiny_nli(tmp_path / "nli-no", tiny_encoder_dir, -3.0)

    t = models.load_tagger(site, encoder=tiny_encoder_dir, heads=tiny_heads_path, themes=str(yes))
    tag = t.tag([("1", "", "Lakeshore never told us anything.")])[0]
    # Every hypothesis is entailed (P = 0.95 against contradiction): every theme is present,
    # both stances tie and builds is kept; the mention is judged the same way.
    assert tag.themes == {theme: "builds" for theme in models.THEMES}
    assert tag.mentions[0].themes == tag.themes
    assert "themes:nli-yes" in t.model_id and t.version.endswith("+local")

    t = models.load_tagger(site, encoder=tiny_encoder_dir, heads=tiny_heads_path, themes=str(no))
    tag = t.tag([("1", "", "Lakeshore never told us anything.")])[0]
    assert tag.themes == {} and tag.mentions[0].themes == {}


def test_hub_theme_model_must_be_nli(tiny_encoder_dir, tiny_heads_path, tiny_sentiment_dir, tmp_path):
    import models

    with pytest.raises(models.ModelLoadError, match="not an NLI model"):
        models.load_tagger(encoder=tiny_encoder_dir, heads=tiny_heads_path, themes=str(tiny_sentiment_dir))
    with pytest.raises(models.ModelLoadError, match="cannot load theme model"):
        models.load_tagger(encoder=tiny_encoder_dir, heads=tiny_heads_path, themes=str(tmp_path / "nope"))


def test_nli_stances_keep_the_likelier_entailed_stance():
    import numpy as np

    from models.tagger import HubThemes, nli_stances, stances

    entailed = np.full((1, 14), 0.1, dtype=np.float32)
    entailed[0, 0:2] = [0.2, 0.9]  # transparency: erodes entailed
    entailed[0, 2:4] = [0.7, 0.3]  # commitment: builds entailed
    entailed[0, 4:6] = [0.45, 0.4]  # respect: neither reaches the threshold
    p = nli_stances(entailed)
    assert p.shape == (1, 7, 3) and np.allclose(p.sum(-1), 1)
    thresholds = np.full(7, HubThemes.THRESHOLD)
    assert stances(p[0], thresholds) == {"transparency": "erodes", "commitment": "builds"}


def test_theme_model_from_config_and_its_errors(tiny_encoder_dir, tiny_heads_path, tmp_path):
    from monitor.config import load_config
    from monitor.errors import ModelError
    from monitor.pipeline import load_tagger
    from tests.conftest import write_config

    nli = _tiny_nli(tmp_path / "nli", tiny_encoder_dir, 3.0)
    path = write_config(tmp_path, tiny_encoder_dir, tiny_heads_path)
    path.write_text(path.read_text().replace("[model]", f'[model]\nthemes = "nli"'))
    cfg = load_config(path)
    assert cfg.model.themes == str(nli)  # relative to the config file
    assert "themes:nli" in load_tagger(cfg).model_id
    path.write_text(path.read_text().replace('themes = "nli"', 'themes = "no-such-model"'))
    with pytest.raises(ModelError, match="cannot load theme model no-such-model"):
        load_tagger(load_config(path))


def test_a_context_that_is_the_whole_post_is_encoded_once(tiny_tagger, monkeypatch):
    seen = []
    encode = tiny_tagger.encoder.encode

    def spy(texts, **kw):
        seen.append(list(texts))
        return encode(texts, **kw)

    monkeypatch.setattr(tiny_tagger.encoder, "encode", spy)
    tags = tiny_tagger.tag([
        ("one", "", "Lakeshore lost my forms again."),  # the sentence is the post
        ("two", "", "Lakeshore lost my forms. Lakeshore never called back."),
    ])
    assert seen == [["Lakeshore lost my forms again.", "Lakeshore lost my forms. Lakeshore never called back.",
                     "Lakeshore lost my forms.", "Lakeshore never called back."]]
    one, two = tags
    assert one.mentions[0].scores == one.scores  # its context is the post itself
    assert two.mentions[0].scores != two.mentions[1].scores


def test_int8_model_tags_close_to_fp32_and_names_itself(tiny_encoder_dir, tiny_heads_path):
    import models
    from models.mentions import Entity

    site = [Entity(id="lakeshore", kind="site", name="Lakeshore")]
    posts = [("1", "", "Lakeshore lost my forms again, and nobody called."), ("2", "", "Kind nurses at Lakeshore.")]
    fp32 = models.load_tagger(site, encoder=tiny_encoder_dir, heads=tiny_heads_path)
    int8 = models.load_tagger(site, encoder=tiny_encoder_dir, heads=tiny_heads_path, int8=True)
    assert int8.model_id != fp32.model_id and int8.name.endswith("-int8")
    X32 = fp32.encoder.encode([p[2] for p in posts])
    X8 = int8.encoder.encode([p[2] for p in posts])
    assert not np.array_equal(X32, X8)  # really quantized
    assert np.abs(X32 - X8).max() < 0.1
    assert [t.sentiment for t in int8.tag(posts)] == [t.sentiment for t in fp32.tag(posts)]
