"""Compiled units applied to one resolve request: the resolver's rules, scores and annotations.

A :class:`Pipeline` is made per request from the loaded :class:`~prescriptions.UnitIndex` and
the :class:`~prescriptions.context.RequestContext`. It only ever looks at the units of the
packages the resolution reaches (plus the few bound to no package), and judges each unit's
``should_include`` once. What each unit type becomes:

- boot: :meth:`Pipeline.boot`, once, before resolving (abort or report);
- sieve: :meth:`Pipeline.sieve` removes files (and so versions) before the solver sees them;
  ``sieve.SkipPackage``: :meth:`Pipeline.skipped`, projects dropped with their subgraph;
- step (``not_acceptable``), ``step.Group`` and stride (``not_acceptable``): resolver
  :class:`~resolver.units.Veto` s, so a vetoed combination is never chosen whatever the order of
  the search (:meth:`Pipeline.vetoes_for`); steps that depend on which package introduced another
  (``package_version_from``) are checked on each resolution and learned as precise vetoes;
- step (``score``) and known advisories: :meth:`Pipeline.evaluate` scores a complete resolution,
  order-agnostically (a step's state is the rest of the resolution); pseudonyms become the
  alternatives the improvement search tries;
- ``step.SkipPackage`` / ``step.AddPackage`` with state: learned on a resolution, applied on the next;
- wrap, ``wrap.GHReleaseNotes`` and stride reports: :meth:`Pipeline.annotate` on the result.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from prescriptions.compiler import CompiledUnit
from prescriptions.context import RequestContext
from prescriptions.gate import should_include
from prescriptions.index import UnitIndex
from prescriptions.model import Justification, Match, PackageVersion, StackInfo, VersionSpec
from resolver.models import Candidate
from resolver.search import Replacement
from resolver.units import Condition, Veto

__all__ = [
    "ADVISORY_PENALTY",
    "AdvisoryLike",
    "Annotations",
    "BootOutcome",
    "Evaluation",
    "Note",
    "Pipeline",
    "ResolvedGraph",
    "ResolvedPin",
]


def __dir__() -> list[str]:
    return __all__


ROOT = "<root>"

#: Score per pinned version with a known advisory, by recommendation type (``security`` removes them).
ADVISORY_PENALTY: Mapping[str, float] = {
    "latest": 0.0,
    "testing": 0.0,
    "stable": -0.2,
    "performance": -0.2,
    "security": 0.0,
}


class AdvisoryLike(Protocol):
    """What the pipeline needs of a security advisory (see :mod:`prescriptions.advisories`)."""

    @property
    def id(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def summary(self) -> str: ...
    @property
    def link(self) -> str: ...
    def affects(self, version: Version) -> bool: ...


@dataclass(frozen=True, slots=True)
class Note:
    """A justification or stack-info entry of the result, in Thoth's report shape."""

    type: str
    message: str
    link: str
    package_name: str | None = None
    source: str = ""
    advisory: str | None = None
    cve_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "message": self.message, "link": self.link}
        for key in ("package_name", "advisory", "cve_id"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.source:
            data["source"] = self.source
        return data


@dataclass(frozen=True, slots=True)
class ResolvedPin:
    version: str
    index: str | None = None
    index_url: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedGraph:
    """A complete resolution as the rules see it: each pin, and who requires each project."""

    pins: Mapping[str, ResolvedPin]
    introduced_by: Mapping[str, frozenset[str]]
    """Project -> the pinned projects (or ``"<root>"``) whose requirements brought it in."""


@dataclass(frozen=True, slots=True)
class BootOutcome:
    notes: tuple[Note, ...] = ()
    abort: str | None = None
    """Set when a boot's ``not_acceptable`` (or ``eager_stop_pipeline``) ends the request."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One resolution judged: its score and what the rules learned from it."""

    score: float
    contributions: Mapping[str, float]
    movable: frozenset[str]
    alternatives: tuple[Replacement, ...]
    justification: tuple[Note, ...]
    vetoes: tuple[Veto, ...] = ()
    """Vetoes on this exact resolution from steps that depend on who introduced a package."""
    skip: frozenset[str] = frozenset()
    drop_edges: frozenset[tuple[str, str, str]] = frozenset()
    """(parent, parent version, package): requirements of the parent on the package to drop."""
    add: tuple[str, ...] = ()
    """Requirements ``step.AddPackage`` asks for that the resolution lacks."""

    @property
    def settled(self) -> bool:
        """Nothing learned: the resolution stands as it is."""
        return not (self.vetoes or self.skip or self.drop_edges or self.add)


@dataclass(frozen=True, slots=True)
class Annotations:
    justification: tuple[Note, ...] = ()
    stack_info: tuple[Note, ...] = ()
    advised_manifest_changes: tuple[Any, ...] = ()


# Shared by every request: a version string parses, and a specifier set admits a version, the same
# way each time. The rules of a loaded index keep asking the same few thousand questions (each
# resolution checks every veto, sieve and wrap of its packages), and packaging answers each in
# microseconds; the answers are kept, bounded, oldest out.
_CACHE_LIMIT = 200_000
_VERSIONS: dict[str, Version | None] = {}
_CONTAINS: dict[tuple[str, Version], bool] = {}


def _parse_version(text: str) -> Version | None:
    try:
        return _VERSIONS[text]
    except KeyError:
        pass
    try:
        parsed: Version | None = Version(text)
    except InvalidVersion:
        parsed = None
    if len(_VERSIONS) >= _CACHE_LIMIT:
        del _VERSIONS[next(iter(_VERSIONS))]
    _VERSIONS[text] = parsed
    return parsed


def _admits(spec: VersionSpec, version: Version) -> bool:
    """``spec`` contains ``version``, pre-releases included (see gate.py: defect 6 of Thoth)."""
    key = (spec.text, version)
    known = _CONTAINS.get(key)
    if known is None:
        known = spec.specifier.contains(version, prereleases=True)
        if len(_CONTAINS) >= _CACHE_LIMIT:
            del _CONTAINS[next(iter(_CONTAINS))]
        _CONTAINS[key] = known
    return known


# Vetoes of a unit instance are the same in every request (only whether the unit takes part
# changes): built once per (instance, project). The instance is kept in the entry, so an id reused
# after an index is dropped never finds another instance's veto.
_VETOES: dict[tuple[int, str], tuple[CompiledUnit, Veto | None]] = {}
_PROJECTS: dict[tuple[Any, ...], tuple[UnitIndex, _ProjectUnits]] = {}

# The skipping units of an index, and the projects they skip for each set of gate answers: the
# same few answers in every request, against hundreds of units walked.
_SKIPPERS: dict[int, tuple[UnitIndex, tuple[CompiledUnit, ...], tuple[int, ...] | None]] = {}
_SKIPPED: dict[tuple[int, tuple[bool, ...]], tuple[UnitIndex, frozenset[str]]] = {}

# A gate without ``dependencies`` is judged on the request's context alone: requests with the same
# context (a CI job locking the same stack again) share the answers. Bounded, oldest out.
_GATES_LIMIT = 256
_GATES: dict[tuple[int, Hashable], tuple[UnitIndex, dict[int, bool]]] = {}


def _shared_gates(index: UnitIndex, context: RequestContext) -> dict[int, bool]:
    """The gate answers for *context* on *index*, shared when the context can be a key."""
    try:
        key: tuple[int, Hashable] = (
            id(index),
            (
                context.recommendation_type,
                context.runtime,
                tuple(sorted(context.labels.items())),
                None
                if context.library_usage is None
                else tuple(sorted((k, tuple(v)) for k, v in context.library_usage.items())),
                context.authenticated,
            ),
        )
        hash(key)
    except TypeError:  # e.g. the base image's python_packages, a mapping
        return {}
    known = _GATES.get(key)
    if known is not None and known[0] is index:
        return known[1]
    gates: dict[int, bool] = {}
    if len(_GATES) >= _GATES_LIMIT:
        del _GATES[next(iter(_GATES))]
    _GATES[key] = (index, gates)
    return gates


@dataclass(frozen=True, slots=True)
class _ProjectUnits:
    """The included instances of one project (then the unkeyed ones), and the subsets each stage
    walks, in the same order. Shared by the requests that include the same units, with what was
    worked out from them (by pin: the instances whose own-project condition the pin meets)."""

    project: str
    units: tuple[CompiledUnit, ...]
    sieves: tuple[CompiledUnit, ...]
    file_scores: tuple[CompiledUnit, ...]
    evaluated: tuple[CompiledUnit, ...]
    annotated: tuple[CompiledUnit, ...]
    vetoes: list[tuple[Veto, ...]] = field(default_factory=list)
    """Empty until first asked; then the one tuple of this project's vetoes."""
    evaluated_by_pin: dict[tuple[str, str | None, str | None], tuple[CompiledUnit, ...]] = field(
        default_factory=dict
    )
    annotated_by_pin: dict[tuple[str, str | None, str | None], tuple[CompiledUnit, ...]] = field(
        default_factory=dict
    )
    sieve_by_file: dict[tuple[str, str | None, str | None], CompiledUnit | None] = field(default_factory=dict)
    """(version, index, index URL) -> the first sieve that removes such a file, or None."""
    score_by_file: dict[tuple[str, str | None, str | None], float] = field(default_factory=dict)

    def evaluated_for(self, pin: ResolvedPin, version: Version) -> tuple[CompiledUnit, ...]:
        """The evaluated instances whose ``package_version`` matches *pin* (of this project)."""
        key = (pin.version, pin.index, pin.index_url)
        found = self.evaluated_by_pin.get(key)
        if found is None:
            found = tuple(
                u
                for u in self.evaluated
                if u.match is not None
                and u.match.package_version is not None
                and _matches(u.match.package_version, self.project, version, pin.index, pin.index_url)
            )
            self.evaluated_by_pin[key] = found
        return found

    def annotated_for(self, pin: ResolvedPin, version: Version | None) -> tuple[CompiledUnit, ...]:
        """The annotated instances whose state conditions on this project *pin* meets (their
        conditions on other projects are left to check)."""
        if version is None:
            return self.annotated
        key = (pin.version, pin.index, pin.index_url)
        found = self.annotated_by_pin.get(key)
        if found is None:
            found = tuple(u for u in self.annotated if self._own_state_holds(u, pin, version))
            self.annotated_by_pin[key] = found
        return found

    def _own_state_holds(self, compiled: CompiledUnit, pin: ResolvedPin, version: Version) -> bool:
        state = compiled.match.state if compiled.match is not None else None
        if state is None:
            return True
        return all(
            _matches(dependency, self.project, version, pin.index, pin.index_url)
            for dependency in state.resolved_dependencies
            if dependency.name == self.project
        )


_EVALUATED = frozenset(("step", "step.SkipPackage", "step.AddPackage", "pseudonym"))
_ANNOTATED = frozenset(("wrap", "wrap.GHReleaseNotes", "stride"))


def _project_units(project: str, units: tuple[CompiledUnit, ...]) -> _ProjectUnits:
    return _ProjectUnits(
        project=project,
        units=units,
        sieves=tuple(u for u in units if u.unit.kind == "sieve" and u.match is not None),
        file_scores=tuple(
            u
            for u in units
            if u.unit.kind == "step"
            and getattr(u.unit.run, "score", None) is not None
            and u.match is not None
            and u.match.state is None
            and u.match.package_version is not None
        ),
        evaluated=tuple(u for u in units if u.unit.kind in _EVALUATED and u.match is not None),
        annotated=tuple(u for u in units if u.package is not None and u.unit.kind in _ANNOTATED),
    )


class Pipeline:
    """The units of *index* that take part in a request described by *context*."""

    def __init__(
        self,
        index: UnitIndex,
        context: RequestContext,
        *,
        advisories: Mapping[str, Sequence[AdvisoryLike]] | None = None,
    ) -> None:
        self._index = index
        self._context = context
        self._advisories = {canonicalize_name(k): tuple(v) for k, v in (advisories or {}).items()}
        self._included: dict[str, bool] = {}
        self._gates = _shared_gates(index, context)
        self._for_package: dict[str, _ProjectUnits] = {}
        self._version = _parse_version
        unkeyed = index.unkeyed
        self._unkeyed_included = tuple(self.includes(u) for u in unkeyed)
        self._unkeyed = tuple(
            u for u, included in zip(unkeyed, self._unkeyed_included, strict=True) if included
        )
        self._penalty = ADVISORY_PENALTY.get(context.recommendation_type, 0.0)
        self._fired_sieves: dict[str, CompiledUnit] = {}

    @property
    def context(self) -> RequestContext:
        return self._context

    def add_advisories(self, advisories: Mapping[str, Sequence[AdvisoryLike]]) -> None:
        """Known advisories of more projects (the app looks them up as projects come up)."""
        for name, found in advisories.items():
            self._advisories[canonicalize_name(name)] = tuple(found)

    # -- should_include ------------------------------------------------------------------

    def includes(self, compiled: CompiledUnit) -> bool:
        """Whether the unit takes part, judged once per request (and per unit, not per instance)."""
        name = compiled.unit.name
        known = self._included.get(name)
        if known is None:
            gate = compiled.unit.should_include
            gate_id = self._index.gate_id(name) if gate.dependencies is None else None
            if gate_id is not None:
                known = self._gate(gate_id)
            else:
                self._included[name] = False  # a dependency cycle is not included
                known = should_include(gate, self._context, self._depends_on)
            self._included[name] = known
        return known

    def _gate(self, gate_id: int) -> bool:
        """Whether a ``should_include`` without ``dependencies`` admits this request."""
        known = self._gates.get(gate_id)
        if known is None:
            known = should_include(self._index.gate(gate_id), self._context, self._depends_on)
            self._gates[gate_id] = known
        return known

    def _depends_on(self, bucket: str, name: str) -> bool:
        found = self._index.named(name)
        return found is not None and found.unit.bucket == bucket and self.includes(found)

    def units_for(self, project: str) -> tuple[CompiledUnit, ...]:
        """The included instances bound to *project*, then those bound to no package."""
        return self._project(project).units

    def _project(self, project: str) -> _ProjectUnits:
        found = self._for_package.get(project)
        if found is None:
            # Which of the project's units take part follows from a few gates; the same answers
            # in another request give the same units, so the split is kept across requests.
            gate_ids, dependent = self._index.package_gates(project)
            key = (
                id(self._index),
                project,
                tuple(self._gate(gate_id) for gate_id in gate_ids),
                tuple(self.includes(named) for name in dependent if (named := self._index.named(name))),
                self._unkeyed_included,
            )
            known = _PROJECTS.get(key)
            if known is not None and known[0] is self._index:
                found = known[1]
            else:
                keyed = tuple(u for u in self._index.for_package(project) if self.includes(u))
                found = _project_units(project, keyed + self._unkeyed)
                if len(_PROJECTS) >= _CACHE_LIMIT:
                    del _PROJECTS[next(iter(_PROJECTS))]
                _PROJECTS[key] = (self._index, found)
            self._for_package[project] = found
        return found

    # -- before resolving ----------------------------------------------------------------

    def boot(self, direct: Iterable[str]) -> BootOutcome:
        names = {canonicalize_name(name) for name in direct}
        notes: list[Note] = []
        abort: str | None = None
        boots = [u for u in self._unkeyed if u.unit.kind == "boot"]
        for name in sorted(names):
            boots.extend(
                u for u in self._index.for_package(name) if u.unit.kind == "boot" and self.includes(u)
            )
        for compiled in boots:
            run = compiled.unit.run
            notes.extend(_stack_notes(run.stack_info, compiled))
            stop = getattr(run, "not_acceptable", None) or getattr(run, "eager_stop_pipeline", None)
            if stop and abort is None:
                abort = f"{stop} ({compiled.unit.name})"
        return BootOutcome(tuple(notes), abort)

    def skipped(self) -> frozenset[str]:
        """Projects every ``sieve.SkipPackage`` (and state-less ``step.SkipPackage``) drops."""
        index = self._index
        known = _SKIPPERS.get(id(index))
        if known is None or known[0] is not index:
            units = tuple(
                u
                for u in (*index.of_kind("sieve.SkipPackage"), *index.of_kind("step.SkipPackage"))
                if u.package is not None
                and (u.unit.kind == "sieve.SkipPackage" or (u.match is not None and u.match.state is None))
            )
            ids = [
                index.gate_id(u.unit.name) if u.unit.should_include.dependencies is None else None
                for u in units
            ]
            gates = None if None in ids else tuple(sorted({i for i in ids if i is not None}))
            known = (index, units, gates)
            _SKIPPERS[id(index)] = known
        _, units, gates = known
        if gates is None:  # a gate depends on other units: judged unit by unit
            return frozenset(u.package for u in units if u.package is not None and self.includes(u))
        key = (id(index), tuple(self._gate(gate) for gate in gates))
        cached = _SKIPPED.get(key)
        if cached is None or cached[0] is not index:
            names = frozenset(u.package for u in units if u.package is not None and self.includes(u))
            if len(_SKIPPED) >= 64:
                del _SKIPPED[next(iter(_SKIPPED))]
            cached = (index, names)
            _SKIPPED[key] = cached
        return cached[1]

    def sieve(self, project: str, version: str, index: str | None, index_url: str | None) -> str | None:
        """Why a file of *project* at *version* from *index* is removed; None when it stays."""
        parsed = self._version(version)
        if parsed is None:
            return None
        units = self._project(project)
        key = (version, index, index_url)
        if key in units.sieve_by_file:
            fired = units.sieve_by_file[key]
        else:
            fired = next(
                (
                    compiled
                    for compiled in units.sieves
                    if compiled.match is not None
                    and compiled.match.package_version is not None
                    and _matches(compiled.match.package_version, project, parsed, index, index_url)
                ),
                None,
            )
            units.sieve_by_file[key] = fired
        if fired is not None:
            self._fired_sieves.setdefault(fired.unit.name, fired)
            return f"removed by {fired.unit.name}"
        if self._context.recommendation_type == "security":
            for advisory in self._advisories.get(project, ()):
                if advisory.affects(parsed):
                    return f"removed for security: {_advisory_title(advisory)}"
        return None

    def file_score(self, project: str, version: str, index: str | None, index_url: str | None) -> float:
        """The score of state-less steps for one file: picks the preferred build of a version."""
        parsed = self._version(version)
        if parsed is None:
            return 0.0
        units = self._project(project)
        key = (version, index, index_url)
        total = units.score_by_file.get(key)
        if total is None:
            total = 0.0
            for compiled in units.file_scores:
                match = compiled.match
                assert match is not None and match.package_version is not None
                if _matches(match.package_version, project, parsed, index, index_url):
                    total += _clip(compiled.unit.run.score)
            units.score_by_file[key] = total
        return total

    # -- during resolution ---------------------------------------------------------------

    def vetoes_for(self, project: str) -> list[Veto]:
        """The vetoes that involve *project* (the solver asks when the project enters the graph)."""
        units = self._project(project)
        if not units.vetoes:
            vetoes = []
            for compiled in units.units:
                key = (id(compiled), project)
                known = _VETOES.get(key)
                if known is not None and known[0] is compiled:
                    veto = known[1]
                else:
                    veto = self._veto(compiled, project)
                    if len(_VETOES) >= _CACHE_LIMIT:
                        del _VETOES[next(iter(_VETOES))]
                    _VETOES[key] = (compiled, veto)
                if veto is not None:
                    vetoes.append(veto)
            units.vetoes[:] = [tuple(vetoes)]
        return list(units.vetoes[0])

    def _veto(self, compiled: CompiledUnit, project: str) -> Veto | None:
        unit, match = compiled.unit, compiled.match
        run = unit.run
        reason = getattr(run, "not_acceptable", None) or getattr(run, "eager_stop_pipeline", None)
        if not reason or match is None:
            return None
        state = match.state
        conditions: list[Condition] = []
        if unit.kind in ("step", "step.Group"):
            if state is not None and state.package_version_from:
                return None  # depends on who introduced the package: checked on each resolution
            if match.package_version is None:
                return None
            conditions.append(self._condition(match.package_version, project))
        elif unit.kind != "stride" or state is None:
            return None
        if state is not None:
            for dependency in state.resolved_dependencies:
                if dependency.name is None:
                    return None
                conditions.append(self._condition(dependency, dependency.name))
        if not conditions:
            return None
        return Veto(
            tuple(conditions),
            reason,
            unit.name,
            key=f"{unit.name}:{match.key}:{project}"
            if compiled.package is None
            else f"{unit.name}:{match.key}",
        )

    def _condition(self, matcher: PackageVersion, project: str) -> Condition:
        name = matcher.name or project
        version = _parse_version  # not per request: the veto is kept for later requests

        def accepts(candidate: Candidate) -> bool:
            parsed = version(candidate.version)
            return parsed is not None and _matches(
                matcher, name, parsed, candidate.index, candidate.index_url
            )

        text = name + (str(matcher.version) if matcher.version is not None else "")
        if matcher.index_url is not None:
            text += (
                f" from {'an index other than ' if matcher.index_url.negated else ''}{matcher.index_url.url}"
            )
        return Condition(name, accepts, text)

    # -- on a complete resolution --------------------------------------------------------

    def evaluate(self, graph: ResolvedGraph) -> Evaluation:
        """Score *graph* and learn what it must change (vetoes, skips, additions)."""
        contributions: dict[str, float] = {}
        movable: set[str] = set()
        notes: list[Note] = []
        alternatives: list[Replacement] = []
        vetoes: list[Veto] = []
        skip: set[str] = set()
        drops: set[tuple[str, str, str]] = set()
        add: list[str] = []
        for project, pin in sorted(graph.pins.items()):
            parsed = self._version(pin.version)
            if parsed is None:
                continue
            for compiled in self._project(project).evaluated_for(pin, parsed):
                unit, match = compiled.unit, compiled.match
                assert match is not None
                run: Any = unit.run
                if unit.kind == "pseudonym":
                    alternatives.append(_replacement(compiled, project, pin.version))
                    continue
                if unit.kind == "step" and getattr(run, "score", None) is not None:
                    movable.add(project)
                parents = self._state_holds(match, project, graph)
                if parents is None:
                    continue
                if unit.kind == "step.SkipPackage":
                    if match.state is not None and match.state.package_version_from:
                        drops.update((parent, graph.pins[parent].version, project) for parent in parents)
                    else:
                        skip.add(project)
                    notes.extend(_stack_notes(run.stack_info, compiled))
                    continue
                if unit.kind == "step.AddPackage":
                    added = run.add_package
                    if added is not None and added.name and canonicalize_name(added.name) not in graph.pins:
                        add.append(f"{added.name}{added.locked_version or ''}")
                        notes.extend(_stack_notes(run.stack_info, compiled))
                    continue
                reason = run.not_acceptable or run.eager_stop_pipeline
                if reason:
                    # Only steps on who introduced a package get here (others are solver vetoes).
                    conditions = [_exact(project, pin.version)]
                    conditions.extend(
                        _exact(parent, graph.pins[parent].version) for parent in sorted(parents)
                    )
                    vetoes.append(Veto(tuple(conditions), reason, unit.name))
                    continue
                if run.score is not None:
                    contributions[project] = contributions.get(project, 0.0) + _clip(run.score)
                notes.extend(_justification_notes(run.justification, compiled))
                notes.extend(_stack_notes(run.stack_info, compiled))
            for advisory in self._advisories.get(project, ()):
                if advisory.affects(parsed):
                    movable.add(project)
                    contributions[project] = contributions.get(project, 0.0) + self._penalty
                    notes.append(_advisory_note(advisory, project, pin.version))
        score = sum(contributions.values())
        return Evaluation(
            score=score,
            contributions=contributions,
            movable=frozenset(movable),
            alternatives=tuple(sorted(set(alternatives))),
            justification=tuple(notes),
            vetoes=tuple(vetoes),
            skip=frozenset(skip),
            drop_edges=frozenset(drops),
            add=tuple(dict.fromkeys(add)),
        )

    def _state_holds(self, match: Match, project: str, graph: ResolvedGraph) -> frozenset[str] | None:
        """None when the match's state does not hold in *graph*; else the introducing parents it named."""
        state = match.state
        if state is None:
            return frozenset()
        for dependency in state.resolved_dependencies:
            if not self._pinned_matches(dependency, graph):
                return None
        if not state.package_version_from:
            return frozenset()
        introducers = graph.introduced_by.get(project, frozenset())
        parents = set()
        for dependency in state.package_version_from:
            if dependency.name is None or dependency.name not in introducers:
                return None
            if not self._pinned_matches(dependency, graph):
                return None
            parents.add(dependency.name)
        if not state.package_version_from_allow_other and introducers - parents:
            return None
        return frozenset(parents)

    def _pinned_matches(self, matcher: PackageVersion, graph: ResolvedGraph) -> bool:
        if matcher.name is None:
            return False
        pin = graph.pins.get(matcher.name)
        if pin is None:
            return False
        parsed = self._version(pin.version)
        return parsed is not None and _matches(matcher, matcher.name, parsed, pin.index, pin.index_url)

    def annotate(self, graph: ResolvedGraph, pseudonyms: Iterable[str] = ()) -> Annotations:
        """The report on the final resolution (each unit once): what the sieves that removed
        something, the *pseudonyms* (unit names) applied, the strides and wraps say."""
        justification: list[Note] = []
        stack_info: list[Note] = []
        changes: list[Any] = []
        seen: set[str] = set()
        for compiled in self._fired_sieves.values():
            stack_info.extend(_stack_notes(compiled.unit.run.stack_info, compiled))
        for name in dict.fromkeys(pseudonyms):
            found = self._index.named(name)
            if found is not None:
                stack_info.extend(_stack_notes(found.unit.run.stack_info, found))
        candidates = list(self._unkeyed)
        for project in sorted(graph.pins):
            pin = graph.pins[project]
            candidates.extend(self._project(project).annotated_for(pin, self._version(pin.version)))
        for compiled in candidates:
            unit, match = compiled.unit, compiled.match
            if unit.kind not in ("wrap", "wrap.GHReleaseNotes", "stride") or unit.name in seen:
                continue
            if match is not None and self._state_holds(match, "", graph) is None:
                continue
            run: Any = unit.run
            if unit.kind == "stride" and (run.not_acceptable or run.eager_stop_pipeline):
                continue
            seen.add(unit.name)
            stack_info.extend(_stack_notes(run.stack_info, compiled))
            if unit.kind == "wrap":
                justification.extend(_justification_notes(run.justification, compiled))
                if run.advised_manifest_changes:
                    changes.extend(run.advised_manifest_changes)
            elif unit.kind == "wrap.GHReleaseNotes" and run.release_notes is not None and match is not None:
                justification.extend(_release_notes(compiled, graph))
        return Annotations(tuple(justification), tuple(stack_info), tuple(changes))


def _matches(
    matcher: PackageVersion, project: str, version: Version, index: str | None, index_url: str | None
) -> bool:
    if matcher.name is not None and matcher.name != project:
        return False
    if matcher.version is not None and not _admits(matcher.version, version):
        return False
    if matcher.develop:
        return False  # index-proxy resolves no editable (develop) packages
    if matcher.index_url is not None:
        wanted = matcher.index_url.url
        # Thoth names an index by its URL; index-proxy also by its name in the config.
        same = wanted == index or (index_url is not None and _same_url(wanted, index_url))
        return same != matcher.index_url.negated
    return True


def _same_url(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


def _exact(project: str, version: str) -> Condition:
    def accepts(candidate: Candidate) -> bool:
        return candidate.version == version

    return Condition(project, accepts, f"{project}=={version}")


def _clip(score: float) -> float:
    return max(-1.0, min(1.0, score))


def _replacement(compiled: CompiledUnit, project: str, version: str) -> Replacement:
    run: Any = compiled.unit.run
    target = run.yield_package
    if run.yield_matched_version:
        yielded: str | None = version
    elif target.locked_version:
        yielded = target.locked_version.lstrip("=")
    else:
        yielded = None
    return Replacement(project, canonicalize_name(target.name or project), yielded, compiled.unit.name)


# A unit's notes are the same in every request: made once per instance (kept with it, see _VETOES).
_NOTES: dict[tuple[int, int, str], tuple[CompiledUnit, tuple[Note, ...]]] = {}


def _stack_notes(entries: Sequence[StackInfo], compiled: CompiledUnit) -> tuple[Note, ...]:
    key = (id(compiled), id(entries), "stack_info")
    known = _NOTES.get(key)
    if known is not None and known[0] is compiled:
        return known[1]
    notes = tuple(Note(e.type, e.message, e.url, source=compiled.unit.name) for e in entries)
    _remember_notes(key, compiled, notes)
    return notes


def _justification_notes(entries: Sequence[Justification], compiled: CompiledUnit) -> tuple[Note, ...]:
    key = (id(compiled), id(entries), "justification")
    known = _NOTES.get(key)
    if known is not None and known[0] is compiled:
        return known[1]
    notes = tuple(
        Note(
            e.type,
            e.message,
            e.url,
            package_name=e.package_name,
            source=compiled.unit.name,
            advisory=e.advisory,
            cve_id=e.cve_id,
        )
        for e in entries
    )
    _remember_notes(key, compiled, notes)
    return notes


def _remember_notes(key: tuple[int, int, str], compiled: CompiledUnit, notes: tuple[Note, ...]) -> None:
    if len(_NOTES) >= _CACHE_LIMIT:
        del _NOTES[next(iter(_NOTES))]
    _NOTES[key] = (compiled, notes)


def _release_notes(compiled: CompiledUnit, graph: ResolvedGraph) -> list[Note]:
    run: Any = compiled.unit.run
    notes = run.release_notes
    match = compiled.match
    assert match is not None and match.state is not None
    name = match.state.resolved_dependencies[0].name
    pin = graph.pins.get(name or "")
    if pin is None:
        return []
    prefix = notes.tag_version_prefix or ""
    link = f"https://github.com/{notes.organization}/{notes.repository}/releases/tag/{prefix}{pin.version}"
    return [
        Note(
            "INFO",
            f"Release notes for {name} {pin.version}",
            link,
            package_name=name,
            source=compiled.unit.name,
        )
    ]


def _advisory_title(advisory: AdvisoryLike) -> str:
    cves = [alias for alias in advisory.aliases if alias.startswith("CVE-")]
    return advisory.id + (f" ({', '.join(cves)})" if cves else "")


def _advisory_note(advisory: AdvisoryLike, project: str, version: str) -> Note:
    cves = [alias for alias in advisory.aliases if alias.startswith("CVE-")]
    summary = f": {advisory.summary}" if advisory.summary else ""
    return Note(
        "WARNING",
        f"{project} {version} has a known vulnerability, {_advisory_title(advisory)}{summary}",
        advisory.link,
        package_name=project,
        source="advisories",
        advisory=advisory.id,
        cve_id=cves[0] if cves else None,
    )
