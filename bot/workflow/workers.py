"""The bot's own worker pool: slow work (Graph calls, posting) runs here, never in a Slack listener."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bot.workflow.ackfirst import AckFirst

log = logging.getLogger(__name__)

#: Slack's trigger_id lives 3 s: queued work older than this can no longer open a modal for the person who asked.
TRIGGER_TTL_SECONDS = 3.0


class Workers:
    """A thread pool whose tasks log their exceptions instead of losing them, run in the submitter's context (the
    log fields bound by :func:`bot.ops.logs.log_context` follow the work), and that drains on shutdown. With
    ``yield_to``, a task starts only when no Slack request is being answered, or shortly after it was submitted
    (see :mod:`.ackfirst`)."""

    def __init__(self, max_workers: int = 16, name: str = "work", *, yield_to: AckFirst | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._name = name
        self._yield_to = yield_to
        self._idle = threading.Condition()
        self._pending = 0  # submitted and not yet done (queued or running)
        self._dropped = 0
        self._drain_deadline: float | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        queued_at = time.monotonic()

        def logged() -> Any:
            try:
                if self._yield_to is not None:
                    self._yield_to.wait_quiet(queued_at)
                if self._expired(queued_at):
                    log.debug("shutting down: dropped queued %s", getattr(fn, "__qualname__", fn))
                    return None
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__qualname__", fn))
                raise
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        with self._idle:
            self._pending += 1
        return self._pool.submit(contextvars.copy_context().run, logged)

    def _expired(self, queued_at: float) -> bool:
        """While draining: work that has not started is dropped once its Slack trigger expired or the grace ran out."""
        deadline = self._drain_deadline
        if deadline is None:
            return False
        now = time.monotonic()
        if now - queued_at <= TRIGGER_TTL_SECONDS and now < deadline:
            return False
        with self._idle:
            self._dropped += 1
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing submitted is queued or running (True), or ``timeout`` seconds passed (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def drain(self, grace: float) -> bool:
        """Stop for shutdown: tasks already running finish, queued ones run only while their Slack trigger is fresh
        and the grace lasts, the rest are dropped (counted in the log). True when everything ended within ``grace``."""
        self._drain_deadline = time.monotonic() + grace
        with self._idle:
            done = self._idle.wait_for(lambda: self._pending == 0, timeout=grace)
            dropped, left = self._dropped, self._pending
        if dropped:
            log.warning(
                "shutting down: dropped %d queued %s task(s): their Slack trigger had expired or the grace ran out "
                "(the person can ask again)",
                dropped,
                self._name,
            )
        if not done:
            log.warning("shutting down: %d %s task(s) still running after %.1f s", left, self._name, grace)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return done

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
