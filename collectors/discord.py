"""Discord servers whose owners invited a trustwatch bot (read message history only).

REST only, no gateway: messages of the configured channels (or every text channel of a
``guild``) and their threads, paged with ``before`` on the first run and ``after`` from the
newest stored message on later runs, 100 at a time. User, role and channel mentions
(``<@123>``, ``<@&456>``, ``<#789>``) are masked; bot messages are skipped. The token comes
only from the environment."""

from __future__ import annotations

import os
import re
from typing import Any, Iterator
from urllib.parse import quote

from .base import BadItem, Collector, Post, SourceFailed, format_utc, parse_time, str_or_none
from .http import PoliteClient

DEFAULT_API = "https://discord.com/api/v10"
TEXT_CHANNELS = {0, 5}  # text, announcement
THREADS = {10, 11, 12}
_USER = re.compile(r"<@!?\d+>")
_ROLE = re.compile(r"<@&\d+>")
_CHANNEL = re.compile(r"<#\d+>")


def _snowflake(value: Any) -> str | None:
    """A Discord id (decimal digits in a string, 64 bits: at most 20 digits); None for
    anything else: '²' is a digit to str.isdigit() and not to int(), and a 5,000-digit
    "id" would not fit a URL (nor, past 4,300 digits, int())."""
    return value if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20 else None


def mask_discord(text: str) -> str:
    return _CHANNEL.sub("#channel", _ROLE.sub("@role", _USER.sub("@user", text)))


class DiscordCollector(Collector):
    platform = "discord"

    def __init__(self, name: str, client: PoliteClient, channels: list[str] | None = None, guild: str | None = None,
                 token_env: str = "DISCORD_BOT_TOKEN", api_base: str = DEFAULT_API, max_pages: int = 50):
        super().__init__(name)
        self.client = client
        self.channels = channels or []
        self.guild = guild
        self.token_env = token_env
        self.api = api_base.rstrip("/")
        self.max_pages = max_pages
        self._names: dict[str, str] = {}
        self._guilds: dict[str, str] = {}  # channel id -> server id, for message links

    def _headers(self) -> dict[str, str]:
        token = os.environ.get(self.token_env)
        if not token:
            raise SourceFailed(f"environment variable {self.token_env} is not set (the Discord bot token)")
        return {"Authorization": f"Bot {token}"}

    def _get(self, path: str) -> Any:
        data = self.client.get_json(f"{self.api}{path}", gone=(401, 403), expect="the Discord API",
                                    headers=self._headers(), robots=False)
        if data is None:  # 401 or 403
            raise SourceFailed(f"{self.api}{path}: refused: the token is invalid or revoked, or the bot "
                               "cannot read this channel (it needs View Channel and Read Message History)")
        return data

    def _archived(self, channel: dict, kind: str) -> list[dict]:
        """Archived threads of a text channel, every page: ``public`` ones, and ``private``
        ones the bot was added to (a bot with Read Message History only cannot list other
        private threads, and those stay unread). A 403 here skips that list with a note."""
        cid = channel["id"]
        path = (f"/channels/{cid}/threads/archived/public" if kind == "public"
                else f"/channels/{cid}/users/@me/threads/archived/private")
        out, before = [], None
        for _ in range(self.max_pages):
            query = "limit=100" + (f"&before={quote(str(before), safe='')}" if before else "")  # '+' in a timestamp
            data = self.client.get_json(f"{self.api}{path}?{query}",
                                        gone=(403,), expect="the Discord API", headers=self._headers(), robots=False)
            if data is None:
                self.notes.append(f"channel {cid}: no access to its {kind} archived threads")
                return out
            if not isinstance(data, dict) or not isinstance(data.get("threads"), list):
                raise SourceFailed(f"{self.api}{path}: expected an object with a list of threads")
            threads = [t for t in data["threads"] if isinstance(t, dict) and _snowflake(t.get("id"))]
            out += threads
            if not data.get("has_more") or not threads:
                break
            last = threads[-1]
            meta = last.get("thread_metadata")
            before = ((meta.get("archive_timestamp") if isinstance(meta, dict) else None) if kind == "public"
                      else last["id"])
            # the next page's URL carries it: a time (public threads) or a snowflake, nothing else
            if not before or (kind == "public" and (not isinstance(before, str) or len(before) > 64
                                                    or parse_time(before) is None)):
                break
        return out

    def _channels(self) -> list[dict]:
        if self.guild:
            chans = self._get(f"/guilds/{self.guild}/channels")
            active = self._get(f"/guilds/{self.guild}/threads/active")
            listed = active.get("threads", []) if isinstance(active, dict) else None
            if not isinstance(chans, list) or not isinstance(listed, list):
                raise SourceFailed(f"{self.api}/guilds/{self.guild}: expected a list of channels and of active threads")
            out = [c for c in chans if isinstance(c, dict) and c.get("type") in TEXT_CHANNELS]
            out += [t for t in listed if isinstance(t, dict) and t.get("type") in THREADS]
        else:
            out = [self._get(f"/channels/{cid}") for cid in self.channels]
            for cid, c in zip(self.channels, out):
                if not isinstance(c, dict) or not _snowflake(c.get("id")):
                    raise SourceFailed(f"{self.api}/channels/{cid}: expected a channel object")
        out = [c for c in out if _snowflake(c.get("id"))]
        threads = []
        for c in out:
            if c.get("type") in TEXT_CHANNELS:
                threads += self._archived(c, "public") + self._archived(c, "private")
        seen, result = set(), []
        for c in out + threads:
            if c.get("id") not in seen:
                seen.add(c.get("id"))
                result.append(c)
        parents = {str(c["id"]): c for c in result}
        for c in result:  # threads take their server from their parent channel when they lack one
            guild = c.get("guild_id") or (parents.get(str(c.get("parent_id"))) or {}).get("guild_id") or self.guild
            if guild:
                self._guilds[str(c["id"])] = str(guild)
        return result

    def fetch(self, state: dict[str, Any]) -> Iterator[dict]:
        newest: dict[str, str] = state.setdefault("after", {})
        for channel in self._channels():
            cid = str(channel["id"])
            self._names[cid] = channel.get("name", cid)
            after = newest.get(cid)
            top = after
            cursor = None
            for _ in range(self.max_pages):
                if after:
                    query = f"after={cursor or after}"
                else:
                    query = f"before={cursor}" if cursor else ""
                page = self._get(f"/channels/{cid}/messages?limit=100{'&' + query if query else ''}")
                if not isinstance(page, list):
                    raise SourceFailed(f"{self.api}/channels/{cid}/messages: expected a list of messages")
                if not page:
                    break
                for m in page:
                    if isinstance(m, dict):
                        m["_channel_name"] = self._names[cid]
                        m["_guild_id"] = self._guilds.get(cid)
                    yield m
                ids = sorted(int(m["id"]) for m in page if isinstance(m, dict) and _snowflake(m.get("id")))
                if not ids:
                    break
                if top is None or ids[-1] > int(top):
                    top = str(ids[-1])
                cursor = str(ids[-1] if after else ids[0])
                if len(page) < 100:
                    break
            else:
                self.notes.append(f"channel {cid}: stopped after {self.max_pages} pages of 100 messages")
            if top:
                newest[cid] = top

    def to_post(self, raw: dict) -> Post | None:
        if not isinstance(raw, dict):
            raise BadItem("discord message that is not an object")
        mid, cid, created = _snowflake(raw.get("id")), _snowflake(raw.get("channel_id")), parse_time(raw.get("timestamp"))
        if not mid or not cid or created is None:
            raise BadItem("discord message without id, channel or timestamp")
        author = raw.get("author") if isinstance(raw.get("author"), dict) else {}
        if author.get("bot"):
            self.counts["bots"] += 1
            return None
        if raw.get("type", 0) not in (0, 19):  # default and reply; not joins, pins, ...
            self.counts["system"] += 1
            return None
        reference = raw.get("message_reference")
        ref = _snowflake(reference.get("message_id")) if isinstance(reference, dict) else None
        return Post(
            id=f"discord:{mid}",
            source=self.name,
            platform=self.platform,
            community=f"discord #{raw.get('_channel_name', cid)}",
            url=f"https://discord.com/channels/{raw['_guild_id']}/{cid}/{mid}" if raw.get("_guild_id") else None,
            author=str_or_none(author.get("id")) or str_or_none(author.get("username")),
            created_at=format_utc(created),
            title="",
            text=mask_discord(str_or_none(raw.get("content")) or ""),
            parent_id=f"discord:{ref}" if ref else None,
            thread_id=f"discord:channel:{cid}",
            source_ref=f"{cid}/{mid}",
        )

    can_recheck = True

    def recheck(self, refs: list[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        for post_id, ref in refs:
            cid, _, mid = ref.partition("/")
            m = self.client.get_json(f"{self.api}/channels/{cid}/messages/{mid}", gone=(404,),
                                     expect="the Discord API", headers=self._headers(), robots=False)
            yield post_id, None if m is None else mask_discord(m.get("content") or "")
