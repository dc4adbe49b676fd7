"""Compiled units by normalized package name, so a request only looks at units for its packages."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Iterator

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from prescriptions.compiler import CompiledUnit
from prescriptions.model import ShouldInclude

__all__ = ["UnitIndex"]


def __dir__() -> list[str]:
    return __all__


class UnitIndex:
    """An immutable lookup of compiled units by :attr:`CompiledUnit.package`.

    Lookups return units in load order whatever the order of the names asked for, so results are
    reproducible.
    """

    __slots__ = (
        "_by_kind",
        "_by_name",
        "_by_package",
        "_gate_values",
        "_gates",
        "_package_gates",
        "_units",
        "_unkeyed",
    )

    def __init__(self, compiled: Iterable[CompiledUnit]) -> None:
        self._units: tuple[CompiledUnit, ...] = tuple(compiled)
        by_package: dict[str, list[int]] = {}
        unkeyed: list[int] = []
        for position, unit in enumerate(self._units):
            if unit.package is None:
                unkeyed.append(position)
            else:
                by_package.setdefault(unit.package, []).append(position)
        self._by_package: dict[str, tuple[int, ...]] = {
            name: tuple(found) for name, found in by_package.items()
        }
        self._unkeyed: tuple[int, ...] = tuple(unkeyed)
        by_kind: dict[str, list[int]] = {}
        self._by_name: dict[str, int] = {}
        for position, unit in enumerate(self._units):
            by_kind.setdefault(unit.unit.kind, []).append(position)
            self._by_name.setdefault(unit.unit.name, position)
        self._by_kind: dict[str, tuple[int, ...]] = {kind: tuple(found) for kind, found in by_kind.items()}
        # Tens of thousands of units share a handful of distinct should_include gates (most say
        # only adviser_pipeline: true): a request judges each distinct gate once, not each unit.
        signatures: dict[Hashable, int] = {}
        gate_values: list[ShouldInclude] = []
        self._gates: dict[str, int] = {}
        for unit in self._units:
            if unit.unit.name not in self._gates:
                gate = unit.unit.should_include
                signature = _signature(gate)
                if signature not in signatures:
                    signatures[signature] = len(gate_values)
                    gate_values.append(gate)
                self._gates[unit.unit.name] = signatures[signature]
        self._gate_values: tuple[ShouldInclude, ...] = tuple(gate_values)
        self._package_gates: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}
        for name, positions in self._by_package.items():
            units = [self._units[position].unit for position in positions]
            self._package_gates[name] = (
                tuple(
                    dict.fromkeys(self._gates[u.name] for u in units if u.should_include.dependencies is None)
                ),
                tuple(dict.fromkeys(u.name for u in units if u.should_include.dependencies is not None)),
            )

    def __len__(self) -> int:
        return len(self._units)

    def __iter__(self) -> Iterator[CompiledUnit]:
        return iter(self._units)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnitIndex) and self._units == other._units

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<UnitIndex: {len(self._units)} units, {len(self._by_package)} packages>"

    @property
    def packages(self) -> frozenset[str]:
        """The normalized names that have package-bound units."""
        return frozenset(self._by_package)

    @property
    def unkeyed(self) -> tuple[CompiledUnit, ...]:
        """Units not bound to one package (boots without match, index sieves, plain wraps...)."""
        return tuple(self._units[position] for position in self._unkeyed)

    def of_kind(self, kind: str) -> tuple[CompiledUnit, ...]:
        """Every instance of units of type *kind* (``"sieve.SkipPackage"``...), in load order."""
        return tuple(self._units[position] for position in self._by_kind.get(kind, ()))

    def named(self, name: str) -> CompiledUnit | None:
        """The first instance of the unit with full name *name* (``namespace.Name``)."""
        position = self._by_name.get(name)
        return None if position is None else self._units[position]

    def gate_id(self, name: str) -> int | None:
        """The same number for units whose ``should_include`` means the same (lines aside); None
        for a name not in the index."""
        return self._gates.get(name)

    def gate(self, gate_id: int) -> ShouldInclude:
        """The ``should_include`` numbered *gate_id* (one of the units that have it)."""
        return self._gate_values[gate_id]

    def package_gates(self, name: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """What decides which units of package *name* (normalized) take part in a request: the
        distinct gates of its units without ``dependencies``, and the names of those with."""
        return self._package_gates.get(name, ((), ()))

    def for_package(self, name: str) -> tuple[CompiledUnit, ...]:
        """The units bound to package *name* (any spelling; it is normalized)."""
        return tuple(self._units[position] for position in self._by_package.get(canonicalize_name(name), ()))

    def select(self, names: Iterable[str], *, unkeyed: bool = True) -> tuple[CompiledUnit, ...]:
        """The units bound to any of *names*, plus (with *unkeyed*) those bound to none, in load order."""
        positions: set[int] = set(self._unkeyed) if unkeyed else set()
        for name in names:
            positions.update(self._by_package.get(canonicalize_name(name), ()))
        return tuple(self._units[position] for position in sorted(positions))


def _signature(value: object) -> Hashable:
    """*value* (a gate or a part of it) as nested tuples, without the ``line`` fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                _signature(getattr(value, part.name))
                for part in dataclasses.fields(value)
                if part.name != "line"
            ),
        )
    if isinstance(value, tuple | list):
        return tuple(_signature(item) for item in value)
    if isinstance(value, SpecifierSet):
        return str(value)
    if isinstance(value, dict):
        return tuple(sorted((str(key), _signature(item)) for key, item in value.items()))
    assert isinstance(value, Hashable)
    return value
