import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# The .mmscn files below tests/ are inputs of tests (highlighting, bad inputs),
# not scenarios: keep the mmscn pytest plugin from collecting them
# (fnmatch's * crosses directories, so this covers every subfolder).
collect_ignore_glob = ["*.mmscn"]


@pytest.fixture
def mmscn_cmd():
    """The installed console script (the same one a user runs)."""
    exe = Path(sys.executable).parent / "mmscn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]
