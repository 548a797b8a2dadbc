"""`trustwatch watch`: from an NCT id to a watchlist, against a loopback server serving
documents shaped like ClinicalTrials.gov API v2 study records (fictional studies)."""

import json

import pytest
from click.testing import CliRunner

from fakes import loopback_server
from monitor.cli import cli
from monitor.config import load_config
from monitor.registry import short_forms

STUDY = {
    "protocolSection": {
        "identificationModule": {"nctId": "NCT09912345", "acronym": "CALM-ALS",
                                 "briefTitle": "CT-201 in Early ALS",
                                 "officialTitle": "A Phase 2 Study of CT-201 in Early Amyotrophic Lateral Sclerosis"},
        "sponsorCollaboratorsModule": {
            "leadSponsor": {"name": "Calloway Therapeutics, Inc.", "class": "INDUSTRY"},
            "collaborators": [{"name": "ALS Hope Alliance", "class": "OTHER"}]},
        "conditionsModule": {"conditions": ["Amyotrophic Lateral Sclerosis"]},
        "contactsLocationsModule": {"locations": [
            {"facility": "Lakeshore Clinical Research Institute", "city": "Harbor City", "state": "Ohio", "country": "United States"},
            {"facility": "University of Meridian Valley Hospital", "city": "Meridian", "country": "United States"}]},
    }
}


@pytest.fixture
def registry():
    def handle(h):
        if h.path.startswith("/api/v2/studies/NCT09912345"):
            return 200, json.dumps(STUDY).encode(), {"Content-Type": "application/json"}
        if h.path.startswith("/api/v2/studies/"):
            return 404, b'{"message": "not found"}', {"Content-Type": "application/json"}
        return 404, b"", {}

    with loopback_server(handle) as base:
        yield f"{base}/api/v2"


def setup(tmp_path, registry, inline=""):
    cfg = tmp_path / "trustwatch.toml"
    cfg.write_text(f'[registry]\nbase_url = "{registry}"\n{inline}')
    return cfg


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_add_trial_builds_the_watchlist(tmp_path, registry):
    cfg = setup(tmp_path, registry)
    r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert r.exit_code == 0, r.output
    w = {e.id: e for e in load_config(cfg).watch}
    assert w["calm-als"].kind == "trial" and "NCT09912345" in w["calm-als"].aliases
    assert w["calloway-therapeutics"].kind == "sponsor" and "Calloway Therapeutics" in w["calloway-therapeutics"].aliases
    assert w["als-hope-alliance"].kind == "group"
    site = w["lakeshore-clinical-research-institute"]
    assert site.kind == "site" and {"Lakeshore", "LCRI"} <= set(site.aliases)
    assert site.partners == ("als-hope-alliance",) and site.context == "Harbor City, Ohio, United States"
    assert "Meridian Valley" in w["university-of-meridian-valley-hospital"].aliases
    assert w["amyotrophic-lateral-sclerosis"].kind == "condition" and "ALS" in w["amyotrophic-lateral-sclerosis"].aliases
    listed = json.loads(run("watch", "list", "--config", str(cfg), "--json").output)
    assert {"id", "kind", "name", "aliases", "partners"} == set(listed[0])
    # again: nothing duplicated
    again = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert "none (all already watched)" in again.output
    assert len(load_config(cfg).watch) == len(w)


def test_facility_already_watched_under_another_alias_is_not_duplicated(tmp_path, registry):
    inline = '[[watch]]\nid = "lakeshore"\nkind = "site"\nname = "Lakeshore CRI"\naliases = ["Lakeshore"]\n'
    cfg = setup(tmp_path, registry, inline)
    assert run("watch", "add-trial", "--config", str(cfg), "NCT09912345").exit_code == 0
    ids = [e.id for e in load_config(cfg).watch]
    assert "lakeshore" in ids and "lakeshore-clinical-research-institute" not in ids


def test_unknown_id_and_bad_id_write_nothing(tmp_path, registry):
    cfg = setup(tmp_path, registry)
    r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345", "NCT00000001")
    assert r.exit_code == 2 and "NCT00000001: no such study" in r.output
    assert not (tmp_path / "watchlist.toml").exists()
    bad = run("watch", "add-trial", "--config", str(cfg), "12345")
    assert bad.exit_code == 2 and "not a registry id" in bad.output


def test_unreachable_registry_is_one_line(tmp_path):
    cfg = setup(tmp_path, "http://127.0.0.1:9/api/v2")
    r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert r.exit_code == 2 and "cannot reach the trial registry" in r.output and r.output.count("\n") == 1


def test_remove(tmp_path, registry):
    cfg = setup(tmp_path, registry)
    run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert run("watch", "remove", "--config", str(cfg), "als-hope-alliance").exit_code == 0
    w = {e.id: e for e in load_config(cfg).watch}
    assert "als-hope-alliance" not in w and w["lakeshore-clinical-research-institute"].partners == ()
    missing = run("watch", "remove", "--config", str(cfg), "nobody")
    assert missing.exit_code == 2 and "not on the watchlist" in missing.output
    table = run("watch", "list", "--config", str(cfg)).output
    assert "lakeshore-clinical-research-institute" in table and "site" in table


def test_short_forms():
    assert short_forms("Pinecrest University Hospital") == ["Pinecrest", "PUH"]
    assert "Meridian Valley" in short_forms("University of Meridian Valley")
    assert "Calloway Therapeutics" in short_forms("Calloway Therapeutics, Inc.")


def test_registry_is_asked_politely(tmp_path):
    """A 429 is retried after its Retry-After, with trustwatch's User-Agent and the
    config's contact, and the registry's robots.txt is not fetched for its API."""
    seen = []

    def handle(h):
        seen.append((h.path, h.headers.get("User-Agent", "")))
        if sum(p.startswith("/api/v2/studies/") for p, _ in seen) == 1:
            return 429, b"slow down", {"Retry-After": "0"}
        return 200, json.dumps(STUDY).encode(), {"Content-Type": "application/json"}

    with loopback_server(handle) as base:
        cfg = setup(tmp_path, f"{base}/api/v2", '[collect]\ncontact = "mailto:liaison@example.org"\nmin_interval = 0\n')
        r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert r.exit_code == 0, r.output
    assert [p.split("?")[0] for p, _ in seen] == ["/api/v2/studies/NCT09912345"] * 2
    assert all(ua.startswith("trustwatch/") and "mailto:liaison@example.org" in ua for _, ua in seen)
    assert "calm-als" in {e.id for e in load_config(cfg).watch}


def test_registry_that_keeps_failing_is_one_line_and_writes_nothing(tmp_path):
    def handle(h):
        return 503, b"maintenance", {"Retry-After": "0"}

    with loopback_server(handle) as base:
        cfg = setup(tmp_path, f"{base}/api/v2", '[collect]\nmin_interval = 0\n')
        r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "NCT09912345: cannot reach the trial registry" in r.output and "HTTP 503 after 3 tries" in r.output
    assert not (tmp_path / "watchlist.toml").exists()


def test_a_json_watchlist_stays_json(tmp_path, registry):
    """`watch remove` and `add-trial` write a .json watchlist as JSON (they once wrote TOML
    into it, and every later command failed on the file)."""
    wl = tmp_path / "wl.json"
    wl.write_text(json.dumps([{"id": "a", "kind": "site", "name": "Alder Site", "aliases": ["Alder"]},
                              {"id": "b", "kind": "group", "name": "Birch Group"},
                              {"id": "c", "kind": "sponsor", "name": "Cedar Pharma", "partners": []}]))
    cfg = setup(tmp_path, registry, '[watchlist]\nfile = "wl.json"\n')
    assert run("watch", "remove", "--config", str(cfg), "c").exit_code == 0
    assert [e["id"] for e in json.loads(wl.read_text())] == ["a", "b"]
    assert json.loads(wl.read_text())[0] == {"id": "a", "kind": "site", "name": "Alder Site", "aliases": ["Alder"]}
    r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert r.exit_code == 0, r.output
    ids = [e["id"] for e in json.loads(wl.read_text())]
    assert ids[:2] == ["a", "b"] and "calm-als" in ids
    assert {e.id for e in load_config(cfg).watch} == set(ids)
    assert not list(tmp_path.glob(".watchlist-*"))


@pytest.mark.parametrize("nct", ["NCT01234567\n", "NCT\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
                                 "NCT\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17", " NCT01234567"])
def test_an_id_that_only_looks_like_a_registry_id_is_refused_before_any_request(tmp_path, nct):
    cfg = setup(tmp_path, "http://127.0.0.1:9/api/v2")
    r = run("watch", "add-trial", "--config", str(cfg), nct)
    assert r.exit_code == 2 and "not a registry id" in r.output and "cannot reach" not in r.output


@pytest.mark.parametrize("change", [
    lambda s: s["protocolSection"]["identificationModule"].update(nctId=12345678),
    lambda s: s["protocolSection"]["conditionsModule"].update(conditions="ALS"),
    lambda s: s["protocolSection"]["sponsorCollaboratorsModule"].update(collaborators=[{"name": ["x"]}, "y"]),
    lambda s: s["protocolSection"]["contactsLocationsModule"].update(locations=[{"facility": 5}, None]),
])
def test_a_malformed_registry_record_is_one_line_or_its_bad_fields_are_skipped(tmp_path, change):
    import copy

    study = copy.deepcopy(STUDY)
    change(study)

    def handle(h):
        return 200, json.dumps(study).encode(), {"Content-Type": "application/json"}

    with loopback_server(handle) as base:
        cfg = setup(tmp_path, f"{base}/api/v2")
        r = run("watch", "add-trial", "--config", str(cfg), "NCT09912345")
    assert "Traceback" not in r.output and r.output.count("\n") <= 3, r.output
    if r.exit_code == 2:
        assert "not a study record" in r.output and not (tmp_path / "watchlist.toml").exists()
    else:
        names = [e.name for e in load_config(cfg).watch]
        assert r.exit_code == 0 and all(len(n) > 1 for n in names), names
