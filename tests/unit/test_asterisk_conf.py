"""Generated Asterisk configuration (pure rendering; the install is tested on the lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from televikar_pbx.asterisk_conf import PhoneAccount, render_hints, render_pjsip
from televikar_pbx.db.engine import make_engine
from televikar_pbx.db.sip_front import grant_sip_front
from televikar_pbx.domain.directory import Agent, Customer, Directory
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

REPO = Path(__file__).resolve().parents[2]


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


def test_behind_the_sip_front_a_phone_is_reached_and_identified_through_kamailio() -> None:
    text = render_pjsip([PhoneAccount("kari", "pw1")], sip_front="10.0.0.5:5060")
    assert "[kari](agent-endpoint)\naors = kari\nidentify_by = header\n" in text
    assert (
        "[kari]\ntype = aor\ncontact = sip:kari@10.0.0.5:5060\nmax_contacts = 0\n"
        "qualify_frequency = 2\nqualify_timeout = 1.5\n" in text
    )
    assert (
        "[kari-identify]\ntype = identify\nendpoint = kari\n"
        "match_header = X-Televikar-Agent: kari\n" in text
    )
    # Kamailio checks the secret: the node has no auth for the phone, nor its secret.
    assert "auth =" not in text and "type = auth" not in text and "pw1" not in text


def test_a_sip_front_that_is_not_host_and_port_is_refused() -> None:
    for bad in ("10.0.0.5:5060\n[evil]", "sip:10.0.0.5", "a b", ""):
        with pytest.raises(ValueError):
            render_pjsip([PhoneAccount("kari", "pw1")], sip_front=bad)
    with pytest.raises(ValueError):
        Settings(sip_front="10.0.0.5;transport=tcp")
    assert Settings(sip_front="[::1]:5060").sip_front == "[::1]:5060"


async def test_the_sip_front_grant_wants_postgresql_and_a_plain_role_name() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        with pytest.raises(ConfigError, match="PostgreSQL"):
            await grant_sip_front(engine, "kamailio")
        with pytest.raises(ConfigError, match="role name"):
            await grant_sip_front(engine, 'kamailio"; DROP TABLE agents; --')
    finally:
        await engine.dispose()


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
    assert render_hints(directory, max_message_s=45, takeover_wait_s=7).splitlines()[1:] == [
        "[globals](+)",
        "TELEVIKAR_MAX_MESSAGE_S=45",
        "TELEVIKAR_TAKEOVER_WAIT_S=7",
        "[televikar-states]",
        "exten => agent-kari,hint,Stasis:agent-kari",
        "exten => agent-ola,hint,Stasis:agent-ola",
        "exten => queue-3,hint,Stasis:queue-3",
    ]


def test_the_fallback_dialplan_records_at_most_the_generated_maximum() -> None:
    """[televikar-fallback] takes its limit from the global the service generates (the
    lab test test_fallback_message_follows_the_setting checks Asterisk obeys it)."""
    dialplan = (REPO / "asterisk" / "conf" / "extensions.conf").read_text()
    fallback = dialplan.split("[televikar-fallback]", 1)[1].split("\n[", 1)[0]
    records = [line for line in fallback.splitlines() if "Record(" in line]
    assert records == [" same => n,Record(${FB}.wav,0,${FB_MAX},k)"]
    assert "?120:${TELEVIKAR_MAX_MESSAGE_S})" in fallback  # the default: the setting's
    assert Settings.model_fields["max_message_s"].default == 120
    # The generated file adds to the [globals] that extensions.conf defines before it.
    assert dialplan.index("[globals]") < dialplan.index("#tryinclude extensions_televikar.conf")


def test_callers_wait_for_a_standby_only_in_leader_standby_mode() -> None:
    """The global extensions.conf rings callers for while no desk is connected: enough
    for a standby to take the lease and connect; 0 (the message at once) on one box."""
    from televikar_pbx.settings import Settings

    single = Settings(_env_file=None)  # type: ignore[call-arg]
    assert single.takeover_wait_s == 0
    assert "TELEVIKAR_TAKEOVER_WAIT_S=0" in render_hints(Directory((), ()))
    paired = Settings(_env_file=None, cluster_mode="leader-standby")  # type: ignore[call-arg]
    assert paired.takeover_wait_s == 4 + 3  # lease 3 s + retry 0.5 s, then connecting
    dialplan = (REPO / "asterisk" / "conf" / "extensions.conf").read_text()
    carrier = dialplan.split("[from-carrier]", 1)[1].split("\n[", 1)[0]
    assert "0${TELEVIKAR_TAKEOVER_WAIT_S}]?fallback)" in carrier
