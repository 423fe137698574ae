"""The command line explains itself: a description per subcommand, help and a default for every option, ``-v``
before or after the subcommand, ``bench`` with the benchmark's own options, and ``auth status``/``login`` that say
what to do next."""

from __future__ import annotations

import argparse
import socket

import pytest

from bench.__main__ import build_parser as bench_parser
from bot.cli.main import build_parser, main
from bot.credential.token_cache import CacheMetadata
from tests.support.fake_authority import (  # noqa: F401 - fixtures
    TENANT_ID,
    authority,
    authority_env,
    key,
    shared_authority,
    state_dir,
)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def test_every_subcommand_has_a_one_line_description_and_every_option_help():
    parser = build_parser()
    commands = subcommands(parser)
    assert {"run", "check", "bench", "auth", "login", "slack-standin"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description and "\n" not in sub.description, name
        assert sub.formatter_class is argparse.ArgumentDefaultsHelpFormatter, name
        for action in options(sub):
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"


def test_help_shows_descriptions_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "Check the settings, Slack, the credential" in top and "Run the benchmarks" in top
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    run_help = capsys.readouterr().out
    assert "(default: 3000)" in run_help and "Socket Mode" in run_help


@pytest.mark.parametrize("argv", [["-v", "check"], ["check", "-v"], ["check"]])
def test_v_is_accepted_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.command == "check" and args.verbose is ("-v" in argv)


def test_check_takes_the_transport_like_run():
    parser = build_parser()
    assert parser.parse_args(["check", "--http"]).http is True
    assert parser.parse_args(["check", "--socket"]).http is False
    with pytest.raises(SystemExit):
        parser.parse_args(["check", "--http", "--socket"])


def test_bench_takes_the_same_options_as_python_m_bench():
    ours = {o for a in options(subcommands(build_parser())["bench"]) for o in a.option_strings} - {"-v", "--verbose"}
    theirs = {o for a in options(bench_parser()) for o in a.option_strings}
    assert ours == theirs and {"--quick", "--json", "--runs", "--only", "--no-pin"} <= ours
    args = build_parser().parse_args(["bench", "--quick", "--runs", "7", "--only", "poller"])
    assert (args.quick, args.runs, args.only) == (True, 7, "poller")


# -- auth status without the key, and login failures that say what to do next ------------------------------------


def test_auth_status_without_the_key_says_who_and_when(authority_env, state_dir, monkeypatch, capsys):
    state_dir.mkdir()
    CacheMetadata(
        home_account_id="uid.tid",
        username="admin@contoso.example",
        tenant_id=TENANT_ID,
        client_id=authority_env["AZURE_CLIENT_ID"],
        authority=authority_env["AZURE_AUTHORITY_HOST"],
        login_at=1_700_000_000.0,
        last_refresh_at=1_700_003_600.0,
    ).save(state_dir / "token-cache.bin")
    monkeypatch.delenv("TOKEN_CACHE_KEY")
    status = main(["auth", "status"])
    out = capsys.readouterr().out
    assert status == 1
    assert "admin@contoso.example" in out and "2023-11-14 22:13:20 UTC" in out
    assert "could not be opened: TOKEN_CACHE_KEY is not set" in out


def test_auth_status_without_the_key_and_nobody_signed_in(authority_env, monkeypatch, capsys):
    monkeypatch.delenv("TOKEN_CACHE_KEY")
    assert main(["auth", "status"]) == 1
    out = capsys.readouterr().out
    assert "account:       none" in out and "TOKEN_CACHE_KEY is not set" in out


def test_login_with_the_authority_unreachable_says_what_to_do(authority_env, monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", f"https://127.0.0.1:{port}")
    status = main(["login"])
    err = capsys.readouterr().err
    assert status == 1
    [line] = [line for line in err.splitlines() if line.startswith("migrate-bot:")]
    assert "Login failed" in line and "run migrate-bot login again" in line and "AZURE_AUTHORITY_HOST" in line
    assert "no new login is needed" not in err and "Traceback" not in err


def test_login_declined_says_what_to_do(authority_env, authority, capsys):
    authority.fail_next("device_code", None, error="authorization_declined")
    assert main(["login"]) == 1
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("migrate-bot:")]
    assert "Login failed" in line and "authorization_declined" in line and "run migrate-bot login again" in line
    assert "Nothing was signed in" in line


def test_login_with_the_authority_failing_is_not_told_to_wait(authority_env, authority, capsys):
    authority.fail_next("device_code", None, error="temporarily_unavailable", status=503)
    assert main(["login"]) == 1
    err = capsys.readouterr().err
    assert "no new login is needed" not in err and "run migrate-bot login again" in err
