"""How we name what we create in Asterisk, in one place.

A call's key is its caller leg's channel id (Asterisk's uniqueid, digits and a dot).
Everything else we create for the call is named from it, so after a restart the call is
found again from Asterisk's lists alone (``calls/recovery.py``):

- agent legs (originated): ``<key>-a<n>``, n = 1, 2, ... per offer;
- the bridge of a connected call: ``<key>-bridge``;
- playbacks: ``hold-<key>``, ``ann-<key>`` (announcement), ``prompt-<key>`` (message);
- the recording of a message: ``msg-<record id>-<key>`` (file-system safe).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LEG = "-a"


def agent_leg(key: str, offer: int) -> str:
    return f"{key}{LEG}{offer}"


def parse_agent_leg(channel_id: str) -> tuple[str, int] | None:
    """The call key and offer number of one of our agent legs; None for any other id."""
    key, sep, number = channel_id.rpartition(LEG)
    if not (sep and key and number.isdigit()):
        return None
    return key, int(number)


def is_agent_leg(channel_id: str) -> bool:
    return parse_agent_leg(channel_id) is not None


def agent_legs(key: str, channel_ids: Iterable[str]) -> list[str]:
    """The agent legs of call ``key`` among ``channel_ids``, in offer order."""
    legs = [(p[1], c) for c in channel_ids if (p := parse_agent_leg(c)) and p[0] == key]
    return [c for _, c in sorted(legs)]


def bridge(key: str) -> str:
    return f"{key}-bridge"


def bridge_name(key: str) -> str:
    return f"call {key}"


def hold_playback(key: str) -> str:
    return f"hold-{key}"


def announcement_playback(key: str) -> str:
    return f"ann-{key}"


def prompt_playback(key: str) -> str:
    return f"prompt-{key}"


def recording(record_id: int, key: str) -> str:
    return f"msg-{record_id}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", key)
