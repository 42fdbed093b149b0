"""The words of the PDF report in Norwegian bokmål (``nb``, the default) and English.

The Norwegian call log headers, outcome labels and "skjult nummer" are those of
``calls list`` (``reports/call_log.py``), and the period table's headers those of
``sla report`` (``reports/sla_table.py``), so the PDF, the table and the CSV say the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.reports import call_log, sla_table

LANGUAGES = ("nb", "en")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Texts:
    language: str
    decimal_point: str
    title: str
    period: str  # "Periode: {dates}"
    by_hour: str
    by_day: str
    zone: str  # "Tider i lokal tid ({zone})"
    definitions: str  # "SLA-definisjoner versjon {version}"
    generated: str  # "Laget {when}"
    page: str  # "Side {page} av {pages}"
    summary: str
    summary_headers: tuple[str, str, str, str]
    offered: str
    answered: str
    sl12: str
    sl20: str
    lost: str
    short_abandons: str
    messages: str
    avg_wait: str
    longest_wait: str
    avg_talk: str
    of: str  # "2 av 5"
    met: str
    not_met: str
    not_judged: str
    notes: str
    chart: tuple[str, str]  # by hour, by day
    chart_target: str  # "Mål {name}"
    chart_note: str
    table: tuple[str, str]
    table_headers: tuple[str, ...]
    table_note: str
    total: str
    call_log: str
    call_log_note: str
    call_headers: tuple[str, ...]
    no_calls: str
    withheld: str
    outcomes: Mapping[Outcome, str]
    not_ended: str
    weekdays: tuple[str, ...]
    message_kinds: Mapping[str, str]  # a message or order in the call log: "Bestilling 13"

    def number(self, text: str) -> str:
        """A number as ``admin`` formats it (decimal comma), in this language."""
        return text.replace(",", self.decimal_point)

    def percent(self, text: str) -> str:
        """``70 %`` in Norwegian, ``70%`` in English."""
        return f"{text} %" if self.language == "nb" else f"{text}%"

    def target(self, value: float) -> str:
        """A target as set (``70``, ``92,5``), as a percentage."""
        return self.percent(f"{value:g}".replace(".", self.decimal_point))

    def day(self, day: dt.date) -> str:
        """A short date for the chart's axis: ``28.11.`` or ``28 Nov``."""
        if self.language == "nb":
            return f"{day.day}.{day.month}."
        return f"{day.day} {_MONTHS_EN[day.month - 1]}"


NB = Texts(
    language="nb",
    decimal_point=",",
    title="SLA-rapport",
    period="Periode: {dates}",
    by_hour="per time",
    by_day="per dag",
    zone="Tider i lokal tid ({zone})",
    definitions="SLA-definisjoner versjon {version}",
    generated="Laget {when}",
    page="Side {page} av {pages}",
    summary="Sammendrag for perioden",
    summary_headers=("Nøkkeltall", "Resultat", "Mål", "Vurdering"),
    offered="Tilbudte anrop",
    answered="Besvarte anrop",
    sl12="SL12: besvart innen 12 s",
    sl20="SL20: besvart innen 20 s",
    lost="Tapte anrop (la på etter mer enn 12 s)",
    short_abandons="Korte avbrudd (la på innen 12 s)",
    messages="Beskjeder",
    avg_wait="Snitt ventetid",
    longest_wait="Lengste ventetid",
    avg_talk="Snitt samtaletid",
    of="{part} av {whole}",
    met="oppfylt",
    not_met="ikke oppfylt",
    not_judged="ikke vurdert",
    notes=(
        "Tilbudte anrop er anrop som kom inn i køen. SL12 og SL20 er andelen besvart "
        "innen 12 og 20 sekunder, regnet av de tilbudte anropene minus de korte "
        "avbruddene. Ventetiden løper fra anropet kom inn til det ble besvart, til "
        "innringeren la på, eller til beskjedopptaket begynte. Et tall akkurat på målet "
        "oppfyller målet."
    ),
    chart=("Servicenivå per time", "Servicenivå per dag"),
    chart_target="Mål {name}",
    chart_note="Perioder uten tilbudte anrop er tomme i grafen.",
    table=("Time for time", "Dag for dag"),
    table_headers=sla_table.HEADERS,
    table_note="✓ mål oppfylt, ✗ mål ikke oppfylt, \u2013 ingen tilbudte anrop.",
    total=sla_table.TOTAL,
    call_log="Anropslogg",
    call_log_note="{count} anrop. Tider i lokal tid ({zone}); sekunder rundet opp til tidel.",
    call_headers=call_log.HEADERS,
    no_calls="Ingen anrop i perioden.",
    withheld=call_log.WITHHELD,
    outcomes=call_log.OUTCOMES,
    not_ended=call_log.NOT_ENDED,
    weekdays=("man", "tir", "ons", "tor", "fre", "lør", "søn"),
    message_kinds=call_log.MESSAGE_KINDS,
)

EN = Texts(
    language="en",
    decimal_point=".",
    title="SLA report",
    period="Period: {dates}",
    by_hour="by hour",
    by_day="by day",
    zone="Times in local time ({zone})",
    definitions="SLA definitions version {version}",
    generated="Generated {when}",
    page="Page {page} of {pages}",
    summary="Summary of the period",
    summary_headers=("Figure", "Result", "Target", "Assessment"),
    offered="Offered calls",
    answered="Answered calls",
    sl12="SL12: answered within 12 s",
    sl20="SL20: answered within 20 s",
    lost="Lost calls (hung up after more than 12 s)",
    short_abandons="Short abandons (hung up within 12 s)",
    messages="Messages",
    avg_wait="Average wait",
    longest_wait="Longest wait",
    avg_talk="Average talk time",
    of="{part} of {whole}",
    met="met",
    not_met="not met",
    not_judged="not judged",
    notes=(
        "Offered calls are the calls that reached the queue. SL12 and SL20 are the share "
        "answered within 12 and 20 seconds, out of the offered calls less the short "
        "abandons. The wait runs from the call's arrival to its answer, to the caller "
        "hanging up, or to the start of message capture. A figure exactly on its target "
        "meets it."
    ),
    chart=("Service level by hour", "Service level by day"),
    chart_target="Target {name}",
    chart_note="Periods without offered calls are left empty in the chart.",
    table=("Hour by hour", "Day by day"),
    table_headers=(
        "Period",
        "Offered",
        "Answered",
        "SL12 %",
        "SL20 %",
        "Lost %",
        "Short abandons",
        "Messages",
        "Average wait (s)",
        "Longest wait (s)",
        "Average talk (s)",
    ),
    table_note="✓ target met, ✗ target not met, \u2013 no offered calls.",
    total="Total",
    call_log="Call log",
    call_log_note="{count} calls. Times in local time ({zone}); seconds rounded up to the tenth.",
    call_headers=(
        "Date",
        "Time",
        "Caller",
        "Name",
        "Wait (s)",
        "Outcome",
        "Agent",
        "Talk (s)",
        "Message",
    ),
    no_calls="No calls in the period.",
    withheld="withheld number",
    outcomes={
        Outcome.ANSWERED: "Answered",
        Outcome.ABANDONED: "Abandoned",
        Outcome.MESSAGE: "Message",
        Outcome.NO_MESSAGE: "No message",
        Outcome.UNKNOWN_NUMBER: "Unknown number",
        Outcome.REJECTED: "Rejected",
        Outcome.FAILED: "Failed",
    },
    not_ended="Not ended",
    weekdays=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    message_kinds={"voice": "Voice message", "message": "Message", "order": "Order"},
)


def texts(language: str) -> Texts:
    """The words of ``language`` (``nb`` or ``en``); ValueError for any other."""
    for candidate in (NB, EN):
        if candidate.language == language:
            return candidate
    raise ValueError(f"report language must be one of {', '.join(LANGUAGES)}, got {language!r}")
