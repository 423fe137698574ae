"""Delegated mode with nobody signed in: ``run`` starts, logs one warning, alerts OPS_CHANNEL once (also across a
restart), the credential reports ``no_admin`` (for ``/readyz``, ``check`` and the metric), ``/migrate`` answers with
the command that fixes it, and a sign-in ends it."""

from __future__ import annotations

import logging

import httpx

from bot.credential.delegated import AdminCredential
from tests.support.fake_authority import (  # noqa: F401 - fixtures
    authority,
    authority_env,
    key,
    shared_authority,
    state_dir,
)
from tests.test_health import (  # noqa: F401 - fixtures and helpers
    JOB,
    credential_settings,
    modal_text,
    ops_messages,
    ops_world,
    sign_in,
)


def start_unsigned(world, credential_settings):
    world.stop_bot()
    world.sim.trust_opaque_tokens = True  # the fake authority's opaque tokens: the simulator can't check them
    world.start_bot(tokens=AdminCredential(credential_settings()))
    return world.bot


def credential_metric(world) -> str:
    text = httpx.get(world.server.url + "/metrics").text
    return next(
        line for line in text.splitlines() if line.startswith("migrate_bot_credential_state") and line.endswith(" 1.0")
    )


def test_nobody_signed_in_warns_once_alerts_once_and_migrate_names_the_fix(ops_world, credential_settings, caplog):
    world = ops_world(require_approval=False)
    caplog.set_level(logging.INFO)
    caplog.clear()
    bot = start_unsigned(world, credential_settings)

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "No admin is signed in" in warnings[0] and "`migrate-bot login`" in warnings[0]
    [alert] = ops_messages(world)
    assert "no_account" in alert and "migrate-bot login" in alert
    assert bot.health.state() == "no_admin" and 'state="no_admin"' in credential_metric(world)

    view = world.open_modal(JOB)
    assert "admin credential needs attention" in modal_text(view) and "migrate-bot login" in modal_text(view)
    assert len(ops_messages(world)) == 1  # the failed command is part of the same episode

    caplog.clear()
    start_unsigned(world, credential_settings)  # a restart: still nobody, still one alert
    assert len(ops_messages(world)) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1

    sign_in(credential_settings)  # the operator runs migrate-bot login
    assert world.bot.health.check_admin() is None
    assert world.bot.health.state() == "ok" and 'state="ok"' in credential_metric(world)
    assert "works again" in ops_messages(world)[-1]
    assert "wave3_finance" in modal_text(world.open_modal(JOB))
