"""``televikar-pbx sla report`` and ``sla nightly``: a customer's SLA figures against its
targets (definitions: docs/metrics.md, computed by ``domain.sla``).

``report`` computes the figures from the call log for local dates ``--from``..``--to``;
``nightly`` stores the hourly and daily figures of each customer's previous local day
(and of every day missed since the last stored one, at most ``CATCH_UP_DAYS`` back) in
``sla_aggregates``, replacing what was stored for those periods.

The table and the CSV are for the customer: Norwegian headers, percentages and seconds
with one decimal and a decimal comma, each service level and the lost share marked
``ja``/``nei`` against its target. The JSON is ``SlaReport.to_dict()``: English keys,
exact figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin import csvout, render, session
from televikar_pbx.admin.calls import option_date, seconds, write_bytes
from televikar_pbx.db.calls_repo import CallLogEntry, CallRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.sla_repo import SlaRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import By, CallFacts, PeriodFigures, SlaReport, sla_report
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

FORMATS = ("table", "json", "csv")
# How far back ``nightly`` catches up missed days (a customer's previous day included).
CATCH_UP_DAYS = 62
TOTAL = "Totalt"
HEADERS = (
    "Periode",
    "Tilbudt",
    "Besvart",
    "SL12 %",
    "SL20 %",
    "Tapt %",
    "Korte avbrudd",
    "Beskjeder",
    "Snitt ventetid (s)",
    "Lengste ventetid (s)",
    "Snitt samtaletid (s)",
)
CSV_HEADERS = (
    "Periode",
    "Tilbudt",
    "Besvart",
    "SL12 %",
    "SL12 oppfylt",
    "SL20 %",
    "SL20 oppfylt",
    "Tapt %",
    "Tapt oppfylt",
    "Korte avbrudd",
    "Beskjeder",
    "Snitt ventetid (s)",
    "Lengste ventetid (s)",
    "Snitt samtaletid (s)",
    "Definisjonsversjon",
)
_MESSAGE_OUTCOMES = (Outcome.MESSAGE, Outcome.NO_MESSAGE)
_NOT_ANSWERED = (Outcome.ABANDONED, *_MESSAGE_OUTCOMES)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("sla", help="SLA figures against the customers' targets")
    actions = parser.add_subparsers(dest="sla_command", required=True, metavar="ACTION")

    report = actions.add_parser(
        "report",
        help="a customer's SLA figures by hour or day",
        description="Offered, answered, SL12, SL20, lost %%, short abandons, messages, "
        "waits and talk of one customer per local hour or day from --from to --to (both "
        "included), each judged against the customer's targets, with a total.",
    )
    report.add_argument("--customer", required=True, metavar="C", help="name or id")
    report.add_argument(
        "--from", dest="from_date", required=True, metavar="DATE", help="first day, YYYY-MM-DD"
    )
    report.add_argument(
        "--to", dest="to_date", required=True, metavar="DATE", help="last day (included)"
    )
    report.add_argument("--by", choices=("hour", "day"), default="day", help="default: day")
    report.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default); json; csv for Excel (';', decimal comma, UTF-8 with BOM)",
    )
    report.set_defaults(func=cmd_report)

    nightly = actions.add_parser(
        "nightly",
        help="store every customer's hourly and daily figures of the previous day",
        description="For each customer, compute and store the hourly and daily SLA "
        "figures of its previous local day, and of every day missed since the last stored "
        f"one (at most {CATCH_UP_DAYS} days back). With --date, that day only, for every "
        "customer. A stored period is replaced: re-running gives the same figures.",
    )
    nightly.add_argument("--date", metavar="DATE", help="this local day only, YYYY-MM-DD")
    nightly.set_defaults(func=cmd_nightly)


# --- from the call log to the figures --------------------------------------------------


def call_facts(entry: CallLogEntry) -> CallFacts | None:
    """What the SLA figures need of a logged call; None while it has not ended.

    A message or no_message call's wait ends when it left the queue (the journal's first
    ``message_capture`` or ``announcement`` event), else at the hang-up.
    """
    call = entry.call
    if call.ended_at is None or call.outcome is None:
        return None
    try:
        outcome = Outcome(call.outcome)
        overflowed = None
        if outcome in _MESSAGE_OUTCOMES:
            overflowed = entry.left_queue_at or call.ended_at
        return CallFacts(
            arrived_at=call.arrived_at,
            answered_at=None if outcome in _NOT_ANSWERED else call.answered_at,
            ended_at=call.ended_at,
            outcome=outcome,
            agent_id=call.agent_id,
            overflowed_at=overflowed,
        )
    except ValueError as exc:
        raise ValueError(f"call {call.id}: {exc}") from None


async def _report(
    repo: DirectoryRepository, customer: Customer, first: dt.date, last: dt.date, by: By
) -> SlaReport:
    zone = ZoneInfo(customer.timezone)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    # session.run hands out the directory; the call log shares its transaction.
    entries = await CallRepository(repo.source).calls_between(customer.id, start, end)
    facts = [f for f in map(call_facts, entries) if f is not None]
    return sla_report(
        facts,
        first_day=first,
        last_day=last,
        by=by,
        settings=await repo.report_settings(customer.id),
        timezone=customer.timezone,
    )


# --- sla report ------------------------------------------------------------------------


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")

    async def work(repo: DirectoryRepository) -> tuple[Customer, SlaReport]:
        customer = await repo.find_customer(args.customer)
        return customer, await _report(repo, customer, first, last, args.by)

    customer, report = session.run(settings, work)
    if args.format == "json":
        print(render.dumps({"customer_id": customer.id, **report.to_dict()}))
    elif args.format == "csv":
        write_bytes(csvout.encode(CSV_HEADERS, csv_rows(report)))
    else:
        print(report_text(customer, report))
    return 0


def decimal(value: float | None) -> str | None:
    """One decimal with a decimal comma (rounded half to even); None stays empty."""
    return None if value is None else f"{value:.1f}".replace(".", ",")


def longest(value: float | None) -> str | None:
    """The longest wait rounded up to the tenth, as in the call log (12,0 is within 12 s)."""
    return None if value is None else seconds(dt.timedelta(seconds=value))


def judged(value: float | None, met: bool | None) -> str:
    shown = decimal(value)
    if shown is None:
        return "-"
    return f"{shown} {'ja' if met else 'nei'}"


def _yes_no(met: bool | None) -> str | None:
    return None if met is None else ("ja" if met else "nei")


def _label(figures: PeriodFigures, report: SlaReport) -> str:
    return TOTAL if figures is report.total else figures.period.label


def _table_row(figures: PeriodFigures, report: SlaReport) -> list[str]:
    return [
        _label(figures, report),
        str(figures.offered),
        str(figures.answered),
        judged(figures.sl12_pct, figures.sl12_met),
        judged(figures.sl20_pct, figures.sl20_met),
        judged(figures.lost_pct, figures.lost_met),
        str(figures.short_abandons),
        str(figures.messages),
        decimal(figures.avg_wait_s) or "-",
        longest(figures.longest_wait_s) or "-",
        decimal(figures.avg_talk_s) or "-",
    ]


def report_text(customer: Customer, report: SlaReport) -> str:
    def target(value: float) -> str:
        return f"{value:g}".replace(".", ",")

    periods: Iterable[PeriodFigures] = (*report.periods, report.total)
    lines = [
        f"{customer.name}: {report.first_day} til {report.last_day}, per "
        f"{'time' if report.by == 'hour' else 'dag'} ({report.timezone})",
        f"Mål: SL12 ≥ {target(report.sl12_target)} %, SL20 ≥ {target(report.sl20_target)} %, "
        f"tapt ≤ {target(report.lost_target)} % (ja: oppfylt, nei: ikke oppfylt)",
        "",
        render.table(HEADERS, (_table_row(f, report) for f in periods)),
        "",
        f"SLA-definisjoner versjon {report.definition_version} (docs/metrics.md).",
    ]
    return "\n".join(lines)


def csv_rows(report: SlaReport) -> list[Sequence[str | None]]:
    return [
        (
            _label(f, report),
            str(f.offered),
            str(f.answered),
            decimal(f.sl12_pct),
            _yes_no(f.sl12_met),
            decimal(f.sl20_pct),
            _yes_no(f.sl20_met),
            decimal(f.lost_pct),
            _yes_no(f.lost_met),
            str(f.short_abandons),
            str(f.messages),
            decimal(f.avg_wait_s),
            longest(f.longest_wait_s),
            decimal(f.avg_talk_s),
            str(report.definition_version),
        )
        for f in (*report.periods, report.total)
    ]


# --- sla nightly -----------------------------------------------------------------------


def days_due(
    last_stored: dt.date | None, previous_day: dt.date, *, limit: int = CATCH_UP_DAYS
) -> list[dt.date]:
    """The local days ``nightly`` computes: from the day after the last stored one (or
    only the previous day, when nothing is stored) to the previous day, that one always
    included (its calls may have ended late), and at most ``limit`` days."""
    first = previous_day if last_stored is None else last_stored + dt.timedelta(days=1)
    first = max(min(first, previous_day), previous_day - dt.timedelta(days=limit - 1))
    return [first + dt.timedelta(days=n) for n in range((previous_day - first).days + 1)]


def cmd_nightly(settings: Settings, args: argparse.Namespace) -> int:
    only = None if args.date is None else option_date("--date", args.date)
    now = dt.datetime.now(dt.UTC)

    async def work(repo: DirectoryRepository) -> list[tuple[Customer, list[dt.date]]]:
        store = SlaRepository(repo.source)
        done = []
        for customer in await repo.list_customers():
            if only is not None:
                days = [only]
            else:
                previous = now.astimezone(ZoneInfo(customer.timezone)).date()
                previous -= dt.timedelta(days=1)
                days = days_due(await store.last_stored_day(customer.id), previous)
            for day in days:
                for by in ("hour", "day"):
                    report = await _report(repo, customer, day, day, by)
                    await store.store_day(customer.id, day, report, now)
            done.append((customer, days))
        return done

    for customer, days in session.run(settings, work):
        shown = str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"
        print(f"{customer.name}: stored {shown}")
    return 0
