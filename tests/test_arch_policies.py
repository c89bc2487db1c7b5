"""The architectures through the command line: their examples, `mmscn compare`,
the hardware state in traces and JSON, and a policy from outside the package."""
import json
import os
import re
import subprocess
import textwrap

import pytest

from conftest import EXAMPLES
from mmscn.interpreter import policies

ARCH_EXAMPLES = sorted((EXAMPLES / "arch").glob("*.mmscn"))


def cli(cmd, *args, env=None):
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env)


def test_every_architecture_is_built_in():
    assert {"generic", "linux-2.3", "x86", "arm64", "powerpc", "alpha"} <= set(policies.builtin_names())


def test_there_is_an_example_per_architecture():
    arches = {p.read_text().split("\narch ", 1)[1].split()[0] for p in ARCH_EXAMPLES}
    assert {"x86", "arm64", "powerpc", "alpha", "linux-2.3"} <= arches


@pytest.mark.parametrize("path", ARCH_EXAMPLES, ids=[p.stem for p in ARCH_EXAMPLES])
def test_arch_example_passes(mmscn_cmd, path):
    p = cli(mmscn_cmd, "run", path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "passed:" in p.stdout
    assert "assert cost." in path.read_text()      # each asserts on what it costs


@pytest.mark.parametrize("path", ARCH_EXAMPLES, ids=[p.stem for p in ARCH_EXAMPLES])
def test_arch_example_shows_a_difference_from_generic(mmscn_cmd, path):
    # each example asserts something the generic kernel does not do; arm64 counts, loads and
    # flushes as generic does (only what TTBR0 holds for init_mm differs), so its example holds there
    p = cli(mmscn_cmd, "run", "-q", "--arch", "generic", path)
    assert p.returncode == (0 if "\narch arm64" in path.read_text() else 1), p.stdout


def test_powerpc_race_verdict_differs_from_generic_and_reductions_agree(mmscn_cmd):
    path = EXAMPLES / "races" / "use_mm_vs_exit_powerpc.mmscn"
    reduced = cli(mmscn_cmd, "explore", "--json", path)
    full = cli(mmscn_cmd, "explore", "--json", "--no-por", "--no-symmetry", path)
    generic = cli(mmscn_cmd, "explore", "--json", "--arch", "generic", path)
    assert reduced.returncode == 0 and full.returncode == 0, reduced.stdout + full.stdout
    assert generic.returncode == 1, generic.stdout
    r, f, g = (json.loads(x.stdout) for x in (reduced, full, generic))
    assert r["holds"] is True and f["holds"] is True and g["holds"] is False


def test_compare_prints_a_column_per_policy(mmscn_cmd):
    p = cli(mmscn_cmd, "compare", EXAMPLES / "arch" / "x86_lazy_through_flush.mmscn")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header = lines[1].split()
    assert header[:2] == ["generic", "linux-2.3"] and set(policies.names()) == set(header)
    cells = [re.split(r"\s{2,}", ln.strip()) for ln in lines[2:lines.index("")]]   # the explanation follows
    rows = {c[0]: c[1:] for c in cells}
    assert all(len(v) == len(header) for v in rows.values())
    col = {a: i for i, a in enumerate(header)}
    assert rows["verdict"][col["x86"]] == "passed"
    assert rows["cost.ipis"][col["x86"]] == "5" and rows["cost.ipis"][col["generic"]] == "0"
    assert rows["cost.mm_count_atomics"][col["powerpc"]] == "0"      # no lazy references counted
    assert rows["@A users/count"][col["x86"]] == "2/1 live"
    assert rows["verdict"][col["generic"]].startswith("failed (")


def test_compare_json_and_arch_subset(mmscn_cmd):
    path = EXAMPLES / "arch" / "linux_2_3_two_atomics.mmscn"
    p = cli(mmscn_cmd, "compare", "--json", "--arch", "linux-2.3,generic", path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    old, new = doc["policies"]
    assert (old["arch"], new["arch"]) == ("linux-2.3", "generic")
    assert old["verdict"] == "passed" and new["verdict"] == "failed" and new["failures"] == 1
    assert old["cost"]["mm_count_atomics"] - new["cost"]["mm_count_atomics"] == 2
    assert old["mms"]["@A"] == new["mms"]["@A"] == {"users": 1, "count": 2, "state": "live"}


def test_compare_exit_status_2_for_bad_input(mmscn_cmd, tmp_path):
    bad = tmp_path / "bad.mmscn"
    bad.write_text("spawn\n")
    p = cli(mmscn_cmd, "compare", bad)
    assert p.returncode == 2 and "bad.mmscn:1" in p.stderr
    p = cli(mmscn_cmd, "compare", "--arch", "x86,vax", EXAMPLES / "zombie_mm.mmscn")
    assert p.returncode == 2 and "`vax`" in p.stderr and "Traceback" not in p.stderr


def test_run_json_and_trace_show_the_hardware(mmscn_cmd):
    path = EXAMPLES / "arch" / "x86_lazy_through_flush.mmscn"
    doc = json.loads(cli(mmscn_cmd, "run", "--json", path).stdout)
    lazy = [s for s in doc["steps"] if s["statement"] == "schedule cpu0 kw"][0]
    assert lazy["hardware"]["cpus"]["cpu0"] == {"loaded_mm": "@A", "lazy": True}
    assert lazy["hardware"]["cpumask"]["@A"] == ["cpu0"]
    assert doc["state"]["cpus"][0]["loaded_mm"] == "@A"
    assert doc["state"]["mms"][1]["cpumask"] == ["cpu0"]
    text = cli(mmscn_cmd, "run", path).stdout
    assert "hw: cpu0 @A lazy, cpu1 @init_mm; mm_cpumask @A {cpu0}" in text
    plain = cli(mmscn_cmd, "run", EXAMPLES / "zombie_mm.mmscn").stdout
    assert "hw:" not in plain           # generic models no hardware


def test_alpha_json_shows_each_pcb_ptbr(mmscn_cmd):
    doc = json.loads(cli(mmscn_cmd, "run", "--json", EXAMPLES / "arch" / "alpha_context_load.mmscn").stdout)
    tasks = {t["name"]: t for t in doc["state"]["tasks"]}
    assert tasks["kw"]["ptbr"] == "@A" and tasks["A"]["ptbr"] == "@A2"


EXTERNAL = '''
from mmscn.interpreter.policies.base import Policy


class ShootAll(Policy):
    """A made-up architecture: every TLB flush IPIs every online CPU."""
    summary = "flush IPIs every CPU"

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        for cpu in range(k.ncpus):
            if k.c_online[cpu]:
                k.hw.ipi(cpu)
                k.hw.event(f"cpu{cpu}", "shootall_flush", f"IPI for {k.m_name[mm]}")
'''


def test_policy_from_an_entry_point_is_picked_up_by_arch(mmscn_cmd, tmp_path):
    (tmp_path / "shootall_policy.py").write_text(EXTERNAL)
    dist = tmp_path / "shootall_policy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shootall-policy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mmscn.policies]\nshootall = shootall_policy:ShootAll\n")
    sc = tmp_path / "s.mmscn"
    sc.write_text(textwrap.dedent("""\
        arch shootall
        cpus 3
        spawn A
        flush @A
        assert cost.ipis == 3
        """))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    p = cli(mmscn_cmd, "run", sc, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(arch shootall, 3 CPUs)" in p.stdout and "shootall_flush" in p.stdout
    c = cli(mmscn_cmd, "compare", "--json", sc, env=env)
    cols = {col["arch"]: col for col in json.loads(c.stdout)["policies"]}
    assert cols["shootall"]["cost"]["ipis"] == 3 and cols["generic"]["cost"]["ipis"] == 0
    # without the entry point the name is unknown: a located error, not a traceback
    p = cli(mmscn_cmd, "run", sc)
    assert p.returncode == 2 and "shootall" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("arch", ["x86", "powerpc", "alpha"])
def test_reductions_agree_under_the_architectures(arch):
    # flush IPIs and shootdowns move other CPUs' tasks and hardware: partial-order reduction and
    # symmetry must still give the verdicts and final states of the full search
    import random

    from test_explore import random_program, reductions_agree
    checked = 0
    for seed in range(12):
        rng = random.Random(seed)
        lines = []
        for ln in random_program(rng).replace("arch generic", f"arch {arch}").split("\n"):
            lines.append(ln)
            if ln.startswith("  ") and rng.random() < 0.3:
                lines.append(f"  flush @A{' tables' if rng.random() < 0.5 else ''}")
        if reductions_agree("\n".join(lines)):
            checked += 1
    assert checked >= 8


X86_FLUSH_RACE = """arch x86
cpus 2
spawn A
spawn B
spawn kthread kw
schedule cpu0 B
schedule cpu1 A
cpu0 {
    flush @A tables          # from cpu0, which runs B: reaches cpu1 through @A's mm_cpumask
}
cpu1 {
    schedule kw              # before the flush: lazy, and the flush moves cpu1 to init_mm
}
"""


def test_a_flush_conflicts_with_the_cpus_it_reaches():
    # the two orders end differently (cpu1 lazy on @A, or moved to init_mm): the reduced search
    # must keep both, although the flush's own CPU shares nothing with cpu1's block
    from mmscn.interpreter import explore as X
    from test_explore import finals, model_of
    got = {}
    for por in (True, False):
        m = model_of(X86_FLUSH_RACE)
        r = X.Explorer(m, por=por, symmetry=False, all_finals=True).run()
        got[por] = finals(m, r)
    assert got[True] == got[False] and len(got[False]) == 2


def test_hardware_line_follows_a_restored_kernel():
    """The traced hardware state lists live mms only, carried step to step (LiveIndex); after the
    REPL's :undo restores a kernel in which a freed mm was live, it is listed again."""
    from mmscn.dsl.resolve import load
    from mmscn.interpreter.runner import Runner
    src = "cpus 1\nspawn A\nspawn B\nschedule cpu0 A\nexit A\nschedule cpu0 B\nschedule cpu0 idle\n"
    sc = load(src, "x.mmscn")
    r = Runner(sc, src.split("\n"), "x86")
    masks = []
    for i, st in enumerate(sc.stmts):
        if i == 4:
            before_free = r.k.snapshot()
        assert r.step(st, None) is True
        masks.append(r.result.steps[-1].hw["cpumask"])
    assert masks[3] == {"@init_mm": [], "@A": ["cpu0"], "@B": []}      # after exit A: a zombie
    assert masks[4] == {"@init_mm": [], "@B": ["cpu0"]}                  # A freed at the switch to B
    r.k.restore(before_free)
    assert r.step(sc.stmts[-1], None) is True                            # schedule cpu0 idle, A alive
    assert "@A" in r.result.steps[-1].hw["cpumask"]
