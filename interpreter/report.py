"""Text and JSON reports of a run: the trace, the failures, the summary."""
from __future__ import annotations

from ..dsl.diagnostics import plural, printable
from . import state as S
from .runner import RunResult
from .step import ASSERTION_FAILED, EXPECTED, OK, REFUSED, VIOLATION

INTERLEAVING_NOTE = ("per-CPU blocks: one interleaving, round robin in CPU order, one statement per "
                     "block per turn (mmscn explore runs them all)")
STEPS_NOTE = ("per-CPU blocks, granularity step: one interleaving, round robin in CPU order, one kernel step per "
              "block per turn, each IPI taken at the first boundary where its CPU's irqs are on (mmscn explore "
              "runs them all)")

#: The version of the shape of every `--json` document (run, explore, compare, state): its
#: "format" field.  Adding a key keeps it; renaming, removing or retyping one bumps it.
#: The JSON Schema is mmscn/schema/mmscn-output.schema.json (docs/pictures.md).
JSON_FORMAT = 1

_BOLD, _DIM, _RED, _GREEN, _YELLOW, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[0m"


def statement_text(lines: list, st) -> str:
    """The statement as written: from its column to the next `;`, `#` or line end."""
    if not (0 < st.line <= len(lines)):
        return type(st).__name__
    src = lines[st.line - 1][st.col - 1:]
    depth = 0       # a `}` closes a block, unless it closes a CPU set `{cpu0, cpu1}`
    quoted = False  # `;`, `#` and `}` inside a string are the string's (STRING has no escapes)
    for i, ch in enumerate(src):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch in ";#}":
            src = src[:i]
            break
    return " ".join(src.split())


def format_event(ev) -> str:
    if ev[0] == "ref":
        _, mm, fn, counter, old, new = ev
        return f"{mm:<12} {fn:<24} {counter} {old} -> {new}"
    _, subject, fn, detail = ev
    return f"{subject:<12} {fn:<24} {detail}".rstrip()


def event_json(ev) -> dict:
    if ev[0] == "ref":
        _, mm, fn, counter, old, new = ev
        return {"kind": "refcount", "mm": mm, "function": fn, "counter": counter, "old": old, "new": new}
    _, subject, fn, detail = ev
    return {"kind": "op", "subject": subject, "function": fn, "detail": detail}


def summary_line(r: RunResult) -> str:
    n_stmts = sum(1 for s in r.steps if s.status != ASSERTION_FAILED and type(s.stmt).__name__ != "Assert"
                  and s.done and not s.kind)
    held = r.assertions - sum(1 for s in r.steps if s.status == ASSERTION_FAILED)
    verdict = "passed" if not r.failed else "FAILED"
    if r.scenario.outcome == "fail":
        verdict = "failed, as the header expects" if r.failed else "PASSED, but the header says `expect fail`"
    parts = [plural(n_stmts, "statement"), f"{held}/{r.assertions} assertions held"]
    if r.failed:
        parts.append(plural(len(r.diagnostics), "failure"))
    if r.stopped:
        parts.append("stopped early")
    return f"{verdict}: " + ", ".join(parts)


def cost_line(cost: dict) -> str:
    return (f"cost: {plural(cost['atomics'], 'atomic')} ({cost['mm_count_atomics']} on mm_count, "
            f"{cost['mm_users_atomics']} on mm_users), {cost['switch_mm']} switch_mm "
            f"({plural(cost['pgtable_loads'], 'page-table load')}), "
            f"{plural(cost['lazy_switches'], 'lazy switch', 'lazy switches')}, {plural(cost['ipis'], 'IPI')}")


def hardware_text(hw: dict) -> str:
    """One line of a policy's hardware state: `cpu0 @A lazy, cpu1 @init_mm; mm_cpumask @A {cpu0}`."""
    return S.hardware_text(hw)


def status_mark(st, c) -> str:
    """What follows a statement in a trace (`held`, `refused`, ...); ``c(code, text)`` colours."""
    if type(st.stmt).__name__ == "Assert" and st.status == OK:
        return c(_GREEN, "  held")
    return {REFUSED: c(_RED, "  refused"), VIOLATION: c(_RED, "  VIOLATION"), ASSERTION_FAILED: c(_RED, "  FAILED"),
            EXPECTED: c(_GREEN, "  as expected")}.get(st.status, "")


def write_text(r: RunResult, lines: list, out, quiet: bool = False, color: bool = False, steps=None) -> None:
    """The run's text report; ``steps`` shows only part of the trace (the summary is the whole run's).
    What comes from the scenario (its path, title, statements, messages) passes printable()
    before any colour is added: the report can go to a terminal."""
    sc = r.scenario
    P = printable

    def c(code, s):
        return f"{code}{s}{_RESET}" if color else s

    w = out.write
    if not quiet:
        title = P(f"{sc.path}: {sc.title}" if sc.title else sc.path)
        w(c(_BOLD, title) + f" (arch {r.arch}, {plural(sc.ncpus, 'CPU')})\n")
        idles = ", ".join(f"idle{i}" for i in range(sc.ncpus))
        w(f"  boot: {idles} on @init_mm (users {k_boot_users(r)}, count {k_boot_count(r)})\n")
        blocks_started = False
        last_hw = None
        for st in r.steps if steps is None else steps:
            if st.cpu is not None and not blocks_started:
                blocks_started = True
                note = STEPS_NOTE if sc.granularity == "step" else INTERLEAVING_NOTE
                w(c(_BOLD, f"  {note}") + "\n")
            where = f"cpu{st.cpu}: " if st.cpu is not None else ""
            if st.kind:         # an IPI's or the scenario's interrupt handler (granularity step)
                w(f"{st.stmt.line if st.stmt is not None else 0:5d}  {where}{P(st.step)}{status_mark(st, c)}\n")
            else:
                text = P(statement_text(lines, st.stmt))
                step = f"  [{P(st.step)}]" if st.step else ""
                w(f"{st.stmt.line:5d}  {where}{text}{step}{status_mark(st, c)}\n")
            for ev in st.events:
                w(c(_DIM, "         " + P(format_event(ev))) + "\n")
            if st.hw is not None:
                hw = hardware_text(st.hw)
                if hw != last_hw:     # the hardware line only when it changed
                    w(c(_DIM, "         hw: " + hw) + "\n")
                    last_hw = hw
            if st.status in (REFUSED, VIOLATION, EXPECTED) and st.message:
                w(f"         {P(st.message)}\n")
    for d in r.diagnostics:
        w(d.render(color) + "\n")
    if r.final is not None and not quiet:
        q, held, detail = r.final
        note = "" if held else f": {P(detail)}"
        scope = "in this interleaving (mmscn explore checks them all)"
        w(f"  final {q}: {'holds' if held else 'does not hold'} {scope}{note}\n")
    if not quiet or r.failed or not r.passed:
        # quiet: no title line above, so say which file (`expect fail` may have no located failure)
        w((f"{P(sc.path)}: " if quiet else "") + summary_line(r) + "\n")
        if not quiet:
            w("  " + cost_line(r.cost) + "\n")


def k_boot_users(r):
    return _boot_counter(r, "users")


def k_boot_count(r):
    return _boot_counter(r, "count")


def _boot_counter(r, counter):
    val = 2 if counter == "users" else 1
    for ev in r.boot:
        if ev[0] == "ref" and ev[1] == "@init_mm" and ev[3] == counter:
            val = ev[5]
    return val


def state_json(k, policy) -> dict:
    """The CPUs, tasks and mms with what the policy shows of them (interpreter/state.py)."""
    return S.state_json(k, policy)


def json_head(kind: str) -> dict:
    """The keys every --json document starts with: the format version and what kind of document it is."""
    return {"format": JSON_FORMAT, "kind": kind}


def run_json(r: RunResult, lines: list, states=None) -> dict:
    """The run as JSON; ``states`` (one state_json per step, `run --json --states`) adds each step's state."""
    sc = r.scenario
    steps = []
    for i, st in enumerate(r.steps):
        d = {"line": st.stmt.line, "column": st.stmt.col, "statement": statement_text(lines, st.stmt),
             "status": st.status, "events": [event_json(e) for e in st.events]}
        if st.cpu is not None:
            d["cpu"] = f"cpu{st.cpu}"
        if st.message:
            d["message"] = st.message
        if st.function:
            d["function"] = st.function
        if st.hw is not None:
            d["hardware"] = st.hw
        if st.step:             # granularity step: the kernel step, and an IPI's or interrupt's handler
            d["kernel_step"] = st.step
        if st.kind:
            d["event"] = st.kind
        if states is not None:
            d["state"] = states[i]
        steps.append(d)
    out = {
        **json_head("run"),
        "file": sc.path, "title": sc.name, "arch": r.arch, "cpus": sc.ncpus,
        "expect": sc.outcome, "passed": r.passed,
        "interleaving": "round-robin" if sc.blocks else None, "failed": r.failed, "stopped": r.stopped,
        "boot": [event_json(e) for e in r.boot], "steps": steps,
        "failures": [d.to_json() for d in r.diagnostics],
        "assertions": r.assertions, "cost": r.cost,
        "state": state_json(r.kernel, r.kernel.arch),
    }
    if r.final is not None:
        q, held, detail = r.final
        out["final"] = {"quantifier": q, "holds": held, "detail": detail}
    return out
