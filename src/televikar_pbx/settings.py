"""Configuration, read from the environment (prefix ``TELEVIKAR_``) and an env file.

The env file holds what is generated per installation (ARI/AMI credentials): the lab
writes it at provisioning, production operators write their own. Its path comes from
``TELEVIKAR_ENV_FILE`` (default ``/etc/televikar-pbx/televikar.env``); it lives outside
git, so no password is ever committed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ENV_FILE = "/etc/televikar-pbx/televikar.env"
# TELEVIKAR_SIP_FRONT: a host name, IPv4 or [IPv6] address, and optionally :port.
SIP_FRONT_PATTERN = r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$"
# A new leader's ARI connection and recovery, after it took the lease (seconds).
TAKEOVER_CONNECT_S = 3


class NodeSettings(BaseModel):
    """One Asterisk node of a cluster (``TELEVIKAR_NODES``): what is per node in the
    single-node settings of the same names. ``name`` is the node's asterisk.conf
    ``systemname``: its channels' ids start with it (``a-1700000000.12``), and that is
    how the service tells which node a call is on (cluster/nodes.py)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    ari_url: str
    ari_user: str = "televikar"
    ari_password: SecretStr = SecretStr("")
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "televikar"
    ami_password: SecretStr = SecretStr("")
    recording_spool: Path = Path("/var/spool/asterisk/recording")
    cdr_file: Path | None = Path("/var/log/asterisk/cdr-custom/Master.csv")
    asterisk_conf_dir: Path | None = None

    @property
    def fallback_dir(self) -> Path:
        return self.recording_spool / "fallback"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEVIKAR_", extra="ignore")

    # ARI (Asterisk REST Interface)
    ari_url: str = "http://127.0.0.1:8088/"
    ari_user: str = "televikar"
    ari_password: SecretStr = SecretStr("")
    ari_app: str = "televikar-pbx"
    ari_heartbeat_s: float = Field(default=10.0, gt=0)
    ari_reconnect_max_s: float = Field(default=10.0, gt=0)

    # Several Asterisk nodes (docs/configuration.md, "Several Asterisk nodes"): a JSON
    # list of NodeSettings, e.g. [{"name": "a", "ari_url": "http://10.0.0.11:8088/",
    # ...}, ...]. Empty: one node, from the ari_*, ami_*, recording_spool, cdr_file and
    # asterisk_conf_dir settings here.
    nodes: list[NodeSettings] = Field(default_factory=list)
    # With several nodes: a node whose ARI websocket has been closed this long (and not
    # connected again) is taken for lost, and the calls that were on it end, recorded
    # with cause 38 (network out of order) at the moment the desk lost the node.
    node_lost_s: float = Field(default=5.0, gt=0)
    # The SIP front (Kamailio, asterisk/kamailio/kamailio.cfg) as the nodes reach it,
    # host:port, e.g. "10.0.0.5:5060". Set: the agents' phones register there and are
    # authenticated there, and every node reaches them through it (asterisk_conf.py).
    # Unset: the phones register at the (one) Asterisk directly.
    sip_front: str | None = Field(default=None, pattern=SIP_FRONT_PATTERN)

    # AMI (Asterisk Manager Interface)
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "televikar"
    ami_password: SecretStr = SecretStr("")

    # FastAGI server for the agents' feature codes (loopback only). The dialplan
    # (asterisk/conf/extensions.conf, from-agents) names the same port.
    agi_port: int = 4573

    # Database: an explicit SQLAlchemy URL wins; otherwise the SQLite file at db_path.
    database_url: str | None = None
    db_path: Path = Path("/var/lib/televikar-pbx/televikar.sqlite3")

    # Calls
    ring_timeout_s: int = Field(default=15, gt=0)
    # Where Asterisk writes ARI recordings (its spool, as this process sees it) and where
    # messages are kept (created 0700; files 0600).
    recording_spool: Path = Path("/var/spool/asterisk/recording")
    messages_dir: Path = Path("/var/lib/televikar-pbx/messages")
    max_message_s: int = Field(default=120, gt=0)
    # Call records written while the database is unreachable wait here (fsync'ed) until
    # it is back (created 0700, files 0600).
    spool_dir: Path = Path("/var/lib/televikar-pbx/spool")
    # Journal entries and a call's answer and end are written behind the routing, in
    # batches, through that spool (calls/spool.py); false: each at once, in the routing.
    calls_write_behind: bool = True
    # The event loop of serve: uvloop (libuv's, cheaper per callback and socket) or
    # Python's own asyncio loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Asterisk's cdr_custom file (asterisk/conf/cdr_custom.conf): where the end of a call
    # is read when it ended while the service was down or disconnected.
    cdr_file: Path | None = Path("/var/log/asterisk/cdr-custom/Master.csv")

    # Asterisk's configuration directory, where the service writes what it generates
    # from the database (agent hints); unset = generate nothing.
    asterisk_conf_dir: Path | None = None

    # The loopback control API of `serve` (status, agent log-in/out/pause).
    control_port: int = Field(default=8765, gt=0, lt=65536)

    # SMTP for the customers' report e-mails (`reports send`); no host: not configured.
    # Security: "starttls" (upgrade on smtp_port, usually 587), "tls" (TLS from the first
    # byte, usually 465) or "none" (plain; no login then). The server's certificate is
    # always verified, against the system's CAs or, when set, smtp_ca_file's only.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    smtp_ca_file: Path | None = None

    # Messages to customers (docs/messages.md): the delivery worker in `serve` looks at
    # the outbox this often (it is also woken when the service saves a message).
    delivery_poll_s: float = Field(default=2.0, gt=0)
    # How long a claimed delivery is the claiming worker's: a worker that died mid-send
    # leaves it to be sent again after this (with the same Message-ID). Keep it well
    # above TELEVIKAR_SMTP_TIMEOUT_S, or a slow server gets the e-mail twice.
    delivery_lease_s: float = Field(default=120.0, gt=0)
    # At most this many deliveries a second (0: no limit). It spreads a burst out, keeps
    # a mail server's rate limit, and on SQLite leaves the write lock to the call
    # service (1,000 messages take about 35 s at 30/s).
    delivery_rate: float = Field(default=30.0, ge=0)
    # While the SMTP server is unreachable the worker checks this often whether it is
    # back (connect, greeting, NOOP), and then sends what waited at once.
    delivery_probe_s: float = Field(default=15.0, gt=0)
    # "process": `serve` runs the worker as its own niced child process (`televikar-pbx
    # deliver`), so sending never slows routing; "inline": in the routing process (one
    # process less); "off": not at all (run `televikar-pbx deliver` yourself).
    delivery_mode: Literal["process", "inline", "off"] = "process"
    # SMS through Sveve's HTTP API; unset user = SMS recipients' deliveries wait (and
    # end `failed` after the retries) with "SMS is not configured".
    sms_user: str | None = None
    sms_password: SecretStr = SecretStr("")
    sms_sender: str = "Televikar"
    sms_base_url: str | None = None  # another endpoint (a test stand-in)
    # The gateway's delivery reports come to http://HOST:PORT/sms/report?token=TOKEN
    # (put it behind the TLS proxy of docs/security.md); no token = reports refused.
    sms_webhook_host: str = "127.0.0.1"
    sms_webhook_port: int = Field(default=8766, gt=0, lt=65536)
    sms_webhook_token: SecretStr = SecretStr("")

    # The agent desk's web pages (docs/desk-web.md), on loopback by default; put them
    # behind the TLS proxy of docs/security.md and set web_secure_cookies. web_secret
    # (at least 32 characters, generated per installation, in the env file) signs the
    # log-in form's token and the acknowledgement links: changing it voids both.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8780, gt=0, lt=65536)
    web_secret: SecretStr = SecretStr("")
    web_secure_cookies: bool = False
    # The desk's address as customers reach it (behind the TLS proxy), e.g.
    # https://desk.example.no: urgent messages' e-mails then carry a link that
    # acknowledges them, valid ack_link_days. Unset: no links.
    web_public_url: str | None = None
    ack_link_days: float = Field(default=7.0, gt=0)
    # Behind a proxy every client has the proxy's address: take the client's from the
    # last X-Forwarded-For entry instead (only when the proxy sets it; else it is forged).
    web_trust_forwarded_for: bool = False
    web_session_idle_s: float = Field(default=8 * 3600, gt=0)
    web_session_absolute_s: float = Field(default=12 * 3600, gt=0)
    # Throttling: this many failed log-ins within the window lock the username (the
    # address: web_login_address_max_failures) for the lockout.
    web_login_max_failures: int = Field(default=5, gt=0)
    web_login_address_max_failures: int = Field(default=20, gt=0)
    web_login_window_s: float = Field(default=900, gt=0)
    web_login_lockout_s: float = Field(default=900, ge=0)

    # Leader and standby (docs/operations.md, issue 16): "single" is one serve on its
    # own; "leader-standby" lets several serve processes share one PostgreSQL database,
    # of which the one holding the lease leads. The holder's name defaults to
    # hostname:pid. A leader renews every renew_s and stops acting margin_s before its
    # lease_s runs out unrenewed; a standby tries to take the lease every retry_s.
    cluster_mode: Literal["single", "leader-standby"] = "single"
    cluster_node_name: str | None = None
    cluster_lease_s: float = Field(default=3.0, gt=0)
    cluster_renew_s: float = Field(default=1.0, gt=0)
    cluster_retry_s: float = Field(default=0.5, gt=0)
    cluster_margin_s: float = Field(default=0.5, ge=0)

    # The forwarding watch (docs/operations.md, issue 17): a customer is flagged when no
    # call came for so long that, at its usual rate per hour of the week (from the call
    # log's last forwarding_history_weeks, open hours only), the chance of that silence
    # is below forwarding_silence_p. It checks every forwarding_check_s.
    forwarding_history_weeks: float = Field(default=8.0, gt=0)
    forwarding_silence_p: float = Field(default=0.01, gt=0, lt=1)
    forwarding_check_s: float = Field(default=30.0, gt=0)

    # Logs: "console" (readable in a terminal) or "json" (production)
    log_format: str = "console"
    log_level: str = "info"

    @field_validator("nodes")
    @classmethod
    def _unique_names(cls, nodes: list[NodeSettings]) -> list[NodeSettings]:
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique: {names}")
        return nodes

    def node_list(self) -> list[NodeSettings]:
        """The nodes the service connects to: ``nodes``, else the one node of the
        single-node settings (named "", it owns every channel)."""
        if self.nodes:
            return list(self.nodes)
        return [
            NodeSettings.model_construct(
                name="",
                ari_url=self.ari_url,
                ari_user=self.ari_user,
                ari_password=self.ari_password,
                ami_host=self.ami_host,
                ami_port=self.ami_port,
                ami_user=self.ami_user,
                ami_password=self.ami_password,
                recording_spool=self.recording_spool,
                cdr_file=self.cdr_file,
                asterisk_conf_dir=self.asterisk_conf_dir,
            )
        ]

    @property
    def takeover_wait_s(self) -> int:
        """How long a caller rings while no desk is connected before the dialplan takes a
        message (extensions.conf): with a standby, long enough for it to take the lease
        (lease + retry) and connect; on a single box 0, the message at once."""
        if self.cluster_mode != "leader-standby":
            return 0
        return math.ceil(self.cluster_lease_s + self.cluster_retry_s) + TAKEOVER_CONNECT_S

    @property
    def fallback_dir(self) -> Path:
        """Where the dialplan leaves the messages it took while the service was down
        (asterisk/conf/extensions.conf, ``[televikar-fallback]``)."""
        return self.recording_spool / "fallback"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.db_path}"


def load_settings() -> Settings:
    """Settings from the environment, then the env file named by TELEVIKAR_ENV_FILE."""
    env_file = os.environ.get("TELEVIKAR_ENV_FILE", DEFAULT_ENV_FILE)
    if Path(env_file).is_file():
        return Settings(_env_file=env_file)
    return Settings()
