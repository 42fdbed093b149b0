"""What a customer owes for one month: the pure rules of billing (docs/billing.md).

Theory of operation
-------------------
The caller hands over one customer-month as :class:`CustomerMonth`: the month, the
customer's time zone and :class:`Prices`, its agreement (if any), its bookings (aware
instants; any that overlap the month) and how many answered calls, messages and orders
the month had. :func:`invoice` returns the :class:`Invoice`: one :class:`InvoiceLine`
per kind of charge that has a quantity, and their total. No clock, no I/O.

Money is whole øre (``int``) everywhere; nothing here ever holds a float.

* **The month** is the customer's local calendar month (:class:`Month`): calls count
  by their local arrival, bookings by the local dates they touch.
* **Fixed fee**: the monthly fee * the agreement's days in the month / the month's
  days, in integer arithmetic, rounded half up to whole øre (``(2*f*d + n) // 2n``:
  1 500,00 kr * 17/31 = 822,580… kr → 822,58 kr; 0,01 kr * 15/30 = 0,005 kr → 0,01 kr).
  No agreement, or none in the month: no fee line.
* **Answered calls**, **messages** (a caller's recorded message, outcome ``message``,
  and a message an agent took, kind ``message``) and **orders** (kind ``order``, taken
  by an agent): the counts times their unit prices (the message price for both kinds of
  message, the order price for orders).
* **Booked days**: the distinct local dates in the month that any booking touches
  (``[starts_at, ends_at)``: a booking 22:00-02:00 touches two dates, one ending at
  midnight only the first), except the dates the agreement covers, which the fixed
  fee pays for already; times the price per booked day.
* A line appears when its quantity is above 0, even at a price of 0 (the customer sees
  what was counted); a month without activity has no lines and a total of 0.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from televikar_pbx.domain.calendar import Agreement, Booking

# The highest price we accept: 1 000 000,00 kr (anything above is a typo). Also keeps
# every price well inside a 32-bit INTEGER column.
MAX_PRICE_ORE = 100_000_000
_US = timedelta(microseconds=1)
_MONTH = re.compile(r"(\d{4})-(\d{2})")
# The fields of Prices, which are also the names of the customers table's columns.
PRICE_FIELDS = (
    "monthly_fee_ore",
    "call_price_ore",
    "message_price_ore",
    "booking_day_price_ore",
    "order_price_ore",
)


class LineKind(StrEnum):
    """What an invoice line charges for; the order of the members is the order of lines."""

    FIXED_FEE = "fixed_fee"
    ANSWERED_CALLS = "answered_calls"
    MESSAGES = "messages"
    ORDERS = "orders"
    BOOKED_DAYS = "booked_days"


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month, ``2026-03``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, got {self.month}")
        if not 1900 <= self.year <= 9998:
            raise ValueError(f"year must be 1900..9998, got {self.year}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``'2026-03'``; a ValueError meant for the operator otherwise."""
        match = _MONTH.fullmatch(text.strip())
        try:
            if match is None:
                raise ValueError
            return cls(int(match[1]), int(match[2]))
        except ValueError:
            raise ValueError(f"{text!r} is not a month YYYY-MM") from None

    def __str__(self) -> str:
        return f"{self.year:04}-{self.month:02}"

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, self.days)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """``[start, end)`` of the month in ``timezone``, as UTC instants."""
        zone = ZoneInfo(timezone)
        start = datetime.combine(self.first_day, time(0), tzinfo=zone)
        end = datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


def _check_count(name: str, value: int, limit: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < 0 or (limit is not None and value > limit):
        upper = "" if limit is None else f" and at most {limit}"
        raise ValueError(f"{name} must be at least 0{upper}, got {value}")


@dataclass(frozen=True, slots=True)
class Prices:
    """A customer's prices in øre: 0 to ``MAX_PRICE_ORE`` each (0: free)."""

    monthly_fee_ore: int = 0
    call_price_ore: int = 0
    message_price_ore: int = 0
    booking_day_price_ore: int = 0
    order_price_ore: int = 0

    def __post_init__(self) -> None:
        for name in PRICE_FIELDS:
            _check_count(name, getattr(self, name), MAX_PRICE_ORE)


@dataclass(frozen=True, slots=True)
class CustomerMonth:
    """What billing needs of one customer in one month."""

    month: Month
    timezone: str
    prices: Prices
    agreement: Agreement | None = None
    bookings: tuple[Booking, ...] = ()
    answered_calls: int = 0
    messages: int = 0  # voice messages and messages agents took
    orders: int = 0  # orders agents took

    def __post_init__(self) -> None:
        _check_count("answered_calls", self.answered_calls)
        _check_count("messages", self.messages)
        _check_count("orders", self.orders)
        ZoneInfo(self.timezone)  # an unknown zone fails here, not halfway through


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One charge: ``quantity`` * ``unit_price_ore``, except the fixed fee, whose
    quantity is the agreement's days out of ``days_in_month`` and whose unit price is
    the whole monthly fee (prorated: see the module's docstring)."""

    kind: LineKind
    quantity: int
    unit_price_ore: int
    amount_ore: int
    days_in_month: int | None = None  # the fixed fee only


@dataclass(frozen=True, slots=True)
class Invoice:
    month: Month
    lines: tuple[InvoiceLine, ...] = ()

    @property
    def total_ore(self) -> int:
        return sum(line.amount_ore for line in self.lines)


def prorate(fee_ore: int, days: int, days_in_month: int) -> int:
    """``fee_ore`` * ``days`` / ``days_in_month``, rounded half up to whole øre."""
    _check_count("fee_ore", fee_ore)
    if not 0 <= days <= days_in_month or days_in_month < 1:
        raise ValueError(f"days must be 0..{days_in_month}, got {days}")
    return (2 * fee_ore * days + days_in_month) // (2 * days_in_month)


def agreement_days(agreement: Agreement | None, month: Month) -> int:
    """How many days of ``month`` the agreement covers (its end date included)."""
    if agreement is None:
        return 0
    first = max(agreement.start, month.first_day)
    last = month.last_day if agreement.end is None else min(agreement.end, month.last_day)
    return max(0, (last - first).days + 1)


def booked_days(bookings: Iterable[Booking], month: Month, timezone: str) -> set[date]:
    """The local dates of ``month`` that any of ``bookings`` touches."""
    zone = ZoneInfo(timezone)
    days: set[date] = set()
    for booking in bookings:
        first = booking.starts_at.astimezone(zone).date()
        # The booking ends before ends_at: its last instant is 1 µs earlier (in UTC,
        # so that the subtraction is not wall-clock arithmetic in a DST zone).
        last = (booking.ends_at.astimezone(UTC) - _US).astimezone(zone).date()
        first, last = max(first, month.first_day), min(last, month.last_day)
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return days


def invoice(inputs: CustomerMonth) -> Invoice:
    """The invoice lines of one customer-month, in the order of ``LineKind``."""
    month, prices, agreement = inputs.month, inputs.prices, inputs.agreement
    lines: list[InvoiceLine] = []
    covered = agreement_days(agreement, month)
    if covered:
        fee = prorate(prices.monthly_fee_ore, covered, month.days)
        lines.append(
            InvoiceLine(LineKind.FIXED_FEE, covered, prices.monthly_fee_ore, fee, month.days)
        )
    for kind, quantity, unit in (
        (LineKind.ANSWERED_CALLS, inputs.answered_calls, prices.call_price_ore),
        (LineKind.MESSAGES, inputs.messages, prices.message_price_ore),
        (LineKind.ORDERS, inputs.orders, prices.order_price_ore),
    ):
        if quantity:
            lines.append(InvoiceLine(kind, quantity, unit, quantity * unit))
    booked = booked_days(inputs.bookings, month, inputs.timezone)
    if agreement is not None:
        booked = {day for day in booked if not agreement.covers(day)}
    if booked:
        unit = prices.booking_day_price_ore
        lines.append(InvoiceLine(LineKind.BOOKED_DAYS, len(booked), unit, len(booked) * unit))
    return Invoice(month, tuple(lines))
