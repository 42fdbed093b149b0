"""The desk's web settings: a secret is required; the throttle and session settings
reach the policy; cookie names follow TLS."""

from __future__ import annotations

import datetime as dt

import pytest

from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings
from televikar_pbx.web.app import WebConfig, policy_from_settings


def test_a_short_or_missing_secret_is_refused() -> None:
    for secret in (b"", b"x" * 31):
        with pytest.raises(ConfigError, match="TELEVIKAR_WEB_SECRET"):
            WebConfig(secret)
    assert "x" * 32 not in repr(WebConfig(b"x" * 32))


def test_cookie_names_follow_tls() -> None:
    plain, tls = WebConfig(b"x" * 32), WebConfig(b"x" * 32, secure_cookies=True)
    assert (plain.session_cookie, plain.login_cookie) == ("televikar_session", "televikar_login")
    assert tls.session_cookie.startswith("__Host-") and tls.login_cookie.startswith("__Host-")


def test_defaults_listen_on_loopback() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.web_host == "127.0.0.1" and not settings.web_secure_cookies
    assert not settings.web_trust_forwarded_for


def test_policy_from_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        web_login_max_failures=3,
        web_login_address_max_failures=9,
        web_login_window_s=60,
        web_login_lockout_s=120,
        web_session_idle_s=600,
        web_session_absolute_s=3600,
    )
    policy = policy_from_settings(settings)
    assert (policy.user_throttle.max_failures, policy.address_throttle.max_failures) == (3, 9)
    assert policy.user_throttle.window == dt.timedelta(seconds=60)
    assert policy.address_throttle.lockout == dt.timedelta(seconds=120)
    assert policy.sessions.idle == dt.timedelta(minutes=10)
    assert policy.sessions.absolute == dt.timedelta(hours=1)
