"""What every repository shares: the errors they raise and their unit of work.

Exceptions::

    RepositoryError            anything the repositories raise on purpose
     ├── NotFound              (also a LookupError) a row named by id does not exist
     │    ├── CallNotFound
     │    └── MessageNotFound
     └── Conflict              a unique key is taken (customer name, forwarded-from
                               number, endpoint, channel id, a call's message), a booking
                               overlaps another, or a referenced row is missing

Arguments that are wrong whatever the database holds (a naive datetime, an unknown
outcome or hold style, a negative duration) raise ``ValueError``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SessionSource = AsyncSession | async_sessionmaker[AsyncSession]


class RepositoryError(Exception):
    """Base of the errors the repositories raise."""


class NotFound(RepositoryError, LookupError):
    """A row named by its id does not exist."""


class CallNotFound(NotFound):
    pass


class MessageNotFound(NotFound):
    pass


class Conflict(RepositoryError):
    """A unique key is already taken, a booking overlaps, or a referenced row is missing."""


def require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


async def flush(session: AsyncSession, what: str) -> None:
    """Flush now, so that a database error surfaces here, as a ``Conflict``."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what}: {exc.orig}") from exc


class Repository:
    """Built on an ``AsyncSession`` (the caller's unit of work) or an
    ``async_sessionmaker`` (a transaction per method); see ``db.repositories``."""

    def __init__(self, source: SessionSource) -> None:
        self._source = source

    @property
    def source(self) -> SessionSource:
        """The session or sessionmaker, so another repository can share the unit of work."""
        return self._source

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[AsyncSession]:
        """The caller's session, or a transaction of our own around one method."""
        if isinstance(self._source, AsyncSession):
            yield self._source
        else:
            async with self._source.begin() as session:
                yield session
