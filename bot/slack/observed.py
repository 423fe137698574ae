"""A slack_sdk ``WebClient`` that reports each Web API call's latency and failures to a hook (metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

#: (method, seconds, error code or None)
CallHook = Callable[[str, float, "str | None"], None]


class ObservedWebClient(WebClient):
    """``WebClient`` whose every call (after slack_sdk's own retries) is reported to ``on_call``."""

    def __init__(self, *args: Any, on_call: CallHook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_call = on_call

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        if self._on_call is None:
            return super().api_call(api_method, **kwargs)
        started = time.perf_counter()
        error: str | None = None
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as failure:
            error = str(failure.response.get("error") or f"http_{failure.response.status_code}")
            raise
        except Exception as failure:
            error = type(failure).__name__
            raise
        finally:
            self._on_call(api_method, time.perf_counter() - started, error)
