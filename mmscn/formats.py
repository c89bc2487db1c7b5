"""The output formats of `run`, `explore`, `compare` and `test`: one registry.

A format is a class per command (a Format), named in FORMATS as
"module:Class" and imported only when a command asks for it, so `mmscn`
starts without compiling any of them.  The command makes one on its output
stream with its options, hands it each report as it is ready (`item`) and
ends it (`end`): text writes as it goes, JSON collects and prints one
document.  A flag named after a format asks for it (`--json`: "json"),
otherwise the command writes "text": see chosen().

A new format is one line, a row in FORMATS or a call:
    register("compare", "csv", "mmscn.compare:CompareCsv")
and an option that asks for it: a flag `--csv` (chosen() finds it), or a
file option whose command calls get() or render() itself (`test --html FILE`,
`run --svg FILE`).

What each command hands to item():
    run      item(result, lines, states, judgement)  once per file (RunResult, the file's lines;
                                          the state after every step with --states, else None;
                                          the kernels.Judgement of a file that names a kernel, else
                                          None); a file with several `expect` lines: item(Verdicts,
                                          lines, None); "svg" also needs recorder=
                                          (mmscn/pictures/record.py)
    explore  item(model, res, steps, judgement)  once (explore's Model, Result, failing_steps; the
                                        kernels.Judgement of a file that names a kernel, else None);
                                        several `expect` lines: item(None, Verdicts, None)
    compare  item(path, scenario, cols, lines)  once (compare.compare()'s columns, the file's lines)
    test     item(outcome)              once per file, in path order (suite.Outcome)
"""
from __future__ import annotations

import os

# (command, format name) -> "module:Class"
FORMATS = {
    ("run", "text"): "mmscn.formats:RunText",
    ("run", "json"): "mmscn.formats:RunJson",
    ("run", "svg"): "mmscn.pictures.svg:RunSvg",            # --svg OUT, and `mmscn draw`
    ("explore", "text"): "mmscn.explore:ExploreText",
    ("explore", "json"): "mmscn.explore:ExploreJson",
    ("explore", "svg"): "mmscn.pictures.svg:ExploreSvg",    # --svg OUT: the witness
    ("compare", "text"): "mmscn.compare:CompareText",
    ("compare", "json"): "mmscn.compare:CompareJson",
    ("test", "text"): "mmscn.suite:SuiteText",
    ("test", "junit"): "mmscn.suite:SuiteJUnit",      # --junit-xml FILE
    ("test", "html"): "mmscn.pictures.html:SuiteHtml",  # --html FILE
}

# terminal colours of the text formats
BOLD, DIM, RED, GREEN, RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[0m"


def register(command: str, name: str, where: str) -> None:
    """Offer format ``name`` for ``command``: ``where`` is "module:Class", a Format."""
    FORMATS[(command, name)] = where


def get(command: str, name: str):
    """The Format class of ``command`` in format ``name`` (KeyError: the command has none)."""
    import importlib
    module, _, cls = FORMATS[(command, name)].partition(":")
    return getattr(importlib.import_module(module), cls)


def chosen(command: str, args):
    """The Format class a command line asks for: a flag named after one of the command's
    formats (`--json`: "json"), otherwise "text"."""
    for c, name in FORMATS:
        if c == command and name != "text" and getattr(args, name.replace("-", "_"), None) is True:
            return get(command, name)
    return get(command, "text")


def render(command: str, name: str, reports, **opts) -> str:
    """Reports (each a tuple of item()'s arguments) in a format, as a string: for a file,
    or one command's report inside another's."""
    import io
    buf = io.StringIO()
    f = get(command, name)(buf, **opts)
    for r in reports:
        f.item(*r)
    f.end()
    return buf.getvalue()


class Format:
    """One command's report in one format: item() for each report as it is ready, then end().

    ``opts`` are the command's options (color, quiet, ...); a format reads those it uses.
    """

    def __init__(self, out, **opts):
        self.out = out
        self.opts = opts

    def item(self, *report) -> None:
        raise NotImplementedError

    def end(self) -> None:
        pass


class JsonFormat(Format):
    """Collects one document per report (doc()); end() prints it, or the list of them when
    there are none or several: what `--json` prints."""

    def __init__(self, out, **opts):
        super().__init__(out, **opts)
        self.docs: list = []

    def doc(self, *report):
        raise NotImplementedError

    def item(self, *report) -> None:
        self.docs.append(self.doc(*report))

    def end(self) -> None:
        write_json(self.docs[0] if len(self.docs) == 1 else self.docs, self.out)


# ---------------------------------------------------------------- `mmscn run`'s formats
class RunText(Format):
    """The trace of each file: a line per statement and kernel event, the assertions, a summary.
    A file judged under several `expect` lines (kernels.Verdicts) gets a trace per line, each
    under its heading, then the verdict of each line; ``judgement``: the kernel a file
    that names one ran (a heading above its trace)."""

    def item(self, result, lines, states=None, judgement=None) -> None:
        from mmscn.interpreter.report import write_text
        from mmscn.kernels import Verdicts, run_verdict
        quiet, color = self.opts.get("quiet", False), self.opts.get("color", False)
        w = self.out.write
        if not isinstance(result, Verdicts):
            if judgement is not None and not quiet:
                w(_bold(f"=== {judgement.heading()}", color) + "\n")
            write_text(result, lines, self.out, quiet=quiet, color=color)
            return
        for j, r in result.pairs():
            w(_bold(f"=== {j.heading()}", color) + "\n")
            write_text(r, lines, self.out, quiet=quiet, color=color)
        shown = [(j, r) for j, r in result.pairs() if not quiet or not r.passed]
        if shown:
            from mmscn.dsl.diagnostics import printable
            w(f"verdicts of {printable(result.results[0].scenario.path)}:\n")
            for j, r in shown:
                w(f"  {j.heading()}: {run_verdict(r)}\n")


def _bold(text: str, color: bool) -> str:
    return f"{BOLD}{text}{RESET}" if color else text


class RunJson(JsonFormat):
    def doc(self, result, lines, states=None, judgement=None):
        from mmscn.interpreter.report import json_head, run_json
        from mmscn.kernels import Verdicts
        if not isinstance(result, Verdicts):
            d = run_json(result, lines, states)
            if judgement is not None:
                d["kernel"] = judgement.json()
            return d
        sc = result.results[0].scenario
        return {**json_head("run"), "file": sc.path, "title": sc.name, "arch": result.results[0].arch,
                "cpus": sc.ncpus, "passed": result.passed,
                "verdicts": [{**run_json(r, lines), "kernel": j.json(), "expect_line": j.expect.line,
                              "without": list(j.expect.without)} for j, r in result.pairs()]}


def write_json(doc, out) -> None:
    import json
    json.dump(doc, out, indent=2)
    out.write("\n")


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
