"""The sans-IO resolver: PubGrub runs in the compiled core, names and metadata live here.

The app drives it::

    resolver = Resolver(["a>=1", "b[x]"], environment=marker_environment)
    while not isinstance(step := resolver.step(), Resolution):
        for project in step.projects:               # fetch these concurrently ...
            resolver.provide_candidates(project, candidates_of(project))
        for project, version in step.metadata:
            resolver.provide_metadata(project, version, requires_dist_of(project, version))

``step()`` runs the solver until it needs something it does not have, then returns every known
need at once, prefetches included, so the app can fetch a whole batch concurrently. It never
returns a :class:`Request` with nothing new in it. The answers must come before the next
``step()``; their order does not matter.

How the PubGrub packages map to the core's integer ids: package 0 is the root (one version,
depending on the requirements); every project the solver reaches gets an id, and every
``project[extra]`` a virtual package of its own with the project's versions, which depends on
``project==<same version>`` plus the extra's requirements (as pubgrub-rs/uv model extras), so
that ``a[x]`` and ``a`` always share a version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from resolver._core import Solver
from resolver._requirements import Dependency, MarkerEvaluator, check_environment, python_version
from resolver._versions import ProjectVersions, bounds_to_mask, mask_to_bounds, project_versions
from resolver.errors import NoSolution, ResolutionTooDeep, ResolverUsageError
from resolver.explain import report
from resolver.incompatibilities import Incompatibility, IncompatibilityKind, Term
from resolver.models import ROOT, Candidate, Request, Resolution, ResolverOptions, ResolverStats
from resolver.units import Veto

__all__ = ["Resolver"]

#: When a package under conflict is picked (it conflicted, or an earlier pick of it was ruled
#: out), the metadata of this many next-newest versions is prefetched with the pick's, since
#: backtracking will likely want them; after _MANY_TRIES rejected picks, _PREFETCH_MANY of them
#: (uv's batch prefetcher does the same to walk long version lists in few round trips).
_PREFETCH_CONFLICTING = 2
_MANY_TRIES = 5
_PREFETCH_MANY = 16

_Package = tuple[str, str | None]  # (project, extra)


@dataclass(frozen=True, slots=True)
class _Fact:
    """The payload of an external incompatibility in the core: what it says, for the report."""

    kind: IncompatibilityKind
    dependency: str | None = None
    hint: str | None = None
    requires_python: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Unavailable:
    reason: str


class Resolver:
    """Resolve ``requirements`` for one marker environment (all 11 PEP 508 keys).

    ``constraints`` restrict the versions of a project if it ends up in the graph and never add
    it. The order of requirements and constraints does not change the result. ``vetoes`` forbid
    combinations of candidates (:class:`~resolver.units.Veto`); ``skip`` names projects dropped
    from the graph with everything only they bring in (every requirement on them is ignored).

    :raises ResolverUsageError: for an incomplete environment, or a requirement or constraint
        that does not parse, is a direct URL, or whose marker cannot be evaluated.
    """

    def __init__(
        self,
        requirements: Sequence[str | Requirement],
        *,
        constraints: Sequence[str | Requirement] = (),
        environment: Mapping[str, str],
        options: ResolverOptions = ResolverOptions(),  # noqa: B008 - frozen, so sharing is safe
        vetoes: Sequence[Veto] | Callable[[str], Iterable[Veto]] = (),
        skip: Iterable[str] = (),
    ) -> None:
        self._options = options
        self._skip = frozenset(canonicalize_name(name) for name in skip)
        self._vetoes: dict[str, list[Veto]] = {}
        self._veto_keys: set[str] = set()
        self._vetoes_for = vetoes if callable(vetoes) else None
        if not callable(vetoes):
            for veto in vetoes:
                self._register_veto(veto)
        self._environment = check_environment(environment)
        self._python = python_version(self._environment)
        self._markers = MarkerEvaluator(self._environment)
        self._python_cache: dict[str, bool] = {}
        self._read_requirements(requirements, constraints)

        self._projects: dict[str, ProjectVersions] = {}
        self._metadata: dict[tuple[str, int], tuple[Dependency, ...] | _Unavailable] = {}
        self._lines: dict[str, Dependency | _Unavailable] = {}  # versions repeat their lines
        self._core = Solver()
        self._packages: list[_Package] = [(ROOT, None)]
        self._package_ids: dict[_Package, int] = {}
        self._core.add_package(1, "")
        self._core.add_incompatibility([(0, False, [0, 1])], _Fact("root-required"))
        self._edges: dict[tuple[int, int], list[tuple[str, str]]] = {}

        self._asked_projects: set[str] = set()
        self._asked_metadata: set[tuple[str, int]] = set()
        self._want_projects: dict[str, None] = {}
        self._want_metadata: dict[tuple[str, int], None] = {}
        self._waiting: list[str] = []
        self._tried: dict[int, set[int]] = {}
        self._attempts = 0
        self._seconds = 0.0
        self._metadata_requests = 0
        self._candidate_requests = 0
        self._outcome: Resolution | NoSolution | None = None

    def _read_requirements(
        self, requirements: Sequence[str | Requirement], constraints: Sequence[str | Requirement]
    ) -> None:
        """Parse, drop those whose marker fails, and sort, so that their order cannot matter."""
        direct = [
            d
            for d in (self._parse(r, "requirement") for r in requirements)
            if self._holds(d) and d.name not in self._skip
        ]
        limits = [d for d in (self._parse(c, "constraint") for c in constraints) if self._holds(d)]
        self._root_dependencies = tuple(sorted(direct, key=Dependency.sort_key))
        self._constraints: dict[str, list[Dependency]] = {}
        for limit in sorted(limits, key=Dependency.sort_key):
            self._constraints.setdefault(limit.name, []).append(limit)
        # Pre-releases and yanked versions named by a requirement or constraint are admitted for
        # every requirement on that project (resolver._versions).
        named = [*self._root_dependencies, *limits]
        self._explicit_prereleases = {d.name for d in named if d.specifier.prereleases}
        self._yanked_pins: dict[str, list[SpecifierSet]] = {}
        for dependency in named:
            self._yanked_pins.setdefault(dependency.name, []).append(dependency.specifier)
        # Specifiers seen on projects whose candidates are not known yet: for the prefetch guess.
        self._likely: dict[str, dict[SpecifierSet, None]] = {}
        for dependency in self._root_dependencies:
            self._likely.setdefault(dependency.name, {})[dependency.specifier] = None

    # -- the sans-IO surface -------------------------------------------------------------

    def step(self) -> Request | Resolution:
        """Run until something is needed (a :class:`Request`) or all is decided.

        :raises NoSolution: the requirements cannot be satisfied (again on every later call).
        :raises ResolutionTooDeep: more than ``options.max_steps`` decisions and conflicts.
        :raises ResolverUsageError: the resolver waits for something an earlier Request asked
            for and that was not provided.
        """
        if isinstance(self._outcome, Resolution):
            return self._outcome
        if isinstance(self._outcome, NoSolution):
            raise self._outcome
        started = perf_counter()
        try:
            request = self._advance()
        except NoSolution as failure:
            self._seconds += perf_counter() - started
            failure.stats = self.stats
            self._outcome = failure
            raise
        self._seconds += perf_counter() - started
        if request is not None:
            return request
        self._outcome = self._resolution()
        return self._outcome

    def provide_candidates(self, project: str, candidates: Iterable[Candidate]) -> None:
        """The versions of ``project`` that have at least one file fitting the client.

        :raises ResolverUsageError: when the project's candidates were provided before.
        """
        started = perf_counter()
        name = canonicalize_name(project)
        if name in self._projects:
            raise ResolverUsageError(f"the candidates of {name} were already provided")
        versions = project_versions(
            name,
            candidates,
            python=self._python,
            mode=self._options.prereleases,
            explicit_prerelease=name in self._explicit_prereleases,
            yanked_pins=self._yanked_pins.get(name, ()),
            python_cache=self._python_cache,
        )
        self._projects[name] = versions
        self._want_projects.pop(name, None)
        pick = versions.likely_pick(self._likely.pop(name, {}))
        if pick is not None:
            self._want(name, pick)
        self._seconds += perf_counter() - started

    def provide_metadata(self, project: str, version: str, requires_dist: Sequence[str]) -> None:
        """The Requires-Dist lines of one version, markers included.

        A line that does not parse, names a direct URL, or has a marker that cannot be
        evaluated makes the version unusable, with that as the reason.

        :raises ResolverUsageError: for a project or version whose candidates were not provided.
        """
        started = perf_counter()
        name, index = self._locate(project, version)
        if (name, index) not in self._metadata:
            self._metadata[name, index] = self._parse_metadata(requires_dist)
            self._want_metadata.pop((name, index), None)
            known = self._metadata[name, index]
            if not isinstance(known, _Unavailable):
                for dependency in known:
                    if self._markers.holds(dependency):
                        self._prefetch_for(dependency)
        self._seconds += perf_counter() - started

    def metadata_unavailable(self, project: str, version: str, reason: str) -> None:
        """The metadata of one version cannot be had: the version becomes unusable, and a
        report that needs it names ``reason``."""
        name, index = self._locate(project, version)
        self._metadata.setdefault((name, index), _Unavailable(reason))
        self._want_metadata.pop((name, index), None)

    @property
    def stats(self) -> ResolverStats:
        return ResolverStats(
            decisions=self._core.decisions,
            conflicts=self._core.conflicts,
            propagations=self._core.propagations,
            metadata_requests=self._metadata_requests,
            candidate_requests=self._candidate_requests,
            seconds=self._seconds,
        )

    # -- the loop ------------------------------------------------------------------------

    def _advance(self) -> Request | None:
        """Propagate and decide until blocked (the Request) or done (None)."""
        core = self._core
        while True:
            terminal = core.propagate()
            if terminal >= 0:
                raise self._no_solution(terminal)
            steps = self._attempts + core.conflicts
            if steps > self._options.max_steps:
                raise ResolutionTooDeep(steps, self.stats)
            package = core.pick_package()
            if package < 0:
                return None
            (version,) = core.newest_versions(package, 1)
            if not self._try_version(package, version):
                return self._request()
            self._attempts += 1
            self._tried.setdefault(package, set()).add(version)

    def _try_version(self, package: int, version: int) -> bool:
        """Add ``package == version`` with its dependencies; False when blocked on a need."""
        name, extra = self._packages[package]
        if package == 0:
            dependencies: Sequence[Dependency] = self._root_dependencies
        else:
            known = self._metadata.get((name, version))
            if known is None:
                self._block_on_metadata(package, name, version)
                return False
            if isinstance(known, _Unavailable):
                self._core.add_incompatibility(
                    [(package, True, [version, version + 1])], _Fact("unavailable", reason=known.reason)
                )
                return True
            dependencies = [
                d for d in known if d.name not in self._skip and self._markers.for_extra(d, extra)
            ]
        missing = sorted({d.name for d in dependencies} - self._projects.keys())
        if missing:
            self._waiting = [f"the candidates of {m}" for m in missing]
            for project in missing:
                self._want_project(project)
            return False
        groups: dict[_Package, list[Dependency]] = {}
        for dependency in dependencies:
            for key in dependency.packages():
                groups.setdefault(key, []).append(dependency)
        ids = [self._add_dependency(package, version, key, group) for key, group in groups.items()]
        if extra is not None:
            # The extra's virtual package is tied to its project's version.
            versions = self._projects[name]
            ids.append(
                self._core.add_dependency(
                    package,
                    version,
                    self._package_id(name, None),
                    [version, version + 1],
                    _Fact("dependency", dependency=f"{name}=={versions.strings[version]}"),
                )
            )
        self._core.add_version(package, version, ids)
        self._edges[package, version] = [(d.name, d.text) for d in dependencies]
        return True

    def _add_dependency(self, package: int, version: int, key: _Package, group: list[Dependency]) -> int:
        """One dependency of ``package == version``: every requirement line on ``key`` at once."""
        project, extra = key
        versions = self._projects[project]
        if len(group) == 1:
            text = group[0].display(extra)
            specifier = group[0].specifier
            bounds = versions.allowed_bounds(specifier)
        else:
            mask = np.ones(len(versions), dtype=bool)
            for dependency in group:
                mask &= versions.allowed(dependency.specifier)
            bounds = mask_to_bounds(mask)
            specifier = SpecifierSet(",".join(str(d.specifier) for d in group))
            text = f"{project}[{extra}]{specifier}" if extra else f"{project}{specifier}"
        fact = _Fact(
            "root" if package == 0 else "dependency",
            dependency=text,
            hint=None if len(bounds) else versions.hint(specifier),
        )
        return self._core.add_dependency(package, version, self._package_id(project, extra), bounds, fact)

    def _package_id(self, project: str, extra: str | None) -> int:
        """The core id of a package, created (with its project's external facts) on first use."""
        key = (project, extra)
        package = self._package_ids.get(key)
        if package is None:
            versions = self._projects[project]
            package = self._core.add_package(len(versions), f"{project}[{extra}]" if extra else project)
            self._packages.append(key)
            self._package_ids[key] = package
            if extra is None:
                self._add_project_facts(package, versions)
                self._add_vetoes(project)
        return package

    def _register_veto(self, veto: Veto) -> None:
        if veto.key:
            if veto.key in self._veto_keys:
                return
            self._veto_keys.add(veto.key)
        for project in veto.projects:
            self._vetoes.setdefault(project, []).append(veto)

    def _add_vetoes(self, project: str) -> None:
        """The vetoes on ``project`` whose projects are all in the graph now, as incompatibilities."""
        if self._vetoes_for is not None:
            for veto in self._vetoes_for(project):
                self._register_veto(veto)
        for veto in self._vetoes.get(project, ()):
            ids = [self._package_ids.get((other, None)) for other in sorted(veto.projects)]
            if any(package is None for package in ids):
                continue  # added when the last of its projects arrives
            terms = []
            for condition in veto.conditions:
                versions = self._projects[condition.project]
                mask = np.fromiter(
                    (condition.accepts(c) for c in versions.candidates), dtype=bool, count=len(versions)
                )
                if not mask.any():
                    break  # no candidate matches: the veto cannot apply
                terms.append((self._package_ids[condition.project, None], True, mask_to_bounds(mask)))
            else:
                self._core.add_incompatibility(
                    terms, _Fact("vetoed", dependency=veto.source, reason=veto.reason)
                )

    def _add_project_facts(self, package: int, versions: ProjectVersions) -> None:
        for start, stop, requires_python in versions.python_incompatible_runs():
            self._core.add_incompatibility(
                [(package, True, [start, stop])], _Fact("requires-python", requires_python=requires_python)
            )
        for limit in self._constraints.get(versions.name, ()):
            outside = mask_to_bounds(~versions.match(limit.specifier))
            self._core.add_incompatibility(
                [(0, True, [0, 1]), (package, True, outside)],
                _Fact("constraint", dependency=limit.display(None)),
            )

    # -- needs ---------------------------------------------------------------------------

    def _block_on_metadata(self, package: int, name: str, version: int) -> None:
        self._waiting = [f"the metadata of {name} {self._projects[name].strings[version]}"]
        self._want(name, version)
        tries = len(self._tried.get(package, ()))
        if tries or self._core.conflict_count(package):
            ahead = _PREFETCH_MANY if tries >= _MANY_TRIES else _PREFETCH_CONFLICTING
            for later in self._core.newest_versions(package, 1 + ahead)[1:]:
                self._want(name, later)

    def _prefetch_for(self, dependency: Dependency) -> None:
        """Something just fetched depends on this: want its candidates, or if they are known,
        the metadata of its likely pick."""
        versions = self._projects.get(dependency.name)
        if versions is None:
            self._likely.setdefault(dependency.name, {})[dependency.specifier] = None
            self._want_project(dependency.name)
            return
        pick = versions.likely_pick([dependency.specifier])
        if pick is not None:
            self._want(dependency.name, pick)

    def _want(self, name: str, version: int) -> None:
        key = (name, version)
        if key not in self._metadata and key not in self._asked_metadata:
            self._want_metadata[key] = None

    def _want_project(self, name: str) -> None:
        if name not in self._projects and name not in self._asked_projects:
            self._want_projects[name] = None

    def _request(self) -> Request:
        if not self._want_projects and not self._want_metadata:
            raise ResolverUsageError(
                f"the resolver is waiting for {' and '.join(self._waiting)}, which an earlier Request"
                " asked for and which was not provided"
            )
        projects = tuple(sorted(self._want_projects))
        metadata = tuple(
            (name, self._projects[name].strings[index]) for name, index in sorted(self._want_metadata)
        )
        self._asked_projects.update(projects)
        self._asked_metadata.update(self._want_metadata)
        self._candidate_requests += len(projects)
        self._metadata_requests += len(metadata)
        self._want_projects.clear()
        self._want_metadata.clear()
        return Request(projects=projects, metadata=metadata)

    # -- parsing -------------------------------------------------------------------------

    def _parse(self, requirement: str | Requirement, what: str) -> Dependency:
        try:
            return Dependency.parse(requirement)
        except InvalidRequirement as error:
            raise ResolverUsageError(f"invalid {what} {str(requirement)!r}: {error}") from error

    def _holds(self, dependency: Dependency) -> bool:
        try:
            return self._markers.holds(dependency)
        except Exception as error:
            raise ResolverUsageError(f"cannot evaluate the marker of {dependency.text!r}: {error}") from error

    def _parse_metadata(self, requires_dist: Sequence[str]) -> tuple[Dependency, ...] | _Unavailable:
        parsed = []
        for line in requires_dist:
            dependency = self._lines.get(line)
            if dependency is None:
                try:
                    dependency = Dependency.parse(line)
                    self._markers.holds(dependency)
                except InvalidRequirement as error:
                    dependency = _Unavailable(f"invalid requirement {line!r}: {error}")
                except Exception as error:
                    dependency = _Unavailable(f"cannot evaluate the marker of {line!r}: {error}")
                self._lines[line] = dependency
            if isinstance(dependency, _Unavailable):
                return dependency
            parsed.append(dependency)
        return tuple(sorted(parsed, key=Dependency.sort_key))

    def _locate(self, project: str, version: str) -> tuple[str, int]:
        name = canonicalize_name(project)
        versions = self._projects.get(name)
        if versions is None:
            raise ResolverUsageError(f"no candidates were provided for {name}")
        index = versions.index_of(version)
        if index is None:
            raise ResolverUsageError(f"{version!r} is not a candidate version of {name}")
        return name, index

    # -- outcomes ------------------------------------------------------------------------

    def _resolution(self) -> Resolution:
        pins: dict[str, str] = {}
        extras: dict[str, set[str]] = {}
        dependencies: dict[str, list[tuple[str, str]]] = {}
        for package, (name, extra) in enumerate(self._packages):
            version = self._core.decided_version(package)
            if version < 0:
                continue
            if package and extra is None:
                pins[name] = self._projects[name].strings[version]
            elif extra is not None:
                extras.setdefault(name, set()).add(extra)
            edges = dependencies.setdefault(name, [])
            edges.extend(edge for edge in self._edges[package, version] if edge not in edges)
        return Resolution(
            pins=dict(sorted(pins.items())),
            extras={name: frozenset(extras.get(name, ())) for name in sorted(pins)},
            dependencies={name: edges for name, edges in sorted(dependencies.items()) if edges},
            stats=self.stats,
        )

    def _no_solution(self, terminal: int) -> NoSolution:
        ids = self._core.derivation(terminal)
        position = {iid: index for index, iid in enumerate(ids)}
        derivation = []
        for iid in ids:
            raw_terms, fact, cause1, cause2 = self._core.incompatibility(iid)
            terms = tuple(self._term(p, positive, bounds) for p, positive, bounds in raw_terms if p != 0)
            involves_root = any(p == 0 for p, _, _ in raw_terms)
            if fact is None:
                derivation.append(
                    Incompatibility(
                        position[iid], "derived", terms, (position[cause1], position[cause2]), involves_root
                    )
                )
                continue
            derivation.append(
                Incompatibility(
                    position[iid],
                    fact.kind,
                    terms,
                    None,
                    involves_root,
                    dependency=fact.dependency,
                    hint=fact.hint,
                    requires_python=fact.requires_python,
                    python_version=str(self._python) if fact.kind == "requires-python" else None,
                    reason=fact.reason,
                )
            )
        incompatibilities = tuple(derivation)
        return NoSolution(report(incompatibilities), incompatibilities, self.stats)

    def _term(self, package: int, positive: bool, bounds: Sequence[int]) -> Term:
        name, extra = self._packages[package]
        versions = self._projects[name]
        mask = bounds_to_mask(bounds, len(versions))
        return Term(
            project=name,
            extra=extra,
            positive=positive,
            versions=tuple(versions.strings[i] for i in np.flatnonzero(mask)),
            all_versions=versions.covers_all(mask),
            specifier=versions.describe(mask),
        )
