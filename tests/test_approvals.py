"""Four-eyes approval end to end: buttons, one atomic decision, exactly one migrate, the audit trail."""

from __future__ import annotations

import argparse
import csv
import io
import json
import threading
from datetime import timedelta

from bot.cli.audit import audit_command
from bot.rehearsal.sandbox import APPROVER, APPROVERS, CHANNEL, OUTSIDER, REQUESTER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.store import RunState
from bot.ui.approval import APPROVE_ACTION, REJECT_ACTION
from bot.ui.modal import CANCEL_BUTTON_ACTION

JOB = SEED_VALIDATE_PASSED


def texts_for(world, user):
    return [e.text for e in world.slack.ephemerals if e.user == user] + [
        m.text for m in world.slack.messages("D" + user.lstrip("U"))
    ]


def request_approval(world, requester=REQUESTER, reason="CHG0042 wave 3"):
    view = world.open_modal(JOB, user_id=requester)
    assert view["submit"]["text"] == "Request approval"
    world.submit_modal(view, reason, user_id=requester)
    return world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="approval request")


def buttons(message):
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def audit_rows(world, **filters):
    out = io.StringIO()
    args = argparse.Namespace(job=filters.get("job"), since=filters.get("since"), format="csv")
    assert audit_command(args, world.bot_settings, out=out) == 0
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_approve_path_end_to_end(make_world):
    world = make_world()
    run = request_approval(world)
    assert run.state == RunState.PENDING
    request = world.slack.message(CHANNEL, run.root_ts)
    rendered = json.dumps(request.blocks)
    assert f"<!subteam^{APPROVERS}>" in rendered and f"<@{REQUESTER}>" in rendered and "CHG0042" in rendered
    assert "can be migrated now" in rendered
    assert buttons(request) == [APPROVE_ACTION, REJECT_ACTION]
    assert all("confirm" in e for b in request.blocks if b["type"] == "actions" for e in b["elements"])
    assert world.sim.count("POST", "/migrate") == 0

    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    run = world.wait_until(lambda: (r := world.run_for(JOB)).state == RunState.RUNNING and r, what="running")
    assert run.approver_id == APPROVER
    assert world.sim.count("POST", "/migrate") == 1
    root = world.wait_until(
        lambda: (
            (m := world.slack.message(CHANNEL, run.root_ts))
            and "Approved by" in json.dumps(m.blocks)
            and "processing" in json.dumps(m.blocks)
            and m
        ),
        what="root",
    )
    assert buttons(root) == [CANCEL_BUTTON_ACTION]  # Approve/Reject gone; a running migration offers Cancel
    assert f"<@{APPROVER}>" in json.dumps(root.blocks)
    world.wait_until(lambda: world.bot.tracker.is_following(run.id), what="poller follows")  # right after the root
    events = [row["event"] for row in audit_rows(world, job=JOB)]
    assert events[:3] == ["requested", "approved", "migrate_called"]


def test_reject_with_reason(make_world):
    world = make_world()
    run = request_approval(world)
    world.sender.block_action(CHANNEL, run.root_ts, REJECT_ACTION, user_id=APPROVER)
    [opened] = world.slack.wait_for("views.open", count=2)[1:]
    world.sender.view_submission(
        opened.response["view"]["id"],
        user_id=APPROVER,
        values={"reject_reason": {"reject_reason": {"type": "plain_text_input", "value": "wait for <b>payroll</b>"}}},
    )
    run = world.wait_until(lambda: (r := world.run_for(JOB)).state == RunState.REJECTED and r, what="rejected")
    assert run.decision_note == "wait for <b>payroll</b>"
    message = world.wait_until(
        lambda: (m := world.slack.message(CHANNEL, run.root_ts)) and "Rejected by" in json.dumps(m.blocks) and m,
        what="message",
    )
    assert buttons(message) == [] and "wait for &lt;b&gt;payroll&lt;/b&gt;" in json.dumps(message.blocks)
    world.wait_until(lambda: any("rejected" in t for t in texts_for(world, REQUESTER)), what="requester told")
    assert world.sim.count("POST", "/migrate") == 0
    assert [r["event"] for r in audit_rows(world)] == ["requested", "rejected"]


def test_self_approval_is_refused(make_world):
    world = make_world()
    run = request_approval(world, requester=APPROVER)
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: any("own request" in t for t in texts_for(world, APPROVER)), what="refusal")
    assert world.run_for(JOB).state == RunState.PENDING
    assert world.sim.count("POST", "/migrate") == 0
    assert buttons(world.slack.message(CHANNEL, run.root_ts)) == [APPROVE_ACTION, REJECT_ACTION]


def test_self_approval_allowed_by_the_flag(make_world):
    world = make_world(allow_self_approval=True)
    run = request_approval(world, requester=APPROVER)
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(JOB).state == RunState.RUNNING, what="running")
    assert world.sim.count("POST", "/migrate") == 1


def test_unauthorized_clicker_changes_nothing(make_world):
    world = make_world()
    run = request_approval(world)
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=OUTSIDER)
    world.wait_until(lambda: any("not an approver" in t for t in texts_for(world, OUTSIDER)), what="refusal")
    world.sender.block_action(CHANNEL, run.root_ts, REJECT_ACTION, user_id=OUTSIDER)
    world.wait_until(lambda: len(texts_for(world, OUTSIDER)) == 2, what="second refusal")
    assert world.run_for(JOB).state == RunState.PENDING
    assert len(world.slack.calls_to("views.open")) == 1  # no rejection modal for the outsider
    assert world.sim.count("POST", "/migrate") == 0


def test_request_expires(make_world):
    world = make_world(approval_ttl_hours=1)
    run = request_approval(world)
    world.bot.approvals.clock = lambda: run.created_at + timedelta(hours=1, seconds=1)
    assert world.bot.approvals.expire_overdue() == 1
    message = world.slack.message(CHANNEL, run.root_ts)
    assert buttons(message) == [] and "Expired" in json.dumps(message.blocks)
    assert world.run_for(JOB).state == RunState.EXPIRED
    assert world.bot.approvals.expire_overdue() == 0
    assert "expired" in [r["event"] for r in audit_rows(world)]


def test_click_after_expiry_is_refused(make_world):
    world = make_world(approval_ttl_hours=1)
    run = request_approval(world)
    world.bot.approvals.clock = lambda: run.created_at + timedelta(hours=2)
    world.bot.approvals.approve(run.id, APPROVER)
    assert world.run_for(JOB).state == RunState.EXPIRED
    assert any("expired" in t for t in texts_for(world, APPROVER))
    assert world.sim.count("POST", "/migrate") == 0


def test_second_migrate_while_a_request_is_pending(make_world):
    world = make_world()
    request_approval(world)
    world.sender.slash_command(JOB, user_id=APPROVER, channel_id=CHANNEL)
    world.wait_until(
        lambda: any("already has an approval request" in t for t in texts_for(world, APPROVER)), what="busy"
    )
    assert len(world.slack.calls_to("views.open")) == 1


def test_twenty_concurrent_approvals_call_migrate_once(make_world):
    world = make_world()
    approvers = [f"U0APPR{i:02d}" for i in range(5)]
    for user in approvers:
        world.slack.add_user(user, user.lower())
    world.slack.join(CHANNEL, *approvers)
    world.slack.add_usergroup(APPROVERS, "migration-approvers", [APPROVER, *approvers])
    world.bot.policy.groups._cache.clear()
    run = request_approval(world)
    barrier = threading.Barrier(20)
    clickers = ([APPROVER] + approvers) * 4

    delivered = []

    def click(user):
        barrier.wait()
        try:
            world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=user)
        except ValueError:  # the winner already removed the buttons: this person could not click any more
            return
        delivered.append(user)

    threads = [threading.Thread(target=click, args=(user,)) for user in clickers[:20]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(delivered) >= 2
    run = world.wait_until(lambda: (r := world.run_for(JOB)).state == RunState.RUNNING and r, what="running")
    # Every click has been handled once every loser was told (shutting the workers down instead could race
    # a listener that acked but has not yet handed its click to the pool).
    losing = len(delivered) - 1
    world.wait_until(
        lambda: len([e for e in world.slack.ephemerals if "already approved" in e.text]) >= losing,
        what="every losing click answered",
    )
    assert world.sim.count("POST", "/migrate") == 1
    assert [r["event"] for r in audit_rows(world)].count("approved") == 1
    losers = {e.user for e in world.slack.ephemerals if "already approved" in e.text}
    assert run.approver_id not in losers or delivered.count(run.approver_id) > 1
    assert len([e for e in world.slack.ephemerals if "already approved" in e.text]) == losing


def test_migrate_timeout_found_started_on_reread(make_world):
    world = make_world()
    run = request_approval(world)
    world.sim.inject_fault("lost", path_contains="/migrate")
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(JOB).state == RunState.RUNNING, what="running")
    assert world.sim.count("POST", "/migrate") == 1
    [called] = [r for r in audit_rows(world) if r["event"] == "migrate_called"]
    detail = json.loads(called["detail"])
    assert detail["outcome"] == "accepted" and detail["confirmed_by_reread"] is True


def test_graph_unavailable_on_approve_leaves_the_request_approvable(make_world):
    world = make_world()
    run = request_approval(world)
    world.sim.inject_fault("503", path_contains="/migrate")
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: any("still pending" in t for t in texts_for(world, APPROVER)), what="explained")
    assert world.run_for(JOB).state == RunState.PENDING
    message = world.slack.message(CHANNEL, run.root_ts)
    assert buttons(message) == [APPROVE_ACTION, REJECT_ACTION]
    assert "nothing was started" in json.dumps(message.blocks)
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(JOB).state == RunState.RUNNING, what="running")
    assert world.sim.count("POST", "/migrate") == 2  # the first was answered 503 and did not apply


def test_job_no_longer_migratable_at_approval(make_world):
    world = make_world()
    run = request_approval(world)
    world.sim.set_status(JOB, "validateFailed")
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(JOB).state == RunState.NOT_STARTED, what="refused")
    message = world.wait_until(
        lambda: (
            (m := world.slack.message(CHANNEL, run.root_ts))
            and "can no longer be migrated" in json.dumps(m.blocks)
            and m
        ),
        what="request updated",
    )
    assert buttons(message) == []
    assert world.sim.count("POST", "/migrate") == 0


def test_audit_export_filters_and_json(make_world):
    world = make_world()
    run = request_approval(world)
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(JOB).state == RunState.RUNNING, what="running")
    rows = audit_rows(world, job=JOB)
    assert {r["actor"] for r in rows} >= {REQUESTER, APPROVER}
    assert all(r["job_id"] == JOB for r in rows)
    assert any(r["graph_request_id"] for r in rows if r["event"] == "migrate_called")
    assert audit_rows(world, job="5b0c7e2a-0000-4000-8000-000000000000") == []
    assert audit_rows(world, since="2999-01-01") == []
    out = io.StringIO()
    audit_command(argparse.Namespace(job=None, since=None, format="json"), world.bot_settings, out=out)
    assert [e["event"] for e in json.loads(out.getvalue())] == [r["event"] for r in rows]


def test_unclear_migrate_outcome_keeps_the_job_reserved_until_the_job_is_read_again(make_world):
    world = make_world()
    run = request_approval(world)
    world.sim.inject_fault("lost", path_contains="/migrate", delay=0.5)  # applied, then 504 after 0.5 s
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.sim.count("POST", "/migrate") == 1, what="migrate sent")
    world.sim.inject_fault("503", method="GET", count=None, retry_after=0.05)  # ... and the job can't be re-read
    world.wait_until(
        lambda: any("may or may not have started" in t for t in texts_for(world, REQUESTER)), what="requester told"
    )
    assert world.run_for(JOB).state == RunState.STARTING  # not closed: it may be running
    assert "did not confirm" in json.dumps(world.slack.message(CHANNEL, run.root_ts).blocks)
    world.sender.slash_command(JOB, user_id=APPROVER, channel_id=CHANNEL)
    world.wait_until(lambda: any("already has" in t for t in texts_for(world, APPROVER)), what="job reserved")

    world.sim.clear_faults()
    world.bot.flow.reconcile_interrupted(started_before=world.bot.flow.clock() + timedelta(seconds=1))
    run = world.run_for(JOB)
    assert run.state == RunState.RUNNING and world.bot.tracker.is_following(run.id)
    assert world.sim.count("POST", "/migrate") == 1
    assert [r["event"] for r in audit_rows(world)][-1] == "migrate_reconciled"
