"""The kernel model: tasks, CPUs and mms, and the kernel functions that move them.

Every method that changes state is named after the kernel function it models
and changes the counters exactly as that function does (see
docs/kernel-model.md and ../shared/design/kernel-source-notes.md).  The
kernel's own code (context_switch, exit_mm, exec_mmap, kthread_use_mm,
hotplug, __mmdrop) lives here; it calls the architecture in ``self.arch``
only where the kernel calls arch code (enter_lazy_tlb, switch_mm_irqs_off,
activate_mm, switch_to, init_new_context, the flushes, hotplug), and asks
the kernel version in ``self.version`` (interpreter/version.py) where the
kernel's code changed between releases.  Policies change hardware through
``self.hw`` (interpreter/hw.py) and keep no state of their own, so the whole
kernel state is the lists declared in interpreter/state.py: cheap to copy,
compare and hash.

Invariants are checked after every statement, incrementally: only the tasks,
mms and CPUs that the statement touched are looked at.  The accounting
identities compare the refcounts (changed only by mmgrab/mmdrop/mmget/mmput
and their lazy variants) with indexes kept by the pointer setters
(``_set_mm``/``_set_active_mm``), so a wrong refcount operation shows.
"""
from __future__ import annotations

from typing import Optional

from . import state as S
from . import version as V
from .hw import C_COUNT, C_IPI, C_LAZY, C_PGTABLE, C_SWITCH_MM, C_USERS, COST_NAMES, Hardware  # noqa: F401
from .state import DEAD, IDLE, INIT_MM, KTHREAD, RUNNABLE, RUNNING, USER  # noqa: F401 (the kernel's words)


class Refusal(Exception):
    """A statement the kernel would never execute; nothing was changed."""

    def __init__(self, message: str, function: str):
        super().__init__(message)
        self.message = message
        self.function = function


class Violation:
    """A broken kernel invariant: which rule, what happened, who enforces it.
    ``mm``: the mm it is about, if one; ``cause``: the index, in the same list,
    of the violation this one follows from (the statement's own, on that mm)."""
    __slots__ = ("rule", "message", "function", "mm", "cause")

    def __init__(self, rule: str, message: str, function: str, mm: Optional[int] = None):
        self.rule, self.message, self.function, self.mm, self.cause = rule, message, function, mm, None

    def __repr__(self):
        return f"Violation({self.rule!r}, {self.message!r})"


class Kernel:
    # the state: one list per field of interpreter/state.py, and the name indexes
    __slots__ = S.SLOTS + (
        "arch", "version", "hw", "ncpus", "refcount_lazy",
        # bookkeeping, not state
        "cost", "ev", "violations", "d_tasks", "d_mms", "d_cpus",
        # the tasks, mms and CPUs touched since the last sync, when someone keeps track (explore): the
        # touched sets of each statement, gathered by check()
        "changed",
        # the CPU the running statement executes on (None: outside the scenario's CPUs),
        # for policies that tell a local flush from an IPI
        "this_cpu",
        # kernel steps (interpreter/steps.py): a step of an operation in flight is running (its
        # IPIs are queued, not run at once), and the first step's arguments
        "stepping", "step_args",
        # PREEMPT_RT's deferred __mmdrop (mmdrop_sched): True, its RCU callback is an event a scheduler
        # delivers (granularity step); False, it runs at once, at the end of the grace period the
        # statement is taken to contain (granularity operation)
        "rcu_deferred",
    )

    def __init__(self, ncpus: int, arch, trace: bool = True, version: Optional[V.KernelVersion] = None):
        self.arch = arch
        self.version = version or V.for_policy(arch)
        problem = arch.kernel_problem(self.version)
        if problem:
            raise ValueError(problem)
        self.hw = Hardware(self)
        self.ncpus = ncpus
        self.refcount_lazy = self._lazy_tlb_refcount()
        for f in S.STORED:
            setattr(self, f.attr, [])
        self.task_ix, self.mm_ix = {}, {}
        self.cost = [0] * len(COST_NAMES)
        self.ev = [] if trace else None
        self.violations = []
        self.d_tasks, self.d_mms, self.d_cpus = set(), set(), set()
        self.changed = None
        self.this_cpu = None
        self.stepping, self.step_args = False, ()
        self.rcu_deferred = False
        # init_mm (mm/init-mm.c): mm_users 2, mm_count 1, static, never freed
        self.mm_ix["@init_mm"] = S.NEW[S.MM](self, m_name="@init_mm", m_users=2, m_count=1)
        for c in range(ncpus):
            t = self._new_task(f"idle{c}", IDLE)
            self.t_state[t] = RUNNING
            self.t_cpu[t] = c
            S.NEW[S.CPU](self, c_curr=t)
        self.boot()
        self.cost = [0] * len(COST_NAMES)   # a run's costs start after boot
        self.violations.clear()
        self.d_tasks.clear(); self.d_mms.clear(); self.d_cpus.clear()

    def _lazy_tlb_refcount(self) -> bool:
        """CONFIG_MMU_LAZY_TLB_REFCOUNT: do lazy users hold an mm_count reference?  Unless the arch
        selects MMU_LAZY_TLB_SHOOTDOWN (powerpc/64s since 77f68ebeee20), which needs the helpers
        (aa464ba9a1e4), a configurable refcount (88e3009b5283) and the scheme (2655421ae69f): all
        v6.4; before them every arch counted its lazy users in mm_count."""
        arch, v = self.arch, self.version
        if arch.lazy_tlb_refcount:
            return True
        needs = (V.LAZY_TLB_HELPERS, V.LAZY_TLB_REFCOUNT_CONFIG, V.SHOOT_LAZIES) + \
            ((arch.lazy_tlb_shootdown_by,) if arch.lazy_tlb_shootdown_by else ())
        return not all(v.has(key) for key in needs)

    # ================================================================ state
    def snapshot(self) -> tuple:
        """Everything that is kernel state, copied (for undo and exploration)."""
        return tuple(tuple(getattr(self, f.attr)) for f in S.STORED) + (tuple(self.cost),)

    def restore(self, snap: tuple) -> None:
        for f, col in zip(S.STORED, snap):
            setattr(self, f.attr, list(col))
        self.cost = list(snap[-1])
        self.task_ix = {n: t for t, n in enumerate(self.t_name)}
        self.mm_ix = {n: m for m, n in enumerate(self.m_name)}

    def key(self) -> tuple:
        """A hashable value equal for equal kernel states (names, bookkeeping and costs aside)."""
        return tuple(tuple(getattr(self, a)) for a in S.KEY)

    def mm_state(self, m: int) -> str:
        if self.m_freed[m]:
            return "freed"
        return "live" if self.m_users[m] > 0 else "zombie"

    def mm_label(self, m: Optional[int]) -> str:
        return "none" if m is None else self.m_name[m]

    # ================================================================ events
    # A detail given with args is a str.format template, formatted only when the trace is
    # kept: a run without one (explore, run --quiet) builds no text for it.
    def _op(self, subject: str, function: str, detail: str = "", *args) -> None:
        if self.ev is not None:
            self.ev.append(("op", subject, function, detail.format(*args) if args else detail))

    def _cpu_op(self, cpu: int, function: str, detail: str = "", *args) -> None:
        """_op on the subject cpuN."""
        if self.ev is not None:
            self.ev.append(("op", f"cpu{cpu}", function, detail.format(*args) if args else detail))

    def _ref(self, m: int, function: str, counter: str, old: int, new: int) -> None:
        if self.ev is not None:
            self.ev.append(("ref", self.m_name[m], function, counter, old, new))

    def violate(self, rule: str, message: str, function: str, mm: Optional[int] = None) -> None:
        self.violations.append(Violation(rule, message, function, mm))

    # ================================================================ pointer setters
    # They keep the accounting indexes: m_lazy_tasks counts tasks without an mm whose
    # active_mm is the mm (lazy borrowers), m_task_users user tasks whose mm it is,
    # m_kthread_users kernel threads inside kthread_use_mm on it.
    def _set_mm(self, t: int, new: Optional[int]) -> None:
        old, act = self.t_mm[t], self.t_active[t]
        if old is not None:
            (self.m_kthread_users if self.t_kind[t] == KTHREAD else self.m_task_users)[old] -= 1
            self.d_mms.add(old)
        elif act is not None:
            self.m_lazy_tasks[act] -= 1
            self.d_mms.add(act)
        self.t_mm[t] = new
        if new is not None:
            (self.m_kthread_users if self.t_kind[t] == KTHREAD else self.m_task_users)[new] += 1
            self.d_mms.add(new)
        elif act is not None:
            self.m_lazy_tasks[act] += 1
            self.d_mms.add(act)
        self.d_tasks.add(t)

    def _set_active_mm(self, t: int, new: Optional[int]) -> None:
        old = self.t_active[t]
        if self.t_mm[t] is None:
            if old is not None:
                self.m_lazy_tasks[old] -= 1
                self.d_mms.add(old)
            if new is not None:
                self.m_lazy_tasks[new] += 1
                self.d_mms.add(new)
        self.t_active[t] = new
        self.d_tasks.add(t)

    def _set_prev_mm(self, cpu: int, new: Optional[int]) -> None:
        old = self.c_prev_mm[cpu]
        if old is not None:
            self.m_prev_mm_cpus[old] -= 1
            self.d_mms.add(old)
        if new is not None:
            self.m_prev_mm_cpus[new] += 1
            self.d_mms.add(new)
        self.c_prev_mm[cpu] = new
        self.d_cpus.add(cpu)

    # ================================================================ refcount primitives
    # include/linux/sched/mm.h, kernel/fork.c
    def mmgrab(self, m: int, function: str = "mmgrab") -> None:
        if self.m_freed[m]:
            self.violate("use-after-free", f"{function}({self.m_name[m]}) on an mm that was already freed",
                         "mmgrab (include/linux/sched/mm.h)", m)
        old = self.m_count[m]
        self.m_count[m] = old + 1
        self.cost[C_COUNT] += 1
        self.d_mms.add(m)
        self._ref(m, function, "count", old, old + 1)

    def mmdrop(self, m: int, function: str = "mmdrop", free=None) -> None:
        """mmdrop: at zero __mmdrop, or ``free`` (PREEMPT_RT's mmdrop_sched queues it through RCU)."""
        old = self.m_count[m]
        self.m_count[m] = old - 1
        self.cost[C_COUNT] += 1
        self.d_mms.add(m)
        self._ref(m, function, "count", old, old - 1)
        if old == 1:
            (free or self.__mmdrop)(m)
        elif old <= 0:
            self.violate("refcount-underflow", f"{function}({self.m_name[m]}) takes mm_count below zero "
                         f"({old} -> {old - 1})", f"{'mmdrop_sched' if free else 'mmdrop'} "
                         f"(include/linux/sched/mm.h)", m)

    def mmgrab_lazy_tlb(self, m: int) -> None:
        """mmgrab under MMU_LAZY_TLB_REFCOUNT; nothing under MMU_LAZY_TLB_SHOOTDOWN.  Before
        aa464ba9a1e4 (v6.4) the kernel called mmgrab itself at each of these places."""
        if self.refcount_lazy:
            self.mmgrab(m, "mmgrab_lazy_tlb" if self.version.has(V.LAZY_TLB_HELPERS) else "mmgrab")
        elif self.m_freed[m]:
            self.violate("use-after-free", f"{self.m_name[m]} borrowed lazily after it was freed",
                         "mmgrab_lazy_tlb (include/linux/sched/mm.h)", m)

    def mmdrop_lazy_tlb(self, m: int, function: str = "mmdrop_lazy_tlb") -> None:
        """mmdrop under MMU_LAZY_TLB_REFCOUNT; only smp_mb() under shootdown.  Before aa464ba9a1e4
        (v6.4) the kernel called mmdrop itself (finish_task_switch: mmdrop_sched since 8d491de6edc2)."""
        if self.refcount_lazy:
            sched = function.endswith("_sched")     # finish_task_switch's drop
            if not self.version.has(V.LAZY_TLB_HELPERS):
                function = "mmdrop_sched" if sched and self.version.has(V.MMDROP_SCHED) else "mmdrop"
            if sched and self.version.config("PREEMPT_RT"):
                self.mmdrop_sched_rt(m, function)
            else:
                self.mmdrop(m, function)

    # ---- PREEMPT_RT: finish_task_switch's drop (include/linux/sched/mm.h mmdrop_sched, kernel/fork.c)
    def mmdrop_sched_rt(self, m: int, function: str) -> None:
        """finish_task_switch's mmdrop on PREEMPT_RT.  Since 8d491de6edc2 (v5.16) mmdrop_sched():
        atomic_dec_and_test(&mm->mm_count), and at zero call_rcu(&mm->delayed_drop,
        __mmdrop_delayed): the count is 0 at once, __mmdrop runs after a grace period.  Before
        it, mmdrop(): the final __mmdrop ran right here, with preemption disabled (the scheduler
        holds it through finish_task_switch), and took sleeping locks (on RT spinlock_t is an
        rtmutex: pgd_free's pgd_lock, the allocator's locks)."""
        if not self.version.has(V.MMDROP_SCHED):
            if self.m_count[m] == 1:
                self.violate("might-sleep", f"{function}({self.m_name[m]}) drops the last mm_count reference in "
                             f"finish_task_switch, so __mmdrop runs there with preemption disabled; on PREEMPT_RT "
                             f"its spinlock_t locks sleep: \"BUG: sleeping function called from invalid context\"",
                             "__might_resched (kernel/sched/core.c), from __mmdrop (kernel/fork.c) in "
                             "finish_task_switch (kernel/sched/core.c)", m)
            self.mmdrop(m, function)
            return
        self.mmdrop(m, function, free=self.call_rcu_mmdrop)

    def call_rcu_mmdrop(self, m: int) -> None:
        """call_rcu(&mm->delayed_drop, __mmdrop_delayed) on this CPU: the grace period waits for every
        CPU inside rcu_read_lock() now.  Under granularity operation the callback runs at once."""
        cpu = self.this_cpu
        self.m_rcu_cpu[m] = cpu
        self.m_rcu_wait[m] = sum(1 << c for c in range(self.ncpus) if self.c_rcu_reader[c])
        self.d_mms.add(m)
        if self.rcu_deferred:
            self._op(self.m_name[m], "call_rcu", "mm_count 0: __mmdrop_delayed queued on cpu{}, runs after a grace "
                     "period", cpu)
            return
        self._op(self.m_name[m], "call_rcu", "mm_count 0: __mmdrop_delayed queued on cpu{}; the grace period ends "
                 "within the statement (granularity operation)", cpu)
        self.rcu_do_batch(cpu)

    def rcu_ready(self, cpu: int) -> list:
        """The mms whose __mmdrop_delayed ``cpu`` queued and whose grace period has ended."""
        return [m for m in range(len(self.m_rcu_cpu)) if self.m_rcu_cpu[m] == cpu and not self.m_rcu_wait[m]]

    def rcu_do_batch(self, cpu: int) -> None:
        """rcu_do_batch on ``cpu`` (RCU_SOFTIRQ, or rcuc/N on RT): the ready callbacks run, each
        __mmdrop_delayed -> __mmdrop."""
        for m in self.rcu_ready(cpu):
            self.m_rcu_cpu[m] = None
            self.d_mms.add(m)
            self.this_cpu = cpu
            self._op(self.m_name[m], "__mmdrop_delayed", "the RCU callback on cpu{}: __mmdrop", cpu)
            self.__mmdrop(m)

    def rcu_read_lock(self, cpu: int) -> None:
        self.c_rcu_reader[cpu] = True
        self.d_cpus.add(cpu)

    def rcu_read_unlock(self, cpu: int) -> None:
        """The reader leaves: the grace periods that waited for it no longer do."""
        self.c_rcu_reader[cpu] = False
        self.d_cpus.add(cpu)
        bit = 1 << cpu
        for m, wait in enumerate(self.m_rcu_wait):
            if wait & bit:
                self.m_rcu_wait[m] = wait & ~bit
                self.d_mms.add(m)

    def mmget(self, m: int, function: str = "mmget") -> None:
        old = self.m_users[m]
        if old <= 0:
            self.violate("mmget-after-teardown", f"{function}({self.m_name[m]}) with mm_users {old}: the address "
                         f"space was already torn down by exit_mmap; only mmget_not_zero may be used on an mm "
                         f"whose users may have dropped to 0", "mmget (include/linux/sched/mm.h)", m)
        self.m_users[m] = old + 1
        self.cost[C_USERS] += 1
        self.d_mms.add(m)
        self._ref(m, function, "users", old, old + 1)

    def mmget_not_zero(self, m: int) -> bool:
        old = self.m_users[m]
        self.cost[C_USERS] += 1   # atomic_inc_not_zero is one atomic either way
        if old <= 0:
            self._op(self.m_name[m], "mmget_not_zero", "fails: mm_users is 0")
            return False
        self.m_users[m] = old + 1
        self.d_mms.add(m)
        self._ref(m, "mmget_not_zero", "users", old, old + 1)
        return True

    def mmput(self, m: int, function: str = "mmput", defer: bool = False) -> bool:
        old = self.m_users[m]
        self.m_users[m] = old - 1
        self.cost[C_USERS] += 1
        self.d_mms.add(m)
        self._ref(m, function, "users", old, old - 1)
        if old == 1:
            if defer:
                self._exit_mmap(m)
                if self.this_cpu is not None and (self.smp_call_waiting(self.this_cpu)
                                                  or self.c_exit_lazy[self.this_cpu] is not None):
                    return True
                self.mmput_finish(m)
            else:
                self.__mmput(m)
        elif old <= 0:
            self.violate("refcount-underflow", f"{function}({self.m_name[m]}) takes mm_users below zero "
                         f"({old} -> {old - 1})", "mmput (kernel/fork.c)", m)
        return False

    def mmput_begin(self, m: int) -> bool:
        """mmput as a step of an operation (interpreter/steps.py): True when it was the last user
        and exit_mmap's flush queued IPIs, so that the rest of __mmput (mmput_finish) waits."""
        return self.mmput(m, defer=True)

    def __mmput(self, m: int) -> None:
        # exit_mmap: unmap, free the page tables (the final full-mm flush), then
        # drop the one mm_count reference that all users held together.
        self._exit_mmap(m)
        self.mmput_finish(m)

    def _exit_mmap(self, m: int) -> None:
        self.m_torn[m] = True
        self._op(self.m_name[m], "__mmput", "exit_mmap tears down the address space")
        self.inc_mm_tlb_gen(m)          # tlb_finish_mmu: exit_mmap ends with a full-mm flush
        self.arch.exit_mmap(self, m)

    def mmput_finish(self, m: int) -> None:
        """The rest of __mmput once exit_mmap returned: the users' one mm_count reference."""
        self._flush_reached_all(m)
        self.mmdrop(m, "mmdrop")

    def __mmdrop(self, m: int) -> None:
        if m == INIT_MM:
            self.violate("init_mm-freed", "init_mm's mm_count reached zero: init_mm is static and never freed",
                         "__mmdrop (kernel/fork.c): BUG_ON(mm == &init_mm)", m)
            return
        if not self.refcount_lazy:
            self.cleanup_lazy_tlbs(m)
        self.m_freed[m] = True
        self._op(self.m_name[m], "__mmdrop", "mm_struct and pgd freed")
        cpu = self.this_cpu
        if cpu is not None and not self.c_online[cpu]:
            # LT-06: before bf2c59fce407 idle_task_exit dropped the lazy mm on the dead CPU itself
            self.violate("mmdrop-offline-cpu", f"{self.m_name[m]} is freed by __mmdrop on cpu{cpu}, which is offline: "
                         f"cpuhp_report_idle_dead -> rcu_report_dead ran there, RCU no longer watches it, and "
                         f"freeing an mm (memcg, page tables, debug objects) uses RCU (\"RCU used illegally from "
                         f"offline CPU!\"); the final __mmdrop must run on an online CPU",
                         "__mmdrop (kernel/fork.c) called from idle_task_exit (kernel/sched/core.c)", m)

    def cleanup_lazy_tlbs(self, m: int) -> None:
        """kernel/fork.c, MMU_LAZY_TLB_SHOOTDOWN only: on_each_cpu_mask(mm_cpumask(mm),
        do_shoot_lazy_tlb), this CPU included; the architecture keeps mm_cpumask precise."""
        cpus = self.hw.cpus_in_mask(m)
        self._op(self.m_name[m], "cleanup_lazy_tlbs", "on_each_cpu_mask(mm_cpumask): "
                 + (", ".join(f"cpu{c}" for c in cpus) or "no CPU left"))
        for c in cpus:
            if c != self.this_cpu:
                self.cost[C_IPI] += 1
            self.do_shoot_lazy_tlb(c, m)

    def do_shoot_lazy_tlb(self, cpu: int, m: int) -> None:
        """kernel/fork.c: a lazy user of the dying mm moves to init_mm; no reference is counted."""
        t = self.c_curr[cpu]
        if self.t_active[t] == m:
            self._cpu_op(cpu, "do_shoot_lazy_tlb", "{}: active_mm {} -> @init_mm", self.t_name[t], self.m_name[m])
            self._set_active_mm(t, INIT_MM)
            self.arch.switch_mm_irqs_off(self, cpu, m, INIT_MM, t)

    # ================================================================ fork
    def _new_task(self, name: str, kind: str) -> int:
        t = S.NEW[S.TASK](self, t_name=name, t_kind=kind)
        self.task_ix[name] = t
        self.d_tasks.add(t)
        return t

    def mm_init(self, name: str) -> int:
        """mm_alloc/dup_mm -> mm_init: a fresh mm with mm_users 1, mm_count 1."""
        m = S.NEW[S.MM](self, m_name=name)
        self.mm_ix[name] = m
        self.d_mms.add(m)
        self._ref(m, "mm_init", "users", 0, 1)
        self._ref(m, "mm_init", "count", 0, 1)
        return m

    def copy_process(self, name: str, mm_name: str) -> int:
        """fork without CLONE_VM: copy_mm -> dup_mm gives the child a fresh mm."""
        t = self._new_task(name, USER)
        self._op(name, "copy_process", "fork: {} gets a fresh mm {}", name, mm_name)
        m = self.mm_init(mm_name)
        self.arch.init_new_context(self, t, m)
        self._set_mm(t, m)
        self._set_active_mm(t, m)
        return t

    def copy_process_clone_vm(self, name: str, parent: int) -> int:
        """clone with CLONE_VM: copy_mm shares the parent's mm (mmget)."""
        m = self.t_mm[parent]
        if self.t_state[parent] == DEAD:
            raise Refusal(f"{self.t_name[parent]} has exited; a dead task does not clone", "copy_process (kernel/fork.c)")
        if m is None:
            raise Refusal(f"{self.t_name[parent]} has no mm to share: copy_mm with CLONE_VM shares current->mm, "
                          f"and a task without an mm makes a kernel thread", "copy_mm (kernel/fork.c)")
        t = self._new_task(name, USER)
        self.t_ptbr[t] = self.t_ptbr[parent]   # dup_task_struct copies the thread_info (alpha: the PCB)
        self._op(name, "copy_process", "clone(CLONE_VM): {} shares {} with {}", name, self.m_name[m],
                 self.t_name[parent])
        self.mmget(m)
        self._set_mm(t, m)
        self._set_active_mm(t, m)
        return t

    def kthread_create(self, name: str) -> int:
        """A kernel thread: copy_mm returns early, mm and active_mm stay NULL."""
        t = self._new_task(name, KTHREAD)
        self._op(name, "kthread_create", "kernel thread: mm none, active_mm none")
        return t

    # ================================================================ scheduler
    def schedule(self, cpu: int, nxt: int) -> None:
        """__schedule on ``cpu`` picking ``nxt``: context_switch, finish_task_switch."""
        self._require_online(cpu, "schedule")
        name = self.t_name[nxt]
        if self.t_state[nxt] == DEAD:
            raise Refusal(f"{name} has exited: a dead task is never scheduled again (finish_task_switch "
                          f"drops its last reference with put_task_struct)", "finish_task_switch (kernel/sched/core.c)")
        if self.t_kind[nxt] == IDLE and nxt != self._idle(cpu):
            raise Refusal(f"{name} is the idle task of cpu{nxt}; each CPU runs only its own idle task",
                          "pick_next_task (kernel/sched/core.c)")
        if self.t_state[nxt] == RUNNING and self.t_cpu[nxt] != cpu:
            raise Refusal(f"{name} is running on cpu{self.t_cpu[nxt]}; a task runs on one CPU at a time "
                          f"(schedule it away there first)", "try_to_wake_up / task_on_cpu (kernel/sched/core.c)")
        prev = self.c_curr[cpu]
        self.this_cpu = cpu
        if prev == nxt:
            self._cpu_op(cpu, "__schedule", "picks {} again: prev == next, no context switch", name)
            return
        self.context_switch(cpu, prev, nxt)
        # switch_to: prev leaves the CPU, next runs
        self.arch.switch_to(self, cpu, prev, nxt)
        if self.t_state[prev] != DEAD:
            self.t_state[prev] = RUNNABLE
        self.t_cpu[prev] = None
        self.t_state[nxt] = RUNNING
        self.t_cpu[nxt] = cpu
        self.c_curr[cpu] = nxt
        self.d_tasks.add(prev); self.d_tasks.add(nxt); self.d_cpus.add(cpu)
        self.finish_task_switch(cpu, prev)

    def context_switch(self, cpu: int, prev: int, nxt: int) -> None:
        """kernel/sched/core.c context_switch, the mm part (v6.x).

        kernel -> kernel: lazy + transfer active_mm
        user   -> kernel: lazy + mmgrab_lazy_tlb() active_mm
        kernel -> user:   switch_mm + mmdrop_lazy_tlb() active_mm (in finish_task_switch)
        user   -> user:   switch_mm

        Before 139d025cda1d (v5.4) kernel -> kernel grabbed too and dropped in
        finish_task_switch.  The 1999 kernel had no context_switch(): schedule()
        (2.4 kernel/sched.c) did the same inline, grabbed on every lazy switch, BUG_ON'd
        a stale next->active_mm and dropped prev's borrowed mm at once, before switch_to.
        """
        v = self.version
        inline = not v.has(V.CONTEXT_SWITCH)        # 2.4's schedule()
        transfer = v.has(V.ACTIVE_MM_TRANSFER)
        fn = "schedule" if inline else "context_switch"
        pn, nn = self.t_name[prev], self.t_name[nxt]
        prev_active = self.t_active[prev]
        to_kernel = self.t_mm[nxt] is None
        if to_kernel:
            if inline and self.t_active[nxt] is not None:
                self.violate("active_mm-not-cleared", f"{nn} is a kernel task switched in with active_mm "
                             f"{self.mm_label(self.t_active[nxt])} still set",
                             "schedule (2.4 kernel/sched.c): BUG_ON(next->active_mm)")
            if self.ev is not None:        # (the words only where a trace is kept: this runs on every switch)
                how = ", atomic_inc(&oldmm->mm_count)" if inline else " (enter_lazy_tlb)"
                self._cpu_op(cpu, fn, "{} -> {}: {} borrows {}{}", pn, nn, nn, self.mm_label(prev_active), how)
            self.arch.enter_lazy_tlb(self, cpu, prev_active, nxt)
            self.cost[C_LAZY] += 1
            self._set_active_mm(nxt, prev_active)
            if inline:
                self.mmgrab(prev_active, "atomic_inc")
            elif self.t_mm[prev] is not None or not transfer:
                self.mmgrab_lazy_tlb(prev_active)
        else:
            nm = self.t_mm[nxt]
            if inline and self.t_active[nxt] != nm:
                self.violate("active_mm-mismatch", f"{nn} has mm {self.m_name[nm]} but active_mm "
                             f"{self.mm_label(self.t_active[nxt])}",
                             "schedule (2.4 kernel/sched.c): BUG_ON(next->active_mm != mm)")
            if self.ev is not None:
                self._cpu_op(cpu, fn, "{} -> {}: switch_mm {} -> {}", pn, nn, self.mm_label(prev_active),
                             self.m_name[nm])
            if prev_active != nm and v.has(V.MEMBARRIER_RQ_STATE):
                self._set_rq_membarrier(cpu, nm)        # membarrier_switch_mm (kernel/sched/sched.h)
            self.arch.switch_mm_irqs_off(self, cpu, prev_active, nm, nxt)
        if self.t_mm[prev] is None:                         # from kernel: prev gives active_mm back
            self._set_active_mm(prev, None)
            if inline:
                if prev_active is not None:
                    self.mmdrop(prev_active)
            elif not (to_kernel and transfer):              # handed over to next: nothing to drop
                self._set_prev_mm(cpu, prev_active)         # rq->prev_mm, dropped in finish_task_switch

    def finish_task_switch(self, cpu: int, prev: int) -> None:
        m = self.c_prev_mm[cpu]
        if m is not None:
            self._set_prev_mm(cpu, None)
            self.mmdrop_lazy_tlb(m, "mmdrop_lazy_tlb_sched")
        if self.t_state[prev] == DEAD:
            self._op(self.t_name[prev], "finish_task_switch", "TASK_DEAD: put_task_struct, gone for good")

    # ================================================================ exit, exec
    def do_exit(self, t: int) -> None:
        """do_exit -> exit_mm: the task keeps its mm as a lazy active_mm, then mmput."""
        name = self.t_name[t]
        cpu = self.do_exit_checks(t)
        m = self.t_mm[t]
        if m is not None:
            self._op(name, "exit_mm", "{} drops {} as mm, keeps it as active_mm (lazy)", name, self.m_name[m])
            if self.t_active[t] != m:
                self.violate("active_mm-mismatch", f"{name}->mm is {self.m_name[m]} but active_mm is "
                             f"{self.mm_label(self.t_active[t])}",
                             "exit_mm (kernel/exit.c): BUG_ON(mm != current->active_mm)", m)
            self.mmgrab_lazy_tlb(m)
            self.exit_mm_lazy(t, cpu, m)
            self.mmput(m)
        else:
            self._op(name, "do_exit", "{} has no mm: exit_mm returns at once", name)
        self.do_exit_dead(t, cpu)

    def exit_mm_lazy(self, t: int, cpu: int, m: int) -> None:
        """exit_mm, irqs off: current->mm = NULL; membarrier_update_current_mm(NULL); enter_lazy_tlb."""
        self._set_mm(t, None)
        if self.version.has(V.MEMBARRIER_EXIT_MM):
            self._set_rq_membarrier(cpu, None)      # membarrier_update_current_mm(NULL)
        self.arch.enter_lazy_tlb(self, cpu, m, t)

    def do_exit_dead(self, t: int, cpu: int) -> None:
        """do_exit after exit_mm: exit_task_work, then TASK_DEAD."""
        name = self.t_name[t]
        if self.t_numa_work[t]:
            # exit_task_work, after exit_mm: task_numa_work returns at once for PF_EXITING
            self._op(name, "task_numa_work", "PF_EXITING: {} is dying, no NUMA scan", name)
            self.t_numa_work[t] = False
        self.t_state[t] = DEAD
        self.d_tasks.add(t)
        self.d_cpus.add(cpu)

    def do_exit_checks(self, t: int) -> int:
        """What do_exit refuses; the CPU it runs on."""
        name = self.t_name[t]
        cpu = self._require_current(t, "exit", "do_exit (kernel/exit.c)")
        if self.t_kind[t] == IDLE:
            raise Refusal(f"{name} is an idle task; do_exit on it panics (\"Attempted to kill the idle task!\")",
                          "do_exit (kernel/exit.c)")
        if self.t_kind[t] == KTHREAD and self.t_mm[t] is not None:
            fn = self._use_mm_fn(unuse=True)
            raise Refusal(f"{name} is still inside {self._use_mm_fn().split(' ')[0]}({self.m_name[self.t_mm[t]]}); "
                          f"a kernel thread must call {fn.split(' ')[0]} before it exits", fn)
        return cpu

    def exec_mmap_checks(self, t: int) -> int:
        """What exec refuses; the CPU it runs on."""
        name = self.t_name[t]
        cpu = self._require_current(t, "exec", "exec_mmap (fs/exec.c)")
        if self.t_kind[t] == IDLE:
            raise Refusal(f"{name} is an idle task; the idle task never execs", "exec_mmap (fs/exec.c)")
        if self.t_kind[t] == KTHREAD and self.t_mm[t] is not None:
            fn = self._use_mm_fn()
            raise Refusal(f"{name} is inside {fn.split(' ')[0]}({self.m_name[self.t_mm[t]]}); call "
                          f"{self._use_mm_fn(unuse=True).split(' ')[0]} before kernel_execve", fn)
        return cpu

    def exec_mmap(self, t: int, mm_name: str) -> int:
        """exec: a fresh mm (mm_alloc, users 1, count 1) replaces the old one."""
        name = self.t_name[t]
        cpu = self.exec_mmap_checks(t)
        old_mm, active = self.t_mm[t], self.t_active[t]
        if old_mm is not None and not self.version.has(V.EXEC_FRESH_MM) and self.m_users[old_mm] == 1:
            # 2.4's exec_mmap: the only user keeps its mm_struct, emptied in place by exit_mmap
            self._op(name, "exec_mmap", "{} has one user: exit_mmap empties it in place and {} keeps it (no new mm)",
                     self.m_name[old_mm], name)
            self.arch.exit_mmap(self, old_mm)
            return old_mm
        new = self.mm_init(mm_name)
        self._op(name, "exec_mmap", "{} -> {}{}", self.mm_label(active), mm_name,
                 "" if old_mm is not None else " (kernel_execve: a kernel thread becomes a user task)")
        self.exec_mmap_store(t, cpu, new, old_mm)
        self.arch.activate_mm(self, cpu, active, new, t)
        if old_mm is not None:
            if active != old_mm:
                self.violate("active_mm-mismatch", f"{name}->mm is {self.m_name[old_mm]} but active_mm was "
                             f"{self.mm_label(active)}", "exec_mmap (fs/exec.c): BUG_ON(active_mm != old_mm)", old_mm)
            self.mmput(old_mm)
        elif active is not None:
            self.mmdrop_lazy_tlb(active)
        return new

    def exec_mmap_store(self, t: int, cpu: int, new: int, old_mm: Optional[int]) -> None:
        """exec_mmap under task_lock: membarrier_exec_mmap(mm); tsk->active_mm = mm; tsk->mm = mm."""
        if old_mm is None:
            self.t_kind[t] = USER
        if self.version.has(V.MEMBARRIER_RQ_STATE):
            self._set_rq_membarrier(cpu, None)          # membarrier_exec_mmap: the new mm is unregistered
        self._set_active_mm(t, new)
        self._set_mm(t, new)

    # ================================================================ kthread_use_mm
    def _use_mm_fn(self, unuse: bool = False) -> str:
        """kthread_use_mm (or kthread_unuse_mm) as this kernel names it, with its file: use_mm and
        unuse_mm in mm/mmu_context.c until 9bf5b9eb232b moved them to kernel/kthread.c and
        f5678e7f2ac3 gave them the kthread_ prefix and the WARN_ON_ONCE checks (both v5.8)."""
        v = self.version
        name = ("kthread_" if v.has(V.KTHREAD_USE_MM_NAME) else "") + ("unuse_mm" if unuse else "use_mm")
        return f"{name} ({'kernel/kthread.c' if v.has(V.USE_MM_IN_KTHREAD_C) else 'mm/mmu_context.c'})"

    def _use_mm_refusal(self, fn: str, why: str, warn: str, check: str) -> Refusal:
        """A call kthread_use_mm's contract forbids: it WARNs since f5678e7f2ac3; before, the contract
        was the comment (\"intended to be called only from a kernel thread context\")."""
        if self.version.has(V.KTHREAD_USE_MM_NAME):
            return Refusal(f"{why}{fn.split(' ')[0]} WARNs {warn}", f"{fn}: WARN_ON_ONCE({check})")
        return Refusal(f"{why}{fn.split(' ')[0]} must not be called {warn}", fn)

    def kthread_use_mm_checks(self, t: int, m: int) -> int:
        """What kthread_use_mm refuses (and the adoption of a torn-down mm it reports); its CPU."""
        name, v = self.t_name[t], self.version
        if not v.has(V.USE_MM):
            raise Refusal(f"kthread_use_mm does not exist in {v.name}: it came later (use_mm, for AIO)",
                          "kthread_use_mm (kernel/kthread.c)")
        fn = self._use_mm_fn()
        if self.t_kind[t] != KTHREAD:
            raise self._use_mm_refusal(fn, f"{name} is not a kernel thread: ", "unless current has PF_KTHREAD",
                                       "!(tsk->flags & PF_KTHREAD)")
        cpu = self._require_current(t, "use_mm", fn)
        if self.t_mm[t] is not None:
            raise self._use_mm_refusal(fn, f"{name} already uses {self.m_name[self.t_mm[t]]}; ",
                                       "if current->mm is set (call unuse_mm first)", "tsk->mm")
        if self.m_users[m] <= 0 and not self.m_freed[m]:
            self.violate("use-after-teardown", f"{name} adopts {self.m_name[m]} whose mm_users is 0: its page "
                         f"tables were torn down by exit_mmap (the caller must hold a reference from "
                         f"mmget_not_zero)", f"{fn}, mmget_not_zero", m)
        return cpu

    def kthread_use_mm(self, t: int, m: int) -> None:
        """kernel/kthread.c kthread_use_mm.  Since 6cad87b0d216 (v6.4): mmgrab(mm) and drop the old
        active_mm whatever it is ("these references are not equivalent"); before, `if (active_mm !=
        mm) { mmgrab(mm); ... }` and `if (active_mm != mm) mmdrop(active_mm)`: a kernel thread lazy on
        mm turned its lazy reference into the kthread_use_mm one."""
        name, v = self.t_name[t], self.version
        cpu = self.kthread_use_mm_checks(t, m)
        old = self.t_active[t]
        if self.ev is not None:
            self._op(name, self._use_mm_fn().split(" ")[0], "{} -> {}", self.mm_label(old), self.m_name[m])
        always = v.has(V.KTHREAD_USE_MM_REFCOUNT)
        if always or old != m:
            self.mmgrab(m)
        self.kthread_use_mm_store(t, cpu, m)
        self.arch.switch_mm_irqs_off(self, cpu, old, m, t)
        if old is not None and always:
            self.mmdrop_lazy_tlb(old)
        elif old is not None and old != m:
            self.mmdrop(old)                            # plain mmdrop: the lazy reference, counted

    def kthread_use_mm_store(self, t: int, cpu: int, m: int) -> None:
        """tsk->active_mm = mm; tsk->mm = mm; membarrier_update_current_mm(mm)."""
        self._set_active_mm(t, m)
        self._set_mm(t, m)
        if self.version.has(V.MEMBARRIER_USE_MM):
            self._set_rq_membarrier(cpu, m)             # membarrier_update_current_mm(mm)

    def kthread_unuse_mm_checks(self, t: int) -> int:
        """What kthread_unuse_mm refuses; the mm it leaves."""
        name = self.t_name[t]
        fn = self._use_mm_fn(unuse=True)
        if self.t_kind[t] != KTHREAD:
            raise self._use_mm_refusal(fn, f"{name} is not a kernel thread: ", "unless current has PF_KTHREAD",
                                       "!(tsk->flags & PF_KTHREAD)")
        self._require_current(t, "unuse_mm", fn)
        m = self.t_mm[t]
        if m is None:
            raise self._use_mm_refusal(fn, f"{name} is not inside {self._use_mm_fn().split(' ')[0]}: ",
                                       "if current->mm is NULL", "!tsk->mm")
        return m

    def kthread_unuse_mm(self, t: int) -> None:
        """kernel/kthread.c kthread_unuse_mm: mm stays active_mm, lazily.  Since aa464ba9a1e4 (v6.4)
        mmgrab_lazy_tlb(mm) then mmdrop(mm) (the references are not equivalent); before, the
        kthread_use_mm reference simply became the lazy one."""
        name = self.t_name[t]
        m = self.kthread_unuse_mm_checks(t)
        cpu = self.t_cpu[t]
        self._op(name, self._use_mm_fn(unuse=True).split(" ")[0], "{} stays active_mm, now lazily", self.m_name[m])
        self.kthread_unuse_mm_clear(t, cpu, m)
        self.arch.enter_lazy_tlb(self, cpu, m, t)
        if self.version.has(V.LAZY_TLB_HELPERS):
            self.mmdrop(m)

    def kthread_unuse_mm_clear(self, t: int, cpu: int, m: int) -> None:
        """tsk->mm = NULL; membarrier_update_current_mm(NULL); since aa464ba9a1e4 mmgrab_lazy_tlb(mm)
        (active_mm stays)."""
        self._set_mm(t, None)
        if self.version.has(V.MEMBARRIER_USE_MM):
            self._set_rq_membarrier(cpu, None)          # membarrier_update_current_mm(NULL)
        if self.version.has(V.LAZY_TLB_HELPERS):
            self.mmgrab_lazy_tlb(m)

    # ================================================================ unlazy, hotplug
    def unlazy(self, cpu: int) -> None:
        self._require_online(cpu, "unlazy")
        t = self.c_curr[cpu]
        if self.t_state[t] == DEAD:
            raise Refusal(f"cpu{cpu}'s current task {self.t_name[t]} has exited; the CPU must schedule away first",
                          "do_task_dead (kernel/exit.c)")
        if self.t_mm[t] is not None:
            raise Refusal(f"cpu{cpu} runs {self.t_name[t]}, which has its own mm {self.m_name[self.t_mm[t]]}; only a "
                          f"task without an mm is lazy", "sched_force_init_mm (kernel/sched/core.c)")
        if not self.version.has(V.SCHED_FORCE_INIT_MM):
            # 2.4 had no way to push a lazy task onto init_mm: it kept the borrowed mm until switched away
            raise Refusal(f"{self.version.name} has no sched_force_init_mm: a lazy task keeps its borrowed mm "
                          f"until it is switched away", "schedule (2.4 kernel/sched.c)")
        if not self.arch.has_cpu_hotplug:
            raise Refusal(f"{self.arch.name} has no CPU hotplug: sched_force_init_mm never runs there, a lazy "
                          f"task keeps its borrowed mm until it is switched away",
                          "sched_force_init_mm (kernel/sched/core.c)")
        self.sched_force_init_mm(cpu)

    def sched_force_init_mm(self, cpu: int) -> None:
        """Move the CPU's lazy task to init_mm (also the hotplug path, 15a)."""
        t = self.c_curr[cpu]
        m = self.t_active[t]
        if m == INIT_MM:
            self._cpu_op(cpu, "sched_force_init_mm", "{} is already on init_mm", self.t_name[t])
            return
        self._cpu_op(cpu, "sched_force_init_mm", "{}: {} -> @init_mm", self.t_name[t], self.mm_label(m))
        self.switch_to_init_mm(cpu, t)
        self.d_cpus.add(cpu)

    def switch_to_init_mm(self, cpu: int, t: int) -> None:
        """A task without an mm leaves its borrowed active_mm for init_mm: mmgrab_lazy_tlb(&init_mm);
        active_mm = &init_mm; switch_mm_irqs_off(mm, &init_mm); mmdrop_lazy_tlb(mm).  The steps of
        sched_force_init_mm (kernel/sched/core.c), which powerpc's exit_lazy_flush_tlb repeats."""
        self.switch_to_init_mm_finish(cpu, t, self.switch_to_init_mm_store(t))

    def switch_to_init_mm_store(self, t: int) -> Optional[int]:
        """switch_to_init_mm's first half: mmgrab_lazy_tlb(&init_mm); active_mm = &init_mm.  Returns
        the mm left, whose lazy reference the second half drops."""
        m = self.t_active[t]
        self.mmgrab_lazy_tlb(INIT_MM)
        self._set_active_mm(t, INIT_MM)
        return m

    def switch_to_init_mm_finish(self, cpu: int, t: int, m: Optional[int]) -> None:
        """Its second half: switch_mm_irqs_off(mm, &init_mm); mmdrop_lazy_tlb(mm)."""
        self.arch.switch_mm_irqs_off(self, cpu, m, INIT_MM, t)
        if m is not None:
            self.mmdrop_lazy_tlb(m)

    def exit_lazy_in_steps(self, cpu: int, m: int) -> bool:
        """Granularity step: powerpc's exit_lazy_flush_tlb, called by the exiting task itself from
        exit_mmap's flush, switches it to init_mm in exit_mm's own steps (interpreter/steps.py,
        exit_lazy_flush_tlb), so an interrupt can land between them; True when it is left to them."""
        if not self.stepping or self.c_op[cpu] != "exit_mm" or self.this_cpu != cpu:
            return False
        self.c_exit_lazy[cpu] = m
        self.d_cpus.add(cpu)
        return True

    def interrupt_entry(self, cpu: int) -> None:
        """irq_enter on ``cpu`` (the scenario's `interrupt` handler): what the interrupted code left
        is what the handler sees; the arch may check it (powerpc: active_mm against the MMU)."""
        self.arch.interrupt_entry(self, cpu)

    def cpu_down(self, cpu: int) -> None:
        """Hot-unplug: the checks of cpu_down (kernel/cpu.c), then its stages in order (offline_stages)."""
        self.cpu_down_checks(cpu)
        for stage in self.offline_stages():
            stage(cpu)

    def cpu_down_checks(self, cpu: int) -> None:
        """What cpu_down refuses (granularity step runs it as the first step, interpreter/steps.py)."""
        self._require_online(cpu, "offline")
        self._require_hotplug()
        self._hotplug_serialized("cpu_down", cpu)
        if sum(self.c_online) == 1:
            raise Refusal(f"cpu{cpu} is the last online CPU; cpu_down refuses to take it down",
                          "cpu_down (kernel/cpu.c)")
        idle = self._idle(cpu)
        if self.c_curr[cpu] != idle:
            raise Refusal(f"cpu{cpu} runs {self.t_name[self.c_curr[cpu]]}; schedule it to its idle task before "
                          f"taking it offline (the model leaves task migration to the scenario)",
                          "sched_cpu_wait_empty (kernel/sched/core.c)")

    def offline_stages(self) -> tuple:
        """cpu_down's stages, each a kernel operation of its own that another CPU's operations may come
        between (issue 15's kernel steps interleave them): since 21641bd9a7a7 (v6.14) the outgoing CPU
        leaves its lazy mm at CPUHP_AP_SCHED_WAIT_EMPTY, before take_cpu_down's __cpu_disable clears it
        from the mm_cpumasks (powerpc); before it, idle_task_exit switched away at the very end, on the
        dead CPU; finish_cpu on a live CPU since bf2c59fce407 (v5.8)."""
        v = self.version
        if v.has(V.SCHED_FORCE_INIT_MM):
            return (self.sched_cpu_wait_empty, self.take_cpu_down, self.arch_cpu_idle_dead, self.finish_cpu)
        if v.has(V.ILLEGAL_RCU_OFFLINE):
            return (self.take_cpu_down, self.arch_cpu_idle_dead, self.finish_cpu)
        return (self.take_cpu_down, self.arch_cpu_idle_dead)

    def sched_cpu_wait_empty(self, cpu: int) -> None:
        """kernel/sched/core.c, CPUHP_AP_SCHED_WAIT_EMPTY on the outgoing CPU (v6.14): sched_force_init_mm."""
        self.this_cpu = cpu
        self.sched_force_init_mm(cpu)

    def take_cpu_down(self, cpu: int) -> None:
        """kernel/cpu.c, on the outgoing CPU under stop_machine: __cpu_disable (the arch's: powerpc's
        cleanup_cpu_mmu_context since 01b0f0eae081) and set_cpu_online(cpu, false)."""
        self.this_cpu = cpu
        self.arch.cpu_dead(self, cpu)
        self.c_online[cpu] = False
        self.t_state[self._idle(cpu)] = RUNNABLE
        self.d_cpus.add(cpu)

    def arch_cpu_idle_dead(self, cpu: int) -> None:
        """The dead CPU's last steps, in its idle loop after cpuhp_report_idle_dead (RCU stops watching it):
        the arch's play_dead -> idle_task_exit, which does nothing since 21641bd9a7a7."""
        if not self.version.has(V.SCHED_FORCE_INIT_MM):
            self.idle_task_exit(cpu)

    def idle_task_exit(self, cpu: int) -> None:
        """kernel/sched/core.c, on the dying CPU (BUG_ON(cpu_online(smp_processor_id()))): switch_mm to
        init_mm; before bf2c59fce407 also current->active_mm = &init_mm and mmdrop(mm) right here."""
        idle = self._idle(cpu)
        m = self.t_active[idle]
        self.this_cpu = cpu
        if m is not None and m != INIT_MM:
            self._cpu_op(cpu, "idle_task_exit", "idle{}: switch_mm {} -> @init_mm on the dying cpu{}",
                         cpu, self.m_name[m], cpu)
            self.arch.switch_mm_irqs_off(self, cpu, m, INIT_MM, idle)
        if self.version.has(V.ILLEGAL_RCU_OFFLINE):
            self._cpu_op(cpu, "idle_task_exit", "idle{} keeps active_mm {}: finish_cpu cleans it up", cpu,
                         self.mm_label(m))
            return
        self._cpu_op(cpu, "idle_task_exit", "mmdrop({}) on cpu{}: offline, RCU no longer watching",
                     self.mm_label(m), cpu)
        self._set_active_mm(idle, None)
        if m is not None:
            self.mmdrop_lazy_tlb(m)

    def finish_cpu(self, cpu: int) -> None:
        """kernel/cpu.c, on the control CPU once the CPU is dead.  Since 21641bd9a7a7 (v6.14):
        WARN_ON(mm != &init_mm); idle->active_mm = NULL; mmdrop_lazy_tlb(mm).  v5.8 to v6.13:
        idle->active_mm = &init_mm; mmdrop(mm): a last reference is dropped on an online CPU."""
        idle = self._idle(cpu)
        m = self.t_active[idle]
        ctrl = self._control_cpu(cpu)
        self.this_cpu = ctrl
        if self.version.has(V.SCHED_FORCE_INIT_MM):
            if m != INIT_MM:
                self.violate("hotplug-mm", f"idle{cpu} is on {self.mm_label(m)} when its CPU died, not init_mm",
                             "finish_cpu (kernel/cpu.c): WARN_ON(mm != &init_mm)", m)
            self._cpu_op(cpu, "finish_cpu", "idle{} gives init_mm back; cpu{} is offline", cpu, cpu)
        else:
            self._cpu_op(cpu, "finish_cpu", "on cpu{}: idle{} active_mm {} -> @init_mm, mmdrop({})", ctrl, cpu,
                         self.mm_label(m), self.mm_label(m))
        self._set_active_mm(idle, None)
        if m is not None:
            self.mmdrop_lazy_tlb(m)
        self.d_cpus.add(cpu)

    def _hotplug_serialized(self, function: str, own: Optional[int] = None) -> None:
        """cpu_maps_update_begin (cpu_add_remove_lock): one hotplug operation at a time.  Only a
        cpu_down in flight (granularity step; on the CPU going down, ``own`` for its own first
        step) can be in the way; the kernel would wait, the model refuses."""
        other = next((c for c, op in enumerate(self.c_op) if op == "cpu_down" and c != own), None)
        if other is not None:
            raise Refusal(f"cpu{other} is in the middle of cpu_down; hotplug operations are serialized "
                          f"(cpu_maps_update_begin), so {function} waits for it", f"{function} (kernel/cpu.c)")

    def _control_cpu(self, cpu: int) -> int:
        """The CPU that runs cpu_down's teardown callbacks (finish_cpu): the model takes the
        lowest-numbered online CPU other than the one going down."""
        return next(c for c in range(self.ncpus) if c != cpu and self.c_online[c])

    def cpu_up(self, cpu: int) -> None:
        """Bring-up: the CPU's idle task takes init_mm (mmgrab, or the lazy helper on powerpc)."""
        self._require_hotplug()
        self._hotplug_serialized("cpu_up")
        if self.c_online[cpu]:
            raise Refusal(f"cpu{cpu} is already online", "cpu_up (kernel/cpu.c)")
        idle = self._idle(cpu)
        self.c_online[cpu] = True
        self.t_state[idle] = RUNNING
        self._cpu_op(cpu, "cpu_up", "idle{} starts on init_mm", cpu)
        self._bringup_grab_init_mm()
        self._set_active_mm(idle, INIT_MM)
        self._cpu_starts(cpu)
        self.d_cpus.add(cpu)

    # ---- boot and bring-up
    def boot(self) -> None:
        """start_kernel: sched_init gives the boot CPU's idle task init_mm (mmgrab_lazy_tlb),
        each secondary CPU's bring-up its own; then the arch's trap_init on the boot CPU."""
        for cpu in range(self.ncpus):
            if cpu == 0:
                self.mmgrab_lazy_tlb(INIT_MM)
            else:
                self._bringup_grab_init_mm()
            self._set_active_mm(self._idle(cpu), INIT_MM)
            self._cpu_starts(cpu)
        self.arch.trap_init(self)

    def _bringup_grab_init_mm(self) -> None:
        """A secondary CPU's idle task takes init_mm (start_secondary, secondary_start_kernel)."""
        if self.arch.bringup_grab_lazy_tlb:
            self.mmgrab_lazy_tlb(INIT_MM)
        else:
            self.mmgrab(INIT_MM)

    def _cpu_starts(self, cpu: int) -> None:
        """A CPU coming up runs on init_mm's page tables; then the arch's own state of it."""
        self.c_loaded[cpu] = INIT_MM
        self.c_lazy[cpu] = False
        self.arch.cpu_up(self, cpu)

    # ---- flushes
    def flush(self, m: int, freed_tables: bool, from_cpu: Optional[int]) -> None:
        self.flush_begin(m, freed_tables, from_cpu)
        self.arch.flush_tlb_mm_range(self, m, freed_tables, from_cpu)
        self._flush_reached_all(m)

    def flush_begin(self, m: int, freed_tables: bool, from_cpu: Optional[int]) -> None:
        """What every flush does before the arch's code: the page tables changed (a new flush
        generation).  An arch whose flush is several steps (steps.py) runs its code after it."""
        if self.m_freed[m]:
            self.violate("use-after-free", f"flush of {self.m_name[m]}, which was already freed",
                         "flush_tlb_mm_range (arch/*/mm)", m)
        self.this_cpu = from_cpu
        self._op(self.m_name[m], "flush_tlb_mm_range", "page tables freed" if freed_tables else "")
        self.inc_mm_tlb_gen(m)

    # ---- the TLB's truth: flush generations (x86's mm->context.tlb_gen, kept for every arch)
    def inc_mm_tlb_gen(self, m: int) -> None:
        """inc_mm_tlb_gen (arch/x86/include/asm/tlbflush.h): a flush of ``m`` starts a new generation
        of its translations; every CPU that may hold older ones must flush before it uses them."""
        self.m_tlb_gen[m] += 1
        self.d_mms.add(m)

    def _flush_reached_all(self, m: int) -> None:
        """A policy that does not say which CPUs its flushes reach (``tlb_generations`` off: generic,
        arm64's broadcast TLBI, powerpc's tlbie) reaches every CPU that has ``m`` loaded."""
        if not self.arch.tlb_generations:
            for c in range(self.ncpus):
                if self.c_loaded[c] == m:
                    self.hw.tlb_caught_up(c)

    def rollover(self, cpu: int) -> None:
        """`rollover cpuN`: the CPU's address-space ids are used up, so its next allocation starts a
        new generation (ARM __new_context, ia64 wrap_mmu_context); the policy says how."""
        self._require_online(cpu, "rollover")
        self.this_cpu = cpu
        self.arch.asid_rollover(self, cpu)

    # ================================================================ membarrier (kernel/sched/membarrier.c)
    def _set_rq_membarrier(self, cpu: int, m: Optional[int]) -> None:
        """rq->membarrier_state := next_mm's (none: 0), as membarrier_switch_mm, membarrier_exec_mmap and
        membarrier_update_current_mm write it; only a change is a write."""
        state = m is not None and self.m_membarrier[m]
        if self.c_membarrier[cpu] != state:
            self.c_membarrier[cpu] = state
            self.d_cpus.add(cpu)

    def membarrier_register_global_expedited(self, cpu: int) -> None:
        """MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED from cpuN's current task: its mm's state gets
        MEMBARRIER_STATE_GLOBAL_EXPEDITED; since 227a4aadc75b sync_runqueues_membarrier_state copies it
        into the runqueues that run the mm (this one alone for a single user or a single online CPU)."""
        self._require_online(cpu, "membarrier")
        t = self._require_running_on(cpu, "membarrier_register_global_expedited (kernel/sched/membarrier.c)")
        m = self.t_mm[t]
        if m is None:
            raise Refusal(f"cpu{cpu} runs {self.t_name[t]}, which has no mm: membarrier registers current->mm, "
                          f"so only a task with an mm registers", "membarrier_register_global_expedited "
                          f"(kernel/sched/membarrier.c)")
        self.this_cpu = cpu
        if self.m_membarrier[m]:
            self._cpu_op(cpu, "membarrier_register_global_expedited", "{} is already registered", self.m_name[m])
            return
        self.m_membarrier[m] = True
        self.d_mms.add(m)
        self._cpu_op(cpu, "membarrier_register_global_expedited", "{}: {} gets MEMBARRIER_STATE_GLOBAL_EXPEDITED",
                     self.t_name[t], self.m_name[m])
        if not self.version.has(V.MEMBARRIER_RQ_STATE):
            return      # membarrier read p->mm->membarrier_state of each CPU's current task then
        if self.m_users[m] == 1 or sum(self.c_online) == 1:
            cpus = [cpu]
        else:           # on_each_cpu_mask(tmpmask, ipi_sync_rq_state): the CPUs whose current->mm is mm
            cpus = [c for c in range(self.ncpus) if self.c_online[c] and self.t_mm[self.c_curr[c]] == m]
        self._cpu_op(cpu, "sync_runqueues_membarrier_state", "rq->membarrier_state of {}",
                     ", ".join(f"cpu{c}" for c in cpus))
        for c in cpus:
            if c != cpu:
                self.cost[C_IPI] += 1
                self._cpu_op(c, "ipi_sync_rq_state", "rq->membarrier_state = {}'s", self.m_name[m])
            self._set_rq_membarrier(c, m)

    def membarrier_global_expedited(self, cpu: int) -> None:
        """MEMBARRIER_CMD_GLOBAL_EXPEDITED from cpuN: an IPI (ipi_mb) to every other online CPU that
        runs a registered mm's code.  Which CPUs it picks changed twice:

        before 227a4aadc75b (v5.4): curr->mm && curr->mm->membarrier_state (the racy load of LT-09);
        227a4aadc75b: rq->membarrier_state, and skip curr with PF_KTHREAD (kthread_use_mm too: LT-10);
        618758ed3a4f (v5.11): rq->membarrier_state, and skip curr without an mm."""
        if not self.membarrier_global_expedited_checks(cpu):
            return
        targets, why = [], {}       # the IPI's CPUs; why each other one was skipped
        for c in self.membarrier_loop_cpus(cpu):
            skip = self.membarrier_skip(c)
            if skip:
                why[c] = skip
            else:
                targets.append(c)
        self.membarrier_ipi_mb(cpu, targets)
        for c, reason in why.items():
            self.membarrier_missed(c, reason)

    # the parts of membarrier_global_expedited, which its steps (interpreter/steps.py) call one by one
    def membarrier_global_expedited_checks(self, cpu: int) -> bool:
        """The system call's checks; False: nothing to do (one online CPU)."""
        self._require_online(cpu, "membarrier")
        self._require_running_on(cpu, "membarrier_global_expedited (kernel/sched/membarrier.c)")
        self.this_cpu = cpu
        if sum(self.c_online) == 1:
            self._cpu_op(cpu, "membarrier_global_expedited", "num_online_cpus() == 1: nothing to do")
            return False
        return True

    def membarrier_loop_cpus(self, cpu: int, after: int = -1) -> list:
        """for_each_online_cpu(cpu), skipping raw_smp_processor_id(): the CPUs after ``after``."""
        return [c for c in range(after + 1, self.ncpus) if c != cpu and self.c_online[c]]

    def membarrier_skip(self, c: int) -> str:
        """Why the loop skips cpu ``c`` ("" for an IPI target), its tests in the kernel's order, the
        first one skipping: before 227a4aadc75b (v5.4) p->mm && p->mm->membarrier_state, a read of
        the mm (as one step here: steps.py splits it); since, rq->membarrier_state, then PF_KTHREAD
        (618758ed3a4f, v5.11: then !p->mm)."""
        v = self.version
        p = self.c_curr[c]
        if not v.has(V.MEMBARRIER_RQ_STATE):
            return "" if self.t_mm[p] is not None and self.m_membarrier[self.t_mm[p]] else "curr->mm is not registered"
        kthread_flag = not v.has(V.MEMBARRIER_USE_MM)
        return "; ".join(w for bad, w in ((not self.c_membarrier[c], "rq->membarrier_state is not set"),
                                          (kthread_flag and self.t_kind[p] != USER, f"{self.t_name[p]} has PF_KTHREAD"),
                                          (self.t_mm[p] is None, f"{self.t_name[p]} has no mm")) if bad)

    def membarrier_ipi_mb(self, cpu: int, targets: list) -> None:
        """smp_call_function_many(tmpmask, ipi_mb, NULL, 1): ipi_mb is smp_mb() and changes no modelled
        state, so it runs at once on each target (no queued IPI) and is counted."""
        self.this_cpu = cpu
        self._cpu_op(cpu, "membarrier_global_expedited", "smp_call_function_many: {}",
                     ", ".join(f"cpu{c}" for c in targets) or "no CPU")
        for c in targets:
            self.cost[C_IPI] += 1
            self._cpu_op(c, "ipi_mb", "smp_mb()")

    def membarrier_missed(self, c: int, reason: str) -> None:
        """What membarrier(2) promises: every CPU whose current task runs a registered mm's user memory
        (its own mm, or since 618758ed3a4f one adopted with kthread_use_mm) takes the barrier."""
        p = self.c_curr[c]
        m = self.t_mm[p]
        if m is None or not self.m_membarrier[m]:
            return
        user = "through kthread_use_mm" if self.t_kind[p] == KTHREAD else "as its own mm"
        self.violate("membarrier-missed", f"cpu{c} runs {self.t_name[p]}, which uses the user memory of "
                     f"{self.m_name[m]} ({user}), registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED, but "
                     f"membarrier skipped cpu{c} ({reason}): no barrier IPI, so the ordering membarrier(2) "
                     f"promises towards code using that mm is lost there",
                     "membarrier_global_expedited (kernel/sched/membarrier.c)", m)

    def membarrier_read_state(self, cpu: int, m: int) -> bool:
        """Before 227a4aadc75b: atomic_read(&mm->membarrier_state) through the bare pointer mm the loop
        read from p->mm, no reference held: a use after free if the mm was freed since (LT-09)."""
        self.d_mms.add(m)
        if self.m_freed[m]:
            self.violate("use-after-free", f"membarrier_global_expedited on cpu{cpu} reads "
                         f"{self.m_name[m]}->membarrier_state, but {self.m_name[m]} was freed after the loop read "
                         f"the pointer from p->mm: the task struct is RCU-protected, its mm is not (KASAN: "
                         f"use-after-free in membarrier_global_expedited)",
                         "membarrier_global_expedited (kernel/sched/membarrier.c): "
                         "atomic_read(&p->mm->membarrier_state), before 227a4aadc75b", m)
        return self.m_membarrier[m]

    # ================================================================ the scheduler tick, task_work
    def scheduler_tick(self, cpu: int) -> None:
        """scheduler_tick on cpuN -> task_tick_fair -> task_tick_numa(rq, curr): queue task_numa_work
        on curr (task_work_add, TWA_RESUME).  The model takes every tick as one where curr's scan period
        has passed.  Before 18f855e574d9 (v5.7) the test was `!curr->mm` only, so a kernel thread inside
        kthread_use_mm got the work; since then PF_KTHREAD tasks never do.  A user task runs it when the
        tick returns to user mode (task_work_run in exit_to_user_mode); a kernel thread only where its
        code calls task_work_run (io_sq_thread did)."""
        self._require_online(cpu, "tick")
        t = self.c_curr[cpu]
        self.this_cpu = cpu
        name, m = self.t_name[t], self.t_mm[t]
        if self.t_state[t] == DEAD:
            why = f"{name} has PF_EXITING"
        elif self.version.has(V.NUMA_NO_KTHREAD) and self.t_kind[t] != USER:
            why = f"{name} has PF_KTHREAD: no NUMA balancing for kernel threads"
        elif m is None:
            why = f"{name}->mm is NULL: \"We don't care about NUMA placement if we don't have memory\""
        elif self.t_numa_work[t]:
            why = f"{name}'s numa_work is already queued"
        else:
            why = ""
        if why:
            self._cpu_op(cpu, "task_tick_numa", why)
            return
        self._cpu_op(cpu, "task_tick_numa", "task_work_add({}, task_numa_work): {}->mm is {}", name, name,
                     self.m_name[m])
        self.t_numa_work[t] = True
        self.d_tasks.add(t)
        if self.t_kind[t] == USER:
            self._cpu_op(cpu, "exit_to_user_mode", "{} returns to user mode: task_work_run", name)
            self.task_numa_work(t)

    def task_work_run(self, t: int) -> None:
        """task_work_run() called by current (a kernel thread's own loop, as io_sq_thread's)."""
        cpu = self._require_current(t, "task_work_run", "task_work_run (kernel/task_work.c)")
        if not self.t_numa_work[t]:
            self._cpu_op(cpu, "task_work_run", "{} has no task_work queued", self.t_name[t])
            return
        self.task_numa_work(t)

    def task_numa_work(self, t: int) -> None:
        """kernel/sched/fair.c: work->next = work; return for PF_EXITING; then mm = p->mm and the scan
        (mm->numa_next_scan, change_prot_numa: not modelled) dereferences it."""
        name, m = self.t_name[t], self.t_mm[t]
        self.t_numa_work[t] = False
        self.d_tasks.add(t)
        if m is None:
            self._op(name, "task_numa_work", "current->mm is NULL")
            self.violate("task_numa_work-null-mm", f"task_numa_work runs on {name} with current->mm NULL: "
                         f"task_tick_numa queued it while {name} had an mm (kthread_use_mm), and {name} has called "
                         f"kthread_unuse_mm since: the scan dereferences mm->numa_next_scan, a NULL pointer "
                         f"dereference (\"BUG: kernel NULL pointer dereference\" in task_numa_work)",
                         "task_numa_work (kernel/sched/fair.c), queued by task_tick_numa")
            return
        self._op(name, "task_numa_work", "scans {} (numa_next_scan)", self.m_name[m])

    # ================================================================ user-memory access from NMI/perf
    def get_segment_base(self, cpu: int) -> None:
        """arch/x86/events/core.c get_segment_base (perf's user callchain) and arch/x86/lib/insn-eval.c
        get_desc take the LDT of the user context of the code interrupted on cpuN.  Since 81e3cbdef230
        (v6.16): nothing unless nmi_uaccess_okay() (the loaded mm is current->mm), then current->mm;
        before it: current->active_mm, which a lazy kernel thread only borrows."""
        self._require_online(cpu, "perf_sample")
        t = self.c_curr[cpu]
        self.this_cpu = cpu
        name, mm, active = self.t_name[t], self.t_mm[t], self.t_active[t]
        loaded = self.arch.loaded_mm(self, cpu)
        okay = mm is not None and loaded == mm
        if self.version.has(V.NO_ACTIVE_MM_UACCESS):
            if not okay:
                self._cpu_op(cpu, "get_segment_base", "nmi_uaccess_okay() is false ({}->mm {}, loaded_mm {}): "
                             "no user context, segment base 0", name, self.mm_label(mm), self.mm_label(loaded))
                return
            self._cpu_op(cpu, "get_segment_base", "current->mm {}: reads its LDT", self.m_name[mm])
            return
        self._cpu_op(cpu, "get_segment_base", "current->active_mm {}: reads its LDT", self.mm_label(active))
        if active is not None and not okay:
            self.violate("user-context", f"get_segment_base on cpu{cpu} reads the LDT of {self.m_name[active]} "
                         f"through current->active_mm, but {name} has mm {self.mm_label(mm)} and cpu{cpu} has "
                         f"{self.mm_label(loaded)} loaded: {self.m_name[active]} is borrowed, not the user "
                         f"context (nmi_uaccess_okay() is false); the user context is current->mm, and only "
                         f"while it is the loaded mm", "get_segment_base (arch/x86/events/core.c), get_desc "
                         f"(arch/x86/lib/insn-eval.c)", active)
    # ---- IPIs as events (granularity step): smp_call_function_many's queue and wait
    def smp_call_waiting(self, cpu: int) -> bool:
        """``cpu`` sent IPIs that some target has not run yet."""
        bit = 1 << cpu
        return any(f & bit for f in self.c_ipi_from)

    def run_ipi(self, target: int, sender: int) -> None:
        """``target`` takes the IPI ``sender`` queued: the handler runs there (interrupt context)."""
        fn, m = self.c_ipi_fn[sender], self.c_ipi_mm[sender]
        self.c_ipi_from[target] &= ~(1 << sender)
        self.d_cpus.add(target)
        self.this_cpu = sender
        self.hw.ipi(target)         # the IPI sender sent, counted as its handler runs
        self.this_cpu = target
        self._cpu_op(target, fn, "the IPI from cpu{}", sender)
        getattr(self.arch, fn)(self, target, m)

    def smp_call_done(self, cpu: int) -> None:
        """The sender's wait is over: what its caller does after smp_call_function_many returns."""
        after, m = self.c_ipi_after[cpu], self.c_ipi_mm[cpu]
        self.c_ipi_fn[cpu] = self.c_ipi_after[cpu] = self.c_ipi_mm[cpu] = None
        self.d_cpus.add(cpu)
        if m is not None:
            self.d_mms.add(m)
        if after is not None:
            getattr(self.arch, after)(self, m, cpu)

    def flush_returned(self, m: int) -> None:
        """A flush of ``m`` returned: the TLB rules look at every CPU that has it loaded."""
        self.d_mms.add(m)

    # ================================================================ external references
    def ext_mmget(self, m: int) -> None:
        self.m_ext_users[m] += 1
        self.mmget(m)

    def ext_mmget_not_zero(self, m: int) -> bool:
        ok = self.mmget_not_zero(m)
        if ok:
            self.m_ext_users[m] += 1
        return ok

    def ext_mmput(self, m: int) -> None:
        if self.m_ext_users[m] <= 0:
            self.violate("unbalanced-mmput", f"mmput({self.m_name[m]}) with no mm_users reference taken by an "
                         f"earlier mmget: it drops a task's reference", "mmput (kernel/fork.c)", m)
        self.m_ext_users[m] -= 1
        self.mmput(m)

    def ext_mmgrab(self, m: int) -> None:
        self.m_ext_count[m] += 1
        self.mmgrab(m)

    def ext_mmdrop(self, m: int) -> None:
        if self.m_ext_count[m] <= 0:
            self.violate("unbalanced-mmdrop", f"mmdrop({self.m_name[m]}) with no mm_count reference taken by an "
                         f"earlier mmgrab: it drops somebody else's reference", "mmdrop (include/linux/sched/mm.h)", m)
        self.m_ext_count[m] -= 1
        self.mmdrop(m)

    # ================================================================ helpers
    def _idle(self, cpu: int) -> int:
        return cpu  # idle tasks are created first, one per CPU

    def _require_hotplug(self) -> None:
        if not self.version.has(V.CPU_HOTPLUG):
            without = self.version.name
        elif not self.arch.has_cpu_hotplug:
            without = self.arch.name
        else:
            return
        raise Refusal(f"{without} has no CPU hotplug (it came with 2.6)", "cpu_down/cpu_up (kernel/cpu.c)")

    def _require_online(self, cpu: int, what: str) -> None:
        if not self.c_online[cpu]:
            raise Refusal(f"cpu{cpu} is offline; bring it up with `online cpu{cpu}` first",
                          "cpu_online (include/linux/cpumask.h)")

    def _require_current(self, t: int, what: str, function: str) -> int:
        """The task must be current on a CPU (these functions act on `current`)."""
        name = self.t_name[t]
        if self.t_state[t] == DEAD:
            raise Refusal(f"{name} has already exited", function)
        cpu = self.t_cpu[t]
        if cpu is None:
            raise Refusal(f"{name} is not running; {function.split(' ')[0]} acts on current, so schedule "
                          f"{name} on a CPU first", function)
        self.this_cpu = cpu
        return cpu

    def _require_running_on(self, cpu: int, function: str) -> int:
        """cpuN's current task, which issues a system call: it must not have exited."""
        t = self.c_curr[cpu]
        if self.t_state[t] == DEAD:
            raise Refusal(f"cpu{cpu}'s current task {self.t_name[t]} has exited; the CPU must schedule away first",
                          "do_task_dead (kernel/exit.c)")
        return t

    def current_dead(self, cpu: int) -> bool:
        return self.t_state[self.c_curr[cpu]] == DEAD

    # ================================================================ invariants
    def check(self) -> list:
        """Check the rules the kernel relies on for what the last statement touched.  (This runs
        after every statement: the common case, an mm or CPU that breaks nothing, costs a few
        comparisons; the words are built only for what breaks.)"""
        out = self.violations
        own = len(out)      # the statement's own, found by the primitives as they ran
        d_mms, d_tasks, d_cpus = self.d_mms, self.d_tasks, self.d_cpus
        if d_mms:
            self._check_mms(out)
        if d_tasks:
            t_mm, t_active = self.t_mm, self.t_active
            for t in d_tasks:
                m = t_mm[t]
                if m is not None and (t_active[t] != m or m == INIT_MM):
                    self._check_task(out, t, m)
        if d_cpus or d_mms:
            # the TLB's truth (_stale_tlb) on the CPUs touched, and (a touched mm) those with it
            # loaded, in CPU order; a CPU caught up with its loaded mm's generations breaks neither
            # rule (the common case), so that cheap test comes first
            loaded = self.c_loaded
            c_tlb_gen, m_tlb_gen, c_asid_gen, m_asid_gen = self.c_tlb_gen, self.m_tlb_gen, self.c_asid_gen, \
                self.m_asid_gen
            for c in range(self.ncpus) if d_mms else sorted(d_cpus) if len(d_cpus) > 1 else d_cpus:
                m = loaded[c]
                if m is not None and (c_tlb_gen[c] < m_tlb_gen[m] or c_asid_gen[c] < m_asid_gen[m]) \
                        and (c in d_cpus or m in d_mms):
                    self._stale_tlb(out, c, m)
            self.arch.check(self, out, d_cpus, d_mms)
        if own and len(out) > 1:
            # what breaks on an mm the statement itself already broke follows from that
            first = {}
            for i, v in enumerate(out):
                if v.mm is not None:
                    if v.mm in first:
                        v.cause = first[v.mm]
                    elif i < own:
                        first[v.mm] = i
        if self.changed is not None:
            ct, cm, cc = self.changed
            ct |= d_tasks; cm |= d_mms; cc |= d_cpus
        d_tasks.clear(); d_mms.clear(); d_cpus.clear()
        self.violations = []
        return out

    def _check_mms(self, out: list) -> None:
        """check()'s accounting of each touched mm: its counters against the references the
        model can name.  (One or two mms a statement: the lists are read from self as needed.)"""
        for m in self.d_mms:
            users, count = self.m_users[m], self.m_count[m]
            if self.m_freed[m]:
                if self._held(m):
                    out.append(Violation("use-after-free",
                                         self._holders(m, f"{self.m_name[m]} was freed (mm_count 0) but "),
                                         "__mmdrop (kernel/fork.c): WARN_ON_ONCE(mm == current->active_mm)", m))
                elif users > 0:
                    # mm_users > 0 holds the users' mm_count (mm_init): a step dropped one it did not hold
                    out.append(Violation("use-after-free", f"{self.m_name[m]} was freed (mm_count 0) while its "
                                         f"mm_users is {users}: the holders' mmput will decrement freed memory",
                                         "__mmdrop (kernel/fork.c) with mm_users > 0: KASAN reports the "
                                         "holders' mmput (atomic_dec_and_test(&mm->mm_users))", m))
                continue
            if self.m_rcu_cpu[m] is not None:
                # PREEMPT_RT, mmdrop_sched: mm_count 0 and __mmdrop pending; nothing may take it back
                if self._held(m) or count or users:
                    out.append(Violation("use-after-free", self._holders(
                        m, f"{self.m_name[m]}'s mm_count reached 0 and its __mmdrop_delayed is queued (RCU frees it "
                           f"after a grace period), but now it has mm_count {count}, mm_users {users}, "),
                        "mmdrop_sched (include/linux/sched/mm.h)", m))
                continue
            if users < 0 or count < 0:
                continue  # already reported by the primitive
            init = m == INIT_MM
            want_users = self.m_task_users[m] + self.m_ext_users[m] + self.m_step_users[m] + (2 if init else 0)
            lazy = self.m_lazy_tasks[m] + self.m_prev_mm_cpus[m] if self.refcount_lazy else 0
            pins = self.arch.init_mm_boot_pins if init else 0
            held = self.m_step_count[m]     # in a local of an operation in flight (granularity step)
            want = (1 if users > 0 else 0) + lazy + self.m_kthread_users[m] + self.m_ext_count[m] + pins + held
            if users != want_users:
                out.append(Violation(
                    "mm_users-accounting",
                    f"{self.m_name[m]} has mm_users {users}, but {want_users} can be accounted for "
                    f"({self.m_task_users[m]} tasks with it as mm, {self.m_ext_users[m]} external mmget"
                    + (f", {self.m_step_users[m]} held by an operation in flight" if self.m_step_users[m] else "")
                    + ")",
                    "mmget/mmput (kernel/fork.c)", m))
            if count != want:
                parts = [f"{1 if users > 0 else 0} for the users"]
                if self.refcount_lazy:
                    parts.append(f"{lazy} lazy")
                parts += [f"{self.m_kthread_users[m]} kthread_use_mm", f"{self.m_ext_count[m]} external mmgrab"]
                if held:
                    parts.append(f"{held} held by an operation in flight")
                if pins:
                    parts.append(f"{pins} never dropped since boot")
                out.append(Violation(
                    "mm_count-accounting",
                    f"{self.m_name[m]} has mm_count {count}, but {want} can be accounted for ({', '.join(parts)})",
                    "mmgrab/mmdrop and the _lazy_tlb helpers (include/linux/sched/mm.h)", m))
            if self.m_torn[m] and users > 0:
                out.append(Violation("users-resurrected", f"{self.m_name[m]}'s mm_users went back up from 0 to "
                                     f"{users}", "mmget_not_zero (include/linux/sched/mm.h)", m))

    def _check_task(self, out: list, t: int, m: int) -> None:
        """check()'s rules of a touched task with an mm: active_mm is mm, and mm is not init_mm."""
        if self.t_active[t] != m:
            out.append(Violation("active_mm-mismatch",
                                 f"{self.t_name[t]} has mm {self.m_name[m]} but active_mm "
                                 f"{self.mm_label(self.t_active[t])}",
                                 "context_switch (kernel/sched/core.c) relies on active_mm == mm"))
        if m == INIT_MM:
            out.append(Violation("init_mm-as-mm", f"{self.t_name[t]} has init_mm as its mm: init_mm is "
                                 f"never a task's real mm", "Documentation/mm/active_mm.rst"))

    def _stale_tlb(self, out: list, c: int, m: int) -> None:
        """check()'s TLB rules on cpu ``c``, whose TLB or address-space id is older than loaded ``m``'s:
        a CPU that runs user code of M (a user task of M, or a kernel thread inside kthread_use_mm(M))
        with M loaded holds nothing older than M's flush generation (a lazy CPU may, until it runs user
        code of M again), and uses M's address-space id of M's generation, not an older one."""
        c_tlb_gen, m_tlb_gen, c_asid_gen, m_asid_gen = self.c_tlb_gen, self.m_tlb_gen, self.c_asid_gen, self.m_asid_gen
        c_curr = self.c_curr
        if not self.c_online[c] or self.t_mm[c_curr[c]] != m or m == INIT_MM or self.m_freed[m]:
            return
        if c_tlb_gen[c] < m_tlb_gen[m] and m not in self.c_ipi_mm and m not in self.c_op_flushing:
            # (granularity step: a flush of m still waiting for its IPIs, or between sparc64's
            # single-user test and its reset, LT-03, has not returned yet)
            who, name = self.t_name[c_curr[c]], self.m_name[m]
            out.append(Violation(
                "stale-tlb", f"cpu{c} runs {who} on {name} with translations of flush generation "
                f"{c_tlb_gen[c]}, but {name} was flushed to generation {m_tlb_gen[m]}: the "
                f"flush returned without reaching cpu{c}'s TLB", "flush_tlb_mm_range: every CPU that runs "
                "the mm is flushed before the flush returns (x86 flush_tlb_func, tlb_gen)", m))
        elif c_asid_gen[c] < m_asid_gen[m]:
            who, name = self.t_name[c_curr[c]], self.m_name[m]
            out.append(Violation(
                "stale-asid", f"cpu{c} runs {who} on an address-space id of generation {c_asid_gen[c]}, "
                f"but {name}'s id (mm->context) is of generation {m_asid_gen[m]}: flushes of {name} by "
                f"its id miss cpu{c}, and the old id may be handed to another mm",
                "switch_mm: check_context / check_and_switch_context loads the mm's current id", m))

    def _held(self, m: int) -> int:
        """How many references to mm ``m`` the model can name (tasks on it lazily or as their mm,
        kthreads inside kthread_use_mm(m), CPUs keeping it as rq->prev_mm): none may outlive it."""
        return self.m_lazy_tasks[m] + self.m_kthread_users[m] + self.m_task_users[m] + self.m_prev_mm_cpus[m]

    def _holders(self, m: int, head: str) -> str:
        who = [f"{self.t_name[t]}" for t in range(len(self.t_name))
               if self.t_mm[t] == m or (self.t_mm[t] is None and self.t_active[t] == m)]
        return head + "still in use by " + ", ".join(who) if who else head + "still referenced"
