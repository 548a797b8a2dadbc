"""``trustwatch serve``: Datasette with this project's metadata, templates and plugins
(from the top-level ``datasette/`` folder)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from .errors import ConfigError, InputError

PLACEHOLDER_DB = "trustwatch"


def datasette_dir() -> Path:
    """The repo's ``datasette/`` folder (editable install), or the copy in the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "datasette", here / "_datasette"):
        if (candidate / "metadata.yml").exists():
            return candidate
    raise InputError("the datasette/ configuration folder is missing from this install")


# Tables with post text, per-post detail or exact small counts: signed-in researchers only.
# Anonymous visitors get the public_* views, the canned queries (which withhold small
# counts), the dashboard and report pages (without excerpts), and no raw SQL.
RESEARCHER_TABLES = (
    "posts", "posts_fts", "posts_fts_data", "posts_fts_idx", "posts_fts_docsize", "posts_fts_config",
    "mentions", "post_tags", "entity_weekly", "entity_daily", "entity_theme_weekly",
    "entity_weekly_sentiment", "alerts", "agg_dirty", "runs", "source_state",
)
SIGNED_IN = {"id": "*"}


def metadata(db_path: Path, publish=None) -> dict:
    """metadata.yml, with its database section named after this database file, the
    researcher-only permissions, and the sign-in accounts of [publish] researchers
    (password hashes read from the environment by Datasette, never written anywhere)."""
    import yaml

    data = yaml.safe_load((datasette_dir() / "metadata.yml").read_text(encoding="utf-8"))
    dbs = data.get("databases", {})
    name = Path(db_path).stem
    if PLACEHOLDER_DB in dbs:
        dbs[name] = dbs.pop(PLACEHOLDER_DB)
    if "description_html" in data:
        data["description_html"] = data["description_html"].replace("{db}", name)
    db_meta = dbs.setdefault(name, {})
    db_meta["allow_sql"] = SIGNED_IN
    tables = db_meta.setdefault("tables", {})
    for table in RESEARCHER_TABLES:
        tables.setdefault(table, {})["allow"] = SIGNED_IN
    if publish is not None and publish.researchers:
        data.setdefault("plugins", {})["datasette-auth-passwords"] = {
            f"{user}_password_hash": {"$env": env} for user, env in publish.researchers.items()}
    return data


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_publish(publish, host: str, config_path: Path | str = "trustwatch.toml") -> list[str]:
    """The researcher accounts that can sign in; refuses (ConfigError, exit 2) a missing
    password hash, or a non-loopback host with no account to protect post text."""
    import os

    ready = []
    for user, env in (publish.researchers if publish else {}).items():
        value = os.environ.get(env, "")
        if not value:
            raise ConfigError(f"{config_path}: publish.researchers.{user}: environment variable {env} is not set "
                              "(make a hash with `trustwatch hash-password`)")
        if not value.startswith("pbkdf2_sha256$"):
            raise ConfigError(f"{config_path}: publish.researchers.{user}: {env} does not hold a password hash "
                              "(make one with `trustwatch hash-password`)")
        ready.append(user)
    if not is_loopback(host) and not ready:
        raise ConfigError(
            f"--host {host}: refusing to publish beyond this machine without sign-in; add [publish] "
            "researchers to the config (README: Publishing safely)")
    return ready


def make_datasette(db_path: Path, publish=None, secret: str | None = None):
    """The Datasette instance `trustwatch serve` runs (tests use it in-process)."""
    from datasette.app import Datasette

    d = datasette_dir()
    plugins = d / "plugins"
    return Datasette(
        [str(db_path)],
        metadata=metadata(db_path, publish),
        template_dir=str(d / "templates") if (d / "templates").is_dir() else None,
        plugins_dir=str(plugins) if plugins.is_dir() and any(plugins.glob("*.py")) else None,
        # No facet suggestions: each costs queries on every table page, for every visitor.
        settings={"sql_time_limit_ms": 3000, "max_returned_rows": 2000, "suggest_facets": False},
        secret=secret,
    )


def _check_port(host: str, port: int) -> None:
    """One line, before anything starts, where the address cannot be listened on."""
    import socket

    if not 1 <= port <= 65535:
        raise InputError(f"--port {port}: a port number from 1 to 65535")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}")


def serve(db_path: Path, host: str = "127.0.0.1", port: int = 8001, publish=None,
          config_path: Path | str = "trustwatch.toml") -> None:
    import asyncio
    import os

    import uvicorn

    from . import storage
    from .config import PublishConfig

    accounts = check_publish(publish, host, config_path)
    _check_port(host, port)
    db = storage.open_db(db_path)  # migrations, and the threshold the public views apply
    storage.set_min_cell(db, (publish or PublishConfig()).min_cell)
    db.close()
    secret = os.environ.get(publish.secret_env) if publish else None
    ds = make_datasette(db_path, publish, secret or None)
    asyncio.run(ds.invoke_startup())
    print(f"Serving {db_path} on http://{host}:{port} (Ctrl-C to stop)", file=sys.stderr)
    if accounts:
        print(f"Researchers sign in at http://{host}:{port}/-/login ({', '.join(accounts)}); anonymous "
              "visitors see aggregates, reports and alerts only", file=sys.stderr)
    else:
        print("No researcher accounts ([publish] researchers): post text is shown to no one", file=sys.stderr)
    # proxy_headers=False: a client's own X-Forwarded-For must not choose the address the
    # sign-in limit counts failures against (behind a proxy, visitors share its address).
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", proxy_headers=False)
