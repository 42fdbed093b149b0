"""One command, one transaction: open the database, run the work, commit or roll back,
and turn whatever went wrong into the project's errors (one line each).

    pydantic ValidationError, ValueError, NotFound  -> ConfigError  (the input)
    Conflict, SQLAlchemyError, OSError              -> StoreError   (the database)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from televikar_pbx.admin.inputs import one_line
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import Conflict, DirectoryRepository, NotFound
from televikar_pbx.errors import ConfigError, StoreError
from televikar_pbx.settings import Settings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Work = Callable[[DirectoryRepository], Awaitable[T]]


def checked(model: type[M], data: dict[str, Any]) -> M:
    """``data`` validated as ``model``; the first problem as a ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(one_line(exc)) from None


def run(settings: Settings, work: Work[T], *, steps: bool = False) -> T:
    """Run ``work`` in one transaction: all of it is written, or nothing.

    ``steps``: each repository call is a transaction of its own instead, for work that
    must record its progress as it goes (``reports send`` records an e-mail as pending
    before it leaves, and as sent or failed after).
    """

    async def main() -> T:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            sessions = make_sessionmaker(engine)
            if steps:
                return await work(DirectoryRepository(sessions))
            async with sessions.begin() as session:
                return await work(DirectoryRepository(session))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ValidationError as exc:
        raise ConfigError(one_line(exc)) from None
    except (ValueError, NotFound) as exc:
        raise ConfigError(_first_line(exc)) from None
    except Conflict as exc:
        raise StoreError(_first_line(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(_database_problem(settings, exc)) from None


def _first_line(exc: BaseException) -> str:
    # Driver messages may go on with DETAIL lines; SQLAlchemy's with the statement and
    # its parameters (which could hold a secret): the first line only.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _database_problem(settings: Settings, exc: Exception) -> str:
    url = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
    cause = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else None
    reason = _first_line(cause if isinstance(cause, BaseException) else exc)
    hint = ""
    if any(text in reason for text in ("no such table", "does not exist", "unable to open")):
        hint = " (run: televikar-pbx db upgrade)"
    return f"database {url}: {reason}{hint}"
