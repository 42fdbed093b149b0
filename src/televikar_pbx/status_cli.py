"""``televikar-pbx status [--json]``: the live desk, read from the running service, and
the delivery outbox, read from the database (``outbox_status``); in leader-standby mode
also who leads, from the lease in the database: on a standby's machine, whose ``serve``
has no desk to show, that (and the outbox) is what it prints."""

from __future__ import annotations

import argparse
import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.leases_repo import read_lease, standbys
from televikar_pbx.errors import TelevikarError
from televikar_pbx.outbox_status import read_outbox, render_outbox
from televikar_pbx.settings import Settings


def fetch_status(settings: Settings, timeout_s: float = 2.0) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.control_port}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            result: dict[str, Any] = json.load(response)
            return result
    except (urllib.error.URLError, OSError) as exc:
        raise TelevikarError(
            f"the service does not answer on 127.0.0.1:{settings.control_port} "
            f"(is `televikar-pbx serve` running?): {getattr(exc, 'reason', exc)}"
        ) from exc


LEASE = "desk"  # ClusterConfig's lease name


def standby_seen_s(settings: Settings) -> float:
    """A standby tries to take the lease every retry_s: one not seen for three tries
    (and a second) is gone."""
    return 3 * settings.cluster_retry_s + 1.0


def read_leadership(settings: Settings) -> dict[str, Any] | None:
    """Who holds the desk's lease (leader-standby mode), or None in single mode."""
    if settings.cluster_mode != "leader-standby":
        return None

    async def main() -> dict[str, Any]:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            async with make_sessionmaker(engine)() as session:
                lease = await read_lease(session, LEASE)
                waiting = await standbys(session, LEASE, standby_seen_s(settings))
        finally:
            await engine.dispose()
        seen = [{"holder": h, "seen_s_ago": round(ago, 1)} for h, ago in waiting]
        if lease is None:
            return {"leader": None, "standbys": seen}
        return {
            "leader": lease.holder if lease.live else None,
            "last_holder": lease.holder,
            "generation": lease.generation,
            "expires_at": lease.expires_at.isoformat(),
            "standbys": seen,
        }

    try:
        return asyncio.run(main())
    except Exception as exc:  # the database away: say so, show what the service says
        return {"error": str(exc).splitlines()[0]}


def render_leadership(cluster: dict[str, Any], here: str) -> list[str]:
    if "error" in cluster:
        return [f"Leader: unknown, the database does not answer ({cluster['error']})"]
    if cluster["leader"] is None:
        last = cluster.get("last_holder")
        lines = [f"Leader: none (last {last}, generation {cluster.get('generation')})"]
    else:
        leader, generation = cluster["leader"], cluster["generation"]
        lines = [f"Leader: {leader} (generation {generation}); this machine: {here}"]
    waiting = cluster.get("standbys") or []
    if not waiting:
        lines.append("Standby: NONE (nobody would take over)")
    for s in waiting:
        lines.append(f"Standby: {s['holder']} (seen {s['seen_s_ago']:.1f} s ago)")
    return lines


def render(status: dict[str, Any]) -> str:
    lines = []
    if "nodes" in status:  # several Asterisk nodes (TELEVIKAR_NODES)
        lines.append("Nodes")
        for node in status["nodes"]:
            state = "up" if node["up"] else "DOWN"
            lines.append(f"  {node['name']:<16} {state:<5} {node['calls']} calls")
    lines.append("Waiting callers")
    for customer in status["customers"]:
        waiting = customer["waiting"]
        lines.append(f"  {customer['name']}: {len(waiting)} waiting")
        for call in waiting:
            caller = call["caller"] or "skjult nummer"
            lines.append(f"    {caller:<16} {call['wait_s']:>6.1f} s  {call['state']}")
    lines.append("Agents")
    for agent in status["agents"]:
        call = f"  call {agent['call_id']}" if agent["call_id"] else ""
        lines.append(
            f"  {agent['name'] or agent['id']:<16} {agent['endpoint'] or '':<12} "
            f"{agent['state']}{call}"
        )
    if "forwarding" in status:
        lines.extend(render_forwarding(status["forwarding"]))
    if "outbox" in status:
        lines.extend(render_outbox(status["outbox"]))
    return "\n".join(lines)


def render_forwarding(forwarding: dict[str, Any]) -> list[str]:
    """The forwarding watch's flagged customers (calls/forwarding.py)."""
    flagged = forwarding["flagged"]
    if not flagged:
        return ["Forwarding watch: no customer unusually silent"]
    lines = [f"Forwarding watch: {len(flagged)} customer(s) SILENT, check their forwarding"]
    for c in flagged:
        state = "open" if c["open_now"] else "closed now"
        lines.append(
            f"  {c['name'] or c['id']}: no call since {c['last_call']} "
            f"({c['silent_s'] / 60:.0f} min), {c['expected_since_last_call']:.1f} expected, "
            f"{state}"
        )
    return lines


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    cluster = read_leadership(settings)
    try:
        status = fetch_status(settings)
    except TelevikarError:
        if cluster is None:
            raise
        # A standby (or a stopped serve) has no desk: who leads, and the outbox.
        status = {"role": "standby or stopped"}
    else:
        if cluster is not None:
            status["role"] = "leader"
    if cluster is not None:
        status["cluster"] = cluster
    status["outbox"] = read_outbox(settings)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    lines = [] if cluster is None else render_leadership(cluster, str(status["role"]))
    if "agents" in status:
        lines.append(render(status))
    elif "outbox" in status:
        lines.extend(render_outbox(status["outbox"]))
    print("\n".join(lines))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("status", help="waiting callers, agents and the outbox")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_status)
