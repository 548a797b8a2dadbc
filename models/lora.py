"""Low-rank adapters (LoRA) for the encoder's linear layers.

Training wraps each target ``nn.Linear`` in :class:`LoRALinear` (base weights frozen, only
``A`` and ``B`` learn). The shipped artifact holds just ``A`` and ``B`` per layer (a few
hundred KB); loading merges ``W += scale * B @ A`` into the base weights once, so tagging
runs at the plain model's speed."""

from __future__ import annotations

import re

import numpy as np

TARGETS = re.compile(r"encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)$")


def _torch():
    import torch

    return torch


class LoRALinear:  # built lazily so importing this module needs no torch
    pass


def make_lora_linear(base, rank: int, alpha: float, seed: int):
    torch = _torch()

    class _LoRALinear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base
            for p in self.base.parameters():
                p.requires_grad_(False)
            g = torch.Generator().manual_seed(seed)
            self.A = torch.nn.Parameter(torch.randn(rank, base.in_features, generator=g) / base.in_features**0.5)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x):
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    return _LoRALinear()


def add_lora(model, rank: int = 8, alpha: float = 16.0, seed: int = 0) -> dict[str, object]:
    """Wrap every target linear layer; returns {module name: wrapper}."""
    wrapped = {}
    names = [n for n, _ in model.named_modules() if TARGETS.search(n)]
    for i, name in enumerate(names):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        wrapper = make_lora_linear(getattr(parent, child), rank, alpha, seed + i)
        setattr(parent, child, wrapper)
        wrapped[name] = wrapper
    return wrapped


def export_lora(wrapped: dict) -> dict[str, np.ndarray]:
    """Arrays for the heads file: lora/<name>/A, lora/<name>/B (scale folded into B)."""
    out = {}
    for name, w in wrapped.items():
        out[f"lora/{name}/A"] = w.A.detach().cpu().numpy().astype(np.float32)
        out[f"lora/{name}/B"] = (w.B.detach().cpu() * w.scale).numpy().astype(np.float32)
    return out


def merge_lora(model, arrays: dict[str, np.ndarray]) -> int:
    """Fold exported adapters into a plain model's weights; returns layers merged."""
    torch = _torch()
    names = sorted({k.split("/")[1] for k in arrays if k.startswith("lora/")})
    with torch.no_grad():
        for name in names:
            layer = model.get_submodule(name)
            A = torch.from_numpy(arrays[f"lora/{name}/A"])
            B = torch.from_numpy(arrays[f"lora/{name}/B"])
            if layer.weight.shape != (B.shape[0], A.shape[1]):
                raise ValueError(f"adapter for {name} does not fit the model")
            layer.weight += (B @ A).to(layer.weight.dtype)
    return len(names)
