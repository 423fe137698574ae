"""The Slack stand-in, driven by the real slack_sdk WebClient, a real Bolt App and signed HTTP requests."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from bot.httpserver import WSGIServer
from bot.rehearsal.slack_standin import SlackSender, SlackStandIn, render_channel, render_view
from bot.rehearsal.slack_standin.api import DEFAULT_SCOPES
from tests.conftest import assert_slack_took_everything

SECRET = "standin-signing-secret"

# Some limit tests post blocks without `text` on purpose; slack_sdk warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def standin():
    with SlackStandIn() as slack:
        slack.add_channel("CMIG", "migrations", members=["UALICE", "UBOB"])
        slack.add_channel("CPRIV", "secret-ops", bot_member=False, is_private=True)
        slack.add_channel("CPUB", "town-square", bot_member=False)
        slack.add_user("UALICE", "alice", is_admin=True)
        slack.add_user("UBOB", "bob")
        slack.add_usergroup("SAPPROVERS", "migration-approvers", ["UALICE", "UBOB"])
        yield slack
    assert_slack_took_everything(slack)


@pytest.fixture
def client(standin):
    return WebClient(token=standin.bot_token, base_url=standin.api_url)


def slack_error(call, **kwargs) -> dict:
    with pytest.raises(SlackApiError) as info:
        call(**kwargs)
    return info.value.response.data


def modal(title: str = "Migrate job-42", **extra) -> dict:
    view = {
        "type": "modal",
        "callback_id": "migrate_confirm",
        "title": {"type": "plain_text", "text": title},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Fetching job…"}}],
    }
    view.update(extra)
    return view


# ------------------------------------------------------------------ messages and threads


def test_post_message_returns_increasing_ts_and_records_threads(standin, client):
    standin.set_rate_limits(per_channel=(50, 50))  # four posts at once: more than Slack's burst
    root = client.chat_postMessage(channel="CMIG", text="Migration job-42 started")
    assert root["channel"] == "CMIG"
    assert root["message"]["text"] == "Migration job-42 started"
    first = client.chat_postMessage(channel="CMIG", text="10%", thread_ts=root["ts"])
    done = client.chat_postMessage(channel="CMIG", text="done", thread_ts=root["ts"], reply_broadcast=True)
    second_root = client.chat_postMessage(channel="#migrations", text="another")  # names work too

    stamps = [root["ts"], first["ts"], done["ts"], second_root["ts"]]
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    assert [float(ts) for ts in stamps] == sorted(float(ts) for ts in stamps)
    assert len(set(stamps)) == 4

    messages = standin.messages("CMIG")
    assert [m.ts for m in messages] == [root["ts"], second_root["ts"]]  # replies are not top level
    replies = standin.thread("CMIG", root["ts"])
    assert [(r.text, r.thread_ts, r.reply_broadcast) for r in replies] == [
        ("10%", root["ts"], False),
        ("done", root["ts"], True),
    ]
    assert messages[0].replies[1].ts == done["ts"]
    post_calls = standin.calls_to("chat.postMessage")
    assert post_calls[2].args["reply_broadcast"] is True and post_calls[2].args["thread_ts"] == root["ts"]


def test_thread_ts_must_name_an_existing_top_level_message(standin, client):
    standin.set_bot_member("CPUB", True)
    standin.set_rate_limits(per_channel=(50, 50))  # more posts at once than Slack's burst
    root = client.chat_postMessage(channel="CMIG", text="root")
    reply = client.chat_postMessage(channel="CMIG", text="reply", thread_ts=root["ts"])
    assert (
        slack_error(client.chat_postMessage, channel="CMIG", text="x", thread_ts="1700000000.999999")["error"]
        == "thread_not_found"
    )
    assert (
        slack_error(client.chat_postMessage, channel="CMIG", text="x", thread_ts=reply["ts"])["error"]
        == "thread_not_found"
    )
    other = client.chat_postMessage(channel="CPUB", text="elsewhere")
    assert (
        slack_error(client.chat_postMessage, channel="CMIG", text="x", thread_ts=other["ts"])["error"]
        == "thread_not_found"
    )
    assert (
        slack_error(client.chat_postMessage, channel="CMIG", text="x", thread_ts="not-a-ts")["error"]
        == "invalid_thread_ts"
    )
    assert len(standin.thread("CMIG", root["ts"])) == 1


def test_chat_update_changes_the_stored_message_only_for_the_bots_own(standin, client):
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Pending* approval"}},
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [{"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}}],
        },
    ]
    root = client.chat_postMessage(channel="CMIG", text="pending", blocks=blocks)
    updated = client.chat_update(
        channel="CMIG",
        ts=root["ts"],
        text="approved",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@UALICE>"}}],
    )
    assert updated["ts"] == root["ts"] and updated["text"] == "approved"
    message = standin.message("CMIG", root["ts"])
    assert message.text == "approved"
    assert [b["type"] for b in message.blocks] == ["section"]
    assert message.edits[0]["text"] == "pending" and message.edited_at is not None

    client.chat_update(channel="CMIG", ts=root["ts"], text="approved (again)")  # blocks omitted: kept
    assert standin.message("CMIG", root["ts"]).blocks[0]["text"]["text"] == "Approved by <@UALICE>"

    human = standin.post_as_user("CMIG", "UBOB", "hello")
    assert slack_error(client.chat_update, channel="CMIG", ts=human, text="x")["error"] == "cant_update_message"
    assert (
        slack_error(client.chat_update, channel="CMIG", ts="1700000000.000001", text="x")["error"]
        == "message_not_found"
    )
    assert (
        slack_error(client.chat_update, channel="migrations", ts=root["ts"], text="x")["error"] == "channel_not_found"
    )


def test_bot_must_be_in_the_channel_unless_public_with_chat_write_public(standin, client):
    assert "chat:write.public" not in standin.scopes  # the manifest does not ask for it
    assert slack_error(client.chat_postMessage, channel="CPRIV", text="x")["error"] == "channel_not_found"
    assert slack_error(client.chat_postMessage, channel="CNOPE", text="x")["error"] == "channel_not_found"
    assert slack_error(client.chat_postMessage, channel="CPUB", text="x")["error"] == "not_in_channel"
    with SlackStandIn(scopes=DEFAULT_SCOPES | {"chat:write.public"}) as public:  # a test that asks for it
        public.add_channel("CPUB", "town-square", bot_member=False)
        public.add_channel("CPRIV", "secret-ops", bot_member=False, is_private=True)
        public_client = WebClient(token=public.bot_token, base_url=public.api_url)
        assert public_client.chat_postMessage(channel="CPUB", text="ok")["ok"]
        assert slack_error(public_client.chat_postMessage, channel="CPRIV", text="x")["error"] == "channel_not_found"

    with SlackStandIn(scopes={"chat:write", "commands"}) as narrow:
        narrow.add_channel("CPUB", "town-square", bot_member=False)
        narrow_client = WebClient(token=narrow.bot_token, base_url=narrow.api_url)
        assert slack_error(narrow_client.chat_postMessage, channel="CPUB", text="x")["error"] == "not_in_channel"
        narrow.set_bot_member("CPUB", True)
        assert narrow_client.chat_postMessage(channel="CPUB", text="x")["ok"]
        missing = slack_error(narrow_client.users_info, user="UMIGBOT")
        assert missing["error"] == "missing_scope" and missing["needed"] == "users:read"


@pytest.mark.parametrize(
    "kwargs, error, pointer",
    [
        ({"blocks": [{"type": "divider"}] * 51}, "invalid_blocks", "/blocks"),
        (
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "invalid_blocks",
            "/blocks/0/text/text",
        ),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "invalid_blocks",
            "/blocks/0/text/text",
        ),
        (
            {"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            "invalid_blocks",
            "/blocks/0/text/type",
        ),
        (
            {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            "invalid_blocks",
            "/blocks/0/fields",
        ),
        (
            {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]},
            "invalid_blocks",
            "/blocks/0/fields/0/text",
        ),
        (
            {
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b" * 76}}
                        ],
                    }
                ]
            },
            "invalid_blocks",
            "/blocks/0/elements/0/text/text",
        ),
        (
            {
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {"type": "button", "action_id": "a" * 256, "text": {"type": "plain_text", "text": "ok"}}
                        ],
                    }
                ]
            },
            "invalid_blocks",
            "/blocks/0/elements/0/action_id",
        ),
        (
            {
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "a",
                                "value": "v" * 2001,
                                "text": {"type": "plain_text", "text": "ok"},
                            }
                        ],
                    }
                ]
            },
            "invalid_blocks",
            "/blocks/0/elements/0/value",
        ),
        ({"blocks": [{"type": "divider", "block_id": "b" * 256}]}, "invalid_blocks", "/blocks/0/block_id"),
        (
            {"blocks": [{"type": "divider", "block_id": "same"}, {"type": "divider", "block_id": "same"}]},
            "invalid_blocks",
            "/blocks/1/block_id",
        ),
        ({"text": "x" * 40_001}, "msg_too_long", None),
        ({}, "no_text", None),
    ],
)
def test_message_limits_are_enforced_like_slack(standin, client, kwargs, error, pointer):
    data = slack_error(client.chat_postMessage, channel="CMIG", **kwargs)
    assert data["error"] == error
    if pointer:
        assert any(e.endswith(f"[json-pointer:{pointer}]") for e in data["errors"]), data["errors"]
        assert data["response_metadata"]["messages"][0].startswith("[ERROR] ")
    assert standin.messages("CMIG") == []


def test_limits_at_the_boundary_are_accepted(standin, client):
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "s" * 3000},
            "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10,
        },
        {
            "type": "actions",
            "block_id": "b" * 255,
            "elements": [
                {
                    "type": "button",
                    "action_id": "a" * 255,
                    "value": "v" * 2000,
                    "text": {"type": "plain_text", "text": "t" * 75},
                }
            ],
        },
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    assert client.chat_postMessage(channel="CMIG", text="x" * 40_000, blocks=blocks)["ok"]
    assert len(standin.messages("CMIG")[0].blocks) == 50


# ------------------------------------------------------------------ triggers and views


def test_trigger_is_single_use_and_must_come_from_the_standin(standin, client):
    trigger = standin.issue_trigger("UALICE")
    opened = client.views_open(trigger_id=trigger, view=modal())
    view_id = opened["view"]["id"]
    assert opened["view"]["hash"] and opened["view"]["root_view_id"] == view_id
    assert standin.view_user(view_id) == "UALICE"
    assert slack_error(client.views_open, trigger_id=trigger, view=modal())["error"] == "exchanged_trigger_id"
    assert slack_error(client.views_open, trigger_id="123.456.forged", view=modal())["error"] == "invalid_trigger_id"
    assert list(standin.views) == [view_id]


def test_trigger_expires_after_three_seconds():
    clock = FakeClock()
    with SlackStandIn(clock=clock) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        fresh, stale = slack.issue_trigger("U1"), slack.issue_trigger("U1")
        clock.now += 2.9
        assert client.views_open(trigger_id=fresh, view=modal())["ok"]
        clock.now += 0.2  # 3.1 s after issue
        assert slack_error(client.views_open, trigger_id=stale, view=modal())["error"] == "expired_trigger_id"

    with SlackStandIn(trigger_ttl=0.05) as slack:  # the real clock, a short ttl
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        trigger = slack.issue_trigger("U1")
        time.sleep(0.1)
        assert slack_error(client.views_open, trigger_id=trigger, view=modal())["error"] == "expired_trigger_id"


@pytest.mark.parametrize(
    "view, pointer",
    [
        (modal(title="t" * 25), "/view/title/text"),
        (modal(submit={"type": "plain_text", "text": "s" * 25}), "/view/submit/text"),
        (modal(close={"type": "plain_text", "text": "c" * 25}), "/view/close/text"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(callback_id="c" * 256), "/view/callback_id"),
        (modal(blocks=[{"type": "divider"}] * 101), "/view/blocks"),
        (modal(type="home"), "/view/type"),
        (
            modal(
                blocks=[
                    {
                        "type": "input",
                        "label": {"type": "plain_text", "text": "Reason"},
                        "element": {"type": "plain_text_input", "action_id": "reason"},
                    }
                ]
            ),
            "/view/submit",
        ),
    ],
)
def test_view_limits(standin, client, view, pointer):
    trigger = standin.issue_trigger("UALICE")
    data = slack_error(client.views_open, trigger_id=trigger, view=view)
    assert data["error"] == "invalid_arguments"
    assert any(pointer in m for m in data["response_metadata"]["messages"]), data
    assert standin.views == {}
    assert client.views_open(trigger_id=trigger, view=modal())["ok"]  # a rejected view spends no trigger


def test_views_update_checks_hash_and_view_id(standin, client):
    opened = client.views_open(
        trigger_id=standin.issue_trigger("UALICE"), view=modal(private_metadata='{"j":"job-42"}')
    )["view"]
    updated = client.views_update(
        view_id=opened["id"],
        hash=opened["hash"],
        view=modal(submit={"type": "plain_text", "text": "Start"}, private_metadata="p2"),
    )
    assert updated["view"]["hash"] != opened["hash"] and updated["view"]["id"] == opened["id"]
    assert standin.views[opened["id"]]["private_metadata"] == "p2"
    assert (
        slack_error(client.views_update, view_id=opened["id"], hash=opened["hash"], view=modal())["error"]
        == "hash_conflict"
    )
    assert slack_error(client.views_update, view_id="VNOPE", view=modal())["error"] == "not_found"
    assert client.views_update(view_id=opened["id"], view=modal(title="No hash, no check"))["ok"]
    assert [v["title"]["text"] for v in standin.view_versions(opened["id"])] == [
        "Migrate job-42",
        "Migrate job-42",
        "No hash, no check",
    ]
    standin.close_view(opened["id"])
    assert slack_error(client.views_update, view_id=opened["id"], view=modal())["error"] == "not_found"


def test_views_push_stacks_at_most_three(standin, client):
    root = client.views_open(trigger_id=standin.issue_trigger("UALICE"), view=modal())["view"]
    for _ in range(2):
        pushed = client.views_push(trigger_id=standin.issue_trigger("UALICE", view_id=root["id"]), view=modal())
        assert pushed["view"]["root_view_id"] == root["id"]
    data = slack_error(client.views_push, trigger_id=standin.issue_trigger("UALICE", view_id=root["id"]), view=modal())
    assert data["error"] == "push_limit_reached"


# ------------------------------------------------------------------ rate limits, auth, wire formats


def test_429_with_retry_after_is_retried_by_slack_sdk(standin):
    client = WebClient(
        token=standin.bot_token,
        base_url=standin.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    standin.fail_next("chat.postMessage", retry_after=1)
    started = time.monotonic()
    response = client.chat_postMessage(channel="CMIG", text="eventually")
    assert response["ok"] and time.monotonic() - started >= 1.0  # it honoured Retry-After
    calls = standin.calls_to("chat.postMessage")
    assert [(c.http_status, c.error) for c in calls] == [(429, "ratelimited"), (200, None)]
    assert [m.text for m in standin.messages("CMIG")] == ["eventually"]

    raw = httpx.post(standin.api_url + "auth.test", headers={"Authorization": f"Bearer {standin.bot_token}"})
    standin.fail_next("auth.test", retry_after=7)
    limited = httpx.post(standin.api_url + "auth.test", headers={"Authorization": f"Bearer {standin.bot_token}"})
    assert raw.status_code == 200
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {"ok": False, "error": "ratelimited"}


def test_fail_next_with_a_slack_error_answers_http_200(standin, client):
    standin.fail_next("usergroups.users.list", error="plan_upgrade_required", count=2)
    for _ in range(2):
        assert slack_error(client.usergroups_users_list, usergroup="SAPPROVERS")["error"] == "plan_upgrade_required"
    assert client.usergroups_users_list(usergroup="SAPPROVERS")["users"] == ["UALICE", "UBOB"]
    assert [c.http_status for c in standin.calls_to("usergroups.users.list")] == [200, 200, 200]


@pytest.mark.parametrize("applied", [True, False])
def test_drop_next_closes_the_connection_without_an_answer(standin, applied):
    client = WebClient(token=standin.bot_token, base_url=standin.api_url, retry_handlers=[])  # no resend
    standin.drop_next("chat.postMessage", applied=applied)
    with pytest.raises(OSError):
        client.chat_postMessage(channel="CMIG", text="maybe")
    assert [m.text for m in standin.messages("CMIG")] == (["maybe"] if applied else [])
    assert [c.error for c in standin.calls_to("chat.postMessage")] == ["connection_dropped"]
    assert client.chat_postMessage(channel="CMIG", text="next")["ok"]  # only the next call


def test_hold_next_applies_and_answers_only_when_released(standin, client):
    hold = standin.hold_next("chat.postMessage")
    answers: list = []
    sender = threading.Thread(target=lambda: answers.append(client.chat_postMessage(channel="CMIG", text="slow")))
    sender.start()
    assert hold.arrived.wait(5)
    assert standin.messages("CMIG") == [] and answers == []  # in flight: not applied, not answered
    assert client.chat_postMessage(channel="CMIG", text="other")["ok"]  # other calls go on meanwhile
    hold.release()
    sender.join(5)
    assert answers[0]["ok"] and [m.text for m in standin.messages("CMIG")] == ["other", "slow"]


def test_per_channel_post_limiter_is_on_by_default():
    clock = FakeClock()
    with SlackStandIn(clock=clock) as slack:
        slack.add_channel("C1", "one")
        slack.add_channel("C2", "two")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        for n in range(3):  # Slack's short burst
            client.chat_postMessage(channel="C1", text=f"burst {n}")
        limited = slack_error(client.chat_postMessage, channel="C1", text="one too many")
        assert limited["error"] == "ratelimited" and slack.calls_to("chat.postMessage")[-1].http_status == 429
        clock.now += 1.0
        slack.enable_post_rate_limit(per_second=1.0, burst=2)
        client.chat_postMessage(channel="C1", text="1")
        client.chat_postMessage(channel="C1", text="2")
        limited = slack_error(client.chat_postMessage, channel="C1", text="3")
        assert limited["error"] == "ratelimited"
        assert slack.calls_to("chat.postMessage")[-1].http_status == 429
        assert client.chat_postMessage(channel="C2", text="other channel")["ok"]
        clock.now += 1.0
        assert client.chat_postMessage(channel="C1", text="after a second")["ok"]


def test_tokens_are_checked(standin):
    bad = WebClient(token="xoxb-stolen", base_url=standin.api_url)
    assert slack_error(bad.auth_test)["error"] == "invalid_auth"
    anonymous = httpx.post(standin.api_url + "chat.postMessage", json={"channel": "CMIG", "text": "x"})
    assert anonymous.status_code == 200 and anonymous.json() == {"ok": False, "error": "not_authed"}
    assert standin.messages("CMIG") == []
    app_level = WebClient(token=standin.app_token, base_url=standin.api_url)
    assert app_level.apps_connections_open(app_token=standin.app_token)["url"].startswith("ws://")
    assert slack_error(app_level.chat_postMessage, channel="CMIG", text="x")["error"] == "not_allowed_token_type"


def test_form_json_and_query_string_bodies(standin):
    auth = {"Authorization": f"Bearer {standin.bot_token}"}
    as_form = httpx.post(
        standin.api_url + "chat.postMessage",
        headers=auth,
        data={
            "channel": "CMIG",
            "text": "form",
            "blocks": json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "from a form"}}]),
        },
    )
    as_query = httpx.get(standin.api_url + "users.info", params={"user": "UBOB", "token": standin.bot_token})
    as_json = httpx.post(standin.api_url + "conversations.info", headers=auth, json={"channel": "CMIG"})
    assert as_form.json()["ok"] and standin.messages("CMIG")[0].blocks[0]["text"]["text"] == "from a form"
    assert as_query.json()["user"]["name"] == "bob"
    assert as_json.json()["channel"]["is_member"] is True


def test_directory_methods(standin, client):
    assert client.usergroups_users_list(usergroup="SAPPROVERS")["users"] == ["UALICE", "UBOB"]
    assert slack_error(client.usergroups_users_list, usergroup="SNOPE")["error"] == "no_such_subteam"
    alice = client.users_info(user="UALICE")["user"]
    assert alice["is_admin"] is True and alice["tz"] == "Europe/Amsterdam" and alice["deleted"] is False
    assert slack_error(client.users_info, user="UNOPE")["error"] == "user_not_found"
    assert slack_error(client.conversations_info, channel="CPRIV")["error"] == "channel_not_found"
    root = client.chat_postMessage(channel="CMIG", text="root")
    reply = client.chat_postMessage(channel="CMIG", text="r", thread_ts=root["ts"])
    link = client.chat_getPermalink(channel="CMIG", message_ts=reply["ts"])["permalink"]
    assert link.endswith(f"/archives/CMIG/p{reply['ts'].replace('.', '')}?thread_ts={root['ts']}&cid=CMIG")
    assert client.auth_test()["user_id"] == "UMIGBOT"


def test_ephemerals_and_response_url_limits(standin, client):
    sent = client.chat_postEphemeral(channel="CMIG", user="UBOB", text="Only you can see this")
    assert sent["message_ts"]
    standin.add_user("UCAROL", "carol")  # in the workspace, not in the channel
    refused = slack_error(client.chat_postEphemeral, channel="CMIG", user="UCAROL", text="x")
    assert refused["error"] == "user_not_in_channel"
    standin.leave("CMIG", "UBOB")
    assert (
        slack_error(client.chat_postEphemeral, channel="CMIG", user="UBOB", text="x")["error"] == "user_not_in_channel"
    )
    standin.join("CMIG", "UBOB", "UCAROL")
    assert client.chat_postEphemeral(channel="CMIG", user="UCAROL", text="now you can")["ok"]
    url = standin.issue_response_url(channel="CMIG", user="UBOB")
    statuses = [httpx.post(url, json={"text": f"try {i}"}).text for i in range(6)]
    assert statuses == ["ok"] * 5 + ["used_url"]
    assert httpx.post(standin.url + "/response/nope", json={"text": "x"}).status_code == 404
    assert [(e.source, e.user, e.text) for e in standin.ephemerals][:3] == [
        ("chat.postEphemeral", "UBOB", "Only you can see this"),
        ("chat.postEphemeral", "UCAROL", "now you can"),
        ("response_url", "UBOB", "try 0"),
    ]
    assert standin.messages("CMIG") == []  # ephemeral responses never reach the channel
    in_channel = standin.issue_response_url(channel="CMIG", user="UBOB")
    httpx.post(in_channel, json={"text": "for everyone", "response_type": "in_channel"})
    assert [m.text for m in standin.messages("CMIG")] == ["for everyone"]


def test_wait_for_sees_calls_made_later_and_times_out(standin, client):
    timer = threading.Timer(0.2, lambda: client.chat_postMessage(channel="CMIG", text="late"))
    timer.start()
    calls = standin.wait_for("chat.postMessage", timeout=3.0, predicate=lambda c: c.args.get("text") == "late")
    assert calls[0].ok and calls[0].response["ts"]
    with pytest.raises(TimeoutError, match="views.open"):
        standin.wait_for("views.open", timeout=0.1)
    standin.reset_calls()
    assert standin.calls == []


# ------------------------------------------------------------------ signed requests to a bot


class Recorder:
    """A tiny WSGI app that keeps every request it receives."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        self.requests.append((headers, body))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]


def test_sender_signs_like_slack(standin):
    recorder = Recorder()
    verifier = SignatureVerifier(SECRET)
    with WSGIServer(recorder) as server, SlackSender(server.url, SECRET, standin) as sender:
        good = sender.slash_command("job-42", user_id="UALICE", channel_id="CMIG")
        sender.slash_command("job-42", user_id="UALICE", channel_id="CMIG", bad_signature=True)
        sender.slash_command("job-42", user_id="UALICE", channel_id="CMIG", stale=True)
    assert good.status_code == 200 and good.acked_at >= good.sent_at
    (h_good, b_good), (h_bad, b_bad), (h_stale, b_stale) = recorder.requests
    assert verifier.is_valid_request(b_good, h_good)
    assert not verifier.is_valid_request(b_bad, h_bad)
    assert not verifier.is_valid_request(b_stale, h_stale)
    assert int(h_good["x-slack-request-timestamp"]) - int(h_stale["x-slack-request-timestamp"]) > 300
    assert h_good["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(b_good.decode(), keep_blank_values=True).items()}
    assert list(form) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert form["command"] == "/migrate" and form["text"] == "job-42" and form["channel_name"] == "migrations"
    assert form["response_url"].startswith(standin.url + "/response/")
    assert form["trigger_id"] == good.trigger_id


@pytest.fixture
def bolt(standin, monkeypatch):
    """A real Bolt App behind the production WSGI server, talking to the stand-in."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    app = App(signing_secret=SECRET, client=WebClient(token=standin.bot_token, base_url=standin.api_url))
    seen: dict[str, list] = {"submissions": [], "clicks": []}

    @app.command("/migrate")
    def migrate(ack, body, client):
        job_id = body["text"].strip()
        if not job_id:
            ack("Usage: /migrate <jobId>")
            return
        ack()
        loading = client.views_open(
            trigger_id=body["trigger_id"],
            view=modal(private_metadata=json.dumps({"c": body["channel_id"], "j": job_id}), notify_on_close=True),
        )
        client.views_update(
            view_id=loading["view"]["id"],
            hash=loading["view"]["hash"],
            view=modal(
                private_metadata=json.dumps({"c": body["channel_id"], "j": job_id}),
                submit={"type": "plain_text", "text": "Start"},
                notify_on_close=True,
            ),
        )

    @app.view("migrate_confirm")
    def confirm(ack, body, view, client):
        meta = json.loads(view["private_metadata"])
        if view["state"]["values"].get("reason", {}).get("text", {}).get("value") == "bad":
            ack(response_action="errors", errors={"reason": "Say why"})
            return
        ack()
        seen["submissions"].append(meta)
        client.chat_postMessage(
            channel=meta["c"],
            text=f"Approve {meta['j']}?",
            blocks=[
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"Migration *{meta['j']}* by <@{body['user']['id']}>"},
                },
                {
                    "type": "actions",
                    "block_id": "approval",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "migrate_approve",
                            "value": meta["j"],
                            "style": "danger",
                            "text": {"type": "plain_text", "text": "Approve"},
                        }
                    ],
                },
            ],
        )

    @app.action("migrate_approve")
    def approve(ack, body, respond):
        ack()
        seen["clicks"].append((body["actions"][0]["value"], body["container"]["message_ts"], body["user"]["id"]))
        respond(replace_original=True, text=f"Approved by <@{body['user']['id']}>")
        respond(response_type="ephemeral", replace_original=False, text="Thanks")

    with WSGIServer(SlackRequestHandler(app)) as server, SlackSender(server.url, SECRET, standin) as sender:
        yield sender, seen


def test_bolt_accepts_the_whole_flow(standin, bolt):
    sender, seen = bolt
    command = sender.slash_command("job-42", user_id="UALICE", channel_id="CMIG")
    assert command.status_code == 200 and command.ack_seconds < 3
    update = standin.wait_for("views.update")[0]
    assert update.ok, update.response
    opened = standin.calls_to("views.open")[0]
    assert opened.ok and opened.args["trigger_id"] == command.trigger_id
    view_id = opened.response["view"]["id"]
    assert standin.views[view_id]["submit"]["text"] == "Start"

    refused = sender.view_submission(
        view_id, user_id="UALICE", values={"reason": {"text": {"type": "plain_text_input", "value": "bad"}}}
    )
    assert refused.ack_effect["action"] == "errors" and standin.view_is_open(view_id)
    submitted = sender.view_submission(
        view_id, user_id="UALICE", values={"reason": {"text": {"type": "plain_text_input", "value": "ok"}}}
    )
    assert submitted.status_code == 200 and submitted.ack_effect["action"] == "close"
    assert not standin.view_is_open(view_id)
    assert seen["submissions"] == [{"c": "CMIG", "j": "job-42"}]

    post = standin.wait_for("chat.postMessage")[0]
    ts = post.response["ts"]
    click = sender.block_action("CMIG", ts, "migrate_approve", user_id="UBOB")
    assert click.status_code == 200
    assert click.payload["message"]["blocks"][1]["block_id"] == "approval"
    standin.wait_for("response_url", count=2)
    assert seen["clicks"] == [("job-42", ts, "UBOB")]
    message = standin.message("CMIG", ts)
    assert message.text == "Approved by <@UBOB>" and message.blocks == []
    assert [(e.text, e.replace_original) for e in standin.ephemerals] == [
        ("Approved by <@UBOB>", True),
        ("Thanks", False),
    ]

    usage = sender.slash_command("   ", user_id="UALICE", channel_id="CMIG")
    assert usage.ack == "Usage: /migrate <jobId>"
    assert standin.ephemerals[-1].source == "ack" and standin.ephemerals[-1].text == usage.ack
    with pytest.raises(ValueError):
        sender.block_action("CMIG", ts, "migrate_reject", user_id="UBOB")


def test_bolt_rejects_bad_and_stale_signatures(standin, bolt):
    sender, _ = bolt
    assert sender.slash_command("job-42", user_id="UALICE", channel_id="CMIG", bad_signature=True).status_code == 401
    assert sender.slash_command("job-42", user_id="UALICE", channel_id="CMIG", stale=True).status_code == 401
    time.sleep(0.2)
    assert standin.calls_to("views.open") == []


def test_view_closed_is_only_sent_when_the_view_asks(standin, bolt):
    sender, _ = bolt
    sender.slash_command("job-7", user_id="UALICE", channel_id="CMIG")
    view_id = standin.wait_for("views.update")[0].response["view"]["id"]
    closed = sender.view_closed(view_id, "UALICE")
    assert closed is not None and closed.payload["type"] == "view_closed"
    assert not standin.view_is_open(view_id)
    quiet = client_view(standin, notify=False)
    assert sender.view_closed(quiet, "UALICE") is None and not standin.view_is_open(quiet)


def client_view(standin, *, notify: bool) -> str:
    client = WebClient(token=standin.bot_token, base_url=standin.api_url)
    return client.views_open(trigger_id=standin.issue_trigger("UALICE"), view=modal(notify_on_close=notify))["view"][
        "id"
    ]


# ------------------------------------------------------------------ transcript


def test_transcript_renders_escaped_text_safely_with_threads():
    clock = FakeClock(1_700_000_000.0)  # 2023-11-14 22:13:20 UTC
    with SlackStandIn(clock=clock) as slack:
        slack.add_channel("CMIG", "migrations", members=["UALICE"])
        slack.add_user("UALICE", "alice")
        slack.add_usergroup("SAPP", "approvers", ["UALICE"])
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        root = client.chat_postMessage(
            channel="CMIG",
            text="fallback",
            blocks=[
                {"type": "header", "text": {"type": "plain_text", "text": "Migration <job-42>"}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "Name: &lt;!channel&gt; R&amp;D &amp;lt; by <@UALICE> for <!subteam^SAPP>",
                    },
                    "fields": [
                        {
                            "type": "mrkdwn",
                            "text": "*Start*\n<!date^1700000000^{date_short} {time}|2023-11-14 22:13 UTC>",
                        },
                        {"type": "mrkdwn", "text": "<https://example.com/jobs/42|Dashboard>"},
                    ],
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "Requested in <#CMIG>"}]},
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}},
                        {"type": "button", "action_id": "reject", "text": {"type": "plain_text", "text": "Reject"}},
                    ],
                },
            ],
        )
        clock.now += 65
        client.chat_postMessage(channel="CMIG", text="Copying 10 mailboxes", thread_ts=root["ts"])
        clock.now += 60
        client.chat_postMessage(channel="CMIG", text="Done: 10 &gt; 9", thread_ts=root["ts"], reply_broadcast=True)
        client.chat_update(channel="CMIG", ts=root["ts"], text="Migration job-42 completed")
        client.chat_postEphemeral(channel="CMIG", user="UALICE", text="Only for alice")
        text = render_channel(slack, "CMIG")
        for_alice = render_channel(slack, "CMIG", viewer="UALICE")

    lines = text.splitlines()
    assert lines[0] == "#migrations"
    assert lines[1] == "[22:13:20] migrate-bot (app)  (edited)"
    assert "    *Migration <job-42>*" in lines  # plain_text is shown as sent
    assert "    Name: <!channel> R&D &lt; by @alice for @approvers" in lines  # decoded once, never a ping
    assert "    *Start* / 2023-11-14 22:13 UTC  |  Dashboard" in lines
    assert "    Requested in #migrations" in lines
    assert "    [Approve] [Reject]" in lines
    assert "      [22:14:25] migrate-bot (app)" in lines and "          Copying 10 mailboxes" in lines
    assert "      [22:15:25] migrate-bot (app)  (also sent to the channel)" in lines
    assert "          Done: 10 > 9" in lines
    assert lines.index("          Copying 10 mailboxes") < lines.index("          Done: 10 > 9")
    assert "Only for alice" not in text and "Only for alice" in for_alice
    assert "fallback" not in text  # blocks win over the notification text


def test_render_view_shows_the_modal(standin, client):
    view_id = client.views_open(
        trigger_id=standin.issue_trigger("UALICE"), view=modal(submit={"type": "plain_text", "text": "Start"})
    )["view"]["id"]
    assert render_view(standin, view_id).splitlines() == ["┌ Migrate job-42 ┐", "│ Fetching job…", "│ [Cancel] [Start]"]
