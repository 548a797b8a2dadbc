"""``trustwatch init``: a commented config to start from."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

STARTER = '''\
# trustwatch configuration. Reference: README.md and spec/interface.md.
# Every command reads ./trustwatch.toml, or the file in $TRUSTWATCH_CONFIG, or --config FILE.

[database]
path = "trustwatch.db"          # relative to this file

[privacy]
# Authors are stored only as keyed hashes (HMAC-SHA256). The key comes from this
# environment variable, never from this file: export TRUSTWATCH_SALT="<long random secret>"
author_salt_env = "TRUSTWATCH_SALT"

# [model]                       # omitted: the offline default shipped with trustwatch
# sentiment = "cardiffnlp/twitter-roberta-base-sentiment-latest"  # any HF text-classification model
# device = "cpu"                # or "cuda"
# batch_size = 16

# ---- the watchlist: what posts are tagged about --------------------------
# `trustwatch watch add-trial NCT...` adds a trial's sites, sponsors, groups and conditions
# to watchlist.toml beside this file (read together with the [[watch]] tables below).
# [watchlist]
# file = "watchlist.toml"
# [registry]
# base_url = "https://clinicaltrials.gov/api/v2"
# kind is one of: site, sponsor, group, trial, condition.
# aliases: what people actually type. Short all-caps acronyms match only in capitals.
[[watch]]
id = "my-site"
kind = "site"
name = "Example Clinical Research Institute"
aliases = ["Example CRI", "ECRI"]
partners = ["my-group"]         # ids of the advocacy groups this site recruits with

[[watch]]
id = "my-group"
kind = "group"
name = "Example Patient Alliance"
aliases = ["Example Alliance"]

[[watch]]
id = "als"
kind = "condition"
name = "Amyotrophic lateral sclerosis"
aliases = ["ALS", "motor neuron disease", "MND"]

# ---- sources: where posts come from ---------------------------------------
# A Pushshift / Arctic Shift archive dump (NDJSON, plain or .zst); path may be a glob.
[[source]]
name = "als-archive"
type = "reddit-dump"
path = "dumps/r_ALS_*.zst"
# subreddits = ["ALS"]          # optional filters
# since = 2026-01-01
# until = 2026-12-31
# keywords = ["trial", "study"]

# An RSS or Atom feed of a patient forum (fetched politely: robots.txt, spacing, retries).
# [[source]]
# name = "lupus-feed"
# type = "feed"
# url = "https://forum.example.org/latest.rss"

# [collect]
# contact = "mailto:you@example.org"   # added to the User-Agent so site owners can reach you
# min_interval = 1.0                   # seconds between requests to one host
'''


def write_starter_config(directory: Path, force: bool = False) -> Path:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "trustwatch.toml"
    if path.exists() and not force:
        raise InputError(f"{path}: already exists (use --force to overwrite)")
    path.write_text(STARTER, encoding="utf-8")
    return path
