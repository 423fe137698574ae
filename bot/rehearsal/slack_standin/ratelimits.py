"""Slack's rate limits for the stand-in: on by default, raised explicitly by tests that need bursts.

Source: ``shared/reference/slack-platform.md`` section 6 and api.slack.com/apis/rate-limits. Limits apply per method
(and app and workspace) in one-minute windows by tier: Tier 1 about 1 call a minute, Tier 2 20, Tier 3 50, Tier 4
100, "a small amount of burst behaviour is tolerated"; ``chat.postMessage`` is special: about one message per
second per channel, short bursts allowed. Over the limit Slack answers HTTP 429 with ``Retry-After`` seconds.

Modelled as token buckets (one per method, one per channel for ``chat.postMessage``). Choices: a bucket holds a
minute's allowance (Tier 1: 3, a small burst), the per-channel bucket holds 3 messages; the workspace-wide
``chat.postMessage`` ceiling and the "special" methods (``auth.test``, ``chat.getPermalink``) are not limited.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

#: tier -> (calls per second, burst).
TIERS: dict[int, tuple[float, float]] = {1: (1 / 60, 3), 2: (20 / 60, 20), 3: (50 / 60, 50), 4: (100 / 60, 100)}
#: The tier of each method the stand-in serves (api.slack.com/methods, "Rate limits").
METHOD_TIERS = {
    "apps.connections.open": 1,
    "usergroups.users.list": 2,
    "chat.update": 3,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "chat.postEphemeral": 4,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
    "users.info": 4,
}
#: chat.postMessage per channel: (messages per second, burst).
PER_CHANNEL: tuple[float, float] = (1.0, 3)


class RateLimiter:
    """Token buckets on the stand-in's clock. :meth:`retry_after` answers None (go ahead) or the seconds to wait."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.enabled = True
        self.tiers = dict(TIERS)
        self.per_channel: tuple[float, float] | None = PER_CHANNEL
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._lock = threading.Lock()

    def configure(
        self,
        *,
        enabled: bool | None = None,
        per_channel: tuple[float, float] | None | bool = True,
        tiers: dict[int, tuple[float, float]] | None = None,
    ) -> None:
        """Change limits (``per_channel=None`` switches the channel limit off; ``True`` keeps it); buckets refill."""
        with self._lock:
            if enabled is not None:
                self.enabled = enabled
            if per_channel is not True:
                self.per_channel = per_channel  # type: ignore[assignment]
            if tiers is not None:
                self.tiers.update(tiers)
            self._buckets.clear()

    def method(self, method: str) -> int | None:
        """Take one call of ``method`` from its tier's bucket."""
        tier = METHOD_TIERS.get(method)
        if tier is None or not self.enabled:
            return None
        return self._take(f"method:{method}", self.tiers[tier])

    def post(self, channel_id: str) -> int | None:
        """Take one ``chat.postMessage`` to ``channel_id``."""
        if not self.enabled or self.per_channel is None:
            return None
        return self._take(f"channel:{channel_id}", self.per_channel)

    def _take(self, key: str, rate: tuple[float, float]) -> int | None:
        per_second, burst = rate
        with self._lock:
            now = self.clock()
            tokens, updated = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - updated) * per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1, math.ceil((1.0 - tokens) / per_second))
            self._buckets[key] = (tokens - 1.0, now)
            return None
