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

    __slots__ = ("_by_package", "_units", "_unkeyed")

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

    def for_package(self, name: str) -> tuple[CompiledUnit, ...]:
        """The units bound to package *name* (any spelling; it is normalized)."""
        return tuple(self._units[position] for position in self._by_package.get(canonicalize_name(name), ()))

    def select(self, names: Iterable[str], *, unkeyed: bool = True) -> tuple[CompiledUnit, ...]:
        """The units bound to any of *names*, plus (with *unkeyed*) those bound to none, in load order."""
        positions: set[int] = set(self._unkeyed) if unkeyed else set()
        for name in names:
            positions.update(self._by_package.get(canonicalize_name(name), ()))
        return tuple(self._units[position] for position in sorted(positions))
