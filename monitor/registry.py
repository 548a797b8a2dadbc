"""The watchlist from the trial registry: ClinicalTrials.gov API v2 studies -> entities.

``add_trials`` fetches every NCT id first (nothing is written if any fails), turns each
study into its trial, sponsor/collaborators, sites and conditions, merges them into the
watchlist without duplicating an entity already watched under another alias, and writes
the watchlist file atomically."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from collectors.base import SourceFailed
from collectors.http import PoliteClient
from models.mentions import Entity

from .errors import InputError

NCT = re.compile(r"NCT[0-9]{8}")  # fullmatch: ASCII digits, nothing after
GROUP_WORDS = re.compile(r"\b(foundation|alliance|association|society|coalition|network|council|"
                         r"federation|advocates?|patients?|league|trust|charity|fund)\b", re.IGNORECASE)
LEGAL = re.compile(r",?\s*\b(inc|llc|ltd|plc|gmbh|ag|corp|corporation|co|s\.?a|b\.?v)\b\.?$", re.IGNORECASE)
GENERIC_TAIL = re.compile(r"\s+(clinical research (institute|center|centre|unit)|research (institute|center|centre|site|clinic)|"
                          r"medical (center|centre)|clinical trials? (center|centre|unit)|trials unit|"
                          r"(university )?hospital|health system|cancer (center|centre)|clinic)$", re.IGNORECASE)
UNIVERSITY_OF = re.compile(r"^(the )?university of ", re.IGNORECASE)


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:60] or "entity"


def short_forms(name: str) -> list[str]:
    """What people type for an organisation: no legal suffix, no generic tail such as
    'Research Center', no 'University of', and its acronym."""
    out: list[str] = []
    base = LEGAL.sub("", name).strip(" ,")
    core = GENERIC_TAIL.sub("", base)
    for form in (base, core, UNIVERSITY_OF.sub("", base), UNIVERSITY_OF.sub("", core)):
        form = form.strip(" ,")
        if form and form.lower() != name.lower() and len(form) >= 3 and form not in out:
            out.append(form)
    words = [w for w in re.findall(r"[A-Za-z]+", base) if w[0].isupper() and w.lower() not in {"of", "the", "and", "for"}]
    if len(words) >= 3:
        acronym = "".join(w[0] for w in words).upper()
        if acronym not in out:
            out.append(acronym)
    return out


def registry_client(contact: str | None = None, min_interval: float = 1.0) -> PoliteClient:
    """The client ``watch add-trial`` uses: trustwatch's User-Agent (with the config's
    contact), one request per ``min_interval`` seconds, and a 429 or 5xx answer retried
    after its Retry-After (a wait over two minutes fails instead: try again later). Fewer
    retries than a collection run, since a person is waiting."""
    return PoliteClient(contact=contact, min_interval=min_interval, retries=2, backoff=0.5, max_wait=120.0)


def fetch_study(client: PoliteClient, base_url: str, nct: str) -> dict:
    url = f"{base_url}/studies/{nct}?format=json"
    try:
        # The registry's API is published for programs to call: robots.txt rules for
        # crawlers of its web pages are not consulted.
        r = client.get(url, {"Accept": "application/json"}, robots=False)
    except SourceFailed as e:
        cause = str(e).removeprefix(f"{url}: ")
        raise InputError(f"{nct}: cannot reach the trial registry at {base_url} ({cause})")
    if r.status_code == 404:
        raise InputError(f"{nct}: no such study in the registry")
    if r.status_code != 200:
        raise InputError(f"{nct}: the registry answered HTTP {r.status_code}")
    try:
        data = r.json()
        found = data["protocolSection"]["identificationModule"]["nctId"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{nct}: the registry's answer is not a study record")
    if not isinstance(found, str) or not NCT.fullmatch(found.strip().upper()):
        raise InputError(f"{nct}: the registry's answer is not a study record (its nctId is {found!r})")
    return data


def _obj(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _items(x: Any) -> list:
    return x if isinstance(x, list) else []


def _text(x: Any) -> str:
    """A field of the registry's record as text: a field of another type counts as missing."""
    return x.strip() if isinstance(x, str) else ""


def study_entities(study: dict) -> list[Entity]:
    """Trial, lead sponsor and collaborators, sites (partnered with the groups), conditions.
    A field of an unexpected type (a list where a name should be) counts as missing."""
    ps = _obj(study.get("protocolSection"))
    ident = _obj(ps.get("identificationModule"))
    nct = _text(ident.get("nctId")).upper()
    acronym = _text(ident.get("acronym"))
    brief, official = _text(ident.get("briefTitle")), _text(ident.get("officialTitle"))
    trial_name = acronym or brief or nct
    trial = Entity(id=slug(acronym) if acronym else nct.lower(), kind="trial", name=trial_name,
                   aliases=tuple(a for a in (nct, brief, official) if a and a != trial_name))
    orgs = []
    sc = _obj(ps.get("sponsorCollaboratorsModule"))
    for org in [sc.get("leadSponsor")] + _items(sc.get("collaborators")):
        name = _text(_obj(org).get("name"))
        if not name:
            continue
        is_group = _obj(org).get("class") != "INDUSTRY" and bool(GROUP_WORDS.search(name))
        orgs.append(Entity(id=slug(LEGAL.sub("", name)), kind="group" if is_group else "sponsor", name=name,
                           aliases=tuple(short_forms(name))))
    groups = tuple(o.id for o in orgs if o.kind == "group")
    sites = []
    for loc in map(_obj, _items(_obj(ps.get("contactsLocationsModule")).get("locations"))):
        facility = _text(loc.get("facility"))
        if not facility:
            continue
        context = ", ".join(x for x in (_text(loc.get(k)) for k in ("city", "state", "country")) if x)
        sites.append(Entity(id=slug(LEGAL.sub("", facility)), kind="site", name=facility,
                            aliases=tuple(short_forms(facility)), partners=groups, context=context))
    conditions = [Entity(id=slug(c), kind="condition", name=c, aliases=tuple(short_forms(c)))
                  for c in map(_text, _items(_obj(ps.get("conditionsModule")).get("conditions"))) if c]
    return [trial, *orgs, *sites, *conditions]


def _names(e: Entity) -> set[str]:
    return {s.lower() for s in (e.name, *e.aliases)}


def merge(existing: list[Entity], new: list[Entity]) -> tuple[list[Entity], list[str]]:
    """Add new entities; one already watched (same id, or a shared name or alias of the
    same kind) gains the new aliases and partners instead. Returns (watchlist, ids added)."""
    out = list(existing)
    added: list[str] = []
    renamed: dict[str, str] = {}
    for e in new:
        same = next((i for i, x in enumerate(out) if x.kind == e.kind and (x.id == e.id or _names(x) & _names(e))), None)
        if same is None:
            ident, n = e.id, 2
            while any(x.id == ident for x in out):
                ident, n = f"{e.id}-{n}", n + 1
            renamed[e.id] = ident
            out.append(replace(e, id=ident))
            added.append(ident)
        else:
            x = out[same]
            renamed[e.id] = x.id
            aliases = tuple(dict.fromkeys((*x.aliases, *(a for a in (e.name, *e.aliases) if a.lower() not in _names(x)))))
            out[same] = replace(x, aliases=aliases, partners=tuple(dict.fromkeys((*x.partners, *e.partners))))
    # partners point at the ids the groups ended up with
    return [replace(x, partners=tuple(dict.fromkeys(renamed.get(p, p) for p in x.partners))) for x in out], added


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def to_toml(entities: list[Entity]) -> str:
    lines = ["# trustwatch watchlist, written by `trustwatch watch`; edit freely (kinds, aliases, partners).", ""]
    for e in entities:
        lines += ["[[watch]]", f"id = {_toml_str(e.id)}", f"kind = {_toml_str(e.kind)}", f"name = {_toml_str(e.name)}"]
        if e.aliases:
            lines.append(f"aliases = [{', '.join(_toml_str(a) for a in e.aliases)}]")
        if e.partners:
            lines.append(f"partners = [{', '.join(_toml_str(p) for p in e.partners)}]")
        if e.context:
            lines.append(f"context = {_toml_str(e.context)}")
        lines.append("")
    return "\n".join(lines)


def to_json(entities: list[Entity]) -> str:
    """The JSON form of a watchlist file: a list of the same objects as ``[[watch]]`` tables."""
    items = []
    for e in entities:
        item = {"id": e.id, "kind": e.kind, "name": e.name}
        for key in ("aliases", "partners"):
            if getattr(e, key):
                item[key] = list(getattr(e, key))
        if e.context:
            item["context"] = e.context
        items.append(item)
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"


def write_watchlist(path: Path, entities: list[Entity]) -> None:
    """In the file's own format (JSON for a .json file, TOML otherwise), atomically: a crash
    leaves the old file or the new one, never half of one."""
    as_json = path.suffix.lower() == ".json"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".watchlist-", suffix=".json" if as_json else ".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(to_json(entities) if as_json else to_toml(entities))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
