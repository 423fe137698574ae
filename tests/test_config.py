"""Configuration: names, defaults, and one-line errors that never print a secret."""

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

SECRET = "xoxb-not-a-real-token-but-secret-shaped"


def test_defaults():
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.graph_base_url == "https://graph.microsoft.com/beta"
    assert settings.graph_auth_mode == "delegated"
    assert settings.azure_authority_host == "https://login.microsoftonline.com"
    assert settings.poll_interval_seconds == 60
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.require_approval is True


def test_comma_lists(monkeypatch):
    monkeypatch.setenv("ALLOWED_CHANNELS", "C1, C2,,")
    monkeypatch.setenv("APPROVERS", "U1")
    settings = load_settings()
    assert settings.allowed_channels == ["C1", "C2"]
    assert settings.approvers == ["U1"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("POLL_INTERVAL_SECONDS", "-5", "POLL_INTERVAL_SECONDS: "),
        ("GRAPH_AUTH_MODE", "sideways", "GRAPH_AUTH_MODE: "),
        ("AZURE_TENANT_ID", "contoso", "AZURE_TENANT_ID: must be a GUID"),
        ("TOKEN_CACHE_KEY", "c2hvcnQ=", "TOKEN_CACHE_KEY: must decode to 32 bytes"),
        ("GRAPH_BASE_URL", "graph.example", "GRAPH_BASE_URL: must be an http"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)
    assert value not in str(caught.value) or value in expected


def test_secret_never_printed(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRET)
    monkeypatch.setenv("TOKEN_CACHE_KEY", "not base64 " + SECRET)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)
    settings_repr = repr(load_settings(token_cache_key=None))
    assert SECRET not in settings_repr


def test_missing_settings_per_command(monkeypatch):
    settings = load_settings()
    with pytest.raises(ConfigError, match="^SLACK_BOT_TOKEN: missing"):
        settings.require_slack(http=True)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRET)
    with pytest.raises(ConfigError, match="^SLACK_SIGNING_SECRET: missing"):
        load_settings().require_slack(http=True)
    with pytest.raises(ConfigError, match="^SLACK_APP_TOKEN: missing"):
        load_settings().require_slack(http=False)
    with pytest.raises(ConfigError, match="^AZURE_TENANT_ID: missing"):
        load_settings().require_graph_credential()
    monkeypatch.setenv("AZURE_TENANT_ID", "a1b2c3d4-e5f6-4789-9abc-def012345678")
    monkeypatch.setenv("AZURE_CLIENT_ID", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    with pytest.raises(ConfigError, match="^TOKEN_CACHE_KEY: missing"):
        load_settings().require_graph_credential()
    monkeypatch.setenv("GRAPH_AUTH_MODE", "application")
    with pytest.raises(ConfigError, match="^AZURE_CLIENT_SECRET: missing"):
        load_settings().require_graph_credential()


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("POLL_INTERVAL_SECONDS=7\n")
    assert load_settings().poll_interval_seconds == 7


def test_static_token_only_against_a_loopback_simulator(monkeypatch):
    monkeypatch.setenv("GRAPH_STATIC_TOKEN", "rehearsal")
    with pytest.raises(ConfigError, match="^GRAPH_STATIC_TOKEN: only allowed"):
        load_settings()
    monkeypatch.setenv("GRAPH_BASE_URL", "http://127.0.0.1:8765/beta")
    settings = load_settings()
    settings.require_graph_credential()  # no Azure settings needed for the simulator
    assert "rehearsal" not in repr(settings)


@pytest.mark.parametrize("url", ["https://graph.microsoft.com/beta", "https://graph.microsoft.com/v1.0/"])
def test_graph_base_url_accepts_beta_and_v1(monkeypatch, url):
    monkeypatch.setenv("GRAPH_BASE_URL", url)
    assert load_settings().graph_base_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["https://graph.microsoft.com", "https://graph.microsoft.com/v2.0"])
def test_graph_base_url_without_a_version_is_refused(monkeypatch, url):
    monkeypatch.setenv("GRAPH_BASE_URL", url)
    with pytest.raises(ConfigError, match="GRAPH_BASE_URL.*/beta or /v1.0"):
        load_settings()
