"""The kernel version beside the architecture: which modelled changes a kernel contains.

One table, CHANGES, lists every change to the kernel's own code (kernel/,
fs/exec.c, mm/) that the model tells apart: its key (the first 12 hex digits
of its commit, or a descriptive key for a change of the 1999-2.6 era that has
no commit in the git history), its title, the first release that contains it
and where that release was read.  The kernel asks a KernelVersion one
question, ``has(key)``: is this change in this kernel?  Releases are compared
here and nowhere else.

The oldest point is v2.3.13, the 1999 kernel of Documentation/mm/active_mm.rst
(``arch linux-2.3`` means the generic architecture at that release); the
newest is what the architecture files follow.  A release between two
modelled changes behaves like the newest change before it.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple, Optional


class Change(NamedTuple):
    key: str        #: 12 hex digits of the commit, or a descriptive key where there is no commit
    commit: str     #: the full commit id, "" for a change older than the git history
    title: str
    release: str    #: the first release that contains it
    source: str     #: where that release was read; UNVERIFIED says what it rests on
    arches: tuple = ()  #: the architectures (policy names) whose code it changes; () = the kernel's own code, every arch


# the keys the kernel asks about (interpreter/kernel.py)
CONTEXT_SWITCH = "context_switch-rq-prev_mm"
USE_MM = "use_mm"
EXEC_FRESH_MM = "exec_mmap-fresh-mm"
CPU_HOTPLUG = "cpu-hotplug"
ACTIVE_MM_TRANSFER = "139d025cda1d"
SCHED_FORCE_INIT_MM = "21641bd9a7a7"
# --- bugs: the keys of the changes kernel.py and policies/powerpc.py ask about (issue 14 item 5)
ILLEGAL_RCU_OFFLINE = "bf2c59fce407"     # idle_task_exit leaves the mmdrop to finish_cpu (LT-06)
MEMBARRIER_RQ_STATE = "227a4aadc75b"     # rq->membarrier_state; GLOBAL_EXPEDITED skips PF_KTHREAD (LT-09, LT-10)
MEMBARRIER_USE_MM = "618758ed3a4f"       # membarrier covers kthread_use_mm (LT-10)
MEMBARRIER_EXIT_MM = "5bc78502322a"      # exit_mm clears rq->membarrier_state
NUMA_NO_KTHREAD = "18f855e574d9"         # task_tick_numa: no NUMA work for PF_KTHREAD (LT-11)
NO_ACTIVE_MM_UACCESS = "81e3cbdef230"    # x86 get_segment_base/get_desc: current->mm under nmi_uaccess_okay (LT-13)
PPC_TRIM_SELF = "a665eec0a22e"           # powerpc: each CPU trims itself from mm_cpumask in the IPI (LT-04)
PPC_TRIM_OFFLINE = "01b0f0eae081"        # powerpc: cleanup_cpu_mmu_context at offline (LT-08)
# --- steps: what the kernel's steps (interpreter/steps.py) ask
KTHREAD_USE_MM_IRQS_OFF = "38cf307c1f20"   # kthread_use_mm/unuse_mm switch with irqs off (LT-02)
EXEC_IRQS_OFF = "d53c3dfb23c4"             # exec_mmap reads active_mm and stores mm with irqs off (LT-01)
X86_IRQS_OFF_ACTIVATE_MM = "af8967158f9a"  # x86 selects ARCH_WANT_IRQS_OFF_ACTIVATE_MM

# tlb's (interpreter/policies/arm.py, ia64.py)
ARM_ASID_SWITCH = "8678c1f04277"
IA64_SYSTEM_THREAD_FLUSH = "cfbb1426bd76"
IA64_REMOVED = "cf8e8658100d"

# --- hist2: the lazy refcount helpers, shoot lazies and kthread_use_mm (kernel-source-notes.md section 5)
LAZY_TLB_HELPERS = "aa464ba9a1e4"        # mmgrab_lazy_tlb/mmdrop_lazy_tlb (before: mmgrab/mmdrop there)
LAZY_TLB_REFCOUNT_CONFIG = "88e3009b5283"  # CONFIG_MMU_LAZY_TLB_REFCOUNT: the helpers may count nothing
SHOOT_LAZIES = "2655421ae69f"            # CONFIG_MMU_LAZY_TLB_SHOOTDOWN: __mmdrop -> cleanup_lazy_tlbs
PPC_LAZY_TLB_SHOOTDOWN = "77f68ebeee20"  # powerpc/64s selects MMU_LAZY_TLB_SHOOTDOWN
PPC_EXIT_SHOOTDOWN = "e43c0a0c3c28"      # powerpc radix: the exit flush shoots the lazy users down
KTHREAD_USE_MM_REFCOUNT = "6cad87b0d216"  # kthread_use_mm always mmgrab(mm), always drops active_mm
USE_MM_IN_KTHREAD_C = "9bf5b9eb232b"     # use_mm/unuse_mm move from mm/mmu_context.c to kernel/kthread.c
KTHREAD_USE_MM_NAME = "f5678e7f2ac3"     # ... and become kthread_use_mm/kthread_unuse_mm
MMDROP_SCHED = "8d491de6edc2"            # finish_task_switch drops the lazy mm with mmdrop_sched
# --- ppcsteps
PPC_EXIT_LAZY_IRQS_OFF = "dfaed3e1fa70"     # exit_lazy_flush_tlb switches current to init_mm under local_irq_save (LT-05)

CHANGES = (
    Change(CONTEXT_SWITCH, "", "context_switch() with rq->prev_mm: the lazy mm prev gives back is dropped in "
           "finish_task_switch, after switch_to (2.4's schedule() dropped it at once, before switch_to)",
           "v2.6.0", "UNVERIFIED: 2.4's kernel/sched.c schedule() and 2.6's context_switch() were read "
           "(design/kernel-source-notes.md 2.6); the 2.5 release that brought it was not traced"),
    Change(USE_MM, "", "use_mm()/unuse_mm(): a kernel thread adopts a user mm (AIO; kthread_use_mm since v5.8)",
           "v2.6.0", "UNVERIFIED: in 2.6 (fs/aio.c; design/lazy-tlb-bugs.md cites a 2006 discussion of it); "
           "absent from 2.4; the 2.5 release that added it was not traced"),
    Change(EXEC_FRESH_MM, "", "exec_mmap() always installs the new mm: 2.4's reuse of a sole user's mm_struct "
           "(exit_mmap in place) is gone", "v2.6.0",
           "UNVERIFIED: 2.4's fs/exec.c exec_mmap() was read; when the shortcut went was not traced"),
    Change(CPU_HOTPLUG, "", "CPU hotplug (kernel/cpu.c cpu_down, cpu_up)", "v2.6.0",
           "UNVERIFIED: absent from 2.4; the 2.6 release of each architecture's support was not traced"),
    Change(ACTIVE_MM_TRANSFER, "139d025cda1da5484e7287b35c019fe1dcf9b650",
           "sched: Clean up active_mm reference counting", "v5.4",
           "strong: tip-bot mail, CommitDate 2019-08-08, with the diff (docs/history-sources.md, row I)"),
    Change(SCHED_FORCE_INIT_MM, "21641bd9a7a7ce0360106a5a8e5b89a4fc74529d",
           "lazy tlb: fix hotplug exit race with MMU_LAZY_TLB_SHOOTDOWN", "v6.14",
           "strong: linux-next revlist of the 6.14 merge window (docs/history-sources.md, LT-07)"),
    # --- bugs: the bookkeeping of LT-04, LT-06, LT-08, LT-10, LT-11, LT-13 (issue 14 item 5); sources
    # in docs/history-sources.md unless the row names another
    Change(MEMBARRIER_RQ_STATE, "227a4aadc75ba22fcb6c4e1c078817b8cbaae4ce",
           "sched/membarrier: Fix p->mm->membarrier_state racy load", "v5.4",
           "verified: tip-bot sched/urgent, CommitterDate 2019-09-25, after v5.3; Ingo Molnar: \"This bug is now "
           "upstream\" before v5.4-rc1 (history-sources LT-09; diff read in the tip-bot mail, store id 47664853795)"),
    Change(NUMA_NO_KTHREAD, "18f855e574d9799a0e7489f8ae6fd8447d0dd74a",
           "sched/fair: Don't NUMA balance for kthreads", "v5.7",
           "verified: pr-tracker-bot, tip sched-urgent-2020-05-31 merged into master 2020-05-31 (history-sources "
           "LT-11; diff read in the tip-bot mail, store id 47380326396)"),
    Change(ILLEGAL_RCU_OFFLINE, "bf2c59fce4074e55d622089b34be3a6bc95484fb",
           "sched/core: Fix illegal RCU from offline CPUs", "v5.8",
           "strong: linux-next during the 5.8 merge window, in the 5.8 scheduler merge's bisect list; AUTOSEL "
           "backports (history-sources LT-06)"),
    Change(PPC_TRIM_SELF, "a665eec0a22e11cdde708c1c256a465ebe768047",
           "powerpc/64s/radix: Fix mm_cpumask trimming race vs kthread_use_mm", "v5.10",
           "verified: \"[GIT PULL] powerpc updates for 5.10\" shortlog (history-sources LT-04; the diff of "
           "do_exit_flush_lazy_tlb read in store id 46443802538)", ("powerpc",)),
    Change(MEMBARRIER_EXIT_MM, "5bc78502322a5e4eef3f1b2a2813751dc6434143",
           "sched: fix exit_mm vs membarrier (v4)", "v5.11",
           "verified: \"[GIT pull] sched/core for v5.11-rc1\" (tglx, 2020-12-14) lists it (store id 18733489946); "
           "patch read in store id 356656913"),
    Change(MEMBARRIER_USE_MM, "618758ed3a4f7d790414d020b362111748ebbf9f",
           "sched: membarrier: cover kthread_use_mm (v4)", "v5.11",
           "verified: \"[GIT pull] sched/core for v5.11-rc1\" (tglx, 2020-12-14) lists it (store id 18733489946; "
           "history-sources had it as strong); diff read in the tip-bot mail, store id 37784361648"),
    Change(PPC_TRIM_OFFLINE, "01b0f0eae0812e80efeee4ee17687e5386335e08",
           "powerpc/64s: Trim offlined CPUs from mm_cpumasks", "v5.11",
           "verified: \"[GIT PULL] powerpc updates for 5.11\" ends at c1bea0a840ac, which has Fixes: 01b0f0eae081 "
           "(history-sources LT-08)", ("powerpc",)),
    Change(NO_ACTIVE_MM_UACCESS, "81e3cbdef230fd9adfa8569044b07290afd66708",
           "x86/events, x86/insn-eval: Remove incorrect current->active_mm references", "v6.16",
           "verified: \"[GIT PULL] x86 core updates for v6.16\" shortlog (history-sources LT-13)", ("x86",)),

    # --- tlb: the TLB's truth, 32-bit ARM's ASID versions, ia64's context numbers
    Change(ARM_ASID_SWITCH, "8678c1f04277daaa914abb107fb9fe71298d916d", "[ARM] Fix ASID version switch",
           "v2.6.24", "UNVERIFIED: the commit pages (demsky, fairphone gitiles, mentality.rip) show no date or "
           "tag; it changes include/asm-arm/mmu_context.h, so it is older than v2.6.28's move to "
           "arch/arm/include; v2.6.24 is a guess (docs/history-sources.md LT-12)", arches=("arm",)),
    Change(IA64_SYSTEM_THREAD_FLUSH, "cfbb1426bd76c4ba6ec4491c8df2a5dd3d984750",
           "[IA64] Hole in IA64 TLB flushing from system threads", "v2.6.13",
           "UNVERIFIED: only the commit message was read (err.no gitweb, linux-2.6); ~2005, v2.6.13 is a "
           "guess; the diff was not found (docs/history-sources.md LT-14)", arches=("ia64",)),
    Change(IA64_REMOVED, "cf8e8658100d4eae80ce9b21f7a81cb024dd5057", "arch: Remove Itanium (IA-64) architecture",
           "v6.7", "strong: HPCwire 2023-11-02 after Phoronix: removed in 6.7, 6.6 the last release with ia64; "
           "the id from the linux-stable mirror's commit page (git.batts.cloud); no tag read",
           arches=("ia64",)),

    # --- steparch: the sparc64 and Xen PV policies (issue 15 item 4: LT-03, LT-15)
    Change("7899891c7d16", "7899891c7d161752f29abcc9bc0a9c6c3a3af26c",
           "xen mmu: fix a race window causing leave_mm BUG()", "v3.5",
           "UNVERIFIED: the commit page (repo.jachan.dev) shows the message, which names 831d52bc1539, and "
           "the v3.x mmu.c copies show drop_other_mm_ref before and after; no pull, tag or stable mail found. "
           "831d52bc1539 was the head of a mainline clone on 2012-05-22, after v3.4 (a git-list mail, store id "
           "26453177090), so v3.5 is the earliest it can be (docs/history-sources.md LT-15)", ("xen-pv",)),
    Change("bafb056ce279", "bafb056ce27940c9994ea905336aa8f27b4f7275",
           "sparc64: remove mm_cpumask clearing to fix kthread_use_mm race", "v5.10",
           "verified: powerpc-5.10-1 pull, \"arch/sparc/kernel/smp_64.c # bafb056ce279\" (history-sources LT-03); "
           "the diff read in its 4.19 stable backport, 2020-11-03 (store id 28385898487)", ("sparc64",)),
    # --- steps: the changes that only the kernel's own steps tell apart (granularity step)
    Change(KTHREAD_USE_MM_IRQS_OFF, "38cf307c1f2011d413750c5acb725456f47d9172",
           "mm: fix kthread_use_mm() vs TLB invalidate", "v5.9",
           "verified: stable review \"[PATCH 5.8 083/232] mm: fix kthread_use_mm() vs TLB invalidate\" "
           "(2020-08-20) says upstream 38cf307c1f20, not in v5.8 (docs/history-sources.md, LT-02)"),
    Change(EXEC_IRQS_OFF, "d53c3dfb23c45f7d4f910c3a3ca84bf0a99c6143",
           "mm: fix exec activate_mm vs TLB shootdown and lazy tlb switching race", "v5.10",
           "verified: \"[GIT PULL] powerpc updates for 5.10\" (tag powerpc-5.10-1) lists fs/exec.c # d53c3dfb23c4 "
           "(docs/history-sources.md, LT-01)"),
    Change(X86_IRQS_OFF_ACTIVATE_MM, "af8967158f9ad759a93e8e7a933c10e7cbb01ba2",
           "x86/mm: Opt-in to IRQs-off activate_mm()", "v6.16",
           "verified: \"[GIT PULL] x86 core updates for v6.16\" (tip x86-core-2025-05-25) "
           "(docs/history-sources.md, LT-01c)", ("x86",)),
    # --- hist2: the big changes of kernel-source-notes.md section 5 (issue 14 item 2); what each row
    # changes is in its key's comment above; sources: docs/history-sources.md (rows A-I, LT-16) and the
    # patch mails read in the search store (ids given)
    Change(USE_MM_IN_KTHREAD_C, "9bf5b9eb232b34738800868e30bea3bad4a6a1ba", "kernel: move use_mm/unuse_mm to "
           "kthread.c", "v5.8", "verified: AMD kcl \"Copied from v5.7-13665-g9bf5b9eb232b kernel/kthread.c\" (git "
           "describe: after v5.7, before v5.8-rc1; docs/history-sources.md row G); patch 4/6 read (store id "
           "32153892144): the functions keep their names"),
    Change(KTHREAD_USE_MM_NAME, "f5678e7f2ac31c270334b936352f0ef2fe7dd2b3", "kernel: better document the "
           "use_mm/unuse_mm API contract", "v5.8",
           "verified: next after 9bf5b9eb232b in the series' revlist (docs/history-sources.md row H, store id "
           "67605348376), and v5.8 has kthread_use_mm (the 5.8 stable review of 38cf307c1f20, row LT-02); its "
           "message: \"Also give the functions a kthread_ prefix\" (android-kvm gitiles commit page)"),
    Change(MMDROP_SCHED, "8d491de6edc27138806cae6e8eca455beb325b62", "sched: Move mmdrop to RCU on RT", "v5.16",
           "strong: tip-bot sched/core, CommitterDate 2021-10-05, in the 5.16 merge window "
           "(docs/history-sources.md LT-16); aa464ba9a1e4's diff shows finish_task_switch's mmdrop_sched(mm)"),
    Change(KTHREAD_USE_MM_REFCOUNT, "6cad87b0d216c6acdc40c5531c7b62db33fef5b1",
           "kthread: simplify kthread_use_mm refcounting", "v6.4",
           "verified: torvalds/linux master push of 2023-04-28, in the 6.4 merge window (docs/history-sources.md "
           "row A); diff read in \"[PATCH v7 1/5]\" (store id 47173800645)"),
    Change(LAZY_TLB_HELPERS, "aa464ba9a1e444d5ef95bb63ee3b2ef26fc96ed7",
           "lazy tlb: introduce lazy tlb mm refcount helper functions", "v6.4",
           "verified: the same push (docs/history-sources.md row B); diff read in \"[PATCH v7 2/5]\" (store id "
           "31609825503)"),
    Change(LAZY_TLB_REFCOUNT_CONFIG, "88e3009b5283bbd41447f0352d0b9df16cf6f183",
           "lazy tlb: allow lazy tlb mm refcounting to be configurable", "v6.4",
           "verified: the same push (docs/history-sources.md row C); diff read in \"[PATCH v7 3/5]\" (store id "
           "31272725626)"),
    Change(SHOOT_LAZIES, "2655421ae69fa479df1575cb2630af9131d28939",
           "lazy tlb: shoot lazies, non-refcounting lazy tlb mm reference handling scheme", "v6.4",
           "verified: the same push (docs/history-sources.md row D); diff read in \"[PATCH v7 4/5]\" (store id "
           "32150796503)"),
    Change(PPC_LAZY_TLB_SHOOTDOWN, "77f68ebeee201e8960944863c03bd7ac613ca7ed",
           "powerpc/64s: enable MMU_LAZY_TLB_SHOOTDOWN", "v6.4",
           "verified: the same push (docs/history-sources.md row E); diff read in \"[PATCH v7 5/5]\" (store id "
           "31563652023)", ("powerpc",)),
    Change(PPC_EXIT_SHOOTDOWN, "e43c0a0c3c2870e1ee29519dc249471adf19ab5f",
           "powerpc/64s/radix: combine final TLB flush and lazy tlb mm shootdown IPIs", "v6.6",
           "verified: \"powerpc updates for 6.6\" (tag powerpc-6.6-1; docs/history-sources.md row F); diff read in "
           "\"[PATCH 4/4]\" of 2023-05-24 (store id 24297208841)", ("powerpc",)),
    # --- ppcsteps: powerpc's exit_lazy_flush_tlb of the exiting task itself (LT-05)
    Change(PPC_EXIT_LAZY_IRQS_OFF, "dfaed3e1fa7099de8de4e89cbe7eb9c1bca27dfe",
           "powerpc/64s/radix: Fix exit lazy tlb mm switch with irqs enabled", "v6.4",
           "verified: \"powerpc fixes for 6.4 #5\" (tag powerpc-6.4-5, up to dfaed3e1fa70; docs/history-sources.md "
           "LT-05); the patch mail of 2023-06-07 read (store id 24702092681)", ("powerpc",)),
)

# --- steparch: the keys the sparc64 and xen-pv policies ask about
XEN_LAZY_CHECK = "7899891c7d16"            # drop_other_mm_ref: leave_mm only while still lazy (LT-15)
SPARC64_NO_CPUMASK_CLEAR = "bafb056ce279"  # smp_flush_tlb_*: no cpumask_copy for a single user (LT-03)

OLDEST = "v2.3.13"      # Documentation/mm/active_mm.rst: "the changes in 2.3.13"
NEWEST = "v6.17"        # the release the architecture files follow (v6.15 to v6.17)

#: The kernel options a scenario's `config NAME` may set (CONFIG_ without the prefix),
#: with what the model does with each (docs/language.md "The kernel").
CONFIGS = {
    "PREEMPT_RT": "the real-time kernel: finish_task_switch's final drop of the previous lazy mm is "
                  "mmdrop_sched() (8d491de6edc2, v5.16): mm_count 0 at once, __mmdrop from an RCU callback after "
                  "a grace period (under granularity step an event, `rcu cpuN`); before 8d491de6edc2 __mmdrop "
                  "ran in finish_task_switch, with preemption disabled, and broke might-sleep",
    # ppcsteps: not a Kconfig option but the constant tlb_mm_cpumask_trim_timer of
    # arch/powerpc/mm/book3s64/radix_tlb.c set to 1, as dfaed3e1fa70's mail says to stress the path
    "PPC_TRIM_CLOCK_EVERY_FLUSH": "powerpc radix: tick_and_test_trim_clock() fires on every flush "
                                  "(tlb_mm_cpumask_trim_timer = 1, not 1073): flush_type_needed trims a mm this CPU "
                                  "alone has but does not run, with exit_lazy_flush_tlb on this CPU (LT-05)"
}

#: The last release of each mainline series (kernel.org's release history): what a
#: `kernel` line may name between OLDEST and NEWEST.  2.x releases have three numbers
#: (v2.6.39); from 3.0 on a third number is a stable update of vX.Y, which the model
#: runs as vX.Y (stable backports are not modelled).
_LAST = {(2, 3): 51, (2, 4): 37, (2, 5): 75, (2, 6): 39, (3,): 19, (4,): 20, (5,): 19}


def _release(text: str) -> tuple:
    m = re.fullmatch(r"v(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ValueError(f"`{text}` is not a kernel release (vX.Y or vX.Y.Z)")
    return tuple(int(n or 0) for n in m.groups())


def _name(at: tuple) -> str:
    return f"v{at[0]}.{at[1]}.{at[2]}" if at[0] == 2 or at[2] else f"v{at[0]}.{at[1]}"


def mainline(start: str = OLDEST, end: str = NEWEST) -> list:
    """Every mainline release from ``start`` to ``end`` (both modelled), oldest first."""
    lo, hi = _release(start), _release(end)
    out = []
    for (major, *minor), last in list(_LAST.items()) + [((6,), _release(NEWEST)[1])]:
        for n in range(last + 1):
            at = (2, minor[0], n) if major == 2 else (major, n, 0)
            if lo <= at <= hi:
                out.append(_name(at))
    return out


def release_problem(text: str) -> Optional[str]:
    """None when ``text`` names a modelled release, else why not, in the words a message uses."""
    if not re.fullmatch(r"v(\d+)\.(\d+)(?:\.(\d+))?", text):
        if re.fullmatch(r"\d+\.\d+(?:\.\d+)?", text):
            return f"`{text}` is not a kernel release as git tags it: write `v{text}`"
        return f"`{text}` is not a kernel release: write vX.Y or vX.Y.Z, like v5.8"
    at = _release(text)
    if not _release(OLDEST) <= at <= _release(NEWEST):
        return f"kernel {text} is outside the modelled releases, {OLDEST} to {NEWEST}"
    if at[0] == 2:
        last = _LAST.get(at[:2])
        if last is None or not re.fullmatch(r"v2\.\d+\.\d+", text) or at[2] > last:
            if last is None:
                return f"there is no Linux {text}: the 2.x series are 2.3, 2.4, 2.5 and 2.6"
            return f"there is no Linux {text}: the {at[0]}.{at[1]} releases are v{at[0]}.{at[1]}.0 to " \
                   f"v{at[0]}.{at[1]}.{last}"
        return None
    last = _LAST.get((at[0],), _release(NEWEST)[1])
    if at[1] > last:
        return f"there is no Linux {text}: the {at[0]}.x releases are v{at[0]}.0 to v{at[0]}.{last}"
    return None


def lands(key: str, release: Optional[str] = None) -> bool:
    """Is change ``key`` in ``release`` (None: the newest), before any revert?"""
    return _release(_CHANGE[key].release) <= _release(release or NEWEST)


def change(key: str) -> Change:
    """The row of change ``key`` (a KeyError for a key that is no row)."""
    return _CHANGE[key]


def touches(change: Change, arch: Optional[str]) -> bool:
    """Does the change apply to ``arch`` (None: to some arch)?  () = the kernel's own code."""
    return arch is None or not change.arches or arch in change.arches


def newest_first(arch: Optional[str] = None) -> list:
    """The table, newest release first (the table's order within a release), for `mmscn history`."""
    rows = [c for c in CHANGES if touches(c, arch)]
    return sorted(rows, key=lambda c: _release(c.release), reverse=True)


def release_points(start: str = OLDEST, end: str = NEWEST, arch: Optional[str] = None,
                   every: bool = False) -> list:
    """The releases `mmscn bisect` runs, oldest first: ``start``, every release in between
    where a change to ``arch`` lands, ``end`` (``every``: every mainline release instead)."""
    lo, hi = _release(start), _release(end)
    if every:
        points = set(mainline(start, end)) | {start, end}
    else:
        points = {start, end} | {c.release for c in CHANGES if touches(c, arch) and lo < _release(c.release) <= hi}
    return sorted(points, key=_release)


def changes_between(older: str, newer: str, arch: Optional[str] = None) -> list:
    """The changes to ``arch`` that land after ``older`` and by ``newer``: what a change of
    verdict between the two releases is owed to."""
    lo, hi = _release(older), _release(newer)
    return [c for c in CHANGES if touches(c, arch) and lo < _release(c.release) <= hi]


def is_before(a: str, b: str) -> bool:
    """Release ``a`` is older than ``b`` (the front ends' one comparison, for --from/--to)."""
    return _release(a) < _release(b)


_CHANGE = {c.key: c for c in CHANGES}


class KernelVersion:
    """One kernel release: ``has(key)`` says whether a modelled change is in it.

    ``name`` is what messages call it: the architecture that stands for it
    (``linux-2.3``), else ``Linux vX.Y``.
    """
    __slots__ = ("release", "name", "reverts", "configs", "has")

    def __init__(self, release: str = NEWEST, name: Optional[str] = None,
                 reverts: Iterable[str] = (), configs: Iterable[str] = ()):
        at = _release(release)
        if not _release(OLDEST) <= at <= _release(NEWEST):
            raise ValueError(f"kernel {release} is outside the modelled releases, {OLDEST} to {NEWEST}")
        self.release = release
        self.name = name or f"Linux {release}" + (f" without {', '.join(sorted(reverts))}" if reverts else "")
        self.reverts = frozenset(reverts)      # keys of CHANGES left out of this release
        self.configs = frozenset(configs)      # kernel options set (CONFIG_ without the prefix)
        unknown = self.reverts - {c.key for c in CHANGES}
        if unknown:
            raise KeyError(f"no modelled change {sorted(unknown)[0]}")
        # has(key): is change ``key`` (a key of CHANGES) in this kernel?  An unknown key is a KeyError.
        # The dict's own lookup, not a method around it: context_switch asks on every switch.
        self.has = {c.key: _release(c.release) <= at and c.key not in self.reverts for c in CHANGES}.__getitem__

    def config(self, name: str) -> bool:
        """Is kernel option ``name`` (e.g. ``PREEMPT_RT``) set?"""
        return name in self.configs

    def __repr__(self):
        extra = "".join(f", {n}={sorted(v)!r}" for n, v in (("reverts", self.reverts), ("configs", self.configs)) if v)
        return f"KernelVersion({self.release!r}{extra})"


def for_policy(policy, release: Optional[str] = None, reverts: Iterable[str] = (),
               configs: Iterable[str] = ()) -> KernelVersion:
    """The kernel a policy runs: the release the policy stands for (``linux-2.3``: v2.3.13,
    named after it) whatever ``release`` says, else ``release`` (None: the newest, or the
    policy's ``newest_kernel``, ia64's v6.6); the
    changes ``reverts`` left out and the options ``configs`` set."""
    reverts, configs = tuple(reverts), tuple(configs)
    if policy.kernel:
        return KernelVersion(policy.kernel, policy.name if not reverts else None, reverts, configs)
    # ia64 stands for no release but ends at one: v6.6 when none is named
    return KernelVersion(release or getattr(policy, "newest_kernel", None) or NEWEST, None, reverts, configs)
