"""Numbered SQLite schema migrations for kb_assistant's own files (BM25 index, embedding cache)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

Migration = Callable[[sqlite3.Connection], None]


def apply_migrations(
    db: sqlite3.Connection, migrations: Sequence[Migration], too_new: Callable[[int], Exception]
) -> int:
    """Apply the pending migrations in one transaction, recording each in ``PRAGMA user_version``.

    A file whose version is newer than ``migrations`` raises ``too_new(version)``. Returns how many
    migrations ran. The connection must be in autocommit mode (``isolation_level=None``).
    """
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
