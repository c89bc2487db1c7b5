"""The editor features, from an analysis Result to lsprotocol values.

Positions in here are 1-based lines and columns in characters, as the parser
gives them; ``conv`` (server.Positions) turns them into the client's units.
Every text a user reads is worded like `mmscn run` prints it: a statement's
hover is its trace lines (report.format_event), a state is shown with the
fields of the language.
"""
from __future__ import annotations

import re
from typing import Optional

from lsprotocol import types as T
from pygments.token import Comment, Keyword, Name, Number, Operator, String

from mmscn.dsl import ast as A
from mmscn.dsl.lexer import MmscnLexer
from mmscn.dsl.names import cpu_number
from mmscn.grammar import keywords
from mmscn.interpreter.report import format_event, hardware_text, statement_text, status_mark
from mmscn.interpreter.conditions import field_value, show_value

from .analysis import Result, block_ranges, fields_in, first_difference, statement_span

SEVERITY = {"error": T.DiagnosticSeverity.Error, "violation": T.DiagnosticSeverity.Error,
            "failure": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
            "info": T.DiagnosticSeverity.Information, "note": T.DiagnosticSeverity.Information}


def _plain(code, s):
    return s


# ---- diagnostics -------------------------------------------------------------

def diagnostics(problems, uri: str, conv) -> list:
    out = []
    for p in problems:
        rng = conv.range(p.line, p.col, p.end)
        related = []
        if p.function:
            related.append(T.DiagnosticRelatedInformation(T.Location(uri, rng), f"the rule is in {p.function}"))
        for line, col, end, message in p.related:
            related.append(T.DiagnosticRelatedInformation(T.Location(uri, conv.range(line, col, end)), message))
        out.append(T.Diagnostic(rng, p.message, severity=SEVERITY.get(p.severity, T.DiagnosticSeverity.Error),
                                code=p.code, source="mmscn", related_information=related or None,
                                data={"fix": p.fix} if p.fix else None))
    return out


def code_actions(res: Result, uri: str, rng: T.Range, conv) -> list:
    """The "did you mean" fixes of the problems on the requested lines."""
    out = []
    first, last = rng.start.line + 1, rng.end.line + 1
    for p in res.problems:
        if p.fix is None or not first <= p.line <= last:
            continue
        r = conv.range(p.line, p.col, p.end)
        wrong = res.lines[p.line - 1][p.col - 1:p.end - 1]
        out.append(T.CodeAction(
            f"Replace `{wrong}` with `{p.fix}`", kind=T.CodeActionKind.QuickFix,
            diagnostics=diagnostics([p], uri, conv), is_preferred=True,
            edit=T.WorkspaceEdit(changes={uri: [T.TextEdit(r, p.fix)]})))
    return out


# ---- the state at a line -------------------------------------------------------

def usable(res: Result, line: int) -> Optional[Result]:
    """The result that describes ``line``: this one, or, while the text does not resolve,
    the last one that did, for the lines before the first change since."""
    if res.fresh:
        return res
    prev = res.previous
    if prev is None:
        return None
    n = first_difference(prev.lines, res.lines)
    return prev if n is None or line < n else None


def _call_for(res: Result, line: int, col: int) -> int:
    """The call whose state after it is "after this line": the statement there, or the
    last one before it; on `final` and in the blocks' region without a statement, the end."""
    run = res.run
    c = run.call_at(line, col)
    if c is not None:
        return c
    sc = res.scenario
    if sc is not None and sc.blocks and line >= sc.blocks[0].line:
        return len(run.calls) - 1
    return run.last_call_before(line + 1)


def _where(res: Result, call: int) -> str:
    run = res.run
    if call < 0:
        return "at boot"
    st, cpu = run.calls[call]
    return f"after line {st.line}" + (f" (cpu{cpu}'s block, in the round-robin run)" if cpu is not None else "")


def _stopped_note(res: Result, line: int) -> str:
    stop = res.run.stop_line()
    if stop is not None and line > stop:
        return f"\n\nThe run stopped at line {stop}: this line did not run; the state is the one at the stop."
    return ""


def task_text(k, policy, name: str) -> Optional[str]:
    t = k.task_ix.get(name)
    if t is None:
        return None
    where = f" on cpu{k.t_cpu[t]}" if k.t_cpu[t] is not None else ""
    return (f"{k.t_state[t]}{where}, kind {k.t_kind[t]}; mm {k.mm_label(k.t_mm[t])}, "
            f"active_mm {k.mm_label(k.t_active[t])}")


def mm_text(k, policy, name: str) -> Optional[str]:
    m = k.mm_ix.get(name)
    if m is None:
        return None
    out = f"users {k.m_users[m]}, count {k.m_count[m]}, {k.mm_state(m)}"
    mask = policy.cpumask(k, m)
    if mask is not None:
        out += "; mm_cpumask {" + ", ".join(f"cpu{i}" for i in range(k.ncpus) if mask >> i & 1) + "}"
    own = [k.t_name[t] for t in range(len(k.t_name)) if k.t_mm[t] == m and k.t_state[t] != "dead"]
    lazy = [f"{k.t_name[t]}" + (f" (cpu{k.t_cpu[t]})" if k.t_cpu[t] is not None else "")
            for t in range(len(k.t_name)) if k.t_active[t] == m and k.t_mm[t] != m]
    if own:
        out += "\n\nmm of: " + ", ".join(own)
    if lazy:
        out += "\n\nborrowed as active_mm by: " + ", ".join(lazy)
    return out


def cpu_text(k, policy, name: str) -> Optional[str]:
    c = cpu_number(name)
    if c >= k.ncpus:
        return None
    if not k.c_online[c]:
        return "offline"
    t = k.c_curr[c]
    out = (f"curr {k.t_name[t]}, active_mm {k.mm_label(k.t_active[t])}"
           f"{', lazy' if policy.is_lazy(k, c) else ''}, online")
    if "loaded_mm" in policy.hardware_fields:
        out += f"; loaded_mm {k.mm_label(policy.loaded_mm(k, c))}"
    return out


def hover(res: Result, line: int, col: int) -> Optional[str]:
    """Markdown: a name's state after the line, a field's value, or what a statement did."""
    res = usable(res, line)
    if res is None or res.run is None:
        return None
    run = res.run
    policy = run.runner.policy
    o = res.occurrence_at(line, col)
    field = _field_at(res, line, col)
    if field is not None:
        cmp_, owner = field
        call = _call_for(res, owner.line, owner.col)
        k = run.kernel_after(call)
        f = cmp_.field
        label = f"cost.{f.name}" if f.owner == "cost" else f"{f.obj.text}.{f.name}"
        try:
            value = show_value(k, f, field_value(k, policy, f))
        except Exception as e:     # a field the policy cannot read (cpumask under generic)
            value = f"cannot be read: {getattr(e, 'message', e)}"
        return f"**{label}** = `{value}` ({_where(res, call)})" + _stopped_note(res, line)
    if o is not None:
        call = _call_for(res, line, col)
        k = run.kernel_after(call)
        fn = {"task": task_text, "mm": mm_text, "cpu": cpu_text}[o.kind]
        text = fn(k, policy, o.name)
        sym = res.symbols.get((o.kind, o.name))
        head = f"**{o.name}**"
        if sym is not None and sym.detail:
            head += f": {sym.detail}" + (f", made at line {sym.line}" if sym.line else "")
        if text is None:
            text = "does not exist yet" if o.kind != "cpu" else "no such CPU"
        return f"{head}\n\n{_where(res, call)}: {text}" + _stopped_note(res, line)
    c = run.call_at(line, col)
    if c is None:
        return None
    st = run.calls[c][0]
    if isinstance(st, A.Expect):
        what = "be refused" if st.kind == "error" else "break an invariant"
        return f"`expect {st.kind}`: the next statement must {what}" + (f" (with \"{st.text}\")" if st.text else "")
    step = run.step_of(c)
    if step is None:
        return None
    return "```text\n" + "\n".join(trace_lines(step, res.lines)) + "\n```"


def trace_lines(step, lines: list) -> list:
    """A step as `mmscn run` traces it (report.write_text): the statement, its events, the hardware."""
    where = f"cpu{step.cpu}: " if step.cpu is not None else ""
    out = [f"{step.stmt.line:5d}  {where}{statement_text(lines, step.stmt)}{status_mark(step, _plain)}"]
    out += ["         " + format_event(ev) for ev in step.events]
    if step.hw is not None and hardware_text(step.hw):
        out.append("         hw: " + hardware_text(step.hw))
    if step.message:
        out.append("         " + step.message)
    return out


def _field_at(res: Result, line: int, col: int):
    """(Cmp, the assertion or final) when (line, col) is on a field's `.name` or a cost field."""
    for cmp_, owner in _fields(res):
        f = cmp_.field
        if f.line != line:
            continue
        start = f.col if f.obj is None else f.col + len(f.obj.text)
        end = f.col + (len("cost") if f.obj is None else len(f.obj.text)) + 1 + len(f.name)
        if start <= col < end:
            return cmp_, owner
    return None


def _fields(res: Result) -> list:
    cached = getattr(res, "_fields", None)
    if cached is None:
        cached = res._fields = fields_in(res.scenario)
    return cached


# ---- inlay hints ---------------------------------------------------------------

def counter_changes(step) -> str:
    """`@A count 1 -> 2, users 2 -> 1`: each counter from its first old to its last new value."""
    seen = {}
    for ev in step.events:
        if ev[0] == "ref":
            _, mm, _, counter, old, new = ev
            first = seen.get((mm, counter), (old, new))[0]
            seen[(mm, counter)] = (first, new)
    parts, last_mm = [], None
    for (mm, counter), (old, new) in seen.items():
        if old == new:
            continue
        parts.append(f"{mm + ' ' if mm != last_mm else ''}{counter} {old} -> {new}")
        last_mm = mm
    return ", ".join(parts)


def inlay_hints(res: Result, first: int, last: int, conv) -> list:
    if not res.fresh or res.run is None:
        return []
    out = []
    for step in res.run.result.steps:
        st = step.stmt
        if not first <= st.line <= last:
            continue
        label = counter_changes(step)
        if not label:
            continue
        _, end = statement_span(res.lines, st.line, st.col)
        out.append(T.InlayHint(conv.pos(st.line, end), label, padding_left=True))
    return out


# ---- names -------------------------------------------------------------------

def _name_at(res: Result, line: int, col: int):
    """(kind, name, occurrence) at a position; `spawn A` also stands for A's implicit mm."""
    o = res.occurrence_at(line, col)
    if o is None:
        return None
    return o.kind, o.name, o


def definition(res: Result, line: int, col: int):
    """(line, col, end) of the spawn or exec that makes the name (the header's `cpus` for a CPU)."""
    res = usable(res, line)
    hit = res and _name_at(res, line, col)
    if not hit:
        return None
    kind, name, _ = hit
    if kind == "cpu":
        sc = res.scenario
        ref = sc.ncpus_ref if sc is not None else None
        return (ref.line, ref.col, ref.col + len(ref.text)) if ref is not None else None
    sym = res.symbols.get((kind, name))
    if sym is None or not sym.line:
        return None
    return sym.line, sym.col, sym.end


def references(res: Result, line: int, col: int, declaration: bool) -> list:
    res = usable(res, line)
    hit = res and _name_at(res, line, col)
    if not hit:
        return []
    kind, name, _ = hit
    out = [(o.line, o.col, o.end) for o in res.occurrences_of(kind, name) if declaration or not o.definition]
    sym = res.symbols.get((kind, name))
    if declaration and sym is not None and sym.implicit_of and sym.line:
        out.append((sym.line, sym.col, sym.end))    # `spawn A` makes @A without writing it
    return sorted(set(out))


def prepare_rename(res: Result, line: int, col: int):
    if not res.fresh:
        return None
    hit = _name_at(res, line, col)
    if not hit or hit[0] == "cpu":
        return None
    kind, name, o = hit
    sym = res.symbols.get((kind, name))
    if sym is None or not sym.line:
        return None      # idle tasks and init_mm exist from boot
    return o.line, o.col, o.end


_TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RenameRefused(ValueError):
    pass


def rename(res: Result, line: int, col: int, new: str) -> list:
    """[(line, col, end, text)] that rename the task or mm at the position everywhere, or
    RenameRefused saying why.  A task's implicit mms (@A, @A.2 of `spawn A`, `exec A`)
    follow it; an implicit mm renamed alone gets its name written (`spawn A mm @X`)."""
    if prepare_rename(res, line, col) is None:
        raise RenameRefused("only a task or mm the scenario makes can be renamed")
    kind, name, _ = _name_at(res, line, col)
    new = new.strip()
    if kind == "mm" and not new.startswith("@"):
        new = "@" + new
    bare = new[1:] if kind == "mm" else new
    if not _TASK_NAME.fullmatch(bare):
        raise RenameRefused(f"`{new}` is not a name: letters, digits and `_`, not starting with a digit")
    if kind == "task" and (new in keywords() or re.fullmatch(r"cpu[0-9]+|idle[0-9]+", new)):
        raise RenameRefused(f"`{new}` is a word of the language or names a CPU's idle task")
    if (kind, new) in res.symbols:
        raise RenameRefused(f"a {kind} named `{new}` already exists")
    edits = [(o.line, o.col, o.end, new) for o in res.occurrences_of(kind, name)]
    sym = res.symbols[(kind, name)]
    if kind == "task":
        for (k2, n2), s in res.symbols.items():
            if k2 == "mm" and s.implicit_of == name:
                renamed = "@" + new + n2[len(name) + 1:]
                if ("mm", renamed) in res.symbols:
                    raise RenameRefused(f"{name}'s mm {n2} would become {renamed}, which exists")
                edits += [(o.line, o.col, o.end, renamed) for o in res.occurrences_of("mm", n2)]
    elif sym.implicit_of:
        edits.append((sym.line, sym.end, sym.end, f" mm {new}"))
    _check_rename(res, edits, kind, name, new)
    return sorted(edits)


def _check_rename(res: Result, edits: list, kind: str, old: str, new: str) -> None:
    """The renamed text must still resolve (a fresh_mm_name suffix may shift, a name collide)."""
    from mmscn.dsl.parser import ParseFailed
    from mmscn.dsl.resolve import load
    lines = list(res.lines)
    for line, col, end, text in sorted(edits, reverse=True):
        s = lines[line - 1]
        lines[line - 1] = s[:col - 1] + text + s[end - 1:]
    try:
        load("\n".join(lines), res.scenario.path)
    except ParseFailed as e:
        raise RenameRefused(f"renaming {old} to {new} breaks the scenario: line {e.diagnostics[0].line}: "
                            f"{e.diagnostics[0].message}")


# ---- symbols -----------------------------------------------------------------

def document_symbols(res: Result, conv) -> list:
    res = res if res.fresh else res.previous
    if res is None or res.scenario is None:
        return []
    sc, lines = res.scenario, res.lines
    K = T.SymbolKind

    def sym(name, kind, line, col, end, detail=None, sel=None, children=None, last_line=None):
        last_line = last_line or line
        rng = T.Range(conv.pos(line, 1), conv.pos(last_line, len(lines[last_line - 1]) + 1))
        return T.DocumentSymbol(name or "?", kind, rng, conv.range(*(sel or (line, col, end))), detail=detail,
                                children=children)

    out = []
    header = [(what, ref) for what, ref in (("arch", sc.arch_ref), ("cpus", sc.ncpus_ref)) if ref is not None]
    head_lines = [ref.line for _, ref in header]
    title_line = next((i for i, s in enumerate(lines, 1) if s.lstrip().startswith("scenario ")), None)
    if title_line and (not sc.stmts or title_line < sc.stmts[0].line):
        head_lines.append(title_line)
    if head_lines:
        children = [sym(f"{what} {ref.text}", K.Property, ref.line, ref.col, ref.col + len(ref.text))
                    for what, ref in header]
        first, last = min(head_lines), max(head_lines)
        out.append(sym(sc.title or "header", K.Module, first, 1, 2, "header", children=children, last_line=last))
    in_blocks = {}
    for (kind, name), s in res.symbols.items():
        if not s.line:
            continue
        d = sym(name, K.Variable if kind == "task" else K.Struct, s.line, s.col, s.end, s.detail)
        in_blocks.setdefault(s.block, []).append(d)
    out += in_blocks.pop(None, [])
    for b, first, last in block_ranges(sc, lines):
        out.append(sym(f"{b.cpu.text} {{ }}", K.Namespace, first, b.col, b.col + len(b.cpu.text),
                       f"{b.cpu.text}'s program, {len(b.stmts)} statements", children=in_blocks.get(b.cpu.text),
                       last_line=last))
    if sc.final is not None:
        f = sc.final
        out.append(sym(f"final {f.quantifier}", K.Event, f.line, f.col, f.col + len("final")))
    return out


# ---- completion ----------------------------------------------------------------

class _Shim:
    """What Session.completions reads of a REPL session: the kernel, the statements so far, the policy."""

    def __init__(self, k, kept, policy):
        self.k, self.kept, self.policy = k, kept, policy


def completions(res: Result, line: int, col: int) -> list:
    """[(word, what it is)] for the text before (line, col), with the names that exist there
    (the REPL's completion, mmscn/repl/completion.py, on the state before the line)."""
    from mmscn.interactive import Session, partial_word
    from mmscn.interpreter import policies
    from mmscn.interpreter.kernel import Kernel
    before = res.lines[line - 1][:col - 1] if 0 < line <= len(res.lines) else ""
    base = res if res.fresh else res.previous
    if base is not None and base.run is not None:
        run = base.run
        k, policy = run.kernel_after(_call_before(base, line)), run.runner.policy
        kept = [1] if run.top_lines and run.top_lines[0] < line else []
    else:
        policy = policies.get("generic")
        k, kept = Kernel(1, policy, trace=False), []
    return Session.completions(_Shim(k, kept, policy), before), partial_word(before)


def _call_before(res: Result, line: int) -> int:
    sc = res.scenario
    if sc is not None and sc.blocks and line > sc.blocks[0].line:
        return len(res.run.calls) - 1
    return res.run.last_call_before(line)


def completion_kind(word: str, meta: str):
    K = T.CompletionItemKind
    if word.startswith("@"):
        return K.Struct
    if re.fullmatch(r"cpu[0-9]+", word):
        return K.EnumMember
    if "." in word or "field" in meta or "counter" in meta:
        return K.Field
    if meta in ("statement", "keyword") or word in keywords():
        return K.Keyword
    return K.Variable


# ---- semantic tokens -----------------------------------------------------------

TOKEN_TYPES = ["keyword", "operator", "enumMember", "property", "variable", "struct", "namespace",
               "enum", "number", "string", "comment"]
TOKEN_MODIFIERS = ["declaration", "defaultLibrary"]
LEGEND = T.SemanticTokensLegend(TOKEN_TYPES, TOKEN_MODIFIERS)
# the lexer's token types (dsl/lexer.py: word_groups() and the name patterns) to LSP's
_TYPE_OF = {
    Keyword: "keyword", Keyword.Reserved: "keyword", Operator.Word: "operator", Operator: "operator",
    Keyword.Constant: "enumMember", Name.Attribute: "property", Name.Variable: "variable",
    Name.Entity: "struct", Name.Builtin: "namespace", Name.Constant: "enum", Number.Integer: "number",
    String.Double: "string", Comment.Single: "comment",
}


def semantic_tokens(res: Result, conv) -> list:
    """The lexer's tokens of the whole text, relative-encoded; names at their spawn or exec
    are declarations, idle tasks and init_mm the default library."""
    defs = {(o.line, o.col) for o in res.occurrences if o.definition} if res.fresh else set()
    data = []
    line, line_start, prev_line, prev_col = 1, 0, 0, 0
    text = res.text
    for index, ttype, value in MmscnLexer().get_tokens_unprocessed(text):
        if "\n" in value:
            line += value.count("\n")
            line_start = index + value.rindex("\n") + 1
            continue
        name = _TYPE_OF.get(ttype)
        if name is None or not value:
            continue
        col = index - line_start + 1
        mods = 0
        if (line, col) in defs:
            mods |= 1
        if re.fullmatch(r"idle[0-9]+|@init_mm", value):
            mods |= 2
        start = conv.pos(line, col)
        length = conv.pos(line, col + len(value)).character - start.character
        dl = start.line - prev_line
        dc = start.character - (prev_col if dl == 0 else 0)
        data += [dl, dc, length, TOKEN_TYPES.index(name), mods]
        prev_line, prev_col = start.line, start.character
    return data


# ---- code lenses -------------------------------------------------------------

def lens_line(res: Result) -> Optional[int]:
    """Where a file with per-CPU blocks shows its explore verdict: `final`, else the first block."""
    sc = res.scenario if res.fresh else None
    if sc is None or not sc.blocks:
        return None
    return sc.final.line if sc.final is not None else sc.blocks[0].line


def code_lenses(res: Result, uri: str, conv, verdict: Optional[str]) -> list:
    line = lens_line(res)
    if line is None:
        return []
    rng = conv.range(line, 1, 1)
    title = f"explore: {verdict}" if verdict else "explore"
    return [T.CodeLens(rng, T.Command(title, "mmscn.explore", arguments=[uri])),
            T.CodeLens(rng, T.Command("write witness", "mmscn.writeWitness", arguments=[uri]))]
