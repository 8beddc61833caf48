"""The SQL translation of payload filters agrees with the Python reference ``matches``."""

from __future__ import annotations

import json
import sqlite3

import pytest

from vectorstore.where import matches, sql_where

PAYLOADS = [
    {"source": "a.md", "page": 1, "ok": True, "tag": None},
    {"source": "b.md", "page": 1.0, "ok": False, "tags": ["x", "y"]},
    {"source": ["a.md"], "page": "1", "ok": 1},
    {"source": "笔记.md", "weird key": "v", 'qu"ote': 1},
    {"page": 2**70, "nan": "x"},
    {},
]
FILTERS = [
    None,
    {},
    {"source": "a.md"},
    {"source": ["a.md"]},
    {"source": "笔记.md"},
    {"page": 1},
    {"page": "1"},
    {"page": 2**70},
    {"ok": True},
    {"ok": False},
    {"tag": None},
    {"missing": None},
    {"tags": ["x", "y"]},
    {"weird key": "v"},
    {'qu"ote': 1},
    {"source": "a.md", "page": 1},
    {"page": 1.5},
]


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, payload TEXT)")
    conn.executemany(
        "INSERT INTO records VALUES (?, ?)",
        [(i, json.dumps(p, ensure_ascii=False)) for i, p in enumerate(PAYLOADS)],
    )
    return conn


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_sql_agrees_with_python(db: sqlite3.Connection, where: dict | None) -> None:
    expected = [i for i, p in enumerate(PAYLOADS) if matches(p, where)]
    expr, params, exact = sql_where(where)
    rows = db.execute(f"SELECT id, payload FROM records WHERE {expr} ORDER BY id", params).fetchall()
    prefiltered = [i for i, text in rows if exact or matches(json.loads(text), where)]
    assert prefiltered == expected


def test_invalid_filters() -> None:
    with pytest.raises(ValueError):
        sql_where({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        sql_where(["source"])  # type: ignore[arg-type]
