"""Acks first: work that follows an ack waits, briefly, while Slack requests are being answered.

Slack needs its HTTP 200 within 3 s and the benchmark holds the bot to a 50 ms p99 (bench/README.md). An ack
costs well under a millisecond of CPU, but the work submitted after it (views.open, the busy check, the modal
fill) costs more, and on one GIL it is that work, not the acks, that makes a burst of commands wait. So a
background task starts only once no Slack request has been in flight for ``quiet`` seconds (a request stream
with short gaps is still a burst: releasing everything in every gap made a stampede), or once ``max_wait`` has
passed since it was submitted, whichever comes first: a burst is answered first and its work follows a moment
later (well inside the 3 s a ``trigger_id`` lives). Measured in bench/README.md, scenario 4.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT = 0.1  # seconds a task may be held back behind acks
QUIET = 0.02  # seconds without a Slack request in flight that count as "quiet" (senders pause between requests)


class AckFirst:
    """Counts Slack requests in flight (:meth:`answering`); :meth:`wait_quiet` holds background work back."""

    def __init__(self, max_wait: float = MAX_WAIT, quiet: float = QUIET) -> None:
        self.max_wait = max_wait
        self.quiet = quiet
        self._changed = threading.Condition()
        self._in_flight = 0
        self._last_answered = float("-inf")  # monotonic time the last request was answered

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around answering one Slack request."""
        with self._changed:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._last_answered = time.monotonic()
                if not self._in_flight:
                    self._changed.notify_all()

    def wait_quiet(self, since: float) -> None:
        """Return once no Slack request has been in flight for :attr:`quiet` seconds, or :attr:`max_wait` after
        ``since`` (``time.monotonic()``), whichever comes first."""
        deadline = since + self.max_wait
        with self._changed:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                if not self._in_flight:
                    quiet_at = self._last_answered + self.quiet
                    if now >= quiet_at:
                        return
                    self._changed.wait(min(quiet_at, deadline) - now)
                else:
                    self._changed.wait(deadline - now)
