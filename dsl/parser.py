"""Parse .mmscn text into the typed AST of dsl/ast.py.

The syntax is grammar/mmscn.lark, parsed by Lark (LALR(1), contextual lexer)
with an inline transformer, so no intermediate parse tree is built.  Syntax
errors are turned into located diagnostics in the words of the language
("expected a task name after `schedule cpu0`"), and parsing resumes at the
next line so that one run reports several mistakes.
"""
from __future__ import annotations

import re
from operator import attrgetter
from typing import Optional

from lark import Lark, Token, Transformer
from lark.lexer import PatternRE
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from mmscn.grammar import GRAMMAR_FILE, statement_words, word_classes
from . import ast as A
from .diagnostics import Diagnostic, close_match, did_you_mean, locate, short as _short, source_lines
from .fields import expected_value, field_type
from .names import bounded_int, is_cpu_name
from .spellings import field_hint, statement_hint

MAX_ERRORS = 20
MAX_NESTING = 200


class ParseFailed(Exception):
    """The text has syntax errors; ``diagnostics`` says where and why."""

    def __init__(self, diagnostics):
        super().__init__(diagnostics[0].message if diagnostics else "parse failed")
        self.diagnostics = diagnostics


def _ref(tok: Token) -> A.Ref:
    return A.Ref(str(tok), tok.line, tok.column)


class _Build(Transformer):
    """Lark callbacks, one per rule: tokens in, AST nodes out."""

    def start(self, c):
        return [x for x in c if not isinstance(x, Token)]

    # ---- header
    def scenario(self, c):
        return A.Header("title", c[1][1:-1], c[0].line, c[0].column)

    def arch(self, c):
        return A.Header("arch", str(c[1]), c[1].line, c[1].column)

    def cpus(self, c):
        return A.Header("cpus", str(c[1]), c[1].line, c[1].column)

    def outcome(self, c):
        without = tuple(_ref(t) for t in c[2:] if isinstance(t, Token) and t.type == "COMMIT")
        return A.Header("outcome", str(c[1]), c[0].line, c[0].column, without)

    def kernel(self, c):
        return A.Header("kernel", str(c[1]), c[1].line, c[1].column)

    def revert(self, c):
        return A.Header("revert", str(c[1]), c[1].line, c[1].column)

    def config(self, c):
        return A.Header("config", str(c[1]), c[1].line, c[1].column)

    def granularity(self, c):
        return A.Header("granularity", str(c[1]), c[1].line, c[1].column)

    def interleave_item(self, c):
        if len(c) == 4:             # `ipi cpuN from cpuM`: the IPI cpuM queued on cpuN
            return ("ipi", _ref(c[1]), _ref(c[3]))
        return ("cpu" if len(c) == 1 else str(c[0]), _ref(c[-1]))

    def interleave(self, c):
        return A.Interleave(tuple(x for x in c[1:] if isinstance(x, tuple)), c[0].line, c[0].column)

    # ---- statements
    def mm_clause(self, c):
        return _ref(c[0])

    def spawn(self, c):
        return A.Spawn(c[0].line, c[0].column, _ref(c[1]), c[2])

    def spawn_thread(self, c):
        return A.SpawnThread(c[0].line, c[0].column, _ref(c[2]), _ref(c[4]))

    def spawn_kthread(self, c):
        return A.SpawnKthread(c[0].line, c[0].column, _ref(c[2]))

    def schedule(self, c):
        cpu = _ref(c[1]) if c[1] is not None else None
        task = None if c[2].type == "IDLE" else _ref(c[2])
        return A.Schedule(c[0].line, c[0].column, cpu, task)

    def exit(self, c):
        return A.Exit(c[0].line, c[0].column, _ref(c[1]))

    def exec(self, c):
        return A.Exec(c[0].line, c[0].column, _ref(c[1]), c[2])

    def use_mm(self, c):
        return A.UseMm(c[0].line, c[0].column, _ref(c[1]), _ref(c[2]))

    def unuse_mm(self, c):
        return A.UnuseMm(c[0].line, c[0].column, _ref(c[1]))

    def unlazy(self, c):
        return A.Unlazy(c[0].line, c[0].column, _ref(c[1]) if c[1] is not None else None)

    def mmref(self, c):
        return A.MmRef(c[0].line, c[0].column, str(c[0]), _ref(c[1]))

    def mmget_not_zero(self, c):
        return A.MmgetNotZero(c[0].line, c[0].column, _ref(c[1]))

    def offline(self, c):
        return A.Offline(c[0].line, c[0].column, _ref(c[1]) if c[1] is not None else None)

    def online(self, c):
        return A.Online(c[0].line, c[0].column, _ref(c[1]))

    def flush(self, c):
        return A.Flush(c[0].line, c[0].column, _ref(c[1]), c[2] is not None)

    def membarrier(self, c):
        return A.Membarrier(c[0].line, c[0].column, c[1] is not None, _ref(c[2]) if c[2] is not None else None)

    def tick(self, c):
        return A.Tick(c[0].line, c[0].column, _ref(c[1]) if c[1] is not None else None)

    def task_work_run(self, c):
        return A.TaskWorkRun(c[0].line, c[0].column, _ref(c[1]))

    def perf_sample(self, c):
        return A.PerfSample(c[0].line, c[0].column, _ref(c[1]) if c[1] is not None else None)

    def rollover(self, c):
        return A.Rollover(c[0].line, c[0].column, _ref(c[1]))

    def assert_(self, c):
        return A.Assert(c[0].line, c[0].column, c[1])

    def expect(self, c):
        return A.Expect(c[0].line, c[0].column, str(c[1]), c[2][1:-1] if c[2] is not None else None)

    # ---- blocks and final
    def cpu_block(self, c):
        return A.CpuBlock(_ref(c[0]), [s for s in c[1:] if isinstance(s, A.Stmt)], c[0].line, c[0].column)

    def interrupt_block(self, c):
        return A.InterruptBlock(_ref(c[1]), [s for s in c[2:] if isinstance(s, A.Stmt)], c[0].line, c[0].column)

    def final(self, c):
        return A.Final(str(c[1]), c[2], c[0].line, c[0].column)

    # ---- conditions
    def conds(self, c):
        return list(c)

    def or_(self, c):
        left, right = c
        parts = (left.parts if isinstance(left, A.Or) else [left]) + [right]
        return A.Or(parts, parts[0].line, parts[0].col)

    def and_(self, c):
        left, right = c
        parts = (left.parts if isinstance(left, A.And) else [left]) + [right]
        return A.And(parts, parts[0].line, parts[0].col)

    def not_(self, c):
        return A.Not(c[0], c[0].line, c[0].col)

    def comparison(self, c):
        f = c[0]
        return A.Cmp(f, str(c[1]), _value_of(c[2]), f.line, f.col)

    def is_test(self, c):
        owner, ref = c[0]
        return A.Is(owner, ref, c[1] is not None, str(c[2]), ref.line, ref.col)

    def cpu_ref(self, c):
        return ("cpu", _ref(c[0]))

    def mm_ref(self, c):
        return ("mm", _ref(c[0]))

    def task_ref(self, c):
        return ("task", _ref(c[0]))

    def cpu_field(self, c):
        return A.Field("cpu", _ref(c[0]), str(c[1]), c[0].line, c[0].column)

    def mm_field(self, c):
        return A.Field("mm", _ref(c[0]), str(c[1]), c[0].line, c[0].column)

    def task_field(self, c):
        return A.Field("task", _ref(c[0]), str(c[1]), c[0].line, c[0].column)

    def cost_field(self, c):
        return A.Field("cost", None, str(c[0]), c[0].line, c[0].column)

    def none(self, c):
        return A.Value("none", None, c[0].line, c[0].column)

    def int_(self, c):
        return A.Value("int", bounded_int(c[0]), c[0].line, c[0].column)

    def bool_(self, c):
        return A.Value("bool", c[0] == "true", c[0].line, c[0].column)

    def word(self, c):
        return A.Value("word", str(c[0]), c[0].line, c[0].column)

    def cpuset(self, c):
        cpus = tuple(_ref(t) for t in c if t is not None and t.type == "CPU")
        return A.Value("cpuset", cpus, c[0].line, c[0].column)


def _value_of(v):
    """Values share callbacks with subjects (cpu_ref, mm_ref, task_ref)."""
    if isinstance(v, tuple):
        kind, payload = v
        return A.Value(kind, payload.text, payload.line, payload.col)
    return v


_parser: Optional[Lark] = None


def lark_parser() -> Lark:
    """The one Lark parser, built from the grammar once (tables cached on disk)."""
    global _parser
    if _parser is None:
        _parser = Lark(GRAMMAR_FILE.read_text(encoding="utf-8"), parser="lalr",
                       lexer="contextual", transformer=_Build(), maybe_placeholders=True,
                       edit_terminals=_whole_words, cache=cache_file() or False)
    return _parser


# What ends a word: a keyword matches only when this follows it.
_WORD_END = "(?![A-Za-z0-9_])"
# how Lark compiles a terminal of words, `"pass" | "fail"`
_WORD_ALTERNATIVES = re.compile(r"\(\?:[a-z_]+(?:\|[a-z_]+)*\)")


def _whole_words(t) -> None:
    """Make every keyword terminal of the grammar match whole words only.

    A string terminal like "spawn" matches the start of `spawnB`; Lark retypes
    a NAME that equals a keyword only where a NAME may stand, so at the start
    of a statement `spawnB` ran as `spawn B`.  Bounded, `spawnB` is one word
    that no statement begins with.  The bounded keywords outrank NAME, as the
    retyping did, so `schedule cpu0 idle` and `A.state == dead` read the word.
    """
    p = t.pattern
    if p.type == "str" and re.fullmatch(r"[a-z_]+", p.value) or \
            p.type == "re" and _WORD_ALTERNATIVES.fullmatch(p.value):
        t.pattern = PatternRE(p.value + _WORD_END, p.flags)
        t.priority = 1


def _keyword_of(pattern) -> Optional[str]:
    """The one word a keyword terminal matches (`of` for OF), or None."""
    body = pattern.value.removesuffix(_WORD_END)
    if pattern.type == "str" or body != pattern.value and re.fullmatch(r"[a-z_]+", body):
        return body
    return None


def cache_file() -> Optional[str]:
    """The file Lark keeps the parse tables in, or None to build them each time.

    Lark unpickles that file at start-up, so it must be one nobody else can
    have written (Lark's own ``cache=True`` uses $TMPDIR under a predictable
    name): it lives in the user's cache folder, which must be a directory
    owned by this user that no one else may write (made 0700), and must be a
    regular file owned by this user, not a symlink.  Building instead costs
    about 50 ms.  The name carries a digest of this module, which holds the
    Lark options (Lark's own check covers the grammar and the versions only).
    """
    import hashlib
    import os
    import stat
    from platformdirs import user_cache_dir
    try:
        uid = os.getuid()
        folder = user_cache_dir("mmscn")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o022:
            return None
        with open(__file__, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:16]
        path = os.path.join(folder, f"grammar-{digest}.lark")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path       # Lark writes it
        return path if stat.S_ISREG(st.st_mode) and st.st_uid == uid else None
    except (OSError, AttributeError):    # no home folder, or no os.getuid (not POSIX)
        return None


# ---- error messages in the language's words -------------------------------

def _describe_expected(names, before: str, arch_names) -> str:
    """Turn a set of Lark terminal names into a phrase a kernel developer reads;
    ``arch_names``: the architectures the caller knows (None: not listed)."""
    words = word_classes()
    lp = lark_parser()
    terms = {t.name: t for t in lp.terminals}
    first = before.split()[0] if before.split() else ""
    phrases: list = []

    def add(p):
        if p not in phrases:
            phrases.append(p)

    statement_start = {"SPAWN", "SCHEDULE", "EXIT", "ASSERT"} <= set(names)
    if statement_start:
        add("a statement (spawn, schedule, exit, exec, use_mm, assert, ...)")
    for n in sorted(names, key=_order):
        if statement_start and n not in ("_SEP", "RBRACE", "CPU", "$END"):
            continue
        if n == "NAME":
            if first == "spawn" and before.endswith(" of"):
                add("the task whose mm the thread shares")
            elif first == "spawn":
                add("a name for the new task")
            else:
                add("a task name")
        elif n == "ARCH_NAME":
            add("an architecture" + ("" if arch_names is None else f" ({', '.join(arch_names)})"))
        elif n == "RELEASE":
            add("a kernel release like v5.8")
        elif n == "COMMIT":
            add("a commit id (12 or more hex digits, like 38cf307c1f20)")
        elif n == "CONFIG_NAME":
            add("a kernel option like PREEMPT_RT")
        elif n == "MM":
            add("an mm name like @A")
        elif n == "CPU":
            if statement_start:
                add("a per-CPU block like `cpu0 {`")
            else:
                add("a CPU like cpu0")
        elif n == "IDLE":
            add("`idle`")
        elif n == "INT":
            add("a number")
        elif n == "STRING":
            add('a quoted string like "..."')
        elif n in ("_SEP", "$END"):
            add("the end of the statement")
        elif n == "CMP":
            add("a comparison (==, !=, <, <=, >, >=)")
        elif n == "STATE_WORD":
            add("a state (" + ", ".join(words["STATE_WORD"]) + ")")
        elif n in ("CPU_FIELD", "MM_FIELD", "TASK_FIELD", "COST_FIELD"):
            kind = {"CPU_FIELD": "a CPU field", "MM_FIELD": "an mm field",
                    "TASK_FIELD": "a task field", "COST_FIELD": "a cost counter"}[n]
            add(f"{kind} ({', '.join(words[n])})")
        elif n in words:
            ws = words[n]
            add(" or ".join(f"`{w}`" for w in ws) if len(ws) <= 3 else "one of " + ", ".join(ws))
        elif n in terms:
            word = _keyword_of(terms[n].pattern)
            add(f"`{word}`" if word is not None else n.lower())
        else:
            add(n.lower())
    if len(phrases) > 1:
        return ", ".join(phrases[:-1]) + " or " + phrases[-1]
    return phrases[0] if phrases else "something else"


def _order(name: str):
    pri = ["NAME", "MM", "CPU", "IDLE", "INT", "STRING"]
    return (pri.index(name) if name in pri else len(pri), name in ("_SEP", "$END"), name)


def _statement_prefix(line_text: str, col: int) -> str:
    """The words of the current statement before column ``col`` (1-based)."""
    head = line_text[: max(0, col - 1)]
    head = head.split("#", 1)[0]
    for sep in (";", "{"):
        if sep in head:
            head = head.rsplit(sep, 1)[1]
    return " ".join(head.split())


def _found(e, line_text: str) -> str:
    if isinstance(e, UnexpectedEOF):
        return "the end of the file"
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            return "the end of the file"
        if tok.type == "_SEP":
            return "the end of the line" if tok.startswith("\n") else "`;`"
        text = str(tok)
    else:
        text = line_text[e.column - 1:].split()[0] if line_text[e.column - 1:].split() else line_text[e.column - 1:e.column]
    if len(text) > 40:
        text = text[:37] + "..."
    return f"`{text}`"


_CMP_BEFORE = re.compile(r"(\S+)\.(\w+)\s*(==|!=|<=|>=|<|>)$")


def _value_expected(before: str):
    """After `FIELD OP` only the field's kind of value makes sense: say which."""
    m = _CMP_BEFORE.search(before)
    if not m:
        return None
    obj, name = m.group(1).split()[-1], m.group(2)
    owner = "cost" if obj == "cost" else "mm" if obj.startswith("@") else "cpu" if is_cpu_name(obj) else "task"
    typ = field_type(owner, name)
    return None if typ is None else expected_value(typ)


def _syntax_message(e: UnexpectedInput, line_text: str, in_block: bool, arch_names) -> str:
    if isinstance(e, UnexpectedCharacters):
        ch = line_text[e.column - 1:e.column] if e.column - 1 < len(line_text) else ""
        expected = set(e.allowed or ())
        before = _statement_prefix(line_text, e.column)
        if ch and not ch.isprintable():
            return f"unexpected character {ch!r} (U+{ord(ch):04X}); .mmscn files are plain text"
        if ch and not ch.isascii():
            return (f"unexpected character `{ch}` (U+{ord(ch):04X}): names and words in .mmscn are "
                    f"ASCII letters, digits and `_`")
        if ch == '"' and "STRING" in expected:
            return "a string must end on the same line with a closing `\"`"
        found = _found(e, line_text)
    else:
        expected = set(e.expected) if isinstance(e, UnexpectedEOF) else set(e.accepts or e.expected)
        before = _statement_prefix(line_text, e.column if e.column and e.column > 0 else len(line_text) + 1)
        found = _found(e, line_text)
        tok = getattr(e, "token", None)
        if tok is not None and tok.type == "RBRACE" and "RBRACE" not in expected:
            return "`}` closes no per-CPU block: there is no open `cpuN {` before it"
        if tok is not None and tok.type == "CPU" and "RBRACE" in expected \
                and line_text[tok.end_column - 1:].lstrip().startswith("{"):
            return f"per-CPU blocks do not nest: close the open block with `}}` before `{tok} {{`"
        if tok is not None and str(tok) == "." and re.search(r"(==|!=|<=|>=|<|>)\s*\S+$", before):
            return ("a comparison has a field on the left and a value on the right: "
                    "fields are not compared with fields")
    word = re.match(r"[A-Za-z_][A-Za-z0-9_]*", line_text[e.column - 1:]) if e.column and e.column > 0 else None
    if word and not before and "SPAWN" in expected:
        if line_text[e.column - 1 + word.end():].startswith("."):
            return f"a condition needs `assert` before it: `assert {_short(line_text.strip(), 60)}`"
        name = word.group()
        args = re.split(r"[;#]", line_text[e.column - 1 + word.end():], maxsplit=1)[0].strip()
        kernel = statement_hint(name, _short(args, 40))
        if kernel:
            return f"unknown statement `{_short(name)}`: {kernel}"
        words = [w for w in statement_words() if w not in ("scenario", "arch", "cpus", "final", "kernel", "revert", "config",
                                                        "granularity", "interleave")]
        # `Cpus 2`: the header words are statement words too, and words are lower case
        close = name.lower() if name.lower() in statement_words() else close_match(name, statement_words())
        hint = f" (did you mean `{close}`?)" if close else ""
        return f"unknown statement `{_short(name)}`{hint}; statements are {', '.join(words)}"
    if not in_block:
        expected.discard("RBRACE")   # the LALR state after a statement is shared with block bodies
    exp = _value_expected(before) or _describe_expected(expected, before, arch_names)
    if len(before) > 60:
        before = "..." + before[-57:]
    where = f" after `{before}`" if before else ""
    message = f"expected {exp}{where}, found {found}"
    fields = [n for n in expected if n.endswith("_FIELD")]
    if word and len(fields) == 1:
        hint = field_hint(fields[0], word.group())
        message += f"; {hint}" if hint else did_you_mean(word.group(), word_classes()[fields[0]])
    return message


def _open_braces(text: str, line: int, col: int) -> list:
    """(line, col) of every `{` still open at (line, col), outside comments and strings."""
    stack = []
    for ln, s in enumerate(source_lines(text)[:line], 1):
        if ln == line:
            s = s[:max(0, col - 1)]
        s = re.sub(r'"[^"]*"?', lambda m: " " * len(m.group()), s.split("#", 1)[0])
        for i, ch in enumerate(s):
            if ch == "{":
                stack.append((ln, i + 1))
            elif ch == "}" and stack:
                stack.pop()
    return stack


# ---- entry points ------------------------------------------------------------

def decode_source(data: bytes, path: str) -> str:
    """Bytes to text, or ParseFailed saying in words why the file is not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            whole = data.decode("utf-16", "replace")
            raise ParseFailed([_at(path, whole, len(data[:exc.start].decode("utf-16", "replace")),
                                   "the file starts like UTF-16 but does not decode; save it as UTF-8")])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", "replace")
        # the column counts characters, not bytes
        raise ParseFailed([_at(path, text, len(data[:exc.start].decode("utf-8", "replace")),
                               f"this is not UTF-8 text (byte 0x{data[exc.start]:02x}); is it a binary file?")])
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")   # classic Mac line ends: same columns, one line per line
    nul = text.find("\x00")
    if nul < 0:
        return text
    head = data[:200]
    if len(head) >= 2 and (head[0::2].count(0) > len(head) // 4 or head[1::2].count(0) > len(head) // 4):
        # ASCII saved as UTF-16 without a byte-order mark: every other byte is NUL
        raise ParseFailed([_at(path, text, nul, "this looks like UTF-16 text without a byte-order mark; "
                                                "save it as UTF-8")])
    raise ParseFailed([_at(path, text, nul, "NUL byte in the file; is it a binary file?")])


def _at(path: str, text: str, offset: int, message: str) -> Diagnostic:
    line, col, src = locate(text, offset)
    return Diagnostic(path, line, col, message, source_line=src)


def parse_items(text: str, path: str = "<input>", arch_names=None):
    """Parse text into a list of top-level items (statements, blocks, `final`, A.Header).

    Raises ParseFailed with up to MAX_ERRORS diagnostics.  Recovery: the line
    that failed is blanked (keeping every position) and the parse restarts.
    ``arch_names``: the known architectures, which a message after `arch` lists.
    """
    work = text if text.endswith("\n") else text + "\n"
    if work.count("\n", 0, 20000) >= FAST_PATH_LINES:
        items = _parse_by_shapes(work)
        if items is not None:
            return items
    lines = source_lines(text)
    errors: list = []
    blanked: set = set()      # lines blanked once, their braces kept
    stripped: set = set()     # lines blanked with their braces too
    dropped_opens = 0         # `{` the recovery removed: the `}` that closed it now closes nothing
    while True:
        try:
            items = lark_parser().parse(work)
        except UnexpectedInput as e:
            tok = getattr(e, "token", None)
            if isinstance(e, UnexpectedEOF) or (tok is not None and tok.type == "$END"):
                errors.append(_unclosed_block(work, lines, path))
                break
            line = e.line if isinstance(e.line, int) and e.line > 0 else len(lines)
            line_text = lines[line - 1] if 0 < line <= len(lines) else ""
            col = e.column if isinstance(e.column, int) and e.column > 0 else len(line_text) + 1
            if tok is not None and tok.type == "_SEP" and tok.startswith("\n"):
                col = len(line_text.rstrip("\r")) + 1
            wl = source_lines(work)
            if not 0 < line <= len(wl) or line in stripped:
                break
            if line in blanked or (tok is not None and tok.type == "RBRACE" and dropped_opens > 0):
                # an error the recovery itself made, not another mistake of the user's
                dropped_opens += wl[line - 1].count("{") - wl[line - 1].count("}")
                dropped_opens = max(0, dropped_opens)
                stripped.add(line)
                wl[line - 1] = ""
                work = "\n".join(wl)
                continue
            in_block = bool(_open_braces(work, line, col))
            errors.append(Diagnostic(path, line, col, _syntax_message(e, line_text, in_block, arch_names),
                                     source_line=line_text))
            if len(errors) >= MAX_ERRORS:
                break
            blanked.add(line)
            # keep braces so that a block's shape survives the blanking
            wl[line - 1] = "".join(ch for ch in wl[line - 1] if ch in "{}")
            work = "\n".join(wl)
            continue
        except RecursionError:
            errors.append(Diagnostic(path, 1, 1, "the file nests too deeply to read"))
            break
        if errors:
            break
        return items if isinstance(items, list) else list(items.children)
    raise ParseFailed(_dedupe(errors))


def _unclosed_block(work: str, lines: list, path: str) -> Diagnostic:
    """The end of the file came inside a per-CPU block: point at the block."""
    opened = _open_braces(work, len(lines) + 1, 1)
    if not opened:
        n = len(lines)
        return Diagnostic(path, n, 1, "unexpected end of the file", source_line=lines[n - 1] if lines else "")
    bl = opened[0][0]
    src = lines[bl - 1]
    m = re.search(r"cpu[0-9]+\s*\{", src)
    col = m.start() + 1 if m else (src.find("{") + 1 or 1)
    return Diagnostic(path, bl, col, "this per-CPU block is never closed: expected `}` before the end of the file",
                      source_line=src)


FAST_PATH_LINES = 300
_shape_parser = None


def _parse_by_shapes(work: str):
    """The items of an error-free text via dsl/shapes.py, or None to take the plain path."""
    global _shape_parser
    from .shapes import NotSimple, ShapeParser
    if _shape_parser is None:
        _shape_parser = ShapeParser(lark_parser())
    try:
        fast, rest = _shape_parser.items(work)
        slow = lark_parser().parse(rest)
    except (UnexpectedInput, NotSimple, RecursionError):
        return None
    if not fast:
        return slow
    if not slow:
        return fast
    return sorted(slow + fast, key=attrgetter("line"))


def _dedupe(errors):
    seen, out = set(), []
    for d in errors:
        key = (d.line, d.col)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
