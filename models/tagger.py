"""Text in, tags out: post sentiment and trust themes, watched-entity mentions with their
own sentiment and themes. No database here: ``monitor.pipeline`` streams posts in and
stores what comes out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .heads import SENTIMENTS, STANCE_CLASSES, THEMES, Heads
from .mentions import Entity, MentionMatcher, mention_context

# Posts are split into chunks of whole sentences of at most this many characters
# (~200 word pieces), so nothing is silently cut off at the encoder's length limit.
CHUNK_CHARS = 900
# Mention sentiment = this share from the mention's sentence or clause, the rest from the
# chunk of the post it sits in, unless that chunk also names another site, sponsor, group
# or trial (then the sentence or clause alone decides).
MENTION_WEIGHT = 0.5
_SENT = re.compile(r"[^.!?\n]*(?:[.!?]+[\"')\]]*|\n+|$)\s*")


@dataclass
class MentionTag:
    entity: str
    start: int
    end: int
    surface: str
    sentiment: str
    scores: dict[str, float]
    themes: dict[str, str]


@dataclass
class PostTag:
    id: str
    sentiment: str
    scores: dict[str, float]
    themes: dict[str, str]
    mentions: list[MentionTag] = field(default_factory=list)

    def to_json(self) -> dict:
        """The `classify` output line of spec/interface.md."""
        return {
            "id": self.id,
            "sentiment": self.sentiment,
            "scores": self.scores,
            "themes": self.themes,
            "mentions": [
                {"entity": m.entity, "start": m.start, "end": m.end, "sentiment": m.sentiment}
                for m in self.mentions
            ],
        }


def full_text(title: str | None, text: str | None) -> str:
    """The text that is tagged and that mention offsets point into."""
    title, text = (title or "").strip(), text or ""
    return f"{title}\n\n{text}" if title else text


def chunk_spans(text: str, limit: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """(start, end) of chunks of whole sentences of at most ``limit`` characters
    (a longer sentence is cut at a word boundary). Together they cover the text."""
    spans: list[tuple[int, int]] = []
    cur_start = cur_end = 0
    for m in _SENT.finditer(text):
        s, e = m.span()
        if s == e:
            continue
        while e - s > limit:
            cut = text.rfind(" ", s, s + limit)
            cut = cut if cut > s + limit // 2 else s + limit
            if cur_end > cur_start:
                spans.append((cur_start, cur_end))
            spans.append((s, cut))
            s = cur_start = cur_end = cut
        if e - cur_start > limit and cur_end > cur_start:
            spans.append((cur_start, cur_end))
            cur_start = s
        cur_end = e
    if cur_end > cur_start:
        spans.append((cur_start, cur_end))
    return [(s, e) for s, e in spans if text[s:e].strip()] or [(0, len(text))]


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """The texts of :func:`chunk_spans`, stripped."""
    return [text[s:e].strip() or " " for s, e in chunk_spans(text, limit)]


def _scores(p: list[float]) -> dict[str, float]:
    return {label: round(v, 4) for label, v in zip(SENTIMENTS, p)}


def stances(p: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, str]:
    """(T, 3) stance probabilities -> {theme: stance}. A theme is present when
    1 - P(none) reaches its threshold (tuned on validation data when training; else the
    plain argmax), and its stance is the likelier of builds / erodes."""
    out = {}
    for t, (theme, row) in enumerate(zip(THEMES, p)):
        present = (1 - row[0]) >= thresholds[t] if thresholds is not None else row.argmax() != 0
        if present:
            out[theme] = STANCE_CLASSES[1 if row[1] >= row[2] else 2]
    return out


class Planner:
    """The per-post work around the model, pure Python and picklable so that `trustwatch
    tag` can run it in worker processes while the model runs: before the model, the texts
    to encode (chunks of each post, the words around each mention); after it, the post's
    and each mention's sentiment and themes from the model's scores for those texts."""

    def __init__(self, entities: Sequence[Entity] = (), thresholds: np.ndarray | None = None, lexical=None):
        self.matcher = MentionMatcher(list(entities))
        self.thresholds = thresholds
        # A models.lexical.Lexical whose reading of each whole post is blended into the
        # post sentiment (mentions keep the encoder's reading of their own context).
        self.lexical = lexical if lexical is not None and lexical.weight > 0 else None

    def plan(self, items: Sequence[tuple[str, str | None, str | None]]) -> tuple[list[str], list[tuple]]:
        """``(id, title, text)`` items -> (texts to score, one plan per item)."""
        texts: list[str] = []  # everything to encode, in one call
        plans = []
        fulls = [full_text(title, body) for _, title, body in items]
        # A post with no term the lexical model knows ("+1", an emoji, another language)
        # would get its prior, not a reading: None, and the encoder alone reads it.
        readings = self.lexical.read(fulls) if self.lexical is not None else [None] * len(fulls)
        for (ident, _, _), full, lex in zip(items, fulls, readings):
            spans = chunk_spans(full)
            chunk_idx = list(range(len(texts), len(texts) + len(spans)))
            texts.extend(full[a:b].strip() or " " for a, b in spans)
            found = self.matcher.find(full)
            mention_idx, mention_chunk = [], []
            # A context that is a whole chunk (a one-sentence post) or another mention's
            # context in this post is encoded once.
            seen = {texts[i]: i for i in chunk_idx} if found else {}
            for m in found:
                context = mention_context(full, m, found) or m.surface
                if context not in seen:
                    seen[context] = len(texts)
                    texts.append(context)
                mention_idx.append(seen[context])
                k = next(k for k, (a, b) in enumerate(spans) if m.start < b or k == len(spans) - 1)
                a, b = spans[k]
                # Borrow from the passage only where it is about this entity alone.
                alone = not any(
                    o.entity != m.entity and a <= o.start < b
                    and self.matcher.entities[o.entity].kind != "condition"
                    for o in found
                )
                mention_chunk.append(chunk_idx[k] if alone else None)
            plans.append((ident, spans, chunk_idx, found, mention_idx, mention_chunk, lex))
        return texts, plans

    def finish(self, plans: list[tuple], sent: np.ndarray, themes: np.ndarray) -> list[PostTag]:
        """PostTags from the plans and the scores of their texts: sentiment (n, 3) and
        theme stance probabilities (n, T, 3)."""
        # Every text's themes and sentiment worked out at once (the same float32
        # arithmetic as stances() and _scores() on one row), then only looked up per post.
        thr = self.thresholds
        present = ((1 - themes[:, :, 0]) >= thr) if thr is not None else themes.argmax(2) != 0
        builds = themes[:, :, 1] >= themes[:, :, 2]
        verdicts = [{THEMES[t]: STANCE_CLASSES[1 if b else 2] for t, (pr, b) in enumerate(zip(prs, bs)) if pr}
                    for prs, bs in zip(present.tolist(), builds.tolist())]
        sent_rows = sent.tolist()
        results = []
        for ident, spans, chunk_idx, found, mention_idx, mention_chunk, lex in plans:
            w = np.array([max(b - a, 1) for a, b in spans], dtype=np.float32)
            p = (sent[chunk_idx] * w[:, None]).sum(0) / w.sum()
            if lex is not None:
                p = (1 - self.lexical.weight) * p + self.lexical.weight * np.asarray(lex, dtype=np.float32)
            # A theme raised in one chunk of a long post counts for the post.
            if len(chunk_idx) == 1:
                post_themes = dict(verdicts[chunk_idx[0]])
            else:
                tp = themes[chunk_idx]
                strongest = (1 - tp[:, :, 0]).argmax(0)
                post_themes = stances(tp[strongest, np.arange(len(THEMES))], thr)
            mentions = []
            for m, i, c in zip(found, mention_idx, mention_chunk):
                # The words around the mention, tempered by the passage it sits in:
                # "Nothing from Lakeshore here either." reads neutral on its own.
                ms = sent_rows[i] if c is None else (MENTION_WEIGHT * sent[i] + (1 - MENTION_WEIGHT) * sent[c]).tolist()
                mentions.append(MentionTag(
                    entity=m.entity, start=m.start, end=m.end, surface=m.surface,
                    sentiment=SENTIMENTS[ms.index(max(ms))], scores=_scores(ms),
                    themes=dict(verdicts[i]),
                ))
            results.append(
                PostTag(
                    id=ident,
                    sentiment=SENTIMENTS[int(p.argmax())],
                    scores=_scores(p.tolist()),
                    themes=post_themes,
                    mentions=mentions,
                )
            )
        return results


class Tagger:
    """Sentence encoder + trained heads (+ optionally a hub sentiment model)."""

    def __init__(
        self,
        encoder,
        heads: Heads,
        entities: Sequence[Entity] = (),
        sentiment_model=None,
        batch_size: int = 16,
        name: str = "trustwatch-minilm",
        theme_model=None,
    ):
        if heads.dim != encoder.dim:
            from .errors import ModelLoadError

            raise ModelLoadError(
                f"heads expect {heads.dim}-dimensional embeddings but the encoder gives {encoder.dim}"
            )
        self.encoder = encoder
        self.heads = heads
        self.sentiment_model = sentiment_model
        self.theme_model = theme_model
        self.batch_size = batch_size
        self.name = name if sentiment_model is None else f"{name}+{sentiment_model.name}"
        if theme_model is not None:
            self.name = f"{self.name}+themes:{theme_model.name}"
        self.thresholds = theme_model.thresholds if theme_model is not None else heads.theme_thresholds
        # The lexical model belongs to the heads' own sentiment; a hub model replaces both.
        self.planner = Planner(entities, self.thresholds,
                               heads.lexical_model if sentiment_model is None else None)

    @property
    def matcher(self) -> MentionMatcher:
        return self.planner.matcher

    @property
    def version(self) -> str:
        v = self.heads.version
        for hub in (self.sentiment_model, self.theme_model):
            if hub is not None:
                v = f"{v}+{hub.version}"
        return v

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    def describe(self) -> dict:
        return {
            "id": self.model_id,
            "name": self.name,
            "version": self.version,
            "encoder": self.encoder.path,
            "sentiment_labels": list(SENTIMENTS),
            "themes": list(THEMES),
            "stances": list(STANCE_CLASSES[1:]),
            "trained": self.heads.meta.get("trained_on", ""),
            "metrics": self.heads.meta.get("metrics", {}),
        }

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The model's part: sentiment (n, 3) and theme stance probabilities (n, T, 3)."""
        X = self.encoder.encode(texts, batch_size=self.batch_size) if (
            self.sentiment_model is None or self.theme_model is None) else None
        if self.sentiment_model is not None:
            sent = self.sentiment_model.predict(texts, batch_size=self.batch_size)
        else:
            sent = self.heads.sentiment(X)
        if self.theme_model is not None:
            themes = self.theme_model.predict(texts, batch_size=self.batch_size)
        else:
            themes = self.heads.themes(X)
        return sent, themes

    def tokenizer(self):
        """The tokenizing step of :meth:`score` as a picklable callable (texts ->
        encoder.Batches) for worker processes, or None where a hub model scores the texts
        (it tokenizes its own way) or the encoder has no such step."""
        if self.sentiment_model is not None or self.theme_model is not None:
            return None
        make = getattr(self.encoder, "tokenizer_for", None)
        return make(self.batch_size) if make is not None else None

    def warm_up(self) -> int:
        """Run the encoder once at each batch shape it will see (on a GPU; see
        ``Encoder.warm_up``). Returns the shapes run."""
        warm = getattr(self.encoder, "warm_up", None)
        return warm(self.batch_size) if warm is not None and self.tokenizer() is not None else 0

    def start(self, batches):
        """The encoder's part of :meth:`score` for tokenized texts, queued (on a GPU it
        returns at once): ``.result()`` gives the embeddings, for ``self.heads``."""
        return self.encoder.start(batches)

    def tag(self, items: Sequence[tuple[str, str | None, str | None]]) -> list[PostTag]:
        """Tag a batch of ``(id, title, text)``; one PostTag per item, same order."""
        texts, plans = self.planner.plan(items)
        return self.planner.finish(plans, *self.score(texts))


class HubClassifier:
    """A transformers sequence classifier from the hub or a local folder, loaded for
    inference; ``what`` names its job in errors."""

    what = "classifier"

    def __init__(self, path: str, device: str = "cpu", max_length: int = 256):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .encoder import quiet_transformers, torch_device
        from .errors import ModelLoadError

        quiet_transformers()
        self.name = Path(path).name if Path(path).exists() else path
        self.path = path
        self.max_length = max_length
        self.device = torch_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot load {self.what} model {path}: {str(e).splitlines()[0]}")
        self.model.eval().to(self.device)
        self.version = str(getattr(self.model.config, "_commit_hash", None) or "local")[:10]


class HubSentiment(HubClassifier):
    """Any transformers text-classification model whose labels map onto
    negative / neutral / positive (by name, star ratings, or LABEL_0..2 order)."""

    what = "sentiment"

    def __init__(self, path: str, device: str = "cpu", max_length: int = 256):
        from .errors import ModelLoadError

        super().__init__(path, device, max_length)
        self._tokenize: dict = {}  # batch size -> Tokenize (see tokenize_for)
        labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.mapping = label_mapping(labels)
        if self.mapping is None:
            raise ModelLoadError(
                f"sentiment model {path}: cannot map its labels {labels} to negative/neutral/positive"
            )

    def predict(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        import torch

        from .encoder import token_batches

        out = np.zeros((len(texts), 3), dtype=np.float32)
        with torch.inference_mode():
            for idx, enc in token_batches(self.tokenize_for(batch_size), texts, batch_size, self.max_length):
                enc = {k: v.to(self.device) for k, v in enc.items()}
                probs = self.model(**enc).logits.float().softmax(-1).cpu().numpy()
                out[idx] = probs @ self.mapping
        return out

    def tokenize_for(self, batch_size: int):
        """The tokenizing step for this batch size, made once (a copy of the tokenizer)."""
        from .encoder import Tokenize

        if batch_size not in self._tokenize:
            self._tokenize[batch_size] = Tokenize(self.tokenizer, self.max_length, batch_size)
        return self._tokenize[batch_size]


def label_mapping(labels: list[str]) -> np.ndarray | None:
    """(num_labels, 3) matrix folding a model's labels onto SENTIMENTS, or None."""
    n = len(labels)
    m = np.zeros((n, 3), dtype=np.float32)
    low = [str(label).lower() for label in labels]
    for i, label in enumerate(low):
        if label.startswith("neg"):
            m[i, 0] = 1
        elif label.startswith("neu"):
            m[i, 1] = 1
        elif label.startswith("pos"):
            m[i, 2] = 1
        else:
            stars = re.match(r"^([1-5]) stars?$", label)
            if not stars:
                break
            k = int(stars.group(1))
            m[i, 0 if k <= 2 else 1 if k == 3 else 2] = 1
    else:
        return m
    if all(re.fullmatch(r"label_\d+", label) for label in low) and n in (2, 3):
        return np.eye(3, dtype=np.float32)[[0, 2] if n == 2 else [0, 1, 2]]
    return None


# Zero-shot NLI theme hypotheses: does the text entail that trust is built / eroded on
# this theme? Worded from spec/trust-themes.md.
THEME_HYPOTHESES: dict[str, tuple[str, str]] = {
    "transparency": ("Information about the study was shared openly and honestly.",
                     "Information about the study was hidden, withheld or not shared."),
    "commitment": ("They kept their promises and stayed with the patients.",
                   "They broke a promise or abandoned the patients."),
    "respect": ("The patients were listened to and treated with respect.",
                "The patients were ignored or treated without respect."),
    "competence_safety": ("The staff were skilled and kept the patients safe.",
                          "The staff made mistakes or put patients' safety at risk."),
    "conflict_of_interest": ("They acted in the patients' interest, independent of money.",
                             "They were serving money, profit or a sponsor rather than the patients."),
    "access_burden": ("Taking part was made easy and affordable for patients.",
                      "Taking part was a burden: costly, far away, or patients were excluded."),
    "privacy_consent": ("Consent was informed and patients' data was kept private.",
                        "Patients were pressured to consent or their data privacy was not respected."),
}


class HubThemes(HubClassifier):
    """A zero-shot NLI model (any transformers sequence classifier with an "entailment"
    label) deciding each theme's stance from the hypotheses above."""

    THRESHOLD = 0.5  # a theme is present when its likelier stance is entailed at least this much
    what = "theme"

    def __init__(self, path: str, device: str = "cpu", max_length: int = 256):
        from .errors import ModelLoadError

        super().__init__(path, device, max_length)
        labels = {str(v).lower(): int(k) for k, v in self.model.config.id2label.items()}
        self.entail = next((i for name, i in labels.items() if name.startswith("entail")), None)
        self.contra = next((i for name, i in labels.items() if name.startswith("contra")), None)
        if self.entail is None or self.contra is None:
            raise ModelLoadError(
                f"theme model {path}: not an NLI model (needs entailment and contradiction labels, "
                f"has {sorted(labels)})"
            )
        self.hypotheses = [h for t in THEMES for h in THEME_HYPOTHESES[t]]

    @property
    def thresholds(self) -> np.ndarray:
        return np.full(len(THEMES), self.THRESHOLD, dtype=np.float32)

    def predict(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """(n, T, 3) stance probabilities: P(entailed) of each stance's hypothesis against
        its contradiction (as zero-shot multi-label classification does), the likelier
        stance keeping it, P(none) the rest."""
        import torch

        from .encoder import sorted_batches

        k = len(self.hypotheses)
        entailed = np.zeros((len(texts), k), dtype=np.float32)
        with torch.inference_mode():
            for idx, batch in sorted_batches(texts, max(1, batch_size // 2)):
                premises = [t for t in batch for _ in range(k)]
                enc = self.tokenizer(premises, self.hypotheses * len(batch), padding=True,
                                     truncation="only_first", max_length=self.max_length,
                                     return_tensors="pt").to(self.device)
                logits = self.model(**enc).logits.float()[:, [self.contra, self.entail]]
                entailed[idx] = logits.softmax(-1)[:, 1].view(len(batch), k).cpu().numpy()
        return nli_stances(entailed)


def nli_stances(entailed: np.ndarray) -> np.ndarray:
    """(n, 2T) P(entailed) of each theme's builds and erodes hypotheses -> (n, T, 3)
    stance probabilities: the likelier stance keeps its probability, none the rest."""
    pairs = entailed.reshape(len(entailed), len(THEMES), 2)
    present = pairs.max(-1)
    builds = pairs[:, :, 0] >= pairs[:, :, 1]
    out = np.zeros((len(entailed), len(THEMES), 3), dtype=np.float32)
    out[:, :, 0] = 1 - present
    out[:, :, 1] = np.where(builds, present, 0)
    out[:, :, 2] = np.where(builds, 0, present)
    return out
