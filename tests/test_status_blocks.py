"""The poller's Block Kit builders: escaping, Slack limits, and what each message says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.graph.models import MigrationTask
from bot.rehearsal.slack_standin.limits import validate_blocks
from bot.ui import thread as sb

T0 = datetime(2026, 7, 20, 22, 0, tzinfo=UTC)
EVIL = "<!channel> <@U999|boss> & <https://evil.example|click>"


def dump(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def mrkdwn_texts(node: object) -> list[str]:
    """Every mrkdwn text in the blocks (plain_text is never parsed for mentions or links)."""
    if isinstance(node, list):
        return [text for item in node for text in mrkdwn_texts(item)]
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            return [node["text"]]
        return [text for value in node.values() for text in mrkdwn_texts(value)]
    return []


def assert_safe(text: str, blocks: list[dict]) -> None:
    """Nothing from Graph can ping or link: the raw control sequences never reach Slack's mrkdwn."""
    texts = [text, *mrkdwn_texts(blocks)]
    assert len(texts) > 1
    for raw in ("<!channel>", "<@U999", "<https://evil"):
        assert not any(raw in t for t in texts)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= sb.MAX_BLOCKS


def task(user: str, *services: tuple[str, str, list[dict]]) -> MigrationTask:
    return MigrationTask.model_validate(
        {
            "id": user,
            "lastUpdatedDateTime": "2026-07-21T03:12:44Z",
            "currentStatus": [{"service": s, "status": st, "message": "", "errors": errs} for s, st, errs in services],
        }
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("S0ADMINS", "<!subteam^S0ADMINS>"),
        ("U1ALICE, W2BOB", "<@U1ALICE> <@W2BOB>"),
        ("<@U1ALICE>,<!subteam^S0ADMINS|admins>", "<@U1ALICE> <!subteam^S0ADMINS>"),
        ("U1ALICE,U1ALICE", "<@U1ALICE>"),
        ("<!channel>, here, u1lower, C0CHANNEL", ""),
    ],
)
def test_admin_mentions_accepts_only_user_and_group_ids(raw, expected):
    assert sb.admin_mentions(raw) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "0 s"),
        (45, "45 s"),
        (12 * 60 + 5, "12 min"),
        (3 * 3600 + 5 * 60, "3 h 05 min"),
        (50 * 3600, "2 d 2 h"),
    ],
)
def test_duration(seconds, expected):
    assert sb.duration(timedelta(seconds=seconds)) == expected
    assert sb.duration(None) == "—"


def test_status_reply_says_old_and_new_with_the_time_and_escapes_graph_text():
    text, blocks = sb.status_reply(
        job_name=f"wave {EVIL}", old_status="processing", new_status="inProgress", message=f"syncing {EVIL}", at=T0
    )
    assert "processing -> inProgress" in text
    assert "`processing` → `inProgress`" in dump(blocks)
    assert f"<!date^{int(T0.timestamp())}^" in dump(blocks)
    assert "&lt;!channel&gt;" in dump(blocks)
    assert_safe(text, blocks)


def test_status_reply_escapes_a_status_graph_made_up():
    text, blocks = sb.status_reply(job_name="w", old_status="<!here>", new_status="<!channel>", message="", at=None)
    assert "&lt;!channel&gt;" in text
    assert_safe(text, blocks)
    assert "<!here>" not in text


def test_status_reply_for_cutover_unknown_admin_action_and_offline():
    text, blocks = sb.status_reply(job_name="w", old_status="inProgress", new_status="cuttingOver", message="", at=None)
    assert "Users are now being cut over" in text and "being cut over" in dump(blocks)

    text, blocks = sb.status_reply(
        job_name="w", old_status="inProgress", new_status="quantumEntangled", message="", at=None
    )
    assert "`quantumEntangled`" in dump(blocks) and "does not know" in dump(blocks)

    text, blocks = sb.status_reply(
        job_name="w",
        old_status="inProgress",
        new_status="adminActionRequired",
        message="",
        at=None,
        admin_mention="<!subteam^S0ADMINS>",
    )
    assert "<!subteam^S0ADMINS>" in dump(blocks) and "Admin action required" in text
    _, blocks = sb.status_reply(
        job_name="w", old_status="inProgress", new_status="adminActionRequired", message="", at=None
    )
    assert "An admin" in dump(blocks)

    text, blocks = sb.status_reply(
        job_name="w",
        old_status="processing",
        new_status="cuttingOver",
        message="",
        at=None,
        offline=True,
        via="inProgress",
    )
    assert text.startswith("While I was offline")
    assert "`processing` → `inProgress` → `cuttingOver`" in dump(blocks)

    text, blocks = sb.status_reply(
        job_name="w", old_status="inProgress", new_status="inProgress", message="50% synced", at=None
    )
    assert "still `inProgress`" in dump(blocks) and "50% synced" in dump(blocks)


def test_root_card_running_and_finished():
    text, blocks = sb.root_card(
        job_name=EVIL,
        job_id="job-1",
        requester_id="UREQ",
        reason=f"CHG1 {EVIL}",
        started_at=T0,
        now=T0 + timedelta(hours=2, minutes=5),
        status="inProgress",
        message=EVIL,
        approver_id="UAPP",
    )
    assert "Running for" in dump(blocks) and "2 h 05 min" in dump(blocks) and "<@UAPP>" in dump(blocks)
    assert_safe(text, blocks)
    text, blocks = sb.root_card(
        job_name="w",
        job_id="job-1",
        requester_id="UREQ",
        reason="",
        started_at=T0,
        now=T0 + timedelta(minutes=30),
        status="completed",
        finished=True,
    )
    assert "*Took*" in dump(blocks) and "30 min" in dump(blocks) and "*Ended*" in dump(blocks)
    assert "ended" in text
    assert validate_blocks(blocks) == []


def test_trouble_recovered_and_stale_notes():
    text, blocks = sb.trouble_note(failures=3, error_text=f"Graph HTTP 503 {EVIL}", auth=False, status="inProgress")
    assert "can't reach Microsoft Graph" in dump(blocks) and "3 failed polls" in text
    assert_safe(text, blocks)
    text, blocks = sb.trouble_note(
        failures=3, error_text="refresh token expired", auth=True, status=None, admin_mention="<@UADMIN>"
    )
    assert "migrate-bot login" in dump(blocks) and "<@UADMIN>" in dump(blocks) and "migrate-bot login" in text
    text, blocks = sb.recovered_note(failures=4, status="cuttingOver")
    assert "answers again" in text and "`cuttingOver`" in dump(blocks)
    text, blocks = sb.stale_note(since=timedelta(hours=25), last_update=T0, status="inProgress")
    assert "25 h 00 min" in dump(blocks) and "may be stuck" in dump(blocks)


def test_summarize_tasks_counts_per_workload_and_status_and_finds_failed_users():
    tasks = [
        task("u1", ("Exchange", "completed", []), ("ODSP", "completed", []), ("Teams", "Completed", [])),
        task(
            "u2",
            ("Exchange", "completed", []),
            ("ODSP", "failed", [{"code": "MIGR-003", "message": "User [u2] migration failed."}]),
            ("Meeting", "failed", [{"code": "MIGR-002", "message": "User u2 is not authorized to migrate."}]),
        ),
        task("u3", ("Exchange", "somethingNew", [])),
    ]
    summary = sb.summarize_tasks(tasks)
    assert summary.users == 3 and summary.failed == 1 and summary.ok == 2
    assert summary.by_workload["ODSP"] == {"completed": 1, "failed": 1}
    assert summary.by_workload["Exchange"] == {"completed": 2, "somethingNew": 1}
    assert summary.by_workload["Teams"] == {"completed": 1}
    failed = summary.failed_users[0]
    assert failed.user_id == "u2"
    assert [(w.service, w.errors[0][0]) for w in failed.workloads] == [("ODSP", "MIGR-003"), ("Meeting", "MIGR-002")]
    assert summary.line() == "3 users: 2 without errors, 1 with errors"


def test_final_notice_for_errors_lists_first_users_with_codes_and_counts_the_rest():
    tasks = [
        task(
            f"user-{n:04d}",
            ("Exchange", "completed", []),
            ("ODSP", "failed", [{"code": f"MIGR-003 {EVIL}", "message": f"failed {EVIL} " + "x" * 900}]),
        )
        for n in range(13)
    ]
    summary = sb.summarize_tasks(tasks)
    text, blocks = sb.final_notice(
        job_name=f"wave {EVIL}",
        job_id="job-1",
        outcome="completedWithErrors",
        message=f"The batch completed with errors {EVIL}",
        requester_id="UREQ",
        started_at=T0,
        ended_at=T0 + timedelta(hours=3, minutes=12),
        summary=summary,
        run_id=7,
    )
    body = dump(blocks)
    assert "completed with errors" in text and "3 h 12 min" in text and "13 users" in text
    assert "*Users with errors* (10 of 13)" in body
    assert "user-0009" in body and "user-0010" not in body
    assert "…and 3 more users with errors" in body
    assert "MIGR-003" in body and "*ODSP*" in body
    assert "ODSP" in body and "failed 13" in body and "completed 13" in body
    assert "run 7" in body
    assert_safe(text, blocks)


def test_final_notice_stays_within_block_kit_limits_for_a_huge_batch():
    tasks = [
        task(
            f"{n:08d}-aaaa-bbbb-cccc-dddddddddddd",
            *[(f"Workload{w}", "failed", [{"code": "E" * 80, "message": "<&>" * 400}] * 4) for w in range(12)],
        )
        for n in range(60)
    ]
    tasks += [task(f"ok-{n}", ("Exchange", "completed", [])) for n in range(1940)]
    summary = sb.summarize_tasks(tasks)
    text, blocks = sb.final_notice(
        job_name="x" * 600,
        job_id="job-1",
        outcome="failed",
        message="m" * 5000,
        requester_id="UREQ",
        started_at=T0,
        ended_at=T0,
        summary=summary,
        run_id=1,
        max_failed_users=50,
    )
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert "run 1" in json.dumps(blocks[-1])  # the reference block survives trimming
    assert "2000 users: 1940 without errors, 60 with errors" in text
    assert len(text) <= sb.TEXT_MAX


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        ("completed", "completed"),
        ("failed", "failed"),
        ("cancelled", "was cancelled"),
        ("vanished", "no longer exists"),
        ("weirdEnd", "ended with status"),
    ],
)
def test_final_notice_outcomes(outcome, words):
    text, blocks = sb.final_notice(
        job_name="w",
        job_id="job-1",
        outcome=outcome,
        message="",
        requester_id="UREQ",
        started_at=None,
        ended_at=T0,
        summary=None,
        run_id=1,
    )
    assert words in dump(blocks)
    if outcome == "vanished":
        assert "HTTP 404" in dump(blocks)
    assert validate_blocks(blocks) == []


def test_requester_dm_links_the_notice_and_sums_up():
    text, blocks = sb.requester_dm(
        job_name=EVIL,
        outcome="completedWithErrors",
        took="3 h 05 min",
        where="<https://team.slack.com/archives/C1/p1|the thread>",
        summary_line="50 users: 47 without errors, 3 with errors",
    )
    assert "<https://team.slack.com/archives/C1/p1|the thread>" in dump(blocks)
    assert "47 without errors" in dump(blocks) and "completed with errors" in text
    assert_safe(text, blocks)
    _, blocks = sb.requester_dm(
        job_name="w", outcome="completed", took="1 h", where="x", summary_line=None, channel_unavailable="CGONE"
    )
    assert "could not post the outcome in <#CGONE>" in dump(blocks)
