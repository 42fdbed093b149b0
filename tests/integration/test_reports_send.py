"""``televikar-pbx reports send`` and ``reports list`` against a real SMTP server (aiosmtpd
on 127.0.0.1, a free port) and a migrated database on SQLite and PostgreSQL (``db_url``).

Customers (Europe/Oslo):

    Fjordbakst AS   daily    ops@fjordbakst.no, sjef@fjordbakst.no
    Nordlys AS      weekly   post@nordlys.no
    Stille AS       none     post@stille.no        (never gets a report)
    Tom AS          daily    (no addresses)        (never gets a report)

Fjordbakst and Nordlys both have calls yesterday and in the last ISO week, at the same
moments; each e-mail must hold only its own customer's calls. "Now" is ``NOW`` (the
``now`` fixture), given to every command as ``TELEVIKAR_NOW``: yesterday and last week
are computed from the same instant as the command's, whatever the real date.

TLS: a test CA and a server certificate for IP 127.0.0.1 are made with the ``openssl``
command; the client trusts the CA only through ``TELEVIKAR_SMTP_CA_FILE``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pypdf import PdfReader

from televikar_pbx.admin.reports import send_due_reports
from televikar_pbx.clock import clock_from_env
from televikar_pbx.db.delivery_repo import DeliveryRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.domain.delivery import ReportPeriod, latest_complete
from televikar_pbx.domain.reporting import ReportInterval
from televikar_pbx.settings import load_settings
from tests.helpers import run_async
from tests.integration.test_calls_list import add_calls
from tests.integration.test_cli import Cli, free_port

OSLO = ZoneInfo("Europe/Oslo")
FJORD, NORDLYS, STILLE, TOM = 1, 2, 3, 4
FJORD_TO = ["ops@fjordbakst.no", "sjef@fjordbakst.no"]
NORDLYS_TO = ["post@nordlys.no"]
SENDER = "Televikar rapport <rapport@televikar.test>"
FJORD_CALLERS = ("4790000001", "4790000002", "4790000003")
NORDLYS_CALLER = "4799999999"
# A Wednesday morning: the commands' "now" (TELEVIKAR_NOW) unless a test names another.
NOW = dt.datetime(2026, 12, 2, 7, 0, tzinfo=OSLO)


# --- the SMTP server --------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what arrives and refuses some recipients."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


@dataclass
class Accounts:
    """An aiosmtpd authenticator with one account; remembers every login tried."""

    user: str
    password: str
    tried: list[tuple[str, str]] = field(default_factory=list)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.tried.append((mechanism, login))
        return AuthResult(success=(login, password) == (self.user, self.password), handled=False)


class Servers:
    """Starts aiosmtpd Controllers on 127.0.0.1; stops them all at the end of the test."""

    def __init__(self) -> None:
        self.running: list[Controller] = []

    def start(self, mailbox: Mailbox, port: int | None = None, **options: Any) -> int:
        port = port or free_port()
        controller = Controller(
            mailbox, hostname="127.0.0.1", port=port, server_hostname="mail.test", **options
        )
        controller.start()
        self.running.append(controller)
        return port

    def stop_all(self) -> None:
        while self.running:
            self.running.pop().stop()


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    try:
        yield started
    finally:
        started.stop_all()


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA, and a certificate it signed for IP 127.0.0.1 (openssl command)."""
    d = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")

    def openssl(*argv: str) -> None:
        subprocess.run(["openssl", *argv], cwd=d, check=True, capture_output=True, timeout=30)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Televikar test CA")  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
        "keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "2", "-days", "2", "-extfile", "server.ext",
            "-out", "server.pem")  # fmt: skip
    return TlsFiles(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key")


# --- customers and calls ----------------------------------------------------------------


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=OSLO).astimezone(dt.UTC)


def today(now: dt.datetime = NOW) -> dt.date:
    return now.astimezone(OSLO).date()


def yesterday(now: dt.datetime = NOW) -> ReportPeriod:
    return latest_complete(ReportInterval.DAILY, today(now))


def last_week(now: dt.datetime = NOW) -> ReportPeriod:
    return latest_complete(ReportInterval.WEEKLY, today(now))


def smtp_env(monkeypatch: pytest.MonkeyPatch, port: int, security: str = "none") -> None:
    monkeypatch.setenv("TELEVIKAR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TELEVIKAR_SMTP_PORT", str(port))
    monkeypatch.setenv("TELEVIKAR_SMTP_SECURITY", security)
    monkeypatch.setenv("TELEVIKAR_SMTP_FROM", SENDER)
    monkeypatch.setenv("TELEVIKAR_SMTP_TIMEOUT_S", "5")


@pytest.fixture
def now() -> dt.datetime:
    """The instant the commands run at; a test overrides it with parametrize("now")."""
    return NOW


@pytest.fixture
def cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, now: dt.datetime
) -> Cli:
    # Every command starts its clock here (time runs on from it while the command runs).
    monkeypatch.setenv("TELEVIKAR_NOW", now.isoformat())
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    for name in ("HOST", "USERNAME", "PASSWORD", "CA_FILE", "FROM", "SECURITY"):
        monkeypatch.delenv(f"TELEVIKAR_SMTP_{name}", raising=False)
    cli = Cli(capsys, db_url)
    customers = [
        ("Fjordbakst AS", "Fjordbakst", "4721000001", "daily", FJORD_TO),
        ("Nordlys AS", "Nordlys Regnskap", "4721000002", "weekly", NORDLYS_TO),
        ("Stille AS", "Stille", "4721000003", "none", ["post@stille.no"]),
        ("Tom AS", "Tom", "4721000004", "daily", []),
    ]
    for name, display, number, interval, emails in customers:
        addresses = [arg for e in emails for arg in ("--report-email", e)]
        cli.ok("customers", "add", name, "--display-name", display, "--number", number,
               "--report-interval", interval, *addresses)  # fmt: skip
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1", "--customer", "2",
           "--customer", "3", "--customer", "4", "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    day, week = yesterday(now).first_day, last_week(now).first_day + dt.timedelta(days=2)
    answered = {"agent": 1, "answered": 4, "ended": 64, "outcome": "answered"}
    add_calls(db_url, [
        {"customer": FJORD, "arrived": local(day, 9), "caller": FJORD_CALLERS[0],
         "name": "Fjord Innringer", **answered},
        {"customer": NORDLYS, "arrived": local(day, 9), "caller": NORDLYS_CALLER,
         "name": "Nordlys Innringer", **answered},
        {"customer": FJORD, "arrived": local(day, 10), "caller": FJORD_CALLERS[1],
         "ended": 30, "outcome": "abandoned"},
        {"customer": STILLE, "arrived": local(day, 11), "caller": "4711111111", **answered},
        {"customer": TOM, "arrived": local(day, 11), "caller": "4722222222", **answered},
        {"customer": NORDLYS, "arrived": local(week, 14), "caller": NORDLYS_CALLER,
         "name": "Nordlys Innringer", **answered},
        {"customer": FJORD, "arrived": local(week, 14), "caller": FJORD_CALLERS[2], **answered},
    ])  # fmt: skip
    return cli


def deliveries(cli: Cli, *customer: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cli.ok("reports", "list", "--json", *customer).json()
    return found


def attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    found = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found[str(part.get_filename())] = (part.get_content_type(), payload)
    return found


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def calls_csv(cli: Cli, customer: str, period: ReportPeriod) -> bytes:
    out = cli.ok("calls", "list", "--customer", customer, "--from", str(period.first_day),
                 "--to", str(period.last_day), "--format", "csv").out  # fmt: skip
    return out.encode("utf-8")


def norwegian(day: dt.date) -> str:
    return f"{day:%d.%m.%Y}"


# --- plain SMTP -------------------------------------------------------------------------


def test_due_reports_arrive_with_only_the_customers_own_calls(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = Mailbox()
    smtp_env(monkeypatch, servers.start(mailbox))
    day, week = yesterday(), last_week()

    out = cli.ok("reports", "send", "--due").out
    assert out.splitlines() == [
        f"Fjordbakst AS {day}: sent to {', '.join(FJORD_TO)}",
        f"Nordlys AS {week}: sent to {', '.join(NORDLYS_TO)}",
    ]
    assert len(mailbox.received) == 2

    # Fjordbakst: yesterday's report, to both addresses, its calls only.
    [fjord] = mailbox.to(FJORD_TO[0])
    assert fjord.rcpt_tos == FJORD_TO and fjord.mail_from == "rapport@televikar.test"
    message = fjord.message
    assert message["From"] == SENDER and message["To"] == ", ".join(FJORD_TO)
    assert message["Subject"] == f"Svartjeneste-rapport for Fjordbakst, {norwegian(day.first_day)}"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Tilbudte anrop: 2, besvarte anrop: 1" in text, text
    assert "SL12 (besvart innen 12 s): 50,0 % (mål minst 70 %: ikke oppfylt)" in text
    assert "Tapte anrop (la på etter mer enn 12 s): 50,0 % (mål høyst 5 %: ikke oppfylt)" in text
    stem = f"fjordbakst-as-{day.first_day}"
    files = attachments(message)
    assert {name: kind for name, (kind, _) in files.items()} == {
        f"svartjeneste-{stem}.pdf": "application/pdf",
        f"anropslogg-{stem}.csv": "text/csv",
        f"sla-{stem}.csv": "text/csv",
    }
    pdf = pdf_text(files[f"svartjeneste-{stem}.pdf"][1])
    assert FJORD_CALLERS[0] in pdf and FJORD_CALLERS[1] in pdf
    assert NORDLYS_CALLER not in pdf and "Nordlys" not in pdf and FJORD_CALLERS[2] not in pdf
    log = files[f"anropslogg-{stem}.csv"][1]
    assert log == calls_csv(cli, "Fjordbakst AS", day)  # the bytes of `calls list`
    assert FJORD_CALLERS[0].encode() in log and NORDLYS_CALLER.encode() not in log
    sla = files[f"sla-{stem}.csv"][1].decode("utf-8-sig").splitlines()
    assert sla[0].startswith("Periode;Tilbudt;Besvart;") and len(sla) == 1 + 24 + 1
    assert sla[-1].startswith("Totalt;2;1;50,0;nei;")

    # Nordlys: last week's report, its own calls only.
    [nordlys] = mailbox.to(NORDLYS_TO[0])
    assert nordlys.rcpt_tos == NORDLYS_TO
    iso = week.first_day.isocalendar()
    assert nordlys.message["Subject"] == (
        f"Svartjeneste-rapport for Nordlys Regnskap, uke {iso.week} {iso.year}"
    )
    nfiles = attachments(nordlys.message)
    nstem = f"nordlys-as-{week.first_day}_{week.last_day}"
    npdf = pdf_text(nfiles[f"svartjeneste-{nstem}.pdf"][1])
    assert NORDLYS_CALLER in npdf and not any(c in npdf for c in FJORD_CALLERS)
    nlog = nfiles[f"anropslogg-{nstem}.csv"][1]
    assert nlog == calls_csv(cli, "Nordlys AS", week)
    assert NORDLYS_CALLER.encode() in nlog
    assert not any(c.encode() in nlog for c in FJORD_CALLERS)
    assert len(nfiles[f"sla-{nstem}.csv"][1].decode("utf-8-sig").splitlines()) == 1 + 7 + 1

    # Recorded; a second run sends nothing; interval none and no addresses got nothing.
    records = deliveries(cli)
    assert [(r["customer"], r["from"], r["to"], r["status"], r["attempts"]) for r in records] == [
        ("Fjordbakst AS", str(day.first_day), str(day.last_day), "sent", 1),
        ("Nordlys AS", str(week.first_day), str(week.last_day), "sent", 1),
    ]
    assert records[0]["recipients"] == FJORD_TO and records[0]["interval"] == "daily"
    assert records[0]["sent_at"] is not None and records[0]["last_error"] is None
    assert cli.ok("reports", "send", "--due").out == "no reports due\n"
    assert len(mailbox.received) == 2
    assert mailbox.to("post@stille.no") == []
    assert cli.ok("reports", "send", "--customer", "Stille AS").out == (
        "Stille AS: nothing due (report interval none)\n"
    )
    assert cli.ok("reports", "send", "--customer", "Tom AS").out == (
        "Tom AS: nothing due (no report addresses)\n"
    )
    assert cli.ok("reports", "send", "--customer", "Fjordbakst AS").out == (
        "Fjordbakst AS: nothing due\n"
    )
    assert len(mailbox.received) == 2 and len(deliveries(cli)) == 2

    table = cli.ok("reports", "list", "--customer", "Fjordbakst AS").out.splitlines()
    assert table[0].split()[:4] == ["CUSTOMER", "PERIOD", "INTERVAL", "STATUS"]
    assert len(table) == 2 and f"{day}  daily     sent    1" in table[1]


def test_server_down_is_recorded_failed_and_sent_once_by_the_next_run(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens yet
    smtp_env(monkeypatch, port)
    day, week = yesterday(), last_week()

    result = cli("reports", "send", "--due")
    assert (result.code, result.out) == (1, "")
    lines = result.err.splitlines()
    assert lines == [
        f"televikar-pbx: Fjordbakst AS {day}: not sent (attempt 1): SMTP 127.0.0.1:{port}: "
        "ConnectionRefusedError: [Errno 111] Connection refused",
        f"televikar-pbx: Nordlys AS {week}: not sent (attempt 1): SMTP 127.0.0.1:{port}: "
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ]
    records = deliveries(cli)
    assert [(r["status"], r["attempts"], r["sent_at"]) for r in records] == [
        ("failed", 1, None),
        ("failed", 1, None),
    ]
    assert "Connection refused" in records[0]["last_error"]

    mailbox = Mailbox()
    servers.start(mailbox, port)
    assert len(cli.ok("reports", "send", "--due").out.splitlines()) == 2
    assert len(mailbox.received) == 2
    assert [(r["status"], r["attempts"], r["last_error"]) for r in deliveries(cli)] == [
        ("sent", 2, None),
        ("sent", 2, None),
    ]
    assert cli.ok("reports", "send", "--due").out == "no reports due\n"
    assert len(mailbox.received) == 2


def test_catch_up_and_explicit_resend(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = Mailbox()
    smtp_env(monkeypatch, servers.start(mailbox))
    day = yesterday().first_day
    three_days_ago = ReportPeriod(day - dt.timedelta(days=3), day - dt.timedelta(days=3))

    async def record_sent() -> None:
        engine = make_engine(cli.db_url)
        try:
            store = DeliveryRepository(make_sessionmaker(engine))
            claimed = await store.claim(FJORD, ReportInterval.DAILY, three_days_ago, FJORD_TO, NOW)
            assert claimed is not None
            await store.mark_sent(claimed.id, NOW)
        finally:
            await engine.dispose()

    run_async(record_sent)
    out = cli.ok("reports", "send", "--customer", "Fjordbakst AS").out.splitlines()
    missed = [day - dt.timedelta(days=n) for n in (2, 1, 0)]
    assert out == [f"Fjordbakst AS {d}: sent to {', '.join(FJORD_TO)}" for d in missed]
    assert len(mailbox.received) == 3

    # An explicit resend of a sent day sends it again, and records it.
    argv = ("reports", "send", "--customer", "Fjordbakst AS", "--from", str(day), "--to", str(day))
    assert cli.ok(*argv).out == f"Fjordbakst AS {day}: sent to {', '.join(FJORD_TO)}\n"
    assert len(mailbox.received) == 4
    record = [r for r in deliveries(cli, "--customer", "1") if r["from"] == str(day)]
    assert [(r["status"], r["attempts"]) for r in record] == [("sent", 2)]

    # Any range, to a customer without an interval; its subject names the dates.
    first = day - dt.timedelta(days=2)
    cli.ok("reports", "send", "--customer", "Stille AS", "--from", str(first), "--to", str(day))
    [stille] = mailbox.to("post@stille.no")
    assert stille.message["Subject"] == (
        f"Svartjeneste-rapport for Stille, {norwegian(first)}\N{EN DASH}{norwegian(day)}"
    )
    log = attachments(stille.message)[f"anropslogg-stille-as-{first}_{day}.csv"][1]
    assert b"4711111111" in log and b"4722222222" not in log
    assert [r["interval"] for r in deliveries(cli, "--customer", "Stille AS")] == ["none"]

    # Not over yet, or nowhere to send it: refused, nothing recorded.
    now = str(today())
    cli.fails("reports", "send", "--customer", "1", "--from", now, "--to", now,
              match=f"{now} is not over yet")  # fmt: skip
    cli.fails("reports", "send", "--customer", "Tom AS", "--from", str(day), "--to", str(day),
              match="Tom AS has no report addresses")  # fmt: skip
    cli.fails("reports", "send", "--due", "--from", str(day), "--to", str(day),
              match="--from and --to need --customer")  # fmt: skip
    cli.fails("reports", "send", "--customer", "1", "--from", str(day), match="give both")
    assert len(mailbox.received) == 5 and len(deliveries(cli)) == 5


def test_refused_recipient_is_reported_and_not_resent(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = Mailbox(refuse={FJORD_TO[1]})
    smtp_env(monkeypatch, servers.start(mailbox))
    day = yesterday()
    result = cli("reports", "send", "--customer", "Fjordbakst AS")
    assert result.code == 1
    assert result.out == f"Fjordbakst AS {day}: sent to {', '.join(FJORD_TO)}\n"
    assert result.err == (
        f"televikar-pbx: Fjordbakst AS {day}: sent, but the server refused "
        f"{FJORD_TO[1]} (550 5.1.1 no such mailbox here)\n"
    )
    assert [r.rcpt_tos for r in mailbox.received] == [FJORD_TO[:1]]
    [record] = deliveries(cli, "--customer", "1")
    assert record["status"] == "sent" and "refused" in record["last_error"]
    assert cli.ok("reports", "send", "--customer", "1").out == "Fjordbakst AS: nothing due\n"


def test_not_configured(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.fails("reports", "send", "--due", match="SMTP is not configured")
    monkeypatch.setenv("TELEVIKAR_SMTP_HOST", "127.0.0.1")
    cli.fails("reports", "send", "--customer", "1", match="TELEVIKAR_SMTP_FROM")
    smtp_env(monkeypatch, free_port())
    monkeypatch.setenv("TELEVIKAR_SMTP_USERNAME", "rapport")
    cli.fails("reports", "send", "--due", match="password would cross the network in clear")
    assert deliveries(cli) == []


# --- TLS and authentication -------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_login(
    cli: Cli,
    servers: Servers,
    monkeypatch: pytest.MonkeyPatch,
    tls_files: TlsFiles,
    mechanism: str,
) -> None:
    mailbox, accounts = Mailbox(), Accounts("rapport", "hemmelig-passord")
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    port = servers.start(
        mailbox,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=accounts,
        auth_required=True,
        auth_exclude_mechanism=[other],
    )
    smtp_env(monkeypatch, port, "starttls")
    monkeypatch.setenv("TELEVIKAR_SMTP_USERNAME", "rapport")
    monkeypatch.setenv("TELEVIKAR_SMTP_PASSWORD", "feil-passord")
    day = yesterday()
    argv = ("reports", "send", "--customer", "Fjordbakst AS")

    # The test CA is not trusted by default: the certificate is refused.
    result = cli(*argv)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith(f"televikar-pbx: Fjordbakst AS {day}: not sent (attempt 1): ")
    assert "TLS certificate not trusted" in result.err and result.err.count("\n") == 1
    assert accounts.tried == []

    # Trusted, but the wrong password.
    monkeypatch.setenv("TELEVIKAR_SMTP_CA_FILE", str(tls_files.ca))
    result = cli(*argv)
    assert result.code == 1
    assert "not sent (attempt 2)" in result.err and " 535 " in result.err
    assert "feil-passord" not in result.err
    assert accounts.tried == [(mechanism, "rapport")] and mailbox.received == []

    monkeypatch.setenv("TELEVIKAR_SMTP_PASSWORD", "hemmelig-passord")
    assert cli.ok(*argv).out == f"Fjordbakst AS {day}: sent to {', '.join(FJORD_TO)}\n"
    assert [r.rcpt_tos for r in mailbox.received] == [FJORD_TO]
    [record] = deliveries(cli, "--customer", "1")
    assert (record["status"], record["attempts"], record["last_error"]) == ("sent", 3, None)


def test_implicit_tls(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch, tls_files: TlsFiles
) -> None:
    mailbox = Mailbox()
    port = servers.start(mailbox, ssl_context=tls_files.server_context())
    smtp_env(monkeypatch, port, "tls")
    monkeypatch.setenv("TELEVIKAR_SMTP_CA_FILE", str(tls_files.ca))
    assert len(cli.ok("reports", "send", "--due").out.splitlines()) == 2
    assert len(mailbox.received) == 2


def test_starttls_not_offered(cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    smtp_env(monkeypatch, servers.start(Mailbox()), "starttls")
    result = cli("reports", "send", "--customer", "1")
    assert result.code == 1
    assert "STARTTLS extension not supported by server" in result.err
    assert [r["status"] for r in deliveries(cli)] == ["failed"]


# --- the records, and the function for the nightly job ----------------------------------


def test_claim_sends_a_period_once(cli: Cli) -> None:
    period = yesterday()

    async def claims() -> list[Any]:
        engine = make_engine(cli.db_url)
        try:
            store = DeliveryRepository(make_sessionmaker(engine))
            now = dt.datetime.now(dt.UTC)
            daily = ReportInterval.DAILY

            async def claim(at: dt.datetime, resend: bool = False) -> int | None:
                got = await store.claim(FJORD, daily, period, FJORD_TO, at, resend=resend)
                return None if got is None else got.attempts

            seen: list[Any] = [await claim(now)]
            seen.append(await claim(now))  # pending: another run is sending it
            seen.append(await claim(now + dt.timedelta(minutes=31)))  # stale: taken over
            first = (await store.deliveries(FJORD))[0]
            seen.append((first.status, first.attempts))
            failed = await store.mark_failed(first.id, "SMTP x:25: 451 try\r\n again")
            seen.append((failed.status, failed.last_error))
            seen.append(await claim(now))  # failed: retried
            sent = await store.mark_sent(first.id, now)
            seen.append((sent.status, sent.sent_at == now, sent.last_error))
            seen.append(await claim(now))  # sent: never again ...
            seen.append(await claim(now, resend=True))  # ... unless asked to
            return seen
        finally:
            await engine.dispose()

    assert run_async(claims) == [
        1,
        None,
        2,
        ("pending", 2),
        ("failed", "SMTP x:25: 451 try again"),
        3,
        ("sent", True, None),
        None,
        4,
    ]


def test_send_due_reports_for_the_nightly_job(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    mailbox = Mailbox()
    smtp_env(monkeypatch, servers.start(mailbox))
    capsys.readouterr()
    assert send_due_reports(load_settings(), clock_from_env()) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 and len(mailbox.received) == 2
    assert send_due_reports(load_settings(), clock_from_env()) == 0
    assert capsys.readouterr().out == "" and len(mailbox.received) == 2


def test_sla_nightly_stores_then_sends_what_is_due(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without SMTP the figures are stored, and the due reports are named as not sent.
    failed = cli("sla", "nightly")
    assert failed.code == 1 and "Fjordbakst AS: stored" in failed.out
    assert failed.err == (
        "televikar-pbx: sla nightly: reports are due but not sent: SMTP is not configured "
        "(TELEVIKAR_SMTP_HOST)\n"
    )
    assert cli.ok("sla", "nightly", "--no-send").out.count(": stored") == 4
    mailbox = Mailbox()
    smtp_env(monkeypatch, servers.start(mailbox))
    out = cli.ok("sla", "nightly").out
    assert f"Fjordbakst AS {yesterday()}: sent to {', '.join(FJORD_TO)}" in out
    assert f"Nordlys AS {last_week()}: sent to {', '.join(NORDLYS_TO)}" in out
    assert len(mailbox.received) == 2
    # The next night (here: a re-run) sends nothing twice.
    assert "sent to" not in cli.ok("sla", "nightly").out
    assert len(mailbox.received) == 2


# --- the command line's clock (TELEVIKAR_NOW) ---------------------------------------------


@pytest.mark.parametrize("now", [dt.datetime(2026, 12, 2, 23, 59, 59, tzinfo=OSLO)])
def test_due_just_before_local_midnight(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch, now: dt.datetime
) -> None:
    # One second before Thursday in Oslo it is still Wednesday: Tuesday is due, and
    # Wednesday (not over) is not; the week due is the one before.
    mailbox = Mailbox()
    smtp_env(monkeypatch, servers.start(mailbox))
    out = cli.ok("reports", "send", "--due").out.splitlines()
    assert out == [
        f"Fjordbakst AS {dt.date(2026, 12, 1)}: sent to {', '.join(FJORD_TO)}",
        f"Nordlys AS {dt.date(2026, 11, 23)}..{dt.date(2026, 11, 29)}: sent to "
        f"{', '.join(NORDLYS_TO)}",
    ]
    assert out[0].startswith(f"Fjordbakst AS {yesterday(now)}:")
    cli.fails("reports", "send", "--customer", "1", "--from", "2026-12-02", "--to", "2026-12-02",
              match="2026-12-02 is not over yet")  # fmt: skip


@pytest.mark.parametrize("now", [dt.datetime(2027, 3, 29, 0, 5, tzinfo=OSLO)])
def test_due_across_the_spring_dst_change(
    cli: Cli, servers: Servers, monkeypatch: pytest.MonkeyPatch, now: dt.datetime
) -> None:
    # Just after midnight after the clocks went forward (2027-03-28, 23 hours): that day
    # is due, by hour, and ISO week 12 (22-28 March) by day.
    assert now.utcoffset() == dt.timedelta(hours=2)
    mailbox = Mailbox()
    smtp_env(monkeypatch, servers.start(mailbox))
    day, week = yesterday(now), last_week(now)
    assert (day.first_day, week.first_day) == (dt.date(2027, 3, 28), dt.date(2027, 3, 22))
    assert cli.ok("reports", "send", "--due").out.splitlines() == [
        f"Fjordbakst AS {day}: sent to {', '.join(FJORD_TO)}",
        f"Nordlys AS {week}: sent to {', '.join(NORDLYS_TO)}",
    ]
    [fjord] = mailbox.to(FJORD_TO[0])
    sla = attachments(fjord.message)[f"sla-fjordbakst-as-{day.first_day}.csv"][1]
    rows = sla.decode("utf-8-sig").splitlines()
    assert len(rows) == 1 + 23 + 1
    assert [r.split(";")[0] for r in rows[2:5]] == [
        "2027-03-28T01:00+01:00", "2027-03-28T03:00+02:00", "2027-03-28T04:00+02:00",
    ]  # fmt: skip
    assert rows[-1].startswith("Totalt;2;1;50,0;nei;")
