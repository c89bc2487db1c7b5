"""Issue 14's done-when checks through the real CLI, and the big changes of the design notes'
kernel-source-notes.md section 5, each side as the kernel source has it (docs/history.md,
"Where the source says otherwise than the catalogue"; the diffs' store ids are in the rows).

* `mmscn test examples/history` passes and shows both verdicts of every file;
* `mmscn bisect FILE` names each file's fix (with the `--from`/`--to` its comments give);
* `mmscn history` lists every row; a row's source cites only files of this repository;
* the command lines that once ended in a traceback are errors naming what is valid.
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load, load_file
from mmscn.interpreter import policies
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "examples" / "history"
# the history examples that are regression tests (`expect fail without`); a written witness is not
FILES = sorted(p for p in HISTORY.glob("*.mmscn") if "\nexpect fail without " in p.read_text())
# bisect cannot name the fix where the scenario needs something newer than the fix (the file says why)
NO_BISECT = {"LT-01-exec-mmap-lazy-tlb.mmscn"}


def cli(mmscn_cmd, *args, stdin=None):
    p = subprocess.run([*mmscn_cmd, *map(str, args)], capture_output=True, text=True, input=stdin,
                       env=dict(os.environ, NO_COLOR="1"), timeout=120, cwd=ROOT)
    assert "Traceback" not in p.stdout + p.stderr and p.returncode != 70, p.stdout + p.stderr
    return p


# ---- the done-when checks ------------------------------------------------------------------

def test_mmscn_test_shows_both_verdicts_of_every_history_file(mmscn_cmd):
    p = cli(mmscn_cmd, "test", "examples/history")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.rstrip().endswith(f"{len(list(HISTORY.glob('*.mmscn')))} passed, 0 failed")
    for path in FILES:
        sc, _ = load_file(str(path), known_arches())
        [(_, ()), (_, without)] = [(e.outcome, e.without) for e in sc.expectations()]
        block = p.stdout.split(f"PASS examples/history/{path.name}\n", 1)[1].split("\nPASS ", 1)[0]
        assert re.search(r"line \d+: expect pass \(Linux v[\d.]+\): holds\n", block), block
        # the buggy kernel's verdict names where it fails and the rule that fires there
        assert re.search(rf"line \d+: expect fail without {' '.join(without)} \(Linux v[\d.]+ without "
                         rf"{', '.join(sorted(without))}\): fails, as the line expects: line \d+:\d+: [\w_-]+: ",
                         block), block


def bisect_args(path: Path) -> list:
    """The range a file's comments give for `mmscn bisect` (`#   mmscn bisect --from vA FILE`), if any."""
    m = re.search(r"^#\s+mmscn bisect (.*?)\s*examples/history/" + re.escape(path.name) + r"\s*$",
                  path.read_text(), re.M)
    return m.group(1).split() if m else []


@pytest.mark.parametrize("path", FILES, ids=[p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in FILES])
def test_bisect_names_the_fix(mmscn_cmd, path):
    sc, _ = load_file(str(path), known_arches())
    [fix] = sc.expectations()[1].without
    p = cli(mmscn_cmd, "bisect", *bisect_args(path), path)
    if path.name in NO_BISECT:
        assert p.returncode == 1 and "the verdict never changes" in p.stdout, p.stdout
        assert "`mmscn bisect` cannot name" in path.read_text()
        return
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"\n{fix} is the first commit where the scenario holds\n" in p.stdout, p.stdout
    assert "the verdict changes from fails" in p.stdout


def test_lt10_needs_its_from_and_says_why():
    """LT-10 holds from v2.6.0 to v5.3 (membarrier read curr->mm): the whole range finds use_mm."""
    path = HISTORY / "LT-10-membarrier-use-mm.mmscn"
    assert bisect_args(path) == ["--from", "v5.4"]
    assert "227a4aadc75b (v5.4) brought the bug" in path.read_text()


def test_history_lists_every_row(mmscn_cmd):
    p = cli(mmscn_cmd, "history")
    assert p.returncode == 0 and p.stdout.startswith(f"{len(V.CHANGES)} modelled kernel changes")
    for c in V.CHANGES:
        assert re.search(rf"^{re.escape(c.release)}\s+{re.escape(c.key)}\s.*{re.escape(c.title)}", p.stdout, re.M), c
    d = json.loads(cli(mmscn_cmd, "history", "--json").stdout)
    assert sorted(r["key"] for r in d["changes"]) == sorted(c.key for c in V.CHANGES)


def test_sources_cite_files_of_this_repository():
    """A row's source names where its release was read: a page of docs/ (the design notes, outside
    the repository, are named `design/...`), never a file the repository does not have."""
    for c in V.CHANGES:
        for cited in re.findall(r"[\w./-]+\.md", c.source):
            assert cited.startswith("design/") or (ROOT / cited).exists(), (c.key, cited)
    page = (ROOT / "docs" / "history.md").read_text()
    assert "research/" not in page and "history-verified" not in page


# ---- flags that ended in a traceback -------------------------------------------------------

IA64_RANGE = "the model runs ia64 on v2.3.13 to v6.6"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    d = tmp_path_factory.mktemp("flags")
    (d / "plain.mmscn").write_text("arch generic\ncpus 1\nspawn A\n")
    (d / "ia64.mmscn").write_text("arch ia64\ncpus 1\nspawn A\ncpu0 {\n  schedule cpu0 A\n}\n")
    (d / "v610.mmscn").write_text("arch generic\ncpus 1\nkernel v6.10\nspawn A\n")
    return d


@pytest.mark.parametrize("args,message", [
    (["run", "--kernel", "v6.7", "--arch", "ia64", "plain.mmscn"], f"--kernel v6.7: arch ia64 was removed"),
    (["run", "--json", "--kernel", "v6.10", "--arch", "ia64", "plain.mmscn"], IA64_RANGE),
    (["explore", "--kernel", "v6.7", "ia64.mmscn"], IA64_RANGE),
    (["compare", "--kernel", "v6.6,v6.7", "--arch", "ia64", "plain.mmscn"], "--kernel v6.7: " + "arch ia64"),
    (["compare", "--arch", "ia64,generic", "v610.mmscn"], "kernel v6.10: arch ia64 was removed"),
    (["bisect", "--to", "v6.10", "ia64.mmscn"], "--to v6.10: arch ia64"),
    (["bisect", "--from", "v6.7", "ia64.mmscn"], "--from v6.7: arch ia64"),
    (["repl", "--arch", "ia64", "--kernel", "v6.7"], IA64_RANGE),
    (["run", "--kernel", "v6.8", "--revert", "cf8e8658100d", "--arch", "ia64", "plain.mmscn"], IA64_RANGE),
    (["run", "--revert", "cf8e8658100d", "--arch", "ia64", "plain.mmscn"], "came in v6.7, after kernel v6.6"),
    (["repl", "--arch", "ia64", "--revert", "cf8e8658100d"], "came in v6.7, after kernel v6.6"),
    (["run", "--kernel", "v7.0", "plain.mmscn"], "outside the modelled releases, v2.3.13 to v6.17"),
    (["run", "--kernel", "v2.4.99", "plain.mmscn"], "the 2.4 releases are v2.4.0 to v2.4.37"),
    (["run", "--revert", "0123456789ab", "plain.mmscn"], "no modelled change has commit 0123456789ab"),
    (["run", "--revert", "a665eec0a22e", "plain.mmscn"], "changes the code of powerpc only, not arch generic"),
    (["compare", "--revert", "8678c1f04277", "--arch", "x86", "plain.mmscn"], "arm only, not arch x86"),
    (["compare", "--kernel", "v5.0", "--revert", "a665eec0a22e", "plain.mmscn"], "came in v5.10, after kernel v5.0"),
])
def test_a_flag_the_kernel_cannot_follow_is_a_clean_error(mmscn_cmd, plain, args, message):
    p = subprocess.run([*mmscn_cmd, *args], capture_output=True, text=True, cwd=plain, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, NO_COLOR="1"), timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr
    assert message in p.stderr, p.stderr


def test_flags_that_do_fit_still_run(mmscn_cmd, plain):
    """ia64 runs its own last release; compare leaves out the columns an arch does not have when
    no --arch names it, and takes a --revert that fits one of its columns."""
    assert cli(mmscn_cmd, "bisect", plain / "ia64.mmscn").returncode == 1     # holds from v2.3.13 to v6.6
    p = cli(mmscn_cmd, "compare", "--kernel", "v6.6,v6.7", plain / "plain.mmscn")
    assert p.returncode == 0 and "ia64 v6.6" in p.stdout and "ia64 v6.7" not in p.stdout
    assert cli(mmscn_cmd, "compare", "--revert", "a665eec0a22e", plain / "plain.mmscn").returncode == 0
    assert cli(mmscn_cmd, "compare", "--kernel", "v6.13,v6.14", plain / "v610.mmscn").returncode == 0


def test_repl_kernel_and_arch_name_ia64s_range(mmscn_cmd):
    p = cli(mmscn_cmd, "repl", "--arch", "ia64", stdin="spawn A\n:kernel v6.7\n:kernel v6.5\n:arch generic\n"
                                                         ":kernel v6.10\n:arch ia64\n")
    assert p.stdout.count(IA64_RANGE) == 2, p.stdout
    assert "error: :arch ia64: the session runs kernel v6.10: arch ia64 was removed" in p.stdout


# ---- the big changes, both sides ----------------------------------------------------------

def run(text, release=None, reverts=(), arch=None):
    sc = load(text, "<history>", known_arches())
    version = V.for_policy(policies.get(arch or sc.arch), release, reverts)
    return Runner(sc, text.split("\n"), arch, version=version).run()


def events(r):
    return [e for st in r.steps for e in st.events]


def refs(r, mm=None):
    """The trace's refcount events: (function, counter, old, new) of ``mm`` (every mm: None)."""
    return [(e[2], e[3], e[4], e[5]) for e in events(r) if e[0] == "ref" and (mm is None or e[1] == mm)]


def ops(r):
    return [e[2] for e in events(r) if e[0] == "op"]


USE_MM = """arch generic
cpus 1
spawn A
spawn kthread K
schedule cpu0 A
schedule cpu0 K
use_mm K @A
unuse_mm K
schedule cpu0 A
"""


def test_the_lazy_helpers_name_the_trace_from_v6_4():
    """aa464ba9a1e4: mmgrab_lazy_tlb/mmdrop_lazy_tlb(_sched) at context_switch, exit_mm, finish_task_switch;
    before it mmgrab and mmdrop (mmdrop_sched from 8d491de6edc2, v5.16)."""
    new, old, older = run(USE_MM, "v6.4"), run(USE_MM, "v6.3"), run(USE_MM, "v5.15")
    assert ("mmgrab_lazy_tlb", "count", 1, 2) in refs(new, "@A")
    assert ("mmdrop_lazy_tlb_sched", "count", 2, 1) in refs(new, "@A")
    assert ("mmgrab", "count", 1, 2) in refs(old, "@A") and ("mmdrop_sched", "count", 2, 1) in refs(old, "@A")
    assert ("mmdrop", "count", 2, 1) in refs(older, "@A")
    assert not any(f.endswith("lazy_tlb") or f.endswith("lazy_tlb_sched") for f, *_ in refs(old) + refs(older))
    assert refs(run(USE_MM, reverts=[V.LAZY_TLB_HELPERS, V.KTHREAD_USE_MM_REFCOUNT])) == refs(old)


def test_kthread_use_mm_refcounting_before_and_after_6cad87b0d216():
    """v6.4: use_mm grabs @A and drops the lazy @A even when they are the same mm, and unuse_mm
    grabs lazily and drops; v6.3: neither touches the count (the lazy reference becomes the
    kthread_use_mm one and back)."""
    new, old = run(USE_MM, "v6.4"), run(USE_MM, "v6.3")
    assert refs(new, "@A")[3:7] == [("mmgrab", "count", 2, 3), ("mmdrop_lazy_tlb", "count", 3, 2),
                                    ("mmgrab_lazy_tlb", "count", 2, 3), ("mmdrop", "count", 3, 2)]
    assert refs(old, "@A")[3:] == [("mmdrop_sched", "count", 2, 1)]
    assert not new.failed and not old.failed
    # 6cad87b0d216 alone reverted: use_mm as before it, unuse_mm as after aa464ba9a1e4
    mixed = run(USE_MM, reverts=[V.KTHREAD_USE_MM_REFCOUNT])
    assert refs(mixed, "@A")[3:] == [("mmgrab_lazy_tlb", "count", 2, 3), ("mmdrop", "count", 3, 2),
                                     ("mmdrop_lazy_tlb_sched", "count", 2, 1)]


def test_6cad87b0d216_came_first_because_shootdown_needs_it():
    """Under MMU_LAZY_TLB_SHOOTDOWN a lazy user holds no count: the old kthread_use_mm, which turned
    that (absent) reference into its own, leaves mm_count one short."""
    r = run(USE_MM.replace("arch generic", "arch powerpc"), reverts=[V.KTHREAD_USE_MM_REFCOUNT])
    d = r.diagnostics[0]
    assert d.line == 7 and "mm_count-accounting" in d.message


POWERPC = """arch powerpc
cpus 2
spawn A
spawn kthread kw
schedule cpu0 A
schedule cpu0 kw
schedule cpu1 A
exit A
"""


@pytest.mark.parametrize("release,reverts", [("v6.3", ()), ("v6.17", (V.PPC_LAZY_TLB_SHOOTDOWN,)),
                                             ("v6.17", (V.SHOOT_LAZIES,)), ("v6.17", (V.LAZY_TLB_REFCOUNT_CONFIG,)),
                                             ("v6.17", (V.LAZY_TLB_HELPERS,))])
def test_powerpc_counts_lazy_users_without_the_shootdown(release, reverts):
    """77f68ebeee20 needs 2655421ae69f, 88e3009b5283 and aa464ba9a1e4: without any of them powerpc
    refcounts lazy users like generic, and the exiting mm stays, held by kw's lazy reference."""
    r = run(POWERPC, release, reverts)
    assert r.kernel.refcount_lazy and not r.failed
    assert ("mmgrab_lazy_tlb" if V.LAZY_TLB_HELPERS not in reverts and release != "v6.3" else "mmgrab",
            "count", 1, 2) in refs(r, "@A")
    assert "cleanup_lazy_tlbs" not in ops(r) and r.kernel.mm_state(r.kernel.mm_ix["@A"]) == "zombie"


def test_the_final_flush_shoots_lazies_from_v6_6():
    """e43c0a0c3c28: v6.6's exit flush IPIs the lazy CPU (exit_flush_lazy_tlbs) and cleanup_lazy_tlbs
    finds only this one; v6.5's flush is a tlbie and cleanup_lazy_tlbs sends the IPI itself."""
    new, old = run(POWERPC, "v6.6"), run(POWERPC, "v6.5")
    assert not new.kernel.refcount_lazy and not old.kernel.refcount_lazy
    assert "exit_lazy_flush_tlb" in ops(new) and "exit_lazy_flush_tlb" not in ops(old)
    shot = [e[1] for e in events(new) if e[0] == "op" and e[2] == "do_shoot_lazy_tlb"]
    assert shot == ["cpu1"]        # the exiting CPU itself
    shot = [e[1] for e in events(old) if e[0] == "op" and e[2] == "do_shoot_lazy_tlb"]
    assert shot == ["cpu0", "cpu1"]
    assert new.cost["ipis"] == old.cost["ipis"] == 1
    assert ops(run(POWERPC, reverts=[V.PPC_EXIT_SHOOTDOWN])) == ops(old)


def test_use_mm_was_use_mm_before_v5_8():
    """9bf5b9eb232b moved use_mm to kernel/kthread.c; f5678e7f2ac3 named it kthread_use_mm and WARNs."""
    assert "use_mm" in ops(run(USE_MM, "v5.7")) and "kthread_use_mm" not in ops(run(USE_MM, "v5.7"))
    assert "kthread_unuse_mm" in ops(run(USE_MM, "v5.8"))
    bad = "arch generic\ncpus 1\nspawn A\nschedule cpu0 A\nuse_mm A @A\n"
    step = run(bad, "v5.7").steps[-1]
    assert step.function == "use_mm (mm/mmu_context.c)" and "use_mm must not be called unless" in step.message
    step = run(bad, "v5.8").steps[-1]
    assert step.function == "kthread_use_mm (kernel/kthread.c): WARN_ON_ONCE(!(tsk->flags & PF_KTHREAD))"
    assert run(bad, reverts=[V.KTHREAD_USE_MM_NAME]).steps[-1].function == "use_mm (kernel/kthread.c)"


def test_a_witness_replays_under_the_kernel_it_was_found_on(mmscn_cmd, tmp_path):
    """explore's witness carries the header's kernel (perf_sample's user-context bug is gone in the
    default v6.17) and writes the CPU a block statement left implicit (`perf_sample` -> `perf_sample cpu1`)."""
    f = tmp_path / "w.mmscn"
    f.write_text("arch x86\ncpus 2\nkernel v6.14\nspawn U\nspawn kthread K\nschedule cpu1 U\nschedule cpu1 K\n"
                 "cpu1 {\n  tick\n  perf_sample\n}\ncpu0 {\n  membarrier\n}\n")
    w = tmp_path / "wit.mmscn"
    assert cli(mmscn_cmd, "explore", "--witness", w, f).returncode == 1
    text = w.read_text()
    assert "\nkernel v6.14\n" in text and "\nperf_sample cpu1 " in text and "\ntick cpu1 " in text
    assert cli(mmscn_cmd, "run", w).returncode == 0
