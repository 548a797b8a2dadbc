"""Shared fixtures: a tiny encoder built here (never downloaded), heads that fit it,
sample dump files and configs pointing at them."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# Tests never reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# .ci/run: the property tests draw the same examples every run. Loaded here, before the test
# modules build their settings on top of it.
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("TRUSTWATCH_HYPOTHESIS_PROFILE"):
        _hypothesis_settings.load_profile(os.environ["TRUSTWATCH_HYPOTHESIS_PROFILE"])
except ImportError:  # hypothesis is a test extra
    pass


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 1-layer, 32-wide BERT with random weights and MiniLM's real tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    from models.encoder import default_encoder_path

    out = tmp_path_factory.mktemp("tiny-encoder")
    src = default_encoder_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    torch.manual_seed(0)
    vocab = sum(1 for _ in open(src / "vocab.txt", encoding="utf-8"))
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(out)
    return out


def make_heads(dim: int, seed: int = 0, version: str = "test-1"):
    from models.heads import Heads

    rng = np.random.default_rng(seed)
    return Heads(
        sentiment_W=rng.normal(size=(3, dim)).astype(np.float32),
        sentiment_b=np.zeros(3, dtype=np.float32),
        themes_W=rng.normal(size=(7, 3, dim)).astype(np.float32),
        themes_b=np.array([[1.0, 0.0, 0.0]] * 7, dtype=np.float32),
        meta={"version": version, "metrics": {}},
    )


@pytest.fixture(scope="session")
def tiny_heads_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("heads") / "tiny-heads.npz"
    make_heads(32).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_sentiment_dir(tmp_path_factory, tiny_encoder_dir):
    """A tiny hub-style text-classification model with named labels."""
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny-sentiment")
    for f in tiny_encoder_dir.iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special")):
            shutil.copy(f, out / f.name)
    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=2,
                     id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    BertForSequenceClassification(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_tagger(tiny_encoder_dir, tiny_heads_path):
    import models

    from monitor.config import load_watchlist

    return models.load_tagger(load_watchlist(FIXTURES / "watchlist.toml"),
                              encoder=tiny_encoder_dir, heads=tiny_heads_path)


def write_config(tmp_path: Path, tiny_encoder_dir: Path, tiny_heads_path: Path, sources: str = "", extra: str = "") -> Path:
    """A config over the fixture watchlist, the tiny model, and the given sources."""
    watch = (FIXTURES / "watchlist.toml").read_text(encoding="utf-8")
    text = textwrap.dedent(f"""\
        [database]
        path = "tw.db"

        [model]
        encoder = "{tiny_encoder_dir}"
        heads = "{tiny_heads_path}"
        {extra}
        """) + "\n" + watch + "\n" + textwrap.dedent(sources)
    path = tmp_path / "trustwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def salt(monkeypatch):
    monkeypatch.setenv("TRUSTWATCH_SALT", "test-salt-0123456789")


@pytest.fixture
def dump_config(tmp_path, tiny_encoder_dir, tiny_heads_path, salt) -> Path:
    """A config with one reddit-dump source over a copy of the fixture dump."""
    shutil.copy(FIXTURES / "dump.ndjson", tmp_path / "dump.ndjson")
    return write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources="""
        [[source]]
        name = "fixture-dump"
        type = "reddit-dump"
        path = "dump.ndjson"
        """)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Path:
    """A database with known stories and no model (tests/synth.py), one per test module."""
    import synth

    path = tmp_path_factory.mktemp("story") / "story.db"
    synth.build(path).close()
    return path


def query(db: Path, sql: str, params=()) -> list[tuple]:
    """Rows of one query on a database file, through its own connection."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def ds_request(ds, path: str, actor: dict | None = None, method: str = "get", **kwargs):
    """A request to a Datasette instance in-process, anonymous or signed in as ``actor``."""
    import asyncio

    async def go():
        await ds.invoke_startup()
        if actor:
            kwargs["cookies"] = {"ds_actor": ds.sign({"a": actor}, "actor")}
        return await getattr(ds.client, method)(path, **kwargs)

    return asyncio.run(go())
