"""Sveve's number forms, its delivery reports, and the adapter's settings."""

from __future__ import annotations

import pytest

from televikar_pbx.delivery.sms import DeliveryReport, SmsError
from televikar_pbx.delivery.sveve import SveveConfig, parse_report, sveve_number


def test_numbers_as_the_gateway_wants_them() -> None:
    assert sveve_number("+4799887766") == "99887766"
    assert sveve_number("+46701234567") == "0046701234567"
    with pytest.raises(SmsError) as info:
        sveve_number("99 88")
    assert info.value.permanent


@pytest.mark.parametrize("number", ["99887766", "4799887766", "004799887766", "+4799887766"])
def test_report_numbers(number: str) -> None:
    report = parse_report({"number": number, "status": "true", "id": "7", "ref": "m1g0-x"})
    assert report == DeliveryReport("m1g0-x", "7", "+4799887766", delivered=True)


def test_report_failure_and_missing_fields() -> None:
    report = parse_report({"number": "4593654321", "status": "false", "id": "9", "ref": ""})
    assert (report.number, report.reference, report.error) == ("+4593654321", None, "not delivered")
    with pytest.raises(ValueError, match="got id, number"):
        parse_report({"number": "99887766", "id": "1"})
    with pytest.raises(ValueError, match="got nothing"):
        parse_report({})


def test_config_checks_the_sender() -> None:
    SveveConfig("u", "p", "Televikar")
    for sender in ("TV", "Televikar AS Oslo", "Telé", "Tele-vikar"):
        with pytest.raises(ValueError, match="sender"):
            SveveConfig("u", "p", sender)
    with pytest.raises(ValueError, match="password"):
        SveveConfig("u", "", "Televikar")
