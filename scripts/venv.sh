#!/usr/bin/env bash
# Create (once) and update the project's virtual environment in .venv with the
# extras given as arguments, e.g. `scripts/venv.sh dev`. Sourced by run.sh and
# test.sh so a fresh machine needs nothing installed by hand.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PRESAMPLE_VENV:-$root/.venv}"
extras="$(IFS=,; echo "$*")"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.presample-installed"
want="$extras $(cat "$root/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  # PyTorch first and pinned: 2.13.0 is the CPU wheel on this kind of machine's
  # disk; an unpinned torch would pull a multi-GB CUDA build from PyPI.
  case ",$extras," in
    *,torch,*|*,train,*|*,dev,*)
      "$venv/bin/python" -m pip install -q "torch==${PRESAMPLE_TORCH_VERSION:-2.13.0}" ;;
  esac
  "$venv/bin/python" -m pip install -q -e "$root${extras:+[$extras]}"
  echo "$want" > "$stamp"
fi
