"""E-mailing the customers' reports: what is due, the message, the record of each send.

For each customer with a report interval and addresses, ``send_due`` asks
``domain.delivery.periods_due`` which periods to send (from the customer's local date
and what ``report_deliveries`` says was sent or tried), then per period:

    read the period's calls → SLA report, PDF, CSVs → e-mail
    → claim (record pending) → SMTP → record sent, or failed with the error

The e-mail is built before anything is recorded, so a period whose report cannot be
made leaves no row; a period is claimed only if it was not sent and no other run is
sending it (``DeliveryRepository.claim``). Built on a sessionmaker, each record is its
own transaction: the database says *pending* while the e-mail is on its way, and no
transaction stays open across an SMTP exchange (on SQLite that would hold the write
lock the call service needs).

Each report holds one customer's calls only: they are read by customer id
(``CallRepository.calls_between``) for the customer's own local dates, and every file
of the e-mail is made from that one list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from televikar_pbx.clock import Clock
from televikar_pbx.db.calls_repo import CallLogEntry
from televikar_pbx.db.delivery_repo import DeliveryRepository, periods_by_status
from televikar_pbx.db.directory_repo import DirectoryRepository
from televikar_pbx.db.repo_base import SessionSource
from televikar_pbx.domain.delivery import Delivery, DeliveryStatus, ReportPeriod, periods_due
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.reporting import ReportInterval, ReportSettings
from televikar_pbx.domain.sla import PeriodFigures, SlaReport, sla_report
from televikar_pbx.errors import ConfigError, MailError
from televikar_pbx.reports import call_log, csvout, mail, sla_table
from televikar_pbx.reports.labels import NB
from televikar_pbx.settings import Settings

MONTHS = (
    "januar", "februar", "mars", "april", "mai", "juni",
    "juli", "august", "september", "oktober", "november", "desember",
)  # fmt: skip
PDF_LANGUAGE = "nb"
DASH = "\N{EN DASH}"  # between dates, and for a figure that has no value
# Letters NFKD does not take apart, spelled as Norwegians do without them.
_NORDIC = {ord("æ"): "ae", ord("ø"): "o", ord("å"): "aa"}


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One report this run sent or tried to send, as recorded afterwards."""

    customer: Customer
    delivery: Delivery
    # Failed: the SMTP error; sent: the recipients the server refused, if any.
    error: str | None = None

    @property
    def sent(self) -> bool:
        return self.delivery.status is DeliveryStatus.SENT


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """What is attached to a report's e-mail, with the figures its text quotes."""

    report: SlaReport
    pdf: bytes
    calls_csv: bytes
    sla_csv: bytes


# --- what is due ------------------------------------------------------------------------


async def send_due(
    settings: Settings,
    source: SessionSource,
    clock: Clock,
    *,
    customer: Customer | None = None,
) -> list[DeliveryResult]:
    """Send every due report (of one customer, or of all with an interval and addresses),
    oldest period first; what is due follows the customer's local date at ``clock``'s
    now. ConfigError, before anything is read, when SMTP is not configured; a failed
    e-mail is recorded and reported in the result, not raised.

    Give ``source`` as an ``async_sessionmaker`` (see the module docstring).
    """
    config = mail.SmtpConfig.from_settings(settings)
    now = clock.now()
    directory = DirectoryRepository(source)
    store = DeliveryRepository(source)
    reports = await directory.all_report_settings()
    customers = (customer,) if customer is not None else await directory.list_customers()
    results = []
    for c in customers:
        report_settings = reports[c.id]
        if report_settings.interval is ReportInterval.NONE or not report_settings.emails:
            continue
        today = now.astimezone(ZoneInfo(c.timezone)).date()
        sent, unsent = periods_by_status(await store.deliveries(c.id))
        for period in periods_due(report_settings.interval, today, sent, unsent):
            result = await _deliver(
                config, source, c, report_settings, period, clock, interval=report_settings.interval
            )
            if result is not None:
                results.append(result)
    return results


async def send_period(
    settings: Settings,
    source: SessionSource,
    clock: Clock,
    customer: Customer,
    period: ReportPeriod,
) -> DeliveryResult:
    """Send the report of ``period`` now, even if it was sent before (an explicit resend,
    recorded like any other). The period must be over in the customer's local time, so
    that a partial report is never recorded as the period's."""
    config = mail.SmtpConfig.from_settings(settings)
    report_settings = await DirectoryRepository(source).report_settings(customer.id)
    if not report_settings.emails:
        raise ConfigError(
            f"{customer.name} has no report addresses (customers edit --report-email)"
        )
    today = clock.now().astimezone(ZoneInfo(customer.timezone)).date()
    if period.last_day >= today:
        raise ConfigError(
            f"{period.last_day} is not over yet in {customer.name}'s time zone "
            f"({customer.timezone}, today {today})"
        )
    result = await _deliver(
        config, source, customer, report_settings, period, clock, interval=period.shape, resend=True
    )
    if result is None:
        raise ConfigError(f"{customer.name} {period}: another run is sending it; try again later")
    return result


async def _deliver(
    config: mail.SmtpConfig,
    source: SessionSource,
    customer: Customer,
    report_settings: ReportSettings,
    period: ReportPeriod,
    clock: Clock,
    *,
    interval: ReportInterval,
    resend: bool = False,
) -> DeliveryResult | None:
    now = clock.now()
    files = await report_files(source, customer, report_settings, period, now)
    message = build_message(config.sender, customer, report_settings, period, files, now)
    store = DeliveryRepository(source)
    claimed = await store.claim(
        customer.id, interval, period, report_settings.emails, now, resend=resend
    )
    if claimed is None:
        return None
    try:
        refused = await mail.send(config, message)
    except MailError as exc:
        return DeliveryResult(customer, await store.mark_failed(claimed.id, str(exc)), str(exc))
    sent = await store.mark_sent(claimed.id, clock.now(), refused)
    return DeliveryResult(customer, sent, refused)


# --- the report's files -----------------------------------------------------------------


async def report_files(
    source: SessionSource,
    customer: Customer,
    report_settings: ReportSettings,
    period: ReportPeriod,
    now: dt.datetime,
) -> ReportFiles:
    """The PDF, the call log CSV (the bytes of ``calls list --format csv``) and the SLA
    CSV (of ``sla report --format csv``) of one customer's period: by hour for one day,
    else by day."""
    zone = ZoneInfo(customer.timezone)
    entries = await call_log.calls_of(source, customer, period.first_day, period.last_day)
    report = sla_report(
        [f for f in (e.facts() for e in entries) if f is not None],
        first_day=period.first_day,
        last_day=period.last_day,
        by="hour" if period.first_day == period.last_day else "day",
        settings=report_settings,
        timezone=customer.timezone,
    )
    # Imported here for start-up time only: fpdf2 and matplotlib take a second to load,
    # and every command imports this module (tests/unit/test_cli_startup.py).
    from televikar_pbx.reports.pdf import render_sla_pdf

    # Rendering (matplotlib's object API, fpdf2) takes a CPU second: not on the event loop.
    pdf = await asyncio.to_thread(
        render_sla_pdf, customer, report, entries, language=PDF_LANGUAGE, generated_at=now
    )
    return ReportFiles(
        report=report,
        pdf=pdf,
        calls_csv=calls_csv(entries, zone),
        sla_csv=csvout.encode(sla_table.CSV_HEADERS, sla_table.csv_rows(report)),
    )


def calls_csv(entries: Sequence[CallLogEntry], zone: ZoneInfo) -> bytes:
    return csvout.encode(call_log.HEADERS, (call_log.cells(e, zone) for e in entries))


# --- the e-mail -------------------------------------------------------------------------


def period_label(period: ReportPeriod) -> str:
    """``28.11.2026``, ``uke 48 2026``, ``november 2026``, or any other range as
    ``01.11.2026`` en dash ``15.11.2026``."""
    first, last = period.first_day, period.last_day
    shape = period.shape
    if shape is ReportInterval.DAILY:
        return f"{first:%d.%m.%Y}"
    if shape is ReportInterval.WEEKLY:
        week = first.isocalendar()
        return f"uke {week.week} {week.year}"
    if shape is ReportInterval.MONTHLY:
        return f"{MONTHS[first.month - 1]} {first.year}"
    return f"{first:%d.%m.%Y}{DASH}{last:%d.%m.%Y}"


def file_stem(customer: Customer, period: ReportPeriod) -> str:
    """``fjordbakst-as-2026-11-23_2026-11-29``: ASCII, safe in any mail program."""
    name = customer.name.casefold().translate(_NORDIC)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-") or f"kunde-{customer.id}"
    days = str(period.first_day)
    if period.last_day != period.first_day:
        days += f"_{period.last_day}"
    return f"{slug}-{days}"


def build_message(
    sender: str,
    customer: Customer,
    report_settings: ReportSettings,
    period: ReportPeriod,
    files: ReportFiles,
    now: dt.datetime,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(report_settings.emails)
    # One line whatever the display name holds.
    message["Subject"] = " ".join(
        f"Svartjeneste-rapport for {customer.display_name}, {period_label(period)}".split()
    )
    message["Date"] = email.utils.format_datetime(now.astimezone(dt.UTC))
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = email.utils.make_msgid("rapport", domain=domain)
    message.set_content(body_text(customer, period, files.report))
    stem = file_stem(customer, period)
    message.add_attachment(
        files.pdf, maintype="application", subtype="pdf", filename=f"svartjeneste-{stem}.pdf"
    )
    # Bytes, base64: the CSV arrives exactly as `calls list --format csv` writes it (BOM,
    # CRLF), which Excel needs.
    for data, name in ((files.calls_csv, "anropslogg"), (files.sla_csv, "sla")):
        message.add_attachment(
            data,
            maintype="text",
            subtype="csv",
            filename=f"{name}-{stem}.csv",
            params={"charset": "utf-8"},
        )
    return message


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{sla_table.decimal(value)} %"


def _target(value: float) -> str:
    return f"{value:g}".replace(".", ",") + " %"


def _judged(met: bool | None) -> str:
    return NB.not_judged if met is None else (NB.met if met else NB.not_met)


def _seconds(value: str | None) -> str:
    return DASH if value is None else f"{value} s"


def body_text(customer: Customer, period: ReportPeriod, report: SlaReport) -> str:
    total: PeriodFigures = report.total
    label = period_label(period)
    if period.shape in (ReportInterval.WEEKLY, ReportInterval.MONTHLY):
        label += f" ({period.first_day:%d.%m.%Y}{DASH}{period.last_day:%d.%m.%Y})"
    lines = [
        "Hei,",
        "",
        f"her er svartjeneste-rapporten for {customer.display_name} for {label}.",
        "",
    ]
    if total.offered == 0:
        lines.append("Ingen tilbudte anrop i perioden.")
    else:
        lines += [
            f"{NB.offered}: {total.offered}, {NB.answered.lower()}: {total.answered}",
            f"SL12 (besvart innen 12 s): {_pct(total.sl12_pct)} (mål minst "
            f"{_target(report.sl12_target)}: {_judged(total.sl12_met)})",
            f"SL20 (besvart innen 20 s): {_pct(total.sl20_pct)} (mål minst "
            f"{_target(report.sl20_target)}: {_judged(total.sl20_met)})",
            f"{NB.lost}: {_pct(total.lost_pct)} (mål høyst "
            f"{_target(report.lost_target)}: {_judged(total.lost_met)})",
            f"{NB.messages}: {total.messages}",
            f"{NB.avg_wait}: {_seconds(sla_table.decimal(total.avg_wait_s))}, "
            f"{NB.longest_wait.lower()}: {_seconds(sla_table.longest(total.longest_wait_s))}",
        ]
    lines += [
        "",
        "Vedlagt er rapporten som PDF, og anropsloggen og SLA-tallene som CSV-filer",
        f"som kan åpnes i Excel. Tidene er lokal tid ({customer.timezone}).",
        "",
        "Vennlig hilsen",
        "svartjenesten",
    ]
    return "\n".join(lines) + "\n"
