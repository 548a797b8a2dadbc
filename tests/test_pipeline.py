import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from monitor import pipeline, storage
from monitor.config import load_config
from monitor.errors import ConfigError, LockedError
from conftest import FIXTURES

QUIET = lambda message: None  # noqa: E731


def counts(db_path):
    con = sqlite3.connect(db_path)
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("posts", "post_tags", "mentions", "entities", "runs", "entity_weekly")}
    finally:
        con.close()


def test_run_twice_stores_no_duplicates(dump_config, tiny_tagger):
    cfg = load_config(dump_config)
    first = pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    assert (first.new, first.tagged) == (5, 5)
    before = counts(cfg.database)
    second = pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    assert (second.new, second.updated, second.tagged) == (0, 0, 0)
    after = counts(cfg.database)
    assert after == {**before, "runs": 2}
    assert before["mentions"] >= 6 and before["entity_weekly"] > 0


def test_rows_match_the_contract(dump_config, tiny_tagger):
    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    post = db["posts"].get("reddit:t3_fx0001")
    assert post["author"].startswith("a_") and "fict_user" not in post["author"]
    assert "[email]" in post["text"] and "[phone]" in post["text"]
    assert "example.org" not in post["text"]
    tag = next(db.query("select * from post_tags where post_id = 'reddit:t3_fx0001'"))
    assert tag["model"] == tiny_tagger.model_id
    assert set(json.loads(tag["themes"]).values()) <= {"builds", "erodes"}
    m = list(db.query("select * from mentions where post_id = 'reddit:t1_fx0c01' order by start"))
    full = db["posts"].get("reddit:t1_fx0c01")["text"]
    assert [(r["entity_id"], full[r["start"]:r["end"]]) for r in m] == [("lakeshore", "LCRI"), ("calloway", "Calloway's")]
    assert list(db.query("select * from posts_fts where posts_fts match 'nurses'"))
    run = next(db.query("select * from runs"))
    assert run["status"] == "ok" and json.loads(run["sources"])["fixture-dump"]["deleted"] == 4
    # WAL so Datasette reads while a run writes
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_edited_post_is_updated_and_retagged(dump_config, tiny_tagger, tmp_path):
    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    dump = tmp_path / "dump.ndjson"
    dump.write_text(dump.read_text().replace("Lakeshore was kind to my dad.", "Calloway was kind to my dad."))
    report = pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    assert (report.new, report.updated, report.tagged) == (0, 1, 1)
    db = storage.open_db(cfg.database)
    assert [r["entity_id"] for r in db.query("select entity_id from mentions where post_id = 'reddit:t1_fx0c02'")] == ["calloway"]


def test_new_model_retags_without_mixing(dump_config, tiny_tagger, tiny_encoder_dir, tmp_path):
    import models
    from conftest import make_heads

    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    make_heads(32, seed=5, version="test-2").save(tmp_path / "h2.npz")
    t2 = models.load_tagger(cfg.watch, encoder=tiny_encoder_dir, heads=tmp_path / "h2.npz")
    report = pipeline.run(cfg, log=QUIET, tagger=t2)
    assert report.tagged == 5
    db = storage.open_db(cfg.database)
    per_model = dict(db.execute("select model, count(*) from post_tags group by model").fetchall())
    assert per_model == {tiny_tagger.model_id: 5, t2.model_id: 5}
    models_in_view = {r[0] for r in db.execute("select distinct model from entity_weekly_sentiment")}
    assert models_in_view == {t2.model_id}


def test_watchlist_change_retags_and_removes_old_entities(dump_config, tiny_tagger, tiny_encoder_dir, tiny_heads_path):
    import models

    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    with_calloway = db.execute("select count(distinct post_id) from mentions where entity_id = 'calloway'").fetchone()[0]
    assert 0 < with_calloway < 5
    cfg.watch = [e for e in cfg.watch if e.id != "calloway"]
    t = models.load_tagger(cfg.watch, encoder=tiny_encoder_dir, heads=tiny_heads_path)
    lines = []
    # Only the posts that named Calloway are re-tagged; the others find the same mentions.
    assert pipeline.run(cfg, log=lines.append, tagger=t).tagged == with_calloway
    assert f"{5 - with_calloway} posts keep their tags" in "\n".join(lines)
    assert db.execute("select count(*) from mentions where entity_id = 'calloway'").fetchone()[0] == 0
    assert not db["entities"].count_where("id = 'calloway'")
    # ... and every tag is what tagging from scratch with the new watchlist gives.
    fresh = storage.open_db(cfg.database.parent / "fresh.db")
    storage.save_posts(fresh, [])
    fresh.execute("attach database ? as old", [str(cfg.database)])
    fresh.execute("insert into posts select * from old.posts")
    fresh.conn.commit()
    fresh.execute("detach database old")
    pipeline.tag(cfg, fresh, log=QUIET, tagger=t)
    for sql in ("select post_id, model, sentiment, negative, neutral, positive, themes, content_hash, watchlist_hash "
                "from post_tags order by post_id",
                "select * from mentions order by post_id, start"):
        assert db.execute(sql).fetchall() == fresh.execute(sql).fetchall()


def test_after_an_interrupted_watchlist_change_nothing_is_restamped_blindly(dump_config, tiny_tagger, tiny_encoder_dir,
                                                                            tiny_heads_path):
    """A run that synced the new watchlist (dropping Calloway's mentions) and died before
    tagging: the next run cannot compare against mentions that are gone, so it re-tags."""
    import models

    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    cfg.watch = [e for e in cfg.watch if e.id != "calloway"]
    storage.sync_entities(db, cfg.watch)  # what the interrupted run got done
    t = models.load_tagger(cfg.watch, encoder=tiny_encoder_dir, heads=tiny_heads_path)
    assert pipeline.run(cfg, log=QUIET, tagger=t).tagged == 5


def test_a_new_alias_retags_only_posts_where_it_is_found(dump_config, tiny_tagger, tiny_encoder_dir, tiny_heads_path):
    import dataclasses

    import models

    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    cfg.watch = [dataclasses.replace(e, aliases=(*e.aliases, "nurses")) if e.id == "calloway" else e
                 for e in cfg.watch]
    t = models.load_tagger(cfg.watch, encoder=tiny_encoder_dir, heads=tiny_heads_path)
    db = storage.open_db(cfg.database)
    nurses = db.execute("select count(*) from posts where title || ' ' || text like '%nurses%'").fetchone()[0]
    assert 0 < nurses < 5
    assert pipeline.run(cfg, log=QUIET, tagger=t).tagged == nurses
    assert db.execute("select count(*) from mentions where surface = 'nurses'").fetchone()[0] >= nurses


def test_new_matcher_rules_retag_only_posts_whose_mentions_change(dump_config, tiny_tagger, tiny_encoder_dir,
                                                                  tiny_heads_path, monkeypatch):
    """An upgrade whose matcher finds other mentions in some texts: the next run matches the
    stored posts again and re-tags only those, exactly as tagging from scratch would."""
    import models
    import models.mentions

    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    old_wl = storage.watchlist_hash(cfg.watch)
    monkeypatch.setattr(models.mentions, "MATCHER_RULES", models.mentions.MATCHER_RULES + 1)
    assert storage.watchlist_hash(cfg.watch) != old_wl
    lines = []
    assert pipeline.run(cfg, log=lines.append, tagger=tiny_tagger).tagged == 0  # same rules in fact
    assert "mention rules changed; 5 posts keep their tags" in "\n".join(lines)
    # A rule that drops every match of one alias stands in for a real change of rules.
    find = models.mentions.MentionMatcher.find
    monkeypatch.setattr(models.mentions, "MATCHER_RULES", models.mentions.MATCHER_RULES + 1)
    monkeypatch.setattr(models.mentions.MentionMatcher, "find",
                        lambda self, text: [m for m in find(self, text) if m.entity != "calloway"])
    with_calloway = db.execute("select count(distinct post_id) from mentions where entity_id = 'calloway'").fetchone()[0]
    assert 0 < with_calloway < 5
    t = models.load_tagger(cfg.watch, encoder=tiny_encoder_dir, heads=tiny_heads_path)
    assert pipeline.run(cfg, log=QUIET, tagger=t).tagged == with_calloway
    assert db.execute("select count(*) from mentions where entity_id = 'calloway'").fetchone()[0] == 0
    assert storage.count_to_tag(db, t.model_id, storage.watchlist_hash(cfg.watch)) == 0


def test_missing_salt_refuses_to_collect(dump_config, tiny_tagger, monkeypatch):
    monkeypatch.delenv("TRUSTWATCH_SALT")
    with pytest.raises(ConfigError, match="TRUSTWATCH_SALT is not set"):
        pipeline.run(load_config(dump_config), log=QUIET, tagger=tiny_tagger)


def test_failing_source_does_not_stop_the_others(dump_config, tiny_tagger):
    text = dump_config.read_text() + '\n[[source]]\nname = "gone"\ntype = "reddit-dump"\npath = "missing.ndjson"\n'
    dump_config.write_text(text)
    cfg = load_config(dump_config)
    report = pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    assert report.failed and "gone" in report.errors and report.new == 5
    db = storage.open_db(cfg.database)
    assert next(db.query("select status from runs"))["status"] == "partial"


def _hold_lock(path, ready, release):
    with pipeline.run_lock(path):
        ready.set()
        release.wait(10)


def test_lock_blocks_a_second_run_and_dies_with_its_process(tmp_path):
    db = tmp_path / "x.db"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(db, ready, release))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(LockedError, match="another trustwatch run holds the lock"):
        with pipeline.run_lock(db):
            pass
    os.kill(holder.pid, 9)  # a killed run leaves no stale lock
    holder.join()
    with pipeline.run_lock(db):
        pass


def test_progress_bar_counts_what_is_tagged(dump_config, tiny_tagger, capsys):
    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger, steps=("collect",), progress=True)
    assert "collect fixture-dump" in capsys.readouterr().err
    db = storage.open_db(cfg.database)
    wl = storage.watchlist_hash(cfg.watch)
    assert storage.count_to_tag(db, tiny_tagger.model_id, wl) == 5
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger, steps=("tag",), progress=True)
    assert "tagging" in capsys.readouterr().err  # click draws the bar itself only on a terminal
    assert storage.count_to_tag(db, tiny_tagger.model_id, wl) == 0


def test_opted_out_communities_are_skipped_and_purged(dump_config, tiny_tagger):
    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    assert db["posts"].count_where("community = 'r/clinicaltrials'") == 1
    dump_config.write_text(dump_config.read_text().replace("[model]", '[privacy]\nopt_out = ["r/ClinicalTrials"]\n\n[model]'))
    cfg = load_config(dump_config)
    lines = []
    pipeline.run(cfg, log=lines.append, tagger=tiny_tagger)
    assert db["posts"].count_where("community = 'r/clinicaltrials'") == 0
    assert any("removed 1 posts of opted-out communities" in line for line in lines)
    fresh = dump_config.parent / "fresh.toml"  # a new database: the opted-out post is never stored
    fresh.write_text(dump_config.read_text().replace('path = "tw.db"', 'path = "fresh.db"'))
    report = pipeline.run(load_config(fresh), log=QUIET, tagger=tiny_tagger)
    assert report.new == 4 and report.sources["fixture-dump"]["opted_out"] == 1


def test_retention_purges_old_text_but_keeps_aggregates(dump_config, tiny_tagger):
    cfg = load_config(dump_config)
    pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)
    db = storage.open_db(cfg.database)
    weekly = list(db.query("select * from entity_weekly order by entity_id, week"))
    dump_config.write_text(dump_config.read_text().replace("[model]", "[privacy]\nretain_days = 200\n\n[model]"))
    cfg = load_config(dump_config)
    report = pipeline.run(cfg, log=QUIET, tagger=tiny_tagger)  # the March 2026 posts are past retention
    assert report.tagged == 0 and report.new == 0
    assert db.execute("select count(*) from posts where text != '' or title != ''").fetchone()[0] == 0
    assert not list(db.query("select rowid from posts_fts where posts_fts match 'nurses'"))
    assert list(db.query("select * from entity_weekly order by entity_id, week")) == weekly
    assert db.execute("select count(*) from post_tags").fetchone()[0] == 5


@pytest.mark.parametrize("lexical", [False, True])
def test_tagging_in_worker_processes_gives_the_same_tags(tmp_path, tiny_tagger, tiny_encoder_dir, monkeypatch, lexical):
    """[model] workers > 1: chunks, mentions and verdicts (and the bag-of-words reading of
    post sentiment) are worked out in other processes (as on a GPU); every tag and mention is
    the same as tagging in one process."""
    import random

    from collectors import Post
    from monitor.config import Config, load_watchlist

    rng = random.Random(11)
    names = ["Lakeshore", "LCRI", "ALS Hope", "Calloway", "NCT09912345", "ALS", "Lakeshores", "Calloway's"]
    words = "the nurses were kind but nobody called back about the visit results trial site".split()
    posts = []
    for i in range(150):
        body = " ".join(rng.choice(words + names) for _ in range(rng.randrange(3, 400))) + "."
        posts.append(Post(id=f"t:{i}", source="s", platform="reddit", community="r/ALS", url=None, author=None,
                          created_at="2026-05-01T00:00:00Z", title=rng.choice(["", "Lakeshore update"]), text=body))
    watch = load_watchlist(FIXTURES / "watchlist.toml")
    if lexical:
        import models
        from conftest import make_heads
        from models.lexical import fit_lexical

        heads = make_heads(32)
        model = fit_lexical([p.text for p in posts], [rng.randrange(3) for _ in posts], 1e-3)
        heads.lexical, heads.meta["lexical"] = model.arrays(), {"weight": 0.5}
        heads.save(tmp_path / "lexical.npz")
        tiny_tagger = models.load_tagger(watch, encoder=tiny_encoder_dir, heads=tmp_path / "lexical.npz")
        assert tiny_tagger.planner.lexical is not None
    tables = []
    # The workers' state file goes in a private temporary folder, and is removed after.
    state_dir = tmp_path / "tmp"
    state_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(state_dir))
    monkeypatch.setattr("tempfile.tempdir", None)
    for workers in (1, 3):
        cfg = Config(path=tmp_path / "t.toml", database=tmp_path / f"w{workers}.db", watch=watch)
        db = storage.open_db(cfg.database)
        storage.save_posts(db, posts)
        clock = pipeline.StageClock()
        assert pipeline.tag(cfg, db, log=QUIET, tagger=tiny_tagger, batch=16, workers=workers, clock=clock) == 150
        if workers > 1:  # where the time went, for bench/throughput.py
            assert {"start workers, first plans", "wait for plans", "queue forward passes",
                    "warm up the model", "writer thread busy"} <= clock.seconds.keys()
            assert all(v >= 0 for v in clock.seconds.values())
            assert "writer thread busy" in str(clock)
        assert list(state_dir.iterdir()) == []
        tables.append((
            [r[:-1] for r in db.execute("select * from post_tags order by post_id").fetchall()],  # all but tagged_at
            db.execute("select * from mentions order by post_id, start").fetchall(),
        ))
        db.close()
    assert tables[0] == tables[1]
    assert len(tables[0][1]) > 300


def test_tag_workers_default_to_one_on_a_cpu_and_spare_cores_on_a_gpu(monkeypatch):
    from monitor.config import ModelConfig

    assert pipeline.tag_workers(ModelConfig()) == 1
    assert pipeline.tag_workers(ModelConfig(workers=4)) == 4
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 16)
    assert pipeline.tag_workers(ModelConfig(device="cuda")) == 8
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 2)
    assert pipeline.tag_workers(ModelConfig(device="cuda:1")) == 1


def test_usable_cpus_respect_a_cgroup_quota(tmp_path, monkeypatch):
    """A container or VM that shows 16 cores but allows 4 CPUs' worth of time gets 4."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    (root / "jobs" / "tw").mkdir(parents=True)
    proc.write_text("0::/jobs/tw\n")
    (root / "jobs" / "tw" / "cpu.max").write_text("400000 100000\n")
    assert pipeline.cgroup_cpu_quota(root, proc) == 4.0
    assert pipeline.usable_cpus(root, proc) == 4
    (root / "jobs" / "tw" / "cpu.max").write_text("max 100000\n")
    assert pipeline.usable_cpus(root, proc) == 16
    (root / "jobs" / "cpu.max").write_text("300000 100000\n")  # a limit on the parent holds too
    assert pipeline.usable_cpus(root, proc) == 3
    (root / "jobs" / "cpu.max").unlink()
    # cgroup v1
    proc.write_text("4:cpu,cpuacct:/svc\n")
    (root / "cpu" / "svc").mkdir(parents=True)
    (root / "cpu" / "svc" / "cpu.cfs_quota_us").write_text("250000\n")
    (root / "cpu" / "svc" / "cpu.cfs_period_us").write_text("100000\n")
    assert pipeline.cgroup_cpu_quota(root, proc) == 2.5
    assert pipeline.usable_cpus(root, proc) == 2
    # nothing readable: the affinity mask alone
    assert pipeline.usable_cpus(tmp_path / "none", tmp_path / "none") == 16


def test_a_failed_write_in_the_writer_thread_stops_tagging_with_that_error(tmp_path, tiny_tagger, monkeypatch):
    """With workers, tags are written from a thread: a write that fails must stop `tag`
    with its error (not be lost in the thread), and the batches written before it stay."""
    from collectors import Post
    from monitor.config import Config, load_watchlist

    posts = [Post(id=f"w:{i}", source="s", platform="reddit", community="r/ALS", url=None, author=None,
                  created_at="2026-05-01T00:00:00Z", title="", text=f"Lakeshore visit number {i} went fine.")
             for i in range(40)]
    cfg = Config(path=tmp_path / "t.toml", database=tmp_path / "w.db", watch=load_watchlist(FIXTURES / "watchlist.toml"))
    db = storage.open_db(cfg.database)
    storage.save_posts(db, posts)
    real, calls = storage.write_tags, []

    def flaky(conn, model, rows):
        calls.append(len(rows.post_ids))
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        real(conn, model, rows)

    monkeypatch.setattr(storage, "write_tags", flaky)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        pipeline.tag(cfg, db, log=QUIET, tagger=tiny_tagger, batch=10, workers=2)
    assert db.execute("select count(*) from post_tags").fetchone()[0] == 10  # the first batch
    assert calls[:2] == [10, 10]


@pytest.mark.parametrize("step", ["collect", "recheck"])
def test_the_runs_http_connections_are_closed_when_it_ends(dump_config, monkeypatch, step):
    import collectors

    made = []

    def client(cfg):
        made.append(collectors.PoliteClient(contact="test@example.org"))
        return made[-1]

    monkeypatch.setattr(pipeline, "polite_client", client)
    text = dump_config.read_text() + '\n[[source]]\nname = "gone"\ntype = "reddit-dump"\npath = "missing.ndjson"\n'
    dump_config.write_text(text)
    cfg = load_config(dump_config)
    db = storage.open_db(cfg.database)
    report = getattr(pipeline, step)(cfg, db, log=QUIET)
    assert len(made) == 1 and made[0].client.is_closed
    assert step == "recheck" or "gone" in report.errors  # closed after a failing source too
