"""The admin's day end to end: /migrate status, list, validate, cancel and help against the Slack stand-in and
the Graph simulator (bot/sandbox.py). Graph time moves with ``world.sim.clock.advance``; the poller is driven with
``poll_once`` (its scheduler also ticks every 0.5 s; both are safe together)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, text

from bot.rehearsal.sandbox import APPROVER, CHANNEL, OUTSIDER, REQUESTER
from bot.rehearsal.simulator.seed import (
    SEED_IN_PROGRESS,
    SEED_SUBMITTED,
    SEED_VALIDATE_FAILED,
    SEED_VALIDATE_PASSED,
    SEED_VALIDATION_EXPIRED,
)
from bot.store import JobBusy, RunState, Store, migrate_schema, utcnow
from bot.ui.approval import APPROVE_ACTION, REJECT_ACTION
from bot.ui.modal import CANCEL_BUTTON_ACTION, VALIDATE_BUTTON_ACTION
from bot.workflow.poller import FINAL_EVENT

UNKNOWN_JOB = "0c0ffee0-0000-4000-8000-000000000404"
VALIDATION_SECONDS = 30 + 60 + 150 + 1  # validateSubmitted → validateProcessing → validateInProgress → result
CANCEL_SECONDS = 61  # pendingCancel → cancelled


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


@pytest.fixture
def approval_world(make_world):
    return make_world(require_approval=True)


# Helpers
def dump(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def command(world, text, user=REQUESTER):
    sent = world.sender.slash_command(text, user_id=user, channel_id=CHANNEL)
    assert sent.status_code == 200, sent.response.text
    return sent


def reply_to(world, user, contains, *, timeout=10.0):
    """The first ephemeral (response_url, postEphemeral) shown to ``user`` whose text or blocks contain ``contains``."""

    def find():
        return next(
            (
                e
                for e in world.slack.ephemerals
                if e.user == user and e.source != "ack" and contains in e.text + dump(e.blocks)
            ),
            None,
        )

    return world.wait_until(find, timeout=timeout, what=f"a reply with {contains!r}")


def open_modal(world, action, job_id, user=REQUESTER):
    """``/migrate <action> <job_id>`` (``action`` "" for migrate); the filled-in view."""
    updates = len(world.slack.calls_to("views.update"))
    command(world, f"{action} {job_id}".strip(), user)
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    opened = world.slack.calls_to("views.open")[-1]
    return world.slack.view(opened.response["view"]["id"])


def submit(world, view, reason=None, user=REQUESTER):
    values = {} if reason is None else {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    sent = world.sender.view_submission(view["id"], user_id=user, values=values)
    assert sent.status_code == 200
    return sent


def run_of(world, job_id, action):
    runs = [r for r in world.bot.store.runs_for_job(job_id) if r.action == action]
    return runs[0] if runs else None


def wait_run(world, job_id, action, state, what=None):
    return world.wait_until(
        lambda: (r := run_of(world, job_id, action)) and r.state == state and r, what=what or f"{action} run {state}"
    )


def wait_posted(world, job_id, action, state):
    """The run once it is in ``state`` and its message (request or root) is posted."""
    return world.wait_until(
        lambda: (r := run_of(world, job_id, action)) and r.state == state and r.root_ts and r,
        what=f"{action} run {state} with its message",
    )


def buttons(message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def finals(world, root_ts):
    return [m for m in world.slack.thread(CHANNEL, root_ts) if (m.metadata or {}).get("event_type") == FINAL_EVENT]


def finish_via_poller(world, run, seconds):
    """Move Graph time on and poll until the run's final notice is in its thread."""
    world.sim.clock.advance(seconds)
    world.bot.tracker.poll_once(run.id)
    world.wait_until(lambda: world.bot.store.get_run(run.id).state == RunState.FINISHED, what="run finished")
    [notice] = world.wait_until(lambda: finals(world, run.root_ts), what="final notice")
    return notice


def audit(world, job_id, event):
    return [e.as_dict() for e in world.bot.store.audit_events() if e.job_id == job_id and e.event == event]


def start_migration(world, job_id=SEED_VALIDATE_PASSED):
    """A migrate run started through the bot (no approval), RUNNING with its root message."""
    view = open_modal(world, "", job_id)
    submit(world, view, "CHG0042 wave 3")
    return world.wait_until(
        lambda: (r := run_of(world, job_id, "migrate")) and r.root_ts and r.state == RunState.RUNNING and r,
        what="migration running",
    )


# /migrate help and bad input
def test_help_lists_every_subcommand_with_an_example(world):
    sent = command(world, "help")
    for example in (
        "/migrate 5b0c7e2a-",
        "/migrate status 5b0c",
        "/migrate list",
        "/migrate validate 5b0c",
        "/migrate cancel 5b0c",
        "/migrate whoami",
        "/migrate help",
    ):
        assert example in sent.response.text, example
    assert "no approval" in sent.response.text
    assert world.sim.requests == [] and world.slack.calls_to("views.open") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", "needs a job id"),
        ("validate", "needs a job id"),
        ("cancel", "needs a job id"),
        ("status not-a-guid", "is not a job id"),
        ("cancel <!channel>", "&lt;!channel&gt;"),
        (f"validate {SEED_SUBMITTED} extra", "single job id"),
        ("list everything", "takes no arguments"),
    ],
)
def test_bad_input_is_answered_in_the_ack_without_graph(world, text, expected):
    sent = command(world, text)
    assert expected in sent.response.text and "Usage" in sent.response.text
    assert world.sim.requests == [] and world.slack.calls_to("views.open") == []


def test_outsider_can_neither_read_nor_act(world):
    command(world, f"status {SEED_SUBMITTED}", user=OUTSIDER)
    command(world, "list", user=OUTSIDER)
    command(world, f"validate {SEED_SUBMITTED}", user=OUTSIDER)
    world.wait_until(lambda: len([e for e in world.slack.ephemerals if e.user == OUTSIDER]) == 3, what="refusals")
    assert all("not on the list" in e.text for e in world.slack.ephemerals if e.user == OUTSIDER)
    assert world.sim.requests == [] and world.slack.calls_to("views.open") == []


# /migrate status
def test_status_of_a_tracked_job_has_counts_and_the_thread_link(world):
    run = start_migration(world)
    command(world, f"status {SEED_VALIDATE_PASSED}")
    shown = reply_to(world, REQUESTER, "Users per workload and status")
    rendered = dump(shown.blocks)
    assert shown.source == "response_url"
    assert "wave3_finance" in rendered and "`processing`" in rendered
    assert "notStarted 3" in rendered and "*Exchange*" in rendered and "*Teams*" in rendered
    link = f"archives/{CHANNEL}/p{run.root_ts.replace('.', '')}"
    assert link in rendered and f"migrate run {run.id}" in rendered
    assert f"/migrate cancel {SEED_VALIDATE_PASSED}" in rendered  # what can be done now


def test_status_of_an_untracked_job_counts_invalid_users(world):
    command(world, f"status {SEED_VALIDATE_FAILED}")
    shown = reply_to(world, REQUESTER, "Users per workload and status")
    rendered = dump(shown.blocks)
    assert "invalid 1" in rendered and "valid 4" in rendered and "EXCH-08" in rendered
    assert "does not follow a run" in rendered
    assert f"/migrate validate {SEED_VALIDATE_FAILED}" in rendered
    assert "5 users: 4 without errors, 1 with errors" in shown.text


def test_status_unknown_job_and_graph_outage(world):
    command(world, f"status {UNKNOWN_JOB}")
    missing = reply_to(world, REQUESTER, "Job not found")
    assert "Next step" in missing.text and "request-id" in missing.text
    world.sim.inject_fault("503", count=None, retry_after=120)  # longer than the client waits: no retries
    command(world, f"status {SEED_SUBMITTED}")
    down = reply_to(world, REQUESTER, "did not answer")
    assert "Could not read the job" in down.text and "Try again in a few minutes" in down.text


# /migrate list
def test_list_shows_pending_running_and_recent_but_not_old_runs(approval_world):
    world = approval_world
    store = world.bot.store
    view = open_modal(world, "", SEED_VALIDATE_PASSED)  # a migration waiting for approval
    submit(world, view, "CHG1 wave 3")
    pending = wait_posted(world, SEED_VALIDATE_PASSED, "migrate", RunState.PENDING)
    view = open_modal(world, "validate", SEED_SUBMITTED)  # a validation: running at once, no approval
    submit(world, view)
    running = world.wait_until(
        lambda: (r := run_of(world, SEED_SUBMITTED, "validate")) and r.root_ts and r, what="validation running"
    )
    now = utcnow()
    recent = store.create_run(
        job_id=SEED_VALIDATE_FAILED,
        job_name="wave4_recent",
        channel_id=CHANNEL,
        requester_id=REQUESTER,
        reason="r",
        state=RunState.FINISHED,
        action="validate",
        outcome="validateFailed",
        finished_at=now - timedelta(days=1),
    )
    store.create_run(
        job_id=SEED_VALIDATION_EXPIRED,
        job_name="wave2_long_ago",
        channel_id=CHANNEL,
        requester_id=REQUESTER,
        reason="r",
        state=RunState.FINISHED,
        outcome="completed",
        created_at=now - timedelta(days=9),
        finished_at=now - timedelta(days=8),
    )

    command(world, "list")
    shown = reply_to(world, REQUESTER, "Migration runs")
    rendered = dump(shown.blocks)
    assert "*Waiting for approval* (1)" in rendered and "*Running* (1)" in rendered
    assert "*Ended in the last 7 days* (1)" in rendered
    assert "wave3_finance" in rendered and "wave5_legal" in rendered and "wave4_recent" in rendered
    assert "wave2_long_ago" not in rendered
    for run in (pending, running):  # links to their threads
        assert f"p{run.root_ts.replace('.', '')}" in rendered
    assert "`validateFailed`" in rendered and f"<#{CHANNEL}>" in rendered  # no thread for the recent row
    assert rendered.index("wave3_finance") < rendered.index("wave5_legal") < rendered.index(recent.job_name)

    world.bot.reports.list_limit = 2
    links_before = len(world.slack.calls_to("chat.getPermalink"))
    command(world, "list")
    capped = world.wait_until(
        lambda: [e for e in world.slack.ephemerals if "more (older) not shown" in dump(e.blocks)], what="capped list"
    )[0]
    assert "…and 1 more" in dump(capped.blocks) and "wave4_recent" not in dump(capped.blocks)
    assert len(world.slack.calls_to("chat.getPermalink")) - links_before == 2  # one per listed run, no more


# /migrate validate
def test_validate_passes_without_approval_and_says_what_next(approval_world):
    world = approval_world  # REQUIRE_APPROVAL=true: validation still starts at once
    view = open_modal(world, "validate", SEED_SUBMITTED)
    rendered = dump(view)
    assert view["submit"]["text"] == "Validate" and "can be validated now" in rendered
    assert "no approval is needed" in rendered
    submit(world, view)  # the note is optional
    run = world.wait_until(
        lambda: (r := run_of(world, SEED_SUBMITTED, "validate")) and r.root_ts and r, what="validation running"
    )
    assert run.state == RunState.RUNNING and world.sim.count("POST", "/validate") == 1
    root = world.slack.message(CHANNEL, run.root_ts)
    assert "Validation: wave5_legal" in dump(root.blocks) and buttons(root) == []
    assert world.slack.messages(CHANNEL) and not [
        m for m in world.slack.messages(CHANNEL) if APPROVE_ACTION in buttons(m)
    ]
    notice = finish_via_poller(world, run, VALIDATION_SECONDS)
    assert "Validation of wave5_legal passed" in dump(notice.blocks)
    assert f"/migrate {SEED_SUBMITTED}" in dump(notice.blocks)
    assert world.bot.store.get_run(run.id).outcome == "validatePassed"
    [called] = audit(world, SEED_SUBMITTED, "validate_called")
    assert called["detail"]["outcome"] == "accepted" and called["graph_request_id"]


def test_validate_failed_lists_the_invalid_users_and_offers_to_validate_again(world):
    job_id = world.sim.create_job(
        "wave7_ops", "validateFailed", users=4, invalid_users=2, workloads=["Exchange", "ODSP"]
    )
    world.sim.set_outcome(job_id, "validateFailed")
    view = open_modal(world, "validate", job_id)
    assert "last validation failed" in dump(view)
    submit(world, view, "after fixing the MailUsers")
    run = world.wait_until(lambda: (r := run_of(world, job_id, "validate")) and r.root_ts and r, what="running")
    notice = finish_via_poller(world, run, VALIDATION_SECONDS)
    rendered = dump(notice.blocks)
    assert "Validation of wave7_ops failed" in rendered and "*Invalid users and their errors* (2)" in rendered
    invalid = [
        task["id"]
        for task in world.sim.state.tasks(job_id)
        if any(s["status"] == "invalid" for s in task["currentStatus"])
    ]
    assert len(invalid) == 2 and all(user_id in rendered for user_id in invalid)
    assert rendered.count("EXCH-08") == 2 and "not a MailUser" in rendered
    assert buttons(notice) == [VALIDATE_BUTTON_ACTION]
    # The button opens the validate modal again with the click's fresh trigger.
    opens = len(world.slack.calls_to("views.open"))
    world.sender.block_action(CHANNEL, notice.ts, VALIDATE_BUTTON_ACTION, user_id=REQUESTER)
    world.slack.wait_for("views.open", count=opens + 1)
    reopened = world.slack.calls_to("views.open")[-1].response["view"]
    world.wait_until(lambda: "can be validated now" in dump(world.slack.view(reopened["id"])), what="filled")


def test_validate_refusals_are_honest(world):
    expired = open_modal(world, "validate", SEED_VALIDATION_EXPIRED)
    assert not expired.get("submit") and "has expired" in dump(expired)
    assert "no revalidation" in dump(expired)  # said plainly, with what to do instead
    assert f"/migrate cancel {SEED_VALIDATION_EXPIRED}" in dump(expired) and "new job for the same users" in dump(
        expired
    )
    running = open_modal(world, "validate", SEED_IN_PROGRESS)
    assert not running.get("submit") and "can't be validated now" in dump(running)
    fresh = open_modal(world, "validate", SEED_VALIDATE_PASSED)
    assert not fresh.get("submit") and f"/migrate {SEED_VALIDATE_PASSED}" in dump(fresh)
    missing = open_modal(world, "validate", UNKNOWN_JOB)
    assert not missing.get("submit") and "Job not found" in dump(missing)
    assert world.sim.count("POST", "/validate") == 0


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("deny", "refused the admin credential"),
        ("503", "did NOT take effect"),
    ],
)
def test_validate_graph_errors_are_explained(world, fault, expected):
    view = open_modal(world, "validate", SEED_SUBMITTED)
    if fault == "deny":
        world.sim.deny("validate")
    else:
        world.sim.inject_fault("503", path_contains="/validate", method="POST")
    submit(world, view)
    shown = reply_to(world, REQUESTER, expected)
    assert "Could not start the validation" in shown.text and "Next step" in shown.text
    run = wait_run(world, SEED_SUBMITTED, "validate", RunState.NOT_STARTED)
    assert run.root_ts is None and world.sim.job(SEED_SUBMITTED)["status"] == "submitted"
    [called] = audit(world, SEED_SUBMITTED, "validate_called")
    assert called["detail"]["outcome"] == "refused"


def test_migrate_modal_offers_validation_in_place(world):
    view = open_modal(world, "", SEED_SUBMITTED)
    assert not view.get("submit") and "can't be migrated now" in dump(view)
    [offer] = [b for b in view["blocks"] if b["type"] == "actions"]
    assert offer["elements"][0]["action_id"] == VALIDATE_BUTTON_ACTION
    opens = len(world.slack.calls_to("views.open"))
    payload = {  # a click inside the modal: Slack sends the view, not a channel
        "type": "block_actions",
        "user": {"id": REQUESTER},
        "team": {"id": world.slack.team_id},
        "api_app_id": world.slack.app_id,
        "trigger_id": world.slack.issue_trigger(REQUESTER),
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
    response, _, _ = world.sender.post(urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 200
    switched = world.wait_until(
        lambda: (v := world.slack.view(view["id"])) and v.get("submit") and v, what="modal switched to validate"
    )
    assert switched["submit"]["text"] == "Validate" and "can be validated now" in dump(switched)
    assert len(world.slack.calls_to("views.open")) == opens  # same modal, updated in place
    submit(world, switched)
    world.wait_until(lambda: world.sim.count("POST", "/validate") == 1, what="validate called")


# /migrate cancel
def test_cancel_button_on_a_running_migration_cancels_it_in_its_thread(world):
    migration = start_migration(world)
    root = world.slack.message(CHANNEL, migration.root_ts)
    assert buttons(root) == [CANCEL_BUTTON_ACTION]
    opens = len(world.slack.calls_to("views.open"))
    updates = len(world.slack.calls_to("views.update"))
    world.sender.block_action(CHANNEL, migration.root_ts, CANCEL_BUTTON_ACTION, user_id=REQUESTER)
    world.slack.wait_for("views.open", count=opens + 1)
    world.slack.wait_for("views.update", count=updates + 1)
    view = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    rendered = dump(view)
    assert view["title"]["text"] == "Cancel migration" and view["submit"]["text"] == "Cancel the job"
    assert "stay migrated" in rendered and "only syncing" in rendered and "can be cancelled now" in rendered
    assert submit(world, view, "").ack_effect.get("action") == "errors"  # a reason is required
    submit(world, view, "CHG0043 wrong users in the batch")

    cancel = wait_run(world, SEED_VALIDATE_PASSED, "cancel", RunState.FINISHED)
    assert cancel.parent_run_id == migration.id and cancel.outcome == "pendingCancel"
    assert world.sim.count("POST", "/cancel") == 1
    [accepted] = [m for m in world.slack.thread(CHANNEL, migration.root_ts) if m.ts == cancel.root_ts]
    assert "Cancel accepted" in dump(accepted.blocks) and "CHG0043" in dump(accepted.blocks)
    notice = finish_via_poller(world, migration, CANCEL_SECONDS)
    assert "Migration of wave3_finance was cancelled" in dump(notice.blocks)
    assert world.bot.store.get_run(migration.id).outcome == "cancelled"
    assert buttons(world.slack.message(CHANNEL, migration.root_ts)) == []  # ended: no Cancel any more
    assert len(world.slack.messages(CHANNEL)) == 1  # one thread for the job: the cancel lives in it
    [called] = audit(world, SEED_VALIDATE_PASSED, "cancel_called")
    assert called["actor"] == REQUESTER and called["detail"]["outcome"] == "accepted"
    assert called["graph_request_id"] and called["run_id"] == cancel.id
    request_ids = {r.headers.get("client-request-id") for r in world.sim.requests if r.path.endswith("/cancel")}
    assert len(request_ids) == 1


def test_cancel_with_approval_calls_graph_once(approval_world):
    world = approval_world
    world.sim.set_options(cancel_in_progress=True)  # the admin table's reading (tests/test_readings.py: both)
    view = open_modal(world, "cancel", SEED_IN_PROGRESS)  # syncing, cutover in 2 days; not tracked by the bot
    assert view["submit"]["text"] == "Request approval" and "A second person must approve" in dump(view)
    submit(world, view, "CHG0044 postpone wave 6")
    run = world.wait_until(
        lambda: (r := run_of(world, SEED_IN_PROGRESS, "cancel")) and r.root_ts and r, what="approval request"
    )
    request = world.slack.message(CHANNEL, run.root_ts)
    assert run.state == RunState.PENDING and run.parent_run_id is None
    assert buttons(request) == [APPROVE_ACTION, REJECT_ACTION]
    assert "Approval needed to cancel" in dump(request.blocks) and "stay migrated" in dump(request.blocks)
    assert world.sim.count("POST", "/cancel") == 0
    command(world, f"cancel {SEED_IN_PROGRESS}", user=APPROVER)  # a second cancel request is refused
    reply_to(world, APPROVER, "already has an approval request")

    barrier = threading.Barrier(4)
    delivered = []

    def click():
        barrier.wait()
        try:
            world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
            delivered.append(1)
        except ValueError:  # the winner already removed the buttons
            pass

    clicks = [threading.Thread(target=click) for _ in range(4)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert len(delivered) >= 2
    run = wait_run(world, SEED_IN_PROGRESS, "cancel", RunState.RUNNING)
    assert run.approver_id == APPROVER
    world.wait_until(
        lambda: len([e for e in world.slack.ephemerals if "already approved" in e.text]) == len(delivered) - 1,
        what="losing clicks told",
    )
    assert world.sim.count("POST", "/cancel") == 1
    world.wait_until(
        lambda: "Cancellation: wave6_engineering" in dump(world.slack.message(CHANNEL, run.root_ts).blocks),
        what="the request became the root message",
    )
    notice = finish_via_poller(world, run, CANCEL_SECONDS)
    assert "Cancellation of wave6_engineering succeeded" in dump(notice.blocks)
    assert [e.event for e in world.bot.store.audit_events()][:3] == ["requested", "approved", "cancel_called"]


def test_cancel_request_for_a_running_migration_is_asked_in_its_thread(approval_world):
    world = approval_world
    view = open_modal(world, "", SEED_VALIDATE_PASSED)
    submit(world, view, "CHG1")
    migration = wait_posted(world, SEED_VALIDATE_PASSED, "migrate", RunState.PENDING)
    world.sender.block_action(CHANNEL, migration.root_ts, APPROVE_ACTION, user_id=APPROVER)
    wait_posted(world, SEED_VALIDATE_PASSED, "migrate", RunState.RUNNING)
    view = open_modal(world, "cancel", SEED_VALIDATE_PASSED)
    submit(world, view, "CHG2 stop it")
    cancel = world.wait_until(
        lambda: (r := run_of(world, SEED_VALIDATE_PASSED, "cancel")) and r.root_ts and r, what="cancel request"
    )
    asked = world.slack.message(CHANNEL, cancel.root_ts)
    assert cancel.parent_run_id == migration.id and asked.thread_ts == migration.root_ts and asked.reply_broadcast
    world.sender.block_action(CHANNEL, cancel.root_ts, APPROVE_ACTION, user_id=APPROVER)
    cancel = wait_run(world, SEED_VALIDATE_PASSED, "cancel", RunState.FINISHED)
    assert world.sim.count("POST", "/cancel") == 1
    assert "Cancel accepted" in dump(world.slack.message(CHANNEL, cancel.root_ts).blocks)
    assert world.bot.store.get_run(migration.id).state == RunState.RUNNING  # its poller follows to the end


def test_cancel_after_cutover_began_is_explained(world):
    view = open_modal(world, "cancel", SEED_IN_PROGRESS)
    assert view["submit"]["text"] == "Cancel the job"
    world.sim.set_status(SEED_IN_PROGRESS, "cuttingOver")  # cutover starts while the modal is open
    submit(world, view, "CHG0045")
    shown = reply_to(world, REQUESTER, "Could not cancel the job")
    assert "409" in shown.text and "Cutover has already begun" in shown.text and "stay migrated" in shown.text
    assert "not permitted for this batch (cuttingOver)" in shown.text  # Graph's own words, escaped
    run = wait_run(world, SEED_IN_PROGRESS, "cancel", RunState.NOT_STARTED)
    assert run.root_ts is None
    [called] = audit(world, SEED_IN_PROGRESS, "cancel_called")
    assert called["detail"]["outcome"] == "refused" and called["graph_request_id"]
    refused = open_modal(world, "cancel", SEED_IN_PROGRESS)  # the modal now says so up front
    assert not refused.get("submit") and "Cutover has begun" in dump(refused)
    assert world.sim.count("POST", "/cancel") == 1


def test_cancel_unknown_job_and_denied(world):
    missing = open_modal(world, "cancel", UNKNOWN_JOB)
    assert not missing.get("submit") and "Job not found" in dump(missing)
    view = open_modal(world, "cancel", SEED_SUBMITTED)
    world.sim.deny("cancel")
    submit(world, view, "CHG9")
    shown = reply_to(world, REQUESTER, "Could not cancel the job")
    assert "refused the admin credential" in shown.text and "Migration Administrator" in shown.text
    wait_run(world, SEED_SUBMITTED, "cancel", RunState.NOT_STARTED)


# The store: a cancel next to the run it stops
def test_store_allows_one_cancel_next_to_one_active_run(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path}/bot.db")
    base = {"job_id": SEED_IN_PROGRESS, "channel_id": "C1", "requester_id": "U1", "reason": "r"}
    migration = store.create_run(**base, state=RunState.RUNNING)
    cancel = store.create_run(**base, state=RunState.PENDING, action="cancel", parent_run_id=migration.id)
    with pytest.raises(JobBusy) as busy:
        store.create_run(**base, state=RunState.PENDING, action="cancel")
    assert busy.value.existing.id == cancel.id
    with pytest.raises(JobBusy) as busy:
        store.create_run(**base, state=RunState.PENDING, action="validate")
    assert busy.value.existing.id == migration.id


def test_old_databases_get_the_per_lane_index(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    with engine.begin() as connection:  # the schema before cancel existed
        connection.execute(
            text(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, job_id VARCHAR(36), action VARCHAR(16), "
                "state VARCHAR(16), channel_id VARCHAR(32), requester_id VARCHAR(32))"
            )
        )
        connection.execute(
            text(
                "CREATE UNIQUE INDEX one_active_run_per_job ON runs (job_id) "
                "WHERE state IN ('pending', 'starting', 'running')"
            )
        )
    migrate_schema(engine)
    migrate_schema(engine)  # idempotent
    store = Store(engine)
    base = {"job_id": SEED_IN_PROGRESS, "channel_id": "C1", "requester_id": "U1", "reason": "r"}
    store.create_run(**base, state=RunState.RUNNING)
    store.create_run(**base, state=RunState.PENDING, action="cancel")
    with pytest.raises(JobBusy):
        store.create_run(**base, state=RunState.PENDING)
