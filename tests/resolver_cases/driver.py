"""A real sans-IO loop over an in-memory index, for the resolver tests.

An index is ``{"project": {"version": {"requires": [...], "requires_python": ..., "yanked": ...,
"unavailable": "reason"}}}``: what a simple page and PEP 658 metadata would say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from resolver import Candidate, NoSolution, Request, Resolution, Resolver, ResolverOptions
from resolver.units import Veto

Index = Mapping[str, Mapping[str, Mapping[str, Any]]]

#: CPython 3.11.4 on x86_64 Linux.
DEFAULT_ENVIRONMENT: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.4",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "6.1.0",
    "platform_system": "Linux",
    "platform_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0",
    "python_full_version": "3.11.4",
    "python_version": "3.11",
    "sys_platform": "linux",
}


@dataclass
class Run:
    """What one resolution did: its outcome and every Request, in order."""

    outcome: Resolution | NoSolution
    requests: list[Request] = field(default_factory=list)

    @property
    def resolution(self) -> Resolution:
        assert isinstance(self.outcome, Resolution), getattr(self.outcome, "report", self.outcome)
        return self.outcome

    @property
    def failure(self) -> NoSolution:
        assert isinstance(self.outcome, NoSolution), self.outcome
        return self.outcome

    def metadata_asked(self) -> list[tuple[str, str]]:
        return [pair for request in self.requests for pair in request.metadata]


def normalize_index(index: Index) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    return {canonicalize_name(name): releases for name, releases in index.items()}


def feed(resolver: Resolver, index: Index, request: Request) -> None:
    """Answer one Request from the index, as an app would after fetching."""
    for project in request.projects:
        releases = index.get(project, {})
        resolver.provide_candidates(
            project,
            [
                Candidate(
                    version,
                    requires_python=info.get("requires_python"),
                    yanked=bool(info.get("yanked", False)),
                    preference=float(info.get("preference", 0.0)),
                    index=info.get("index"),
                )
                for version, info in releases.items()
            ],
        )
    for project, version in request.metadata:
        info = index[project][version]
        if "unavailable" in info:
            resolver.metadata_unavailable(project, version, info["unavailable"])
        else:
            resolver.provide_metadata(project, version, info.get("requires", []))


def resolve(
    index: Index,
    requested: Sequence[str],
    *,
    constraints: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    options: ResolverOptions | None = None,
    vetoes: Sequence[Veto] = (),
    skip: Sequence[str] = (),
) -> Run:
    index = normalize_index(index)
    resolver = Resolver(
        requested,
        constraints=constraints,
        environment={**DEFAULT_ENVIRONMENT, **(environment or {})},
        options=options or ResolverOptions(),
        vetoes=vetoes,
        skip=skip,
    )
    run_requests: list[Request] = []
    while True:
        try:
            step = resolver.step()
        except NoSolution as failure:
            return Run(failure, run_requests)
        if isinstance(step, Resolution):
            return Run(step, run_requests)
        assert step.projects or step.metadata, "an empty Request would deadlock the app"
        run_requests.append(step)
        feed(resolver, index, step)
