"""explore's memo (interpreter/explore/memo.py): a transition remembered by the rows its run read
gives what the kernel gives.  verify mode runs every remembered transition again and raises on a
difference; these tests run it over random programs and the examples, and compare the searches
with the memo off: verdicts, final states, counts."""
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from mmscn.dsl.resolve import load
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.interpreter.explore import memo as M
from mmscn.interpreter.explore import packed as P
from mmscn.interpreter.explore.parallel import ParallelExplorer, WorkerFailed

from test_explore_commute import programs

ROOT = Path(__file__).resolve().parent.parent


def search(text: str, memo: str, por: bool = False, symmetry: bool = False, name: str = "t.mmscn", jobs: int = 1):
    sc = load(text, name, policies.KnownArches())
    m = X.Model(sc, text.split("\n"))
    if m.prologue_failure is not None:
        return None
    kw = dict(por=por, symmetry=symmetry, all_finals=True, memo=memo)
    ex = X.Explorer(m, **kw) if jobs == 1 else ParallelExplorer(m, jobs, **kw)
    r = ex.run()
    finals = sorted(tuple(sorted(X.final_fields(m, s).items())) for s in r.finals)
    fail = None if r.failure is None else (r.failure.kind, r.failure.message, r.path)
    return (r.holds, finals, fail, r.stats.distinct, r.stats.transitions), ex.memo


def same(text: str, **kw):
    off = search(text, "off", **kw)
    if off is None:
        return None
    on = search(text, "on", **kw)            # remembered runs replayed on the search's bytes
    assert on[0] == off[0], text
    verify = search(text, "verify", **kw)    # and each run again on the kernel, compared
    assert verify[0] == off[0], text
    return verify[1]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(programs())
def test_memo_gives_what_the_kernel_gives_on_random_programs(text):
    same(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(programs())
def test_memo_with_the_reductions_on(text):
    same(text, por=True, symmetry=True)


# the examples with per-CPU blocks (the others have nothing to explore)
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.mmscn") if re.search(r"^cpu\d+\s*\{", p.read_text(), re.M))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_memo_on_the_examples(path):
    text = path.read_text()
    for por in (False, True):
        same(text, por=por, symmetry=por, name=str(path))


DENSE = """arch generic
cpus 3
spawn P
spawn thread t0 of P
spawn thread t1 of P
spawn thread t2 of P
spawn kthread k0
spawn kthread k1
spawn kthread k2
mmget @P
mmget @P
mmget @P
""" + "".join(f"""cpu{c} {{
    schedule k{c}
    use_mm k{c} @P
    unuse_mm k{c}
    mmput @P
    schedule t{c}
    exit t{c}
    schedule idle
}}
""" for c in range(3))


def test_memo_runs_the_kernel_once_per_rows_read():
    # the dense family: every statement moves @P's counters, yet most of the runs repeat
    memo = same(DENSE)
    assert memo.on and memo.hits > 2 * memo.misses, (memo.hits, memo.misses)


@pytest.mark.parametrize("arch", ["powerpc", "sparc64", "xen-pv"])
def test_memo_is_off_where_check_reads_every_cpu(arch):
    memo = same(DENSE.replace("arch generic", f"arch {arch}"))
    assert not memo.on and memo.hits == 0


def test_memo_on_x86_keeps_the_runs_that_leave_every_mm_cpumask_alone():
    # x86's check reads every CPU's mm_cpumask bit: a run that changed a cpumask is remembered by
    # the whole state, the others by their rows (bits are set once and stay: most runs are these)
    memo = same(DENSE.replace("arch generic", "arch x86"))
    assert memo.on and memo.hits > memo.misses, (memo.hits, memo.misses)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(programs())
def test_memo_gives_what_the_kernel_gives_on_random_x86_programs(text):
    same(re.sub(r"^arch \S+", "arch x86", text, count=1, flags=re.M))


@pytest.mark.parametrize("jobs", [1, 2])
def test_verify_catches_a_memo_that_forgets_a_write(monkeypatch, jobs):
    # a remembered run replayed without its writes: the kernel's successor differs, and says so.
    # One search remembers runs on its bytes (explore/packed.py), --jobs on the tuples (memo.py)
    put, learn = M.Memo.put, P.Positions.learn

    def forgetful(self, u, s, changed, outcome, s2):
        put(self, u, s, changed, outcome, s2)
        for _, _, table in u.memo[1]:
            for k, (o, _) in table.items():
                table[k] = (o, ())

    def forgets(self, u, s, x, changed, s2, x2, npc):
        learn(self, u, s, x, changed, s2, x2, npc)
        for _, _, table in u.packed:
            for k, (_, pc) in table.items():
                table[k] = (0, pc)          # no bit flipped

    monkeypatch.setattr(M.Memo, "put", forgetful)
    monkeypatch.setattr(P.Positions, "learn", forgets)
    with pytest.raises((AssertionError, WorkerFailed), match="explore's memo of line"):
        search(DENSE, "verify", jobs=jobs)
