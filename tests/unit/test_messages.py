"""Message kinds and the status machine: every (status, event) pair is checked."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from televikar_pbx.domain.messages import (
    TRANSITIONS,
    IllegalTransition,
    Message,
    MessageKind,
    MessageStatus,
    StatusEvent,
    advance,
    combined_status,
)

S = MessageStatus
E = StatusEvent
AT = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)

EXPECTED = {
    (S.NEW, E.SENT): S.SENT,
    (S.NEW, E.FAILED): S.FAILED,
    (S.SENT, E.DELIVERED): S.DELIVERED,
    (S.SENT, E.ACKNOWLEDGED): S.ACKNOWLEDGED,
    (S.SENT, E.FAILED): S.FAILED,
    (S.SENT, E.RESEND_REQUESTED): S.NEW,
    (S.DELIVERED, E.ACKNOWLEDGED): S.ACKNOWLEDGED,
    (S.DELIVERED, E.RESEND_REQUESTED): S.NEW,
    (S.ACKNOWLEDGED, E.RESEND_REQUESTED): S.NEW,
    (S.FAILED, E.RESEND_REQUESTED): S.NEW,
}


@pytest.mark.parametrize(("status", "event"), list(itertools.product(S, E)))
def test_every_pair(status: MessageStatus, event: StatusEvent) -> None:
    before = status
    if (status, event) in EXPECTED:
        assert advance(status, event) is EXPECTED[(status, event)]
    else:
        with pytest.raises(IllegalTransition) as info:
            advance(status, event)
        assert info.value.status is status and info.value.event is event
        assert status.value in str(info.value)
    assert status is before  # a value: nothing to change, and the table stays as it was
    assert TRANSITIONS[status].get(event) is EXPECTED.get((status, event))


def test_the_happy_path_and_a_failure() -> None:
    status = S.NEW
    for event in (E.SENT, E.DELIVERED, E.ACKNOWLEDGED):
        status = advance(status, event)
    assert status is S.ACKNOWLEDGED
    assert advance(advance(S.NEW, E.FAILED), E.RESEND_REQUESTED) is S.NEW


def test_the_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.NEW][E.DELIVERED] = S.DELIVERED  # type: ignore[index]


@pytest.mark.parametrize(
    ("deliveries", "combined"),
    [
        ([], S.NEW),
        ([S.SENT, S.DELIVERED], S.SENT),
        ([S.DELIVERED, S.DELIVERED], S.DELIVERED),
        ([S.NEW, S.DELIVERED], S.NEW),
        ([S.DELIVERED, S.FAILED], S.FAILED),
        ([S.ACKNOWLEDGED], S.ACKNOWLEDGED),
    ],
)
def test_combined_status(deliveries: list[MessageStatus], combined: MessageStatus) -> None:
    assert combined_status(deliveries) is combined


def test_message_invariants() -> None:
    voice = Message(1, 7, MessageKind.VOICE, AT, None, recording="m1.wav", duration_s=4.2)
    assert voice.status is S.NEW and dict(voice.values) == {}
    with pytest.raises(ValueError, match="recording"):
        Message(1, 7, MessageKind.VOICE, AT, None)
    with pytest.raises(ValueError, match="version"):
        Message(2, 7, MessageKind.ORDER, AT, "+4722334455", values={"name": "Kari"})
    with pytest.raises(ValueError, match="aware"):
        Message(3, 7, MessageKind.MESSAGE, AT.replace(tzinfo=None), None, form_version=1)
    values = {"name": "Kari"}
    taken = Message(4, 7, MessageKind.MESSAGE, AT, None, form_version=2, values=values)
    values["name"] = "Ola"
    assert taken.values["name"] == "Kari"  # the caller's dict is copied, not shared
