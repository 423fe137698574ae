"""The bot's own worker pool: slow work (Graph calls, posting) runs here, never in a Slack listener."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class Workers:
    """A thread pool whose tasks log their exceptions instead of losing them, and run in the submitter's context
    (the log fields bound by :func:`bot.ops.logs.log_context` follow the work)."""

    def __init__(self, max_workers: int = 16, name: str = "work") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        def logged() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__qualname__", fn))
                raise

        return self._pool.submit(contextvars.copy_context().run, logged)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
