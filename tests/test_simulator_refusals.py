"""The simulator refuses what Graph refuses: tokens and permissions, the strict readings, OData options, /v1.0."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from bot.cli.simulator import LAX, simulator_options
from bot.rehearsal.simulator import SimOptions
from bot.rehearsal.simulator.seed import (
    SEED_JOBS,
    SEED_SUBMITTED,
    SEED_VALIDATE_FAILED,
    SEED_VALIDATE_PASSED,
)
from bot.rehearsal.simulator.tokens import GLOBAL_ADMINISTRATOR, READ
from tests.support.graph import TOKEN, sim, start_simulator  # noqa: F401

JOBS = "/solutions/migrations/crossTenantMigrationJobs"


def call(sim, method, path, token, base=None):
    return httpx.request(method, f"{base or sim.base_url}{path}", headers={"Authorization": f"Bearer {token}"})


# Tokens
@pytest.mark.parametrize(
    ("preset", "read", "act"),
    [
        ("migration-admin", 200, 200),
        ("global-admin", 200, 200),
        ("reader", 200, 403),
        ("no-role", 403, 403),
        ("app", 200, 403),  # validate/migrate pages: app-only not supported (strict default)
        ("app-reader", 200, 403),
        ("expired", 401, 401),
    ],
)
def test_each_preset_token_gets_what_graph_gives_it(sim, preset, read, act):
    token = sim.mint_token(preset)
    got = call(sim, "GET", f"{JOBS}/{SEED_VALIDATE_PASSED}", token)
    assert got.status_code == read
    acted = call(sim, "POST", f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate", token)
    assert acted.status_code == act
    if act != 200:
        error = acted.json()["error"]
        assert set(error) == {"code", "message", "innerError"} and error["innerError"]["request-id"]
        assert error["code"] == ("InvalidAuthenticationToken" if act == 401 else "accessDenied")
        assert sim.job(SEED_VALIDATE_PASSED)["status"] == "validatePassed"


def test_app_only_actions_is_a_switch():
    simulator = start_simulator(options=SimOptions(app_only_actions=True))
    try:
        token = simulator.mint_token("app")
        assert call(simulator, "POST", f"{JOBS}/{SEED_VALIDATE_PASSED}/migrate", token).status_code == 200
        reader = simulator.mint_token("app-reader")
        assert call(simulator, "POST", f"{JOBS}/{SEED_SUBMITTED}/validate", reader).status_code == 403
    finally:
        simulator.stop()


def test_malformed_forged_and_foreign_tokens_are_401(sim):
    other = start_simulator(seed=False)
    try:
        foreign = other.mint_token("migration-admin")  # signed with another simulator's key
    finally:
        other.stop()
    good = sim.mint_token("migration-admin")
    for token in ("not-a-jwt", "a.b.c", foreign, good[:-4] + "AAAA"):
        refused = call(sim, "GET", JOBS, token)
        assert refused.status_code == 401, token
        assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert call(sim, "GET", JOBS, good).status_code == 200
    assert call(sim, "GET", JOBS, TOKEN).status_code == 200  # the static token: a full-rights delegated admin


def test_custom_claims_and_the_control_api_mints_tokens(sim):
    minted = httpx.post(
        f"{sim.url}/_sim/tokens",
        json={"permissions": [READ], "directory_roles": [GLOBAL_ADMINISTRATOR]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert minted.status_code == 201
    token = minted.json()["access_token"]
    assert call(sim, "GET", JOBS, token).status_code == 200
    assert call(sim, "POST", f"{JOBS}/{SEED_SUBMITTED}/validate", token).status_code == 403
    preset = httpx.post(
        f"{sim.url}/_sim/tokens", json={"preset": "expired"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert call(sim, "GET", JOBS, preset.json()["access_token"]).status_code == 401
    assert (
        httpx.post(
            f"{sim.url}/_sim/tokens", json={"preset": "root"}, headers={"Authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 400
    )


# The update page versus the overview on a past completeAfterDateTime
@pytest.mark.parametrize("reject_past", [True, False])
def test_a_past_complete_after_is_400_or_starts_cutover_at_once(reject_past):
    simulator = start_simulator(seed=False, options=SimOptions(reject_past_complete_after=reject_past))
    try:
        job_id = simulator.create_job("wave13", "validatePassed")
        assert call(simulator, "POST", f"{JOBS}/{job_id}/migrate", TOKEN).status_code == 200
        simulator.clock.advance(3600)  # synced; cutover waits for the date, 14 days ahead
        assert simulator.job(job_id)["status"] == "inProgress"
        past = (simulator.clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        patched = httpx.patch(
            f"{simulator.base_url}{JOBS}/{job_id}",
            json={"completeAfterDateTime": past},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        if reject_past:  # the overview: can't be set in the past
            assert patched.status_code == 400 and simulator.job(job_id)["status"] == "inProgress"
        else:  # the update page: processing starts right away
            assert patched.status_code == 204 and simulator.job(job_id)["status"] in ("cuttingOver", "completed")
    finally:
        simulator.stop()


# OData
def odata(sim, query, path=JOBS):
    return httpx.get(f"{sim.base_url}{path}?{query}", headers={"Authorization": f"Bearer {TOKEN}"})


def test_top_sets_the_page_size_and_next_links_keep_the_options(sim):
    first = odata(sim, "$top=2&$count=true&$select=id,status")
    assert first.status_code == 200
    body = first.json()
    assert len(body["value"]) == 2 and body["@odata.count"] == len(SEED_JOBS)
    assert all(set(item) == {"id", "status"} for item in body["value"])
    seen = [item["id"] for item in body["value"]]
    link = body["@odata.nextLink"]
    while link:
        assert "$top=2" in link and "$select=id,status" in link and "$skiptoken=" in link
        page = httpx.get(link, headers={"Authorization": f"Bearer {TOKEN}"}).json()
        seen += [item["id"] for item in page["value"]]
        link = page.get("@odata.nextLink")
    assert sorted(seen) == sorted(job.id for job in SEED_JOBS)


def test_filter_on_status_and_orderby(sim):
    passed = odata(sim, "$filter=status eq 'validatePassed'").json()["value"]
    assert passed and {job["status"] for job in passed} == {"validatePassed"}
    either = odata(sim, "$filter=status eq 'submitted' or status eq 'VALIDATEFAILED'").json()["value"]
    assert {job["id"] for job in either} == {SEED_SUBMITTED, SEED_VALIDATE_FAILED}
    names = [job["displayName"] for job in odata(sim, "$orderby=displayName desc&$top=100").json()["value"]]
    assert names == sorted(names, reverse=True) and len(names) == len(SEED_JOBS)
    oldest = odata(sim, "$orderby=createdDateTime asc").json()["value"]
    assert [job["createdDateTime"] for job in oldest] == sorted(job["createdDateTime"] for job in oldest)


def test_count_segment_answers_a_plain_integer(sim):
    everything = odata(sim, "", f"{JOBS}/$count")
    assert everything.status_code == 200 and everything.headers["content-type"].startswith("text/plain")
    assert int(everything.text) == len(SEED_JOBS)
    assert odata(sim, "$filter=status eq 'validatePassed'", f"{JOBS}/$count").text == str(
        sum(1 for job in SEED_JOBS if job.status == "validatePassed")
    )
    users = odata(sim, "", f"{JOBS}/{SEED_SUBMITTED}/users/$count")
    assert users.status_code == 200 and int(users.text) == len(sim.state.tasks(SEED_SUBMITTED))


@pytest.mark.parametrize(
    "query",
    [
        "$expand=users",
        "$search=wave",
        "$skip=2",
        "$format=json",
        "$top=0",
        "$top=abc",
        "$select=colour",
        "$filter=displayName eq 'x'",
        "$filter=status ne 'x'",
        "$orderby=message",
        "$orderby=status sideways",
        "$count=maybe",
    ],
)
def test_unsupported_or_invalid_options_get_graphs_400(sim, query):
    refused = odata(sim, query)
    assert refused.status_code == 400, query
    assert refused.json()["error"]["code"] == "BadRequest" and refused.json()["error"]["message"]


def test_users_collection_supports_top_and_refuses_filter(sim):
    page = odata(sim, "$top=1&$count=true", f"{JOBS}/{SEED_SUBMITTED}/users").json()
    assert len(page["value"]) == 1 and page["@odata.count"] == len(sim.state.tasks(SEED_SUBMITTED))
    assert odata(sim, "$filter=status eq 'x'", f"{JOBS}/{SEED_SUBMITTED}/users").status_code == 400


def test_get_supports_select_only(sim):
    job = odata(sim, "$select=displayName", f"{JOBS}/{SEED_SUBMITTED}").json()
    assert {key for key in job if not key.startswith("@")} == {"id", "displayName"}
    assert odata(sim, "$top=1", f"{JOBS}/{SEED_SUBMITTED}").status_code == 400


# /v1.0
def test_v1_is_served_beside_beta(sim):
    got = call(sim, "GET", f"{JOBS}/{SEED_SUBMITTED}", TOKEN, base=sim.v1_url)
    assert got.status_code == 200 and got.json()["@odata.context"].startswith(f"{sim.url}/v1.0/$metadata")
    assert call(sim, "POST", f"{JOBS}/{SEED_SUBMITTED}/validate", TOKEN, base=sim.v1_url).status_code == 200
    assert sim.job(SEED_SUBMITTED)["status"] == "validateSubmitted"
    assert call(sim, "GET", JOBS, TOKEN, base=f"{sim.url}/v2.0").status_code == 404


def test_lax_switches_map_to_the_permissive_readings(sim):
    assert simulator_options([]) == SimOptions()  # strict by default
    lax = simulator_options(list(LAX))
    assert (lax.revalidate_expired, lax.cancel_in_progress, lax.app_only_actions) == (True, True, True)
    assert lax.reject_past_complete_after is False
    changed = httpx.post(
        f"{sim.url}/_sim/options", json={"cancel_in_progress": True}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert changed.status_code == 200 and sim.state.options.cancel_in_progress
