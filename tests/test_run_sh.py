"""tests/run.sh on a machine it cannot fully set up: another apt holding the
lock, an engine that will not install, with and without CI=true.

apt-get, the editors, the engines, npm and the virtual environment's python are
stubs on PATH (the real tools minus those), and the package files run.sh looks
for are under MMSCN_FILES_ROOT, so only emacs is missing whatever the host has,
nothing is installed and nothing waits.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = {"apt-get", "sudo", "vim", "emacs", "tmux", "npm", "sleep", "id"}

APT_GET = """#!/bin/bash
# apt-get: `update` fails on the lists lock $LOCKED times, then works; `install` installs $INSTALLS
echo "apt-get $*" >> "$STATE/log"
case " $* " in
  *" update "*)
    n=$(cat "$STATE/updates" 2>/dev/null || echo 0); echo $((n + 1)) > "$STATE/updates"
    if [ "$n" -lt "${LOCKED:-0}" ]; then
      echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
      exit 100
    fi ;;
  *" install "*)
    for p in $INSTALLS; do printf '#!/bin/sh\\necho "+syntax"\\n' > "$STUBS/${p%-nox}"; chmod +x "$STUBS/${p%-nox}"; done ;;
esac
exit 0
"""
PYTHON = """#!/bin/bash
echo "python $*" >> "$STATE/log"
"""


@pytest.fixture
def sandbox(tmp_path):
    """(env, state folder): PATH = stubs + the real tools without HIDDEN; a fake venv."""
    real = tmp_path / "real"
    stubs = tmp_path / "stubs"
    state = tmp_path / "state"
    for d in (real, stubs, state, tmp_path / "venv" / "bin"):
        d.mkdir(parents=True)
    for bindir in ("/usr/local/bin", "/usr/bin", "/bin"):
        for p in Path(bindir).iterdir() if Path(bindir).is_dir() else ():
            if p.name not in HIDDEN and not (real / p.name).exists():
                (real / p.name).symlink_to(p)

    def stub(folder, name, text):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    stub(stubs, "apt-get", APT_GET)
    stub(stubs, "id", "#!/bin/sh\necho 0\n")                 # root: no sudo
    stub(stubs, "sleep", "#!/bin/sh\nexit 0\n")              # the lock wait does not wait
    stub(stubs, "vim", "#!/bin/sh\necho '+syntax'\n")
    for name in ("tmux", "npm", "nvim", "perf", "chromium", "dot"):    # present whatever the host has: emacs is not
        stub(stubs, name, "#!/bin/sh\nexit 0\n")
    files = tmp_path / "files"
    for f in ("usr/share/emacs/site-lisp/elpa/eglot-1.17/eglot.el", "usr/share/vim-ale/plugin/ale.vim",
              "usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        (files / f).parent.mkdir(parents=True)
        (files / f).write_text("")
    stub(tmp_path / "venv" / "bin", "python", PYTHON)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PATH=f"{stubs}:{real}", STATE=str(state), STUBS=str(stubs), MMSCN_VENV=str(tmp_path / "venv"),
               MMSCN_FILES_ROOT=str(files))
    return env, state


def run_sh(env, **extra):
    return subprocess.run(["bash", str(ROOT / "tests" / "run.sh"), "-q"], env={**env, **extra},
                          capture_output=True, text=True, timeout=120)


def test_waits_for_the_apt_lock_then_installs(sandbox):
    env, state = sandbox
    p = run_sh(env, LOCKED="2", INSTALLS="emacs-nox", CI="true")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("waiting for another apt to release its lock") == 2
    log = (state / "log").read_text()
    assert "DPkg::Lock::Timeout=300" in log and "install -y -qq emacs-nox" in log
    assert log.rstrip().endswith("python -m pytest -q")     # the suite ran


def test_an_engine_that_will_not_install_fails_under_ci(sandbox):
    env, state = sandbox
    p = run_sh(env, CI="true")               # apt-get "works" but emacs is still missing
    assert p.returncode != 0
    assert "ERROR: could not install emacs-nox with apt-get" in p.stderr
    assert "CI=true and 1 test engine(s) could not be installed" in p.stderr
    assert "-m pytest" not in (state / "log").read_text()


def test_without_ci_a_missing_engine_is_a_warning(sandbox):
    env, state = sandbox
    p = run_sh(env)
    assert p.returncode == 0, p.stderr
    assert "WARNING: could not install emacs-nox with apt-get" in p.stderr
    assert (state / "log").read_text().rstrip().endswith("python -m pytest -q")


def test_a_lock_held_too_long_gives_up(sandbox):
    env, state = sandbox
    p = run_sh(env, LOCKED="1000", MMSCN_APT_LOCK_WAIT="0", CI="true")
    assert p.returncode != 0
    assert "Could not get lock" in p.stderr and "could not install emacs-nox" in p.stderr
