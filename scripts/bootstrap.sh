#!/usr/bin/env bash
# Create or update the virtual environment (default .venv) from requirements-dev.txt.
# Re-runs are quick: nothing is installed when the requirements have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${KB_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
stamp="$VENV/.kb-requirements.sha256"
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing requirements (the first time builds llama-cpp-python: several minutes)" >&2
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
