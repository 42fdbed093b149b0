"""Checking what an agent filled in: all or nothing, one clear error per field.

:func:`validate` reads every field of the form from the raw input (text from the command
line or the web desk; JSON booleans and numbers are taken too) and returns the values
to store, or raises one :class:`ValidationFailed` carrying an error for *each* field
that is wrong, named by its Norwegian label, so nothing is saved half.

Per type (empty means missing, after trimming spaces):

- required and missing: "må fylles ut"; optional and missing: left out of the result;
- ``text``: one line, at most 200 characters; ``long_text``: at most 4000, line breaks
  kept; control characters refused in both;
- ``phone``: parsed with ``phonenumbers`` as Norwegian unless it has a country code
  (``+46 ...`` or ``0046 ...``), must be a valid number; stored as E.164
  (``22 33 44 55`` -> ``+4722334455``);
- ``email``: syntax checked by ``email-validator`` (no DNS look-up: no network at save
  time), stored in its normalised form;
- ``date``: ``31.12.2026``, ``1.2.2026`` or ``2026-12-31``; stored ISO;
- ``number``: decimal comma or point, spaces between thousands, at most 12 digits
  before the point; ``int`` when whole;
- ``choice``: one of the choices (letter case ignored), stored as the form spells it;
- ``yes_no``: ja/nei (j/n, yes/no, true/false, 1/0), stored as ``bool``.

Keys the form does not have are errors too (a typo in ``--field`` must not vanish).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from televikar_pbx.domain.message_forms import FieldType, FieldValue, Form, FormField

RawValue = str | bool | int | float | None
MAX_TEXT = 200
MAX_LONG_TEXT = 4000
PHONE_REGION = "NO"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_DATE_NO = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_DATE_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_NUMBER_DIGITS = 12  # before the decimal point: an order of a trillion is a typo
_YES = {"ja", "j", "yes", "y", "true", "1"}
_NO = {"nei", "n", "no", "false", "0"}


@dataclass(frozen=True, slots=True)
class FieldError:
    key: str
    label: str
    problem: str

    def __str__(self) -> str:
        return f"{self.label}: {self.problem}"


class ValidationFailed(ValueError):
    """The input was refused; ``errors`` holds one :class:`FieldError` per wrong field,
    in the form's order (unknown keys last)."""

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def by_key(self) -> dict[str, str]:
        return {e.key: e.problem for e in self.errors}


class InvalidValue(ValueError):
    """One value's problem, in Norwegian (the field's label is added by the caller)."""


def validate(form: Form, raw: Mapping[str, RawValue]) -> dict[str, FieldValue]:
    """The values to store, in the form's order; :class:`ValidationFailed` otherwise."""
    errors: list[FieldError] = []
    values: dict[str, FieldValue] = {}
    for f in form.fields:
        value = raw.get(f.key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                errors.append(FieldError(f.key, f.label, "må fylles ut"))
            continue
        try:
            values[f.key] = _check(f, value)
        except InvalidValue as exc:
            errors.append(FieldError(f.key, f.label, str(exc)))
    known = {f.key for f in form.fields}
    for key in raw:
        if key not in known:
            errors.append(FieldError(key, key, "finnes ikke i skjemaet"))
    if errors:
        raise ValidationFailed(tuple(errors))
    return values


def _check(f: FormField, value: str | bool | int | float) -> FieldValue:
    if f.type is FieldType.YES_NO:
        return _yes_no(value)
    if f.type is FieldType.NUMBER:
        return _number(value)
    if isinstance(value, bool | int | float):
        raise InvalidValue("en tekst var ventet")
    text = value.strip()
    match f.type:
        case FieldType.TEXT | FieldType.LONG_TEXT:
            return _text(text, f.type)
        case FieldType.PHONE:
            return normalise_phone(text)
        case FieldType.EMAIL:
            return normalise_email(text)
        case FieldType.DATE:
            return _date(text).isoformat()
        case FieldType.CHOICE:
            for choice in f.choices:
                if choice.casefold() == text.casefold():
                    return choice
            raise InvalidValue(f"«{text}» er ikke et av valgene: {', '.join(f.choices)}")
    raise AssertionError(f"unhandled field type {f.type}")  # pragma: no cover


def _text(text: str, kind: FieldType) -> str:
    limit = MAX_TEXT if kind is FieldType.TEXT else MAX_LONG_TEXT
    text = text.replace("\r\n", "\n")
    if kind is FieldType.TEXT and "\n" in text:
        raise InvalidValue("skal stå på én linje")
    if _CONTROL.search(text):
        raise InvalidValue("inneholder kontrolltegn")
    if len(text) > limit:
        raise InvalidValue(f"er for lang ({len(text)} tegn, høyst {limit})")
    return text


def normalise_phone(text: str) -> str:
    """E.164 of a valid number, Norwegian unless it has a country code; :class:`InvalidValue`
    (in Norwegian) otherwise."""
    try:
        number = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidValue(f"«{text}» er ikke et telefonnummer") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(f"«{text}» er ikke et gyldig telefonnummer")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(text: str) -> str:
    """The normalised address; ``ValueError`` (in Norwegian) when it is not one. Syntax
    only: no DNS."""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidValue(f"«{text}» er ikke en gyldig e-postadresse") from None


def _date(text: str) -> dt.date:
    try:
        if m := _DATE_NO.fullmatch(text):
            day, month, year = (int(g) for g in m.groups())
            return dt.date(year, month, day)
        if _DATE_ISO.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidValue(f"«{text}» er ikke en dato (dd.mm.åååå)")


def _number(value: str | bool | int | float) -> int | float:
    if isinstance(value, bool):
        raise InvalidValue("et tall var ventet")
    text = str(value).strip()
    cleaned = re.sub(r"[ \u00a0\u202f](?=\d{3}\b)", "", text).replace(",", ".")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidValue(f"«{text}» er ikke et tall") from None
    if not number.is_finite():
        raise InvalidValue(f"«{text}» er ikke et tall")
    if number.adjusted() >= MAX_NUMBER_DIGITS:
        raise InvalidValue(f"«{text}» er for stort")
    return int(number) if number == number.to_integral_value() else float(number)


def _yes_no(value: str | bool | int | float) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise InvalidValue(f"svar ja eller nei, ikke «{value}»")
