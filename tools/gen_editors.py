#!/usr/bin/env python3
"""Write the editor keyword lists from grammar/mmscn.lark.

The words of the language live only in the grammar.  mmscn.dsl.lexer's
word_groups() sorts them into highlighting groups (statement, keyword,
operator, constant, field), the same groups the Pygments lexer uses; this
script writes those groups into the editor files:

  editors/vim/syntax/mmscn.vim          between the GENERATED markers
  editors/emacs/mmscn-mode.el           between the GENERATED markers
  editors/vscode/syntaxes/mmscn.tmLanguage.json   the five group patterns

    python tools/gen_editors.py           rewrite the files
    python tools/gen_editors.py --check   exit 1 if a file differs from the grammar
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    from mmscn.dsl.lexer import word_groups
except ImportError:             # mmscn.dsl is dsl/ only once installed (pyproject maps it)
    sys.exit("tools/gen_editors.py: mmscn is not importable; run `pip install -e .` first")

VIM = ROOT / "editors/vim/syntax/mmscn.vim"
EMACS = ROOT / "editors/emacs/mmscn-mode.el"
VSCODE = ROOT / "editors/vscode/syntaxes/mmscn.tmLanguage.json"

SOURCE = "by tools/gen_editors.py from grammar/mmscn.lark: do not edit"


def _longest_first(ws):
    # alternatives longest first, so no engine stops at a prefix (mmget / mmget_not_zero)
    return sorted(ws, key=lambda w: (-len(w), w))


def _vim_alt(ws):
    return r"\<\%(" + r"\|".join(_longest_first(ws)) + r"\)\>"


def vim_block(g) -> str:
    # Later items win at the same column: constants, then words of a
    # statement, then the contextual ones (statement start, after a dot).
    return "\n".join([
        "syn match mmscnConstant /" + _vim_alt(g["constant"]) + "/",
        "syn match mmscnKeyword /" + _vim_alt(g["keyword"]) + "/",
        "syn match mmscnOperatorWord /" + _vim_alt(g["operator"]) + "/",
        "syn match mmscnStatement /" + r"\%(\%(^\|[;{]\)\s*\)\@<=" + _vim_alt(g["statement"]) + "/",
        "syn match mmscnField /" + r"\.\@1<=" + _vim_alt(g["field"]) + "/",
    ])


def _elisp_list(name, ws, doc):
    lines = [f"(defconst {name}"]
    body = " ".join(f'"{w}"' for w in ws)
    # wrap at about 70 columns
    out, cur = [], "  '("
    for tok in body.split(" "):
        if len(cur) + len(tok) + 1 > 72 and cur.strip() != "'(":
            out.append(cur.rstrip())
            cur = "    "
        cur += tok + " "
    out.append(cur.rstrip() + ")")
    lines += out
    lines.append(f'  "{doc}")')
    return "\n".join(lines)


def emacs_block(g) -> str:
    docs = {
        "statement": "Words that begin a statement, a header line or the final clause.",
        "keyword": "Other reserved words written inside a statement.",
        "operator": "Words of a condition.",
        "constant": "Value words: states, kinds, outcomes, none, true, false.",
        "field": "Fields after a dot.",
    }
    return "\n".join(_elisp_list(f"mmscn-{k}-words", g[k], d) for k, d in docs.items())


def _tm_alt(ws):
    return "|".join(_longest_first(ws))


def vscode_patterns(g) -> dict:
    return {
        "statement": {
            "match": r"(?:^|(?<=[;{]))\s*\b(" + _tm_alt(g["statement"]) + r")\b",
            "captures": {"1": {"name": "keyword.control.statement.mmscn"}},
        },
        "field": {
            "match": r"(?<=\.)\b(?:" + _tm_alt(g["field"]) + r")\b",
            "name": "variable.other.property.mmscn",
        },
        # the word classes that are plain alternations, each with its TextMate scope
        **{cls: {"match": r"\b(?:" + _tm_alt(g[cls]) + r")\b", "name": scope}
           for cls, scope in (("operator", "keyword.operator.word.mmscn"),
                              ("keyword", "keyword.other.mmscn"),
                              ("constant", "constant.language.mmscn"))},
    }


def _between_markers(text: str, block: str, comment: str, path: Path) -> str:
    begin = f"{comment} BEGIN GENERATED {SOURCE}\n"
    end = f"{comment} END GENERATED\n"
    m = re.search(re.escape(begin) + r"(.*?)" + re.escape(end), text, re.S)
    if not m:
        raise SystemExit(f"{path}: the GENERATED markers are missing")
    return text[:m.start()] + begin + block + "\n" + end + text[m.end():]


def render() -> dict[Path, str]:
    """Every generated file's intended text."""
    g = word_groups()
    out = {
        VIM: _between_markers(VIM.read_text(encoding="utf-8"), vim_block(g), '"', VIM),
        EMACS: _between_markers(EMACS.read_text(encoding="utf-8"), emacs_block(g), ";;", EMACS),
    }
    tm = json.loads(VSCODE.read_text(encoding="utf-8"))
    tm["repository"].update(vscode_patterns(g))
    out[VSCODE] = json.dumps(tm, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 when a file differs from what the grammar gives")
    args = ap.parse_args(argv)
    drift = []
    for path, text in render().items():
        if path.read_text(encoding="utf-8") != text:
            drift.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    for path in drift:
        rel = path.relative_to(ROOT)
        print(f"{rel}: {'differs from grammar/mmscn.lark' if args.check else 'rewritten'}")
    if args.check and drift:
        print("run `python tools/gen_editors.py` to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
