"""The exceptions trustwatch raises, and the exit code the CLI gives each.

    TrustwatchError            anything trustwatch reports to the user in one line
    ├── ConfigError            a bad config or watchlist file            (exit 2)
    ├── InputError             bad user input: a JSONL line, a path      (exit 2)
    ├── LockedError            another run holds the database lock       (exit 3)
    ├── ModelError             the tagger's model cannot be loaded       (exit 2)
    └── SourceError            one source failed; the run goes on        (exit 1)
"""

from __future__ import annotations


class TrustwatchError(Exception):
    """Base class: the message is one line, meant for the user."""

    exit_code = 1


class ConfigError(TrustwatchError):
    exit_code = 2


class InputError(TrustwatchError):
    exit_code = 2


class ModelError(TrustwatchError):
    exit_code = 2


class LockedError(TrustwatchError):
    exit_code = 3


class SourceError(TrustwatchError):
    exit_code = 1
