"""HTML to plain text for collected posts: no scripts, styles or markup survive."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
          "tr", "table", "pre", "hr", "section", "article", "aside"}
_SKIP = {"script", "style", "noscript", "template", "iframe", "object", "svg"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        # "<script/>" opens a script all the same: HTML ignores the slash on these elements.
        self.handle_starttag(tag, attrs)
        if tag in _SKIP and tag != "svg":
            if tag in self.CDATA_CONTENT_ELEMENTS:
                self.set_cdata_mode(tag)
        else:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def close(self):
        # A tag, comment or declaration still open at the end was cut off ("<p title=\"<scr",
        # "<!-- <script>x"): HTMLParser would pass it on as text; browsers drop it, so do we.
        if len(self.rawdata) > 1 and self.rawdata.startswith("<"):
            self.rawdata = ""
        super().close()


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment, paragraphs separated by blank lines."""
    parser = _Text()
    parser.feed(html or "")
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def reddit_text(text: str) -> str:
    """Reddit's API and the archive dumps taken from it escape exactly three characters in
    titles and Markdown bodies ("&amp;", "&lt;", "&gt;"); undo that, "&amp;" last, so that
    what a user typed as "&lt;" stays "&lt;"."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def web_url(url: str | None) -> str | None:
    """A post's link as stored and shown: http(s) only. A feed can give any link
    (javascript:, data:), and a report or page must not turn it into something a click
    runs; such a link is dropped (the post is kept)."""
    if not isinstance(url, str):
        return None
    u = url.strip()
    return u if re.match(r"(?i)https?://\S", u) else None
