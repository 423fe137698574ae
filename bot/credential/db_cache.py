"""The admin's token cache in the shared database (PostgreSQL): every replica, and ``migrate-bot login`` on any
host, use one row of ``token_cache``.

The row holds the MSAL cache encrypted exactly like the file (:class:`AesGcmFilePersistence`: AES-GCM with
``TOKEN_CACHE_KEY``, same header), a ``version`` counter and the not-secret :class:`CacheMetadata` as JSON. Reads
cost one ``SELECT version`` and reload only when another process wrote. Writes are compare-and-swap: read the row
at version *v*, apply MSAL's change, ``UPDATE ... WHERE version = v``; when another replica wrote in between (a
refresh token redeemed at the same moment), re-read and apply the change again, so no write is lost or undone.
"""

from __future__ import annotations

import json
import threading
from contextlib import AbstractContextManager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import msal
from msal_extensions.persistence import PersistenceNotFound
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.credential.token_cache import AesGcmFilePersistence, CacheMetadata
from bot.store import TokenCacheRow, utcnow

ROW = "admin"
LOCATION = "the token_cache table of DATABASE_URL"
CAS_ATTEMPTS = 20


class DbTokenCache(msal.SerializableTokenCache):
    """An MSAL cache kept in one database row, reloaded when its version moved, written by compare-and-swap."""

    def __init__(self, engine: Engine, crypto: AesGcmFilePersistence, name: str = ROW) -> None:
        super().__init__()
        self._engine = engine
        self._crypto = crypto
        self._name = name
        self._version: int | None = None  # what this process last read or wrote; None: nothing yet
        self.conflicts = 0  # compare-and-swap losses (another replica wrote first)

    def _read(self, *, full: bool) -> tuple[int | None, bytes | None]:
        columns = (TokenCacheRow.version, TokenCacheRow.blob) if full else (TokenCacheRow.version,)
        with self._engine.connect() as connection:
            row = connection.execute(select(*columns).where(TokenCacheRow.name == self._name)).first()
        if row is None:
            return None, None
        return row[0], (row[1] if full else None)

    def _load(self, version: int | None, blob: bytes | None) -> None:
        self.deserialize(self._crypto.decrypt(blob) if blob else None)
        self._version = version

    def _reload_if_necessary(self) -> None:
        version, _ = self._read(full=False)
        if version != self._version or version is None:
            self._load(*self._read(full=True))

    def search(self, credential_type: str, target: Any = None, query: dict | None = None, *, now: float | None = None):  # type: ignore[override]
        with self._lock:
            self._reload_if_necessary()
            return super().search(credential_type, target=target, query=query, now=now)

    def modify(self, credential_type: str, old_entry: dict, new_key_value_pairs: dict | None = None) -> None:
        with self._lock:
            for _ in range(CAS_ATTEMPTS):
                version, blob = self._read(full=True)
                self._load(version, blob)
                super().modify(credential_type, old_entry, new_key_value_pairs=new_key_value_pairs)
                if self._swap(version, self._crypto.encrypt(self.serialize())):
                    return
                self.conflicts += 1
            raise RuntimeError("token cache: too many concurrent writers")

    def _swap(self, version: int | None, blob: bytes) -> bool:
        """Write ``blob`` if the row is still at ``version`` (None: there is no row yet)."""
        try:
            with self._engine.begin() as connection:
                if version is None:
                    connection.execute(
                        insert(TokenCacheRow).values(name=self._name, version=1, blob=blob, updated_at=utcnow())
                    )
                    self._version = 1
                    return True
                result = connection.execute(
                    update(TokenCacheRow)
                    .where(TokenCacheRow.name == self._name, TokenCacheRow.version == version)
                    .values(version=version + 1, blob=blob, updated_at=utcnow())
                )
        except IntegrityError:  # another process inserted the row first
            return False
        if result.rowcount != 1:
            return False
        self._version = version + 1
        return True


class DbCacheStore:
    """The :class:`bot.credential.cache_store.CacheStore` of replicas: the ``token_cache`` row."""

    location = LOCATION

    def __init__(self, engine: Engine, key: bytes, name: str = ROW) -> None:
        self._engine = engine
        self._name = name
        self._crypto = AesGcmFilePersistence(LOCATION, key)
        self._cache: DbTokenCache | None = None
        self._meta_lock = threading.Lock()

    def token_cache(self) -> DbTokenCache:
        if self._cache is None:
            self._cache = DbTokenCache(self._engine, self._crypto, self._name)
        return self._cache

    def lock(self) -> AbstractContextManager:
        return self._meta_lock

    def load_meta(self) -> CacheMetadata | None:
        with self._engine.connect() as connection:
            text = connection.execute(select(TokenCacheRow.meta).where(TokenCacheRow.name == self._name)).scalar()
        if not text:
            return None
        try:
            raw = json.loads(text)
            known = {f.name for f in fields(CacheMetadata)}
            return CacheMetadata(**{k: v for k, v in raw.items() if k in known})
        except (ValueError, TypeError, AttributeError):
            return None

    def save_meta(self, meta: CacheMetadata) -> None:
        text = json.dumps(asdict(meta))
        with self._engine.begin() as connection:
            updated = connection.execute(
                update(TokenCacheRow).where(TokenCacheRow.name == self._name).values(meta=text, updated_at=utcnow())
            )
            if updated.rowcount == 0:
                connection.execute(
                    insert(TokenCacheRow).values(name=self._name, version=0, meta=text, updated_at=utcnow())
                )

    def load_text(self) -> str:
        with self._engine.connect() as connection:
            blob = connection.execute(select(TokenCacheRow.blob).where(TokenCacheRow.name == self._name)).scalar()
        if not blob:
            raise PersistenceNotFound(location=LOCATION)
        return self._crypto.decrypt(blob)

    def forget(self) -> list[Path | str]:
        """Delete the row (no key needed). Returns what was removed."""
        with self._engine.begin() as connection:
            gone = connection.execute(delete(TokenCacheRow).where(TokenCacheRow.name == self._name)).rowcount
        self._cache = None
        return [LOCATION] if gone else []
