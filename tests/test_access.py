"""The one authorization checkpoint, end to end: every subcommand, button and modal passes it before any Graph call
or write, every decision lands in the audit trail, and forged or malformed signed payloads change nothing."""

from __future__ import annotations

import argparse
import io
import json
from urllib.parse import urlencode

import pytest
from sqlalchemy.exc import OperationalError

from bot.cli.audit import audit_command
from bot.rehearsal.sandbox import APPROVER, CHANNEL, OUTSIDER, REQUESTER
from bot.rehearsal.simulator.seed import SEED_SUBMITTED, SEED_VALIDATE_FAILED, SEED_VALIDATE_PASSED
from bot.store import ACCESS_GRANTED, ACCESS_REFUSED, AuditQuery, RunState
from bot.ui.approval import APPROVE_ACTION, REJECT_ACTION, REJECT_CALLBACK
from bot.ui.modal import CANCEL_BUTTON_ACTION, CONFIRM_CALLBACK, VALIDATE_BUTTON_ACTION, validate_button

OTHER_TEAM = "T0ELSEWHERE"


# Helpers
def decisions(world, what=None, event=None):
    rows = [e.as_dict() for e in world.bot.store.audit_events(AuditQuery(access=True))]
    return [
        r
        for r in rows
        if r["event"] in (ACCESS_GRANTED, ACCESS_REFUSED)
        and (what is None or r["detail"]["what"] == what)
        and (event is None or r["event"] == event)
    ]


def told(world, user):
    return [e.text for e in world.slack.ephemerals if e.user == user] + [
        m.text for m in world.slack.messages("D" + user.lstrip("U"))
    ]


def wait_refused(world, user, what, contains):
    """The person was told ``contains`` and the refusal of ``what`` is in the audit table."""
    world.wait_until(lambda: any(contains in t for t in told(world, user)), what=f"{what} refusal told")
    [row] = world.wait_until(
        lambda: [r for r in decisions(world, what, ACCESS_REFUSED) if r["actor"] == user], what=f"{what} recorded"
    )
    assert contains in row["detail"]["reason"]
    return row


def request_approval(world, job_id=SEED_VALIDATE_PASSED, requester=REQUESTER):
    view = world.open_modal(job_id, user_id=requester)
    world.submit_modal(view, "CHG1", user_id=requester)
    return world.wait_until(
        lambda: (r := world.run_for(job_id)) and r.root_ts and r.state == RunState.PENDING and r, what="request"
    )


def click(
    world,
    run,
    action_id,
    *,
    user=APPROVER,
    value=None,
    channel=None,
    ts=None,
    team=None,
    user_team=None,
    enterprise=None,
    drop=(),
):
    """A signed block_actions payload for a button on ``run``'s message, with any id replaced (a forgery)."""
    message = world.slack.message(run.channel_id, run.root_ts)
    [element] = [
        e for b in message.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id
    ]
    payload = {
        "type": "block_actions",
        "user": {"id": user, "team_id": user_team or team or world.slack.team_id},
        "team": {"id": team or world.slack.team_id},
        "enterprise": {"id": enterprise} if enterprise else None,
        "api_app_id": world.slack.app_id,
        "token": "standin-verification-token",
        "trigger_id": world.slack.issue_trigger(user),
        "container": {"type": "message", "message_ts": ts or run.root_ts, "channel_id": channel or run.channel_id},
        "channel": {"id": channel or run.channel_id},
        "message": message.to_slack(),
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "type": "button",
                "value": value or element["value"],
                "action_ts": "1",
            }
        ],
    }
    for key in drop:
        payload.pop(key)
    return world.sender.payload(payload)


def view_payload(world, view, *, user, callback_id=None, metadata=None, values=None, team=None):
    """A signed view_submission of ``view`` (as stored by the stand-in), optionally with other metadata."""
    forged = dict(view, state={"values": values or {}})
    if callback_id is not None:
        forged["callback_id"] = callback_id
    if metadata is not None:
        forged["private_metadata"] = metadata
    return world.sender.payload(
        {
            "type": "view_submission",
            "user": {"id": user, "team_id": team or world.slack.team_id},
            "team": {"id": team or world.slack.team_id},
            "api_app_id": world.slack.app_id,
            "token": "standin-verification-token",
            "trigger_id": world.slack.issue_trigger(user),
            "view": forged,
        }
    )


REASON = {"reason": {"reason": {"type": "plain_text_input", "value": "CHG1"}}}


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


@pytest.fixture
def approval_world(make_world):
    return make_world(require_approval=True)


# Subcommands
@pytest.mark.parametrize(
    ("text", "what"),
    [
        (SEED_VALIDATE_PASSED, "migrate"),
        (f"validate {SEED_SUBMITTED}", "validate"),
        (f"cancel {SEED_SUBMITTED}", "cancel"),
        (f"status {SEED_SUBMITTED}", "status"),
        ("list", "list"),
        ("whoami", "whoami"),
    ],
)
def test_each_subcommand_refuses_an_outsider_before_graph_and_records_it(world, text, what):
    sent = world.sender.slash_command(text, user_id=OUTSIDER, channel_id=CHANNEL)
    assert sent.status_code == 200
    wait_refused(world, OUTSIDER, what, "not on the list")
    assert world.sim.requests == [] and world.slack.calls_to("views.open") == []
    assert world.bot.store.audit_events() == []  # nothing else happened; decisions are listed on request only


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (SEED_VALIDATE_PASSED, "migrate"),
        (f"status {SEED_SUBMITTED}", "status"),
        ("list", "list"),
        ("whoami", "whoami"),
        ("help", "help"),
    ],
)
def test_each_subcommand_from_another_workspace_is_refused_in_the_ack_and_recorded(world, text, what):
    sent = world.sender.slash_command(text, user_id=REQUESTER, channel_id=CHANNEL, team_id=OTHER_TEAM)
    assert "another Slack workspace" in sent.response.text
    [row] = world.wait_until(lambda: decisions(world, what, ACCESS_REFUSED), what="recorded")
    assert row["detail"]["team_id"] == OTHER_TEAM
    assert world.sim.requests == [] and world.slack.calls_to("views.open") == []


def test_help_is_open_to_everyone_and_recorded(world):
    sent = world.sender.slash_command("help", user_id=OUTSIDER, channel_id=CHANNEL)
    assert "Usage" in sent.response.text
    [row] = world.wait_until(lambda: decisions(world, "help"), what="recorded")
    assert row["event"] == ACCESS_GRANTED and row["actor"] == OUTSIDER


def test_allowed_steps_are_recorded_next_to_what_they_did(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.root_ts, what="root")
    granted = [(r["event"], r["detail"]["what"], r["actor"]) for r in decisions(world)]
    assert granted == [(ACCESS_GRANTED, "migrate", REQUESTER), (ACCESS_GRANTED, "submit", REQUESTER)]
    assert [e.event for e in world.bot.store.audit_events()] == ["requested", "migrate_called"]
    everything = [e.event for e in world.bot.store.audit_events(AuditQuery(access=True))]
    assert everything == [ACCESS_GRANTED, ACCESS_GRANTED, "requested", "migrate_called"]


# The modal submission
def test_submission_by_an_outsider_or_another_migrator_starts_nothing(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    assert world.bot.prompt.wait_idle(10) and world.bot.workers.wait_idle(10)  # the modal's reads are done
    graph_before = len(world.sim.requests)
    assert view_payload(world, view, user=OUTSIDER, values=REASON).status_code == 200
    wait_refused(world, OUTSIDER, "submit", "not on the list")
    assert view_payload(world, view, user=APPROVER, values=REASON).status_code == 200  # a migrator, not the owner
    wait_refused(world, APPROVER, "submit", "not yours")
    assert world.run_for(SEED_VALIDATE_PASSED) is None and len(world.sim.requests) == graph_before


def test_submission_from_another_workspace_starts_nothing(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    assert world.bot.prompt.wait_idle(10) and world.bot.workers.wait_idle(10)  # the modal's reads are done
    graph_before = len(world.sim.requests)
    view_payload(world, view, user=REQUESTER, values=REASON, team=OTHER_TEAM)
    wait_refused(world, REQUESTER, "submit", "another Slack workspace")
    assert world.run_for(SEED_VALIDATE_PASSED) is None and len(world.sim.requests) == graph_before


# Buttons
def test_approve_and_reject_by_an_outsider_are_refused_and_recorded(approval_world):
    world = approval_world
    run = request_approval(world)
    opens = len(world.slack.calls_to("views.open"))
    click(world, run, APPROVE_ACTION, user=OUTSIDER)
    wait_refused(world, OUTSIDER, "approve", "not an approver")
    click(world, run, REJECT_ACTION, user=OUTSIDER)
    wait_refused(world, OUTSIDER, "reject", "not an approver")
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING
    assert len(world.slack.calls_to("views.open")) == opens and world.sim.count("POST", "/migrate") == 0


def test_cancel_button_by_an_outsider_opens_nothing(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG1")
    run = world.wait_until(lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.root_ts and r, what="root")
    opens, graph_before = len(world.slack.calls_to("views.open")), len(world.sim.requests)
    world.sender.block_action(CHANNEL, run.root_ts, CANCEL_BUTTON_ACTION, user_id=OUTSIDER)
    wait_refused(world, OUTSIDER, "cancel", "not on the list")
    assert len(world.slack.calls_to("views.open")) == opens
    assert world.sim.count("POST", "/cancel") == 0 and len(world.sim.requests) >= graph_before


def test_validate_button_inside_someone_elses_modal_is_refused_for_an_outsider(world):
    view = world.open_modal(SEED_SUBMITTED)
    [offer] = [b for b in view["blocks"] if b["type"] == "actions"]
    updates, graph_before = len(world.slack.calls_to("views.update")), len(world.sim.requests)
    sent = world.sender.payload(
        {
            "type": "block_actions",
            "user": {"id": OUTSIDER, "team_id": world.slack.team_id},
            "team": {"id": world.slack.team_id},
            "api_app_id": world.slack.app_id,
            "trigger_id": world.slack.issue_trigger(OUTSIDER),
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "actions": [
                {
                    "action_id": VALIDATE_BUTTON_ACTION,
                    "block_id": offer["block_id"],
                    "type": "button",
                    "value": SEED_SUBMITTED,
                    "action_ts": "1",
                }
            ],
        }
    )
    assert sent.status_code == 200
    wait_refused(world, OUTSIDER, "validate", "not on the list")
    assert len(world.slack.calls_to("views.update")) == updates and len(world.sim.requests) == graph_before


def test_validate_button_on_a_message_by_an_outsider_is_refused(world):
    offer = {
        "type": "actions",
        "block_id": "offer",
        "elements": [validate_button(SEED_VALIDATE_FAILED, "Validate again")],
    }
    message_ts = world.bot.slack.chat_postMessage(channel=CHANNEL, text="offer", blocks=[offer])["ts"]
    opens, graph_before = len(world.slack.calls_to("views.open")), len(world.sim.requests)
    world.sender.block_action(CHANNEL, message_ts, VALIDATE_BUTTON_ACTION, user_id=OUTSIDER)
    wait_refused(world, OUTSIDER, "validate", "not on the list")
    assert len(world.slack.calls_to("views.open")) == opens and len(world.sim.requests) == graph_before


# Forged payloads (issue 10, item 9): the database, not the payload, names the request
def test_approve_naming_another_run_acts_on_nothing(approval_world):
    world = approval_world
    first = request_approval(world, SEED_VALIDATE_PASSED)
    second = request_approval(world, world.sim.create_job("wave4", status="validatePassed"))
    click(world, first, APPROVE_ACTION, value=str(second.id))  # first's message, second's run id
    wait_refused(world, APPROVER, "approve", "does not belong")
    assert world.bot.store.get_run(second.id).state == RunState.PENDING
    assert world.bot.store.get_run(first.id).state == RunState.PENDING
    assert world.sim.count("POST", "/migrate") == 0


def test_approve_naming_another_channel_acts_on_nothing(approval_world):
    world = approval_world
    world.slack.add_channel("C0ELSEWHERE", "elsewhere")
    run = request_approval(world)
    click(world, run, APPROVE_ACTION, channel="C0ELSEWHERE")
    wait_refused(world, APPROVER, "approve", "does not belong")
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING
    assert world.sim.count("POST", "/migrate") == 0


def test_approve_naming_another_message_acts_on_nothing(approval_world):
    world = approval_world
    run = request_approval(world)
    click(world, run, APPROVE_ACTION, ts="1700000000.000100")
    wait_refused(world, APPROVER, "approve", "does not belong")
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ({"team": OTHER_TEAM}, "another Slack workspace"),
        ({"user_team": OTHER_TEAM}, "another Slack workspace"),  # a Slack Connect guest from another organisation
        ({"enterprise": "E0OTHER"}, "another Slack organisation"),
    ],
)
@pytest.mark.parametrize("button", [APPROVE_ACTION, REJECT_ACTION])
def test_approve_and_reject_from_another_workspace_or_organisation_act_on_nothing(
    approval_world, button, forgery, reason
):
    world = approval_world
    run = request_approval(world)
    opens = len(world.slack.calls_to("views.open"))
    click(world, run, button, **forgery)
    wait_refused(world, APPROVER, "approve" if button == APPROVE_ACTION else "reject", reason)
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING
    assert len(world.slack.calls_to("views.open")) == opens and world.sim.count("POST", "/migrate") == 0


def test_reject_modal_naming_another_run_rejects_nothing(approval_world):
    world = approval_world
    first = request_approval(world, SEED_VALIDATE_PASSED)
    second = request_approval(world, world.sim.create_job("wave4", status="validatePassed"))
    world.sender.block_action(CHANNEL, first.root_ts, REJECT_ACTION, user_id=APPROVER)
    opened = world.slack.wait_for("views.open", count=3)[2]
    reject_view = world.slack.view(opened.response["view"]["id"])
    meta = json.loads(reject_view["private_metadata"])
    forged = json.dumps({**meta, "r": second.id})  # second's run id, first's channel and message
    assert view_payload(world, reject_view, user=APPROVER, metadata=forged).status_code == 200
    wait_refused(world, APPROVER, "reject", "does not belong")
    assert world.bot.store.get_run(second.id).state == RunState.PENDING
    assert world.bot.store.get_run(first.id).state == RunState.PENDING


def test_reject_modal_from_another_workspace_rejects_nothing(approval_world):
    world = approval_world
    run = request_approval(world)
    world.sender.block_action(CHANNEL, run.root_ts, REJECT_ACTION, user_id=APPROVER)
    opened = world.slack.wait_for("views.open", count=2)[1]
    reject_view = world.slack.view(opened.response["view"]["id"])
    view_payload(world, reject_view, user=APPROVER, team=OTHER_TEAM)
    wait_refused(world, APPROVER, "reject", "another Slack workspace")
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING


# Malformed signed payloads get a 4xx, not a 500
def test_malformed_button_payloads_get_400(approval_world):
    world = approval_world
    run = request_approval(world)
    assert click(world, run, APPROVE_ACTION, value="²").status_code == 400  # str.isdigit says yes, int() says no
    assert click(world, run, APPROVE_ACTION, value="not-a-run").status_code == 400
    assert click(world, run, REJECT_ACTION, drop=("channel",)).status_code == 400
    assert click(world, run, APPROVE_ACTION, drop=("user",)).status_code == 400
    assert click(world, run, APPROVE_ACTION, drop=("container",)).status_code == 400
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING
    assert world.sim.count("POST", "/migrate") == 0


def test_malformed_view_payloads_get_400(approval_world):
    world = approval_world
    view = world.open_modal(SEED_VALIDATE_PASSED)
    for metadata in (
        "",
        "not json",
        "[1]",
        json.dumps({"c": CHANNEL}),
        json.dumps({**json.loads(view["private_metadata"]), "a": "delete"}),
    ):
        sent = view_payload(world, view, user=REQUESTER, metadata=metadata, values=REASON)
        assert sent.status_code == 400, metadata
    for metadata in ("nope", json.dumps({"r": "²", "c": CHANNEL, "ts": "1.2"}), json.dumps({"r": 1})):
        sent = view_payload(world, view, user=APPROVER, callback_id=REJECT_CALLBACK, metadata=metadata)
        assert sent.status_code == 400, metadata
    assert view_payload(world, view, user=REQUESTER, callback_id=CONFIRM_CALLBACK, values=REASON).status_code == 200
    world.wait_until(lambda: world.run_for(SEED_VALIDATE_PASSED), what="the well-formed one still works")


def test_malformed_slash_command_gets_400(world):
    fields = world.sender.slash_command_fields("list", user_id=REQUESTER, channel_id=CHANNEL)
    del fields["user_id"]
    response, _, _ = world.sender.post(urlencode(fields))
    assert response.status_code == 400
    assert decisions(world) == []


def test_audit_export_includes_the_decisions_on_request(world):
    world.sender.slash_command("list", user_id=OUTSIDER, channel_id=CHANNEL)
    wait_refused(world, OUTSIDER, "list", "not on the list")

    def export(**flags):
        out = io.StringIO()
        args = argparse.Namespace(job=None, since=None, format="json", **flags)
        assert audit_command(args, world.bot_settings, out=out) == 0
        return [row["event"] for row in json.loads(out.getvalue())]

    assert export() == [] and export(access=True) == [ACCESS_REFUSED]


def test_reject_modal_submitted_by_an_outsider_rejects_nothing(approval_world):
    world = approval_world
    run = request_approval(world)
    world.sender.block_action(CHANNEL, run.root_ts, REJECT_ACTION, user_id=APPROVER)
    opened = world.slack.wait_for("views.open", count=2)[1]
    reject_view = world.slack.view(opened.response["view"]["id"])  # the approver's modal, submitted by another
    assert view_payload(world, reject_view, user=OUTSIDER).status_code == 200
    wait_refused(world, OUTSIDER, "reject", "not an approver")
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.PENDING


def test_a_decision_that_cannot_be_recorded_does_nothing_and_says_so(world, monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("INSERT INTO audit_events", {}, Exception("database is locked"))

    monkeypatch.setattr(world.bot.store, "audit", locked)
    world.sender.slash_command(f"status {SEED_SUBMITTED}", user_id=REQUESTER, channel_id=CHANNEL)
    world.wait_until(lambda: any("could not record" in t for t in told(world, REQUESTER)), what="told")
    assert world.sim.requests == []
