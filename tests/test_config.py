import json
from pathlib import Path

import pytest

from monitor.config import load_config, load_watchlist
from monitor.errors import ConfigError

GOOD = """
[database]
path = "x.db"

[[watch]]
id = "lakeshore"
kind = "site"
name = "Lakeshore Clinical Research Institute"
aliases = ["LCRI"]
partners = ["als-hope"]

[[watch]]
id = "als-hope"
kind = "group"
name = "ALS Hope Alliance"

[[source]]
name = "arch"
type = "reddit-dump"
path = "dumps/*.zst"
subreddits = ["ALS"]
since = 2026-01-01
"""


def write(tmp_path, text, name="trustwatch.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_config(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.database == tmp_path / "x.db"
    assert [e.id for e in cfg.watch] == ["lakeshore", "als-hope"]
    assert cfg.watch[0].partners == ("als-hope",)
    src = cfg.source("arch")
    assert src.path() == tmp_path / "dumps/*.zst"
    assert src.options["since"].year == 2026


@pytest.mark.parametrize(
    "change, message",
    [
        (('kind = "site"', 'kind = "hospital"'), "watch[0].kind: 'hospital' is not one of"),
        (('partners = ["als-hope"]', 'partners = ["nobody"]'), "watch[0].partners[0]: no watched entity has id 'nobody'"),
        (('id = "als-hope"', 'id = "lakeshore"'), "watch[1].id: 'lakeshore' is used twice"),
        (('type = "reddit-dump"', 'type = "reddti"'), "source[0].type: 'reddti' is not a source type"),
        (('path = "dumps/*.zst"', ''), "source[0].path: missing"),
        (('subreddits = ["ALS"]', 'subreddits = "ALS"'), "source[0].subreddits: expected a list of strings"),
        (('since = 2026-01-01', 'since = "last tuesday"'), "source[0].since: 'last tuesday' is not a date"),
        (('subreddits = ["ALS"]', 'subredits = ["ALS"]'), "source[0].subredits: unknown field"),
        (('[database]', '[databse]'), "databse: unknown field"),
        (('aliases = ["LCRI"]', 'aliases = ["LCRI", 3]'), "watch[0].aliases[1]: expected a string"),
    ],
)
def test_bad_config_names_the_field(tmp_path, change, message):
    p = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)
    assert "\n" not in str(e.value)


def test_invalid_toml_gives_line(tmp_path):
    p = write(tmp_path, GOOD + "\n[[watch]\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line \d+"):
        load_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_not_utf8(tmp_path):
    p = tmp_path / "trustwatch.toml"
    p.write_bytes(b"[database]\npath = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(p)


def test_env_var_names_default_config(tmp_path, monkeypatch):
    p = write(tmp_path, GOOD, "elsewhere.toml")
    monkeypatch.setenv("TRUSTWATCH_CONFIG", str(p))
    assert load_config().path == p


def test_watchlist_toml_and_json(tmp_path):
    toml = write(tmp_path, GOOD, "w.toml")
    js = tmp_path / "w.json"
    js.write_text(json.dumps([{"id": "x", "kind": "sponsor", "name": "X Bio", "aliases": ["XB"]}]))
    assert [e.id for e in load_watchlist(toml)] == ["lakeshore", "als-hope"]
    assert load_watchlist(js)[0].aliases == ("XB",)
    js.write_text('[{"id": "x"')
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_watchlist(js)
    js.write_text('[{"id": "x", "kind": "site"}]')
    with pytest.raises(ConfigError, match=r"\[0\]\.name: missing"):
        load_watchlist(js)


def test_feed_source_and_collect_settings(tmp_path):
    text = GOOD + '\n[collect]\ncontact = "mailto:ops@example.org"\nmin_interval = 2\n\n[[source]]\nname = "f"\ntype = "feed"\nurl = "https://example.org/rss.xml"\n'
    cfg = load_config(write(tmp_path, text))
    assert cfg.collect.min_interval == 2.0 and cfg.source("f").options["url"].startswith("https://")
    with pytest.raises(ConfigError, match=r"source\[1\]\.url: 'ftp://x' is not an http\(s\) URL"):
        load_config(write(tmp_path, text.replace("https://example.org/rss.xml", "ftp://x")))
    for bad in ("-1", "inf", "nan", "1e300"):
        with pytest.raises(ConfigError, match="collect.min_interval: seconds from 0 to 86400"):
            load_config(write(tmp_path, text.replace("min_interval = 2", f"min_interval = {bad}")))


def test_mastodon_needs_hashtags(tmp_path):
    text = GOOD + '\n[[source]]\nname = "m"\ntype = "mastodon"\nbase_url = "https://m.example"\nhashtags = []\n'
    with pytest.raises(ConfigError, match=r"source\[1\]\.hashtags: name at least one hashtag"):
        load_config(write(tmp_path, text))
    cfg = load_config(write(tmp_path, text.replace("hashtags = []", 'hashtags = ["ALS"]\nmax_pages = 3')))
    assert cfg.source("m").options["max_pages"] == 3


def test_reddit_source_fields(tmp_path):
    text = GOOD + '\n[[source]]\nname = "r"\ntype = "reddit"\nsubreddits = ["ALS"]\nquery = "trial OR study"\ncomments = true\n'
    assert load_config(write(tmp_path, text)).source("r").options["query"] == "trial OR study"
    with pytest.raises(ConfigError, match=r"source\[1\]\.comments: expected true or false"):
        load_config(write(tmp_path, text.replace("comments = true", 'comments = "yes"')))
    with pytest.raises(ConfigError, match=r"source\[1\]\.subreddits: name at least one subreddit"):
        load_config(write(tmp_path, text.replace('subreddits = ["ALS"]', "subreddits = []")))


def test_privacy_settings(tmp_path):
    text = GOOD.replace("[database]", '[privacy]\nretain_days = 365\nopt_out = ["r/SomeSub"]\n\n[database]')
    cfg = load_config(write(tmp_path, text))
    assert cfg.retain_days == 365 and cfg.opt_out == ["r/somesub"]
    for bad in ("0", "99999999", "1000000000000000000000"):
        with pytest.raises(ConfigError, match="privacy.retain_days: must be between 1 and 365000"):
            load_config(write(tmp_path, text.replace("retain_days = 365", f"retain_days = {bad}")))
    with pytest.raises(ConfigError, match="privacy.opt_out: expected a list of strings"):
        load_config(write(tmp_path, text.replace('opt_out = ["r/SomeSub"]', 'opt_out = "r/SomeSub"')))


def test_model_settings(tmp_path):
    cfg = load_config(write(tmp_path, GOOD + '\n[model]\nint8 = true\nthemes = "some/nli-model"\n'))
    assert cfg.model.int8 is True and cfg.model.themes == "some/nli-model"
    assert load_config(write(tmp_path, GOOD)).model.int8 is False
    with pytest.raises(ConfigError, match="model.int8: expected true or false"):
        load_config(write(tmp_path, GOOD + '\n[model]\nint8 = "yes"\n'))
    assert load_config(write(tmp_path, GOOD + '\n[model]\nworkers = 6\n')).model.workers == 6
    assert load_config(write(tmp_path, GOOD)).model.workers == 0
    with pytest.raises(ConfigError, match="model.workers: must be between 0"):
        load_config(write(tmp_path, GOOD + '\n[model]\nworkers = -2\n'))
    with pytest.raises(ConfigError, match="model.workers: expected a number of processes"):
        load_config(write(tmp_path, GOOD + '\n[model]\nworkers = "auto"\n'))


def test_a_json_watchlist_that_is_a_folder_is_one_line(tmp_path):
    from monitor.config import ConfigError, load_watchlist

    (tmp_path / "w.json").mkdir()
    with pytest.raises(ConfigError, match=r"w\.json: cannot read"):
        load_watchlist(tmp_path / "w.json")


@pytest.mark.parametrize("line", ["z = nan", "min_change = nan", "min_posts = 0", "z = inf", "baseline_weeks = 10000000", "baseline_weeks = 521"])
def test_alert_rules_must_be_finite_and_in_range(tmp_path, line):
    with pytest.raises(ConfigError, match="out of range"):
        load_config(write(tmp_path, GOOD + f"\n[alerts]\n{line}\n"))


def test_a_huge_batch_size_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="model.batch_size: must be between 1 and 65536"):
        load_config(write(tmp_path, GOOD + "\n[model]\nbatch_size = 100000000000000000000000\n"))


def test_a_watch_context_must_be_text(tmp_path):
    with pytest.raises(ConfigError, match=r"context: expected a string"):
        load_watchlist(write(tmp_path, '[[watch]]\nid = "x"\nkind = "site"\nname = "X"\ncontext = 5\n'))
