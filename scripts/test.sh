#!/usr/bin/env bash
# The test command: set up .venv with the dev extras, then lint and run the tests.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k tipo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh" dev
venv="${PRESAMPLE_VENV:-$root/.venv}"
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q "$@"
