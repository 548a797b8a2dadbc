"""Discord through the config, against a loopback server speaking Discord's REST API
(fictional messages)."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import write_config
from fakes import loopback_server
from monitor import pipeline, storage
from monitor.config import load_config

TOKEN = "fictional-bot-token"


def message(mid, cid, content, author="7001", ref=None, bot=False, mtype=0):
    m = {"id": str(mid), "channel_id": cid, "content": content, "type": mtype,
         "timestamp": f"2026-05-01T10:{mid % 60:02d}:00.000000+00:00",
         "author": {"id": author, "username": f"fict{author}", "bot": bot}}
    if ref:
        m["message_reference"] = {"message_id": str(ref)}
    return m


class FakeDiscord:
    def __init__(self):
        self.messages = {"111": [message(1000 + i, "111", f"message {i} about Lakeshore <@55> <@&66> <#77>")
                                 for i in range(150)],
                         "222": [message(5000, "222", "thread start"), message(5001, "222", "reply", ref=5000),
                                 message(5002, "222", "I am a bot", bot=True), message(5003, "222", "", mtype=7)],
                         "223": [message(6000, "223", "an old archived thread")],
                         "224": [message(7000, "224", "a private thread the bot was added to")]}
        self.private_archived = 200
        self.requests = []
        self.throttled = False

    def handle(self, h):
        url = urlsplit(h.path)
        self.requests.append(h.path)
        if h.headers.get("Authorization") != f"Bot {TOKEN}":
            return 401, {"message": "401: Unauthorized", "code": 0}, {}
        path = url.path.removeprefix("/api/v10")
        if not self.throttled and "/messages" in path:
            self.throttled = True
            return 429, {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}, {"Retry-After": "1"}
        if path == "/guilds/9/channels":
            return 200, [{"id": "111", "type": 0, "name": "trial-talk"}, {"id": "444", "type": 2, "name": "voice"}], {}
        if path == "/guilds/9/threads/active":
            return 200, {"threads": [{"id": "222", "type": 11, "name": "lumen-thread"}]}, {}
        if path == "/channels/111":
            return 200, {"id": "111", "type": 0, "name": "trial-talk", "guild_id": "9"}, {}
        if path == "/channels/333":
            return 403, {"message": "Missing Access", "code": 50001}, {}
        if path == "/channels/111/threads/archived/public":  # two pages, paged by archive time
            q = parse_qs(url.query)
            if "before" not in q:
                return 200, {"threads": [{"id": "222", "type": 11, "name": "lumen-thread", "parent_id": "111",
                                          "thread_metadata": {"archive_timestamp": "2026-05-02T00:00:00+00:00"}}],
                             "has_more": True}, {}
            assert q["before"] == ["2026-05-02T00:00:00+00:00"]
            return 200, {"threads": [{"id": "223", "type": 11, "name": "old-thread", "parent_id": "111",
                                      "thread_metadata": {"archive_timestamp": "2026-04-01T00:00:00+00:00"}}],
                         "has_more": False}, {}
        if path == "/channels/111/users/@me/threads/archived/private":
            if self.private_archived == 403:
                return 403, {"message": "Missing Access", "code": 50001}, {}
            return 200, {"threads": [{"id": "224", "type": 12, "name": "private-thread", "parent_id": "111"}],
                         "has_more": False}, {}
        m = re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path)
        if m:
            found = [x for x in self.messages.get(m.group(1), []) if x["id"] == m.group(2)]
            return (200, found[0], {}) if found else (404, {"message": "Unknown Message", "code": 10008}, {})
        m = re.fullmatch(r"/channels/(\d+)/messages", path)
        if m:
            q = parse_qs(url.query)
            msgs = sorted(self.messages[m.group(1)], key=lambda x: -int(x["id"]))  # newest first
            limit = int(q["limit"][0])
            if "before" in q:
                msgs = [x for x in msgs if int(x["id"]) < int(q["before"][0])][:limit]
            elif "after" in q:
                msgs = sorted([x for x in msgs if int(x["id"]) > int(q["after"][0])], key=lambda x: int(x["id"]))[:limit]
                msgs.reverse()
            else:
                msgs = msgs[:limit]
            return 200, msgs, {"X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "0.01"}
        return 404, {"message": "404: Not Found", "code": 0}, {}


@pytest.fixture
def discord():
    fake = FakeDiscord()

    def handle(h):
        status, body, headers = fake.handle(h)
        return status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}

    with loopback_server(handle) as base:
        yield fake, f"{base}/api/v10"


def config(tmp_path, enc, heads, api, channels='["111"]'):
    return load_config(write_config(tmp_path, enc, heads, sources=f"""
        [[source]]
        name = "mg-discord"
        type = "discord"
        channels = {channels}
        api_base = "{api}"
        consent = "Invited by the fictional server's moderators on 2026-04-01"
        """, extra="[collect]\nmin_interval = 0"))


def test_channels_and_threads_collected_incrementally(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, discord, tiny_tagger, monkeypatch):
    fake, api = discord
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    cfg = config(tmp_path, tiny_encoder_dir, tiny_heads_path, api)
    quiet = lambda m: None  # noqa: E731
    report = pipeline.run(cfg, log=quiet, tagger=tiny_tagger)
    assert report.new == 154 and report.sources["mg-discord"]["bots"] == 1
    assert any("before=1050" in r for r in fake.requests)  # paged back through 150 messages
    db = storage.open_db(cfg.database)
    post = db["posts"].get("discord:1000")
    assert post["text"] == "message 0 about Lakeshore @user @role #channel"
    assert post["community"] == "discord #trial-talk" and post["author"].startswith("a_")
    assert db["posts"].get("discord:5001")["parent_id"] == "discord:5000"
    assert post["url"] == "https://discord.com/channels/9/111/1000"  # links work for the server's members
    assert db["posts"].get("discord:6000")["text"] == "an old archived thread"  # second page of archived threads
    assert db["posts"].get("discord:7000")["url"] == "https://discord.com/channels/9/224/7000"
    assert db.execute("select count(*) from mentions where entity_id = 'lakeshore'").fetchone()[0] == 150
    assert db["sources"].get("mg-discord")["consent"].startswith("Invited by the fictional server")

    fake.messages["111"].append(message(1200, "111", "a new one"))
    fake.requests.clear()
    again = pipeline.run(cfg, log=quiet, tagger=tiny_tagger)
    assert again.new == 1 and any("after=1149" in r for r in fake.requests)

    fake.messages["111"] = [m for m in fake.messages["111"] if m["id"] != "1001"]  # deleted on the server
    fake.messages["222"][0]["content"] = "thread start (edited)"
    checked = pipeline.run(cfg, log=quiet, tagger=tiny_tagger, steps=("recheck", "tag", "aggregate"))
    assert checked.sources["mg-discord"]["removed"] == 1 and checked.sources["mg-discord"]["edited"] == 1
    assert db["posts"].count_where("id = 'discord:1001'") == 0


def test_missing_token_and_unreadable_channel_fail_only_that_source(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, discord, tiny_tagger, monkeypatch):
    fake, api = discord
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    cfg = config(tmp_path, tiny_encoder_dir, tiny_heads_path, api)
    report = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    assert "DISCORD_BOT_TOKEN is not set" in report.errors["mg-discord"]
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "revoked")
    assert "token is invalid or revoked" in pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger).errors["mg-discord"]
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    cfg = config(tmp_path, tiny_encoder_dir, tiny_heads_path, api, channels='["333"]')
    assert "Read Message History" in pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger).errors["mg-discord"]


def test_discord_config_errors(tmp_path, tiny_encoder_dir, tiny_heads_path, discord):
    from monitor.errors import ConfigError

    _, api = discord
    with pytest.raises(ConfigError, match="not a Discord id"):
        config(tmp_path, tiny_encoder_dir, tiny_heads_path, api, channels='["general"]')
    with pytest.raises(ConfigError, match="either channels"):
        config(tmp_path, tiny_encoder_dir, tiny_heads_path, api, channels='["1"]\n        guild = "2"')


def test_guild_mode_takes_text_channels_and_threads(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, discord, tiny_tagger, monkeypatch):
    fake, api = discord
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    cfg = load_config(write_config(tmp_path, tiny_encoder_dir, tiny_heads_path, sources=f"""
        [[source]]
        name = "mg-server"
        type = "discord"
        guild = "9"
        api_base = "{api}"
        """, extra="[collect]\nmin_interval = 0"))
    report = pipeline.run(cfg, log=lambda m: None, tagger=tiny_tagger)
    assert report.new == 154 and not report.failed
    assert not any("/channels/444" in r for r in fake.requests)  # voice channel skipped


def test_private_archived_threads_without_access_are_noted_not_fatal(tmp_path, tiny_encoder_dir, tiny_heads_path, salt, discord, tiny_tagger, monkeypatch):
    fake, api = discord
    fake.private_archived = 403
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    cfg = config(tmp_path, tiny_encoder_dir, tiny_heads_path, api)
    notes = []
    report = pipeline.run(cfg, log=notes.append, tagger=tiny_tagger)
    assert not report.failed and report.new == 153
    assert any("no access to its private archived threads" in n for n in notes)


def test_only_discord_shaped_ids_and_times_go_into_a_next_page_url():
    """A server's text goes into the next page's URL: a 5,000-digit "id" was an
    httpx.InvalidURL (URL too long) and, past 4,300 digits, a ValueError from int()."""
    from collectors.discord import _snowflake

    assert _snowflake("1234567890123456789") == "1234567890123456789"
    assert _snowflake("7" * 5000) is None and _snowflake("7" * 21) is None and _snowflake("²") is None
