"""The values that cross the resolver's sans-IO boundary: what the app provides and gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "ROOT",
    "Candidate",
    "PrereleaseMode",
    "Request",
    "Resolution",
    "ResolverOptions",
    "ResolverStats",
]

#: The dependant key of the user's own requirements in :attr:`Resolution.dependencies` (no
#: normalized project name can contain ``<``).
ROOT: Final = "<root>"

PrereleaseMode = Literal["if-necessary-or-explicit", "allow", "disallow"]
"""How pre-releases are admitted (PEP 440 "Handling of pre-releases"):

- ``"if-necessary-or-explicit"``: a pre-release is admitted by a specifier that names one
  (``>=2.0b1``), or by a specifier no usable final release satisfies; a direct requirement or a
  constraint naming a pre-release admits that project's pre-releases everywhere;
- ``"allow"``: always admitted;
- ``"disallow"``: never admitted.
"""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One version of a project that has at least one file fitting the client.

    ``preference`` breaks ties between equal versions (higher wins); the newest version is
    always tried first.
    """

    version: str
    requires_python: str | None = None
    yanked: bool = False
    preference: float = 0.0
    index: str | None = None
    """The name of the index the version is offered from (its best file's), for rules on indexes."""
    index_url: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """What the resolver needs before it can go on; never empty.

    ``projects`` are normalized names whose candidate lists are needed
    (:meth:`Resolver.provide_candidates`); ``metadata`` are ``(project, version)`` pairs whose
    Requires-Dist are needed (:meth:`Resolver.provide_metadata` or
    :meth:`Resolver.metadata_unavailable`). Some are prefetches: likely next picks, asked for
    now so that the app can fetch them in the same concurrent batch.
    """

    projects: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ResolverStats:
    """Counts for one resolution; ``seconds`` is time spent inside the resolver's own calls
    (``step`` and the ``provide_*`` methods), not the app's fetching."""

    decisions: int = 0
    conflicts: int = 0
    propagations: int = 0
    metadata_requests: int = 0
    candidate_requests: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Resolution:
    """A set of pins satisfying every requirement, for the one environment resolved for.

    ``dependencies`` maps each dependant (a pinned project, or :data:`ROOT` for the user's
    requirements) to the ``(project, requirement string)`` edges that hold in this resolution,
    the requirement as written in the metadata (markers included): the "via" of each pin.
    ``extras`` names, for every pinned project, the extras it was selected with.
    """

    pins: dict[str, str]
    extras: dict[str, frozenset[str]]
    dependencies: dict[str, list[tuple[str, str]]]
    stats: ResolverStats = field(default_factory=ResolverStats)


@dataclass(frozen=True, slots=True)
class ResolverOptions:
    """``max_steps`` bounds decisions plus conflicts: past it the resolver gives up with
    :class:`~resolver.errors.ResolutionTooDeep` (pip's resolver stops at 200,000 rounds)."""

    prereleases: PrereleaseMode = "if-necessary-or-explicit"
    max_steps: int = 200_000

    def __post_init__(self) -> None:
        if self.prereleases not in ("if-necessary-or-explicit", "allow", "disallow"):
            raise ValueError(f"unknown prereleases mode {self.prereleases!r}")
        if self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
