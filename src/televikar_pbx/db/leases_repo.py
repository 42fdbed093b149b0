"""Leadership leases in PostgreSQL: take, renew, release, and fence a write.

A lease is one row of ``cluster_leases`` (name, holder, generation, expires_at). Every
statement reads the time from the database (``clock_timestamp()``), never from the
processes: the holders' wall clocks may differ, the database's is the one they share.

- :func:`acquire` takes the row when it is free or expired, in one statement, and bumps
  ``generation``: the new holder's :class:`FenceToken`.
- :func:`renew` moves ``expires_at`` on, only for the same holder *and* generation;
  ``False`` means the lease is lost (expired and taken, or released).
- :func:`release` ends the lease at once (a clean shutdown): a standby may take it at its
  next try instead of waiting for the expiry.
- :func:`check_fence` is the first statement of a leader's write transaction
  (:func:`fenced_transaction` is ``sessionmaker.begin()`` with it): it proves that the
  token still holds and keeps it holding until the transaction ends (the row is locked
  ``FOR SHARE``, which a takeover's update must wait for). A stale token raises
  :class:`Fenced`; the caller's ``sessionmaker.begin()`` block then rolls back.

A leader cut off from the database in the middle of a fenced transaction would keep that
row lock for as long as its backend lives, which without TCP keepalives is long. So
:func:`check_fence` also sets ``idle_in_transaction_session_timeout`` for the
transaction: the server ends such a session after ``idle_timeout_s`` of silence, and
the standby's takeover waits at most that long behind it.

PostgreSQL only: on another database every function raises :class:`LeaseUnsupported`.

Exceptions::

    RepositoryError (db/repo_base.py)
     ├── Fenced              the token no longer holds its lease: roll back, stop acting
     └── LeaseUnsupported    the database is not PostgreSQL
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db.repo_base import RepositoryError

DEFAULT_IDLE_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class FenceToken:
    """Who holds lease ``name``, and in which generation. Writes carry it."""

    name: str
    holder: str
    generation: int


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The row as a standby sees it: the holder, its generation and whether it is live."""

    name: str
    holder: str
    generation: int
    expires_at: dt.datetime
    live: bool


class Fenced(RepositoryError):
    """The token's lease has moved on (another holder, a newer generation, or expired):
    the holder must roll back and stop acting."""

    def __init__(self, token: FenceToken) -> None:
        super().__init__(
            f"lease {token.name!r} no longer held by {token.holder!r} "
            f"in generation {token.generation}"
        )
        self.token = token


class LeaseUnsupported(RepositoryError):
    """Leases need PostgreSQL."""


def _require_postgresql(session: AsyncSession) -> None:
    name = session.get_bind().dialect.name
    if name != "postgresql":
        raise LeaseUnsupported(f"leadership leases need PostgreSQL, not {name}")


_LEASE = "clock_timestamp() + CAST(:lease_s AS double precision) * interval '1 second'"

_READ = text(
    "SELECT holder, generation, expires_at, expires_at > clock_timestamp() AS live"
    " FROM cluster_leases WHERE name = :name"
)

# The conflicting row is locked before the WHERE is evaluated, so two standbys racing
# for an expired lease are serialised: the second sees the first's new expiry and gets
# no row back.
_ACQUIRE = text(
    "INSERT INTO cluster_leases (name, holder, generation, expires_at, renewed_at)"
    f" VALUES (:name, :holder, 1, {_LEASE}, clock_timestamp())"
    " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
    " generation = cluster_leases.generation + 1,"
    f" expires_at = {_LEASE}, renewed_at = clock_timestamp()"
    " WHERE cluster_leases.expires_at <= clock_timestamp()"
    " RETURNING generation"
)

_RENEW = text(
    f"UPDATE cluster_leases SET expires_at = {_LEASE}, renewed_at = clock_timestamp()"
    " WHERE name = :name AND holder = :holder AND generation = :generation"
    " AND expires_at > clock_timestamp()"
)

_RELEASE = text(
    "UPDATE cluster_leases SET expires_at = clock_timestamp()"
    " WHERE name = :name AND holder = :holder AND generation = :generation"
)

_FENCE = text(
    "SELECT 1 FROM cluster_leases"
    " WHERE name = :name AND holder = :holder AND generation = :generation"
    " AND expires_at > clock_timestamp() FOR SHARE"
)


_SEEN = text(
    "INSERT INTO cluster_members (name, holder, seen_at)"
    " VALUES (:name, :holder, clock_timestamp())"
    " ON CONFLICT (name, holder) DO UPDATE SET seen_at = clock_timestamp()"
)

_STANDBYS = text(
    "SELECT m.holder, EXTRACT(EPOCH FROM clock_timestamp() - m.seen_at) AS ago"
    " FROM cluster_members m LEFT JOIN cluster_leases l ON l.name = m.name"
    " WHERE m.name = :name AND m.seen_at > clock_timestamp()"
    " - CAST(:within_s AS double precision) * interval '1 second'"
    " AND (l.holder IS NULL OR l.holder <> m.holder OR l.expires_at <= clock_timestamp())"
    " ORDER BY m.holder"
)


async def standbys(session: AsyncSession, name: str, within_s: float) -> list[tuple[str, float]]:
    """The holders that tried to take lease ``name`` in the last ``within_s`` seconds and
    do not hold it (the standbys), with how many seconds ago they were seen."""
    _require_postgresql(session)
    rows = await session.execute(_STANDBYS, {"name": name, "within_s": within_s})
    return [(str(r.holder), float(r.ago)) for r in rows]


def _token_params(token: FenceToken) -> dict[str, object]:
    return {"name": token.name, "holder": token.holder, "generation": token.generation}


async def read_lease(session: AsyncSession, name: str) -> LeaseState | None:
    """The lease's row as it is now, or None if nobody ever held it."""
    _require_postgresql(session)
    row = (await session.execute(_READ, {"name": name})).one_or_none()
    if row is None:
        return None
    return LeaseState(name, row.holder, row.generation, row.expires_at, row.live)


async def acquire(
    session: AsyncSession, name: str, holder: str, lease_s: float
) -> FenceToken | None:
    """Take lease ``name`` for ``lease_s`` if it is free or expired: the new token, else
    None. A live lease is only read (no lock), so a standby's tries do not wait behind
    the leader's fenced writes."""
    current = await read_lease(session, name)
    if current is not None and current.live:
        if current.holder != holder:  # a standby: seen now (``standbys``)
            await session.execute(_SEEN, {"name": name, "holder": holder})
        return None
    params = {"name": name, "holder": holder, "lease_s": lease_s}
    generation = (await session.execute(_ACQUIRE, params)).scalar_one_or_none()
    return None if generation is None else FenceToken(name, holder, generation)


async def renew(session: AsyncSession, token: FenceToken, lease_s: float) -> bool:
    """Extend the lease by ``lease_s`` from now; False: it is no longer ours."""
    _require_postgresql(session)
    result = await session.execute(_RENEW, {**_token_params(token), "lease_s": lease_s})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, token: FenceToken) -> bool:
    """End the lease now, if it is still ours; False: it was not."""
    _require_postgresql(session)
    result = await session.execute(_RELEASE, _token_params(token))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def check_fence(
    session: AsyncSession, token: FenceToken, *, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
) -> None:
    """Raise :class:`Fenced` unless ``token`` holds its lease; if it does, it keeps
    holding it until ``session``'s transaction ends. Call it first in the transaction."""
    _require_postgresql(session)
    millis = max(1, round(idle_timeout_s * 1000))
    # SET cannot take a bind parameter; set_config(..., true) is SET LOCAL that can.
    await session.execute(
        text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true)"),
        {"ms": str(millis)},
    )
    if (await session.execute(_FENCE, _token_params(token))).first() is None:
        raise Fenced(token)


@asynccontextmanager
async def fenced_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    token: FenceToken,
    *,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> AsyncIterator[AsyncSession]:
    """``sessionmaker.begin()`` that starts with :func:`check_fence`: commits at the end
    of the block if the token held throughout, else raises :class:`Fenced` (or whatever
    the block raised) with nothing written."""
    async with sessionmaker.begin() as session:
        await check_fence(session, token, idle_timeout_s=idle_timeout_s)
        yield session


class FencedSessions(async_sessionmaker[AsyncSession]):
    """A sessionmaker whose every ``begin()`` starts with :func:`check_fence`: what a
    repository built on it writes is refused (:class:`Fenced`, rolled back) once the
    token's lease has moved on. Sessions it makes without ``begin()`` are not fenced."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        token: FenceToken,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        kw = dict(sessionmaker.kw)
        super().__init__(kw.pop("bind"), class_=sessionmaker.class_, **kw)
        self._inner = sessionmaker
        self.token = token
        self._idle_timeout_s = idle_timeout_s

    def begin(self) -> Any:  # an async context manager of a fenced transaction
        return fenced_transaction(self._inner, self.token, idle_timeout_s=self._idle_timeout_s)
