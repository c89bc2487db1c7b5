"""`mmscn lsp`: the language server for editors (server.py; the analysis it serves, analysis.py).

Only the command line is defined here, so that `mmscn --help` does not import pygls.
"""
from __future__ import annotations


def add_arguments(p) -> None:
    p.description = ("A Language Server Protocol server for .mmscn files, on standard input and output: "
                     "diagnostics as you type, the kernel state at every line on hover, inlay hints, "
                     "go to definition, rename, completion, semantic tokens, and the explore verdict of "
                     "files with per-CPU blocks on save. Editors start it themselves (docs/editors.md).")
    p.epilog = ("exit status: 0 the client ended the session (shutdown, then exit) or closed standard input; "
                "1 the client sent exit without shutdown (the protocol's rule); 2 the command line was wrong.")
    p.add_argument("--tcp", type=int, metavar="PORT", help="listen on 127.0.0.1:PORT instead (for debugging)")
    p.add_argument("--stdio", action="store_true", help="use standard input and output (the default; "
                   "accepted because some clients pass it)")


def run(args) -> int:
    from .server import serve
    return serve(tcp=args.tcp)
