"""Tables, as SQLAlchemy 2.0 typed models. Schema changes go through ``migrations/``.

Timestamps are ``UTCDateTime``: tz-aware UTC in and out, on SQLite as on PostgreSQL.
Constraint names come from ``NAMING_CONVENTION`` so that migrations can name them.
Phone numbers are digit strings as Asterisk shows them (``4721000001``).

Columns holding a member of a growing vocabulary (``outcome``, ``hold_style``, ...) are
plain strings checked by the repositories against the StrEnums of ``domain/``, not by a
CHECK: a new value would cost a table rebuild on SQLite. Fixed rules (a weekday is 0..6)
are CHECKs.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that only stores aware datetimes and reads UTC.

    SQLite has no time zone type and SQLAlchemy's SQLite ``DATETIME`` silently drops
    ``tzinfo`` (a +02:00 value would be stored as its wall-clock time), so values are
    converted to UTC before binding and marked UTC again when read. PostgreSQL
    (``timestamptz``) keeps the instant; asyncpg returns it in UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime refused (give it a time zone): {value!r}")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# Reusable column types.
IntPK = Annotated[int, mapped_column(Integer, primary_key=True)]
Name = Annotated[str, mapped_column(String(128))]
PhoneNumber = Annotated[str, mapped_column(String(32))]
# Asterisk's uniqueid/linkedid: "1700000000.123", or prefixed with systemname (max 150).
ChannelId = Annotated[str, mapped_column(String(150))]
UTCTimestamp = Annotated[dt.datetime, mapped_column(UTCDateTime())]
CreatedAt = Annotated[dt.datetime, mapped_column(UTCDateTime(), server_default=func.now())]
JSONObject = Annotated[dict[str, Any], mapped_column(JSON())]
# An Asterisk sound or music-on-hold class name, or a file path.
SoundName = Annotated[str, mapped_column(String(255))]
# A duration; double precision on both backends.
Seconds = Annotated[float, mapped_column(Double())]
# A percentage 0..100 (SLA targets), checked by the repository.
Percent = Annotated[float, mapped_column(Double())]
# A member of a StrEnum of domain/, checked by the repository.
Choice = Annotated[str, mapped_column(String(32))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[IntPK]
    name: Mapped[Name] = mapped_column(unique=True)
    # Shown to agents as the caller-ID name while the call rings.
    display_name: Mapped[Name]
    timezone: Mapped[str] = mapped_column(String(64), server_default="Europe/Oslo")
    created_at: Mapped[CreatedAt]
    # The desk's rules (domain CustomerRules); the server defaults are the service's.
    hold_style: Mapped[Choice] = mapped_column(server_default="ringing")
    hold_media: Mapped[SoundName | None]
    # None: the service default (CustomerRules.wrap_up_s).
    wrap_up_s: Mapped[Seconds | None]
    max_wait_s: Mapped[Seconds] = mapped_column(server_default=text("45"))
    answer_target_s: Mapped[Seconds] = mapped_column(server_default=text("12"))
    closed_action: Mapped[Choice] = mapped_column(server_default="message")
    outside_policy: Mapped[Choice] = mapped_column(server_default="message")
    message_prompt: Mapped[SoundName | None]
    # A fixed agreement (local dates, end inclusive); none: only bookings count. No CHECK
    # for end >= start: adding one would rebuild this table on SQLite, which the others
    # reference; the repository checks it.
    agreement_start: Mapped[dt.date | None]
    agreement_end: Mapped[dt.date | None]
    # SLA targets in percent and the report schedule (domain ReportSettings); the
    # repository checks 0..100 and the ReportInterval value.
    sl12_target: Mapped[Percent] = mapped_column(server_default=text("70"))
    sl20_target: Mapped[Percent] = mapped_column(server_default=text("90"))
    lost_target: Mapped[Percent] = mapped_column(server_default=text("5"))
    report_interval: Mapped[Choice] = mapped_column(server_default="none")
    # Billing (docs/billing.md): money in integer øre, never floats. The monthly fee is
    # prorated by the agreement's days in the month; a booking is priced per local day
    # it touches.
    monthly_fee_ore: Mapped[int] = mapped_column(server_default=text("0"))
    call_price_ore: Mapped[int] = mapped_column(server_default=text("0"))
    message_price_ore: Mapped[int] = mapped_column(server_default=text("0"))
    booking_day_price_ore: Mapped[int] = mapped_column(server_default=text("0"))
    # Per order an agent took (messages and voice messages: message_price_ore).
    order_price_ore: Mapped[int] = mapped_column(server_default=text("0"))
    # Voice messages by e-mail: the recording attached, or a link to the agent desk's
    # player (docs/messages.md; the link needs the web desk).
    voice_delivery: Mapped[Choice] = mapped_column(server_default="attachment")
    # What the agent says on answering (domain.desk_live.render_greeting); None: the
    # default "{kunde}, dette er {agent}".
    greeting: Mapped[str | None] = mapped_column(String(200))
    # Urgent messages not acknowledged within this many minutes go to the next person on
    # the recipient list (domain/escalation.py); None: to everyone at once.
    escalate_after_min: Mapped[int | None]


class CustomerReportEmail(Base):
    """Where a customer's reports are sent, in the order the operator gave them."""

    __tablename__ = "customer_report_emails"
    __table_args__ = (UniqueConstraint("customer_id", "email"),)

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))


class CustomerNumber(Base):
    """A number that identifies a customer.

    ``did``: the number we assigned to the customer on our PBX; the call arrives on it.
    ``forwarded_from``: the customer's own number, as seen in Diversion/forwarded-from,
    for customers that share one entry number.

    Several customers may share a DID; the forwarded-from number then tells them apart,
    so it must name one customer only: a partial unique index (SQLite and PostgreSQL
    both have them) enforces that race-free, where a check in the repository could not.
    """

    __tablename__ = "customer_numbers"
    __table_args__ = (
        # Also the index for customer_id (its leading column).
        UniqueConstraint("customer_id", "number", "kind"),
        CheckConstraint("kind IN ('did', 'forwarded_from')", name="kind"),
        Index(
            "uq_customer_numbers_forwarded_from_number",
            "number",
            unique=True,
            sqlite_where=text("kind = 'forwarded_from'"),
            postgresql_where=text("kind = 'forwarded_from'"),
        ),
    )

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number: Mapped[PhoneNumber]
    kind: Mapped[str] = mapped_column(String(16))


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[IntPK]
    name: Mapped[Name]
    # The PJSIP endpoint the agent's phone registers as, e.g. "agent1".
    endpoint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[CreatedAt]
    # The state the agent was last left in, restored on start.
    logged_in: Mapped[bool] = mapped_column(server_default=false())
    paused: Mapped[bool] = mapped_column(server_default=false())
    # The phone's digest password (generated or set by the operator; None for agents
    # from before 0003, whose phones cannot register until one is set). Never logged.
    secret: Mapped[str | None] = mapped_column(String(128))
    # A static contact URI for phones that do not register (the lab's sipp phones).
    contact: Mapped[str | None] = mapped_column(String(255))


class AgentCustomer(Base):
    """Which customers an agent answers for."""

    __tablename__ = "agent_customers"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    priority: Mapped[int] = mapped_column(server_default="0")


class AgentAvailability(Base):
    """The agents' availability log (domain/availability.py): from ``started_at`` the
    agent was ``available`` (logged in, not paused), ``paused`` or ``logged_out``, until
    ``ended_at``; None: still is (one such row per agent, at most). Written by ``serve``
    when the desk changes an agent between the three, behind the routing (calls/spool.py);
    a clean stop closes every open row, a start opens each agent's from its stored state.
    """

    __tablename__ = "agent_availability"
    __table_args__ = (
        CheckConstraint("state IN ('available', 'paused', 'logged_out')", name="state"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        Index(None, "started_at"),
        Index(None, "agent_id", "started_at"),
        Index(
            "uq_agent_availability_open",
            "agent_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[IntPK]
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[UTCTimestamp]
    ended_at: Mapped[UTCTimestamp | None]


class Call(Base):
    """One inbound call, summarised; ``call_events`` is its journal.

    ``agent_id`` is the agent last offered the call, then the one who answered it.
    ``outcome`` is a ``CallOutcome`` value, checked by the repository, not by the database:
    the list grows with the call flow and a CHECK would cost a table rebuild on SQLite.
    """

    __tablename__ = "calls"
    __table_args__ = (
        Index(None, "customer_id", "arrived_at"),
        # The screen pop's "last calls from this number" (0010).
        Index(None, "customer_id", "caller_number", "arrived_at"),
    )

    id: Mapped[IntPK]
    # Asterisk's uniqueid of the caller's channel.
    channel_id: Mapped[ChannelId] = mapped_column(unique=True)
    linkedid: Mapped[ChannelId] = mapped_column(index=True)
    # None: the dialled number belongs to no customer (outcome unknown_number).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    dialled_number: Mapped[PhoneNumber]
    caller_number: Mapped[str | None] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(128))
    arrived_at: Mapped[UTCTimestamp]
    answered_at: Mapped[UTCTimestamp | None]
    ended_at: Mapped[UTCTimestamp | None]
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(32))
    # Q.850 cause of the caller's hang-up, e.g. 16 "Normal Clearing".
    hangup_cause: Mapped[int | None]
    hangup_cause_text: Mapped[str | None] = mapped_column(String(128))
    # Last seq handed out in call_events; bumped with UPDATE .. RETURNING, which takes the
    # row lock so that concurrent appends queue instead of colliding on (call_id, seq).
    last_event_seq: Mapped[int] = mapped_column(server_default="0")


class CallEvent(Base):
    """Append-only journal of a call: what happened, in order, with Asterisk's time."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[IntPK]
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[UTCTimestamp]
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    data: Mapped[JSONObject]


class OpeningHours(Base):
    """Weekly service hours, in the customer's local time; none at all: always open."""

    __tablename__ = "opening_hours"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),)

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # 0 = Monday ... 6 = Sunday, as datetime.weekday().
    weekday: Mapped[int]
    opens: Mapped[dt.time]
    # 00:00 means until midnight.
    closes: Mapped[dt.time]


class DateException(Base):
    """Other hours on one local date: closed all day (no times) or open opens..closes."""

    __tablename__ = "date_exceptions"
    __table_args__ = (
        UniqueConstraint("customer_id", "day"),
        CheckConstraint("(opens IS NULL) = (closes IS NULL)", name="hours"),
    )

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    day: Mapped[dt.date]
    opens: Mapped[dt.time | None]
    closes: Mapped[dt.time | None]


class Booking(Base):
    """A period ``[starts_at, ends_at)`` in which we answer for a customer without (or
    beyond) an agreement. The repository refuses overlapping bookings of one customer."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index(None, "customer_id", "starts_at"),
    )

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    starts_at: Mapped[UTCTimestamp]
    ends_at: Mapped[UTCTimestamp]
    created_at: Mapped[CreatedAt]


class Message(Base):
    """A message for a customer: a caller's voice message, or a message or order an agent
    took (``kind``). Part of the customer's record, like ``calls``: not deleted with the
    customer. ``fields`` holds what was filled in, by the form's keys, as taken with form
    ``form_version`` (a changed form never changes old messages). ``status`` is the latest
    step of ``message_log``; its vocabulary lives in ``domain/messages.py``.

    A call leaves at most one voice message (the partial unique index); an agent may take
    several messages or orders from one call.
    """

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("duration_s >= 0", name="duration"),
        Index(
            "uq_messages_voice_call_id",
            "call_id",
            unique=True,
            sqlite_where=text("kind = 'voice'"),
            postgresql_where=text("kind = 'voice'"),
        ),
        Index(None, "customer_id", "taken_at"),
        # The screen pop's "last messages from this number" (0010).
        Index(None, "customer_id", "caller_number", "taken_at"),
    )

    id: Mapped[IntPK]
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[Choice] = mapped_column(server_default="voice")
    caller_number: Mapped[str | None] = mapped_column(String(64))
    # Voice messages: where the recording is kept, and its length.
    file: Mapped[str | None] = mapped_column(String(1024))
    duration_s: Mapped[float | None] = mapped_column(Double())
    form_version: Mapped[int | None]
    fields: Mapped[JSONObject] = mapped_column(server_default=text("'{}'"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    urgent: Mapped[bool] = mapped_column(server_default=false())
    status: Mapped[Choice] = mapped_column(server_default="new")
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[CreatedAt]
    # An urgent message escalating (domain/escalation.py): the steps of the recipient
    # list notified so far, and when the worker looks again (None: not escalating, or
    # over). Indexed: the worker asks for the due ones each round.
    escalation_step: Mapped[int | None]
    escalate_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)


class MessageLogEntry(Base):
    """Append-only history of a message: every status change and delivery attempt
    (who or what did it, when, over which channel, to whom, with what result)."""

    __tablename__ = "message_log"

    id: Mapped[IntPK]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    at: Mapped[UTCTimestamp]
    status: Mapped[Choice]
    actor: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str | None] = mapped_column(Text())


class MessageForm(Base):
    """One version of a customer's message or order form; the highest version is current.
    ``fields`` is the list of field definitions (``domain/messages.py``)."""

    __tablename__ = "message_forms"
    __table_args__ = (UniqueConstraint("customer_id", "kind", "version"),)

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[Choice]
    version: Mapped[int]
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON())
    created_at: Mapped[CreatedAt]


class MessageRecipient(Base):
    """Who gets a customer's messages: an e-mail address or a mobile number, every
    message or only urgent ones, each at once or in a daily digest. ``position`` orders
    the list (escalation goes down it)."""

    __tablename__ = "message_recipients"
    __table_args__ = (UniqueConstraint("customer_id", "channel", "address"),)

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[Choice]
    address: Mapped[str] = mapped_column(String(255))
    urgent_only: Mapped[bool] = mapped_column(server_default=false())
    digest: Mapped[bool] = mapped_column(server_default=false())
    position: Mapped[int] = mapped_column(server_default=text("0"))
    name: Mapped[str | None] = mapped_column(String(128))


class OutboxItem(Base):
    """One delivery to make: written in the same transaction as its message, so nothing
    is lost across a crash, and claimed by the running service's delivery worker.
    ``message_key`` is the stable Message-ID (or SMS reference) of this delivery: a
    resend after a crash carries the same one, so a duplicate is recognisable."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'delivered', 'failed')", name="state"
        ),
        Index(None, "state", "due_at"),
    )

    id: Mapped[IntPK]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    channel: Mapped[Choice]
    address: Mapped[str] = mapped_column(String(255))
    message_key: Mapped[str] = mapped_column(String(255), unique=True)
    # 0, then one more for each ``messages resend`` (part of the Message-ID).
    generation: Mapped[int] = mapped_column(server_default=text("0"))
    # Deliveries held for a daily digest (channel "digest") go out together: one e-mail
    # per batch, "digest:<customer>:<recipient>:<local day>".
    batch_key: Mapped[str | None] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    due_at: Mapped[UTCTimestamp]
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text())
    provider_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[CreatedAt]


class SlaAggregate(Base):
    """One customer's SLA figures for one local hour or day, stored by ``sla nightly``.

    ``figures`` is ``PeriodFigures.to_dict()`` of the definition version stated in
    ``definition_version`` (docs/metrics.md). ``local_date`` is the customer's local date
    the period belongs to, so the last stored day is one indexed lookup. Re-computing a
    period replaces its row (unique customer, by, period start).
    """

    __tablename__ = "sla_aggregates"
    __table_args__ = (
        UniqueConstraint("customer_id", "by", "period_start"),
        CheckConstraint("\"by\" IN ('hour', 'day')", name="by"),
        Index(None, "customer_id", "by", "local_date"),
    )

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    by: Mapped[str] = mapped_column(String(8))
    # "2026-10-25T02:00+02:00" (an hour, with its UTC offset) or "2026-10-25" (a day).
    period: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[UTCTimestamp]
    period_end: Mapped[UTCTimestamp]
    local_date: Mapped[dt.date]
    definition_version: Mapped[int]
    figures: Mapped[JSONObject]
    computed_at: Mapped[UTCTimestamp]


class ReportDelivery(Base):
    """One customer's report for one period (local dates ``first_day``..``last_day``), as
    ``reports send`` e-mailed it or tried to: ``sent`` is never sent again; ``failed`` is
    retried by the next run. ``recipients`` is the comma-separated address list used."""

    __tablename__ = "report_deliveries"
    __table_args__ = (
        UniqueConstraint("customer_id", "first_day", "last_day"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    )

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    interval: Mapped[Choice]
    first_day: Mapped[dt.date]
    last_day: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    recipients: Mapped[str] = mapped_column(Text())
    last_error: Mapped[str | None] = mapped_column(Text())
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


# --- the agent desk's users, sessions and audit log (migration 0007) ----------------


class User(Base):
    """Someone who logs in to the agent desk (``televikar-pbx users``). ``username_key``
    is the username case-folded: it is what is unique and what log-ins look up."""

    __tablename__ = "users"

    id: Mapped[IntPK]
    username: Mapped[str] = mapped_column(String(64))
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    # argon2id in PHC form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"). Never logged.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Choice]
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    disabled: Mapped[bool] = mapped_column(server_default=false())
    created_at: Mapped[CreatedAt]
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class UserCustomer(Base):
    """The customers an account manager manages (other roles: see docs/desk-web.md)."""

    __tablename__ = "user_customers"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class WebSession(Base):
    """A logged-in browser. Only the SHA-256 of its cookie's token is kept."""

    __tablename__ = "web_sessions"

    id: Mapped[IntPK]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The session's CSRF secret (hex of 32 random bytes; domain.auth.csrf_token).
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[UTCTimestamp]
    last_seen_at: Mapped[UTCTimestamp]
    address: Mapped[str | None] = mapped_column(String(64))


class LoginFailure(Base):
    """A failed log-in, once per throttled key ("user:<username key>", "addr:<address>")."""

    __tablename__ = "login_failures"
    __table_args__ = (Index(None, "key", "at"),)

    id: Mapped[IntPK]
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[UTCTimestamp]


class AuditEntry(Base):
    """Who did what to which customer's object, when. ``username`` is kept as it was,
    so the entry still reads right after the user is renamed or deleted."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "user_id", "at"), Index(None, "customer_id", "at"))

    id: Mapped[IntPK]
    at: Mapped[UTCTimestamp] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[Choice]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    object_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text())


# --- the customers' knowledge base (migration 0008) ---------------------------------

# Search objects the migration keeps by hand, outside these models (alembic's check
# skips them, migrations/env.py): on SQLite an FTS5 table of each page's stemmed title
# and text (rowid = the page's id; FTS5 adds shadow tables named kb_search_*), kept by
# db/knowledge_repo.py in the transaction that saves the page; on PostgreSQL a GIN index
# on KB_TSVECTOR, which the search's expression must match word for word.
KB_SEARCH_TABLE = "kb_search"
KB_SEARCH_INDEX = "ix_kb_pages_search"
KB_TSVECTOR = "to_tsvector('norwegian'::regconfig, title || ' ' || body)"


class KbPage(Base):
    """A page of a customer's knowledge base, as its newest version has it. Who saved
    and reviewed it are kept as usernames, so the page still reads right after the user
    is renamed or deleted."""

    __tablename__ = "kb_pages"

    id: Mapped[IntPK]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text())
    version: Mapped[int]
    created_at: Mapped[UTCTimestamp]
    updated_at: Mapped[UTCTimestamp]
    updated_by: Mapped[str | None] = mapped_column(String(64))
    last_reviewed_at: Mapped[UTCTimestamp]
    last_reviewed_by: Mapped[str | None] = mapped_column(String(64))


class KbPageVersion(Base):
    """Every save of a page: who, when, the title and the text (append-only)."""

    __tablename__ = "kb_page_versions"

    page_id: Mapped[int] = mapped_column(
        ForeignKey("kb_pages.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text())
    saved_at: Mapped[UTCTimestamp]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))


class ClusterLease(Base):
    """A leadership lease among ``serve`` processes (cluster/leadership.py, issue 16).

    One row per lease name, never deleted: ``generation`` grows by one each time another
    holder takes it, so a write carrying an old generation is recognisably stale.
    ``expires_at`` is set from the database's own clock; only PostgreSQL is used in
    leader-standby mode (the table exists on SQLite too, unused).
    """

    __tablename__ = "cluster_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(Text())
    generation: Mapped[int] = mapped_column(BigInteger())
    expires_at: Mapped[UTCTimestamp]
    renewed_at: Mapped[UTCTimestamp]


class ClusterMember(Base):
    """A ``serve`` that tried to take lease ``name`` lately (a standby), by the
    database's clock: ``status`` lists the standbys from here (issue 16)."""

    __tablename__ = "cluster_members"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(Text(), primary_key=True)
    seen_at: Mapped[UTCTimestamp]
