"""The container recipe, the compose file, ``.env.example`` and the systemd unit, tested as far as this machine can
(no container daemon): they parse, name only settings that exist, and their command is the console script."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from bot.cli.main import build_parser
from bot.config import load_settings, setting_names

ROOT = Path(__file__).resolve().parent.parent
#: variables of the compose services that are not migrate-bot (PostgreSQL's own)
FOREIGN = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def console_script() -> Path:
    return Path(sys.executable).parent / "migrate-bot"


# -- Dockerfile ----------------------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck():
    instructions = dockerfile()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2 and all(re.match(r"python:\$\{PYTHON_VERSION\}-slim", stage) for stage in stages)
    assert any(op == "COPY" and arg.startswith("--from=build") for op, arg in instructions)
    [user] = [arg for op, arg in instructions if op == "USER"]
    assert user.strip() not in ("root", "0")
    [health] = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert "/healthz" in health and "METRICS_PORT" in health
    env = " ".join(arg for op, arg in instructions if op == "ENV")
    for name in re.findall(r"([A-Z_]+)=", env):
        assert name in setting_names() | {
            "PATH",
            "PYTHONUNBUFFERED",
            "PIP_NO_CACHE_DIR",
            "PIP_DISABLE_PIP_VERSION_CHECK",
        }


def test_dockerfile_entry_point_is_the_console_script():
    [entry] = [arg for op, arg in dockerfile() if op == "ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(entry) == ["migrate-bot"] and scripts["migrate-bot"] == "bot.cli.main:main"
    [cmd] = [arg for op, arg in dockerfile() if op == "CMD"]
    assert json.loads(cmd) == ["run"]
    assert any(
        dep.startswith("psycopg")
        for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )


# -- compose.yaml --------------------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_has_postgres_the_simulator_the_stand_in_and_two_bots():
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["graph"]["command"][0] == "simulator" and services["slack"]["command"][0] == "slack-standin"
    bots = [s for s in services.values() if s.get("command", [None])[0] == "run"]
    assert len(bots) == 2
    assert len({bot["environment"]["METRICS_PORT"] for bot in bots}) == 2  # one namespace: one port each
    assert all("postgresql+psycopg://" in bot["environment"]["DATABASE_URL"] for bot in bots)


def test_compose_names_only_settings_that_exist():
    known = setting_names()
    for name, service in compose()["services"].items():
        for variable in service.get("environment") or {}:
            assert variable in known | FOREIGN, f"{name}: {variable} is not a migrate-bot setting"


def test_compose_commands_are_cli_commands():
    parser = build_parser()
    for name, service in compose()["services"].items():
        if name != "postgres":
            parser.parse_args(service["command"])  # SystemExit on an unknown command or option


def test_the_rehearsal_settings_of_compose_load():
    bot = compose()["services"]["bot-1"]["environment"]
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in bot.items()})
    assert settings.graph_static_token is not None and settings.metrics_port == 9464


# -- .env.example --------------------------------------------------------------------------------------------------


def test_env_example_lists_every_setting_and_nothing_else():
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert listed == setting_names(), "add new settings to .env.example (and the README's table)"


def test_readme_settings_table_lists_every_setting():
    table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", (ROOT / "README.md").read_text(), re.MULTILINE))
    assert setting_names() <= table


# -- systemd -------------------------------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(ROOT / "deploy" / "migrate-bot.service")
    return parser


def test_the_unit_runs_the_console_script_and_its_command_works(tmp_path):
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "migrate-bot" and argv[1:] == ["run"]
    assert service["RestartPreventExitStatus"] == "2" and service["User"] != "root"
    local = [str(console_script()), *argv[1:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AZURE_", "GRAPH_", "TOKEN_"))}
    env["MIGRATE_BOT_DATA_DIR"] = str(tmp_path / "state")
    shown = subprocess.run([*local, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert shown.returncode == 0 and "Serve Slack" in shown.stdout
    env["SLACK_BOT_TOKEN"] = "xoxb-unit-file-test"  # without an app token `run` must refuse with one line, exit 2
    refused = subprocess.run(local, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        "migrate-bot: configuration error: slack: SLACK_APP_TOKEN: missing (an xapp- token with connections:write "
        "for Socket Mode; or run with --http)"
    )
