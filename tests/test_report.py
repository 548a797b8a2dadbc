"""Reports: the entity trust report and the partner audit, from a database with known
stories (tests/synth.py), through the library and the CLI."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import synth
from monitor import compare, report, reportdata
from monitor.cli import cli
from monitor.errors import InputError


@pytest.fixture
def db(story):
    from monitor import storage

    d = storage.open_db(story)
    yield d
    d.close()


def test_headline_says_trust_fell_and_why(db):
    r = report.build(db, "lakeshore", weeks=13)
    assert r.direction == "fell"
    assert r.headline == "Trust in Lakeshore Clinical Research Institute fell over the last 13 weeks."
    assert "larger than chance" in " ".join(r.summary)
    assert r.now.posts == 7 * 3 + 6 * 12 and r.before.posts == 13 * 3
    assert [d.theme for d in r.drivers][0] == "commitment" and r.drivers[0].stance == "erodes"
    assert r.drivers[0].evidence and "form letter" in r.drivers[0].evidence[0]["excerpt"]
    assert [s.entity.id for s in r.sides] == ["hope"]
    assert {a["metric"] for a in r.alerts} == {"volume", "negative_share", "erodes:commitment"}
    assert all(a["evidence"] for a in r.alerts)


def test_a_group_report_shows_the_sites_it_partners(db):
    r = report.build(db, "hope", weeks=13)
    assert [s.entity.id for s in r.sides] == ["lakeshore"]


def test_steady_and_thin_are_said_plainly(db):
    r = report.build(db, "lantern", weeks=13)
    assert r.direction == "steady"
    assert "within what chance alone produces" in " ".join(r.summary)
    thin = report.build(db, "circle", weeks=13)
    assert thin.direction == "new" and "handful of voices" in " ".join(thin.summary)


def test_excerpts_are_short_pseudonymous_and_linked(db):
    r = report.build(db, "lakeshore")
    ev = r.examples["negative"][0]
    assert ev["author"].startswith("author ") and len(ev["author"]) == len("author ") + 6
    assert ev["url"].startswith("https://www.reddit.com/")
    assert len(ev["excerpt"]) <= 280
    authors = [e["author"] for e in r.alerts[0]["evidence"]]
    assert len(authors) == len(set(authors))  # one quote per author


def test_excerpt_keeps_to_the_mention_and_masks_user_names():
    text = ("First paragraph about nothing.\n" + "filler " * 40 + "then u/someone said Lakeshore was kind to "
            "@another and " + "more " * 40)
    i = text.index("Lakeshore")
    out = reportdata.excerpt("", text, i, i + 9, width=120)
    assert "Lakeshore" in out and "[user]" in out and "someone" not in out and "another" not in out
    assert out.startswith("…") and out.endswith("…") and len(out) <= 125
    assert "First paragraph" not in out
    titled = reportdata.excerpt("Lakeshore visit", "It went fine.", 0, 9)
    assert titled == "Lakeshore visit"


def test_html_report_is_self_contained_with_charts_and_no_script(db, tmp_path):
    out = tmp_path / "r.html"
    report.write(db, "lakeshore", out)
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "http-equiv" not in html
    assert not re.search(r'(src|href)="(https?:)?//(?!www\.reddit\.com)', html), "nothing loads from the network"
    assert html.count("<svg") == 4 and "<polyline" in html
    for section in ("What moved it", "Week by week", "Trust themes", "Beside its partner groups", "Alerts",
                    "Method and caveats"):
        assert section in html
    assert "form letter" in html  # the posts behind the alert


def test_html_without_excerpts_has_no_post_text(db):
    r = report.build(db, "lakeshore")
    html = report.render_html(r, excerpts=False)
    assert "form letter" not in html and "consent form" not in html
    assert "shown to signed-in researchers only" in html


def test_markdown_report(db, tmp_path):
    out = tmp_path / "r.md"
    report.write(db, "lakeshore", out)
    md = out.read_text(encoding="utf-8")
    assert md.startswith("# Trust report: Lakeshore Clinical Research Institute")
    assert "**Trust in Lakeshore Clinical Research Institute fell" in md
    assert "| week | posts |" in md and "## Alerts" in md and "Commitment and follow-through eroding" in md


def test_report_refuses_bad_input(db, tmp_path):
    with pytest.raises(InputError, match="no watched entity has id 'nope'"):
        report.build(db, "nope")
    with pytest.raises(InputError, match=r"\.html or \.md"):
        report.write(db, "lakeshore", tmp_path / "r.pdf")
    with pytest.raises(InputError, match="does not exist"):
        report.write(db, "lakeshore", tmp_path / "missing" / "r.html")
    with pytest.raises(InputError, match="at least 1"):
        report.build(db, "lakeshore", weeks=0)


def test_comparison_tells_thin_evidence_from_real_differences(db):
    c = compare.build(db, ["hope", "lantern", "circle"], weeks=26)
    text = " ".join(c.summary)
    circle = next(x for x in c.candidates if x.entity.id == "circle")
    assert any("one week" in w for w in circle.warnings) and any("one community" in w for w in circle.warnings)
    assert "Motor Neuron Patient Circle: read with care" in text and "left out of the comparisons" in text
    assert "ALS Hope Alliance and Lupus Lantern Network are seen differently" in text
    assert "Motor Neuron Patient Circle and" not in text and "and Motor Neuron Patient Circle" not in text
    assert "question whose interests it serves" in text
    hope = next(x for x in c.candidates if x.entity.id == "hope")
    assert ("calloway", "Calloway Therapeutics", 24) in hope.co_mentions
    lantern = next(x for x in c.candidates if x.entity.id == "lantern")
    assert len(lantern.now.communities) == 3 and not lantern.warnings
    assert "Broadest evidence: Lupus Lantern Network" in text


def test_no_ranking_on_noise(tmp_path):
    """Two groups spoken of the same way: the summary refuses to rank them."""
    db = synth.build_twins(tmp_path / "twins.db")
    c = compare.build(db, ["lantern", "circle"])
    assert all(not x.warnings for x in c.candidates)
    text = " ".join(c.summary)
    assert "a ranking on these figures would be a ranking on noise" in text and "seen differently" not in text


def test_comparison_renders(db, tmp_path):
    compare.write(db, ["hope", "lantern", "circle"], tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "<script" not in html and html.count("<svg") == 3
    assert "Thin:" in html and "Named in the same posts as" in html
    compare.write(db, ["hope", "lantern"], tmp_path / "c.md")
    md = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert md.startswith("# Partner audit: ALS Hope Alliance, Lupus Lantern Network") and "| posts |" in md


def test_cli_report_and_compare(story, tmp_path):
    runner = CliRunner()
    out = tmp_path / "lake.html"
    r = runner.invoke(cli, ["report", "--db", str(story), "--entity", "lakeshore", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists() and "fell over the last 13 weeks" in r.output
    r = runner.invoke(cli, ["report", "--db", str(story), "--entity", "lakeshore", "--weeks", "4", "--out", "-"])
    assert r.exit_code == 0 and "last 4 weeks" in r.output
    r = runner.invoke(cli, ["report", "--db", str(story), "--compare", "hope", "lantern", "circle",
                            "--out", str(tmp_path / "audit.md")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "audit.md").read_text(encoding="utf-8").startswith("# Partner audit")


@pytest.mark.parametrize("args, message", [
    (["--compare", "hope"], "at least two different entity ids"),
    (["--compare", "hope", "hope"], "at least two different entity ids"),
    (["--compare", "hope", "ghost"], "no watched entity has id 'ghost'"),
    (["--entity", "ghost"], "no watched entity has id 'ghost'"),
    ([], "give either --entity ID or --compare"),
    (["--entity", "hope", "lantern"], "unexpected argument 'lantern'"),
    (["--entity", "hope", "--out", "x.pdf"], ".html or .md"),
    (["--entity", "hope", "--weeks", "53000"], "--weeks 53000: at most 520"),
    (["--entity", "hope", "--weeks", "99999999999999999999"], "at most 520"),
    (["--compare", "hope", "circle", "--weeks", "1000000"], "at most 520"),
    (["--entity", "hope", "--until", "9999-12-31"], "--until 9999-12-31: a date from 1970-01-01"),
    (["--entity", "hope", "--until", "0001-01-01"], "a date from 1970-01-01 to 9000-12-31"),
    (["--compare", "hope", "circle", "--until", "0001-02-01"], "a date from 1970-01-01"),
])
def test_cli_report_bad_input_exits_2_with_one_line(story, args, message):
    r = CliRunner().invoke(cli, ["report", "--db", str(story), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and r.output.count("\n") == 1 and "Traceback" not in r.output


def test_cli_report_on_a_missing_database(tmp_path):
    r = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "none.db"), "--entity", "x"])
    assert r.exit_code == 2 and "no such database" in r.output


def test_consent_of_invited_sources_is_shown_in_reports(tmp_path):
    """A Discord server that invited the bot: its consent note travels into the report."""
    db = synth.build(tmp_path / "c.db")
    db["sources"].insert({"name": "hope-discord", "type": "discord",
                          "consent": "ALS Hope Alliance board, 2026-03-01: members told in #announcements"}, pk="name")
    db["sources"].insert({"name": "public-feed", "type": "feed", "consent": None}, pk="name")
    db.execute("update posts set source = 'hope-discord' where id in (select post_id from mentions "
               "where entity_id = 'hope' limit 3)")
    r = report.build(db, "hope")
    assert r.consent == [("hope-discord", "discord", "ALS Hope Alliance board, 2026-03-01: members told in #announcements")]
    html = report.render_html(r)
    assert "Consent" in html and "members told in #announcements" in html
    assert "## Consent" in report.render_markdown(r)
    assert report.build(db, "lantern").consent == []  # no post from that server names it


@pytest.mark.parametrize("name", ["@jane-doe", "@jane.doe@mastodon.social", "U/JaneDoe", "/user/JaneDoe",
                                  "reddit.com/user/JaneDoe", "https://www.reddit.com/u/JaneDoe", "/u/Jane_Doe"])
def test_every_form_of_a_user_name_is_masked(name):
    text = f"Lakeshore was slow to answer, said {name}, and nobody else."
    i = text.index("Lakeshore")
    out = reportdata.excerpt("", text, i, i + 9)
    assert "Jane" not in out and "jane" not in out and "[user]" in out, out
    assert out.endswith("and nobody else.")


def test_a_source_link_that_is_not_http_is_left_out_of_reports(tmp_path):
    from monitor import storage

    db = synth.build(tmp_path / "x.db")
    db.execute("update posts set url = 'javascript:alert(document.cookie)'")
    db.conn.commit()
    r = report.build(db, "lakeshore")
    html = report.render_html(r)
    assert "javascript:" not in html and "form letter" in html and ">source<" not in html
    assert "javascript:" not in report.render_markdown(r)


@pytest.mark.parametrize("content", [b"", None])
def test_report_leaves_a_database_that_is_not_trustwatchs_as_it_is(tmp_path, content):
    import sqlite3

    path = tmp_path / "other.db"
    if content is None:
        con = sqlite3.connect(path)
        con.execute("create table notes (body text)")
        con.commit()
        con.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    r = CliRunner().invoke(cli, ["report", "--db", str(path), "--entity", "x", "--out", "-"])
    assert r.exit_code == 2 and "not a trustwatch database (left as it is)" in r.output
    assert path.read_bytes() == before and not (tmp_path / "other.db-wal").exists()


def test_report_reads_a_trustwatch_database_whatever_its_file_name(tmp_path):
    path = tmp_path / "q3?draft#2.db"
    synth.build(path).close()
    r = CliRunner().invoke(cli, ["report", "--db", str(path), "--entity", "lakeshore", "--out", "-"])
    assert r.exit_code == 0, r.output
