#!/usr/bin/env python3
"""Speed of `mmscn lsp`: prints figures, asserts nothing.

  python benchmarks/bench_lsp.py          # the issue's figure: 1,000 lines, 30 changes
  python benchmarks/bench_lsp.py --lines 10000 --changes 10

The server runs as an editor starts it (`python -m mmscn lsp` on pipes) with
its default settings (a 25 ms debounce).  It opens a generated scenario
(benchmarks/bench_run.py's churn: fork, borrow, migrate, exit, assert), then,
one at a time, sends a change at the end of the file (an assertion appended,
then changed) and measures the wall time from sending it to receiving the
diagnostics of that version.  The incremental run resumes from the last
kernel snapshot before the change, so this stays small as the file grows.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_run import churn  # noqa: E402


class Server:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, "-m", "mmscn", "lsp"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.n = 0

    def send(self, obj):
        body = json.dumps(obj).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def read(self):
        length = None
        while True:
            line = self.p.stdout.readline()
            m = re.match(rb"Content-Length: (\d+)", line)
            if m:
                length = int(m.group(1))
            elif line == b"\r\n" and length is not None:
                return json.loads(self.p.stdout.read(length))

    def request(self, method, params):
        self.n += 1
        self.send({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params})
        while True:
            m = self.read()
            if m.get("id") == self.n and "method" not in m:
                return m

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self, version):
        while True:
            m = self.read()
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == version:
                return m["params"]["diagnostics"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=30)
    a = ap.parse_args(argv)
    text = churn(a.lines)
    s = Server()
    s.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
    s.notify("initialized", {})
    uri = "file:///bench.mmscn"
    t = time.perf_counter()
    s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "mmscn", "version": 1,
                                                       "text": text}})
    assert s.diagnostics(1) == []
    opened = time.perf_counter() - t
    last = text.count("\n")
    times = []
    for v in range(2, a.changes + 2):
        # an assertion at the end, then the same line changed: each one a change at the end
        change = {"range": {"start": {"line": last, "character": 0}, "end": {"line": last + (v > 2), "character": 0}},
                  "text": f"assert @A0.users == {v % 2 * 0}\n"}
        t = time.perf_counter()
        s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": v}, "contentChanges": [change]})
        s.diagnostics(v)
        times.append(time.perf_counter() - t)
    s.request("shutdown", None)
    s.notify("exit", None)
    s.p.wait(30)
    ms = sorted(x * 1000 for x in times)
    print(f"{a.lines:,}-line scenario: open to diagnostics {opened * 1000:.0f} ms; a change at the end to its "
          f"diagnostics: median {statistics.median(ms):.1f} ms, slowest {ms[-1]:.1f} ms over {len(ms)} changes "
          f"(including the 25 ms debounce)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
