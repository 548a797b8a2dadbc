"""Publishing safely: anonymous visitors see aggregates, reports and alerts only;
researchers sign in (datasette-auth-passwords, hashes from the environment) to read
post text, mentions, per-post tags and raw SQL; serve refuses to publish unprotected."""

from __future__ import annotations

import asyncio
import re

import pytest
from click.testing import CliRunner
from datasette_auth_passwords.utils import hash_password, verify_password

from conftest import ds_request
from monitor import serve
from monitor.cli import cli
from monitor.config import PublishConfig, load_config
from monitor.errors import ConfigError

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def ds(story):
    import os

    os.environ["TW_TEST_HASH_ALICE"] = hash_password(PASSWORD)
    return serve.make_datasette(story, PublishConfig(researchers={"alice": "TW_TEST_HASH_ALICE"}))


@pytest.fixture
def fresh_ds(ds, story):
    """A Datasette of its own: the sign-in limiter's counts start at zero."""
    return serve.make_datasette(story, PublishConfig(researchers={"alice": "TW_TEST_HASH_ALICE"}))


def call(ds, method, path, actor=None, **kwargs):
    return ds_request(ds, path, actor, method, **kwargs)


@pytest.mark.parametrize("table", serve.RESEARCHER_TABLES)
def test_anonymous_visitors_cannot_open_post_level_tables(ds, table):
    assert call(ds, "get", f"/story/{table}").status_code == 403
    assert call(ds, "get", f"/story/{table}.json").status_code == 403
    assert call(ds, "get", f"/story/{table}", actor={"id": "alice"}).status_code == 200


def test_anonymous_visitors_get_no_raw_sql_but_canned_queries(ds):
    assert call(ds, "get", "/story.json?sql=select+text+from+posts").status_code == 403
    assert call(ds, "get", "/story/entity_trend.json?entity=lakeshore").status_code == 200
    assert call(ds, "get", "/story/posts_about_entity.json?entity=lakeshore").status_code == 403
    assert call(ds, "get", "/story/search_posts_about_entity.json?entity=lakeshore&q=letter").status_code == 403
    signed_in = call(ds, "get", "/story.json?sql=select+count(*)+as+n+from+posts&_shape=array",
                     actor={"id": "alice"})
    assert signed_in.status_code == 200 and signed_in.json()[0]["n"] > 100


@pytest.mark.parametrize("view", ["public_entity_weekly", "public_entity_themes", "public_alerts", "entities",
                                  "models", "sources"])
def test_anonymous_visitors_see_public_aggregates(ds, view):
    assert call(ds, "get", f"/story/{view}.json").status_code == 200


def test_home_page_lists_no_post_tables_to_anonymous(ds):
    home = call(ds, "get", "/story")
    assert home.status_code == 200
    assert 'href="/story/posts"' not in home.text and 'href="/story/public_entity_weekly"' in home.text


async def _login_form(ds):
    """The sign-in form's CSRF token and cookie, as a browser would have them."""
    await ds.invoke_startup()
    form = await ds.client.get("/-/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text).group(1)
    return token, {"ds_csrftoken": form.cookies.get("ds_csrftoken")}


def test_a_researcher_signs_in_with_a_password(ds):
    async def go():
        token, cookies = await _login_form(ds)
        wrong = await ds.client.post("/-/login", data={"username": "alice", "password": "nope", "csrftoken": token},
                                     cookies=cookies)
        right = await ds.client.post("/-/login", data={"username": "alice", "password": PASSWORD,
                                                       "csrftoken": token}, cookies=cookies)
        posts = await ds.client.get("/story/posts.json", cookies={"ds_actor": right.cookies.get("ds_actor")})
        return wrong, right, posts

    wrong, right, posts = asyncio.run(go())
    assert "Invalid username or password" in wrong.text and "ds_actor" not in wrong.cookies
    assert right.status_code == 302 and right.cookies.get("ds_actor")
    assert posts.status_code == 200


def _login_plugin():
    from datasette.plugins import pm

    return next(p for p in pm.get_plugins() if getattr(p, "__name__", "") == "trustwatch_pages.py")


def test_repeated_failed_sign_ins_are_refused_for_a_while(fresh_ds, monkeypatch):
    ds = fresh_ds
    monkeypatch.setattr(_login_plugin(), "LOGIN_FAILURES", 3)

    async def go():
        token, cookies = await _login_form(ds)

        async def attempt(password):
            return await ds.client.post("/-/login", data={"username": "alice", "password": password,
                                                          "csrftoken": token}, cookies=cookies)

        first = [await attempt("nope") for _ in range(2)]
        right = await attempt(PASSWORD)  # signs in, and does not wipe the count
        third = await attempt("guess")
        blocked = await attempt(PASSWORD)
        return first, right, third, blocked

    first, right, third, blocked = asyncio.run(go())
    assert [r.status_code for r in first] == [200, 200] and right.status_code == 302
    assert third.status_code == 200
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60 + 1 and "ds_actor" not in blocked.cookies


def test_guesses_sent_at_once_are_all_counted(fresh_ds, monkeypatch):
    ds = fresh_ds
    monkeypatch.setattr(_login_plugin(), "LOGIN_FAILURES", 3)

    async def go():
        token, cookies = await _login_form(ds)
        return await asyncio.gather(*[
            ds.client.post("/-/login", data={"username": "alice", "password": f"guess{i}", "csrftoken": token},
                           cookies=cookies)
            for i in range(8)])

    codes = sorted(r.status_code for r in asyncio.run(go()))
    assert codes == [200, 200, 200] + [429] * 5


def test_serve_refuses_to_publish_without_sign_in(monkeypatch):
    assert serve.check_publish(PublishConfig(), "127.0.0.1") == []
    with pytest.raises(ConfigError, match="refusing to publish beyond this machine without sign-in"):
        serve.check_publish(PublishConfig(), "0.0.0.0")
    cfg = PublishConfig(researchers={"alice": "TW_HASH_ALICE"})
    monkeypatch.delenv("TW_HASH_ALICE", raising=False)
    with pytest.raises(ConfigError, match="TW_HASH_ALICE is not set"):
        serve.check_publish(cfg, "0.0.0.0")
    monkeypatch.setenv("TW_HASH_ALICE", "hunter2")
    with pytest.raises(ConfigError, match="does not hold a password hash"):
        serve.check_publish(cfg, "127.0.0.1")
    monkeypatch.setenv("TW_HASH_ALICE", hash_password("x"))
    assert serve.check_publish(cfg, "0.0.0.0") == ["alice"]


def test_publish_config_keeps_secrets_out_of_the_file(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[publish]\nresearchers = { alice = "TW_HASH_ALICE" }\nmin_cell = 10\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.publish.researchers == {"alice": "TW_HASH_ALICE"} and cfg.publish.min_cell == 10
    path.write_text('[publish]\nresearchers = { alice = "pbkdf2_sha256$480000$abc$def" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="never the hash itself"):
        load_config(path)
    path.write_text("[publish]\nmin_cell = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="min_cell: must be between 1 and 1000"):
        load_config(path)


def test_hash_password_command_prints_a_usable_hash():
    result = CliRunner().invoke(cli, ["hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0
    hashed = result.output.strip().splitlines()[-1]
    assert hashed.startswith("pbkdf2_sha256$") and verify_password(PASSWORD, hashed)
    assert PASSWORD not in result.output


def test_cli_serve_exits_2_for_a_public_host_without_researchers(dump_config):
    result = CliRunner().invoke(cli, ["serve", "--config", str(dump_config), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "without sign-in" in result.output and result.output.count("\n") == 1


def test_responses_carry_security_headers_and_the_sign_in_cookie_is_http_only(ds):
    async def go():
        token, cookies = await _login_form(ds)
        right = await ds.client.post("/-/login", data={"username": "alice", "password": PASSWORD,
                                                       "csrftoken": token}, cookies=cookies)
        page = await ds.client.get("/-/trust")
        tool = await ds.client.get("/-/password-tool")
        tool_post = await ds.client.post("/-/password-tool", data={"password": "x"})
        return right, page, tool, tool_post

    right, page, tool, tool_post = asyncio.run(go())
    cookie = [v for k, v in right.headers.multi_items() if k == "set-cookie" and v.startswith("ds_actor=")]
    assert cookie and "httponly" in cookie[0].lower()
    for r in (right, page):
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    # The auth plugin's hashing page would let anyone keep the server hashing: gone.
    assert tool.status_code == 404 and tool_post.status_code == 404 and "hash-password" in tool.text


def test_a_made_up_user_name_costs_the_same_hash_as_a_real_one(ds, monkeypatch):
    """The sign-in form hashed the password only for a user it knew, so accounts could be
    told from made-up names by how long a wrong password took to refuse."""
    import hashlib

    real = hashlib.pbkdf2_hmac
    rounds = []

    def counted(name, password, salt, iterations, *args):
        rounds.append(iterations)
        return real(name, password, salt, iterations, *args)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)

    async def attempt(user):
        token, cookies = await _login_form(ds)
        return await ds.client.post("/-/login", data={"username": user, "password": "nope", "csrftoken": token},
                                    cookies=cookies)

    known = asyncio.run(attempt("alice"))
    work_known, rounds[:] = list(rounds), []
    unknown = asyncio.run(attempt("mallory"))
    assert known.status_code == unknown.status_code == 200
    assert "Invalid username or password" in known.text and "Invalid username or password" in unknown.text
    assert work_known and rounds == work_known
