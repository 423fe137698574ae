"""Build the credential ``GRAPH_AUTH_MODE`` names; it sits above the credential kinds, which know nothing of it."""

from __future__ import annotations

from typing import Any

import httpx

from bot.config import Settings
from bot.credential.application import AppCredential
from bot.credential.base import Credential
from bot.credential.delegated import AdminCredential


def build_credential(settings: Settings, *, http_client: httpx.Client | Any = None) -> Credential:
    """The credential for ``GRAPH_AUTH_MODE``; raises :class:`ConfigError` when it is not configured."""
    settings.require_graph_credential()
    if settings.graph_auth_mode == "application":
        return AppCredential(settings, http_client=http_client)
    return AdminCredential(settings, http_client=http_client)
