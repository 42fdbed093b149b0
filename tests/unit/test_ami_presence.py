"""ami/presence.py's picture after a login, from AMI replies given by a fake manager
(the real AMI: tests/asterisk/test_agents.py, tests/asterisk/test_cluster_desk.py)."""

from __future__ import annotations

from typing import Any

from televikar_pbx.ami.presence import AmiPresence

REPLIES: dict[str, list[dict[str, str]]] = {
    "PJSIPShowAors": [
        {"Event": "AorList", "ObjectName": "agent1", "Contacts": "agent1/sip:agent1@k:5060,"},
        {"Event": "AorList", "ObjectName": "agent4", "Contacts": "agent4/sip:agent4@k:5060,"},
        {"Event": "AorList", "ObjectName": "agent9", "Contacts": ""},
        {"Event": "AorListComplete"},
    ],
    "PJSIPShowContacts": [
        {"Event": "ContactList", "Aor": "agent9", "Uri": "sip:agent9@p", "Status": "Reachable"},
        {"Event": "ContactListComplete"},
    ],
    # A qualified static contact that does not answer: only its endpoint's device state
    # says so (PJSIPShowContacts lists registrations only).
    "PJSIPShowEndpoints": [
        {"Event": "EndpointList", "Aor": "agent1", "DeviceState": "Not in use"},
        {"Event": "EndpointList", "Aor": "agent4", "DeviceState": "Unavailable"},
        {"Event": "EndpointList", "Aor": "agent9", "DeviceState": "Not in use"},
        {"Event": "EndpointListComplete"},
    ],
}  # fmt: skip


async def test_refresh_reads_static_and_registered_contacts() -> None:
    changes: list[tuple[str, bool]] = []
    presence = AmiPresence("127.0.0.1", 1, "u", "p", lambda e, ok: changes.append((e, ok)))

    async def send_action(action: dict[str, str]) -> Any:
        return REPLIES[action["Action"]]

    presence._manager.send_action = send_action
    await presence.refresh()
    assert sorted(changes) == [("agent1", True), ("agent4", False), ("agent9", True)]
    presence.close()
