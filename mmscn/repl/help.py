"""The REPL's help texts: the statements, the fields, the keys, the overview.

The meta-commands' own help is their registry's (commands.py), which puts
these together for `:help`.
"""
from __future__ import annotations

# One entry per word that starts a statement or header line (tests hold this
# to mmscn.grammar.statement_words()): usage, and what it does in kernel terms.
STATEMENT_HELP = {
    "scenario": ('scenario "TITLE"', "the session's title (header line)"),
    "arch": ("arch NAME", "the switch policy (header line; later, :arch NAME replays the session)"),
    "cpus": ("cpus N", "how many CPUs, each starting on its idle task on init_mm (header line)"),
    "expect": ('expect error ["TEXT"] | expect violation ["RULE"]',
               "the next statement must be refused / must break an invariant; `expect pass|fail [without COMMIT ...]` "
               "is a header line"),
    "kernel": ("kernel vX.Y[.Z]", "the kernel release the model follows (header line; later, :kernel vX.Y "
               "replays the session); mmscn history lists the changes"),
    "revert": ("revert COMMIT", "leave one modelled change (12+ hex digits of its commit) out of the kernel "
               "(header line; later, :revert COMMIT)"),
    "config": ("config NAME", "set a modelled kernel option, like PREEMPT_RT (header line)"),
    "spawn": ("spawn A [mm @M] | spawn thread T of A | spawn kthread K",
              "copy_process: a fresh mm (dup_mm, users 1, count 1); CLONE_VM shares the parent's mm (mmget); "
              "kthread_create: mm and active_mm none"),
    "schedule": ("schedule cpuN T|idle",
                 "__schedule: context_switch (switch_mm, or enter_lazy_tlb + mmgrab_lazy_tlb for a task without "
                 "an mm) and finish_task_switch (mmdrop_lazy_tlb of the previous borrow)"),
    "exit": ("exit T", "do_exit -> exit_mm: T keeps its mm as a lazy active_mm and mmput()s it; its CPU must "
                       "schedule away"),
    "exec": ("exec T [mm @M]", "exec_mmap: a fresh mm replaces T's (mmput of the old one); a kthread becomes a "
                               "user task (kernel_execve)"),
    "use_mm": ("use_mm K @M", "kthread_use_mm: the running kthread K adopts @M as its mm (mmgrab; "
                              "mmdrop_lazy_tlb of what it borrowed)"),
    "unuse_mm": ("unuse_mm K", "kthread_unuse_mm: K keeps @M as active_mm, lazily "
                              "(mmgrab_lazy_tlb, then mmdrop of use_mm's reference)"),
    "unlazy": ("unlazy cpuN", "sched_force_init_mm: a lazy CPU gives its borrowed mm back for init_mm"),
    "mmgrab": ("mmgrab @M", "an mm_count reference held by something outside the tasks"),
    "mmdrop": ("mmdrop @M", "drops an mm_count reference taken by mmgrab (__mmdrop at zero)"),
    "mmget": ("mmget @M", "an mm_users reference held by something outside the tasks"),
    "mmput": ("mmput @M", "drops an mm_users reference taken by mmget (__mmput, exit_mmap at zero)"),
    "mmget_not_zero": ("mmget_not_zero @M", "mm_users + 1 unless it is 0 (then it fails and changes nothing)"),
    "offline": ("offline cpuN", "cpu_down: sched_force_init_mm on the CPU, finish_cpu drops idle's init_mm"),
    "online": ("online cpuN", "cpu_up: the CPU's idle task starts on init_mm"),
    "flush": ("flush @M [tables]", "flush_tlb_mm_range: which CPUs it reaches depends on the arch"),
    "membarrier": ("membarrier [register] cpuN", "MEMBARRIER_CMD_GLOBAL_EXPEDITED from cpuN (ipi_mb to the CPUs "
                   "running a registered mm); `register`: MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED of cpuN's mm"),
    "tick": ("tick cpuN", "scheduler_tick -> task_tick_numa: NUMA balancing queues task_numa_work on cpuN's task"),
    "task_work_run": ("task_work_run K", "K runs its queued task_work (task_numa_work scans current->mm)"),
    "perf_sample": ("perf_sample cpuN", "a perf NMI on cpuN: get_segment_base reads the user context "
                    "(current->mm if nmi_uaccess_okay())"),
    "rollover": ("rollover cpuN", "the CPU's next address-space id allocation starts a new generation "
                                  "(ARM __new_context, ia64 wrap_mmu_context)"),
    "assert": ("assert COND, COND ...", "check the state now; a failure says what was expected and what is "
                                        "(:help fields)"),
    "final": ("final forall|exists COND", "judges the end of a scenario file (mmscn explore); in the REPL use "
                                          "assert"),
}

KEYS = """\
  Enter            run the input; after a line ending in `{` it goes on until the braces balance
  Alt-Enter        run the input as it is (Esc then Enter)
  Tab              complete: statements, tasks, cpuN, @mms, fields after a dot, values after ==
  Up / Down        history, filtered by what is typed before the cursor
  Ctrl-R           search the history backwards
  Right / Ctrl-E   take the grey suggestion from history
  Ctrl-C           drop the line being typed
  Ctrl-D           leave (on an empty line); exit status 0"""

OVERVIEW = """\
Type statements of the scenario language; each runs at once and prints what the kernel did
(kernel function, mm, counter old -> new).  Several statements on one line: separate them with `;`.
A per-CPU block runs as `mmscn run` runs blocks (round robin in CPU order):
    cpu0 {
      schedule A
      exit A
    }
To run two blocks together close one and open the next on the same line: `}; cpu1 {`.

Header lines (scenario, arch, cpus, expect pass|fail) can be set only before the first statement;
afterwards `:arch NAME` replays the session on another architecture and `:reset` starts over.
A refused statement changes nothing; a failed assertion is shown and not kept; a statement that
breaks an invariant is kept (the state shows it) until :undo.

Commands:
{commands}

Keys:
{keys}

:help statements | fields | keys | STATEMENT | :COMMAND for more."""


def fields_text(session=None) -> str:
    """`:help fields`: every field an assertion can read, and the state tests (under the
    session's arch: whether it has @M.cpumask)."""
    from mmscn.dsl.resolve import FIELD_TYPES, IS_WORDS, TYPE_WORDS, WORDS
    from mmscn.grammar import word_classes
    out = ["Fields (assert X.FIELD == VALUE):"]
    for owner, example in (("cpu", "cpu0"), ("task", "A"), ("mm", "@A")):
        fs = [f"{f} ({WORDS.get(typ) and ' | '.join(WORDS[typ]) or TYPE_WORDS.get(typ, typ)})"
              for (o, f), typ in FIELD_TYPES.items() if o == owner]
        out.append(f"  {example}.  " + "; ".join(fs))
    out.append("  cost.  " + ", ".join(word_classes()["COST_FIELD"]) + " (numbers since boot)")
    out.append("State tests (X is [not] WORD):")
    for owner, ws in IS_WORDS.items():
        out.append(f"  {owner}: " + ", ".join(ws))
    if session is not None and "cpumask" not in session.policy.hardware_fields:
        out.append(f"(arch {session.arch} does not track mm_cpumask, so @M.cpumask is not available)")
    return "\n".join(out)
