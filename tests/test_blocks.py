"""Block Kit builders: escaping, limits, and the modal's verdict."""

import json
from datetime import UTC, datetime

from bot.errors import ConflictReason, GraphConflict, GraphErrorInfo, GraphNotFound
from bot.graph.eligibility import migrate_eligibility
from bot.graph.models import MigrationJob
from bot.slack.mrkdwn import escape, safe, truncate
from bot.ui import modal as blocks
from bot.ui.modal import ModalContext
from bot.ui.thread import root_message

NOW = datetime(2026, 7, 2, tzinfo=UTC)
CTX = ModalContext("C1", "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611", "U1", "T1")


def make_job(**changes):
    data = {
        "id": CTX.job_id,
        "displayName": "wave3",
        "status": "validatePassed",
        "lastUpdatedDateTime": "2026-07-01T08:41:10Z",
        "workloads": ["Exchange"],
        **changes,
    }
    return MigrationJob.model_validate(data)


def all_text(view) -> str:
    return json.dumps(view)


def mrkdwn_texts(node) -> str:
    """Every mrkdwn string (the only text Slack parses for mentions and links)."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            found.append(node["text"])
        for value in node.values():
            found.append(mrkdwn_texts(value))
    elif isinstance(node, list):
        found.extend(mrkdwn_texts(item) for item in node)
    return "\n".join(found)


def test_escape_neutralises_mentions_and_links():
    assert escape("<!channel> & <@U123>") == "&lt;!channel&gt; &amp; &lt;@U123&gt;"


def test_truncate_respects_limit_and_entities():
    assert len(truncate("x" * 5000, 3000)) == 3000
    cut = truncate("a" * 8 + "&amp;", 10)
    assert cut.endswith("…") and "&am" not in cut
    assert safe("<" * 100, 50).count("&lt;") < 50


def test_hostile_job_name_pings_nobody():
    view = blocks.confirm_modal(
        CTX,
        make_job(displayName="<!channel> urgent <@U123>", message="<!here> hi"),
        migrate_eligibility(make_job(), NOW),
        needs_approval=False,
    )
    text = mrkdwn_texts(view)
    assert "<!channel>" not in text and "<@U123>" not in text and "<!here>" not in text
    assert "&lt;!channel&gt; urgent" in text
    header = view["blocks"][0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"  # never parsed


def test_migratable_modal_requires_reason_and_has_submit():
    view = blocks.confirm_modal(CTX, make_job(), migrate_eligibility(make_job(), NOW), needs_approval=False)
    assert view["submit"]["text"] == "Start migration"
    reason = [b for b in view["blocks"] if b.get("block_id") == blocks.REASON_BLOCK]
    assert reason and reason[0]["type"] == "input" and not reason[0].get("optional")
    assert ModalContext.decode(view["private_metadata"]) == CTX
    assert len(view["title"]["text"]) <= 24


def test_approval_modal_says_request_approval():
    view = blocks.confirm_modal(CTX, make_job(), migrate_eligibility(make_job(), NOW), needs_approval=True)
    assert view["submit"]["text"] == "Request approval"


def test_not_migratable_modal_has_no_submit_and_says_why():
    job = make_job(status="validateFailed")
    view = blocks.confirm_modal(CTX, job, migrate_eligibility(job, NOW), needs_approval=False)
    assert "submit" not in view
    assert "can't be migrated now" in all_text(view)
    assert "Next step" in all_text(view)


def test_fields_are_split_at_ten_and_dates_are_slack_tokens():
    view = blocks.confirm_modal(
        CTX,
        make_job(completeAfterDateTime="2026-07-20T22:00:00Z"),
        migrate_eligibility(make_job(), NOW),
        needs_approval=False,
    )
    for block in view["blocks"]:
        assert len(block.get("fields", [])) <= 10
    assert "<!date^1784584800^" in all_text(view)


def test_graph_error_modals_explain_next_step():
    info = GraphErrorInfo(404, "itemNotFound", "UserRequest not found <x>", "rid-1", "cid-1")
    text = all_text(blocks.graph_error_modal(CTX, GraphNotFound(info)))
    assert "Job not found" in text and "Check the job id" in text and "rid-1" in text
    assert "<x>" not in text
    expired = GraphConflict(
        GraphErrorInfo(409, "conflict", "Validation results expired"), ConflictReason.VALIDATION_EXPIRED
    )
    assert "validate" in all_text(blocks.graph_error_modal(CTX, expired))


def test_root_message_has_who_why_and_status():
    text, body = root_message(
        job=make_job(displayName="<!channel>"),
        requester_id="U1",
        reason="CHG1 <b>",
        started_at=NOW,
        status="processing",
    )
    rendered = all_text(body)
    assert "<@U1>" in rendered and "CHG1 &lt;b&gt;" in rendered and "processing" in rendered
    assert "<!channel>" not in text
