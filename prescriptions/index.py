"""Compiled units by normalized package name, so a request only looks at units for its packages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from packaging.utils import canonicalize_name

from prescriptions.compiler import CompiledUnit

__all__ = ["UnitIndex"]


def __dir__() -> list[str]:
    return __all__


class UnitIndex:
    """An immutable lookup of compiled units by :attr:`CompiledUnit.package`.

    Lookups return units in load order whatever the order of the names asked for, so results are
    reproducible.
    """

    __slots__ = ("_by_kind", "_by_name", "_by_package", "_units", "_unkeyed")

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

    def for_package(self, name: str) -> tuple[CompiledUnit, ...]:
        """The units bound to package *name* (any spelling; it is normalized)."""
        return tuple(self._units[position] for position in self._by_package.get(canonicalize_name(name), ()))

    def select(self, names: Iterable[str], *, unkeyed: bool = True) -> tuple[CompiledUnit, ...]:
        """The units bound to any of *names*, plus (with *unkeyed*) those bound to none, in load order."""
        positions: set[int] = set(self._unkeyed) if unkeyed else set()
        for name in names:
            positions.update(self._by_package.get(canonicalize_name(name), ()))
        return tuple(self._units[position] for position in sorted(positions))
