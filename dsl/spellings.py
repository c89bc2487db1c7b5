"""The kernel's own spellings of the language's statements and fields.

A kernel developer writes `kthread_use_mm K @M` or `@A.mm_users`; the language
writes `use_mm K @M` and `@A.users`.  Nothing here is accepted as input: the
table only lets an "unknown statement" or "expected a field" message name
what was meant.  This is the one place such spellings are kept.
"""
from __future__ import annotations

import functools
from typing import Optional

from mmscn.grammar import word_classes

# kernel function -> (the statement that models it, "{args}" where the
# function's own arguments fit; how the statement does it, "" when the
# statement is the function itself)
STATEMENTS = {
    "kthread_use_mm": ("use_mm {args}", ""),
    "kthread_unuse_mm": ("unuse_mm {args}", ""),
    "mmgrab_lazy_tlb": ("schedule", "context_switch takes the lazy reference itself when "
                                    "it runs a kernel thread or idle after a user task"),
    "mmdrop_lazy_tlb": ("schedule", "finish_task_switch drops the lazy reference when the "
                                    "CPU switches away from the borrowed mm"),
    "context_switch": ("schedule", ""),
    "switch_mm": ("schedule", "context_switch calls switch_mm when the mm changes"),
    "exit_mm": ("exit {args}", "do_exit calls exit_mm"),
    "do_exit": ("exit {args}", ""),
    "fork": ("spawn {args}", ""),
    "copy_process": ("spawn {args}", ""),
    "kthread_create": ("spawn kthread {args}", ""),
    "execve": ("exec {args}", ""),
    "exec_mmap": ("exec {args}", "execve replaces the mm in exec_mmap"),
}


@functools.lru_cache(maxsize=None)
def fields() -> dict:
    """(field terminal, kernel spelling) -> the field: `mm_users` -> `users`, from the grammar."""
    return {("MM_FIELD", "mm_" + w): w for w in word_classes()["MM_FIELD"]}


def statement_hint(word: str, args: str) -> Optional[str]:
    """What to write for a kernel function used as a statement, or None.

    ``args`` is the rest of the statement (`K @M` after `kthread_use_mm`).
    """
    entry = STATEMENTS.get(word)
    if entry is None:
        return None
    template, how = entry
    stmt = template.split(" {", 1)[0]
    said = f"{word} is done by `{stmt}` ({how})" if how else f"{word} is the statement `{stmt}`"
    if "{args}" in template and args:
        said += f"; did you mean `{template.format(args=args)}`?"
    return said


def field_hint(terminal: str, word: str) -> Optional[str]:
    """`did you mean `users`? (the kernel's mm_users)` for a kernel spelling of a field, or None."""
    field = fields().get((terminal, word))
    return f"did you mean `{field}`? (the kernel's {word})" if field else None
