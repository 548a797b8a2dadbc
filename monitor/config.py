"""Reading and validating ``trustwatch.toml``.

Every problem becomes a :class:`ConfigError` whose message is one line naming the file
and the field, e.g. ``trustwatch.toml: source[2].type: 'reddti' is not one of ...``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.mentions import ENTITY_KINDS, Entity

from .alerts import AlertRules
from .errors import ConfigError

DEFAULT_CONFIG = "trustwatch.toml"
DEFAULT_REGISTRY = "https://clinicaltrials.gov/api/v2"
CONFIG_ENV = "TRUSTWATCH_CONFIG"

# Source types and the fields each accepts: name -> (required, optional).
SOURCE_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "reddit-dump": (
        {"path"},
        {"subreddits", "since", "until", "keywords", "praw_site", "consent"},
    ),
    "feed": ({"url"}, {"consent"}),
    "reddit": ({"subreddits"}, {"query", "comments", "replace_more", "praw_site", "consent"}),
    "discourse": ({"base_url"}, {"categories", "query", "max_pages", "consent"}),
    "mastodon": ({"base_url", "hashtags"}, {"max_pages", "consent"}),
    "discord": (set(), {"channels", "guild", "token_env", "api_base", "max_pages", "consent"}),
}
COMMON_SOURCE_FIELDS = {"name", "type"}

# Invisible characters that are never part of a spelling (soft hyphen, zero-width space,
# direction marks, word joiner, byte order mark): names copied from web pages and registries
# bring them along, so they are removed from names and aliases. The joiners U+200C and
# U+200D are spelling in some scripts and stay.
_INVISIBLE = re.compile("[\u00ad\u200b\u200e\u200f\u2060\ufeff]")


@dataclass
class ModelConfig:
    sentiment: str | None = None
    themes: str | None = None  # a zero-shot NLI model id or path
    encoder: str | None = None
    heads: str | None = None
    device: str = "cpu"
    batch_size: int = 16
    int8: bool = False  # dynamic int8 quantization on CPUs
    workers: int = 0  # processes for the work around the model; 0: 1 on a CPU, spare cores on a GPU


@dataclass
class CollectConfig:
    contact: str | None = None  # added to the User-Agent so site owners can reach you
    min_interval: float = 1.0  # seconds between requests to one host


@dataclass
class PublishConfig:
    """Who may read what in the served Datasette."""

    researchers: dict[str, str] = field(default_factory=dict)  # user name -> env var with its password hash
    secret_env: str = "TRUSTWATCH_SECRET"  # signs sign-in cookies; set it so sign-ins survive restarts
    min_cell: int = 5  # anonymous views withhold counts drawn from fewer posts than this


@dataclass
class SourceConfig:
    name: str
    type: str
    options: dict[str, Any]
    base_dir: Path

    def path(self, key: str = "path") -> Path:
        p = Path(os.path.expanduser(str(self.options[key])))
        return p if p.is_absolute() else self.base_dir / p


@dataclass
class Config:
    path: Path
    database: Path
    salt_env: str = "TRUSTWATCH_SALT"
    retain_days: int | None = None  # post text older than this is purged (aggregates stay)
    opt_out: list[str] = field(default_factory=list)  # communities never collected, lower case
    model: ModelConfig = field(default_factory=ModelConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    watch: list[Entity] = field(default_factory=list)
    sources: list[SourceConfig] = field(default_factory=list)
    registry_url: str = "https://clinicaltrials.gov/api/v2"
    watchlist_file: Path | None = None  # where `trustwatch watch` writes
    inline_ids: set[str] = field(default_factory=set)  # [[watch]] tables in the config itself
    alerts: AlertRules = field(default_factory=AlertRules)
    publish: PublishConfig = field(default_factory=PublishConfig)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"{self.path}: no source named {name!r} (sources: {known})")


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (create one with `trustwatch init`)")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {e.start})")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}")


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if isinstance(value, bool) and kind in (int, float):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {what}, got {type(value).__name__} {value!r}")
    return value


def _str_list(value: Any, where: str) -> list[str]:
    _expect(value, list, where, "a list of strings")
    for i, item in enumerate(value):
        _expect(item, str, f"{where}[{i}]", "a string")
    return list(value)


def _unknown_keys(table: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        # "file.toml: model.x" within a table, "file.toml: x" at the top
        name = f"{where}.{extra[0]}" if ": " in where else f"{where}: {extra[0]}"
        raise ConfigError(f"{name}: unknown field (allowed: {', '.join(sorted(allowed))})")


def parse_watch(items: Any, where: str, check_partners: bool = True) -> list[Entity]:
    """Validate a list of ``[[watch]]`` tables (from TOML or JSON) into entities."""
    _expect(items, list, where, "a list of [[watch]] tables")
    entities: list[Entity] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        w = f"{where}[{i}]"
        _expect(item, dict, w, "a table")
        _unknown_keys(item, {"id", "kind", "name", "aliases", "partners", "context"}, w)
        for key in ("id", "kind", "name"):
            if key not in item:
                raise ConfigError(f"{w}.{key}: missing")
            _expect(item[key], str, f"{w}.{key}", "a string")
        ident = item["id"].strip()
        if not ident or any(c.isspace() for c in ident) or not ident.isprintable():
            raise ConfigError(f"{w}.id: {item['id']!r} must be non-empty, with no spaces or invisible characters")
        if ident in seen:
            raise ConfigError(f"{w}.id: {ident!r} is used twice")
        seen[ident] = w
        if item["kind"] not in ENTITY_KINDS:
            raise ConfigError(
                f"{w}.kind: {item['kind']!r} is not one of {', '.join(ENTITY_KINDS)}"
            )
        name = _INVISIBLE.sub("", item["name"]).strip()
        if not name:
            raise ConfigError(f"{w}.name: must not be empty")
        aliases = [_INVISIBLE.sub("", a) for a in _str_list(item.get("aliases", []), f"{w}.aliases")]
        partners = _str_list(item.get("partners", []), f"{w}.partners")
        entities.append(
            Entity(
                id=ident,
                kind=item["kind"],
                name=name,
                aliases=tuple(a for a in aliases if a.strip()),
                partners=tuple(partners),
                context=_expect(item.get("context", ""), str, f"{w}.context", "a string"),
            )
        )
    if check_partners:
        check_partner_ids(entities, where)
    return entities


def check_partner_ids(entities: list[Entity], where: str, known: set[str] | None = None) -> None:
    ids = known if known is not None else {e.id for e in entities}
    for i, e in enumerate(entities):
        for j, p in enumerate(e.partners):
            if p not in ids:
                raise ConfigError(f"{where}[{i}].partners[{j}]: no watched entity has id {p!r}")


def load_watchlist(path: Path, check_partners: bool = True) -> list[Entity]:
    """A watchlist file: TOML with ``[[watch]]`` tables, or a JSON list of the same objects."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found")
        except OSError as e:  # a folder, no permission
            raise ConfigError(f"{path}: cannot read: {e.strerror}")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: invalid JSON: {e}")
        return parse_watch(data, str(path), check_partners)
    data = _read_toml(path)
    if "watch" not in data:
        if not data:
            return []
        raise ConfigError(f"{path}: no [[watch]] tables found")
    return parse_watch(data["watch"], f"{path}: watch", check_partners)


def _parse_source(item: Any, w: str, base_dir: Path) -> SourceConfig:
    _expect(item, dict, w, "a table")
    for key in ("name", "type"):
        if key not in item:
            raise ConfigError(f"{w}.{key}: missing")
        _expect(item[key], str, f"{w}.{key}", "a string")
    stype = item["type"]
    if stype not in SOURCE_FIELDS:
        raise ConfigError(
            f"{w}.type: {stype!r} is not a source type this version supports "
            f"(supported: {', '.join(sorted(SOURCE_FIELDS))})"
        )
    required, optional = SOURCE_FIELDS[stype]
    _unknown_keys(item, COMMON_SOURCE_FIELDS | required | optional, w)
    for key in sorted(required):
        if key not in item:
            raise ConfigError(f"{w}.{key}: missing (required for type {stype!r})")
    opts = {k: v for k, v in item.items() if k not in COMMON_SOURCE_FIELDS}
    if stype == "reddit":
        opts["subreddits"] = _str_list(opts["subreddits"], f"{w}.subreddits")
        if not opts["subreddits"]:
            raise ConfigError(f"{w}.subreddits: name at least one subreddit")
        for key, kind, what in (("query", str, "a search string"), ("comments", bool, "true or false"),
                                ("replace_more", int, "how many 'more comments' links to expand"),
                                ("praw_site", str, "a praw.ini section name")):
            if key in opts:
                _expect(opts[key], kind, f"{w}.{key}", what)
    if stype == "discord":
        if ("channels" in opts) == ("guild" in opts):
            raise ConfigError(f"{w}: give either channels = [\"<channel id>\", ...] or guild = \"<server id>\"")
        ids = _str_list(opts["channels"], f"{w}.channels") if "channels" in opts else [
            _expect(opts["guild"], str, f"{w}.guild", "a server id in quotes")]
        for i, cid in enumerate(ids):
            if not cid.isdigit():
                raise ConfigError(f"{w}.{'channels[%d]' % i if 'channels' in opts else 'guild'}: {cid!r} is not a Discord id (digits)")
        _expect(opts.get("token_env", "DISCORD_BOT_TOKEN"), str, f"{w}.token_env", "an environment variable name")
        if "consent" in opts:
            _expect(opts["consent"], str, f"{w}.consent", "a note on who consented, and when")
    for key in ("url", "base_url", "api_base"):
        if key in opts:
            url = _expect(opts[key], str, f"{w}.{key}", "an http(s) URL")
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{w}.{key}: {url!r} is not an http(s) URL")
    if stype == "mastodon":
        opts["hashtags"] = _str_list(opts["hashtags"], f"{w}.hashtags")
        if not opts["hashtags"]:
            raise ConfigError(f"{w}.hashtags: name at least one hashtag")
    if "max_pages" in opts:
        _expect(opts["max_pages"], int, f"{w}.max_pages", "a positive integer")
        if opts["max_pages"] < 1:
            raise ConfigError(f"{w}.max_pages: must be at least 1")
    if stype == "discourse":
        if "categories" in opts:
            opts["categories"] = _str_list(opts["categories"], f"{w}.categories")
        if "query" in opts:
            _expect(opts["query"], str, f"{w}.query", "a search string")
    if stype == "reddit-dump":
        _expect(opts["path"], str, f"{w}.path", "a file path")
        for key in ("subreddits", "keywords"):
            if key in opts:
                opts[key] = _str_list(opts[key], f"{w}.{key}")
        for key in ("since", "until"):
            if key in opts:
                opts[key] = _parse_date(opts[key], f"{w}.{key}")
    return SourceConfig(name=item["name"], type=stype, options=opts, base_dir=base_dir)


def _parse_date(value: Any, where: str):
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a date like 2026-01-31")
        return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)
    raise ConfigError(f"{where}: expected a date like 2026-01-31, got {value!r}")


def load_config(path: Path | str | None = None) -> Config:
    path = Path(path) if path else default_config_path()
    data = _read_toml(path)
    where = str(path)
    _unknown_keys(data, {"database", "privacy", "model", "collect", "registry", "watchlist", "watch", "source", "alerts", "publish"}, where)
    base_dir = path.resolve().parent

    db = data.get("database", {})
    _expect(db, dict, f"{where}: database", "a [database] table")
    _unknown_keys(db, {"path"}, f"{where}: database")
    db_path = Path(_expect(db.get("path", "trustwatch.db"), str, f"{where}: database.path", "a path"))
    if not db_path.is_absolute():
        db_path = base_dir / db_path

    privacy = data.get("privacy", {})
    _expect(privacy, dict, f"{where}: privacy", "a [privacy] table")
    _unknown_keys(privacy, {"author_salt_env", "retain_days", "opt_out"}, f"{where}: privacy")
    salt_env = _expect(
        privacy.get("author_salt_env", "TRUSTWATCH_SALT"), str,
        f"{where}: privacy.author_salt_env", "an environment variable name",
    )
    retain_days = privacy.get("retain_days")
    if retain_days is not None:
        _expect(retain_days, int, f"{where}: privacy.retain_days", "a number of days")
        if not 1 <= retain_days <= 365_000:
            raise ConfigError(f"{where}: privacy.retain_days: must be between 1 and 365000 (a thousand years)")
    opt_out = [c.strip().lower() for c in _str_list(privacy.get("opt_out", []), f"{where}: privacy.opt_out")]

    m = data.get("model", {})
    _expect(m, dict, f"{where}: model", "a [model] table")
    _unknown_keys(m, {"sentiment", "themes", "encoder", "heads", "device", "batch_size", "int8", "workers"}, f"{where}: model")
    model = ModelConfig()
    for key in ("sentiment", "themes", "encoder", "heads"):
        if key in m:
            value = _expect(m[key], str, f"{where}: model.{key}", "a model id or path")
            local = Path(os.path.expanduser(value))
            if not local.is_absolute() and (base_dir / local).exists():
                value = str(base_dir / local)
            setattr(model, key, value)
    if "device" in m:
        model.device = _expect(m["device"], str, f"{where}: model.device", '"cpu" or "cuda"')
        if model.device not in ("cpu", "cuda") and not model.device.startswith("cuda:"):
            raise ConfigError(f"{where}: model.device: {model.device!r} is not \"cpu\" or \"cuda\"")
    if "int8" in m:
        model.int8 = _expect(m["int8"], bool, f"{where}: model.int8", "true or false")
    if "workers" in m:
        model.workers = _expect(m["workers"], int, f"{where}: model.workers", "a number of processes")
        if not 0 <= model.workers <= 64:
            raise ConfigError(f"{where}: model.workers: must be between 0 (automatic) and 64")
    if "batch_size" in m:
        model.batch_size = _expect(m["batch_size"], int, f"{where}: model.batch_size", "a positive integer")
        if not 1 <= model.batch_size <= 65536:
            raise ConfigError(f"{where}: model.batch_size: must be between 1 and 65536")

    c = data.get("collect", {})
    _expect(c, dict, f"{where}: collect", "a [collect] table")
    _unknown_keys(c, {"contact", "min_interval"}, f"{where}: collect")
    collect = CollectConfig()
    if "contact" in c:
        collect.contact = _expect(c["contact"], str, f"{where}: collect.contact", "an e-mail or URL")
    if "min_interval" in c:
        collect.min_interval = float(_expect(c["min_interval"], (int, float), f"{where}: collect.min_interval", "seconds"))
        if not 0 <= collect.min_interval <= 86400:  # NaN fails too
            raise ConfigError(f"{where}: collect.min_interval: seconds from 0 to 86400 (a day)")

    reg = data.get("registry", {})
    _expect(reg, dict, f"{where}: registry", "a [registry] table")
    _unknown_keys(reg, {"base_url"}, f"{where}: registry")
    registry_url = _expect(reg.get("base_url", DEFAULT_REGISTRY), str, f"{where}: registry.base_url", "an http(s) URL")
    if not registry_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: registry.base_url: {registry_url!r} is not an http(s) URL")

    wl = data.get("watchlist", {})
    _expect(wl, dict, f"{where}: watchlist", "a [watchlist] table")
    _unknown_keys(wl, {"file"}, f"{where}: watchlist")
    wl_file = Path(_expect(wl.get("file", "watchlist.toml"), str, f"{where}: watchlist.file", "a path"))
    wl_file = wl_file if wl_file.is_absolute() else base_dir / wl_file

    inline = parse_watch(data.get("watch", []), f"{where}: watch", check_partners=False)
    filed = load_watchlist(wl_file, check_partners=False) if wl_file.exists() else []
    inline_ids = {e.id for e in inline}
    for e in filed:
        if e.id in inline_ids:
            raise ConfigError(f"{wl_file}: watch id {e.id!r} is also defined in {path}")
    watch = inline + filed
    all_ids = {e.id for e in watch}
    check_partner_ids(inline, f"{where}: watch", all_ids)
    check_partner_ids(filed, f"{wl_file}: watch", all_ids)

    alerts = _parse_alerts(data.get("alerts", {}), f"{where}: alerts")
    publish = _parse_publish(data.get("publish", {}), f"{where}: publish")

    raw_sources = data.get("source", [])
    _expect(raw_sources, list, f"{where}: source", "a list of [[source]] tables")
    sources = []
    names: set[str] = set()
    for i, item in enumerate(raw_sources):
        s = _parse_source(item, f"{where}: source[{i}]", base_dir)
        if s.name in names:
            raise ConfigError(f"{where}: source[{i}].name: {s.name!r} is used twice")
        names.add(s.name)
        sources.append(s)

    return Config(path=path, database=db_path, salt_env=salt_env, retain_days=retain_days, opt_out=opt_out,
                  model=model, collect=collect,
                  watch=watch, sources=sources, registry_url=registry_url.rstrip("/"),
                  watchlist_file=wl_file, inline_ids=inline_ids, alerts=alerts, publish=publish)


def _parse_publish(table: Any, where: str) -> PublishConfig:
    import re

    _expect(table, dict, where, "a [publish] table")
    _unknown_keys(table, {"researchers", "secret_env", "min_cell"}, where)
    out = PublishConfig()
    researchers = _expect(table.get("researchers", {}), dict, f"{where}.researchers",
                          'a table of user name = "ENV_VAR holding the password hash"')
    for user, env in researchers.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,39}", user):
            raise ConfigError(f"{where}.researchers.{user}: a user name is letters, digits, '.' and '-'")
        _expect(env, str, f"{where}.researchers.{user}", "the name of an environment variable")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            if env.startswith("pbkdf2_"):
                raise ConfigError(f"{where}.researchers.{user}: give the name of an environment variable "
                                  "holding the hash, never the hash itself")
            raise ConfigError(f"{where}.researchers.{user}: {env!r} is not an environment variable name")
        out.researchers[user] = env
    if "secret_env" in table:
        out.secret_env = _expect(table["secret_env"], str, f"{where}.secret_env", "an environment variable name")
    if "min_cell" in table:
        out.min_cell = _expect(table["min_cell"], int, f"{where}.min_cell", "a number of posts")
        if not 1 <= out.min_cell <= 1000:
            raise ConfigError(f"{where}.min_cell: must be between 1 and 1000")
    return out


def _parse_alerts(table: Any, where: str) -> AlertRules:
    _expect(table, dict, where, "an [alerts] table")
    defaults = AlertRules()
    _unknown_keys(table, set(defaults.__dict__), where)
    values = {}
    for key, default in defaults.__dict__.items():
        if key not in table:
            continue
        kind = int if isinstance(default, int) else (int, float)
        value = _expect(table[key], kind, f"{where}.{key}", "a number")
        if (not math.isfinite(value) or value <= 0 or value > 1e6 or (key == "min_change" and value >= 1)
                or (key == "baseline_weeks" and value > 520)):
            raise ConfigError(f"{where}.{key}: {value!r} is out of range"
                              + (" (a share between 0 and 1)" if key == "min_change" else " (must be positive)"))
        values[key] = value
    return AlertRules(**values)
