"""The cluster lab on real parts (issue 16, part A): Kamailio in front of two Asterisk
nodes (lab/cluster.py), driven with sipp. SIP level only: no desk is connected, so a
node's dialplan takes each carrier call into the fallback that records a message
(asterisk/conf/extensions.conf: Stasis() fails at once, [televikar-fallback] answers).

The cluster starts once for this module (conftest.py ``cluster``), beside the
single-node lab (other loopback addresses), and is stopped by pid at the end whatever
happened. These tests fail, never skip, when Kamailio or an Asterisk node cannot start.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from lab.cluster import (
    AGENTS,
    CARRIER_IP,
    KAMAILIO_IP,
    SIP_PORT,
    CdrRow,
    Cluster,
    Node,
    agent_address,
)
from lab.kamailio import Event
from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from tests.asterisk import sipp
from tests.asterisk.conftest import poll
from tests.helpers import run_async

KAMAILIO = (KAMAILIO_IP, SIP_PORT)
DIALLED = "4721000001"  # any number: without the app every node takes a message


def carrier_cdrs(node: Node) -> list[CdrRow]:
    """The node's CDRs of calls from the carrier (that is, through Kamailio), in order."""
    return [row for row in node.cdr_rows() if row.channel.startswith("PJSIP/carrier-")]


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[cluster] {text}")


def test_carrier_calls_land_on_both_nodes(
    live: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {n.name: len(carrier_cdrs(n)) for n in live.nodes}
    calls = 10
    result = sipp.carrier_call(
        DIALLED, workdir=tmp_path, calls=calls, rate=5, talk_ms=500,
        answer_timeout_s=10, target=KAMAILIO, local_ip=CARRIER_IP,
    )  # fmt: skip
    assert result.ok, result.describe()

    def counted() -> dict[str, int] | None:
        split = {n.name: len(carrier_cdrs(n)) - before[n.name] for n in live.nodes}
        return split if sum(split.values()) >= calls else None

    split: dict[str, int] = poll(counted, 10, "a CDR on a node for every call")
    rows = [row for n in live.nodes for row in carrier_cdrs(n)[before[n.name] :]]
    outcome = Counter((row.dcontext, row.disposition) for row in rows)
    report(capsys, f"{calls} carrier calls via Kamailio, CDRs per node: {split}; {outcome}")
    assert sum(split.values()) == calls
    # Round-robin over two nodes: 5 and 5; at least 3 each whatever the timing.
    assert all(count >= 3 for count in split.values()), split
    # Kamailio's own account agrees: the same calls went to both.
    sent = Counter(e.node for e in live.kamailio.events() if e.kind == "call")
    assert all(sent[n.spec.sip_uri] >= split[n.name] for n in live.nodes), sent


def test_agent_registered_at_kamailio_is_reachable_from_both_nodes(
    live: Cluster, tmp_path: Path
) -> None:
    address = agent_address(1)
    secret = live.agent_secret("agent1")
    registered = sipp.register_at(
        "agent1", secret, workdir=tmp_path, address=address, target=KAMAILIO
    )
    assert registered.ok, registered.describe()
    contacts = live.kamailio.registered()
    assert any(f"{address[0]}:{address[1]}" in c for c in contacts.get("agent1", [])), contacts
    try:
        with sipp.agent_phone(1, workdir=tmp_path, answer_ms=200, address=address) as phone:
            # The nodes qualify agents through Kamailio (lab/cluster.py) and refuse to
            # call one whose contact is unreachable: wait for the phone's first answer.
            for node in live.nodes:
                poll(
                    lambda node=node: (
                        node.ari("GET", "endpoints/PJSIP/agent1")["state"] == "online"
                    ),
                    10,
                    f"node {node.name} to reach agent1's phone",
                )
            for i, node in enumerate(live.nodes, start=1):
                # Context "default" hangs up whatever it gets (extensions.conf): the agent
                # answers, and the node's BYE must reach the phone through Kamailio too.
                node.ari(
                    "POST",
                    "channels?endpoint=PJSIP/agent1&context=default&extension=100&priority=1"
                    f"&callerId=node-{node.name}",
                )
                invites = phone.wait_for_invites(i)
                assert len(invites) == i, f"node {node.name}'s call did not reach the phone"
                # The INVITE came through Kamailio, from this node.
                vias = invites[-1].headers("Via")
                assert KAMAILIO_IP in vias[0] and node.spec.ip in vias[-1], vias

            def hung_up() -> bool:
                return sipp.count_requests(phone.messages(), "BYE") >= len(live.nodes)

            poll(hung_up, 10, "each node's BYE at the phone, through Kamailio")
            answered = [
                m for m in phone.messages()
                if m.direction == "sent" and m.status == 200 and m.cseq_method == "INVITE"
            ]  # fmt: skip
            assert len({m.call_id for m in answered}) == len(live.nodes)
    finally:
        sipp.register_at(
            "agent1", secret, workdir=tmp_path, address=address, target=KAMAILIO, expires_s=0
        )


def refusals(live: Cluster, user: str) -> list[str]:
    """Kamailio's log lines for ``user``'s refused authentications."""
    return [
        line for line in live.kamailio.output.read_text(errors="replace").splitlines()
        if f"televikar: auth refused for {user} " in line
    ]  # fmt: skip


def test_a_wrong_password_or_another_agents_aor_registers_nothing(
    live: Cluster, tmp_path: Path
) -> None:
    address = agent_address(2)
    wrong = sipp.register_at(
        "agent2", "not-the-secret", workdir=tmp_path, address=address, target=KAMAILIO
    )
    # Challenged, then refused (not challenged again): nothing registered, one log line.
    assert not wrong.ok, wrong.describe()
    assert sipp.final_statuses(wrong.messages(), "REGISTER") == [401, 403], wrong.describe()
    assert "agent2" not in live.kamailio.registered()
    assert [line for line in refusals(live, "agent2") if "(-2) REGISTER" in line]
    # agent1's own credentials do not register agent2's AOR (To user != auth user).
    foreign = sipp.register_at(
        "agent2", live.agent_secret("agent1"), workdir=tmp_path, address=address,
        target=KAMAILIO, auth_user="agent1", name="register_agent2_as_agent1",
    )  # fmt: skip
    assert sipp.final_statuses(foreign.messages(), "REGISTER") == [401, 403], foreign.describe()
    assert "agent2" not in live.kamailio.registered()
    assert [line for line in refusals(live, "agent1") if "(-8) REGISTER" in line]
    # An unknown user likewise.
    stranger = sipp.register_at(
        "intruder", "guess-guess-guess", workdir=tmp_path, address=address, target=KAMAILIO
    )
    assert sipp.final_statuses(stranger.messages(), "REGISTER") == [401, 403]
    assert [line for line in refusals(live, "intruder") if "(-3) REGISTER" in line]


def test_kamailios_database_role_reads_the_endpoints_and_secrets_only(live: Cluster) -> None:
    """Kamailio's db_url role (televikar-pbx db grant-sip-front): agents.endpoint and
    agents.secret, nothing else of the table, no other table."""
    url = make_url(live.kamailio.settings.db_url.replace("postgres://", "postgresql://"))

    async def probe() -> tuple[list[str], list[str]]:
        conn = await asyncpg.connect(
            user=url.username, password=url.password, host=url.host, port=url.port,
            database=url.database, timeout=5,
        )  # fmt: skip
        try:
            rows = await conn.fetch("SELECT endpoint, secret FROM agents ORDER BY endpoint")
            refused = []
            for query in ("SELECT name FROM agents", "SELECT * FROM agents",
                          "SELECT 1 FROM calls", "UPDATE agents SET secret = 'x'"):  # fmt: skip
                try:
                    await conn.execute(query)
                except asyncpg.InsufficientPrivilegeError:
                    refused.append(query)
            return [r["endpoint"] for r in rows if r["secret"]], refused
        finally:
            await conn.close()

    endpoints, refused = run_async(probe)
    assert set(AGENTS) <= set(endpoints), endpoints
    assert len(refused) == 4, refused


def test_without_the_database_a_register_fails_and_registrations_stay(
    live: Cluster, tmp_path: Path
) -> None:
    """PostgreSQL stopped: a phone's REGISTER is challenged, then refused with 500 and
    logged (Kamailio cannot read the secret); what was registered before stays. Back,
    Kamailio reads it again at the next REGISTER (it reconnects by itself)."""
    address = agent_address(5)
    secret = live.agent_secret("agent5")
    first = sipp.register_at("agent5", secret, workdir=tmp_path, address=address,
                             target=KAMAILIO, name="before")  # fmt: skip
    assert first.ok, first.describe()
    live.db.server.stop()
    try:
        during = sipp.register_at("agent5", secret, workdir=tmp_path, address=address,
                                  target=KAMAILIO, name="during")  # fmt: skip
        assert sipp.final_statuses(during.messages(), "REGISTER") == [401, 500], during.describe()
        assert [line for line in refusals(live, "agent5") if "(-1) REGISTER" in line]
        assert "agent5" in live.kamailio.registered()
    finally:
        live.db.server.start()
    try:
        after = sipp.register_at("agent5", secret, workdir=tmp_path, address=address,
                                 target=KAMAILIO, name="after")  # fmt: skip
        assert after.ok, after.describe()
    finally:
        sipp.register_at("agent5", secret, workdir=tmp_path, address=address,
                         target=KAMAILIO, expires_s=0, name="unregister")  # fmt: skip


def test_a_secret_changed_in_the_database_counts_at_the_next_register(
    live: Cluster, tmp_path: Path
) -> None:
    """Kamailio reads the secret at each check: no copy to bring up to date."""
    address = agent_address(3)
    old = live.agent_secret("agent3")
    new = "changed-by-the-operator-1"

    async def set_secret(secret: str) -> None:
        engine = make_engine(live.db.url)
        try:
            agents = AgentRepository(make_sessionmaker(engine))
            await agents.set_agent_secret((await agents.find_agent("agent3")).id, secret)
        finally:
            await engine.dispose()

    run_async(lambda: set_secret(new))
    try:
        stale = sipp.register_at(
            "agent3", old, workdir=tmp_path, address=address, target=KAMAILIO, name="old"
        )
        assert not stale.ok and "agent3" not in live.kamailio.registered(), stale.describe()
        fresh = sipp.register_at(
            "agent3", new, workdir=tmp_path, address=address, target=KAMAILIO, name="new"
        )
        assert fresh.ok, fresh.describe()
        assert "agent3" in live.kamailio.registered()
    finally:
        sipp.register_at(
            "agent3", new, workdir=tmp_path, address=address, target=KAMAILIO,
            expires_s=0, name="unregister",
        )  # fmt: skip
        run_async(lambda: set_secret(old))


def test_a_phones_invite_is_authenticated_and_reaches_a_node_as_its_agent(
    live: Cluster, tmp_path: Path
) -> None:
    """A feature code from agent4's phone: challenged by Kamailio (407), sent to a node
    with Kamailio's header, which the node takes for agent4's endpoint (context
    from-agents; no desk runs here, so the dialplan's FastAGI fails and it hangs up)."""
    before = {n.name: len(n.cdr_rows()) for n in live.nodes}
    result = sipp.feature_code_call(
        "*45", workdir=tmp_path, user="agent4", password=live.agent_secret("agent4"),
        local_ip=agent_address(4)[0], target=KAMAILIO,
    )  # fmt: skip
    assert result.ok, result.describe()
    assert result.invite_statuses() == [407, 200], result.describe()

    def agent_cdrs() -> list[CdrRow]:
        return [
            row for n in live.nodes for row in n.cdr_rows()[before[n.name] :]
            if row.channel.startswith("PJSIP/agent4-")
        ]  # fmt: skip

    rows: list[CdrRow] = poll(agent_cdrs, 10, "the node's CDR of agent4's call")
    assert [(r.dst, r.dcontext) for r in rows] == [("*45", "from-agents")], rows
    # A wrong password goes nowhere: refused at Kamailio, logged.
    wrong = sipp.feature_code_call(
        "*45", workdir=tmp_path, user="agent4", password="not-the-secret",
        local_ip=agent_address(4)[0], target=KAMAILIO, name="agent4_wrong",
    )  # fmt: skip
    assert wrong.invite_statuses() == [407, 403], wrong.describe()
    assert [line for line in refusals(live, "agent4") if "(-2) INVITE" in line]


def test_the_agent_header_from_outside_is_stripped(live: Cluster, tmp_path: Path) -> None:
    """The carrier (or anybody) cannot pass for an agent by writing Kamailio's header:
    the call still arrives as the carrier's (without the desk: a message)."""
    before = {n.name: len(carrier_cdrs(n)) for n in live.nodes}
    result = sipp.carrier_call(
        DIALLED, workdir=tmp_path, calls=1, talk_ms=500, answer_timeout_s=10,
        target=KAMAILIO, local_ip=CARRIER_IP,
        # carrier_call.xml's one free header line (meant for Diversion).
        extra_args=["-set", "diversion", "X-Televikar-Agent: agent5"],
    )  # fmt: skip
    assert result.ok, result.describe()
    sent = [m for m in result.messages() if m.direction == "sent" and m.method == "INVITE"]
    assert sent and sent[0].header("X-Televikar-Agent") == "agent5"  # it was sent

    def arrived() -> int:
        return sum(len(carrier_cdrs(n)) - before[n.name] for n in live.nodes)

    assert poll(arrived, 10, "the call's CDR as the carrier's") == 1


def test_a_registered_phones_keepalive_is_answered_by_kamailio(
    live: Cluster, tmp_path: Path
) -> None:
    """An out-of-dialog OPTIONS from a phone: 200 from Kamailio itself when it comes from
    the contact its From user registered; 403 from anywhere else, for an agent not
    registered, and once the phone unregistered. No node sees any of them."""
    address = agent_address(4)
    elsewhere = (address[0], address[1] + 20)
    secret = live.agent_secret("agent4")
    cdrs_before = {n.name: len(n.cdr_rows()) for n in live.nodes}

    def keepalive(user: str, source: tuple[str, int], name: str) -> int | None:
        return sipp.keepalive_at(user, workdir=tmp_path, address=source, target=KAMAILIO, name=name)

    assert keepalive("agent4", address, "before") == 403
    registered = sipp.register_at(
        "agent4", secret, workdir=tmp_path, address=address, target=KAMAILIO
    )
    assert registered.ok, registered.describe()
    try:
        assert keepalive("agent4", address, "registered") == 200
        assert keepalive("agent4", elsewhere, "other_port") == 403
        assert keepalive("agent2", address, "other_agent") == 403
    finally:
        gone = sipp.register_at(
            "agent4", secret, workdir=tmp_path, address=address, target=KAMAILIO,
            expires_s=0, name="unregister",
        )  # fmt: skip
    assert gone.ok, gone.describe()
    assert keepalive("agent4", address, "unregistered") == 403
    assert {n.name: len(n.cdr_rows()) for n in live.nodes} == cdrs_before


# A source of its own for password guessing (the phones' 127.0.1.3 must stay usable).
GUESSER_IP = "127.0.1.5"


def test_a_source_that_keeps_guessing_is_refused_at_once(live: Cluster, tmp_path: Path) -> None:
    """Refused authentications count per source address: after the limit (10) the next
    request from there gets 403 at once, not challenged, even with the right password,
    and a log line; a phone elsewhere is not affected; the operator's htable.delete
    lifts it."""
    limit = live.kamailio.settings.auth_fail_limit
    guesser = (GUESSER_IP, agent_address(2)[1])
    secret = live.agent_secret("agent2")

    def register(password: str, address: tuple[str, int], name: str) -> list[int]:
        result = sipp.register_at(
            "agent2", password, workdir=tmp_path, address=address, target=KAMAILIO, name=name
        )
        return sipp.final_statuses(result.messages(), "REGISTER")

    def unregister(address: tuple[str, int], name: str) -> None:
        sipp.register_at(
            "agent2", secret, workdir=tmp_path, address=address, target=KAMAILIO,
            expires_s=0, name=name,
        )  # fmt: skip

    try:
        for i in range(limit):
            assert register(f"guess-number-{i}", guesser, f"guess{i}") == [401, 403]
        assert register(secret, guesser, "blocked") == [403]
        assert [
            line for line in live.kamailio.output.read_text(errors="replace").splitlines()
            if f"televikar: auth blocked for {GUESSER_IP} ({limit} refused) REGISTER" in line
        ]  # fmt: skip
        assert "agent2" not in live.kamailio.registered()
        # agent2's own phone, at its own address, registers as ever.
        assert register(secret, agent_address(2), "phone") == [401, 200]
    finally:
        live.kamailio.rpc("htable.delete", "authfail", GUESSER_IP)
        # One contact per agent (max_contacts 1: another one gets 503 meanwhile).
        unregister(agent_address(2), "unregister_phone")
    try:
        assert register(secret, guesser, "unblocked") == [401, 200]
    finally:
        unregister(guesser, "unregister_guesser")


def test_kill_node_a_during_calls_new_calls_go_to_b(
    live: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node_a, node_b = live.node("a"), live.node("b")
    seen_before = len(live.kamailio.events())
    results: list[sipp.CarrierResult] = []

    def steady_calls() -> None:
        results.append(
            sipp.carrier_call(
                DIALLED,
                workdir=tmp_path,
                calls=60,
                rate=5,
                talk_ms=1000,
                answer_timeout_s=10,
                target=KAMAILIO,
                local_ip=CARRIER_IP,
            )
        )

    run = threading.Thread(target=steady_calls)
    run.start()
    try:

        def calls_on_a() -> bool:
            new = live.kamailio.events()[seen_before:]
            return sum(e.kind == "call" and e.node == node_a.spec.sip_uri for e in new) >= 5

        poll(calls_on_a, 15, "steady calls on node a before the kill")
        killed_at = time.time()  # Kamailio logs the wall clock too
        node_a.kill()
    finally:
        run.join(60)
    assert results, "the carrier's sipp run did not finish"
    carrier = results[0]

    events = live.kamailio.events()[seen_before:]
    after = [e for e in events if e.at >= killed_at]
    a, b = node_a.spec.sip_uri, node_b.spec.sip_uri
    routed = [e for e in after if e.kind in ("call", "failover")]
    tried_on_a = [e.at - killed_at for e in routed if e.node == a]
    failovers = [e.at - killed_at for e in after if e.kind == "failover" and e.node == b]
    marked_down = [e.at - killed_at for e in after if e.kind in ("down", "failed") and e.node == a]
    first_call: dict[str, Event] = {}
    for e in events:
        first_call.setdefault(e.call_id, e)
    new_calls = {cid for cid, e in first_call.items() if e.kind == "call" and e.at >= killed_at}

    # Every call that arrived after the kill was answered (by b), first try or after
    # failover; the calls that failed are those that were talking on a at the kill.
    statuses = sipp.final_status_by_call(carrier.messages())
    unanswered_new = sorted(cid for cid in new_calls if statuses.get(cid) != 200)
    figures = (
        f"kill -9 of node a: first call sent on to b after failover "
        f"{min(failovers, default=float('nan')):.2f} s after the kill ({len(failovers)} "
        f"failed over); last call tried on a {max(tried_on_a, default=0.0):.2f} s; a marked "
        f"down {min(marked_down, default=float('nan')):.2f} s; {len(new_calls)} calls after "
        f"the kill, {len(unanswered_new)} of them unanswered; carrier: {carrier.describe()}"
    )
    report(capsys, figures)
    assert tried_on_a and max(tried_on_a) < 5.0, figures
    assert failovers and min(failovers) < 5.0, figures
    # From then on the run went on, on b alone.
    assert sum(e.at - killed_at > max(tried_on_a) for e in routed) >= 10, figures
    assert new_calls and not unanswered_new, figures
