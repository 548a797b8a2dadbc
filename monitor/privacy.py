"""Privacy at ingest: authors become keyed hashes, contact details are masked."""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from .errors import ConfigError

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w/])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w/])")


class Pseudonymizer:
    """HMAC-SHA256 of the author name with a secret salt: the same person gets the same
    pseudonym across runs, and nobody without the salt can test a guess."""

    def __init__(self, salt: str):
        if len(salt) < 8:
            raise ConfigError("the author salt must be at least 8 characters long")
        self._key = salt.encode("utf-8")

    @classmethod
    def from_env(cls, env: str, config_path) -> "Pseudonymizer":
        salt = os.environ.get(env)
        if not salt:
            raise ConfigError(
                f"{config_path}: privacy.author_salt_env: environment variable {env} is not set "
                f"(authors are stored only as keyed hashes; set it to a long random secret)"
            )
        if len(salt) < 8:
            raise ConfigError(f"{config_path}: privacy.author_salt_env: {env} must be at least 8 characters long "
                              "(a long random secret)")
        return cls(salt)

    def author(self, name: str | None) -> str | None:
        if not name:
            return None
        digest = hmac.new(self._key, name.strip().lower().encode("utf-8"), hashlib.sha256)
        return "a_" + digest.hexdigest()[:20]


_PHONE_HINT = re.compile(r"\d{3}[\s.-]\d{3}")  # what every masked phone number contains


def mask_contacts(text: str) -> str:
    """E-mail addresses and phone numbers never reach the database. (Cheap tests first:
    most posts have neither an '@' nor two groups of three digits.)"""
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    if _PHONE_HINT.search(text):
        text = _PHONE.sub("[phone]", text)
    return text
