"""The ``televikar-pbx`` command line (names are stable: operators script them)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import secrets
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from televikar_pbx import __version__, status_cli
from televikar_pbx.admin import commands as admin_commands
from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.clock import Clock, clock_from_env
from televikar_pbx.db.demo import DEMO_USERS, load_demo
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.sip_front import grant_sip_front
from televikar_pbx.errors import ConfigError, TelevikarError
from televikar_pbx.logs import configure_logging
from televikar_pbx.settings import Settings, load_settings


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("televikar-pbx").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"televikar-pbx: {where}{message} (see --help)\n")


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here for start-up time only: the service's ARI, AMI and HTTP libraries
    # are not needed by the operator's commands.
    from televikar_pbx.app import cluster_config, serve, serve_in_cluster

    cluster = cluster_config(settings)  # None: one serve; a ConfigError on SQLite

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if cluster is None:
            await serve(settings, stop, args.clock)
        else:
            await serve_in_cluster(settings, stop, cluster, args.clock)

    if settings.event_loop == "uvloop":
        import uvloop  # libuv's loop: the service's callbacks, sockets and timers cost less

        uvloop.run(main())
    else:
        asyncio.run(main())
    return 0


def _cmd_deliver(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here for start-up time only, like serve.
    from televikar_pbx.delivery.service import run_delivery

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_delivery(settings, stop, args.clock, idle=args.idle)

    asyncio.run(main())
    return 0


def _cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here for start-up time only: alembic is needed by this command alone.
    from televikar_pbx.db.migrate import upgrade

    upgrade(settings.sqlalchemy_url)
    print("database is at the newest schema")
    return 0


def _cmd_db_grant_sip_front(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> None:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            await grant_sip_front(engine, args.role)
        finally:
            await engine.dispose()

    asyncio.run(main())
    print(f"role {args.role} may read agents.endpoint and agents.secret, nothing else")
    return 0


def _cmd_demo_load(settings: Settings, args: argparse.Namespace) -> int:
    # A fresh password per demo desk user, shown here once; only its hash is stored.
    hasher = Passwords()
    passwords = {username: secrets.token_urlsafe(12) for username, _ in DEMO_USERS}

    async def main() -> bool:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            return await load_demo(
                make_sessionmaker(engine),
                lambda username: hasher.hash(passwords[username]),
                args.clock.now(),
            )
        finally:
            await engine.dispose()

    loaded = asyncio.run(main())
    if not loaded:
        print("database already has customers; demo not loaded")
        return 0
    print("demo data loaded")
    where = f"http://{settings.web_host}:{settings.web_port}/"
    print(f"desk users for {where} (the passwords are shown this once):")
    for username, endpoint in DEMO_USERS:
        print(f"  {username:<6} {passwords[username]}  (agent on {endpoint})")
    return 0


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, built once per process: argparse spends ~20 ms on our
    ~300 options (a gettext lookup on disk for each of its messages), which a process
    that runs many commands (the test suite: ~1,500) should pay once. Nothing in it
    depends on the environment or the clock, and parsing does not change it."""
    parser = _Parser(
        prog="televikar-pbx", description="Telephony backend of a telephone answering service."
    )
    parser.add_argument("--version", action="version", version=f"televikar-pbx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the answering desk (ARI application)")
    serve.set_defaults(func=_cmd_serve)

    deliver = sub.add_parser(
        "deliver",
        help="send the messages in the outbox (serve runs this itself; docs/messages.md)",
    )
    deliver.add_argument(
        "--idle",
        action="store_true",
        help="once started, use only CPU that nothing else wants (Linux SCHED_IDLE): "
        "serve runs its worker so, and routing always comes first",
    )
    deliver.set_defaults(func=_cmd_deliver)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="migrate to the newest schema").set_defaults(
        func=_cmd_db_upgrade
    )
    grant = db_sub.add_parser(
        "grant-sip-front",
        help="let the SIP front's (Kamailio's) database role read the agents' endpoints "
        "and phone secrets, and nothing else (PostgreSQL; after upgrade)",
    )
    grant.add_argument("role", help="the role Kamailio connects as, e.g. kamailio")
    grant.set_defaults(func=_cmd_db_grant_sip_front)

    demo = sub.add_parser("demo", help="demo data for trying the service")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    demo_sub.add_parser(
        "load", help="two customers and three agents, unless customers exist"
    ).set_defaults(func=_cmd_demo_load)

    admin_commands.register(sub)
    status_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run one command. Every command that asks "now" (and so "today", "yesterday")
    reads ``args.clock``: ``clock``, else ``TELEVIKAR_NOW`` or the system clock
    (``clock.clock_from_env``)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: exit code, no traceback
        return exc.code if isinstance(exc.code, int) else 1
    try:
        if clock is None:
            try:
                clock = clock_from_env()
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        args.clock = clock
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        code: int = args.func(settings, args)
        return code
    except TelevikarError as exc:
        print(f"televikar-pbx: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
