"""mmscn repl end to end in a real terminal: tmux runs the installed command, the test
types with send-keys and reads the screen with capture-pane (polled, with a deadline);
every input waits for the bare prompt, so no key reaches the tty before the REPL reads it raw.

Skipped only where tmux is missing and CI is not set; under CI=true a missing tmux fails.
"""
import os
import shutil
import subprocess
import time
import uuid

import pytest

TMUX = shutil.which("tmux")


@pytest.fixture
def term(tmp_path, mmscn_cmd):
    if TMUX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is missing (tests/run.sh installs it); under CI the terminal test must run")
        pytest.skip("tmux is not installed")
    t = Terminal(tmp_path, mmscn_cmd)
    yield t
    t.close()


class Terminal:
    def __init__(self, tmp_path, mmscn_cmd):
        self.home = tmp_path
        self.sock = f"mmscn-test-{uuid.uuid4().hex[:12]}"
        # the tmux server (a new one, on its own socket) passes this environment to the pane
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), TERM="xterm-256color",
                   LANG="C.UTF-8")
        env.pop("NO_COLOR", None)
        cmd = " ".join(mmscn_cmd) + ' repl; echo "EXIT=$?"; sleep 600'
        subprocess.run([TMUX, "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40",
                        "sh", "-c", cmd], env=env, check=True)

    def keys(self, *keys):
        subprocess.run([TMUX, "-L", self.sock, "send-keys", "-t", "0", *keys], check=True)

    def screen(self) -> str:
        r = subprocess.run([TMUX, "-L", self.sock, "capture-pane", "-p", "-t", "0"], capture_output=True,
                           text=True)
        return r.stdout

    def wait(self, text, what=None, absent=False, timeout=90):
        """Poll the screen until ``text`` is on it (or gone, with absent=True); the deadline is
        generous because a loaded 2-core CI machine can take seconds to start Python."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if (text in s) != absent:
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {what or repr(text)}; the screen:\n{s}")
            time.sleep(0.05)

    def ready(self, prompt="mmscn>", what="the empty prompt", timeout=90):
        """Poll until the line above the toolbar is the bare prompt: only then is the REPL reading
        the terminal in raw mode.  Keys sent earlier reach the tty in cooked mode, where Ctrl-R and
        Ctrl-C mean something else (reprint, SIGINT), so every input waits for this first."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            lines = [ln for ln in s.splitlines() if ln.strip()]
            if len(lines) >= 3 and lines[-3].rstrip() == prompt and lines[-1].startswith(" users/count:"):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {what}; the screen:\n{s}")
            time.sleep(0.05)

    def line(self, text, prompt="mmscn>"):
        """Type one input and Enter, once the REPL waits at ``prompt``."""
        self.ready(prompt, f"the prompt {prompt!r} before typing {text!r}")
        self.keys(text, "Enter")

    def toolbar(self) -> list:
        lines = [ln for ln in self.screen().splitlines() if ln.strip()]
        return lines[-2:]

    def close(self):
        subprocess.run([TMUX, "-L", self.sock, "kill-server"], capture_output=True)


def test_full_session_in_a_terminal(term):
    t = term
    t.ready(what="the prompt and the toolbar")
    assert "users/count: @init_mm 2/2" in t.screen()

    t.line("spawn A")
    t.wait("    1  spawn A")

    t.ready()
    t.keys("spawn kth", "Tab")                       # completion from the grammar
    t.wait("mmscn> spawn kthread", "Tab completion of kthread")
    t.keys(" kw", "Enter")
    t.wait("    2  spawn kthread kw")

    t.ready()
    t.keys("sch", "Tab")
    t.wait("mmscn> schedule", "Tab completion of schedule")
    t.keys(" cpu0 A", "Enter")
    t.wait("idle0 -> A: switch_mm")
    t.ready()
    t.keys("schedule cpu0 k", "Tab")                 # completion from the session: the task kw
    t.wait("mmscn> schedule cpu0 kw", "Tab completion of kw")
    t.keys("Enter")
    t.wait("kw borrows @A")

    # the toolbar: cpu0 runs kw on the borrowed @A; @A has 1 user and 2 references
    t.wait(" cpu0 kw on @A (lazy)", "the toolbar's CPU line")
    bar = t.toolbar()
    assert bar[0].startswith(" cpu0 kw on @A (lazy)"), bar
    assert bar[1].startswith(" users/count: @init_mm 2/1  @A 1/2"), bar

    t.line(":state")
    t.wait("  kw     kthread  running   cpu0  none  @A", ":state's task table")
    assert "  @A        1      2      live" in t.screen()

    # a failed assertion: expected and actual, a caret, nothing changed
    t.line("assert @A.count == 1")
    t.wait("assertion failed: @A.count == 1: actual 2")

    # a block goes on until its braces balance
    t.line("cpu0 {")
    t.line("schedule A", prompt="   ...")
    t.line("}", prompt="   ...")
    t.wait("cpu0: schedule A")
    t.wait(" cpu0 A on @A", "the toolbar after the block")
    assert t.toolbar()[1].startswith(" users/count: @init_mm 2/1  @A 1/1")

    t.line(":undo")
    t.wait("undone: line 7: cpu0: schedule A")
    t.wait(" cpu0 kw on @A (lazy)", "the toolbar after :undo")
    assert t.toolbar()[1].startswith(" users/count: @init_mm 2/1  @A 1/2")

    # Ctrl-C drops the line being typed
    t.ready()
    t.keys("spawn Junk")
    t.wait("mmscn> spawn Junk")
    t.keys("C-c")
    t.line(":state")
    t.wait("  @A        1      2      live", ":state after Ctrl-C")
    assert "  Junk " not in t.screen()

    # Ctrl-R finds an earlier line in the history
    t.ready()
    t.keys("C-r")
    t.wait("I-search backward:", "the history search")
    t.keys("kthr")
    t.wait("I-search backward: kthr", "the history search for kthr")
    t.keys("Enter", "Enter")
    t.wait("a task named `kw` already exists")

    t.ready()
    t.keys("C-d")
    t.wait("EXIT=0", "exit status 0 after Ctrl-D")
    history = (t.home / "data" / "mmscn" / "history").read_text()
    assert "+spawn kthread kw" in history and "+:undo" in history and "Junk" not in history
