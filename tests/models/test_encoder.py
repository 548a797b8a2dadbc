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


def test_nothing_to_encode_gives_an_empty_array(tiny_encoder_dir):
    enc = Encoder(tiny_encoder_dir)
    assert enc.encode([]).shape == (0, enc.dim)
