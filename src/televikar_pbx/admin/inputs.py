"""What the operator types, validated (pydantic) before anything is written.

Field names are the command line's ``dest`` names; ``one_line`` turns the first
validation error into the one line the command prints, named by its option.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from televikar_pbx.admin import money, parse
from televikar_pbx.domain.billing import MAX_PRICE_ORE, Prices
from televikar_pbx.domain.calendar import Agreement, DateException, OpeningHours
from televikar_pbx.domain.directory import (
    ClosedAction,
    Customer,
    CustomerRules,
    HoldStyle,
    OutsidePolicy,
)
from televikar_pbx.domain.reporting import ReportInterval, ReportSettings

DEFAULT_TIMEZONE = "Europe/Oslo"
DEFAULT_RULES = CustomerRules()
DEFAULT_REPORT = ReportSettings()


def _matching(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _text(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 128 or not value.isprintable():
        raise ValueError("must be 1 to 128 printable characters")
    return value


PhoneNumber = Annotated[
    str, _matching(r"\+?\d{3,15}", "a number is 3 to 15 digits with an optional leading +")
]
Text = Annotated[str, AfterValidator(_text)]
Sound = Annotated[
    str,
    _matching(
        r"(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_./:-]{0,254}",
        "a sound or music class name is letters, digits and _ . / : - (no '..')",
    ),
]
Email = Annotated[
    str,
    _matching(
        r"(?=.{3,254}$)[^@\s,;<>\"']+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+",
        "not an e-mail address",
    ),
]
Seconds = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Endpoint = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
        "an endpoint is 1 to 64 letters, digits and _ . - (starting with a letter or digit)",
    ),
]
Secret = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9!#$%&()*+,./:<=>?@\[\]^_{|}~-]{12,128}",
        "a secret is 12 to 128 characters without spaces, quotes, backslashes or ';'",
    ),
]
Contact = Annotated[
    str, _matching(r"sips?:[^\s\"'<>]{1,250}", "a contact is a SIP URI, e.g. sip:agent1@127.0.0.1")
]
Priority = Annotated[int, Field(ge=0, le=99)]
# Whole øre: typed in kroner (a string, see ``money.parse_kroner``), stored as øre.
Ore = Annotated[int, Field(ge=0, le=MAX_PRICE_ORE, strict=True)]


def generate_secret() -> str:
    """A phone secret for the operator to copy (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (e.g. Europe/Oslo)") from None
    return value


def _each(parser: Any, value: Any) -> Any:
    """Parse the strings of a list option; leave values that are parsed already."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        return value
    return [parser(v) if isinstance(v, str) else v for v in value]


# CustomerInput's price fields (``--monthly-fee`` ...) -> the Prices fields (øre).
PRICE_OPTIONS = {
    "monthly_fee": "monthly_fee_ore",
    "call_price": "call_price_ore",
    "message_price": "message_price_ore",
    "booking_day_price": "booking_day_price_ore",
    "order_price": "order_price_ore",
}


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CustomerInput(_Input):
    """Everything ``customers add`` takes; ``customers edit`` merges its options into the
    stored customer (``current``) and validates the whole again."""

    name: Text
    display_name: Text
    numbers: tuple[PhoneNumber, ...] = Field(min_length=1)
    forwarded_from: tuple[PhoneNumber, ...] = ()
    timezone: Annotated[str, AfterValidator(_zone)] = DEFAULT_TIMEZONE
    hours: tuple[OpeningHours, ...] = ()
    closed: tuple[dt.date, ...] = ()
    special_days: tuple[DateException, ...] = ()
    max_wait_s: Seconds = DEFAULT_RULES.max_wait_s
    wrap_up_s: Seconds = DEFAULT_RULES.wrap_up_s
    hold: HoldStyle = HoldStyle.RINGING
    hold_media: Sound | None = None
    closed_action: ClosedAction = ClosedAction.MESSAGE
    outside_policy: OutsidePolicy = OutsidePolicy.MESSAGE
    message_prompt: Sound | None = None
    sl12: Percent = DEFAULT_REPORT.sl12_target
    sl20: Percent = DEFAULT_REPORT.sl20_target
    lost: Percent = DEFAULT_REPORT.lost_target
    report_interval: ReportInterval = ReportInterval.NONE
    report_emails: tuple[Email, ...] = ()
    agreement_start: dt.date | None = None
    agreement_end: dt.date | None = None
    monthly_fee: Ore = 0
    call_price: Ore = 0
    message_price: Ore = 0
    booking_day_price: Ore = 0
    order_price: Ore = 0

    @field_validator("hours", mode="before")
    @classmethod
    def _parse_hours(cls, value: Any) -> Any:
        parsed = _each(parse.parse_hours, value)
        if isinstance(parsed, list):
            return [h for item in parsed for h in (item if isinstance(item, tuple) else (item,))]
        return parsed

    @field_validator("closed", mode="before")
    @classmethod
    def _parse_closed(cls, value: Any) -> Any:
        return _each(parse.parse_date, value)

    @field_validator("special_days", mode="before")
    @classmethod
    def _parse_special(cls, value: Any) -> Any:
        return _each(parse.parse_special_day, value)

    @field_validator("agreement_start", "agreement_end", mode="before")
    @classmethod
    def _parse_agreement(cls, value: Any) -> Any:
        return parse.parse_date(value) if isinstance(value, str) else value

    @field_validator(*PRICE_OPTIONS, mode="before")
    @classmethod
    def _parse_kroner(cls, value: Any) -> Any:
        # Kroner as typed; an int is øre already (``current``).
        if not isinstance(value, str):
            return value
        ore = money.parse_kroner(value)
        if ore > MAX_PRICE_ORE:
            raise ValueError(f"at most {money.format_kroner(MAX_PRICE_ORE)} kr")
        return ore

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for option, values in (
            ("--number", self.numbers),
            ("--forwarded-from", self.forwarded_from),
            ("--report-email", tuple(e.lower() for e in self.report_emails)),
        ):
            for value in values:
                if values.count(value) > 1:
                    raise ValueError(f"{option} {value} is given twice")
        parse.check_no_overlap(self.hours)
        days = [*self.closed, *(e.day for e in self.special_days)]
        for day in days:
            if days.count(day) > 1:
                raise ValueError(f"{day} is given twice (--closed / --special-day)")
        if self.agreement_end is not None:
            if self.agreement_start is None:
                raise ValueError("--agreement-end needs an --agreement-start")
            if self.agreement_end < self.agreement_start:
                raise ValueError(
                    f"the agreement ends ({self.agreement_end}) before it starts"
                    f" ({self.agreement_start})"
                )
        return self

    @classmethod
    def current(cls, customer: Customer, report: ReportSettings) -> dict[str, Any]:
        """The stored customer as input values, for ``edit`` to merge options into."""
        rules, calendar = customer.rules, customer.calendar
        agreement = calendar.agreement
        return {
            "name": customer.name,
            "display_name": customer.display_name,
            "numbers": customer.numbers,
            "forwarded_from": customer.forwarded_from,
            "timezone": customer.timezone,
            "hours": calendar.hours,
            "closed": tuple(e.day for e in calendar.exceptions if e.opens is None),
            "special_days": tuple(e for e in calendar.exceptions if e.opens is not None),
            "max_wait_s": rules.max_wait_s,
            "wrap_up_s": rules.wrap_up_s,
            "hold": rules.hold_style,
            "hold_media": rules.hold_media,
            "closed_action": rules.closed_action,
            "outside_policy": rules.outside_policy,
            "message_prompt": rules.message_prompt,
            "sl12": report.sl12_target,
            "sl20": report.sl20_target,
            "lost": report.lost_target,
            "report_interval": report.interval,
            "report_emails": report.emails,
            "agreement_start": agreement.start if agreement else None,
            "agreement_end": agreement.end if agreement else None,
            **{option: getattr(customer.prices, name) for option, name in PRICE_OPTIONS.items()},
        }

    def rules(self) -> CustomerRules:
        return CustomerRules(
            hold_style=self.hold,
            hold_media=self.hold_media,
            wrap_up_s=self.wrap_up_s,
            max_wait_s=self.max_wait_s,
            closed_action=self.closed_action,
            outside_policy=self.outside_policy,
            message_prompt=self.message_prompt,
        )

    def agreement(self) -> Agreement | None:
        if self.agreement_start is None:
            return None
        return Agreement(self.agreement_start, self.agreement_end)

    def exceptions(self) -> tuple[DateException, ...]:
        return tuple(DateException(day) for day in self.closed) + self.special_days

    def prices(self) -> Prices:
        return Prices(**{name: getattr(self, option) for option, name in PRICE_OPTIONS.items()})

    def report(self) -> ReportSettings:
        return ReportSettings(
            self.sl12, self.sl20, self.lost, self.report_interval, self.report_emails
        )


# Options that make ``add`` store rules of its own (else the service's defaults, with the
# wrap-up time following the service default) and ``edit`` rewrite every rule.
RULE_FIELDS = frozenset(
    {
        "max_wait_s",
        "wrap_up_s",
        "hold",
        "hold_media",
        "closed_action",
        "outside_policy",
        "message_prompt",
    }
)


def _pick(value: Any) -> Any:
    """``'Fjordbakst AS:2'`` -> ``('Fjordbakst AS', 2)``; without ``:N``, priority 0."""
    if not isinstance(value, str):
        return value
    key, sep, priority = value.rpartition(":")
    if sep and priority.strip().isdigit() and key.strip():
        return (key.strip(), int(priority))
    return (value.strip(), 0)


class AgentInput(_Input):
    name: Text
    endpoint: Endpoint
    secret: Secret | None = None  # None: generate one
    contact: Contact | None = None
    # (customer name or id, priority); 0 is first choice.
    customers: tuple[tuple[Annotated[str, Field(min_length=1)], Priority], ...] = Field(
        min_length=1
    )

    @field_validator("customers", mode="before")
    @classmethod
    def _parse_customers(cls, value: Any) -> Any:
        return _each(_pick, value)


class BookingInput(_Input):
    """A booking in the customer's local time; give ``timezone`` first."""

    timezone: str
    starts_at: dt.datetime
    ends_at: dt.datetime

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _parse_moment(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        zone = ZoneInfo(info.data["timezone"])
        return parse.parse_moment(value, zone, end=info.field_name == "ends_at")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("--to must be after --from")
        return self


# --- errors -----------------------------------------------------------------------------

OPTION = {
    "name": "NAME",
    "numbers": "--number",
    "report_emails": "--report-email",
    "special_days": "--special-day",
    "max_wait_s": "--max-wait",
    "wrap_up_s": "--wrap-up",
    "customers": "--customer",
    "starts_at": "--from",
    "ends_at": "--to",
}


SECRET_FIELDS = frozenset({"secret"})  # never echoed


def one_line(exc: ValidationError) -> str:
    """The first error, named by its option, on one line."""
    error = exc.errors(include_url=False)[0]
    message = str(error["msg"]).removeprefix("Value error, ").replace("\n", " ")
    if not error["loc"]:
        return message
    field = str(error["loc"][0])
    option = OPTION.get(field, "--" + field.replace("_", "-"))
    value = error.get("input")
    if field in SECRET_FIELDS:
        return f"{option}: {message}"
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f"{option} {value!r}: {message}"
    return f"{option}: {message}"
