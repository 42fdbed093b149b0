"""Recovery's outcome rules (domain/recovery.py), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from televikar_pbx.domain.acd import CallState
from televikar_pbx.domain.journal import JournalEntry as J
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.recovery import (
    OpenCallFacts,
    adoption_state,
    announced_outcome,
    capture_phase,
    keeps_message,
    recovered_end,
    recovered_outcome,
)

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def facts(
    *entries: J, customer: bool = True, answered: bool = False, agent: bool = False
) -> OpenCallFacts:
    return OpenCallFacts(frozenset(entries), customer, answered, agent)


@pytest.mark.parametrize(
    ("call", "kept", "outcome"),
    [
        (facts(J.ARRIVED, J.OFFERED, J.ANSWERED, answered=True), False, Outcome.ANSWERED),
        # An answer wins over a capture entry (the row says who answered).
        (facts(J.MESSAGE_CAPTURE, answered=True), False, Outcome.ANSWERED),
        (facts(J.ARRIVED, J.MESSAGE_CAPTURE), True, Outcome.MESSAGE),
        (facts(J.ARRIVED, J.MESSAGE_CAPTURE), False, Outcome.NO_MESSAGE),
        (facts(J.ARRIVED, J.ANNOUNCEMENT), False, Outcome.REJECTED),
        (facts(J.ARRIVED, J.ANNOUNCEMENT, customer=False), False, Outcome.UNKNOWN_NUMBER),
        (facts(J.ARRIVED, customer=False), False, Outcome.UNKNOWN_NUMBER),
        (facts(J.ARRIVED, J.OFFERED, J.OFFER_MISSED), False, Outcome.ABANDONED),
        (facts(), False, Outcome.ABANDONED),
    ],
)
def test_outcome_of_a_call_lost_while_we_were_away(
    call: OpenCallFacts, kept: bool, outcome: Outcome
) -> None:
    assert recovered_outcome(call, kept) is outcome


def test_a_recording_found_after_a_restart_is_a_message_from_one_second() -> None:
    assert keeps_message(facts(J.MESSAGE_CAPTURE), 1.0)
    assert keeps_message(facts(J.MESSAGE_CAPTURE), 4.2)
    assert not keeps_message(facts(J.MESSAGE_CAPTURE), 0.99)
    assert not keeps_message(facts(J.MESSAGE_CAPTURE, customer=False), 4.2)


@pytest.mark.parametrize(
    ("call", "state"),
    [
        (facts(J.ARRIVED, J.ANNOUNCEMENT), None),
        (facts(J.ARRIVED, customer=False), None),
        (facts(J.ARRIVED, J.MESSAGE_CAPTURE), CallState.CAPTURING),
        (facts(J.ARRIVED, J.ANSWERED, answered=True, agent=True), CallState.CONNECTED),
        (facts(J.ARRIVED, J.OFFERED), CallState.QUEUED),
        (facts(J.ARRIVED, answered=True), CallState.QUEUED),  # no agent to go on with
    ],
)
def test_how_a_call_still_in_asterisk_is_taken_back(
    call: OpenCallFacts, state: CallState | None
) -> None:
    assert adoption_state(call) is state


def test_an_announcement_cut_by_the_restart_ends_as_it_would_have() -> None:
    assert announced_outcome(facts(J.ANNOUNCEMENT)) is Outcome.REJECTED
    assert announced_outcome(facts(customer=False)) is Outcome.UNKNOWN_NUMBER


def test_facts_from_a_row_and_its_journal() -> None:
    call = OpenCallFacts.of(
        ["arrived", "message_capture", "something_else"], customer_id=3, answered_at=None
    )
    assert call == facts(J.ARRIVED, J.MESSAGE_CAPTURE)
    assert OpenCallFacts.of([], customer_id=None, answered_at=T0, agent_id=7) == facts(
        customer=False, answered=True, agent=True
    )


def test_capture_phase_of_an_adopted_capture() -> None:
    assert capture_phase(recording_live=True, prompt_playing=True) == "recording"
    assert capture_phase(recording_live=False, prompt_playing=True) == "prompt"
    assert capture_phase(recording_live=False, prompt_playing=False) == "restart"


def test_a_lost_call_ends_at_the_cdr_end_else_now_never_before_it_began() -> None:
    later = T0 + timedelta(seconds=30)
    assert recovered_end(later, T0 + timedelta(hours=1), T0, None) == later
    assert recovered_end(None, later, T0, None) == later
    # A CDR end from before the answer (clock skew) is moved up to the answer.
    answered = T0 + timedelta(seconds=40)
    assert recovered_end(later, later, T0, answered) == answered
