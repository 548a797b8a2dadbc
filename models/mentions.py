"""Finding watched entities in text.

Rules (see ``models/data/forum_corpus/LABELLING.md``):
- names and aliases match case-insensitively, as whole words, with spaces, hyphens and dots
  interchangeable, and with a possessive or plural ending ("Lakeshore's", "MVRCs");
- short all-caps acronyms ("MG", "CF", "LCRI") match only in capitals, and not right after a
  number, so "60 MG" or "60 mg" is a dose, not myasthenia gravis;
- registry ids (NCT + 8 digits) match in any case;
- where matches overlap, the longest wins ("ALS Hope Alliance" is the group, not the disease).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ENTITY_KINDS = ("site", "sponsor", "group", "trial", "condition")

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_SEP = r"[\s\-\u2010-\u2015.'\u2019]{0,3}"
_SUFFIX = r"(?:['\u2019]s|s|es|['\u2019])?"
_NCT = re.compile(r"^NCT\d{8}$", re.IGNORECASE)


@dataclass(frozen=True)
class Entity:
    id: str
    kind: str
    name: str
    aliases: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    context: str = ""

    @property
    def surfaces(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for s in (self.name, *self.aliases):
            seen.setdefault(s.strip(), None)
        return tuple(s for s in seen if s)


@dataclass(frozen=True, order=True)
class Match:
    start: int
    end: int
    entity: str = field(compare=False)
    surface: str = field(compare=False)


def is_acronym(alias: str) -> bool:
    """Short all-capitals forms are matched case-sensitively."""
    letters = alias.replace("-", "")
    return 2 <= len(letters) <= 6 and letters.isalnum() and letters.upper() == letters and any(
        c.isalpha() for c in letters
    )


def alias_pattern(alias: str) -> re.Pattern[str] | None:
    alias = alias.strip()
    if _NCT.match(alias):
        return re.compile(rf"(?<![^\W_]){re.escape(alias)}(?![^\W_])", re.IGNORECASE)
    tokens = _TOKEN.findall(alias)
    if not tokens:
        return None
    body = _SEP.join(re.escape(t) for t in tokens)
    if is_acronym(alias):
        # Not after a number ("60 MG"), and plural/possessive allowed ("MVRC's").
        return re.compile(rf"(?<![^\W_])(?<!\d )(?<!\d){body}{_SUFFIX}(?![^\W_])")
    return re.compile(rf"(?<![^\W_]){body}{_SUFFIX}(?![^\W_])", re.IGNORECASE)


class MentionMatcher:
    """Finds every watched entity in a text, with character offsets."""

    def __init__(self, entities: list[Entity]):
        self.entities = {e.id: e for e in entities}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for e in entities:
            for s in e.surfaces:
                p = alias_pattern(s)
                if p is not None:
                    self._patterns.append((p, e.id))

    def find(self, text: str) -> list[Match]:
        candidates: list[Match] = []
        for pattern, entity in self._patterns:
            for m in pattern.finditer(text):
                candidates.append(Match(m.start(), m.end(), entity, m.group(0)))
        # Longest first, then leftmost; keep those that do not overlap a kept one.
        candidates.sort(key=lambda m: (-(m.end - m.start), m.start))
        kept: list[Match] = []
        for c in candidates:
            if all(c.end <= k.start or c.start >= k.end for k in kept):
                kept.append(c)
        return sorted(kept)


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_CLAUSE_BREAK = re.compile(r"\s*(?:;|,?\s+but\s+|,?\s+whereas\s+|,?\s+while\s+|,?\s+although\s+|\s+[-\u2013\u2014]\s+)\s*", re.IGNORECASE)


def _span_around(text: str, pos: int, splitter: re.Pattern[str], lo: int, hi: int) -> tuple[int, int]:
    start, end = lo, hi
    for m in splitter.finditer(text, lo, hi):
        if m.end() <= pos:
            start = m.end()
        elif m.start() >= pos:
            end = m.start()
            break
    return start, end


def mention_context(text: str, match: Match, others: list[Match], max_chars: int = 600) -> str:
    """The words that speak about one mention: its sentence, or its clause where the
    sentence also names another entity ("great site, awful sponsor")."""
    s, e = _span_around(text, match.start, _SENTENCE_END, 0, len(text))
    if any(o.entity != match.entity and s <= o.start < e for o in others):
        cs, ce = _span_around(text, match.start, _CLAUSE_BREAK, s, e)
        if ce - cs >= 12:
            s, e = cs, ce
    if e - s > max_chars:
        half = max_chars // 2
        s, e = max(s, match.start - half), min(e, match.end + half)
    return text[s:e].strip()
