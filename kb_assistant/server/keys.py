"""API keys for ``kb serve``: random tokens stored only as their sha256, each bound to a scope and
optionally to one knowledge base.

The token is shown once, at creation; the store keeps its hash, a short public id (to list and
revoke it) and a label. A revoked key stays in the table, so a server that ever had keys keeps asking
for one even after the last is revoked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from vectorstore.migrations import apply_migrations

from ..errors import KBError

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
KEYS_FILE = "keys.db"
TOKEN_PREFIX = "kbk-"

# Numbered migrations: index i brings the schema from version i to i + 1.
def _m1_keys(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        kb TEXT,
        scope TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        revoked REAL
    )""")


_MIGRATIONS = (_m1_keys,)


@dataclass(frozen=True)
class ApiKey:
    """One key as stored (never the token itself)."""

    id: str
    kb: str | None  # None: every knowledge base
    scope: str
    label: str
    created: float
    revoked: float | None = None

    def allows(self, scope: str, kb: str | None = None) -> bool:
        """Whether this key may do something that needs ``scope`` (on knowledge base ``kb``)."""
        if SCOPES.index(self.scope) < SCOPES.index(scope):
            return False
        return self.kb is None or kb is None or kb == self.kb

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "kb": self.kb, "scope": self.scope, "label": self.label,
                "created": _iso(self.created), "revoked": _iso(self.revoked) if self.revoked else None}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    """The keys of one data directory, in ``DATA_DIR/keys.db``; a connection per call, so any thread
    (and the CLI in another process) may use it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEYS_FILE
        self._migrated = False

    def _migrate(self) -> None:
        """Bring the file's schema up to date, once per instance (the project's one migration runner)."""
        if self._migrated:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            apply_migrations(con, _MIGRATIONS, lambda v: KBError(
                f"{self.path} was written by a newer kb-assistant (schema {v}); upgrade, or move the file away"))
        finally:
            con.close()
        self._migrated = True

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self._migrate()
        con = sqlite3.connect(self.path, timeout=10)
        try:
            with con:
                yield con
        finally:
            con.close()

    def create(self, *, scope: str = "read", kb: str | None = None, label: str = "") -> tuple[ApiKey, str]:
        """A new key and its token (the only time the token exists outside the client)."""
        if scope not in SCOPES:
            raise KBError(f"unknown scope {scope!r}: choose one of {', '.join(SCOPES)}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(secrets.token_hex(4), kb, scope, label, time.time())
        with self._db() as con:
            con.execute("INSERT INTO keys (id, hash, kb, scope, label, created) VALUES (?, ?, ?, ?, ?, ?)",
                        (key.id, token_hash(token), kb, scope, label, key.created))
        return key, token

    def list(self) -> list[ApiKey]:
        with self._db() as con:
            rows = con.execute("SELECT id, kb, scope, label, created, revoked FROM keys ORDER BY created").fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self._db() as con:
            changed = con.execute("UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                                  (time.time(), key_id)).rowcount
        if not changed:
            known = {k.id for k in self.list()}
            state = "is already revoked" if key_id in known else "does not exist (see `kb keys list`)"
            raise KBError(f"key {key_id!r} {state}")
        return next(k for k in self.list() if k.id == key_id)

    def any(self) -> bool:
        """Whether a key was ever created here (then every request must carry a valid one)."""
        if not self.path.exists():
            return False
        with self._db() as con:
            return con.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None

    def check(self, token: str) -> ApiKey | None:
        """The live key this token belongs to, or None (unknown or revoked)."""
        digest = token_hash(token)
        with self._db() as con:
            row = con.execute("SELECT id, kb, scope, label, created, revoked, hash FROM keys WHERE hash = ?",
                              (digest,)).fetchone()
        if row is None or row[5] is not None or not hmac.compare_digest(row[6], digest):
            return None
        return ApiKey(*row[:6])
