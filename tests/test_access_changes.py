"""The checkpoint on the paths issue 15 added: paging and Remove in the users modal, the remove and reschedule forms,
a reminder's Reschedule button, Approve / Reject of change requests and the App Home tab. Each is decided and
recorded before any Graph call or write, and forged or malformed signed payloads change nothing."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.change_store import ChangeState
from bot.rehearsal.sandbox import APPROVER, APPROVERS, CHANNEL, MIGRATORS, OUTSIDER, REQUESTER
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS
from bot.store import ACCESS_GRANTED, ACCESS_REFUSED, RunState
from bot.ui.changes import CHANGE_APPROVE_ACTION, CHANGE_REJECT_ACTION, REASON_ACTION, REASON_BLOCK, REMOVE_CALLBACK
from bot.ui.reminders import RESCHEDULE_BUTTON_ACTION, reschedule_button
from bot.ui.reschedule import DATE_ACTION, DATE_BLOCK, RESCHEDULE_CALLBACK, TIME_ACTION, TIME_BLOCK
from bot.ui.users import PAGE_ACTION, REMOVE_BUTTON_ACTION
from bot.workflow.home import VIEWERS_KEY
from tests.test_access import OTHER_TEAM, click, decisions, told, view_payload, wait_refused

REASON = {REASON_BLOCK: {REASON_ACTION: {"type": "plain_text_input", "value": "CHG20"}}}
LATER = {
    DATE_BLOCK: {DATE_ACTION: {"type": "datepicker", "selected_date": "2099-01-05"}},
    TIME_BLOCK: {TIME_ACTION: {"type": "timepicker", "selected_time": "09:00"}},
    **REASON,
}


@pytest.fixture
def world(make_world):
    return make_world(require_approval=True)


def idle(world):
    """Every pool is done (the forms and modals are filled): Graph requests counted from here are new ones."""
    assert world.bot.prompt.wait_idle(10) and world.bot.workers.wait_idle(10)
    return len(world.sim.requests)


def victims(world, job_id=SEED_IN_PROGRESS):
    return sorted(task.id for task in world.bot.graph.list_tasks(job_id))


def opened_by(world, text, user=REQUESTER):
    """The modal ``/migrate <text>`` opened, once it is filled."""
    updates = len(world.slack.calls_to("views.update"))
    assert world.sender.slash_command(text, user_id=user, channel_id=CHANNEL).status_code == 200
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    return world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])


def request_removal(world, victim, job_id=SEED_IN_PROGRESS):
    form = opened_by(world, f"remove {job_id} {victim}")
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=REASON)
    return world.wait_until(
        lambda: (
            (c := [c for c in world.bot.desk.changes.for_job(job_id) if c.target == victim])
            and c[0].message_ts
            and c[0]
        ),
        what="change request posted",
    )


def on_message(change):
    """A change request's message, addressed as :func:`tests.test_access.click` addresses a run's."""
    return SimpleNamespace(channel_id=change.channel_id, root_ts=change.message_ts)


def state(world, change):
    return world.bot.desk.changes.get(change.id).state


def graph_writes(world):
    return [r for r in world.sim.requests if r.method != "GET"]


# Approve / Reject of a change request
def test_change_approve_and_reject_by_an_outsider_are_refused_and_recorded(world):
    change = request_removal(world, victims(world)[0])
    before = idle(world)
    click(world, on_message(change), CHANGE_APPROVE_ACTION, user=OUTSIDER)
    row = wait_refused(world, OUTSIDER, "change_approve", "not an approver")
    assert row["detail"]["change_id"] == change.id and row["job_id"] == SEED_IN_PROGRESS
    assert row["detail"]["message_ts"] == change.message_ts
    click(world, on_message(change), CHANGE_REJECT_ACTION, user=OUTSIDER)
    wait_refused(world, OUTSIDER, "change_reject", "not an approver")
    assert state(world, change) == ChangeState.PENDING and len(world.sim.requests) == before
    refused = [e.event for e in world.bot.store.audit_events() if e.actor == OUTSIDER]
    assert refused == ["remove_approval_refused"]  # the change's own trail keeps the refused approval too


def test_the_requester_can_withdraw_but_not_approve_their_own_change(world):
    change = request_removal(world, victims(world)[0])
    before = idle(world)
    click(world, on_message(change), CHANGE_APPROVE_ACTION, user=REQUESTER)
    wait_refused(world, REQUESTER, "change_approve", "own request")
    assert state(world, change) == ChangeState.PENDING and len(world.sim.requests) == before
    click(world, on_message(change), CHANGE_REJECT_ACTION, user=REQUESTER)
    world.wait_until(lambda: state(world, change) == ChangeState.REJECTED, what="withdrawn")
    [granted] = decisions(world, "change_reject", ACCESS_GRANTED)
    assert granted["actor"] == REQUESTER and granted["detail"]["change_id"] == change.id
    assert graph_writes(world) == []


def test_self_approval_of_a_change_follows_allow_self_approval(make_world):
    world = make_world(require_approval=True, allow_self_approval=True, approvers=[REQUESTER])
    victim = victims(world)[0]
    change = request_removal(world, victim)
    click(world, on_message(change), CHANGE_APPROVE_ACTION, user=REQUESTER)
    world.wait_until(lambda: state(world, change) == ChangeState.DONE, what="removed")
    assert world.sim.count("POST", f"/users/{victim}/cancel") == 1
    [granted] = decisions(world, "change_approve")
    assert granted["event"] == ACCESS_GRANTED and granted["actor"] == REQUESTER


def test_an_approved_change_is_recorded_before_graph_is_called(world):
    victim = victims(world)[0]
    change = request_removal(world, victim)
    click(world, on_message(change), CHANGE_APPROVE_ACTION, user=APPROVER)
    world.wait_until(lambda: state(world, change) == ChangeState.DONE, what="removed")
    [granted] = decisions(world, "change_approve", ACCESS_GRANTED)
    assert granted["actor"] == APPROVER and granted["detail"]["change_id"] == change.id
    events = [e.event for e in world.bot.store.audit_events() if e.job_id == SEED_IN_PROGRESS]
    assert events == ["remove_requested", "remove_approved", "remove_done"]


# Forged change requests (issue 10, item 9, for changes): the database, not the payload, names the change
def test_approve_naming_another_change_acts_on_nothing(world):
    first_victim, second_victim = victims(world)[:2]
    first, second = request_removal(world, first_victim), request_removal(world, second_victim)
    click(world, on_message(first), CHANGE_APPROVE_ACTION, value=str(second.id))  # first's message, second's id
    wait_refused(world, APPROVER, "change_approve", "does not belong")
    assert state(world, first) == state(world, second) == ChangeState.PENDING
    assert world.sim.count("POST", "/cancel") == 0


def test_approve_of_an_unknown_change_acts_on_nothing(world):
    change = request_removal(world, victims(world)[0])
    click(world, on_message(change), CHANGE_APPROVE_ACTION, value="987654")
    wait_refused(world, APPROVER, "change_approve", "no longer exists")
    assert state(world, change) == ChangeState.PENDING and world.sim.count("POST", "/cancel") == 0


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ({"channel": "C0ELSEWHERE"}, "does not belong"),
        ({"ts": "1700000000.000100"}, "does not belong"),
        ({"team": OTHER_TEAM}, "another Slack workspace"),
        ({"user_team": OTHER_TEAM}, "another Slack workspace"),
        ({"enterprise": "E0OTHER"}, "another Slack organisation"),
    ],
)
@pytest.mark.parametrize("button", [CHANGE_APPROVE_ACTION, CHANGE_REJECT_ACTION])
def test_change_buttons_from_elsewhere_act_on_nothing(world, button, forgery, reason):
    world.slack.add_channel("C0ELSEWHERE", "elsewhere")
    change = request_removal(world, victims(world)[0])
    before = idle(world)
    click(world, on_message(change), button, **forgery)
    wait_refused(world, APPROVER, "change_approve" if button == CHANGE_APPROVE_ACTION else "change_reject", reason)
    assert state(world, change) == ChangeState.PENDING and len(world.sim.requests) == before


# The users modal: Previous / Next and Remove
def many_users(world):
    """A syncing batch of 25 users (three pages, a Remove button on each user), shown in a users modal."""
    now = world.sim.clock.now()
    job_id = world.sim.create_job("wave21_many", "inProgress", users=25, completed_after=now + timedelta(days=2))
    view = opened_by(world, f"users {job_id}")
    assert f"{PAGE_ACTION}_next" in json.dumps(view) and REMOVE_BUTTON_ACTION in json.dumps(view)
    return view


@pytest.mark.parametrize(
    ("user", "team", "reason"),
    [(OUTSIDER, None, "not on the list"), (REQUESTER, OTHER_TEAM, "another Slack workspace")],
)
@pytest.mark.parametrize(("button", "what"), [(f"{PAGE_ACTION}_next", "users_page"), (REMOVE_BUTTON_ACTION, "remove")])
def test_paging_and_remove_in_the_users_modal_are_checked(world, button, what, user, team, reason):
    view = many_users(world)
    before, updates, pushes = idle(world), world.slack.calls_to("views.update"), world.slack.calls_to("views.push")
    assert world.sender.view_block_action(view["id"], button, user_id=user, team_id=team).status_code == 200
    row = wait_refused(world, user, what, reason)
    assert row["detail"]["channel_id"] == CHANNEL and row["job_id"] == json.loads(view["private_metadata"])["j"]
    assert len(world.sim.requests) == before and world.bot.store.audit_events() == []
    assert world.slack.calls_to("views.update") == updates and world.slack.calls_to("views.push") == pushes


def test_paging_by_a_reader_is_recorded(world):
    view = many_users(world)
    world.sender.view_block_action(view["id"], f"{PAGE_ACTION}_next", user_id=APPROVER)  # an approver may read
    world.wait_until(lambda: decisions(world, "users_page"), what="recorded")
    [row] = decisions(world, "users_page")
    assert row["event"] == ACCESS_GRANTED and row["actor"] == APPROVER
    world.wait_until(lambda: "page 2 of 3" in json.dumps(world.slack.view(view["id"])), what="page 2 shown")


# The remove and reschedule forms
def forms(world):
    """The remove form and the reschedule form, each opened (and filled) by the requester."""
    remove = opened_by(world, f"remove {SEED_IN_PROGRESS} {victims(world)[0]}")
    reschedule = opened_by(world, f"reschedule {SEED_IN_PROGRESS}")
    assert remove.get("submit") and reschedule.get("submit")
    return {"remove_submit": (remove, REASON), "reschedule_submit": (reschedule, LATER)}


@pytest.mark.parametrize("what", ["remove_submit", "reschedule_submit"])
@pytest.mark.parametrize(
    ("user", "team", "reason"),
    [
        (OUTSIDER, None, "not on the list"),
        (APPROVER, None, "not yours"),  # a migrator, but not the one who opened the form
        (REQUESTER, OTHER_TEAM, "another Slack workspace"),
    ],
)
def test_a_change_form_submitted_by_anyone_but_its_owner_requests_nothing(world, what, user, team, reason):
    form, values = forms(world)[what]
    before = idle(world)
    assert view_payload(world, form, user=user, values=values, team=team).status_code == 200
    wait_refused(world, user, what, reason)
    assert world.bot.desk.changes.for_job(SEED_IN_PROGRESS) == [] and len(world.sim.requests) == before
    assert world.bot.store.audit_events() == []


def test_a_change_form_submitted_by_its_owner_is_recorded(world):
    form, values = forms(world)["reschedule_submit"]
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=values)
    world.wait_until(lambda: world.bot.desk.changes.for_job(SEED_IN_PROGRESS), what="change requested")
    [row] = decisions(world, "reschedule_submit")
    assert row["event"] == ACCESS_GRANTED and row["actor"] == REQUESTER and row["job_id"] == SEED_IN_PROGRESS


# A reminder's Reschedule button (its Cancel button is the run's, see tests/test_access.py)
def reminder(world):
    offer = {"type": "actions", "block_id": "reminder", "elements": [reschedule_button(SEED_IN_PROGRESS)]}
    return world.bot.slack.chat_postMessage(channel=CHANNEL, text="reminder", blocks=[offer])["ts"]


def test_reschedule_button_by_an_outsider_opens_nothing(world):
    ts = reminder(world)
    before, opens = idle(world), len(world.slack.calls_to("views.open"))
    world.sender.block_action(CHANNEL, ts, RESCHEDULE_BUTTON_ACTION, user_id=OUTSIDER)
    row = wait_refused(world, OUTSIDER, "reschedule", "not on the list")
    assert row["job_id"] == SEED_IN_PROGRESS
    assert len(world.slack.calls_to("views.open")) == opens and len(world.sim.requests) == before


def test_reschedule_button_from_another_workspace_opens_nothing(world):
    ts = reminder(world)
    before, opens = idle(world), len(world.slack.calls_to("views.open"))
    world.sender.block_action(CHANNEL, ts, RESCHEDULE_BUTTON_ACTION, user_id=REQUESTER, team_id=OTHER_TEAM)
    wait_refused(world, REQUESTER, "reschedule", "another Slack workspace")
    assert len(world.slack.calls_to("views.open")) == opens and len(world.sim.requests) == before


# The App Home tab
def ended_batch(world):
    """A batch that ended yesterday: building the dashboard reads its users from Graph (the error count)."""
    now = world.bot.home.clock()
    return world.bot.store.create_run(
        job_id=SEED_IN_PROGRESS,
        job_name="wave6_engineering",
        channel_id=CHANNEL,
        requester_id=REQUESTER,
        reason="CHG20",
        state=RunState.FINISHED,
        outcome="completed",
        root_ts="1700000000.000200",
        finished_at=now - timedelta(days=1),
    )


def home_of(world, user, team=None):
    before = len(world.slack.home_versions(user))
    assert world.sender.app_home_opened(user, team_id=team).status_code == 200
    return world.wait_until(lambda: len(v := world.slack.home_versions(user)) > before and v[-1], what="home")


def viewers(world):
    return json.loads(world.bot.store.get_meta(VIEWERS_KEY) or "[]")


@pytest.mark.parametrize(
    ("user", "team", "reason"),
    [(OUTSIDER, None, "not on the list"), (REQUESTER, OTHER_TEAM, "another Slack workspace")],
)
def test_the_home_tab_of_someone_refused_shows_only_why(world, user, team, reason):
    ended_batch(world)
    before = idle(world)
    shown = json.dumps(home_of(world, user, team))
    assert reason in shown and "wave6" not in shown
    [row] = world.wait_until(lambda: decisions(world, "home", ACCESS_REFUSED), what="recorded")
    assert row["actor"] == user and reason in row["detail"]["reason"]
    assert len(world.sim.requests) == before and viewers(world) == []  # no Graph read, not remembered
    assert told(world, user) == []  # said on the tab itself, not in a message


def test_the_home_tab_is_recorded_and_open_to_readers_in_any_channel(make_world):
    world = make_world(require_approval=True, allowed_channels=[CHANNEL])  # the tab is in no channel
    ended_batch(world)
    reads = world.sim.count("GET", "/users")
    assert "wave6_engineering" in json.dumps(home_of(world, APPROVER))
    [row] = decisions(world, "home")
    assert row["event"] == ACCESS_GRANTED and row["actor"] == APPROVER
    assert world.sim.count("GET", "/users") == reads + 1 and viewers(world) == [APPROVER]


def test_a_refresh_shows_a_viewer_who_lost_access_only_why(world):
    ended_batch(world)
    home_of(world, APPROVER)
    world.slack.add_usergroup(APPROVERS, "migration-approvers", [])
    world.slack.add_usergroup(MIGRATORS, "migrators", [REQUESTER])
    world.bot.policy.groups.warm(MIGRATORS, APPROVERS)  # (else the groups are read again after their TTL)
    assert world.bot.home.refresh() == 1
    assert "not on the list" in json.dumps(world.slack.home(APPROVER))


# Malformed signed payloads get a 4xx, not a 500
def test_malformed_change_button_payloads_get_400(world):
    change = request_removal(world, victims(world)[0])
    message = on_message(change)
    for value in ("²", "1²", "-1", "not-a-change", "1" * 19):  # str.isdigit says yes to "²", int() says no
        assert click(world, message, CHANGE_APPROVE_ACTION, value=value).status_code == 400, value
    assert click(world, message, CHANGE_REJECT_ACTION, drop=("channel",)).status_code == 400
    assert click(world, message, CHANGE_APPROVE_ACTION, drop=("container",)).status_code == 400
    assert click(world, message, CHANGE_APPROVE_ACTION, drop=("user",)).status_code == 400
    assert state(world, change) == ChangeState.PENDING and decisions(world, "change_approve") == []


def in_view(world, view, action_id, *, metadata=None, value=None):
    """A signed click on ``action_id`` inside ``view``, as the requester, with the view's metadata replaced."""
    [element] = [
        e
        for b in view["blocks"]
        for e in (b.get("elements") or [b.get("accessory") or {}])
        if e.get("action_id") == action_id
    ][:1]
    action = {"action_id": action_id, "block_id": "b", "type": "button", "value": value or element["value"]}
    return world.sender.payload(
        {
            "type": "block_actions",
            "user": {"id": REQUESTER, "team_id": world.slack.team_id},
            "team": {"id": world.slack.team_id},
            "api_app_id": world.slack.app_id,
            "trigger_id": world.slack.issue_trigger(REQUESTER),
            "container": {"type": "view", "view_id": view["id"]},
            "view": dict(view, private_metadata=view["private_metadata"] if metadata is None else metadata),
            "actions": [{**action, "action_ts": "1"}],
        }
    )


def test_malformed_users_modal_and_reminder_payloads_get_400(world):
    view = many_users(world)
    ctx = json.loads(view["private_metadata"])
    for value in ("²", "x", "-1", "1234567"):
        assert in_view(world, view, f"{PAGE_ACTION}_next", value=value).status_code == 400, value
    for metadata in ("", "nope", "[1]", json.dumps({**ctx, "j": "../../me"}), json.dumps({**ctx, "p": "²"})):
        assert in_view(world, view, REMOVE_BUTTON_ACTION, metadata=metadata).status_code == 400, metadata
        assert in_view(world, view, f"{PAGE_ACTION}_next", metadata=metadata).status_code == 400, metadata
    ts = reminder(world)
    sent = world.sender.block_action(CHANNEL, ts, RESCHEDULE_BUTTON_ACTION, user_id=REQUESTER, value="x")
    assert sent.status_code == 400
    assert [r["detail"]["what"] for r in decisions(world)] == ["users"]  # only the command that opened the modal


def test_malformed_form_submissions_get_400(world):
    built = forms(world)
    remove, _ = built["remove_submit"]
    reschedule, _ = built["reschedule_submit"]
    good = json.loads(remove["private_metadata"])
    for metadata in (
        "",
        "not json",
        "[1]",
        json.dumps({"c": CHANNEL}),
        json.dumps({**good, "u": 7}),
        json.dumps({**good, "j": "not-a-job"}),
        json.dumps({**good, "k": ""}),  # the form never named a user: nothing to remove
    ):
        sent = view_payload(
            world, remove, user=REQUESTER, metadata=metadata, values=REASON, callback_id=REMOVE_CALLBACK
        )
        assert sent.status_code == 400, metadata
    for metadata in ("", "{}", json.dumps({**json.loads(reschedule["private_metadata"]), "z": 5})):
        sent = view_payload(
            world, reschedule, user=REQUESTER, metadata=metadata, values=LATER, callback_id=RESCHEDULE_CALLBACK
        )
        assert sent.status_code == 400, metadata
    assert world.bot.desk.changes.for_job(SEED_IN_PROGRESS) == []
    assert [r["detail"]["what"] for r in decisions(world)] == ["remove", "reschedule"]  # the two commands


def test_a_home_event_without_a_user_gets_400(world):
    event = {"type": "app_home_opened", "channel": "D0EVE", "tab": "home", "event_ts": "1.2"}
    body = json.dumps({"team_id": world.slack.team_id, "type": "event_callback", "event_id": "Ev1", "event": event})
    response, _, _ = world.sender.post(body, content_type="application/json")
    assert response.status_code == 400 and decisions(world) == []


# The checkpoint is the one place
def test_the_batch_workflow_modules_decide_no_access_themselves():
    workflow = Path(__file__).parent.parent / "bot" / "workflow"
    for name in ("users", "removals", "reschedule", "changes", "home"):
        source = (workflow / f"{name}.py").read_text()
        assert not re.search(r"\b(may_migrate|may_approve|may_read|check_place)\b", source), name
