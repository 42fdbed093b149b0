"""What the call shell needs from the outside world, as protocols.

The real implementations are :class:`televikar_pbx.ari.adapter.AriClient` and the
database repositories; unit tests replace each whole adapter with a recording fake.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Telephony(Protocol):
    """The ARI commands the call shell uses."""

    async def ring(self, channel_id: str) -> None: ...

    async def answer(self, channel_id: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def subscribe_channel(self, channel_id: str) -> None: ...

    async def get_variable(self, channel_id: str, name: str) -> str | None: ...

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: str,
        caller_id: str,
        timeout_s: int,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> dict[str, Any]: ...

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None: ...

    async def record(
        self, channel_id: str, name: str, *, max_s: int, terminate_on: str = "#"
    ) -> None: ...

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None: ...

    async def stop_moh(self, channel_id: str) -> None: ...

    async def create_bridge(self, bridge_id: str, name: str = "") -> dict[str, Any]: ...

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def list_channels(self) -> list[dict[str, Any]]: ...

    async def list_bridges(self) -> list[dict[str, Any]]: ...

    async def playback_exists(self, playback_id: str) -> bool: ...

    async def live_recording_exists(self, name: str) -> bool: ...


class CallStore(Protocol):
    """Where call records, their journal and messages go."""

    async def create_call(
        self,
        *,
        channel_id: str,
        linkedid: str | None,
        customer_id: int | None,
        dialled_number: str,
        caller_number: str | None,
        caller_name: str | None,
        arrived_at: datetime,
        first_event: tuple[str, dict[str, Any]] | None = None,
    ) -> int: ...

    async def append_event(
        self,
        call_id: int,
        type: str,
        at: datetime,
        agent_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...

    async def mark_answered(self, call_id: int, agent_id: int, answered_at: datetime) -> None: ...

    async def mark_ended(
        self,
        call_id: int,
        *,
        ended_at: datetime,
        outcome: str,
        hangup_cause: int | None,
        hangup_cause_text: str | None,
    ) -> None: ...

    async def find_by_channel(self, channel_id: str) -> Any: ...

    async def open_calls(self, arrived_before: datetime) -> list[Any]: ...

    async def events(self, call_id: int) -> list[Any]: ...

    async def message_for_call(self, call_id: int) -> Any: ...

    async def add_message(
        self,
        call_id: int,
        customer_id: int,
        caller_number: str | None,
        file: str,
        duration_s: float,
    ) -> int: ...
