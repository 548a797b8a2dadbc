"""The ``trustwatch`` command line: thin click commands over the library."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path

import click

from .errors import InputError, TrustwatchError

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_SALT = "trustwatch-demo-salt-fictional-data-only"
DEMO_PASSWORD = "fictional-demo"  # the demo's researcher account; the data is fictional


def _log(message: str) -> None:
    click.echo(message, err=True)


def _tty() -> bool:
    """Progress bars only on a terminal: cron logs get one greppable line per step."""
    return sys.stderr.isatty()


def config_option(fn):
    """--config on every command: default ./trustwatch.toml or $TRUSTWATCH_CONFIG."""

    @click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        default=None, help="Config file [default: ./trustwatch.toml or $TRUSTWATCH_CONFIG]",
    )
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def reports_errors(fn):
    """TrustwatchError -> one line on stderr and its exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import sqlite3

        try:
            return fn(*args, **kwargs)
        except TrustwatchError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(e.exit_code)
        except sqlite3.OperationalError as e:  # a read-only file or folder, a full disk
            hint = " (check the permissions of the database file and its folder)" if "readonly" in str(e) else ""
            click.echo(f"Error: the database: {e}{hint}", err=True)
            sys.exit(2)
        except OSError as e:  # a file or folder that cannot be written or made
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"Error: {where}{e.strerror or e}", err=True)
            sys.exit(2)

    return wrapper


def _config(path: Path | None):
    from .config import load_config

    return load_config(path)


@click.group()
@click.version_option(package_name="trustwatch")
def cli():
    """trustwatch: how patient communities see trial sites and their partner groups.

    Collects public posts, tags sentiment and trust themes for each watched site,
    sponsor, advocacy group, trial and condition, and publishes it with Datasette.
    """


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing trustwatch.toml")
@reports_errors
def init(directory: Path, force: bool):
    """Write a commented trustwatch.toml to start from.

    Example:

        trustwatch init my-project
    """
    from .init import write_starter_config

    path = write_starter_config(directory, force=force)
    click.echo(f"Wrote {path}: edit the [[watch]] and [[source]] tables, then run `trustwatch run`.")


@cli.command()
@config_option
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable)")
@reports_errors
def collect(config_path, sources):
    """Collect new posts from the configured sources, incrementally.

    Exit code 1 when a source failed (the others are still stored).

    Example:

        trustwatch collect --source als-archive
    """
    from . import pipeline

    report = pipeline.run(_config(config_path), list(sources) or None, log=_log, steps=("collect",))
    sys.exit(1 if report.failed else 0)


@cli.command()
@config_option
@reports_errors
def tag(config_path):
    """Tag every post not yet tagged by the current model.

    Example:

        trustwatch tag --config trustwatch.toml
    """
    from . import pipeline

    pipeline.run(_config(config_path), log=_log, steps=("tag", "aggregate"), progress=_tty())


@cli.command()
@config_option
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable)")
@reports_errors
def run(config_path, sources):
    """Collect, tag and aggregate: the command cron runs. Safe to repeat.

    Exit codes: 0 done, 1 some sources failed, 2 bad config, 3 another run is going.

    Example (crontab, hourly):

        0 * * * *  cd /srv/trustwatch && TRUSTWATCH_SALT=... trustwatch run
    """
    from . import pipeline

    report = pipeline.run(_config(config_path), list(sources) or None, log=_log, progress=_tty())
    sys.exit(1 if report.failed else 0)


@cli.command()
@config_option
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable)")
@reports_errors
def recheck(config_path, sources):
    """Fetch stored posts again: remove what authors deleted, update what they edited.

    Deleted posts go from every table (posts, tags, mentions, full-text search) and
    from the aggregates. Archive dumps and feeds cannot be re-fetched and are skipped.

    Example (weekly, from cron):

        30 3 * * 0  cd /srv/trustwatch && trustwatch recheck
    """
    from . import pipeline

    report = pipeline.run(_config(config_path), list(sources) or None, log=_log,
                          steps=("recheck", "tag", "aggregate"))
    sys.exit(1 if report.failed else 0)


@cli.command()
@config_option
@click.option("--watchlist", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="TOML with [[watch]] tables, or a JSON list of the same objects")
@click.option("--input", "input_path", default="-", metavar="FILE|-",
              help="JSONL with id, title, text [default: stdin]")
@click.option("--batch", default=64, show_default=True, help="Posts per model batch")
@reports_errors
def classify(config_path, watchlist, input_path, batch):
    """Tag JSONL posts without a database: JSONL in, JSONL out.

    Each input line is {"id": ..., "title": ..., "text": ...}; each output line gives
    sentiment, scores, themes and mentions (offsets into title + "\\n\\n" + text).

    Example:

        echo '{"id": 1, "title": "", "text": "LCRI was great"}' |
          trustwatch classify --watchlist watch.toml
    """
    from .config import ModelConfig, load_config, load_watchlist
    from .pipeline import build_tagger

    entities = load_watchlist(watchlist)
    # The model the config names: --config, $TRUSTWATCH_CONFIG, or ./trustwatch.toml where
    # there is one (as every command finds its config); with none, the offline default.
    cfg_path = config_path or (Path(os.environ["TRUSTWATCH_CONFIG"]) if os.environ.get("TRUSTWATCH_CONFIG") else None)
    if cfg_path is None and Path("trustwatch.toml").is_file():
        cfg_path = Path("trustwatch.toml")
    tagger = build_tagger(load_config(cfg_path).model if cfg_path else ModelConfig(), entities)
    if input_path == "-":
        stream = contextlib.nullcontext(sys.stdin)
        name = "stdin"
    else:
        try:
            stream = open(input_path, encoding="utf-8")
        except OSError as e:
            raise InputError(f"{input_path}: cannot open: {e.strerror}")
        name = input_path
    from .classify import read_jsonl

    out = sys.stdout
    pending: list[tuple] = []

    def flush():
        for t in tagger.tag(pending):
            out.write(json.dumps(t.to_json(), ensure_ascii=False) + "\n")
        out.flush()
        pending.clear()

    with stream as lines:
        for item in read_jsonl(lines, name):
            pending.append(item)
            if len(pending) >= batch:
                flush()
        flush()


@cli.command()
@config_option
@click.option("--entity", "entity_id", metavar="ID", help="The watched entity to report on")
@click.option("--compare", is_flag=True, help="Compare the entities named as arguments (two or more)")
@click.argument("ids", nargs=-1, metavar="[ID ID...]")
@click.option("--weeks", type=int, default=None,
              help="Weeks in the period [default: 13 for --entity, compared with the 13 before; 26 for --compare]")
@click.option("--until", metavar="DATE", default=None,
              help="End the period with the week holding this date, e.g. 2026-09-30 [default: the latest week with data]")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="FILE.html or FILE.md; '-' prints Markdown [default: <id>-trust-report.html]")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Report on this database instead of the config's")
@reports_errors
def report(config_path, entity_id, compare, ids, weeks, until, out, db_path):
    """Trust trend report for one watched entity and its partners, or a side-by-side
    audit of candidate partner groups. The HTML needs no network to open.

    The period ends with the latest week that has data, or with --until.

    Examples:

        trustwatch report --entity lakeshore --out lakeshore.html

        trustwatch report --entity lakeshore --until 2026-09-30 --out q3.md

        trustwatch report --compare als-hope lupus-lantern mn-circle --out audit.html
    """
    from . import compare as comparing, report as reporting, storage

    if compare == bool(entity_id):
        raise InputError("give either --entity ID or --compare ID ID [ID...]")
    if entity_id and ids:
        raise InputError(f"unexpected argument {ids[0]!r}: --entity takes one id (use --compare for several)")
    cfg = None if db_path else _config(config_path)
    path = db_path or cfg.database
    if not path.exists():
        raise InputError(f"{path}: no such database (run `trustwatch run` first)")
    if path.is_file() and not storage.is_trustwatch_db(path):
        raise InputError(f"{path}: not a trustwatch database (left as it is)")
    db = storage.open_db(path)
    rules = cfg.alerts if cfg else None
    if compare:
        weeks = 26 if weeks is None else weeks
        target = out or Path("-".join(ids[:3]) + "-partner-audit.html")
        if str(target) == "-":
            click.echo(comparing.render_markdown(comparing.build(db, list(ids), weeks, until)))
            return
        result = comparing.write(db, list(ids), target, weeks, until)
        _log(f"report: {target} ({len(result.candidates)} entities, {result.period_text})")
        return
    weeks = 13 if weeks is None else weeks
    target = out or Path(f"{entity_id}-trust-report.html")
    if str(target) == "-":
        click.echo(reporting.render_markdown(reporting.build(db, entity_id, weeks, rules, until)))
        return
    result = reporting.write(db, entity_id, target, weeks, rules, until)
    _log(f"report: {target} ({result.entity.name}, {result.period_text}: {result.headline})")


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@reports_errors
def serve(config_path, host, port):
    """Browse the database in Datasette with this project's metadata.

    Example:

        trustwatch serve --port 8001
    """
    from . import serve as serving

    cfg = _config(config_path)
    serving.serve(cfg.database, host=host, port=port, publish=cfg.publish, config_path=cfg.path)


@cli.command()
@click.option("--no-serve", is_flag=True, help="Build the demo database and exit")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("trustwatch-demo.db"), show_default=True, help="Where to write the demo database")
@click.option("--port", default=8001, show_default=True, type=int)
@reports_errors
def demo(no_serve, db_path, port):
    """Run the main job on the shipped, fictional sample data, fully offline,
    then serve it on http://127.0.0.1:8001.

    Example:

        trustwatch demo --no-serve && sqlite3 trustwatch-demo.db 'select count(*) from posts'
    """
    from . import pipeline, serve as serving
    from .config import load_config

    cfg = load_config(DEMO_DIR / "trustwatch.toml")
    cfg.database = db_path.resolve()
    os.environ.setdefault(cfg.salt_env, DEMO_SALT)
    report = pipeline.run(cfg, log=_log, progress=_tty())
    _log(f"demo: {cfg.database} ready ({report.new} new posts, {report.tagged} tagged)")
    if report.failed:
        sys.exit(1)
    if not no_serve:
        from datasette_auth_passwords.utils import hash_password

        for env in cfg.publish.researchers.values():
            os.environ.setdefault(env, hash_password(DEMO_PASSWORD))
        _log(f"demo: researchers sign in as 'researcher' with password '{DEMO_PASSWORD}' to read the fictional posts")
        serving.serve(cfg.database, host="127.0.0.1", port=port, publish=cfg.publish, config_path=cfg.path)


@cli.command("hash-password")
@click.password_option(help="The password (asked twice when not given)")
def hash_password_command(password):
    """Print the hash of a researcher's password, for an environment variable named in
    [publish] researchers. The password itself is stored nowhere.

    Example:

        export TRUSTWATCH_HASH_ALICE="$(trustwatch hash-password)"
    """
    from datasette_auth_passwords.utils import hash_password

    click.echo(hash_password(password))


@cli.group()
def watch():
    """The watchlist: add trials from the registry, list, remove.

    Entities added here go to the watchlist file ([watchlist] file, default
    watchlist.toml beside the config), read together with the config's [[watch]] tables.

    Example:

        trustwatch watch add-trial NCT01234567 && trustwatch watch list
    """


@watch.command("add-trial")
@config_option
@click.argument("nct_ids", nargs=-1, required=True, metavar="NCT...")
@reports_errors
def watch_add_trial(config_path, nct_ids):
    """Add trials from ClinicalTrials.gov: the trial, its sponsor and collaborators,
    its sites (partnered with the advocacy groups among them) and its conditions.

    Example:

        trustwatch watch add-trial NCT01234567 NCT07654321
    """
    from . import registry
    from .errors import InputError

    cfg = _config(config_path)
    bad = [n for n in nct_ids if not registry.NCT.fullmatch(n.upper())]
    if bad:
        raise InputError(f"{bad[0]}: not a registry id like NCT01234567")
    with registry.registry_client(cfg.collect.contact, cfg.collect.min_interval) as client:
        studies = [registry.fetch_study(client, cfg.registry_url, n.upper()) for n in nct_ids]
    merged, added = cfg.watch, []
    for study in studies:
        merged, new_ids = registry.merge(merged, registry.study_entities(study))
        added += new_ids
    registry.write_watchlist(cfg.watchlist_file, [e for e in merged if e.id not in cfg.inline_ids])
    from .config import load_config

    load_config(cfg.path)  # the result must load; it always should
    click.echo(f"Added {len(added)} entities to {cfg.watchlist_file}: {', '.join(added) or 'none (all already watched)'}")


@watch.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list of the [[watch]] objects")
@reports_errors
def watch_list(config_path, as_json):
    """Show the watchlist.

    Example:

        trustwatch watch list --json
    """
    cfg = _config(config_path)
    rows = [{"id": e.id, "kind": e.kind, "name": e.name, "aliases": list(e.aliases), "partners": list(e.partners)}
            for e in cfg.watch]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    widths = {k: max([len(k)] + [len(", ".join(r[k]) if isinstance(r[k], list) else r[k]) for r in rows])
              for k in ("id", "kind", "name")}
    click.echo("  ".join(k.ljust(widths[k]) for k in ("id", "kind", "name")) + "  aliases / partners")
    for r in rows:
        extra = ", ".join(r["aliases"]) + (f"  (partners: {', '.join(r['partners'])})" if r["partners"] else "")
        click.echo("  ".join(r[k].ljust(widths[k]) for k in ("id", "kind", "name")) + "  " + extra)


@watch.command("remove")
@config_option
@click.argument("entity_id")
@reports_errors
def watch_remove(config_path, entity_id):
    """Remove an entity from the watchlist file (and from partner lists).

    Example:

        trustwatch watch remove pinecrest
    """
    from dataclasses import replace

    from . import registry
    from .errors import InputError

    cfg = _config(config_path)
    if entity_id in cfg.inline_ids:
        raise InputError(f"{entity_id}: defined in {cfg.path}; remove its [[watch]] table there")
    if entity_id not in {e.id for e in cfg.watch}:
        raise InputError(f"{entity_id}: not on the watchlist (see `trustwatch watch list`)")
    for e in cfg.watch:
        if e.id in cfg.inline_ids and entity_id in e.partners:
            raise InputError(f"{entity_id}: a partner of {e.id} in {cfg.path}; remove it from there first")
    kept = [replace(e, partners=tuple(p for p in e.partners if p != entity_id))
            for e in cfg.watch if e.id != entity_id and e.id not in cfg.inline_ids]
    registry.write_watchlist(cfg.watchlist_file, kept)
    click.echo(f"Removed {entity_id} from {cfg.watchlist_file}")


def main():
    """The console script: click's usage errors (an unknown option, a value that is not a
    number) in one line, as trustwatch's own errors are, with where to find help."""
    try:
        code = cli.main(prog_name="trustwatch", standalone_mode=False)
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "trustwatch"
        click.echo(f"Error: {e.format_message()} (see {where} --help)", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
