import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, write_config
from monitor.cli import cli

ROOT = Path(__file__).parent.parent
COMMANDS = sorted(cli.commands)


def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"{command} --help has no Example"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"trustwatch {command}\b", readme), f"README does not show `trustwatch {command}`"


def test_python_dash_m_monitor_works():
    out = subprocess.run([sys.executable, "-m", "monitor", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage:" in out.stdout


def test_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path):
    from monitor.config import load_config

    assert invoke("init", str(tmp_path)).exit_code == 0
    cfg = load_config(tmp_path / "trustwatch.toml")
    assert cfg.sources[0].type == "reddit-dump"
    again = invoke("init", str(tmp_path))
    assert again.exit_code == 2
    assert again.output.strip().count("\n") == 0 and "already exists" in again.output


def test_broken_config_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "trustwatch.toml"
    bad.write_text('[[watch]]\nid = "x"\nkind = "hospital"\nname = "X"\n')
    for command in ("run", "collect", "tag", "serve"):
        result = invoke(command, "--config", str(bad))
        assert result.exit_code == 2, command
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
        assert "watch[0].kind" in result.output and str(bad) in result.output
        assert "Traceback" not in result.output


def test_run_via_cli_then_again(dump_config):
    first = invoke("run", "--config", str(dump_config))
    assert first.exit_code == 0, first.output
    assert "5 new" in first.output
    second = invoke("run", "--config", str(dump_config))
    assert second.exit_code == 0 and "0 new, 0 updated" in second.output


def test_collect_unknown_source(dump_config):
    result = invoke("collect", "--config", str(dump_config), "--source", "nope")
    assert result.exit_code == 2 and "no source named 'nope'" in result.output


def test_run_exits_1_when_a_source_fails(dump_config):
    dump_config.write_text(dump_config.read_text() + '\n[[source]]\nname = "gone"\ntype = "reddit-dump"\npath = "missing.ndjson"\n')
    result = invoke("run", "--config", str(dump_config))
    assert result.exit_code == 1 and "collect gone: FAILED" in result.output


def test_classify_jsonl_in_jsonl_out(tmp_path, tiny_encoder_dir, tiny_heads_path):
    cfg = write_config(tmp_path, tiny_encoder_dir, tiny_heads_path)
    lines = [
        {"id": "a", "title": "LCRI", "text": "Lakeshore was great but Calloway was not."},
        {"id": 2, "title": "", "text": "nothing here, 60 mg daily"},
    ]
    stdin = "\n".join(json.dumps(x) for x in lines) + "\n"
    result = invoke("classify", "--config", str(cfg), "--watchlist", str(FIXTURES / "watchlist.toml"), input=stdin)
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 2]
    assert set(out[0]) == {"id", "sentiment", "scores", "themes", "mentions"}
    assert set(out[0]["scores"]) == {"negative", "neutral", "positive"}
    text = "LCRI\n\nLakeshore was great but Calloway was not."
    assert [(m["entity"], text[m["start"]:m["end"]]) for m in out[0]["mentions"]] == [
        ("lakeshore", "LCRI"), ("lakeshore", "Lakeshore"), ("calloway", "Calloway")]
    assert out[1]["mentions"] == []


def test_classify_bad_input_is_one_line(tmp_path, tiny_encoder_dir, tiny_heads_path):
    cfg = write_config(tmp_path, tiny_encoder_dir, tiny_heads_path)
    result = invoke("classify", "--config", str(cfg), "--watchlist", str(FIXTURES / "watchlist.toml"),
                    input='{"id": 1, "text": "ok"}\n{"id": 2, "text": \n')
    assert result.exit_code == 2
    assert "stdin: line 2: not valid JSON" in result.stderr
    missing = invoke("classify", "--config", str(cfg), "--watchlist", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_collect_then_tag_are_recorded_as_runs(dump_config):
    import sqlite3

    assert invoke("collect", "--config", str(dump_config)).exit_code == 0
    tagged = invoke("tag", "--config", str(dump_config))
    assert tagged.exit_code == 0 and "5 posts tagged" in tagged.output
    con = sqlite3.connect(dump_config.parent / "tw.db")
    runs = con.execute("select command, status, posts_new, posts_tagged from runs order by id").fetchall()
    assert runs == [("collect", "ok", 5, 0), ("tag+aggregate", "ok", 0, 5)]


def test_database_in_a_missing_folder_is_one_line(dump_config):
    dump_config.write_text(dump_config.read_text().replace('path = "tw.db"', 'path = "no/such/dir/tw.db"'))
    result = invoke("run", "--config", str(dump_config))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "no/such/dir/tw.db" in result.output


@pytest.mark.parametrize("error, says", [
    ("sqlite", "the database: attempt to write a readonly database (check the permissions"),
    ("os", "/srv/reports/x.html.tmp: Permission denied"),
])
def test_a_file_that_cannot_be_written_is_one_line(capsys, error, says):
    """A read-only database (root ignores file modes, so the error is raised here as
    sqlite raises it) or a report folder that cannot be written: one line, exit 2, not a
    traceback that reads like a failed source (exit 1)."""
    import sqlite3

    from monitor import cli as cli_module

    @cli_module.reports_errors
    def writes():
        if error == "sqlite":
            raise sqlite3.OperationalError("attempt to write a readonly database")
        raise PermissionError(13, "Permission denied", "/srv/reports/x.html.tmp")

    with pytest.raises(SystemExit) as e:
        writes()
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and err.count("\n") == 1


def test_serve_refuses_a_port_it_cannot_use_in_one_line(tmp_path):
    import socket

    cfg = tmp_path / "trustwatch.toml"
    cfg.write_text(f'[database]\npath = "{tmp_path / "t.db"}"\n')
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = CliRunner().invoke(cli, ["serve", "--config", str(cfg), "--port", str(port)])
    assert r.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in r.output and r.output.count("\n") == 1
    r = CliRunner().invoke(cli, ["serve", "--config", str(cfg), "--port", "70000"])
    assert r.exit_code == 2 and "--port 70000: a port number from 1 to 65535" in r.output


@pytest.mark.parametrize("line, says", [
    ('{"id": 1, "text": "caf\udce9 LCRI"}', "line 1: not valid UTF-8"),  # stdin keeps a bad byte as a surrogate
    ('{"id": 1, "text": "\\ud800 LCRI"}', "line 1: not valid UTF-8 (or a lone surrogate escape)"),
    ('{"id": NaN, "text": "x"}', "line 1: \"id\" must be a string or a finite number"),
    ('{"id": 1e999, "text": "x"}', "line 1: \"id\" must be a string or a finite number"),
    ('{"id": 1, "text": 0}', "line 1: \"title\" and \"text\" must be strings"),
    ('{"id": 1, "text": false}', "line 1: \"title\" and \"text\" must be strings"),
    ('{"id": 1, "title": [], "text": "x"}', "line 1: \"title\" and \"text\" must be strings"),
])
def test_classify_lines_the_tagger_could_not_take_are_one_line(line, says):
    import io

    from monitor.classify import read_jsonl
    from monitor.errors import InputError

    with pytest.raises(InputError) as e:
        list(read_jsonl(io.StringIO(line + "\n"), "stdin"))
    assert says in str(e.value)
    assert list(read_jsonl(io.StringIO('{"id": 1, "text": null}\n'), "stdin")) == [(1, "", "")]


def test_classify_uses_the_model_of_the_config_in_this_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRUSTWATCH_CONFIG", raising=False)
    (tmp_path / "trustwatch.toml").write_text('[model]\nencoder = "./no-such-encoder"\n')
    (tmp_path / "w.toml").write_text('[[watch]]\nid = "x"\nkind = "site"\nname = "Xsite"\n')
    r = invoke("classify", "--watchlist", "w.toml", input='{"id": 1, "text": "hi"}\n')
    assert r.exit_code == 2 and "cannot load encoder from ./no-such-encoder: no such folder" in r.output


@pytest.mark.parametrize("args, says", [
    (["report", "--weeks", "abc"], "Error: Invalid value for '--weeks': 'abc' is not a valid integer. "
                                   "(see trustwatch report --help)"),
    (["nosuch"], "Error: No such command 'nosuch'. (see trustwatch --help)"),
    (["report", "--nope"], "Error: No such option"),  # click may add "Did you mean ...?"
])
def test_usage_errors_are_one_line_too(tmp_path, args, says):
    done = subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    err = done.stderr.strip()
    assert done.returncode == 2 and err.startswith(says) and "\n" not in err and done.stdout == ""
    assert err.endswith("--help)")


def test_help_still_exits_0(tmp_path):
    done = subprocess.run([sys.executable, "-m", "monitor", "report", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("Usage: ")
