"""Logging for the CLI: one format, and ``response_url`` capability URLs never written (even with ``-v``).

A ``response_url`` lets whoever holds it post into the channel for 30 minutes; slack_sdk and Bolt log request
bodies and webhook URLs at debug level.
"""

from __future__ import annotations

import logging
import re
from typing import IO

REDACTED = "[redacted]"
_PATTERNS = (
    # the key in JSON, a Python dict, or a form body (the value is URL-encoded there)
    (re.compile(r"""(response_url["']?\s*[:=]\s*["']?)[^"'&\s,}]+"""), rf"\g<1>{REDACTED}"),
    (re.compile(r"(https?://hooks\.slack\.com/)\S+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(https?%3A%2F%2Fhooks\.slack\.com%2F)[^&\s\"']+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
)
#: slack_sdk's WebhookClient logs the URL it posts to: here always a response_url.
_WEBHOOK = (re.compile(r"(url: )\S+"), rf"\g<1>{REDACTED}")


def redact(text: str, *, webhook: bool = False) -> str:
    """``text`` without response_url values; ``webhook``: a message of slack_sdk's WebhookClient."""
    for pattern, replacement in (*_PATTERNS, _WEBHOOK) if webhook else _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactResponseUrls(logging.Filter):
    """A handler filter that rewrites each record's message without response_url values."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, webhook=record.name.startswith("slack_sdk.webhook"))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(verbose: bool, stream: IO[str] | None = None, *, force: bool = False) -> logging.Handler | None:
    """Like ``logging.basicConfig``: log to ``stream`` (stderr) at INFO, or DEBUG with ``verbose``, unless the root
    logger already has handlers (``force`` adds one anyway); the handler redacts response_url values."""
    root = logging.getLogger()
    if root.handlers and not force:
        return None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactResponseUrls())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
