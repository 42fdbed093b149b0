"""What the shell remembers about a call in progress (the desk keeps the decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from televikar_pbx.domain.directory import Customer, HoldStyle


@dataclass(slots=True)
class ActiveCall:
    key: str
    record_id: int
    caller_channel: str
    customer: Customer | None
    log: Any
    caller_number: str | None = None
    agent_id: int | None = None
    agent_channel: str | None = None
    bridge_id: str | None = None
    offers: int = 0
    answered: bool = False  # by us (hold music, prompt, announcement) or by bridging
    hold: HoldStyle | None = None
    recording_name: str | None = None  # set once the recording runs
    caller_gone: bool = False
    cause: Any = None
    cause_txt: Any = None


def caller_id(display_name: str, number: str | None) -> str:
    """The caller-ID the agent's phone shows: the customer's name, the caller's number."""
    name = display_name.replace('"', "'").replace("\\", "")
    return f'"{name}" <{number or ""}>'
