"""The benchmark's own Asterisk: the lab's Debian root (asterisk/lab.sh), a separate
configuration, separate ports, and separate state, so it runs beside the lab's
Asterisk (and its tests) without touching either.

How it is isolated: lab/asterisk.py (a private mount namespace, chrooted into a bind
mount of the lab root at ``$BENCH_DIR/root``, everything it writes under
``$BENCH_DIR/state``, mounted at ``/mnt``). Its configuration (``state/etc``) is
generated from ``benchmarks/asterisk/`` and the lab's ``asterisk/conf/``.
* SIP 127.0.0.1:5160/udp, HTTP/ARI 8189, AMI 5139, RTP 30000-33999 (the lab: 5060,
  8088, 5038, 10000-10999). Its ARI and AMI users have their own random passwords in
  ``$BENCH_DIR/credentials`` (0600).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.loadbench import procs
from lab import asterisk as isolated
from lab.asterisk import LAB_ROOT, InstanceError

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "benchmarks" / "asterisk"
# Taken as they are from the lab's configuration (asterisk/conf): what does not name a
# port, a path or a user. modules.conf keeps both module sets identical.
SHARED_CONF = (
    "acl.conf", "ccss.conf", "cdr.conf", "cdr_custom.conf", "cel.conf", "features.conf",
    "indications.conf", "modules.conf", "musiconhold.conf", "pjproject.conf",
    "stasis.conf", "udptl.conf", "websocket_client.conf",
)  # fmt: skip
TEMPLATE_CONF = (
    "asterisk.conf", "logger.conf", "http.conf", "ari.conf", "manager.conf", "rtp.conf",
    "pjsip.conf", "extensions.conf", "queues.conf", "queuerules.conf",
)  # fmt: skip

BENCH_DIR = Path(os.environ.get("TELEVIKAR_BENCH_DIR", "/var/cache/televikar-pbx/bench"))

ARI_USER = "televikar-bench"
AMI_USER = "televikar-bench"
CARRIER_IP = "127.0.0.4"
AGENT_IP = "127.0.0.5"
AGENT_PORT = 5200  # the first agents' UAS; UAS number i (from 0) listens on AGENT_PORT + i


def uas_address(index: int) -> tuple[str, int]:
    """Where the agents' UAS number ``index`` (from 0) listens."""
    return AGENT_IP, AGENT_PORT + index


def agent_uas(agent: int, uas_count: int) -> int:
    """Which UAS (0..uas_count-1) answers for agent number ``agent`` (from 1): in turn,
    so that agents picked in order (both ACDs start from idle agents in the same order)
    spread over all of them."""
    if agent < 1 or uas_count < 1:
        raise ValueError(f"agent {agent} or UAS count {uas_count} below 1")
    return (agent - 1) % uas_count


@dataclass(frozen=True)
class Ports:
    sip: int = 5160
    http: int = 8189
    ami: int = 5139
    rtp_start: int = 30000
    rtp_end: int = 33999


@dataclass(frozen=True)
class Layout:
    """What the systems under test look like in the dialplan and queues.conf."""

    customers: int
    agents: int
    ari_app: str
    ring_timeout_s: int
    bare_wait_s: int
    uas: int = 1  # sipp UAS processes answering for the agents (agent_uas)


# The dialled numbers that select a system (extensions.conf): prefix + customer 001...
DID_PREFIX = {"ours": "4721100", "queue": "4722100", "bare": "4723100", "queue-nofill": "4724100"}


def did(system: str, customer: int) -> str:
    return f"{DID_PREFIX[system]}{customer:03d}"


class AsteriskError(InstanceError):
    """The benchmark's Asterisk could not be set up or started."""


def credentials() -> dict[str, str]:
    """ARI and AMI passwords of the benchmark's Asterisk, generated once (0600)."""
    return isolated.credentials(BENCH_DIR / "credentials", ("ARI_PASSWORD", "AMI_PASSWORD"))


def render_config(etc: Path, layout: Layout, ports: Ports, creds: dict[str, str]) -> None:
    """Write the complete configuration of the benchmark's Asterisk into ``etc``."""
    isolated.copy_conf(etc, SHARED_CONF)

    def contact(n: int) -> str:
        ip, port = uas_address(agent_uas(n, layout.uas))
        return f"sip:agentb{n}@{ip}:{port}"

    agents = "\n".join(
        f"[agentb{n}](agent-endpoint)\naors = agentb{n}\n"
        f"[agentb{n}](agent-aor)\ncontact = {contact(n)}\n"
        for n in range(1, layout.agents + 1)
    )
    members = "".join(f"member => PJSIP/agentb{n}\n" for n in range(1, layout.agents + 1))
    queues = "\n".join(
        f"[bench-{c:03d}](bench-queue)\n{members}\n"
        f"[bench-nofill-{c:03d}](bench-queue)\nautofill = no\n{members}"
        for c in range(1, layout.customers + 1)
    )
    values = {
        "HTTP_PORT": str(ports.http),
        "AMI_PORT": str(ports.ami),
        "SIP_PORT": str(ports.sip),
        "RTP_START": str(ports.rtp_start),
        "RTP_END": str(ports.rtp_end),
        "CARRIER_IP": CARRIER_IP,
        "AGENT_IP": AGENT_IP,
        "AGENT_PORT": str(AGENT_PORT),
        "AGENTS": agents,
        "QUEUES": queues,
        "ARI_APP": layout.ari_app,
        "RING_TIMEOUT_S": str(layout.ring_timeout_s),
        "BARE_WAIT_S": str(layout.bare_wait_s),
    }
    for name in TEMPLATE_CONF:
        text = (TEMPLATES / name).read_text()
        (etc / name).write_text(isolated.fill(text, values, f"benchmark config {name}"))
    isolated.write_private(
        etc / "ari_users.conf",
        f"[{ARI_USER}]\ntype = user\nread_only = no\npassword_format = plain\n"
        f"password = {creds['ARI_PASSWORD']}\n",
    )
    isolated.write_private(
        etc / "manager_users.conf",
        f"[{AMI_USER}](televikar-ami)\nsecret = {creds['AMI_PASSWORD']}\n",
    )


class BenchAsterisk:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent)."""

    def __init__(self, layout: Layout, ports: Ports | None = None) -> None:
        self.layout = layout
        self.ports = ports or Ports()
        self.creds = credentials()
        self.state = BENCH_DIR / "state"
        self.output = BENCH_DIR / "asterisk.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_dir(self) -> Path:
        return self.state / "log"

    def start(self, timeout_s: float = 60.0) -> None:
        if not (LAB_ROOT / "usr/sbin/asterisk").is_file():
            raise AsteriskError(
                f"no Asterisk root at {LAB_ROOT}: run `bash asterisk/lab.sh provision` "
                "(or `make bench`, which does)"
            )
        busy = [
            f"{what} {port}"
            for what, port, free in (
                ("SIP/udp", self.ports.sip, procs.udp_port_free("127.0.0.1", self.ports.sip)),
                ("HTTP", self.ports.http, procs.tcp_port_free("127.0.0.1", self.ports.http)),
                ("AMI", self.ports.ami, procs.tcp_port_free("127.0.0.1", self.ports.ami)),
            )
            if not free
        ]
        if busy:
            raise AsteriskError(f"ports in use: {', '.join(busy)} (another benchmark running?)")
        isolated.prepare_state(self.state)
        render_config(self.state / "etc", self.layout, self.ports, self.creds)
        self.output.write_bytes(b"")
        self.proc = procs.start(isolated.command(BENCH_DIR / "root", self.state), self.output)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                tail = self.output.read_text(errors="replace")[-2000:]
                raise AsteriskError(f"Asterisk exited at start-up ({self.output}):\n{tail}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.ari("GET", "asterisk/info", timeout=2)
                procs.refresh_registry()  # unshare -> sh -> chroot -> asterisk, same pid
                break
            if time.monotonic() > deadline:
                self.stop()
                raise AsteriskError(f"ARI did not answer on {self.ari_url} in {timeout_s:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, grace_s=10.0)
            self.proc = None

    # --- ARI -------------------------------------------------------------------------

    def ari(self, method: str, path: str, timeout: float = 5.0, tries: int = 3) -> Any:
        """One ARI request of the harness's own. An overloaded Asterisk may drop the
        connection (its HTTP server refuses sessions beyond its limit): tried again,
        ``tries`` times in all, a second apart, so one refusal does not end a run."""
        password = self.creds["ARI_PASSWORD"]
        for attempt in range(tries):
            try:
                return isolated.ari_request(self.ari_url, ARI_USER, password, method, path, timeout)
            except urllib.error.HTTPError:
                raise  # Asterisk answered: not a dropped connection
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt == tries - 1:
                    raise
                time.sleep(1.0)
        raise AssertionError("unreachable")

    def version(self) -> str:
        info = self.ari("GET", "asterisk/info")
        return str(info.get("system", {}).get("version", "?"))

    def app_connected(self, app: str) -> bool:
        try:
            self.ari("GET", f"applications/{app}", timeout=2)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def channel_count(self) -> int:
        return len(self.ari("GET", "channels") or [])

    def hang_up_everything(self) -> int:
        """Hang up every channel left over (a failed step's stuck agent legs)."""
        channels = self.ari("GET", "channels") or []
        for channel in channels:
            with contextlib.suppress(urllib.error.HTTPError):
                self.ari("DELETE", f"channels/{channel['id']}")
        return len(channels)

    def queue_log(self) -> str:
        path = self.log_dir / "queue_log"
        return path.read_text(errors="replace") if path.is_file() else ""
