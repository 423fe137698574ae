"""MSAL's error dicts, told to the operator: AADSTS codes become a sentence that says what to do.

Also Graph's claims challenge, which arrives as base64 JSON and which MSAL wants as the JSON string.
"""

from __future__ import annotations

import binascii
import json
import logging

from bot.credential.base import TransientCredentialError
from bot.encoding import b64url_decode
from bot.errors import CredentialError

log = logging.getLogger("bot.credential")  # one logger name for the whole credential


def _codes(result: dict) -> set[int]:
    codes = set()
    for code in result.get("error_codes") or []:
        try:
            codes.add(int(code))
        except (TypeError, ValueError):
            continue
    return codes


def _tag(result: dict) -> str:
    codes = ", ".join(f"AADSTS{c}" for c in sorted(_codes(result))) or str(result.get("error") or "unknown error")
    correlation = result.get("correlation_id")
    return f"{codes}, correlation id {correlation}" if correlation else codes


def explain_error(result: dict, *, mode: str = "delegated") -> CredentialError:
    """Map an MSAL error dict to a :class:`CredentialError` that says what the operator must do."""
    error = str(result.get("error") or "")
    codes = _codes(result)
    tag = _tag(result)
    relogin = "run migrate-bot login"

    def err(code: str, text: str) -> CredentialError:
        return CredentialError(f"{text} ({tag})", code=code)

    if error in {"temporarily_unavailable", "server_error"}:
        return TransientCredentialError(
            f"Microsoft Entra ID is temporarily unavailable ({tag}); the bot will retry, no new login is needed.",
            code="transient",
        )
    if codes & {700082, 70008}:
        return err("session_expired", f"The admin's session expired from inactivity: {relogin}.")
    if 50173 in codes:
        return err(
            "sessions_revoked",
            f"The admin's sessions were revoked (password change or reset, or an admin revoked sessions): {relogin}.",
        )
    if 70043 in codes:
        return err(
            "sign_in_frequency", f"The tenant's Conditional Access sign-in frequency requires a new sign-in: {relogin}."
        )
    if codes & {65001} or result.get("suberror") == "consent_required" or error == "consent_required":
        return err(
            "consent_required",
            "Consent for CrossTenantContentMigration.ReadWrite.All is missing: a tenant administrator must "
            "grant consent to the app registration" + (f", then {relogin}." if mode == "delegated" else "."),
        )
    if codes & {50076, 50079, 50074, 53003} or error == "interaction_required":
        return err(
            "interaction_required",
            "The admin's sign-in needs MFA or is blocked by Conditional Access: "
            f"{relogin} and complete MFA, or ask a tenant administrator to review the policy.",
        )
    if 50057 in codes:
        return err(
            "account_unusable", f"The admin account is disabled: enable it or sign in with another admin ({relogin})."
        )
    if 50126 in codes:
        return err("account_unusable", f"The admin account's credentials were refused: {relogin}.")
    if 7000218 in codes:
        return err(
            "client_type",
            "The app registration does not allow public client flows: set 'Allow public client flows' to Yes "
            "in the app registration (Authentication > Advanced settings), or use GRAPH_AUTH_MODE=application.",
        )
    if 700025 in codes:
        return err(
            "client_type",
            "The app registration is a public client but a client secret was sent: delegated mode needs "
            "no AZURE_CLIENT_SECRET.",
        )
    if 50196 in codes:
        return err(
            "loop_detected",
            f"Microsoft Entra ID detected a request loop; the bot paused token requests. If this persists, {relogin}.",
        )
    if codes & {7000215, 7000222}:
        return err(
            "client_credential",
            "The client secret was refused (wrong or expired): set AZURE_CLIENT_SECRET to a current secret of "
            "the app registration.",
        )
    if codes & {700027, 700024, 7000274}:
        return err(
            "client_credential",
            "The client certificate assertion was refused: upload the certificate from "
            "AZURE_CLIENT_CERTIFICATE_PATH to the app registration, or renew it.",
        )
    if codes & {700016, 7000112}:
        return err(
            "client_not_found",
            "The app registration AZURE_CLIENT_ID was not found or is disabled in tenant AZURE_TENANT_ID.",
        )
    if codes & {90002, 90072}:
        return err("tenant_not_found", "Tenant AZURE_TENANT_ID was not found or the account is not part of it.")
    if error == "invalid_grant":
        return err("invalid_grant", f"The admin's refresh token was refused: {relogin}.")
    if error in {"invalid_client", "unauthorized_client"}:
        return err(error, "The app registration refused this client: check AZURE_CLIENT_ID and its credentials.")
    if mode == "delegated":
        return err(
            error or "unknown", f"Token acquisition failed: {relogin}; if it persists, check the app registration."
        )
    return err(error or "unknown", "Token acquisition failed: check the app registration and its credentials.")


def log_failure(what: str, result: dict) -> None:
    """Log a failed MSAL call by its error, codes and correlation ids: never the tokens in ``result``."""
    log.warning(
        "%s failed: error=%s codes=%s correlation_id=%s trace_id=%s",
        what,
        result.get("error"),
        sorted(_codes(result)),
        result.get("correlation_id"),
        result.get("trace_id"),
    )


def normalize_claims_challenge(challenge: str | None) -> str | None:
    """Graph's ``claims=`` value is base64 JSON; MSAL wants the JSON string. Accept either."""
    if challenge is None or not challenge.strip():
        return None
    text = challenge.strip()
    if not text.startswith("{"):
        try:
            text = b64url_decode(text).decode("utf-8")
        except (binascii.Error, ValueError):
            raise CredentialError(
                "The claims challenge from Graph is neither JSON nor base64 JSON.", code="bad_claims_challenge"
            ) from None
    try:
        json.loads(text)
    except ValueError:
        raise CredentialError(
            "The claims challenge from Graph is neither JSON nor base64 JSON.", code="bad_claims_challenge"
        ) from None
    return text
