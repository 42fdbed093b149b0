"""``televikar-pbx status [--json]``: the live desk, read from the running service, and
the delivery outbox, read from the database (``outbox_status``)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

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


def render(status: dict[str, Any]) -> str:
    lines = ["Waiting callers"]
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
    if "outbox" in status:
        lines.extend(render_outbox(status["outbox"]))
    return "\n".join(lines)


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    status = fetch_status(settings)
    status["outbox"] = read_outbox(settings)
    print(json.dumps(status, indent=2) if args.json else render(status))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("status", help="waiting callers, agents and the outbox")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_status)
