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
# editors/vscode.  Without CI=true what cannot be installed is a warning (those
# tests skip with the reason); under CI=true it stops here with a non-zero exit,
# so a run never passes with an engine quietly missing.
ci=; level=WARNING; [ "${CI:-}" = true ] && ci=1 level=ERROR
problems=()
trouble() { echo "tests/run.sh: $level: $*" >&2; problems+=("$*"); }
# MMSCN_FILES_ROOT: where the package files looked for below live (tests/test_run_sh.py's sandbox)
files=${MMSCN_FILES_ROOT:-}
missing() {
  need=()
  vim --version 2>/dev/null | grep '+syntax' >/dev/null || need+=(vim)   # no -q: no SIGPIPE
  command -v emacs >/dev/null || need+=(emacs-nox)
  command -v tmux >/dev/null || need+=(tmux)     # the REPL's terminal test (tests/test_repl_tmux.py)
  # the editors that drive `mmscn lsp` (tests/test_lsp_editors.py): Neovim, Eglot for an Emacs without it, ALE
  command -v nvim >/dev/null || need+=(neovim)
  ls -d "$files"/usr/share/emacs/site-lisp/elpa/eglot-* >/dev/null 2>&1 \
    || emacs -Q --batch --eval '(kill-emacs (if (locate-library "eglot") 0 1))' 2>/dev/null || need+=(elpa-eglot)
  [ -f "$files"/usr/share/vim-ale/plugin/ale.vim ] || need+=(vim-ale)
  command -v perf >/dev/null || need+=(linux-perf)   # the live trace test (tests/test_traces.py)
  # the pictures (tests/test_pictures.py): SVG and HTML screenshots in headless Chromium, DOT through Graphviz
  command -v chromium >/dev/null || need+=(chromium)
  command -v dot >/dev/null || need+=(graphviz)
  [ -f "$files"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)   # the pictures name DejaVu Sans
}
# Another apt (unattended-upgrades, a second run of this script) may hold the
# lock: wait for it, at most this long, instead of giving up at once.
lock_wait=${MMSCN_APT_LOCK_WAIT:-300}
apt_get() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$lock_wait" "$@"; }
apt_update() {
  # DPkg::Lock::Timeout covers dpkg's lock; `apt-get update` also takes the
  # lock of the package lists, which some apt versions do not wait for: retry
  # that one (only a lock failure, so an offline machine does not wait).
  local deadline=$((SECONDS + lock_wait)) err
  while ! err=$(apt_get update -qq 2>&1 >/dev/null); do
    if ! grep -qi 'lock' <<<"$err" || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$err" >&2
      return 1
    fi
    echo "tests/run.sh: waiting for another apt to release its lock" >&2
    sleep 5
  done
}
missing
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    apt_update && apt_get install -y -qq "${need[@]}" >/dev/null \
      || echo "tests/run.sh: apt-get install ${need[*]} failed" >&2
    missing
    [ ${#need[@]} -eq 0 ] || trouble "could not install ${need[*]} with apt-get"
  else
    trouble "${need[*]} missing and apt-get (as root) unavailable"
  fi
fi
if command -v npm >/dev/null; then
  (cd editors/vscode && { [ node_modules/.package-lock.json -nt package-lock.json ] \
     || npm ci --no-audit --no-fund --loglevel=error >/dev/null; }) \
    || trouble "npm ci in editors/vscode failed"
else
  trouble "npm missing: the VS Code grammar tests cannot run"
fi
if [ -n "$ci" ] && [ ${#problems[@]} -gt 0 ]; then
  echo "tests/run.sh: CI=true and ${#problems[@]} test engine(s) could not be installed (above); not running the suite" >&2
  exit 1
fi
export PATH="$PWD/$venv/bin:$PATH"
[ "${venv#/}" != "$venv" ] && export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest "$@"
