"""Payload filters: ``{key: value}`` matches payloads whose top-level ``key`` equals ``value``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Above this magnitude SQLite cannot hold the integer exactly; leave it to the Python check.
_INT64_MAX = 2**63 - 1


def matches(payload: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """True when ``payload`` has every ``key == value`` pair of ``where`` (None or {} matches all).

    This is the reference semantics every backend must agree with: the key must be present and
    compare equal with Python's ``==`` (so ``1 == 1.0 == True``, as JSON numbers do).
    """
    if not where:
        return True
    missing = object()
    return all(payload.get(key, missing) == value for key, value in where.items())


def validate_where(where: Mapping[str, Any] | None) -> None:
    """Raise ValueError for a filter that is not a mapping of string keys."""
    if where is None:
        return
    if not isinstance(where, Mapping):
        raise ValueError(f"where must be a dict of payload key -> value, got {type(where).__name__}")
    for key in where:
        if not isinstance(key, str):
            raise ValueError(f"where keys must be strings (top-level payload keys), got {key!r}")


def sql_where(where: Mapping[str, Any] | None, column: str = "payload") -> tuple[str, list[Any], bool]:
    """Translate a filter into an SQLite boolean expression over a JSON ``column``.

    Returns ``(expression, params, exact)``. When ``exact`` is False the expression is only a
    pre-filter and callers must confirm each row with :func:`matches` (values such as lists, or
    keys that cannot be written as a JSON path). Simple keys are written as literal paths, e.g.
    ``json_extract(payload, '$.source')``, so SQLite can use an expression index on them.
    """
    validate_where(where)
    if not where:
        return "1", [], True
    clauses: list[str] = []
    params: list[Any] = []
    exact = True
    for key, value in where.items():
        if _IDENT.match(key):
            path_sql, path_params = f"'$.{key}'", []
        elif '"' not in key and "\\" not in key:
            path_sql, path_params = "?", [f'$."{key}"']
        else:
            exact = False
            continue
        extract = f"json_extract({column}, {path_sql})"
        jtype = f"json_type({column}, {path_sql})"
        if value is None:
            clauses.append(f"{jtype} = 'null'")
            params += path_params
        elif isinstance(value, str):
            # json_extract returns arrays/objects as JSON text, so pin the type to a JSON string.
            clauses.append(f"{extract} = ? AND {jtype} = 'text'")
            params += [*path_params, value, *path_params]
        elif isinstance(value, bool | int) and abs(int(value)) <= _INT64_MAX:
            # JSON true/false come back as 1/0, matching Python's True == 1.
            clauses.append(f"{extract} = ?")
            params += [*path_params, int(value)]
        elif isinstance(value, float) and math.isfinite(value):
            clauses.append(f"{extract} = ?")
            params += [*path_params, value]
        else:
            exact = False
    return (" AND ".join(f"({c})" for c in clauses) or "1"), params, exact
