"""Credentials in URLs: found, masked and taken out, so that none is stored, shown or compared."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "****"


def _split(url: str) -> tuple[str | None, str | None, str]:
    """(user, password, host and port) of a URL; (None, None, netloc) when it has no user part."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None, None, ""
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return user, password if colon else None, host


def has_password(url: str) -> bool:
    """True when the URL carries a password (`scheme://user:password@host`)."""
    return _split(url)[1] is not None


def has_userinfo(url: str) -> bool:
    """True when the URL carries a user part, with or without a password."""
    return _split(url)[0] is not None


def without_userinfo(url: str) -> str:
    """The URL with its user part (user and password) taken out; unchanged when it has none."""
    user, _password, host = _split(url)
    if user is None:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=host))


def masked(url: str, *, keep_user: bool = False) -> str:
    """The URL as it may be shown: its password, and unless `keep_user` its user, masked."""
    user, password, host = _split(url)
    if user is None:
        return url
    shown_user = user if keep_user else MASK
    userinfo = shown_user if password is None else f"{shown_user}:{MASK}"
    return urlunsplit(urlsplit(url)._replace(netloc=f"{userinfo}@{host}"))
