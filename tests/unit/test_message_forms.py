"""Forms: defaults, versions, prefill, reading definitions; and validating input."""

from __future__ import annotations

import json

import pytest

from televikar_pbx.domain.message_forms import (
    DEFAULT_MESSAGE_FORM,
    DEFAULT_ORDER_FORM,
    FieldType,
    Form,
    FormDefinitionError,
    FormField,
    FormKind,
    Prefill,
    caller_id_withheld,
    display_value,
    parse_form,
    prefill,
    revise,
)
from televikar_pbx.domain.message_validation import ValidationFailed, validate

GOOD_MESSAGE = {
    "name": "  Kari Nordmann ",
    "phone": "22 33 44 55",
    "subject": "Vil snakke om fakturaen\nfra mars",
    "call_back": "ja",
}


def test_default_message_form_takes_a_message() -> None:
    assert validate(DEFAULT_MESSAGE_FORM, GOOD_MESSAGE) == {
        "name": "Kari Nordmann",
        "phone": "+4722334455",
        "subject": "Vil snakke om fakturaen\nfra mars",
        "call_back": True,
    }


def test_all_errors_at_once_by_label() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate(
            DEFAULT_ORDER_FORM,
            {
                "phone": "123",
                "email": "kari@",
                "quantity": "mange",
                "delivery_date": "31.02.2027",
                "call_back": "kanskje",
                "colour": "blå",
            },
        )
    errors = info.value.errors
    assert [str(e) for e in errors] == [
        "Navn: må fylles ut",
        "Telefon: «123» er ikke et gyldig telefonnummer",
        "E-post: «kari@» er ikke en gyldig e-postadresse",
        "Vare eller tjeneste: må fylles ut",
        "Antall: «mange» er ikke et tall",
        "Ønsket leveringsdato: «31.02.2027» er ikke en dato (dd.mm.åååå)",
        "Ring tilbake: svar ja eller nei, ikke «kanskje»",
        "colour: finnes ikke i skjemaet",
    ]
    assert len({e.key for e in errors}) == len(errors)  # one error per field
    assert info.value.by_key()["product"] == "må fylles ut"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("22334455", "+4722334455"),
        ("+47 22 33 44 55", "+4722334455"),
        ("0047 998 87 766", "+4799887766"),
        ("+46 8 123 456 78", "+46812345678"),
        ("0046812345678", "+46812345678"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, e164: str) -> None:
    form = Form(FormKind.MESSAGE, 1, (FormField("p", "Tlf", FieldType.PHONE),))
    assert validate(form, {"p": raw}) == {"p": e164}


@pytest.mark.parametrize("raw", ["12345", "abc", "+47 1234", "0000000000000000"])
def test_phone_numbers_refused(raw: str) -> None:
    form = Form(FormKind.MESSAGE, 1, (FormField("p", "Tlf", FieldType.PHONE),))
    with pytest.raises(ValidationFailed, match=r"^Tlf: «"):
        validate(form, {"p": raw})


def _one(ftype: FieldType, raw: object, **kw: object) -> object:
    form = Form(FormKind.ORDER, 1, (FormField("f", "Felt", ftype, **kw),))  # type: ignore[arg-type]
    return validate(form, {"f": raw}).get("f")  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("ftype", "raw", "value"),
    [
        (FieldType.EMAIL, " Kari@Example.COM ", "Kari@example.com"),
        (FieldType.DATE, "1.2.2027", "2027-02-01"),
        (FieldType.DATE, "2027-02-01", "2027-02-01"),
        (FieldType.NUMBER, "12", 12),
        (FieldType.NUMBER, "12,50", 12.5),
        (FieldType.NUMBER, "1 000", 1000),
        (FieldType.NUMBER, "-2 500 000,25", -2500000.25),
        (FieldType.NUMBER, "999999999999", 999999999999),
        (FieldType.NUMBER, 3, 3),
        (FieldType.YES_NO, "Nei", False),
        (FieldType.YES_NO, True, True),
        (FieldType.TEXT, "", None),
    ],
)
def test_values(ftype: FieldType, raw: object, value: object) -> None:
    assert _one(ftype, raw) == value


@pytest.mark.parametrize(
    ("ftype", "raw", "problem"),
    [
        (FieldType.EMAIL, "kari@localhost", "er ikke en gyldig e-postadresse"),
        (FieldType.DATE, "2027-2-1", "er ikke en dato"),
        (FieldType.DATE, "32.01.2027", "er ikke en dato"),
        (FieldType.NUMBER, "NaN", "er ikke et tall"),
        (FieldType.NUMBER, True, "et tall var ventet"),
        (FieldType.NUMBER, "1e999999", "er for stort"),
        (FieldType.NUMBER, "1 2", "er ikke et tall"),
        (FieldType.TEXT, "to\nlinjer", "én linje"),
        (FieldType.TEXT, "x" * 201, "for lang"),
        (FieldType.LONG_TEXT, "bjelle\x07", "kontrolltegn"),
        (FieldType.PHONE, 22334455, "en tekst var ventet"),
    ],
)
def test_refused_values(ftype: FieldType, raw: object, problem: str) -> None:
    with pytest.raises(ValidationFailed, match=f"^Felt: .*{problem}"):
        _one(ftype, raw)


def test_choice() -> None:
    choices = ("Levering", "Henting")
    assert _one(FieldType.CHOICE, "henting", choices=choices) == "Henting"
    with pytest.raises(ValidationFailed, match="«post» er ikke et av valgene: Levering, Henting"):
        _one(FieldType.CHOICE, "post", choices=choices)


def test_prefill_from_caller_id() -> None:
    assert prefill(DEFAULT_MESSAGE_FORM, "+4722334455") == {"phone": "+4722334455"}
    assert prefill(DEFAULT_MESSAGE_FORM, "004722334455") == {"phone": "+4722334455"}
    assert prefill(DEFAULT_MESSAGE_FORM, "1881") == {"phone": "1881"}  # the agent sees it
    for withheld in (None, "", "anonymous", "Unknown", "restricted"):
        assert caller_id_withheld(withheld)
        assert prefill(DEFAULT_ORDER_FORM, withheld) == {}


def test_versions_keep_old_forms() -> None:
    v1 = revise(None, DEFAULT_MESSAGE_FORM.fields, FormKind.MESSAGE)
    assert v1.version == 1
    assert revise(v1, v1.fields, FormKind.MESSAGE) is v1  # unchanged: no new version
    v2 = revise(v1, (*v1.fields, FormField("ref", "Referanse", FieldType.TEXT)), FormKind.MESSAGE)
    assert (v2.version, len(v2.fields), len(v1.fields)) == (2, 6, 5)
    with pytest.raises(ValueError, match="cannot become"):
        revise(v2, v2.fields, FormKind.ORDER)


def test_definition_round_trip_through_json() -> None:
    for form in (DEFAULT_MESSAGE_FORM, DEFAULT_ORDER_FORM):
        data = json.loads(json.dumps(form.to_dict()))
        assert parse_form(data, form.kind) == form
    assert (
        parse_form(DEFAULT_MESSAGE_FORM.to_dict()["fields"], FormKind.MESSAGE).fields[1].prefill
        is Prefill.CALLER_ID
    )


def test_definition_errors_are_all_listed_with_their_place() -> None:
    data = {
        "fields": [
            {"key": "name", "label": "Navn", "type": "text", "required": "yes"},
            {"key": "name", "label": "Navn igjen", "type": "text"},
            {"key": "Bad Key", "label": "X", "type": "text"},
            {"key": "kind", "label": "Type", "type": "choice"},
            {"key": "tlf", "label": "", "type": "telefon", "colour": 1},
            "phone",
            {"key": "a", "label": "A", "type": "text", "prefill": "caller_id"},
        ]
    }
    with pytest.raises(FormDefinitionError) as info:
        parse_form(data, FormKind.MESSAGE)
    assert info.value.problems == (
        "fields[0].required: true or false",
        "fields[2]: field key 'Bad Key': lower-case letters, digits and _, "
        "starting with a letter, at most 40",
        "fields[3]: field kind: a choice needs non-empty choices",
        "fields[4]: unknown keys: colour",
        "fields[4].label: a non-empty text is required",
        "fields[4].type: 'telefon' is not one of text, long_text, phone, email, date, "
        "number, choice, yes_no",
        "fields[5]: a mapping with key, label and type is required",
        "fields[6]: field a: only a phone field takes the caller ID",
        "fields: the key 'name' is used more than once",
    )
    for bad in ({}, {"fields": []}, [], "x", {"fields": [], "title": "x"}):
        with pytest.raises(FormDefinitionError):
            parse_form(bad, FormKind.ORDER)


def test_display_values() -> None:
    f = DEFAULT_ORDER_FORM
    assert display_value(f.field("call_back"), True) == "Ja"
    assert display_value(f.field("delivery_date"), "2027-02-01") == "01.02.2027"
    assert display_value(f.field("quantity"), 12.5) == "12,5"
    assert display_value(f.field("quantity"), 1000) == "1000"
    assert display_value(f.field("phone"), "+4722334455") == "+47 22 33 44 55"
