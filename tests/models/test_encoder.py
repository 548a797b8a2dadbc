"""The encoder's batching: every text once, within the token budget, and the same vectors
as encoding each text alone."""

import numpy as np

from models.encoder import TOKENS_PER_SLOT, Encoder, token_batches


def test_token_batches_cover_every_text_once_within_the_budget(tiny_encoder_dir):
    enc = Encoder(tiny_encoder_dir)
    texts = ["ok"] * 50 + ["a much longer post about visits and travel claims " * k for k in range(1, 30)]
    seen, sizes = [], []
    for idx, batch in token_batches(enc.tokenizer, texts, batch_size=4, max_length=256):
        rows, width = batch["input_ids"].shape
        assert rows == len(idx) and width <= 256
        assert rows == 1 or rows * width <= 4 * TOKENS_PER_SLOT
        assert rows <= 16
        seen += idx
        sizes.append(rows)
    assert sorted(seen) == list(range(len(texts)))
    assert max(sizes) == 16 and min(sizes) < 4  # short texts share large batches, long ones small


def test_batched_vectors_match_one_text_at_a_time(tiny_encoder_dir):
    enc = Encoder(tiny_encoder_dir)
    texts = ["short", "a somewhat longer sentence about the site", "x " * 300, "", "mid length post here ok"]
    together = enc.encode(texts, batch_size=2)
    alone = np.vstack([enc.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_widths_padded_to_a_multiple_give_the_same_vectors(tiny_encoder_dir):
    """GPUs get widths in multiples of 8 (never past the length limit); the attention mask
    keeps the padding out of the vectors."""
    from models.encoder import Tokenize

    enc = Encoder(tiny_encoder_dir)
    texts = ["short", "a somewhat longer sentence about the site", "x " * 300, "", "mid length post here ok",
             "word " * 253]
    exact = Tokenize(enc.tokenizer, 256, 2)(texts)
    padded = Tokenize(enc.tokenizer, 256, 2, multiple=8)(texts)
    widths = [tokens.shape[1] for _, tokens, _ in padded.items]
    assert all(w % 8 == 0 for w in widths)
    assert all(len(idx) == 1 or tokens.size <= 2 * TOKENS_PER_SLOT for idx, tokens, _ in padded.items)
    from models.encoder import pad_batches

    # the budget holds for the padded widths: 33 tokens pad to 40, so 51 rows, not 62
    many = pad_batches([[5] * 33] * 62, 16, multiple=8)
    assert [tokens.shape for _, tokens, _ in many.items] == [(51, 40), (11, 40)]
    assert max(widths) <= 256 and any(w != e.shape[1] for w, (_, e, _) in zip(widths, exact.items))
    assert [tokens.shape[1] for _, tokens, _ in Tokenize(enc.tokenizer, 250, 2, multiple=8)(texts).items][-1] == 250
    assert np.allclose(enc.start(exact).result(), enc.start(padded).result(), atol=1e-5)


def test_warm_up_runs_every_padded_batch_shape_on_a_gpu_only(tiny_encoder_dir, tiny_tagger):
    enc = Encoder(tiny_encoder_dir)
    assert enc.warm_up(16) == 0 and tiny_tagger.warm_up() == 0  # a CPU needs none
    shapes = enc.warm_shapes(16)
    assert shapes[0] == (64, 8) and shapes[-1] == (8, 256) and len(shapes) == 32
    assert all(rows * width <= 16 * TOKENS_PER_SLOT for rows, width in shapes)
    assert enc.warm_up(16, max_length=64, force=True) == 8  # the forward passes themselves run


def test_nothing_to_encode_gives_an_empty_array(tiny_encoder_dir):
    enc = Encoder(tiny_encoder_dir)
    assert enc.encode([]).shape == (0, enc.dim)


# Text that stresses a BERT tokenizer: control characters it drops, spaces it keeps or
# not, accents, CJK, special-token lookalikes, very long words, emoji.
AWKWARD = [
    "", "   ", "\t\n\r", "plain words here", "Lakeshore's site, e.g. the MG-clinic (NCT01234567)!",
    "line\x0bbreak\x0cfeed\x1cfile\x1dgroup\x1erecord\x1funit\x85next", "nul\x00in\ufffdside",
    "no\xa0break\u2003em\u3000ideographic\u2028line\u2029para\u202fnarrow\u205fmath\u1680ogham",
    "café naïve Zoë e\u0301 İstanbul straße ﬁne", "中文字符和English混合", "[CLS] [MASK] [SEP]x[PAD]",
    "x" * 150 + " tail", "emoji 😀🙃 and zero\u200bwidth joiner\u200d", "don't won't it's ASAP... ?!",
    "word " * 400,  # truncated
]


def _random_texts(n: int, seed: int = 7) -> list[str]:
    import random

    rng = random.Random(seed)
    alphabet = list("abcdeEFG xyz.,;'-!?0123456789") + [
        "\x0b", "\x0c", "\x1c", "\x85", "\x00", "\ufffd", "\xa0", "\u2003", "\u3000", "\u2028", "\t", "\n",
        "é", "e\u0301", "İ", "ß", "中", "😀", "\u200b", "[CLS]", " the ", " Lakeshore ",
    ]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120))) for _ in range(n)]


def test_the_piece_cache_gives_the_tokenizers_own_ids(tiny_encoder_dir):
    """MiniLM's tokenizer is BERT-style, so Tokenize remembers space-separated pieces;
    the ids (truncation included) must be exactly what the tokenizer gives whole texts,
    on a first pass (pieces new) and a second (pieces remembered)."""
    import pickle

    from transformers import AutoTokenizer

    from models.encoder import Tokenize

    hf = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    texts = AWKWARD + _random_texts(400)
    for max_length in (256, 12):
        tok = Tokenize(hf, max_length, 4)
        assert tok.cache is not None
        want = hf(texts, truncation=True, max_length=max_length)["input_ids"]
        assert tok.ids(texts) == want
        assert tok.ids(texts) == want
        again = pickle.loads(pickle.dumps(tok))  # as sent to tag's workers
        assert again.cache == {} and again.ids(texts) == want


def test_other_tokenizers_are_used_whole(tmp_path):
    """A tokenizer that does not split at spaces the BERT way gets every text whole."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from models.encoder import Tokenize

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "!": 6}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]")
    tok = Tokenize(fast, 5, 4)
    assert tok.cache is None
    texts = ["hello world!", "hello  there world", "", "world hello hello hello !"]
    assert tok.ids(texts) == fast(texts, truncation=True, max_length=5)["input_ids"]
    fast.truncation_side = "left"  # kept, as the tokenizer itself would
    assert Tokenize(fast, 5, 4).ids(texts) == fast(texts, truncation=True, max_length=5)["input_ids"]
    batches = tok(texts)
    assert batches.n == 4 and sorted(i for idx, _, _ in batches.items for i in idx) == [0, 1, 2, 3]


def test_the_piece_cache_stays_exact_when_full_and_skips_long_pieces(tiny_encoder_dir, monkeypatch):
    """When the cache fills it starts again, and every piece of the texts at hand is
    tokenized anew; pieces longer than _LONGEST_CACHED are used but not remembered."""
    from transformers import AutoTokenizer

    from models import encoder
    from models.encoder import Tokenize

    monkeypatch.setattr(encoder, "_CACHE_LIMIT", 3)
    hf = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    tok = Tokenize(hf, 64, 4)
    link = "https://example.org/" + "x" * 60
    for texts in (["a b"], ["a c d"], ["a b c d e f g"], [f"see {link} now", "a"], ["b " * 5]):
        assert tok.ids(texts) == hf(texts, truncation=True, max_length=64)["input_ids"]
        assert len(tok.cache) <= 7 and link not in tok.cache


def test_an_encoder_folder_that_does_not_exist_is_named_plainly(tmp_path):
    import pytest

    from models.encoder import Encoder
    from models.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"cannot load encoder from /nonexistent/enc: no such folder"):
        Encoder("/nonexistent/enc")
