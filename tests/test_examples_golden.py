"""Golden traces of the examples, derived by hand from the kernel source.

For each example below, every kernel statement is followed by the counters
(mm_users, mm_count) of every mm and the (mm, active_mm) of the tasks that
matter, written down from what the kernel functions do, not from the model's
output:

- kernel/sched/core.c context_switch: to a kernel thread, next->active_mm =
  prev->active_mm and, from a user task, mmgrab_lazy_tlb (count +1); from a
  kernel thread the reference is transferred (prev->active_mm = NULL, no
  count change).  To a user task: switch_mm and, from a kernel thread,
  rq->prev_mm = prev->active_mm, prev->active_mm = NULL;
  finish_task_switch then does mmdrop_lazy_tlb_sched(rq->prev_mm) (-1).
- kernel/exit.c exit_mm: mmgrab_lazy_tlb(mm) (+1), current->mm = NULL,
  mmput(mm) (users -1); at users 0 __mmput ends with mmdrop (-1).
- fs/exec.c exec_mmap: the new mm comes from mm_alloc (1, 1); then mmput(old_mm)
  or, for a task without an mm (kernel_execve), mmdrop_lazy_tlb(active_mm).
- kernel/kthread.c kthread_use_mm: mmgrab(mm) (+1), active_mm = mm = mm,
  mmdrop_lazy_tlb(old active_mm) (-1); kthread_unuse_mm: mm = NULL,
  mmgrab_lazy_tlb(mm) (+1), mmdrop(mm) (-1).
- kernel/fork.c copy_mm: CLONE_VM shares the mm with mmget (users +1); mm_init
  sets users 1, count 1.  mm/init-mm.c: init_mm starts at users 2, count 1;
  sched_init and each secondary CPU's bring-up take one lazy reference for
  the idle task, so boot leaves init_mm at count 1 + ncpus.
- linux-2.3 (2.4's kernel/sched.c schedule): to a kernel task
  atomic_inc(&oldmm->mm_count); if prev has no mm, prev->active_mm = NULL and
  mmdrop(oldmm) at once.  Same counters after each statement, more atomics.

The file's assertions run too, so an example that stops holding fails here.
"""
from pathlib import Path

from mmscn.dsl import ast as A
from mmscn.dsl.resolve import load
from mmscn.interpreter.report import statement_text
from mmscn.interpreter.runner import Runner
from mmscn.interpreter.conditions import cost_dict

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
N = None   # none, the null pointer


def counters(k) -> dict:
    return {name: (k.m_users[i], k.m_count[i]) for name, i in k.mm_ix.items()}


def pointers(k, names) -> dict:
    """(mm, active_mm) by name, None for none, for the named tasks that exist."""
    def label(m):
        return None if m is None else k.m_name[m]
    return {name: (label(k.t_mm[t]), label(k.t_active[t]))
            for name, t in ((n, k.task_ix.get(n)) for n in names) if t is not None}


def replay(name: str, boot: dict, steps: list, arch=None, cost=None):
    """Run examples/NAME statement by statement against the hand-derived steps.

    ``steps`` holds (statement text, every mm's (users, count), the tasks whose
    (mm, active_mm) this statement changes).  The task pointers are checked
    for every watched task after every statement, not only where they change.
    ``cost``, if given, is the expected cost.mm_count_atomics after each step.
    """
    path = EXAMPLES / name
    text = path.read_text()
    sc = load(text, str(path))
    r = Runner(sc, text.split("\n"), arch)
    k = r.k
    assert counters(k) == boot, "boot"
    watched = sorted({t for _, _, tasks in steps for t in tasks})
    # boot: every idle task runs on init_mm without an mm (sched_init, bring-up)
    want_ptrs = {f"idle{c}": (N, "@init_mm") for c in range(sc.ncpus)}
    todo = list(steps)
    atomics = list(cost) if cost is not None else None
    for st in sc.stmts:
        if isinstance(st, (A.Assert, A.Expect)):
            assert r.step(st, None) is True
            continue
        if not todo:
            break                 # the golden covers a prefix of the file
        want_text, want_counts, changed = todo.pop(0)
        where = f"{name}:{st.line}"
        assert statement_text(r.lines, st) == want_text, where
        assert r.step(st, None) is True, (where, r.result.diagnostics)
        assert counters(k) == want_counts, where
        want_ptrs.update(changed)
        assert pointers(k, watched) == {t: want_ptrs[t] for t in watched if t in k.task_ix}, where
        if atomics is not None:
            assert cost_dict(k)["mm_count_atomics"] == atomics.pop(0), where
    assert not todo, "the example is shorter than its golden"
    assert r.result.diagnostics == [], r.result.diagnostics
    return r


def test_borrow_on_switch():
    I = "@init_mm"
    replay("borrow_on_switch.mmscn", {I: (2, 2)}, [
        # mm_init: users 1, count 1
        ("spawn A", {I: (2, 2), "@A": (1, 1)}, {"A": ("@A", "@A"), "idle0": (N, I)}),
        # copy_mm returns early for a kernel thread: mm = active_mm = NULL
        ("spawn kthread kw", {I: (2, 2), "@A": (1, 1)}, {"kw": (N, N)}),
        # idle0 -> A, kernel -> user: rq->prev_mm = init_mm, idle0->active_mm = NULL,
        # finish_task_switch: mmdrop_lazy_tlb_sched(init_mm)
        ("schedule cpu0 A", {I: (2, 1), "@A": (1, 1)}, {"idle0": (N, N)}),
        # A -> kw, user -> kernel: next->active_mm = prev->active_mm; mmgrab_lazy_tlb
        ("schedule cpu0 kw", {I: (2, 1), "@A": (1, 2)}, {"kw": (N, "@A")}),
        # copy_mm: no mm for a kernel thread
        ("spawn kthread kw2", {I: (2, 1), "@A": (1, 2)}, {"kw2": (N, N)}),
        # kw -> kw2, kernel -> kernel: "lazy + transfer active", prev->active_mm = NULL
        ("schedule cpu0 kw2", {I: (2, 1), "@A": (1, 2)}, {"kw": (N, N), "kw2": (N, "@A")}),
        # kw2 -> A, kernel -> user: rq->prev_mm = @A, dropped in finish_task_switch
        ("schedule cpu0 A", {I: (2, 1), "@A": (1, 1)}, {"kw2": (N, N)}),
    ])


def test_two_counters():
    I = "@init_mm"
    replay("two_counters.mmscn", {I: (2, 3)}, [
        # dup_mm -> mm_init: users 1, count 1
        ("spawn A", {I: (2, 3), "@A": (1, 1)}, {"A": ("@A", "@A")}),
        # copy_mm with CLONE_VM: mmget(oldmm); mm_count untouched
        ("spawn thread T of A", {I: (2, 3), "@A": (2, 1)}, {"T": ("@A", "@A")}),
        # copy_mm returns early: nothing counted
        ("spawn kthread k0", {I: (2, 3), "@A": (2, 1)}, {"k0": (N, N)}),
        # the same
        ("spawn kthread k1", {I: (2, 3), "@A": (2, 1)}, {"k1": (N, N)}),
        # idle0 -> A: finish_task_switch drops idle0's lazy init_mm reference
        ("schedule cpu0 A", {I: (2, 2), "@A": (2, 1)}, {"idle0": (N, N)}),
        # idle1 -> T, kernel -> user: finish_task_switch drops idle1's init_mm reference
        ("schedule cpu1 T", {I: (2, 1), "@A": (2, 1)}, {"idle1": (N, N)}),
        # user -> kernel: mmgrab_lazy_tlb(prev->active_mm), once per lazy user
        ("schedule cpu0 k0", {I: (2, 1), "@A": (2, 2)}, {"k0": (N, "@A")}),
        # T -> k1, user -> kernel: mmgrab_lazy_tlb
        ("schedule cpu1 k1", {I: (2, 1), "@A": (2, 3)}, {"k1": (N, "@A")}),
        # mmget: atomic_inc(&mm->mm_users)
        ("mmget @A", {I: (2, 1), "@A": (3, 3)}, {}),
        # mmgrab: atomic_inc(&mm->mm_count)
        ("mmgrab @A", {I: (2, 1), "@A": (3, 4)}, {}),
        # mmput: users 3 -> 2, not the last
        ("mmput @A", {I: (2, 1), "@A": (2, 4)}, {}),
        # mmdrop: count 4 -> 3, not the last
        ("mmdrop @A", {I: (2, 1), "@A": (2, 3)}, {}),
        # kernel -> user: rq->prev_mm = @A; mmdrop_lazy_tlb_sched in finish_task_switch
        ("schedule cpu0 A", {I: (2, 1), "@A": (2, 2)}, {"k0": (N, N)}),
        # k1 -> T: the same on cpu1
        ("schedule cpu1 T", {I: (2, 1), "@A": (2, 1)}, {"k1": (N, N)}),
        # exit_mm: mmgrab_lazy_tlb +1, current->mm = NULL, mmput users 2 -> 1
        ("exit T", {I: (2, 1), "@A": (1, 2)}, {"T": (N, "@A")}),
        # dead T -> idle1, kernel -> kernel: the lazy reference is transferred
        ("schedule cpu1 idle", {I: (2, 1), "@A": (1, 2)}, {"T": (N, N), "idle1": (N, "@A")}),
        # exit_mm: +1, mmput users 1 -> 0, __mmput's mmdrop -1
        ("exit A", {I: (2, 1), "@A": (0, 2)}, {"A": (N, "@A")}),
    ])


def test_kthread_use_mm():
    I = "@init_mm"
    replay("kthread_use_mm.mmscn", {I: (2, 3)}, [
        # dup_mm -> mm_init: users 1, count 1
        ("spawn A", {I: (2, 3), "@A": (1, 1)}, {"A": ("@A", "@A")}),
        # copy_mm returns early
        ("spawn kthread io_sq", {I: (2, 3), "@A": (1, 1)}, {"io_sq": (N, N)}),
        # copy_mm returns early
        ("spawn kthread vhost", {I: (2, 3), "@A": (1, 1)}, {"vhost": (N, N)}),
        # idle0 -> A: finish_task_switch drops idle0's init_mm reference
        ("schedule cpu0 A", {I: (2, 2), "@A": (1, 1)}, {"idle0": (N, N)}),
        # A -> io_sq, user -> kernel: mmgrab_lazy_tlb(@A)
        ("schedule cpu0 io_sq", {I: (2, 2), "@A": (1, 2)}, {"io_sq": (N, "@A")}),
        # mmget_not_zero: atomic_inc_not_zero(&mm->mm_users) succeeds
        ("mmget_not_zero @A", {I: (2, 2), "@A": (2, 2)}, {}),
        # kthread_use_mm: mmgrab(@A) +1 even though active_mm == @A ("these references
        # are not equivalent"), then mmdrop_lazy_tlb(active_mm = @A) -1
        ("use_mm io_sq @A", {I: (2, 2), "@A": (2, 2)}, {"io_sq": ("@A", "@A")}),
        # kthread_unuse_mm: tsk->mm = NULL, mmgrab_lazy_tlb +1, mmdrop -1
        ("unuse_mm io_sq", {I: (2, 2), "@A": (2, 2)}, {"io_sq": (N, "@A")}),
        # mmput: users 2 -> 1, not the last
        ("mmput @A", {I: (2, 2), "@A": (1, 2)}, {}),
        # io_sq -> A, kernel -> user: rq->prev_mm, finish_task_switch drops it
        ("schedule cpu0 A", {I: (2, 2), "@A": (1, 1)}, {"io_sq": (N, N)}),
        # idle1 -> vhost, kernel -> kernel: init_mm transferred, no count change
        ("schedule cpu1 vhost", {I: (2, 2), "@A": (1, 1)}, {"idle1": (N, N), "vhost": (N, I)}),
        # atomic_inc_not_zero(&mm->mm_users): 1 -> 2
        ("mmget_not_zero @A", {I: (2, 2), "@A": (2, 1)}, {}),
        # mmgrab(@A) +1; mmdrop_lazy_tlb(init_mm) -1
        ("use_mm vhost @A", {I: (2, 1), "@A": (2, 2)}, {"vhost": ("@A", "@A")}),
        # exit_mm: +1, mmput users 2 -> 1 (not the last user: no __mmput)
        ("exit A", {I: (2, 1), "@A": (1, 3)}, {"A": (N, "@A")}),
        # dead A -> idle0, kernel -> kernel: transfer
        ("schedule cpu0 idle", {I: (2, 1), "@A": (1, 3)}, {"A": (N, N), "idle0": (N, "@A")}),
        # kthread_unuse_mm: mmgrab_lazy_tlb +1, mmdrop -1
        ("unuse_mm vhost", {I: (2, 1), "@A": (1, 3)}, {"vhost": (N, "@A")}),
        # the last mm_users reference: __mmput, exit_mmap, mmdrop -1
        ("mmput @A", {I: (2, 1), "@A": (0, 2)}, {}),
        # atomic_inc_not_zero fails: nothing changes
        ("mmget_not_zero @A", {I: (2, 1), "@A": (0, 2)}, {}),
    ])


def test_exec_new_mm():
    I = "@init_mm"
    replay("exec_new_mm.mmscn", {I: (2, 3)}, [
        # dup_mm -> mm_init: users 1, count 1
        ("spawn A", {I: (2, 3), "@A": (1, 1)}, {"A": ("@A", "@A")}),
        # idle0 -> A: finish_task_switch drops idle0's init_mm reference
        ("schedule cpu0 A", {I: (2, 2), "@A": (1, 1)}, {}),
        # exec_mmap: mm_alloc (1, 1) is installed; mmput(old_mm) 1 -> 0, __mmput's
        # mmdrop 1 -> 0: __mmdrop frees @A
        ("exec A", {I: (2, 2), "@A": (0, 0), "@A.2": (1, 1)}, {"A": ("@A.2", "@A.2")}),
        # exec_mmap: mm_alloc (1, 1); mmput(@A.2) 1 -> 0, __mmput's mmdrop frees it
        ("exec A mm @shell", {I: (2, 2), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 1)},
         {"A": ("@shell", "@shell")}),
        # copy_mm returns early
        ("spawn kthread kinit", {I: (2, 2), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 1)},
         {"kinit": (N, N)}),
        # idle1 -> kinit, kernel -> kernel: init_mm transferred
        ("schedule cpu1 kinit", {I: (2, 2), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 1)},
         {"kinit": (N, I)}),
        # kernel_execve: no old_mm, so mmdrop_lazy_tlb(active_mm = init_mm)
        ("exec kinit", {I: (2, 1), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 1), "@kinit": (1, 1)},
         {"kinit": ("@kinit", "@kinit")}),
        # copy_mm returns early
        ("spawn kthread helper", {I: (2, 1), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 1), "@kinit": (1, 1)},
         {"helper": (N, N)}),
        # A -> helper, user -> kernel: mmgrab_lazy_tlb(@shell)
        ("schedule cpu0 helper", {I: (2, 1), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 2), "@kinit": (1, 1)},
         {"helper": (N, "@shell")}),
        # kernel_execve: mmdrop_lazy_tlb(@shell)
        ("exec helper", {I: (2, 1), "@A": (0, 0), "@A.2": (0, 0), "@shell": (1, 1), "@kinit": (1, 1),
                         "@helper": (1, 1)}, {"helper": ("@helper", "@helper")}),
    ])


def test_init_mm_is_lazy_only():
    I = "@init_mm"
    replay("init_mm_is_lazy_only.mmscn", {I: (2, 3)}, [
        # copy_mm returns early; idle tasks hold init_mm from boot
        ("spawn kthread kw", {I: (2, 3)}, {"kw": (N, N), "idle0": (N, I), "idle1": (N, I)}),
        # kernel -> kernel: transfer of init_mm
        ("schedule cpu0 kw", {I: (2, 3)}, {"kw": (N, I), "idle0": (N, N)}),
        # dup_mm -> mm_init: users 1, count 1
        ("spawn A", {I: (2, 3), "@A": (1, 1)}, {"A": ("@A", "@A")}),
        # kernel -> user: finish_task_switch drops the init_mm reference kw carried
        ("schedule cpu0 A", {I: (2, 2), "@A": (1, 1)}, {"kw": (N, N)}),
        # A -> kw, user -> kernel: mmgrab_lazy_tlb(@A)
        ("schedule cpu0 kw", {I: (2, 2), "@A": (1, 2)}, {"kw": (N, "@A")}),
        # sched_force_init_mm: mmgrab_lazy_tlb(init_mm), active_mm = init_mm,
        # switch_mm_irqs_off, mmdrop_lazy_tlb(@A)
        ("unlazy cpu0", {I: (2, 3), "@A": (1, 1)}, {"kw": (N, I)}),
    ])


def test_threads_share_mm():
    I = "@init_mm"
    replay("threads_share_mm.mmscn", {I: (2, 3)}, [
        # dup_mm -> mm_init: users 1, count 1
        ("spawn A", {I: (2, 3), "@A": (1, 1)}, {"A": ("@A", "@A")}),
        # copy_mm, CLONE_VM: mmget
        ("spawn thread T1 of A", {I: (2, 3), "@A": (2, 1)}, {"T1": ("@A", "@A")}),
        # copy_mm, CLONE_VM: mmget (the same mm as T1's)
        ("spawn thread T2 of T1", {I: (2, 3), "@A": (3, 1)}, {"T2": ("@A", "@A")}),
        # idle0 -> T1: finish_task_switch drops idle0's init_mm reference
        ("schedule cpu0 T1", {I: (2, 2), "@A": (3, 1)}, {"idle0": (N, N)}),
        # idle1 -> T2: the same on cpu1
        ("schedule cpu1 T2", {I: (2, 1), "@A": (3, 1)}, {}),
        # user -> user: switch_mm only
        ("schedule cpu0 A", {I: (2, 1), "@A": (3, 1)}, {}),
        # exit_mm: +1, mmput users 3 -> 2
        ("exit A", {I: (2, 1), "@A": (2, 2)}, {"A": (N, "@A")}),
        # dead A -> T1, kernel -> user: rq->prev_mm = @A, dropped in finish_task_switch
        ("schedule cpu0 T1", {I: (2, 1), "@A": (2, 1)}, {"A": (N, N)}),
        # exit_mm: mmgrab_lazy_tlb +1, mmput users 2 -> 1
        ("exit T1", {I: (2, 1), "@A": (1, 2)}, {"T1": (N, "@A")}),
        # dead T1 -> idle0, kernel -> kernel: transfer
        ("schedule cpu0 idle", {I: (2, 1), "@A": (1, 2)}, {"T1": (N, N), "idle0": (N, "@A")}),
        # the last user: +1, mmput 1 -> 0, __mmput's mmdrop -1
        ("exit T2", {I: (2, 1), "@A": (0, 2)}, {"T2": (N, "@A")}),
    ])


# The same story under both policies: the same counters after every statement.
LAZY_CHAIN = [
    # dup_mm -> mm_init: users 1, count 1
    ("spawn A", {"@init_mm": (2, 2), "@A": (1, 1)}, {"A": ("@A", "@A"), "idle0": (N, "@init_mm")}),
    # copy_mm returns early
    ("spawn kthread k1", {"@init_mm": (2, 2), "@A": (1, 1)}, {"k1": (N, N)}),
    # copy_mm returns early
    ("spawn kthread k2", {"@init_mm": (2, 2), "@A": (1, 1)}, {"k2": (N, N)}),
    # generic: rq->prev_mm dropped in finish_task_switch; 2.4: mmdrop(oldmm) before switch_to
    ("schedule cpu0 A", {"@init_mm": (2, 1), "@A": (1, 1)}, {"idle0": (N, N)}),
    # generic: mmgrab_lazy_tlb; 2.4: atomic_inc(&oldmm->mm_count)
    ("schedule cpu0 k1", {"@init_mm": (2, 1), "@A": (1, 2)}, {"k1": (N, "@A")}),
    # generic: transfer (0 atomics); 2.4: atomic_inc, then mmdrop (2 atomics)
    ("schedule cpu0 k2", {"@init_mm": (2, 1), "@A": (1, 2)}, {"k1": (N, N), "k2": (N, "@A")}),
    # k2 -> idle0, kernel -> kernel: generic transfers; 2.4 atomic_inc then mmdrop
    ("schedule cpu0 idle", {"@init_mm": (2, 1), "@A": (1, 2)}, {"k2": (N, N), "idle0": (N, "@A")}),
    # idle0 -> A, kernel -> user: generic rq->prev_mm + finish_task_switch; 2.4 mmdrop at once
    ("schedule cpu0 A", {"@init_mm": (2, 1), "@A": (1, 1)}, {"idle0": (N, N)}),
    # exit_mm (both): +1, mmput 1 -> 0, __mmput's mmdrop -1
    ("exit A", {"@init_mm": (2, 1), "@A": (0, 1)}, {"A": (N, "@A")}),
    # dead A -> idle0: generic transfers; 2.4 atomic_inc then mmdrop
    ("schedule cpu0 idle", {"@init_mm": (2, 1), "@A": (0, 1)}, {"A": (N, N), "idle0": (N, "@A")}),
    # dup_mm -> mm_init
    ("spawn B", {"@init_mm": (2, 1), "@A": (0, 1), "@B": (1, 1)}, {"B": ("@B", "@B")}),
    # the zombie's last reference: count 1 -> 0, __mmdrop
    ("schedule cpu0 B", {"@init_mm": (2, 1), "@A": (0, 0), "@B": (1, 1)}, {"idle0": (N, N)}),
]


def test_lazy_chain_generic():
    replay("lazy_chain_generic.mmscn", {"@init_mm": (2, 2)}, LAZY_CHAIN,
           cost=[0, 0, 0, 1, 2, 2, 2, 3, 5, 5, 5, 6])


def test_lazy_chain_linux_2_3():
    r = replay("lazy_chain_linux_2_3.mmscn", {"@init_mm": (2, 2)}, LAZY_CHAIN,
               cost=[0, 0, 0, 1, 2, 4, 6, 7, 9, 11, 11, 12])
    assert r.k.m_freed[r.k.mm_ix["@A"]]


def test_generic_story_under_linux_2_3_fails_only_on_cost():
    """Run the generic file with `--arch linux-2.3`: every counter assertion still
    holds, and the only failures are the cost.mm_count_atomics ones."""
    text = (EXAMPLES / "lazy_chain_generic.mmscn").read_text()
    r = Runner(load(text, "lazy_chain_generic.mmscn"), text.split("\n"), "linux-2.3").run()
    failed = [d.message for d in r.diagnostics]
    assert len(failed) == 6, failed   # the k1 -> k2 switch onwards: 4, 6, 7, 9, 11, 12 atomics
    assert all("cost.mm_count_atomics" in m for m in failed), failed
