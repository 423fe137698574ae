"""Where the admin's token cache and its metadata live: a file next to the bot (SQLite, one process) or a row in
the shared database (PostgreSQL, several replicas; :mod:`bot.credential.db_cache`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import msal

from bot.credential.token_cache import AesGcmFilePersistence, CacheMetadata, SharedTokenCache


class CacheStore(Protocol):
    """The encrypted MSAL cache plus the admin's :class:`CacheMetadata`, wherever they are kept."""

    location: str

    def token_cache(self) -> msal.SerializableTokenCache: ...

    def lock(self) -> AbstractContextManager: ...

    def load_meta(self) -> CacheMetadata | None: ...

    def save_meta(self, meta: CacheMetadata) -> None: ...

    def load_text(self) -> str: ...

    def forget(self) -> list[Path | str]: ...


class FileCacheStore:
    """``TOKEN_CACHE_PATH`` and ``<cache>.meta.json``, shared with the CLI under msal-extensions' file lock."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._persistence = AesGcmFilePersistence(self.path, key)
        self._cache: SharedTokenCache | None = None

    def token_cache(self) -> SharedTokenCache:
        if self._cache is None:
            self._cache = SharedTokenCache(self._persistence)
        return self._cache

    def lock(self) -> AbstractContextManager:
        return self.token_cache().lock()

    def load_meta(self) -> CacheMetadata | None:
        return CacheMetadata.load(self.path)

    def save_meta(self, meta: CacheMetadata) -> None:
        meta.save(self.path)

    def load_text(self) -> str:
        """The decrypted cache; raises ``CacheUnreadable`` (wrong key) or an ``OSError`` when there is none."""
        return self._persistence.load()

    def forget(self) -> list[Path | str]:
        """Delete the cache and its metadata (no key needed). Returns what was removed."""
        removed: list[Path | str] = []
        for path in (self.path, CacheMetadata.path_for(self.path)):
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                continue
        self._cache = None
        return removed
