"""One rule for "did the action take effect", used by the Graph client after an unclear answer and by the
reconcile of runs left in STARTING."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.graph.models import MigrationJob, took_effect

BEFORE = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def job(status, *, updated=BEFORE + timedelta(minutes=5), job_type=None):
    data = {"id": "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611", "status": status, "lastUpdatedDateTime": updated}
    if job_type:
        data["jobType"] = job_type
    return MigrationJob.model_validate(data)


@pytest.mark.parametrize(
    ("action", "after", "came_from_elsewhere", "expected"),
    [
        ("migrate", job("inProgress", updated=BEFORE), True, True),  # a running status the job was not in
        ("migrate", job("inProgress", updated=BEFORE), False, False),  # was running already, nothing newer
        ("migrate", job("inProgress"), False, True),  # ... but changed since
        ("migrate", job("validatePassed", job_type="Migrate"), False, True),  # type became migrate, newer
        ("migrate", job("validatePassed", updated=BEFORE, job_type="migrate"), True, False),
        ("validate", job("validatePassed", updated=BEFORE), False, False),  # the old (expired) result
        ("validate", job("validatePassed"), False, True),  # a newer result
        ("cancel", job("pendingCancel", updated=BEFORE), True, True),
        ("cancel", job("inProgress"), True, False),
    ],
)
def test_one_rule_for_every_action(action, after, came_from_elsewhere, expected):
    assert took_effect(action, after, since=BEFORE, came_from_elsewhere=came_from_elsewhere) is expected


def test_without_a_previous_read_any_update_is_newer():
    assert took_effect("validate", job("validateFailed"), since=None, came_from_elsewhere=False)
    assert not took_effect("validate", job("validateFailed", updated=None), since=None, came_from_elsewhere=False)
