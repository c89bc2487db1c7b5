"""The layers, read off the imports: grammar <- dsl <- interpreter <- the front ends.

Every import in every .py of grammar/, dsl/, interpreter/ and mmscn/ counts,
the lazy ones inside functions too.  A module imports only from its own layer
or the layers below it, and within a layer the rooms (a module, or a package
like interpreter/policies) import each other without a cycle.  The folders are
installed as one package (pyproject.toml): grammar/ is mmscn.grammar, dsl/ is
mmscn.dsl, interpreter/ is mmscn.interpreter.

Also: no tracked file is a symlink to somewhere outside the tree (it would
dangle in every other checkout).
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (folder, the package it is installed as), lowest layer first
LAYERS = [("grammar", "mmscn.grammar"), ("dsl", "mmscn.dsl"), ("interpreter", "mmscn.interpreter"),
          ("mmscn", "mmscn")]


def modules(root: Path) -> dict:
    """Module name -> its file, for every .py of the layers' folders."""
    out = {}
    for folder, package in LAYERS:
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package] + parts)] = path
    return out


def layer(module: str) -> int:
    """The index in LAYERS of a module's layer (the longest package that holds it)."""
    best = None
    for i, (_, package) in enumerate(LAYERS):
        if module == package or module.startswith(package + "."):
            if best is None or len(package) > len(LAYERS[best][1]):
                best = i
    return best


def room(module: str) -> str:
    """The module or package directly inside its layer's package ("" for the package itself)."""
    package = LAYERS[layer(module)][1]
    return module[len(package) + 1:].split(".")[0]


def imports(module: str, path: Path, known) -> list:
    """(line, imported module) of every import of mmscn code in the file, wherever it stands."""
    out = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    here = here.rpartition(".")[0]
                base = f"{here}.{base}" if base else here
            # `from P import m` imports module P.m when there is one, else names of P
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out += [(node.lineno, t) for t in targets if t == "mmscn" or t.startswith("mmscn.")]
    return out


def upward_imports(root: Path) -> list:
    known = modules(root)
    bad = []
    for module, path in known.items():
        for line, target in imports(module, path, known):
            if layer(target) > layer(module):
                bad.append(f"{path.relative_to(root)}:{line}: {module} imports {target}, "
                           f"a layer above ({LAYERS[layer(module)][0]} <- {LAYERS[layer(target)][0]})")
    return bad


def room_cycles(root: Path) -> list:
    """Each cycle of imports between different rooms of one layer, as the rooms on it."""
    known = modules(root)
    graph: dict = {}
    for module, path in known.items():
        for _, target in imports(module, path, known):
            if layer(target) == layer(module) and room(target) != room(module):
                graph.setdefault((layer(module), room(module)), set()).add((layer(target), room(target)))
    return [sorted(f"{LAYERS[lay][0]}.{r or '__init__'}" for lay, r in c) for c in _components(graph) if len(c) > 1]


def _components(graph: dict) -> list:
    """The strongly connected components of a graph (Tarjan), iteratively."""
    index, low, on, stack, out = {}, {}, set(), [], []
    nodes = set(graph) | {m for ms in graph.values() for m in ms}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    out.append(comp)
    return out


def outside_symlinks(root: Path) -> list:
    """Tracked symlinks (git mode 120000) whose target lies outside ``root``."""
    ls = subprocess.run(["git", "-C", str(root), "ls-files", "-s"], capture_output=True, text=True, check=True)
    bad = []
    top = os.path.realpath(root)
    for entry in ls.stdout.splitlines():
        meta, _, name = entry.partition("\t")
        if not meta.startswith("120000 "):
            continue
        target = subprocess.run(["git", "-C", str(root), "cat-file", "-p", meta.split()[1]],
                                capture_output=True, text=True, check=True).stdout
        where = os.path.normpath(os.path.join(top, os.path.dirname(name), target))
        if os.path.isabs(target) or os.path.commonpath([top, where]) != top:
            bad.append(f"{name} -> {target}")
    return bad


# ---------------------------------------------------------------- the tree as it is
def test_the_layers_are_the_installed_packages():
    """The folder-to-package map above is pyproject.toml's."""
    tomllib = pytest.importorskip("tomllib")
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder, package in LAYERS:
        assert dirs[package] == folder


def test_nothing_imports_a_layer_above_it():
    assert upward_imports(ROOT) == []


def test_no_import_cycle_between_rooms_of_a_layer():
    assert room_cycles(ROOT) == []


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_tracked_symlink_points_outside_the_tree():
    assert outside_symlinks(ROOT) == []


# ---------------------------------------------------------------- the checks can fail
def _tree(tmp_path: Path, files: dict) -> Path:
    for folder, _ in LAYERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_an_upward_import_inside_a_function_is_found(tmp_path):
    root = _tree(tmp_path, {
        "dsl/parser.py": "def names():\n    from mmscn.interpreter import policies\n    return policies\n",
        "interpreter/policies/__init__.py": "",
        "interpreter/report.py": "from ..dsl import parser\nfrom mmscn.cli import main\n",
        "mmscn/cli.py": "main = 1\n",
    })
    assert upward_imports(root) == [
        "dsl/parser.py:2: mmscn.dsl.parser imports mmscn.interpreter.policies, a layer above (dsl <- interpreter)",
        "interpreter/report.py:2: mmscn.interpreter.report imports mmscn.cli, a layer above (interpreter <- mmscn)",
    ]


def test_a_cycle_between_two_modules_is_found_and_one_inside_a_package_is_not(tmp_path):
    root = _tree(tmp_path, {
        "dsl/parser.py": "def later():\n    from .resolve import TYPES\n",
        "dsl/resolve.py": "from .parser import parse\nfrom . import ast\n",
        "dsl/ast.py": "",
        "interpreter/explore/__init__.py": "from .model import Model\n",
        "interpreter/explore/model.py": "from . import search\n",
        "interpreter/explore/search.py": "from .model import Model\n",
    })
    assert room_cycles(root) == [["dsl.parser", "dsl.resolve"]]


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_a_symlink_out_of_the_tree_is_found(tmp_path):
    root = tmp_path / "repo"
    (root / "dsl").mkdir(parents=True)
    (root / "dsl" / "inside").symlink_to("../README")
    (root / "dsl" / "dsl").symlink_to("/tmp/somewhere/dsl")
    (root / "dsl" / "up").symlink_to("../../elsewhere")
    (root / "README").write_text("")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    assert sorted(outside_symlinks(root)) == ["dsl/dsl -> /tmp/somewhere/dsl", "dsl/up -> ../../elsewhere"]
