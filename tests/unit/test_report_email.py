"""The report e-mail (``reports.delivery``) and the SMTP settings (``reports.mail``),
without a server: labels, file names, headers, attachments byte for byte."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from televikar_pbx.domain.delivery import ReportPeriod
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.domain.sla import sla_report
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports.delivery import ReportFiles, build_message, file_stem, period_label
from televikar_pbx.reports.mail import SmtpConfig
from televikar_pbx.settings import Settings

D = dt.date
DASH = "\N{EN DASH}"


@pytest.mark.parametrize(
    ("first", "last", "label"),
    [
        (D(2026, 11, 28), D(2026, 11, 28), "28.11.2026"),
        (D(2026, 11, 23), D(2026, 11, 29), "uke 48 2026"),
        (D(2026, 12, 28), D(2027, 1, 3), "uke 53 2026"),
        (D(2024, 12, 30), D(2025, 1, 5), "uke 1 2025"),
        (D(2026, 2, 1), D(2026, 2, 28), "februar 2026"),
        (D(2026, 11, 1), D(2026, 11, 15), f"01.11.2026{DASH}15.11.2026"),
    ],
)
def test_period_label(first: D, last: D, label: str) -> None:
    assert period_label(ReportPeriod(first, last)) == label


def test_file_stem_is_ascii() -> None:
    period = ReportPeriod(D(2026, 11, 23), D(2026, 11, 29))
    customer = Customer(7, "Bølgen & Ærlige Åsmund AS", "Bølgen")
    assert file_stem(customer, period) == "bolgen-aerlige-aasmund-as-2026-11-23_2026-11-29"
    assert file_stem(Customer(7, "***", "X"), ReportPeriod(D(2026, 1, 1), D(2026, 1, 1))) == (
        "kunde-7-2026-01-01"
    )


def test_build_message() -> None:
    period = ReportPeriod(D(2026, 11, 28), D(2026, 11, 28))
    report = sla_report([], first_day=period.first_day, last_day=period.last_day, by="hour")
    files = ReportFiles(
        report=report,
        pdf=b"%PDF-1.4 test",
        calls_csv="\ufeffDato;Tid\r\nø;=1\r\n".encode(),
        sla_csv=b"\xef\xbb\xbfPeriode\r\n",
    )
    customer = Customer(1, "Fjordbakst AS", "Fjord\r\nbakst")  # a line break cannot inject
    settings = ReportSettings(emails=("a@fjordbakst.no", "b@fjordbakst.no"))
    now = dt.datetime(2026, 11, 29, 0, 30, tzinfo=dt.UTC)
    message = build_message("Rapport <r@televikar.test>", customer, settings, period, files, now)
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Svartjeneste-rapport for Fjord bakst, 28.11.2026"
    assert parsed["To"] == "a@fjordbakst.no, b@fjordbakst.no"
    assert parsed["Message-ID"].endswith("@televikar.test>")
    parts = {p.get_filename(): p for p in parsed.iter_attachments()}
    assert list(parts) == [
        "svartjeneste-fjordbakst-as-2026-11-28.pdf",
        "anropslogg-fjordbakst-as-2026-11-28.csv",
        "sla-fjordbakst-as-2026-11-28.csv",
    ]
    csv = parts["anropslogg-fjordbakst-as-2026-11-28.csv"]
    assert csv.get_content_type() == "text/csv" and csv.get_content_charset() == "utf-8"
    assert csv.get_payload(decode=True) == files.calls_csv
    assert parts["svartjeneste-fjordbakst-as-2026-11-28.pdf"].get_payload(decode=True) == files.pdf
    body = parsed.get_body(("plain",))
    assert body is not None and "Ingen tilbudte anrop i perioden." in body.get_content()


def test_smtp_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMTP is not configured"):
        SmtpConfig.from_settings(Settings(smtp_from="r@televikar.test"))
    with pytest.raises(ConfigError, match="SMTP is not configured"):
        SmtpConfig.from_settings(Settings(smtp_host="mail.test"))
    base = Settings(smtp_host="mail.test", smtp_from="r@televikar.test")
    config = SmtpConfig.from_settings(base)
    assert (config.port, config.security, config.username, config.ca_file) == (
        587, "starttls", None, None,
    )  # fmt: skip
    plain_login = base.model_copy(update={"smtp_security": "none", "smtp_username": "u"})
    with pytest.raises(ConfigError, match="in clear"):
        SmtpConfig.from_settings(plain_login)
    missing_ca = base.model_copy(update={"smtp_ca_file": tmp_path / "nope.pem"})
    with pytest.raises(ConfigError, match="no such file"):
        SmtpConfig.from_settings(missing_ca)
