"""Properties of the code that meets untrusted input, checked on generated input (hypothesis):
HTML to text, the mention matcher, and the reddit-dump and feed readers. Every property
holds for every input; a failure prints the smallest input that breaks it."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import httpx
import zstandard
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from collectors import BadItem, FeedCollector, PoliteClient, Post, RedditDumpCollector, SourceFailed
from collectors.text import html_to_text
from models.mentions import Entity, MentionMatcher

PROPERTY = settings(max_examples=200, deadline=None)

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


# --- HTML to text -------------------------------------------------------------------------
# Generated documents mark their words: "v12" is visible text, "q12" sits where no reader
# sees it (script, style, comments, attribute values). The text must keep every v-word in
# order and no q-word, whatever the markup around them.

SEPARATORS = [" ", "\n", "\t", "  ", " \r\n ", "\xa0", ", ", "! ", "&amp;", "&#x27;", "&#39;", "&#0;",
              "&quot;", "&nbsp;", "&hellip;", "&#x1F600;", "&#1114112;", "&bogus;", "& ", "&lt;", "&gt;",
              "< ", "<3", "<>", "</>", " > ", *INVISIBLE]
BLOCKS = ["p", "div", "li", "ul", "blockquote", "h2", "table", "tr", "section", "pre"]
INLINE = ["b", "i", "em", "span", "a", "td", "font", "u"]
ATTRIBUTES = ["", ' class="x"', " href='https://e.example/?a=1&amp;b=2'", ' title="a > b"', " data-x=y",
              " hidden", ' title="<script>q1</script>"', " onclick='q2()'", ' style="color: red"', " a=b c='d'"]
SCRIPT_OPEN = ["<script>", '<script type="text/javascript">', "<SCRIPT>", "<script/>", "<style>",
               '<style media="screen">', "<Style>"]
SCRIPT_CONTENT = [" ", "<", "</", "<b>", "</div>", "<!--", "-->", "'", '"', "&amp;", "if (a < b && c > d) {}",
                  "</scriptx>", "</stylex>", "<p>", "document.write('<p>')", "*/", "/*"]
STRAY = ["</script>", "</style>", "</div>", "</p>", "<br>", "<br/>", "<hr />", "<img src=x onerror=q3()>",
         "<p =x>", "<!DOCTYPE html>", "<?xml version='1.0'?>", "<![CDATA[q4]]>", "<a href=x>>", "<<b>>",
         "</b foo>", "<!-- q5 -->", "<!-- <script>q6</script> -->", "<!---->"]


@st.composite
def visible_text(draw) -> tuple[str, list[str]]:
    words = [f"v{n}" for n in draw(st.lists(st.integers(0, 999), min_size=1, max_size=3))]
    return "".join(w + draw(st.sampled_from(SEPARATORS)) for w in words), words


@st.composite
def hidden_block(draw) -> str:
    """A script or style element; its content is full of markup-like text and q-words."""
    opener = draw(st.sampled_from(SCRIPT_OPEN))
    name = "style" if "style" in opener.lower() else "script"
    content = draw(st.lists(st.one_of(st.sampled_from(SCRIPT_CONTENT), st.integers(0, 999).map(lambda n: f"q{n}")),
                            max_size=8))
    closer = draw(st.sampled_from([f"</{name}>", f"</{name.upper()}>", f"</{name} >", f"</{name}\n>"]))
    return opener + "".join(content) + closer


@st.composite
def html_soup(draw, depth: int = 0) -> tuple[str, list[str]]:
    """(document, its visible words in order)."""
    html, words = "", []
    kinds = ["text", "text", "hidden", "stray", "element"] if depth < 3 else ["text", "hidden", "stray"]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            text, new = draw(visible_text())
            html, words = html + text, words + new
        elif kind == "hidden":
            html += draw(hidden_block())
        elif kind == "stray":
            html += draw(st.sampled_from(STRAY))
        else:
            tag = draw(st.sampled_from(BLOCKS + INLINE))
            inner, new = draw(html_soup(depth + 1))
            close = draw(st.sampled_from([f"</{tag}>", f"</{tag.upper()}>", ""]))
            html, words = html + f"<{tag}{draw(st.sampled_from(ATTRIBUTES))}>{inner}{close}", words + new
    return html, words


def assert_tidy(text: str) -> None:
    """Whitespace as html_to_text promises: trimmed, single spaces, at most one blank line."""
    assert text == text.strip() and "\xa0" not in text and "\t" not in text and "\r" not in text
    assert "  " not in text and " \n" not in text and "\n " not in text and "\n\n\n" not in text


def assert_clean(text: str) -> None:
    assert not re.search(r"q\d", text), text
    assert "<script" not in text.lower() and "<style" not in text.lower()
    assert_tidy(text)


@PROPERTY
@given(st.text())
def test_html_to_text_takes_any_text(s):
    assert_tidy(html_to_text(s))


@example(("<p>v1 <script/>q0</script>v2</p>", ["v1", "v2"]))  # "<script/>" opens a script
@PROPERTY
@given(html_soup())
def test_html_to_text_keeps_visible_words_and_drops_hidden_ones(doc):
    html, words = doc
    text = html_to_text(html)
    assert re.findall(r"v\d+", text) == words
    assert_clean(text)


@example(("<!-- <script>q6</script> -->", []), 0.6)  # "<!-- <script>q6" was text
@example(('<p title="<script>q1</script>">', []), 0.6)  # so was "<p title=\"<script>q1"
@example(("<script></script>", []), 0.45)  # and "<script"
@PROPERTY
@given(html_soup(), st.floats(0, 1))
def test_html_cut_off_anywhere_leaks_no_markup_or_script(doc, where):
    """Feeds truncate summaries mid-tag; what is left of the markup is not text."""
    html, _ = doc
    text = html_to_text(html[: round(len(html) * where)])
    assert_clean(text)


@PROPERTY
@given(html_soup())
def test_html_to_text_is_idempotent_where_no_markup_characters_are_left(doc):
    text = html_to_text(doc[0])
    if "<" not in text and "&" not in text:
        assert html_to_text(text) == text


# --- mentions -----------------------------------------------------------------------------

# Letters where case mapping is irregular: final sigma, dotted and dotless i, sharp s, long s,
# the Kelvin sign, a titlecase digraph.
TRICKY_LETTERS = "ΣσςİıßẞſKǅΩ"
NAME_LETTERS = st.one_of(st.characters(min_codepoint=0x41, max_codepoint=0x5A),
                         st.characters(min_codepoint=0x61, max_codepoint=0x7A),
                         st.characters(categories=["Lu", "Ll", "Nd"], max_codepoint=0x3FF),
                         st.sampled_from(TRICKY_LETTERS))
TOKEN = st.text(NAME_LETTERS, min_size=1, max_size=9)
GAPS = [" ", "-", ".", ". ", " - ", "'", " & ", "+", " (", ") ", "/", "  ", "\u2013", "\u200b", " | "]


@st.composite
def alias(draw) -> str:
    """A name that starts and ends with a letter or digit, with any separators inside."""
    tokens = draw(st.lists(TOKEN, min_size=1, max_size=4))
    out = tokens[0]
    for t in tokens[1:]:
        out += draw(st.sampled_from(GAPS)) + t
    return out


# Surroundings that cannot make a longer name: no Latin, Greek or digits, but words of other
# scripts, punctuation, emoji and invisible characters.
AROUND = st.text(st.one_of(st.sampled_from(" \n\t.,;:!?()[]\"'-\u2014/&*#@%" + "".join(INVISIBLE)),
                           st.characters(min_codepoint=0x4E00, max_codepoint=0x4E80),
                           st.characters(min_codepoint=0x0600, max_codepoint=0x064A),
                           st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F)), max_size=40)
ANY_TEXT = st.lists(st.one_of(NAME_LETTERS, st.sampled_from(GAPS + INVISIBLE + list(" \n's,.!?")), st.characters()),
                   max_size=120).map("".join)


def matcher(names: list[str], fuzzy: bool = True) -> MentionMatcher:
    entities = [Entity(f"e{i}", "site", n) for i, n in enumerate(names)]
    return MentionMatcher(entities, fuzzy=fuzzy, common_words=frozenset())


@PROPERTY
@given(st.lists(st.one_of(alias(), st.text(max_size=20)), min_size=1, max_size=4), ANY_TEXT, st.data())
def test_mentions_are_well_formed_spans_that_never_overlap(names, text, data):
    # put some of the names into the text, as written and in other cases
    for n in data.draw(st.lists(st.sampled_from(names), max_size=3)):
        at = data.draw(st.integers(0, len(text)))
        n = data.draw(st.sampled_from([n, n.lower(), n.upper(), n + "'s"]))
        text = text[:at] + " " + n + " " + text[at:]
    found = matcher(names).find(text)
    ids = {f"e{i}" for i in range(len(names))}
    for m in found:
        assert 0 <= m.start < m.end <= len(text)
        assert text[m.start:m.end] == m.surface and m.entity in ids
    for a, b in zip(found, found[1:]):
        assert a.end <= b.start


@example("Johnson & Johnson", "", "")  # a separator the rule did not know
@example("ΑΣ.β", "", "")  # "ΑΣ".lower() is "ας", but in "ΑΣ.β" it lowers to "ασ"
@PROPERTY
@given(alias(), AROUND, AROUND)
def test_a_name_between_spaces_is_found_where_it_stands(name, left, right):
    text = left + " " + name + " " + right
    found = [(m.start, m.end, m.entity) for m in matcher([name]).find(text)]
    assert (len(left) + 1, len(left) + 1 + len(name), "e0") in found


WORD_CHARS = st.text(st.one_of(NAME_LETTERS, st.characters(categories=["Lu", "Ll", "Lo", "Nd"])), min_size=1, max_size=4)


def same_letter(a: str, b: str) -> bool:
    return re.fullmatch(re.escape(a), b, re.IGNORECASE) is not None


@PROPERTY
@given(alias(), WORD_CHARS, WORD_CHARS)
def test_a_name_inside_a_longer_word_is_not_a_mention(name, before, after):
    """"xLakeshorey" is not Lakeshore. (The added letters are not the name's own letters:
    "0" + "0 0" + "0" is "00 00", and "00" is "0 0" written without its space.)"""
    assume(not any(same_letter(c, d) for c in set(before + after) for d in set(name)))
    assert matcher([name], fuzzy=False).find(before + name + after) == []
    # three extra letters are more than any misspelling the fuzzy rule allows
    assert matcher([name]).find(before * 3 + name + after * 3) == []


# --- reddit dumps -------------------------------------------------------------------------

DUMP_KEYS = ["id", "subreddit", "created_utc", "title", "selftext", "body", "link_id", "parent_id", "author",
             "permalink", "_meta", "removed_by_category", "name"]
# JSON strings may carry lone surrogates ("\ud83d" without its pair), as real dumps do.
JSON_TEXT = st.text(max_size=12) | st.sampled_from(
    ["\ud83d", "a\udc00b", "[deleted]", "t3_x", "t1_y", "/r/x/", "ALS"])
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10**400, 10**400),
                        st.floats(allow_nan=True, allow_infinity=True), JSON_TEXT)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(DUMP_KEYS + ["was_deleted_later"]), inner, max_size=3),
                          max_leaves=8)
BAD_LINE = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    st.dictionaries(st.sampled_from(DUMP_KEYS), JSON_VALUE, max_size=8).map(lambda d: json.dumps(d).encode()),
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"{}", b"[]", b"null", b'"x"', b"\xff\xfe{}", b'{"id": "\xff"}', b"\x00" * 8,
                     b"[" * 50_000, b"1" * 5000, b'{"id": "a", "subreddit": "x", "created_utc": 1e400, "title": "t"}',
                     b'{"id": "a", "subreddit": "x", "created_utc": 1' + b"0" * 400 + b', "title": "t"}']),
)


def good_line(i: int) -> bytes:
    return json.dumps({"id": f"good{i}", "subreddit": "ALS", "created_utc": 1772870400 + i,
                       "title": f"good post {i}", "selftext": f"text of good post {i}", "author": f"user{i}"}).encode()


def read_all(collector) -> tuple[list[Post], int, int]:
    posts, skipped, bad = [], 0, 0
    for raw in collector.fetch({}):
        try:
            post = collector.to_post(raw)
        except BadItem:
            bad += 1
            continue
        if post is None:
            skipped += 1
        else:
            posts.append(post)
    return posts, skipped, bad


def storable(post: Post) -> bool:
    """What storage and the author hash need: every string encodes as UTF-8."""
    try:
        for value in vars(post).values():
            if isinstance(value, str):
                value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@example([good_line(1), b"[" * 50_000, b"1" * 5000, good_line(2)], False)  # RecursionError, ValueError
@example([b'{"id": "a", "subreddit": "x", "created_utc": 1' + b"0" * 400 + b', "title": "t"}'], True)  # OverflowError
@example([b'{"id": "a", "subreddit": "x", "created_utc": 1, "title": "\\ud83d", "author": "b\\udc00"}'], False)
@PROPERTY
@given(st.lists(st.one_of(BAD_LINE, st.integers(0, 99).map(good_line)), max_size=12), st.booleans())
def test_dump_reader_skips_bad_lines_and_keeps_the_good_ones(lines, compressed):
    data = b"\n".join(lines) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("dump.ndjson.zst" if compressed else "dump.ndjson")
        path.write_bytes(zstandard.ZstdCompressor().compress(data) if compressed else data)
        c = RedditDumpCollector("d", path)
        posts, skipped, bad = read_all(c)
    assert all(storable(p) for p in posts)
    ids = [p.id for p in posts]
    for line in lines:
        if line.startswith(b'{"id": "good'):
            assert f"reddit:t3_{json.loads(line)['id']}" in ids
    # every line is accounted for exactly once
    assert c.counts["malformed"] + bad + skipped + len(posts) == sum(1 for line in lines if line.strip())
    assert skipped == c.counts["deleted"] + c.counts["filtered"]


# --- feeds --------------------------------------------------------------------------------

ENTRY_PARTS = st.sampled_from([
    "<title>T &amp; <b>x</b></title>", "<title><![CDATA[<script>q()</script>T]]></title>",
    "<link>https://f.example/t/1</link>", "<guid>g1</guid>", "<id>urn:x</id>",
    "<pubDate>Tue, 03 Mar 2026 10:00:00 GMT</pubDate>", "<pubDate>Tue, 03 Mar 99999 10:00:00 GMT</pubDate>",
    "<pubDate>yesterday</pubDate>", "<updated>0000-00-00T00:00:00Z</updated>", "<updated>2026-13-45T99:99:99Z</updated>",
    "<published>1969-12-31T23:59:59Z</published>", "<description>&lt;p&gt;hi&lt;script&gt;q()&lt;/script&gt;</description>",
    "<description><![CDATA[<p>a</p><script>q()</script><!-- <script>q()]]></description>",
    "<description><![CDATA[<noscript>q()</noscript><template>q()</template><iframe>q()</iframe>v]]></description>",
    "<content type='html'>&lt;p&gt;x</content>", "<summary>s</summary>", "<author>a@b.example (A)</author>",
    "<dc:creator>Ann</dc:creator>", "&#0;", "&bogus;", "<", "]]>", "\x00", "\ufffe", "<entry>", "</item>",
])


@st.composite
def feed_bytes(draw) -> bytes:
    atom = draw(st.booleans())
    entry = "entry" if atom else "item"
    dated = "<guid>g1</guid><pubDate>Tue, 03 Mar 2026 10:00:00 GMT</pubDate>"  # so that most entries are posts
    entries = "".join(f"<{entry}>{dated if draw(st.booleans()) else ''}{''.join(draw(st.lists(ENTRY_PARTS, max_size=6)))}</{entry}>"
                      for _ in range(draw(st.integers(0, 3))))
    doc = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>'
           f"{entries}</feed>" if atom else
           f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{entries}</channel></rss>')
    raw = doc.encode("utf-8")
    cut = draw(st.integers(0, len(raw)))
    return raw[:cut] if draw(st.booleans()) else raw


def feed_collector(body: bytes, content_type: str) -> FeedCollector:
    def handler(request):
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    client = PoliteClient(httpx.Client(transport=httpx.MockTransport(handler)), min_interval=0, sleep=lambda s: None)
    return FeedCollector("f", "https://f.example/rss.xml", client)


@example(b'<rss><channel><item><guid>g</guid><pubDate>Tue, 03 Mar 2026 10:00:00 GMT</pubDate><description>'
         b'<![CDATA[<template>q()</template><iframe>q()</iframe>]]></description></item></channel></rss>',
         "application/rss+xml")  # feedparser's sanitizer keeps what is inside these elements
@example(b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id><updated>0000</updated></entry></feed>',
         "application/atom+xml")  # year 0: calendar.timegm raised ValueError
@PROPERTY
@given(st.one_of(st.binary(max_size=300), feed_bytes()),
       st.sampled_from(["application/rss+xml", "text/html", "application/octet-stream", "text/xml; charset=utf-16"]))
def test_feed_parses_any_bytes_or_fails_the_source(body, content_type):
    c = feed_collector(body, content_type)
    try:
        posts, _, _ = read_all(c)
    except SourceFailed as e:
        assert "\n" not in str(e)
        return
    for p in posts:
        assert storable(p)
        assert "q()" not in p.text and "<script" not in p.text.lower()
