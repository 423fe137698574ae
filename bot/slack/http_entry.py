"""The HTTP door for Slack's requests: size and signature are checked before anything parses the body.

Bolt reads and parses a request before it checks the signature, with no size limit, so an unsigned body of any
size and shape reached the parsers. Here a body larger than Slack ever sends is refused unread (413), the
signature is checked over the raw bytes (401), and only then does Bolt see the request. Bad input gets a short
4xx answer, never a 500 or a traceback.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

#: Slack's payloads are a few KiB (a modal's state, a message's blocks): far below this.
MAX_BODY_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def _answer(start_response: Callable, status: str, error: str) -> list[bytes]:
    body = json.dumps({"ok": False, "error": error}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ: dict, limit: int) -> bytes | None:
    """The body, at most ``limit`` bytes; None when it is longer (read no further)."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH") or ""
    remaining = int(declared) if declared else limit + 1
    chunks: list[bytes] = []
    size = 0
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK, remaining))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _signed(verifier: SignatureVerifier | None, environ: dict, body: bytes) -> bool:
    if verifier is None:  # no signing secret (Socket Mode): the bot's config refuses HTTP mode without one
        return True
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE")
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeError):  # a timestamp that is not a number
        return False


def guarded(app: WSGIApp, signing_secret: str | None, *, max_body: int = MAX_BODY_BYTES) -> WSGIApp:
    """Wrap ``app`` (Bolt's WSGI handler for ``POST /slack/events``): 405 for other methods, 411/400 for a bad
    ``Content-Length``, 413 above ``max_body``, 401 without a valid signature, 400 when ``app`` fails on a signed
    request it could not parse."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, "405 Method Not Allowed", "method_not_allowed")
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared and not (declared.isascii() and declared.isdigit()):
            return _answer(start_response, "400 Bad Request", "bad_content_length")
        if declared and int(declared) > max_body:
            return _answer(start_response, "413 Content Too Large", "body_too_large")
        body = _read_body(environ, max_body)
        if body is None:
            return _answer(start_response, "413 Content Too Large", "body_too_large")
        if not _signed(verifier, environ, body):
            return _answer(start_response, "401 Unauthorized", "invalid_signature")
        inner = dict(environ, CONTENT_LENGTH=str(len(body)))
        inner["wsgi.input"] = io.BytesIO(body)
        try:
            return app(inner, start_response)
        except Exception as error:  # signed, yet not a payload Bolt can read
            log.warning("signed request not understood: %s", type(error).__name__)
            return _answer(start_response, "400 Bad Request", "invalid_payload")

    return application
