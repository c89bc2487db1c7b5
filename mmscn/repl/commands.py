"""The REPL's meta-commands (`:undo`, `:save FILE`, ...): one registry.

Each command is a Command: its name, its syntax, one line of help, its
aliases, what its argument completes to, and the function that carries it
out, handler(session, arg) -> False when it failed.  `:help`, the completion
of `:` words and the dispatch of a typed `:word` all read COMMANDS, so a new
command is one function here under @command(...).  The order of COMMANDS is
the order `:help` lists them in.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from mmscn.dsl.diagnostics import plural, printable, short
from mmscn.formats import BOLD, DIM
from mmscn.repl.help import KEYS, OVERVIEW, STATEMENT_HELP, fields_text


@dataclass(frozen=True, slots=True)
class Command:
    name: str                       # ":save"
    syntax: str                     # ":save FILE"
    help: str                       # what it does, one line
    handler: Callable               # handler(session, arg) -> bool; with bang also force=True
    aliases: tuple = ()             # other names: ":q" for ":quit"
    argument: Optional[str] = None  # what its argument completes to: "topic", "arch" or "file"
    bang: bool = False              # `:NAME! ARG` is the command forced (`:save!` replaces a file)

    def line(self) -> str:
        """The command's line in :help and in completion."""
        return f"`{self.syntax}`: {self.help}"


COMMANDS: dict = {}     # name -> Command
ALIASES: dict = {}      # alias -> name


def command(name: str, syntax: str, help: str, aliases: tuple = (), argument: Optional[str] = None,
            bang: bool = False):
    """Register the function below as the meta-command ``name``."""
    def register(handler):
        COMMANDS[name] = Command(name, syntax, help, handler, aliases, argument, bang)
        ALIASES.update(dict.fromkeys(aliases, name))
        return handler
    return register


def lookup(word: str) -> tuple:
    """(Command, forced) that a typed word names: a name or an alias, `!` after a command
    that takes one; (None, False) if none."""
    cmd = COMMANDS.get(ALIASES.get(word, word))
    if cmd is None and word.endswith("!"):
        forced = COMMANDS.get(ALIASES.get(word[:-1], word[:-1]))
        if forced is not None and forced.bang:
            return forced, True
    return cmd, False


def run_command(session, line: str) -> bool:
    """Carry out a `:command` line; False if it failed (an unknown command too)."""
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    cmd, forced = lookup(name)
    if cmd is None:
        from mmscn.dsl.diagnostics import close_match
        close = close_match(name, COMMANDS)
        hint = f"; did you mean {close}?" if close else ""
        return session.fail(f"unknown command `{_short(name)}`{hint} (:help lists the commands; statements "
                            f"are typed without a colon)")
    return cmd.handler(session, arg, force=True) if forced else cmd.handler(session, arg)


def _short(text: str, n: int = 40) -> str:
    return short(text, n, escape=True)


# ============================================================ the commands
@command(":help", ":help [TOPIC]", "this help; a statement, command or topic name for more",
         aliases=(":h", ":?"), argument="topic")
def cmd_help(s, arg: str) -> bool:
    s.w(help_text(arg, s))
    if arg and not help_topic_known(arg):
        s.failures += 1
        return False
    return True


@command(":state", ":state", "CPUs, tasks and mms as tables")
def cmd_state(s, arg: str) -> bool:
    from mmscn.interpreter.report import state_json
    d = state_json(s.k, s.policy)
    yn = {True: "yes", False: "no"}
    cols = ["cpu", "online", "curr", "active_mm", "lazy"] + (["loaded_mm"] if d["cpus"] and "loaded_mm" in
                                                             d["cpus"][0] else [])
    s.w(s.c(BOLD, "CPUs") + f" (arch {s.arch})")
    s.w(_table(cols, [[yn.get(c[x], c[x]) if isinstance(c[x], bool) else c[x] for x in cols]
                      for c in d["cpus"]]))
    s.w(s.c(BOLD, "tasks"))
    cols = ["name", "kind", "state", "cpu", "mm", "active_mm"]
    s.w(_table(cols, [[t[x] if t[x] is not None else "-" for x in cols] for t in d["tasks"]]))
    s.w(s.c(BOLD, "mms"))
    cols = ["name", "users", "count", "state"] + (["cpumask"] if d["mms"] and "cpumask" in d["mms"][0] else [])
    s.w(_table(cols, [[("{" + ", ".join(m[x]) + "}") if x == "cpumask" else m[x] for x in cols]
                      for m in d["mms"]]))
    return True


@command(":trace", ":trace", "the trace of the whole session")
def cmd_trace(s, arg: str) -> bool:
    s.w("  boot: " + s.boot_line_at_boot())
    for e in s.kept:
        s.show(e)
    if not s.kept:
        s.w(s.c(DIM, "  (no statements yet)"))
    return True


@command(":undo", ":undo", "take back the last kernel statement (and the assertions after it)")
def cmd_undo(s, arg: str) -> bool:
    if not s.kept:
        s.w("nothing to undo")
        return True
    t = len(s.kept) - 1
    while t > 0 and type(s.kept[t].stmt).__name__ == "Assert":
        t -= 1
    gone = s.kept[t:]
    s.rewind(t)
    extra = f" (and {plural(len(gone) - 1, 'assertion')} after it)" if len(gone) > 1 else ""
    e = gone[0]
    where = f"cpu{e.cpu}: " if e.cpu is not None else ""
    s.w(f"undone: line {e.stmt.line}: {where}{printable(s.source(e, flat=False))}{extra}")
    return True


@command(":reset", ":reset", "start over, empty (the arch and the CPU count stay)")
def cmd_reset(s, arg: str) -> bool:
    s.start_over()
    s.w("  " + s.boot_line())
    return True


@command(":load", ":load FILE", "run a scenario file into the session", argument="file")
def cmd_load(s, arg: str) -> bool:
    if not arg:
        return s.fail("`:load FILE` needs a file name")
    return s.load(os.path.expanduser(arg)) == "ok"


@command(":save", ":save FILE", "write the session as a new .mmscn file that `mmscn run` replays "
                                "(`:save! FILE` replaces an existing file)", argument="file", bang=True)
def cmd_save(s, arg: str, force: bool = False) -> bool:
    """`:save FILE` writes a new file; `:save! FILE` may replace one (never through a symlink)."""
    from mmscn.dsl.files import Unwritable, write_file
    if not arg:
        return s.fail("`:save FILE` needs a file name")
    text = s.save_text()
    arg = os.path.expanduser(arg)
    try:
        write_file(arg, text, force=force, hint="`:save! FILE` replaces it")
    except Unwritable as e:
        return s.fail(str(e))
    n = len(s.kept)
    s.w(printable(f"saved {plural(n, 'statement')} to {arg} (`mmscn run {arg}` replays them)"))
    return True


@command(":draw", ":draw FILE", "draw the session as an SVG timeline, a lane per CPU (`:draw! FILE` replaces "
                                "an existing file)", argument="file", bang=True)
def cmd_draw(s, arg: str, force: bool = False) -> bool:
    """`:draw FILE`: the session so far as an SVG timeline (mmscn/pictures), the run of
    what `:save` would write; `:draw! FILE` may replace a file."""
    from mmscn.dsl.files import Unwritable, write_file
    from mmscn.dsl.resolve import load
    from mmscn.interpreter.arches import known_arches
    from mmscn.pictures.record import run_timeline
    from mmscn.pictures.svg import svg
    from mmscn.repl.session import REPL_PATH
    if not arg:
        return s.fail("`:draw FILE` needs a file name")
    text = s.save_text()
    sc = load(text, REPL_PATH, known_arches())
    picture = svg(run_timeline(sc, text.split("\n"), s.arch))
    arg = os.path.expanduser(arg)
    try:
        write_file(arg, picture, force=force, hint="`:draw! FILE` replaces it")
    except Unwritable as e:
        return s.fail(str(e))
    s.w(printable(f"drew {plural(len(s.kept), 'statement')} to {arg}"))
    return True


@command(":arch", ":arch [NAME]", "list the architectures, or replay the session on NAME", argument="arch")
def cmd_arch(s, arg: str) -> bool:
    from mmscn.interpreter import policies
    names = policies.names()
    if not arg:
        for n in names:
            s.w(f"  {'*' if n == s.arch else ' '} {n:<12} {policies.get(n).summary}")
        return True
    if arg not in names:
        return s.fail(policies.unknown(_short(arg)))
    from mmscn import kernels
    try:
        if s.release and not policies.get(arg).kernel:
            kernels.check_arch_release(arg, s.release, f":arch {arg}: the session runs kernel")
    except kernels.FlagError as e:
        return s.fail(str(e))
    old_arch = s.arch
    diff = s.replay_on(arg)
    if diff is not None:
        s.w(f"the session does not replay on {arg}, so it stays on {old_arch}:")
        for e, f in diff[:5]:
            s.w(printable(f"  line {e.stmt.line}: {s.source(e)}: {f.step.status} on {arg}"
                          + (f": {f.step.message}" if f.step.message else "")))
        s.failures += 1
        s.w("  (:reset then :arch starts an empty session on it)")
        return False
    # the boot, not the state after the replay: cpu0 may no longer run idle0 on init_mm
    s.w(f"  {s.boot_line_at_boot()}; {plural(len(s.kept), 'statement')} "
        f"replayed")
    return True


@command(":kernel", ":kernel [vX.Y]", "the kernel the session runs and the modelled changes in it, or replay "
                                     "the session on release vX.Y")
def cmd_kernel(s, arg: str) -> bool:
    from mmscn import kernels
    from mmscn.interpreter import version as V
    from mmscn.interpreter.arches import fixed_kernel
    if not arg:
        v = s.kernel_version()
        s.w(f"  {v.name}" + (f", config {', '.join(sorted(v.configs))}" if v.configs else ""))
        rows = V.newest_first(s.arch)
        width = max(len(c.key) for c in rows) if rows else 12
        for c in rows:
            mark = "in" if v.has(c.key) else "reverted" if c.key in v.reverts else "not yet"
            s.w(printable(f"  {mark:<9} {c.release:<8} {c.key:<{width}} {c.title}"))
        return True
    try:
        kernels.check_release(arg, ":kernel")
        if not fixed_kernel(s.arch):
            kernels.check_arch_release(s.arch, arg, ":kernel")
    except kernels.FlagError as e:
        return s.fail(str(e))
    if fixed_kernel(s.arch):
        return s.fail(f"arch {s.arch} is the generic architecture at {fixed_kernel(s.arch)} and names its own "
                      f"kernel: `:arch generic` first")
    gone = [k for k in s.reverts if not V.lands(k, arg)]
    return _replay_kernel(s, f"kernel {arg}", release=arg, reverts=tuple(k for k in s.reverts if k not in gone))


@command(":revert", ":revert [COMMIT|none]", "the changes the session's kernel leaves out, or replay the session "
                                             "without COMMIT too (`:revert none`: with all of them)")
def cmd_revert(s, arg: str) -> bool:
    from mmscn import kernels
    from mmscn.interpreter import version as V
    if not arg:
        if not s.reverts:
            s.w("  no modelled change is reverted (`:revert COMMIT` leaves one out; mmscn history lists them)")
        for k in s.reverts:
            c = next(c for c in V.CHANGES if c.key == k)
            s.w(printable(f"  {c.key} {c.title} ({c.release})"))
        return True
    if arg == "none":
        return _replay_kernel(s, "every modelled change", reverts=())
    try:
        keys = kernels.flag_reverts([arg], s.arch, s.release or s.kernel_version().release)
    except kernels.FlagError as e:
        return s.fail(":revert " + str(e).removeprefix("--revert "))
    if keys[0] in s.reverts:
        s.w(f"  {keys[0]} is already reverted")
        return True
    return _replay_kernel(s, f"{keys[0]} reverted", reverts=s.reverts + keys)


def _replay_kernel(s, what: str, **kernel) -> bool:
    """Replay the session on another kernel (:kernel, :revert), as :arch replays it on another arch."""
    old = s.kernel_version().name
    diff = s.replay_on(None, **kernel)
    if diff is not None:
        s.w(printable(f"the session does not replay with {what}, so it stays on {old}:"))
        for e, f in diff[:5]:
            s.w(printable(f"  line {e.stmt.line}: {s.source(e)}: {f.step.status}"
                          + (f": {f.step.message}" if f.step.message else "")))
        s.failures += 1
        s.w("  (:reset then the header line starts an empty session on it)")
        return False
    s.w(printable(f"  {s.kernel_version().name}; {plural(len(s.kept), 'statement')} replayed"))
    return True


@command(":quit", ":quit", "leave (so does Ctrl-D)", aliases=(":q", ":exit"))
def cmd_quit(s, arg: str) -> bool:
    s.quit = True
    return True


# ============================================================ help
def help_topics() -> list:
    return ["statements", "fields", "keys"] + list(STATEMENT_HELP) + list(COMMANDS)


def _help_command(topic: str) -> Optional[Command]:
    """The command a help topic names: `:undo`, `undo`, or an alias (`q`)."""
    return lookup(topic if topic.startswith(":") else ":" + topic)[0]


def help_topic_known(topic: str) -> bool:
    t = topic.strip()
    return t in help_topics() or _help_command(t) is not None


def help_text(topic: str, session=None) -> str:
    t = topic.strip()
    if not t:
        return OVERVIEW.replace("{commands}", "\n".join(f"  {c.name:<8} {c.line()}" for c in COMMANDS.values())) \
            .replace("{keys}", KEYS)
    if t == "keys":
        return KEYS
    if t == "statements":
        return "\n".join(f"  {u}\n      {d}" for u, d in STATEMENT_HELP.values())
    if t == "fields":
        return fields_text(session)
    if t in STATEMENT_HELP:
        u, d = STATEMENT_HELP[t]
        return f"  {u}\n      {d}"
    cmd = _help_command(t)
    if cmd is not None:
        return "  " + cmd.line()
    import difflib    # only on the error path
    close = difflib.get_close_matches(t, help_topics(), n=3)
    return (f"no help on `{_short(t)}`" + (f"; did you mean {', '.join(close)}?" if close else "")
            + "\ntopics: statements, fields, keys, a statement word (spawn, schedule, ...) or a command (:undo, ...)")


def _table(cols, rows) -> str:
    rows = [[str(x) for x in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    lines = ["  " + "  ".join(c.ljust(wd) for c, wd in zip(cols, widths)).rstrip()]
    lines += ["  " + "  ".join(x.ljust(wd) for x, wd in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
