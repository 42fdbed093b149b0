"""``televikar-pbx messages take|list|show|resend`` and ``customers form|recipients``, run
in-process (``cli.main``) against a migrated database on SQLite and PostgreSQL, with the
clock set by ``TELEVIKAR_NOW``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from televikar_pbx.cli import main
from televikar_pbx.clock import ShiftedClock
from televikar_pbx.db import models
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import CallRepository
from tests.helpers import run_async
from tests.integration.test_cli import Cli, free_port
from tests.integration.test_message_outbox import settings as smtp_settings
from tests.integration.test_message_outbox import worker_for
from tests.mailserver import Mailbox, Servers

NOW = "2026-12-03T10:15:00+01:00"
ORDER = ("--field", "name=Per Hansen", "--field", "phone=912 34 567",
         "--field", "product=Kransekake", "--field", "quantity=2",
         "--field", "call_back=ja")  # fmt: skip
DAY = ("--from", "2026-12-03", "--to", "2026-12-03")


@pytest.fixture
def cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Cli:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    monkeypatch.setenv("TELEVIKAR_NOW", NOW)
    cli = Cli(capsys, db_url)
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
           "--number", "4721000001")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number", "4721000002")
    cli.ok("agents", "add", "Kari Nordmann", "--endpoint", "agent1", "--customer", "1",
           "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    return cli


def count(db_url: str, table: type[models.Base]) -> int:
    async def read() -> int:
        engine = make_engine(db_url)
        try:
            async with make_sessionmaker(engine)() as s:
                return int(await s.scalar(select(func.count()).select_from(table)) or 0)
        finally:
            await engine.dispose()

    return run_async(read)


def add_call(db_url: str, customer_id: int, caller: str | None) -> int:
    async def write() -> int:
        engine = make_engine(db_url)
        try:
            arrived = dt.datetime(2026, 12, 3, 9, 14, tzinfo=dt.UTC)
            repo = CallRepository(make_sessionmaker(engine))
            return await repo.create_call(
                f"chan-{caller}", None, customer_id, "4721000001", caller, None, arrived
            )
        finally:
            await engine.dispose()

    return run_async(write)


def test_an_order_with_wrong_fields_is_refused_field_by_field_and_saves_nothing(
    cli: Cli,
) -> None:
    result = cli("messages", "take", "--customer", "Fjordbakst AS", "--kind", "order",
                 "--field", "name=Per", "--field", "phone=12", "--field", "colour=red")  # fmt: skip
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines() == [
        "televikar-pbx: messages take: Telefon: «12» er ikke et gyldig telefonnummer",
        "televikar-pbx: messages take: Vare eller tjeneste: må fylles ut",
        "televikar-pbx: messages take: Antall: må fylles ut",
        "televikar-pbx: messages take: Ring tilbake: må fylles ut",
        "televikar-pbx: messages take: colour: finnes ikke i skjemaet",
    ]
    for table in (models.Message, models.MessageLogEntry, models.OutboxItem, models.MessageForm):
        assert count(cli.db_url, table) == 0, table.__tablename__


def test_take_list_show_and_resend(cli: Cli) -> None:
    cli.ok("customers", "recipients", "add", "Fjordbakst AS", "--email", "post@fjordbakst.example")
    cli.ok("customers", "recipients", "add", "1", "--sms", "912 00 001", "--urgent-only")
    call = add_call(cli.db_url, 1, "+4791234567")
    taken = cli.ok("messages", "take", "--customer", "Fjordbakst AS", "--kind", "order", *ORDER,
                   "--agent", "agent1")  # fmt: skip
    assert taken.out == "took order 1 for customer 1 'Fjordbakst AS'\n"
    # On a call: the phone field starts with the caller's number; urgent: SMS too.
    note = cli.ok("messages", "take", "--customer", "1", "--kind", "message", "--call", str(call),
                  "--field", "name=Kari", "--field", "subject=Faktura 1234",
                  "--field", "call_back=nei", "--urgent")  # fmt: skip
    assert note.out.startswith("took message 2 ")
    assert count(cli.db_url, models.OutboxItem) == 1 + 2

    listed = cli.ok("messages", "list", "--customer", "1", *DAY, "--format", "json").json()
    assert [(m["id"], m["kind"], m["urgent"], m["status"]) for m in listed] == [
        (1, "order", False, "new"),
        (2, "message", True, "new"),
    ]
    order, message = listed
    assert order["taken_at"].startswith("2026-12-03T10:15:0") and order["agent"] == "Kari Nordmann"
    assert {f["key"]: f["value"] for f in order["fields"]}["phone"] == "+4791234567"
    assert message["call_id"] == call and message["caller_number"] == "+4791234567"
    assert {f["label"]: f["value"] for f in message["fields"]}["Telefon"] == "+4791234567"

    table = cli.ok("messages", "list", "--customer", "1", *DAY).out.splitlines()
    assert table[0].split() == ["ID", "Dato", "Tid", "Type", "Innringer", "Haster", "Status",
                                "Agent", "Innhold"]  # fmt: skip
    assert "Bestilling" in table[1] and "Navn: Per Hansen; Telefon: +47 91 23 45 67" in table[1]

    raw = cli.ok("messages", "list", "--customer", "1", *DAY, "--format", "csv").out
    assert raw.startswith("\ufeffID;Dato;Tid;Type;Innringer;Haster;Status;Agent;Innhold\r\n")
    rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff")), delimiter=";"))
    assert rows[2][3:7] == ["Beskjed", "'+4791234567", "Ja", "Ny"]  # formula-neutralised

    assert cli.ok("messages", "list", "--customer", "1", *DAY, "--status", "sent",
                  "--format", "json").json() == []  # fmt: skip
    assert cli.ok("messages", "list", "--customer", "2", *DAY, "--format", "json").json() == []
    earlier = ("--from", "2026-12-02", "--to", "2026-12-02", "--format", "json")
    assert cli.ok("messages", "list", "--customer", "1", *earlier).json() == []

    shown = cli.ok("messages", "show", "1").out
    fields = [" ".join(line.split()) for line in shown.splitlines() if line.startswith("  ")]
    assert "Vare eller tjeneste: Kransekake" in fields
    assert "Ring tilbake: Ja" in fields and "Antall: 2" in fields
    assert "Ønsket leveringsdato: -" in fields
    assert "new  Kari Nordmann  order taken" in shown
    detail = cli.ok("messages", "show", "2", "--json").json()
    assert detail["customer"] == "Fjordbakst AS" and detail["log"][0]["status"] == "new"

    assert cli.ok("messages", "resend", "2").out == "message 2: 2 deliveries queued\n"
    assert count(cli.db_url, models.OutboxItem) == 5
    assert [e["status"] for e in cli.ok("messages", "show", "2", "--json").json()["log"]] == [
        "new",
        "resend",
    ]


def test_message_errors_are_one_line(cli: Cli) -> None:
    for argv, match in [
        (("messages", "show", "99"), "no message with id 99"),
        (("messages", "resend", "99"), "no message with id 99"),
        (("messages", "take", "--customer", "1", "--kind", "order", "--field", "name"),
         "--field 'name': write KEY=VALUE"),
        (("messages", "take", "--customer", "Nobody", "--kind", "order", *ORDER), "no customer"),
        (("messages", "take", "--customer", "1", "--kind", "order", *ORDER, "--agent", "x"),
         "no agent 'x'"),
        (("messages", "list", "--customer", "1", "--from", "2026-12-04", "--to", "2026-12-03"),
         "is after --to"),
    ]:  # fmt: skip
        result = cli.fails(*argv, match=match)
        assert result.err.count("\n") == 1
    assert count(cli.db_url, models.Message) == 0
    other = add_call(cli.db_url, 2, "+4791234567")
    cli.fails("messages", "take", "--customer", "1", "--kind", "order", *ORDER,
              "--call", str(other), match="not a call of customer 1")  # fmt: skip


def test_forms_show_edit_and_versions(cli: Cli, tmp_path: Path) -> None:
    shown = cli.ok("customers", "form", "show", "1", "--kind", "message").json()
    assert [f["key"] for f in shown["fields"]] == ["name", "phone", "company", "subject",
                                                   "call_back"]  # fmt: skip
    cli.ok("messages", "take", "--customer", "1", "--kind", "message", "--field", "name=Per",
           "--field", "phone=22334455", "--field", "subject=Hei",
           "--field", "call_back=ja")  # fmt: skip

    as_yaml = cli.ok("customers", "form", "show", "1", "--kind", "message", "--format", "yaml")
    assert as_yaml.out.startswith("# Fjordbakst AS: message form, version 1\n")
    definition = yaml.safe_load(as_yaml.out)
    assert definition == shown
    definition["fields"][0]["label"] = "Innringer"
    definition["fields"].append({"key": "dept", "label": "Avdeling", "type": "choice",
                                 "choices": ["Salg", "Service"], "required": True})  # fmt: skip
    path = tmp_path / "form.yaml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True), encoding="utf-8")
    edited = cli.ok("customers", "form", "edit", "1", "--kind", "message", "--file", str(path))
    assert edited.out == "customer 1 'Fjordbakst AS': message form version 2 saved\n"
    again = cli.ok("customers", "form", "edit", "1", "--kind", "message", "--file", str(path))
    assert again.out == "customer 1 'Fjordbakst AS': message form unchanged (version 2)\n"
    as_json = tmp_path / "form.json"
    as_json.write_text(json.dumps(definition), encoding="utf-8")
    cli.ok("customers", "form", "edit", "1", "--kind", "message", "--file", str(as_json))
    assert count(cli.db_url, models.MessageForm) == 2

    # The old message keeps its version's labels; a new one needs the new field.
    assert "  Navn:" in cli.ok("messages", "show", "1").out
    refused = cli("messages", "take", "--customer", "1", "--kind", "message", "--field",
                  "name=Per", "--field", "phone=22334455", "--field", "subject=Hei",
                  "--field", "call_back=ja", "--field", "dept=Lager")  # fmt: skip
    assert refused.code == 1
    assert refused.err == (
        "televikar-pbx: messages take: Avdeling: «Lager» er ikke et av valgene: Salg, Service\n"
    )
    cli.ok("messages", "take", "--customer", "1", "--kind", "message", "--field", "name=Per",
           "--field", "phone=22334455", "--field", "subject=Hei", "--field", "call_back=ja",
           "--field", "dept=salg")  # fmt: skip
    new = cli.ok("messages", "show", "2", "--json").json()
    assert new["form_version"] == 2
    assert {f["label"]: f["value"] for f in new["fields"]}["Avdeling"] == "Salg"
    assert "  Innringer:" in cli.ok("messages", "show", "2").out


def test_a_wrong_form_lists_every_problem_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"fields": [
        {"key": "Name", "label": "Navn", "type": "text"},
        {"key": "when", "label": "", "type": "time"},
        {"key": "when", "label": "Når", "type": "date", "choices": ["a"]},
    ]}), encoding="utf-8")  # fmt: skip
    result = cli("customers", "form", "edit", "1", "--kind", "order", "--file", str(path))
    assert result.code == 1 and result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith("televikar-pbx: customers form edit: ") for line in lines)
    assert "fields[1].label: a non-empty text is required" in result.err
    assert "fields[1].type: 'time' is not one of" in result.err
    assert "fields: the key 'when' is used more than once" in result.err
    assert count(cli.db_url, models.MessageForm) == 0
    path.write_text("fields: [unclosed", encoding="utf-8")
    yaml_path = path.with_suffix(".yaml")
    path.rename(yaml_path)
    cli.fails("customers", "form", "edit", "1", "--kind", "order", "--file", str(yaml_path),
              match="not YAML")  # fmt: skip
    cli.fails("customers", "form", "edit", "1", "--kind", "order", "--file",
              str(tmp_path / "none.json"), match="No such file")  # fmt: skip


def test_recipients_add_list_remove(cli: Cli) -> None:
    cli.ok("customers", "recipients", "add", "1", "--email", "Kari@Fjordbakst.example",
           "--name", "Kari", "--digest")  # fmt: skip
    added = cli.ok("customers", "recipients", "add", "1", "--sms", "912 00 001", "--urgent-only")
    assert added.out == "customer 1 'Fjordbakst AS': added sms +4791200001\n"
    listed = cli.ok("customers", "recipients", "list", "1", "--json").json()
    assert [(r["channel"], r["address"], r["urgent_only"], r["digest"], r["name"])
            for r in listed] == [
        ("email", "Kari@fjordbakst.example", False, True, "Kari"),
        ("sms", "+4791200001", True, False, None),
    ]  # fmt: skip
    table = cli.ok("customers", "recipients", "list", "1").out
    assert "urgent only" in table and "daily" in table
    assert cli.ok("customers", "recipients", "list", "2", "--json").json() == []

    cli.fails("customers", "recipients", "add", "1", "--email", "not-an-address",
              match="ikke en gyldig e-postadresse")  # fmt: skip
    cli.fails("customers", "recipients", "add", "1", "--sms", "91200002", "--digest",
              match="only an e-mail recipient can get a daily digest")  # fmt: skip
    cli.fails("customers", "recipients", "add", "1", "--sms", "+47 912 00 001",
              match="already listed")  # fmt: skip
    cli.fails("customers", "recipients", "remove", "2", "--sms", "91200001",
              match="no sms recipient")  # fmt: skip
    removed = cli.ok("customers", "recipients", "remove", "1", "--sms", "912 00 001")
    assert removed.out == "customer 1 'Fjordbakst AS': removed sms +4791200001\n"
    assert len(cli.ok("customers", "recipients", "list", "1", "--json").json()) == 1
    assert main(["customers", "recipients", "add", "1"]) == 2  # --email or --sms


def test_voice_delivery_choice_on_customers_add_and_edit(cli: Cli) -> None:
    assert cli.ok("customers", "show", "1", "--json").json()["voice_delivery"] == "attachment"
    cli.ok("customers", "edit", "1", "--voice-delivery", "link")
    assert cli.ok("customers", "show", "1", "--json").json()["voice_delivery"] == "link"
    assert "voice messages:    link (e-mail)" in cli.ok("customers", "show", "1").out
    cli.ok("customers", "add", "Tom AS", "--display-name", "Tom", "--number", "4721000003",
           "--voice-delivery", "link")  # fmt: skip
    cli.ok("customers", "edit", "1", "--voice-delivery", "attachment", "--display-name", "F")
    listed = cli.ok("customers", "list", "--json").json()
    assert [(c["name"], c["display_name"], c["voice_delivery"]) for c in listed] == [
        ("Fjordbakst AS", "F", "attachment"),
        ("Nordlys AS", "Nordlys", "attachment"),
        ("Tom AS", "Tom", "link"),
    ]
    assert main(["customers", "edit", "1", "--voice-delivery", "fax"]) == 2


def test_escalation_on_customers_add_and_edit(cli: Cli) -> None:
    assert cli.ok("customers", "show", "1", "--json").json()["escalate_after_min"] is None
    assert "urgent messages:   to every recipient at once" in cli.ok("customers", "show", "1").out
    cli.ok("customers", "edit", "1", "--escalate-after", "10")
    assert cli.ok("customers", "show", "1", "--json").json()["escalate_after_min"] == 10
    assert "not acknowledged within 10 min" in cli.ok("customers", "show", "1").out
    cli.ok("customers", "add", "Tom AS", "--display-name", "Tom", "--number", "4721000003",
           "--escalate-after", "5")  # fmt: skip
    cli.ok("customers", "edit", "1", "--escalate-after", "none", "--display-name", "F")
    listed = cli.ok("customers", "list", "--json").json()
    assert [(c["name"], c["display_name"], c["escalate_after_min"]) for c in listed] == [
        ("Fjordbakst AS", "F", None),
        ("Nordlys AS", "Nordlys", None),
        ("Tom AS", "Tom", 5),
    ]
    for wrong in ("0", "1441", "ti", "2.5"):
        assert main(["customers", "edit", "1", "--escalate-after", wrong]) == 2
    assert cli.ok("customers", "show", "Tom AS", "--json").json()["escalate_after_min"] == 5


def test_an_urgent_message_escalates_to_the_next_recipient_from_the_command_line(
    cli: Cli,
) -> None:
    """`messages take --urgent` for a customer set with --escalate-after queues only the
    first person on the list; the worker queues the next 10 minutes later."""
    cli.ok("customers", "edit", "1", "--escalate-after", "10")
    cli.ok("customers", "recipients", "add", "1", "--email", "kari@fjordbakst.example")
    cli.ok("customers", "recipients", "add", "1", "--email", "ola@fjordbakst.example")
    cli.ok("messages", "take", "--customer", "1", "--kind", "order", "--urgent", *ORDER)
    assert count(cli.db_url, models.OutboxItem) == 1
    inbox, servers = Mailbox(), Servers()
    try:
        port = servers.start(inbox)

        async def deliver(after: dt.timedelta) -> int:
            clock = ShiftedClock(dt.datetime.fromisoformat(NOW) + after)
            engine = make_engine(cli.db_url)
            try:
                worker = worker_for(make_sessionmaker(engine), smtp_settings(port), clock)
                return await worker.run_once()
            finally:
                await engine.dispose()

        assert run_async(lambda: deliver(dt.timedelta(minutes=1))) == 1  # Kari
        assert run_async(lambda: deliver(dt.timedelta(minutes=9))) == 0
        assert run_async(lambda: deliver(dt.timedelta(minutes=10, seconds=1))) == 1  # Ola
    finally:
        servers.stop_all()
    assert [r.rcpt_tos for r in inbox.received] == [
        ["kari@fjordbakst.example"], ["ola@fjordbakst.example"],
    ]  # fmt: skip
    shown = cli.ok("messages", "show", "1", "--json").json()
    notes = [e for e in shown["log"] if e["status"] == "escalation"]
    assert len(notes) == 2 and "step 2 of 2" in json.dumps(notes[1])


def test_a_message_taken_and_resent_on_the_command_line_reaches_the_inbox(cli: Cli) -> None:
    """The rows `messages take` and `resend` write are what the delivery worker sends:
    over a real SMTP server (aiosmtpd), two e-mails with different Message-IDs."""
    cli.ok("customers", "recipients", "add", "1", "--email", "post@fjordbakst.example")
    cli.ok("customers", "recipients", "add", "2", "--email", "post@nordlys.example")
    cli.ok("messages", "take", "--customer", "1", "--kind", "order", *ORDER)
    cli.ok("messages", "resend", "1")
    inbox, servers = Mailbox(), Servers()
    try:
        port = servers.start(inbox)
        clock = ShiftedClock(dt.datetime.fromisoformat(NOW) + dt.timedelta(minutes=1))

        async def deliver() -> int:
            engine = make_engine(cli.db_url)
            try:
                worker = worker_for(make_sessionmaker(engine), smtp_settings(port), clock)
                return await worker.run_once()
            finally:
                await engine.dispose()

        assert run_async(deliver) == 2
        assert run_async(deliver) == 0
    finally:
        servers.stop_all()
    mails = inbox.to("post@fjordbakst.example")
    assert len(mails) == 2 and inbox.to("post@nordlys.example") == []
    assert len({m.message["Message-ID"] for m in mails}) == 2
    assert all("Fjordbakst" in m.message["Subject"] for m in mails)
    body = mails[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Vare eller tjeneste" in body and "Kransekake" in body
    shown = cli.ok("messages", "show", "1", "--json").json()
    assert shown["status"] == "sent"
    # Sent, and resent (the customer lost it): new again until the new e-mail goes out.
    cli.ok("messages", "resend", "1")
    assert cli.ok("messages", "show", "1", "--json").json()["status"] == "new"
    servers = Servers()
    try:
        servers.start(inbox, port)
        assert run_async(deliver) == 1
    finally:
        servers.stop_all()
    assert len(inbox.to("post@fjordbakst.example")) == 3
    assert cli.ok("messages", "show", "1", "--json").json()["status"] == "sent"
    assert [e["status"] for e in shown["log"]].count("sent") == 2


@pytest.mark.parametrize(
    "command",
    [
        ["messages", "take"], ["messages", "list"], ["messages", "show"], ["messages", "resend"],
        ["customers", "form", "show"], ["customers", "form", "edit"],
        ["customers", "recipients", "add"], ["customers", "recipients", "remove"],
        ["customers", "recipients", "list"],
    ],
    ids=" ".join,
)  # fmt: skip
def test_every_new_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: televikar-pbx {' '.join(command)}")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["messages", "take", "--customer", "1"], "required: --kind"),
        (["messages", "take", "--customer", "1", "--kind", "note"], "invalid choice: 'note'"),
        (["messages", "list", "--customer", "1", "--from", "2026-12-01", "--to", "2026-12-02",
          "--status", "lost"], "invalid choice: 'lost'"),
        (["messages", "show", "one"], "invalid int value"),
        (["customers", "form", "edit", "1", "--kind", "order"], "required: --file"),
        (["customers", "recipients", "add", "1", "--email", "a@b.no", "--sms", "91200001"],
         "not allowed with argument"),
    ],
)  # fmt: skip
def test_new_usage_errors_are_one_line(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and match in captured.err


def test_greeting_on_customers_add_and_edit(cli: Cli) -> None:
    assert cli.ok("customers", "show", "1", "--json").json()["greeting"] is None
    shown = cli.ok("customers", "show", "1").out
    assert "greeting:          {kunde}, dette er {agent} (the default)" in shown
    cli.ok("customers", "edit", "1", "--greeting", "{hilsen}, {kunde}, {agent} her")
    assert cli.ok("customers", "show", "1", "--json").json()["greeting"] == (
        "{hilsen}, {kunde}, {agent} her"
    )
    before = cli.ok("customers", "show", "1", "--json").json()
    bad = cli("customers", "edit", "1", "--greeting", "Hei {navn}", "--display-name", "X")
    assert bad.code != 0 and bad.out == ""
    assert bad.err.startswith("televikar-pbx: --greeting: unknown placeholder {navn}")
    assert cli.ok("customers", "show", "1", "--json").json() == before  # nothing written
    cli.ok("customers", "edit", "1", "--greeting", "")
    assert cli.ok("customers", "show", "1", "--json").json()["greeting"] is None
    cli.ok("customers", "add", "Tom AS", "--display-name", "Tom", "--number", "4721000003",
           "--greeting", "Tom, {agent}")  # fmt: skip
    assert cli.ok("customers", "show", "Tom AS", "--json").json()["greeting"] == "Tom, {agent}"
