"""GraphClient against the simulator over loopback HTTP (respx only for what the simulator never sends)."""

from __future__ import annotations

import base64
import logging
import socket
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from bot.credential.base import StaticToken
from bot.errors import (
    ConflictReason,
    GraphActionOutcomeUnknown,
    GraphAuthError,
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
    InvalidJobId,
)
from bot.graph.client import ActionResult, GraphClient
from bot.graph.models import JobStatus, MigrationJob, ServiceStatus
from bot.rehearsal.simulator import SimOptions
from bot.rehearsal.simulator.seed import (
    SEED_IN_PROGRESS,
    SEED_SUBMITTED,
    SEED_VALIDATE_FAILED,
    SEED_VALIDATE_PASSED,
    SEED_VALIDATION_EXPIRED,
)
from tests.support.graph import TOKEN, client, sim, sleeps, start_simulator  # noqa: F401

JOBS = "/solutions/migrations/crossTenantMigrationJobs"


def finish(sim, seconds: float = 3600) -> None:
    sim.clock.advance(seconds)


# Reads
def test_get_job(client):
    job = client.get_job(SEED_VALIDATE_PASSED.upper())
    assert (job.id, job.display_name, job.status) == (SEED_VALIDATE_PASSED, "wave3_finance", JobStatus.VALIDATE_PASSED)
    assert job.last_updated is not None and job.last_updated.tzinfo is not None
    assert job.workloads == ["Exchange", "ODSP", "Teams"]


def test_not_found_carries_code_and_correlation_ids(sim, client):
    missing = str(uuid.uuid4())
    with pytest.raises(GraphNotFound) as caught:
        client.get_job(missing)
    error = caught.value
    assert (error.status_code, error.code) == (404, "itemNotFound")
    assert error.client_request_id == sim.requests[-1].headers["client-request-id"]
    assert uuid.UUID(error.request_id) and error.request_id in error.correlation()
    assert len(sim.requests) == 1  # a 404 is not retried


@pytest.mark.parametrize("call", ["get_job", "migrate_job", "validate_job", "cancel_job", "list_tasks"])
def test_invalid_job_id_is_refused_before_any_request(sim, client, call):
    with pytest.raises(InvalidJobId):
        getattr(client, call)("5b0c7e2a/../../users")
    assert sim.requests == []


def test_every_request_has_its_own_client_request_id_and_the_token(sim, client):
    client.get_job(SEED_SUBMITTED)
    client.get_job(SEED_SUBMITTED)
    client.list_tasks(SEED_SUBMITTED)
    ids = [r.headers["client-request-id"] for r in sim.requests]
    assert len(set(ids)) == 3 and all(uuid.UUID(i) for i in ids)
    assert all(r.status == 200 for r in sim.requests)  # the simulator accepts only TOKEN


def test_the_token_is_never_logged(sim, client, caplog):
    caplog.set_level(logging.DEBUG)
    client.get_job(SEED_SUBMITTED)
    sim.inject_fault("503", method="POST")
    with pytest.raises(GraphUnavailable):
        client.migrate_job(SEED_VALIDATE_PASSED)
    assert "GET" in caplog.text and TOKEN not in caplog.text


def test_list_jobs_follows_next_links_across_pages(sleeps):
    simulator = start_simulator(seed=False)
    try:
        created = {simulator.create_job(f"wave_{n:02d}") for n in range(45)}
        with GraphClient(simulator.base_url, StaticToken(TOKEN), sleep=sleeps.append) as graph:
            jobs = graph.list_jobs()
        assert {job.id for job in jobs} == created and len(jobs) == 45
        assert simulator.count("GET", JOBS) == 3
        assert [r.query.startswith("$skiptoken=") for r in simulator.requests] == [False, True, True]
    finally:
        simulator.stop()


def test_list_tasks_pages_and_shows_per_workload_statuses(sim, client):
    job_id = sim.create_job("wave_big", "validatePassed", users=45)
    tasks = client.list_tasks(job_id)
    assert len({task.id for task in tasks}) == 45
    assert sim.count("GET", "/users") == 3
    assert {s.status for task in tasks for s in task.current_status} == {ServiceStatus.VALID}


def test_unknown_and_odd_cased_statuses(sim, client):
    sim.set_status(SEED_SUBMITTED, "quantumEntangled")
    job = client.get_job(SEED_SUBMITTED)
    assert job.status is JobStatus.UNKNOWN_FUTURE_VALUE and job.status_label == "quantumEntangled"
    sim.set_status(SEED_SUBMITTED, "Submitted")
    assert client.get_job(SEED_SUBMITTED).status is JobStatus.SUBMITTED
    sim.set_status(SEED_SUBMITTED, "Canceled")
    assert client.get_job(SEED_SUBMITTED).status is JobStatus.CANCELLED


# Retries of reads
def test_429_waits_the_retry_after_then_succeeds(sim, client, sleeps):
    sim.inject_fault("429", count=2, retry_after=7, method="GET")
    assert client.get_job(SEED_SUBMITTED).status is JobStatus.SUBMITTED
    assert sleeps == [7, 7]
    assert sim.count("GET", SEED_SUBMITTED) == 3


def test_503_without_retry_after_backs_off_exponentially_with_jitter(sim, client, sleeps):
    sim.inject_fault("503", count=3, method="GET")
    client.get_job(SEED_SUBMITTED)
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):
        assert 0.5 * 2**attempt <= slept <= 2**attempt


def test_503_with_retry_after_waits_that_long(sim, client, sleeps):
    sim.inject_fault("503", retry_after=4, method="GET")
    client.get_job(SEED_SUBMITTED)
    assert sleeps == [4] and sim.count("GET") == 2


def test_gives_up_after_max_attempts(sim, client, sleeps):
    sim.inject_fault("429", count=None, retry_after=2, method="GET")
    with pytest.raises(GraphThrottled) as caught:
        client.get_job(SEED_SUBMITTED)
    assert caught.value.retry_after == 2 and caught.value.code == "activityLimitReached"
    assert (sim.count("GET"), sleeps) == (4, [2, 2, 2])
    sim.clear_faults()
    sim.clear_requests()
    sim.inject_fault("504", count=None, method="GET")
    with pytest.raises(GraphUnavailable) as unavailable:
        client.get_job(SEED_SUBMITTED)
    assert unavailable.value.status_code == 504 and sim.count("GET") == 4


def test_a_retry_after_longer_than_max_backoff_is_not_waited_for(sim, client, sleeps):
    sim.inject_fault("429", retry_after=120, method="GET")
    with pytest.raises(GraphThrottled) as caught:
        client.get_job(SEED_SUBMITTED)
    assert caught.value.retry_after == 120 and sleeps == [] and sim.count("GET") == 1


def test_500_is_not_retried(sim, client, sleeps):
    sim.inject_fault("500", method="GET")
    with pytest.raises(GraphUnavailable) as caught:
        client.get_job(SEED_SUBMITTED)
    assert caught.value.status_code == 500 and sim.count("GET") == 1 and sleeps == []


def test_connection_refused_is_retried_then_unavailable(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with GraphClient(f"http://127.0.0.1:{port}/beta", StaticToken(), sleep=sleeps.append, max_attempts=3) as graph:
        with pytest.raises(GraphUnavailable) as caught:
            graph.get_job(SEED_SUBMITTED)
    assert caught.value.status_code is None and len(sleeps) == 2
    assert caught.value.client_request_id


# Errors
@pytest.mark.parametrize("token", ["someone-elses-token", "expired", "forged"])
def test_a_refused_token_is_401_and_the_advice_is_to_sign_in_again(sim, token):
    if token == "expired":
        token = sim.mint_token("expired")
    elif token == "forged":
        token = sim.mint_token("migration-admin")[:-6] + "AAAAAA"
    with GraphClient(sim.base_url, StaticToken(token)) as graph:
        with pytest.raises(GraphAuthError) as caught:
            graph.get_job(SEED_SUBMITTED)
    assert (caught.value.status_code, caught.value.code) == (401, "InvalidAuthenticationToken")
    assert "migrate-bot login" in caught.value.hint and "Migration Administrator" not in caught.value.hint


@pytest.mark.parametrize(
    ("preset", "advice"),
    [
        ("reader", "CrossTenantContentMigration.ReadWrite.All"),
        ("no-role", "Migration Administrator"),
        ("app", "app-only"),
    ],
)
def test_a_token_without_the_permission_or_role_is_403_and_the_advice_names_what_is_missing(sim, preset, advice):
    with GraphClient(sim.base_url, StaticToken(sim.mint_token(preset))) as graph:
        if preset != "no-role":
            assert graph.get_job(SEED_VALIDATE_PASSED).status is JobStatus.VALIDATE_PASSED  # reads still work
        with pytest.raises(GraphAuthError) as caught:
            graph.migrate_job(SEED_VALIDATE_PASSED)
    assert (caught.value.status_code, caught.value.code) == (403, "accessDenied")
    assert advice in caught.value.hint and "Global Administrator" in caught.value.hint
    assert sim.job(SEED_VALIDATE_PASSED)["status"] == "validatePassed"


@pytest.mark.parametrize("app_only_actions", [False, True])
def test_an_app_only_migrate_under_both_readings(app_only_actions):
    simulator = start_simulator(options=SimOptions(app_only_actions=app_only_actions))
    try:
        with GraphClient(simulator.base_url, StaticToken(simulator.mint_token("app"))) as graph:
            if app_only_actions:  # the overview: application permissions work for every operation
                assert graph.migrate_job(SEED_VALIDATE_PASSED).job.status is JobStatus.PROCESSING
            else:  # the migrate page: app-only not supported
                with pytest.raises(GraphAuthError) as caught:
                    graph.migrate_job(SEED_VALIDATE_PASSED)
                assert caught.value.status_code == 403 and "delegated" in caught.value.hint
    finally:
        simulator.stop()


def test_forbidden_operation_is_an_auth_error_and_nothing_changes(sim, client):
    sim.deny("migrate")
    with pytest.raises(GraphAuthError) as caught:
        client.migrate_job(SEED_VALIDATE_PASSED)
    assert (caught.value.status_code, caught.value.code) == (403, "accessDenied")
    assert client.get_job(SEED_VALIDATE_PASSED).status is JobStatus.VALIDATE_PASSED


def test_validation_expired_conflict(sim, client):
    with pytest.raises(GraphConflict) as caught:
        client.migrate_job(SEED_VALIDATION_EXPIRED)
    assert caught.value.reason is ConflictReason.VALIDATION_EXPIRED and caught.value.status_code == 409
    assert "no revalidation" in caught.value.hint and "new job for the same users" in caught.value.hint
    assert caught.value.job.status is JobStatus.VALIDATE_PASSED  # read back after the refusal
    assert sim.count("POST", "/migrate") == 1


@pytest.mark.parametrize("revalidate_expired", [False, True])
def test_validating_an_expired_job_under_both_readings(revalidate_expired):
    simulator = start_simulator(options=SimOptions(revalidate_expired=revalidate_expired))
    try:
        with GraphClient(simulator.base_url, StaticToken(TOKEN)) as graph:
            if revalidate_expired:
                assert graph.validate_job(SEED_VALIDATION_EXPIRED).job.status is JobStatus.VALIDATE_SUBMITTED
            else:
                with pytest.raises(GraphConflict) as caught:
                    graph.validate_job(SEED_VALIDATION_EXPIRED)
                assert caught.value.reason is ConflictReason.VALIDATION_EXPIRED
                assert "no revalidation" in caught.value.hint
    finally:
        simulator.stop()


def test_wrong_status_conflict(client):
    with pytest.raises(GraphConflict) as caught:
        client.migrate_job(SEED_VALIDATE_FAILED)
    assert caught.value.reason is ConflictReason.WRONG_STATUS
    assert caught.value.job.status is JobStatus.VALIDATE_FAILED


MISLEADING = [
    "Migration can't be started because the current status is failed",
    "Validation results expired (passed more than 7 days ago). Revalidate the job before migrating.",
    "Something else is locked",
]


@pytest.mark.parametrize("message", MISLEADING)
@pytest.mark.parametrize(
    ("action", "status", "age_days", "reason"),
    [
        ("migrate", "validatePassed", 8, ConflictReason.VALIDATION_EXPIRED),
        ("migrate", "validateFailed", 1, ConflictReason.WRONG_STATUS),
        ("migrate", "failed", 1, ConflictReason.UNKNOWN),  # migrate is allowed from failed: something else
        ("validate", "validatePassed", 8, ConflictReason.VALIDATION_EXPIRED),
        ("validate", "validatePassed", 1, ConflictReason.WRONG_STATUS),
        ("validate", "submitted", 1, ConflictReason.UNKNOWN),
        ("cancel", "inProgress", 1, ConflictReason.WRONG_STATUS),
        ("cancel", "cuttingOver", 1, ConflictReason.WRONG_STATUS),
        ("cancel", "submitted", 1, ConflictReason.UNKNOWN),
    ],
)
def test_conflicts_are_classified_from_the_job_read_back_never_the_message(action, status, age_days, reason, message):
    job_id = str(uuid.uuid4())
    updated = (datetime.now(UTC) - timedelta(days=age_days)).isoformat()
    job = {"id": job_id, "displayName": "w", "status": status, "lastUpdatedDateTime": updated}
    with respx.mock(base_url="https://graph.test/beta") as router:
        router.get(f"{JOBS}/{job_id}").respond(200, json=job)
        router.post(f"{JOBS}/{job_id}/{action}").respond(409, json={"error": {"code": "conflict", "message": message}})
        with GraphClient("https://graph.test/beta", StaticToken()) as graph, pytest.raises(GraphConflict) as caught:
            getattr(graph, f"{action}_job")(job_id)
    assert caught.value.reason is reason
    assert caught.value.job.status.value == status


def test_a_409_whose_job_cant_be_read_back_falls_back_to_the_error_code():
    job_id = str(uuid.uuid4())
    job = {"id": job_id, "displayName": "w", "status": "validatePassed"}
    with respx.mock(base_url="https://graph.test/beta") as router:
        router.get(f"{JOBS}/{job_id}").mock(
            side_effect=[httpx.Response(200, json=job), httpx.Response(404, json={"error": {"code": "itemNotFound"}})]
            * 2
        )
        post = router.post(f"{JOBS}/{job_id}/migrate")
        post.side_effect = [
            httpx.Response(409, json={"error": {"code": "validationExpired", "message": "current status is x"}}),
            httpx.Response(409, json={"error": {"code": "conflict", "message": "Validation expired, revalidate"}}),
        ]
        with GraphClient("https://graph.test/beta", StaticToken()) as graph:
            with pytest.raises(GraphConflict) as by_code:
                graph.migrate_job(job_id)
            with pytest.raises(GraphConflict) as unknown:
                graph.migrate_job(job_id)
    assert by_code.value.reason is ConflictReason.VALIDATION_EXPIRED and by_code.value.job is None
    assert unknown.value.reason is ConflictReason.UNKNOWN  # the message says "expired": it is not read


def test_bad_request_and_ids_from_inner_error():
    job_id = str(uuid.uuid4())
    inner = {"date": "2026-07-01T09:00:00", "innerError": {"request-id": "rid-1", "client-request-id": "crid-1"}}
    with respx.mock(base_url="https://graph.test/beta") as router:
        router.get(f"{JOBS}/{job_id}").respond(
            400, json={"error": {"code": "invalidRequest", "message": "Bad filter", "innerError": inner}}
        )
        with GraphClient("https://graph.test/beta", StaticToken()) as graph, pytest.raises(GraphBadRequest) as caught:
            graph.get_job(job_id)
    assert (caught.value.code, caught.value.request_id, caught.value.client_request_id) == (
        "invalidRequest",
        "rid-1",
        "crid-1",
    )
    assert "Bad filter" in str(caught.value)


def test_claims_challenge_gets_a_new_token_once():
    claims = '{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}'
    asked: list[str | None] = []

    class Tokens:
        def token(self, *, claims_challenge: str | None = None) -> str:
            asked.append(claims_challenge)
            return "with-claims" if claims_challenge else "plain"

    job_id = str(uuid.uuid4())
    challenge = f'Bearer realm="", error="insufficient_claims", claims="{base64.b64encode(claims.encode()).decode()}"'
    with respx.mock(base_url="https://graph.test/beta") as router:
        route = router.get(f"{JOBS}/{job_id}").mock(
            side_effect=[
                httpx.Response(
                    401,
                    headers={"WWW-Authenticate": challenge},
                    json={"error": {"code": "InvalidAuthenticationToken", "message": "claims"}},
                ),
                httpx.Response(200, json={"id": job_id, "status": "submitted"}),
            ]
        )
        with GraphClient("https://graph.test/beta", Tokens()) as graph:
            assert graph.get_job(job_id).status is JobStatus.SUBMITTED
    assert asked == [None, claims]
    assert [call.request.headers["Authorization"] for call in route.calls] == ["Bearer plain", "Bearer with-claims"]


def test_a_next_link_to_another_host_is_not_followed():
    with respx.mock(base_url="https://graph.test/beta") as router:
        router.get(JOBS).respond(200, json={"value": [], "@odata.nextLink": "https://evil.test/beta/x?$skiptoken=1"})
        with GraphClient("https://graph.test/beta", StaticToken()) as graph, pytest.raises(GraphError):
            graph.list_jobs()
        assert not any(call.request.url.host == "evil.test" for call in router.calls)


# Actions
def test_full_migration_walk(sim, client):
    result = client.migrate_job(SEED_VALIDATE_PASSED)
    assert isinstance(result, ActionResult) and not result.confirmed_by_reread
    assert (result.job.status, result.job.job_type) == (JobStatus.PROCESSING, "migrate")
    assert result.client_request_id == sim.requests[-1].headers["client-request-id"]
    assert uuid.UUID(result.request_id)
    seen = [result.job.status]
    for _ in range(12):
        sim.clock.advance(300)
        status = client.get_job(SEED_VALIDATE_PASSED).status
        if status != seen[-1]:
            seen.append(status)
    assert seen == [JobStatus.PROCESSING, JobStatus.IN_PROGRESS, JobStatus.CUTTING_OVER, JobStatus.COMPLETED]
    tasks = client.list_tasks(SEED_VALIDATE_PASSED)
    assert len(tasks) == 3
    assert all([s.service for s in t.current_status] == ["Exchange", "ODSP", "Teams"] for t in tasks)
    assert {s.status for t in tasks for s in t.current_status} == {ServiceStatus.COMPLETED}
    assert sim.count("POST", "/migrate") == 1


@pytest.mark.parametrize("outcome", ["completedWithErrors", "failed"])
def test_unhappy_outcomes_show_per_user_errors(sim, client, outcome):
    sim.set_outcome(SEED_VALIDATE_PASSED, outcome)
    client.migrate_job(SEED_VALIDATE_PASSED)
    finish(sim)
    assert client.get_job(SEED_VALIDATE_PASSED).status == JobStatus(outcome)
    failures = [
        (t.id, s.service, e.code)
        for t in client.list_tasks(SEED_VALIDATE_PASSED)
        for s in t.current_status
        if s.status is ServiceStatus.FAILED
        for e in s.errors
    ]
    if outcome == "failed":
        assert len(failures) == 9 and ("EXCH-07" in {code for *_, code in failures})
    else:
        assert len({user for user, *_ in failures}) == 1 and failures[0][2] == "MIGR-003"


def test_validate_from_submitted_to_validate_passed(sim, client):
    result = client.validate_job(SEED_SUBMITTED)
    assert result.job.status is JobStatus.VALIDATE_SUBMITTED
    finish(sim, 240)
    assert client.get_job(SEED_SUBMITTED).status is JobStatus.VALIDATE_PASSED
    assert client.migrate_job(SEED_SUBMITTED).job.status is JobStatus.PROCESSING


def test_cancel_in_progress_is_refused_under_the_strict_reading(sim, client):
    with pytest.raises(GraphConflict) as caught:
        client.cancel_job(SEED_IN_PROGRESS)
    assert caught.value.reason is ConflictReason.WRONG_STATUS
    assert caught.value.job.status is JobStatus.IN_PROGRESS


def test_cancel_before_cutover_and_refused_during_cutover():
    simulator = start_simulator(options=SimOptions(cancel_in_progress=True))  # the admin table's reading
    try:
        with GraphClient(simulator.base_url, StaticToken(TOKEN)) as graph:
            _cancel_before_cutover_and_refused_during_cutover(simulator, graph)
    finally:
        simulator.stop()


def _cancel_before_cutover_and_refused_during_cutover(sim, client):
    result = client.cancel_job(SEED_IN_PROGRESS)
    assert result.job.status is JobStatus.PENDING_CANCEL and result.job.display_name == "wave6_engineering"
    assert result.job.message == "cancellation request has been accepted for the migration job"
    finish(sim, 60)
    assert client.get_job(SEED_IN_PROGRESS).status is JobStatus.CANCELLED
    sim.set_status(SEED_VALIDATE_PASSED, "cuttingOver")
    with pytest.raises(GraphConflict) as caught:
        client.cancel_job(SEED_VALIDATE_PASSED)
    assert caught.value.reason is ConflictReason.WRONG_STATUS


def test_a_timed_out_migrate_that_applied_is_confirmed_by_reading_the_job(sim, sleeps):
    sim.inject_fault("slow", delay=0.6, method="POST", path_contains="/migrate")
    with GraphClient(sim.base_url, StaticToken(TOKEN), timeout=0.2, sleep=sleeps.append) as graph:
        result = graph.migrate_job(SEED_VALIDATE_PASSED)
    assert result.confirmed_by_reread and result.job.status is JobStatus.PROCESSING
    assert result.request_id is None  # the answer never arrived
    assert result.client_request_id == next(r for r in sim.requests if r.method == "POST").headers["client-request-id"]
    assert sim.count("POST", "/migrate") == 1 and sim.count("GET", SEED_VALIDATE_PASSED) == 2


def test_a_lost_answer_to_validate_is_confirmed_too(sim, client):
    sim.inject_fault("lost", method="POST")
    result = client.validate_job(SEED_VALIDATE_FAILED)
    assert result.confirmed_by_reread and result.job.status is JobStatus.VALIDATE_SUBMITTED
    assert sim.count("POST", "/validate") == 1


def test_a_503_migrate_that_did_not_apply_says_so_and_is_sent_once(sim, client, sleeps):
    sim.inject_fault("503", method="POST", retry_after=1)
    with pytest.raises(GraphUnavailable) as caught:
        client.migrate_job(SEED_VALIDATE_PASSED)
    assert not isinstance(caught.value, GraphActionOutcomeUnknown)
    assert "did NOT take effect" in str(caught.value) and "safe to retry" in str(caught.value)
    assert caught.value.status_code == 503
    assert sim.count("POST", "/migrate") == 1 and sleeps == []
    assert client.get_job(SEED_VALIDATE_PASSED).status is JobStatus.VALIDATE_PASSED


def test_when_the_job_cannot_be_read_back_the_outcome_is_unknown(sim, client, sleeps):
    before = client.get_job(SEED_VALIDATE_PASSED)
    sim.inject_fault("lost", method="POST")
    sim.inject_fault("503", count=None, method="GET")
    with pytest.raises(GraphActionOutcomeUnknown) as caught:
        client.migrate_job(SEED_VALIDATE_PASSED, before=before)
    assert "unknown" in str(caught.value) and "Check the job" in str(caught.value)
    assert "Check the job's status" in caught.value.hint
    assert sim.count("POST", "/migrate") == 1 and sim.count("GET") == 1 + 4
    sim.clear_faults()
    assert client.get_job(SEED_VALIDATE_PASSED).status is JobStatus.PROCESSING  # it had in fact applied


def test_a_throttled_action_was_not_processed_and_is_sent_again(sim, client, sleeps):
    sim.inject_fault("429", method="POST", retry_after=3)
    result = client.migrate_job(SEED_VALIDATE_PASSED)
    assert result.job.status is JobStatus.PROCESSING and not result.confirmed_by_reread
    assert sleeps == [3] and sim.count("POST", "/migrate") == 2


def test_an_action_that_never_connected_was_not_applied(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before_json = {"id": SEED_VALIDATE_PASSED, "status": "validatePassed"}
    with GraphClient(f"http://127.0.0.1:{port}/beta", StaticToken(), sleep=sleeps.append) as graph:
        with pytest.raises(GraphUnavailable) as caught:
            graph.migrate_job(SEED_VALIDATE_PASSED, before=MigrationJob.model_validate(before_json))
    assert "did NOT reach Graph" in str(caught.value) and len(sleeps) == 3


def test_migrate_of_a_job_that_vanished(sim, client):
    before = client.get_job(SEED_VALIDATE_PASSED)
    sim.delete_job(SEED_VALIDATE_PASSED)
    with pytest.raises(GraphNotFound):
        client.migrate_job(SEED_VALIDATE_PASSED, before=before)


def test_a_migrate_retry_of_a_failed_job_is_recognised_on_read_back(sim, client):
    sim.set_outcome(SEED_VALIDATE_PASSED, "failed")
    client.migrate_job(SEED_VALIDATE_PASSED)
    finish(sim)
    before = client.get_job(SEED_VALIDATE_PASSED)
    assert before.status is JobStatus.FAILED
    sim.inject_fault("lost", method="POST")
    sim.clock.advance(1)
    result = client.migrate_job(SEED_VALIDATE_PASSED, before=before)
    assert result.confirmed_by_reread and result.job.status is JobStatus.PROCESSING
    assert result.job.last_updated > before.last_updated
    assert before.last_updated - before.created_at > timedelta(0)


def test_the_client_works_against_v1(sim):
    with GraphClient(sim.v1_url, StaticToken(TOKEN)) as graph:
        assert graph.get_job(SEED_SUBMITTED).status is JobStatus.SUBMITTED
        assert graph.validate_job(SEED_SUBMITTED).job.status is JobStatus.VALIDATE_SUBMITTED
        assert len(graph.list_jobs()) == len(sim.state.list_jobs())
    assert {r.path.split("/")[1] for r in sim.requests} == {"v1.0"}
