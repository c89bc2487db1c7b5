"""`mmscn lsp` end to end: pytest-lsp starts the server as an editor does and speaks LSP to it.

Every feature is asked of the running server.  After a change the tests ask a
request of the document before looking at its diagnostics: the server answers
a request only after analysing the document's current text, and it publishes
that analysis before it answers (see sync()), so no test sleeps or times.
The robustness tests at the end speak raw bytes to the server, to send what
no client library would, and read its standard output strictly frame by frame.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-m", "mmscn", "lsp"]

ZOMBIE = (ROOT / "examples" / "zombie_mm.mmscn").read_text()

RACE = """\
scenario "adopting @A without mmget_not_zero"
cpus 2
spawn A
spawn kthread kw
schedule cpu0 A
schedule cpu1 kw

cpu0 {
    exit A
    schedule idle
}
cpu1 {
    mmget @A
    use_mm kw @A
    unuse_mm kw
    mmput @A
}

final forall kw.mm == none
"""

BLOCKS = (ROOT / "examples" / "per_cpu_blocks.mmscn").read_text()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(T.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"mmscn": {"debounceMs": 0}}))
    for method in ("workspace/codeLens/refresh", "workspace/inlayHint/refresh"):
        lsp_client.feature(method)(lambda params: None)    # what VS Code does: ask again
    yield
    await lsp_client.shutdown_session()




def uri_of(path) -> str:
    return Path(path).resolve().as_uri()


class Doc:
    """An open document: its uri, its text as the client has it, and the version."""

    def __init__(self, client, uri, text):
        self.c, self.uri, self.text, self.version = client, uri, text, 1
        client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "mmscn", 1, text)))

    def id(self):
        return T.TextDocumentIdentifier(self.uri)

    def change(self, text):
        self.version += 1
        self.text = text
        self.c.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=self.version, uri=self.uri),
            [T.TextDocumentContentChangeWholeDocument(text)]))

    def edit(self, line, col, end_line, end_col, new):
        """An incremental change, 0-based like LSP."""
        self.version += 1
        lines = self.text.split("\n")
        head = "\n".join(lines[:line] + [lines[line][:col]])
        tail = "\n".join([lines[end_line][end_col:]] + lines[end_line + 1:])
        self.text = head + new + tail
        self.c.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=self.version, uri=self.uri),
            [T.TextDocumentContentChangePartial(T.Range(T.Position(line, col), T.Position(end_line, end_col)), new)]))

    async def sync(self):
        """The diagnostics of the current text: any request waits for its analysis, which is
        published before the answer."""
        await self.c.text_document_document_symbol_async(T.DocumentSymbolParams(self.id()))
        return list(self.c.diagnostics.get(self.uri, []))

    def pos(self, line, text, nth=0):
        """Position (0-based) of the nth `text` on 1-based line ``line``."""
        s = self.text.split("\n")[line - 1]
        i = -1
        for _ in range(nth + 1):
            i = s.index(text, i + 1)
        return T.Position(line - 1, i)

    async def hover(self, line, text, nth=0, offset=0):
        p = self.pos(line, text, nth)
        h = await self.c.text_document_hover_async(T.HoverParams(self.id(), T.Position(p.line, p.character + offset)))
        return h.contents.value if h else None


def line_of(text, needle) -> int:
    return next(i for i, s in enumerate(text.split("\n"), 1) if s.startswith(needle))


# ---- diagnostics --------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_refusal_is_underlined_with_its_rule_and_kernel_function(client, tmp_path):
    text = "cpus 2\nspawn A\nspawn kthread kw\nschedule cpu0 A\nexit A\nuse_mm kw @A   # never scheduled\n"
    d = Doc(client, uri_of(tmp_path / "r.mmscn"), text)
    (diag,) = await d.sync()
    assert diag.range == T.Range(T.Position(5, 0), T.Position(5, len("use_mm kw @A")))
    assert diag.severity == T.DiagnosticSeverity.Error and diag.code == "refused"
    assert "kw is not running" in diag.message
    assert [r.message for r in diag.related_information] == ["the rule is in kthread_use_mm (kernel/kthread.c)"]


@pytest.mark.asyncio
async def test_syntax_name_violation_assertion_and_expectation_problems(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "s.mmscn"), "cpus 2\nspawn A\nspwan B\n")
    (diag,) = await d.sync()
    assert (diag.code, diag.range.start, diag.range.end) == ("syntax", T.Position(2, 0), T.Position(2, 5))
    assert "did you mean `spawn`" in diag.message

    d.change("cpus 2\nspawn A\nschedule cpu2 A\n")
    (diag,) = await d.sync()
    assert diag.code == "name" and diag.range.start == T.Position(2, 9) and "cpu2 does not exist" in diag.message

    d.change("spawn A\nmmput @A\n")
    diags = await d.sync()
    assert [x.code for x in diags] == ["unbalanced-mmput", "use-after-free"]
    assert [x.related_information[0].message for x in diags] == [
        "the rule is in mmput (kernel/fork.c)",
        "the rule is in __mmdrop (kernel/fork.c): WARN_ON_ONCE(mm == current->active_mm)"]

    d.change("spawn A\nassert @A.users == 2\nexpect error\nspawn B\n")
    diags = await d.sync()
    assert [(x.code, x.range.start.line) for x in diags] == [("assertion", 1), ("expectation", 2)]
    assert "actual 1" in diags[0].message and diags[0].range.start.character == len("assert ")


@pytest.mark.asyncio
async def test_diagnostics_follow_incremental_changes(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    assert await d.sync() == []
    n = line_of(ZOMBIE, "assert @A.count == 0")
    d.edit(n - 1, len("assert @A.count == "), n - 1, len("assert @A.count == 0"), "7")
    (diag,) = await d.sync()
    assert diag.code == "assertion" and diag.range.start.line == n - 1 and "actual 0" in diag.message
    d.edit(n - 1, len("assert @A.count == "), n - 1, len("assert @A.count == 7"), "0")
    assert await d.sync() == []


@pytest.mark.asyncio
async def test_a_did_you_mean_is_a_code_action(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "a.mmscn"), "cpus 2\nspawn A\nschedule cpu0 A\nexot A\n")
    (diag,) = await d.sync()
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        d.id(), diag.range, T.CodeActionContext([diag])))
    (a,) = actions
    assert a.title == "Replace `exot` with `exit`" and a.kind == T.CodeActionKind.QuickFix
    (edit,) = a.edit.changes[d.uri]
    assert edit.new_text == "exit" and edit.range == diag.range


# ---- hover ---------------------------------------------------------------------

@pytest.mark.asyncio
async def test_hover_on_a_statement_shows_its_trace_lines(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    n = line_of(ZOMBIE, "schedule cpu0 kw")
    text = await d.hover(n, "schedule")
    # exactly what `mmscn run` prints under the statement
    run = subprocess.run([sys.executable, "-m", "mmscn", "run", str(ROOT / "examples" / "zombie_mm.mmscn")],
                         capture_output=True, text=True).stdout.split("\n")
    i = next(i for i, s in enumerate(run) if s.startswith(f"{n:5d}  schedule cpu0 kw"))
    assert text == "```text\n" + "\n".join(run[i:i + 3]) + "\n```"
    assert "mmgrab_lazy_tlb          count 1 -> 2" in text


@pytest.mark.asyncio
async def test_hover_on_names_shows_their_state_after_the_line(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    n = line_of(ZOMBIE, "schedule cpu0 kw")
    kw = await d.hover(n, "kw")
    assert f"after line {n}: running on cpu0, kind kthread; mm none, active_mm @A" in kw
    n2 = line_of(ZOMBIE, "assert @A is zombie")
    a = await d.hover(n2, "@A")
    assert f"after line {n2}: users 0, count 2, zombie" in a and "borrowed as active_mm by: idle1 (cpu1), kw (cpu0)" in a
    cpu = await d.hover(line_of(ZOMBIE, "assert cpu0 is lazy"), "cpu0")
    assert "curr kw, active_mm @A, lazy, online" in cpu
    n3 = line_of(ZOMBIE, "assert @A.count == 1, @A is zombie")
    field = await d.hover(n3, "count", offset=1)
    assert field == f"**@A.count** = `1` (after line {n3})"


@pytest.mark.asyncio
async def test_hover_after_a_stop_says_the_line_did_not_run(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "x.mmscn"), "spawn A\nexit A\nassert A.mm == @A\n")
    text = await d.hover(3, "A.")
    assert "The run stopped at line 2" in text and "does not exist" not in text


# ---- inlay hints ---------------------------------------------------------------

@pytest.mark.asyncio
async def test_inlay_hints_show_the_counters_a_statement_changed_and_can_be_turned_off(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    n = line_of(ZOMBIE, "schedule cpu0 kw")
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        d.id(), T.Range(T.Position(n - 1, 0), T.Position(n - 1, 0))))
    (h,) = hints
    assert h.label == "@A count 1 -> 2" and h.position == T.Position(n - 1, len("schedule cpu0 kw"))
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams({"mmscn": {"inlayHints": False}}))
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        d.id(), T.Range(T.Position(0, 0), T.Position(100, 0))))
    assert list(hints) == []


# ---- names -----------------------------------------------------------------------

@pytest.mark.asyncio
async def test_definition_references_and_rename(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    spawn = line_of(ZOMBIE, "spawn kthread kw")
    use = line_of(ZOMBIE, "schedule cpu0 kw")
    (loc,) = [await client.text_document_definition_async(T.DefinitionParams(d.id(), d.pos(use, "kw")))]
    assert loc.range.start == d.pos(spawn, "kw")
    # the implicit @A of `spawn A` is defined at A's name there
    (loc,) = [await client.text_document_definition_async(T.DefinitionParams(
        d.id(), d.pos(line_of(ZOMBIE, "assert @A is zombie"), "@A")))]
    assert loc.range.start == d.pos(line_of(ZOMBIE, "spawn A"), "A")

    refs = await client.text_document_references_async(T.ReferenceParams(
        context=T.ReferenceContext(include_declaration=True), text_document=d.id(), position=d.pos(use, "kw")))
    assert len(refs) == len(re.findall(r"\bkw\b", re.sub(r"#.*", "", ZOMBIE)))
    assert refs[0].range.start == d.pos(spawn, "kw")

    rng = await client.text_document_prepare_rename_async(T.PrepareRenameParams(d.id(), d.pos(use, "kw")))
    assert rng.start == d.pos(use, "kw")
    edit = await client.text_document_rename_async(T.RenameParams(d.id(), d.pos(line_of(ZOMBIE, "spawn A"), "A"),
                                                                  "P"))
    new = apply(ZOMBIE, edit.changes[d.uri])
    # A's implicit mm follows the task: @A becomes @P, and the scenario still passes
    assert "@A" not in re.sub(r"#.*", "", new) and "spawn P" in new
    d.change(new)
    assert await d.sync() == []


@pytest.mark.asyncio
async def test_renaming_an_implicit_mm_names_it_in_its_spawn_and_a_clash_is_refused(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    n = line_of(ZOMBIE, "assert @A is zombie")
    edit = await client.text_document_rename_async(T.RenameParams(d.id(), d.pos(n, "@A"), "@shell"))
    new = apply(ZOMBIE, edit.changes[d.uri])
    assert new.split("\n")[line_of(ZOMBIE, "spawn A") - 1].startswith("spawn A mm @shell")
    d.change(new)
    assert await d.sync() == []
    with pytest.raises(Exception, match="already exists"):
        await client.text_document_rename_async(T.RenameParams(d.id(), d.pos(line_of(new, "spawn B"), "B"), "kw"))
    with pytest.raises(Exception, match="word of the language"):
        await client.text_document_rename_async(T.RenameParams(d.id(), d.pos(line_of(new, "spawn B"), "B"), "dead"))


def apply(text, edits) -> str:
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        s, t = e.range.start, e.range.end
        assert s.line == t.line
        ln = lines[s.line]
        lines[s.line] = ln[:s.character] + e.new_text + ln[t.character:]
    return "\n".join(lines)


@pytest.mark.asyncio
async def test_document_symbols(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "b.mmscn"), RACE)
    syms = await client.text_document_document_symbol_async(T.DocumentSymbolParams(d.id()))
    assert [(s.name, s.kind) for s in syms] == [
        ("adopting @A without mmget_not_zero", T.SymbolKind.Module), ("A", T.SymbolKind.Variable),
        ("@A", T.SymbolKind.Struct), ("kw", T.SymbolKind.Variable), ("cpu0 { }", T.SymbolKind.Namespace),
        ("cpu1 { }", T.SymbolKind.Namespace), ("final forall", T.SymbolKind.Event)]
    assert [c.name for c in syms[0].children] == ["cpus 2"]
    cpu1 = syms[5]
    assert (cpu1.range.start.line, cpu1.range.end.line) == (line_of(RACE, "cpu1 {") - 1, line_of(RACE, "final") - 3)


# ---- completion ---------------------------------------------------------------------

async def completion(client, d, line, col):
    res = await client.text_document_completion_async(T.CompletionParams(d.id(), T.Position(line, col)))
    return [i.label for i in res.items]


@pytest.mark.asyncio
async def test_completion_offers_the_grammar_and_the_names_that_exist_at_that_line(client, tmp_path):
    text = "cpus 2\nspawn A\nspawn kthread kw\n\nspawn B\n"
    d = Doc(client, uri_of(tmp_path / "c.mmscn"), text)
    assert await d.sync() == []
    assert {"spawn", "schedule", "exit", "assert"} <= set(await completion(client, d, 3, 0))
    # typing on the blank line 4 (a syntax error until done): A and kw exist, B only from line 5
    d.edit(3, 0, 3, 0, "exit ")
    assert await completion(client, d, 3, 5) == ["idle0", "idle1", "A", "kw"]
    d.edit(3, 0, 3, 5, "assert @A.")
    fields = await completion(client, d, 3, len("assert @A."))
    assert fields[:3] == ["@A.users", "@A.count", "@A.state"]


# ---- semantic tokens --------------------------------------------------------------

@pytest.mark.asyncio
async def test_semantic_tokens_come_from_the_lexers_word_lists(client, tmp_path):
    text = "cpus 2\nspawn A   # fork\nassert A.state == dead, idle0 is running\n"
    d = Doc(client, uri_of(tmp_path / "t.mmscn"), text)
    res = await client.text_document_semantic_tokens_full_async(T.SemanticTokensParams(d.id()))
    legend = client.capabilities and (await legend_of(client))
    toks, line, col = [], 0, 0
    data = res.data
    for i in range(0, len(data), 5):
        dl, dc, n, typ, mods = data[i:i + 5]
        line, col = line + dl, (col + dc if dl == 0 else dc)
        word = text.split("\n")[line][col:col + n]
        toks.append((word, legend.token_types[typ], [m for b, m in enumerate(legend.token_modifiers) if mods >> b & 1]))
    assert toks == [
        ("cpus", "keyword", []), ("2", "number", []), ("spawn", "keyword", []), ("A", "variable", ["declaration"]),
        ("# fork", "comment", []), ("assert", "keyword", []), ("A", "variable", []), ("state", "property", []),
        ("==", "operator", []), ("dead", "enumMember", []), ("idle0", "variable", ["defaultLibrary"]),
        ("is", "operator", []), ("running", "enumMember", [])]


_legend = None


async def legend_of(client):
    from mmscn.lsp.features import LEGEND
    return LEGEND


# ---- exploration ------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_file_with_blocks_gets_lenses_and_the_explore_verdict_on_its_final_line(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "blocks.mmscn"), BLOCKS)
    lenses = await client.text_document_code_lens_async(T.CodeLensParams(d.id()))
    final = line_of(BLOCKS, "final forall") - 1
    assert [(lens.command.title, lens.command.command, lens.range.start.line) for lens in lenses] == [
        ("explore", "mmscn.explore", final), ("write witness", "mmscn.writeWitness", final)]
    client.text_document_did_save(T.DidSaveTextDocumentParams(d.id()))
    out = await client.workspace_execute_command_async(T.ExecuteCommandParams("mmscn.explore", [d.uri]))
    assert out["verdict"] == "verdict: holds" and out["passed"] is True
    (diag,) = client.diagnostics[d.uri]
    assert diag.range.start.line == final and diag.severity == T.DiagnosticSeverity.Information
    assert diag.message.startswith("explore: verdict: holds: no interleaving fails")
    lenses = await client.text_document_code_lens_async(T.CodeLensParams(d.id()))
    assert lenses[0].command.title == "explore: holds"
    # an edit makes the verdict stale: it goes
    d.edit(0, 0, 0, 0, "# edited\n")
    assert await d.sync() == []


@pytest.mark.asyncio
async def test_a_failing_interleaving_is_shown_with_its_steps_and_a_witness_is_one_command_away(client, tmp_path):
    path = tmp_path / "race.mmscn"
    path.write_text(RACE)
    d = Doc(client, uri_of(path), RACE)
    out = await client.workspace_execute_command_async(T.ExecuteCommandParams("mmscn.explore", [d.uri]))
    assert out["verdict"] == "verdict: FAILS" and out["passed"] is False
    diags = client.diagnostics[d.uri]
    # the round-robin run of `mmscn run` fails there too; the exploration adds the verdict and its path
    assert (diags[0].code, diags[0].range.start.line) == ("mmget-after-teardown", line_of(RACE, "    mmget @A") - 1)
    (verdict,) = [x for x in diags if x.code == "explore"]
    (failure,) = [x for x in diags if x.message.startswith("explore: ") and x.code != "explore"]
    assert verdict.range.start.line == line_of(RACE, "final") - 1 and verdict.severity == T.DiagnosticSeverity.Error
    assert failure.code == "mmget-after-teardown" and failure.range.start.line == line_of(RACE, "    mmget @A") - 1
    steps = [r.message for r in failure.related_information if r.message.startswith("step")]
    assert steps == ["step 1: cpu0 exit A", "step 2: cpu1 mmget @A"]
    out = await client.workspace_execute_command_async(T.ExecuteCommandParams("mmscn.writeWitness", [d.uri]))
    witness = Path(out["witness"])
    assert witness == tmp_path / "race.witness.mmscn"
    assert client.shown_documents[-1].uri == witness.as_uri()
    run = subprocess.run([sys.executable, "-m", "mmscn", "run", str(witness)], capture_output=True, text=True)
    assert run.returncode == 0 and "mmget-after-teardown" in run.stdout


@pytest.mark.asyncio
async def test_explore_on_a_file_without_blocks_says_so(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    out = await client.workspace_execute_command_async(T.ExecuteCommandParams("mmscn.explore", [d.uri]))
    assert out == {"verdict": None, "detail": "no per-CPU blocks: nothing to explore"}
    assert list(await client.text_document_code_lens_async(T.CodeLensParams(d.id()))) == []


# ---- incremental runs ------------------------------------------------------------

def _snapshot_of(res):
    """What a user sees of an analysis: the problems, and every statement's hover."""
    from mmscn.lsp import features as F
    hovers = [F.hover(res, st.line, st.col) for st, _ in res.run.calls] if res.run else []
    return res.problems, hovers


@pytest.mark.parametrize("example", ["zombie_mm.mmscn", "per_cpu_blocks.mmscn", "lazy_chain_generic.mmscn"])
def test_an_incremental_run_equals_a_run_from_boot(example):
    """Every one-line edit (a line deleted, an assertion inserted, a line changed to a
    refused one) analysed after the original text gives what a fresh analysis gives."""
    from mmscn.lsp.analysis import Analysis
    text = (ROOT / "examples" / example).read_text()
    lines = text.split("\n")
    for i in range(len(lines)):
        for new in (lines[:i] + lines[i + 1:], lines[:i] + ["assert @init_mm.count >= 1"] + lines[i:],
                    lines[:i] + ["exit idle0"] + lines[i + 1:]):
            edited = "\n".join(new)
            inc = Analysis("x.mmscn")
            inc.update(text)
            assert _snapshot_of(inc.update(edited)) == _snapshot_of(Analysis("x.mmscn").update(edited)), (i, new[i:i+1])


def test_a_change_at_the_end_reruns_from_the_last_snapshot_before_it():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_run import churn
    from mmscn.lsp.analysis import Analysis
    text = churn(1000)
    a = Analysis("big.mmscn")
    first = a.update(text)
    assert first.problems == [] and first.run.rerun == len(first.run.calls)
    res = a.update(text + "assert @A0 is freed\n")
    assert res.problems == [] and len(res.run.calls) == len(first.run.calls) + 1
    # the state a checkpoint copies grows with the tasks and mms, so they are spaced by it
    assert 1 <= res.run.rerun <= 100


# ---- robustness: raw bytes in, strict frames out ------------------------------------

class Raw:
    """The server on pipes; a thread reads its stdout and fails on anything but LSP frames."""

    def __init__(self, options=None):
        self.p = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages, self.bad, self.cond = [], [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0
        self.call("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {},
                                 "initializationOptions": options or {"mmscn": {"debounceMs": 0}}})
        self.notify("initialized", {})

    def _read(self):
        out = self.p.stdout
        while True:
            head = out.readline()
            if not head:
                break
            m = re.fullmatch(rb"Content-Length: (\d+)\r\n", head)
            line = out.readline()
            if line.startswith(b"Content-Type:"):
                line = out.readline()
            if m is None or line != b"\r\n":
                self.bad.append(head + line)
                continue
            body = json.loads(out.read(int(m.group(1))))
            with self.cond:
                self.messages.append(body)
                self.cond.notify_all()

    def send_raw(self, data: bytes):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, obj):
        body = json.dumps(obj).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, pred, what, timeout=180):
        """The first message (in arrival order) for which pred holds: a deadline for a hung
        server, not a measurement."""
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(m) for m in self.messages), timeout)
            assert ok, f"no {what} within {timeout} s; the server sent {self.messages[-5:]}"
            return next(m for m in self.messages if pred(m))

    def response(self, rid):
        return self.wait(lambda m: m.get("id") == rid and "method" not in m, f"response to {rid}")

    def call(self, method, params):
        return self.response(self.request(method, params))

    def index(self, pred):
        with self.cond:
            return next(i for i, m in enumerate(self.messages) if pred(m))

    def open(self, uri, text):
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "mmscn", "version": 1,
                                                              "text": text}})

    def close(self):
        assert self.p.poll() is None, "the server died"
        self.call("shutdown", None)
        self.notify("exit", None)
        assert self.p.wait(60) == 0
        assert self.bad == [], f"stdout carried something that is not an LSP frame: {self.bad[:3]}"


@pytest.fixture
def raw():
    r = Raw()
    yield r
    r.close()


def hover_params(uri, line, char):
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": char}}


def test_malformed_requests_get_error_responses_and_the_server_goes_on(raw):
    bad_params = raw.call("textDocument/hover", {"textDocument": {"uri": 7}, "position": "here"})
    assert bad_params["error"]["code"] == -32602
    body = b'{"jsonrpc": "2.0", "id": 99, "method": '
    raw.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert raw.wait(lambda m: m.get("id") is None and m.get("error", {}).get("code") == -32700, "parse error")
    raw.send([1, 2, 3])
    assert raw.wait(lambda m: m.get("id") is None and m.get("error", {}).get("code") == -32600, "invalid request")
    assert raw.call("mmscn/noSuchMethod", {})["error"]["code"] == -32601
    not_open = raw.call("textDocument/hover", hover_params("file:///nowhere.mmscn", 0, 0))
    assert "is not open" in not_open["error"]["message"]
    raw.notify("textDocument/didChange", {"textDocument": {"uri": "file:///nowhere.mmscn", "version": 2},
                                          "contentChanges": [{"text": "x"}]})
    raw.open("file:///ok.mmscn", "spawn A\n")
    assert raw.call("textDocument/hover", hover_params("file:///ok.mmscn", 0, 6))["result"] is not None


def test_binary_junk_is_skipped(raw):
    import random
    rng = random.Random(17)
    junk = bytes(rng.randrange(256) for _ in range(20000)).replace(b"Content-Length", b"")
    raw.send_raw(junk + b"\r\n\r\n")
    raw.send_raw(b"\xff\xfe\x00garbage\r\n\r\n")
    raw.send_raw(b"Content-Length: 99999999999999\r\n\r\n")     # no such body will come
    assert raw.wait(lambda m: m.get("id") is None and m.get("error", {}).get("code") == -32600, "invalid request")
    raw.open("file:///ok.mmscn", "spawn A\n")
    assert raw.call("textDocument/hover", hover_params("file:///ok.mmscn", 0, 6))["result"] is not None
    # a document that is binary junk itself is a diagnostic, not a crash
    raw.open("file:///junk.mmscn", junk.decode("latin-1"))
    assert raw.call("textDocument/documentSymbol", {"textDocument": {"uri": "file:///junk.mmscn"}})["result"] == []
    diags = raw.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                     and m["params"]["uri"] == "file:///junk.mmscn", "diagnostics of the junk")
    assert diags["params"]["diagnostics"][0]["code"] == "syntax"


def test_a_100000_line_file_does_not_hold_up_another_document(raw):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_run import churn
    raw.open("file:///big.mmscn", churn(100_000))
    raw.open("file:///small.mmscn", "spawn A\n")
    small = raw.request("textDocument/hover", hover_params("file:///small.mmscn", 0, 6))
    big = raw.request("textDocument/documentSymbol", {"textDocument": {"uri": "file:///big.mmscn"}})
    assert raw.response(small)["result"] is not None
    assert raw.response(big)["result"]
    big_diags = raw.index(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                          and m["params"]["uri"] == "file:///big.mmscn")
    assert raw.index(lambda m: m.get("id") == small) < big_diags
    assert raw.messages[big_diags]["params"]["diagnostics"] == []


def test_a_flood_of_changes_answers_every_request_and_ends_on_the_last_text(raw):
    uri = "file:///flood.mmscn"
    text = "cpus 2\nspawn A\n"
    raw.open(uri, text)
    ids = []
    for v in range(2, 402):
        line = text.count("\n")
        add = f"assert @A.users == {1 if v < 401 else 5}\n"
        raw.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": v}, "contentChanges": [
            {"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}},
             "text": add}]})
        text += add
        if v % 40 == 0:
            ids.append(raw.request("textDocument/hover", hover_params(uri, 1, 6)))
    for rid in ids:
        assert "result" in raw.response(rid)
    raw.call("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    last = [m for m in raw.messages if m.get("method") == "textDocument/publishDiagnostics"][-1]["params"]
    assert last["version"] == 401
    assert [(d["code"], d["range"]["start"]["line"]) for d in last["diagnostics"]] == [("assertion", 401)]


def until(pred, what, timeout=120):
    """Poll ``pred`` (a deadline for a hung server, not a measurement)."""
    import time
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids


def test_a_long_exploration_never_blocks_and_is_cancelled(tmp_path):
    r = Raw({"mmscn": {"debounceMs": 0, "explore": {"maxSeconds": 600, "maxStates": 10**8}}})
    try:
        heavy = ['scenario "a long exploration"', "cpus 5", "spawn A", "schedule cpu0 A"]
        for c, n in enumerate([15, 14, 13, 12, 11]):
            heavy += [f"cpu{c} {{"] + ["    mmgrab @A" if i % 2 == 0 else "    mmdrop @A" for i in range(n)] + ["}"]
        uri = "file:///heavy.mmscn"
        r.open(uri, "\n".join(heavy) + "\n")
        r.call("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
        explore = r.request("workspace/executeCommand", {"command": "mmscn.explore", "arguments": [uri]})
        until(lambda: _children(r.p.pid), "the exploration's process to start")
        hover = r.request("textDocument/hover", hover_params(uri, 2, 6))
        assert "result" in r.response(hover)
        r.notify("$/cancelRequest", {"id": explore})
        assert r.response(explore)["error"]["code"] == -32800
        assert r.index(lambda m: m.get("id") == hover) < r.index(lambda m: m.get("id") == explore)
        until(lambda: not _children(r.p.pid), "the exploration's process to be killed")
    finally:
        r.close()


def test_the_explore_worker_explores_the_first_expect_lines_kernel():
    """The worker explores the kernel the file's first `expect` names, as `mmscn explore` and the
    server's diagnostics do: LT-02 under `expect fail without 38cf307c1f20` alone fails, with a
    witness; the file as it is (`expect pass` first) holds."""
    from mmscn.lsp.explore_worker import explore
    text = (ROOT / "examples" / "history" / "LT-02-kthread-use-mm-flush-ipi.mmscn").read_text()
    assert "expect pass\nexpect fail without 38cf307c1f20\n" in text
    held = explore({"path": "lt02.mmscn", "text": text})
    failed = explore({"path": "lt02.mmscn", "text": text.replace("expect pass\n", "")})
    assert held["witness"] is None and failed["witness"] is not None
    assert "stale-tlb" in json.dumps(failed["report"])
