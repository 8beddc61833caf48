"""The BM25 index's SQLite schema, as numbered migrations: meta, corpus stats and the delta (documents
added since the segment was written, and the segment's documents removed since)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from vectorstore.migrations import apply_migrations

from ..errors import KBError

Migration = Callable[[sqlite3.Connection], None]


class BM25IndexError(KBError):
    """The keyword index file cannot be used as it is."""


def m001_initial(db: sqlite3.Connection) -> None:
    """Meta, corpus stats, doc lengths and postings clustered by term (a query reads only its terms' rows)."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE stats (one INTEGER PRIMARY KEY CHECK (one = 1), "
        "n INTEGER NOT NULL, total_length INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO stats (one, n, total_length) VALUES (1, 0, 0)")
    db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, length INTEGER NOT NULL)")
    db.execute(
        "CREATE TABLE postings (term TEXT NOT NULL, id INTEGER NOT NULL, tf INTEGER NOT NULL, "
        "length INTEGER NOT NULL, PRIMARY KEY (term, id)) WITHOUT ROWID"
    )  # length repeats docs.length (fixed per chunk) so scoring reads postings alone, without a join
    # remove(ids) finds a document's postings through this, without re-tokenising its text.
    db.execute("CREATE INDEX postings_by_id ON postings (id)")


def m002_term_stats(db: sqlite3.Connection) -> None:
    """Each term's document frequency, kept with the postings: counting a common term's postings per
    query costs O(df) (half the chunks at 1M), reading its row costs one lookup."""
    db.execute("CREATE TABLE terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO terms (term, df) SELECT term, COUNT(*) FROM postings GROUP BY term")


def m003_segment(db: sqlite3.Connection) -> None:
    """Segment documents removed since the segment was written (``meta.segment`` names its folder).

    From here ``docs``/``postings`` hold only the delta and ``terms.df`` is the change to the segment's
    document frequency (negative where removals outweigh additions). A file of version 2 has no segment,
    so all its documents are the delta and its ``terms`` already mean that: it needs no other change,
    and its first write past the delta's size moves its documents into a segment."""
    db.execute("CREATE TABLE dead (id INTEGER PRIMARY KEY)")


# Append only: never edit or reorder a migration that has shipped.
MIGRATIONS: list[Migration] = [m001_initial, m002_term_stats, m003_segment]


def migrate(db: sqlite3.Connection) -> None:
    apply_migrations(db, MIGRATIONS, lambda version: BM25IndexError(
        f"keyword index schema version {version} is newer than this kb-assistant supports "
        f"({len(MIGRATIONS)}); upgrade kb-assistant or delete the index file to rebuild it"
    ))
