#!/usr/bin/env bash
# The run command: set up .venv, then run `presample` with the given arguments,
# e.g. `scripts/run.sh "1girl, scenery"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh" onnx
venv="${PRESAMPLE_VENV:-$root/.venv}"
exec "$venv/bin/presample" "$@"
