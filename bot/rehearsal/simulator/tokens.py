"""Signed test tokens for the Graph simulator, and the permission check Graph applies to them.

Tokens are HS256 JWTs (PyJWT) signed with a key only this simulator knows, carrying what an Entra ID access token
for Graph carries and this API looks at: ``scp`` (delegated scopes, space-separated) or ``roles`` (application
permissions), for delegated tokens ``wids`` (the signed-in admin's directory role template ids), ``exp``/``nbf``,
``aud`` and ``tid``. Sources: the reference ``graph-cross-tenant-migration.md`` section 4 (permissions per
operation: ``CrossTenantContentMigration.Read.All`` is enough for list and get, every other operation needs
``...ReadWrite.All``; a delegated caller must hold Microsoft 365 Migration Administrator or Global Administrator)
and section 5 (401 ``InvalidAuthenticationToken`` for a missing, malformed or expired token; 403 ``accessDenied``
with Graph's error shape when a scope or role is missing). Section 7 item 8 (app-only support for validate and
migrate) is :attr:`bot.rehearsal.simulator.state.SimOptions.app_only_actions`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

READ = "CrossTenantContentMigration.Read.All"
READ_WRITE = "CrossTenantContentMigration.ReadWrite.All"
#: Reading a user's name (``GET /users/{id}``): the least delegated and application permissions that allow it.
USER_READ_DELEGATED = "User.ReadBasic.All"
USER_READ_APPLICATION = "User.Read.All"
USER_READERS = frozenset({USER_READ_DELEGATED, USER_READ_APPLICATION, "User.ReadWrite.All", "Directory.Read.All"})
#: Operations on the directory rather than on migration jobs.
DIRECTORY_OPERATIONS = frozenset({"getUser"})
#: Directory role template ids (Entra ID built-in roles).
MIGRATION_ADMINISTRATOR = "8c8b803f-96e1-4129-9349-20738d9f9652"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ADMIN_ROLES = frozenset({MIGRATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR})
AUDIENCE = "https://graph.microsoft.com"
#: Operations that only read (``Read.All`` suffices); every other operation needs ``ReadWrite.All``.
READ_OPERATIONS = frozenset({"getRoot", "list", "get", "listTasks", "getTask", "count", "countTasks"})
#: Operations some beta pages say app-only tokens can't call.
DELEGATED_ONLY_ACTIONS = frozenset({"validate", "migrate"})


@dataclass(frozen=True)
class Preset:
    """A named kind of caller: what ``migrate-bot simulator`` prints one token for."""

    delegated: bool
    permissions: tuple[str, ...]
    directory_roles: tuple[str, ...] = ()
    expires_in: int = 24 * 3600
    what: str = ""


#: One token per role: the first is what the bot needs; the others show each refusal.
PRESETS: dict[str, Preset] = {
    "migration-admin": Preset(
        True,
        (READ_WRITE, USER_READ_DELEGATED),
        (MIGRATION_ADMINISTRATOR,),
        what="delegated, M365 Migration Administrator (full rights)",
    ),
    "global-admin": Preset(
        True, (READ_WRITE, USER_READ_DELEGATED), (GLOBAL_ADMINISTRATOR,), what="delegated, Global Administrator"
    ),
    "reader": Preset(True, (READ,), (MIGRATION_ADMINISTRATOR,), what="delegated, Read.All only: actions get 403"),
    "no-role": Preset(True, (READ_WRITE,), (), what="delegated, no admin role: everything gets 403"),
    "app": Preset(
        False,
        (READ_WRITE, USER_READ_APPLICATION),
        what="app-only, ReadWrite.All (validate/migrate 403 unless app_only_actions)",
    ),
    "app-reader": Preset(False, (READ,), what="app-only, Read.All only"),
    "expired": Preset(True, (READ_WRITE,), (MIGRATION_ADMINISTRATOR,), expires_in=-3600, what="expired: 401"),
}


@dataclass(frozen=True)
class Caller:
    """Who a valid token speaks for."""

    delegated: bool
    permissions: frozenset[str]
    directory_roles: frozenset[str]
    name: str = ""


#: The static ``--token``: a full-rights delegated admin.
FULL_RIGHTS = Caller(
    True, frozenset({READ_WRITE, USER_READ_DELEGATED}), frozenset({MIGRATION_ADMINISTRATOR}), "static token"
)


class TokenRefused(Exception):
    """401 (``status``) or 403 with Graph's code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TokenIssuer:
    """Mints and checks the simulator's tokens (one secret key per simulator)."""

    def __init__(self, tenant_id: str, key: str | None = None) -> None:
        self.tenant_id = tenant_id
        self._key = key or secrets.token_hex(32)

    def mint(
        self,
        *,
        delegated: bool = True,
        permissions: tuple[str, ...] | list[str] = (READ_WRITE,),
        directory_roles: tuple[str, ...] | list[str] = (MIGRATION_ADMINISTRATOR,),
        expires_in: int = 24 * 3600,
        name: str = "migadmin@northwind.onmicrosoft.com",
    ) -> str:
        """A signed token for such a caller (``expires_in`` may be negative: already expired)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": AUDIENCE,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "tid": self.tenant_id,
            "iat": now,
            "nbf": min(now, now + expires_in),
            "exp": now + expires_in,
            "oid": str(uuid.uuid4()),
            "idtyp": "user" if delegated else "app",
        }
        if delegated:
            claims.update(scp=" ".join(permissions), wids=list(directory_roles), upn=name)
        else:
            claims.update(roles=list(permissions), app_displayname=name)
        return jwt.encode(claims, self._key, algorithm="HS256")

    def mint_preset(self, preset: str) -> str:
        found = PRESETS[preset]
        return self.mint(
            delegated=found.delegated,
            permissions=found.permissions,
            directory_roles=found.directory_roles,
            expires_in=found.expires_in,
        )

    def caller(self, token: str) -> Caller:
        """The caller a token speaks for; raises :class:`TokenRefused` (401) when it is malformed, forged or
        expired."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=AUDIENCE)
        except jwt.ExpiredSignatureError:
            raise TokenRefused(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            ) from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
            ) from None
        except jwt.DecodeError:
            raise TokenRefused(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.") from None
        except jwt.InvalidTokenError:
            raise TokenRefused(401, "InvalidAuthenticationToken", "Access token validation failure.") from None
        if "scp" in claims:
            return Caller(
                True,
                frozenset(str(claims["scp"]).split()),
                frozenset(claims.get("wids") or ()),
                str(claims.get("upn", "")),
            )
        return Caller(False, frozenset(claims.get("roles") or ()), frozenset(), str(claims.get("app_displayname", "")))


def authorize(caller: Caller, operation: str, *, app_only_actions: bool) -> None:
    """Raise a 403 :class:`TokenRefused` unless ``caller`` may run ``operation``."""
    if operation in DIRECTORY_OPERATIONS:  # any user may read names with a user-read permission; no admin role
        if not caller.permissions & USER_READERS:
            raise TokenRefused(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation. "
                f"The token needs {USER_READ_DELEGATED} (delegated) or {USER_READ_APPLICATION} (application).",
            )
        return
    needed = {READ, READ_WRITE} if operation in READ_OPERATIONS else {READ_WRITE}
    if not caller.permissions & needed:
        kind = "scp" if caller.delegated else "roles"
        raise TokenRefused(
            403,
            "accessDenied",
            f"Either scp or roles claim need to be present in the token with {READ_WRITE}"
            + (f" or {READ}" if operation in READ_OPERATIONS else "")
            + f" (the token's {kind} lacks it).",
        )
    if caller.delegated and not caller.directory_roles & ADMIN_ROLES:
        raise TokenRefused(
            403,
            "accessDenied",
            "Insufficient privileges to complete the operation. The signed-in user needs the Microsoft 365 "
            "Migration Administrator or Global Administrator role.",
        )
    if not caller.delegated and operation in DELEGATED_ONLY_ACTIONS and not app_only_actions:
        raise TokenRefused(
            403,
            "accessDenied",
            f"Application permissions are not supported for {operation}; call it with a delegated token.",
        )
