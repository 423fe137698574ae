"""User principal names for the object ids Graph lists (job tasks), so people see ``ada@contoso.com``.

``GET /users/{id}?$select=id,userPrincipalName,displayName`` (delegated: User.ReadBasic.All; application:
User.Read.All, as "Get a user" accepts no application User.ReadBasic.All), one
request per unknown id on a small bounded pool, answers kept in a bounded LRU cache. Graph's JSON ``$batch``
(up to 20 requests per call) would replace the pool in :meth:`UserDirectory._fetch_many`.

Without the permission Graph answers 403: the directory logs one line and lists ids only for a while (then tries
again, so granting the permission later needs no restart). Any other failure leaves that id without a name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from bot.errors import CredentialError, GraphAuthError, GraphError, GraphNotFound

log = logging.getLogger(__name__)

CACHE_SIZE = 5000
LOOKUP_THREADS = 4
DENIED_PAUSE_SECONDS = 3600.0
PERMISSION = {"delegated": "User.ReadBasic.All (delegated)", "application": "User.Read.All (application)"}


class UserSource(Protocol):
    def get_user(self, user_id: str) -> dict[str, Any]: ...


class UserDirectory:
    """Object id -> user principal name, cached (at most ``cache_size`` names, least recently used go first)."""

    def __init__(
        self,
        graph: UserSource,
        *,
        cache_size: int = CACHE_SIZE,
        threads: int = LOOKUP_THREADS,
        denied_pause: float = DENIED_PAUSE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        permission: str = PERMISSION["delegated"],
    ) -> None:
        self.graph = graph
        self.permission = permission
        self.cache_size = cache_size
        self.threads = threads
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
            denied = self._denied_until is not None and self.monotonic() < self._denied_until
        if missing and not denied:
            for user_id, name in self._fetch_many(missing).items():
                if name:
                    known[user_id] = name
        return known

    def _fetch_many(self, user_ids: list[str]) -> dict[str, str | None]:
        if len(user_ids) == 1:
            pairs = [(user_ids[0], self._fetch(user_ids[0]))]
        else:
            with ThreadPoolExecutor(min(self.threads, len(user_ids)), thread_name_prefix="upn") as pool:
                pairs = list(zip(user_ids, pool.map(self._fetch, user_ids)))
        return dict(pairs)

    def _fetch(self, user_id: str) -> str | None:
        with self._guard:
            if self._denied_until is not None and self.monotonic() < self._denied_until:
                return None
        try:
            user = self.graph.get_user(user_id)
        except GraphNotFound:
            self._remember(user_id, None)
            return None
        except GraphAuthError as error:
            if error.status_code == 403:
                self._denied(error)
            return None
        except (GraphError, CredentialError) as error:
            log.debug("user %s not looked up: %s", user_id, error)
            return None
        name = user.get("userPrincipalName") or user.get("displayName")
        name = str(name) if name else None
        self._remember(user_id, name)
        return name

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
