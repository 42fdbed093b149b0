"""Generated Asterisk configuration (pure rendering; the install is tested on the lab)."""

from __future__ import annotations

from televikar_pbx.asterisk_conf import PhoneAccount, render_hints, render_pjsip
from televikar_pbx.domain.directory import Agent, Customer, Directory


def test_pjsip_has_endpoint_auth_and_aor_per_phone() -> None:
    text = render_pjsip(
        [PhoneAccount("kari", "pw1"), PhoneAccount("lab1", "pw2", "sip:lab1@127.0.0.1:5071")]
    )
    assert "[kari](agent-endpoint)\naors = kari\nauth = kari-auth\n" in text
    assert (
        "[kari-auth]\ntype = auth\nauth_type = userpass\nusername = kari\npassword = pw1\n" in text
    )
    assert (
        "[lab1]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n"
        "contact = sip:lab1@127.0.0.1:5071" in text
    )


def test_names_or_secrets_that_could_inject_configuration_are_left_out() -> None:
    text = render_pjsip(
        [
            PhoneAccount("bad]\n[x", "pw"),
            PhoneAccount("ok", "pw\n[evil]"),
            PhoneAccount("fine", "x"),
        ]
    )
    assert "evil" not in text and "[x" not in text
    assert "[fine](agent-endpoint)" in text and "[ok]" not in text


def test_hints_per_agent_and_queue() -> None:
    directory = Directory(
        (Customer(3, "C", "C"),), (Agent(1, "Kari", "kari"), Agent(2, "Ola", "ola"))
    )
    assert render_hints(directory).splitlines()[1:] == [
        "[televikar-states]",
        "exten => agent-kari,hint,Stasis:agent-kari",
        "exten => agent-ola,hint,Stasis:agent-ola",
        "exten => queue-3,hint,Stasis:queue-3",
    ]
