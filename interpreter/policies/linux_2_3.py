"""linux-2.3: the generic architecture running the 1999 kernel (v2.3.13, as it stood through 2.4).

Not an architecture of its own: ``arch linux-2.3`` is ``generic`` at kernel
release v2.3.13, the oldest point of interpreter/version.py.  What that
kernel does differently is the kernel's (interpreter/kernel.py asks the
version): schedule() grabs on every lazy switch, BUG_ONs a stale
next->active_mm and drops prev's borrowed mm at once, before switch_to (no
rq->prev_mm, no transfer, so kernel -> kernel costs two atomics); exec_mmap
keeps a sole user's mm; there is no kthread_use_mm (use_mm came with AIO),
no CPU hotplug and no sched_force_init_mm.  (The exact 2.3.13 code was not
read; 2.4's kernel/sched.c, kernel/exit.c and fs/exec.c are what it follows.)
"""
from .generic import Generic


class Linux23(Generic):
    name = "linux-2.3"
    summary = "the 1999 scheduler (2.3.13 to 2.4): grab on every lazy switch, drop at once"
    kernel = "v2.3.13"
