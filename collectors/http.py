"""Polite HTTP for collectors: robots.txt, a minimum interval per host, retries with
backoff and jitter on 5xx and connection errors, 429 with Retry-After, timeouts, and an
honest User-Agent. Collectors take a :class:`PoliteClient`; tests give it an
``httpx.MockTransport`` and a fake sleep."""

from __future__ import annotations

import email.utils
import random
import time
import urllib.robotparser
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx

from .base import SourceFailed

VERSION = "0.1.0"
PROJECT_URL = "https://github.com/trustwatch/trustwatch"


def user_agent(contact: str | None = None) -> str:
    extra = f"; {contact}" if contact else ""
    return f"trustwatch/{VERSION} (+{PROJECT_URL}{extra})"


class PoliteClient:
    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        contact: str | None = None,
        min_interval: float = 1.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.client = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
        self.client.headers["User-Agent"] = user_agent(contact)
        self.min_interval = min_interval
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self._last: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._hold: dict[str, float] = {}  # host -> clock time before which not to send
        self.waited = 0.0  # seconds slept, for the run log

    def close(self) -> None:
        """Close the connections it holds."""
        self.client.close()

    def __enter__(self) -> "PoliteClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait_turn(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None:
            delay = self.min_interval - (self.clock() - last)
            if delay > 0:
                self._pause(delay)
        self._last[host] = self.clock()

    def _pause(self, seconds: float) -> None:
        self.waited += seconds
        self.sleep(seconds)

    def allowed(self, url: str) -> bool:
        """robots.txt says this User-Agent may fetch url (no robots.txt: allowed)."""
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        if root not in self._robots:
            parser: urllib.robotparser.RobotFileParser | None = None
            try:
                r = self._send("GET", f"{root}/robots.txt", {})
            except SourceFailed:
                r = None
            if r is not None and r.status_code == 200:
                parser = urllib.robotparser.RobotFileParser()
                parser.parse(r.text.splitlines())
            elif r is not None and r.status_code in (401, 403):
                parser = urllib.robotparser.RobotFileParser()
                parser.disallow_all = True
            self._robots[root] = parser
        parser = self._robots[root]
        return parser is None or parser.can_fetch(self.client.headers["User-Agent"], url)

    def get(self, url: str, headers: dict[str, str] | None = None, robots: bool = True) -> httpx.Response:
        """GET politely. ``robots=False`` only for authenticated APIs used with the
        owners' consent (a Discord bot invited to a server), never for crawling."""
        if robots and not self.allowed(url):
            raise SourceFailed(f"{url}: robots.txt disallows fetching it")
        return self._send("GET", url, headers or {})

    def get_json(self, url: str, gone: tuple[int, ...] = (), expect: str = "a JSON API",
                 headers: dict[str, str] | None = None, robots: bool = True) -> Any:
        """GET a JSON document. None where the status is one of ``gone`` (deleted, not
        found); SourceFailed for any other non-200 answer or a body that is not JSON."""
        r = self.get(url, {"Accept": "application/json", **(headers or {})}, robots=robots)
        if r.status_code in gone:
            return None
        if r.status_code != 200:
            raise SourceFailed(f"{url}: HTTP {r.status_code}")
        try:
            data = r.json()
        except ValueError:
            raise SourceFailed(f"{url}: not JSON (is it {expect}?)")
        if data is None:  # None means "gone" to callers: a 200 saying null must not delete anything
            raise SourceFailed(f"{url}: answered null (is it {expect}?)")
        return data

    def _send(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        host = urlsplit(url).netloc
        for attempt in range(self.retries + 1):
            self._wait_turn(host)
            hold = self._hold.pop(host, 0.0) - self.clock()
            if hold > 0:  # the API said its quota was used up: wait for the reset
                self._pause(hold)
            try:
                r = self.client.request(method, url, headers=headers)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise SourceFailed(f"{url}: {type(e).__name__}: {e}")
                self._pause(self._backoff(attempt))
                continue
            if r.headers.get("X-RateLimit-Remaining") == "0":
                reset = retry_after(r.headers.get("X-RateLimit-Reset-After"))
                if reset:
                    self._hold[host] = self.clock() + reset
            if r.status_code == 429 or r.status_code >= 500:
                if attempt == self.retries:
                    raise SourceFailed(f"{url}: HTTP {r.status_code} after {self.retries + 1} tries")
                wait = retry_after(r.headers.get("Retry-After"))
                if r.status_code == 429 and "json" in r.headers.get("Content-Type", ""):
                    try:  # Discord puts a more precise retry_after in the body
                        body_wait = r.json().get("retry_after")
                    except (ValueError, AttributeError):
                        body_wait = None
                    if isinstance(body_wait, (int, float)):
                        wait = float(body_wait)
                if wait is None:
                    wait = self._backoff(attempt)
                if wait > self.max_wait:
                    raise SourceFailed(f"{url}: HTTP {r.status_code}, asked to wait {wait:.0f}s; trying next run")
                self._pause(wait)
                continue
            return r
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return self.backoff * (2**attempt) * (0.5 + self.rng.random())


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
