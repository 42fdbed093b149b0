"""The timings of leader-standby mode, checked against each other, from the settings.

With the defaults (lease 3 s, renew every 1 s, margin 0.5 s, standby retry 0.5 s):
a leader survives two lost renewals in a row; it stops acting 2.5 s after the start of
its last successful renewal; a standby takes over at most lease + retry = 3.5 s after
the leader's last renewal, so within 3.5 s of a ``kill -9`` (issue 16 asks for 5 s).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

LEASE_NAME = "desk"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """``holder`` must be unique among the processes sharing the lease."""

    holder: str
    name: str = LEASE_NAME
    lease_s: float = 3.0
    renew_s: float = 1.0
    retry_s: float = 0.5
    margin_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.holder:
            raise ConfigError("cluster: the node name (holder) must not be empty")
        if min(self.lease_s, self.renew_s, self.retry_s) <= 0 or self.margin_s < 0:
            raise ConfigError("cluster: lease, renew and retry must be positive")
        if self.renew_s >= self.lease_s - self.margin_s:
            raise ConfigError(
                f"cluster: renew every {self.renew_s} s is too slow for a {self.lease_s} s"
                f" lease with a {self.margin_s} s margin (renew < lease - margin)"
            )


def default_holder() -> str:
    """hostname:pid, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def cluster_config(settings: Settings) -> ClusterConfig | None:
    """The cluster configuration, or None in single mode. Leader-standby mode needs
    PostgreSQL: any other database is refused with one ConfigError."""
    if settings.cluster_mode == "single":
        return None
    backend = make_url(settings.sqlalchemy_url).get_backend_name()
    if backend != "postgresql":
        raise ConfigError(
            f"TELEVIKAR_CLUSTER_MODE={settings.cluster_mode} needs PostgreSQL "
            f"(TELEVIKAR_DATABASE_URL=postgresql+asyncpg://...), not {backend}: "
            "SQLite is for a single serve"
        )
    return ClusterConfig(
        holder=settings.cluster_node_name or default_holder(),
        lease_s=settings.cluster_lease_s,
        renew_s=settings.cluster_renew_s,
        retry_s=settings.cluster_retry_s,
        margin_s=settings.cluster_margin_s,
    )
