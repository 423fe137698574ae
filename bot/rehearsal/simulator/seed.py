"""The jobs a seeded simulator starts with. Their ids are fixed so runbooks, the demo and tests can name them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

SOURCE_TENANT_ID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"  # fabrikam (source)
TARGET_TENANT_ID = "a1b2c3d4-e5f6-4789-9abc-def012345678"  # northwind (target, the caller's tenant)

#: wave3_finance: validatePassed 2 hours ago, 3 users, Exchange/ODSP/Teams; ready to migrate.
SEED_VALIDATE_PASSED = "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"
#: wave2_hr: validatePassed 8 days ago; migrate answers 409 (validation expired).
SEED_VALIDATION_EXPIRED = "8e3f1a90-2c4d-4b7e-9f61-0a2b3c4d5e6f"
#: wave4_sales: validateFailed, 1 invalid user of 5; migrate answers 409 (wrong status).
SEED_VALIDATE_FAILED = "c41d7b22-6e0a-4f93-b8d5-17e2a9c0f348"
#: wave5_legal: submitted (never validated).
SEED_SUBMITTED = "2f9a6c13-d8b4-4e07-a5c1-93b0e7d2f465"
#: wave6_engineering: migration inProgress, cutover in 2 days.
SEED_IN_PROGRESS = "7a1e4d58-0b3c-4f2a-9e6d-c5b8a1f0d327"
#: wave1_pilot: completed 10 days ago.
SEED_COMPLETED = "e0b6c9d4-3a7f-4c18-8d25-6f4a0b1e9c72"


@dataclass(frozen=True)
class SeedJob:
    id: str
    display_name: str
    status: str
    summary: str


SEED_JOBS = (
    SeedJob(SEED_VALIDATE_PASSED, "wave3_finance", "validatePassed", "validated 2 h ago: ready to migrate"),
    SeedJob(SEED_VALIDATION_EXPIRED, "wave2_hr", "validatePassed", "validated 8 days ago: migrate gets 409"),
    SeedJob(SEED_VALIDATE_FAILED, "wave4_sales", "validateFailed", "1 invalid user of 5"),
    SeedJob(SEED_SUBMITTED, "wave5_legal", "submitted", "not validated yet"),
    SeedJob(SEED_IN_PROGRESS, "wave6_engineering", "inProgress", "syncing; cutover in 2 days"),
    SeedJob(SEED_COMPLETED, "wave1_pilot", "completed", "finished 10 days ago"),
)


class JobMaker(Protocol):
    """What seeding needs of a simulator: its clock and a way to create a job."""

    clock: Any

    def create_job(self, name: str, status: str, **fields: Any) -> Any: ...


def seed_jobs(sim: JobMaker) -> None:
    """Create :data:`SEED_JOBS` relative to the simulator's clock."""
    now = sim.clock.now()
    ago = lambda **kw: now - timedelta(**kw)  # noqa: E731
    common = {"sourceTenantId": SOURCE_TENANT_ID}
    # Cutover 20 simulated minutes ahead: at the default speed a rehearsal sees it within the half hour.
    sim.create_job(
        "wave3_finance",
        "validatePassed",
        users=3,
        workloads=["Exchange", "ODSP", "Teams"],
        completed_after=now + timedelta(minutes=20),
        validated_at=ago(hours=2),
        created=ago(hours=3),
        job_id=SEED_VALIDATE_PASSED,
        **common,
    )
    sim.create_job(
        "wave2_hr",
        "validatePassed",
        users=4,
        workloads=["Exchange", "ODSP", "Teams", "Meeting"],
        completed_after=now + timedelta(days=3),
        validated_at=ago(days=8),
        created=ago(days=9),
        job_id=SEED_VALIDATION_EXPIRED,
        **common,
    )
    sim.create_job(
        "wave4_sales",
        "validateFailed",
        users=5,
        workloads=["Exchange", "ODSP", "Teams"],
        completed_after=now + timedelta(days=10),
        validated_at=ago(hours=5),
        created=ago(hours=6),
        job_id=SEED_VALIDATE_FAILED,
        invalid_users=1,
        **common,
    )
    sim.create_job(
        "wave5_legal",
        "submitted",
        users=3,
        workloads=["Exchange", "ODSP"],
        completed_after=now + timedelta(days=14),
        created=ago(minutes=30),
        job_id=SEED_SUBMITTED,
        **common,
    )
    sim.create_job(
        "wave6_engineering",
        "inProgress",
        users=6,
        workloads=["Exchange", "ODSP", "Teams", "Meeting"],
        completed_after=now + timedelta(days=2),
        validated_at=ago(hours=20),
        created=ago(days=3),
        job_id=SEED_IN_PROGRESS,
        **common,
    )
    sim.create_job(
        "wave1_pilot",
        "completed",
        users=2,
        workloads=["Exchange", "ODSP", "Teams"],
        completed_after=ago(days=10, hours=2),
        validated_at=ago(days=10),
        created=ago(days=12),
        job_id=SEED_COMPLETED,
        **common,
    )
