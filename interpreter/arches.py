"""The architectures and the kernel history as the front ends hand them to dsl/, which
imports nothing of interpreter/: their names, the hardware fields each one's policy
models, and what `kernel`, `revert` and `config` may name."""
from __future__ import annotations

from mmscn.dsl.resolve import Arches, Kernels

from . import policies
from . import version as V


def known_arches() -> Arches:
    """Every installed architecture, with its hardware fields and the kernel history, for the
    resolver to check."""
    return Arches(policies.KnownArches(), hardware_fields, kernels=known_kernels())


def known_kernels() -> Kernels:
    """The history table (interpreter/version.py) as the resolver asks it."""
    return Kernels(V.CHANGES, tuple(V.CONFIGS), V.release_problem, V.lands, fixed_kernel, arch_release, newest_kernel)


def arch_release(arch: str, release: str):
    """Why ``arch`` cannot run ``release`` (ia64 from v6.7 on: the policy's kernel_problem), or None."""
    try:
        policy = policies.get(arch) if arch in policies.KnownArches() else None
    except Exception:       # a broken plug-in must not break the check of a file
        return None
    return None if policy is None else policy.kernel_problem(V.KernelVersion(release))


def fixed_kernel(arch: str):
    """The release an architecture stands for (linux-2.3: v2.3.13), None for the others."""
    try:
        return policies.get(arch).kernel if arch in policies.KnownArches() else None
    except Exception:       # a broken plug-in must not break the check of a file
        return None


def newest_kernel(arch: str):
    """The release an architecture runs when nothing names one, if it ends before the newest
    modelled (ia64: v6.6), None for the others."""
    try:
        return getattr(policies.get(arch), "newest_kernel", None) if arch in policies.KnownArches() else None
    except Exception:       # a broken plug-in must not break the check of a file
        return None


def default_kernel(arch: str) -> str:
    """The release ``arch`` runs when neither the file nor the command line names one."""
    return fixed_kernel(arch) or newest_kernel(arch) or V.NEWEST


def hardware_fields(arch: str):
    return policies.get(arch).hardware_fields
