import numpy as np
import pytest


def test_merged_adapters_give_the_wrapped_models_output(tiny_encoder_dir):
    import torch
    from transformers import AutoModel

    from models.lora import add_lora, export_lora, merge_lora

    wrapped_model = AutoModel.from_pretrained(tiny_encoder_dir)
    wrapped = add_lora(wrapped_model, rank=4, alpha=8, seed=3)
    assert len(wrapped) == 6  # q, k, v, attention output, intermediate, output of 1 layer
    torch.manual_seed(0)
    for w in wrapped.values():
        torch.nn.init.normal_(w.B, std=0.1)  # trained adapters are not zero
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        expected = wrapped_model(input_ids=ids).last_hidden_state
        plain = AutoModel.from_pretrained(tiny_encoder_dir)
        before = plain(input_ids=ids).last_hidden_state
        assert merge_lora(plain, export_lora(wrapped)) == 6
        after = plain(input_ids=ids).last_hidden_state
    assert not torch.allclose(before, expected, atol=1e-4)
    assert torch.allclose(after, expected, atol=1e-5)


def test_adapters_are_saved_with_the_heads_and_applied_on_load(tiny_encoder_dir, tmp_path):
    import models
    from conftest import make_heads
    from models.heads import Heads

    base = make_heads(32)
    base.save(tmp_path / "plain.npz")
    adapted = make_heads(32)
    rng = np.random.default_rng(0)
    name = "encoder.layer.0.attention.self.query"
    adapted.lora = {f"lora/{name}/A": rng.normal(size=(4, 32)).astype(np.float32),
                    f"lora/{name}/B": rng.normal(size=(32, 4)).astype(np.float32)}
    adapted.save(tmp_path / "adapted.npz")
    assert set(Heads.load(tmp_path / "adapted.npz").lora) == set(adapted.lora)
    a = models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "plain.npz").encoder.encode(["hello world"])
    b = models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "adapted.npz").encoder.encode(["hello world"])
    assert not np.allclose(a, b)


def test_adapters_that_do_not_fit_are_a_clear_error(tiny_encoder_dir, tmp_path):
    import models
    from conftest import make_heads

    h = make_heads(32)
    h.lora = {"lora/encoder.layer.0.attention.self.query/A": np.zeros((4, 384), np.float32),
              "lora/encoder.layer.0.attention.self.query/B": np.zeros((384, 4), np.float32)}
    h.save(tmp_path / "wrong.npz")
    with pytest.raises(models.ModelLoadError, match="adapters do not fit"):
        models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "wrong.npz")
