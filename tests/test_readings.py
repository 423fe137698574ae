"""The bot's flows where Graph's documents contradict each other, under both readings (the simulator's switches),
and the bot's 401/403 advice against the simulator's signed tokens. The strict reading is the simulator's default."""

from __future__ import annotations

import httpx
import pytest

from bot.credential.base import StaticToken
from bot.rehearsal.sandbox import REQUESTER
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS, SEED_VALIDATE_PASSED, SEED_VALIDATION_EXPIRED
from bot.store import RunState
from bot.ui.modal import CANCEL_BUTTON_ACTION
from tests.test_admin_commands import (
    VALIDATION_SECONDS,
    dump,
    finish_via_poller,
    open_modal,
    reply_to,
    run_of,
    submit,
    wait_posted,
)

JOBS = "/solutions/migrations/crossTenantMigrationJobs"


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


@pytest.mark.parametrize("revalidate_expired", [False, True])
def test_an_expired_validation_gets_advice_that_works(world, revalidate_expired):
    world.sim.set_options(revalidate_expired=revalidate_expired)
    for action in ("", "validate"):
        view = open_modal(world, action, SEED_VALIDATION_EXPIRED)
        assert not view.get("submit") and "no revalidation" in dump(view), action
        assert f"/migrate cancel {SEED_VALIDATION_EXPIRED}" in dump(view)
        offered = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert offered == [CANCEL_BUTTON_ACTION]  # the way out; no "Validate" button that Graph would refuse
    assert world.sim.count("POST", "/validate") == world.sim.count("POST", "/migrate") == 0
    # The advice, step 1: cancel the job (no user has moved).
    users = [task["id"] for task in world.sim.state.tasks(SEED_VALIDATION_EXPIRED)]
    view = open_modal(world, "cancel", SEED_VALIDATION_EXPIRED)
    submit(world, view, "CHG0070 validation expired")
    world.wait_until(lambda: world.sim.job(SEED_VALIDATION_EXPIRED)["status"] == "pendingCancel", what="cancel")
    world.sim.clock.advance(61)
    assert world.sim.job(SEED_VALIDATION_EXPIRED)["status"] == "cancelled"
    # Step 2: a new job for the same users, as an admin creates it (Graph accepts: they are in no active batch).
    job = world.sim.job(SEED_VALIDATION_EXPIRED)
    created = httpx.post(
        f"{world.sim.base_url}{JOBS}",
        headers={"Authorization": f"Bearer {world.sim.mint_token('migration-admin')}"},
        json={
            "displayName": "wave2_hr_again",
            "completeAfterDateTime": job["completeAfterDateTime"],
            "sourceTenantId": job["sourceTenantId"],
            "resourceType": "Users",
            "resources": users,
            "workloads": job["workloads"],
            "exchangeSettings": job["exchangeSettings"],
        },
    )
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    # Step 3: the bot validates it and starts it.
    submit(world, open_modal(world, "validate", new_id), "CHG0071")
    run = wait_posted(world, new_id, "validate", RunState.RUNNING)
    finish_via_poller(world, run, VALIDATION_SECONDS)
    assert world.sim.job(new_id)["status"] == "validatePassed"
    view = open_modal(world, "", new_id)
    assert view["submit"]["text"] == "Start migration"
    submit(world, view, "CHG0072")
    world.wait_until(lambda: world.sim.job(new_id)["status"] == "processing", what="migration started")


@pytest.mark.parametrize("cancel_in_progress", [False, True])
def test_cancelling_a_syncing_migration_under_both_readings(world, cancel_in_progress):
    world.sim.set_options(cancel_in_progress=cancel_in_progress)
    view = open_modal(world, "cancel", SEED_IN_PROGRESS)
    assert view["submit"]["text"] == "Cancel the job" and "refuses it (409) once the migration" in dump(view)
    submit(world, view, "CHG0090")
    if cancel_in_progress:  # the admin table: allowed until completeAfterDateTime
        world.wait_until(lambda: world.sim.job(SEED_IN_PROGRESS)["status"] == "pendingCancel", what="cancel")
        return
    shown = reply_to(world, REQUESTER, "Could not cancel the job")  # the cancel page: 409 once in progress
    assert "in progress" in shown.text and "no user has been cut over yet" in shown.text
    assert "Cutover has already begun" not in shown.text  # the job read back says otherwise
    assert world.sim.job(SEED_IN_PROGRESS)["status"] == "inProgress"
    world.wait_until(lambda: (r := run_of(world, SEED_IN_PROGRESS, "cancel")) and r.state == RunState.NOT_STARTED)


@pytest.mark.parametrize("app_only_actions", [False, True])
def test_migrate_with_an_application_token_under_both_readings(world, app_only_actions):
    world.sim.set_options(app_only_actions=app_only_actions)
    world.stop_bot()
    world.start_bot(tokens=StaticToken(world.sim.mint_token("app")))
    view = world.open_modal(SEED_VALIDATE_PASSED)  # reads work app-only under both readings
    assert view["submit"]["text"] == "Start migration"
    world.submit_modal(view, "CHG0100")
    if app_only_actions:
        world.wait_until(lambda: world.sim.job(SEED_VALIDATE_PASSED)["status"] == "processing", what="started")
        return
    shown = reply_to(world, REQUESTER, "Could not start the migration")
    assert (
        "refused the admin credential" in shown.text
        and "app-only" in shown.text
        and "delegated admin sign-in" in shown.text
    )
    assert world.sim.job(SEED_VALIDATE_PASSED)["status"] == "validatePassed"


@pytest.mark.parametrize(
    ("preset", "where", "advice"),
    [
        ("expired", "modal", "migrate-bot login"),  # 401: the token itself
        ("reader", "submit", "ReadWrite.All"),  # 403: reads work, the action does not
        ("no-role", "modal", "Migration Administrator"),  # 403: not an admin at all
    ],
)
def test_the_bots_401_and_403_advice_against_signed_tokens(world, preset, where, advice):
    world.stop_bot()
    world.start_bot(tokens=StaticToken(world.sim.mint_token(preset)))
    view = world.open_modal(SEED_VALIDATE_PASSED)
    if where == "modal":
        assert not view.get("submit") and advice in dump(view)
        return
    world.submit_modal(view, "CHG0110")
    shown = reply_to(world, REQUESTER, "Could not start the migration")
    assert advice in shown.text and "Migration Administrator" in shown.text
    assert world.sim.job(SEED_VALIDATE_PASSED)["status"] == "validatePassed"
