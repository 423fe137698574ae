"""The Graph simulator over real HTTP: Graph's shapes, the state machine on a simulated clock, faults, control."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.rehearsal.simulator import GraphSimulator, SimClock, SimOptions
from bot.rehearsal.simulator.seed import (
    SEED_COMPLETED,
    SEED_IN_PROGRESS,
    SEED_JOBS,
    SEED_SUBMITTED,
    SEED_VALIDATE_FAILED,
    SEED_VALIDATE_PASSED,
    SEED_VALIDATION_EXPIRED,
)
from tests.support.graph import TOKEN, sim, start_simulator  # noqa: F401

JOBS = "/solutions/migrations/crossTenantMigrationJobs"
ROOT = Path(__file__).resolve().parents[1]
EXO = {"targetDeliveryDomain": "northwind.onmicrosoft.com", "sourceEndpoint": "T2T-Fabrikam"}


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text[:26] + "+00:00")


def status(http, job_id: str) -> str:
    response = http.get(f"{JOBS}/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def services(http, job_id: str) -> list[dict[str, str]]:
    """Per user: {service: status}."""
    return [
        {s["service"]: s["status"] for s in task["currentStatus"]}
        for task in http.get(f"{JOBS}/{job_id}/users").json()["value"]
    ]


def new_job(sim, name="wave9_ops", users=None, **extra) -> dict:
    body = {
        "displayName": name,
        "completeAfterDateTime": (sim.clock.now() + timedelta(days=3)).isoformat(),
        "sourceTenantId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "resourceType": "Users",
        "resources": users or [str(uuid.uuid4()) for _ in range(2)],
        "workloads": ["Exchange", "Teams"],
        "exchangeSettings": EXO,
    }
    body.update(extra)
    return body


# Graph's shapes
def test_seeded_jobs_have_fixed_ids_and_the_documented_statuses(sim, http):
    body = http.get(JOBS).json()
    by_id = {job["id"]: job for job in body["value"]}
    assert {seed.id: seed.status for seed in SEED_JOBS} == {i: by_id[i]["status"] for i in by_id}
    assert body["@odata.context"].endswith("/beta/$metadata#solutions/migrations/crossTenantMigrationJobs")
    ready = by_id[SEED_VALIDATE_PASSED]
    assert (ready["displayName"], ready["jobType"], ready["resources"]) == ("wave3_finance", "validate", [])
    assert ready["workloads"] == ["Exchange", "ODSP", "Teams"]
    age = sim.clock.now() - parse(by_id[SEED_VALIDATION_EXPIRED]["lastUpdatedDateTime"])
    assert timedelta(days=7) < age < timedelta(days=9)
    invalid = http.get(f"{JOBS}/{SEED_VALIDATE_FAILED}/users").json()["value"]
    assert sum(any(s["status"] == "invalid" for s in t["currentStatus"]) for t in invalid) == 1
    assert GraphSimulator(clock=SimClock(speed=0), seed=False).state.job_ids() == []


def test_errors_have_graphs_shape_and_correlation_ids(http):
    sent = str(uuid.uuid4())
    response = http.get(f"{JOBS}/{uuid.uuid4()}", headers={"client-request-id": sent})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "itemNotFound"
    assert error["innerError"]["client-request-id"] == sent == response.headers["client-request-id"]
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert error["innerError"]["date"]
    other = http.get(f"{JOBS}/{SEED_SUBMITTED}")
    assert other.headers["request-id"] != response.headers["request-id"]
    assert uuid.UUID(other.headers["client-request-id"])  # generated when none was sent


@pytest.mark.parametrize("path", [f"{JOBS}/{{id}}", f"{JOBS}/{{id}}/migrate", f"{JOBS}/{{id}}/users"])
def test_unknown_job_is_404_on_every_operation(http, path):
    url = path.format(id=uuid.uuid4())
    response = http.post(url) if url.endswith("migrate") else http.get(url)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "itemNotFound")


def test_unsupported_methods_and_paths(http):
    assert http.put(f"{JOBS}/{SEED_SUBMITTED}", json={}).status_code == 405
    response = http.post(f"{JOBS}/{SEED_SUBMITTED}/users", json={})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert http.post(f"{JOBS}/validate", json={}).status_code == 405  # the legacy collection validate
    assert http.get("/solutions/migrations/nothingHere").status_code == 400
    assert http.get("/solutions/migrations").json()["id"] == "migrations"


def test_authentication():
    simulator = start_simulator(token=None)
    try:
        anonymous = httpx.get(f"{simulator.base_url}{JOBS}")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert httpx.get(f"{simulator.base_url}{JOBS}", headers={"Authorization": "Bearer"}).status_code == 401
        opaque = httpx.get(f"{simulator.base_url}{JOBS}", headers={"Authorization": "Bearer any"})
        assert opaque.status_code == 401 and opaque.json()["error"]["code"] == "InvalidAuthenticationToken"
        simulator.trust_opaque_tokens = True  # explicit: tests whose tokens come from a fake authority
        assert httpx.get(f"{simulator.base_url}{JOBS}", headers={"Authorization": "Bearer any"}).status_code == 200
    finally:
        simulator.stop()


def test_a_configured_token_is_the_only_one_accepted(sim):
    assert httpx.get(f"{sim.base_url}{JOBS}", headers={"Authorization": "Bearer other"}).status_code == 401
    assert httpx.get(f"{sim.base_url}{JOBS}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(f"{sim.url}/_sim/jobs").status_code == 401  # the control API too
    recorded = sim.requests[-1].headers["authorization"]
    assert TOKEN not in recorded and recorded.startswith("Bearer <redacted")


def test_deny_answers_403_for_that_operation_only(sim, http):
    sim.deny("migrate")
    refused = http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "accessDenied")
    assert status(http, SEED_VALIDATE_PASSED) == "validatePassed"
    sim.deny("migrate", denied=False)
    assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate").status_code == 200
    with pytest.raises(ValueError):
        sim.deny("teleport")


# Create, update, delete
def test_create_returns_a_submitted_job(sim, http):
    body = new_job(sim)
    response = http.post(JOBS, json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["status"], job["jobType"], job["message"], job["displayName"]) == (
        "submitted",
        "validate",
        "",
        "wave9_ops",
    )
    assert job["resources"] == body["resources"] and job["targetTenantId"]
    assert response.headers["Location"].endswith(f"{JOBS}/{job['id']}")
    assert http.get(f"{JOBS}/{job['id']}").json()["status"] == "submitted"
    assert len(http.get(f"{JOBS}/{job['id']}/users").json()["value"]) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"displayName": ""},
        {"completeAfterDateTime": "soon"},
        {"sourceTenantId": "fabrikam"},
        {"resourceType": "groups"},
        {"resources": []},
        {"resources": ["not-a-guid"]},
        {"workloads": ["Yammer"]},
        {"exchangeSettings": None},
        {"completeAfterDateTime": "2020-01-01T00:00:00Z"},
    ],
)
def test_create_rejects_invalid_fields_with_400(sim, http, change):
    response = http.post(JOBS, json=new_job(sim, **change))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalidRequest"


def test_create_conflicts(sim, http):
    assert http.post(JOBS, json=new_job(sim, "wave3_finance")).status_code == 409  # seeded name
    busy_user = http.get(f"{JOBS}/{SEED_SUBMITTED}/users").json()["value"][0]["id"]
    response = http.post(JOBS, json=new_job(sim, "wave10", users=[busy_user]))
    assert response.status_code == 409 and "active batch 'wave5_legal'" in response.json()["error"]["message"]


def test_create_limits_the_batch_size():
    simulator = start_simulator(seed=False, options=SimOptions(max_users_per_job=100))
    try:
        body = new_job(simulator, users=[str(uuid.uuid4()) for _ in range(101)])
        response = httpx.post(f"{simulator.base_url}{JOBS}", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 400 and "at most 100" in response.json()["error"]["message"]
    finally:
        simulator.stop()


def test_patch_changes_only_the_date_and_only_before_cutover(sim, http):
    before = http.get(f"{JOBS}/{SEED_SUBMITTED}").json()
    later = (sim.clock.now() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = http.patch(f"{JOBS}/{SEED_SUBMITTED}", json={"completeAfterDateTime": later})
    assert response.status_code == 204 and response.content == b""
    after = http.get(f"{JOBS}/{SEED_SUBMITTED}").json()
    assert after["completeAfterDateTime"].startswith(later[:19])
    assert after["lastUpdatedDateTime"] == before["lastUpdatedDateTime"]
    past = http.patch(f"{JOBS}/{SEED_SUBMITTED}", json={"completeAfterDateTime": "2020-01-01T00:00:00Z"})
    assert past.status_code == 400
    assert http.patch(f"{JOBS}/{SEED_SUBMITTED}", json={"displayName": "x"}).status_code == 400
    sim.set_status(SEED_SUBMITTED, "cuttingOver")
    refused = http.patch(f"{JOBS}/{SEED_SUBMITTED}", json={"completeAfterDateTime": later})
    assert refused.status_code == 409 and "current status is cuttingOver" in refused.json()["error"]["message"]
    assert http.patch(f"{JOBS}/{SEED_COMPLETED}", json={"completeAfterDateTime": later}).status_code == 409


def test_delete_only_from_an_ended_job_then_pending_deleted_gone(sim, http):
    refused = http.delete(f"{JOBS}/{SEED_VALIDATE_PASSED}")
    assert refused.status_code == 409 and "current status is validatePassed" in refused.json()["error"]["message"]
    response = http.delete(f"{JOBS}/{SEED_COMPLETED}")
    assert response.status_code == 202 and response.content == b""
    assert status(http, SEED_COMPLETED) == "pendingDelete"
    assert http.delete(f"{JOBS}/{SEED_COMPLETED}").status_code == 409
    sim.clock.advance(120)
    assert status(http, SEED_COMPLETED) == "deleted"
    sim.clock.advance(120)
    assert http.get(f"{JOBS}/{SEED_COMPLETED}").status_code == 404


def test_delete_job_makes_it_vanish(sim, http):
    sim.delete_job(SEED_SUBMITTED)
    assert http.get(f"{JOBS}/{SEED_SUBMITTED}").status_code == 404
    assert SEED_SUBMITTED not in [job["id"] for job in http.get(JOBS).json()["value"]]


# Paging
def test_jobs_come_in_pages_of_20_with_an_opaque_absolute_next_link():
    simulator = start_simulator(seed=False)
    try:
        created = [simulator.create_job(f"wave_{n:02d}") for n in range(45)]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url, pages, seen = f"{simulator.base_url}{JOBS}", [], []
        while url:
            body = httpx.get(url, headers=headers).json()
            pages.append(len(body["value"]))
            seen += [job["id"] for job in body["value"]]
            url = body.get("@odata.nextLink")
            if url:
                assert url.startswith(simulator.base_url + JOBS + "?$skiptoken=")
                assert "skip" not in url.split("$skiptoken=")[1]  # opaque, not "$skip=20"
        assert pages == [20, 20, 5]
        assert seen == created[::-1]  # most recently created first
        bad = httpx.get(f"{simulator.base_url}{JOBS}?$skiptoken=garbage!", headers=headers)
        assert bad.status_code == 400
    finally:
        simulator.stop()


def test_users_are_paged_too(sim, http):
    job_id = sim.create_job("wave_big", users=45)
    first = http.get(f"{JOBS}/{job_id}/users").json()
    assert len(first["value"]) == 20 and "$skiptoken=" in first["@odata.nextLink"]
    assert first["@odata.context"].endswith(f"crossTenantMigrationJobs('{job_id}')/users")
    second = httpx.get(first["@odata.nextLink"], headers=http.headers).json()
    third = httpx.get(second["@odata.nextLink"], headers=http.headers).json()
    assert len(third["value"]) == 5 and "@odata.nextLink" not in third
    ids = [task["id"] for page in (first, second, third) for task in page["value"]]
    assert len(set(ids)) == 45


def test_get_task_by_id(sim, http):
    task = http.get(f"{JOBS}/{SEED_VALIDATE_PASSED}/users").json()["value"][0]
    one = http.get(f"{JOBS}/{SEED_VALIDATE_PASSED}/users/{task['id']}").json()
    assert one["id"] == task["id"] and one["currentStatus"] == task["currentStatus"]
    assert http.get(f"{JOBS}/{SEED_VALIDATE_PASSED}/users/{uuid.uuid4()}").status_code == 404


# The state machine
def test_validate_walks_to_validate_passed_and_last_updated_moves_only_with_the_status(sim, http):
    response = http.post(f"{JOBS}/{SEED_SUBMITTED}/validate")
    assert response.status_code == 200 and response.json()["status"] == "validateSubmitted"
    first = http.get(f"{JOBS}/{SEED_SUBMITTED}").json()["lastUpdatedDateTime"]
    sim.clock.advance(10)
    assert http.get(f"{JOBS}/{SEED_SUBMITTED}").json()["lastUpdatedDateTime"] == first
    seen = []
    for _ in range(6):
        sim.clock.advance(60)
        job = http.get(f"{JOBS}/{SEED_SUBMITTED}").json()
        if not seen or seen[-1][0] != job["status"]:
            seen.append((job["status"], job["lastUpdatedDateTime"]))
    assert [s for s, _ in seen] == ["validateProcessing", "validateInProgress", "validatePassed"]
    assert len({stamp for _, stamp in seen} | {first}) == 4
    assert all(set(user.values()) == {"valid"} for user in services(http, SEED_SUBMITTED))
    again = http.post(f"{JOBS}/{SEED_SUBMITTED}/validate")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_validate_failed_outcome_marks_an_invalid_user(sim, http):
    sim.set_outcome(SEED_SUBMITTED, "validateFailed")
    http.post(f"{JOBS}/{SEED_SUBMITTED}/validate")
    sim.clock.advance(240)
    job = http.get(f"{JOBS}/{SEED_SUBMITTED}").json()
    assert job["status"] == "validateFailed" and "1 of 3 users" in job["message"]
    first = http.get(f"{JOBS}/{SEED_SUBMITTED}/users").json()["value"][0]["currentStatus"][0]
    assert first["status"] == "invalid" and first["errors"][0]["code"] == "EXCH-08"
    assert http.post(f"{JOBS}/{SEED_SUBMITTED}/validate").status_code == 200  # allowed again from validateFailed


def test_migrate_takes_thirty_simulated_minutes_with_table_3_3_task_statuses(sim, http):
    job_id = sim.create_job(
        "wave7_ops",
        "validatePassed",
        workloads=["Exchange", "ODSP", "Teams", "Meeting"],
        completed_after=sim.clock.now() - timedelta(hours=1),
    )
    response = http.post(f"{JOBS}/{job_id}/migrate").json()
    assert (response["status"], response["jobType"]) == ("processing", "migrate")
    assert services(http, job_id)[0] == dict.fromkeys(["Exchange", "ODSP", "Teams", "Meeting"], "notStarted")
    sim.clock.advance(120)
    assert status(http, job_id) == "inProgress"
    assert services(http, job_id)[0] == {
        "Exchange": "syncing",
        "ODSP": "synced",
        "Teams": "synced",
        "Meeting": "synced",
    }
    sim.clock.advance(900)
    assert status(http, job_id) == "cuttingOver"
    assert services(http, job_id)[0]["Exchange"] == "finalizing"
    sim.clock.advance(779)
    assert status(http, job_id) == "cuttingOver"
    sim.clock.advance(1)
    job = http.get(f"{JOBS}/{job_id}").json()
    assert job["status"] == "completed" and "successfully migrated" in job["message"]
    assert all(set(user.values()) == {"completed"} for user in services(http, job_id))


def test_cutover_waits_for_complete_after(sim, http):
    job_id = sim.create_job("wave8_ops", "validatePassed", completed_after=sim.clock.now() + timedelta(hours=5))
    http.post(f"{JOBS}/{job_id}/migrate")
    sim.clock.advance(4 * 3600)
    assert status(http, job_id) == "inProgress"
    sim.clock.advance(3600)
    assert status(http, job_id) == "cuttingOver"


@pytest.mark.parametrize("outcome", ["completedWithErrors", "failed"])
def test_outcomes_set_per_user_errors(sim, http, outcome):
    sim.set_outcome(SEED_VALIDATE_PASSED, outcome)
    http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate")
    sim.clock.advance(3600)
    assert status(http, SEED_VALIDATE_PASSED) == outcome
    tasks = http.get(f"{JOBS}/{SEED_VALIDATE_PASSED}/users").json()["value"]
    failed = [s for t in tasks for s in t["currentStatus"] if s["status"] == "failed"]
    codes = {e["code"] for s in failed for e in s["errors"]}
    if outcome == "failed":
        assert len(failed) == 9 and "EXCH-07" in codes
    else:
        assert [s["service"] for s in failed] == ["ODSP"] and codes == {"MIGR-003"}


def test_a_retry_keeps_finished_users_and_can_complete(sim, http):
    sim.set_outcome(SEED_VALIDATE_PASSED, "completedWithErrors")
    http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate")
    sim.clock.advance(3600)
    sim.set_outcome(SEED_VALIDATE_PASSED, "completed")
    assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate").json()["status"] == "processing"
    during = services(http, SEED_VALIDATE_PASSED)
    assert during[0]["ODSP"] == "completed" and during[1]["ODSP"] == "notStarted"
    sim.clock.advance(3600)
    assert status(http, SEED_VALIDATE_PASSED) == "completed"


def test_migrate_refusals(sim, http):
    expired = http.post(f"{JOBS}/{SEED_VALIDATION_EXPIRED}/migrate")
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "conflict"
    wrong = http.post(f"{JOBS}/{SEED_VALIDATE_FAILED}/migrate")
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "conflict"
    for message in (expired.json()["error"]["message"], wrong.json()["error"]["message"]):
        # worded unlike the documented examples: a client that matched on text would misread them
        assert not any(word in message.lower() for word in ("expired", "7 days", "revalidate", "current status"))
    strict = http.post(f"{JOBS}/{SEED_VALIDATION_EXPIRED}/validate")  # validate page: submitted/validateFailed only
    assert strict.status_code == 409 and status(http, SEED_VALIDATION_EXPIRED) == "validatePassed"


def test_revalidating_an_expired_job_is_a_switch():
    simulator = start_simulator(options=SimOptions(revalidate_expired=True))
    try:
        with httpx.Client(base_url=simulator.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert http.post(f"{JOBS}/{SEED_VALIDATION_EXPIRED}/validate").status_code == 200
            assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/validate").status_code == 409  # not expired: still 409
    finally:
        simulator.stop()


def test_validation_expires_after_seven_days(sim, http):
    sim.clock.advance(7 * 86400 - 2 * 3600 - 1)
    assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate").status_code == 200
    other = sim.create_job("wave9", "validatePassed")
    sim.clock.advance(7 * 86400)
    assert http.post(f"{JOBS}/{other}/migrate").status_code == 409


def test_cancel_in_progress_is_refused_by_default_and_a_switch_allows_it(sim, http):
    refused = http.post(f"{JOBS}/{SEED_IN_PROGRESS}/cancel")  # the cancel page: 409 once in progress
    assert refused.status_code == 409 and status(http, SEED_IN_PROGRESS) == "inProgress"
    assert http.post(f"{JOBS}/{SEED_SUBMITTED}/cancel").status_code == 202


def test_cancel_before_cutover_then_refused_later():
    simulator = start_simulator(options=SimOptions(cancel_in_progress=True))  # the admin table's reading
    try:
        with httpx.Client(base_url=simulator.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            _cancel_before_cutover_then_refused_later(simulator, http)
    finally:
        simulator.stop()


def _cancel_before_cutover_then_refused_later(sim, http):
    response = http.post(f"{JOBS}/{SEED_IN_PROGRESS}/cancel")
    assert response.status_code == 202
    assert {k: v for k, v in response.json().items() if not k.startswith("@")} == {
        "id": SEED_IN_PROGRESS,
        "displayName": "wave6_engineering",
        "status": "pendingCancel",
        "message": "cancellation request has been accepted for the migration job",
    }
    assert set(services(http, SEED_IN_PROGRESS)[0].values()) == {"pendingCancel"}
    sim.clock.advance(60)
    assert status(http, SEED_IN_PROGRESS) == "cancelled"
    assert set(services(http, SEED_IN_PROGRESS)[0].values()) == {"cancelled"}
    again = http.post(f"{JOBS}/{SEED_IN_PROGRESS}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize("cancel_in_progress", [False, True])
def test_cancel_refused_in_cutover_and_after_complete_after(cancel_in_progress):
    simulator = start_simulator(options=SimOptions(cancel_in_progress=cancel_in_progress))
    try:
        with httpx.Client(base_url=simulator.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            _cancel_refused_in_cutover_and_after_complete_after(simulator, http)
    finally:
        simulator.stop()


def _cancel_refused_in_cutover_and_after_complete_after(sim, http):
    sim.set_status(SEED_VALIDATE_PASSED, "cuttingOver")
    assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/cancel").status_code == 409
    job_id = sim.create_job("wave12", "validatePassed", completed_after=sim.clock.now() + timedelta(minutes=5))
    http.post(f"{JOBS}/{job_id}/migrate")
    sim.clock.advance(600)  # the date has passed; the mailbox sync has not finished yet
    assert status(http, job_id) == "inProgress"
    refused = http.post(f"{JOBS}/{job_id}/cancel")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"


def test_cancel_one_user(sim, http):
    users = http.get(f"{JOBS}/{SEED_SUBMITTED}/users").json()["value"]
    response = http.post(f"{JOBS}/{SEED_SUBMITTED}/users/{users[0]['id']}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "Accepted"
    left = http.get(f"{JOBS}/{SEED_SUBMITTED}/users").json()["value"]
    assert [t["id"] for t in left] == [t["id"] for t in users[1:]]


def test_set_status_keeps_unknown_and_odd_cased_values_and_continues_chains(sim, http):
    sim.set_status(SEED_SUBMITTED, "quantumEntangled")
    assert status(http, SEED_SUBMITTED) == "quantumEntangled"
    assert http.post(f"{JOBS}/{SEED_SUBMITTED}/migrate").status_code == 409
    sim.set_status(SEED_SUBMITTED, "Canceled", message="cancelled in the admin center")
    job = http.get(f"{JOBS}/{SEED_SUBMITTED}").json()
    assert (job["status"], job["message"]) == ("Canceled", "cancelled in the admin center")
    sim.set_status(SEED_SUBMITTED, "validateInProgress")
    sim.clock.advance(150)
    assert status(http, SEED_SUBMITTED) == "validatePassed"


def test_auto_validate_on_create_option():
    simulator = start_simulator(seed=False, options=SimOptions(auto_validate_on_create=True))
    try:
        response = httpx.post(
            f"{simulator.base_url}{JOBS}", json=new_job(simulator), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.json()["status"] == "validateSubmitted"
    finally:
        simulator.stop()


# Faults, latency, records
def test_429_fault_with_retry_after_then_normal_service(sim, http):
    sim.inject_fault("429", count=2, retry_after=7, method="GET", path_contains=SEED_SUBMITTED)
    assert http.get(f"{JOBS}/{SEED_VALIDATE_PASSED}").status_code == 200  # another path: unaffected
    for _ in range(2):
        throttled = http.get(f"{JOBS}/{SEED_SUBMITTED}")
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
        assert throttled.json()["error"]["code"] == "activityLimitReached"
    assert http.get(f"{JOBS}/{SEED_SUBMITTED}").status_code == 200
    assert [r.status for r in sim.requests] == [200, 429, 429, 200]


@pytest.mark.parametrize("kind", ["500", "503", "504"])
def test_server_error_faults_leave_the_state_alone(sim, http, kind):
    sim.inject_fault(kind, method="POST")
    assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate").status_code == int(kind)
    assert status(http, SEED_VALIDATE_PASSED) == "validatePassed"


def test_lost_and_slow_faults_apply_the_request(sim, http):
    sim.inject_fault("lost", path_contains="/migrate")
    assert http.post(f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate").status_code == 504
    assert status(http, SEED_VALIDATE_PASSED) == "processing"
    sim.inject_fault("slow", delay=0.3, path_contains="/validate")
    started = time.monotonic()
    assert http.post(f"{JOBS}/{SEED_SUBMITTED}/validate").status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(ValueError):
        sim.inject_fault("explode")


def test_latency_is_added_to_every_graph_request(sim, http):
    sim.latency = 0.2
    started = time.monotonic()
    http.get(f"{JOBS}/{SEED_SUBMITTED}")
    assert time.monotonic() - started >= 0.2


def test_requests_are_recorded_and_counted(sim, http):
    http.get(f"{JOBS}/{SEED_SUBMITTED}", headers={"client-request-id": "abc"})
    http.post(f"{JOBS}/{SEED_SUBMITTED}/validate")
    assert sim.count("POST", "/validate") == 1 and sim.count("GET", SEED_SUBMITTED) == 1
    first = sim.requests[0]
    assert (first.method, first.operation, first.status, first.headers["client-request-id"]) == (
        "GET",
        "get",
        200,
        "abc",
    )
    sim.clear_requests()
    assert sim.requests == []


def test_control_api_over_http(sim):
    control = httpx.Client(base_url=f"{sim.url}/_sim", headers={"Authorization": f"Bearer {TOKEN}"})
    graph = httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {TOKEN}"})
    with control, graph:
        created = control.post(
            "/jobs",
            json={
                "displayName": "wave11",
                "status": "validatePassed",
                "users": 2,
                "completed_after": "2020-01-01T00:00:00Z",
            },
        )
        job_id = created.json()["id"]
        assert created.status_code == 201 and status(graph, job_id) == "validatePassed"
        assert control.post(f"/jobs/{job_id}/outcome", json={"outcome": "failed"}).status_code == 204
        assert control.post("/jobs/nope/outcome", json={"outcome": "failed"}).status_code == 404
        assert control.post("/faults", json={"kind": "503", "method": "GET"}).status_code == 201
        assert graph.get(f"{JOBS}/{job_id}").status_code == 503
        graph.post(f"{JOBS}/{job_id}/migrate")
        before = control.get("/clock").json()["now"]
        assert control.post("/clock/advance", json={"seconds": 3600}).json()["now"] > before
        assert status(graph, job_id) == "failed"
        assert control.post(f"/jobs/{job_id}/status", json={"status": "cancelled"}).json()["status"] == "cancelled"
        assert control.post("/deny", json={"operation": "list"}).status_code == 204
        assert graph.get(JOBS).status_code == 403
        recorded = control.get("/requests").json()["value"]
        assert [r["status"] for r in recorded][-1] == 403 and "Bearer <redacted" in recorded[-1]["headers"][
            "authorization"
        ]
        assert control.post("/faults", json={"kind": "bogus"}).status_code == 400
        assert control.get("/nowhere").status_code == 404


def test_clock():
    clock = SimClock(speed=3600, start=datetime(2026, 7, 1, tzinfo=UTC))
    time.sleep(0.05)
    assert clock.now() >= datetime(2026, 7, 1, 0, 3, tzinfo=UTC)
    frozen = SimClock(speed=0, start=datetime(2026, 7, 1, tzinfo=UTC))
    assert frozen.advance(90) == datetime(2026, 7, 1, 0, 1, 30, tzinfo=UTC) == frozen.now()
    with pytest.raises(ValueError):
        frozen.advance(-1)


def test_simulator_command_prints_the_base_url_and_seeds_and_stops_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AZURE_", "GRAPH_", "TOKEN_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        # Ctrl-C works as in a terminal even when this run was started in the background (SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        output = "".join(lines)
        base_url = output.split("GRAPH_BASE_URL=")[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/beta")
        assert all(seed.id in output and seed.display_name in output for seed in SEED_JOBS)
        tokens = dict(zip(lines[1::1], lines[2::1]))
        admin = next(tokens[line].strip() for line in tokens if line.strip().startswith("migration-admin"))
        reader = next(tokens[line].strip() for line in tokens if line.strip().startswith("reader"))
        answer = httpx.get(f"{base_url}{JOBS}/{SEED_VALIDATE_PASSED}", headers={"Authorization": f"Bearer {admin}"})
        assert answer.json()["displayName"] == "wave3_finance"
        refused = httpx.post(
            f"{base_url}{JOBS}/{SEED_VALIDATE_PASSED}/migrate", headers={"Authorization": f"Bearer {reader}"}
        )
        assert refused.status_code == 403
        assert httpx.get(f"{base_url}{JOBS}", headers={"Authorization": "Bearer x"}).status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
