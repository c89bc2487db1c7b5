"""The REPL's completion: the word at the cursor and the words that may follow it,
from the grammar's word lists, the meta-command registry and the live kernel (what
exists: tasks, CPUs, mms).  mmscn lsp completes with the same function."""
from __future__ import annotations

import re
from typing import Optional

from mmscn.dsl.names import cpu_number, idle_name
from mmscn.repl.commands import COMMANDS, help_topics, lookup


def completions(session, before: str) -> list:
    """(word, what it is) that may follow ``before`` (the text before the cursor), best first.
    Each word replaces the partial word at the cursor (see partial_word)."""
    from mmscn.dsl.resolve import FIELD_TYPES, IS_WORDS, TYPE_WORDS, WORDS
    from mmscn.grammar import statement_words, word_classes
    from mmscn.interpreter import policies
    words = word_classes()
    partial = partial_word(before)
    k = session.k
    if before.lstrip().startswith(":") and "\n" not in before:
        s = before.lstrip()
        if " " not in s:
            return _pick([(c.name, c.line()) for c in COMMANDS.values()], partial)
        cmd, _ = lookup(s.split()[0])
        argument = cmd and cmd.argument
        if argument == "topic":
            return _pick([(t, "help topic") for t in help_topics()], partial)
        if argument == "arch":
            return _pick([(n, "architecture") for n in policies.names()], partial)
        return []
    seg = re.split(r"[;\n]", before)[-1]
    seg = re.sub(r"^\s*(cpu[0-9]+\s*\{|\})\s*", "", seg)
    head = seg[: len(seg) - len(partial)]
    toks = re.findall(r"==|!=|<=|>=|<|>|[(),{}]|[^\s(),{}<>=!]+", head)
    cpus = [(f"cpu{i}", "CPU" + ("" if k.c_online[i] else ", offline")) for i in range(k.ncpus)]
    alive = [(n, k.t_kind[t]) for t, n in enumerate(k.t_name) if k.t_state[t] != "dead"]
    kthreads = [(n, "kthread") for n, kind in alive if kind == "kthread"]
    every_task = [(n, k.t_kind[t] + ("" if k.t_state[t] != "dead" else ", dead")) for t, n in enumerate(k.t_name)]
    mms = [(n, f"users {k.m_users[m]}, count {k.m_count[m]}, {k.mm_state(m)}") for m, n in enumerate(k.m_name)]
    usable = [x for m, x in enumerate(mms) if not k.m_freed[m]]
    # in a per-CPU block the CPU of schedule, unlazy and offline is the block's (and may be left
    # out); outside one it must come first: `schedule cpu0 A`
    block = open_block(before)
    where = [(block, "this block's CPU")] if block else cpus

    if "." in partial:
        owner, _, _ = partial.rpartition(".")
        if owner == "cost":
            kind = "cost"
        elif re.fullmatch(r"cpu[0-9]+", owner):
            kind = "cpu"
        elif owner.startswith("@"):
            kind = "mm"
        else:
            kind = "task"
        if kind == "cost":
            fields = [(f, "cost counter") for f in words["COST_FIELD"]]
        else:
            # what the field holds in the words of the language, not the resolver's type names
            fields = [(f, f"{kind} field: " + (" | ".join(WORDS[typ]) if typ in WORDS else TYPE_WORDS[typ]))
                      for (o, f), typ in FIELD_TYPES.items() if o == kind]
            if kind == "mm" and "cpumask" not in session.policy.hardware_fields:
                fields = [x for x in fields if x[0] != "cpumask"]
        out = [(f"{owner}.{f}", d) for f, d in fields]
        if kind == "mm":
            out += mms        # @A.2 is a name, not a field
        return _pick(out, partial)
    if not toks:
        stmts = [w for w in statement_words() if w != "final"]
        if session.kept:
            stmts = [w for w in stmts if w not in ("scenario", "arch", "cpus")]
        return _pick([(w, "statement") for w in stmts] + [(c, "per-CPU block") for c, _ in cpus], partial)
    first, n = toks[0], len(toks)
    if first == "spawn":
        if n == 1:
            return _pick([("thread", "clone(CLONE_VM)"), ("kthread", "kthread_create")], partial)
        if toks[1] == "thread" and n == 3:
            return _pick([("of", "keyword")], partial)
        if toks[1] == "thread" and n == 4:
            return _pick([(t, d) for t, d in alive if d == "user"], partial)
        if toks[1] not in ("thread", "kthread") and n == 2:
            return _pick([("mm", "name the new mm")], partial)
        return []
    if first == "schedule":
        def targets(cpu):   # another CPU's idle task is always refused (it never runs elsewhere)
            return [(t, d) for t, d in alive + [("idle", "the CPU's idle task")]
                    if d != "idle" or t == idle_name(cpu_number(cpu))]
        if n == 1:
            return _pick(where + targets(block), partial) if block else _pick(cpus, partial)
        if n == 2 and toks[1].startswith("cpu"):
            return _pick(targets(toks[1]), partial)
        return []
    if first in ("exit", "unuse_mm") and n == 1:
        return _pick(kthreads if first == "unuse_mm" else alive, partial)
    if first == "exec":
        return _pick(alive, partial) if n == 1 else _pick([("mm", "name the new mm")], partial) if n == 2 else []
    if first == "use_mm":
        return _pick(kthreads, partial) if n == 1 else _pick(usable, partial) if n == 2 else []
    if first in ("unlazy", "offline", "online", "tick", "perf_sample", "rollover"):
        return _pick(cpus if first in ("online", "rollover") else where, partial) if n == 1 else []
    if first == "membarrier":
        return _pick([("register", "MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED")] + list(where), partial) \
            if n == 1 else _pick(where, partial) if n == 2 and toks[1] == "register" else []
    if first == "task_work_run" and n == 1:
        return _pick(alive, partial)
    if first in words["MMREF_OP"] + ("mmget_not_zero", "flush"):
        if n == 1:
            return _pick(usable, partial)
        return _pick([("tables", "page tables freed")], partial) if first == "flush" and n == 2 else []
    if first == "expect" and n == 1:
        return _pick([(w, "the next statement") for w in words["EXPECT_KIND"]]
                     + ([] if session.kept else [(w, "the whole scenario") for w in words["OUTCOME_WORD"]]), partial)
    if first == "arch" and n == 1:
        return _pick([(a, "architecture") for a in policies.names()], partial)
    if first != "assert":
        return []
    # a condition: what follows the last `assert`, `,`, `and`, `or`, `not` or `(`
    cut = max((i for i, t in enumerate(toks) if t in ("assert", ",", "and", "or", "not", "(")
               and not (t == "not" and toks[i - 1] == "is")), default=0)
    cond = toks[cut + 1:]
    subjects = every_task + cpus + mms + [("cost", "cost counters"), ("not", "negation")]
    if not cond:
        return _pick(subjects, partial)

    def owner_of(name):
        return "cpu" if re.fullmatch(r"cpu[0-9]+", name) else "mm" if name.startswith("@") else "task"

    joiners = [("and", "both"), ("or", "either")]
    if len(cond) == 1 and "." not in cond[0]:
        return _pick([("is", "a state test")], partial)
    if len(cond) >= 2 and cond[1] == "is":
        if len(cond) == 2:
            return _pick([("not", "negation")] + [(w, "state") for w in IS_WORDS[owner_of(cond[0])]], partial)
        if len(cond) == 3 and cond[2] == "not":
            return _pick([(w, "state") for w in IS_WORDS[owner_of(cond[0])]], partial)
        return _pick(joiners, partial)
    if "." in cond[0]:
        owner, _, fname = cond[0].rpartition(".")
        typ = "int" if owner == "cost" else FIELD_TYPES.get((owner_of(owner), fname))
        if len(cond) == 1:
            ops = ["==", "!=", "<", "<=", ">", ">="] if typ == "int" else ["==", "!="]
            return _pick([(o, "comparison") for o in ops], partial)
        if len(cond) == 2:
            none = [("none", "no value")]
            values = {"task": alive + [("idle", "the CPU's idle task")] + none, "mm": mms + none,
                      "bool": [(w, "bool") for w in words["BOOL"]], "cpu": cpus + none,
                      "cpuset": [("{", "a set of CPUs")]}.get(typ)
            if typ in WORDS:
                values = [(w, typ.replace("_", " ")) for w in WORDS[typ]]
            return _pick(values or [], partial)
        if cond[-1] == "{" or (len(cond) > 2 and cond[2] == "{" and "}" not in cond):
            return _pick(cpus, partial)
        return _pick(joiners, partial)
    return []


def open_block(text: str) -> Optional[str]:
    """The CPU of the per-CPU block still open at the end of ``text`` (`cpu0 {` not closed), or None."""
    stack = []      # a block's CPU, or None for the `{` of a CPU set
    for line in text.split("\n"):
        line = re.sub(r'"[^"\n]*"?', "", line).split("#", 1)[0]
        for m in re.finditer(r"(cpu[0-9]+)\s*\{|[{}]", line):
            if m.group(0) == "}":
                if stack:
                    stack.pop()
            else:
                stack.append(m.group(1))
    return next((c for c in reversed(stack) if c), None)


def partial_word(before: str) -> str:
    """The word the cursor is in: names, @mms, cpuN, fields after a dot, :commands."""
    m = re.search(r"[:@A-Za-z0-9_.]*$", before)
    return m.group(0) if m else ""


def _pick(cands, partial: str) -> list:
    seen, out = set(), []
    for word, meta in cands:
        if word.startswith(partial) and word not in seen:
            seen.add(word)
            out.append((word, meta))
    return out


def make_completer(session):
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document
    paths = PathCompleter(expanduser=True)

    class ReplCompleter(Completer):
        def get_completions(self, document, complete_event):
            before = document.text_before_cursor
            s = before.lstrip()
            if s.startswith(":") and " " in s and "\n" not in s:
                name, arg = s.split(" ", 1)
                cmd, _ = lookup(name)
                if cmd is not None and cmd.argument == "file":
                    arg = arg.lstrip()
                    yield from paths.get_completions(Document(arg, len(arg)), complete_event)
                    return
            partial = partial_word(before)
            for word, meta in session.completions(before):
                yield Completion(word, -len(partial), display_meta=meta)

    return ReplCompleter()
