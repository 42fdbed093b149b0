"""The cluster lab (issue 16): Kamailio in front of two (or N) Asterisk nodes, all from the
project's own files, beside the single-node lab and the load benchmark.

Addresses (each part on its own loopback address, so all keep the standard ports):

    Kamailio          127.0.1.1:5060/udp   the carrier's and the phones' only SIP peer
    carrier (sipp)    127.0.1.2            identified by Kamailio by this address
    agents' phones    127.0.1.3:5070+N     agentN registers here at Kamailio
    PostgreSQL        127.0.1.4:5432/tcp   the service's database; Kamailio reads the
                                           agents' phone secrets there (lab/cluster_db.py)
    node a, b, ...    127.0.1.11, .12, ... SIP 5060/udp, ARI/HTTP 8088, AMI 5038,
                                           RTP 20000-20999 (a), 21000-21999 (b), ...

Each node is an isolated Asterisk from the lab's root (lab/asterisk.py, with
``private_writes``: nothing is written into the lab root). Its configuration is the
project's ``asterisk/conf/`` with per-node overrides only (:func:`render_node_config`):
addresses and ports, the carrier identified by Kamailio's address, no static agents,
and the node's name (asterisk.conf ``systemname``, so unique ids read
``a-1700000000.1``, and the dialplan global ``TELEVIKAR_NODE``). The agents are the
service's, from the database, in ``pjsip_televikar.conf`` as the service writes it
behind the SIP front (asterisk_conf.py ``render_pjsip``: reached through Kamailio,
identified by Kamailio's header): the lab writes it at each node start, a running
``serve`` rewrites it.

Files, under ``$TELEVIKAR_CLUSTER_DIR`` (default /var/cache/televikar-pbx/cluster):

    credentials              agent9's password, the lab agents' phone secrets
                             (AGENTn_SECRET), the database roles' passwords (0600)
    postgres/                PostgreSQL's data, socket and log (server.log)
    kamailio/                kamailio.cfg, dispatcher.list, kamailio.out (its log),
                             the RPC sockets
    nodes/NAME/credentials   the node's ARI and AMI passwords (0600)
    nodes/NAME/televikar.env the node's settings for the service (0600), as the lab's
    televikar.env            TELEVIKAR_NODES, _SIP_FRONT, _DATABASE_URL for a service
                             over all nodes (0600):
                             ``TELEVIKAR_ENV_FILE=$DIR/televikar.env televikar-pbx serve``
    nodes/NAME/asterisk.out  console output
    nodes/NAME/state/        etc (configuration), log (messages.log, cdr-custom/),
                             spool (recording/fallback/), db, run
    pids.json                what runs, by pid (a harness killed outright leaves its
                             processes there; the next start stops them)

``python -m lab.cluster run`` starts everything and stops it on Ctrl-C; tests use
:class:`Cluster` as a context manager.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from lab import asterisk as isolated
from lab import procs
from lab.cluster_db import ClusterDatabase
from lab.kamailio import Kamailio, KamailioSettings
from televikar_pbx.asterisk_conf import GENERATED_PJSIP, PhoneAccount, render_pjsip

CLUSTER_DIR = Path(os.environ.get("TELEVIKAR_CLUSTER_DIR", "/var/cache/televikar-pbx/cluster"))
SIP_PORT = 5060
KAMAILIO_IP = "127.0.1.1"
CARRIER_IP = "127.0.1.2"
AGENT_IP = "127.0.1.3"
AGENT_BASE_PORT = 5070  # agentN's phone listens on AGENT_BASE_PORT + N
NODE_BASE_IP = 11  # node number i (from 0) is 127.0.1.(11 + i)
HTTP_PORT = 8088
AMI_PORT = 5038
RTP_BASE = 20000  # node i: RTP_BASE + 1000 i .. + 999
ARI_USER = "televikar"
AMI_USER = "televikar"
# The lab's agents: in the database with phone secrets (``Cluster.agent_secret``), so
# their sipp phones register at Kamailio with digest auth. asterisk/conf/pjsip.conf's
# static agents of the same names (the single-node lab's) are left out of the nodes.
AGENTS = tuple(f"agent{n}" for n in range(1, 6))
SIP_FRONT = f"{KAMAILIO_IP}:{SIP_PORT}"


class ClusterError(RuntimeError):
    """The cluster lab could not be started (a part missing, a port in use, a part
    that did not come up)."""


def agent_address(agent: int) -> tuple[str, int]:
    """Where agent N's phone listens (and registers from)."""
    return AGENT_IP, AGENT_BASE_PORT + agent


@dataclass(frozen=True)
class NodeSpec:
    name: str  # "a", "b", ...
    index: int  # 0, 1, ...

    @property
    def ip(self) -> str:
        return f"127.0.1.{NODE_BASE_IP + self.index}"

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.ip}:{SIP_PORT}"

    @property
    def ari_url(self) -> str:
        return f"http://{self.ip}:{HTTP_PORT}/"

    @property
    def rtp_range(self) -> tuple[int, int]:
        start = RTP_BASE + 1000 * self.index
        return start, start + 999


def node_specs(count: int) -> list[NodeSpec]:
    if not 1 <= count <= 26:
        raise ClusterError(f"1 to 26 nodes, not {count}")
    return [NodeSpec(chr(ord("a") + i), i) for i in range(count)]


def render_node_config(
    etc: Path, node: NodeSpec, creds: dict[str, str], phones: Sequence[PhoneAccount] = ()
) -> None:
    """The node's complete configuration in ``etc``: every file of asterisk/conf/, with
    the per-node values set (the single source for all the rest stays asterisk/conf/),
    and the agents' ``phones`` as the service writes them behind the SIP front."""
    isolated.copy_conf(etc)

    def override(name: str, *changes: tuple[str, str, str], add: bool = False) -> None:
        text = (etc / name).read_text()
        for section, key, value in changes:
            text = isolated.set_option(text, section, key, value, add=add)
        (etc / name).write_text(text)

    rtp_start, rtp_end = node.rtp_range
    override(
        "asterisk.conf",
        # Everything the node writes, under /mnt (its state directory).
        ("directories", "astetcdir", "/mnt/etc"),
        ("directories", "astrundir", "/mnt/run"),
        ("directories", "astspooldir", "/mnt/spool"),
        ("directories", "astlogdir", "/mnt/log"),
        ("directories", "astdbdir", "/mnt/db"),
        # The node's name: prefixes every unique id ("a-1700000000.1"), so channel ids
        # stay unique across the cluster; CDRs and ARI carry it.
        ("options", "systemname", node.name),
        ("options", "entityid", f"02:00:00:00:01:{node.index + 1:02x}"),
        add=True,
    )
    override(
        "pjsip.conf",
        ("global", "user_agent", f"televikar-node-{node.name}"),
        ("transport-udp", "bind", f"{node.ip}:{SIP_PORT}"),
        ("endpoint-common", "media_address", node.ip),
        # Calls arrive through Kamailio: that is "the carrier" for a node.
        ("carrier-identify", "match", KAMAILIO_IP),
        ("carrier", "contact", f"sip:{CARRIER_IP}:{SIP_PORT}"),
    )
    # The single-node lab's static agent1..5 (no auth, identified by the From user)
    # would clash with the service's agents of those names.
    pjsip = etc / "pjsip.conf"
    pjsip.write_text(isolated.remove_sections(pjsip.read_text(), AGENTS))
    fd = os.open(etc / GENERATED_PJSIP, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as f:
        f.write(render_pjsip(list(phones), SIP_FRONT))
    override("http.conf", ("general", "bindaddr", node.ip))
    override("manager.conf", ("general", "bindaddr", node.ip))
    override(
        "rtp.conf", ("general", "rtpstart", str(rtp_start)), ("general", "rtpend", str(rtp_end))
    )
    override("extensions.conf", ("globals", "TELEVIKAR_NODE", node.name), add=True)
    isolated.write_private(
        etc / "ari_users.conf",
        f"; Generated by lab/cluster.py - do not edit.\n[{ARI_USER}]\ntype = user\n"
        f"read_only = no\npassword_format = plain\npassword = {creds['ARI_PASSWORD']}\n",
    )
    isolated.write_private(
        etc / "manager_users.conf",
        f"; Generated by lab/cluster.py - do not edit.\n"
        f"[{AMI_USER}](televikar-ami)\nsecret = {creds['AMI_PASSWORD']}\n",
    )
    isolated.write_private(
        etc / "pjsip_lab_auth.conf",
        f"; Generated by lab/cluster.py - do not edit.\n[agent9-auth]\ntype = auth\n"
        f"auth_type = userpass\nusername = agent9\npassword = {creds['AGENT9_PASSWORD']}\n",
    )


@dataclass(frozen=True)
class CdrRow:
    """The columns of a node's cdr_custom Master.csv that the cluster tests read."""

    uniqueid: str
    channel: str
    dst: str
    dcontext: str
    disposition: str


class Node:
    """One Asterisk node. Start with :meth:`start`; :meth:`kill` is ``kill -9``."""

    def __init__(self, spec: NodeSpec, directory: Path, agent9_password: str) -> None:
        self.spec = spec
        self.dir = directory
        self.state = directory / "state"
        self.output = directory / "asterisk.out"
        self.env_file = directory / "televikar.env"
        self.creds = {
            **isolated.credentials(directory / "credentials", ("ARI_PASSWORD", "AMI_PASSWORD")),
            "AGENT9_PASSWORD": agent9_password,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def cdr_file(self) -> Path:
        return self.state / "log" / "cdr-custom" / "Master.csv"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self, phones: Sequence[PhoneAccount] = ()) -> None:
        """Start Asterisk with the agents' ``phones``; :meth:`wait_ready` waits for its
        ARI."""
        ip = self.spec.ip
        busy = [
            f"{what} {ip}:{port}"
            for what, port, free in (
                ("SIP/udp", SIP_PORT, procs.udp_port_free(ip, SIP_PORT)),
                ("HTTP", HTTP_PORT, procs.tcp_port_free(ip, HTTP_PORT)),
                ("AMI", AMI_PORT, procs.tcp_port_free(ip, AMI_PORT)),
            )
            if not free
        ]
        if busy:
            raise ClusterError(f"node {self.name}: in use: {', '.join(busy)}")
        isolated.prepare_state(self.state)
        render_node_config(self.state / "etc", self.spec, self.creds, phones)
        self.write_env_file()
        self.output.write_bytes(b"")
        command = isolated.command(self.dir / "root", self.state, private_writes=True)
        self.proc = procs.start(command, self.output)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not isolated.ari_answers(self.spec.ari_url, ARI_USER, self.creds["ARI_PASSWORD"]):
            if self.proc is None or self.proc.poll() is not None:
                tail = self.output.read_text(errors="replace")[-2000:]
                raise ClusterError(f"node {self.name}: Asterisk exited ({self.output}):\n{tail}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"node {self.name}: no ARI on {self.spec.ari_url} in {timeout_s:.0f} s"
                )
            time.sleep(0.2)
        procs.refresh_registry()  # unshare -> sh -> chroot -> asterisk: record its command line

    def write_env_file(self) -> None:
        """The node's settings in the lab's env-file form (TELEVIKAR_*), for the service."""
        values = {"TELEVIKAR_NODE": self.name}
        values |= {
            f"TELEVIKAR_{key.upper()}": value
            for key, value in self.service_node().items()
            if key != "name"
        }
        isolated.write_private(self.env_file, "".join(f"{k}={v}\n" for k, v in values.items()))

    def service_node(self) -> dict[str, str]:
        """The node as one entry of the service's TELEVIKAR_NODES (settings.py
        NodeSettings)."""
        return {
            "name": self.name,
            "ari_url": self.spec.ari_url,
            "ari_user": ARI_USER,
            "ari_password": self.creds["ARI_PASSWORD"],
            "ami_host": self.spec.ip,
            "ami_port": str(AMI_PORT),
            "ami_user": AMI_USER,
            "ami_password": self.creds["AMI_PASSWORD"],
            "cdr_file": str(self.cdr_file),
            "recording_spool": str(self.state / "spool" / "recording"),
            "asterisk_conf_dir": str(self.state / "etc"),
        }

    def kill(self) -> None:
        """``kill -9`` of the node's Asterisk (its mount namespace goes with it)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            procs.forget(self.proc)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, grace_s=10.0)
            self.proc = None

    def ari(self, method: str, path: str, timeout: float = 5.0) -> Any:
        return isolated.ari_request(
            self.spec.ari_url, ARI_USER, self.creds["ARI_PASSWORD"], method, path, timeout
        )

    def hang_up_everything(self) -> None:
        for channel in self.ari("GET", "channels") or []:
            with contextlib.suppress(urllib.error.HTTPError):  # gone meanwhile
                self.ari("DELETE", f"channels/{channel['id']}")

    def cdr_rows(self) -> list[CdrRow]:
        """Every CDR the node wrote since it started (columns: asterisk/conf/cdr_custom.conf)."""
        if not self.cdr_file.is_file():
            return []
        with self.cdr_file.open(newline="") as f:
            return [
                CdrRow(fields[0], fields[2], fields[5], fields[7], fields[13])
                for fields in csv.reader(f)
                if len(fields) > 13
            ]

    def cli(self, command: str) -> str:
        """An Asterisk CLI command on the node (through its control socket, from the host:
        the node's root is a private mount, so `asterisk -r` runs in its namespace)."""
        if self.proc is None:
            raise ClusterError(f"node {self.name} is not running")
        done = subprocess.run(
            ["nsenter", "-t", str(self.proc.pid), "-m", "-r", "-w",
             "/usr/sbin/asterisk", "-C", "/mnt/etc/asterisk.conf", "-rx", command],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return done.stdout


class Cluster:
    """Kamailio and the nodes; ``with Cluster() as cluster:`` starts them all and stops
    them all (by pid) however the block ends."""

    def __init__(self, nodes: int = 2, directory: Path = CLUSTER_DIR) -> None:
        self.dir = directory
        shared = isolated.credentials(
            directory / "credentials",
            ("AGENT9_PASSWORD", "DB_PASSWORD", "KAMAILIO_DB_PASSWORD",
             *(f"{agent.upper()}_SECRET" for agent in AGENTS)),
        )  # fmt: skip
        self.agent_secrets = {agent: shared[f"{agent.upper()}_SECRET"] for agent in AGENTS}
        self.db = ClusterDatabase(directory / "postgres", shared)
        self.nodes = [
            Node(spec, directory / "nodes" / spec.name, shared["AGENT9_PASSWORD"])
            for spec in node_specs(nodes)
        ]
        self.kamailio = Kamailio(
            directory / "kamailio",
            KamailioSettings(
                ip=KAMAILIO_IP,
                port=SIP_PORT,
                carrier_ip=CARRIER_IP,
                nodes=[(n.name, n.spec.sip_uri) for n in self.nodes],
                db_url=self.db.sip_front_url,
            ),
        )
        self._lock: IO[bytes] | None = None
        self.env_file = directory / "televikar.env"

    def nodes_setting(self) -> str:
        """TELEVIKAR_NODES for a service over every node (JSON)."""
        return json.dumps([node.service_node() for node in self.nodes])

    def service_settings(self) -> dict[str, str]:
        """What a service over all nodes needs (televikar.env): the nodes, the SIP
        front, the shared database."""
        return {
            "TELEVIKAR_NODES": self.nodes_setting(),
            "TELEVIKAR_SIP_FRONT": SIP_FRONT,
            "TELEVIKAR_DATABASE_URL": self.db.url,
        }

    def agent_secret(self, agent: str) -> str:
        """The lab agent's phone secret (agent1..5), as in the database after start."""
        return self.agent_secrets[agent]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def node_by_ip(self, ip: str) -> Node | None:
        return next((n for n in self.nodes if n.spec.ip == ip), None)

    def start(self) -> None:
        """Start the database (and seed the lab's agents), the nodes (in parallel), wait
        for their ARI, then Kamailio."""
        isolated.require_lab_root()
        self._take_lock()
        procs.use_registry(self.dir / "pids.json")  # stops what a killed harness left
        try:
            self.db.start()
            self.db.seed_agents(self.agent_secrets)
            phones = self.db.phone_accounts()
            for node in self.nodes:
                node.launch(phones)
            for node in self.nodes:
                node.wait_ready()
            isolated.write_private(
                self.env_file,
                "".join(f"{k}={v}\n" for k, v in self.service_settings().items()),
            )
            self.kamailio.start()
        except BaseException:
            self.stop()
            raise

    def restart_node(self, name: str) -> None:
        node = self.node(name)
        node.stop()
        node.launch(self.db.phone_accounts())  # the agents as they are now
        node.wait_ready()

    def stop(self) -> None:
        """Stop everything this cluster started, by pid; idempotent."""
        try:
            self.kamailio.stop()
        finally:
            for node in self.nodes:
                node.stop()
            self.db.stop()
            procs.release_registry(self.dir / "pids.json")
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def _take_lock(self) -> None:
        lock = (self.dir / ".lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ClusterError(f"another cluster lab runs ({self.dir / '.lock'} is held)") from None
        self._lock = lock

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def describe(self) -> Iterator[str]:
        k = self.kamailio
        pid = k.proc.pid if k.proc else "-"
        yield f"Kamailio  sip:{KAMAILIO_IP}:{SIP_PORT} pid {pid}, log {k.output}"
        yield f"          rpc: kamcmd -s unix:{k.ctl_socket} ul.dump | dispatcher.list"
        for node in self.nodes:
            s = node.spec
            yield (
                f"node {s.name}    {s.sip_uri} pid {node.pid or '-'}, ARI {s.ari_url}, "
                f"AMI {s.ip}:{AMI_PORT}, env {node.env_file}, log {node.output}"
            )
        yield f"carrier   from {CARRIER_IP}; agents' phones {AGENT_IP}:{AGENT_BASE_PORT}+N"
        yield (
            f"database  {self.db.server.ip}:{self.db.server.port} (data {self.db.server.dir});"
            f" lab agents {', '.join(AGENTS)}: secrets in {self.dir / 'credentials'}"
        )
        yield f"desk      TELEVIKAR_ENV_FILE={self.env_file} televikar-pbx serve"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["run"], help="start everything, stop it on Ctrl-C")
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    cluster = Cluster(args.nodes)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with cluster:
        for line in cluster.describe():
            print(line, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(node.running() for node in cluster.nodes):
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
