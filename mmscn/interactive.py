"""The REPL's session under its old name: mmscn/lsp and other front ends import
Session and partial_word from here; the REPL itself is the package mmscn/repl/."""
from mmscn.repl.completion import partial_word
from mmscn.repl.session import Session

__all__ = ["Session", "partial_word"]
