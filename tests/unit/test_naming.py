"""Names of what we create in Asterisk (calls/naming.py): recovery finds calls by them."""

from __future__ import annotations

from televikar_pbx.calls import naming


def test_agent_legs_are_named_from_the_call_key_and_parsed_back() -> None:
    assert naming.agent_leg("1701.42", 3) == "1701.42-a3"
    assert naming.parse_agent_leg("1701.42-a3") == ("1701.42", 3)
    assert naming.parse_agent_leg("1701.42-a12") == ("1701.42", 12)


def test_other_channels_are_not_agent_legs() -> None:
    for channel_id in ("1701.42", "1701.42-bridge", "-a1", "1701.42-a", "1701.42-ax"):
        assert naming.parse_agent_leg(channel_id) is None, channel_id
        assert not naming.is_agent_leg(channel_id)
    assert naming.is_agent_leg("1701.42-a1")


def test_agent_legs_of_one_call_in_offer_order() -> None:
    channels = ["1701.42-a10", "1701.42", "1701.42-a2", "1701.4-a1", "1701.42-bridge"]
    assert naming.agent_legs("1701.42", channels) == ["1701.42-a2", "1701.42-a10"]
    assert naming.agent_legs("1701.4", channels) == ["1701.4-a1"]


def test_bridge_playback_and_recording_names() -> None:
    assert naming.bridge("1701.42") == "1701.42-bridge"
    assert naming.bridge_name("1701.42") == "call 1701.42"
    assert naming.hold_playback("1701.42") == "hold-1701.42"
    assert naming.announcement_playback("1701.42") == "ann-1701.42"
    assert naming.prompt_playback("1701.42") == "prompt-1701.42"
    assert naming.recording(7, "1701.42") == "msg-7-1701.42"
    assert naming.recording(7, "odd/id:1 x") == "msg-7-odd_id_1_x"
