"""Credential health end to end: one OPS_CHANNEL alert per episode, one recovery note, the daily keep-alive,
commands showing the credential message, and ``/migrate whoami``.

The real admin credential runs against the fake HTTPS authority; Graph is the simulator, Slack the stand-in.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import load_settings
from bot.credential.base import StaticToken
from bot.credential.delegated import AdminCredential
from bot.credential.health import KEEP_ALIVE_JOB_ID, META_KEY, CredentialHealth
from bot.errors import CredentialError
from bot.factories import build_slack_client
from bot.rehearsal.sandbox import (
    APPROVER,
    CHANNEL,
    OUTSIDER,
    REQUESTER,
    SIM_TOKEN,
    SandboxSettings,
)
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin import SlackStandIn
from bot.store import RunState, Store
from bot.ui.approval import APPROVE_ACTION
from tests.support.fake_authority import (  # noqa: F401 - fixtures
    TENANT_ID,
    authority,
    authority_env,
    key,
    shared_authority,
    state_dir,
)

OPS = "C0OPS"
JOB = SEED_VALIDATE_PASSED


# -- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture
def credential_settings(authority_env):
    """Loads the credential's settings from the environment, as ``migrate-bot login`` does."""
    return load_settings


def sign_in(credential_settings) -> None:
    """``migrate-bot login`` (the device code is approved at once by the fake authority)."""
    with AdminCredential(credential_settings()) as cli:
        cli.login(show=lambda message: None)


@pytest.fixture
def ops_world(make_world):
    def build(**settings):
        world = make_world(ops_channel=OPS, **settings)
        world.slack.add_channel(OPS, "migrate-ops")
        return world

    return build


@pytest.fixture
def admin_world(ops_world, authority, credential_settings):
    """A world whose bot holds the real admin credential (every token() redeems the refresh token)."""

    def build(**settings):
        authority.access_token_lifetime = 60  # under MSAL's 5-minute margin: each token() asks the authority
        sign_in(credential_settings)
        world = ops_world(**settings)
        world.sim.token = None
        world.sim.trust_opaque_tokens = True  # the fake authority's opaque tokens: the simulator can't check them
        world.stop_bot()
        world.credential = AdminCredential(credential_settings())
        world.start_bot(tokens=world.credential)
        return world

    return build


def ops_messages(world) -> list[str]:
    return [m.text for m in world.slack.messages(OPS)]


def ephemerals_for(world, user) -> list[str]:
    return [e.text for e in world.slack.ephemerals if e.user == user] + [
        m.text for m in world.slack.messages("D" + user.lstrip("U"))
    ]


def modal_text(view) -> str:
    return json.dumps(view["blocks"])


def assert_no_secret(texts, *secrets):
    joined = "\n".join(texts)
    for secret in secrets:
        if secret:
            assert secret not in joined


# -- the alert and the recovery ------------------------------------------------------------------------------------


def test_credential_failure_alerts_ops_once_and_recovery_once(admin_world, authority, credential_settings, key):
    world = admin_world(require_approval=False)
    assert "wave3_finance" in modal_text(world.open_modal(JOB))
    assert ops_messages(world) == []

    authority.fail_next_refresh(700082)  # the admin's session expired from inactivity
    views = [world.open_modal(JOB) for _ in range(3)]
    for view in views:  # the modal path shows the credential message, not a raw error
        assert "admin credential needs attention" in modal_text(view)
        assert "migrate-bot login" in modal_text(view) and "wave3_finance" not in modal_text(view)
    [alert] = ops_messages(world)
    assert "migrate-bot login" in alert and "session_expired" in alert and "AADSTS700082" in alert
    assert world.bot.health.episode is not None and world.bot.health.episode.alerted

    sign_in(credential_settings)  # the operator runs migrate-bot login
    assert "wave3_finance" in modal_text(world.open_modal(JOB))
    assert "wave3_finance" in modal_text(world.open_modal(JOB))
    messages = ops_messages(world)
    assert len(messages) == 2 and "works again" in messages[1] and "session_expired" in messages[1]
    assert world.bot.health.episode is None and world.bot.store.get_meta(META_KEY) is None
    assert_no_secret(messages, *authority.secrets(), key)


def test_graph_401_is_an_episode_that_survives_a_restart(ops_world):
    world = ops_world(require_approval=False)
    world.sim.token = "rotated-elsewhere"  # Graph now answers 401 to the bot's token
    view = world.open_modal(JOB)
    assert "refused the admin's token" in modal_text(view) and "migrate-bot login" in modal_text(view)
    [alert] = ops_messages(world)
    assert "graph_401" in alert and "migrate-bot login" in alert
    assert json.loads(world.bot.store.get_meta(META_KEY))["alerted"] is True

    world.stop_bot()  # a deploy in the middle of the episode
    world.start_bot()
    assert world.bot.health.episode is not None
    world.open_modal(JOB)
    assert len(ops_messages(world)) == 1  # no second alert after the restart

    world.sim.token = SIM_TOKEN
    assert "wave3_finance" in modal_text(world.open_modal(JOB))
    messages = ops_messages(world)
    assert len(messages) == 2 and "works again" in messages[1]
    assert_no_secret(messages, SIM_TOKEN, world.signing_secret, world.slack.bot_token)


def test_a_new_episode_after_recovery_alerts_again(ops_world):
    world = ops_world(require_approval=False)
    for _ in range(2):
        world.sim.token = "rotated-elsewhere"
        world.open_modal(JOB)
        world.open_modal(JOB)
        world.sim.token = SIM_TOKEN
        world.open_modal(JOB)
    texts = ops_messages(world)
    assert [("stopped working" in t, "works again" in t) for t in texts] == [(True, False), (False, True)] * 2


def test_poller_path_shows_the_credential_note_and_ops_hears_once(ops_world):
    world = ops_world(require_approval=False, poll_interval_seconds=0.1)
    world.submit_modal(world.open_modal(JOB), "CHG1 wave 3")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="root message")
    world.sim.token = "rotated-elsewhere"
    world.wait_until(
        lambda: any("migrate-bot login" in reply.text for reply in world.slack.message(CHANNEL, run.root_ts).replies),
        what="trouble note in the thread",
    )
    assert world.bot.store.get_run(run.id).poll_failures >= 3
    assert len(ops_messages(world)) == 1
    world.sim.token = SIM_TOKEN
    world.wait_until(lambda: len(ops_messages(world)) == 2, what="recovery note")
    assert "works again" in ops_messages(world)[1]


def test_approval_path_shows_the_credential_message(ops_world):
    world = ops_world()
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG2 wave 3")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="approval request")
    world.sim.token = "rotated-elsewhere"
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    told = lambda: ephemerals_for(world, APPROVER) + ephemerals_for(world, REQUESTER)  # noqa: E731
    world.wait_until(lambda: any("migrate-bot login" in text for text in told()), what="credential message")
    assert world.run_for(JOB).state == RunState.NOT_STARTED
    assert world.sim.count("POST", "/migrate") == 0
    assert len(ops_messages(world)) == 1


class Broken:
    """A token source that fails like a revoked admin session until repaired."""

    def __init__(self):
        self.broken = True

    def token(self, *, claims_challenge=None):
        if self.broken:
            raise CredentialError("The admin's sessions were revoked: run migrate-bot login.", code="sessions_revoked")
        return "fine"


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


def standalone_health(slack, tmp_path, source, **options) -> CredentialHealth:
    client = build_slack_client(SandboxSettings(slack_bot_token=slack.bot_token, slack_api_url=slack.api_url))
    store = Store.from_url(f"sqlite:///{tmp_path / 'health.db'}")
    return CredentialHealth(source, slack=client, store=store, channel=OPS, **options)


def test_an_alert_that_cannot_be_posted_is_retried_later_not_per_failure(slack, tmp_path):
    now = [datetime(2026, 3, 1, 9, 0, tzinfo=UTC)]
    health = standalone_health(slack, tmp_path, Broken(), clock=lambda: now[0])  # OPS does not exist yet

    def fail(times):
        for _ in range(times):
            with pytest.raises(CredentialError):
                health.token()

    def attempts():
        return [c for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == OPS]

    fail(5)
    assert [c.error for c in attempts()] == ["channel_not_found"]
    slack.add_channel(OPS, "migrate-ops")
    now[0] += timedelta(minutes=4)
    fail(3)
    assert len(attempts()) == 1 and slack.messages(OPS) == []
    now[0] += timedelta(minutes=2)
    fail(3)
    assert len(attempts()) == 2 and len(slack.messages(OPS)) == 1 and health.episode.alerted


def test_concurrent_failures_post_one_alert(slack, tmp_path):
    """Twenty threads fail at once: still exactly one alert (and one note when it recovers)."""
    slack.add_channel(OPS, "migrate-ops")
    source = Broken()
    health = standalone_health(slack, tmp_path, source)
    start = threading.Barrier(20)

    def call():
        start.wait()
        with pytest.raises(CredentialError):
            health.token()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slack.messages(OPS)) == 1 and "sessions_revoked" in slack.messages(OPS)[0].text
    source.broken = False
    assert health.token() == "fine" and health.token() == "fine"
    assert len(slack.messages(OPS)) == 2 and "works again" in slack.messages(OPS)[1].text


def test_transient_failures_do_not_alert(ops_world, authority, credential_settings):
    sign_in(credential_settings)
    world = ops_world()
    credential = AdminCredential(credential_settings())
    health = CredentialHealth(credential, slack=world.bot.slack, store=world.bot.store, channel=OPS)
    authority.access_token_lifetime = 60
    authority.fail_next("refresh_token", None, error="temporarily_unavailable", times=3)
    assert health.keep_alive() is None
    assert authority.counts["refresh_token"] == 1  # it asked, Entra ID was temporarily unavailable
    assert health.episode is None and ops_messages(world) == []


# -- the daily keep-alive ------------------------------------------------------------------------------------------


def test_keep_alive_job_is_scheduled_daily_and_redeems_the_refresh_token(admin_world, authority):
    world = admin_world()
    job = world.bot.tracker.scheduler.get_job(KEEP_ALIVE_JOB_ID)
    assert job is not None and job.trigger.interval == timedelta(days=1)
    assert job.func == world.bot.health.keep_alive
    before = world.credential.status().last_refresh_at
    refreshes = authority.counts["refresh_token"]
    job.modify(next_run_time=datetime.now(UTC))  # let the scheduler run it now
    world.wait_until(lambda: authority.counts["refresh_token"] > refreshes, what="keep-alive refresh")
    world.wait_until(lambda: world.credential.status().last_refresh_at > before, what="refresh recorded")
    assert authority.token_requests[-1]["grant_type"] == "refresh_token"


def test_failed_keep_alive_alerts_once(admin_world, authority, key):
    world = admin_world()
    authority.fail_next_refresh(50173)  # sessions revoked (password reset)
    assert world.bot.health.keep_alive() is None
    assert world.bot.health.keep_alive() is None  # the credential now pauses: no new authority call, no alert
    [alert] = ops_messages(world)
    assert "sessions_revoked" in alert and "migrate-bot login" in alert
    assert_no_secret([alert], *authority.secrets(), key)


# -- /migrate whoami -----------------------------------------------------------------------------------------------


def test_whoami_tells_an_allowed_user_who_the_bot_acts_as(admin_world, authority, key):
    world = admin_world()
    world.credential.token()  # a refresh to report
    graph_before = len(world.sim.requests)
    sent = world.sender.slash_command("whoami", user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    [reply] = world.wait_until(lambda: ephemerals_for(world, REQUESTER), what="whoami reply")
    assert "admin@contoso.example" in reply and TENANT_ID in reply and "delegated" in reply
    assert "last token refresh" in reply and "never" not in reply.split("last token refresh")[1]
    assert world.slack.calls_to("views.open") == [] and len(world.sim.requests) == graph_before
    assert_no_secret([reply], *authority.secrets(), key)


def test_whoami_is_denied_to_others(ops_world):
    world = ops_world()
    world.sender.slash_command("whoami", user_id=OUTSIDER, channel_id=CHANNEL)
    [reply] = world.wait_until(lambda: ephemerals_for(world, OUTSIDER), what="denial")
    assert "not on the list" in reply and "simulator" not in reply


def test_whoami_on_the_simulator_and_during_an_episode(ops_world):
    world = ops_world()
    world.sim.token = "rotated-elsewhere"
    world.open_modal(JOB)
    world.sender.slash_command("WhoAmI ", user_id=REQUESTER, channel_id=CHANNEL)
    [reply] = world.wait_until(lambda: ephemerals_for(world, REQUESTER), what="whoami reply")
    assert "GRAPH_STATIC_TOKEN" in reply and "graph_401" in reply and "migrate-bot login" in reply
    assert SIM_TOKEN not in reply
    assert isinstance(world.bot.health.source, StaticToken)
