"""Server-side resolution: the resolver's sans-IO loop fed from the merged index, concurrently.

For every project the resolver asks about, the merged page gives the files; each file is judged
against the client's machine (tags, and what its index and its analysed facts say it needs),
and each version is offered once, through its best fitting file. Core metadata of the chosen
files is fetched in concurrent batches, as the resolver asks for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from index_proxy.files import MetadataUnavailable
from index_proxy.machine import file_needs
from index_proxy.merge import ServedFile
from index_proxy.services import Services
from index_proxy.store.analysis import StoredFacts
from index_proxy.store.blobs import DigestMismatch
from index_proxy.upstreams.base import UpstreamFileError
from resolver import ROOT, Candidate, NoSolution, Resolution, Resolver, ResolverOptions
from resolver.environment import Environment
from resolver.fit import FileNeeds, RankKey, rank_key, unmet_need

__all__ = ["ROOT", "ChosenFile", "NoSolution", "ResolveOutcome", "file_path", "resolve"]

_CONCURRENCY = 16

# What a file needs depends on the file, its index's priority and its analysed facts, none of
# which a request changes, yet working it out (parsing the wheel's tags) was a good part of every
# request's candidate steps: keep it per file id, for the same ServedFile and StoredFacts objects
# (a page refresh or a facts reload makes new ones, and so a new entry). Bounded, oldest out.
_NEEDS_LIMIT = 50_000
_NEEDS: dict[str, tuple[ServedFile, StoredFacts | None, int, FileNeeds]] = {}

# Version strings normalized for the chosen-file keys; the same few hundred in every request.
_NORMAL_LIMIT = 100_000
_NORMAL: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class ChosenFile:
    served: ServedFile
    reason: str
    rejected: tuple[tuple[str, str], ...] = ()  # (filename, why it does not fit)


@dataclass
class ResolveOutcome:
    resolution: Resolution
    files: dict[str, ChosenFile]  # project -> the file that carries its pinned version
    seconds: float
    metadata_fetched: int
    candidates: dict[str, int] = field(default_factory=dict)


class _Driver:
    def __init__(self, services: Services, environment: Environment) -> None:
        self.services = services
        self.environment = environment
        self.priority = services.pages.priority
        self.chosen: dict[tuple[str, str], ChosenFile] = {}
        # project -> versions none of whose files fit, with why each file does not
        self.unfit: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self.metadata_fetched = 0
        self.candidate_counts: dict[str, int] = {}
        self._limit = asyncio.Semaphore(_CONCURRENCY)

    async def candidates(self, projects: Sequence[str]) -> list[list[Candidate]]:
        """The candidates of each project of one step: the pages concurrently, then the stored
        facts of all their wheels in one query (one per project cost a SQL round trip each
        whenever the facts cache had expired), then the fitting."""
        # Undecidable and ProjectUnavailable propagate: the API answers 502 for them.
        pages = await asyncio.gather(*(self.services.pages.load_project(p) for p in projects))
        wheels = {
            project: [s for s in merged.files if s.file.filename.endswith(".whl") and s.version is not None]
            for project, merged in zip(projects, pages, strict=True)
            if merged is not None
        }
        facts = await self.services.analysis.facts_for(
            list(dict.fromkeys(s.file.sha256 for files in wheels.values() for s in files if s.file.sha256))
        )
        return [
            self._fit(project, wheels[project], facts) if project in wheels else [] for project in projects
        ]

    def _fit(
        self, project: str, wheels: list[ServedFile], facts: Mapping[str, StoredFacts]
    ) -> list[Candidate]:
        by_version: dict[str, list[tuple[RankKey, ServedFile, FileNeeds]]] = {}
        rejected: dict[str, list[tuple[str, str]]] = {}
        for served in wheels:
            stored = facts.get(served.file.sha256 or "")
            needs = _needs(served, stored, self.priority.get(served.index, 99))
            why = unmet_need(needs, self.environment)
            assert served.version is not None
            if why is not None:
                rejected.setdefault(served.version, []).append((served.file.filename, why))
                continue
            by_version.setdefault(served.version, []).append(
                (rank_key(needs, self.environment), served, needs)
            )
        candidates = []
        for version, ranked in by_version.items():
            ranked.sort(key=lambda item: (bool(item[1].file.yanked), item[0]))
            key, best, best_needs = ranked[0]
            reason = (
                "built for this machine"
                if not key.generic
                else f"best tag ({_best_tag(best_needs.tags, self.environment)})"
            )
            if best.hardware is not None:
                reason += f", from hardware index {best.index!r}"
            self.chosen[(project, _normal(version))] = ChosenFile(
                best, reason, tuple(rejected.get(version, ()))
            )
            candidates.append(
                Candidate(
                    version=version,
                    requires_python=best.file.requires_python,
                    yanked=all(bool(s.file.yanked) for _, s, _ in ranked),
                )
            )
        self.unfit[project] = {v: why for v, why in rejected.items() if v not in by_version}
        self.candidate_counts[project] = len(candidates)
        return candidates

    async def requires_dist(self, project: str, version: str) -> list[str]:
        chosen = self.chosen[(project, _normal(version))]
        async with self._limit:
            requires = await self.services.files.requires_dist(chosen.served.file_id)
        self.metadata_fetched += 1
        return requires

    async def run(self, resolver: Resolver) -> Resolution:
        while True:
            step = resolver.step()
            if isinstance(step, Resolution):
                return step
            project_results = await self.candidates(step.projects) if step.projects else []
            for project, candidates in zip(step.projects, project_results, strict=True):
                resolver.provide_candidates(project, candidates)
            metadata_results = await asyncio.gather(
                *(self.requires_dist(p, v) for p, v in step.metadata), return_exceptions=True
            )
            for (project, version), result in zip(step.metadata, metadata_results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, MetadataUnavailable | UpstreamFileError | DigestMismatch):
                        raise result
                    resolver.metadata_unavailable(project, version, f"core metadata unavailable: {result}")
                else:
                    resolver.provide_metadata(project, version, result)


def _needs(served: ServedFile, stored: StoredFacts | None, priority: int) -> FileNeeds:
    cached = _NEEDS.get(served.file_id)
    if cached is not None and cached[0] is served and cached[1] is stored and cached[2] == priority:
        return cached[3]
    needs = file_needs(served, stored.facts if stored else None, priority)
    if len(_NEEDS) >= _NEEDS_LIMIT:
        del _NEEDS[next(iter(_NEEDS))]
    _NEEDS[served.file_id] = (served, stored, priority, needs)
    return needs


def _normal(version: str) -> str:
    normal = _NORMAL.get(version)
    if normal is None:
        try:
            normal = str(Version(version))
        except InvalidVersion:
            normal = version
        if len(_NORMAL) >= _NORMAL_LIMIT:
            del _NORMAL[next(iter(_NORMAL))]
        _NORMAL[version] = normal
    return normal


def _best_tag(tags: frozenset[str], environment: Environment) -> str:
    return min(tags, key=lambda tag: environment.tag_rank.get(tag, 1 << 30))


async def resolve(
    services: Services,
    requirements: Sequence[str],
    environment: Environment,
    *,
    constraints: Sequence[str] = (),
    options: ResolverOptions | None = None,
) -> ResolveOutcome:
    """Resolve for one machine; raises NoSolution (with its report) or the merge's errors."""
    started = time.perf_counter()
    driver = _Driver(services, environment)
    resolver = Resolver(
        requirements,
        constraints=constraints,
        environment=dict(environment.markers),
        options=options or ResolverOptions(),
    )
    resolution = await driver.run(resolver)
    files = {
        project: _with_newer_unfit(driver.chosen[(project, _normal(version))], driver.unfit, project, version)
        for project, version in resolution.pins.items()
    }
    return ResolveOutcome(
        resolution, files, time.perf_counter() - started, driver.metadata_fetched, driver.candidate_counts
    )


def _with_newer_unfit(
    chosen: ChosenFile, unfit: dict[str, dict[str, list[tuple[str, str]]]], project: str, pinned: str
) -> ChosenFile:
    """The pin's rejected files plus those of newer versions that have no file for this machine:
    why the newest release was not taken (its build needs a newer glibc, CUDA, CPU...)."""
    if not unfit.get(project):
        return chosen
    try:
        pin = Version(pinned)
        newer = [
            (filename, why)
            for version, rejected in sorted(unfit.get(project, {}).items(), key=lambda item: Version(item[0]))
            if Version(version) > pin
            for filename, why in rejected
        ]
    except InvalidVersion:
        return chosen
    return replace(chosen, rejected=chosen.rejected + tuple(newer)) if newer else chosen


def file_path(served: ServedFile) -> str:
    return f"/files/{served.file_id}/{quote(served.file.filename)}"
