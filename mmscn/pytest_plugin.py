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
`--mmscn-html FILE` also writes the HTML page `mmscn test --html` writes
(mmscn/pictures/html.py): a new file, unless `--mmscn-html-force`; under
pytest-xdist the controller writes it.
"""
from __future__ import annotations

import os

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("mmscn")
    group.addoption("--mmscn-html", metavar="FILE", help="write an HTML page of the .mmscn scenarios: verdict, "
                    "time, each failure with its message and timeline (a new file)")
    group.addoption("--mmscn-html-force", action="store_true", help="let --mmscn-html replace an existing file")
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


def pytest_configure(config) -> None:
    path = config.getoption("mmscn_html", None)
    if path and not hasattr(config, "workerinput"):     # the xdist controller (or no xdist) writes the page
        from mmscn.dsl.files import Unwritable, check_target
        force = config.getoption("mmscn_html_force")
        try:        # refused now, not after the whole run
            check_target(path, force=force, hint="pass --mmscn-html-force to replace it")
        except Unwritable as e:
            raise pytest.UsageError(f"--mmscn-html: {e}")
        config.pluginmanager.register(HtmlPage(path, force), "mmscn-html")


class HtmlPage:
    """Collects each scenario's outcome from its report (xdist carries the reports'
    attributes over) and writes the page at the end of the session."""

    def __init__(self, path: str, force: bool):
        self.path, self.force = path, force
        self.outcomes = []

    def pytest_runtest_logreport(self, report) -> None:
        d = getattr(report, "mmscn_outcome", None)
        if d is not None:
            from mmscn.suite import Outcome
            o = Outcome(d["path"])
            o.__dict__.update(d)
            self.outcomes.append(o)

    def pytest_sessionfinish(self, session) -> None:
        from mmscn.dsl.files import Unwritable, write_file
        from mmscn.pictures.html import html_report
        outs = sorted(self.outcomes, key=lambda o: o.path)
        seconds = sum(o.seconds for o in outs)
        try:
            write_file(self.path, html_report(outs, seconds, "pytest: mmscn scenarios"), force=self.force,
                       parents=True, hint="pass --mmscn-html-force to replace it")
        except Unwritable as e:
            session.config.get_terminal_writer().line(f"mmscn: cannot write --mmscn-html: {e}", red=True)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    out = getattr(item, "mmscn_outcome", None)
    if out is not None and call.when == "call":
        # plain data on the report, so pytest-xdist sends it to the controller
        rep.get_result().mmscn_outcome = {k: v for k, v in vars(out).items()
                                          if isinstance(v, (str, int, float, bool, list))}


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
        out = judge(path, golden, explore=self.config.getini("mmscn_explore"),
                    draw=bool(self.config.getoption("mmscn_html", None)))
        self.mmscn_outcome = out        # for --mmscn-html (HtmlPage)
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
