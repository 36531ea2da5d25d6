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
# The llama.cpp backend's tests need llama-cpp-python (the optional extra
# presample[llamacpp]), which PyPI has only as source: it compiles in about 12
# minutes on 2 cores, once per venv. If the build fails those tests skip;
# PRESAMPLE_SKIP_LLAMACPP=1 skips the build.
if [ -z "${PRESAMPLE_SKIP_LLAMACPP:-}" ] && ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python for the llama.cpp backend tests (about 12 minutes) ..." >&2
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" timeout 2400 \
    "$venv/bin/python" -m pip install -q "llama-cpp-python>=0.3,<0.4" >/dev/null 2>&1 \
    || echo "warning: could not build llama-cpp-python; the llama.cpp tests will skip" >&2
fi
# The A1111 1.10 test runs the extension's script on that WebUI's own pins
# (gradio 3.41, fastapi 0.94, pydantic 1; tests/integrations/a1111-1.10-pins.txt):
# a second small environment, made once (about 30 s). PRESAMPLE_SKIP_A1111=1 skips it.
a1111="${PRESAMPLE_A1111_VENV:-$root/.venv-a1111}"
if [ -z "${PRESAMPLE_SKIP_A1111:-}" ] && [ ! -x "$a1111/bin/python" ]; then
  echo "making an environment with A1111 1.10's pins for its test ..." >&2
  if ! (python3 -m venv "$a1111" \
        && "$a1111/bin/python" -m pip install -q -r "$root/tests/integrations/a1111-1.10-pins.txt") \
        >/dev/null 2>&1; then
    echo "warning: could not make it; the A1111 1.10 test will skip" >&2
    rm -rf "$a1111"
  fi
fi
cd "$root"
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q "$@"
