"""The desk's log-in rules (domain.auth): throttling, session expiry, CSRF, roles."""

from __future__ import annotations

import datetime as dt

import pytest

from televikar_pbx.domain.auth import (
    DeskSession,
    Role,
    SessionPolicy,
    ThrottlePolicy,
    UserAccount,
    check_password,
    check_username,
    csrf_ok,
    csrf_token,
    locked_until,
    login_csrf_ok,
    login_csrf_token,
    session_alive,
    session_expires_at,
    token_digest,
    username_key,
    visible_customers,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
POLICY = ThrottlePolicy(max_failures=5, window=15 * MIN, lockout=15 * MIN)


def test_four_failures_do_not_lock() -> None:
    failures = [T0 + i * MIN for i in range(4)]
    assert locked_until(failures, T0 + 4 * MIN, POLICY) is None


def test_five_failures_within_the_window_lock_for_the_lockout() -> None:
    failures = [T0 + i * MIN for i in range(5)]  # the fifth at T0+4
    assert locked_until(failures, T0 + 4 * MIN, POLICY) == T0 + 19 * MIN
    assert locked_until(failures, T0 + 19 * MIN - dt.timedelta(seconds=1), POLICY) is not None
    assert locked_until(failures, T0 + 19 * MIN, POLICY) is None  # released on time


def test_five_failures_spread_wider_than_the_window_do_not_lock() -> None:
    failures = [T0 + i * 4 * MIN for i in range(5)]  # 16 minutes from first to fifth
    assert locked_until(failures, T0 + 16 * MIN, POLICY) is None
    # ... but a sixth within 15 minutes of the second does.
    failures.append(T0 + 17 * MIN)
    assert locked_until(failures, T0 + 17 * MIN, POLICY) == T0 + 32 * MIN


def test_future_failures_and_order_do_not_matter() -> None:
    failures = [T0 + i * MIN for i in (4, 0, 3, 1, 2)]
    assert locked_until(failures, T0 + 5 * MIN, POLICY) == T0 + 19 * MIN
    assert locked_until(failures, T0 + 3 * MIN, POLICY) is None  # only 4 so far


def test_throttle_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(max_failures=0)
    with pytest.raises(ValueError):
        ThrottlePolicy(window=dt.timedelta(0))
    assert POLICY.lookback == 30 * MIN


def test_session_ends_when_idle_or_at_the_absolute_limit() -> None:
    policy = SessionPolicy(idle=dt.timedelta(hours=8), absolute=dt.timedelta(hours=12))
    hour = dt.timedelta(hours=1)
    assert session_alive(T0, T0, T0 + 8 * hour - MIN, policy)
    assert not session_alive(T0, T0, T0 + 8 * hour, policy)  # idle 8 h
    # Active every hour: still ends 12 h after the log-in.
    assert session_expires_at(T0, T0 + 11 * hour, policy) == T0 + 12 * hour
    assert session_alive(T0, T0 + 11 * hour, T0 + 12 * hour - MIN, policy)
    assert not session_alive(T0, T0 + 11 * hour, T0 + 12 * hour, policy)


def test_csrf_token_is_per_secret_and_compared_exactly() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert csrf_ok(a, csrf_token(a))
    assert not csrf_ok(b, csrf_token(a))
    assert not csrf_ok(a, None)
    assert not csrf_ok(a, "")
    assert not csrf_ok(a, csrf_token(a)[:-1])
    assert not csrf_ok(a, csrf_token(a) + "0")


def test_login_csrf_is_bound_to_the_nonce_and_the_server_secret() -> None:
    secret = b"s" * 32
    token = login_csrf_token(secret, "nonce1")
    assert login_csrf_ok(secret, "nonce1", token)
    assert not login_csrf_ok(secret, "nonce2", token)
    assert not login_csrf_ok(b"t" * 32, "nonce1", token)
    assert not login_csrf_ok(secret, None, token)
    assert not login_csrf_ok(secret, "nonce1", None)


def test_usernames_and_passwords() -> None:
    assert username_key(" Kari ") == username_key("KARI") == "kari"
    assert check_username(" kari.n@x ") == "kari.n@x"
    for bad in ("", "-kari", "kari nordmann", "k" * 65, "kari<script>"):
        with pytest.raises(ValueError):
            check_username(bad)
    assert check_password("correct horse battery") == "correct horse battery"
    for bad in ("short", " padded password ", "line\nbreak password"):
        with pytest.raises(ValueError):
            check_password(bad)


def test_token_digest_is_sha256_hex() -> None:
    assert len(token_digest("x")) == 64
    assert token_digest("x") != token_digest("y")


def test_session_repr_hides_the_csrf_secret() -> None:
    session = DeskSession(1, 2, T0, T0, b"\x01" * 32)
    assert "csrf" not in repr(session) and "\\x01" not in repr(session)


def _user(role: Role, agent_id: int | None = None, **kw: object) -> UserAccount:
    return UserAccount(1, "kari", role, agent_id, False, T0, None, **kw)  # type: ignore[arg-type]


def test_visible_customers_by_role() -> None:
    served = {1, 2}
    assert visible_customers(_user(Role.ADMIN), served) is None
    assert visible_customers(_user(Role.SUPERVISOR), served) is None
    assert visible_customers(_user(Role.AGENT, 7), served) == {1, 2}
    assert visible_customers(_user(Role.AGENT), served) == frozenset()  # no agent: none
    manager = _user(Role.ACCOUNT_MANAGER, customer_ids=frozenset({3}))
    assert visible_customers(manager, served) == {3}
    manager_agent = _user(Role.ACCOUNT_MANAGER, 7, customer_ids=frozenset({3}))
    assert visible_customers(manager_agent, served) == {1, 2, 3}
    disabled = UserAccount(1, "kari", Role.ADMIN, None, True, T0, None)
    assert visible_customers(disabled, served) == frozenset()
