"""The leader's term by its own clock, and the cluster timings (cluster/term.py, config.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from televikar_pbx.cluster import ClusterConfig, LeaderTerm, cluster_config
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings


def test_no_term_before_the_lease_is_granted() -> None:
    term = LeaderTerm(lease_s=3.0, margin_s=0.5)
    assert not term.leading(100.0)
    assert term.remaining(100.0) == 0.0


def test_the_term_counts_from_when_the_renewal_was_sent() -> None:
    term = LeaderTerm(lease_s=3.0, margin_s=0.5)
    term.confirmed(sent_at=100.0)  # answered at, say, 100.9: does not matter
    assert term.until == 102.5
    assert term.leading(102.49)
    assert not term.leading(102.5)  # before the database lets a standby take it (103.0)
    assert term.remaining(101.0) == 1.5


def test_renewals_move_the_term_on_and_a_late_answer_never_shortens_it() -> None:
    term = LeaderTerm(lease_s=3.0, margin_s=0.5)
    term.confirmed(100.0)
    term.confirmed(101.0)
    assert term.until == 103.5
    term.confirmed(100.5)  # the answer to an older statement arriving late
    assert term.until == 103.5


def test_a_lost_or_released_term_ends_whatever_the_clock_says() -> None:
    term = LeaderTerm(lease_s=3.0, margin_s=0.5)
    term.confirmed(100.0)
    term.end()
    assert not term.leading(100.1)
    assert term.until is None


@pytest.mark.parametrize("margin", [-0.1, 3.0, 4.0])
def test_the_margin_must_fit_in_the_lease(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        LeaderTerm(lease_s=3.0, margin_s=margin)


def test_renewing_must_be_faster_than_the_term() -> None:
    with pytest.raises(ConfigError, match="renew < lease - margin"):
        ClusterConfig(holder="a", lease_s=3.0, renew_s=2.5, margin_s=0.5)
    with pytest.raises(ConfigError, match="node name"):
        ClusterConfig(holder="")
    assert ClusterConfig(holder="a").lease_s + ClusterConfig(holder="a").retry_s < 5


def test_single_mode_has_no_cluster() -> None:
    assert cluster_config(Settings(cluster_mode="single")) is None


def test_leader_standby_mode_refuses_sqlite(tmp_path: Path) -> None:
    settings = Settings(
        cluster_mode="leader-standby", database_url=None, db_path=tmp_path / "t.sqlite3"
    )
    with pytest.raises(ConfigError, match="needs PostgreSQL") as caught:
        cluster_config(settings)
    assert "\n" not in str(caught.value)


def test_leader_standby_mode_on_postgresql() -> None:
    settings = Settings(
        cluster_mode="leader-standby",
        database_url="postgresql+asyncpg://u:p@127.0.0.1/db",
        cluster_node_name="desk-1",
        cluster_lease_s=2.0,
        cluster_renew_s=0.5,
    )
    config = cluster_config(settings)
    assert config is not None
    assert (config.holder, config.name, config.lease_s, config.renew_s) == (
        "desk-1",
        "desk",
        2.0,
        0.5,
    )
    default = cluster_config(settings.model_copy(update={"cluster_node_name": None}))
    assert default is not None and default.holder.endswith(f":{os.getpid()}")
