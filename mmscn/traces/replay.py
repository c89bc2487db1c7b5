"""Replay an imported trace on the kernel model as it streams: memory flat in the trace's length.

`mmscn run TRACE` parses the whole imported scenario like any other; `mmscn
validate` and `mmscn compare TRACE` instead run each statement as the
importer writes it and keep nothing of it afterwards.  Each statement line
is parsed by the same shape parser `mmscn run` uses for its lines
(dsl/shapes.py) and run by the same Runner.step, so both ways run the same
statements with the same refusals and invariants.
"""
from __future__ import annotations

from typing import Optional

from mmscn.dsl import ast as A
from mmscn.dsl.parser import lark_parser
from mmscn.dsl.shapes import ShapeParser, spans
from mmscn.interpreter.runner import Runner
from mmscn.interpreter.conditions import cost_dict

_shapes: Optional[ShapeParser] = None
_WORDS = frozenset(("spawn", "thread", "of", "kthread", "schedule", "idle", "exit", "exec"))


class _Window:
    """The scenario's lines as the Runner sees them: only the statement being run is kept."""

    def __init__(self):
        self.n, self.text = 0, ""

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.text if i == self.n - 1 else ""


class Replay:
    def __init__(self, trace, arch: Optional[str] = None):
        global _shapes
        if _shapes is None:
            _shapes = ShapeParser(lark_parser())
        self.sp = _shapes
        self.lines = _Window()
        sc = A.Scenario(trace.path, title=None, arch=arch or trace.arch, ncpus=trace.ncpus)
        self.runner = Runner(sc, self.lines, arch or trace.arch, trace=False)
        self.k = self.runner.k
        self.failure = None         # the diagnostic that stopped the replay
        self.statements = 0

    def node(self, rec):
        sp = self.sp
        # the importer writes words of the language, `cpuN` and names, one space apart: the
        # shape parser's key and columns follow from the words (its tokens() would find the same)
        vals = rec.code.split(" ")
        key = tuple(w if w in _WORDS else "C" if w[:3] == "cpu" and w[3:].isdigit() else "N" for w in vals)
        cols, c = [], 1
        for w in vals:
            cols.append(c)
            c += len(w) + 1
        fn = sp.cache.get(key, False)
        if fn is False:
            fn = sp.cache[key] = sp.builder(key, rec.code, vals, cols)
        if fn is None:      # the importer writes only statements of the shapes the parser compiles
            raise RuntimeError(f"the replay cannot parse its own statement {rec.code!r}")
        return fn(rec.line, spans(cols, vals), vals)

    def step(self, rec) -> bool:
        """Run one statement record; False once the model refused a statement or broke an invariant."""
        if self.failure is not None:
            return False
        self.lines.n, self.lines.text = rec.line, rec.text
        ok = self.runner.step(self.node(rec), None)
        self.runner.result.steps.clear()        # nothing kept: memory stays flat
        self.statements += 1
        if not ok:
            self.failure = self.runner.result.diagnostics[-1]
            return False
        return True

    @property
    def cost(self) -> dict:
        return cost_dict(self.k)
