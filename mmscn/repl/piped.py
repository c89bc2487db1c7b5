"""The REPL without a terminal: a session read line by line from a byte stream."""
from __future__ import annotations

from mmscn.repl.session import MAX_INPUT, Session, open_braces


# ============================================================ without a terminal
def read_lines(session: Session, stream) -> int:
    """Statements from a byte stream, one input per line (a block until its braces balance)."""
    buf: list = []
    n = depth = 0
    while not session.quit:
        raw = stream.readline(MAX_INPUT + 1)
        if not raw:
            break
        n += 1
        if len(raw) > MAX_INPUT and not raw.endswith(b"\n"):
            while True:   # drop the rest of the line without holding it
                more = stream.readline(MAX_INPUT)
                if not more or more.endswith(b"\n"):
                    break
            session.fail(f"input line {n} is longer than {MAX_INPUT:,} bytes; skipped")
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            session.fail(f"input line {n} is not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                         f"skipped")
            continue
        line = line.rstrip("\n").removesuffix("\r")
        buf.append(line)
        if not buf[0].lstrip().startswith(":"):
            depth += open_braces(line)      # per line: rescanning the open block made long blocks quadratic
            if depth > 0:
                continue
        text, buf, depth = "\n".join(buf), [], 0
        session.feed(text)
    if buf and not session.quit:
        session.feed("\n".join(buf))     # an unclosed block: the parser says where
    if not session.quit:
        session.finish()
    session.out.flush()
    return 1 if session.failures else 0


