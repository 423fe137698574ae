"""manifest.yml (Socket Mode) and manifest.http.yml stay in step with the code."""

from pathlib import Path

import yaml

from bot.slack.scopes import BOT_EVENTS, BOT_SCOPES

ROOT = Path(__file__).resolve().parent.parent


def load(name):
    return yaml.safe_load((ROOT / name).read_text())


def test_scopes_are_exactly_what_the_code_needs():
    for name in ("manifest.yml", "manifest.http.yml"):
        assert sorted(load(name)["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES), name


def test_socket_mode_manifest():
    manifest = load("manifest.yml")
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/migrate" and command["should_escape"] is False
    assert "url" not in command and "request_url" not in manifest["settings"]["interactivity"]
    assert len(manifest["display_information"]["name"]) <= 35


def test_http_manifest_points_at_slack_events():
    manifest = load("manifest.http.yml")
    assert manifest["settings"]["socket_mode_enabled"] is False
    [command] = manifest["features"]["slash_commands"]
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    socket = load("manifest.yml")
    assert manifest["oauth_config"] == socket["oauth_config"]


def test_app_home_and_its_event():
    for name in ("manifest.yml", "manifest.http.yml"):
        manifest = load(name)
        assert manifest["features"]["app_home"]["home_tab_enabled"] is True, name
        assert sorted(manifest["settings"]["event_subscriptions"]["bot_events"]) == sorted(BOT_EVENTS), name
    http = load("manifest.http.yml")["settings"]["event_subscriptions"]
    assert http["request_url"].endswith("/slack/events")
    assert "request_url" not in load("manifest.yml")["settings"]["event_subscriptions"]
