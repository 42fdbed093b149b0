"""``domain.call_facts``: where a call's wait ends, and the SLA facts of a logged call
(the one place of both rules; the call log and the nightly read use them)."""

from __future__ import annotations

import datetime as dt

import pytest

from televikar_pbx.domain.call_facts import WAIT_ENDS_AT_QUEUE_EXIT, facts_of, wait_ends
from televikar_pbx.domain.journal import QUEUE_EXITS, JournalEntry
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts

T0 = dt.datetime(2026, 11, 28, 9, tzinfo=dt.UTC)


def s(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_the_wait_ends_at_the_answer_else_the_queue_exit_else_the_end() -> None:
    assert wait_ends(s(5), s(3), s(60)) == s(5)
    assert wait_ends(None, s(45), s(75)) == s(45)
    assert wait_ends(None, None, s(8)) == s(8)
    assert wait_ends(None, None, None) is None  # still going on


def test_the_queue_exits_are_message_capture_and_announcements() -> None:
    assert frozenset({JournalEntry.MESSAGE_CAPTURE, JournalEntry.ANNOUNCEMENT}) == QUEUE_EXITS
    assert WAIT_ENDS_AT_QUEUE_EXIT == (Outcome.MESSAGE, Outcome.NO_MESSAGE)


def test_a_message_call_waits_until_capture_began() -> None:
    facts = facts_of((1, T0, None, s(75), "message", None, s(45)))
    assert facts == CallFacts(T0, None, s(75), Outcome.MESSAGE, None, s(45))
    assert facts.wait == dt.timedelta(seconds=45)


def test_a_no_message_call_without_a_queue_exit_waits_until_its_end() -> None:
    facts = facts_of((2, T0, None, s(3.25), "no_message", None, None))
    assert facts.overflowed_at == s(3.25) and facts.wait == dt.timedelta(seconds=3.25)


def test_answered_and_abandoned_calls_ignore_the_queue_exit() -> None:
    answered = facts_of((3, T0, s(12), s(42), "answered", 7, s(1)))
    assert answered == CallFacts(T0, s(12), s(42), Outcome.ANSWERED, 7)
    assert answered.wait == dt.timedelta(seconds=12)
    # A stray answer time of an abandoned call is not an answer.
    abandoned = facts_of((4, T0, s(4), s(30), "abandoned", 7, None))
    assert abandoned.answered_at is None and abandoned.wait == dt.timedelta(seconds=30)


def test_facts_that_cannot_be_name_the_call() -> None:
    with pytest.raises(ValueError, match=r"^call 5: .*'hung_up'"):
        facts_of((5, T0, None, s(1), "hung_up", None, None))
    with pytest.raises(ValueError, match=r"^call 6: ended_at .* is before arrived_at"):
        facts_of((6, T0, None, s(-1), "abandoned", None, None))
