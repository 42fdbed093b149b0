"""Billing rules (docs/billing.md), with every expected amount computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from televikar_pbx.admin.money import format_kroner, parse_kroner
from televikar_pbx.domain.billing import (
    MAX_PRICE_ORE,
    CustomerMonth,
    Invoice,
    InvoiceLine,
    LineKind,
    Month,
    Prices,
    agreement_days,
    booked_days,
    invoice,
    prorate,
)
from televikar_pbx.domain.calendar import Agreement, Booking

OSLO = ZoneInfo("Europe/Oslo")
MARCH = Month(2026, 3)
FEE = 150_000  # 1 500,00 kr
PRICES = Prices(
    monthly_fee_ore=FEE, call_price_ore=1_250, message_price_ore=800, booking_day_price_ore=40_000
)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def booking(start: datetime, end: datetime) -> Booking:
    return Booking(start.astimezone(UTC), end.astimezone(UTC))  # stored in UTC


def bill(month: Month = MARCH, prices: Prices = PRICES, **inputs: object) -> Invoice:
    return invoice(CustomerMonth(month, "Europe/Oslo", prices, **inputs))  # type: ignore[arg-type]


def fee_line(invoice: Invoice) -> InvoiceLine:
    (line,) = (line for line in invoice.lines if line.kind is LineKind.FIXED_FEE)
    return line


# --- months ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "days"),
    [(Month(2026, 2), 28), (Month(2028, 2), 29), (Month(2000, 2), 29), (Month(2100, 2), 28),
     (Month(2026, 4), 30), (Month(2026, 3), 31), (Month(2026, 12), 31)],
)  # fmt: skip
def test_days_in_month(month: Month, days: int) -> None:
    assert month.days == days
    assert (month.first_day, month.last_day) == (date(month.year, month.month, 1),
                                                 date(month.year, month.month, days))  # fmt: skip


def test_month_parse_and_local_bounds() -> None:
    assert Month.parse(" 2026-03 ") == MARCH and str(MARCH) == "2026-03"
    # Oslo is UTC+1 on 1 March and UTC+2 (summer time since the 29th) on 1 April.
    assert MARCH.bounds("Europe/Oslo") == (
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
    )


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-3", "26-03", "mars", "", "2026-03-01",
                                  "1899-12", "9999-12"])  # fmt: skip
def test_month_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a month YYYY-MM"):
        Month.parse(text)


# --- fixed fee ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "agreement", "days", "amount"),
    [
        # A whole month, whatever its length: the whole fee.
        (MARCH, Agreement(date(2026, 1, 1)), 31, 150_000),
        (Month(2026, 2), Agreement(date(2026, 1, 1)), 28, 150_000),
        (Month(2028, 2), Agreement(date(2026, 1, 1), date(2028, 12, 31)), 29, 150_000),
        (Month(2026, 4), Agreement(date(2026, 4, 1), date(2026, 4, 30)), 30, 150_000),
        # From 15 March: 17 of 31 days; 1500 * 17/31 = 822,5806... -> 822,58 kr.
        (MARCH, Agreement(date(2026, 3, 15)), 17, 82_258),
        # Until 10 March, the end day included: 1500 * 10/31 = 483,8709... -> 483,87 kr.
        (MARCH, Agreement(date(2025, 6, 1), date(2026, 3, 10)), 10, 48_387),
        # 10..20 March: 11 days; 1500 * 11/31 = 532,2580... -> 532,26 kr.
        (MARCH, Agreement(date(2026, 3, 10), date(2026, 3, 20)), 11, 53_226),
        # One day: 1500 / 31 = 48,3870... -> 48,39 kr.
        (MARCH, Agreement(date(2026, 3, 31)), 1, 4_839),
        # February 2026 from the 15th: 14 of 28 days, exactly half.
        (Month(2026, 2), Agreement(date(2026, 2, 15)), 14, 75_000),
        # February 2028 (leap) from the 15th: 15 of 29; 1500 * 15/29 = 775,862... -> 775,86.
        (Month(2028, 2), Agreement(date(2028, 2, 15)), 15, 77_586),
        # April from the 11th: 20 of 30 days: 1000 kr.
        (Month(2026, 4), Agreement(date(2026, 4, 11)), 20, 100_000),
    ],
)
def test_fixed_fee_prorated_by_agreement_days(
    month: Month, agreement: Agreement, days: int, amount: int
) -> None:
    result = bill(month, agreement=agreement)
    assert result.lines == (
        InvoiceLine(LineKind.FIXED_FEE, days, FEE, amount, days_in_month=month.days),
    )
    assert result.total_ore == amount


@pytest.mark.parametrize(
    "agreement",
    [None, Agreement(date(2026, 4, 1)), Agreement(date(2025, 1, 1), date(2026, 2, 28))],
)
def test_no_agreement_in_the_month_no_fee_line(agreement: Agreement | None) -> None:
    assert agreement_days(agreement, MARCH) == 0
    assert bill(agreement=agreement) == Invoice(MARCH, ())


@pytest.mark.parametrize(
    ("fee", "days", "days_in_month", "expected"),
    [
        (1, 15, 30, 1),  # 0,5 øre: half up
        (1, 14, 30, 0),  # 0,4666... øre
        (2, 7, 28, 1),  # 0,5 øre
        (100_001, 15, 30, 50_001),  # 50 000,5 øre
        (100_001, 1, 2, 50_001),
        (3, 1, 2, 2),  # 1,5 øre
        (5, 1, 2, 3),  # 2,5 øre: half up, not to even
        (99, 10, 30, 33),  # exact
        (0, 17, 31, 0),
        (MAX_PRICE_ORE, 31, 31, MAX_PRICE_ORE),
    ],
)
def test_prorate_rounds_half_up(fee: int, days: int, days_in_month: int, expected: int) -> None:
    assert prorate(fee, days, days_in_month) == expected


def test_prorate_agrees_with_decimal_half_up() -> None:
    for days_in_month in (28, 29, 30, 31):
        for days in range(days_in_month + 1):
            for fee in (*range(0, 200), 150_000, 99_999, 123_457):
                exact = Decimal(fee * days) / Decimal(days_in_month)
                expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
                assert prorate(fee, days, days_in_month) == expected, (fee, days)


def test_fee_line_at_price_zero_still_shows_the_days() -> None:
    result = bill(prices=Prices(), agreement=Agreement(date(2026, 3, 15)))
    assert result.lines == (InvoiceLine(LineKind.FIXED_FEE, 17, 0, 0, days_in_month=31),)
    assert result.total_ore == 0


# --- calls and messages ---------------------------------------------------------------


def test_calls_and_messages() -> None:
    result = bill(answered_calls=3, messages=2)
    assert result.lines == (
        InvoiceLine(LineKind.ANSWERED_CALLS, 3, 1_250, 3_750),
        InvoiceLine(LineKind.MESSAGES, 2, 800, 1_600),
    )
    assert result.total_ore == 5_350


def test_orders_at_the_order_price_after_messages() -> None:
    prices = Prices(call_price_ore=1_250, message_price_ore=800, order_price_ore=2_500)
    result = invoice(CustomerMonth(MARCH, "Europe/Oslo", prices, messages=2, orders=3))
    assert result.lines == (
        InvoiceLine(LineKind.MESSAGES, 2, 800, 1_600),
        InvoiceLine(LineKind.ORDERS, 3, 2_500, 7_500),
    )
    assert result.total_ore == 9_100
    with pytest.raises(ValueError, match="orders must be at least 0"):
        CustomerMonth(MARCH, "Europe/Oslo", prices, orders=-1)


def test_no_activity_no_lines() -> None:
    assert bill() == Invoice(MARCH, ())
    assert bill().total_ore == 0


# --- booked days ----------------------------------------------------------------------


def test_a_booking_across_midnight_touches_two_days() -> None:
    result = bill(bookings=(booking(oslo(2026, 3, 10, 22), oslo(2026, 3, 11, 2)),))
    assert result.lines == (InvoiceLine(LineKind.BOOKED_DAYS, 2, 40_000, 80_000),)


def test_a_booking_ending_at_midnight_does_not_touch_the_next_day() -> None:
    days = booked_days([booking(oslo(2026, 3, 12, 8), oslo(2026, 3, 13))], MARCH, "Europe/Oslo")
    assert days == {date(2026, 3, 12)}


def test_a_day_with_two_bookings_counts_once() -> None:
    bookings = (
        booking(oslo(2026, 3, 12, 8), oslo(2026, 3, 12, 10)),
        booking(oslo(2026, 3, 12, 14), oslo(2026, 3, 12, 16)),
        booking(oslo(2026, 3, 12, 23), oslo(2026, 3, 13, 1)),
    )
    assert bill(bookings=bookings).lines == (InvoiceLine(LineKind.BOOKED_DAYS, 2, 40_000, 80_000),)


def test_booked_days_are_local_dates_across_dst_changes() -> None:
    zone = "Europe/Oslo"
    # Spring: 28 March 23:00 to 29 March 03:30 (02:00-03:00 does not exist): two dates.
    spring = booking(oslo(2026, 3, 28, 23), oslo(2026, 3, 29, 3, 30))
    assert booked_days([spring], MARCH, zone) == {date(2026, 3, 28), date(2026, 3, 29)}
    # Autumn: the whole of 25 October, 25 hours long; in UTC it runs from the 24th 22:00
    # to the 25th 23:00, but it is one local date.
    autumn = booking(oslo(2026, 10, 25), oslo(2026, 10, 26))
    assert autumn.starts_at == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert autumn.ends_at == datetime(2026, 10, 25, 23, tzinfo=UTC)
    assert booked_days([autumn], Month(2026, 10), zone) == {date(2026, 10, 25)}


def test_booked_days_are_cut_to_the_local_month() -> None:
    zone = "Europe/Oslo"
    # 27 February .. 2 March (whole days): 1 and 2 March in March.
    across = booking(oslo(2026, 2, 27), oslo(2026, 3, 3))
    assert booked_days([across], MARCH, zone) == {date(2026, 3, 1), date(2026, 3, 2)}
    assert len(booked_days([across], Month(2026, 2), zone)) == 2
    # 28 February 23:30 to 1 March 00:30 local: both UTC ends on 28 February, yet it
    # touches 1 March in Oslo.
    late = booking(oslo(2026, 2, 28, 23, 30), oslo(2026, 3, 1, 0, 30))
    assert late.ends_at.date() == date(2026, 2, 28)
    assert booked_days([late], MARCH, zone) == {date(2026, 3, 1)}
    # Entirely in another month: none.
    assert booked_days([booking(oslo(2026, 4, 1), oslo(2026, 4, 2))], MARCH, zone) == set()


def test_booked_days_inside_the_agreement_are_not_billed_again() -> None:
    bookings = (
        booking(oslo(2026, 3, 10, 22), oslo(2026, 3, 11, 2)),  # 10, 11
        booking(oslo(2026, 3, 14, 22), oslo(2026, 3, 15, 2)),  # 14; 15 is in the agreement
        booking(oslo(2026, 3, 20, 8), oslo(2026, 3, 20, 16)),  # in the agreement
    )
    result = bill(agreement=Agreement(date(2026, 3, 15)), bookings=bookings)
    assert [line.kind for line in result.lines] == [LineKind.FIXED_FEE, LineKind.BOOKED_DAYS]
    assert result.lines[1] == InvoiceLine(LineKind.BOOKED_DAYS, 3, 40_000, 120_000)


def test_a_whole_month() -> None:
    """The example of docs/billing.md."""
    result = bill(
        agreement=Agreement(date(2026, 3, 15)),
        answered_calls=3,
        messages=2,
        bookings=(
            booking(oslo(2026, 3, 10, 22), oslo(2026, 3, 11, 2)),
            booking(oslo(2026, 3, 14, 22), oslo(2026, 3, 15, 2)),
        ),
    )
    assert result.lines == (
        InvoiceLine(LineKind.FIXED_FEE, 17, 150_000, 82_258, days_in_month=31),
        InvoiceLine(LineKind.ANSWERED_CALLS, 3, 1_250, 3_750),
        InvoiceLine(LineKind.MESSAGES, 2, 800, 1_600),
        InvoiceLine(LineKind.BOOKED_DAYS, 3, 40_000, 120_000),
    )
    assert result.total_ore == 82_258 + 3_750 + 1_600 + 120_000 == 207_608
    assert fee_line(result).amount_ore == 82_258


# --- refused input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "prices",
    [
        {"monthly_fee_ore": -1},
        {"call_price_ore": MAX_PRICE_ORE + 1},
        {"message_price_ore": 1.5},
        {"booking_day_price_ore": True},
        {"monthly_fee_ore": "100"},
    ],
)
def test_negative_or_absurd_prices_refused(prices: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="_ore must be"):
        Prices(**prices)  # type: ignore[arg-type]


def test_negative_counts_refused() -> None:
    with pytest.raises(ValueError, match="answered_calls must be at least 0"):
        CustomerMonth(MARCH, "Europe/Oslo", PRICES, answered_calls=-1)
    with pytest.raises(ValueError, match="messages must be"):
        CustomerMonth(MARCH, "Europe/Oslo", PRICES, messages=2.0)  # type: ignore[arg-type]


def test_prorate_refuses_impossible_days() -> None:
    with pytest.raises(ValueError):
        prorate(100, 32, 31)
    with pytest.raises(ValueError):
        prorate(-100, 1, 31)


# --- kroner as typed and shown (admin.money) ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "ore"),
    [("1500", 150_000), ("1500,50", 150_050), ("1500.50", 150_050), ("1500,5", 150_050),
     ("0,29", 29), ("0.01", 1), (" 12 ", 1_200), ("1 500,50", 150_050),
     ("1\u00a0234\u00a0567,89", 123_456_789), ("0", 0), ("007", 700)],
)  # fmt: skip
def test_parse_kroner_exactly(text: str, ore: int) -> None:
    assert parse_kroner(text) == ore


@pytest.mark.parametrize(
    ("text", "match"),
    [("-5", "must not be negative"), ("-0,50", "must not be negative"),
     ("1,005", "at most 2 decimals"), ("0.001", "at most 2 decimals"),
     ("1e3", "not an amount"), ("1,2,3", "not an amount"), ("", "not an amount"),
     ("1500.", "not an amount"), (",50", "not an amount"), ("15 00", "not an amount"),
     ("\u0661\u0662\u0663", "not an amount"), ("9" * 5000, "too large")],
)  # fmt: skip
def test_parse_kroner_refuses(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_kroner(text)


@pytest.mark.parametrize(
    ("ore", "grouped", "shown"),
    [(0, "0,00", "0,00"), (5, "0,05", "0,05"), (82_258, "822,58", "822,58"),
     (123_450, "1 234,50", "1234,50"), (100_000_000, "1 000 000,00", "1000000,00")],
)  # fmt: skip
def test_format_kroner(ore: int, grouped: str, shown: str) -> None:
    assert format_kroner(ore) == grouped
    assert format_kroner(ore, grouped=False) == shown
    assert parse_kroner(grouped) == parse_kroner(shown) == ore
