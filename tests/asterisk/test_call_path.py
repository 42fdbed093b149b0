"""The walking skeleton on real parts: sipp carrier → Asterisk → our desk → sipp agent.

Scenario data (the directory each test seeds) and expectations sit next to each other.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement
from tests.asterisk import sipp
from tests.asterisk.conftest import CDR_TOLERANCE_S, Service

ALFA_DID = "4721000001"
BRAVO_DID = "4721000002"


async def seed_two_customers(directory: DirectoryRepository) -> dict[str, int]:
    """Customer A served by agent1 and agent3; customer B served by agent2 only."""
    agreement = Agreement(date(2026, 1, 1))
    alfa = await directory.add_customer("Alfa Rør AS", "Alfa Rør", [ALFA_DID], agreement=agreement)
    bravo = await directory.add_customer(
        "Bravo Bygg AS", "Bravo Bygg", [BRAVO_DID], agreement=agreement
    )
    kari = await directory.add_agent("Kari", "agent1", [alfa.id], logged_in=True)
    ola = await directory.add_agent("Ola", "agent2", [bravo.id], logged_in=True)
    nora = await directory.add_agent("Nora", "agent3", [alfa.id], logged_in=True)
    return {"alfa": alfa.id, "bravo": bravo.id, "kari": kari.id, "ola": ola.id, "nora": nora.id}


def test_forwarded_call_reaches_an_agent_and_is_recorded(start_service, tmp_path: Path) -> None:
    service: Service = start_service(seed_two_customers)
    # Kari and Nora serve Alfa and became idle together; the tie goes to the first added.
    with sipp.agent_phone(1, workdir=tmp_path, answer_ms=2000) as phone:
        result = sipp.carrier_call(
            ALFA_DID, workdir=tmp_path, caller_number="4790000001", talk_ms=3000
        )
        assert result.ok, result.describe()
        invites = phone.wait_for_invites(1)

    call = service.ended_call(1)
    assert call.customer_id == service.ids["alfa"]
    assert call.caller_number == "4790000001"
    assert call.dialled_number == ALFA_DID
    assert call.outcome == "answered"
    assert call.agent_id == service.ids["kari"]
    assert call.hangup_cause == 16, call.hangup_cause_text  # the caller's BYE: normal clearing
    assert call.answered_at is not None and call.ended_at is not None
    wait = (call.answered_at - call.arrived_at).total_seconds()
    talk = (call.ended_at - call.answered_at).total_seconds()
    assert abs(wait - 2.0) <= 0.3, f"wait {wait:.3f} s"
    assert abs(talk - 3.0) <= 0.3, f"talk {talk:.3f} s"
    # The agent's phone showed the customer's name and the caller's number.
    assert len(invites) == 1
    assert invites[0].from_display_name == "Alfa Rør"
    assert invites[0].from_user == "4790000001"
    # Asterisk's own CDR, an independent record, agrees with ours.
    cdr = service.lab.cdr_row(call.channel_id)
    assert cdr is not None, f"no CDR row for {call.channel_id}"
    assert cdr.disposition == "ANSWERED"
    assert cdr.src == "4790000001" and cdr.dst == ALFA_DID
    assert abs((cdr.start - call.arrived_at).total_seconds()) <= CDR_TOLERANCE_S
    assert cdr.answer is not None
    assert abs((cdr.answer - call.answered_at).total_seconds()) <= CDR_TOLERANCE_S
    assert abs((cdr.end - call.ended_at).total_seconds()) <= CDR_TOLERANCE_S


def test_call_for_customer_b_is_offered_only_to_an_agent_who_serves_b(
    start_service, tmp_path: Path
) -> None:
    service: Service = start_service(seed_two_customers)
    with (
        sipp.agent_phone(1, workdir=tmp_path, answer_ms=200) as kari,
        sipp.agent_phone(2, workdir=tmp_path, answer_ms=200) as ola,
        sipp.agent_phone(3, workdir=tmp_path, answer_ms=200) as nora,
    ):
        result = sipp.carrier_call(BRAVO_DID, workdir=tmp_path, talk_ms=500)
        assert result.ok, result.describe()
        assert len(ola.wait_for_invites(1)) == 1
        assert kari.invites() == [] and nora.invites() == []

    call = service.ended_call(1)
    assert call.customer_id == service.ids["bravo"]
    assert call.agent_id == service.ids["ola"]
    assert call.outcome == "answered"
