#!/usr/bin/env bash
# Create (once) and update the project's virtual environment in .venv with the
# extras given as arguments, e.g. `scripts/venv.sh dev`. Called by run.sh and
# test.sh so a fresh machine needs nothing installed by hand. Re-installs only
# when pyproject.toml changed or an extra is asked for that is not there yet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PRESAMPLE_VENV:-$root/.venv}"
stamp="$venv/.presample-installed"
hash="$(sha256sum "$root/pyproject.toml" | cut -c1-16)"

have=""
if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$hash" ]; then
  have="$(tail -n +2 "$stamp")"
fi
missing=0
for extra in "$@" core; do
  grep -qx "$extra" <<<"$have" || missing=1
done
[ "$missing" = 0 ] && exit 0

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
wanted="$(printf '%s\n' $have "$@" | grep -v '^core$' | sort -u | paste -sd, -)"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
# PyTorch first and pinned: 2.13.0 is the CPU wheel on this kind of machine's
# disk; an unpinned torch would pull a multi-GB CUDA build from PyPI.
case ",$wanted," in
  *,torch,*|*,onnx,*|*,train,*|*,dev,*|*,gguf,*)
    "$venv/bin/python" -m pip install -q "torch==${PRESAMPLE_TORCH_VERSION:-2.13.0}" ;;
esac
"$venv/bin/python" -m pip install -q -e "$root${wanted:+[$wanted]}"
{ echo "$hash"; echo core; printf '%s\n' ${wanted//,/ }; } > "$stamp"
