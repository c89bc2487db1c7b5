"""What each field and state word of a condition holds: the one table of field types.

The resolver checks a comparison's value against it, the parser says which
kind of value it expected, and the REPL completes from it.
"""
from __future__ import annotations

# What each field holds, for checking the value it is compared with.
FIELD_TYPES = {
    ("cpu", "curr"): "task", ("cpu", "active_mm"): "mm", ("cpu", "loaded_mm"): "mm",
    ("cpu", "lazy"): "bool", ("cpu", "online"): "bool",
    ("task", "mm"): "mm", ("task", "active_mm"): "mm", ("task", "state"): "task_state",
    ("task", "cpu"): "cpu", ("task", "kind"): "task_kind",
    ("mm", "users"): "int", ("mm", "count"): "int", ("mm", "state"): "mm_state",
    ("mm", "cpumask"): "cpuset",
    # the TLB's truth (interpreter/state.py): kept for every arch
    ("cpu", "tlb_gen"): "int", ("cpu", "asid_gen"): "int", ("cpu", "asn_lock"): "bool",
    ("mm", "tlb_gen"): "int", ("mm", "asid_gen"): "int",
}
WORDS = {
    "task_state": ("running", "runnable", "dead"),
    "task_kind": ("user", "kthread", "idle"),
    "mm_state": ("live", "zombie", "freed"),
}
# Fields that only some policies model: (owner, field) -> (the policy's
# hardware_fields entry, the kernel's name for it).
HARDWARE_FIELDS = {("mm", "cpumask"): ("cpumask", "mm_cpumask"),
                   ("cpu", "asn_lock"): ("asn_lock", "alpha's cpu_data[cpu].asn_lock")}
IS_WORDS = {
    "cpu": ("lazy", "idle", "online", "offline"),
    "task": ("running", "runnable", "dead"),
    "mm": ("live", "zombie", "freed"),
}
TYPE_WORDS = {
    "task": "a task (a task name, `idle` or none)", "mm": "an mm (like @A) or none",
    "bool": "true or false", "int": "a number", "cpu": "a CPU (cpuN) or none",
    "cpuset": "a set of CPUs like {cpu0, cpu1}",
}
# The kinds of value (dsl/ast.py Value.kind) each type is compared with, as TYPE_WORDS says them
# (a task also with the word `idle`; the types of WORDS with their words)
VALUE_KINDS = {"task": ("task", "none"), "mm": ("mm", "none"), "bool": ("bool",), "int": ("int",),
               "cpu": ("cpu", "none"), "cpuset": ("cpuset",)}


def field_type(owner: str, name: str):
    """The type of ``owner.name`` (a cost counter is a number), None for no such field."""
    return "int" if owner == "cost" else FIELD_TYPES.get((owner, name))


def expected_value(typ: str) -> str:
    """What a field of type ``typ`` is compared with, in words."""
    return one_of(WORDS[typ]) if typ in WORDS else TYPE_WORDS[typ]


def one_of(words) -> str:
    """`a, b or c`."""
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)
