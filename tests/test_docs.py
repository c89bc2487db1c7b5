"""The documentation says what the tool does: every scenario in a ```mmscn
block of README.md and docs/ runs and holds, and every command and option
the pages show exists (so a renamed option cannot leave the docs behind)."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = ("run", "check", "explore", "compare", "test", "repl")


def mmscn_blocks():
    out = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"^```mmscn\n(.*?)^```", text, re.S | re.M):
            line = text.count("\n", 0, m.start()) + 2
            out.append(pytest.param(m.group(1), id=f"{page.name}:{line}"))
    return out


def test_the_pages_have_scenarios():
    assert len(mmscn_blocks()) >= 6


@pytest.mark.parametrize("src", mmscn_blocks())
def test_scenario_block_runs_and_holds(mmscn_cmd, tmp_path, src):
    path = tmp_path / "doc.mmscn"
    path.write_text(src)
    p = subprocess.run([*mmscn_cmd, "run", "--quiet", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, src + p.stdout + p.stderr


def shown_commands():
    """(page, command, [--options]) for each `mmscn CMD ...` the pages show."""
    found = set()
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"(?:^|[`$] ?|&& )mmscn ([a-z]+)((?: +[^\s`|#&]+)*)", text, re.M):
            cmd, rest = m.group(1), m.group(2)
            opts = tuple(sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest))))
            found.add((page.name, cmd, opts))
    return sorted(found)


def test_the_pages_show_every_command():
    shown = {cmd for _, cmd, _ in shown_commands()}
    assert set(COMMANDS) <= shown, set(COMMANDS) - shown


_helps = {}


@pytest.fixture
def helps(mmscn_cmd):
    if not _helps:
        for cmd in COMMANDS:
            _helps[cmd] = subprocess.run([*mmscn_cmd, cmd, "--help"], capture_output=True, text=True, timeout=60)
    return _helps


@pytest.mark.parametrize("page, cmd, opts", shown_commands())
def test_shown_command_and_options_exist(helps, page, cmd, opts):
    assert cmd in helps, f"{page} shows `mmscn {cmd}`, which is not a command"
    usage = helps[cmd].stdout
    for opt in opts:
        assert re.search(rf"(?<![\w-]){re.escape(opt)}\b", usage), f"{page}: `mmscn {cmd}` has no option {opt}"
