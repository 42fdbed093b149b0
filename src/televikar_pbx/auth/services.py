"""Log-in, sessions and log-out of the agent desk, as use cases for the web layer.

The rules are ``domain.auth``'s; this module carries them out against the database,
each step a short transaction of its own (the password is checked between two, in a
worker thread: argon2 takes tens of milliseconds of CPU and must not stall the event
loop or hold a transaction open).

Failed log-ins are kept in the database (``login_failures``), not in memory: the
throttle then survives a restart of the service (an attacker cannot reset it by
crashing us or waiting for a deploy) and holds for every process that serves the desk.
Two attempts racing in the same instant may both be checked before either is recorded,
so an attacker gets at most a handful of extra guesses; that is accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.audit import AuditAction, AuditRecord
from televikar_pbx.domain.auth import (
    DeskSession,
    SessionPolicy,
    ThrottlePolicy,
    UserAccount,
    csrf_token,
    locked_until,
    session_alive,
    token_digest,
    username_key,
    visible_customers,
)

log = structlog.get_logger(__name__)

MAX_TYPED = 64  # a typed username or address is cut to this before it is stored
MAX_TOKEN = 128  # longer cookies are not ours (ours are 43 characters)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    user_throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    # An office may share one address: more room than per username.
    address_throttle: ThrottlePolicy = field(
        default_factory=lambda: ThrottlePolicy(max_failures=20)
    )
    sessions: SessionPolicy = field(default_factory=SessionPolicy)


class LoginOutcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"  # wrong username or password, or a disabled user (not told apart)
    LOCKED = "locked"  # too many failures: refused without checking


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    user: UserAccount | None = None
    # The new session's cookie value (OK only): shown once, stored only as its digest.
    token: str | None = field(default=None, repr=False)
    retry_at: dt.datetime | None = None  # LOCKED: when to try again


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A request's logged-in user, its session and the token its forms must carry."""

    user: UserAccount
    session: DeskSession
    csrf: str = field(repr=False)


class DeskAuth:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        passwords: Passwords,
        policy: AuthPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self.passwords = passwords
        self.policy = policy or AuthPolicy()

    async def login(
        self,
        username: str,
        password: str,
        address: str | None,
        now: dt.datetime,
        *,
        replacing: str | None = None,
    ) -> LoginResult:
        """Check a log-in and, when it succeeds, open a session. ``replacing``: the
        browser's previous session token, ended on success (never two sessions for one
        cookie; a planted session cannot survive a log-in)."""
        typed = username.strip()[:MAX_TYPED]
        address = address[:MAX_TYPED] if address else None
        user_key = f"user:{username_key(typed)}"
        keys = [user_key] + ([f"addr:{address}"] if address else [])
        p = self.policy
        async with self._sessions.begin() as s:
            repo = UserRepository(s)
            since = now - max(p.user_throttle.lookback, p.address_throttle.lookback)
            failures = await repo.failures_since(keys, since)
            locks = [locked_until(failures[user_key], now, p.user_throttle)]
            if address:
                locks.append(locked_until(failures[f"addr:{address}"], now, p.address_throttle))
            retry_at = max((t for t in locks if t is not None), default=None)
            if retry_at is not None:
                await self._audit(s, AuditAction.LOGIN_LOCKED, now, None, typed, address)
                log.warning("login_locked", username=typed, address=address)
                return LoginResult(LoginOutcome.LOCKED, retry_at=retry_at)
            found = await repo.credentials(typed)
        user, stored = found if found is not None else (None, None)
        verdict = await asyncio.to_thread(self.passwords.verify, stored, password)
        async with self._sessions.begin() as s:
            repo = UserRepository(s)
            if user is None or not verdict.ok or user.disabled:
                await repo.add_failures(keys, now)
                uid = user.id if user else None
                await self._audit(s, AuditAction.LOGIN_FAILED, now, uid, typed, address)
                log.info("login_failed", username=typed, address=address)
                return LoginResult(LoginOutcome.REFUSED)
            if verdict.new_hash is not None and stored is not None:
                await repo.rehash_password(user.id, stored, verdict.new_hash)
            await repo.clear_failures(user_key)
            await repo.record_login(user.id, now)
            # Housekeeping, on success only (an attacker's failures do not buy work).
            await repo.forget_failures_before(since)
            await repo.delete_sessions_seen_before(now - p.sessions.idle)
            if replacing and len(replacing) <= MAX_TOKEN:
                await repo.delete_session_by_token(token_digest(replacing))
            token = secrets.token_urlsafe(32)
            await repo.create_session(
                token_digest(token), user.id, secrets.token_bytes(32), now, address
            )
            await self._audit(s, AuditAction.LOGIN, now, user.id, user.username, address)
            log.info("login", username=user.username, address=address)
            return LoginResult(LoginOutcome.OK, await repo.get_user(user.id), token)

    async def authenticate(self, token: str | None, now: dt.datetime) -> Authenticated | None:
        """The session of the cookie ``token`` with its user, or None (no such session,
        it has expired, or its user is disabled; the last two are deleted)."""
        if not token or len(token) > MAX_TOKEN:
            return None
        policy = self.policy.sessions
        async with self._sessions.begin() as s:
            repo = UserRepository(s)
            found = await repo.session_by_token(token_digest(token))
            if found is None:
                return None
            user = await repo.get_user(found.user_id)
            if user.disabled or not session_alive(
                found.created_at, found.last_seen_at, now, policy
            ):
                await repo.delete_session(found.id)
                return None
            if now - found.last_seen_at >= policy.touch_every:
                await repo.touch_session(found.id, now)
            return Authenticated(user, found, csrf_token(found.csrf_secret))

    async def logout(self, who: Authenticated, now: dt.datetime, address: str | None) -> None:
        async with self._sessions.begin() as s:
            await UserRepository(s).delete_session(who.session.id)
            await self._audit(s, AuditAction.LOGOUT, now, who.user.id, who.user.username, address)
        log.info("logout", username=who.user.username, address=address)

    async def customers_of(self, user: UserAccount) -> frozenset[int] | None:
        """The customer ids ``user`` may see; None: all (``domain.auth.visible_customers``)."""
        async with self._sessions.begin() as s:
            repo = UserRepository(s)
            served = await repo.agent_customer_ids(user.agent_id) if user.agent_id else ()
        return visible_customers(user, served)

    async def audit(self, record: AuditRecord) -> None:
        """Write one audit entry (a page view, a recording played) in its own transaction."""
        async with self._sessions.begin() as s:
            await AuditRepository(s).record(record)

    @staticmethod
    async def _audit(
        s: AsyncSession,
        action: AuditAction,
        now: dt.datetime,
        user_id: int | None,
        username: str | None,
        address: str | None,
    ) -> None:
        await AuditRepository(s).record(
            AuditRecord(now, action, user_id=user_id, username=username, address=address)
        )
