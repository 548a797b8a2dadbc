"""Reading `trustwatch classify` input: JSONL lines with id, title, text."""

from __future__ import annotations

import json
from typing import IO, Iterator

from .errors import InputError


def read_jsonl(stream: IO[str], name: str) -> Iterator[tuple]:
    """Yield (id, title, text); a bad line is a one-line InputError naming it."""
    lineno = 0
    while True:
        try:
            line = stream.readline()
        except UnicodeDecodeError:
            raise InputError(f"{name}: line {lineno + 1}: not valid UTF-8")
        if not line:
            return
        lineno += 1
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{name}: line {lineno}: not valid JSON ({e.msg})")
        if not isinstance(item, dict):
            raise InputError(f"{name}: line {lineno}: expected a JSON object")
        if "id" not in item:
            raise InputError(f"{name}: line {lineno}: missing \"id\"")
        title, text = item.get("title") or "", item.get("text") or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise InputError(f"{name}: line {lineno}: \"title\" and \"text\" must be strings")
        yield item["id"], title, text
