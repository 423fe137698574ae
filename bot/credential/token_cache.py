"""The admin's MSAL token cache on disk: AES-GCM encrypted, mode 0600, replaced atomically, shared under a lock.

The file holds the admin's refresh token, which is months of Graph access without an MFA prompt, so it is
encrypted with ``TOKEN_CACHE_KEY`` (32 bytes). Format: ``MBTC`` + version byte ``0x01`` + 12-byte random nonce +
AES-GCM ciphertext (with tag); the 5-byte header is the associated data, so a changed header fails like a changed
key. A file that does not decrypt is never deleted, never overwritten and never read as plaintext.

Next to it live ``<cache>.lockfile`` (msal-extensions' cross-process lock) and ``<cache>.meta.json``
(:class:`CacheMetadata`: which account is the admin, when it signed in and last refreshed; nothing secret).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import msal
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from msal_extensions import PersistedTokenCache
from msal_extensions.persistence import (
    BasePersistence,
    PersistenceDecryptionError,
    PersistenceNotFound,
)
from msal_extensions.token_cache import CrossPlatLock

from bot.errors import CredentialError

log = logging.getLogger(__name__)

MAGIC = b"MBTC"
VERSION = 1
HEADER = MAGIC + bytes([VERSION])
NONCE_BYTES = 12

WRONG_KEY_MESSAGE = (
    "token cache cannot be decrypted with TOKEN_CACHE_KEY (wrong key?); run migrate-bot login with the right key"
)


class CacheUnreadable(PersistenceDecryptionError):
    """The cache file exists but does not decrypt with our key (wrong key, foreign format, or tampering)."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(message=reason, location=location)
        self.location = location
        self.reason = reason


def cache_unreadable_error(error: CacheUnreadable) -> CredentialError:
    """The error for an unreadable cache. Its text reaches Slack, so the host path goes to the log only."""
    log.error("token cache %s: %s", error.location, error.reason)
    return CredentialError(f"{WRONG_KEY_MESSAGE} ({error.reason})", code="cache_unreadable")


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if missing; a directory this creates gets mode 0700 regardless of umask."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file: temp file in the same directory, fsync, ``os.replace``."""
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class AesGcmFilePersistence(BasePersistence):
    """An msal-extensions persistence that stores the cache encrypted with AES-256-GCM.

    Unlike ``FilePersistence`` it creates no directory until the first save (so ``auth status`` has no side effect).
    """

    is_encrypted = True

    def __init__(self, location: str | os.PathLike[str], key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the token cache key must be 32 bytes")
        self._location = os.path.abspath(os.path.expanduser(os.fspath(location)))
        self._aead = AESGCM(key)

    def get_location(self) -> str:
        return self._location

    def time_last_modified(self) -> float:
        try:
            return os.path.getmtime(self._location)
        except FileNotFoundError:
            raise PersistenceNotFound(location=self._location) from None

    def encrypt(self, text: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return HEADER + nonce + self._aead.encrypt(nonce, text.encode("utf-8"), HEADER)

    def decrypt(self, blob: bytes) -> str:
        if len(blob) < len(HEADER) + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
            raise CacheUnreadable(self.get_location(), "not a migrate-bot encrypted token cache")
        if blob[len(MAGIC)] != VERSION:
            raise CacheUnreadable(self.get_location(), f"unsupported token cache version {blob[len(MAGIC)]}")
        nonce = blob[len(HEADER) : len(HEADER) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(HEADER) + NONCE_BYTES :], HEADER).decode("utf-8")
        except InvalidTag:
            raise CacheUnreadable(self.get_location(), "authentication tag mismatch") from None

    def save(self, content: str) -> None:
        atomic_write(Path(self.get_location()), self.encrypt(content))

    def load(self) -> str:
        try:
            blob = Path(self.get_location()).read_bytes()
        except FileNotFoundError:
            raise PersistenceNotFound(location=self.get_location()) from None
        return self.decrypt(blob)


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SharedTokenCache(PersistedTokenCache):
    """``PersistedTokenCache`` with three changes for a file shared by the CLI and the bot.

    - It reloads when the file's (inode, mtime_ns, size) differs from what it last read or wrote, instead of
      comparing mtime with the clock (coarse file timestamps can hide another process's write).
    - A file that does not decrypt raises :class:`CacheUnreadable` at once, without the 3 × 0.5 s retries
      msal-extensions spends on a possibly half-written file (our writes are atomic, so there is none).
    - A deleted file (``migrate-bot logout``) empties the in-memory cache, so a running bot forgets the admin too.
    """

    def __init__(self, persistence: AesGcmFilePersistence) -> None:
        ensure_private_dir(Path(persistence.get_location()).parent)
        super().__init__(persistence)
        self._synced: tuple[int, int, int] | None = None

    def _reload_if_necessary(self) -> None:
        location = self._persistence.get_location()
        current = _signature(location)
        if current == self._synced:
            return
        if current is None:
            self.deserialize(None)
        else:
            try:
                self.deserialize(self._persistence.load())
            except PersistenceNotFound:  # removed between stat and read
                self.deserialize(None)
                current = None
        self._synced = current
        self._last_sync = time.time()

    def modify(self, credential_type: str, old_entry: dict, new_key_value_pairs: dict | None = None) -> None:
        with CrossPlatLock(self._lock_location):
            self._reload_if_necessary()
            msal.SerializableTokenCache.modify(
                self, credential_type, old_entry, new_key_value_pairs=new_key_value_pairs
            )
            self._persistence.save(self.serialize())
            self._synced = _signature(self._persistence.get_location())
            self._last_sync = time.time()

    def search(self, credential_type: str, target: Any = None, query: dict | None = None, *, now: float | None = None):  # type: ignore[override]
        for attempt in range(3):
            try:
                self._reload_if_necessary()
                break
            except CacheUnreadable:
                raise
            except OSError:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        return msal.SerializableTokenCache.search(self, credential_type, target=target, query=query, now=now)

    def lock(self) -> CrossPlatLock:
        """The cross-process lock msal-extensions takes around every write (for our own read-modify-writes)."""
        return CrossPlatLock(self._lock_location)


@dataclass
class CacheMetadata:
    """Who the signed-in admin is, and when the credential last worked. Not secret; plain JSON, mode 0600."""

    home_account_id: str
    username: str | None
    tenant_id: str
    client_id: str
    authority: str
    login_at: float
    last_refresh_at: float | None = None
    version: int = 1

    @staticmethod
    def path_for(cache_path: Path) -> Path:
        return cache_path.with_name(cache_path.name + ".meta.json")

    @classmethod
    def load(cls, cache_path: Path) -> CacheMetadata | None:
        """The metadata next to ``cache_path``, or ``None`` when absent or unreadable (treated as signed out)."""
        try:
            raw = json.loads(cls.path_for(cache_path).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, OSError):
            return None
        if not isinstance(raw, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError:
            return None

    def save(self, cache_path: Path) -> None:
        atomic_write(self.path_for(cache_path), json.dumps(asdict(self), indent=2).encode("utf-8"))

    @classmethod
    def remove(cls, cache_path: Path) -> bool:
        try:
            cls.path_for(cache_path).unlink()
            return True
        except FileNotFoundError:
            return False
