"""The served Datasette: dashboard, per-entity report pages, the partner-audit form and
the canned queries behind every number, in-process (no network)."""

from __future__ import annotations

import re
from html import unescape

import pytest

import synth
from conftest import ds_request
from monitor import report, storage
from monitor.serve import make_datasette, metadata


@pytest.fixture(scope="module")
def ds(story):
    return make_datasette(story)


RESEARCHER = {"id": "researcher"}


def get(ds, path, actor=None):
    return ds_request(ds, path, actor)


def test_home_page_links_a_report_per_entity(ds):
    r = get(ds, "/")
    assert r.status_code == 200
    for ident in ("lakeshore", "hope", "lantern", "circle", "calloway"):
        assert f'href="/-/trust/{ident}"' in r.text
    assert 'href="/-/trust"' in r.text and 'href="/-/compare"' in r.text


def test_dashboard_lists_entities_charts_and_alerts(ds):
    r = get(ds, "/-/trust", actor=RESEARCHER)
    assert r.status_code == 200
    assert r.text.count('<svg class="chart') >= 3  # sites, groups, sponsors
    assert "Lakeshore Clinical Research Institute</a>, week of 24 Aug 2026" in r.text
    assert "/story/weekly_by_kind?kind=site" in r.text


def test_entity_page_is_the_cli_report(ds, story):
    r = get(ds, "/-/trust/lakeshore", actor=RESEARCHER)
    assert r.status_code == 200
    db = storage.open_db(story)
    headline = report.build(db, "lakeshore").headline
    assert headline in unescape(r.text)
    assert "form letter" in r.text  # a signed-in researcher reads the posts behind the alerts
    anonymous = get(ds, "/-/trust/lakeshore")
    assert headline in unescape(anonymous.text) and "form letter" not in anonymous.text
    assert "/story/entity_trend?entity=lakeshore" in r.text
    assert get(ds, "/-/trust/lakeshore?weeks=4").text.count("last 4 weeks") >= 1
    assert "this period 20 Jul 2026 – 16 Aug 2026" in get(ds, "/-/trust/lakeshore?weeks=4&until=2026-08-12").text


@pytest.mark.parametrize("path, status, message", [
    ("/-/trust/ghost", 404, "no watched entity has id"),
    ("/-/trust/lakeshore?weeks=lots", 400, "whole number of weeks"),
    ("/-/compare?ids=hope", 400, "Pick at least two"),
    ("/-/compare?ids=hope&ids=ghost", 400, "no watched entity has id"),
    ("/-/trust/lakeshore?until=soon", 400, "not a date like 2026-09-30"),
])
def test_pages_refuse_bad_input_with_a_message(ds, path, status, message):
    r = get(ds, path)
    assert r.status_code == status and message in unescape(r.text)


def test_compare_form_and_its_checks(ds):
    form = get(ds, "/-/compare")
    assert form.status_code == 200 and form.text.count('type="checkbox" name="ids"') == 5
    r = get(ds, "/-/compare?ids=hope&ids=lantern&ids=circle&weeks=26")
    assert r.status_code == 200
    assert "seen differently" in r.text and "Thin:" in r.text
    checks = re.findall(r'class="check" href="([^"]+)"', r.text)
    assert len(checks) >= 5 * 3
    summary = [unescape(c) for c in checks if "entity_period_summary" in c and "entity=hope" in c][0]
    rows = get(ds, summary.replace("entity_period_summary?", "entity_period_summary.json?_shape=array&")).json()
    hope_posts = re.search(r"<th>Posts</th><td class=\"num\">(\d+)", r.text).group(1)
    assert rows[0]["posts"] == int(hope_posts)


@pytest.mark.parametrize("query, params", [
    ("entity_trend", "entity=lakeshore"),
    ("theme_breakdown", "entity=lakeshore"),
    ("site_vs_partners", "entity=lakeshore"),
    ("posts_about_entity", "entity=lakeshore"),
    ("search_posts_about_entity", "entity=lakeshore&q=letter"),
    ("recent_alerts", ""),
    ("weekly_by_kind", "kind=group"),
    ("entity_reach", "entity=lantern&start=2026-01-01&end=2027-01-01"),
    ("entity_theme_stances", "entity=lakeshore&start=2026-01-01&end=2027-01-01"),
    ("co_mentions", "entity=hope&start=2026-01-01&end=2027-01-01"),
    ("entity_alerts", "entity=lakeshore&start=2026-01-01&end=2027-01-01"),
])
def test_canned_queries_answer(ds, query, params):
    r = get(ds, f"/story/{query}.json?_shape=array&{params}", actor=RESEARCHER)
    assert r.status_code == 200, r.text
    assert r.json(), f"{query} returned no rows"


def test_canned_query_results(ds):
    trend = get(ds, "/story/entity_trend.json?_shape=array&entity=lakeshore").json()
    assert len(trend) == 26 and trend[-1]["negative_low"] <= trend[-1]["negative_share"] <= trend[-1]["negative_high"]
    assert trend[0]["suppressed"] == 1 and trend[0]["posts"] is None  # 3 posts: withheld in public
    family = {r["entity"] for r in get(ds, "/story/site_vs_partners.json?_shape=array&entity=lakeshore").json()}
    assert family == {"Lakeshore Clinical Research Institute", "ALS Hope Alliance"}
    found = get(ds, "/story/search_posts_about_entity.json?_shape=array&entity=lakeshore&q=letter", RESEARCHER).json()
    assert found and all("form letter" in r["excerpt"] for r in found)
    everything = get(ds, "/story/posts_about_entity.json?_shape=array&entity=lakeshore", RESEARCHER).json()
    assert len(everything) > len(found)


def test_small_counts_are_withheld_from_anonymous_pages(tmp_path):
    """With [publish] min_cell = 10, the nine-post group is withheld in public and shown
    to a researcher; weeks under ten posts leave the public charts."""
    db = synth.build(tmp_path / "s.db")
    storage.set_min_cell(db, 10)
    ds = make_datasette(tmp_path / "s.db")
    public, signed_in = get(ds, "/-/trust"), get(ds, "/-/trust", actor=RESEARCHER)
    assert "withheld (fewer than 10 posts)" in public.text and "withheld" not in signed_in.text
    page = get(ds, "/-/trust/circle")
    assert "Fewer than 10 posts mention Motor Neuron Patient Circle" in page.text and "<svg" in page.text
    assert "Fewer than" not in get(ds, "/-/trust/circle", actor=RESEARCHER).text
    audit = get(ds, "/-/compare?ids=hope&ids=lantern&ids=circle")
    assert "Motor Neuron Patient Circle: fewer than 10 posts in this window; withheld" in unescape(audit.text)
    assert audit.text.count('<th><a href="/-/trust/') == 2
    lake_public = get(ds, "/-/trust/lakeshore").text
    assert lake_public.count('class="bar ') < get(ds, "/-/trust/lakeshore", actor=RESEARCHER).text.count('class="bar ')
    rows = get(ds, "/s/entity_trend.json?_shape=array&entity=lakeshore").json()
    assert {r["posts"] for r in rows if not r["suppressed"]} >= {12} and all(
        r["posts"] is None for r in rows if r["suppressed"])


def test_cached_pages_change_when_a_run_finishes(tmp_path):
    from monitor import aggregate

    db = synth.build(tmp_path / "c.db")
    ds = make_datasette(tmp_path / "c.db")
    before = get(ds, "/-/trust/circle", actor=RESEARCHER).text
    assert get(ds, "/-/trust/circle", actor=RESEARCHER).text == before  # served from the cache
    run_id = storage.start_run(db, "collect+tag+aggregate")
    storage.delete_posts(db, [r[0] for r in db.execute("select post_id from mentions where entity_id = 'circle'")])
    aggregate.update(db, synth.MODEL)
    storage.finish_run(db, run_id, status="ok")
    after = get(ds, "/-/trust/circle", actor=RESEARCHER).text
    assert after != before and "No posts mentioned Motor Neuron Patient Circle" in after
