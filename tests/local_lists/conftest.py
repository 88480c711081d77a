"""The local-list tables are tested on the store fixtures of tests/store: SQLite and a private PostgreSQL."""

from tests.store.conftest import pg_url, store

__all__ = ["pg_url", "store"]
