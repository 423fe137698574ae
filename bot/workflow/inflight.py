"""Which runs' root messages are being posted right now in this process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    """Run ids whose root message post is in flight (the flow posting it, slack_sdk perhaps sleeping out a 429).

    The poller treats a root whose answer is pending as possibly lost and posts it itself after looking for it;
    while the flow's own post is still in flight that look finds nothing, and the root would be posted twice."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, run_id: int) -> Iterator[None]:
        with self._lock:
            self._ids.add(run_id)
        try:
            yield
        finally:
            with self._lock:
                self._ids.discard(run_id)

    def __contains__(self, run_id: object) -> bool:
        with self._lock:
            return run_id in self._ids
