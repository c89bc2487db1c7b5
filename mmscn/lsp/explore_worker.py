"""The language server's exploration, in a process of its own (`python -m mmscn.lsp.explore_worker`).

The server starts one per exploration and kills it to cancel: a search is
pure Python and would hold the server's interpreter while typing goes on.
Reads {"path", "text", "max_states", "max_seconds"} as JSON on standard input;
writes {"report": what `mmscn explore --json` prints, "witness": the witness
scenario or null} or {"error": why} on standard output.
"""
from __future__ import annotations

import json
import sys


def explore(req: dict) -> dict:
    from mmscn.dsl.parser import ParseFailed
    from mmscn.dsl.resolve import load
    from mmscn.explore import report_json
    from mmscn.interpreter import explore as X
    from mmscn.interpreter.arches import known_arches
    path = req.get("path") or "<document>"
    try:
        sc = load(req["text"], path, known_arches())
    except ParseFailed as e:
        d = e.diagnostics[0]
        return {"error": f"{d.location()}: {d.message}"}
    from mmscn import kernels
    j = kernels.judgements(sc)[0]       # the first `expect` line's kernel, as the diagnostics' run
    model = X.Model(j.scenario, req["text"].split("\n"), version=j.version)
    res = X.prologue_result(model)
    if res is None:
        res = X.Explorer(model, max_states=req.get("max_states"), max_seconds=req.get("max_seconds")).run()
    steps = X.failing_steps(model, res)
    witness = X.witness_text(model, res) if res.failure is not None and res.mode != "prologue" else None
    return {"report": report_json(model, res, steps), "witness": witness}


def main() -> int:
    out = sys.stdout
    sys.stdout = sys.stderr     # nothing but the answer on the pipe
    try:
        answer = explore(json.loads(sys.stdin.read()))
    except Exception as e:      # an internal error: the server shows it, the worker just ends
        answer = {"error": f"internal error: {type(e).__name__}: {e}"}
    out.write(json.dumps(answer))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
