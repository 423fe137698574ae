"""User principal names for the object ids Graph lists (job tasks), so people see ``ada@contoso.com``.

``GET /users/{id}?$select=id,userPrincipalName,displayName`` (delegated: User.ReadBasic.All; application:
User.Read.All, as "Get a user" accepts no application User.ReadBasic.All) for the unknown ids, through
:meth:`bot.graph.client.GraphClient.get_users`: 20 to a Graph JSON ``$batch``, one by one where batching is
unavailable. Answers are kept in a bounded LRU cache.

Without the permission Graph answers 403: the directory logs one line and lists ids only for a while (then tries
again, so granting the permission later needs no restart). An id Graph does not know (404) is remembered as having
no name; any other failure leaves that id without a name this time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from bot.errors import CredentialError, GraphAuthError, GraphError, GraphNotFound
from bot.graph.client import BATCH_SIZE

log = logging.getLogger(__name__)

CACHE_SIZE = 5000
DENIED_PAUSE_SECONDS = 3600.0
PERMISSION = {"delegated": "User.ReadBasic.All (delegated)", "application": "User.Read.All (application)"}


class UserSource(Protocol):
    def get_users(self, user_ids: Iterable[str]) -> Mapping[str, dict[str, Any] | GraphError]: ...


class UserDirectory:
    """Object id -> user principal name, cached (at most ``cache_size`` names, least recently used go first)."""

    def __init__(
        self,
        graph: UserSource,
        *,
        cache_size: int = CACHE_SIZE,
        denied_pause: float = DENIED_PAUSE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        permission: str = PERMISSION["delegated"],
    ) -> None:
        self.graph = graph
        self.permission = permission
        self.cache_size = cache_size
        self.denied_pause = denied_pause
        self.monotonic = monotonic
        self._names: OrderedDict[str, str | None] = OrderedDict()  # None: Graph does not know the id
        self._guard = threading.Lock()
        self._denied_until: float | None = None
        self._told = False

    def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """The UPN of each id that has one (missing ids: unknown, no permission, or Graph failed)."""
        wanted = list(dict.fromkeys(user_id.lower() for user_id in user_ids))
        known: dict[str, str] = {}
        missing: list[str] = []
        with self._guard:
            for user_id in wanted:
                if user_id in self._names:
                    self._names.move_to_end(user_id)
                    if self._names[user_id] is not None:
                        known[user_id] = self._names[user_id]  # type: ignore[assignment]
                else:
                    missing.append(user_id)
        if missing and not self._is_denied():
            for user_id, name in self._fetch_many(missing).items():
                if name:
                    known[user_id] = name
        return known

    def _fetch_many(self, user_ids: list[str]) -> dict[str, str | None]:
        """Batch by batch, stopping at a 403 (the rest would be refused too)."""
        names: dict[str, str | None] = {}
        for start in range(0, len(user_ids), BATCH_SIZE):
            if self._is_denied():
                break
            names.update(self._fetch_batch(user_ids[start : start + BATCH_SIZE]))
        return names

    def _fetch_batch(self, user_ids: list[str]) -> dict[str, str | None]:
        try:
            answers = self.graph.get_users(user_ids)
        except (GraphError, CredentialError) as error:
            log.debug("%d users not looked up: %s", len(user_ids), error)
            return {}
        names: dict[str, str | None] = {}
        for user_id in user_ids:
            answer = answers.get(user_id)
            if isinstance(answer, dict):
                name = answer.get("userPrincipalName") or answer.get("displayName")
                names[user_id] = str(name) if name else None
                self._remember(user_id, names[user_id])
            elif isinstance(answer, GraphNotFound):
                self._remember(user_id, None)
            elif isinstance(answer, GraphAuthError) and answer.status_code == 403:
                self._denied(answer)
            else:
                log.debug("user %s not looked up: %s", user_id, answer)
        return names

    def _is_denied(self) -> bool:
        with self._guard:
            return self._denied_until is not None and self.monotonic() < self._denied_until

    def _remember(self, user_id: str, name: str | None) -> None:
        with self._guard:
            self._names[user_id] = name
            self._names.move_to_end(user_id)
            while len(self._names) > self.cache_size:
                self._names.popitem(last=False)

    def _denied(self, error: GraphAuthError) -> None:
        with self._guard:
            self._denied_until = self.monotonic() + self.denied_pause
            told, self._told = self._told, True
        if not told:
            log.warning(
                "Graph refused to read users (HTTP 403%s): lists show object ids only; grant the app %s to see "
                "user principal names",
                f" {error.code}" if error.code else "",
                self.permission,
            )
