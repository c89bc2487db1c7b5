"""Reading the kernel by the scenario's names: the lookups statements and conditions
share, the value of a field, and whether a condition holds.

Names stay names until here (dsl/resolve.py says why): a task or mm is looked
up in the kernel's own table when a statement or condition needs it, and one
that no statement has made yet in this interleaving is a StatementError.
"""
from __future__ import annotations

from typing import Optional

from mmscn.dsl import ast as A
from mmscn.dsl.fields import field_type

from .kernel import COST_NAMES, Kernel


class StatementError(Exception):
    """A refusal found by the interpreter itself (names, dead CPUs), with its node;
    ``reason``: the short why, for a failure message that reads the field anyway."""

    def __init__(self, node, message, function, reason=None):
        super().__init__(message)
        self.node, self.message, self.function = node, message, function
        self.reason = reason or message


# ================================================================ names
def task_of(k: Kernel, ref: A.Ref) -> int:
    t = k.task_ix.get(ref.text)
    if t is None:
        raise StatementError(ref, f"no task named `{ref.text}` yet: in this interleaving the "
                             f"statement that makes it has not run", "the scenario",
                             f"{ref.text} is not spawned yet in this interleaving")
    return t


def mm_of(k: Kernel, ref: A.Ref) -> int:
    m = k.mm_ix.get(ref.text)
    if m is None:
        raise StatementError(ref, f"no mm named `{ref.text}` yet: in this interleaving the "
                             f"statement that makes it has not run", "the scenario",
                             f"{ref.text} is not made yet in this interleaving")
    return m


def cpu_of(k: Kernel, ref: Optional[A.Ref], block_cpu: Optional[int] = None) -> int:
    """The CPU a statement names, or its block's when it names none."""
    if ref is None:
        return block_cpu
    n = ref.number
    if n >= k.ncpus:
        raise StatementError(ref, f"{ref.text} does not exist", "the scenario")
    return n


def cost_dict(k: Kernel) -> dict:
    d = dict(zip(COST_NAMES, k.cost))
    d["atomics"] = d["mm_count_atomics"] + d["mm_users_atomics"]
    return d


# ================================================================ fields
def field_value(k: Kernel, policy, f: A.Field):
    """The current value of a field, in model terms (indexes, ints, bools, masks)."""
    o, n = f.owner, f.name
    if o == "cost":
        return cost_dict(k)[n]
    if o == "cpu":
        c = cpu_of(k, f.obj)
        if n == "curr":
            return k.c_curr[c]
        if n == "active_mm":
            return k.t_active[k.c_curr[c]] if k.c_online[c] else None
        if n == "loaded_mm":
            return policy.loaded_mm(k, c) if k.c_online[c] else None
        if n == "lazy":
            return policy.is_lazy(k, c)
        if n == "online":
            return k.c_online[c]
        if n in ("tlb_gen", "asid_gen", "asn_lock"):
            return getattr(k, "c_" + n)[c]
    if o == "task":
        t = task_of(k, f.obj)
        if n == "mm":
            return k.t_mm[t]
        if n == "active_mm":
            return k.t_active[t]
        if n == "state":
            return k.t_state[t]
        if n == "cpu":
            return k.t_cpu[t]
        if n == "kind":
            return k.t_kind[t]
    if o == "mm":
        m = mm_of(k, f.obj)
        if n == "users":
            return k.m_users[m]
        if n == "count":
            return k.m_count[m]
        if n == "state":
            return k.mm_state(m)
        if n in ("tlb_gen", "asid_gen"):
            return getattr(k, "m_" + n)[m]
        if n == "cpumask":
            mask = policy.cpumask(k, m)
            if mask is None:
                raise StatementError(f, f"arch {policy.name} does not track mm_cpumask", "the policy")
            return mask
    raise StatementError(f, f"unknown field {n}", "the scenario")


def literal(k: Kernel, f: A.Field, v: A.Value):
    """A condition's value, in the terms field_value gives."""
    kind = v.kind
    if kind == "none":
        return None
    if kind == "mm":
        return mm_of(k, A.Ref(v.text, v.line, v.col))
    if kind == "task":
        return task_of(k, A.Ref(v.text, v.line, v.col))
    if kind == "cpu":
        return cpu_of(k, A.Ref(v.text, v.line, v.col))
    if kind == "cpuset":
        mask = 0
        for r in v.text:
            mask |= 1 << cpu_of(k, r)
        return mask
    if kind == "word" and v.text == "idle" and f.owner == "cpu":
        return k._idle(cpu_of(k, f.obj))
    return v.text


_CMP = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


# ================================================================ conditions
def evaluate(k: Kernel, policy, c) -> bool:
    """Whether condition ``c`` holds now; StatementError when it names what does not exist."""
    if isinstance(c, A.Cmp):
        return _CMP[c.op](field_value(k, policy, c.field), literal(k, c.field, c.value))
    if isinstance(c, A.Is):
        held = _is(k, policy, c)
        return held != c.negated
    if isinstance(c, A.And):
        return all(evaluate(k, policy, p) for p in c.parts)
    if isinstance(c, A.Or):
        return any(evaluate(k, policy, p) for p in c.parts)
    if isinstance(c, A.Not):
        return not evaluate(k, policy, c.part)
    raise TypeError(c)


def _is(k: Kernel, policy, c: A.Is) -> bool:
    w = c.word
    if c.owner == "mm":
        return k.mm_state(mm_of(k, c.obj)) == w
    if c.owner == "task":
        return k.t_state[task_of(k, c.obj)] == w
    cpu = cpu_of(k, c.obj)
    if w == "lazy":
        return policy.is_lazy(k, cpu)
    if w == "idle":
        return k.c_online[cpu] and k.c_curr[cpu] == k._idle(cpu)
    if w == "online":
        return k.c_online[cpu]
    if w == "offline":
        return not k.c_online[cpu]
    return False


def show_value(k: Kernel, f: A.Field, value) -> str:
    """A model value as the language writes it, by the field's type."""
    if value is None:
        return "none"
    typ = field_type(f.owner, f.name)
    if typ == "task":
        return k.t_name[value]
    if typ == "mm":
        return k.m_name[value]
    if typ == "cpu":
        return f"cpu{value}"
    if typ == "cpuset":
        return "{" + ", ".join(f"cpu{i}" for i in range(k.ncpus) if value >> i & 1) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cond_text(c) -> str:
    if isinstance(c, A.Cmp):
        f = c.field
        owner = "cost" if f.owner == "cost" else f.obj.text
        return f"{owner}.{f.name} {c.op} {value_text(c.value)}"
    if isinstance(c, A.Is):
        return f"{c.obj.text} is {'not ' if c.negated else ''}{c.word}"
    if isinstance(c, A.And):
        return " and ".join(_paren(p) for p in c.parts)
    if isinstance(c, A.Or):
        return " or ".join(_paren(p) for p in c.parts)
    if isinstance(c, A.Not):
        return "not " + _paren(c.part)
    return "?"


def _paren(c) -> str:
    t = cond_text(c)
    return f"({t})" if isinstance(c, (A.And, A.Or)) else t


def value_text(v: A.Value) -> str:
    if v.kind == "none":
        return "none"
    if v.kind == "bool":
        return "true" if v.text else "false"
    if v.kind == "cpuset":
        return "{" + ", ".join(r.text for r in v.text) + "}"
    return str(v.text)


def describe_failure(k: Kernel, policy, c) -> str:
    """What a failed condition saw, field by field.  It never raises: an and/or
    that short-circuited did not read every field, and one may be unreadable
    here (a task another block has not spawned yet in this interleaving, a
    field the policy does not track); that field says so instead of a value."""
    if isinstance(c, A.Cmp):
        value, why = _reading(lambda: show_value(k, c.field, field_value(k, policy, c.field)))
        return f"assertion failed: {cond_text(c)}: " + (f"actual {value}" if why is None
                                                         else f"unreadable here ({why})")
    if isinstance(c, A.Is):
        return f"assertion failed: {cond_text(c)}: {_is_leaf(k, policy, c, 'actually ')}"
    leaves = []
    stack = [c]
    while stack:
        x = stack.pop()
        if isinstance(x, (A.And, A.Or)):
            stack.extend(reversed(x.parts))
        elif isinstance(x, A.Not):
            stack.append(x.part)
        elif isinstance(x, A.Cmp):
            name = f"{x.field.obj.text if x.field.obj else 'cost'}.{x.field.name}"
            value, why = _reading(lambda: show_value(k, x.field, field_value(k, policy, x.field)))
            leaves.append(f"{name} = {value}" if why is None else f"{name} unreadable here ({why})")
        elif isinstance(x, A.Is):
            leaves.append(_is_leaf(k, policy, x, f"{x.obj.text} is "))
    return f"assertion failed: {cond_text(c)}: " + ", ".join(dict.fromkeys(leaves))


def _reading(read) -> tuple:
    """(value, None), or (None, why the value cannot be read here)."""
    try:
        return read(), None
    except StatementError as e:
        return None, e.reason


def _is_leaf(k: Kernel, policy, c: A.Is, head: str) -> str:
    value, why = _reading(lambda: _is_actual(k, policy, c))
    return head + value if why is None else f"{c.obj.text} unreadable here ({why})"


def _is_actual(k: Kernel, policy, c: A.Is) -> str:
    if c.owner == "mm":
        return k.mm_state(mm_of(k, c.obj))
    if c.owner == "task":
        return k.t_state[task_of(k, c.obj)]
    cpu = cpu_of(k, c.obj)
    # a CPU's words are not exclusive: say each one, so `cpu0 is lazy` failing reads "not lazy"
    words = ["online" if k.c_online[cpu] else "offline",
             "lazy" if policy.is_lazy(k, cpu) else "not lazy",
             "idle" if k.c_curr[cpu] == k._idle(cpu) else "not idle"]
    return ", ".join(words)
