"""Aggregates: Wilson intervals, incremental updates equal to a full rebuild, alerts."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from monitor import aggregate, alerts, storage
from monitor.alerts import AlertRules
from monitor.config import load_config
from monitor.errors import ConfigError

MODEL = "m@1"
SCORES = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}


@pytest.fixture
def db(tmp_path):
    d = storage.open_db(tmp_path / "agg.db")
    d["entities"].insert_all([{"id": e, "kind": "site", "name": e, "aliases": "[]", "partners": "[]"}
                              for e in ("lake", "pine")], pk="id")
    d["models"].insert({"id": MODEL, "name": "m", "version": "1", "current": 1}, pk="id")
    return d


def add_post(db, pid, when, mentions, author="a1", community="r/x", model=MODEL):
    """One post with mentions [(entity, sentiment, themes)]."""
    db["posts"].upsert({"id": pid, "source": "s", "platform": "reddit", "community": community,
                        "url": f"https://example.org/{pid}", "author": author,
                        "created_at": when, "title": "", "text": "t", "content_hash": "h"}, pk="id")
    rows = []
    for i, (entity, sentiment, themes) in enumerate(mentions):
        neg, neu, pos = SCORES[sentiment]
        rows.append({"post_id": pid, "entity_id": entity, "model": model, "start": i * 10, "end": i * 10 + 4,
                     "surface": entity, "sentiment": sentiment, "negative": neg, "neutral": neu,
                     "positive": pos, "themes": json.dumps(themes)})
    with db.atomic():
        db.execute("delete from mentions where post_id = ? and model = ?", [pid, model])
        if rows:
            db["mentions"].insert_all(rows, pk=("post_id", "model", "start"))


def table(db, name, order):
    return [dict(r) for r in db.query(f"select * from {name} order by {order}")]


def test_wilson_interval_matches_known_values():
    assert aggregate.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert aggregate.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert aggregate.wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert aggregate.wilson(0, 0) == (0.0, 1.0)


def test_week_starts_on_monday():
    assert aggregate.week_of("2026-07-12T23:59:59Z") == "2026-07-06"  # a Sunday
    assert aggregate.week_of("2026-07-13") == "2026-07-13"


def test_a_post_counts_once_per_entity_with_averaged_scores(db):
    add_post(db, "p1", "2026-07-07T10:00:00Z",
             [("lake", "negative", {"transparency": "erodes"}), ("lake", "negative", {"transparency": "erodes"}),
              ("lake", "positive", {"respect": "builds"}), ("pine", "positive", {})])
    add_post(db, "p2", "2026-07-08T10:00:00Z", [("lake", "positive", {})], author="a2", community="r/y")
    aggregate.update(db, MODEL)
    lake = db.execute("select posts, mentions, negative, positive, authors, communities, themes, negative_share, "
                      "negative_low, negative_high from entity_weekly where entity_id = 'lake'").fetchone()
    assert lake[:6] == (2, 4, 1, 1, 2, 2)
    assert json.loads(lake[6]) == {"respect": {"builds": 1, "erodes": 0}, "transparency": {"builds": 0, "erodes": 1}}
    assert lake[7] == 0.5 and (lake[8], lake[9]) == aggregate.wilson(1, 2)
    days = db.execute("select day, posts from entity_daily where entity_id = 'lake' order by day").fetchall()
    assert days == [("2026-07-07", 1), ("2026-07-08", 1)]
    themes = db.execute("select theme, builds, erodes, posts from entity_theme_weekly where entity_id = 'lake' "
                        "order by theme").fetchall()
    assert themes == [("respect", 1, 0, 2), ("transparency", 0, 1, 2)]


def test_update_recomputes_only_changed_weeks(db):
    add_post(db, "old", "2026-06-01T10:00:00Z", [("lake", "positive", {})])
    first = aggregate.update(db, MODEL)
    assert first.weeks == 1
    assert aggregate.update(db, MODEL).weeks == 0  # nothing changed: nothing recomputed
    add_post(db, "new", "2026-07-07T10:00:00Z", [("lake", "negative", {})])
    second = aggregate.update(db, MODEL)
    assert second.weeks == 1
    weeks = db.execute("select week, posts, negative from entity_weekly order by week").fetchall()
    assert weeks == [("2026-06-01", 1, 0), ("2026-07-06", 1, 1)]


def test_deleted_posts_leave_the_aggregates(db):
    add_post(db, "p1", "2026-07-07T10:00:00Z", [("lake", "negative", {})])
    add_post(db, "p2", "2026-07-07T11:00:00Z", [("lake", "positive", {})])
    aggregate.update(db, MODEL)
    storage.delete_posts(db, ["p1"])
    assert aggregate.update(db, MODEL).weeks == 1
    assert db.execute("select posts, negative, positive from entity_weekly").fetchall() == [(1, 0, 1)]
    storage.delete_posts(db, ["p2"])
    aggregate.update(db, MODEL)
    assert db["entity_weekly"].count == 0 and db["entity_daily"].count == 0


def test_incremental_equals_a_full_rebuild(db):
    rng = random.Random(7)
    start = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    ids = []
    for step in range(6):  # six runs, each adding, editing and deleting posts
        for i in range(40):
            pid = f"p{step}-{i}"
            when = start + dt.timedelta(hours=rng.randrange(0, 24 * 120))
            mentions = [(rng.choice(["lake", "pine"]), rng.choice(list(SCORES)),
                         rng.choice([{}, {"transparency": rng.choice(["builds", "erodes"])}]))
                        for _ in range(rng.randrange(0, 3))]
            add_post(db, pid, when.strftime("%Y-%m-%dT%H:%M:%SZ"), mentions, author=f"a{rng.randrange(9)}")
            ids.append(pid)
        storage.delete_posts(db, rng.sample(ids, 5))
        ids = [i for i in ids if db["posts"].count_where("id = ?", [i])]
        aggregate.update(db, MODEL)
    incremental = {name: table(db, name, "1, 2, 3") for name in ("entity_weekly", "entity_daily")}
    incremental["themes"] = table(db, "entity_theme_weekly", "1, 2, 3, 4")
    for name in ("entity_weekly", "entity_daily", "entity_theme_weekly"):
        db.execute(f"delete from {name}")
    aggregate.rebuild(db, MODEL)
    assert incremental["entity_weekly"] == table(db, "entity_weekly", "1, 2, 3")
    assert incremental["entity_daily"] == table(db, "entity_daily", "1, 2, 3")
    assert incremental["themes"] == table(db, "entity_theme_weekly", "1, 2, 3, 4")
    assert len(incremental["entity_weekly"]) > 20


def test_marks_survive_until_the_update_that_uses_them(db, tmp_path):
    """A run killed after tagging but before aggregating leaves its marks: the next
    update, from a fresh connection, still recomputes those weeks."""
    add_post(db, "p1", "2026-07-07T10:00:00Z", [("lake", "negative", {})])
    assert db["agg_dirty"].count == 1
    db.close()
    reopened = storage.open_db(tmp_path / "agg.db")
    assert aggregate.update(reopened, MODEL).weeks == 1
    assert reopened["agg_dirty"].count == 0
    assert reopened["entity_weekly"].count == 1


def test_models_never_mix(db):
    db["models"].insert({"id": "other@2", "name": "other", "version": "2", "current": 0}, pk="id")
    add_post(db, "p1", "2026-07-07T10:00:00Z", [("lake", "negative", {})])
    add_post(db, "p2", "2026-07-07T10:00:00Z", [("lake", "positive", {})], model="other@2")
    aggregate.update(db, MODEL)
    aggregate.update(db, "other@2")
    rows = db.execute("select model, posts, negative, positive from entity_weekly order by model").fetchall()
    assert rows == [("m@1", 1, 1, 0), ("other@2", 1, 0, 1)]


def _weeks(db, entity, start, counts, community="r/x"):
    """Posts per week from ``start``: counts = [(posts, negative, eroding transparency)]."""
    monday = dt.date.fromisoformat(start)
    for w, (n, neg, erodes) in enumerate(counts):
        day = monday + dt.timedelta(days=7 * w + 2)
        for i in range(n):
            sentiment = "negative" if i < neg else "positive"
            themes = {"transparency": "erodes"} if i < erodes else {}
            add_post(db, f"{entity}-{w}-{i}", f"{day}T10:{i % 60:02d}:00Z", [(entity, sentiment, themes)],
                     author=f"u{i}", community=community)


def test_a_significant_rise_raises_an_alert_with_its_figures(db):
    _weeks(db, "lake", "2026-05-04", [(5, 1, 0)] * 8 + [(12, 9, 7)])
    aggregate.update(db, MODEL)
    found = {r["metric"]: r for r in db.query("select * from alerts")}
    assert set(found) == {"negative_share", "erodes:transparency"}
    neg = found["negative_share"]
    assert (neg["entity_id"], neg["week"], neg["posts"], neg["count"]) == ("lake", "2026-06-29", 12, 9)
    assert (neg["baseline_posts"], neg["baseline_count"]) == (40, 8)
    assert neg["z"] > 2.58 and neg["share_low"] < 0.75 < neg["share_high"]
    assert "75% of 12 this week, against 20% of 40" in neg["message"]


def test_small_weeks_never_alarm_but_rules_are_configurable(db):
    _weeks(db, "lake", "2026-05-04", [(5, 0, 0)] * 8 + [(4, 4, 0)])
    aggregate.update(db, MODEL)
    assert db["alerts"].count == 0  # four posts, all negative: too few to say anything
    alerts.evaluate(db, MODEL, rules=AlertRules(min_posts=3))
    assert db["alerts"].count == 1


def test_no_alert_for_steady_negativity_or_thin_baseline(db):
    _weeks(db, "lake", "2026-05-04", [(10, 6, 0)] * 9)  # always 60% negative: no shift
    _weeks(db, "pine", "2026-06-22", [(2, 0, 0), (12, 10, 0)])  # baseline of 2 posts
    aggregate.update(db, MODEL)
    # pine's jump from 2 to 12 posts is a burst of attention, but no share is tested on 2 posts
    assert [tuple(r) for r in db.execute("select entity_id, metric from alerts")] == [("pine", "volume")]


def test_an_alert_keeps_its_first_seen_and_goes_when_the_evidence_goes(db):
    _weeks(db, "lake", "2026-05-04", [(5, 1, 0)] * 8 + [(12, 9, 0)])
    aggregate.update(db, MODEL)
    first = db.execute("select first_seen from alerts").fetchone()[0]
    db.execute("update alerts set first_seen = '2000-01-01T00:00:00Z'")
    add_post(db, "extra", "2026-07-01T10:00:00Z", [("lake", "negative", {})])
    aggregate.update(db, MODEL)
    assert db.execute("select first_seen, posts from alerts where metric = 'negative_share'").fetchone() == (
        "2000-01-01T00:00:00Z", 13)
    assert first.startswith("20")
    storage.delete_posts(db, [f"lake-8-{i}" for i in range(9)] + ["extra"])  # the negative posts are deleted
    aggregate.update(db, MODEL)
    assert db["alerts"].count == 0


def test_alert_rules_come_from_config(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text("[alerts]\nmin_posts = 6\nz = 3.0\n", encoding="utf-8")
    rules = load_config(cfg).alerts
    assert (rules.min_posts, rules.z, rules.baseline_weeks) == (6, 3.0, 8)
    cfg.write_text("[alerts]\nmin_change = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"alerts\.min_change: 2 is out of range"):
        load_config(cfg)
    cfg.write_text("[alerts]\nwindow = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"alerts\.window: unknown field"):
        load_config(cfg)


def test_a_burst_of_attention_raises_a_volume_alert(db):
    _weeks(db, "lake", "2026-05-04", [(2, 0, 0)] * 8 + [(14, 2, 0)])
    aggregate.update(db, MODEL)
    found = {r["metric"]: r for r in db.query("select * from alerts")}
    assert set(found) == {"volume"}
    burst = found["volume"]
    assert (burst["week"], burst["posts"], burst["baseline_posts"]) == ("2026-06-29", 14, 16)
    assert "14 posts this week, against 2.0 a week" in burst["message"]
    assert alerts.poisson_tail(14, 2.0) < 1e-6 and alerts.poisson_tail(0, 2.0) == 1.0


def test_the_first_weeks_of_collection_are_not_a_burst(db):
    """An entity whose first collected week is busy: no baseline weeks exist, no alert."""
    _weeks(db, "pine", "2026-06-29", [(14, 1, 0), (13, 1, 0)])
    aggregate.update(db, MODEL)
    assert db["alerts"].count == 0
