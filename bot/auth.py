"""The admin credential: where Graph access tokens come from."""

from __future__ import annotations

from typing import Protocol


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
