"""The database around the store: schema migrations (Alembic), the SQLite single-process lock, leadership."""
