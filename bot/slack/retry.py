"""Which Slack Web API calls may be sent again after a dropped connection: only those that change nothing.

A connection that drops after Slack applied a ``chat.postMessage`` would post twice if resent, and a resent
``views.open`` finds its ``trigger_id`` already used. Those calls go out once; the workflow finds out what happened
(message metadata, a view's ``external_id``) instead of resending.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

#: Reads, and edits that leave the same result when applied twice (``views.update`` with a hash answers
#: ``hash_conflict`` the second time: the view already shows it).
RESENDABLE_METHODS = frozenset(
    {
        "auth.test",
        "chat.getPermalink",
        "chat.update",
        "conversations.history",
        "conversations.info",
        "conversations.replies",
        "usergroups.users.list",
        "users.info",
        "views.update",
    }
)


def api_method(url: str) -> str:
    """``chat.postMessage`` for ``https://slack.com/api/chat.postMessage?…``."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class IdempotentConnectionRetryHandler(ConnectionErrorRetryHandler):
    """slack_sdk's connection retry, for :data:`RESENDABLE_METHODS` only."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if api_method(request.url) not in RESENDABLE_METHODS:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


#: A 429 asking to wait longer than this is not waited out: the call fails as ``ratelimited`` (nothing was posted)
#: and is tried again later, so one call never outlasts :data:`bot.slack.web.ROOT_POST_DEADLINE`.
MAX_RETRY_AFTER_SECONDS = 30


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, for waits up to :data:`MAX_RETRY_AFTER_SECONDS`."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        wait = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            return float(wait[0] if isinstance(wait, list) else wait) <= MAX_RETRY_AFTER_SECONDS
        except ValueError:
            return True
