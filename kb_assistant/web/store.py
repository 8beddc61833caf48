"""The web app's own SQLite file: conversations, their turns, answer feedback and indexing runs.

One file in the data directory (``app.sqlite``) so conversations survive page reloads and app
restarts. Each call opens its own connection: Streamlit serves sessions from many threads and the
answer workers write from theirs; WAL lets readers go on while one writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectorstore.migrations import apply_migrations

from ..errors import KBError
from ..types import Answer, IndexReport
from .records import ClaimView, Turn, answer_from_json, answer_to_json

DB_FILE = "app.sqlite"
RATINGS = ("helpful", "wrong")


def _m1_conversations(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE conversations (id INTEGER PRIMARY KEY, kb TEXT NOT NULL, title TEXT NOT NULL, "
               "created REAL NOT NULL, updated REAL NOT NULL)")
    db.execute("CREATE INDEX conversations_kb ON conversations (kb, updated)")
    db.execute("CREATE TABLE turns (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL "
               "REFERENCES conversations (id) ON DELETE CASCADE, question TEXT NOT NULL, status TEXT NOT NULL, "
               "answer TEXT, error TEXT NOT NULL DEFAULT '', created REAL NOT NULL, finished REAL)")
    db.execute("CREATE INDEX turns_conversation ON turns (conversation_id, id)")


def _m2_feedback(db: sqlite3.Connection) -> None:
    # A copy of question, answer and sources: feedback outlives the conversation it came from.
    db.execute("CREATE TABLE feedback (turn_id INTEGER PRIMARY KEY, kb TEXT NOT NULL, rating TEXT NOT NULL, "
               "question TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL)")


def _m3_index_runs(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE index_runs (id INTEGER PRIMARY KEY, kb TEXT NOT NULL, finished REAL NOT NULL, "
               "summary TEXT NOT NULL, failed TEXT NOT NULL, error TEXT NOT NULL DEFAULT '')")
    db.execute("CREATE INDEX index_runs_kb ON index_runs (kb, finished)")


MIGRATIONS = (_m1_conversations, _m2_feedback, _m3_index_runs)


@dataclass(frozen=True)
class Conversation:
    id: int
    kb: str
    title: str
    created: float
    updated: float


@dataclass(frozen=True)
class Feedback:
    turn_id: int
    kb: str
    rating: str
    answer: Answer
    claims: tuple[ClaimView, ...]
    created: float


@dataclass(frozen=True)
class IndexRun:
    kb: str
    finished: float
    summary: str
    failed: list[tuple[str, str]]  # (file, reason)
    error: str


class AppStore:
    """Conversations per knowledge base, feedback and indexing runs in ``DATA_DIR/app.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            apply_migrations(db, MIGRATIONS, lambda v: KBError(
                f"{self.path} was written by a newer kb-assistant (schema {v}); upgrade, or move the file away"))

    @classmethod
    def for_settings(cls, settings: Any) -> AppStore:
        return cls(Path(settings.data_dir) / DB_FILE)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        except sqlite3.Error as exc:
            raise KBError(f"{self.path}: {exc}; check the disk, or move the file away to start afresh") from exc
        finally:
            db.close()

    # -- conversations -----------------------------------------------------------------------

    def create_conversation(self, kb: str, title: str = "New conversation") -> Conversation:
        now = time.time()
        with self._db() as db:
            cur = db.execute("INSERT INTO conversations (kb, title, created, updated) VALUES (?, ?, ?, ?)",
                             (kb, title, now, now))
        return Conversation(int(cur.lastrowid or 0), kb, title, now, now)

    def conversations(self, kb: str) -> list[Conversation]:
        """The knowledge base's conversations, most recently used first."""
        with self._db() as db:
            rows = db.execute("SELECT id, kb, title, created, updated FROM conversations WHERE kb = ? "
                              "ORDER BY updated DESC, id DESC", (kb,)).fetchall()
        return [Conversation(*r) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        with self._db() as db:
            row = db.execute("SELECT id, kb, title, created, updated FROM conversations WHERE id = ?",
                             (conversation_id,)).fetchone()
        return Conversation(*row) if row else None

    def rename(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())[:200]
        if not title:
            raise KBError("a conversation needs a title: type one, or keep the current one")
        with self._db() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- turns -------------------------------------------------------------------------------

    def add_turn(self, conversation_id: int, question: str, status: str = "queued") -> int:
        """Record a question before it is answered, so it is never lost; the first one names the conversation."""
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute("INSERT INTO turns (conversation_id, question, status, created) VALUES (?, ?, ?, ?)",
                             (conversation_id, question, status, now))
            first = db.execute("SELECT COUNT(*) FROM turns WHERE conversation_id = ?",
                               (conversation_id,)).fetchone()[0] == 1
            db.execute("UPDATE conversations SET updated = ?" + (", title = ?" if first else "") + " WHERE id = ?",
                       (now, " ".join(question.split())[:60], conversation_id) if first else (now, conversation_id))
            db.execute("COMMIT")
        return int(cur.lastrowid or 0)

    def set_status(self, turn_id: int, status: str, error: str = "") -> None:
        with self._db() as db:
            db.execute("UPDATE turns SET status = ?, error = ? WHERE id = ?", (status, error, turn_id))

    def mark_interrupted(self, turn_id: int) -> bool:
        """A pending turn no worker holds (the app restarted) becomes an error; False if it had finished."""
        with self._db() as db:
            cur = db.execute("UPDATE turns SET status = 'error', error = ? WHERE id = ? AND status IN "
                             "('queued', 'running')",
                             ("interrupted: the app restarted before it was answered; ask again", turn_id))
        return cur.rowcount > 0

    def delete_turn(self, turn_id: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM turns WHERE id = ?", (turn_id,))

    def finish_turn(self, turn_id: int, answer: Answer, claims: tuple[ClaimView, ...] = (), *,
                    status: str = "done") -> None:
        with self._db() as db:
            db.execute("UPDATE turns SET status = ?, answer = ?, finished = ? WHERE id = ?",
                       (status, answer_to_json(answer, claims), time.time(), turn_id))

    def turns(self, conversation_id: int) -> list[Turn]:
        with self._db() as db:
            rows = db.execute("SELECT id, conversation_id, question, status, answer, error, created FROM turns "
                              "WHERE conversation_id = ? ORDER BY id", (conversation_id,)).fetchall()
        return [self._turn(r) for r in rows]

    def turn(self, turn_id: int) -> Turn | None:
        with self._db() as db:
            row = db.execute("SELECT id, conversation_id, question, status, answer, error, created FROM turns "
                             "WHERE id = ?", (turn_id,)).fetchone()
        return self._turn(row) if row else None

    @staticmethod
    def _turn(row: tuple[Any, ...]) -> Turn:
        id_, conversation_id, question, status, answer_json, error, created = row
        answer, claims = answer_from_json(answer_json) if answer_json else (None, ())
        return Turn(id_, conversation_id, question, status, answer, claims, error, created)

    # -- feedback ----------------------------------------------------------------------------

    def give_feedback(self, turn: Turn, kb: str, rating: str) -> None:
        """Record (or change) the rating of an answered turn, with a copy of question, answer and sources."""
        if rating not in RATINGS:
            raise KBError(f"feedback must be one of {', '.join(RATINGS)}, not {rating!r}")
        if turn.answer is None:
            raise KBError("this question has no answer yet: give feedback once it is answered")
        with self._db() as db:
            db.execute("INSERT INTO feedback (turn_id, kb, rating, question, answer, created) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (turn_id) DO UPDATE SET rating = excluded.rating, "
                       "created = excluded.created",
                       (turn.id, kb, rating, turn.question, answer_to_json(turn.answer, turn.claims), time.time()))

    def feedback_for(self, turn_id: int) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT rating FROM feedback WHERE turn_id = ?", (turn_id,)).fetchone()
        return row[0] if row else None

    def feedback(self, *, kb: str | None = None, rating: str | None = None) -> list[Feedback]:
        query, args = "SELECT turn_id, kb, rating, answer, created FROM feedback WHERE 1=1", list[str]()
        if kb is not None:
            query, args = query + " AND kb = ?", [*args, kb]
        if rating is not None:
            query, args = query + " AND rating = ?", [*args, rating]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created, turn_id", args).fetchall()
        out = []
        for turn_id, kb_name, rated, answer_json, created in rows:
            answer, claims = answer_from_json(answer_json)
            out.append(Feedback(turn_id, kb_name, rated, answer, claims, created))
        return out

    # -- indexing runs -----------------------------------------------------------------------

    def record_index_run(self, kb: str, report: IndexReport | None, refused: list[str], error: str = "") -> None:
        failed = [(o.path, o.reason) for o in (report.failed if report else [])]
        failed += [(message.split(": ", 1)[0], message.split(": ", 1)[-1]) for message in refused]
        with self._db() as db:
            db.execute("INSERT INTO index_runs (kb, finished, summary, failed, error) VALUES (?, ?, ?, ?, ?)",
                       (kb, time.time(), report.summary() if report else "", json.dumps(failed, ensure_ascii=False),
                        error))

    def last_index_run(self, kb: str) -> IndexRun | None:
        with self._db() as db:
            row = db.execute("SELECT kb, finished, summary, failed, error FROM index_runs WHERE kb = ? "
                             "ORDER BY finished DESC, id DESC LIMIT 1", (kb,)).fetchone()
        if row is None:
            return None
        return IndexRun(row[0], row[1], row[2], [tuple(f) for f in json.loads(row[3])], row[4])  # type: ignore[misc]
