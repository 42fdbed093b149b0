"""``televikar-pbx sla report`` and ``sla nightly``: a customer's SLA figures against its
targets (definitions: docs/metrics.md, computed by ``domain.sla``).

``report`` computes the figures from the call log for local dates ``--from``..``--to``;
``nightly`` stores the hourly and daily figures of each customer's previous local day
(and of every day missed since the last stored one, at most ``CATCH_UP_DAYS`` back) in
``sla_aggregates``, replacing what was stored for those periods.

The table and the CSV are for the customer: Norwegian headers, percentages and seconds
with one decimal and a decimal comma, each service level and the lost share marked
``ja``/``nei`` against its target. The JSON is ``SlaReport.to_dict()``: English keys,
exact figures. The PDF (``reports.pdf``, docs/reports.md) adds a chart and the call log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin import csvout, render, session
from televikar_pbx.admin.calls import option_date, seconds, write_bytes
from televikar_pbx.clock import clock_from_env
from televikar_pbx.db.calls_repo import CallLogEntry, CallRepository, CallTimes
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.sla_repo import SlaRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.reporting import ReportInterval
from televikar_pbx.domain.sla import By, CallFacts, PeriodFigures, SlaReport, sla_reports
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

FORMATS = ("table", "json", "csv", "pdf")
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
_OUTCOMES = {o.value: o for o in Outcome}


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
        help="table (default); json; csv for Excel (';', decimal comma, UTF-8 with BOM); "
        "pdf: summary, chart, table and call log (docs/reports.md)",
    )
    report.add_argument(
        "--language", choices=("nb", "en"), help="pdf only: nb (Norwegian, default) or en"
    )
    report.add_argument(
        "--output", metavar="FILE", help="pdf only: write it to FILE (needed on a terminal)"
    )
    report.set_defaults(func=cmd_report)

    nightly = actions.add_parser(
        "nightly",
        help="store every customer's hourly and daily figures of the previous day",
        description="For each customer, compute and store the hourly and daily SLA "
        "figures of its previous local day, and of every day missed since the last stored "
        f"one (at most {CATCH_UP_DAYS} days back). With --date, that day only, for every "
        "customer. A stored period is replaced: re-running gives the same figures. Then "
        "it e-mails the reports that are due (`reports send --due`) unless --no-send; "
        "exit status 1 if one could not be sent or SMTP is not configured.",
    )
    nightly.add_argument("--date", metavar="DATE", help="this local day only, YYYY-MM-DD")
    nightly.add_argument(
        "--no-send",
        action="store_true",
        help="store the figures only; do not e-mail the reports that are due",
    )
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
    return facts_of(
        (
            call.id,
            call.arrived_at,
            call.answered_at,
            call.ended_at,
            call.outcome,
            call.agent_id,
            entry.left_queue_at,
        )
    )


def facts_of(times: CallTimes) -> CallFacts:
    """``call_facts`` of an ended call as ``CallRepository.ended_calls_between`` reads it
    (a million times a night: no enum lookup by value, one object per call)."""
    id_, arrived, answered, ended, value, agent, left_queue = times
    try:
        outcome = _OUTCOMES.get(value) or Outcome(value)
        if outcome in _MESSAGE_OUTCOMES:
            return CallFacts(arrived, None, ended, outcome, agent, left_queue or ended)
        if outcome in _NOT_ANSWERED:
            answered = None
        return CallFacts(arrived, answered, ended, outcome, agent)
    except ValueError as exc:
        raise ValueError(f"call {id_}: {exc}") from None


async def _reports(
    repo: DirectoryRepository, customer: Customer, first: dt.date, last: dt.date
) -> dict[By, SlaReport]:
    """The customer's figures by hour and by day, from one read of the call log."""
    zone = ZoneInfo(customer.timezone)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    # session.run hands out the directory; the call log shares its transaction.
    calls = await CallRepository(repo.source).ended_calls_between(customer.id, start, end)
    return sla_reports(
        map(facts_of, calls),
        first_day=first,
        last_day=last,
        settings=await repo.report_settings(customer.id),
        timezone=customer.timezone,
    )


async def _report(
    repo: DirectoryRepository, customer: Customer, first: dt.date, last: dt.date, by: By
) -> SlaReport:
    return (await _reports(repo, customer, first, last))[by]


# --- sla report ------------------------------------------------------------------------


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    _pdf_options(args)

    async def work(repo: DirectoryRepository) -> tuple[Customer, SlaReport, list[CallLogEntry]]:
        customer = await repo.find_customer(args.customer)
        report = await _report(repo, customer, first, last, args.by)
        if args.format != "pdf":
            return customer, report, []
        return customer, report, await _call_log(repo, customer, first, last)

    customer, report, calls = session.run(settings, work)
    if args.format == "pdf":
        _write_pdf(args, customer, report, calls)
    elif args.format == "json":
        print(render.dumps({"customer_id": customer.id, **report.to_dict()}))
    elif args.format == "csv":
        write_bytes(csvout.encode(CSV_HEADERS, csv_rows(report)))
    else:
        print(report_text(customer, report))
    return 0


def _pdf_options(args: argparse.Namespace) -> None:
    """--language and --output go with --format pdf; a PDF is never sent to a terminal."""
    if args.format != "pdf":
        for option, value in (("--language", args.language), ("--output", args.output)):
            if value is not None:
                raise ConfigError(f"{option} is for --format pdf only")
    elif args.output is None and sys.stdout.isatty():
        raise ConfigError("--format pdf: give --output FILE, or redirect to a file")


async def _call_log(
    repo: DirectoryRepository, customer: Customer, first: dt.date, last: dt.date
) -> list[CallLogEntry]:
    zone = ZoneInfo(customer.timezone)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return await CallRepository(repo.source).calls_between(customer.id, start, end)


def _write_pdf(
    args: argparse.Namespace, customer: Customer, report: SlaReport, calls: list[CallLogEntry]
) -> None:
    # Imported here: fpdf2 and matplotlib take a second to load, and reports.rows uses
    # this module's number formats.
    from televikar_pbx.reports.pdf import render_sla_pdf

    now = dt.datetime.now(dt.UTC)
    data = render_sla_pdf(customer, report, calls, language=args.language or "nb", generated_at=now)
    if args.output is None:
        write_bytes(data)
        return
    try:
        # Reports are for the customer and the service user only (docs/security.md).
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise ConfigError(f"--output {args.output}: {exc.strerror or exc}") from None


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
    now = clock_from_env().now()  # TELEVIKAR_NOW: re-run as of another instant

    async def work(repo: DirectoryRepository) -> tuple[list[tuple[Customer, list[dt.date]]], bool]:
        store = SlaRepository(repo.source)
        done = []
        reports_wanted = False
        for customer in await repo.list_customers():
            wanted = await repo.report_settings(customer.id)
            reports_wanted |= wanted.interval is not ReportInterval.NONE and bool(wanted.emails)
            if only is not None:
                days = [only]
            else:
                previous = now.astimezone(ZoneInfo(customer.timezone)).date()
                previous -= dt.timedelta(days=1)
                days = days_due(await store.last_stored_day(customer.id), previous)
            for day in days:
                for report in (await _reports(repo, customer, day, day)).values():
                    await store.store_day(customer.id, day, report, now)
            done.append((customer, days))
        return done, reports_wanted

    stored, reports_wanted = session.run(settings, work)
    for customer, days in stored:
        shown = str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"
        print(f"{customer.name}: stored {shown}")
    if args.no_send or not reports_wanted:
        return 0
    if not settings.smtp_host:
        sys.stdout.flush()
        print(
            "televikar-pbx: sla nightly: reports are due but not sent: SMTP is not "
            "configured (TELEVIKAR_SMTP_HOST)",
            file=sys.stderr,
        )
        return 1
    # After the figures are stored and their transaction is over: an SMTP exchange must
    # not hold the database (on SQLite, its write lock).
    from televikar_pbx.admin.reports import send_due_reports

    return send_due_reports(settings, now)
