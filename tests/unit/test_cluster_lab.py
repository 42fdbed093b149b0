"""The cluster lab's generated configuration (lab/cluster.py, lab/kamailio.py), without
running anything: per-node overrides of asterisk/conf/, Kamailio's template, its log."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from lab.asterisk import LAB_CONF, InstanceError, remove_sections, set_option
from lab.cluster import AGENTS, KAMAILIO_IP, NodeSpec, node_specs, render_node_config
from lab.kamailio import Kamailio, KamailioSettings, parse_events
from televikar_pbx.asterisk_conf import PhoneAccount, render_pjsip

CONF = """[general]
bind = 1.2.3.4

[carrier](endpoint-common)
context = from-carrier
[carrier]
type = aor
contact = sip:old

[globals]
"""


def test_set_option_replaces_the_key_in_every_section_of_that_name_that_has_it() -> None:
    text = set_option(CONF, "carrier", "contact", "sip:new")
    assert "contact = sip:new" in text
    assert "sip:old" not in text
    assert text.count("context = from-carrier") == 1


def test_set_option_adds_only_when_asked() -> None:
    with pytest.raises(InstanceError):
        set_option(CONF, "general", "port", "5060")
    added = set_option(CONF, "globals", "TELEVIKAR_NODE", "a", add=True)
    assert added.endswith("[globals]\nTELEVIKAR_NODE = a\n")
    new_section = set_option(CONF, "directories", "astlogdir", "/mnt/log", add=True)
    assert new_section.endswith("\n[directories]\nastlogdir = /mnt/log\n")


def test_remove_sections_drops_every_section_of_the_names_and_nothing_else() -> None:
    text = CONF + "; a comment about the next one\n[carrier-identify]\nmatch = 1.2.3.4\n"
    left = remove_sections(text, ["carrier"])
    assert "[carrier]" not in left and "[carrier](" not in left and "sip:old" not in left
    assert "context = from-carrier" not in left
    assert "[general]\nbind = 1.2.3.4" in left and "[globals]" in left
    assert "; a comment about the next one\n[carrier-identify]\nmatch = 1.2.3.4" in left


def test_node_config_is_asterisk_conf_with_per_node_values(tmp_path: Path) -> None:
    node = NodeSpec("b", 1)
    creds = {"ARI_PASSWORD": "ari-pw", "AMI_PASSWORD": "ami-pw", "AGENT9_PASSWORD": "a9-pw"}
    phones = [PhoneAccount("agent1", "secret-1"), PhoneAccount("kari", "secret-2")]
    render_node_config(tmp_path, node, creds, phones)

    assert sorted(p.name for p in LAB_CONF.glob("*.conf")) == sorted(
        p.name for p in tmp_path.glob("*.conf") if not p.name.endswith("_users.conf")
        and p.name not in ("pjsip_lab_auth.conf", "pjsip_televikar.conf")
    )  # fmt: skip
    pjsip = (tmp_path / "pjsip.conf").read_text()
    assert "bind = 127.0.1.12:5060" in pjsip
    assert f"match = {KAMAILIO_IP}" in pjsip
    # The single-node lab's static agents are not on a node; agent9 (own auth) stays.
    for agent in AGENTS:
        assert f"[{agent}]" not in pjsip and f"[{agent}](" not in pjsip, agent
    assert "[agent9](agent-endpoint)" in pjsip
    # The agents are the service's, as it writes them behind the SIP front: reached
    # and qualified through Kamailio, identified by its header.
    generated = (tmp_path / "pjsip_televikar.conf").read_text()
    assert generated == render_pjsip(phones, f"{KAMAILIO_IP}:5060")
    assert f"contact = sip:kari@{KAMAILIO_IP}:5060" in generated
    assert "match_header = X-Televikar-Agent: agent1" in generated
    assert "qualify_frequency = 2" in generated and "secret-1" not in generated
    settings = [line for line in pjsip.splitlines() if not line.startswith(";")]
    assert not [line for line in settings if "127.0.0." in line]  # nothing on the lab's addresses
    asterisk_conf = (tmp_path / "asterisk.conf").read_text()
    assert "systemname = b" in asterisk_conf and "astlogdir = /mnt/log" in asterisk_conf
    assert "bindaddr = 127.0.1.12" in (tmp_path / "http.conf").read_text()
    assert "bindaddr = 127.0.1.12" in (tmp_path / "manager.conf").read_text()
    assert "rtpstart = 21000" in (tmp_path / "rtp.conf").read_text()
    assert "TELEVIKAR_NODE = b" in (tmp_path / "extensions.conf").read_text()
    # What needs no per-node value is the project's file as it is.
    for same in ("modules.conf", "cdr_custom.conf", "queues.conf"):
        assert (tmp_path / same).read_text() == (LAB_CONF / same).read_text()
    for secret in ("ari_users.conf", "manager_users.conf", "pjsip_lab_auth.conf"):
        assert stat.S_IMODE((tmp_path / secret).stat().st_mode) == 0o600


def test_nodes_have_their_own_addresses_and_rtp_ranges() -> None:
    a, b, c = node_specs(3)
    assert (a.ip, b.ip, c.ip) == ("127.0.1.11", "127.0.1.12", "127.0.1.13")
    assert a.rtp_range == (20000, 20999) and c.rtp_range == (22000, 22999)


def test_kamailio_template_is_filled_completely(tmp_path: Path) -> None:
    settings = KamailioSettings(
        ip="127.0.1.1", port=5060, carrier_ip="127.0.1.2",
        nodes=[("a", "sip:127.0.1.11:5060"), ("b", "sip:127.0.1.12:5060")],
        db_url="postgres://kamailio:pw@127.0.1.4:5432/televikar",
    )  # fmt: skip
    kamailio = Kamailio(tmp_path, settings)
    kamailio.render()
    config = kamailio.config.read_text()
    assert not re.search(r"@[A-Z_]+@", config)
    assert "listen=udp:127.0.1.1:5060" in config
    assert 'modparam("auth_db", "db_url", "postgres://kamailio:pw@127.0.1.4:5432/televikar")' in (
        config
    )
    # It holds the database password.
    assert stat.S_IMODE(kamailio.config.stat().st_mode) == 0o600
    assert kamailio.dispatcher_list.read_text().splitlines()[1:] == [
        "1 sip:127.0.1.11:5060 0 0 duid=a",
        "1 sip:127.0.1.12:5060 0 0 duid=b",
    ]


def test_kamailio_log_lines_become_events() -> None:
    log = """ 3(7950) NOTICE: <script>: televikar: call abc@x to sip:127.0.1.11:5060 at 1.500000
 1(7948) WARNING: <script>: televikar: node sip:127.0.1.11:5060 failed for abc@x (408) at 2.5
 1(7948) NOTICE: <script>: televikar: call abc@x to sip:127.0.1.12:5060 at 2.500100 (failover)
 3(7950) WARNING: <script>: televikar: node sip:127.0.1.11:5060 down at 3.25
 0(7947) INFO: <core> [main.c:3055]: main(): processes (at least): 8
"""
    events = parse_events(log)
    assert [(e.kind, e.node[-9:], e.at) for e in events] == [
        ("call", "1.11:5060", 1.5),
        ("failed", "1.11:5060", 2.5),
        ("failover", "1.12:5060", 2.5001),
        ("down", "1.11:5060", 3.25),
    ]
    assert events[1].code == "408" and events[2].call_id == "abc@x"


def test_processes_started_and_stopped_from_many_threads_keep_their_registry(
    tmp_path: Path,
) -> None:
    """Tests start sipp from several threads at once (ThreadPoolExecutor): the table
    of running processes and its file change under one lock. A harness done with its
    registry releases it: what starts afterwards is not written there."""
    from concurrent.futures import ThreadPoolExecutor

    from lab import procs

    registry = tmp_path / "pids.json"
    procs.use_registry(registry)
    try:

        def churn(n: int) -> None:
            for _ in range(5):
                proc = procs.start(["sleep", "30"], tmp_path / f"out{n}.log")
                procs.stop(proc, grace_s=2.0)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(churn, range(8)))  # raises what a thread raised
        assert json.loads(registry.read_text()) == {}
    finally:
        procs.release_registry(registry)
    later = procs.start(["sleep", "30"], tmp_path / "later.log")
    try:
        assert json.loads(registry.read_text()) == {}
    finally:
        procs.stop(later, grace_s=2.0)
