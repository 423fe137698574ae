"""The ``migrate-bot`` command line. Each subcommand lives with the module that does the work."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from bench.options import add_arguments as add_bench_arguments
from bot.config import Settings, load_settings
from bot.errors import ConfigError, MigrateBotError, UsageError
from bot.ops import logs

log = logging.getLogger("bot.cli")

#: subcommand -> "module:function"; each function takes (args, settings) and returns an exit status.
COMMANDS: dict[str, str] = {
    "run": "bot.cli.run:run_command",
    "demo": "bot.rehearsal.demo:demo_command",
    "simulator": "bot.cli.simulator:simulator_command",
    "slack-standin": "bot.cli.standin:standin_command",
    "login": "bot.cli.auth:login_command",
    "logout": "bot.cli.auth:logout_command",
    "auth": "bot.cli.auth:auth_command",
    "keygen": "bot.cli.auth:keygen_command",
    "audit": "bot.cli.audit:audit_command",
    "check": "bot.cli.doctor:check_command",
    "db": "bot.cli.db:db_command",
    "bench": "bench.__main__:bench_command",
}
#: commands that load the settings themselves (or need none)
OWN_SETTINGS = frozenset({"keygen", "check", "slack-standin", "bench"})

Formatter = argparse.ArgumentDefaultsHelpFormatter


def _verbose(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="debug logging, and tracebacks on errors"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate-bot",
        description="Slack chat-ops bot for Microsoft 365 cross-tenant migrations. Without a COMMAND: run.",
        epilog="Settings come from the environment or .env (see .env.example); `migrate-bot check` tests them.",
        formatter_class=Formatter,
    )
    _verbose(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        made = sub.add_parser(name, help=summary, description=summary, formatter_class=Formatter)
        _verbose(made, argparse.SUPPRESS)  # -v after the subcommand too; the top-level default stays
        return made

    def transport(made: argparse.ArgumentParser, doing: str) -> None:
        mode = made.add_mutually_exclusive_group()
        mode.add_argument(
            "--http", action="store_true", help=f"{doing} HTTP on /slack/events (needs SLACK_SIGNING_SECRET)"
        )
        mode.add_argument(
            "--socket", action="store_true", help=f"{doing} Socket Mode (needs SLACK_APP_TOKEN); the default"
        )

    run = command("run", "Serve Slack (Socket Mode, or HTTP with --http); with no credentials at all, the demo.")
    transport(run, "serve")
    run.add_argument("--host", default="0.0.0.0", help="HTTP mode and METRICS_PORT: the address to listen on")
    run.add_argument("--port", type=int, default=3000, help="HTTP mode: the port for /slack/events, /healthz, /metrics")
    run.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="serve /healthz, /readyz and /metrics on this port too (None: METRICS_PORT; Socket Mode has no other)",
    )

    demo = command("demo", "Play the end-to-end story against the Graph simulator and the Slack stand-in.")
    demo.add_argument(
        "--outcome",
        choices=["completed", "completedWithErrors", "failed"],
        default="completed",
        help="how the demo job ends",
    )

    sim = command("simulator", "Serve the Graph cross-tenant migration simulator until Ctrl-C.")
    sim.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    sim.add_argument("--port", type=int, default=8765, help="the port to listen on")
    sim.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    sim.add_argument("--no-seed", action="store_true", help="start with no jobs")
    sim.add_argument("--token", default=None, help="also accept this static bearer token (a full-rights admin)")
    sim.add_argument(
        "--lax",
        action="append",
        default=[],
        choices=["revalidate-expired", "cancel-in-progress", "past-complete-after", "app-only-actions"],
        help="take the permissive reading of a documented contradiction (repeatable; default: all strict)",
    )

    standin = command("slack-standin", "Serve the Slack Web API stand-in (for rehearsals and compose.yaml).")
    standin.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    standin.add_argument("--port", type=int, default=8766, help="the port to listen on")
    standin.add_argument("--bot-token", default="xoxb-standin", help="the bot token auth.test accepts")
    standin.add_argument("--channel", action="append", default=None, help="a channel id to create (repeatable)")

    command("login", "Sign the migration admin in with the device code flow (delegated mode).")
    command("logout", "Forget the admin account and its tokens (no TOKEN_CACHE_KEY needed).")
    auth = command("auth", "Show the admin credential: mode, tenant, account, token freshness.")
    auth.add_argument("action", choices=["status"], help="what to show")
    command("keygen", "Print a new random TOKEN_CACHE_KEY.")

    audit = command("audit", "Export the audit trail as CSV or JSON.")
    audit.add_argument("--job", default=None, help="only this job id (None: every job)")
    audit.add_argument("--since", default=None, help="only events since YYYY-MM-DD or an ISO 8601 time")
    audit.add_argument("--format", choices=["csv", "json"], default="csv", help="output format")
    audit.add_argument(
        "--access", action="store_true", help="include every authorization decision (access_granted/refused)"
    )

    check = command("check", "Check the settings, Slack, the credential, Graph and the database (read-only).")
    transport(check, "check the settings for")

    db = command("db", "Show or upgrade the database schema (Alembic migrations).")
    db.add_argument("action", choices=["upgrade", "current"], help="upgrade to this release's schema, or show it")

    bench = command("bench", "Run the benchmarks and print the figures (same options as python -m bench).")
    add_bench_arguments(bench)
    return parser


def _resolve(target: str) -> Callable[[argparse.Namespace, Settings | None], int]:
    module_name, function = target.split(":")
    return getattr(importlib.import_module(module_name), function)


def _fail(args: argparse.Namespace, line: str, status: int) -> int:
    print(f"migrate-bot: {line}", file=sys.stderr)
    if args.verbose:
        traceback.print_exc()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "run"])
    command = args.command
    logs.configure(verbose=args.verbose)
    try:
        if command in OWN_SETTINGS:
            return _resolve(COMMANDS[command])(args, None)
        settings = load_settings()
        logs.configure(fmt=settings.log_format, level=settings.log_level, verbose=args.verbose)
        return _resolve(COMMANDS[command])(args, settings)
    except ConfigError as error:
        return _fail(args, f"configuration error: {error}", 2)
    except UsageError as error:
        return _fail(args, str(error), 2)
    except MigrateBotError as error:
        return _fail(args, str(error), 1)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: one line, the traceback with -v
        return _fail(args, f"unexpected error ({type(error).__name__}: {error}); run with -v for the traceback", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
