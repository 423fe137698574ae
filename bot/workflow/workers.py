"""The bot's own worker pool: slow work (Graph calls, posting) runs here, never in a Slack listener."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bot.workflow.ackfirst import AckFirst

log = logging.getLogger(__name__)


class Workers:
    """A thread pool whose tasks log their exceptions instead of losing them; with ``yield_to``, a task starts
    only when no Slack request is being answered, or shortly after it was submitted (see :mod:`.ackfirst`)."""

    def __init__(self, max_workers: int = 16, name: str = "work", *, yield_to: AckFirst | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._yield_to = yield_to

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        submitted = time.monotonic()

        def logged() -> Any:
            if self._yield_to is not None:
                self._yield_to.wait_quiet(submitted)
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__qualname__", fn))
                raise

        return self._pool.submit(logged)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
