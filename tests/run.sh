#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (the project with its test extras in a virtual environment, and the real
# editors and engines the highlighting tests drive), then runs pytest.
# MMSCN_VENV picks the virtual environment (default .venv); extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MMSCN_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
export PATH="$PWD/$venv/bin:$PATH"
[ "${venv#/}" != "$venv" ] && export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest "$@"
