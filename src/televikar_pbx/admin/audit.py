"""``televikar-pbx audit list``: who viewed which message, recording or knowledge-base
page, and the desk's log-ins, failed log-ins and log-outs (docs/desk-web.md)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin import parse, render, session
from televikar_pbx.db.audit_repo import DEFAULT_LIMIT, AuditRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserNotFound, UserRepository
from televikar_pbx.domain.audit import AuditRecord
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

# Dates and times without an offset are read, and times shown, in the office's zone.
OFFICE = ZoneInfo("Europe/Oslo")
MOMENT_HELP = "YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (Europe/Oslo), or with a UTC offset"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("audit", help="the agent desk's audit log")
    actions = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="audit entries, oldest first",
        description="Audit entries in [--from, --to), oldest first (the newest --limit).",
    )
    listing.add_argument("--user", metavar="U", help="username (also a name tried at log-in)")
    listing.add_argument("--customer", metavar="C", help="customer name or id")
    listing.add_argument("--from", dest="since", metavar="WHEN", help=MOMENT_HELP)
    listing.add_argument(
        "--to", dest="until", metavar="WHEN", help=MOMENT_HELP + "; a date includes that day"
    )
    listing.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)


def _moment(option: str, text: str | None, *, end: bool = False) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return parse.parse_moment(text, OFFICE, end=end)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def entry_json(entry: AuditRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "action": entry.action.value,
        "user_id": entry.user_id,
        "username": entry.username,
        "customer_id": entry.customer_id,
        "object_id": entry.object_id,
        "address": entry.address,
        "detail": entry.detail,
    }


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    since, until = _moment("--from", args.since), _moment("--to", args.until, end=True)
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--from {args.since} is not before --to {args.until}")
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")

    async def work(repo: DirectoryRepository) -> tuple[AuditRecord, ...]:
        customer_id = (await repo.find_customer(args.customer)).id if args.customer else None
        user_id, username = None, None
        if args.user is not None:
            try:
                user_id = (await UserRepository(repo.source).find_user(args.user)).id
            except UserNotFound:
                username = args.user  # failed log-ins of a name that is no user
        return await AuditRepository(repo.source).list_entries(
            user_id=user_id,
            username=username,
            customer_id=customer_id,
            since=since,
            until=until,
            limit=args.limit,
        )

    entries = session.run(settings, work)
    if args.json:
        print(render.dumps([entry_json(e) for e in entries]))
        return 0
    rows = [
        [
            e.at.astimezone(OFFICE).isoformat(sep=" ", timespec="seconds"),
            e.username or "",
            e.action.value,
            "" if e.customer_id is None else str(e.customer_id),
            e.object_id or "",
            e.address or "",
        ]
        for e in entries
    ]
    headers = ["at", "user", "action", "customer", "object", "address"]
    print(render.table(headers, rows) if rows else "no entries")
    return 0
