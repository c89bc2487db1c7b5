"""The REPL on a terminal: prompt_toolkit's prompt (highlighting, completion, history,
key bindings) and its toolbar; prompt_toolkit is imported only here, inside the functions."""
from __future__ import annotations

import os
import sys
from typing import Optional

from mmscn.repl.completion import make_completer
from mmscn.repl.session import Session, open_braces

PROMPT = "mmscn> "
CONTINUATION = "   ... "


# ============================================================ on a terminal
def history_file() -> str:
    """$XDG_DATA_HOME/mmscn/history (default ~/.local/share/mmscn/history) on Linux."""
    import platformdirs
    return os.path.join(platformdirs.user_data_dir("mmscn", appauthor=False), "history")


def make_history(path: Optional[str] = None):
    """A FileHistory that never takes the session down: an unwritable file only stops saving."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    path = path or history_file()

    class SafeFileHistory(FileHistory):
        broken = False

        def load_history_strings(self):
            try:
                yield from super().load_history_strings()
            except OSError:
                return

        def store_string(self, string):
            if self.broken:
                return
            try:
                super().store_string(string)
            except OSError as e:
                self.broken = True
                sys.stderr.write(f"mmscn: history not saved to {path}: {e.strerror or e}\n")

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as e:
        sys.stderr.write(f"mmscn: history kept in memory only ({os.path.dirname(path)}: {e.strerror or e})\n")
        return InMemoryHistory()
    return SafeFileHistory(path)


def make_lexer():
    """The project's Pygments lexer for statements; a :command line is shown as one."""
    from prompt_toolkit.lexers import Lexer, PygmentsLexer
    from mmscn.dsl.lexer import MmscnLexer
    pygments = PygmentsLexer(MmscnLexer)

    class ReplLexer(Lexer):
        def lex_document(self, document):
            if document.text.lstrip().startswith(":"):
                lines = document.lines
                return lambda i: [("class:meta-command", lines[i])] if i < len(lines) else []
            return pygments.lex_document(document)

    return ReplLexer()


def make_key_bindings():
    from prompt_toolkit.filters import is_searching
    from prompt_toolkit.key_binding import KeyBindings
    kb = KeyBindings()

    @kb.add("enter", filter=~is_searching)
    def _enter(event):
        buf = event.current_buffer
        cs = buf.complete_state
        if cs is not None and cs.current_completion is not None:
            buf.apply_completion(cs.current_completion)
            return
        if not buf.text.lstrip().startswith(":") and open_braces(buf.text) > 0:
            buf.insert_text("\n  ")
        else:
            buf.validate_and_handle()

    @kb.add("escape", "enter", filter=~is_searching)
    def _force(event):
        event.current_buffer.validate_and_handle()

    return kb


def toolbar_lines(session, width: int = 200) -> list:
    """The toolbar's two lines: what each CPU runs on which mm, and the counters of each mm."""
    k, pol = session.k, session.policy
    cpus = []
    for c in range(k.ncpus):
        if not k.c_online[c]:
            cpus.append(f"cpu{c} offline")
            continue
        t = k.c_curr[c]
        lazy = " (lazy)" if pol.is_lazy(k, c) else ""
        cpus.append(f"cpu{c} {k.t_name[t]} on {k.mm_label(k.t_active[t])}{lazy}")
    mms = []
    for m in range(len(k.m_name)):
        state = k.mm_state(m)
        if state != "freed":
            mms.append(f"{k.m_name[m]} {k.m_users[m]}/{k.m_count[m]}" + (" zombie" if state == "zombie" else ""))
    return [_fit(" ", cpus, " | ", width), _fit(" users/count: ", mms, "  ", width)]


def _fit(head: str, items: list, sep: str, width: int) -> str:
    text = head
    for i, it in enumerate(items):
        more = f" (+{len(items) - i} more)"
        add = (sep if i else "") + it
        if len(text) + len(add) + len(more) > width and i:
            return text + more
        text += add
    return text


def make_prompt(session: Session, input=None, output=None, history=None):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.application.current import get_app
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.styles import Style

    drawn = {}      # (width, session.version) -> the toolbar: prompt_toolkit asks on every key

    def toolbar():
        try:
            width = get_app().output.get_size().columns
        except Exception:
            width = 120
        key = (width, session.version)
        if key not in drawn:
            drawn.clear()
            a, b = toolbar_lines(session, max(40, width - 1))
            drawn[key] = FormattedText([("class:toolbar.cpus", a), ("", "\n"), ("class:toolbar.mms", b)])
        return drawn[key]

    style = Style.from_dict({
        "meta-command": "ansicyan bold",
        "bottom-toolbar": "noreverse bg:#303030 #e0e0e0",
        "toolbar.cpus": "bold",
        "continuation": "#808080",
    })
    return PromptSession(
        PROMPT, lexer=make_lexer(), completer=make_completer(session), complete_while_typing=False,
        history=history if history is not None else make_history(), auto_suggest=AutoSuggestFromHistory(),
        enable_history_search=True, multiline=True, key_bindings=make_key_bindings(),
        prompt_continuation=lambda width, n, soft: [("class:continuation", CONTINUATION.rjust(width))],
        bottom_toolbar=toolbar, style=style, include_default_pygments_style=True,
        input=input, output=output)


def interact(session: Session, input=None, output=None, history=None) -> int:
    """The prompt_toolkit loop: Ctrl-C drops the line, Ctrl-D (or :quit) leaves with 0."""
    ps = session.prompt_session = make_prompt(session, input, output, history)
    session.w(f"mmscn repl: {session.boot_line()}")
    session.w("type statements (spawn A, schedule cpu0 A, ...); :help for help, Ctrl-D to leave")
    session.out.flush()
    while not session.quit:
        try:
            text = ps.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        try:
            session.feed(text)
        except KeyboardInterrupt:     # Ctrl-C while a long input runs: as if it had not been typed
            session.rewind(len(session.kept))
            session.version += 1
            session.w("interrupted; the input was taken back")
        session.out.flush()
    return 0

