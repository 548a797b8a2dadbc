"""Collectors: fetch raw items from a community and turn them into posts.

``build(source_config)`` makes the collector a ``[[source]]`` table asks for."""

from __future__ import annotations

from .base import BadItem, Collector, Post, SourceFailed
from .discord import DiscordCollector
from .discourse import DiscourseCollector
from .feed import FeedCollector
from .http import PoliteClient
from .mastodon import MastodonCollector
from .reddit import RedditCollector, make_reddit
from .reddit_dump import RedditDumpCollector

__all__ = ["BadItem", "Collector", "DiscordCollector", "DiscourseCollector", "FeedCollector", "MastodonCollector", "Post", "PoliteClient", "SourceFailed",
           "RedditCollector", "RedditDumpCollector", "build"]


def build(source, http: PoliteClient | None = None) -> Collector:
    """A collector for one ``monitor.config.SourceConfig``; web sources share ``http``."""
    o = source.options
    if source.type == "discourse":
        return DiscourseCollector(source.name, o["base_url"], http or PoliteClient(),
                                  categories=o.get("categories"), query=o.get("query"),
                                  max_pages=o.get("max_pages", 10))
    if source.type == "reddit":
        http = http or PoliteClient()
        return RedditCollector(source.name, make_reddit(o.get("praw_site"), http.client.headers["User-Agent"]),
                               o["subreddits"], query=o.get("query"), comments=o.get("comments", True),
                               replace_more=o.get("replace_more", 8))
    if source.type == "discord":
        return DiscordCollector(source.name, http or PoliteClient(), channels=o.get("channels"),
                                guild=o.get("guild"), token_env=o.get("token_env", "DISCORD_BOT_TOKEN"),
                                api_base=o.get("api_base", "https://discord.com/api/v10"),
                                max_pages=o.get("max_pages", 50))
    if source.type == "mastodon":
        return MastodonCollector(source.name, o["base_url"], o["hashtags"], http or PoliteClient(),
                                 max_pages=o.get("max_pages", 10))
    if source.type == "feed":
        return FeedCollector(source.name, o["url"], http or PoliteClient())
    if source.type == "reddit-dump":
        return RedditDumpCollector(
            source.name,
            source.path(),
            subreddits=o.get("subreddits"),
            since=o.get("since"),
            until=o.get("until"),
            keywords=o.get("keywords"),
            reddit_factory=lambda: make_reddit(o.get("praw_site"), (http or PoliteClient()).client.headers["User-Agent"]),
        )
    raise ValueError(f"no collector for source type {source.type!r}")
