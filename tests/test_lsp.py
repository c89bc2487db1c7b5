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


pytestmark = pytest.mark.asyncio


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

async def test_a_refusal_is_underlined_with_its_rule_and_kernel_function(client, tmp_path):
    text = "cpus 2\nspawn A\nspawn kthread kw\nschedule cpu0 A\nexit A\nuse_mm kw @A   # never scheduled\n"
    d = Doc(client, uri_of(tmp_path / "r.mmscn"), text)
    (diag,) = await d.sync()
    assert diag.range == T.Range(T.Position(5, 0), T.Position(5, len("use_mm kw @A")))
    assert diag.severity == T.DiagnosticSeverity.Error and diag.code == "refused"
    assert "kw is not running" in diag.message
    assert [r.message for r in diag.related_information] == ["the rule is in kthread_use_mm (kernel/kthread.c)"]


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


async def test_diagnostics_follow_incremental_changes(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    assert await d.sync() == []
    n = line_of(ZOMBIE, "assert @A.count == 0")
    d.edit(n - 1, len("assert @A.count == "), n - 1, len("assert @A.count == 0"), "7")
    (diag,) = await d.sync()
    assert diag.code == "assertion" and diag.range.start.line == n - 1 and "actual 0" in diag.message
    d.edit(n - 1, len("assert @A.count == "), n - 1, len("assert @A.count == 7"), "0")
    assert await d.sync() == []


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


async def test_hover_after_a_stop_says_the_line_did_not_run(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "x.mmscn"), "spawn A\nexit A\nassert A.mm == @A\n")
    text = await d.hover(3, "A.")
    assert "The run stopped at line 2" in text and "does not exist" not in text


# ---- inlay hints ---------------------------------------------------------------

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


async def test_explore_on_a_file_without_blocks_says_so(client, tmp_path):
    d = Doc(client, uri_of(tmp_path / "z.mmscn"), ZOMBIE)
    out = await client.workspace_execute_command_async(T.ExecuteCommandParams("mmscn.explore", [d.uri]))
    assert out == {"verdict": None, "detail": "no per-CPU blocks: nothing to explore"}
    assert list(await client.text_document_code_lens_async(T.CodeLensParams(d.id()))) == []
