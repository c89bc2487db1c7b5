"""`mmscn lsp`: the language server (pygls on lsprotocol), over stdio or TCP.

The event loop only receives and answers; work goes elsewhere so that no
request waits for another:

* analyses (parse, resolve, run: analysis.py) run on one thread, one document
  version at a time; changes are debounced, and a request about a document
  first waits for the analysis of its current text;
* queries (hover, completion, semantic tokens, ...) run on a thread pool
  against the finished analysis, which they only read;
* an exploration runs in a process of its own (explore_worker.py), bounded
  by the settings and killed when the text changes, the document closes or
  the request that wanted it is cancelled.

Nothing but the protocol is written to standard output: serve() moves the
protocol to a private descriptor and points descriptor 1 at standard error.
A request the server cannot read gets an error response; one it cannot
serve gets an error response too; the server goes on.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lsprotocol import types as T
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcParseError, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path, to_fs_path

from mmscn import __version__

from . import features as F
from .analysis import Analysis, Problem, Result

log = logging.getLogger("mmscn.lsp")

DEFAULTS = {"inlayHints": True, "debounceMs": 25,
            "explore": {"onSave": True, "maxStates": 200_000, "maxSeconds": 10.0}}


class Settings:
    """The `mmscn` settings: initializationOptions, then workspace/didChangeConfiguration.
    A value of the wrong type keeps the default (a settings typo must not stop the server)."""

    def __init__(self):
        self.inlay_hints = DEFAULTS["inlayHints"]
        self.debounce = DEFAULTS["debounceMs"] / 1000
        self.on_save = DEFAULTS["explore"]["onSave"]
        self.max_states = DEFAULTS["explore"]["maxStates"]
        self.max_seconds = DEFAULTS["explore"]["maxSeconds"]

    def update(self, data) -> None:
        if not isinstance(data, dict):
            return
        if isinstance(data.get("mmscn"), dict):
            data = data["mmscn"]
        ex = data.get("explore") if isinstance(data.get("explore"), dict) else {}

        def num(v, lo, hi):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi

        if isinstance(data.get("inlayHints"), bool):
            self.inlay_hints = data["inlayHints"]
        if num(data.get("debounceMs"), 0, 10_000):
            self.debounce = data["debounceMs"] / 1000
        if isinstance(ex.get("onSave"), bool):
            self.on_save = ex["onSave"]
        if num(ex.get("maxStates"), 1, 10**9):
            self.max_states = int(ex["maxStates"])
        if num(ex.get("maxSeconds"), 0.01, 86_400):
            self.max_seconds = float(ex["maxSeconds"])


class Positions:
    """1-based character positions (the parser's) to and from the client's 0-based units."""

    def __init__(self, lines: list, encoding):
        self.lines = lines
        self.encoding = str(encoding or "utf-16")

    def _units(self, s: str) -> int:
        if self.encoding == "utf-32" or s.isascii():
            return len(s)
        if self.encoding == "utf-8":
            return len(s.encode("utf-8"))
        return len(s.encode("utf-16-le")) // 2

    def pos(self, line: int, col: int) -> T.Position:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return T.Position(max(0, line - 1), self._units(text[:max(0, col - 1)]))

    def range(self, line: int, col: int, end: int) -> T.Range:
        return T.Range(self.pos(line, col), self.pos(line, end))

    def at(self, p: T.Position) -> tuple:
        line = p.line + 1
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii() or self.encoding == "utf-32":
            return line, p.character + 1
        units = 0
        for i, ch in enumerate(text):
            if units >= p.character:
                return line, i + 1
            units += self._units(ch)
        return line, len(text) + 1


@dataclass
class Exploration:
    seq: int
    task: Optional[asyncio.Task] = None
    report: Optional[dict] = None
    witness: Optional[str] = None
    error: Optional[str] = None


class Doc:
    def __init__(self, uri: str):
        self.uri = uri
        self.path = to_fs_path(uri) or uri
        self.analysis = Analysis(self.path)
        self.seq = 0                         # our count of the versions the client sent
        self.result: Optional[Result] = None
        self.task: Optional[asyncio.Future] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.exploration: Optional[Exploration] = None


class _Answered:
    """A message already answered with an error while it was being read."""
    jsonrpc = None


ANSWERED = _Answered()


class Protocol(LanguageServerProtocol):
    """pygls' protocol, answering what it would only log: a request whose params do not
    fit gets an error response with its id, a message that is not a JSON-RPC object one
    with id null."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as e:
            if "method" in data and "id" in data:
                msg_id = data["id"] if isinstance(data["id"], (int, str)) and not isinstance(data["id"], bool) \
                    else None
                self._send_response(msg_id, error=JsonRpcInvalidParams(
                    f"cannot read the params of {str(data['method'])[:80]}: {e.message}").to_response_error())
                return ANSWERED
            raise

    def _handle_cancel_notification(self, msg_id):
        # pygls cancels only a request not yet started; a command under way is ours to stop
        task = self._server.requests.get(msg_id)
        if task is not None:
            task.cancel()
        super()._handle_cancel_notification(msg_id)

    def handle_message(self, message):
        if message is ANSWERED:
            return
        if not hasattr(message, "jsonrpc"):
            self._send_response(None, error=JsonRpcInvalidRequest("not a JSON-RPC message object")
                                .to_response_error())
            return
        super().handle_message(message)


class Server(LanguageServer):
    def __init__(self):
        super().__init__("mmscn", __version__, protocol_cls=Protocol)
        self.docs: dict = {}
        self.settings = Settings()
        # one analysis per document at a time (Doc.task), several documents at once
        self.analysis_pool = ThreadPoolExecutor(4, "mmscn-analysis")
        self.query_pool = ThreadPoolExecutor(2, "mmscn-query")
        self.requests: dict = {}        # id of a command request under way -> its task

    def report_server_error(self, error, source):
        if isinstance(error, ValueError) and source is JsonRpcException:
            # a body that is not JSON (or not UTF-8): JSON-RPC's answer is a parse error, id null
            self.protocol._send_response(None, error=JsonRpcParseError(f"not JSON: {error}"[:200])
                                         .to_response_error())
            return
        log.warning("%s", error)

    # ---- documents and their analyses
    def doc(self, uri: str) -> Doc:
        d = self.docs.get(uri)
        if d is None:
            raise JsonRpcInvalidParams(f"{uri} is not open (send textDocument/didOpen first)")
        return d

    def schedule(self, doc: Doc, delay: float) -> None:
        if doc.timer is not None:
            doc.timer.cancel()
        doc.timer = asyncio.get_running_loop().call_later(delay, lambda: asyncio.ensure_future(self.fresh(doc)))

    async def fresh(self, doc: Doc) -> Result:
        """The analysis of the document's current text, running it now if it is not done."""
        while doc.result is None or doc.result.version != doc.seq:
            if doc.timer is not None:
                doc.timer.cancel()
                doc.timer = None
            if doc.task is None:
                doc.task = asyncio.ensure_future(self._analyse(doc))
            await asyncio.shield(doc.task)
        return doc.result

    async def _analyse(self, doc: Doc) -> None:
        seq = doc.seq
        try:
            text = self.workspace.get_text_document(doc.uri).source
            loop = asyncio.get_running_loop()
            doc.result = await loop.run_in_executor(self.analysis_pool, doc.analysis.update, text, seq)
            if self.docs.get(doc.uri) is doc:
                self.publish(doc)
        except Exception as e:      # Analysis.update reports its own; this is the plumbing failing
            log.warning("analysis of %s failed: %s", doc.uri, e)
            doc.result = Result(seq, "", [""], [Problem(1, 1, 2, f"mmscn lsp: internal error: {e}", "error",
                                                        "internal")])
        finally:
            doc.task = None

    def positions(self, res: Result) -> Positions:
        return Positions(res.lines, self.workspace.position_encoding)

    def publish(self, doc: Doc) -> None:
        res = doc.result
        problems = list(res.problems)
        ex = doc.exploration
        if ex is not None and ex.seq == doc.seq and ex.task is None:
            problems += explore_problems(res, ex)
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
            doc.uri, F.diagnostics(problems, doc.uri, self.positions(res)),
            version=self.workspace.get_text_document(doc.uri).version))

    async def query(self, uri: str, fn, *args):
        """fn(result, *args) on the query threads, against the current text's analysis."""
        res = await self.fresh(self.doc(uri))
        return await asyncio.get_running_loop().run_in_executor(self.query_pool, fn, res, *args)

    def close(self, uri: str) -> None:
        doc = self.docs.pop(uri, None)
        if doc is None:
            return
        if doc.timer is not None:
            doc.timer.cancel()
        self.cancel_exploration(doc)
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, []))

    # ---- exploration
    def cancel_exploration(self, doc: Doc) -> None:
        ex = doc.exploration
        if ex is not None and ex.task is not None:
            ex.task.cancel()
        doc.exploration = None

    async def explore(self, doc: Doc) -> Optional[Exploration]:
        """The exploration of the current text (the one running or done, or a new one)."""
        res = await self.fresh(doc)
        if F.lens_line(res) is None:
            return None
        ex = doc.exploration
        if ex is None or ex.seq != doc.seq:
            self.cancel_exploration(doc)
            ex = doc.exploration = Exploration(doc.seq)
            ex.task = asyncio.ensure_future(self._explore(doc, ex, res.text))
        if ex.task is not None:
            try:
                await ex.task
            except asyncio.CancelledError:
                # our caller was cancelled ($/cancelRequest): so is the search it asked for
                if doc.exploration is ex:
                    self.cancel_exploration(doc)
                raise
        return ex

    async def _explore(self, doc: Doc, ex: Exploration, text: str) -> None:
        s = self.settings
        req = json.dumps({"path": doc.path, "text": text, "max_states": s.max_states,
                          "max_seconds": s.max_seconds}).encode()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmscn.lsp.explore_worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            # the worker stops itself at maxSeconds; the margin covers its start and the witness
            out, _ = await asyncio.wait_for(proc.communicate(req), s.max_seconds + 30)
            answer = json.loads(out or b"{}")
            ex.report, ex.witness = answer.get("report"), answer.get("witness")
            ex.error = answer.get("error") or (None if ex.report else "the exploration gave no answer")
        except asyncio.TimeoutError:
            ex.error = "the exploration did not end in time and was stopped"
        except ValueError as e:
            ex.error = f"unreadable answer from the exploration: {e}"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            ex.task = None
        if doc.exploration is ex and self.docs.get(doc.uri) is doc and doc.result is not None:
            self.publish(doc)
            if _supports(self, "workspace.code_lens.refresh_support"):
                self.workspace_code_lens_refresh(None)


def _supports(server: Server, path: str) -> bool:
    x = server.client_capabilities
    for part in path.split("."):
        x = getattr(x, part, None)
        if x is None:
            return False
    return bool(x)


def verdict(ex: Exploration) -> tuple:
    """(severity, headline, detail) of an exploration, as `mmscn explore` words its last line."""
    if ex.error:
        return "warning", "explore could not run", ex.error
    rep = ex.report
    p, detail = rep["passed"], rep["detail"]
    states = f" ({rep['stats']['states_explored']:,} states, {rep['stats']['seconds']:.2f} s)"
    if p is None:
        return "warning", "verdict: INCOMPLETE", detail + states
    if rep["expect"] == "fail":
        return ("info", "verdict: fails, as the header expects", detail + states) if p else \
            ("error", "verdict: HOLDS, but the header says `expect fail`", detail + states)
    return ("info", "verdict: holds", detail + states) if p else ("error", "verdict: FAILS", detail + states)


def lens_title(ex: Optional[Exploration]) -> Optional[str]:
    if ex is None:
        return None
    if ex.task is not None:
        return "running..."
    sev, head, _ = verdict(ex)
    return head.replace("verdict: ", "")


def explore_problems(res: Result, ex: Exploration) -> list:
    """The verdict on the `final` line (the first block's without one), the failure where it happened,
    with the interleaving that reaches it as related information."""
    line = F.lens_line(res)
    if line is None:
        return []
    sev, head, detail = verdict(ex)
    end = len(res.lines[line - 1].split("#", 1)[0].rstrip()) + 1
    out = [Problem(line, 1, max(2, end), f"explore: {head}: {detail}", sev, "explore")]
    f = (ex.report or {}).get("failure")
    if f and f.get("line"):
        steps = [(s["line"], 1, len(res.lines[s["line"] - 1]) + 1 if 0 < s["line"] <= len(res.lines) else 1,
                  f"step {s['step']}: {s['cpu']} {s['statement']}") for s in ex.report.get("interleaving", [])]
        code = (f.get("rules") or [f["kind"]])[0]
        col = max(1, f.get("column") or 1)
        out.append(Problem(f["line"], col, col + 1, f"explore: {f['message']}", "error" if sev == "error" else "info",
                           code, f.get("function", ""), related=tuple(steps)))
    return out


def witness_path(doc: Doc) -> Path:
    """Beside the scenario (NAME.witness.mmscn), or in the temporary directory for a buffer."""
    p = Path(doc.path)
    if doc.uri.startswith("file:") and p.parent.is_dir() and os.access(p.parent, os.W_OK):
        return p.with_name(p.stem + ".witness.mmscn")
    return Path(tempfile.gettempdir()) / ((p.stem or "scenario") + ".witness.mmscn")


def make_server() -> Server:
    server = Server()

    def uri_pos(params):
        return params.text_document.uri, params.position

    async def at(params, fn, *extra):
        """fn(result, line, col, *extra) at the request's position, on the query threads."""
        uri, p = uri_pos(params)

        def run(res):
            line, col = server.positions(res).at(p)
            return fn(res, line, col, *extra)
        return await server.query(uri, run)

    @server.feature(T.INITIALIZE)
    def initialize(params: T.InitializeParams):
        server.settings.update(params.initialization_options)

    @server.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(params: T.DidChangeConfigurationParams):
        server.settings.update(params.settings)
        if _supports(server, "workspace.inlay_hint.refresh_support"):
            server.workspace_inlay_hint_refresh(None)

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: T.DidOpenTextDocumentParams):
        uri = params.text_document.uri
        server.close(uri)       # an open of an open document starts it over
        doc = server.docs[uri] = Doc(uri)
        doc.seq = 1
        server.schedule(doc, 0)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: T.DidChangeTextDocumentParams):
        doc = server.doc(params.text_document.uri)
        doc.seq += 1
        server.cancel_exploration(doc)      # it speaks of a text that is gone
        server.schedule(doc, server.settings.debounce)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE, T.SaveOptions(include_text=False))
    async def did_save(params: T.DidSaveTextDocumentParams):
        if server.settings.on_save:
            await server.explore(server.doc(params.text_document.uri))

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: T.DidCloseTextDocumentParams):
        server.close(params.text_document.uri)

    @server.feature(T.SHUTDOWN)
    def shutdown(params):
        for doc in list(server.docs.values()):
            server.cancel_exploration(doc)

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    async def hover(params: T.HoverParams):
        text = await at(params, F.hover)
        return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, text)) if text else None

    @server.feature(T.TEXT_DOCUMENT_INLAY_HINT)
    async def inlay_hint(params: T.InlayHintParams):
        if not server.settings.inlay_hints:
            return []
        r = params.range
        return await server.query(params.text_document.uri, lambda res: F.inlay_hints(
            res, r.start.line + 1, r.end.line + 1, server.positions(res)))

    def location(uri, res, span):
        line, col, end = span
        return T.Location(uri, server.positions(res).range(line, col, end))

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    async def definition(params: T.DefinitionParams):
        uri = params.text_document.uri
        return await at(params, lambda res, line, col: (
            lambda span: location(uri, res, span) if span else None)(F.definition(res, line, col)))

    @server.feature(T.TEXT_DOCUMENT_REFERENCES)
    async def references(params: T.ReferenceParams):
        uri = params.text_document.uri
        return await at(params, lambda res, line, col: [
            location(uri, res, s) for s in F.references(res, line, col, params.context.include_declaration)])

    @server.feature(T.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(params: T.PrepareRenameParams):
        return await at(params, lambda res, line, col: (
            lambda span: server.positions(res).range(*span) if span else None)(F.prepare_rename(res, line, col)))

    @server.feature(T.TEXT_DOCUMENT_RENAME)
    async def rename(params: T.RenameParams):
        uri = params.text_document.uri

        def run(res, line, col):
            try:
                edits = F.rename(res, line, col, params.new_name)
            except F.RenameRefused as e:
                raise JsonRpcInvalidParams(str(e))
            conv = server.positions(res)
            return T.WorkspaceEdit(changes={uri: [T.TextEdit(conv.range(ln, c, e), t) for ln, c, e, t in edits]})
        return await at(params, run)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbol(params: T.DocumentSymbolParams):
        return await server.query(params.text_document.uri, lambda res: F.document_symbols(res, server.positions(res)))

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "@", " "]))
    async def completion(params: T.CompletionParams):
        def run(res, line, col):
            items, partial = F.completions(res, line, col)
            conv = server.positions(res)
            rng = conv.range(line, col - len(partial), col)
            return T.CompletionList(False, [T.CompletionItem(w, kind=F.completion_kind(w, meta), detail=meta,
                                                             text_edit=T.TextEdit(rng, w), sort_text=f"{i:04d}")
                                            for i, (w, meta) in enumerate(items)])
        return await at(params, run)

    @server.feature(T.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, F.LEGEND)
    async def semantic_tokens(params: T.SemanticTokensParams):
        data = await server.query(params.text_document.uri, lambda res: F.semantic_tokens(res, server.positions(res)))
        return T.SemanticTokens(data)

    @server.feature(T.TEXT_DOCUMENT_CODE_ACTION, T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
    async def code_action(params: T.CodeActionParams):
        uri = params.text_document.uri
        return await server.query(uri, lambda res: F.code_actions(res, uri, params.range, server.positions(res)))

    @server.feature(T.TEXT_DOCUMENT_CODE_LENS)
    async def code_lens(params: T.CodeLensParams):
        uri = params.text_document.uri
        doc = server.doc(uri)
        res = await server.fresh(doc)
        ex = doc.exploration if doc.exploration is not None and doc.exploration.seq == doc.seq else None
        return F.code_lenses(res, uri, server.positions(res), lens_title(ex))

    def doc_of(args) -> Doc:
        if not args or not isinstance(args[0], str):
            raise JsonRpcInvalidParams("the command takes the document's URI")
        return server.doc(args[0])

    async def cancellable(coro):
        """Run a command's coroutine so that $/cancelRequest of its request stops it."""
        rid = server.protocol.msg_id
        server.requests[rid] = asyncio.current_task()
        try:
            return await coro
        finally:
            server.requests.pop(rid, None)

    @server.command("mmscn.explore")
    async def explore_command(*args):
        ex = await cancellable(server.explore(doc_of(args)))
        if ex is None:
            return {"verdict": None, "detail": "no per-CPU blocks: nothing to explore"}
        sev, head, detail = verdict(ex)
        return {"verdict": head, "detail": detail, "passed": (ex.report or {}).get("passed")}

    @server.command("mmscn.writeWitness")
    async def write_witness(*args):
        doc = doc_of(args)
        ex = await cancellable(server.explore(doc))
        if ex is None or ex.witness is None:
            why = "no per-CPU blocks" if ex is None else ex.error or "no interleaving fails: there is no witness"
            server.window_show_message(T.ShowMessageParams(T.MessageType.Info, f"mmscn: {why}"))
            return {"witness": None, "reason": why}
        path = witness_path(doc)
        try:
            path.write_text(ex.witness, encoding="utf-8")
        except OSError as e:
            raise JsonRpcInvalidParams(f"cannot write the witness to {path}: {e.strerror or e}")
        if _supports(server, "window.show_document.support"):
            server.window_show_document(T.ShowDocumentParams(from_fs_path(str(path)), take_focus=True))
        return {"witness": str(path)}

    return server


class Input:
    """Standard input for pygls' reader, which reads a body with read(Content-Length): a
    length no message has (junk that looked like a header) is not allocated; the body
    reads as `{}`, answered as an invalid request, and what follows is skipped as junk
    up to the next real header."""
    MAX_BODY = 256 * 1024 * 1024

    def __init__(self, raw):
        self.raw = raw

    def readline(self) -> bytes:
        return self.raw.readline()

    def read(self, n: int) -> bytes:
        if n > self.MAX_BODY:
            log.warning("a message of %d bytes: skipped as junk", n)
            return b"{}"
        return self.raw.read(n)


def serve(tcp: Optional[int] = None, host: str = "127.0.0.1") -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="mmscn lsp: %(message)s")
    server = make_server()
    if tcp is not None:
        server.start_tcp(host, tcp)
        return 0
    # The protocol gets its own descriptor; descriptor 1 and sys.stdout become standard
    # error, so a stray print (ours, a library's, a child's) cannot corrupt the stream.
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    server.start_io(Input(sys.stdin.buffer), proto_out)
    return 0
