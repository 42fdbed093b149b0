"""The agent desk's users, their log-in sessions and failed log-ins (migration 0007).

Usernames are unique without regard to case (``username_key``, ``domain.auth``). The
password hash is only handed out by ``credentials``, for the log-in check; session
tokens are stored as their SHA-256 (the caller hashes, ``domain.auth.token_digest``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import Conflict, NotFound, Repository, flush, require_aware
from televikar_pbx.domain.auth import DeskSession, Role, UserAccount, check_username, username_key


class UserNotFound(NotFound):
    pass


class UserRepository(Repository):
    """Users, sessions and failed log-ins."""

    # --- users -------------------------------------------------------------------------

    async def add_user(
        self,
        username: str,
        password_hash: str,
        role: Role | str,
        *,
        agent_id: int | None = None,
        customer_ids: Iterable[int] = (),
        now: dt.datetime,
    ) -> UserAccount:
        """Add a user; Conflict when the username (any case) is taken, NotFound when the
        agent or a customer does not exist."""
        name = check_username(username)
        role = Role(role)
        require_aware("now", now)
        wanted = set(customer_ids)
        if wanted and role is not Role.ACCOUNT_MANAGER:
            raise ValueError(f"only an account_manager has customers of its own, not {role}")
        async with self._unit() as s:
            taken = await s.scalar(
                select(models.User.username).where(models.User.username_key == username_key(name))
            )
            if taken is not None:
                raise Conflict(f"username {name!r} is taken (by {taken!r})")
            if agent_id is not None and await s.get(models.Agent, agent_id) is None:
                raise NotFound(f"no agent with id {agent_id}")
            await _check_customers(s, wanted)
            row = models.User(
                username=name,
                username_key=username_key(name),
                password_hash=password_hash,
                role=role.value,
                agent_id=agent_id,
                created_at=now,
                password_changed_at=now,
            )
            s.add(row)
            await flush(s, f"user {name!r}")
            s.add_all(models.UserCustomer(user_id=row.id, customer_id=c) for c in sorted(wanted))
            await flush(s, f"customers of user {name!r}")
            return await _load_user(s, row.id)

    async def get_user(self, user_id: int) -> UserAccount:
        async with self._unit() as s:
            return await _load_user(s, user_id)

    async def find_user(self, username: str) -> UserAccount:
        async with self._unit() as s:
            user_id = await s.scalar(
                select(models.User.id).where(models.User.username_key == username_key(username))
            )
            if user_id is None:
                raise UserNotFound(f"no user {username!r}")
            return await _load_user(s, user_id)

    async def list_users(self) -> tuple[UserAccount, ...]:
        async with self._unit() as s:
            ids = await s.scalars(select(models.User.id).order_by(models.User.username_key))
            return tuple([await _load_user(s, i) for i in ids])

    async def credentials(self, username: str) -> tuple[UserAccount, str] | None:
        """The user and its password hash, for checking a log-in; None: no such user."""
        u = models.User
        async with self._unit() as s:
            row = (
                await s.execute(
                    select(u.id, u.password_hash).where(u.username_key == username_key(username))
                )
            ).first()
            if row is None:
                return None
            return await _load_user(s, row.id), row.password_hash

    async def set_password_hash(self, user_id: int, password_hash: str, now: dt.datetime) -> None:
        require_aware("now", now)
        await self._update(user_id, password_hash=password_hash, password_changed_at=now)

    async def rehash_password(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        """Replace the hash only if it is still ``old_hash`` (a log-in that upgraded the
        hashing parameters must not undo a password change made meanwhile)."""
        async with self._unit() as s:
            done = await s.scalar(
                update(models.User)
                .where(models.User.id == user_id, models.User.password_hash == old_hash)
                .values(password_hash=new_hash)
                .returning(models.User.id)
                .execution_options(synchronize_session=False)
            )
            return done is not None

    async def set_disabled(self, user_id: int, disabled: bool) -> None:
        await self._update(user_id, disabled=disabled)

    async def record_login(self, user_id: int, now: dt.datetime) -> None:
        require_aware("now", now)
        await self._update(user_id, last_login_at=now)

    async def agent_customer_ids(self, agent_id: int) -> frozenset[int]:
        ac = models.AgentCustomer
        async with self._unit() as s:
            return frozenset(await s.scalars(select(ac.customer_id).where(ac.agent_id == agent_id)))

    async def _update(self, user_id: int, **values: object) -> None:
        async with self._unit() as s:
            found = await s.scalar(
                update(models.User)
                .where(models.User.id == user_id)
                .values(**values)
                .returning(models.User.id)
                .execution_options(synchronize_session=False)
            )
            if found is None:
                raise UserNotFound(f"no user with id {user_id}")

    # --- sessions ----------------------------------------------------------------------

    async def create_session(
        self,
        token_hash: str,
        user_id: int,
        csrf_secret: bytes,
        now: dt.datetime,
        address: str | None = None,
    ) -> DeskSession:
        require_aware("now", now)
        async with self._unit() as s:
            row = models.WebSession(
                token_hash=token_hash,
                user_id=user_id,
                csrf_secret=csrf_secret.hex(),
                created_at=now,
                last_seen_at=now,
                address=address,
            )
            s.add(row)
            await flush(s, f"session of user {user_id}")
            return _session(row)

    async def session_by_token(self, token_hash: str) -> DeskSession | None:
        async with self._unit() as s:
            row = await s.scalar(
                select(models.WebSession).where(models.WebSession.token_hash == token_hash)
            )
            return None if row is None else _session(row)

    async def touch_session(self, session_id: int, now: dt.datetime) -> None:
        require_aware("now", now)
        async with self._unit() as s:
            await s.execute(
                update(models.WebSession)
                .where(models.WebSession.id == session_id)
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )

    async def delete_session(self, session_id: int) -> None:
        async with self._unit() as s:
            await s.execute(delete(models.WebSession).where(models.WebSession.id == session_id))

    async def delete_sessions_of(self, user_id: int) -> int:
        """End every session of the user (password changed, user disabled); how many."""
        async with self._unit() as s:
            ended = await s.scalars(
                delete(models.WebSession)
                .where(models.WebSession.user_id == user_id)
                .returning(models.WebSession.id)
            )
            return len(list(ended))

    async def delete_sessions_seen_before(self, cutoff: dt.datetime) -> None:
        """Forget sessions idle since before ``cutoff`` (housekeeping)."""
        require_aware("cutoff", cutoff)
        async with self._unit() as s:
            await s.execute(
                delete(models.WebSession).where(models.WebSession.last_seen_at < cutoff)
            )

    # --- failed log-ins ----------------------------------------------------------------

    async def add_failures(self, keys: Iterable[str], at: dt.datetime) -> None:
        require_aware("at", at)
        async with self._unit() as s:
            s.add_all(models.LoginFailure(key=k, at=at) for k in keys)
            await flush(s, "failed log-ins")

    async def failures_since(
        self, keys: Sequence[str], since: dt.datetime
    ) -> dict[str, list[dt.datetime]]:
        """The times of each key's failures at or after ``since`` (also older ones are
        forgotten here: nothing before ``since`` matters to the caller)."""
        require_aware("since", since)
        lf = models.LoginFailure
        found: dict[str, list[dt.datetime]] = {k: [] for k in keys}
        async with self._unit() as s:
            await s.execute(delete(lf).where(lf.key.in_(keys), lf.at < since))
            rows = await s.execute(
                select(lf.key, lf.at).where(lf.key.in_(keys), lf.at >= since).order_by(lf.at)
            )
            for key, at in rows:
                found[key].append(at)
        return found

    async def forget_failures_before(self, cutoff: dt.datetime) -> None:
        """Forget every key's failures older than ``cutoff`` (housekeeping)."""
        require_aware("cutoff", cutoff)
        async with self._unit() as s:
            await s.execute(delete(models.LoginFailure).where(models.LoginFailure.at < cutoff))

    async def delete_session_by_token(self, token_hash: str) -> None:
        async with self._unit() as s:
            await s.execute(
                delete(models.WebSession).where(models.WebSession.token_hash == token_hash)
            )

    async def clear_failures(self, key: str) -> None:
        async with self._unit() as s:
            await s.execute(delete(models.LoginFailure).where(models.LoginFailure.key == key))


async def _check_customers(s: AsyncSession, wanted: set[int]) -> None:
    if not wanted:
        return
    known = set(await s.scalars(select(models.Customer.id).where(models.Customer.id.in_(wanted))))
    missing = sorted(wanted - known)
    if missing:
        raise NotFound(f"no customer with id {missing}")


async def _load_user(s: AsyncSession, user_id: int) -> UserAccount:
    row = await s.get(models.User, user_id, populate_existing=True)
    if row is None:
        raise UserNotFound(f"no user with id {user_id}")
    uc = models.UserCustomer
    customers = frozenset(await s.scalars(select(uc.customer_id).where(uc.user_id == user_id)))
    return UserAccount(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        agent_id=row.agent_id,
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        customer_ids=customers,
    )


def _session(row: models.WebSession) -> DeskSession:
    return DeskSession(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        csrf_secret=bytes.fromhex(row.csrf_secret),
    )
