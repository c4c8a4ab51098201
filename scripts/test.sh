#!/usr/bin/env bash
# The test command: set up ./.venv if needed, check the import layers (.importlinter), then run the whole suite
# with pytest (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest "$@"
