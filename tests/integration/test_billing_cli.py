"""``televikar-pbx billing month`` and the customers' prices, run in-process against a
migrated database on SQLite and PostgreSQL (``db_url``), with calls written through the
real repositories. Every amount below is computed by hand (docs/billing.md).

March 2026 in Oslo (31 days; UTC+1, then UTC+2 from the 29th):

- Fjordbakst AS: agreement from 15 March (17 of 31 days) at 1 500,00 kr a month;
  12,50 kr a call, 8,00 kr a message, 400,00 kr a booked day. Three answered calls and
  two messages arrived in its local March; bookings touch 10, 11, 14 and 15 March, and
  15 March is in the agreement. 822,58 + 37,50 + 16,00 + 1 200,00 = 2 076,08 kr.
- Nordlys AS: no agreement; 10,00 kr a call, messages free, 250,50 kr a booked day. Two
  answered calls, one message; booked 5 March and 31 March 22:00 to 1 April 02:00.
  20,00 + 0,00 + 501,00 = 521,00 kr.
- Tom AS: nothing at all.

Total 2 597,08 kr.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from televikar_pbx.cli import main
from tests.integration.test_calls_list import add_calls, at
from tests.integration.test_cli import Cli, free_port

FJORD, NORDLYS = 1, 2
KARI = 1
CSV_HEADER = [
    "Kunde-ID", "Kunde", "Linje", "Antall", "Enhetspris (kr)", "Beløp (kr)",
    "Enhetspris (øre)", "Beløp (øre)",
]  # fmt: skip


@pytest.fixture
def cli(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    return Cli(capsys, db_url)


def answered(customer: int | None, arrived: str) -> dict[str, Any]:
    return {"customer": customer, "arrived": at(arrived), "caller": "4790000000",
            "agent": KARI, "answered": 3, "ended": 60, "outcome": "answered"}  # fmt: skip


def message(customer: int, arrived: str, outcome: str = "message") -> dict[str, Any]:
    call = {"customer": customer, "arrived": at(arrived), "caller": "4790000001",
            "queue_left": 45, "ended": 75, "outcome": outcome}  # fmt: skip
    if outcome == "message":
        call["message"] = f"/msgs/{customer}/msg-{arrived[:10]}.wav"
    return call


def ended(customer: int | None, arrived: str, outcome: str) -> dict[str, Any]:
    return {"customer": customer, "arrived": at(arrived), "ended": 5, "outcome": outcome}


CALLS = [
    # Fjordbakst, instants in UTC.
    answered(FJORD, "2026-02-28 22:59:00"),  # 23:59 on 28 February in Oslo: February
    answered(FJORD, "2026-02-28 23:30:00"),  # 00:30 on 1 March in Oslo
    answered(FJORD, "2026-03-10 09:00:00"),
    answered(FJORD, "2026-03-31 21:59:59"),  # 23:59:59 on 31 March (UTC+2)
    answered(FJORD, "2026-03-31 22:00:00"),  # 00:00 on 1 April: April
    ended(FJORD, "2026-03-12 08:00:00", "abandoned"),
    message(FJORD, "2026-03-12 10:00:00"),
    message(FJORD, "2026-03-20 10:00:00"),
    message(FJORD, "2026-03-21 10:00:00", outcome="no_message"),  # nothing recorded
    {"customer": FJORD, "arrived": at("2026-03-22 10:00:00")},  # still going on
    # Nordlys, partly at the same moments.
    answered(NORDLYS, "2026-03-05 10:00:00"),
    answered(NORDLYS, "2026-03-10 09:00:00"),
    message(NORDLYS, "2026-03-12 10:00:00"),
    ended(NORDLYS, "2026-03-13 10:00:00", "abandoned"),
    # A number of no customer's.
    ended(None, "2026-03-10 09:00:00", "unknown_number"),
]


@pytest.fixture
def month(cli: Cli) -> Cli:
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
           "--number", "4721000001", "--agreement-start", "2026-03-15",
           "--monthly-fee", "1500", "--call-price", "12,50", "--message-price", "8",
           "--booking-day-price", "400.00")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number",
           "4721000002", "--call-price", "10", "--booking-day-price", "250,5")  # fmt: skip
    cli.ok("customers", "add", "Tom AS", "--display-name", "Tom", "--number", "4721000003")
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1",
           "--customer", "2", "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    for customer, start, end in [
        ("1", "2026-03-10 22:00", "2026-03-11 02:00"),  # 10 and 11 March
        ("1", "2026-03-14 22:00", "2026-03-15 02:00"),  # 14; 15 is in the agreement
        ("1", "2026-03-20 08:00", "2026-03-20 16:00"),  # in the agreement
        ("2", "2026-02-10", "2026-02-10"),  # February
        ("2", "2026-03-05", "2026-03-05"),
        ("2", "2026-03-31 22:00", "2026-04-01 02:00"),  # 31 March
    ]:
        cli.ok("bookings", "add", "--customer", customer, "--from", start, "--to", end)
    add_calls(cli.db_url, CALLS)
    return cli


def cells(text: str) -> list[list[str]]:
    """The table's rows as cells (columns are 2 or more spaces apart)."""
    return [[c for c in line.strip().split("  ") if c.strip()] for line in text.splitlines()]


def cleaned(rows: list[list[str]]) -> list[list[str]]:
    return [[c.strip() for c in row] for row in rows]


def csv_rows(out: str) -> list[list[str]]:
    assert out.startswith("\ufeff") and out.endswith("\r\n")
    return list(csv.reader(io.StringIO(out.removeprefix("\ufeff"), newline=""), delimiter=";"))


FJORD_CSV = [
    ["1", "Fjordbakst AS", "Fast månedspris (17/31 dager)", "17", "1500,00", "822,58",
     "150000", "82258"],
    ["1", "Fjordbakst AS", "Besvarte samtaler", "3", "12,50", "37,50", "1250", "3750"],
    ["1", "Fjordbakst AS", "Beskjeder", "2", "8,00", "16,00", "800", "1600"],
    ["1", "Fjordbakst AS", "Bookede dager", "3", "400,00", "1200,00", "40000", "120000"],
    ["1", "Fjordbakst AS", "Sum", "", "", "2076,08", "", "207608"],
]  # fmt: skip
NORDLYS_CSV = [
    ["2", "Nordlys AS", "Besvarte samtaler", "2", "10,00", "20,00", "1000", "2000"],
    ["2", "Nordlys AS", "Beskjeder", "1", "0,00", "0,00", "0", "0"],
    ["2", "Nordlys AS", "Bookede dager", "2", "250,50", "501,00", "25050", "50100"],
    ["2", "Nordlys AS", "Sum", "", "", "521,00", "", "52100"],
]  # fmt: skip


def test_table(month: Cli) -> None:
    out = month.ok("billing", "month", "2026-03").out
    assert cleaned(cells(out)) == [
        ["Fakturagrunnlag mars 2026 (2026-03)"],
        [],
        ["Kunde", "Linje", "Antall", "Enhetspris (kr)", "Beløp (kr)"],
        ["Fjordbakst AS", "Fast månedspris (17/31 dager)", "17", "1 500,00", "822,58"],
        ["Besvarte samtaler", "3", "12,50", "37,50"],
        ["Beskjeder", "2", "8,00", "16,00"],
        ["Bookede dager", "3", "400,00", "1 200,00"],
        ["Sum", "2 076,08"],
        [],
        ["Nordlys AS", "Besvarte samtaler", "2", "10,00", "20,00"],
        ["Beskjeder", "1", "0,00", "0,00"],
        ["Bookede dager", "2", "250,50", "501,00"],
        ["Sum", "521,00"],
        [],
        ["Tom AS", "(ingen linjer)"],
        ["Sum", "0,00"],
        [],
        ["Totalt", "Sum alle kunder", "2 597,08"],
    ]
    lines = out.splitlines()
    # Amounts flush right: the column ends at the same place on every row.
    assert lines[3].endswith("822,58") and lines[6].endswith("1 200,00")
    assert len(lines[3]) == len(lines[6]) == len(lines[-1])


def test_csv(month: Cli) -> None:
    out = month.ok("billing", "month", "2026-03", "--format", "csv").out
    assert out.count("\r\n") == 12 and "\n" not in out.replace("\r\n", "")
    assert csv_rows(out) == [
        CSV_HEADER,
        *FJORD_CSV,
        *NORDLYS_CSV,
        ["3", "Tom AS", "Sum", "", "", "0,00", "", "0"],
        ["", "Totalt", "Sum alle kunder", "", "", "2597,08", "", "259708"],
    ]


def test_one_customer(month: Cli) -> None:
    out = month.ok("billing", "month", "2026-03", "--customer", "nordlys as", "--format", "csv")
    assert csv_rows(out.out) == [
        CSV_HEADER,
        *NORDLYS_CSV,
        ["", "Totalt", "Sum alle kunder", "", "", "521,00", "", "52100"],
    ]
    table = cleaned(cells(month.ok("billing", "month", "2026-03", "--customer", "1").out))
    assert table[3][0] == "Fjordbakst AS" and table[-1] == ["Totalt", "Sum alle kunder", "2 076,08"]
    assert not [row for row in table if "Nordlys AS" in row or "Tom AS" in row]


def test_another_month(month: Cli) -> None:
    """February: Fjordbakst's agreement has not started (no fee), one answered call at
    23:59 local on the 28th; Nordlys has one booked day."""
    out = month.ok("billing", "month", "2026-02", "--format", "csv").out
    assert csv_rows(out)[1:] == [
        ["1", "Fjordbakst AS", "Besvarte samtaler", "1", "12,50", "12,50", "1250", "1250"],
        ["1", "Fjordbakst AS", "Sum", "", "", "12,50", "", "1250"],
        ["2", "Nordlys AS", "Bookede dager", "1", "250,50", "250,50", "25050", "25050"],
        ["2", "Nordlys AS", "Sum", "", "", "250,50", "", "25050"],
        ["3", "Tom AS", "Sum", "", "", "0,00", "", "0"],
        ["", "Totalt", "Sum alle kunder", "", "", "263,00", "", "26300"],
    ]


def test_each_customer_in_its_own_local_month(cli: Cli) -> None:
    """2026-02-28 22:30 UTC is 23:30 on 28 February in Oslo and 00:30 on 1 March in
    Helsinki: March counts the call for the Helsinki customer only."""
    cli.ok("customers", "add", "Oslo AS", "--display-name", "O", "--number", "4721000001",
           "--call-price", "1")  # fmt: skip
    cli.ok("customers", "add", "Helsinki Oy", "--display-name", "H", "--number", "358900001",
           "--timezone", "Europe/Helsinki", "--call-price", "1")  # fmt: skip
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1",
           "--customer", "2", "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    add_calls(cli.db_url, [answered(1, "2026-02-28 22:30:00"), answered(2, "2026-02-28 22:30:00")])
    march = csv_rows(cli.ok("billing", "month", "2026-03", "--format", "csv").out)
    assert [row[1:4] for row in march[1:-1]] == [
        ["Oslo AS", "Sum", ""], ["Helsinki Oy", "Besvarte samtaler", "1"],
        ["Helsinki Oy", "Sum", ""],
    ]  # fmt: skip
    february = csv_rows(cli.ok("billing", "month", "2026-02", "--format", "csv").out)
    assert [row[1:4] for row in february[1:-1]] == [
        ["Oslo AS", "Besvarte samtaler", "1"], ["Oslo AS", "Sum", ""], ["Helsinki Oy", "Sum", ""],
    ]  # fmt: skip


def test_no_customers(cli: Cli) -> None:
    assert cleaned(cells(cli.ok("billing", "month", "2026-03").out))[-1] == [
        "Totalt", "Sum alle kunder", "0,00",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["2026-13"], "billing month: '2026-13' is not a month YYYY-MM"),
        (["2026-3"], "'2026-3' is not a month YYYY-MM"),
        (["mars"], "'mars' is not a month YYYY-MM"),
        (["2026-03", "--customer", "Nobody AS"], "no customer 'Nobody AS'"),
    ],
)
def test_errors(month: Cli, argv: list[str], match: str) -> None:
    month.fails("billing", "month", *argv, match=match)


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["billing", "month", "2026-03", "--format", "json"]) == 2
    assert main(["billing", "month"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("televikar-pbx: billing month: ") for line in err)
    assert main(["billing", "month", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: televikar-pbx billing month")


# --- prices on customers -----------------------------------------------------------------

ADD = ("customers", "add", "Fjordbakst AS", "--display-name", "F", "--number", "4721000001")


def test_prices_add_show_edit(cli: Cli) -> None:
    cli.ok(*ADD, "--monthly-fee", "1500", "--call-price", "12,50", "--message-price", "8.5",
           "--booking-day-price", "1 000", "--order-price", "25")  # fmt: skip
    shown = cli.ok("customers", "show", "1", "--json").json()
    assert shown["prices"] == {
        "monthly_fee_ore": 150_000,
        "call_price_ore": 1_250,
        "message_price_ore": 850,
        "booking_day_price_ore": 100_000,
        "order_price_ore": 2_500,
    }
    text = cli.ok("customers", "show", "1").out
    assert (
        "prices:            monthly fee 1 500,00 kr, call 12,50 kr, message 8,50 kr,"
        " order 25,00 kr, booked day 1 000,00 kr\n"
    ) in text
    # One price changes; the others stay, also when something else is edited.
    cli.ok("customers", "edit", "1", "--call-price", "0,29")
    cli.ok("customers", "edit", "1", "--display-name", "Fjordbakst")
    after = cli.ok("customers", "show", "1", "--json").json()
    assert after["prices"] == shown["prices"] | {"call_price_ore": 29}
    # What show prints can be given back.
    cli.ok("customers", "edit", "1", "--monthly-fee", "1 500,00")
    assert cli.ok("customers", "show", "1", "--json").json()["prices"]["monthly_fee_ore"] == 150_000


def test_prices_default_to_zero(cli: Cli) -> None:
    cli.ok(*ADD)
    assert set(cli.ok("customers", "show", "1", "--json").json()["prices"].values()) == {0}


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--monthly-fee", "-5"], "--monthly-fee '-5': must not be negative"),
        (["--call-price", "1,005"], "--call-price '1,005': at most 2 decimals (whole øre)"),
        (["--message-price", "ti kroner"], "--message-price 'ti kroner': not an amount in kr"),
        (["--booking-day-price", "1000000,01"],
         "--booking-day-price '1000000,01': at most 1 000 000,00 kr"),
        (["--monthly-fee", "1e3"], "--monthly-fee '1e3': not an amount"),
    ],
)  # fmt: skip
def test_prices_refused(cli: Cli, extra: list[str], match: str) -> None:
    cli.fails(*ADD, *extra, match=match)
    cli.ok(*ADD)
    cli.fails("customers", "edit", "1", *extra, match=match)


# --- messages and orders agents take ------------------------------------------------------

TAKE = {
    "message": ("--field", "name=Per", "--field", "phone=22334455", "--field", "subject=Hei",
                "--field", "call_back=ja"),
    "order": ("--field", "name=Per", "--field", "phone=22334455", "--field", "product=Kake",
              "--field", "quantity=1", "--field", "call_back=nei"),
}  # fmt: skip


def test_messages_taken_by_agents_at_the_message_price_orders_at_the_order_price(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fjordbakst (8,00 kr a message, 25,00 kr an order) in local March 2026: one voice
    message, two messages and two orders taken by agents (one of them at 23:30 on
    31 March, UTC+2); an order at 00:00:30 on 1 April and Nordlys's message are not
    its March. Beskjeder 3 x 8,00 = 24,00; Bestillinger 2 x 25,00 = 50,00."""
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst", "--number",
           "4721000001", "--message-price", "8", "--order-price", "25")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number",
           "4721000002", "--message-price", "5")  # fmt: skip
    add_calls(cli.db_url, [message(FJORD, "2026-03-12 10:00:00")])
    for now, customer, kind in [
        ("2026-03-01T00:00:00+01:00", "1", "message"),
        ("2026-03-15T12:00:00+01:00", "1", "message"),
        ("2026-03-15T12:00:00+01:00", "1", "order"),
        ("2026-03-31T23:30:00+02:00", "1", "order"),
        ("2026-04-01T00:00:30+02:00", "1", "order"),
        ("2026-02-28T23:59:00+01:00", "1", "order"),
        ("2026-03-15T12:00:00+01:00", "2", "message"),
    ]:
        monkeypatch.setenv("TELEVIKAR_NOW", now)
        cli.ok("messages", "take", "--customer", customer, "--kind", kind, *TAKE[kind])
    out = cli.ok("billing", "month", "2026-03", "--format", "csv").out
    rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert rows[1:] == [
        ["1", "Fjordbakst AS", "Beskjeder", "3", "8,00", "24,00", "800", "2400"],
        ["1", "Fjordbakst AS", "Bestillinger", "2", "25,00", "50,00", "2500", "5000"],
        ["1", "Fjordbakst AS", "Sum", "", "", "74,00", "", "7400"],
        ["2", "Nordlys AS", "Beskjeder", "1", "5,00", "5,00", "500", "500"],
        ["2", "Nordlys AS", "Sum", "", "", "5,00", "", "500"],
        ["", "Totalt", "Sum alle kunder", "", "", "79,00", "", "7900"],
    ]
    table = cli.ok("billing", "month", "2026-04", "--customer", "1").out
    assert table.splitlines()[3].split() == ["Fjordbakst", "AS", "Bestillinger", "1", "25,00",
                                             "25,00"]  # fmt: skip
