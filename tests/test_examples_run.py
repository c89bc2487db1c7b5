"""Every example passes `mmscn run`, through the installed command line."""
import json
import subprocess

import pytest

from mmscn.dsl.resolve import load_file
from mmscn.grammar import statement_words
from mmscn.interpreter.arches import known_arches

from conftest import EXAMPLES

# a `granularity step` file is judged by every interleaving of its steps (mmscn test explores it;
# tests/test_steps.py): one round robin cannot show a race inside an operation
ALL = sorted(p for p in EXAMPLES.rglob("*.mmscn") if "\ngranularity step" not in p.read_text())
IDS = [str(p.relative_to(EXAMPLES)) for p in ALL]


def run(cmd, *args):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


def test_there_are_examples():
    assert len([p for p in ALL if p.parent == EXAMPLES]) >= 8


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_example_passes_with_json(mmscn_cmd, path):
    p = run(mmscn_cmd, "run", "--json", str(path))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr
    doc = json.loads(p.stdout)
    assert doc["file"] == str(path)
    assert doc["passed"] is True
    # a file with several `expect` lines: a run per line (docs/history.md)
    for d in doc.get("verdicts", [doc]):
        assert d["passed"] is True
        if d["expect"] == "pass":
            assert d["failures"] == [] and d["failed"] is False and d["stopped"] is False
    assert doc.get("verdicts", [doc])[0]["assertions"] > 0, "an example without assertions shows nothing"


def test_all_examples_in_one_text_run(mmscn_cmd):
    p = run(mmscn_cmd, "run", *map(str, ALL))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr
    summaries = [line for line in p.stdout.splitlines() if line.startswith(("passed:", "failed, as the header"))]
    runs = sum(len(load_file(str(path), known_arches())[0].expectations()) for path in ALL)   # one per `expect` line
    assert len(summaries) == runs, p.stdout[-3000:]
    assert "Traceback" not in p.stdout + p.stderr


def test_examples_use_every_statement():
    """Each statement of the grammar appears in some example (the hotplug and
    flush statements come with the architecture examples)."""
    used = set()
    for path in ALL:
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            for part in code.replace("{", ";").replace("}", ";").split(";"):
                words = part.split()
                if words:
                    used.add(words[0])
                    if words[0] == "spawn" and len(words) > 1:
                        used.add("spawn " + words[1] if words[1] in ("thread", "kthread") else "spawn")
    later = {"offline", "online", "flush"}
    assert later <= set(statement_words())
    missing = set(statement_words()) - used - later
    assert not missing, f"no example uses: {sorted(missing)}"
    assert {"spawn thread", "spawn kthread", "expect"} <= used


def test_linux_2_3_and_generic_pair_tell_the_same_story():
    """The two lazy_chain files differ only in the header and the cost figures."""
    def body(name):
        sc, text = load_file(str(EXAMPLES / name))
        kinds = [(type(s).__name__, getattr(getattr(s, "task", None), "text", None)) for s in sc.stmts]
        return sc.arch, kinds
    arch_g, g = body("lazy_chain_generic.mmscn")
    arch_o, o = body("lazy_chain_linux_2_3.mmscn")
    assert (arch_g, arch_o) == ("generic", "linux-2.3")
    assert o[:len(g)] == g
