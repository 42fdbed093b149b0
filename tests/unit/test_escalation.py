"""Escalation of unacknowledged urgent messages: steps, when the next is due, and the end
(domain/escalation.py), on a simulated clock."""

from __future__ import annotations

import datetime as dt

import pytest

from televikar_pbx.domain.escalation import (
    Escalation,
    escalate_after,
    start,
    steps,
    when_due,
)
from televikar_pbx.domain.message_delivery import Channel, ForeignRecipient, Recipient, Scope

T0 = dt.datetime(2026, 3, 29, 0, 55, tzinfo=dt.UTC)  # the night clocks go forward in Oslo
TEN = dt.timedelta(minutes=10)

KARI_MAIL = Recipient.create(7, Channel.EMAIL, "kari@example.com", name="Kari Nordmann")
OLA = Recipient.create(7, Channel.SMS, "+4741234567", Scope.URGENT_ONLY)
KARI_SMS = Recipient.create(7, Channel.SMS, "998 87 766", name="Kari Nordmann")
BOOKS = Recipient.create(7, Channel.EMAIL, "regnskap@example.com", digest=True)
LIST = [KARI_MAIL, OLA, KARI_SMS, BOOKS]
STEPS = steps(7, LIST)


def keys(recipients: tuple[Recipient, ...]) -> list[str]:
    return [r.key for r in recipients]


def test_steps_group_a_named_person_in_the_place_of_their_first_row() -> None:
    assert [keys(s.recipients) for s in STEPS] == [
        ["email:kari@example.com", "sms:+4799887766"],  # Kari: both channels together
        ["sms:+4741234567"],  # unnamed: a step of its own; urgent_only counts
        ["email:regnskap@example.com"],  # a digest recipient too: urgent is never held
    ]
    assert [s.who for s in STEPS] == ["Kari Nordmann", "+4741234567", "regnskap@example.com"]


def test_unnamed_rows_are_each_a_step_and_the_same_address_twice_is_one() -> None:
    a = Recipient.create(7, Channel.EMAIL, "a@example.com")
    b = Recipient.create(7, Channel.EMAIL, "b@example.com")
    assert [keys(s.recipients) for s in steps(7, [a, b, a])] == [
        ["email:a@example.com"],
        ["email:b@example.com"],
    ]
    assert steps(7, []) == ()
    with pytest.raises(ForeignRecipient):
        steps(8, [a])


def test_start_notifies_step_one_and_is_due_after_the_wait() -> None:
    decision = start(STEPS, TEN, T0)
    assert decision is not None
    assert keys(decision.notify) == ["email:kari@example.com", "sms:+4799887766"]
    assert decision.state == Escalation(1, T0 + TEN)
    assert decision.note == ("step 1 of 3: Kari Nordmann; the next in 10 min unless acknowledged")


def test_no_escalation_without_the_setting_or_without_recipients() -> None:
    assert start(STEPS, None, T0) is None
    assert start((), TEN, T0) is None


def due(
    state: Escalation,
    at: dt.datetime,
    *,
    acknowledged: bool = False,
    notified: set[str] | None = None,
    after: dt.timedelta | None = TEN,
) -> tuple[list[str], Escalation, str | None] | None:
    if notified is None:
        notified = {r.key for s in STEPS[: state.step] for r in s.recipients}
    decision = when_due(
        state, STEPS, after, at, acknowledged=acknowledged, notified=frozenset(notified)
    )
    return None if decision is None else (keys(decision.notify), decision.state, decision.note)


def test_nothing_before_the_wait_is_over() -> None:
    assert due(Escalation(1, T0 + TEN), T0 + dt.timedelta(minutes=9, seconds=59)) is None


def test_the_next_step_when_the_wait_is_over_then_the_one_after() -> None:
    at = T0 + TEN
    assert due(Escalation(1, at), at) == (
        ["sms:+4741234567"],
        Escalation(2, at + TEN),
        "escalated to +4741234567 (step 2 of 3): not acknowledged within 10 min",
    )
    late = at + TEN + dt.timedelta(seconds=3)  # a worker's round comes a little late
    assert due(Escalation(2, at + TEN), late) == (
        ["email:regnskap@example.com"],
        Escalation(3, late + TEN),  # the wait counts from when the step went
        "escalated to regnskap@example.com (step 3 of 3): not acknowledged within 10 min",
    )


def test_after_the_last_step_it_ends_once() -> None:
    at = T0 + 3 * TEN
    assert due(Escalation(3, at), at) == (
        [],
        Escalation(3, None),
        "escalation ended: nobody acknowledged",
    )
    assert due(Escalation(3, None), at + dt.timedelta(days=1)) is None  # over: never again


def test_nothing_after_an_acknowledgement() -> None:
    at = T0 + TEN
    assert due(Escalation(1, at), at + TEN, acknowledged=True) == ([], Escalation(1, None), None)


def test_someone_already_notified_is_skipped_and_never_twice() -> None:
    # The list was edited: the unnamed SMS recipient already had it (say, moved up).
    notified = {"email:kari@example.com", "sms:+4799887766", "sms:+4741234567"}
    at = T0 + TEN
    assert due(Escalation(1, at), at, notified=notified) == (
        ["email:regnskap@example.com"],
        Escalation(3, at + TEN),
        "escalated to regnskap@example.com (step 3 of 3): not acknowledged within 10 min",
    )
    # Only part of a person's channels already had it: the rest of them now.
    moved = steps(7, [OLA, KARI_MAIL, KARI_SMS])
    decision = when_due(
        Escalation(1, at), moved, TEN, at,
        acknowledged=False, notified=frozenset({OLA.key, KARI_MAIL.key}),
    )  # fmt: skip
    assert decision is not None and keys(decision.notify) == ["sms:+4799887766"]
    assert decision.note == (
        "escalated to Kari Nordmann (step 2 of 2): not acknowledged within 10 min"
    )


def test_switched_off_meanwhile_the_rest_at_once_and_it_ends() -> None:
    at = T0 + TEN
    assert due(Escalation(1, at), at, after=None) == (
        ["sms:+4741234567", "email:regnskap@example.com"],
        Escalation(3, None),
        "escalation switched off: the rest at once (+4741234567, regnskap@example.com)",
    )


def test_the_setting_is_whole_minutes_within_a_day() -> None:
    assert escalate_after(None) is None
    assert escalate_after(10) == TEN
    assert escalate_after(1440) == dt.timedelta(days=1)
    for wrong in (0, -5, 1441):
        with pytest.raises(ValueError, match=r"1\.\.1440 minutes"):
            escalate_after(wrong)
    with pytest.raises(ValueError, match="step counts from 1"):
        Escalation(0, None)
    with pytest.raises(ValueError, match="aware"):
        Escalation(1, dt.datetime(2026, 3, 29, 1, 5))
