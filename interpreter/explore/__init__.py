"""Every interleaving of the per-CPU blocks, checked like a litmus test.

The prologue (statements before the blocks) runs once, with the Runner, as in
`mmscn run`.  From the kernel state it leaves, a breadth-first search fires
the blocks' statements in every order: one statement is one atomic kernel
operation (an `expect` travels with the statement it announces).  A visited
state is the kernel state plus each block's program counter.

Semantics (docs/explore.md): a block's `schedule T` waits while T runs on
another CPU; every other refusal, every broken invariant, every failed
assertion fails the interleaving that reached it; no block able to move while
some still have statements is a deadlock; a failing `mmget_not_zero` ends its
block.  `final forall` must hold in every final state, `final exists` in one.

Two reductions keep the verdict exact and can be switched off:

* Partial-order reduction (persistent sets).  Each statement gets a static
  footprint, a bit set of the tasks, mms and CPUs it may read or write in any
  reachable state (a may-analysis of which tasks run where and which mms can
  be active on a CPU).  At a state, a set of blocks closed under "the next
  statement of one may conflict with anything another may still do" (and,
  for a waiting `schedule T`, every block that may move T) is persistent;
  only its statements are fired.  The state space is acyclic (every step
  advances a program counter), so this preserves every final state, every
  deadlock and every failure (Godefroid 1996, ch. 4).  init_mm's counters are
  left out of the footprints: init_mm is never freed, and internal paths only
  add to and subtract from its mm_count with references they hold, so two
  CPUs' mmgrab/mmdrop of init_mm commute and the accounting check sees the
  same difference in either order; a statement that names @init_mm, or an
  assertion reading it or `cost`, conflicts with everything.
* Symmetry.  Permutations of CPUs, tasks and mms that map the blocks onto
  each other, the start state onto itself and fix every name in `final` are
  automorphisms of the search; a state is stored under the least image of it
  (by hash), so states equal up to such a renaming are explored once.
  Interchangeable blocks (any order of them is an automorphism) are sorted
  into a canonical order instead of enumerated (class Symmetry).
"""

from .footprints import Footprints
from .model import ENDED, FAILED, MOVED, SAME, Failure, Model, Store, Unit
from .search import Explorer, Result, Stats, prologue_result, random_walks
from .symmetry import Symmetry
from .witness import ReplayedStep, failing_steps, final_fields, replay, stmt_source, witness_text

__all__ = ["ENDED", "FAILED", "MOVED", "SAME", "Explorer", "Failure", "Footprints", "Model", "ReplayedStep", "Result", "Stats",
           "Store", "Symmetry", "Unit", "failing_steps", "final_fields", "prologue_result", "random_walks", "replay",
           "stmt_source", "witness_text"]
