#!/usr/bin/env bash
# The test command: set up .venv with the dev extras, then lint and run the tests.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k tipo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh" dev
# The browser tests drive Debian's chromium (Playwright's own browser download
# cannot work offline); install it once when we may, else those tests skip.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian chromium for the browser tests ..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
    || echo "warning: could not install chromium; browser tests will skip" >&2
fi
venv="${PRESAMPLE_VENV:-$root/.venv}"
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q "$@"
