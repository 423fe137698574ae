"""The simulator's ``POST /$batch``: Graph's JSON batching shape, limits, per-request faults and latency."""

from __future__ import annotations

import time

import httpx
import pytest

from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS, SEED_SUBMITTED, SEED_VALIDATE_PASSED
from tests.support.graph import TOKEN, sim  # noqa: F401

JOBS = "/solutions/migrations/crossTenantMigrationJobs"


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def gets(*job_ids: str) -> dict:
    return {"requests": [{"id": str(n), "method": "GET", "url": f"{JOBS}/{job}"} for n, job in enumerate(job_ids)]}


def by_id(response: httpx.Response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {answer["id"]: answer for answer in response.json()["responses"]}


def test_each_request_gets_its_own_status_headers_and_body(sim, http):
    missing = "00000000-0000-4000-8000-000000000000"
    response = http.post("/$batch", json=gets(SEED_SUBMITTED, missing, SEED_IN_PROGRESS))
    answers = by_id(response)
    assert set(answers) == {"0", "1", "2"}
    assert answers["0"]["status"] == 200 and answers["0"]["body"]["status"] == "submitted"
    assert answers["0"]["body"]["@odata.context"].endswith("crossTenantMigrationJobs/$entity")
    assert answers["0"]["headers"]["Content-Type"].startswith("application/json")
    assert answers["2"]["body"]["id"] == SEED_IN_PROGRESS
    assert answers["1"]["status"] == 404 and answers["1"]["body"]["error"]["code"] == "itemNotFound"
    assert answers["1"]["headers"]["request-id"]
    # Graph guarantees no order: the simulator answers out of order so clients match by id.
    assert [a["id"] for a in response.json()["responses"]] != ["0", "1", "2"]


def test_urls_are_relative_with_or_without_a_leading_slash_and_may_carry_a_query(sim, http):
    body = {
        "requests": [
            {"id": "a", "method": "GET", "url": f"{JOBS.lstrip('/')}/{SEED_SUBMITTED}"},
            {"id": "b", "method": "GET", "url": f"{JOBS}?$top=5"},
            {"id": "c", "method": "GET", "url": f"https://graph.microsoft.com/beta{JOBS}/{SEED_SUBMITTED}"},
        ]
    }
    answers = by_id(http.post("/$batch", json=body))
    assert answers["a"]["status"] == 200
    assert answers["b"]["status"] == 200 and len(answers["b"]["body"]["value"]) >= 5
    assert answers["c"]["status"] == 400  # absolute urls are refused, that request alone


def test_inner_writes_need_a_content_type_and_then_apply(sim, http):
    body = {
        "requests": [
            {"id": "1", "method": "POST", "url": f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate", "body": {}},
            {
                "id": "2",
                "method": "POST",
                "url": f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate",
                "body": {},
                "headers": {"Content-Type": "application/json"},
            },
        ]
    }
    answers = by_id(http.post("/$batch", json=body))
    assert answers["1"]["status"] == 400
    assert answers["2"]["status"] == 200 and answers["2"]["body"]["status"] == "processing"


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"requests": []},
        {"requests": "GET everything"},
        {"requests": [{"id": "1", "method": "GET"}]},
        {"requests": [{"method": "GET", "url": JOBS}]},
        {"requests": [{"id": "1", "method": "GET", "url": JOBS}, {"id": "1", "method": "GET", "url": JOBS}]},
    ],
)
def test_a_malformed_batch_is_one_400(sim, http, body):
    response = http.post("/$batch", json=body) if body is not None else http.post("/$batch", content=b"nope")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("BadRequest", "invalidRequest")
    assert sim.count("GET") == 0  # nothing inside ran


def test_at_most_20_requests_like_graph(sim, http):
    assert len(by_id(http.post("/$batch", json=gets(*[SEED_SUBMITTED] * 20)))) == 20
    sim.clear_requests()
    too_many = http.post("/$batch", json=gets(*[SEED_SUBMITTED] * 21))
    assert too_many.status_code == 400 and "20" in too_many.json()["error"]["message"]
    assert sim.count("GET") == 0


def test_faults_hit_single_requests_inside_the_batch_with_their_own_retry_after(sim, http):
    sim.inject_fault("429", retry_after=3, path_contains=SEED_SUBMITTED)
    sim.inject_fault("503", path_contains=SEED_IN_PROGRESS)
    answers = by_id(http.post("/$batch", json=gets(SEED_SUBMITTED, SEED_IN_PROGRESS, SEED_VALIDATE_PASSED)))
    assert answers["0"]["status"] == 429 and answers["0"]["headers"]["Retry-After"] == "3"
    assert answers["0"]["body"]["error"]["code"] == "activityLimitReached"
    assert answers["1"]["status"] == 503 and "Retry-After" not in answers["1"]["headers"]
    assert answers["2"]["status"] == 200
    # The faults are used up: the next batch is clean.
    assert {a["status"] for a in by_id(http.post("/$batch", json=gets(SEED_SUBMITTED, SEED_IN_PROGRESS))).values()} == {
        200
    }


def test_a_fault_on_the_batch_itself_fails_the_whole_http_request(sim, http):
    sim.inject_fault("503", path_contains="$batch", retry_after=2)
    response = http.post("/$batch", json=gets(SEED_SUBMITTED))
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert sim.count("GET") == 0


def test_records_tell_batched_requests_from_http_requests(sim, http):
    http.post("/$batch", json=gets(SEED_SUBMITTED, SEED_IN_PROGRESS), headers={"client-request-id": "outer"})
    outer, *inner = sim.requests
    assert (outer.method, outer.operation, outer.status, outer.batch_id) == ("POST", "batch", 200, None)
    assert [(r.method, r.operation, r.status) for r in inner] == [("GET", "get", 200)] * 2
    assert {r.batch_id for r in inner} != {None} and len({r.batch_id for r in inner}) == 1
    assert sim.count("GET", SEED_SUBMITTED) == 1


def test_authentication_is_the_batchs(sim):
    with httpx.Client(base_url=sim.base_url) as anonymous:
        response = anonymous.post("/$batch", json=gets(SEED_SUBMITTED))
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": "Bearer wrong"}) as wrong:
        assert wrong.post("/$batch", json=gets(SEED_SUBMITTED)).status_code == 401
    assert sim.count("GET") == 0


def test_denied_operations_are_403_inside_the_batch(sim, http):
    sim.deny("get")
    answers = by_id(http.post("/$batch", json=gets(SEED_SUBMITTED)))
    assert answers["0"]["status"] == 403 and answers["0"]["body"]["error"]["code"] == "accessDenied"


def test_latency_is_paid_once_per_batch_and_can_differ_from_single_requests(sim, http):
    sim.latency = 0.2
    started = time.monotonic()
    by_id(http.post("/$batch", json=gets(*[SEED_SUBMITTED] * 20)))
    took = time.monotonic() - started
    assert 0.2 <= took < 0.2 * 5  # once, not 20 times
    sim.batch_latency = 0.0
    started = time.monotonic()
    by_id(http.post("/$batch", json=gets(SEED_SUBMITTED)))
    assert time.monotonic() - started < 0.2
    started = time.monotonic()
    http.get(f"{JOBS}/{SEED_SUBMITTED}")
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("status", [404, 405, 501])
def test_batching_can_be_unavailable_over_the_control_api(sim, http, status):
    with httpx.Client(base_url=f"{sim.url}/_sim", headers={"Authorization": f"Bearer {TOKEN}"}) as control:
        assert control.post("/batch", json={"unavailable": status}).status_code == 204
        assert http.post("/$batch", json=gets(SEED_SUBMITTED)).status_code == status
        assert http.get(f"{JOBS}/{SEED_SUBMITTED}").status_code == 200  # single requests still work
        assert control.post("/batch", json={"unavailable": None}).status_code == 204
        assert control.post("/batch", json={"unavailable": 418}).status_code == 400
        assert control.post("/latency", json={"seconds": 0, "batch_seconds": 0.5}).status_code == 204
    assert sim.batch_latency == 0.5
    assert http.post("/$batch", json=gets(SEED_SUBMITTED)).status_code == 200


def test_get_on_batch_is_405(sim, http):
    assert http.get("/$batch").status_code == 405
