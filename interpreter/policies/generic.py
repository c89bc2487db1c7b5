"""generic: the kernel every architecture starts from (v6.x, MMU_LAZY_TLB_REFCOUNT).

Follows kernel/sched/core.c (context_switch, finish_task_switch),
include/asm-generic/mmu_context.h and include/linux/sched/mm.h, roughly
v6.15 to v6.17.  Lazy kernel threads hold an mm_count reference; switch_mm
trusts its prev argument.  riscv and most architectures behave like this.
"""
from .base import Policy


class Generic(Policy):
    name = "generic"
    summary = "MMU_LAZY_TLB_REFCOUNT, asm-generic hooks (v6.x)"
