#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, the slow real-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec "${KB_VENV:-.venv}/bin/python" -m pytest "$@"
