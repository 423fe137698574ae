"""GraphClient.get_jobs: many jobs through Graph JSON batching against the simulator over real HTTP."""

from __future__ import annotations

import json

import pytest

from bot.credential.base import StaticToken
from bot.errors import (
    CredentialError,
    GraphAuthError,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
    InvalidJobId,
)
from bot.graph.client import GraphClient
from bot.graph.models import MigrationJob
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS, SEED_SUBMITTED, SEED_VALIDATE_PASSED
from tests.support.graph import TOKEN, client, sim, sleeps  # noqa: F401

MISSING = "00000000-0000-4000-8000-000000000000"


def batches(sim) -> list[list[str]]:
    """The job ids in each POST /$batch, in order."""
    return [
        [request["url"].rsplit("/", 1)[1] for request in json.loads(r.body)["requests"]]
        for r in sim.requests
        if r.method == "POST" and r.path.endswith("/$batch")
    ]


def single_gets(sim) -> int:
    return sum(1 for r in sim.requests if r.method == "GET" and r.batch_id is None)


def make_jobs(sim, count: int) -> list[str]:
    return [sim.create_job(f"wave{n:02d}", status="inProgress", users=1) for n in range(count)]


def test_reads_twenty_jobs_per_batch_and_matches_single_reads(sim, client):
    ids = make_jobs(sim, 45)
    jobs = client.get_jobs([job_id.upper() for job_id in ids] + [ids[0]])  # any case, repeats read once
    assert list(jobs) == ids
    assert [len(b) for b in batches(sim)] == [20, 20, 5] and single_gets(sim) == 0
    assert all(isinstance(job, MigrationJob) for job in jobs.values())
    assert jobs[ids[7]] == client.get_job(ids[7])


def test_each_job_has_its_own_outcome(sim, client):
    jobs = client.get_jobs([SEED_SUBMITTED, MISSING, SEED_IN_PROGRESS])
    assert isinstance(jobs[MISSING], GraphNotFound) and jobs[MISSING].code == "itemNotFound"
    assert jobs[MISSING].request_id  # the inner answer's own correlation id
    assert jobs[SEED_SUBMITTED].status_label == "submitted" and jobs[SEED_IN_PROGRESS].status_label == "inProgress"
    assert len(batches(sim)) == 1


def test_a_throttled_job_is_retried_alone_after_its_own_retry_after(sim, client, sleeps):
    sim.inject_fault("429", retry_after=3, path_contains=SEED_SUBMITTED)
    jobs = client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS, SEED_VALIDATE_PASSED])
    assert all(isinstance(job, MigrationJob) for job in jobs.values())
    assert batches(sim) == [[SEED_SUBMITTED, SEED_IN_PROGRESS, SEED_VALIDATE_PASSED], [SEED_SUBMITTED]]
    assert len(sleeps) == 1 and 2.9 <= sleeps[0] <= 3.0


def test_jobs_throttled_for_different_times_are_each_retried_when_their_time_comes(sim, client, sleeps):
    sim.inject_fault("429", retry_after=2, path_contains=SEED_SUBMITTED)
    sim.inject_fault("429", retry_after=5, path_contains=SEED_IN_PROGRESS)
    jobs = client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS, SEED_VALIDATE_PASSED])
    assert all(isinstance(job, MigrationJob) for job in jobs.values())
    assert batches(sim)[1:] == [[SEED_SUBMITTED], [SEED_IN_PROGRESS]]
    assert len(sleeps) == 2 and 1.9 <= sleeps[0] <= 2.0 and 2.9 <= sleeps[1] <= 3.0


def test_503_inside_a_batch_backs_off_then_gives_up_for_that_job_only(sim, client, sleeps):
    sim.inject_fault("503", count=None, path_contains=SEED_SUBMITTED)
    sim.inject_fault("500", count=None, path_contains=SEED_IN_PROGRESS)
    jobs = client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS, SEED_VALIDATE_PASSED])
    assert isinstance(jobs[SEED_SUBMITTED], GraphUnavailable) and jobs[SEED_SUBMITTED].status_code == 503
    assert isinstance(jobs[SEED_IN_PROGRESS], GraphUnavailable) and jobs[SEED_IN_PROGRESS].status_code == 500
    assert isinstance(jobs[SEED_VALIDATE_PASSED], MigrationJob)
    # max_attempts=4 for the 503; a 500 is not retried (as for single reads).
    assert batches(sim)[1:] == [[SEED_SUBMITTED]] * 3
    assert len(sleeps) == 3 and all(0 < slept <= 4 for slept in sleeps)


def test_a_retry_after_longer_than_max_backoff_is_not_waited_for(sim, client, sleeps):
    sim.inject_fault("429", retry_after=120, path_contains=SEED_SUBMITTED)
    jobs = client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS])
    assert isinstance(jobs[SEED_SUBMITTED], GraphThrottled) and jobs[SEED_SUBMITTED].retry_after == 120
    assert isinstance(jobs[SEED_IN_PROGRESS], MigrationJob)
    assert sleeps == [] and len(batches(sim)) == 1


def test_max_wait_bounds_the_waits_inside_a_batch(sim, client, sleeps):
    sim.inject_fault("429", retry_after=3, path_contains=SEED_SUBMITTED)
    sim.inject_fault("503", path_contains=SEED_IN_PROGRESS)  # no Retry-After: backoff of at least 0.5 s
    jobs = client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS, SEED_VALIDATE_PASSED], max_wait=0.4)
    assert isinstance(jobs[SEED_SUBMITTED], GraphThrottled) and jobs[SEED_SUBMITTED].retry_after == 3
    assert isinstance(jobs[SEED_IN_PROGRESS], GraphUnavailable)
    assert isinstance(jobs[SEED_VALIDATE_PASSED], MigrationJob)
    assert sleeps == [] and len(batches(sim)) == 1


def test_a_failed_batch_is_retried_whole_then_every_job_gets_its_error(sim, client, sleeps):
    sim.inject_fault("503", count=None, path_contains="$batch", retry_after=1)
    jobs = client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS])
    assert {type(job) for job in jobs.values()} == {GraphUnavailable}
    assert len(batches(sim)) == 4 and sleeps == [1, 1, 1]
    assert client.batching  # a 503 is trouble, not "no batching here"


@pytest.mark.parametrize("status", [404, 405, 501])
def test_without_batching_jobs_are_read_one_by_one_from_then_on(sim, client, status):
    sim.batch_unavailable = status
    jobs = client.get_jobs([SEED_SUBMITTED, MISSING, SEED_IN_PROGRESS])
    assert isinstance(jobs[SEED_SUBMITTED], MigrationJob) and isinstance(jobs[MISSING], GraphNotFound)
    assert not client.batching and len(batches(sim)) == 1 and single_gets(sim) == 3
    sim.clear_requests()
    client.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS])
    assert batches(sim) == [] and single_gets(sim) == 2  # remembered: no batch is tried again


def test_auth_failures_are_each_jobs_error_and_credential_errors_are_raised(sim):
    with GraphClient(sim.base_url, StaticToken("wrong"), max_attempts=1) as graph:
        jobs = graph.get_jobs([SEED_SUBMITTED, SEED_IN_PROGRESS])
    assert {type(job) for job in jobs.values()} == {GraphAuthError}

    class Broken:
        def token(self, *, claims_challenge=None):
            raise CredentialError("sign in again")

    with GraphClient(sim.base_url, Broken(), max_attempts=1) as graph, pytest.raises(CredentialError):
        graph.get_jobs([SEED_SUBMITTED])


def test_denied_reads_inside_a_batch_are_auth_errors(sim, client):
    sim.deny("get")
    jobs = client.get_jobs([SEED_SUBMITTED])
    assert isinstance(jobs[SEED_SUBMITTED], GraphAuthError) and jobs[SEED_SUBMITTED].status_code == 403


def test_an_invalid_id_is_refused_before_any_request(sim, client):
    with pytest.raises(InvalidJobId):
        client.get_jobs([SEED_SUBMITTED, "not-a-guid"])
    assert sim.requests == []


def test_the_batch_carries_the_token_and_a_client_request_id(sim, client):
    client.get_jobs([SEED_SUBMITTED])
    outer = sim.requests[0]
    assert outer.headers["authorization"] == f"Bearer <redacted, {len(TOKEN)} chars>"
    assert outer.headers["client-request-id"] and outer.headers["content-type"] == "application/json"


def test_users_are_read_twenty_per_batch_each_with_its_own_outcome(sim, client, sleeps):
    job = sim.create_job("people", status="inProgress", users=45)
    ids = [task.id.lower() for task in client.list_tasks(job)]
    sim.inject_fault("429", retry_after=2, path_contains=ids[3])
    sim.clear_requests()
    users = client.get_users([user_id.upper() for user_id in ids] + [MISSING, ids[0]])
    assert list(users) == ids + [MISSING]
    assert (
        [len(b) for b in batches(sim)] == [20, 1, 20, 6]  # the throttled one again before the next 20
        and batches(sim)[1][0].startswith(ids[3])
        and single_gets(sim) == 0
    )
    assert all(
        request["url"].endswith("?$select=id,userPrincipalName,displayName")
        for r in sim.requests
        if r.method == "POST"
        for request in json.loads(r.body)["requests"]
    )
    assert isinstance(users[MISSING], GraphNotFound) and len(sleeps) == 1 and 1.9 <= sleeps[0] <= 2.0
    assert users[ids[3]]["userPrincipalName"] == client.get_user(ids[3])["userPrincipalName"]


def test_without_batching_users_are_read_one_by_one(sim, client):
    sim.batch_unavailable = 501
    job = sim.create_job("people", status="inProgress", users=3)
    ids = [task.id.lower() for task in client.list_tasks(job)]
    sim.clear_requests()
    users = client.get_users(ids + [MISSING])
    assert all(isinstance(users[user_id], dict) for user_id in ids) and isinstance(users[MISSING], GraphNotFound)
    assert len(batches(sim)) == 1 and single_gets(sim) == 4 and not client.batching
