"""Output of the operator's commands: aligned tables for people, JSON for scripts.

The JSON shapes are part of the public command line: keys are only ever added, never
renamed or removed. Lists are JSON arrays of objects; ``show`` is one object. Times of
day are ``HH:MM`` (closing at ``24:00`` is "until midnight"), dates ``YYYY-MM-DD``,
instants ISO 8601 with the customer's UTC offset. Secrets are never printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin.money import format_kroner
from televikar_pbx.admin.parse import DAYS, format_exception, format_hours, format_time
from televikar_pbx.db.repositories import AgentCredentials
from televikar_pbx.domain.calendar import Booking
from televikar_pbx.domain.desk_live import DEFAULT_GREETING
from televikar_pbx.domain.directory import Agent, Customer
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.reports.table import table as table  # re-exported: render.table


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# --- customers --------------------------------------------------------------------------


def _agreement(customer: Customer) -> str:
    agreement = customer.calendar.agreement
    if agreement is None:
        return "bookings only"
    return f"{agreement.start}..{agreement.end or 'open-ended'}"


def customer_json(
    customer: Customer,
    report: ReportSettings,
    agents: Iterable[Agent],
    voice_delivery: str = "attachment",
    escalate_after_min: int | None = None,
) -> dict[str, Any]:
    rules, calendar = customer.rules, customer.calendar
    agreement = calendar.agreement
    return {
        "id": customer.id,
        "name": customer.name,
        "display_name": customer.display_name,
        "timezone": customer.timezone,
        "numbers": list(customer.numbers),
        "forwarded_from": list(customer.forwarded_from),
        "hours": [
            {
                "day": DAYS[h.weekday],
                "opens": format_time(h.opens),
                "closes": format_time(h.closes, closing=True),
            }
            for h in calendar.hours
        ],
        "closed": [e.day.isoformat() for e in calendar.exceptions if e.opens is None],
        "special_days": [
            {
                "day": e.day.isoformat(),
                "opens": format_time(e.opens),
                "closes": format_time(e.closes, closing=True),
            }
            for e in calendar.exceptions
            if e.opens is not None and e.closes is not None
        ],
        "agreement": (
            None
            if agreement is None
            else {
                "start": agreement.start.isoformat(),
                "end": agreement.end.isoformat() if agreement.end else None,
            }
        ),
        "rules": {
            "hold": rules.hold_style.value,
            "hold_media": rules.hold_media,
            "max_wait_s": rules.max_wait_s,
            "wrap_up_s": rules.wrap_up_s,
            "closed_action": rules.closed_action.value,
            "outside_policy": rules.outside_policy.value,
            "message_prompt": rules.message_prompt,
        },
        # Whole øre (docs/billing.md).
        "prices": {
            "monthly_fee_ore": customer.prices.monthly_fee_ore,
            "call_price_ore": customer.prices.call_price_ore,
            "message_price_ore": customer.prices.message_price_ore,
            "booking_day_price_ore": customer.prices.booking_day_price_ore,
            "order_price_ore": customer.prices.order_price_ore,
        },
        "report": {
            "sl12_target": report.sl12_target,
            "sl20_target": report.sl20_target,
            "lost_target": report.lost_target,
            "interval": report.interval.value,
            "emails": list(report.emails),
        },
        "agents": [
            {
                "id": a.id,
                "name": a.name,
                "endpoint": a.endpoint,
                "priority": a.priority(customer.id),
            }
            for a in agents
            if a.serves(customer.id)
        ],
        "voice_delivery": voice_delivery,
        "greeting": customer.greeting,
        "escalate_after_min": escalate_after_min,
    }


def customer_text(
    customer: Customer,
    report: ReportSettings,
    agents: Iterable[Agent],
    voice_delivery: str = "attachment",
    escalate_after_min: int | None = None,
) -> str:
    rules, calendar = customer.rules, customer.calendar
    served = [
        f"{a.name} ({a.endpoint}, priority {a.priority(customer.id)})"
        for a in agents
        if a.serves(customer.id)
    ]
    rows = [
        ("customer", f"{customer.id} {customer.name}"),
        ("display name", customer.display_name),
        ("numbers", ", ".join(customer.numbers) or "-"),
        ("forwarded from", ", ".join(customer.forwarded_from) or "-"),
        ("time zone", customer.timezone),
        ("hours", "; ".join(format_hours(calendar.hours)) or "always open"),
        ("exceptions", ", ".join(format_exception(e) for e in calendar.exceptions) or "-"),
        ("agreement", _agreement(customer)),
        ("outside agreement", rules.outside_policy.value),
        ("when closed", rules.closed_action.value),
        ("hold", rules.hold_style.value + (f" ({rules.hold_media})" if rules.hold_media else "")),
        ("max wait", f"{rules.max_wait_s:g} s"),
        ("wrap-up", f"{rules.wrap_up_s:g} s"),
        ("message prompt", rules.message_prompt or "(the service's)"),
        (
            "SLA targets",
            f"SL12 >= {report.sl12_target:g} %, SL20 >= {report.sl20_target:g} %,"
            f" lost <= {report.lost_target:g} %",
        ),
        ("reports", f"{report.interval.value} to {', '.join(report.emails) or 'nobody'}"),
        ("prices", _prices(customer)),
        ("agents", ", ".join(served) or "none"),
        ("voice messages", f"{voice_delivery} (e-mail)"),
        ("greeting", customer.greeting or f"{DEFAULT_GREETING} (the default)"),
        ("urgent messages", _escalation(escalate_after_min)),
    ]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key + ':':<{width + 1}} {value}" for key, value in rows)


def _escalation(minutes: int | None) -> str:
    if minutes is None:
        return "to every recipient at once (no escalation)"
    return f"down the recipient list, the next if not acknowledged within {minutes} min"


def _prices(customer: Customer) -> str:
    prices = customer.prices
    return (
        f"monthly fee {format_kroner(prices.monthly_fee_ore)} kr,"
        f" call {format_kroner(prices.call_price_ore)} kr,"
        f" message {format_kroner(prices.message_price_ore)} kr,"
        f" order {format_kroner(prices.order_price_ore)} kr,"
        f" booked day {format_kroner(prices.booking_day_price_ore)} kr"
    )


def customers_table(customers: Iterable[Customer]) -> str:
    return table(
        ("ID", "NAME", "DISPLAY NAME", "NUMBERS", "FORWARDED FROM", "AGREEMENT"),
        (
            (
                str(c.id),
                c.name,
                c.display_name,
                ",".join(c.numbers) or "-",
                ",".join(c.forwarded_from) or "-",
                _agreement(c),
            )
            for c in customers
        ),
    )


# --- agents -----------------------------------------------------------------------------


def agent_state(agent: Agent) -> str:
    if not agent.logged_in:
        return "logged out"
    return "paused" if agent.paused else "logged in"


def agent_json(
    agent: Agent, customers: Mapping[int, Customer], credentials: AgentCredentials | None
) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "endpoint": agent.endpoint,
        "contact": credentials.contact if credentials else None,
        "has_secret": bool(credentials and credentials.secret),
        "logged_in": agent.logged_in,
        "paused": agent.paused,
        "customers": [
            {"id": cid, "name": customers[cid].name, "priority": agent.priority(cid)}
            for cid in sorted(agent.customer_ids)
            if cid in customers
        ],
    }


def agents_table(
    agents: Iterable[Agent],
    customers: Mapping[int, Customer],
    credentials: Mapping[int, AgentCredentials],
) -> str:
    def served(agent: Agent) -> str:
        return ", ".join(
            f"{customers[cid].name}:{agent.priority(cid)}"
            for cid in sorted(agent.customer_ids)
            if cid in customers
        )

    return table(
        ("ID", "NAME", "ENDPOINT", "STATE", "SECRET", "CUSTOMERS (NAME:PRIORITY)"),
        (
            (
                str(a.id),
                a.name,
                a.endpoint,
                agent_state(a),
                "set" if (c := credentials.get(a.id)) and c.secret else "MISSING",
                served(a) or "-",
            )
            for a in agents
        ),
    )


# --- bookings ---------------------------------------------------------------------------


def booking_json(customer: Customer, booking: Booking) -> dict[str, Any]:
    zone = ZoneInfo(customer.timezone)
    return {
        "customer_id": customer.id,
        "customer": customer.name,
        "starts_at": booking.starts_at.astimezone(zone).isoformat(),
        "ends_at": booking.ends_at.astimezone(zone).isoformat(),
    }


def bookings_table(customer: Customer, bookings: Iterable[Booking]) -> str:
    zone = ZoneInfo(customer.timezone)
    return table(
        (f"FROM ({customer.timezone})", "TO"),
        (
            (
                f"{b.starts_at.astimezone(zone):%Y-%m-%d %H:%M}",
                f"{b.ends_at.astimezone(zone):%Y-%m-%d %H:%M}",
            )
            for b in bookings
        ),
    )
