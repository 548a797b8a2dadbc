"""Small trained heads on top of a frozen sentence encoder.

A heads file is an ``.npz`` with the weights and a ``meta`` JSON string:
- ``sentiment_W`` (3, d), ``sentiment_b`` (3,): softmax over SENTIMENTS;
- ``themes_W`` (T, 3, d), ``themes_b`` (T, 3): per theme, softmax over STANCE_CLASSES.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelLoadError

SENTIMENTS = ("negative", "neutral", "positive")
THEMES = (
    "transparency",
    "commitment",
    "respect",
    "competence_safety",
    "conflict_of_interest",
    "access_burden",
    "privacy_consent",
)
STANCE_CLASSES = ("none", "builds", "erodes")

ARTIFACTS = Path(__file__).parent / "artifacts"
DEFAULT_HEADS = ARTIFACTS / "minilm-heads.npz"


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class Heads:
    sentiment_W: np.ndarray
    sentiment_b: np.ndarray
    themes_W: np.ndarray
    themes_b: np.ndarray
    meta: dict
    lora: dict[str, np.ndarray] = field(default_factory=dict)  # adapters for the encoder
    lexical: dict[str, np.ndarray] = field(default_factory=dict)  # see models.lexical

    @property
    def lexical_model(self):
        """The bag-of-words sentiment model blended into post sentiment, or None."""
        if not self.lexical:
            return None
        from .lexical import Lexical

        info = self.meta.get("lexical")
        if not isinstance(info, dict) or "weight" not in info:
            raise ValueError("lexical model without its weight in the metadata")
        return Lexical.from_arrays(self.lexical, info["weight"])

    @property
    def theme_thresholds(self) -> np.ndarray | None:
        t = self.meta.get("theme_thresholds")
        return np.array([t[name] for name in THEMES], dtype=np.float32) if t else None

    @property
    def dim(self) -> int:
        return int(self.sentiment_W.shape[1])

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "0"))

    def sentiment(self, X: np.ndarray) -> np.ndarray:
        """(n, d) embeddings -> (n, 3) probabilities over SENTIMENTS."""
        return softmax(X @ self.sentiment_W.T + self.sentiment_b)

    def themes(self, X: np.ndarray) -> np.ndarray:
        """(n, d) embeddings -> (n, T, 3) probabilities over STANCE_CLASSES per theme."""
        logits = np.einsum("nd,tkd->ntk", X, self.themes_W) + self.themes_b[None]
        return softmax(logits, axis=-1)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            sentiment_W=self.sentiment_W.astype(np.float32),
            sentiment_b=self.sentiment_b.astype(np.float32),
            themes_W=self.themes_W.astype(np.float32),
            themes_b=self.themes_b.astype(np.float32),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
            **{k: v.astype(np.float32) for k, v in sorted(self.lora.items())},
            **dict(sorted(self.lexical.items())),
        )

    @classmethod
    def load(cls, path: Path) -> "Heads":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                heads = cls(
                    sentiment_W=z["sentiment_W"],
                    sentiment_b=z["sentiment_b"],
                    themes_W=z["themes_W"],
                    themes_b=z["themes_b"],
                    meta=json.loads(str(z["meta"])),
                    lora={k: z[k] for k in z.files if k.startswith("lora/")},
                    lexical={k: z[k] for k in z.files if k.startswith("lexical/")},
                )
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: trained heads not found (train them with `make train`)")
        except (OSError, ValueError, KeyError) as e:
            raise ModelLoadError(f"{path}: not a trustwatch heads file ({e})")
        if heads.sentiment_W.shape[0] != len(SENTIMENTS) or heads.themes_W.shape[:2] != (
            len(THEMES),
            len(STANCE_CLASSES),
        ):
            raise ModelLoadError(f"{path}: heads have unexpected shapes")
        try:
            heads.lexical_model
        except (KeyError, ValueError, TypeError) as e:
            raise ModelLoadError(f"{path}: lexical model is damaged ({e})")
        heads.meta.setdefault("version", file_digest(path))
        return heads


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:10]
