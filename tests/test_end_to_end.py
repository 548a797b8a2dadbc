"""The demo, end to end, with the real offline MiniLM: sample dumps -> database ->
Datasette shows tagged posts and mentions."""

import asyncio
import sqlite3

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.serve import make_datasette

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("demo") / "trustwatch-demo.db"
    result = CliRunner().invoke(cli, ["demo", "--no-serve", "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def get(ds, path, researcher: bool = True):
    """GET in-process, signed in as a researcher (who may read post-level tables) or not."""
    async def go():
        await ds.invoke_startup()
        cookies = {"ds_actor": ds.sign({"a": {"id": "researcher"}}, "actor")} if researcher else None
        return await ds.client.get(path, cookies=cookies)

    return asyncio.run(go())


def test_demo_builds_a_tagged_database(demo_db):
    con = sqlite3.connect(demo_db)
    n_posts = con.execute("select count(*) from posts").fetchone()[0]
    assert n_posts >= 400
    assert con.execute("select count(*) from post_tags").fetchone()[0] == n_posts
    assert con.execute("select count(distinct community) from posts").fetchone()[0] >= 4
    per_entity = dict(con.execute("select entity_id, count(distinct post_id) from mentions group by entity_id"))
    assert per_entity["lakeshore"] >= 50 and per_entity["als-hope"] >= 25
    first, last = con.execute("select min(created_at), max(created_at) from posts").fetchone()
    assert first < "2026-04-01" and last > "2026-10-01"
    # nothing deleted in the dumps was stored
    assert con.execute("select count(*) from posts where text in ('[deleted]', '[removed]')").fetchone()[0] == 0


def test_demo_second_run_adds_nothing(demo_db):
    con = sqlite3.connect(demo_db)
    before = con.execute("select count(*) from posts").fetchone()[0]
    result = CliRunner().invoke(cli, ["demo", "--no-serve", "--db", str(demo_db)], catch_exceptions=False)
    assert result.exit_code == 0
    assert con.execute("select count(*) from posts").fetchone()[0] == before
    assert "0 new" in result.output


def _shift(con, entity, week):
    """(net sentiment, negative share) before and from the given week."""
    rows = con.execute(
        "select week >= ?, 1.0 * (sum(positive) - sum(negative)) / sum(posts), 1.0 * sum(negative) / sum(posts) "
        "from entity_weekly_sentiment where entity_id = ? group by 1 order by 1", [week, entity]).fetchall()
    return {after: (net, neg) for after, net, neg in rows}


def test_demo_stories_show_in_the_weekly_view(demo_db):
    """Lakeshore closes CALM-ALS on 2026-07-10 and talk about it turns; Breathe Together's
    sponsor funding comes out on 2026-06-20 and its standing falls."""
    con = sqlite3.connect(demo_db)
    lake = _shift(con, "lakeshore", "2026-07-06")
    assert lake[0][0] - lake[1][0] >= 0.1  # net sentiment falls
    assert lake[1][1] > lake[0][1]  # a larger share of negative posts
    breathe = _shift(con, "breathe-together", "2026-06-15")
    assert breathe[0][0] - breathe[1][0] >= 0.2


def test_datasette_shows_tables_with_titles(demo_db):
    ds = make_datasette(demo_db)
    name = demo_db.stem
    r = get(ds, f"/{name}.json")
    assert r.status_code == 200
    tables = {t["name"] for t in r.json()["tables"]}
    assert {"posts", "entities", "mentions", "post_tags", "runs", "entity_weekly"} <= tables
    meta = ds.metadata(database=name)
    for table in ("posts", "entities", "mentions", "post_tags", "runs", "entity_weekly", "source_state", "models", "sources"):
        assert meta["tables"][table]["description"], table


def test_datasette_canned_weekly_sentiment(demo_db):
    ds = make_datasette(demo_db)
    r = get(ds, f"/{demo_db.stem}/weekly_sentiment_by_entity.json?entity=lakeshore&_shape=array")
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) >= 20
    assert {"week", "posts", "negative", "positive", "net_sentiment"} <= set(rows[0])


def test_datasette_shows_posts_and_mentions(demo_db):
    ds = make_datasette(demo_db)
    r = get(ds, f"/{demo_db.stem}/posts_about_entity.json?entity=als-hope&_shape=array")
    assert r.status_code == 200 and len(r.json()) >= 25
    assert all(row["url"].startswith("https://www.reddit.com/r/") for row in r.json())
    html = get(ds, f"/{demo_db.stem}/mentions")
    assert html.status_code == 200 and "Mentions of watched entities" in html.text
    assert get(ds, f"/{demo_db.stem}/mentions", researcher=False).status_code == 403


def test_demo_report_answers_how_trust_moved_this_quarter_and_why(demo_db, tmp_path):
    """The liaison's question, from the demo database alone: Q3 against Q2 for Lakeshore
    and its partner group, the July burst of attention, and the posts behind it."""
    out = tmp_path / "lakeshore-q3.md"
    result = CliRunner().invoke(cli, ["report", "--db", str(demo_db), "--entity", "lakeshore",
                                      "--until", "2026-09-30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = out.read_text(encoding="utf-8")
    assert "6 Jul 2026 – 4 Oct 2026 (compared with 6 Apr 2026 – 5 Jul 2026)" in md
    assert "It drew far more attention" in md
    assert "## Beside its partners" in md and "| ALS Hope Alliance |" in md
    assert "Lakeshore Clinical Research Institute, week of 13 Jul 2026**: A burst of attention" in md
    assert "ALS Hope Alliance, week of 13 Jul 2026" in md
    assert md.count("([source](https://www.reddit.com/r/") >= 5


def test_demo_partner_audit_tells_the_three_groups_apart(demo_db, tmp_path):
    out = tmp_path / "audit.md"
    result = CliRunner().invoke(cli, ["report", "--db", str(demo_db), "--compare", "lupus-lantern", "mn-circle",
                                      "breathe-together", "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = out.read_text(encoding="utf-8")
    assert "Motor Neuron Patient Circle: read with care" in md and "a burst, not a steady view" in md
    assert "Lupus Lantern Network and Breathe Together CF Foundation are seen differently" in md
    assert "Broadest evidence: Lupus Lantern Network" in md
    assert "Breathe Together CF Foundation: trust fell" in md
