"""kill -9 at any point of collect, tag or aggregate, then `trustwatch run` again: no
duplicates, nothing lost, aggregates equal to an uninterrupted run's.

Real subprocesses running the real CLI on a generated dump with the tiny model; each is
killed when the database shows it in a given step (or after a given delay)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_config

POSTS = 800
TEXTS = [
    "The nurses at Lakeshore CRI were wonderful and explained the consent form line by line.",
    "Calloway never told us why the study stopped. Nobody answers the phone at Lakeshore.",
    "ALS Hope helped us find CALM-ALS and drove my dad to every visit.",
    "Is anyone else waiting on results from NCT09912345? It has been a year.",
    "Off topic but the parking garage at the hospital is a nightmare.",
]


def make_dump(path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(POSTS):
            fh.write(json.dumps({
                "id": f"k{i:05d}", "name": f"t3_k{i:05d}", "subreddit": "ALS", "author": f"fict_{i % 97}",
                "created_utc": 1772870400 + i * 3600, "title": f"Post {i}",
                "selftext": TEXTS[i % len(TEXTS)] + f" (fictional test post {i})",
                "permalink": f"/r/ALS/comments/k{i:05d}/x/", "url": f"https://www.reddit.com/r/ALS/comments/k{i:05d}/x/",
            }) + "\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_encoder_dir, tiny_heads_path):
    root = tmp_path_factory.mktemp("crash")
    make_dump(root / "dump.ndjson")
    return root


def setup_dir(project: Path, name: str, tiny_encoder_dir, tiny_heads_path) -> Path:
    d = project / name
    d.mkdir()
    shutil.copy(project / "dump.ndjson", d / "dump.ndjson")
    return write_config(d, tiny_encoder_dir, tiny_heads_path, sources="""
        [[source]]
        name = "dump"
        type = "reddit-dump"
        path = "dump.ndjson"
        """, extra="batch_size = 8")


def env() -> dict:
    return {**os.environ, "TRUSTWATCH_SALT": "crash-test-salt-0123456789", "PYTHONUNBUFFERED": "1"}


def run_cli(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                          capture_output=True, text=True, env=env(), timeout=300)


def snapshot(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {
            "posts": con.execute("select id, author, content_hash, text from posts order by id").fetchall(),
            "fts": con.execute("select count(*) from posts_fts").fetchone()[0],
            "tags": con.execute("select post_id, model, sentiment, content_hash from post_tags order by post_id").fetchall(),
            "mentions": con.execute("select post_id, entity_id, start, sentiment from mentions order by 1, 3").fetchall(),
            "weekly": con.execute("select * from entity_weekly order by entity_id, week, model").fetchall(),
            "daily": con.execute("select * from entity_daily order by entity_id, day, model").fetchall(),
            "themes": con.execute("select * from entity_theme_weekly order by 1, 2, 3, 4").fetchall(),
            "alerts": con.execute("select id, posts, count from alerts order by id").fetchall(),
            "dirty": con.execute("select count(*) from agg_dirty").fetchone()[0],
        }
    finally:
        con.close()


def db_state(db: Path) -> tuple[int, int, int]:
    """(posts, tags, days waiting for aggregation) as another reader sees them now."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("select (select count(*) from posts), (select count(*) from post_tags), "
                               "(select count(*) from agg_dirty)").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0, 0, 0


@pytest.fixture(scope="module")
def reference(project, tiny_encoder_dir, tiny_heads_path):
    config = setup_dir(project, "reference", tiny_encoder_dir, tiny_heads_path)
    done = run_cli(config)
    assert done.returncode == 0, done.stderr
    return snapshot(config.parent / "tw.db")


# Where to kill, in the order a run reaches them: predicates on (posts stored, posts
# tagged, days waiting for aggregation). Tags are saved 256 posts per transaction.
POINTS = [
    ("during collect", lambda posts, tags, dirty: 0 < posts < POSTS),
    ("after collect, before tagging", lambda posts, tags, dirty: posts == POSTS and tags == 0),
    ("early in tagging", lambda posts, tags, dirty: 0 < tags < POSTS // 2),
    ("late in tagging", lambda posts, tags, dirty: POSTS // 2 <= tags < POSTS),
    ("tagged, not yet aggregated", lambda posts, tags, dirty: tags == POSTS and dirty > 0),
]


def run_until(config: Path, point) -> tuple[int, int, int] | None:
    """Start `trustwatch run`, SIGKILL it when the database reaches the point; the
    state it was killed at, or None when it finished first."""
    db = config.parent / "tw.db"
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        state = db_state(db)
        if point(*state):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            return state
        time.sleep(0.003)
    proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return None


def test_kill_9_at_every_step_then_run_again_loses_nothing(project, reference, tiny_encoder_dir, tiny_heads_path):
    """One database, killed in turn during collect, before tagging, early and late in
    tagging and before aggregation (each restart resumes where the last one died), then
    run to the end: it equals a database that was never interrupted."""
    config = setup_dir(project, "killed", tiny_encoder_dir, tiny_heads_path)
    db = config.parent / "tw.db"
    kills = {}
    for name, point in POINTS:
        state = run_until(config, point)
        if state is not None:
            kills[name] = state
    # The last point lasts milliseconds; every other one must have been hit.
    assert set(kills) >= {name for name, _ in POINTS[:4]}, kills
    final = run_cli(config)
    assert final.returncode == 0, final.stderr
    assert snapshot(db) == reference, f"killed at {kills}: the database differs from an uninterrupted run"
    con = sqlite3.connect(db)
    statuses = [r[0] for r in con.execute("select status from runs order by id")]
    assert statuses == ["interrupted"] * len(kills) + ["ok"] * (len(statuses) - len(kills))
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert snapshot(db)["dirty"] == 0


def test_a_reader_keeps_reading_while_a_run_writes(project, tiny_encoder_dir, tiny_heads_path):
    """WAL: Datasette-style readers get consistent answers while a run writes."""
    config = setup_dir(project, "reader", tiny_encoder_dir, tiny_heads_path)
    db = config.parent / "tw.db"
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    reads, errors, seen = 0, [], set()
    while proc.poll() is None:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            posts, tags = con.execute("select (select count(*) from posts), (select count(*) from post_tags)").fetchone()
            con.close()
            assert tags <= posts
            seen.add((posts > 0, tags > 0))
            reads += 1
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e) and "unable to open" not in str(e):
                errors.append(str(e))
        time.sleep(0.01)
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert errors == [] and reads > 20
    assert (True, True) in seen  # it read while tags were being written
