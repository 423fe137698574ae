"""Graph JSON batching (``POST /$batch``): reading a batch body and shaping each inner answer.

Graph's documented shape: ``{"requests": [{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}]}`` with at
most 20 requests, ``url`` relative to the version (``/solutions/...`` or ``solutions/...``); the answer is
``{"responses": [{"id", "status", "headers", "body"}]}`` in no guaranteed order, each with its own status (a
throttled request gets its own 429 and ``Retry-After``). A malformed batch, or more than 20 requests, is one 400
for the whole batch. An inner request with a body must say its ``Content-Type``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.rehearsal.simulator.state import SimError

MAX_REQUESTS = 20
BATCH_SEGMENT = "$batch"
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class InnerRequest:
    """One request of a batch: its id, method, path (relative to the version, with a leading ``/``), query,
    lower-cased headers and JSON body (encoded, or empty)."""

    id: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


def parse_batch(payload: Any) -> list[InnerRequest]:
    """The inner requests of a batch body, or a :class:`SimError` 400 for the whole batch."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise SimError(400, "BadRequest", "Invalid batch payload format: the body needs a 'requests' array.")
    items = payload["requests"]
    if not items:
        raise SimError(400, "BadRequest", "Invalid batch payload format: 'requests' is empty.")
    if len(items) > MAX_REQUESTS:
        raise SimError(
            400,
            "BadRequest",
            f"Invalid batch payload format: a batch holds at most {MAX_REQUESTS} requests, not {len(items)}.",
        )
    requests: list[InnerRequest] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            raise SimError(400, "BadRequest", "Invalid batch payload format: every request must be an object.")
        request_id, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(request_id, str) or not request_id:
            raise SimError(400, "BadRequest", "Invalid batch payload format: every request needs a string 'id'.")
        if request_id in seen:
            raise SimError(400, "BadRequest", f"Invalid batch payload format: the id '{request_id}' is repeated.")
        seen.add(request_id)
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise SimError(400, "BadRequest", f"Invalid batch payload format: request '{request_id}' needs a method.")
        if not isinstance(url, str) or not url:
            raise SimError(400, "BadRequest", f"Invalid batch payload format: request '{request_id}' needs a url.")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            raise SimError(400, "BadRequest", f"Invalid batch payload format: headers of '{request_id}'.")
        headers = {str(key).lower(): str(value) for key, value in headers.items()}
        body = b""
        if item.get("body") is not None:
            body = json.dumps(item["body"]).encode()
        path, _, query = url.partition("?")
        requests.append(InnerRequest(request_id, method.upper(), "/" + path.lstrip("/"), query, headers, body))
    return requests


def refusal(request: InnerRequest) -> tuple[int, str, str] | None:
    """Why Graph would refuse this inner request before running it (status, code, message), or None."""
    if request.path.split("?")[0].lower().startswith(("/http:", "/https:")) or "://" in request.path:
        return 400, "BadRequest", "Batch request urls must be relative to the version (e.g. /me), not absolute."
    if request.path.strip("/").lower() == BATCH_SEGMENT:
        return 400, "BadRequest", "A batch can't contain another batch."
    if request.body and "content-type" not in request.headers:
        return 400, "BadRequest", "A request with a body needs a Content-Type header."
    return None


def inner_answer(request_id: str, status: int, headers: list[tuple[str, str]], body: Any) -> dict[str, Any]:
    """One entry of ``responses``."""
    answer_headers = {name: value for name, value in headers}
    if body is not None:
        answer_headers.setdefault("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")
    answer: dict[str, Any] = {"id": request_id, "status": status, "headers": answer_headers}
    if body is not None:
        answer["body"] = body
    return answer
