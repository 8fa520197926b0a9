"""Auth (GoTrue) settings of the local stack: by default, those of a new hosted project.

A new hosted project confirms email addresses (so a sign-up answers a user, not a
session), keeps anonymous sign-ins off, waits 60 s between two emails to one address
and rate-limits per client address. The Supabase CLI's `config.toml` template differs on
two of these (`enable_confirmations = false`, `max_frequency = "1s"`): a project that
wants the CLI's behaviour says so in its own `supabase/config.toml`, as with the CLI.

Each setting comes from, in order: `RENDIO_AUTH_<NAME>` in the environment (or `.env`),
the project's `config.toml` (`[auth]`, `[auth.email]`, `[auth.rate_limit]`, with the
CLI's names), these defaults. `RENDIO_AUTH_RATE_LIMITS=off` switches every rate limit
off, for load tests; the Auth service then says so loudly in the gateway's log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import StackError

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class RateLimits:
    """GoTrue's limits per client address, named as `[auth.rate_limit]` names them."""

    enabled: bool = True
    # Anonymous sign-ins per hour (the burst is the same number).
    anonymous_users: int = 30
    # Per 5 minutes, bursts of 30: email sign-ups and PUT /user (GOTRUE_RATE_LIMIT_OTP).
    sign_in_sign_ups: int = 30
    # Per 5 minutes, bursts of 30: every POST /token (password sign-ins included).
    token_refresh: int = 150
    # Per 5 minutes, bursts of 30: POST /verify.
    token_verifications: int = 30


@dataclass(frozen=True)
class AuthSettings:
    """What the local Auth service allows and requires (see the module docstring)."""

    enable_signup: bool = True
    enable_anonymous_sign_ins: bool = False
    # `[auth.email]`: a sign-up (and a guest's first email) waits for its link; a
    # permanent user's new email always does, as in GoTrue.
    enable_confirmations: bool = True
    double_confirm_changes: bool = True
    # Seconds between two confirmation emails to one user (`[auth.email] max_frequency`).
    max_frequency: int = 60
    # Seconds a confirmation link or code stays valid (`[auth.email] otp_expiry`).
    otp_expiry: int = 3600
    rate_limits: RateLimits = field(default_factory=RateLimits)

    @classmethod
    def from_settings(cls, env: Mapping[str, str], toml: Mapping[str, Any]) -> AuthSettings:
        """Settings from the environment (`RENDIO_AUTH_*`) over config.toml's `[auth]`."""
        sections = {"": toml, "email": toml.get("email") or {},
                    "rate_limit": toml.get("rate_limit") or {}}
        values = {name: _setting(env, name, sections[section].get(name), kind)
                  for name, (section, kind) in _TOML.items()}
        rate = {name: _setting(env, f"rate_limit_{name}", sections["rate_limit"].get(name), int)
                for name in _RATE_NAMES}
        rate["enabled"] = _setting(env, "rate_limits", None, bool)
        return cls(**_given(values), rate_limits=RateLimits(**_given(rate)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthSettings:
        """The inverse of `dataclasses.asdict` (the stack's saved configuration)."""
        values = dict(data)
        values["rate_limits"] = RateLimits(**values.get("rate_limits", {}))
        return cls(**values)


# Where config.toml keeps each setting ("" is `[auth]`) and how it is read.
_TOML: dict[str, tuple[str, Any]] = {
    "enable_signup": ("", bool), "enable_anonymous_sign_ins": ("", bool),
    "enable_confirmations": ("email", bool), "double_confirm_changes": ("email", bool),
    "max_frequency": ("email", "duration"), "otp_expiry": ("email", int),
}
_RATE_NAMES = tuple(f.name for f in fields(RateLimits) if f.name != "enabled")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _setting(env: Mapping[str, str], name: str, toml_value: Any, kind: Any) -> Any:
    """One setting: `RENDIO_AUTH_<NAME>` wins over config.toml; None when neither says."""
    variable = f"RENDIO_AUTH_{name.upper()}"
    raw: Any = env.get(variable)
    where = variable
    if raw is None:
        raw, where = toml_value, f"config.toml's auth setting {name}"
    if raw is None:
        return None
    try:
        if kind is bool:
            return _boolean(raw)
        return _duration(raw) if kind == "duration" else int(raw)
    except (TypeError, ValueError):
        raise StackError(f"{where} has an invalid value: {raw!r}") from None


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(raw)


def _duration(raw: Any) -> int:
    """Seconds from a number or a Go-style duration such as "1s", "60s" or "1m"."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    match = _DURATION.match(str(raw).strip())
    if match is None:
        raise ValueError(raw)
    return int(match.group(1)) * _SECONDS[match.group(2)]
