"""Payload filters as Milvus boolean expressions over a JSON field, e.g. ``payload["source"] == "a.md"``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .where import validate_where

_INT64_MAX = 2**63 - 1
# Milvus string literals accept C-style escapes; these are the ones both Milvus and Milvus Lite know.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(text: str) -> str:
    """``text`` as a double-quoted Milvus string literal."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def int_list(values: Iterable[int]) -> str:
    """``[1,2,3]``: a literal list for ``field in [...]``."""
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def milvus_expr(where: Mapping[str, Any] | None, field: str = "payload") -> tuple[str, bool]:
    """Translate a filter into a Milvus expression over the JSON ``field``: ``(expression, exact)``.

    Strings, booleans and finite int64/float numbers translate exactly (booleans and 0/1 also
    match each other, as Python's ``True == 1`` does). When ``exact`` is False some pairs (None,
    lists, objects, huge ints) were left out and callers must confirm rows with ``where.matches``;
    Milvus's ``is null`` also matches a missing key, so None is never sent to the server.
    An empty expression means "no server-side filter".
    """
    validate_where(where)
    clauses: list[str] = []
    exact = True
    for key, value in (where or {}).items():
        ref = f"{field}[{quote(key)}]"
        if isinstance(value, str):
            clauses.append(f"{ref} == {quote(value)}")
        elif isinstance(value, bool):
            clauses.append(f"({ref} == {'true' if value else 'false'} or {ref} == {int(value)})")
        elif isinstance(value, int) and abs(value) <= _INT64_MAX:
            alt = f" or {ref} == {'true' if value else 'false'}" if value in (0, 1) else ""
            clauses.append(f"({ref} == {value}{alt})" if alt else f"{ref} == {value}")
        elif isinstance(value, float) and math.isfinite(value):
            alt = f" or {ref} == {'true' if value else 'false'}" if value in (0.0, 1.0) else ""
            clauses.append(f"({ref} == {value!r}{alt})" if alt else f"{ref} == {value!r}")
        else:
            exact = False
    return " and ".join(clauses), exact


def conjoin(*exprs: str) -> str:
    """AND together the non-empty expressions, each parenthesised."""
    parts = [e for e in exprs if e]
    if len(parts) == 1:
        return parts[0]
    return " and ".join(f"({e})" for e in parts)
