#!/usr/bin/env bash
# Set up (first run only) and start the Streamlit app on the bundled models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec "${KB_VENV:-.venv}/bin/streamlit" run streamlit_app.py --server.headless true \
  --browser.gatherUsageStats false "$@"
