"""Numbered SQLite schema migrations (``PRAGMA user_version`` = number applied): the FAISS store's, and
the one runner that kb_assistant's own SQLite files (keyword index, embedding cache) use too."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from .errors import VectorStoreError

Migration = Callable[[sqlite3.Connection], None]


def m001_initial(db: sqlite3.Connection) -> None:
    """Meta key/values and records: vectors as little-endian float32 bytes, payloads as JSON."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, vector BLOB NOT NULL, payload TEXT NOT NULL)")


def m002_source_index(db: sqlite3.Connection) -> None:
    """``where={"source": ...}`` is the hot filter (swapping an edited file's chunks); index it."""
    db.execute("CREATE INDEX records_source ON records (json_extract(payload, '$.source'))")


# Append only: never edit or reorder a migration that has shipped.
MIGRATIONS: list[Migration] = [m001_initial, m002_source_index]


def pending(db: sqlite3.Connection) -> int:
    """How many migrations have not been applied yet."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return len(MIGRATIONS) - version


def migrate(db: sqlite3.Connection) -> int:
    """Apply pending migrations in one transaction (caller holds the writer lock); returns how many."""
    return apply_migrations(db, MIGRATIONS, lambda version: VectorStoreError(
        f"store schema version {version} is newer than this kb-assistant supports ({len(MIGRATIONS)}); "
        "upgrade kb-assistant"
    ))


def apply_migrations(
    db: sqlite3.Connection, migrations: Sequence[Migration], too_new: Callable[[int], Exception]
) -> int:
    """Apply the pending ``migrations`` of any SQLite file in one transaction, recording each in
    ``PRAGMA user_version``; a file newer than them raises ``too_new(version)``. Returns how many ran.
    The connection must be in autocommit mode (``isolation_level=None``)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > len(migrations):
            raise too_new(version)
        for number, migration in enumerate(migrations[version:], start=version + 1):
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")  # our own int; PRAGMA takes no parameters
        db.execute("COMMIT")
        return len(migrations) - version
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
