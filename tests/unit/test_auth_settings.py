"""The local Auth's settings (a new hosted project's unless configured) and GoTrue's rate
limits as token buckets. Pure: no stack (test_wire checks them on the wire)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rendio_backend.local.auth._errors import ApiError
from rendio_backend.local.auth._limits import Buckets, RateLimiter
from rendio_backend.local.auth_settings import AuthSettings, RateLimits
from rendio_backend.local.config import StackConfig, load_config, save_config
from rendio_backend.local.errors import StackError
from rendio_backend.project import Project
from tests.unit.test_project import make_project


def test_defaults_are_a_new_hosted_projects() -> None:
    settings = AuthSettings()
    assert settings.enable_signup and settings.enable_confirmations
    assert settings.double_confirm_changes and not settings.enable_anonymous_sign_ins
    assert (settings.max_frequency, settings.otp_expiry) == (60, 3600)
    assert settings.rate_limits == RateLimits(enabled=True, anonymous_users=30,
                                              sign_in_sign_ups=30, token_refresh=150,
                                              token_verifications=30)


def test_environment_over_config_toml_over_defaults(tmp_path: Path) -> None:
    project = make_project(tmp_path, toml=(
        "[auth]\nenable_anonymous_sign_ins = true\n"
        "[auth.email]\nenable_confirmations = false\nmax_frequency = \"1s\"\n"
        "[auth.rate_limit]\ntoken_refresh = 300\nanonymous_users = 5\n"))
    config = StackConfig.from_env(project=project, environ={
        "RENDIO_AUTH_RATE_LIMIT_ANONYMOUS_USERS": "7", "RENDIO_AUTH_DOUBLE_CONFIRM_CHANGES":
        "false"})
    auth = config.auth
    assert auth.enable_anonymous_sign_ins and not auth.enable_confirmations
    assert (auth.max_frequency, auth.double_confirm_changes) == (1, False)
    assert (auth.rate_limits.token_refresh, auth.rate_limits.anonymous_users) == (300, 7)
    assert auth.rate_limits.sign_in_sign_ups == 30 and auth.rate_limits.enabled
    # The stack's processes get it back from the saved configuration.
    save_config(config, tmp_path / "stack.json")
    assert load_config(tmp_path / "stack.json").auth == auth


def test_outside_a_project_the_bundled_auth_settings_apply(tmp_path: Path) -> None:
    config = StackConfig.from_env(project=Project(root=tmp_path, found=False), environ={})
    assert config.auth.enable_anonymous_sign_ins  # Rendio's own config.toml says so
    assert config.auth.enable_confirmations  # and leaves the hosted default


def test_bad_values_are_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path, toml="[auth.email]\nmax_frequency = \"soon\"\n")
    with pytest.raises(StackError, match="max_frequency"):
        StackConfig.from_env(project=project, environ={})
    with pytest.raises(StackError, match="RENDIO_AUTH_RATE_LIMITS"):
        AuthSettings.from_settings({"RENDIO_AUTH_RATE_LIMITS": "maybe"}, {})


def test_limits_switched_off_say_so_loudly(caplog: pytest.LogCaptureFixture) -> None:
    settings = AuthSettings.from_settings({"RENDIO_AUTH_RATE_LIMITS": "off"}, {})
    limiter = RateLimiter(settings.rate_limits)
    with caplog.at_level(logging.WARNING):
        limiter.announce()
    assert "RATE LIMITS ARE OFF" in caplog.text
    for _ in range(100):
        limiter.check(limiter.token, "10.0.0.1")
    caplog.clear()
    RateLimiter(RateLimits()).announce()
    assert caplog.text == ""


def test_buckets_allow_a_burst_then_the_rate() -> None:
    now = [1000.0]
    buckets = Buckets(per_second=150 / 300, burst=30, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(31)] == [True] * 30 + [False]
    assert buckets.take("b")  # another address, another bucket
    now[0] += 2.0  # half a token a second
    assert [buckets.take("a") for _ in range(2)] == [True, False]
    limiter = RateLimiter(RateLimits())
    for _ in range(30):
        limiter.check(limiter.verify, "10.0.0.2")
    with pytest.raises(ApiError) as limited:
        limiter.check(limiter.verify, "10.0.0.2")
    assert (limited.value.status, limited.value.code) == (429, "over_request_rate_limit")
