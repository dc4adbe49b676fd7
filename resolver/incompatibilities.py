"""Incompatibilities as data: the structured form of a failed resolution.

The solver core works on integer ids and index intervals; when it fails, the resolver turns the
derivation of the failure into these values (names, version lists, rendered specifiers), which
:mod:`resolver.explain` writes out and the app can store or serve as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Incompatibility", "IncompatibilityKind", "Term"]

IncompatibilityKind = Literal[
    "root",  # the user's requirement
    "root-required",  # the requirements themselves must be resolved
    "dependency",  # a version's Requires-Dist (or an extra's tie to its project's version)
    "constraint",  # a user constraint
    "requires-python",  # versions whose Requires-Python the environment does not satisfy
    "unavailable",  # a version whose metadata could not be had, with the app's reason
    "vetoed",  # a rule (resolver.units.Veto) forbids these candidates together, with its reason
    "derived",  # learned from two others during conflict resolution
]
"""What an incompatibility says; every kind but ``"derived"`` is an external fact."""


@dataclass(frozen=True, slots=True)
class Term:
    """A statement about one package: selected at a version in ``versions`` (``positive``),
    or not selected at any of them.

    ``specifier`` renders the version set over the project's candidates (``""`` for all of
    them, ``"==1.0"``, ``">=1.0,<2.0"``, ``"<1.0 | >=2.0"``); ``versions`` lists it.
    """

    project: str
    extra: str | None
    positive: bool
    versions: tuple[str, ...]
    all_versions: bool
    specifier: str

    @property
    def package(self) -> str:
        """``"project"``, or ``"project[extra]"`` for the virtual package of an extra."""
        return f"{self.project}[{self.extra}]" if self.extra else self.project

    def __str__(self) -> str:
        return f"{self.package}{self.specifier}" if self.versions or self.all_versions else self.package


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """Terms that cannot all hold, why, and (when derived) from which two incompatibilities.

    ``causes`` are ids of other incompatibilities in the same :attr:`NoSolution.incompatibilities`
    tuple. The root package does not appear among ``terms``: it is implied by ``"root"``,
    ``"constraint"`` and by derived incompatibilities whose ``involves_root`` is set.
    ``dependency`` is the requirement text of ``"root"``, ``"dependency"`` and ``"constraint"``
    (kept even when the requirement matches no version and its term was dropped), ``hint``
    says why such a requirement matches nothing, ``requires_python`` / ``python_version`` and
    ``reason`` carry the other kinds' facts.
    """

    id: int
    kind: IncompatibilityKind
    terms: tuple[Term, ...]
    causes: tuple[int, int] | None = None
    involves_root: bool = False
    dependency: str | None = None
    hint: str | None = None
    requires_python: str | None = None
    python_version: str | None = None
    reason: str | None = None

    def __str__(self) -> str:
        from resolver.explain import describe

        return describe(self)
