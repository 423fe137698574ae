"""OData query options on the simulator's collections, as Graph documents them for list endpoints.

Sources: Graph's "Use query parameters" page (``$top`` sets the page size, ``$count=true`` adds ``@odata.count``,
``$skiptoken`` pages, an unsupported option is a 400 ``BadRequest``) and the reference's section 1 (the list page
says "some OData query parameters" are supported; the SDK's ``$count`` segment answers a text/plain integer).
Choices where the docs say nothing: ``$filter`` understands ``status eq '<value>'`` (joined by ``or``, compared
case-insensitively like the reference's enum tolerance) on jobs only; ``$orderby`` takes one or more of the
properties in :data:`ORDERABLE` with ``asc``/``desc``; ``$select`` keeps ``id`` besides the named properties;
``$top`` is 1..999; ``$expand``, ``$search``, ``$skip``, ``$format`` and any other ``$`` option are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from bot.graph.models import JobStatus
from bot.rehearsal.simulator.state import SimError

SUPPORTED = frozenset({"$top", "$select", "$filter", "$orderby", "$count", "$skiptoken"})
ORDERABLE = {
    "jobs": ("createdDateTime", "lastUpdatedDateTime", "displayName", "status", "completeAfterDateTime"),
    "tasks": ("id", "lastUpdatedDateTime"),
}
_FILTER_TERM = re.compile(r"^\s*status\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
MAX_TOP = 999


def _bad(message: str) -> SimError:
    return SimError(400, "BadRequest", message)


@dataclass
class Query:
    """The parsed options of one request (``$skiptoken`` is left to the pager)."""

    top: int | None = None
    select: list[str] | None = None
    statuses: set[str] | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    count: bool = False
    carried: dict[str, str] = field(default_factory=dict)  # options a nextLink repeats

    def apply(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Filter and order (``$select`` is applied per page, by :meth:`shape`)."""
        if self.statuses is not None:
            items = [item for item in items if JobStatus.parse(item.get("status")).value.lower() in self.statuses]
        for name, descending in reversed(self.orderby):
            items = sorted(
                items, key=lambda item: (item.get(name) is None, str(item.get(name) or "")), reverse=descending
            )
        return items

    def shape(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.select is None:
            return item
        return {key: value for key, value in item.items() if key == "id" or key in self.select}

    def next_query(self, skiptoken: str) -> str:
        return urlencode({**self.carried, "$skiptoken": skiptoken}, safe="$,'() ").replace(" ", "%20")


def parse(query_string: str, kind: str, properties: set[str], *, allowed: frozenset[str] = SUPPORTED) -> Query:
    """Parse ``query_string`` for a collection of ``kind`` (``jobs``/``tasks``) whose items have ``properties``.

    Raises a 400 :class:`SimError` for an unsupported or invalid option."""
    query = Query()
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        if not name.startswith("$"):
            continue  # Graph ignores non-OData parameters
        if name not in allowed:
            raise _bad(f"Query option '{name}' is not supported on this resource.")
        if name != "$skiptoken":
            query.carried[name] = value
        if name == "$top":
            if not value.isdigit() or not 1 <= int(value) <= MAX_TOP:
                raise _bad(f"Invalid value '{value}' for $top: an integer from 1 to {MAX_TOP}.")
            query.top = int(value)
        elif name == "$select":
            names = [part.strip() for part in value.split(",") if part.strip()]
            unknown = [part for part in names if part not in properties]
            if not names or unknown:
                raise _bad(f"Could not find a property named '{(unknown or [value])[0]}' to $select.")
            query.select = names
        elif name == "$filter":
            if kind != "jobs":
                raise _bad("$filter is not supported on this collection.")
            statuses = set()
            for term in re.split(r"\s+or\s+", value, flags=re.IGNORECASE):
                match = _FILTER_TERM.match(term)
                if match is None:
                    raise _bad(f"Invalid filter clause: only status eq '<value>' is supported, not '{value}'.")
                statuses.add(JobStatus.parse(match.group(1)).value.lower())
            query.statuses = statuses
        elif name == "$orderby":
            for part in value.split(","):
                words = part.split()
                if not words or len(words) > 2 or words[0] not in ORDERABLE[kind]:
                    raise _bad(f"Invalid $orderby '{value}': order by one of {', '.join(ORDERABLE[kind])}.")
                direction = words[1].lower() if len(words) == 2 else "asc"
                if direction not in ("asc", "desc"):
                    raise _bad(f"Invalid $orderby direction '{words[1]}': asc or desc.")
                query.orderby.append((words[0], direction == "desc"))
        elif name == "$count":
            if value.lower() not in ("true", "false"):
                raise _bad(f"Invalid value '{value}' for $count: true or false.")
            query.count = value.lower() == "true"
    return query
