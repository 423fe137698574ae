"""A batch user by user: ``/migrate users`` (failed first, paged in a modal) and removing one user with approval,
end to end through the Slack stand-in and the Graph simulator."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.change_store import ChangeState
from bot.graph.tasks import select
from bot.rehearsal.sandbox import APPROVER, CHANNEL, OUTSIDER, REQUESTER
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS
from bot.rehearsal.simulator.state import parse_graph_time
from bot.store import RunState
from bot.ui.approval import APPROVE_ACTION
from bot.ui.changes import CHANGE_APPROVE_ACTION, CHANGE_REJECT_ACTION, REASON_ACTION, REASON_BLOCK
from bot.ui.reschedule import DATE_ACTION, DATE_BLOCK, TIME_ACTION, TIME_BLOCK
from bot.ui.users import PAGE_ACTION, REMOVE_BUTTON_ACTION
from bot.workflow.command_text import parse_command

MIGRATION_SECONDS = 120 + 900 + 780 + 1


def dump(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def command(world, text, user=REQUESTER):
    sent = world.sender.slash_command(text, user_id=user, channel_id=CHANNEL)
    assert sent.status_code == 200, sent.response.text
    return sent


def open_users(world, text, user=REQUESTER):
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"users {text}", user)
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    return world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])


def click_in_view(world, view, action_id, user=REQUESTER, **kw):
    updates = len(world.slack.calls_to("views.update"))
    world.sender.view_block_action(view["id"], action_id, user_id=user, **kw)
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    return world.slack.view(world.slack.calls_to("views.update")[-1].response["view"]["id"])


def user_texts(view):
    """The text of each user's section, in order."""
    return [
        b["text"]["text"]
        for b in view["blocks"]
        if b["type"] == "section" and b["text"]["text"].startswith((":x:", ":bust_in_silhouette:"))
    ]


def failed_flags(view):
    return [text.startswith(":x:") for text in user_texts(view)]


def shown(world, ts, contains):
    """The blocks of message ``ts`` once they contain ``contains`` (the outcome is shown after the state is saved)."""
    return world.wait_until(
        lambda: contains in (text := dump(world.slack.message(CHANNEL, ts).blocks)) and text, what=repr(contains)
    )


def reason(text):
    return {REASON_BLOCK: {REASON_ACTION: {"type": "plain_text_input", "value": text}}}


@pytest.fixture
def world(make_world):
    return make_world(require_approval=True)


def big_batch(world):
    """60 users, 20 of whom failed (every third user, ODSP and Meeting), and one error with a code no page lists."""
    job_id = world.sim.create_job(
        "wave9_sixty",
        "completedWithErrors",
        users=60,
        workloads=["Exchange", "ODSP", "Teams", "Meeting"],
        outcome="completedWithErrors",
    )
    with world.sim.state.lock:
        task = world.sim.state._jobs[job_id].tasks[4]  # a failing user (index % 3 == 1)
        task.services["ODSP"].errors.append({"code": "ODSP-XYZ", "message": "Something <new> happened"})
    return job_id


def test_parse_users_and_remove():
    job = "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"
    assert parse_command(f"users {job}").arg == "all"
    assert parse_command(f"users {job} FAILED").arg == "failed"
    assert parse_command(f"users {job} ann@contoso.com").arg == "ann@contoso.com"
    assert parse_command(f"remove {job} {job}").kind == "remove"
    assert parse_command(f"remove {job}").kind == "invalid"
    assert parse_command(f"remove {job} all").kind == "invalid"
    assert "is not a user" in parse_command(f"users {job} <!channel>").error
    assert "&lt;!channel&gt;" in parse_command(f"users {job} <!channel>").error


def test_sixty_users_failed_first_across_pages(world):
    job_id = big_batch(world)
    view = open_users(world, job_id)
    rendered = dump(view)
    assert "60 users, 20 with failures" in rendered and "page 1 of 6" in rendered
    assert len(view["blocks"]) <= 100
    assert failed_flags(view) == [True] * 10
    assert "MIGR-003" in rendered and "Retry the migration" in rendered  # explained from Microsoft's table
    assert "MIGR-002" in rendered and "security group" in rendered
    assert "resolve-orchestrated-migration-errors" in rendered  # the source is cited
    assert [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
        f"{PAGE_ACTION}_next"
    ]
    assert REMOVE_BUTTON_ACTION not in rendered  # the batch ended: nobody can be removed

    seen = set()
    pages = [view]
    reads = world.sim.count("GET", "/users")
    for _ in range(5):
        view = click_in_view(world, view, f"{PAGE_ACTION}_next")
        pages.append(view)
    assert world.sim.count("GET", "/users") == reads  # paging reuses the users read when the view opened
    flags = [flag for page in pages for flag in failed_flags(page)]
    assert flags == [True] * 20 + [False] * 40  # failed first, every user exactly once
    for page in pages:
        seen.update(text.split("*")[1] for text in user_texts(page))
    assert len(seen) == 60
    assert "page 6 of 6" in dump(pages[-1])
    assert [e["action_id"] for b in pages[-1]["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
        f"{PAGE_ACTION}_prev"
    ]
    back = click_in_view(world, pages[-1], f"{PAGE_ACTION}_prev")
    assert "page 5 of 6" in dump(back)
    unknown = [p for p in pages if "ODSP-XYZ" in dump(p)]
    assert unknown and "Something &lt;new&gt; happened" in dump(unknown[0])  # shown as it came, escaped


def test_failed_filter_and_one_user(world):
    job_id = big_batch(world)
    view = open_users(world, f"{job_id} failed")
    assert "showing users with failures (20)" in dump(view) and "page 1 of 2" in dump(view)
    tasks = world.bot.graph.list_tasks(job_id)
    one = select(tasks, "failed")[0].id
    view = open_users(world, f"{job_id} {one}")
    assert "one user (1)" in dump(view) and one in dump(view)
    view = open_users(world, f"{job_id} 0c0ffee0-0000-4000-8000-000000000404")
    assert "Nobody to show" in dump(view)


def test_outsider_can_not_see_users(world):
    job_id = big_batch(world)
    command(world, f"users {job_id}", user=OUTSIDER)
    world.wait_until(lambda: [e for e in world.slack.ephemerals if e.user == OUTSIDER], what="refusal")
    assert world.slack.calls_to("views.open") == [] and world.sim.count("GET", "/users") == 0


def start_approved_migration(world, job_id):
    world.sender.slash_command(job_id, user_id=REQUESTER, channel_id=CHANNEL)
    world.slack.wait_for("views.update", count=1, timeout=10)
    view = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    world.submit_modal(view, "CHG7 wave 7")
    run = world.wait_until(lambda: (r := world.run_for(job_id)) and r.root_ts and r, what="approval request")
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    return world.wait_until(
        lambda: (r := world.run_for(job_id)) and r.state == RunState.RUNNING and r, what="migration running"
    )


def test_one_user_removed_with_approval_and_the_batch_continues(world):
    now = world.sim.clock.now()
    job_id = world.sim.create_job(
        "wave7_ops <!channel>",
        "validatePassed",
        users=5,
        completed_after=now + timedelta(hours=2),
        validated_at=now - timedelta(hours=1),
    )
    run = start_approved_migration(world, job_id)
    world.sim.clock.advance(121)  # processing → inProgress (syncing): before cutover
    view = open_users(world, job_id)
    assert dump(view).count(REMOVE_BUTTON_ACTION) == 5
    victim = sorted(t.id for t in world.bot.graph.list_tasks(job_id))[0]

    pushes = len(world.slack.calls_to("views.push"))
    updates = len(world.slack.calls_to("views.update"))
    world.sender.view_block_action(view["id"], REMOVE_BUTTON_ACTION, user_id=REQUESTER, value=victim)
    world.slack.wait_for("views.push", count=pushes + 1, timeout=10)
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    form = world.slack.view(world.slack.calls_to("views.push")[-1].response["view"]["id"])
    assert form["submit"]["text"] == "Request approval" and "can't be added back" in dump(form) and victim in dump(form)
    empty = world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason(""))
    assert empty.ack_effect.get("action") == "errors"
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG8 leaver, stays behind"))

    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(job_id)) and c[0].message_ts and c[0], what="approval request"
    )
    request = world.slack.message(CHANNEL, change.message_ts)
    assert request.thread_ts == run.root_ts and request.reply_broadcast  # asked in the batch's thread
    assert "Approve and remove" in dump(request.blocks) and victim in dump(request.blocks)
    mrkdwn = [b["text"]["text"] for b in request.blocks if b["type"] == "section" and "text" in b]
    assert "<!channel>" not in request.text + "".join(mrkdwn) and "&lt;!channel&gt;" in request.text
    assert world.sim.count("POST", f"/users/{victim}/cancel") == 0
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=REQUESTER)  # not self
    world.wait_until(
        lambda: [e for e in world.slack.ephemerals if "own request" in e.text], what="self-approval refused"
    )
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    done = world.wait_until(
        lambda: (c := world.bot.desk.changes.get(change.id)).state == ChangeState.DONE and c, what="user removed"
    )
    assert done.approver_id == APPROVER and world.sim.count("POST", f"/users/{victim}/cancel") == 1
    told = shown(world, change.message_ts, "Removed")
    assert "Removed" in told and victim in told and f"<@{REQUESTER}>" in told and f"<@{APPROVER}>" in told
    assert "CHG8 leaver" in told and "Accepted" in told
    assert "<!channel>" not in world.slack.message(CHANNEL, change.message_ts).text
    assert CHANGE_APPROVE_ACTION not in told  # the buttons are gone
    events = [e.event for e in world.bot.store.audit_events() if e.job_id == job_id]
    assert events[-4:] == ["remove_requested", "remove_approval_refused", "remove_approved", "remove_done"]

    assert victim not in [t.id for t in world.bot.graph.list_tasks(job_id)]
    world.sim.clock.advance(MIGRATION_SECONDS + 7200)  # the other four users migrate to the end
    world.bot.tracker.poll_once(run.id)
    world.wait_until(lambda: world.bot.store.get_run(run.id).state == RunState.FINISHED, what="batch finished")
    assert world.bot.store.get_run(run.id).outcome == "completed"
    assert len(world.bot.graph.list_tasks(job_id)) == 4


def test_remove_refused_by_graph_409_is_explained(world):
    view_job = SEED_IN_PROGRESS  # syncing, cutover in 2 days, not followed by the bot
    victim = sorted(t.id for t in world.bot.graph.list_tasks(view_job))[0]
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"remove {view_job} {victim}")
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    form = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG9"))
    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(view_job)) and c[0].message_ts and c[0], what="approval request"
    )
    assert world.slack.message(CHANNEL, change.message_ts).thread_ts is None  # no thread yet: its own message
    world.sim.inject_fault("409", path_contains=f"/users/{victim}/cancel")  # the user's cutover began meanwhile
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    refused = world.wait_until(
        lambda: (c := world.bot.desk.changes.get(change.id)).state == ChangeState.REFUSED and c, what="refused"
    )
    told = shown(world, change.message_ts, "409")
    assert "409" in told and "cutover has begun" in told and "Cancel is not possible" in told
    assert "migration continues" in refused.note
    [event] = [e for e in world.bot.store.audit_events() if e.event == "remove_refused"]
    assert event.graph_request_id


def test_remove_after_cutover_is_refused_up_front_and_reject_changes_nothing(world):
    victim = sorted(t.id for t in world.bot.graph.list_tasks(SEED_IN_PROGRESS))[1]
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"remove {SEED_IN_PROGRESS} {victim}")
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    form = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG10"))
    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(SEED_IN_PROGRESS)) and c[0].message_ts and c[0], what="request"
    )
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_REJECT_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.bot.desk.changes.get(change.id).state == ChangeState.REJECTED, what="rejected")
    assert "Rejected by" in shown(world, change.message_ts, "Rejected by")

    world.sim.set_status(SEED_IN_PROGRESS, "cuttingOver")
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"remove {SEED_IN_PROGRESS} {victim}")
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    form = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    assert not form.get("submit") and "Cutover has begun" in dump(form)
    assert world.sim.count("POST", "/cancel") == 0


# Moving the cutover
def picks(day, time, why="CHG11 business asked for a week more"):
    values = {
        DATE_BLOCK: {DATE_ACTION: {"type": "datepicker", "selected_date": day}},
        TIME_BLOCK: {TIME_ACTION: {"type": "timepicker", "selected_time": time}},
    }
    if why is not None:
        values.update(reason(why))
    return values


def open_reschedule(world, job_id, user=REQUESTER):
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"reschedule {job_id}", user)
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    return world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])


def test_cutover_moved_with_approval_in_the_requesters_time_zone(world):
    before = parse_graph_time(world.sim.job(SEED_IN_PROGRESS)["completeAfterDateTime"])
    form = open_reschedule(world, SEED_IN_PROGRESS)
    amsterdam = ZoneInfo("Europe/Amsterdam")  # alice's tz in the stand-in (users.info)
    local = before.astimezone(amsterdam)
    rendered = dump(form)
    assert form["submit"]["text"] == "Request approval" and "Europe/Amsterdam" in rendered
    assert f"<!date^{int(before.timestamp())}^" in rendered  # the current window, in each reader's time zone
    [date_input] = [b for b in form["blocks"] if b.get("block_id") == DATE_BLOCK]
    [time_input] = [b for b in form["blocks"] if b.get("block_id") == TIME_BLOCK]
    assert date_input["element"]["type"] == "datepicker" and date_input["element"]["initial_date"] == local.strftime(
        "%Y-%m-%d"
    )
    assert time_input["element"]["timezone"] == "Europe/Amsterdam"
    assert time_input["element"]["initial_time"] == local.strftime("%H:%M")
    assert world.slack.calls_to("users.info")[-1].args.get("user") == REQUESTER

    past = world.sender.view_submission(form["id"], user_id=REQUESTER, values=picks("2020-01-01", "09:00"))
    assert past.ack_effect.get("action") == "errors" and "future" in dump(past.ack)
    unreasoned = world.sender.view_submission(form["id"], user_id=REQUESTER, values=picks("2099-01-01", "09:00", None))
    assert unreasoned.ack_effect.get("action") == "errors"
    later = (local + timedelta(days=7)).replace(hour=22, minute=30, second=0, microsecond=0)
    world.sender.view_submission(
        form["id"], user_id=REQUESTER, values=picks(later.strftime("%Y-%m-%d"), later.strftime("%H:%M"))
    )
    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(SEED_IN_PROGRESS)) and c[0].message_ts and c[0], what="request"
    )
    asked = dump(world.slack.message(CHANNEL, change.message_ts).blocks)
    assert f"<!date^{int(before.timestamp())}^" in asked and f"<!date^{int(later.timestamp())}^" in asked
    assert "later by" in asked and "Approve new time" in asked
    assert world.sim.count("PATCH") == 0
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.bot.desk.changes.get(change.id).state == ChangeState.DONE, what="moved")
    [patch] = [r for r in world.sim.requests if r.method == "PATCH"]
    assert json.loads(patch.body) == {"completeAfterDateTime": later.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert parse_graph_time(world.sim.job(SEED_IN_PROGRESS)["completeAfterDateTime"]) == later.astimezone(UTC)
    told = shown(world, change.message_ts, "Cutover moved")
    assert "Cutover moved" in told and f"<@{APPROVER}>" in told and "CHG11" in told
    events = [e.event for e in world.bot.store.audit_events() if e.job_id == SEED_IN_PROGRESS]
    assert events == ["reschedule_requested", "reschedule_approved", "reschedule_done"]


def test_cutover_can_not_be_moved_once_it_began(world):
    form = open_reschedule(world, SEED_IN_PROGRESS)
    later = parse_graph_time(world.sim.job(SEED_IN_PROGRESS)["completeAfterDateTime"]) + timedelta(days=3)
    local = later.astimezone(ZoneInfo("Europe/Amsterdam"))
    world.sender.view_submission(
        form["id"], user_id=REQUESTER, values=picks(local.strftime("%Y-%m-%d"), local.strftime("%H:%M"))
    )
    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(SEED_IN_PROGRESS)) and c[0].message_ts and c[0], what="request"
    )
    world.sim.set_status(SEED_IN_PROGRESS, "cuttingOver")  # cutover begins before anyone approves
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.bot.desk.changes.get(change.id).state == ChangeState.REFUSED, what="refused")
    assert "Cutover has begun" in shown(world, change.message_ts, "Not done")
    assert world.sim.count("PATCH") == 0
    refused = open_reschedule(world, SEED_IN_PROGRESS)  # the form now says so up front
    assert not refused.get("submit") and "Cutover has begun" in dump(refused)


def test_root_message_shows_the_cutover_and_follows_a_reschedule(world):
    now = world.sim.clock.now()
    cutover = (now + timedelta(days=2)).replace(microsecond=0)
    job_id = world.sim.create_job(
        "wave8_support", "validatePassed", users=3, completed_after=cutover, validated_at=now - timedelta(hours=1)
    )
    run = start_approved_migration(world, job_id)
    world.wait_until(
        lambda: f"<!date^{int(cutover.timestamp())}^" in dump(world.slack.message(CHANNEL, run.root_ts).blocks),
        what="the cutover on the root message",
    )
    form = open_reschedule(world, job_id)
    later = (cutover + timedelta(days=1)).astimezone(ZoneInfo("Europe/Amsterdam")).replace(second=0)  # pickers: minutes
    world.sender.view_submission(
        form["id"], user_id=REQUESTER, values=picks(later.strftime("%Y-%m-%d"), later.strftime("%H:%M"))
    )
    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(job_id)) and c[0].message_ts and c[0], what="request"
    )
    assert world.slack.message(CHANNEL, change.message_ts).thread_ts == run.root_ts  # asked in the batch's thread
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.bot.desk.changes.get(change.id).state == ChangeState.DONE, what="moved")
    world.bot.tracker.poll_once(run.id)
    world.wait_until(
        lambda: f"<!date^{int(later.timestamp())}^" in dump(world.slack.message(CHANNEL, run.root_ts).blocks),
        what="the new cutover on the root message",
    )
    assert world.bot.store.get_run(run.id).complete_after == later.astimezone(UTC)


def test_help_lists_the_new_subcommands(world):
    sent = command(world, "help")
    for example in ("/migrate users 5b0c", "/migrate remove 5b0c", "/migrate reschedule 5b0c"):
        assert example in sent.response.text, example


def test_an_undecided_change_request_expires(world):
    victim = sorted(t.id for t in world.bot.graph.list_tasks(SEED_IN_PROGRESS))[2]
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"remove {SEED_IN_PROGRESS} {victim}")
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    form = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG16"))
    change = world.wait_until(
        lambda: (c := world.bot.desk.changes.for_job(SEED_IN_PROGRESS)) and c[0].message_ts and c[0], what="request"
    )
    desk = world.bot.desk
    assert desk.expire_overdue() == 0
    desk.clock = lambda: change.created_at + desk.ttl + timedelta(seconds=1)
    assert desk.expire_overdue() == 1 and desk.changes.get(change.id).state == ChangeState.EXPIRED
    assert "Expired" in shown(world, change.message_ts, "Expired")
    assert CHANGE_APPROVE_ACTION not in dump(world.slack.message(CHANNEL, change.message_ts).blocks)
    assert world.sim.count("POST", "/cancel") == 0
    assert [e.event for e in world.bot.store.audit_events()][-1] == "remove_expired"
