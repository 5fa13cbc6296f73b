"""Parse `DATABASE_URL` into Django's DATABASES entry (the image carries no dj-database-url)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


class DatabaseUrlError(ValueError):
    """DATABASE_URL is not a postgres:// URL Django can use."""


def parse_database_url(url: str) -> dict[str, Any]:
    """`postgres://user:pass@host:port/db?opt=v` -> the keys of a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise DatabaseUrlError(
            f"DATABASE_URL: expected postgres://user:pass@host:port/db, got scheme {parts.scheme!r}"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise DatabaseUrlError("DATABASE_URL: expected a database name after the host (…/db)")
    try:
        port = parts.port
    except ValueError as exc:
        raise DatabaseUrlError(f"DATABASE_URL: bad port ({exc})") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port) if port else "",
        "OPTIONS": dict(parse_qsl(parts.query)),
    }
