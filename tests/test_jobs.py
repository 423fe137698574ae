"""The job model: tolerant parsing of Graph payloads and the migrate verdict."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import InvalidJobId
from bot.graph.eligibility import migrate_eligibility
from bot.graph.models import (
    JobStatus,
    MigrationJob,
    MigrationTask,
    ServiceStatus,
    parse_job_id,
)

NOW = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)
JOB = {
    "@odata.context": "https://graph.microsoft.com/beta/$metadata#x",
    "id": "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611",
    "displayName": "wave3_finance",
    "jobType": "validate",
    "status": "validatePassed",
    "message": "Validation has completed successfully with no failures.",
    "completeAfterDateTime": "2026-07-20T22:00:00Z",
    "sourceTenantId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    "targetTenantId": "a1b2c3d4-e5f6-4789-9abc-def012345678",
    "resourceType": "users",
    "resources": [],
    "workloads": ["Exchange", "ODSP", "Teams", "Meeting"],
    "createdBy": "migadmin@northwind.onmicrosoft.com",
    "createdDateTime": "2026-07-01T08:00:05.1234567Z",
    "lastUpdatedDateTime": "2026-07-09T08:41:10Z",
    "someFutureField": {"x": 1},
}


def job(**changes):
    return MigrationJob.model_validate({**JOB, **changes})


def test_payload_parses_and_keeps_unknown_fields():
    parsed = job()
    assert parsed.display_name == "wave3_finance"
    assert parsed.status is JobStatus.VALIDATE_PASSED
    assert parsed.complete_after == datetime(2026, 7, 20, 22, tzinfo=UTC)
    assert parsed.model_extra["someFutureField"] == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Submitted", JobStatus.SUBMITTED),
        ("COMPLETEDWITHERRORS", JobStatus.COMPLETED_WITH_ERRORS),
        ("Canceled", JobStatus.CANCELLED),
        ("quantumEntangled", JobStatus.UNKNOWN_FUTURE_VALUE),
        (None, JobStatus.UNKNOWN_FUTURE_VALUE),
    ],
)
def test_status_is_case_insensitive_and_tolerant(raw, expected):
    assert job(status=raw).status is expected


def test_unknown_status_is_shown_as_it_came():
    assert job(status="quantumEntangled").status_label == "quantumEntangled"
    assert job(status="INPROGRESS").status_label == "inProgress"


def test_task_statuses_parse():
    task = MigrationTask.model_validate(
        {
            "id": "u1",
            "currentStatus": [
                {"service": "ODSP", "status": "Failed", "errors": [{"code": "MIGR-003", "message": "retry"}]},
                {"service": "Teams", "status": "somethingNew", "errors": None},
            ],
        }
    )
    assert task.current_status[0].status is ServiceStatus.FAILED
    assert task.current_status[0].errors[0].code == "MIGR-003"
    assert task.current_status[1].status is ServiceStatus.UNKNOWN_FUTURE_VALUE
    assert task.current_status[1].raw_status == "somethingNew"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b61",
        "../../users",
        "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611/migrate",
        "<!channel>",
    ],
)
def test_bad_job_ids_are_refused(text):
    with pytest.raises(InvalidJobId):
        parse_job_id(text)


def test_job_id_is_canonicalised():
    assert parse_job_id(" {5B0C7E2A-91D4-4F0E-A3C2-7D1E9F20B611} ") == "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"


def test_fresh_validation_is_migratable():
    verdict = migrate_eligibility(job(), NOW)
    assert verdict.allowed and not verdict.warning
    assert verdict.validation_age == timedelta(days=1, hours=3, minutes=18, seconds=50)


def test_validation_near_expiry_warns():
    verdict = migrate_eligibility(job(lastUpdatedDateTime="2026-07-04T06:00:00Z"), NOW)
    assert verdict.allowed
    assert "expires in" in verdict.warning


def test_expired_validation_is_refused_with_next_step():
    verdict = migrate_eligibility(job(lastUpdatedDateTime="2026-07-02T11:00:00Z"), NOW)
    assert not verdict.allowed
    assert "older than 7 days" in verdict.reason
    assert "validate" in verdict.next_step


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        ("failed", True),
        ("completedWithErrors", True),
        ("submitted", False),
        ("validateFailed", False),
        ("inProgress", False),
        ("cuttingOver", False),
        ("completed", False),
        ("cancelled", False),
        ("validateInProgress", False),
        ("somethingNew", False),
    ],
)
def test_only_documented_statuses_are_migratable(status, allowed):
    verdict = migrate_eligibility(job(status=status), NOW)
    assert verdict.allowed is allowed
    assert verdict.reason
    if not allowed:
        assert verdict.next_step


def test_timestamps_without_offset_are_utc():
    parsed = job(
        lastUpdatedDateTime="2026-07-09T08:41:10",
        completeAfterDateTime="2026-07-20T22:00:00",
        createdDateTime="2026-07-01T08:00:05.1234567",
    )
    for moment in (parsed.last_updated, parsed.complete_after, parsed.created_at):
        assert moment.utcoffset() == timedelta(0)
    assert parsed.last_updated == datetime(2026, 7, 9, 8, 41, 10, tzinfo=UTC)
    task = MigrationTask.model_validate({"id": "u1", "lastUpdatedDateTime": "2026-07-21T03:12:44"})
    assert task.last_updated.tzinfo is not None
