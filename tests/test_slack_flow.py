"""/migrate end to end: signed Slack requests in, the Slack stand-in and the Graph simulator behind."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from bot.rehearsal.sandbox import CHANNEL, OUTSIDER, REQUESTER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED, SEED_VALIDATION_EXPIRED
from bot.store import RunState, Store
from bot.ui.modal import ModalContext

UNKNOWN_JOB = "0c0ffee0-0000-4000-8000-000000000404"


def ephemerals_for(world, user):
    return [e.text for e in world.slack.ephemerals if e.user in (user, None)]


def mrkdwn_strings(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [s for value in node.values() for s in mrkdwn_strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in mrkdwn_strings(item)]
    return []


def graph_calls(world) -> int:
    return len(world.sim.requests)


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


def test_happy_path_from_command_to_root_message(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    assert view["submit"]["text"] == "Start migration"
    rendered = json.dumps(view)
    assert "wave3_finance" in rendered and "validatePassed" in rendered and "3 users" in rendered
    sent = world.submit_modal(view, "CHG0012345 wave 3 finance")
    assert sent.status_code == 200
    run = world.wait_until(lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.root_ts and r, what="root")
    assert run.state == RunState.RUNNING and run.requester_id == REQUESTER
    assert run.reason == "CHG0012345 wave 3 finance"
    assert world.sim.count("POST", "/migrate") == 1
    [root] = world.slack.messages(CHANNEL)
    assert root.ts == run.root_ts
    text = json.dumps(root.blocks)
    assert "wave3_finance" in text and SEED_VALIDATE_PASSED in text and f"<@{REQUESTER}>" in text
    assert "CHG0012345" in text and "processing" in text and "<!date^" in text
    events = [e.event for e in world.bot.store.audit_events()]
    assert events == ["requested", "migrate_called"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Usage"),
        ("help", "Usage"),
        ("not-a-guid", "is not a job id"),
        (f"{SEED_VALIDATE_PASSED} extra", "single job id"),
        ("<!channel>", "&lt;!channel&gt;"),
    ],
)
def test_help_and_bad_input_answer_in_the_ack(world, text, expected):
    sent = world.sender.slash_command(text, user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    assert expected in sent.response.text
    assert world.slack.calls_to("views.open") == []
    assert graph_calls(world) == 0


def test_unauthorized_user_is_denied_without_graph(world):
    sent = world.sender.slash_command(SEED_VALIDATE_PASSED, user_id=OUTSIDER, channel_id=CHANNEL)
    assert sent.status_code == 200
    world.wait_until(lambda: ephemerals_for(world, OUTSIDER), what="denial")
    assert "not on the list" in ephemerals_for(world, OUTSIDER)[0]
    assert world.slack.calls_to("views.open") == [] and graph_calls(world) == 0


def test_channel_not_allowed_is_denied(make_world):
    world = make_world(require_approval=False, allowed_channels=["C0OTHER"])
    sent = world.sender.slash_command(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL)
    assert "can't be started from this channel" in sent.response.text
    assert world.slack.calls_to("views.open") == [] and graph_calls(world) == 0


def test_other_workspace_is_denied(world):
    sent = world.sender.slash_command(
        SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL, team_id="T0ELSEWHERE"
    )
    assert "another Slack workspace" in sent.response.text
    assert world.slack.calls_to("views.open") == [] and graph_calls(world) == 0


def test_unknown_job_shows_404_in_the_modal(world):
    view = world.open_modal(UNKNOWN_JOB)
    rendered = json.dumps(view)
    assert "Job not found" in rendered and "Check the job id" in rendered
    assert not view.get("submit")


def test_expired_validation_offers_no_submit_and_says_what_works(world):
    view = world.open_modal(SEED_VALIDATION_EXPIRED)
    rendered = json.dumps(view)
    assert not view.get("submit")
    assert "older than 7 days" in rendered and "no revalidation" in rendered and "/migrate validate" not in rendered
    assert f"/migrate cancel {SEED_VALIDATION_EXPIRED}" in rendered and "new job for the same users" in rendered


def test_wrong_status_409_is_explained_and_nothing_recorded_as_started(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.sim.set_status(SEED_VALIDATE_PASSED, "validateFailed")
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: ephemerals_for(world, REQUESTER), what="refusal")
    text = ephemerals_for(world, REQUESTER)[0]
    assert "status does not allow" in text and "not permitted for this batch (validateFailed)" in text
    run = world.run_for(SEED_VALIDATE_PASSED)
    assert run.state == RunState.NOT_STARTED and run.root_ts is None
    assert world.slack.messages(CHANNEL) == []


def test_validation_expiring_between_modal_and_submit_is_explained(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.sim.clock.advance(timedelta(days=8).total_seconds())
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: ephemerals_for(world, REQUESTER), what="refusal")
    text = ephemerals_for(world, REQUESTER)[0]
    assert "Validation expired" in text and "no revalidation" in text and "/migrate cancel" in text
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.NOT_STARTED


def test_403_names_the_admin_roles(world):
    world.sim.deny("migrate")
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: ephemerals_for(world, REQUESTER), what="refusal")
    text = ephemerals_for(world, REQUESTER)[0]
    assert "Migration Administrator" in text and "Global Administrator" in text
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.NOT_STARTED


def test_hostile_job_name_pings_nobody(world):
    job_id = world.sim.create_job("<!channel> urgent <@U123> & co", status="validatePassed", message="<!here> look")
    view = world.open_modal(job_id)
    world.submit_modal(view, "<!everyone> please")
    run = world.wait_until(lambda: (r := world.run_for(job_id)) and r.root_ts and r, what="root")
    surfaces = [
        view,
        world.slack.view(view["id"]),
        world.slack.message(CHANNEL, run.root_ts).blocks,
        world.slack.message(CHANNEL, run.root_ts).text,
    ]
    for surface in surfaces:
        for text in mrkdwn_strings(surface) if not isinstance(surface, str) else [surface]:
            for raw in ("<!channel>", "<@U123>", "<!here>", "<!everyone>"):
                assert raw not in text
    assert "&lt;!channel&gt; urgent &lt;@U123&gt; &amp; co" in json.dumps(world.slack.view(view["id"]))


def test_slow_graph_does_not_delay_the_ack_or_the_modal(world):
    world.sim.latency = 2.5
    sent = world.sender.slash_command(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    assert sent.ack_seconds < 2.0  # acked without waiting for Graph's 2.5 s
    [opened] = world.slack.wait_for("views.open")
    assert opened.ok  # the trigger was still fresh
    first_graph = world.wait_until(lambda: world.sim.requests, what="graph request")[0]
    assert opened.time <= first_graph.time + 2.5  # the modal opened before Graph answered
    [updated] = world.slack.wait_for("views.update", timeout=15)
    assert updated.ok and "wave3_finance" in json.dumps(updated.args)


@pytest.mark.parametrize("tamper", ["bad_signature", "stale"])
def test_bad_signature_and_stale_timestamp_get_401_and_change_nothing(world, tamper):
    sent = world.sender.slash_command(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL, **{tamper: True})
    assert sent.status_code == 401
    assert world.slack.calls_to("views.open") == [] and graph_calls(world) == 0


def test_second_migrate_for_a_job_in_flight_links_the_thread(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.root_ts, what="root")
    world.sender.slash_command(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL)
    world.wait_until(lambda: ephemerals_for(world, REQUESTER), what="busy notice")
    text = ephemerals_for(world, REQUESTER)[0]
    assert "already has a migrate run" in text and "http" in text
    assert len(world.slack.calls_to("views.open")) == 1
    assert world.sim.count("POST", "/migrate") == 1


def test_empty_reason_is_refused_inline(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    sent = world.submit_modal(view, "   ")
    assert sent.ack["response_action"] == "errors" and "reason" in sent.ack["errors"]
    assert world.sim.count("POST", "/migrate") == 0


def test_bot_not_in_channel_still_tracks_and_tells_the_requester(world):
    world.slack.set_bot_member(CHANNEL, False)
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG1")
    world.wait_until(
        lambda: any("invite" in t.lower() for t in ephemerals_for(world, REQUESTER)) or world.slack.messages("D0ALICE"),
        what="notice",
    )
    run = world.run_for(SEED_VALIDATE_PASSED)
    assert run.state == RunState.RUNNING and run.root_ts is None


def test_healthz(world):
    response = httpx.get(world.server.url + "/healthz")
    assert response.status_code == 200 and response.json()["ok"] is True


def test_restart_settles_a_run_interrupted_during_migrate(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.stop_bot()  # the bot dies after recording the run, around the migrate call
    store = Store.from_url(world.bot_settings.resolved_database_url)
    ctx = ModalContext.decode(view["private_metadata"])
    interrupted = store.create_run(
        job_id=ctx.job_id, channel_id=CHANNEL, requester_id=REQUESTER, reason="r", state=RunState.STARTING
    )
    other_job = world.sim.create_job("wave9", status="inProgress")
    took_effect = store.create_run(
        job_id=other_job, channel_id=CHANNEL, requester_id=REQUESTER, reason="r", state=RunState.STARTING
    )
    world.start_bot()
    world.wait_until(lambda: world.bot.store.get_run(interrupted.id).state == RunState.NOT_STARTED, what="closed")
    run = world.wait_until(
        lambda: (r := world.bot.store.get_run(took_effect.id)).state == RunState.RUNNING and r, what="followed"
    )
    world.wait_until(lambda: world.bot.tracker.is_following(run.id), what="poller")
    assert run.started_at == took_effect.created_at  # when it was called, not when the restart found it
    assert any(
        "did not start" in t
        for t in ephemerals_for(world, REQUESTER) + [m.text for m in world.slack.messages("D0ALICE")]
    )
    assert world.sim.count("POST", "/migrate") == 0


@pytest.mark.parametrize("posted", [True, False])
def test_root_message_whose_answer_was_lost_is_posted_once(world, posted):
    world.slack.fail_next("chat.postMessage", status=500, applied=posted)  # Slack answered 500: posted or not?
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG1")
    run = world.wait_until(
        lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.state == RunState.RUNNING and r, what="running"
    )
    run = world.wait_until(
        lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.root_pending and r, what="root pending"
    )
    assert run.root_ts is None
    world.bot.tracker.poll_once(run.id)  # the poller looks before it posts
    run = world.run_for(SEED_VALIDATE_PASSED)
    roots = world.slack.messages(CHANNEL)
    assert len(roots) == 1 and run.root_ts == roots[0].ts and not run.root_pending
    world.bot.tracker.poll_once(run.id)
    assert len(world.slack.messages(CHANNEL)) == 1
    assert len(world.slack.calls_to("conversations.history")) == 1
