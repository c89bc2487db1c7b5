#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (the project with its test extras in a virtual environment, and the real
# editors and engines the highlighting tests drive, tmux for the REPL, Chromium and
# Graphviz for the pictures), then runs pytest.
# MMSCN_VENV picks the virtual environment (default .venv); extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MMSCN_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
# The editors the highlighting tests drive (tests/test_editors.py): Debian's vim
# (not vim-tiny: it lacks +syntax) and emacs-nox, and the npm packages of
# editors/vscode.  What cannot be installed makes those tests fail under CI=true.
need=()
vim --version 2>/dev/null | grep '+syntax' >/dev/null || need+=(vim)   # no -q: no SIGPIPE
command -v emacs >/dev/null || need+=(emacs-nox)
command -v tmux >/dev/null || need+=(tmux)     # the REPL's terminal test (tests/test_repl_tmux.py)
# the editors that drive `mmscn lsp` (tests/test_lsp_editors.py): Neovim, Eglot for an Emacs without it, ALE
command -v nvim >/dev/null || need+=(neovim)
ls -d /usr/share/emacs/site-lisp/elpa/eglot-* >/dev/null 2>&1 \
  || emacs -Q --batch --eval '(kill-emacs (if (locate-library "eglot") 0 1))' 2>/dev/null || need+=(elpa-eglot)
[ -f /usr/share/vim-ale/plugin/ale.vim ] || need+=(vim-ale)
# the pictures (tests/test_pictures.py): SVG and HTML screenshots in headless Chromium, DOT through Graphviz
command -v chromium >/dev/null || need+=(chromium)
command -v dot >/dev/null || need+=(graphviz)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)   # the pictures name DejaVu Sans
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || echo "tests/run.sh: WARNING: apt-get install ${need[*]} failed" >&2
  else
    echo "tests/run.sh: WARNING: ${need[*]} missing and apt-get (as root) unavailable" >&2
  fi
fi
if command -v npm >/dev/null; then
  (cd editors/vscode && { [ node_modules/.package-lock.json -nt package-lock.json ] \
     || npm ci --no-audit --no-fund --loglevel=error >/dev/null; }) \
    || echo "tests/run.sh: WARNING: npm ci in editors/vscode failed" >&2
else
  echo "tests/run.sh: WARNING: npm missing: the VS Code grammar tests cannot run" >&2
fi
export PATH="$PWD/$venv/bin:$PATH"
[ "${venv#/}" != "$venv" ] && export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest "$@"
