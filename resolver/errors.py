"""The resolver's exceptions: one base, data on each."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resolver.incompatibilities import Incompatibility
    from resolver.models import ResolverStats

__all__ = ["NoSolution", "ResolutionTooDeep", "ResolverError", "ResolverUsageError"]


class ResolverError(Exception):
    """Base of every exception the resolver raises."""


class NoSolution(ResolverError):
    """The requirements cannot be satisfied in this environment.

    ``report`` is the readable derivation ("Because a==1.0 depends on b>=2 and ..., your
    requirements are unsatisfiable."); ``incompatibilities`` is the same derivation as data,
    causes first, the terminal incompatibility last.
    """

    def __init__(
        self,
        report: str,
        incompatibilities: tuple[Incompatibility, ...] = (),
        stats: ResolverStats | None = None,
    ) -> None:
        super().__init__(report)
        self.report = report
        self.incompatibilities = incompatibilities
        self.stats = stats


class ResolutionTooDeep(NoSolution):
    """The resolver gave up after ``steps`` steps (:attr:`ResolverOptions.max_steps`)."""

    def __init__(self, steps: int, stats: ResolverStats | None = None) -> None:
        super().__init__(
            f"The resolver gave up after {steps} steps (ResolverOptions.max_steps): the requirements"
            " may be satisfiable, but resolving them took too long.",
            (),
            stats,
        )
        self.steps = steps


class ResolverUsageError(ResolverError, ValueError):
    """The resolver was driven wrongly: a bad environment or requirement, an answer for a
    project or version it does not know, or a ``step()`` while an earlier need is unanswered."""
