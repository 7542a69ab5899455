"""The refresh token kept in the state directory, written atomically (0600, fsync, rename)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from retention.errors import SettingsError
from retention.times import parse_stored_time

TOKEN_FILE = "refresh_token.json"  # noqa: S105  (a file name)


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


class TokenStore:
    """The file `<state_dir>/refresh_token.json`; a rotated token lands here before it is used."""

    def __init__(self, path: Path) -> None:
        self.path = path

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
            data = json.loads(text)
            return StoredToken(
                refresh_token=str(data["refresh_token"]),
                obtained_at=parse_stored_time(data["obtained_at"]),
                principal=data.get("principal"),
                account_key=data.get("account_key"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(
                f"the token file {self.path} is not a token file written by retention",
                hint="run `retention auth login` to store a fresh refresh token",
            ) from exc

    def save(self, token: StoredToken) -> None:
        """Replace the stored token atomically: temp file 0600, fsync, rename, fsync the folder.

        Raises OSError when any step fails; the previous file is then left as it was.
        """
        body = json.dumps(
            {
                "refresh_token": token.refresh_token,
                "obtained_at": token.obtained_at.isoformat(),
                "principal": token.principal,
                "account_key": token.account_key,
            }
        ).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
