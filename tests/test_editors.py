"""Highlighting agrees with the parser in every engine: Pygments, Vim, Emacs, VS Code.

Each engine colours the examples and tests/highlighting/statement_forms.mmscn
(every statement form of the grammar); the colour of every token is checked
against what the Lark parser says the token is.  The engines run for real:
Vim headless (synIDattr), Emacs in batch (faces after font-lock), the TextMate
grammar through vscode-textmate with the Oniguruma engine VS Code uses, and
vscode-tmgrammar-test.  tests/run.sh installs them; an engine that cannot be
had skips here with the reason, and fails when CI=true.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lark import Lark, Token

from mmscn.grammar import grammar_text, keywords, statement_words

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "highlighting"
FORMS = HERE / "statement_forms.mmscn"
VIM_RTP = ROOT / "editors" / "vim"
EMACS_DIR = ROOT / "editors" / "emacs"
VSCODE = ROOT / "editors" / "vscode"
IN_CI = os.environ.get("CI") == "true"

# The highlighting groups every engine is mapped onto.  LANG: words of the grammar.
LANG = frozenset({"statement", "keyword", "operator", "constant", "field"})

# Spots where the meaning of a word depends on where it stands; every engine
# must tell them apart.  (line text, the word, which occurrence, group)
CONTEXTS = [
    ("online cpu1", "online", 0, "statement"),
    ("assert cpu1 is online", "online", 0, "constant"),
    ("assert cpu0.online == true", "online", 0, "field"),
    ("assert cpu0.lazy == false, cpu0 is lazy", "lazy", 0, "field"),
    ("assert cpu0.lazy == false, cpu0 is lazy", "lazy", 1, "constant"),
    ("spawn B mm @A", "mm", 0, "keyword"),
    ("spawn B mm @A", "@A", 0, "mm"),
    ("assert A.mm == @A.1", "mm", 0, "field"),
    ("assert A.mm == @A.1", "@A.1", 0, "mm"),
    ("assert A is not dead", "not", 0, "operator"),
    ("assert A is not dead", "A", 0, "task"),
    ("schedule cpu1 idle", "idle", 0, "constant"),
    ("schedule cpu1 idle", "cpu1", 0, "cpu"),
    ("cpu0 { schedule kw; exit kw }", "schedule", 0, "statement"),
    ("cpu0 { schedule kw; exit kw }", "exit", 0, "statement"),
    ("unlazy; unlazy cpu1", "unlazy", 1, "statement"),
    ("spawn cpu0x", "cpu0x", 0, "task"),
    ("spawn online2", "online2", 0, "task"),
    ("exit mmget_it", "mmget_it", 0, "task"),
    ("arch linux-2.3", "linux-2.3", 0, "arch"),
    ("assert cost.ipis == 12 # not a keyword: spawn", "ipis", 0, "field"),
    ("assert cost.ipis == 12 # not a keyword: spawn", "12", 0, "number"),
    ("assert cost.ipis == 12 # not a keyword: spawn", "spawn", 0, "comment"),
    ('expect error "spawn A" # quoted', "spawn", 0, "string"),
    ('expect error "spawn A" # quoted', "error", 0, "constant"),
    ("final exists A.state == running", "exists", 0, "constant"),
]


def unavailable(what: str, why: str):
    """An engine that cannot be had: loud in CI, a reasoned skip elsewhere."""
    msg = (f"{what} is not available ({why}); `bash tests/run.sh` installs it "
           "(Debian vim / emacs-nox, `npm ci` in editors/vscode)")
    if IN_CI:
        pytest.fail("CI=true and " + msg, pytrace=False)
    pytest.skip(msg)


def check_output(cmd, **kw):
    kw.setdefault("timeout", 120)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


# ---- engines: each returns {file: (mode, [[group per character] per line])} ----

def _vim_ok():
    exe = shutil.which("vim")
    if not exe:
        return "no `vim` on PATH"
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if "+syntax" not in ver or "+eval" not in ver:
        return "this vim has no +syntax/+eval (vim-tiny?); install Debian's vim"
    return None


def vim_cmd(*args):
    problem = _vim_ok()
    if problem:
        unavailable("Vim", problem)
    return ["vim", "-N", "-u", "NONE", "-i", "NONE", "-es",
            "--cmd", f"let g:mmscn_rtp = {json.dumps(str(VIM_RTP))}", *args]


def emacs_cmd(*args):
    if not shutil.which("emacs"):
        unavailable("Emacs", "no `emacs` on PATH")
    return ["emacs", "-Q", "--batch", "-L", str(EMACS_DIR), *args]


def node_tool(name):
    if not shutil.which("node"):
        unavailable("Node.js", "no `node` on PATH")
    mod = VSCODE / "node_modules" / name
    if not mod.is_dir():
        unavailable(f"npm package {name}", f"{mod} is missing: run `npm ci` in editors/vscode")
    return mod


VIM_GROUPS = {
    "mmscnStatement": "statement", "mmscnKeyword": "keyword", "mmscnOperatorWord": "operator",
    "mmscnConstant": "constant", "mmscnField": "field", "mmscnTask": "task", "mmscnMm": "mm",
    "mmscnCpu": "cpu", "mmscnArch": "arch", "mmscnNumber": "number", "mmscnOperator": "op",
    "mmscnDelimiter": "punct", "mmscnString": "string", "mmscnComment": "comment",
    "mmscnTodo": "comment",
}
EMACS_FACES = {
    **{f"mmscn-{g}-face": g for g in ("statement", "keyword", "operator", "constant", "field",
                                      "task", "mm", "cpu", "arch", "number")},
    "font-lock-comment-face": "comment", "font-lock-comment-delimiter-face": "comment",
    "font-lock-string-face": "string",
}
# innermost TextMate scope prefix -> group (a comment's scopes say comment first)
TM_SCOPES = [
    ("keyword.control.statement.", "statement"), ("keyword.other.", "keyword"),
    ("keyword.operator.word.", "operator"), ("keyword.operator.comparison.", "op"),
    ("constant.language.", "constant"), ("variable.other.property.", "field"),
    ("variable.other.task.", "task"), ("entity.name.type.mm.", "mm"),
    ("support.constant.cpu.", "cpu"), ("support.constant.arch.", "arch"),
    ("constant.numeric.", "number"), ("string.", "string"), ("punctuation.", "punct"),
    ("invalid.", "invalid"),
]


def _split_dump(text: str, table: dict) -> list:
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("FILE "):
            cur = (line[5:], [])
            out.append(cur)
        else:
            cur[1].append([table.get(n) if n else None for n in line.split(",")] if line else [])
    return out


def classify_vim(files, tmp):
    out = tmp / "vim.txt"
    check_output(vim_cmd(
        "--cmd", f"let g:mmscn_files = {json.dumps([str(f) for f in files])}",
        "--cmd", f"let g:mmscn_out = {json.dumps(str(out))}",
        "-S", str(HERE / "dump_syntax.vim")))
    return dict(zip(map(str, files), _split_dump(out.read_text(encoding="utf-8"), VIM_GROUPS)))


def classify_emacs(files, tmp):
    text = check_output(emacs_cmd("-l", str(HERE / "dump_faces.el"), *map(str, files)))
    return dict(zip(map(str, files), _split_dump(text, EMACS_FACES)))


def _tm_group(scopes):
    if any(s.startswith("comment.") for s in scopes):
        return "comment"
    for s in reversed(scopes):
        for prefix, g in TM_SCOPES:
            if s.startswith(prefix):
                return g
    return None


def tokenize_tm(files):
    node_tool("vscode-textmate")
    node_tool("vscode-oniguruma")
    return json.loads(check_output(["node", str(VSCODE / "tokenize.js"), *map(str, files)]))


def classify_vscode(files, tmp):
    res = {}
    for f, rows in tokenize_tm(files).items():
        lines = Path(f).read_text(encoding="utf-8").split("\n")
        groups = [[None] * len(line) for line in lines]
        for ln, start, end, _text, scopes in rows:
            for c in range(start, end):
                groups[ln - 1][c] = _tm_group(scopes)
        res[f] = ("source.mmscn", groups)
    return res


def classify_pygments(files, tmp):
    from pygments.token import (Comment, Error, Keyword, Name, Number, Operator,
                                Punctuation, String)
    from pygments.lexers import get_lexer_for_filename
    order = [(Keyword.Reserved, "keyword"), (Keyword.Constant, "constant"), (Keyword, "statement"),
             (Operator.Word, "operator"), (Operator, "op"), (Name.Attribute, "field"),
             (Name.Variable, "task"), (Name.Entity, "mm"), (Name.Builtin, "cpu"),
             (Name.Constant, "arch"), (Number, "number"), (String, "string"),
             (Comment, "comment"), (Punctuation, "punct"), (Error, "invalid")]
    res = {}
    for f in files:
        lexer = get_lexer_for_filename(str(f))      # found as Sphinx/pygmentize find it
        rows, cur = [], []
        for ttype, value in lexer.get_tokens(Path(f).read_text(encoding="utf-8")):
            g = next((g for t, g in order if ttype in t), None)
            for ch in value:
                if ch == "\n":
                    rows.append(cur)
                    cur = []
                else:
                    cur.append(g)
        rows.append(cur)
        res[str(f)] = (lexer.aliases[0], rows)
    return res


ENGINES = {"pygments": classify_pygments, "vim": classify_vim,
           "emacs": classify_emacs, "vscode": classify_vscode}
# groups an engine leaves without a face on purpose (Emacs colours no punctuation)
FACELESS = {"emacs": {"punct", "op"}}


@pytest.fixture(scope="module")
def contexts_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("hl") / "contexts.mmscn"
    p.write_text("".join(line + "\n" for line, *_ in CONTEXTS), encoding="utf-8")
    return p


def corpus():
    return sorted((ROOT / "examples").glob("**/*.mmscn")) + [FORMS]


@pytest.fixture(scope="module", params=sorted(ENGINES))
def colours(request, contexts_file, tmp_path_factory):
    """One engine's groups for the whole corpus and the contexts file (one run each)."""
    files = corpus() + [contexts_file]
    return request.param, ENGINES[request.param](files, tmp_path_factory.mktemp(request.param))


# ---- what the parser says each token is -------------------------------------

_COMMENTS: list = []


@functools.lru_cache(maxsize=None)
def _raw_parser():
    """The grammar as Lark reads it, keeping every token and collecting comments."""
    return Lark(grammar_text(), parser="lalr", lexer="contextual", keep_all_tokens=True,
                lexer_callbacks={"COMMENT": _COMMENTS.append})


@functools.lru_cache(maxsize=None)
def parsed_tokens(path: Path):
    """Every token of the file, comments included, as the Lark parser lexes it."""
    _COMMENTS.clear()
    tree = _raw_parser().parse(path.read_text(encoding="utf-8") + "\n")
    toks = list(tree.scan_values(lambda v: isinstance(v, Token))) + _COMMENTS
    return tuple(sorted(toks, key=lambda t: (t.line, t.column)))


def expected_groups(tok: Token, line_text: str) -> set:
    before = line_text[:tok.column - 1].rstrip()
    if tok.value in statement_words() and (not before or before[-1] in ";{"):
        return {"statement"}
    if tok.type.endswith("_FIELD"):
        return {"field"}
    if tok.value in keywords():
        return set(LANG)
    by_type = {"CPU": "cpu", "MM": "mm", "NAME": "task", "INT": "number", "STRING": "string",
               "ARCH_NAME": "arch", "CMP": "op", "COMMENT": "comment"}
    # a header line's value (`kernel v5.8`, `revert 139d025cda1d`, `config PREEMPT_RT`,
    # the commits after `without`) is coloured as the arch after `arch` is
    by_type.update(dict.fromkeys(("RELEASE", "COMMIT", "CONFIG_NAME"), "arch"))
    return {by_type.get(tok.type, "punct")}


def test_statement_forms_cover_the_grammar():
    """statement_forms.mmscn uses every rule, terminal and word of grammar/mmscn.lark."""
    p = _raw_parser()
    tree = p.parse(FORMS.read_text(encoding="utf-8") + "\n")
    seen_rules = {str(t.data) for t in tree.iter_subtrees()}
    tokens = list(tree.scan_values(lambda v: isinstance(v, Token)))
    wanted = set()
    for r in p.rules:
        name = str(r.origin.name)
        if r.alias:
            wanted.add(str(r.alias))
        elif not name.startswith("_") and not r.options.expand1:
            wanted.add(name)
    # true/false and kind words in a value lex as NAME (the parser gives them their
    # meaning afterwards), so Lark never builds these two aliases
    assert wanted - seen_rules <= {"bool_", "word"}, sorted(wanted - seen_rules)
    missing_words = keywords() - {t.value for t in tokens}
    assert not missing_words, f"statement_forms.mmscn lacks {sorted(missing_words)}"


def test_engine_agrees_with_parser(colours):
    """Every token of every example and statement form gets the group the parser implies."""
    engine, result = colours
    faceless = FACELESS.get(engine, set())
    bad = []
    for path in corpus():
        mode, rows = result[str(path)]
        lines = path.read_text(encoding="utf-8").split("\n")
        for tok in parsed_tokens(path):
            if tok.type == "_SEP":
                continue
            want = expected_groups(tok, lines[tok.line - 1])
            for i, ch in enumerate(tok.value):
                row = rows[tok.line - 1]
                col = tok.column - 1 + i
                got = row[col] if col < len(row) else None
                if ch.isspace() or got in want or (got is None and want <= faceless):
                    continue
                bad.append(f"{path.name}:{tok.line}:{col + 1}: {tok.value!r} is "
                           f"{got}, the parser implies {'/'.join(sorted(want))}")
                break
    assert not bad, f"{engine}: {len(bad)} tokens disagree:\n" + "\n".join(bad[:25])


def test_every_keyword_is_a_language_word(colours):
    """Every word of mmscn.grammar.keywords() is coloured as a word of the language."""
    engine, result = colours
    classes: dict = {w: set() for w in keywords()}
    for path in corpus():
        _, rows = result[str(path)]
        for tok in parsed_tokens(path):
            if tok.value in classes:
                classes[tok.value].add(rows[tok.line - 1][tok.column - 1])
    never = sorted(w for w, gs in classes.items() if not gs & LANG)
    elsewhere = sorted(f"{w}: {gs - LANG}" for w, gs in classes.items() if gs - LANG)
    assert not never, f"{engine} never colours these as words of the language: {never}"
    assert not elsewhere, f"{engine} colours grammar words as something else: {elsewhere}"


def test_contextual_words(colours, contexts_file):
    """A word shared by several groups is told apart by where it stands."""
    engine, result = colours
    _, rows = result[str(contexts_file)]
    bad = []
    for i, (line, word, nth, group) in enumerate(CONTEXTS):
        starts = [m.start() for m in re.finditer(r"(?<![\w@])" + re.escape(word) + r"(?!\w)", line)]
        col = starts[nth]
        got = {rows[i][c] for c in range(col, col + len(word))}
        if got != {group}:
            bad.append(f"{line!r}: {word!r} is {sorted(map(str, got))}, want {group}")
    assert not bad, f"{engine}:\n" + "\n".join(bad)


def test_files_open_in_the_mmscn_mode(colours):
    """Opening a .mmscn file selects the language (ftdetect, auto-mode-alist, package.json)."""
    engine, result = colours
    want = {"pygments": "mmscn", "vim": "mmscn", "emacs": "mmscn-mode", "vscode": "source.mmscn"}
    modes = {result[str(p)][0] for p in corpus()}
    assert modes == {want[engine]}


# ---- the generator keeps the editor files in step with the grammar -----------

def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_editors", ROOT / "tools" / "gen_editors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_editor_files_are_generated_from_the_grammar():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_editors.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_generator_check_sees_a_new_word(monkeypatch):
    """A word added to the grammar makes every generated file differ."""
    gen = _load_generator()
    groups = {k: tuple(v) for k, v in gen.word_groups().items()}
    groups["statement"] += ("migrate_mm",)
    monkeypatch.setattr(gen, "word_groups", lambda: groups)
    rendered = gen.render()
    assert set(rendered) == {gen.VIM, gen.EMACS, gen.VSCODE}
    for path, text in rendered.items():
        assert "migrate_mm" in text
        assert path.read_text(encoding="utf-8") != text
    assert gen.main(["--check"]) == 1   # and --check reports it


# ---- `mmscn check` messages reach each editor's error list -------------------

BAD = "cpus 2\nspawn A\nschedule cpu0\nexit 12\nexit B\n"


@pytest.fixture(scope="module")
def check_output_sample(tmp_path_factory):
    """Real `mmscn check` output for a file with three located errors."""
    d = tmp_path_factory.mktemp("check")
    (d / "bad.mmscn").write_text(BAD)
    exe = Path(sys.executable).parent / "mmscn"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]
    r = subprocess.run(cmd + ["check", "bad.mmscn"], cwd=d, capture_output=True, text=True,
                       env={**os.environ, "NO_COLOR": "1"})
    assert r.returncode == 2
    text = r.stdout + r.stderr
    located = re.findall(r"^bad\.mmscn:(\d+):(\d+): error: (.*)$", text, re.M)
    assert len(located) >= 2, text
    return d, text, [(int(a), int(b), m) for a, b, m in located]


def _env_with_mmscn():
    """The environment with the `mmscn` of this Python first on PATH, as the editors find it."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_vim_make_fills_the_quickfix_list(check_output_sample, tmp_path):
    """`:make` in a .mmscn buffer runs `mmscn check` and 'errorformat' reads every error."""
    d, text, located = check_output_sample
    res = tmp_path / "qf.json"
    check_output(vim_cmd(
        "-c", "set rtp^=" + str(VIM_RTP).replace(" ", r"\ "), "-c", "filetype plugin on",
        "-c", "edit bad.mmscn",
        "-c", f"call writefile([&filetype, &makeprg, &commentstring], {json.dumps(str(tmp_path / 'set.txt'))})",
        "-c", "silent make!",
        "-c", "call writefile([json_encode(map(getqflist(), "
              "{_, e -> [bufname(e.bufnr), e.lnum, e.col, e.type, e.text, e.valid]}))], "
              f"{json.dumps(str(res))})",
        "-c", "qall!"), cwd=d, env=_env_with_mmscn())
    ft, makeprg, commentstring = (tmp_path / "set.txt").read_text().splitlines()
    assert (ft, commentstring) == ("mmscn", "# %s")
    assert makeprg.startswith("mmscn check")
    entries = [e for e in json.loads(res.read_text()) if e[5]]
    assert [(e[0], e[1], e[2], e[3]) for e in entries] == [("bad.mmscn", l, c, "e") for l, c, _ in located]
    assert [e[4] for e in entries] == [m for *_, m in located]


def test_emacs_compile_reads_mmscn_check(check_output_sample):
    """`compile` from a .mmscn buffer runs `mmscn check`; every error becomes a located message."""
    d, text, located = check_output_sample
    elisp = """
(progn
  (require 'mmscn-mode)
  (with-current-buffer (find-file-noselect "bad.mmscn")
    (princ (format "%s\\n" compile-command))
    (let ((buf (compile compile-command)))
      (while (get-buffer-process buf) (accept-process-output nil 0.1))
      (with-current-buffer buf
        (compilation--ensure-parse (point-max))
        (goto-char (point-min))
        (while (not (eobp))
          (let ((msg (get-text-property (point) 'compilation-message)))
            (when msg
              (let ((loc (compilation--message->loc msg)))
                (princ (format "%s:%s:%s:%s\\n" (caar (compilation--loc->file-struct loc))
                               (compilation--loc->line loc) (compilation--loc->col loc)
                               (compilation--message->type msg))))))
          (forward-line 1))))))
"""
    out = check_output(emacs_cmd("--eval", elisp), cwd=d, env=_env_with_mmscn()).splitlines()
    assert out[0] == "mmscn check bad.mmscn"
    # type 2 is an error for `next-error'
    assert out[1:] == [f"bad.mmscn:{l}:{c}:2" for l, c, _ in located]


def test_emacs_mode_byte_compiles_without_warnings(tmp_path):
    elc = tmp_path / "mmscn-mode.elc"
    check_output(emacs_cmd("--eval", f"""
(progn
  (require 'bytecomp)
  (setq byte-compile-error-on-warn t)
  (let ((byte-compile-dest-file-function (lambda (_) {json.dumps(str(elc))})))
    (unless (byte-compile-file {json.dumps(str(EMACS_DIR / "mmscn-mode.el"))})
      (kill-emacs 1))))"""))
    assert elc.is_file()


def test_emacs_ert():
    """editors/emacs/mmscn-mode-tests.el: faces at chosen positions, comments, modes."""
    r = subprocess.run(emacs_cmd("-l", str(EMACS_DIR / "mmscn-mode-tests.el"),
                                 "-f", "ert-run-tests-batch-and-exit"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"Ran \d+ tests?, \d+ results? as expected, 0 unexpected", r.stdout + r.stderr)


def test_vscode_tmgrammar_test():
    """editors/vscode/tests/*.test.mmscn: scopes asserted with vscode-tmgrammar-test."""
    node_tool("vscode-tmgrammar-test")
    tests = sorted((VSCODE / "tests").glob("*.test.mmscn"))
    assert tests
    # the grammar comes from package.json's contributes.grammars, as VS Code loads it
    r = subprocess.run(["node", str(VSCODE / "node_modules/vscode-tmgrammar-test/dist/unit.js"),
                        *[str(t.relative_to(VSCODE)) for t in tests]],
                       cwd=VSCODE, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("run successfuly") == len(tests), r.stdout


def test_vscode_problem_matcher_reads_mmscn_check(check_output_sample):
    """The problem matcher's regexp, run by node as VS Code runs it, on real output."""
    _, text, located = check_output_sample
    node_tool("vscode-tmgrammar-test")
    pkg = json.loads((VSCODE / "package.json").read_text())
    (matcher,) = pkg["contributes"]["problemMatchers"]
    pat = matcher["pattern"]
    js = """
const pat = JSON.parse(process.argv[1]);
const re = new RegExp(pat.regexp);
const out = [];
for (const line of require('fs').readFileSync(0, 'utf8').split('\\n')) {
  const m = re.exec(line);
  if (m) out.push([m[pat.file], +m[pat.line], +m[pat.column], m[pat.severity], m[pat.message]]);
}
console.log(JSON.stringify(out));
"""
    r = subprocess.run(["node", "-e", js, json.dumps(pat)], input=text, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [["bad.mmscn", l, c, "error", m] for l, c, m in located]


def test_vscode_package_contributes_the_language():
    pkg = json.loads((VSCODE / "package.json").read_text())
    (lang,) = pkg["contributes"]["languages"]
    (gram,) = pkg["contributes"]["grammars"]
    assert lang["id"] == gram["language"] == "mmscn"
    assert lang["extensions"] == [".mmscn"]
    assert (VSCODE / gram["path"]).is_file()
    tm = json.loads((VSCODE / gram["path"]).read_text())
    assert tm["scopeName"] == gram["scopeName"] == "source.mmscn"
    conf = json.loads((VSCODE / lang["configuration"]).read_text())
    assert conf["comments"] == {"lineComment": "#"}
    assert ["{", "}"] in conf["brackets"] and ["(", ")"] in conf["brackets"]
    assert "vscode-tmgrammar-test" in pkg["devDependencies"]
    lock = json.loads((VSCODE / "package-lock.json").read_text())
    assert "node_modules/vscode-tmgrammar-test" in lock["packages"]
