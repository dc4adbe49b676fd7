"""Server-side resolution: the resolver's sans-IO loop fed from the merged index, concurrently.

For every project the resolver asks about, the merged page gives the files; each file is judged
against the client's machine (tags, and what its index and its analysed facts say it needs),
and each version is offered once, through its best fitting file. Core metadata of the chosen
files is fetched in concurrent batches, as the resolver asks for it.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from index_proxy.files import MetadataUnavailable
from index_proxy.machine import file_needs
from index_proxy.merge import ServedFile
from index_proxy.pages import ProjectUnavailable, Undecidable
from index_proxy.services import Services
from index_proxy.store.analysis import StoredFacts
from index_proxy.store.blobs import DigestMismatch
from index_proxy.upstreams.base import UpstreamFileError
from prescriptions.pipeline import Annotations, Evaluation, Note, Pipeline, ResolvedGraph, ResolvedPin
from resolver import ROOT, Candidate, NoSolution, Resolution, ResolutionTooDeep, Resolver, ResolverOptions
from resolver.environment import Environment
from resolver.fit import FileNeeds, RankKey, rank_key, unmet_need
from resolver.search import ImprovementSearch, ScoredResolution, SearchStats, Trial
from resolver.units import Veto

__all__ = [
    "ROOT",
    "Advice",
    "AdviceOutcome",
    "BootRefused",
    "ChosenFile",
    "NoSolution",
    "ResolveOutcome",
    "file_path",
    "resolve",
]

#: Rounds of learning from one resolution (vetoes on who introduced a package, skips, additions).
_LEARNING_ROUNDS = 8

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

# The prescription vetoes of a project that its candidates can meet (see _Attempt._applicable), by
# project, numbered candidate set and vetoes; bounded.
_APPLICABLE_LIMIT = 20_000
_APPLICABLE: dict[tuple[str, int | None, tuple[int, ...]], tuple[tuple[Veto, ...], list[Veto]]] = {}
_CANDIDATE_SETS: dict[tuple[str, tuple[tuple[str, str | None, str | None], ...]], int] = {}
_SET_NUMBERS = itertools.count()


@dataclass(frozen=True, slots=True)
class ChosenFile:
    served: ServedFile
    reason: str
    rejected: tuple[tuple[str, str], ...] = ()  # (filename, why it does not fit)


@dataclass(frozen=True, slots=True)
class Advice:
    """The rules of one request and how long to look for a better-scoring resolution."""

    pipeline: Pipeline
    advisories_for: Callable[[Sequence[str]], Awaitable[Mapping[str, Sequence[Any]]]] | None = None
    budget_seconds: float = 1.0
    seed: int = 0
    max_trials: int = 200


@dataclass
class AdviceOutcome:
    recommendation_type: str
    score: float
    first_score: float
    justification: tuple[Note, ...]
    stack_info: tuple[Note, ...]
    advised_manifest_changes: tuple[Any, ...]
    search: SearchStats
    search_seconds: float
    seed: int


class BootRefused(Exception):
    """A boot prescription refused the request before resolving (its ``not_acceptable``)."""

    def __init__(self, reason: str, stack_info: tuple[Note, ...]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stack_info = stack_info


@dataclass
class ResolveOutcome:
    resolution: Resolution
    files: dict[str, ChosenFile]  # project -> the file that carries its pinned version
    seconds: float
    metadata_fetched: int
    candidates: dict[str, int] = field(default_factory=dict)
    advice: AdviceOutcome | None = None


class _Driver:
    def __init__(self, services: Services, environment: Environment, advice: Advice | None = None) -> None:
        self.services = services
        self.environment = environment
        self.advice = advice
        self.pipeline = advice.pipeline if advice is not None else None
        self.priority = services.pages.priority
        self.index_urls = {index.name: index.url for index in services.config.indexes}
        # Kept across the resolutions of one request (the improvement search runs many).
        self._candidates: dict[str, list[Candidate]] = {}
        self._candidate_sets: dict[str, int] = {}
        self._requires: dict[tuple[str, str], list[str] | BaseException] = {}
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
        wanted = [p for p in projects if p not in self._candidates]
        if wanted:
            found = await self._load_candidates(wanted)
            self._candidates.update(zip(wanted, found, strict=True))
        return [self._candidates[p] for p in projects]

    def known_candidates(self, project: str) -> list[Candidate] | None:
        """The candidates of *project* if they were loaded in this request already."""
        return self._candidates.get(project)

    def candidate_set(self, project: str) -> int | None:
        """A number that is the same for the same candidates of *project* (what each offers:
        version, index), in any request; None while they are not loaded."""
        known = self._candidate_sets.get(project)
        if known is None:
            candidates = self._candidates.get(project)
            if candidates is None:
                return None
            signature = (project, tuple((c.version, c.index, c.index_url) for c in candidates))
            known = _CANDIDATE_SETS.get(signature)
            if known is None:
                if len(_CANDIDATE_SETS) >= _APPLICABLE_LIMIT:
                    _CANDIDATE_SETS.clear()  # numbers are never reused: a cleared set only misses
                known = _CANDIDATE_SETS[signature] = next(_SET_NUMBERS)
            self._candidate_sets[project] = known
        return known

    async def _load_candidates(self, projects: Sequence[str]) -> list[list[Candidate]]:
        if self.advice is not None and self.advice.advisories_for is not None:
            assert self.pipeline is not None
            self.pipeline.add_advisories(await self.advice.advisories_for(projects))
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
        pipeline = self.pipeline
        scores: dict[str, float] = {}
        for served in wheels:
            stored = facts.get(served.file.sha256 or "")
            needs = _needs(served, stored, self.priority.get(served.index, 99))
            why = unmet_need(needs, self.environment)
            assert served.version is not None
            if why is None and pipeline is not None:
                url = self.index_urls.get(served.index)
                why = pipeline.sieve(project, served.version, served.index, url)
                if why is None:
                    scores[served.file_id] = pipeline.file_score(project, served.version, served.index, url)
            if why is not None:
                rejected.setdefault(served.version, []).append((served.file.filename, why))
                continue
            by_version.setdefault(served.version, []).append(
                (rank_key(needs, self.environment), served, needs)
            )
        candidates = []
        for version, ranked in by_version.items():
            # A prescription's score for a build (an index of builds for this machine) comes first.
            ranked.sort(
                key=lambda item: (bool(item[1].file.yanked), -scores.get(item[1].file_id, 0.0), item[0])
            )
            key, best, best_needs = ranked[0]
            reason = (
                "built for this machine"
                if not key.generic
                else f"best tag ({_best_tag(best_needs.tags, self.environment)})"
            )
            if best.hardware is not None:
                reason += f", from hardware index {best.index!r}"
            if scores.get(best.file_id, 0.0) > 0:
                reason += f", preferred by a prescription (score {scores[best.file_id]:+.2f})"
            self.chosen[(project, _normal(version))] = ChosenFile(
                best, reason, tuple(rejected.get(version, ()))
            )
            candidates.append(
                Candidate(
                    version=version,
                    requires_python=best.file.requires_python,
                    yanked=all(bool(s.file.yanked) for _, s, _ in ranked),
                    index=best.index,
                    index_url=self.index_urls.get(best.index),
                )
            )
        self.unfit[project] = {v: why for v, why in rejected.items() if v not in by_version}
        self.candidate_counts[project] = len(candidates)
        return candidates

    async def requires_dist(self, project: str, version: str) -> list[str]:
        key = (project, _normal(version))
        known = self._requires.get(key)
        if known is not None:
            if isinstance(known, BaseException):
                raise known
            return known
        chosen = self.chosen[key]
        try:
            async with self._limit:
                requires = await self.services.files.requires_dist(chosen.served.file_id)
        except (MetadataUnavailable, UpstreamFileError, DigestMismatch) as error:
            self._requires[key] = error
            raise
        self.metadata_fetched += 1
        self._requires[key] = requires
        return requires

    async def run(
        self,
        resolver: Resolver,
        trial: Trial = Trial(),  # noqa: B008 - frozen
        drop_edges: frozenset[tuple[str, str, str]] = frozenset(),
    ) -> Resolution:
        dropped: dict[tuple[str, str], set[str]] = {}
        for parent, version, child in drop_edges:
            dropped.setdefault((parent, _normal(version)), set()).add(child)
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
                    lines = _without(result, dropped.get((project, _normal(version)), set()))
                    if trial.replace:
                        lines = [trial.rewrite(line) for line in lines]
                    resolver.provide_metadata(project, version, lines)

    def graph(self, resolution: Resolution) -> ResolvedGraph:
        pins = {}
        for project, version in resolution.pins.items():
            served = self.chosen[(project, _normal(version))].served
            pins[project] = ResolvedPin(version, served.index, self.index_urls.get(served.index))
        introduced: dict[str, set[str]] = {}
        for dependant, edges in resolution.dependencies.items():
            for project, _ in edges:
                introduced.setdefault(project, set()).add(dependant)
        return ResolvedGraph(pins, {project: frozenset(who) for project, who in introduced.items()})


def _without(lines: list[str], names: set[str]) -> list[str]:
    """Requirement lines minus those on *names* (a prescription dropped the edge)."""
    if not names:
        return lines
    kept = []
    for line in lines:
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement:
            kept.append(line)
            continue
        if name not in names:
            kept.append(line)
    return kept


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
    advice: Advice | None = None,
) -> ResolveOutcome:
    """Resolve for one machine; raises NoSolution (with its report), BootRefused, or the merge's errors.

    With *advice*, the request's prescriptions take part: boots first, then sieves, vetoes and
    skips inside every resolution, and, unless the recommendation type is ``latest``, an
    improvement search within the advice's budget for a better-scoring resolution.
    """
    started = time.perf_counter()
    driver = _Driver(services, environment, advice)
    options = options or ResolverOptions()
    if advice is None:
        resolver = Resolver(
            requirements, constraints=constraints, environment=dict(environment.markers), options=options
        )
        resolution = await driver.run(resolver)
        return _outcome(driver, resolution, started)

    pipeline = advice.pipeline
    boot = pipeline.boot(_names(requirements))
    if boot.abort is not None:
        raise BootRefused(boot.abort, boot.notes)
    attempt = _Attempt(driver, requirements, constraints, environment, options, pipeline)
    resolution, evaluation = await attempt.run(Trial())
    first = _scored(resolution, evaluation)
    latest = pipeline.context.recommendation_type == "latest"
    search = ImprovementSearch(
        first, seed=advice.seed, max_trials=advice.max_trials, older_versions=not latest
    )
    best = (resolution, evaluation)
    search_started = time.perf_counter()
    deadline = search_started + advice.budget_seconds
    while time.perf_counter() < deadline and (trial := search.propose()) is not None:
        try:
            tried = await attempt.run(trial)
        except (NoSolution, ResolutionTooDeep, ProjectUnavailable, Undecidable):
            # A trial is optional: what breaks it (an alternative no index can serve...) only
            # means it is not a better resolution.
            search.record(trial, None)
            continue
        scored = _scored(*tried)
        search.record(trial, scored)
        if search.best[1] is scored:
            best = tried
    resolution, evaluation = best
    applied = [r.source for r in search.best[0].replace]
    annotations: Annotations = pipeline.annotate(driver.graph(resolution), applied)
    outcome = _outcome(driver, resolution, started)
    outcome.advice = AdviceOutcome(
        recommendation_type=pipeline.context.recommendation_type,
        score=evaluation.score,
        first_score=first.score,
        justification=_unique(evaluation.justification + annotations.justification),
        stack_info=_unique(boot.notes + annotations.stack_info),
        advised_manifest_changes=annotations.advised_manifest_changes,
        search=search.stats,
        search_seconds=time.perf_counter() - search_started,
        seed=advice.seed,
    )
    return outcome


class _Attempt:
    """One resolution of a trial, repeated while the rules learn something from the result."""

    def __init__(
        self,
        driver: _Driver,
        requirements: Sequence[str],
        constraints: Sequence[str],
        environment: Environment,
        options: ResolverOptions,
        pipeline: Pipeline,
    ) -> None:
        self.driver = driver
        self.requirements = list(requirements)
        self.constraints = list(constraints)
        self.markers = dict(environment.markers)
        self.options = options
        self.pipeline = pipeline
        self.skip = set(pipeline.skipped())
        self.learned: dict[str, list[Veto]] = {}
        self.rule_vetoes: dict[str, list[Veto]] = {}
        self.drop_edges: set[tuple[str, str, str]] = set()
        self.additions: list[str] = []

    def vetoes_for(self, project: str) -> list[Veto]:
        rules = self.rule_vetoes.get(project)
        if rules is None:
            rules = self._applicable(project, self.pipeline.vetoes_for(project))
            self.rule_vetoes[project] = rules
        return [*rules, *self.learned.get(project, ())]

    def _applicable(self, project: str, vetoes: list[Veto]) -> list[Veto]:
        """*vetoes* less those whose condition on *project* none of its candidates meets.

        Such a veto can never apply (the solver skips it too, having built a mask of nothing),
        and with tens of thousands of rules most vetoes are about versions an index does not
        offer. The solver's candidates of a project are among the driver's, never more. The
        rules' vetoes are the same objects in every request and a project's candidates mostly
        too, so the answer is kept for them.
        """
        candidates = self.driver.known_candidates(project)
        if candidates is None or not vetoes:
            return vetoes
        key = (project, self.driver.candidate_set(project), tuple(map(id, vetoes)))
        known = _APPLICABLE.get(key)
        if known is not None and all(map(operator.is_, known[0], vetoes)):
            return known[1]
        kept = [
            veto
            for veto in vetoes
            if all(
                any(condition.accepts(c) for c in candidates)
                for condition in veto.conditions
                if condition.project == project
            )
        ]
        if len(_APPLICABLE) >= _APPLICABLE_LIMIT:
            del _APPLICABLE[next(iter(_APPLICABLE))]
        _APPLICABLE[key] = (tuple(vetoes), kept)
        return kept

    async def run(self, trial: Trial) -> tuple[Resolution, Evaluation]:
        for _ in range(_LEARNING_ROUNDS):
            requirements = [trial.rewrite(r) for r in [*self.requirements, *self.additions]]
            resolver = Resolver(
                requirements,
                constraints=[*self.constraints, *trial.constraints()],
                environment=self.markers,
                options=self.options,
                vetoes=self.vetoes_for,
                skip=self.skip,
            )
            resolution = await self.driver.run(resolver, trial, frozenset(self.drop_edges))
            evaluation = self.pipeline.evaluate(self.driver.graph(resolution))
            if evaluation.settled or not self._learn(evaluation):
                return resolution, evaluation
        return resolution, evaluation

    def _learn(self, evaluation: Evaluation) -> bool:
        """Take in what *evaluation* learned; False when all of it was known already."""
        new = False
        for veto in evaluation.vetoes:
            key = f"{veto.source}:{sorted(c.text for c in veto.conditions)}"
            if any(v.key == key for v in self.learned.get(next(iter(veto.projects)), ())):
                continue
            learned = Veto(veto.conditions, veto.reason, veto.source, key=key)
            for project in veto.projects:
                self.learned.setdefault(project, []).append(learned)
            new = True
        if not evaluation.skip <= self.skip:
            self.skip |= evaluation.skip
            new = True
        if not evaluation.drop_edges <= self.drop_edges:
            self.drop_edges |= evaluation.drop_edges
            new = True
        for requirement in evaluation.add:
            if requirement not in self.additions:
                self.additions.append(requirement)
                new = True
        return new


def _scored(resolution: Resolution, evaluation: Evaluation) -> ScoredResolution:
    return ScoredResolution(
        score=evaluation.score,
        pins=resolution.pins,
        contributions=evaluation.contributions,
        movable=evaluation.movable,
        alternatives=evaluation.alternatives,
    )


def _names(requirements: Sequence[str]) -> list[str]:
    names = []
    for requirement in requirements:
        try:
            names.append(canonicalize_name(Requirement(requirement).name))
        except InvalidRequirement:
            continue
    return names


def _unique(notes: tuple[Note, ...]) -> tuple[Note, ...]:
    return tuple(dict.fromkeys(notes))


def _outcome(driver: _Driver, resolution: Resolution, started: float) -> ResolveOutcome:
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
