"""``migrate-bot audit``: export the append-only audit trail as CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.config import Settings
from bot.errors import UsageError
from bot.factories import build_store
from bot.graph.models import parse_job_id
from bot.store import AuditEvent, AuditQuery

COLUMNS = ["id", "at", "job_id", "run_id", "event", "actor", "graph_request_id", "detail"]


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` or an ISO 8601 time; naive times are UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since: {text!r} is not a date (use YYYY-MM-DD or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def write_events(events: list[AuditEvent], fmt: str, out: TextIO) -> None:
    rows = [event.as_dict() for event in events]
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "detail": json.dumps(row["detail"], sort_keys=True)})


def audit_command(args: Any, settings: Settings, out: TextIO | None = None) -> int:
    job_id = None
    if args.job:
        try:
            job_id = parse_job_id(args.job)
        except ValueError as error:
            raise UsageError(f"--job: {error}") from None
    since = parse_since(args.since) if args.since else None
    store = build_store(settings)
    write_events(
        store.audit_events(AuditQuery(job_id=job_id, since=since, access=getattr(args, "access", False))),
        args.format,
        out or sys.stdout,
    )
    return 0
