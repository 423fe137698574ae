"""Log set-up: plain text or one JSON object per line (``LOG_FORMAT``), at ``LOG_LEVEL``.

Every line carries what is known about the work in hand (job id, run id, Slack user, Graph request-id), kept in
context variables: :func:`log_context` binds them for a block, :func:`bind` sets one for the rest of the block
it runs in. Secrets never reach a line: token-shaped strings and ``response_url`` capability URLs (whoever holds
one can post into the channel for 30 minutes; slack_sdk and Bolt log request bodies and webhook URLs at debug
level) are masked by :func:`redact` as a last guard, also with ``-v``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

FIELDS = ("job_id", "run_id", "slack_user", "graph_request_id")
_VARS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"migrate_bot_{name}", default=None) for name in FIELDS
}
_SECRET_RE = re.compile(r"(xox[abpers]-[\w-]+|xapp-[\w-]+|(?i:bearer)\s+[\w.~+/=-]+|eyJ[\w-]+\.[\w-]+\.[\w-]*)")
HANDLER_NAME = "migrate-bot"
QUIET_LOGGERS = ("httpx", "apscheduler", "alembic")


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Bind ``values`` (names from :data:`FIELDS`; None leaves one as it is) for the block, then restore all."""
    saved = {name: var.get() for name, var in _VARS.items()}
    try:
        for name, value in values.items():
            if value is not None:
                _VARS[name].set(str(value))
        yield
    finally:
        for name, var in _VARS.items():
            var.set(saved[name])


def bind(name: str, value: object) -> None:
    """Set one field for the rest of the current context (e.g. Graph's request-id after a response)."""
    _VARS[name].set(None if value is None else str(value))


def current() -> dict[str, str]:
    """The fields bound now."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (``record.job_id`` ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


REDACTED = "<redacted>"
_RESPONSE_URLS = (
    # the key in JSON, a Python dict, or a form body (the value is URL-encoded there)
    (re.compile(r"""(response_url["']?\s*[:=]\s*["']?)[^"'&\s,}]+"""), rf"\g<1>{REDACTED}"),
    (re.compile(r"(https?://hooks\.slack\.com/)\S+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(https?%3A%2F%2Fhooks\.slack\.com%2F)[^&\s\"']+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
)
#: slack_sdk's WebhookClient logs the URL it posts to: here always a response_url.
_WEBHOOK_URL = (re.compile(r"(url: )\S+"), rf"\g<1>{REDACTED}")


def redact(text: str, *, webhook: bool = False) -> str:
    """``text`` without tokens or response_url values; ``webhook``: a line of slack_sdk's WebhookClient."""
    for pattern, replacement in (*_RESPONSE_URLS, _WEBHOOK_URL) if webhook else _RESPONSE_URLS:
        text = pattern.sub(replacement, text)
    return _SECRET_RE.sub(REDACTED, text)


def _webhook(record: logging.LogRecord) -> bool:
    return record.name.startswith("slack_sdk.webhook")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound fields, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), webhook=_webhook(record)),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain format, with the bound fields appended as ``key=value`` and secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{name}={value}" for name in FIELDS if (value := getattr(record, name, None)) is not None)
        return redact(f"{text} [{extra}]" if extra else text, webhook=_webhook(record))


def configure(*, fmt: str = "text", level: str = "INFO", verbose: bool = False, stream: TextIO | None = None) -> None:
    """Log ``fmt`` lines to ``stream`` (stderr), replacing the handler an earlier call installed (only that one)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [old for old in root.handlers if old.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO))
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.NOTSET if verbose else logging.WARNING)
