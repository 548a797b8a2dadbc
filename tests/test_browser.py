"""Reports and the served Datasette in a real headless Chromium: pages render, charts
draw, nothing errors in the console and nothing is fetched from outside.

Needs Chromium (Debian: apt install chromium). Without it these tests skip, unless
TRUSTWATCH_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser fails them."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

from monitor import compare, report

CHROMIUM = os.environ.get("TRUSTWATCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.browser
SIGNED_IN: dict[str, str] = {}  # the researcher's sign-in cookie for the served instance


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("TRUSTWATCH_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium not found (apt install chromium, or set TRUSTWATCH_CHROMIUM)")
        pytest.skip("Chromium not installed (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(story):
    """The Datasette `trustwatch serve` runs, on a free loopback port."""
    import asyncio

    import uvicorn

    from monitor.serve import make_datasette

    ds = make_datasette(story)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(ds.app(), host="127.0.0.1", port=port, log_level="warning"))

    async def main():  # in its own thread: Playwright's sync API owns this thread's loop
        await ds.invoke_startup()
        await srv.serve()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    SIGNED_IN["cookie"] = ds.sign({"a": {"id": "researcher"}}, "actor")
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def visit(browser, url: str, allowed_host: str | None = None, researcher: bool = False):
    """Open url (signed in as a researcher if asked); return (page, problems): console
    errors, page errors, failed or outside requests."""
    context = browser.new_context()
    if researcher:
        context.add_cookies([{"name": "ds_actor", "value": SIGNED_IN["cookie"], "url": allowed_host}])
    page = context.new_page()
    page.set_default_timeout(10000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    def outside(request):
        if not request.url.startswith(("file://", "data:", "about:")) and not (
                allowed_host and request.url.startswith(allowed_host)):
            problems.append(f"outside request: {request.url}")

    page.on("request", outside)
    response = page.goto(url, wait_until="load")
    if response is not None and not url.startswith("file://"):
        assert response.status == 200, f"{url}: HTTP {response.status}"
    return page, problems


def test_anonymous_visitors_are_kept_from_post_text(browser, server):
    page, problems = visit(browser, server + "/-/trust/lakeshore", allowed_host=server)
    assert "form letter" not in page.content() and "signed-in researchers only" in page.content()
    page.close()
    response = browser.new_page().goto(server + "/story/posts")
    assert response.status == 403


def drawn_charts(page) -> list[dict]:
    """Each inline SVG chart's rendered size and how many marks it drew."""
    return page.eval_on_selector_all("svg.chart", """els => els.map(e => {
        const box = e.getBoundingClientRect();
        return {w: box.width, h: box.height,
                marks: e.querySelectorAll('rect.bar, polyline.line, circle').length};
    })""")


def test_report_file_renders_with_charts(browser, story, tmp_path):
    from monitor import storage

    out = tmp_path / "lakeshore.html"
    report.write(storage.open_db(story), "lakeshore", out)
    page, problems = visit(browser, out.as_uri())
    assert problems == []
    assert page.title() == "Trust report: Lakeshore Clinical Research Institute"
    assert "fell over the last 13 weeks" in page.inner_text("#headline")
    charts = drawn_charts(page)
    assert len(charts) == 4 and all(c["w"] > 300 and c["h"] > 50 and c["marks"] > 0 for c in charts)
    assert page.locator(".alert blockquote a").count() >= 2  # the posts behind the alerts, linked
    page.close()


def test_comparison_file_renders(browser, story, tmp_path):
    from monitor import storage

    out = tmp_path / "audit.html"
    compare.write(storage.open_db(story), ["hope", "lantern", "circle"], out)
    page, problems = visit(browser, out.as_uri())
    assert problems == []
    assert page.locator("table.compare thead th").count() == 4
    assert all(c["marks"] > 0 for c in drawn_charts(page))
    page.close()


@pytest.mark.parametrize("path, min_charts, researcher", [
    ("/", 0, False),
    ("/-/trust", 2, False),  # sponsors' weeks are all under five posts: no public chart
    ("/-/trust", 3, True),
    ("/-/trust/lakeshore", 4, False),
    ("/-/trust/lakeshore", 4, True),
    ("/-/trust/hope", 3, False),
    ("/-/compare?ids=hope&ids=lantern&ids=circle", 3, False),
    ("/story/entity_trend?entity=lakeshore", 0, False),
    ("/story/public_entity_weekly?_facet=kind", 0, False),
    ("/story/search_posts_about_entity?entity=lakeshore&q=letter", 0, True),
    ("/story/posts_about_entity?entity=lakeshore", 0, True),
    ("/story/posts?_facet=community", 0, True),
    ("/-/login", 0, False),
])
def test_served_pages_render_without_errors(browser, server, path, min_charts, researcher):
    page, problems = visit(browser, server + path, allowed_host=server, researcher=researcher)
    assert problems == [], problems
    charts = drawn_charts(page)
    assert len(charts) >= min_charts
    assert all(c["w"] > 300 and c["marks"] > 0 for c in charts)
    page.close()


def test_a_liaison_gets_from_home_to_a_report_by_clicking(browser, server):
    page, problems = visit(browser, server + "/", allowed_host=server)
    page.click("a:has-text('Lakeshore Clinical Research Institute')")
    page.wait_for_load_state("load")
    # An anonymous visitor: the quiet weeks before the story (3 posts each) are withheld, so
    # the public report gives this period alone (a signed-in researcher reads "fell").
    assert "was discussed in 72 posts in the last 13 weeks" in page.inner_text("#headline")
    page.click("#partners a:has-text('ALS Hope Alliance')")
    page.wait_for_load_state("load")
    assert page.title() == "Trust report: ALS Hope Alliance"
    page.click("nav a:has-text('Compare groups')")
    page.check("input[value=hope]")
    page.check("input[value=lantern]")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    assert "Partner audit" in page.title() and "Lantern" in page.inner_text("#summary")
    assert problems == []
    page.close()
