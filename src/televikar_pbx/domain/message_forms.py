"""A customer's message and order forms: fields, versions, defaults, and reading a form
definition from the JSON or YAML an operator edits (no I/O).

A form is a tuple of fields, each with a ``key`` (ASCII, stable: values are stored by
it), a Norwegian ``label`` (shown to agents and in the e-mail), a :class:`FieldType`,
``required``, a ``help`` text and, for ``choice``, its ``choices``. A phone field may be
``prefill: caller_id``: it starts with the caller's number unless it was withheld.

Forms are versioned per customer and kind: :func:`revise` makes version n+1 and leaves
version n as it was, so a message taken with version n is always shown with it.

:func:`parse_form` reads ``{"fields": [{...}, ...]}`` (or the bare list) as
``customers form edit`` gets it from a JSON or YAML file, and raises one
:class:`FormDefinitionError` listing every problem with its place (``fields[2].type``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import phonenumbers

FieldValue = str | int | float | bool
"""A validated value as stored (JSON): text, phone (E.164), e-mail, choice and date
(ISO ``YYYY-MM-DD``) as ``str``; number as ``int`` or ``float``; yes/no as ``bool``."""

_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_WITHHELD = {"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable"}


class FieldType(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    PHONE = "phone"
    EMAIL = "email"
    DATE = "date"
    NUMBER = "number"
    CHOICE = "choice"
    YES_NO = "yes_no"


class FormKind(StrEnum):
    """The kinds of message an agent fills in (a voice message has no form)."""

    MESSAGE = "message"
    ORDER = "order"


class Prefill(StrEnum):
    CALLER_ID = "caller_id"


@dataclass(frozen=True, slots=True)
class FormField:
    key: str
    label: str
    type: FieldType
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    prefill: Prefill | None = None

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise ValueError(
                f"field key {self.key!r}: lower-case letters, digits and _, "
                "starting with a letter, at most 40"
            )
        if not self.label.strip() or "\n" in self.label or "\r" in self.label:
            raise ValueError(f"field {self.key}: the label must be one non-empty line")
        if self.type is FieldType.CHOICE:
            if not self.choices or any(not c.strip() for c in self.choices):
                raise ValueError(f"field {self.key}: a choice needs non-empty choices")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"field {self.key}: choices repeat")
        elif self.choices:
            raise ValueError(f"field {self.key}: only a choice field has choices")
        if self.prefill is Prefill.CALLER_ID and self.type is not FieldType.PHONE:
            raise ValueError(f"field {self.key}: only a phone field takes the caller ID")


@dataclass(frozen=True, slots=True)
class Form:
    kind: FormKind
    version: int
    fields: tuple[FormField, ...]

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError(f"a form version starts at 1, got {self.version}")
        if not self.fields:
            raise ValueError("a form needs at least one field")
        keys = [f.key for f in self.fields]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"field keys repeat: {', '.join(repeated)}")

    def field(self, key: str) -> FormField:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """The definition as :func:`parse_form` reads it back (for ``form show``)."""
        return {"fields": [_field_dict(f) for f in self.fields]}


def _field_dict(f: FormField) -> dict[str, Any]:
    out: dict[str, Any] = {"key": f.key, "label": f.label, "type": f.type.value}
    if f.required:
        out["required"] = True
    if f.help:
        out["help"] = f.help
    if f.choices:
        out["choices"] = list(f.choices)
    if f.prefill is not None:
        out["prefill"] = f.prefill.value
    return out


def revise(current: Form | None, fields: Sequence[FormField], kind: FormKind) -> Form:
    """The next version of a customer's form (version 1 when it has none); the current
    one is returned unchanged when ``fields`` are the same."""
    if current is not None and current.kind is not kind:
        raise ValueError(f"a {current.kind.value} form cannot become a {kind.value} form")
    if current is not None and current.fields == tuple(fields):
        return current
    return Form(kind, 1 if current is None else current.version + 1, tuple(fields))


_T = FieldType

DEFAULT_MESSAGE_FORM = Form(
    FormKind.MESSAGE,
    1,
    (
        FormField("name", "Navn", _T.TEXT, required=True, help="Innringerens navn"),
        FormField(
            "phone",
            "Telefon",
            _T.PHONE,
            required=True,
            help="Nummeret kunden kan ringe tilbake på",
            prefill=Prefill.CALLER_ID,
        ),
        FormField("company", "Firma", _T.TEXT),
        FormField("subject", "Gjelder", _T.LONG_TEXT, required=True, help="Hva det gjelder"),
        FormField("call_back", "Ring tilbake", _T.YES_NO, required=True),
    ),
)

DEFAULT_ORDER_FORM = Form(
    FormKind.ORDER,
    1,
    (
        FormField("name", "Navn", _T.TEXT, required=True, help="Bestillerens navn"),
        FormField("phone", "Telefon", _T.PHONE, required=True, prefill=Prefill.CALLER_ID),
        FormField("email", "E-post", _T.EMAIL, help="For ordrebekreftelse"),
        FormField("company", "Firma", _T.TEXT),
        FormField("product", "Vare eller tjeneste", _T.TEXT, required=True),
        FormField("quantity", "Antall", _T.NUMBER, required=True),
        FormField("delivery_date", "Ønsket leveringsdato", _T.DATE),
        FormField("address", "Leveringsadresse", _T.LONG_TEXT),
        FormField("notes", "Merknader", _T.LONG_TEXT),
        FormField("call_back", "Ring tilbake", _T.YES_NO, required=True),
    ),
)

DEFAULT_FORMS: Mapping[FormKind, Form] = {
    FormKind.MESSAGE: DEFAULT_MESSAGE_FORM,
    FormKind.ORDER: DEFAULT_ORDER_FORM,
}


def caller_id_withheld(caller_id: str | None) -> bool:
    """Asterisk's CALLERID(num) for a withheld number: empty, ``anonymous`` and the like,
    or nothing that could be dialled back."""
    if caller_id is None:
        return True
    text = caller_id.strip().lower()
    return text in _WITHHELD or not any(c.isdigit() for c in text)


def prefill(form: Form, caller_id: str | None) -> dict[str, str]:
    """Initial values for an agent's form: the caller's number in the fields that take
    it, unless withheld (then they start empty and the agent asks)."""
    if caller_id_withheld(caller_id):
        return {}
    assert caller_id is not None
    number = caller_id.strip()
    try:  # as E.164 when it is a valid number (a trunk may send 0047...), else as it came
        parsed = phonenumbers.parse(number, "NO")
        if phonenumbers.is_valid_number(parsed):
            number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return {f.key: number for f in form.fields if f.prefill is Prefill.CALLER_ID}


class FormDefinitionError(ValueError):
    """A form definition that cannot be used; ``problems`` lists each with its place."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("the form definition is not valid:\n  " + "\n  ".join(problems))
        self.problems = tuple(problems)


_FIELD_KEYS = {"key", "label", "type", "required", "help", "choices", "prefill"}


def parse_form(data: object, kind: FormKind, version: int = 1) -> Form:
    """A :class:`Form` from a decoded JSON/YAML definition; every problem in one
    :class:`FormDefinitionError`."""
    if isinstance(data, Mapping):
        unknown = sorted(str(k) for k in data if k != "fields")
        if unknown:
            raise FormDefinitionError([f"unknown top-level keys: {', '.join(unknown)}"])
        data = data.get("fields")
    if not isinstance(data, list) or not data:
        raise FormDefinitionError(["fields: a non-empty list of fields is required"])
    problems: list[str] = []
    fields: list[FormField] = []
    for i, item in enumerate(data):
        where = f"fields[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: a mapping with key, label and type is required")
            continue
        parsed = _parse_field(item, where, problems)
        if parsed is not None:
            fields.append(parsed)
    # Repeats are found among the keys as written, also of fields refused for another
    # reason, so one edit fixes them all.
    keys = [
        i["key"].strip() for i in data if isinstance(i, Mapping) and isinstance(i.get("key"), str)
    ]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"fields: the key {key!r} is used more than once")
    if problems:
        raise FormDefinitionError(problems)
    return Form(kind, version, tuple(fields))


def _parse_field(item: Mapping[Any, Any], where: str, problems: list[str]) -> FormField | None:
    before = len(problems)
    unknown = sorted(str(k) for k in item if k not in _FIELD_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys: {', '.join(unknown)}")
    key, label = item.get("key"), item.get("label")
    for name, value in (("key", key), ("label", label)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}.{name}: a non-empty text is required")
    raw_type = item.get("type")
    try:
        ftype: FieldType | None = FieldType(str(raw_type))
    except ValueError:
        allowed = ", ".join(t.value for t in FieldType)
        problems.append(f"{where}.type: {raw_type!r} is not one of {allowed}")
        ftype = None
    required, help_text = item.get("required", False), item.get("help", "")
    if not isinstance(required, bool):
        problems.append(f"{where}.required: true or false")
    if not isinstance(help_text, str):
        problems.append(f"{where}.help: a text is required")
    choices = item.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        problems.append(f"{where}.choices: a list of texts is required")
        choices = []
    raw_prefill = item.get("prefill")
    try:
        pre = None if raw_prefill is None else Prefill(str(raw_prefill))
    except ValueError:
        problems.append(f"{where}.prefill: only 'caller_id' is known, got {raw_prefill!r}")
        pre = None
    if len(problems) > before or ftype is None:
        return None
    assert isinstance(key, str) and isinstance(label, str)
    try:
        return FormField(
            key.strip(),
            label.strip(),
            ftype,
            required=bool(required),
            help=str(help_text).strip(),
            choices=tuple(c.strip() for c in choices),
            prefill=pre,
        )
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def display_value(f: FormField, value: FieldValue) -> str:
    """A stored value as a Norwegian reader sees it (dates ``31.12.2026``, ``Ja``/``Nei``,
    decimal comma)."""
    if f.type is FieldType.YES_NO:
        return "Ja" if value else "Nei"
    if f.type is FieldType.DATE and isinstance(value, str):
        return dt.date.fromisoformat(value).strftime("%d.%m.%Y")
    if f.type is FieldType.PHONE and isinstance(value, str):
        return format_phone(value)
    if f.type is FieldType.NUMBER and not isinstance(value, bool | str):
        return format(Decimal(str(value)).normalize(), "f").replace(".", ",")
    return str(value)


def format_phone(e164: str) -> str:
    """``+4722334455`` as ``+47 22 33 44 55``; anything unparsable as it is."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
