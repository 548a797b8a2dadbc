"""A corpus of bad input, through the real command line: each case ends in one line naming
the file and the documented exit code, or in a run that counts and skips what is bad and
stores everything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from conftest import FIXTURES, query, write_config
from fakes import loopback_server
from monitor.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_line_error(result, code: int, *parts: str) -> None:
    assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    for part in parts:
        assert part in result.output, (part, result.output)


# --- config and watchlist -----------------------------------------------------------------

@pytest.mark.parametrize("text, reason", [
    (b'[database\npath = "tw.db"\n', "invalid TOML"),  # unclosed table header
    (b'[database]\npath = "a.db"\npath = "b.db"\n', "invalid TOML"),  # a key twice
    (b"[database]\npath = tw.db\n", "invalid TOML"),  # a string without quotes
    (b'[database]\npath = "tw.db\n', "invalid TOML"),  # an unterminated string
    (b'[database]\npath = "\xff\xfe"\n', "not valid UTF-8"),
])
@pytest.mark.parametrize("command", ["run", "collect", "tag"])
def test_malformed_config_is_one_line_naming_the_file(tmp_path, text, reason, command):
    path = tmp_path / "trustwatch.toml"
    path.write_bytes(text)
    one_line_error(invoke(command, "--config", str(path)), 2, str(path), reason)


def test_watchlist_file_with_an_unknown_kind_names_that_file(tmp_path, salt):
    (tmp_path / "watchlist.toml").write_text('[[watch]]\nid = "x"\nkind = "hospital"\nname = "X"\n', encoding="utf-8")
    config = tmp_path / "trustwatch.toml"
    config.write_text('[database]\npath = "tw.db"\n', encoding="utf-8")
    one_line_error(invoke("run", "--config", str(config)), 2,
                   str(tmp_path / "watchlist.toml"), "watch[0].kind: 'hospital' is not one of")


def test_invisible_character_in_an_id_is_one_line(tmp_path, salt):
    config = tmp_path / "trustwatch.toml"
    config.write_text('[[watch]]\nid = "lake\u200bshore"\nkind = "site"\nname = "Lakeshore"\n', encoding="utf-8")
    # the message shows the character escaped, so the user can see what to remove
    one_line_error(invoke("run", "--config", str(config)), 2, str(config), "watch[0].id: 'lake\\u200bshore'")


def test_invisible_characters_in_names_are_removed(tmp_path, tiny_encoder_dir, tiny_heads_path, salt):
    (tmp_path / "dump.ndjson").write_text(json.dumps(
        {"id": "zw1", "subreddit": "ALS", "created_utc": 1772870400, "title": "Harbor Point",
         "selftext": "Harbor Point Clinic called me back within a day."}) + "\n", encoding="utf-8")
    config = write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources="""
        [[watch]]
        id = "harbor"
        kind = "site"
        name = "Har\u200bbor Point Clinic\ufeff"
        aliases = ["\u00ad", "Harbor\u2060 Point"]

        [[source]]
        name = "d"
        type = "reddit-dump"
        path = "dump.ndjson"
        """)
    result = invoke("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    db = tmp_path / "tw.db"
    assert query(db, "select name, aliases from entities where id = 'harbor'") == [
        ("Harbor Point Clinic", '["Harbor Point"]')]
    assert query(db, "select entity_id, start, end from mentions where post_id = 'reddit:t3_zw1'") == [
        ("harbor", 0, 12), ("harbor", 14, 33)]  # the title, then the text after "\n\n"


# --- a reddit dump full of bad lines ----------------------------------------------------

BIG = 10 * 1024 * 1024


def submission(rid: str, title: str, text: str, **extra) -> bytes:
    return json.dumps({"id": rid, "subreddit": "ALS", "created_utc": 1772870400, "author": f"u_{rid}",
                       "title": title, "selftext": text, **extra}).encode()


def messy_dump_config(tmp_path, tiny_encoder_dir, tiny_heads_path, lines: list[bytes]) -> Path:
    (tmp_path / "dump.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources="""
        [[source]]
        name = "messy"
        type = "reddit-dump"
        path = "dump.ndjson"
        """)


def test_dump_with_bad_lines_stores_the_good_posts_and_counts_the_rest(tmp_path, tiny_encoder_dir, tiny_heads_path, salt):
    malformed = [
        b'{"id": "cut", "subreddit": "ALS", "title": "half a li',  # invalid JSON
        b"not json at all",
        b'{"id": "u1", "subreddit": "ALS", "created_utc": 1772870400, "title": "\xff\xfe bad bytes"}',  # invalid UTF-8
        b"\x00\x01\x02\x03",
        b"[1, 2, 3]",  # JSON, but not an object
        b"null",
        b"[" * 100_000,  # nesting deeper than the JSON parser goes
        b"1" * 5000,  # a number longer than Python converts
    ]
    bad_items = [
        b'{"subreddit": "ALS", "created_utc": 1772870400, "title": "no id"}',
        b'{"id": "b2", "created_utc": 1772870400, "title": "no subreddit"}',
        b'{"id": "b3", "subreddit": "ALS", "created_utc": "soon", "title": "bad date"}',
        b'{"id": "b4", "subreddit": "ALS", "created_utc": 1' + b"0" * 400 + b', "title": "date beyond floats"}',
        b'{"id": "b5", "subreddit": "ALS", "created_utc": 1772870400, "title": ["not", "a", "string"]}',
        b'{"id": "b6", "subreddit": "ALS", "created_utc": 1772870400, "body": "comment without link_id"}',
    ]
    good = [
        submission("g1", "Lakeshore CRI consent visit", "The nurses at Lakeshore CRI were patient."),
        submission("g2", "Pasted from a web page",
                   "Before <script>alert('x')</script><style>p {}</style> after, <b>bold</b> & 5 < 6"),
        # "\ud83d" without its pair: a broken emoji, as real dumps have
        submission("g3", "Broken emoji \ud83d", "ALS Hope \ud83d helped", author="emoji\udc00fan"),
    ]
    lines = [good[0], *malformed[:4], *bad_items[:3], b"", b"   ", good[1], *malformed[4:], *bad_items[3:], good[2]]
    config = messy_dump_config(tmp_path, tiny_encoder_dir, tiny_heads_path, lines)

    result = invoke("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert f"{len(malformed)} malformed" in result.output and f"{len(bad_items)} bad_items" in result.output

    db = tmp_path / "tw.db"
    posts = {pid: (title, text) for pid, title, text in query(db, "select id, title, text from posts")}
    assert sorted(posts) == ["reddit:t3_g1", "reddit:t3_g2", "reddit:t3_g3"]
    # Reddit text is Markdown, stored as written; nothing in trustwatch renders it as HTML
    assert posts["reddit:t3_g2"][1].startswith("Before <script>")
    assert posts["reddit:t3_g3"] == ("Broken emoji \ufffd", "ALS Hope \ufffd helped")
    assert query(db, "select count(*) from post_tags") == [(3,)]
    assert query(db, "select entity_id from mentions where post_id = 'reddit:t3_g3'") == [("als-hope",)]

    status, sources, errors = query(db, "select status, sources, errors from runs")[0]
    counts = json.loads(sources)["messy"]
    assert status == "ok" and json.loads(errors or "{}") == {}
    assert (counts["new"], counts["malformed"], counts["bad_items"]) == (3, len(malformed), len(bad_items))


def test_a_10_mb_post_is_collected_whole(tmp_path, tiny_encoder_dir, tiny_heads_path, salt):
    big = "Calloway Therapeutics paid for travel. " + "the visit went fine and " * (BIG // 24)
    lines = [submission("g1", "before", "short"), submission("big", "A long one", big), submission("g2", "after", "short")]
    config = messy_dump_config(tmp_path, tiny_encoder_dir, tiny_heads_path, lines)
    # collect only: tagging 10 MB is thousands of encoder passes (see the tagger's chunking)
    result = invoke("collect", "--config", str(config))
    assert result.exit_code == 0, result.output
    db = tmp_path / "tw.db"
    assert query(db, "select id, length(text) from posts order by id") == [
        ("reddit:t3_big", len(big)), ("reddit:t3_g1", 5), ("reddit:t3_g2", 5)]
    assert query(db, "select status, posts_new from runs") == [("ok", 3)]


# --- HTML from a feed ------------------------------------------------------------------------

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Fictional forum</title>
<item><guid>https://forum.example.org/t/1</guid><title>Scripts &amp; styles</title>
<pubDate>Tue, 03 Mar 2026 10:00:00 GMT</pubDate>
<description><![CDATA[<p>Visible one.</p><script>alert("one")</script><template>alert("two")</template>
<style>p { color: red }</style><p>Visible two.</p><!-- <script>alert("three")</script> -->]]></description></item>
<item><guid>https://forum.example.org/t/2</guid><title>Summary cut short</title>
<pubDate>Wed, 04 Mar 2026 10:00:00 GMT</pubDate>
<description><![CDATA[<p>Visible three.</p><!-- <script>alert("four")</script]]></description></item>
<item><guid>https://forum.example.org/t/3</guid><title>Dated in year zero</title>
<pubDate>0000-01-01T00:00:00Z</pubDate><description>Never stored.</description></item>
</channel></rss>"""


def test_feed_html_keeps_text_and_drops_scripts_styles_and_cut_off_markup(tmp_path, tiny_encoder_dir, tiny_heads_path, salt):
    def handle(h):
        if h.path == "/robots.txt":
            return 404, b"", {}
        return 200, FEED, {"Content-Type": "application/rss+xml"}

    with loopback_server(handle) as base:
        config = write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, extra="[collect]\nmin_interval = 0", sources=f"""
            [[source]]
            name = "forum"
            type = "feed"
            url = "{base}/rss.xml"
            """)
        result = invoke("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    texts = [t for (t,) in query(tmp_path / "tw.db", "select text from posts order by created_at")]
    assert texts == ["Visible one.\n\nVisible two.", "Visible three."]
    assert "1 bad_items" in result.output  # the entry dated in year 0


# --- a truncated .zst among good sources --------------------------------------------------

def test_truncated_zst_fails_its_source_only_and_keeps_what_was_read(dump_config, tmp_path):
    lines = [submission(f"z{i:05d}", f"post {i * 7919 % 10007}", str(i * 104729 % 1000003)) for i in range(5000)]
    data = zstandard.ZstdCompressor(write_checksum=True).compress(b"\n".join(lines))
    (tmp_path / "cut.ndjson.zst").write_bytes(data[: len(data) // 2])
    dump_config.write_text(dump_config.read_text() + '\n[[source]]\nname = "cut"\ntype = "reddit-dump"\npath = "cut.ndjson.zst"\n')

    result = invoke("collect", "--config", str(dump_config))
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("collect cut: FAILED: ")
    assert "truncated zstandard stream after line" in failed[0]
    read = int(failed[0].rsplit(" ", 1)[1])
    assert 0 < read < 5000

    db = tmp_path / "tw.db"
    assert query(db, "select source, count(*) from posts group by source order by source") == [
        ("cut", read), ("fixture-dump", 5)]  # every line read before the damage is kept
    status, errors = query(db, "select status, errors from runs")[0]
    assert status == "partial" and "truncated zstandard stream" in json.loads(errors)["cut"]
