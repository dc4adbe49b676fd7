"""Rules the resolver takes from outside its dependency data: vetoes of version combinations.

A :class:`Veto` says that some candidates of several projects must not be selected together
(``tensorflow~=2.1.0`` with ``h5py>=3``), or that some candidates of one project must not be
selected at all. The solver adds it as an incompatibility once every project it names is in the
graph, so it is learned from like any dependency: the result is the same whatever order the
search happens to take, and a failed resolution names the veto and its reason. A veto can only
remove resolutions, never make one valid. Prescriptions (:mod:`prescriptions`) compile into these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from resolver.models import Candidate

__all__ = ["Condition", "Veto"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True)
class Condition:
    """The candidates of one project a veto is about: those for which ``accepts`` is true.

    ``accepts`` sees the whole :class:`Candidate`, its index included, so a condition can name
    the builds of one index only; ``text`` renders it for reports (``"h5py>=3"``).
    """

    project: str
    accepts: Callable[[Candidate], bool]
    text: str


@dataclass(frozen=True, slots=True)
class Veto:
    """Candidates matching every condition at once make a resolution invalid.

    ``key`` identifies the veto for deduplication (a group of N packages is registered once per
    member, yet is one veto); ``source`` names the rule, ``reason`` says why.
    """

    conditions: tuple[Condition, ...]
    reason: str
    source: str
    key: str = ""

    projects: frozenset[str] = field(init=False, compare=False, repr=False)
    """The projects the conditions are about (worked out once: the solver asks for every veto)."""

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError("a veto needs at least one condition")
        object.__setattr__(self, "projects", frozenset(c.project for c in self.conditions))
