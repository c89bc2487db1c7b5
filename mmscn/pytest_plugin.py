"""pytest plugin: every `.mmscn` file pytest meets is a test (entry point `mmscn`, group pytest11).

`pytest examples/` runs each scenario as `mmscn test` does (mmscn.suite.judge:
the same verdict, `expect fail` passes when the scenario fails, an unparsable
file fails with its located error, an uninstalled `arch` skips) and shows a
failure as the located failures after the trace up to them.  A golden trace
next to the file (FILE.mmscn.trace, written by `mmscn test --update`) is
checked too.  Items are ordinary pytest items, so -k, -x, --lf and
pytest-xdist's -n work on them.

Collection follows pytest's own rules: `collect_ignore`/`collect_ignore_glob`
in a conftest.py, `--ignore`, `norecursedirs` and testpaths keep .mmscn files
that are not scenarios (fixtures, editor test files) out.  Turn the plugin
off with `-p no:mmscn`, or only its collection with the ini option
`mmscn_collect = false`.  Options (ini): `mmscn_goldens` (default true),
`mmscn_explore` (default false: scenarios with per-CPU blocks are judged by
the run's one interleaving; true: by every interleaving, as `mmscn explore`).
"""
from __future__ import annotations

import os

import pytest


def pytest_addoption(parser) -> None:
    parser.addini("mmscn_collect", type="bool", default=True,
                  help="collect .mmscn files as tests (mmscn plugin)")
    parser.addini("mmscn_goldens", type="bool", default=True,
                  help="check FILE.mmscn.trace golden traces where they exist (mmscn plugin)")
    parser.addini("mmscn_explore", type="bool", default=False,
                  help="judge scenarios with per-CPU blocks by every interleaving (mmscn plugin)")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".mmscn" and parent.config.getini("mmscn_collect"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(Exception):
    """A scenario did not behave as its header says; the text is the whole report."""


class ScenarioFile(pytest.File):
    def collect(self):
        # one item per file; parsing waits for runtest, so a broken file is a failed test, not a collection error
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioItem(pytest.Item):
    # no fixtures; said, because plugins such as pytest-lsp read item.funcargs of every item
    funcargs: dict = {}

    def _display_path(self) -> str:
        rel = os.path.relpath(self.path, self.config.invocation_params.dir)
        return str(self.path) if rel.startswith(os.pardir) else rel

    def runtest(self) -> None:
        from mmscn.dsl.diagnostics import printable
        from mmscn.suite import FAIL, SKIP, golden_path, judge
        path = self._display_path()
        golden = golden_path(path) if self.config.getini("mmscn_goldens") else None
        out = judge(path, golden, explore=self.config.getini("mmscn_explore"))
        if out.status == SKIP:
            # reported at the scenario, not at this line (the same as a skip marker)
            raise pytest.skip.Exception(printable(out.reason), _use_item_location=True)
        if out.status == FAIL:
            parts = [out.headline()]   # pytest's short summary shows this line
            if out.trace:
                parts.append(out.trace)
            parts += [f"also: {n}" for n in out.notes]
            if out.diff:
                parts.append(out.diff)
            raise ScenarioFailed(printable("\n".join(parts), lines=True))    # for a terminal

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario {self._display_path()}"
