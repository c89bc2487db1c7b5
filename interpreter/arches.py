"""The architectures as the front ends hand them to dsl/, which imports nothing of
interpreter/: their names, and the hardware fields each one's policy models."""
from __future__ import annotations

from mmscn.dsl.resolve import Arches

from . import policies


def known_arches() -> Arches:
    """Every installed architecture, with its hardware fields, for the resolver to check."""
    return Arches(policies.KnownArches(), hardware_fields)


def hardware_fields(arch: str):
    return policies.get(arch).hardware_fields
