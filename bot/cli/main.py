"""The ``migrate-bot`` command line. Each subcommand lives with the module that does the work."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from bot.config import Settings, load_settings
from bot.errors import ConfigError, MigrateBotError, UsageError

#: subcommand -> "module:function"; each function takes (args, settings) and returns an exit status.
COMMANDS: dict[str, str] = {
    "run": "bot.cli.run:run_command",
    "demo": "bot.rehearsal.demo:demo_command",
    "simulator": "bot.cli.simulator:simulator_command",
    "login": "bot.cli.auth:login_command",
    "logout": "bot.cli.auth:logout_command",
    "auth": "bot.cli.auth:auth_command",
    "keygen": "bot.cli.auth:keygen_command",
    "audit": "bot.cli.audit:audit_command",
    "check": "bot.cli.doctor:check_command",
    "db": "bot.cli.db:db_command",
    "bench": "bench.__main__:bench_command",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migrate-bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="serve Slack (Socket Mode, or HTTP with --http); no credentials: the demo")
    run.add_argument("--http", action="store_true", help="serve HTTP on /slack/events instead of Socket Mode")
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--port", type=int, default=3000)
    run.add_argument(
        "--health-port", type=int, default=None, help="Socket Mode: serve /healthz and /readyz on this port"
    )

    demo = sub.add_parser("demo", help="the end-to-end story against the simulator and the Slack stand-in")
    demo.add_argument("--outcome", choices=["completed", "completedWithErrors", "failed"], default="completed")

    sim = sub.add_parser("simulator", help="serve the Graph cross-tenant migration simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    sim.add_argument("--no-seed", action="store_true", help="start with no jobs")
    sim.add_argument("--token", default=None, help="accept only this bearer token (default: any)")

    sub.add_parser("login", help="sign the admin in with the device code flow")
    sub.add_parser("logout", help="forget the admin account and its tokens")
    auth = sub.add_parser("auth", help="the admin credential")
    auth.add_argument("action", choices=["status"])
    sub.add_parser("keygen", help="print a new TOKEN_CACHE_KEY")

    audit = sub.add_parser("audit", help="export the audit trail")
    audit.add_argument("--job", default=None)
    audit.add_argument("--since", default=None, help="YYYY-MM-DD or an ISO 8601 time")
    audit.add_argument("--format", choices=["csv", "json"], default="csv")

    sub.add_parser("check", help="check config, Slack, credential, Graph and database")

    db = sub.add_parser("db", help="the database schema (Alembic migrations)")
    db.add_argument("action", choices=["upgrade", "current"])

    bench = sub.add_parser("bench", help="run the benchmarks and print the figures")
    bench.add_argument("--quick", action="store_true")
    return parser


def _resolve(target: str) -> Callable[[argparse.Namespace, Settings], int]:
    module_name, function = target.split(":")
    return getattr(importlib.import_module(module_name), function)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = args.command or "run"
    if args.command is None:
        args = parser.parse_args([*(argv or sys.argv[1:]), "run"])
    if not args.verbose:
        for noisy in ("httpx", "apscheduler", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if command == "keygen":  # needs no settings: it makes the key a broken TOKEN_CACHE_KEY needs
            return _resolve(COMMANDS[command])(args, None)  # type: ignore[arg-type]
        if command == "check":  # loads the settings itself: a broken setting is a ✗ line (exit 2), not a crash
            return _resolve(COMMANDS[command])(args, None)  # type: ignore[arg-type]
        settings = load_settings()
        return _resolve(COMMANDS[command])(args, settings)
    except ConfigError as error:
        print(f"migrate-bot: configuration error: {error}", file=sys.stderr)
        return 2
    except UsageError as error:
        print(f"migrate-bot: {error}", file=sys.stderr)
        return 2
    except MigrateBotError as error:
        print(f"migrate-bot: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
