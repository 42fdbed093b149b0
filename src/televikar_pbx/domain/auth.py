"""The agent desk's log-in rules: roles, usernames, throttling, session expiry, CSRF.

Pure: time is an argument, secrets are given; the database and the web layer
(``auth/``, ``web/``) carry out what these functions decide.

Theory of operation
-------------------
- **Throttling.** Every failed log-in is recorded with its time, once under the
  username (lower-cased, whether or not such a user exists, so that a lock tells
  nothing about which usernames exist) and once under the client's address. A key is
  locked when ``max_failures`` of its failures fall within ``window``; the lock lasts
  ``lockout`` from the failure that completed the set. Attempts made while locked are
  refused without checking the password and without being recorded, so the lock ends
  on time and a locked account cannot be probed. The address limit is higher than the
  username limit: a whole office may sit behind one address.
- **Sessions** end ``idle`` after the last request, and ``absolute`` after the log-in
  whatever happens.
- **CSRF** (synchroniser token): each session has a random secret; the token in its
  forms is ``HMAC-SHA256(secret, "csrf")``. A POST without that token is refused. Before
  log-in, the log-in form is protected the same way with a random nonce kept in a
  cookie (double submit, signed with the server's key), so a third-party page cannot
  log the browser in as someone else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    AGENT = "agent"  # answers calls; sees the customers its agent serves
    ACCOUNT_MANAGER = "account_manager"  # edits knowledge base and forms of its customers
    SUPERVISOR = "supervisor"  # sees every customer, the wallboard
    ADMIN = "admin"  # everything


# Roles that see every customer; the others see a list (docs/desk-web.md, "Roles").
ALL_CUSTOMER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12


def username_key(username: str) -> str:
    """The form usernames are compared in: ``Kari`` and ``kari`` are one user."""
    return username.strip().casefold()


def check_username(username: str) -> str:
    """``username`` stripped, or ValueError when it is not 1..64 of letters, digits, ``._@-``."""
    name = username.strip()
    if not USERNAME_RE.fullmatch(name):
        raise ValueError(
            f"username {username!r}: 1 to 64 characters of A-Z, a-z, 0-9 and . _ @ -,"
            " starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """``password`` as given, or ValueError when it is too short (checked on set only)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password != password.strip() or "\n" in password:
        raise ValueError("a password must not begin or end with spaces or hold a line break")
    return password


# --- throttling ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)

    def __post_init__(self) -> None:
        zero = dt.timedelta(0)
        if self.max_failures < 1 or self.window <= zero or self.lockout < zero:
            raise ValueError(f"invalid throttle policy {self!r}")

    @property
    def lookback(self) -> dt.timedelta:
        """How far back failures can still matter (older ones may be forgotten)."""
        return self.window + self.lockout


def locked_until(
    failures: Iterable[dt.datetime], now: dt.datetime, policy: ThrottlePolicy
) -> dt.datetime | None:
    """When the lock on a key ends, or None when it is not locked at ``now``.

    ``failures``: the times of the key's recorded failures (any order; at least those
    within ``policy.lookback`` of ``now``). A set of ``max_failures`` failures within
    ``window`` locks the key until its last failure plus ``lockout``.
    """
    times = sorted(t for t in failures if t <= now)
    n = policy.max_failures
    until: dt.datetime | None = None
    for i in range(n - 1, len(times)):
        first, last = times[i - n + 1], times[i]
        if last - first < policy.window:
            end = last + policy.lockout
            if end > now and (until is None or end > until):
                until = end
    return until


# --- sessions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(hours=8)
    absolute: dt.timedelta = dt.timedelta(hours=12)
    # A request refreshes the session's last-seen time only when it is older than this,
    # so that reading pages does not write to the database each time.
    touch_every: dt.timedelta = dt.timedelta(minutes=1)


def session_expires_at(
    created_at: dt.datetime, last_seen_at: dt.datetime, policy: SessionPolicy
) -> dt.datetime:
    """The instant the session ends if nothing more happens."""
    return min(last_seen_at + policy.idle, created_at + policy.absolute)


def session_alive(
    created_at: dt.datetime, last_seen_at: dt.datetime, now: dt.datetime, policy: SessionPolicy
) -> bool:
    return now < session_expires_at(created_at, last_seen_at, policy)


def token_digest(token: str) -> str:
    """What the database keeps of a session token: its SHA-256 (hex). A stolen copy of
    the table does not hold working cookies; the token has 256 random bits, so a fast
    hash is enough (no salt or stretching needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- CSRF ---------------------------------------------------------------------------


def csrf_token(secret: bytes) -> str:
    """The token a session's forms carry (hex)."""
    return hmac.new(secret, b"csrf", hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, given: str | None) -> bool:
    """Whether ``given`` is the session's token (compared in constant time)."""
    if not given:
        return False
    return hmac.compare_digest(csrf_token(secret).encode(), given.encode())


def subkey(server_secret: bytes, purpose: str) -> bytes:
    """A key for one purpose derived from the server's secret, so that a value signed for
    one use (a log-in nonce) is never valid for another (an acknowledgement link)."""
    return hmac.new(server_secret, b"televikar:" + purpose.encode(), hashlib.sha256).digest()


def login_csrf_token(server_secret: bytes, nonce: str) -> str:
    """The token of the log-in form for the nonce in the browser's pre-login cookie."""
    key = subkey(server_secret, "login-csrf")
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def login_csrf_ok(server_secret: bytes, nonce: str | None, given: str | None) -> bool:
    if not nonce or not given:
        return False
    return hmac.compare_digest(login_csrf_token(server_secret, nonce).encode(), given.encode())


# --- what the repositories return ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserAccount:
    """A desk user. ``customer_ids``: the customers an account manager manages (empty for
    the other roles; see ``visible_customers``)."""

    id: int
    username: str
    role: Role
    agent_id: int | None
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    customer_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class DeskSession:
    """A logged-in browser, as stored (the token itself is never stored)."""

    id: int
    user_id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    csrf_secret: bytes = field(repr=False)


def visible_customers(
    user: UserAccount, agent_customer_ids: Iterable[int]
) -> frozenset[int] | None:
    """The customers ``user`` may see, or None for all of them.

    Supervisors and admins see all. An agent sees the customers its agent answers for
    (``agent_customer_ids``; none without an agent). An account manager sees the
    customers it manages (``user.customer_ids``) and, when tied to an agent, also those
    that agent answers for. A disabled user sees none.
    """
    if user.disabled:
        return frozenset()
    if user.role in ALL_CUSTOMER_ROLES:
        return None
    mine = frozenset(agent_customer_ids) if user.agent_id is not None else frozenset()
    if user.role is Role.ACCOUNT_MANAGER:
        return mine | user.customer_ids
    return mine
