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


def metadata(db_path: Path) -> dict:
    """metadata.yml, with its database section named after this database file."""
    import yaml

    data = yaml.safe_load((datasette_dir() / "metadata.yml").read_text(encoding="utf-8"))
    dbs = data.get("databases", {})
    name = Path(db_path).stem
    if PLACEHOLDER_DB in dbs:
        dbs[name] = dbs.pop(PLACEHOLDER_DB)
    if "description_html" in data:
        data["description_html"] = data["description_html"].replace("{db}", name)
    return data


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_datasette(db_path: Path):
    """The Datasette instance `trustwatch serve` runs (tests use it in-process)."""
    from datasette.app import Datasette

    d = datasette_dir()
    plugins = d / "plugins"
    return Datasette(
        [str(db_path)],
        metadata=metadata(db_path),
        template_dir=str(d / "templates") if (d / "templates").is_dir() else None,
        plugins_dir=str(plugins) if plugins.is_dir() and any(plugins.glob("*.py")) else None,
        settings={"sql_time_limit_ms": 3000, "max_returned_rows": 2000},
    )


def serve(db_path: Path, host: str = "127.0.0.1", port: int = 8001) -> None:
    if not is_loopback(host):
        raise ConfigError(
            f"--host {host}: refusing to publish beyond this machine; trustwatch serves "
            "127.0.0.1 only until authentication is configured (README: Browse with Datasette)"
        )
    import asyncio

    import uvicorn

    ds = make_datasette(db_path)
    asyncio.run(ds.invoke_startup())
    print(f"Serving {db_path} on http://{host}:{port} (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
