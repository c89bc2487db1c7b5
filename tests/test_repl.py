"""mmscn repl, in process (the session, completion, highlighting, the prompt on a pipe)
and through a subprocess with piped standard input."""
import io
import json
import os
import re
import subprocess
import threading
import time

import pytest

from mmscn.dsl import ast as A
from mmscn.interpreter import step
from mmscn.dsl.resolve import FIELD_TYPES, IS_WORDS, WORDS
from mmscn.grammar import keywords, statement_words, word_classes
from mmscn.interpreter.report import state_json
from mmscn.repl.completion import make_completer
from mmscn.repl import commands
from mmscn.repl.commands import COMMANDS
from mmscn.repl.help import STATEMENT_HELP
from mmscn.repl.prompt import history_file, interact, make_history, make_lexer, toolbar_lines
from mmscn.repl import session as repl_session
from mmscn.repl.session import MAX_INPUT, Session, open_braces

from conftest import EXAMPLES


def session(*inputs, **kw):
    out = io.StringIO()
    s = Session(out, **kw)
    for text in inputs:
        s.feed(text)
    return s, out


def counters(s):
    k = s.k
    return {k.m_name[m]: (k.m_users[m], k.m_count[m]) for m in range(len(k.m_name))}


ZOMBIE = ["cpus 2", "spawn A", "spawn kthread kw", "schedule cpu0 A", "schedule cpu0 kw",
          "schedule cpu1 A", "exit A", "schedule cpu1 idle"]


# ---------------------------------------------------------------- statements
def test_statements_run_at_once_and_print_their_trace():
    s, out = session("spawn A", "schedule cpu0 A")
    text = out.getvalue()
    assert "    1  spawn A" in text and "    2  schedule cpu0 A" in text
    assert "@A           mm_init                  users 0 -> 1" in text
    assert "context_switch" in text and "idle0 -> A" in text
    assert s.k.t_name[s.k.c_curr[0]] == "A" and s.failures == 0


def test_zombie_session_counters():
    s, _ = session(*ZOMBIE)
    assert counters(s)["@A"] == (0, 2)
    assert s.k.mm_state(s.k.mm_ix["@A"]) == "zombie"


def test_failed_assert_says_expected_and_actual_and_is_not_kept():
    s, out = session("spawn A", "assert @A.count == 3")
    text = out.getvalue()
    assert "FAILED" in text
    assert "assertion failed: @A.count == 3: actual 1" in text
    assert "    2 | assert @A.count == 3\n      |        ^" in text
    assert [type(e.stmt).__name__ for e in s.kept] == ["Spawn"]
    s.feed("assert @A.count == 1, @A is live")
    assert "held" in out.getvalue().splitlines()[-1]
    assert len(s.kept) == 2


@pytest.mark.parametrize("bad, message, col", [
    ("spawn", "expected", 6),
    ("schedule cpu7 A", "cpu7 does not exist", 10),
    ("exit nobody", "no task named `nobody`", 6),
    ("use_mm kw @nope", "no mm named `@nope`", 11),
    ("spawn A", "already exists", 7),
    ("assert A.users == 1", "", 10),
    ("spawn B; spawn B", "already exists", 16),
    ("spawn \x00", "", 7),
])
def test_errors_show_a_caret_and_change_nothing(bad, message, col):
    s, out = session("spawn A", "spawn kthread kw", "schedule cpu0 A")
    before, kept, lines = s.k.snapshot(), list(s.kept), list(s.lines)
    out.truncate(0), out.seek(0)
    assert s.feed(bad) is False
    text = out.getvalue()
    assert message in text
    assert "<repl>:4:" in text
    caret = [ln for ln in text.splitlines() if ln.strip() == "| " + " " * (col - 1) + "^" or ln.endswith("^")]
    assert caret and caret[0].index("^") - caret[0].index("|") - 2 == col - 1
    assert s.k.snapshot() == before and s.kept == kept and s.lines == lines
    # and the session goes on
    assert s.feed("schedule cpu0 idle") is True


def test_refusal_changes_nothing_and_names_the_kernel_function():
    s, out = session("spawn A")
    before = s.k.snapshot()
    assert s.feed("exit A") is False
    assert "refused" in out.getvalue() and "do_exit" in out.getvalue()
    assert s.k.snapshot() == before and len(s.kept) == 1


def test_violation_is_kept_and_undo_takes_it_back():
    s, out = session("spawn A")
    before = s.k.snapshot()
    assert s.feed("mmput @A") is False
    assert "VIOLATION" in out.getvalue() and "unbalanced-mmput" in out.getvalue()
    assert counters(s)["@A"] == (0, 0)          # the state shows the breakage: @A freed under A
    s.feed(":undo")
    assert s.k.snapshot() == before


def test_lone_expect_applies_to_the_next_statement():
    s, out = session("spawn A", "expect error")
    assert s.pending and "applies to the next statement" in out.getvalue()
    assert s.feed("exit A") is True
    assert "as expected" in out.getvalue()
    assert s.kept[-1].expect is not None and not s.pending


def test_expect_waiting_at_the_end_of_the_input_fails():
    s, out = session("expect error")
    s.finish()
    assert s.failures == 1 and "not followed by a statement" in out.getvalue()


def test_header_lines_only_before_the_first_statement():
    s, out = session("cpus 3", "arch x86", 'scenario "t"')
    assert (s.k.ncpus, s.arch, s.title) == (3, "x86", "t")
    s.feed("spawn A")
    assert s.feed("cpus 4") is False
    assert "header line" in out.getvalue() and ":reset" in out.getvalue()
    assert s.k.ncpus == 3


def test_final_is_refused_with_a_hint():
    s, out = session()
    assert s.feed("final forall cpu0 is idle") is False
    assert "in the REPL, `assert` checks the state now" in out.getvalue()


def test_block_runs_round_robin_like_mmscn_run():
    s, out = session("cpus 2", "spawn A", "spawn B",
                     "cpu0 {\n  schedule A\n  schedule idle\n}; cpu1 {\n  schedule B\n  exit B\n}")
    text = out.getvalue()
    order = [ln.split()[1:] for ln in text.splitlines() if ln[:5].strip().isdigit() and ": " in ln]
    assert order == [["cpu0:", "schedule", "A"], ["cpu1:", "schedule", "B"],
                     ["cpu0:", "schedule", "idle"], ["cpu1:", "exit", "B"]]
    assert "round robin" in text
    assert s.k.t_state[s.k.task_ix["B"]] == "dead"


def test_unknown_and_failing_meta_commands():
    s, out = session(":udno")
    assert "unknown command `:udno`" in out.getvalue() and "did you mean :undo" in out.getvalue()
    assert s.failures == 1
    s.feed(":load")
    s.feed(":load /nonexistent/x.mmscn")
    s.feed(":help nosuchthing")
    assert s.failures == 4
    assert "cannot read" in out.getvalue() and "no help on" in out.getvalue()


def test_internal_errors_do_not_end_the_session(monkeypatch):
    s, out = session("spawn A")
    before = s.k.snapshot()

    def boom(*a):
        s.k.m_users[1] = 99      # half done, then a bug
        raise ZeroDivisionError("model bug")
    monkeypatch.setitem(step.EXEC, A.Exit, lambda k, st, cpu: boom())
    assert s.feed("exit A") is False
    assert "internal error" in out.getvalue() and "taken back" in out.getvalue()
    assert s.k.snapshot() == before


# ---------------------------------------------------------------- meta-commands
def test_help_topics():
    s, out = session(":help")
    text = out.getvalue()
    for m in COMMANDS:
        assert m in text
    assert "only before the first statement" in text and ":arch NAME" in text and ":reset" in text
    for topic, want in (("spawn", "copy_process"), ("fields", "active_mm"), ("keys", "Ctrl-R"),
                        (":undo", "take back"), ("undo", "take back"), ("statements", "kthread_use_mm")):
        out.truncate(0), out.seek(0)
        assert s.feed(f":help {topic}") is True
        assert want in out.getvalue(), topic


def test_help_on_an_alias_is_help_not_a_failure():
    s, out = session(":help q", ":help :h")
    assert "`:quit`: leave" in out.getvalue() and "`:help [TOPIC]`" in out.getvalue()
    assert s.failures == 0


def test_a_registered_command_is_run_listed_helped_and_completed(monkeypatch):
    """One entry in the registry is all a meta-command needs: dispatch, aliases, :help and completion."""
    def hello(s, arg):
        s.w(f"hello {arg}")
        return True
    monkeypatch.setitem(COMMANDS, ":hello", commands.Command(":hello", ":hello NAME", "greet NAME", hello,
                                                             aliases=(":hi",), argument="arch"))
    monkeypatch.setitem(commands.ALIASES, ":hi", ":hello")
    s, out = session(":hello world", ":hi there", ":help", ":help hi")
    text = out.getvalue()
    assert "hello world\nhello there\n" in text and s.failures == 0
    assert "  :hello   `:hello NAME`: greet NAME" in text and text.endswith("  `:hello NAME`: greet NAME\n")
    assert words_of(s, ":he") == [":help", ":hello"]
    assert words_of(s, ":hi x8") == ["x86"]


def test_every_statement_word_has_help():
    assert set(STATEMENT_HELP) == set(statement_words())


def test_state_tables():
    s, out = session(*ZOMBIE, ":state")
    text = out.getvalue()
    assert "  cpu   online  curr   active_mm  lazy" in text
    assert "  cpu1  yes     idle1  @A         yes" in text
    assert "  kw     kthread  running   cpu0  none  @A" in text
    assert "  @A        0      2      zombie" in text


def test_trace_is_the_whole_session():
    s, out = session("spawn A", "assert @A.users == 2", "schedule cpu0 A")
    out.truncate(0), out.seek(0)
    s.feed(":trace")
    text = out.getvalue()
    assert "boot:" in text and "    1  spawn A" in text and "    3  schedule cpu0 A" in text
    assert "assert @A.users == 2" not in text          # it failed: not part of the session
    assert "mm_init" in text and "context_switch" in text


def test_undo_restores_exact_counters_step_by_step():
    s, _ = session("cpus 2")
    states = [s.k.snapshot()]
    for stmt in ZOMBIE[1:]:
        s.feed(stmt)
        states.append(s.k.snapshot())
    s.feed("assert @A is zombie")
    for want in reversed(states[:-1]):
        s.feed(":undo")
        assert s.k.snapshot() == want
    s.feed(":undo")
    assert "nothing to undo" in s.out.getvalue()


def test_undo_beyond_the_snapshots_reruns_from_boot(monkeypatch):
    monkeypatch.setattr(repl_session, "CHECKPOINTS", 2)
    s, _ = session("cpus 2")
    states = [s.k.snapshot()]
    for stmt in ZOMBIE[1:]:
        s.feed(stmt)
        states.append(s.k.snapshot())
    assert len(s.checkpoints) <= 2
    for want in reversed(states[:-1]):
        s.feed(":undo")
        assert s.k.snapshot() == want


def test_undo_inside_one_input_of_several_statements():
    s, _ = session("spawn A; spawn B")
    s.feed("schedule cpu0 A; schedule cpu0 B")
    mid = None
    s2, _ = session("spawn A; spawn B", "schedule cpu0 A")
    mid = s2.k.snapshot()
    s.feed(":undo")
    assert s.k.snapshot() == mid


def test_reset_keeps_arch_and_cpus():
    s, out = session("cpus 2", "arch x86", "spawn A", ":reset")
    assert (s.arch, s.k.ncpus, s.kept) == ("x86", 2, [])
    assert "A" not in s.k.task_ix
    s.feed("cpus 3")
    assert s.k.ncpus == 3


def test_arch_lists_and_replays():
    s, out = session(":arch")
    assert "* generic" in out.getvalue() and "linux-2.3" in out.getvalue()
    s.feed("spawn A")
    s.feed("spawn kthread kw")
    s.feed("schedule cpu0 A")
    s.feed("schedule cpu0 kw")
    assert s.feed(":arch linux-2.3") is True
    assert s.arch == "linux-2.3" and s.policy.name == "linux-2.3"
    assert counters(s)["@A"] == (1, 2)
    # kthread_use_mm does not exist in 2.3: a session using it cannot move there
    s2, out2 = session("spawn A", "spawn kthread kw", "schedule cpu0 kw", "use_mm kw @A")
    before = s2.k.snapshot()
    assert s2.feed(":arch linux-2.3") is False
    assert "does not replay on linux-2.3" in out2.getvalue() and s2.arch == "generic"
    assert s2.k.snapshot() == before
    assert s2.feed(":arch nosuch") is False


def test_arch_reports_the_boot_it_replayed_from():
    # after the replay cpu0 runs A and init_mm has lost idle0's lazy reference (x86 keeps cpu_init's
    # boot reference: count 3 at boot, 2 after); the line says "boot"
    s, out = session("spawn A", "schedule cpu0 A", ":arch x86")
    assert counters(s)["@init_mm"] == (2, 2)
    last = out.getvalue().splitlines()[-1]
    assert last == "  arch x86, 1 CPU, every idle task on @init_mm (users 2, count 3); 2 statements replayed", last


def test_load_runs_a_file_into_the_session(tmp_path):
    s, out = session()
    assert s.feed(f":load {EXAMPLES / 'zombie_mm.mmscn'}") is True
    assert s.k.ncpus == 2 and s.title == "a lazy user outlives the real one"
    assert s.k.m_freed[s.k.mm_ix["@A"]]
    assert "zombie_mm.mmscn:14" in out.getvalue()         # the file's own lines
    s.feed("spawn D")
    assert "D" in s.k.task_ix


def test_load_errors_are_located_in_the_file(tmp_path):
    f = tmp_path / "bad.mmscn"
    f.write_text("spawn A\n\nschedule cpu0 nobody\n")
    s, out = session("spawn Z")
    before = s.k.snapshot()
    assert s.feed(f":load {f}") is False
    assert f"{f}:3:15: error: no task named `nobody`" in out.getvalue()
    assert s.k.snapshot() == before
    g = tmp_path / "cpus.mmscn"
    g.write_text("cpus 4\nspawn Q\n")
    assert s.feed(f":load {g}") is False
    assert f"{g}:1:6" in out.getvalue() and "fresh session" in out.getvalue()
    h = tmp_path / "bin.mmscn"
    h.write_bytes(b"\x00\xff\xfe junk")
    assert s.feed(f":load {h}") is False
    assert s.k.snapshot() == before


SAVE_SESSION = ["cpus 2", "spawn A", "spawn thread T of A", "spawn kthread kw", "spawn kthread kx",
                "cpu0 {\n  schedule A\n  schedule kw\n}; cpu1 {\n  schedule kx\n  unlazy\n}",
                "use_mm kw @A", "expect error", "exit A", "mmget @A", "schedule cpu1 T", "exit T",
                "mmgrab @A", "mmdrop @A", "mmput @A", "assert @A.users == 1",
                "mmput @A",                       # a violation: kept, saved with `expect violation`
                "unuse_mm kw", "schedule cpu0 A"]


def test_save_replays_with_mmscn_run_to_the_same_state(tmp_path, mmscn_cmd):
    s, out = session(*SAVE_SESSION)
    path = tmp_path / "saved.mmscn"
    assert s.feed(f":save {path}") is True
    text = path.read_text()
    assert "expect violation" in text and "schedule cpu1 kx" in text and "unlazy cpu1" in text
    r = subprocess.run(mmscn_cmd + ["run", "--json", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == state_json(s.k, s.policy)
    assert doc["cost"]["atomics"] == s.k.cost[0] + s.k.cost[1]
    # and loading it back into a fresh session gives the same kernel state
    s2, _ = session(f":load {path}")
    assert s2.k.key() == s.k.key()


def test_save_after_arch_switch_and_undo(tmp_path, mmscn_cmd):
    s, _ = session(*ZOMBIE, ":arch powerpc", "spawn B", ":undo")
    path = tmp_path / "p.mmscn"
    s.feed(f":save {path}")
    assert "arch powerpc" in path.read_text() and "spawn B" not in path.read_text()
    r = subprocess.run(mmscn_cmd + ["run", "--json", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["state"] == state_json(s.k, s.policy)


def test_save_to_an_unwritable_place():
    s, out = session("spawn A")
    assert s.feed(":save /nonexistent/dir/x.mmscn") is False
    assert "cannot write" in out.getvalue()


def test_quit():
    s, _ = session(":quit")
    assert s.quit


# ---------------------------------------------------------------- toolbar
def test_toolbar_shows_cpus_and_counters():
    s, _ = session(*ZOMBIE)
    cpus, mms = toolbar_lines(s, 200)
    assert "cpu0 kw on @A (lazy)" in cpus and "cpu1 idle1 on @A (lazy)" in cpus
    assert "@init_mm 2/" in mms and "@A 0/2 zombie" in mms
    assert toolbar_lines(s, 40)[0] == " cpu0 kw on @A (lazy) (+1 more)"


# ---------------------------------------------------------------- completion
def words_of(s, before):
    return [w for w, _ in s.completions(before)]


def test_completion_statement_words_come_from_the_grammar():
    s, _ = session()
    start = words_of(s, "")
    assert "spawn" in start and "schedule" in start and "cpus" in start and "cpu0" in start
    assert set(start) - {"cpu0"} <= keywords()
    assert words_of(s, "sch") == ["schedule"]
    assert words_of(s, "mmg") == ["mmgrab", "mmget", "mmget_not_zero"]
    s.feed("spawn A")
    assert "cpus" not in words_of(s, "")          # the header is closed now
    assert words_of(s, "spawn A; sch") == ["schedule"]


def test_completion_names_of_the_session():
    s, _ = session("cpus 2", "spawn Alpha", "spawn kthread kw", "spawn thread T of Alpha",
                   "schedule cpu1 T", "exit T")
    # outside a per-CPU block `schedule` takes a CPU first (`schedule cpu0 A`); in one the CPU is the block's
    assert words_of(s, "schedule ") == ["cpu0", "cpu1"]
    assert words_of(s, "cpu1 {\n  schedule ") == ["cpu1", "idle1", "Alpha", "kw", "idle"]
    assert words_of(s, "cpu0 { exit Alpha; schedule ") == ["cpu0", "idle0", "Alpha", "kw", "idle"]
    assert words_of(s, "cpu0 {\n  assert @Alpha.cpumask == {cpu0}\n  unlazy ") == ["cpu0"]
    assert words_of(s, "cpu0 { schedule idle0 }; schedule ") == ["cpu0", "cpu1"]     # the block is closed
    assert words_of(s, "schedule cpu1 Al") == ["Alpha"]
    assert words_of(s, "schedule cpu1 ") == ["idle1", "Alpha", "kw", "idle"]   # not idle0: cpu0's own
    assert words_of(s, "exit ") == ["idle0", "idle1", "Alpha", "kw"]      # T has exited
    assert "T" in words_of(s, "assert ")                                 # but can still be asked about
    assert words_of(s, "use_mm ") == ["kw"]
    assert words_of(s, "use_mm kw ") == ["@init_mm", "@Alpha"]
    assert words_of(s, "mmgrab @") == ["@init_mm", "@Alpha"]
    assert words_of(s, "unlazy ") == ["cpu0", "cpu1"]
    assert words_of(s, "spawn ") == ["thread", "kthread"]
    assert words_of(s, "spawn thread X ") == ["of"]
    assert words_of(s, "flush @Alpha ") == ["tables"]
    assert words_of(s, "expect ") == ["error", "violation"]
    assert words_of(s, "cpu0 {\n  schedule A") == ["Alpha"]


def test_completion_fields_after_a_dot():
    s, _ = session("spawn A")
    task = [f for (o, f) in FIELD_TYPES if o == "task"]
    assert words_of(s, "assert A.") == [f"A.{f}" for f in task]
    assert words_of(s, "assert cpu0.") == [f"cpu0.{f}" for (o, f) in FIELD_TYPES if o == "cpu"]
    mm = [f"@A.{f}" for (o, f) in FIELD_TYPES if o == "mm" and f != "cpumask"]
    assert words_of(s, "assert @A.") == mm          # generic does not track mm_cpumask
    assert words_of(s, "assert cost.ip") == ["cost.ipis"]
    assert words_of(s, "assert cost.") == [f"cost.{f}" for f in word_classes()["COST_FIELD"]]
    x86, _ = session("arch x86", "spawn A")
    assert "@A.cpumask" in words_of(x86, "assert @A.")


def test_completion_describes_fields_in_the_words_of_the_language():
    # the resolver's type names (task_state, cpuset, int, ...) are not words a user can type or look up
    s, _ = session("arch x86", "spawn A")
    internal = {t for t in FIELD_TYPES.values() if t not in ("task", "mm", "cpu")}
    metas = dict(m for b in ("assert A.", "assert @A.", "assert cpu0.") for m in s.completions(b))
    for word, meta in metas.items():
        assert not internal & set(re.findall(r"\w+", meta)), (word, meta)
    assert metas["A.state"] == "task field: running | runnable | dead"
    assert metas["@A.cpumask"] == "mm field: a set of CPUs like {cpu0, cpu1}"
    assert metas["@A.users"] == "mm field: a number"


def test_completion_conditions():
    s, _ = session("spawn A", "spawn kthread kw")
    assert {"A", "kw", "cpu0", "@A", "cost", "not"} <= set(words_of(s, "assert "))
    assert words_of(s, "assert A ") == ["is"]
    assert words_of(s, "assert kw is ") == ["not"] + list(IS_WORDS["task"])
    assert words_of(s, "assert @A is not ") == list(IS_WORDS["mm"])
    assert words_of(s, "assert @A.state == ") == list(WORDS["mm_state"])
    assert words_of(s, "assert kw.kind == ") == list(WORDS["task_kind"])
    assert words_of(s, "assert kw.active_mm == ") == ["@init_mm", "@A", "none"]
    assert words_of(s, "assert cpu0.lazy == ") == ["true", "false"]
    assert words_of(s, "assert @A.users ") == ["==", "!=", "<", "<=", ">", ">="]
    assert words_of(s, "assert @A.users == 1 ") == ["and", "or"]
    assert words_of(s, "assert @A.users == 1, kw.") == [f"kw.{f}" for (o, f) in FIELD_TYPES if o == "task"]
    assert "@A" in words_of(s, "assert not (")


def test_completion_meta_commands():
    s, _ = session()
    assert words_of(s, ":") == list(COMMANDS)
    assert words_of(s, ":u") == [":undo"]
    assert words_of(s, ":arch linux") == ["linux-2.3"]
    assert "fields" in words_of(s, ":help f")


def test_completer_object_replaces_the_partial_word(tmp_path):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document
    s, _ = session("spawn Alpha")
    c = make_completer(s)
    got = list(c.get_completions(Document("assert Alpha.ac"), CompleteEvent()))
    assert [(x.text, x.start_position) for x in got] == [("Alpha.active_mm", -8)]
    (tmp_path / "scen.mmscn").write_text("")
    got = list(c.get_completions(Document(f":load {tmp_path}/sc"), CompleteEvent()))
    assert [x.text for x in got] == ["en.mmscn"]


# ---------------------------------------------------------------- highlighting
def tokens(text):
    from prompt_toolkit.document import Document
    doc = Document(text)
    get = make_lexer().lex_document(doc)
    return [[(style, t) for style, t in get(i) if t.strip()] for i in range(len(doc.lines))]


def test_highlighting_in_the_buffer():
    line = tokens("schedule cpu0 A  # go")[0]
    assert line[0] == ("class:pygments.keyword", "schedule")
    assert line[1] == ("class:pygments.name.builtin", "cpu0")
    assert line[2] == ("class:pygments.name.variable", "A")
    assert line[3] == ("class:pygments.comment.single", "# go")
    block = tokens("cpu0 {\n  use_mm kw @A\n}")
    assert ("class:pygments.keyword", "use_mm") in block[1] and ("class:pygments.name.entity", "@A") in block[1]
    cond = tokens("assert @A.count == 2, A is zombie")[0]
    assert ("class:pygments.name.attribute", "count") in cond
    assert ("class:pygments.keyword.constant", "zombie") in cond
    assert tokens(":save x.mmscn")[0] == [("class:meta-command", ":save x.mmscn")]


# ---------------------------------------------------------------- multi-line input
def test_open_braces():
    assert open_braces("cpu0 {") == 1
    assert open_braces("cpu0 {\n schedule A\n}") == 0
    assert open_braces("assert @A.cpumask == {cpu0}") == 0
    assert open_braces('expect error "{"  # {') == 0
    assert open_braces("cpu0 {\n}; cpu1 {") == 1


# ---------------------------------------------------------------- the prompt on a pipe
class PipePrompt:
    """interact() on prompt_toolkit's pipe input in a thread; keys go in, the session is watched."""

    def __init__(self, **kw):
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.input import create_pipe_input
        from prompt_toolkit.output import DummyOutput
        self.out = io.StringIO()
        self.s = Session(self.out, **kw)
        self.cm = create_pipe_input()
        self.inp = self.cm.__enter__()
        self.rc = None

        def go():
            self.rc = interact(self.s, input=self.inp, output=DummyOutput(), history=InMemoryHistory())
        self.thread = threading.Thread(target=go, daemon=True)
        self.thread.start()
        self.wait(lambda: getattr(self.s, "prompt_session", None) is not None)

    def send(self, keys):
        self.inp.send_text(keys)

    def wait(self, pred, what="condition"):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; output:\n{self.out.getvalue()}")

    def buffer(self):
        return self.s.prompt_session.default_buffer.text

    def close(self):
        if self.thread.is_alive():
            self.send("\x03\x04")
            self.thread.join(20)
        self.cm.__exit__(None, None, None)
        return self.rc


def test_prompt_session_end_to_end():
    p = PipePrompt(ncpus=2)
    try:
        p.send("spawn Alpha\r")
        p.wait(lambda: len(p.s.kept) == 1, "spawn")
        p.send("sched\t")
        p.wait(lambda: p.buffer() == "schedule", "Tab completion of sched")
        p.send(" cpu1 Al\t")
        p.wait(lambda: p.buffer() == "schedule cpu1 Alpha", "Tab completion of Al")
        p.send("\r")
        p.wait(lambda: len(p.s.kept) == 2, "schedule")
        p.send("spawn junk that is dropped\x03")          # Ctrl-C drops the line
        p.send("spawn kthread kw\r")
        p.wait(lambda: len(p.s.kept) == 3, "spawn kw")
        assert "junk" not in p.out.getvalue()
        p.send("cpu0 {\r")                                 # a block goes on until the braces balance
        p.wait(lambda: p.buffer() == "cpu0 {\n  ", "block continuation")
        p.send("schedule kw\r")
        p.wait(lambda: p.buffer().endswith("schedule kw\n  "), "second line")
        assert len(p.s.kept) == 3
        p.send("}\r")
        p.wait(lambda: len(p.s.kept) == 4, "block run")
        assert p.s.kept[-1].cpu == 0
        p.send("exit Alpha\r:undo\r")
        p.wait(lambda: "undone: line 7: exit Alpha" in p.out.getvalue(), "undo")
        p.send(":state\r")
        p.wait(lambda: "  cpu0  yes     kw" in p.out.getvalue(), ":state")
        assert toolbar_lines(p.s)[0].startswith(" cpu0 kw on @init_mm | cpu1 Alpha on @Alpha")
        p.send("\x04")                                     # Ctrl-D on an empty line
        p.thread.join(20)
        assert p.rc == 0
    finally:
        p.close()


def test_prompt_quit_and_history(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert history_file() == str(tmp_path / "data" / "mmscn" / "history")
    h = make_history()
    h.store_string("spawn A")
    assert "spawn A" in (tmp_path / "data" / "mmscn" / "history").read_text()
    p = PipePrompt()
    try:
        p.send(":quit\r")
        p.thread.join(20)
        assert p.rc == 0 and p.s.quit
    finally:
        p.close()


def test_history_in_an_unwritable_place(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    h = make_history(str(tmp_path / "file" / "mmscn" / "history"))
    h.store_string("spawn A")          # no exception: kept in memory
    assert "history" in capsys.readouterr().err


# ---------------------------------------------------------------- piped standard input
def pipe(mmscn_cmd, data: bytes, *args, tmp_path=None):
    env = dict(os.environ, HOME=str(tmp_path or "/nonexistent"), XDG_DATA_HOME=str(tmp_path or "/nonexistent"))
    return subprocess.run(mmscn_cmd + ["repl", *args], input=data, capture_output=True, env=env, timeout=120)


def test_piped_session_exit_0(mmscn_cmd, tmp_path):
    data = "\n".join(ZOMBIE + ["assert @A is zombie", ":state", "cpu0 {", "  schedule idle", "}", ""]).encode()
    r = pipe(mmscn_cmd, data, tmp_path=tmp_path)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "assert @A is zombie  held" in out and "  @A        0      2      zombie" in out
    assert "cpu0: schedule idle" in out and "mmscn>" not in out
    # no history written without a terminal (the parser's tables may be cached in ~/.cache/mmscn)
    assert [p.name for p in tmp_path.iterdir() if p.name != ".cache"] == []


@pytest.mark.parametrize("data", [
    b"spawn A\nassert @A.users == 5\n",
    b"spawn A\nexit A\n",
    b"spawn A\nmmput @A\n",
    b"spawn A\n:nope\n",
    b"\xff\xfe\x00binary\x00junk\n\x89PNG\r\n\x1a\n",
    b"spawn \x00A\n",
    b"spawn A\n" + b"x" * (MAX_INPUT + 10) + b"\nspawn B\n",
    b"cpu0 {\n schedule idle\n",
    b"}}}}\n{{{{",
    b"expect error\n",
    b"assert " + b"(" * 5000 + b"\n",
    b"\x1b[A\x1b[B\x03\x04\n",
])
def test_piped_bad_input_exit_1_without_traceback(mmscn_cmd, data):
    r = pipe(mmscn_cmd, data)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 1, out
    assert "Traceback" not in out and "internal error" not in out


def test_piped_huge_line_is_skipped_and_the_rest_runs(mmscn_cmd):
    r = pipe(mmscn_cmd, b"spawn A\n" + b"x" * (MAX_INPUT + 10) + b"\nspawn B\nassert B.mm == @B\n")
    out = r.stdout.decode()
    assert "input line 2 is longer than" in out and "assert B.mm == @B  held" in out


def test_piped_quit_stops_reading(mmscn_cmd):
    r = pipe(mmscn_cmd, b"spawn A\n:quit\nexit nobody\n")
    assert r.returncode == 0 and b"nobody" not in r.stdout


def test_repl_file_argument(mmscn_cmd, tmp_path):
    r = pipe(mmscn_cmd, b"assert @A is freed\n:state\n", str(EXAMPLES / "zombie_mm.mmscn"), "--arch", "arm64",
             "--cpus", "3")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "assert @A is freed  held" in out and "CPUs (arch arm64)" in out and "  cpu2  yes" in out
    bad = tmp_path / "bad.mmscn"
    bad.write_text("spawn\n")
    r = pipe(mmscn_cmd, b"", str(bad))
    assert r.returncode == 2 and f"{bad}:1:6" in r.stdout.decode()
    r = pipe(mmscn_cmd, b"", "--arch", "nosuch")
    assert r.returncode == 2 and b"unknown architecture" in r.stderr
    r = pipe(mmscn_cmd, b"", "--cpus", "0")
    assert r.returncode == 2


# ---------------------------------------------------------------- numbering, big sessions, docs
def test_inputs_are_numbered_through_the_session():
    s, out = session("spawn A", "# a comment", "", "spawn B; schedule cpu0 B")
    assert [e.stmt.line for e in s.kept] == [1, 3, 3]
    out.truncate(0), out.seek(0)
    s.feed("spawn C\nspawn A")
    text = out.getvalue()
    assert "<repl>:5:7: error: a task named `A` already exists: it was spawned at line 1" in text
    assert "    5 | spawn A" in text
    s.feed("cpu0 {\n  schedule C\n}; cpu0 {\n  schedule A\n}")
    assert "cpu0 already has a block (line 4)" in out.getvalue()
    s.feed("assert @B.cpumask == {cpu0}")      # numbers inside a cpuset are renumbered too
    assert "<repl>:4:8: error: arch generic does not track mm_cpumask" in out.getvalue()


def test_undo_in_a_big_state_with_sparse_snapshots():
    s, _ = session()
    for i in range(600):
        s.feed(f"spawn T{i}")
    states = []
    for i in range(6):
        states.append(s.k.snapshot())
        s.feed(f"schedule cpu0 T{i}")
    assert len(s.checkpoints) < 600
    for want in reversed(states):
        s.feed(":undo")
        assert s.k.snapshot() == want
    s.feed("spawn T0")
    assert "already exists" in s.out.getvalue().splitlines()[-3]


def test_load_judges_final(tmp_path):
    f = tmp_path / "f.mmscn"
    f.write_text("spawn A\nschedule cpu0 A\nfinal forall @A.users == 2\n")
    s, out = session()
    assert s.feed(f":load {f}") is False
    assert "final forall: does not hold" in out.getvalue() and len(s.kept) == 2


def test_the_walk_through_in_docs_repl_md(tmp_path, monkeypatch):
    """The session shown in docs/repl.md is what the REPL prints."""
    from conftest import ROOT
    doc = (ROOT / "docs" / "repl.md").read_text()
    block = doc.split("## A walk-through", 1)[1].split("```", 2)[1]
    inputs, expected, current = [], [], []
    for line in block.splitlines()[3:]:           # after the command line and the banner
        if line.startswith("mmscn> ") or line.startswith("   ...   "):
            text = line[7:] if line.startswith("mmscn> ") else line[9:]
            if line.startswith("mmscn> ") and current:
                inputs.append("\n".join(current))
                current = []
            current.append(text)
        elif line.startswith("$ "):
            break
        elif current or inputs:
            expected.append(line)
    inputs.append("\n".join(current))
    monkeypatch.chdir(tmp_path)
    s, out = session(ncpus=2)
    for text in inputs:
        if text != "^D":
            s.feed(text)
    assert out.getvalue().splitlines() == expected


def test_ctrl_c_while_an_input_runs_takes_it_back(monkeypatch):
    def interrupted(k, st, cpu):
        k.m_users[1] += 5            # half done when Ctrl-C comes
        raise KeyboardInterrupt
    monkeypatch.setitem(step.EXEC, A.Exit, interrupted)
    p = PipePrompt()
    try:
        p.send("spawn A\r")
        p.wait(lambda: len(p.s.kept) == 1, "spawn")
        before = p.s.k.snapshot()
        p.send("exit A\r")
        p.wait(lambda: "interrupted; the input was taken back" in p.out.getvalue(), "the interrupt")
        assert p.s.k.snapshot() == before
        p.send("\x04")
        p.thread.join(20)
        assert p.rc == 0
    finally:
        p.close()


def test_load_shows_the_boot_line_only_when_the_file_starts_from_boot(tmp_path):
    f = tmp_path / "more.mmscn"
    f.write_text("spawn B\n")
    s, out = session(f":load {f}")
    assert f"{f} (arch generic, 1 CPU: idle0 on @init_mm (users 2, count 2))" in out.getvalue()
    s, out = session("spawn A", "schedule cpu0 A", f":load {f}")
    head = [ln for ln in out.getvalue().splitlines() if ln.startswith(str(f))]
    assert head == [str(f)], head      # cpu0 runs A now: a boot line would describe the past
