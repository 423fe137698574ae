"""Acks first: work that follows an ack waits, briefly, while Slack requests are being answered.

Slack needs its HTTP 200 within 3 s and the benchmark holds the bot to a 50 ms p99 (bench/README.md). An ack
costs well under a millisecond of CPU, but the work submitted after it (views.open, the busy check, the modal
fill) costs a few, and on one GIL it is that work, not the acks, that makes a burst of commands wait. So a
background task starts only when no Slack request is in flight, or once ``max_wait`` has passed since it was
submitted, whichever comes first: a burst is answered first and its work follows a moment later (well inside
the 3 s a ``trigger_id`` lives).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT = 0.05  # seconds a task may be held back behind acks


class AckFirst:
    """Counts Slack requests in flight (:meth:`answering`); :meth:`wait_quiet` holds background work back."""

    def __init__(self, max_wait: float = MAX_WAIT) -> None:
        self.max_wait = max_wait
        self._quiet = threading.Condition()
        self._in_flight = 0

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around answering one Slack request."""
        with self._quiet:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._quiet:
                self._in_flight -= 1
                if not self._in_flight:
                    self._quiet.notify_all()

    def wait_quiet(self, since: float) -> None:
        """Return when no Slack request is in flight, or ``max_wait`` after ``since`` (``time.monotonic()``)."""
        with self._quiet:
            if not self._in_flight:
                return
            self._quiet.wait_for(
                lambda: not self._in_flight, timeout=max(0.0, since + self.max_wait - time.monotonic())
            )
