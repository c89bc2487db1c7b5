"""Switch policies, one file per architecture.

A built-in policy lives in this package in a module named after it
(``linux-2.3`` -> ``linux_2_3.py``) and is the module's only Policy subclass
with that ``name``.  Policies from other distributions register a class under
the entry point group ``mmscn.policies`` (name = what follows `arch`).
"""
from __future__ import annotations

import importlib
import pkgutil

ENTRY_POINT_GROUP = "mmscn.policies"


class UnknownPolicy(LookupError):
    pass


def _module_name(arch: str) -> str:
    return arch.replace("-", "_").replace(".", "_")


def builtin_names() -> list:
    """Names of the built-in policies, read off the package without importing them."""
    out = []
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            out.append(_arch_of_module(info.name))
    return sorted(out)


def _arch_of_module(mod: str) -> str:
    # linux_2_3 -> linux-2.3; xen_pv -> xen-pv; x86 -> x86
    if mod.startswith("linux_"):
        return "linux-" + mod[len("linux_"):].replace("_", ".")
    return mod.replace("_", "-")


def _entry_points():
    from importlib.metadata import entry_points
    return list(entry_points(group=ENTRY_POINT_GROUP))


def names() -> list:
    """Every policy `arch` accepts: the built-in ones and the registered ones."""
    found = set(builtin_names())
    found.update(ep.name for ep in _entry_points())
    return sorted(found)


class KnownArches:
    """``name in KnownArches()`` without scanning entry points for built-in names
    (importlib.metadata costs more than the whole parse of a small file)."""

    def __contains__(self, arch) -> bool:
        return arch in builtin_names() or arch in names()

    def __iter__(self):
        return iter(names())


def get(arch: str):
    """An instance of the policy called ``arch``."""
    from .base import Policy
    if arch in builtin_names():
        mod = importlib.import_module(f"{__name__}.{_module_name(arch)}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Policy) and obj is not Policy \
                    and getattr(obj, "name", None) == arch:
                return obj()
    for ep in _entry_points():
        if ep.name == arch:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Policy)):
                raise UnknownPolicy(f"entry point {ep.value} for `{arch}` is not a Policy subclass")
            inst = cls()
            inst.name = arch
            return inst
    raise UnknownPolicy(unknown(arch))


def unknown(*arches: str) -> str:
    """The message for names that are no policy, with the ones there are."""
    return f"unknown architecture {', '.join(f'`{a}`' for a in arches) or '(none)'}; known: {', '.join(names())}"
