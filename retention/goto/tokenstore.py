"""The tokens kept in the state directory, written atomically (0600, fsync, rename).

`refresh_token.json` holds the refresh token GoTo rotated to; `access_token.json` the last
access token with its expiry, so that the next run (another process) uses it until it is
due for a refresh rather than asking the token endpoint, and rotating, every run.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from retention.errors import SettingsError
from retention.times import parse_stored_time

TOKEN_FILE = "refresh_token.json"  # noqa: S105  (a file name)
ACCESS_FILE = "access_token.json"


@dataclass(frozen=True)
class StoredToken:
    """A refresh token with what is known of it; the token itself never appears in a repr."""

    refresh_token: str
    obtained_at: datetime
    principal: str | None = None
    account_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"StoredToken(refresh_token='***', obtained_at={self.obtained_at.isoformat()!r}, "
            f"principal={self.principal!r})"
        )


@dataclass(frozen=True)
class StoredAccess:
    """An access token, when it was obtained and expires, and whose it is; repr hides it."""

    access_token: str
    obtained_at: datetime
    expires_at: datetime
    token_url: str
    client_id: str
    principal: str | None = None
    account_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"StoredAccess(access_token='***', expires_at={self.expires_at.isoformat()!r}, "
            f"client_id={self.client_id!r})"
        )


_Stored = TypeVar("_Stored", StoredToken, StoredAccess)


class TokenStore:
    """The file `<state_dir>/refresh_token.json`; a rotated token lands here before it is used.

    Beside it, `access_token.json` (see `access_path`): the access token in force.
    """

    def __init__(self, path: Path, access_path: Path | None = None) -> None:
        self.path = path
        self.access_path = access_path or path.with_name(ACCESS_FILE)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> TokenStore:
        """The store at its usual place in the state directory."""
        return cls(state_dir / TOKEN_FILE)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def load(self) -> StoredToken | None:
        """The stored token, or None when none was stored yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SettingsError(
                f"cannot read the token file {self.path}: {exc.strerror}",
                hint="check the permissions of the state directory (RETENTION_STATE_DIR)",
            ) from exc
        try:
            return _from_json(StoredToken, text)
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(
                f"the token file {self.path} is not a token file written by retention",
                hint="run `retention auth login` to store a fresh refresh token",
            ) from exc

    def save(self, token: StoredToken) -> None:
        """Replace the stored token atomically: temp file 0600, fsync, rename, fsync the folder.

        Raises OSError when any step fails; the previous file is then left as it was.
        """
        _write_atomically(self.path, _to_json(token))

    def load_access(self) -> StoredAccess | None:
        """The access token kept by an earlier run; None when none is, or it cannot be read
        (a refresh then replaces it: it is a saving, never a necessity)."""
        try:
            return _from_json(StoredAccess, self.access_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save_access(self, token: StoredAccess) -> None:
        """Keep the access token in force for later runs (0600, atomically); OSError on failure."""
        _write_atomically(self.access_path, _to_json(token))

    def forget_access(self) -> None:
        """The API refused the kept access token: the next run must not try it again."""
        # Should this fail, the next run tries it, is refused, and refreshes: one request lost.
        with contextlib.suppress(OSError):
            self.access_path.unlink(missing_ok=True)


def _to_json(token: StoredToken | StoredAccess) -> bytes:
    """A token file's body: the fields by name, in order, times in ISO form."""
    body = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in asdict(token).items()
    }
    return json.dumps(body).encode()


def _from_json(kind: type[_Stored], text: str) -> _Stored:
    """A token read back from its file; ValueError, KeyError or TypeError if it is not one.

    A field with a default (None) may be absent; the others must be there, times as ISO text.
    """
    data = json.loads(text)
    types = get_type_hints(kind)
    values: dict[str, Any] = {}
    for field in fields(kind):
        if field.default is None:
            values[field.name] = data.get(field.name)
        elif types[field.name] is datetime:
            values[field.name] = parse_stored_time(data[field.name])
        else:
            values[field.name] = str(data[field.name])
    return kind(**values)


def _write_atomically(path: Path, body: bytes) -> None:
    """Temp file 0600, fsync, rename over `path`, fsync the folder; OSError on failure."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
