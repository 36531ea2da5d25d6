#!/usr/bin/env bash
# The run command: set up .venv, then run `presample` with the given arguments,
# e.g. `scripts/run.sh "1girl, scenery"`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The engine and everything the README's tour uses (all wheels, no compiler).
bash "$root/scripts/venv.sh" onnx server canvas chat
venv="${PRESAMPLE_VENV:-$root/.venv}"
# Once per venv: convert the shipped model for ONNX Runtime (about 25 s), so no
# prompt pays for it. A cleared cache is refilled by the next prompt instead.
if [ ! -f "$venv/.presample-prepared" ]; then
  echo "preparing the default model (once) ..." >&2
  "$venv/bin/presample" prepare && touch "$venv/.presample-prepared"
fi
exec "$venv/bin/presample" "$@"
