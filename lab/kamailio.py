"""Kamailio for the cluster lab: the configuration from the project's template
(asterisk/kamailio/kamailio.cfg), run in the foreground (``kamailio -DD -E``) with a
runtime directory of its own, stopped by its pid.

Its management interfaces are in that runtime directory: ``kamailio_ctl`` (binrpc, for
``kamcmd -s unix:RUNDIR/kamailio_ctl ul.dump`` by hand) and ``kamailio_rpc.sock``
(JSON-RPC over a unix datagram socket, :meth:`Kamailio.rpc`). Its log (stderr) is
``kamailio.out`` beside them; :func:`events` reads the lines the template writes for the
lab (which node each call went to, failovers, nodes down and up).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import procs
from lab.asterisk import REPO, fill, write_private

TEMPLATE = REPO / "asterisk" / "kamailio" / "kamailio.cfg"


class KamailioError(RuntimeError):
    """Kamailio is missing, could not start, or did not answer its RPC."""


@dataclass(frozen=True)
class KamailioSettings:
    ip: str
    port: int
    carrier_ip: str
    # The Asterisk nodes, in dispatcher order: (name, SIP URI).
    nodes: Sequence[tuple[str, str]]
    # Where auth_db reads the agents' secrets (postgres://ROLE:PASSWORD@HOST:PORT/DB):
    # the service's database, as a role that may read agents.endpoint and .secret only.
    db_url: str
    # OPTIONS probe period, and how long a relayed request waits for any reply: together
    # they bound how fast a dead node is noticed (a probe or a call times out).
    ping_interval_s: int = 1
    fr_timer_ms: int = 1000
    # A call's INVITE at a node, after a provisional reply: silent this long, the node
    # is taken for dead and the caller sent to the next node. The nodes ring again
    # every second while a caller waits (the desk: calls/commands.py RING_AGAIN_S).
    ring_timeout_ms: int = 7000
    # Refused authentications per source address before it is refused at once, and
    # how long after its last refusal that lasts.
    auth_fail_limit: int = 10
    auth_fail_window_s: int = 60


@dataclass(frozen=True)
class Event:
    """A line of the template's own log: a call sent to a node, a node that failed a
    call, a node down or up (by probing or by a failed call)."""

    # "call", "failover" (a call sent on after a node failed), "failed" (a node silent
    # or 5xx: marked down), "silent" (a node that rang, then went silent: the caller sent
    # on, the node not marked), "down", "up"
    kind: str
    node: str  # the node's SIP URI
    at: float  # Kamailio's wall clock, epoch seconds
    call_id: str = ""
    code: str = ""


_EVENT_LINES = (
    re.compile(r"televikar: call (?P<call_id>\S+) to (?P<node>\S+) at (?P<at>[0-9.]+)"
               r"(?P<failover> \(failover\))?"),
    re.compile(r"televikar: node (?P<node>\S+) failed for (?P<call_id>\S+) "
               r"\((?P<code>\d+)\) at (?P<at>[0-9.]+)(?P<ringing> \(ringing\))?"),
    re.compile(r"televikar: node (?P<node>\S+) (?P<kind>down|up) at (?P<at>[0-9.]+)"),
)  # fmt: skip


def parse_events(text: str) -> list[Event]:
    events = []
    for line in text.splitlines():
        for pattern in _EVENT_LINES:
            match = pattern.search(line)
            if match is None:
                continue
            fields = match.groupdict()
            if "kind" in fields:
                kind = fields["kind"]
            elif "code" in fields:
                kind = "silent" if fields.get("ringing") else "failed"
            else:
                kind = "failover" if fields.get("failover") else "call"
            events.append(
                Event(kind, fields["node"], float(fields["at"]),
                      fields.get("call_id") or "", fields.get("code") or "")
            )  # fmt: skip
            break
    return events


def binary() -> str:
    path = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if os.path.exists("/usr/sbin/kamailio") else None
    )
    if path is None:
        raise KamailioError("kamailio not found: Debian package kamailio (`make test-deps`)")
    return path


class Kamailio:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent)."""

    def __init__(self, directory: Path, settings: KamailioSettings) -> None:
        self.settings = settings
        self.dir = directory
        self.config = directory / "kamailio.cfg"
        self.dispatcher_list = directory / "dispatcher.list"
        self.output = directory / "kamailio.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_socket(self) -> Path:
        return self.dir / "kamailio_rpc.sock"

    @property
    def ctl_socket(self) -> Path:
        return self.dir / "kamailio_ctl"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def render(self) -> None:
        """Write the configuration and the dispatcher list into the runtime directory."""
        s = self.settings
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = ["# set destination flags priority attributes (generated by lab/kamailio.py)"]
        lines += [f"1 {uri} 0 0 duid={name}" for name, uri in s.nodes]
        self.dispatcher_list.write_text("\n".join(lines) + "\n")
        values = {
            "KAMAILIO_IP": s.ip,
            "KAMAILIO_PORT": str(s.port),
            "CARRIER_IP": s.carrier_ip,
            "DISPATCHER_LIST": str(self.dispatcher_list),
            "RUNDIR": str(self.dir),
            "PING_INTERVAL_S": str(s.ping_interval_s),
            "FR_TIMER_MS": str(s.fr_timer_ms),
            "RING_TIMEOUT_MS": str(s.ring_timeout_ms),
            "AUTH_FAIL_LIMIT": str(s.auth_fail_limit),
            "AUTH_FAIL_WINDOW_S": str(s.auth_fail_window_s),
            "DB_URL": s.db_url,
        }
        # 0600: it holds the database password.
        write_private(self.config, fill(TEMPLATE.read_text(), values, str(TEMPLATE)))

    def start(self, timeout_s: float = 15.0) -> None:
        s = self.settings
        if not procs.udp_port_free(s.ip, s.port):
            raise KamailioError(f"{s.ip}:{s.port}/udp is in use (another cluster lab?)")
        self.render()
        for stale in (self.rpc_socket, self.ctl_socket):
            stale.unlink(missing_ok=True)
        self.output.write_bytes(b"")
        self.proc = procs.start(
            [binary(), "-DD", "-E", "-m", "32", "-M", "4",
             "-f", str(self.config), "-Y", str(self.dir)],
            self.output,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                procs.forget(self.proc)
                self.proc = None
                raise KamailioError(f"Kamailio exited at start-up ({self.output}):\n{self.tail()}")
            try:
                self.rpc("core.version", timeout_s=1.0)
                return
            except (OSError, KamailioError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise KamailioError(f"Kamailio's RPC did not answer in {timeout_s:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, grace_s=5.0)
            self.proc = None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.output.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def events(self) -> list[Event]:
        try:
            return parse_events(self.output.read_text(errors="replace"))
        except FileNotFoundError:
            return []

    def rpc(self, method: str, *params: Any, timeout_s: float = 3.0) -> Any:
        """A JSON-RPC call over Kamailio's unix datagram socket; its ``result``."""
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        reply_path = self.dir / f"rpc-client-{os.getpid()}.sock"
        reply_path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(reply_path))
            try:
                sock.settimeout(timeout_s)
                sock.sendto(json.dumps(request).encode(), str(self.rpc_socket))
                data = sock.recv(1 << 20)
            except TimeoutError as exc:
                raise KamailioError(f"no answer to {method} from {self.rpc_socket}") from exc
            finally:
                reply_path.unlink(missing_ok=True)
        reply = json.loads(data)
        if "error" in reply:
            raise KamailioError(f"{method}: {reply['error']}")
        return reply.get("result")

    def registered(self) -> dict[str, list[str]]:
        """The agents' registered contacts by user (usrloc ``ul.dump``)."""
        result = self.rpc("ul.dump")
        contacts: dict[str, list[str]] = {}
        for domain in (result or {}).get("Domains", []):
            for record in domain.get("Domain", {}).get("AoRs", []):
                info = record.get("Info", {})
                contacts[info.get("AoR", "")] = [
                    c.get("Contact", {}).get("Address", "") for c in info.get("Contacts", [])
                ]
        return contacts

    def node_states(self) -> dict[str, str]:
        """Each node's dispatcher flags by URI (``dispatcher.list``): the state first (A
        active, I inactive = down, T trying = a failure, not yet down, D disabled), then P
        (probing) or X; "AX" after start, "IP" for a node marked down."""
        result = self.rpc("dispatcher.list")
        states: dict[str, str] = {}
        for record in (result or {}).get("RECORDS", []):
            for target in record.get("SET", {}).get("TARGETS", []):
                dest = target.get("DEST", {})
                states[dest.get("URI", "")] = dest.get("FLAGS", "")
        return states
