"""``televikar-pbx customers last-calls [--json]``: each customer's last call, the calls
per hour its history leads us to expect now, open or closed now, and whether the
forwarding watch flags its silence (calls/forwarding.py), read from the database: the
service need not run."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from televikar_pbx.admin import render, session
from televikar_pbx.calls.forwarding import read_once, reading_json
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import Directory
from televikar_pbx.settings import Settings


def register(actions: argparse._SubParsersAction[Any]) -> None:
    parser = actions.add_parser(
        "last-calls",
        help="each customer's last call and the calls per hour expected now",
        description="Flagged: no call for so long that, at the customer's usual rate for "
        "the open hours since, the chance of that is below TELEVIKAR_FORWARDING_SILENCE_P "
        "(1 %%): check that its forwarding works (docs/operations.md).",
    )
    parser.add_argument("--json", action="store_true", help="a JSON array, one object each")
    parser.set_defaults(func=cmd_last_calls)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"


def cmd_last_calls(settings: Settings, args: argparse.Namespace) -> int:
    now: datetime = args.clock.now()

    async def work(repo: DirectoryRepository) -> str:
        customers = await repo.list_customers()
        readings = await read_once(
            repo.source,
            Directory(tuple(customers), ()),
            now,
            weeks=settings.forwarding_history_weeks,
            silence_p=settings.forwarding_silence_p,
        )
        rows = [reading_json(r, c) for r, c in zip(readings, customers, strict=True)]
        if args.json:
            return render.dumps(rows)
        return render.table(
            ("ID", "NAME", "LAST CALL", "AGO", "CALLS/H NOW", "OPEN", "EXPECTED SINCE", "FLAG"),
            (
                (
                    str(row["id"]),
                    row["name"],
                    (row["last_call"] or "never")[:16].replace("T", " "),
                    _ago(row["silent_s"]),
                    f"{row['rate_per_hour']:.1f}",
                    "open" if row["open_now"] else "closed",
                    f"{row['expected_since_last_call']:.1f}",
                    "SILENT" if row["flagged"] else "-",
                )
                for row in rows
            ),
        )

    print(session.run(settings, work))
    return 0
