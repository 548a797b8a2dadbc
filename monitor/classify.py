"""Reading `trustwatch classify` input: JSONL lines with id, title, text."""

from __future__ import annotations

import json
import math
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
        ident = item["id"]
        if isinstance(ident, float) and not math.isfinite(ident):  # NaN, 1e999: no JSON can carry them back
            raise InputError(f"{name}: line {lineno}: \"id\" must be a string or a finite number")
        title, text = item.get("title"), item.get("text")
        title, text = "" if title is None else title, "" if text is None else text
        if not isinstance(title, str) or not isinstance(text, str):
            raise InputError(f"{name}: line {lineno}: \"title\" and \"text\" must be strings")
        try:  # bytes that were not UTF-8 (stdin keeps them as surrogates) or a lone \\ud800 escape
            title.encode("utf-8"), text.encode("utf-8"), json.dumps(ident, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{name}: line {lineno}: not valid UTF-8 (or a lone surrogate escape)")
        yield ident, title, text
