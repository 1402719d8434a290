#!/usr/bin/env bash
# Set up the environment and open the dashboard on the bundled default recording.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run app/streamlit_app.py "$@"
