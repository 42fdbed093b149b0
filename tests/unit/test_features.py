"""Feature codes (calls/features.py) against the call service and its desk, with the
ARI and the store faked (the real thing: tests/asterisk/test_feature_codes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from televikar_pbx.calls.features import FeatureCodes
from televikar_pbx.domain.acd import AgentState, CallAdopted, CallState
from televikar_pbx.domain.directory import Agent
from tests.unit.test_call_service import T0, Harness


class SavedStates:
    def __init__(self) -> None:
        self.saved: list[tuple[int, dict[str, Any]]] = []

    async def set_agent_state(
        self, agent_id: int, *, logged_in: bool | None = None, paused: bool | None = None
    ) -> None:
        fields = {"logged_in": logged_in, "paused": paused}
        self.saved.append((agent_id, {k: v for k, v in fields.items() if v is not None}))


def features(
    tmp_path: Path, *, logged_in: bool = True
) -> tuple[Harness, FeatureCodes, SavedStates]:
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=logged_in),))
    store = SavedStates()
    return h, FeatureCodes(h.service, store), store


def state(h: Harness) -> AgentState | None:
    view = h.service.view().agent(7)
    return view.state if view else None


async def test_pause_toggle_pauses_then_resumes_and_saves_each(tmp_path: Path) -> None:
    h, codes, store = features(tmp_path)
    assert await codes.on_feature("agent1", "*47") == "paused"
    assert state(h) is AgentState.PAUSED
    assert await codes.on_feature("agent1", "*47") == "resumed"
    assert state(h) is AgentState.IDLE
    assert store.saved == [(7, {"paused": True}), (7, {"paused": False})]


async def test_pause_toggle_during_a_call_is_for_after_it(tmp_path: Path) -> None:
    h, codes, store = features(tmp_path)
    h.service.desk.handle(CallAdopted("c1", 1, T0, CallState.CONNECTED, 7), T0)
    assert await codes.on_feature("agent1", "*47") == "paused"
    assert state(h) is AgentState.ON_CALL
    assert await codes.on_feature("agent1", "*47") == "resumed"
    assert await codes.on_feature("agent1", "*47") == "paused"
    assert store.saved[-1] == (7, {"paused": True})


async def test_pause_toggle_when_logged_out_says_so_and_changes_nothing(tmp_path: Path) -> None:
    h, codes, store = features(tmp_path, logged_in=False)
    assert await codes.on_feature("agent1", "*47") == "logged-out"
    assert state(h) is AgentState.LOGGED_OUT
    assert store.saved == []


async def test_login_logout_and_strangers(tmp_path: Path) -> None:
    h, codes, store = features(tmp_path, logged_in=False)
    assert await codes.on_feature("agent1", "*45") == "logged-in"
    assert state(h) is AgentState.IDLE
    assert await codes.on_feature("agent1", "*46") == "logged-out"
    assert state(h) is AgentState.LOGGED_OUT
    assert await codes.on_feature("stranger", "*45") == "not-allowed"
    assert await codes.on_feature("agent1", "*99") == "not-allowed"
    assert store.saved == [
        (7, {"logged_in": True, "paused": False}),
        (7, {"logged_in": False, "paused": False}),
    ]
