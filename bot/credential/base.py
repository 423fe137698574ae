"""Where Graph access tokens come from: the public face of the credential.

- :class:`TokenSource` is what :class:`~bot.graph.client.GraphClient` needs; :class:`StaticToken` serves the simulator.
- :class:`Credential` is a token source the bot can also report on (:class:`CredentialStatus`) and keep alive.
- :func:`bot.credential.factory.build_credential` picks one for ``GRAPH_AUTH_MODE``: :class:`~bot.credential.delegated.AdminCredential`
  (delegated, device code login) or :class:`~bot.credential.application.AppCredential` (client credentials).

Tokens and MSAL result dicts are never logged; only error codes and correlation ids are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from bot.errors import CredentialError

if TYPE_CHECKING:
    pass

GRAPH_DELEGATED_SCOPE = "https://graph.microsoft.com/CrossTenantContentMigration.ReadWrite.All"
GRAPH_APPLICATION_SCOPE = "https://graph.microsoft.com/.default"


class TokenSource(Protocol):
    """Anything that hands out a Graph access token, acquiring it silently."""

    def token(self, *, claims_challenge: str | None = None) -> str:
        """Return a bearer token or raise :class:`bot.errors.CredentialError`."""
        ...


class StaticToken:
    """A fixed token: for the Graph simulator (demo, rehearsals, tests), never for real Graph."""

    def __init__(self, value: str = "simulator-token") -> None:
        self._value = value

    def token(self, *, claims_challenge: str | None = None) -> str:
        return self._value


class TransientCredentialError(CredentialError):
    """The authority could not be reached or is temporarily failing: retry later, no new login needed."""

    transient = True


# --------------------------------------------------------------------------------------------------------------
# Status


def describe_time(moment: datetime | None, now: datetime, *, never: str = "never") -> str:
    """``2026-07-01 08:00:00 UTC (3 h ago)``, or ``never``."""
    if moment is None:
        return never
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 90:
        text = f"{seconds} s"
    elif seconds < 90 * 60:
        text = f"{round(seconds / 60)} min"
    elif seconds < 48 * 3600:
        text = f"{round(seconds / 3600)} h"
    else:
        text = f"{round(seconds / 86400)} days"
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC ({f'in {text}' if future else f'{text} ago'})"


@dataclass(frozen=True)
class CredentialStatus:
    """What ``migrate-bot auth status`` shows. Holds no secret."""

    mode: str
    tenant_id: str
    client_id: str
    authority: str
    signed_in: bool = False
    username: str | None = None
    home_account_id: str | None = None
    has_refresh_token: bool = False
    access_token_expires_at: datetime | None = None
    last_refresh_at: datetime | None = None
    login_at: datetime | None = None
    credential_kind: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the credential should be able to produce a token without the operator."""
        if self.problem is not None:
            return False
        return self.mode == "application" or (self.signed_in and self.has_refresh_token)

    def describe(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        lines = [
            f"mode:          {self.mode}",
            f"tenant:        {self.tenant_id}",
            f"app (client):  {self.client_id}",
            f"authority:     {self.authority}",
        ]
        if self.mode == "application":
            lines.append(f"credential:    {self.credential_kind or 'none'}")
        else:
            account = self.username or "(no username)"
            lines.append(
                f"account:       {account} ({self.home_account_id})" if self.signed_in else "account:       none"
            )
            lines.append(f"refresh token: {'present' if self.has_refresh_token else 'missing'}")
            lines.append(f"signed in:     {describe_time(self.login_at, now)}")
            lines.append(f"last refresh:  {describe_time(self.last_refresh_at, now)}")
        if self.access_token_expires_at is None:
            lines.append("access token:  none cached")
        elif self.access_token_expires_at > now:
            lines.append(f"access token:  valid until {describe_time(self.access_token_expires_at, now)}")
        else:
            lines.append(f"access token:  expired {describe_time(self.access_token_expires_at, now)}")
        if self.problem:
            lines.append(f"problem:       {self.problem}")
        return lines


class Credential(TokenSource, Protocol):
    """A :class:`TokenSource` the bot can also report on and keep alive."""

    def status(self) -> CredentialStatus: ...

    def keep_alive(self) -> CredentialStatus: ...

    def close(self) -> None: ...
