"""Structured logging: JSON lines off a terminal, a console renderer on one, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from retention.service import journal
from retention.settings import ALL_SECRETS, Settings

# A field is secret by its name when the name ends in one of these words
# (`access_token`, `client_secret`, `Authorization`, `X-Api-Key`), or is an OAuth code.
# Names such as `token_url` or `status_code` are not secret and stay readable.
_SECRET_KEY = re.compile(
    r"(?i)^(?:.*[_-])?(?:token|secret|password|passwd|authorization|api[_-]?key|cookie"
    r"|signing[_-]?key|private[_-]?key|credentials?)$"
    r"|^(?:auth(?:orization)?[_-])?code$"
)
_SECRET_TEXT = [
    # A header's credentials: the value must look like one (a digit, a capital or a symbol),
    # so that prose such as "the bearer token expired" stays as written.
    re.compile(r"([Bb]earer\s+)(?=[\w.~+/=-]*[0-9A-Z~+/=])[\w.~+/=-]{6,}"),
    re.compile(r"(\bBasic\s+)(?=[A-Za-z0-9+/]*[0-9A-Z+/=])[A-Za-z0-9+/]{8,}={0,2}"),
    # `key=value`, `"key": "value"`: an assignment, never the word before the next one.
    re.compile(r"(?i)(\b(?:access|refresh|id)_token[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
    re.compile(r"(?i)(\b(?:client_secret|password)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
    re.compile(r"(?i)([?&]code=)[^\s\"'&]+"),
    # A password in any URL (`scheme://user:PASSWORD@host`), registered or not.
    re.compile(r"(://[^/@\s:]*:)[^/@\s]+(?=@)"),
]
# PEM bodies are matched line by line, so that a fragment quoted in a traceback is masked too.
_PEM_LINE_MIN = 16
# Shorter values are not registered: masking them would hit ordinary words and numbers.
SECRET_MIN = 6
# A value this long that is not made of words is masked wherever it occurs, even glued to other
# text (a repr's `\\n`); any other value only where it stands alone, as a value does.
_ANYWHERE_MIN = 16
# Words, in any of the ways paths join them: `retention`, `ops-alerts`, `Team_Room`.
_WORDS = re.compile(r"(?:[A-Za-z][a-z]*|[A-Z]+)(?:[-_.](?:[A-Za-z][a-z]*|[A-Z]+))*")
# A secret stands alone when no letter, digit, `_` or `-` touches it on either side.
_ALONE = r"(?<![\w-]){}(?![\w-])"
# Parts of a URL's path or query this long that are not words are tokens (`discord://ID/TOKEN`).
_TOKEN_PART_MIN = 8
_URL_SEPARATORS = re.compile(r"[\s,]+")
_known_secrets: dict[str, re.Pattern[str] | None] = {}
MASK = "***"
# Loggers of libraries that are chatty at INFO: their routine lines are not worth a journal line.
QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "apscheduler")


def register_secret(value: str | None) -> None:
    """Mask this value from now on where it occurs as a value: a token or key (long, not words)
    anywhere, anything else only where it stands alone, so a secret never masks part of a
    word. Values shorter than SECRET_MIN are not registered."""
    if not value or len(value) < SECRET_MIN:
        return
    _known_secrets[value] = _matcher(value)
    if "\n" not in value.strip():
        return
    for line in value.splitlines():
        if len(line.strip()) >= _PEM_LINE_MIN and not line.startswith("-----"):
            _known_secrets[line.strip()] = _matcher(line.strip())


def _matcher(value: str) -> re.Pattern[str] | None:
    """None: replace the value wherever it occurs; else the pattern of the value standing alone."""
    if len(value) >= _ANYWHERE_MIN and not _WORDS.fullmatch(value):
        return None
    return re.compile(_ALONE.format(re.escape(value)))


def is_token(part: str) -> bool:
    """Whether a part of a URL is token-shaped: long enough and not made of words."""
    return len(part) >= _TOKEN_PART_MIN and not _WORDS.fullmatch(part)


def register_url(url: str) -> None:
    """Register what is secret in a URL: its password, the token-shaped parts of its path and
    query, the values of secret-named query keys, and then the whole URL. A URL with none of
    these (`json://127.0.0.1:8099/retention`) holds no secret, and nothing of it is registered."""
    parts = urlsplit(url)
    found: list[str] = []
    try:
        password = parts.password
    except ValueError:
        password = None
    if password:
        found += [password, unquote(password)]
    for part in parts.path.split("/"):
        if is_token(unquote(part)):
            found += [part, unquote(part)]
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if _SECRET_KEY.search(key.lstrip("+-:")) or is_token(value):
            found.append(value)
    for secret in found:
        register_secret(secret)
    if found:
        register_secret(url)


def register_urls(text: str) -> list[str]:
    """Register each URL of a list (separated by spaces or commas); returns the URLs."""
    urls = [url for url in _URL_SEPARATORS.split(text) if url]
    for url in urls:
        register_url(url)
    return urls


def register_settings_secrets(settings: Settings) -> None:
    """Register every secret setting that is set (client secret, tokens, keys; alert URLs by
    what in them is secret)."""
    for name in ALL_SECRETS:
        secret = getattr(settings, name)
        if secret is None:
            continue
        if name == "notify":
            register_urls(secret.get_secret_value())
        else:
            register_secret(secret.get_secret_value())


def redact_text(text: str) -> str:
    """Mask known secret values where they occur as values, and credential-shaped fragments."""
    # Longest first, so that a secret containing another one is masked whole.
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            alone = _known_secrets[secret]
            text = text.replace(secret, MASK) if alone is None else alone.sub(MASK, text)
    for pattern in _SECRET_TEXT:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(key, v) for v in value]
    if _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    # Anything else (exceptions, paths, times, models) is rendered to text here, so that
    # no repr() later in the chain can carry a secret past the redaction.
    return redact_text(value if isinstance(value, str) else str(value))


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field, exception text included."""
    for key in list(event_dict):
        if key.startswith("_"):
            continue  # structlog's internals (`_record`, `_from_structlog`) are never rendered
        event_dict[key] = _redact_value("" if key == "event" else key, event_dict[key])
    return event_dict


class _PriorityFormatter(structlog.stdlib.ProcessorFormatter):
    """Lines for the journal's stream: each starts with its syslog priority (`<4>` warning)."""

    def format(self, record: logging.LogRecord) -> str:
        return journal.prefixed(super().format(record), record.levelno)


def journal_entries(socket_path: Path | None) -> Any:
    """A processor that also sends the lines with a journal message id (the checkpoint) to the
    journal's socket as entries with fields of their own; the line itself goes on unchanged."""

    def send(
        _logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        message_id = journal.MESSAGE_IDS.get(str(event_dict.get("message_id")))
        if message_id is None:
            return event_dict
        fields = {
            key: value
            for key, value in event_dict.items()
            if not key.startswith("_") and key not in {"event", "level", "timestamp", "message_id"}
        }
        words = " ".join(f"{key}={value}" for key, value in fields.items())
        level = str(event_dict.get("level", method))
        journal.send(
            {
                "MESSAGE": f"{event_dict.get('event')} {words}",
                "MESSAGE_ID": message_id,
                "PRIORITY": journal.PRIORITY_BY_NAME.get(level, 6),
                "SYSLOG_IDENTIFIER": "retention",
                **{journal.field_name(key): value for key, value in fields.items()},
            },
            socket_path,
        )
        return event_dict

    return send


def configure_logging(
    *,
    json: bool | None = None,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    journal_socket: Path | None = journal.JOURNAL_SOCKET,
) -> None:
    """Route structlog and the standard library through one redacting handler on `stream`.

    `stream` defaults to stderr so that command output on stdout stays machine-readable; the
    daemon passes stdout. JSON is chosen unless the stream is a terminal. Each line starts with
    its syslog priority when the stream is the journal's (`JOURNAL_STREAM`); lines with a
    journal message id also go to `journal_socket` when it exists.
    """
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    stamped: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
    ]
    formatter_class = (
        _PriorityFormatter
        if journal.is_journal_stream(out)
        else structlog.stdlib.ProcessorFormatter
    )
    formatter = formatter_class(
        foreign_pre_chain=stamped,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            journal_entries(journal_socket),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamped,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


RunResult = Literal["ok", "refused", "failed", "halted", "declined"]


@dataclass(frozen=True)
class RunSummary:
    """What one run did, for its single summary line: counts per outcome and the result."""

    run_id: str
    result: RunResult
    started_at: datetime
    finished_at: datetime
    dry_run: bool = False
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration_seconds(self) -> float:
        """Wall time of the run, from the times the caller's clock gave."""
        return (self.finished_at - self.started_at).total_seconds()


def log_run_summary(summary: RunSummary, logger: Any | None = None) -> None:
    """Emit the one canonical line of a run: info when ok, warning when refused, else error."""
    log = logger if logger is not None else structlog.get_logger("retention.run")
    method = {
        "ok": log.info,
        "declined": log.info,
        "refused": log.warning,
        "halted": log.error,
        "failed": log.error,
    }[summary.result]
    method(
        "run finished (dry run)" if summary.dry_run else "run finished",
        run_id=summary.run_id,
        result=summary.result,
        dry_run=summary.dry_run,
        started_at=summary.started_at.isoformat(),
        finished_at=summary.finished_at.isoformat(),
        duration_s=round(summary.duration_seconds, 3),
        counts=dict(summary.counts),
        error=summary.error,
    )
