"""UTCDateTime and the schema's names, without a database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Dialect, make_url

from televikar_pbx.db.models import Base, UTCDateTime
from televikar_pbx.db.records import CallOutcome

SQLITE = make_url("sqlite+aiosqlite://").get_dialect()()
POSTGRES = make_url("postgresql+asyncpg://").get_dialect()()
OSLO_SUMMER = dt.datetime(2026, 7, 1, 10, 0, tzinfo=ZoneInfo("Europe/Oslo"))


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_naive_datetime_refused_on_bind(dialect: Dialect) -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(dt.datetime(2026, 7, 1, 10, 0), dialect)


def test_bind_converts_to_utc() -> None:
    # SQLite's DATETIME would drop tzinfo and keep the wall clock: convert first.
    assert UTCDateTime().process_bind_param(OSLO_SUMMER, SQLITE) == dt.datetime(2026, 7, 1, 8, 0)
    bound = UTCDateTime().process_bind_param(OSLO_SUMMER, POSTGRES)
    assert bound == OSLO_SUMMER and bound is not None and bound.tzinfo is dt.UTC


def test_result_is_aware_utc() -> None:
    naive_from_sqlite = dt.datetime(2026, 7, 1, 8, 0)
    read = UTCDateTime().process_result_value(naive_from_sqlite, SQLITE)
    assert read == OSLO_SUMMER and read is not None and read.tzinfo is dt.UTC
    read = UTCDateTime().process_result_value(OSLO_SUMMER, POSTGRES)
    assert read is not None and read.tzinfo is dt.UTC
    assert UTCDateTime().process_result_value(None, SQLITE) is None


def test_non_datetime_refused() -> None:
    with pytest.raises(TypeError):
        UTCDateTime().process_bind_param("2026-07-01T10:00:00Z", SQLITE)


def test_constraint_names_follow_the_convention() -> None:
    calls = Base.metadata.tables["calls"]
    assert {c.name for c in calls.constraints} >= {
        "pk_calls",
        "uq_calls_channel_id",
        "fk_calls_customer_id_customers",
        "fk_calls_agent_id_agents",
    }
    assert {i.name for i in calls.indexes} == {
        "ix_calls_customer_id_arrived_at",
        "ix_calls_customer_id_caller_number_arrived_at",
        "ix_calls_linkedid",
        "ix_calls_agent_id",
    }


def test_outcome_values() -> None:
    assert CallOutcome("no_message") is CallOutcome.NO_MESSAGE
    with pytest.raises(ValueError):
        CallOutcome("lost")
