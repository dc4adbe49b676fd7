"""Units into instances: one per ``match`` entry (a ``step.Group`` one per member), each keyed by package.

Thoth registers a unit once per ``match`` entry, all sharing one ``run``; that is what makes units
indexable by package name. A ``step.Group`` of N packages becomes N instances, each matching one
member while the others are already resolved (order-agnostic "must not coexist"). A unit with
``times: 0`` is off and compiles to nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name

from prescriptions.model import Match, StateMatch, Unit

__all__ = ["CompiledUnit", "compile_units", "package_key"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True)
class CompiledUnit:
    """One registered instance of :attr:`unit`, running for :attr:`match`."""

    unit: Unit[Any]
    match: Match | None
    """The entry this instance runs for; ``None`` for a boot or wrap stated without ``match``."""
    package: str | None
    """The normalized package this instance can only ever fire for; ``None``: not package-bound."""


def package_key(match: Match | None) -> str | None:
    """The one package *match* is bound to: the matched package, else one its state requires.

    A stride or wrap whose state needs ``tensorflow`` resolved can only fire when tensorflow is
    resolved, so it is found by looking up tensorflow.
    """
    if match is None:
        return None
    if match.package_name is not None:
        return canonicalize_name(match.package_name)
    if match.package_version is not None:
        return match.package_version.name
    if match.state is not None:
        for package in match.state.resolved_dependencies:
            if package.name is not None:
                return package.name
    return None


def compile_units(units: Iterable[Unit[Any]]) -> tuple[CompiledUnit, ...]:
    """Every instance of *units*, in their order."""
    compiled: list[CompiledUnit] = []
    for unit in units:
        if unit.should_include.times == 0:
            continue
        if not unit.match:
            compiled.append(CompiledUnit(unit, None, None))
        elif unit.kind == "step.Group":
            for match in unit.match:
                compiled.extend(_group_instances(unit, match))
        else:
            compiled.extend(CompiledUnit(unit, match, package_key(match)) for match in unit.match)
    return tuple(compiled)


def _group_instances(unit: Unit[Any], match: Match) -> Iterable[CompiledUnit]:
    for position, member in enumerate(match.group):
        others = match.group[:position] + match.group[position + 1 :]
        instance = replace(
            match,
            package_version=member,
            state=StateMatch(resolved_dependencies=others, line=match.line),
            group=(),
        )
        yield CompiledUnit(unit, instance, member.name)
