"""The kernel a command runs, and the verdicts a file is judged by.

A scenario's kernel is its header's `kernel vX.Y` (default: the release its
arch stands for, linux-2.3's v2.3.13, else the newest modelled), less the
changes its `revert` lines name, with the options its `config` lines set.
The command line comes on top (docs/language.md "The kernel"):

* `--kernel vX.Y` replaces the header's `kernel`;
* `--revert COMMIT` (repeatable) adds to the header's `revert` lines;
* each `expect pass|fail without COMMIT ...` line reverts its commits as well,
  for its own verdict only.

A file is judged once per `expect` line (judgements()): run, explore and test
report one verdict per line.  A file with one `expect` line (or none, which
is `expect pass`) is judged once, exactly as before the history existed.

Only the standard library and dsl/diagnostics.py are imported at module level:
the CLI imports this module when it starts.
"""
from __future__ import annotations

import dataclasses

from mmscn.dsl.diagnostics import printable


class FlagError(ValueError):
    """A --kernel or --revert the command cannot use; the message says why, in kernel words."""


def add_arguments(p, kernel_help: str = "run this kernel release (replaces the header's `kernel`)") -> None:
    """--kernel and --revert, the same on run, explore, compare, test and repl."""
    p.add_argument("--kernel", metavar="vX.Y", help=kernel_help)
    p.add_argument("--revert", action="append", default=[], metavar="COMMIT",
                   help="leave this modelled change out of the kernel (12+ hex digits of its commit; "
                        "repeatable; adds to the header's `revert` lines)")


def check_release(text: str, flag: str = "--kernel") -> str:
    """A release named on the command line, or FlagError."""
    from mmscn.interpreter import version as V
    why = V.release_problem(text)
    if why:
        raise FlagError(f"{flag} {printable(text)}: {why}")
    return text


def check_arch_release(arch: str, release, flag: str = "--kernel") -> None:
    """FlagError when ``arch`` cannot run ``release`` (ia64 from v6.7 on): the message names the
    releases the model runs it on.  Nothing for a release of None (the arch's own default)."""
    from mmscn.interpreter.arches import arch_release
    why = release is not None and arch_release(arch, release)
    if why:
        raise FlagError(f"{flag} {printable(release)}: {why}")


def flag_reverts(texts, arch: str, release=None) -> tuple:
    """The keys of the changes --revert names, checked as the resolver checks `revert`
    (a commit of the table, of this arch, in this release), or FlagError."""
    from mmscn.dsl.resolve import find_change
    from mmscn.interpreter import version as V
    from mmscn.interpreter.arches import known_kernels
    keys = []
    for text in texts:
        key, why = find_change(text, known_kernels())
        if why is None:
            c = next(c for c in V.CHANGES if c.key == key)
            if not V.touches(c, arch):
                why = f"{c.key} ({c.title}) changes the code of {', '.join(c.arches)} only, not arch {arch}"
            elif not V.lands(key, release):
                why = f"{c.key} ({c.title}) came in {c.release}, after kernel {release}: there is nothing to revert"
        if why:
            raise FlagError(f"--revert {printable(text)}: {why}")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


class Judgement:
    """One verdict a file is judged by: its `expect` line (an ast.Expectation), the
    scenario as that line judges it (its outcome), the arch and the kernel to run."""
    __slots__ = ("expect", "scenario", "arch", "version", "several")

    def __init__(self, expect, scenario, arch, version, several):
        self.expect, self.scenario, self.arch, self.version, self.several = expect, scenario, arch, version, several

    def heading(self) -> str:
        """`line 7: expect fail without 38cf307c1f20 (Linux v6.17 without 38cf307c1f20)`."""
        where = f"line {self.expect.line}: " if self.expect.line else ""
        return printable(f"{where}{self.expect.label()} ({self.version.name})")

    def json(self) -> dict:
        """What a --json document says of the kernel it ran."""
        v = self.version
        return {"release": v.release, "reverts": sorted(v.reverts), "configs": sorted(v.configs)}


class Verdicts:
    """A file judged under several `expect` lines: the Judgements and their reports, in
    the order of the lines, as `mmscn run` (RunResults) and `mmscn explore` ((model,
    result, failing steps) each) hand them to their format for such a file."""
    __slots__ = ("judged", "results")

    def __init__(self, judged, results):
        self.judged, self.results = list(judged), list(results)

    @property
    def passed(self) -> bool:
        """Every run's verdict is what its line expects (run's RunResults)."""
        return all(r.passed for r in self.results)

    def pairs(self):
        return zip(self.judged, self.results)


def verdict(expected: str, failed: bool, first=None) -> str:
    """One `expect` line's verdict in words: `holds`, `FAILS`, `fails, as the line expects`,
    `HOLDS, but the line says `expect fail``; ``first``: the first failure (a Diagnostic or
    explore's Failure), named after a `fails`."""
    if expected == "fail":
        word = "fails, as the line expects" if failed else "HOLDS, but the line says `expect fail`"
    else:
        word = "FAILS" if failed else "holds"
    if failed and first is not None:
        word += printable(f": line {first.line}:{first.col}: {first.message}")
    return word


def run_verdict(result) -> str:
    """verdict() of one run (a RunResult)."""
    return verdict(result.scenario.outcome, result.failed, result.diagnostics[0] if result.diagnostics else None)


def judgements(sc, arch=None, kernel=None, reverts=()) -> list:
    """One Judgement per `expect` line of ``sc`` (one for a file without any).

    ``arch``: the command's --arch (None: the file's); ``kernel``, ``reverts``: the
    command's --kernel and --revert, already checked (check_release, flag_reverts).
    UnknownPolicy passes through, as from Runner.
    """
    from mmscn.interpreter import policies
    from mmscn.interpreter import version as V
    name = arch or sc.arch
    policy = policies.get(name)
    release = kernel or sc.kernel
    base = tuple(dict.fromkeys(sc.reverts + tuple(reverts)))
    expects = sc.expectations()
    out = []
    for e in expects:
        version = V.for_policy(policy, release, base + tuple(k for k in e.without if k not in base), sc.configs)
        judged = sc if e.outcome == sc.outcome else dataclasses.replace(sc, outcome=e.outcome)
        out.append(Judgement(e, judged, name, version, len(expects) > 1))
    return out


def by_explore(sc, explore: bool) -> bool:
    """Whether `mmscn test` judges a file by every interleaving (`mmscn explore`): under --explore,
    or over kernel steps (one round robin cannot show a race inside an operation); only with
    blocks.  Its --html timeline is then the witness's."""
    return (explore or sc.granularity == "step") and bool(sc.blocks)


def is_default(j) -> bool:
    """Does the judgement run the kernel its arch runs when nothing names one?"""
    v = j.version
    return not v.reverts and not v.configs and v.release == _default_release(j.arch)


def _default_release(arch):
    from mmscn.interpreter.arches import default_kernel
    return default_kernel(arch)


def names_kernel(sc, args) -> bool:
    """Does the file or the command line name a kernel word?  (Then --json says which kernel ran.)"""
    return bool(sc.kernel or sc.reverts or sc.configs or any(e.without for e in sc.expects)
                or getattr(args, "kernel", None) or getattr(args, "revert", None))


def add_granularity(p) -> None:
    """--granularity, on run and explore: overrides the header's `granularity`."""
    p.add_argument("--granularity", choices=("step", "operation"),
                   help="operations as the kernel's own steps, or each statement one atomic step (default: the "
                        "header's `granularity`, else operation)")


def from_args(sc, args) -> list:
    """judgements() for a command's --arch, --kernel and --revert (and --granularity, which
    overrides the header's); FlagError for bad flags."""
    granularity = getattr(args, "granularity", None)
    if granularity and granularity != sc.granularity:
        sc = dataclasses.replace(sc, granularity=granularity)
    arch = getattr(args, "arch", None) or sc.arch
    kernel = getattr(args, "kernel", None)
    if kernel is not None:
        check_release(kernel)
        fixed = _fixed(arch)
        if fixed:
            raise FlagError(f"--kernel {printable(kernel)}: arch {arch} is the generic architecture at {fixed} "
                            f"and names its own kernel; use --arch generic")
        check_arch_release(arch, kernel)
    release = kernel or sc.kernel or _default_release(arch)
    keys = flag_reverts(getattr(args, "revert", None) or (), arch, release)
    return judgements(sc, getattr(args, "arch", None), kernel, keys)


def _fixed(arch):
    from mmscn.interpreter.arches import fixed_kernel
    return fixed_kernel(arch)
