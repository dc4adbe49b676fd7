"""Typed, immutable prescription units: what a valid YAML unit means, with the lines it came from.

Every class mirrors one part of Thoth's v1 prescription schema (see ``docs`` and
``../shared/notes/prescriptions.md``); a value that was absent in the file is ``None`` (or an empty
tuple), so "not stated" and "stated as false/empty" stay distinguishable. ``line`` fields are
1-based lines in :attr:`Unit.file`, kept so the linter can point at the text it complains about.

Objects hold only plain data, :class:`packaging.specifiers.SpecifierSet` and each other, so they
pickle (the compile cache relies on it). Treat :attr:`WrapRun.advised_manifest_changes` (arbitrary
YAML data, as in Thoth) as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from packaging.specifiers import SpecifierSet

__all__ = [
    "BUCKETS",
    "CPU_FLAGS",
    "DECISION_TYPES",
    "DEFAULT_LINK_BASE",
    "DEFAULT_NAMESPACE",
    "KINDS",
    "RECOMMENDATION_TYPES",
    "Boot",
    "BootRun",
    "Bucket",
    "Dependencies",
    "Hardware",
    "IndexUrl",
    "Justification",
    "LockedPackage",
    "Log",
    "Match",
    "Namespace",
    "NoVersion",
    "OneOf",
    "OperatingSystem",
    "PackageVersion",
    "Pseudonym",
    "PseudonymRun",
    "PythonPackage",
    "ReleaseNotes",
    "RpmPackage",
    "Run",
    "RuntimeEnvironments",
    "Severity",
    "ShouldInclude",
    "Sieve",
    "SieveRun",
    "StackInfo",
    "StateMatch",
    "Step",
    "StepRun",
    "Stride",
    "StrideRun",
    "Unit",
    "UnitKind",
    "VersionSpec",
    "Wrap",
    "WrapRun",
    "bucket_of",
    "expand_link",
]


def __dir__() -> list[str]:
    return __all__


T = TypeVar("T")
R = TypeVar("R", bound="Run")

Bucket = Literal["boots", "pseudonyms", "sieves", "steps", "strides", "wraps"]
UnitKind = Literal[
    "boot",
    "pseudonym",
    "sieve",
    "sieve.SkipPackage",
    "step",
    "step.SkipPackage",
    "step.AddPackage",
    "step.Group",
    "stride",
    "wrap",
    "wrap.GHReleaseNotes",
]
Severity = Literal["INFO", "WARNING", "ERROR"]

BUCKETS: tuple[Bucket, ...] = ("boots", "pseudonyms", "sieves", "steps", "strides", "wraps")
"""The lists under ``units:``, in pipeline order."""
KINDS: dict[Bucket, tuple[UnitKind, ...]] = {
    "boots": ("boot",),
    "pseudonyms": ("pseudonym",),
    "sieves": ("sieve", "sieve.SkipPackage"),
    "steps": ("step", "step.SkipPackage", "step.AddPackage", "step.Group"),
    "strides": ("stride",),
    "wraps": ("wrap", "wrap.GHReleaseNotes"),
}
"""The unit types each list may hold."""
RECOMMENDATION_TYPES = ("latest", "stable", "testing", "performance", "security")
DECISION_TYPES = ("all", "random")
"""Dependency Monkey's decision types: accepted for compatibility, index-proxy has no such runs."""
CPU_FLAGS = ("avx2", "avx512")
"""The flags Thoth's CPU database knows (``thoth/adviser/data/cpu_db.yaml``)."""
DEFAULT_NAMESPACE = "UNKNOWN"
"""Thoth's prescription name and release when no ``_prescription_metadata.yaml`` applies."""
DEFAULT_LINK_BASE = "https://thoth-station.ninja/j/"
"""Where a bare justification id (``link: tf_21_h5py``) points, as in thoth-common."""


def bucket_of(kind: UnitKind) -> Bucket:
    """The ``units:`` list a unit of *kind* belongs to, e.g. ``"steps"`` for ``"step.Group"``."""
    return f"{kind.partition('.')[0]}s"  # type: ignore[return-value]


def expand_link(link: str, base: str = DEFAULT_LINK_BASE) -> str:
    """An http(s) *link* as is; a bare justification id appended to *base*."""
    return link if link.startswith(("https://", "http://")) else base + link


# --- shared parts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Namespace:
    """A ``_prescription_metadata.yaml``: the prefix of unit names and the release of the rules."""

    name: str = DEFAULT_NAMESPACE
    release: str = DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """A PEP 440 specifier set as written (``text``) and parsed."""

    text: str
    specifier: SpecifierSet
    line: int = 0

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class NoVersion:
    """An explicit ``null`` for a runtime version (``cuda_version: null``).

    Thoth documents it as "none available" but its engine matched anything (a defect); what
    index-proxy does with it is decided where ``should_include`` is evaluated, not here.
    """

    line: int = 0


@dataclass(frozen=True, slots=True)
class OneOf(Generic[T]):
    """A list, or a list under ``not:`` (``negated``), as ``platforms`` or ``gpu_models`` take."""

    values: tuple[T, ...]
    negated: bool = False
    line: int = 0

    def admits(self, value: T) -> bool:
        """Whether *value* is in the list (or, negated, not in it)."""
        return (value in self.values) != self.negated


@dataclass(frozen=True, slots=True)
class IndexUrl:
    """``index_url: URL`` or ``index_url: {not: URL}``."""

    url: str
    negated: bool = False

    def admits(self, url: str | None) -> bool:
        return (url == self.url) != self.negated


@dataclass(frozen=True, slots=True)
class PackageVersion:
    """A package matcher: every stated field must match; ``name`` is PEP 503-normalized."""

    name: str | None = None
    version: VersionSpec | None = None
    index_url: IndexUrl | None = None
    develop: bool | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """A package to add or yield: ``{name, locked_version: "==x", index_url, develop}``."""

    name: str | None = None
    locked_version: str | None = None
    index_url: str | None = None
    develop: bool | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class StateMatch:
    """What must already hold in the resolver's state (``match.state``)."""

    resolved_dependencies: tuple[PackageVersion, ...] = ()
    package_version_from: tuple[PackageVersion, ...] = ()
    package_version_from_allow_other: bool = False
    line: int = 0


@dataclass(frozen=True, slots=True)
class Match:
    """One entry of a unit's ``match`` (a list registers one unit instance per entry).

    Which fields a unit type uses: boot and ``sieve.SkipPackage`` ``package_name``; pseudonym and
    sieve ``package_version``; steps ``package_version`` and ``state``; ``step.Group`` ``group``;
    strides and wraps ``state``.
    """

    package_name: str | None = None
    package_version: PackageVersion | None = None
    state: StateMatch | None = None
    group: tuple[PackageVersion, ...] = ()
    key: str = "match"
    """Where the entry is, relative to its unit: ``match`` or ``match[2]``."""
    line: int = 0


@dataclass(frozen=True, slots=True)
class StackInfo:
    """A report entry: ``link`` is an http(s) URL or a justification id (see :func:`expand_link`)."""

    type: Severity
    message: str
    link: str
    line: int = 0

    @property
    def url(self) -> str:
        return expand_link(self.link)


@dataclass(frozen=True, slots=True)
class Justification:
    """A justification entry: the :class:`StackInfo` fields plus what the advice is about."""

    type: Severity
    message: str
    link: str
    package_name: str | None = None
    advisory: str | None = None
    cve_id: str | None = None
    cve_name: str | None = None
    version_range: VersionSpec | None = None
    line: int = 0

    @property
    def url(self) -> str:
        return expand_link(self.link)


@dataclass(frozen=True, slots=True)
class Log:
    type: Severity
    message: str


@dataclass(frozen=True, slots=True)
class ReleaseNotes:
    """``wrap.GHReleaseNotes``: ``github.com/<organization>/<repository>/releases/tag/<prefix><v>``."""

    organization: str
    repository: str
    tag_version_prefix: str | None = None


# --- should_include -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    """``operating_systems`` entry; an absent field matches any value."""

    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Hardware:
    """``hardware`` entry; ``None`` in ``cpu_*``/``gpu_models`` values means "not known / none"."""

    cpu_families: OneOf[int | None] | None = None
    cpu_models: OneOf[int | None] | None = None
    cpu_flags: OneOf[str] | None = None
    gpu_models: OneOf[str | None] | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class RpmPackage:
    package_name: str
    arch: str | None = None
    epoch: str | None = None
    package_identifier: str | None = None
    package_version: str | None = None
    release: str | None = None
    src: bool | None = None


@dataclass(frozen=True, slots=True)
class PythonPackage:
    """A Python package in the base image; ``location`` is a regular expression (full match)."""

    name: str
    version: VersionSpec | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class RuntimeEnvironments:
    """``should_include.runtime_environments``; ``None`` fields were not stated (match anything)."""

    operating_systems: tuple[OperatingSystem, ...] | None = None
    hardware: tuple[Hardware, ...] | None = None
    """Thoth's engine requires every entry to match (AND), although its docs read as alternatives."""
    python_version: VersionSpec | NoVersion | None = None
    cuda_version: VersionSpec | NoVersion | None = None
    cudnn_version: VersionSpec | NoVersion | None = None
    mkl_version: VersionSpec | NoVersion | None = None
    openblas_version: VersionSpec | NoVersion | None = None
    openmpi_version: VersionSpec | NoVersion | None = None
    platforms: OneOf[str | None] | None = None
    base_images: OneOf[str | None] | None = None
    abi: OneOf[str] | None = None
    rpm_packages: OneOf[RpmPackage] | None = None
    python_packages: OneOf[PythonPackage] | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Dependencies:
    """Units that must already be included, by full name (``thoth.SomeStep``), per list."""

    boots: tuple[str, ...] = ()
    pseudonyms: tuple[str, ...] = ()
    sieves: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    strides: tuple[str, ...] = ()
    wraps: tuple[str, ...] = ()
    line: int = 0

    def items(self) -> tuple[tuple[Bucket, tuple[str, ...]], ...]:
        return tuple((bucket, getattr(self, bucket)) for bucket in BUCKETS if getattr(self, bucket))


@dataclass(frozen=True, slots=True)
class ShouldInclude:
    """The gate evaluated once per request; defaults are Thoth's (``adviser_pipeline`` false!)."""

    times: int = 1
    """0 turns the unit off."""
    adviser_pipeline: bool = False
    dependency_monkey_pipeline: bool = False
    recommendation_types: OneOf[str] | None = None
    decision_types: OneOf[str] | None = None
    authenticated: bool | None = None
    """``None``: any request; true/false: only requests with/without a token."""
    labels: tuple[tuple[str, str], ...] = ()
    """Registers if any (key, value) pair equals a request label; none: always."""
    library_usage: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(library, symbols) pairs; a symbol ending in ``.*`` is a prefix."""
    dependencies: Dependencies | None = None
    runtime_environments: RuntimeEnvironments | None = None
    line: int = 0


# --- run parts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """What every unit type's ``run`` may state; ``line`` is the line of ``run:`` (0: no run)."""

    stack_info: tuple[StackInfo, ...] = ()
    log: Log | None = None
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BootRun(Run):
    not_acceptable: str | None = None
    eager_stop_pipeline: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PseudonymRun(Run):
    yield_package: LockedPackage
    """``yield.package_version``: the alternative to offer."""
    yield_matched_version: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SieveRun(Run):
    """``sieve`` and ``sieve.SkipPackage``: only report entries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRun(Run):
    """``step`` (all fields), ``step.SkipPackage``, ``step.AddPackage`` (``add_package``), ``step.Group``."""

    score: float | None = None
    justification: tuple[Justification, ...] = ()
    not_acceptable: str | None = None
    eager_stop_pipeline: str | None = None
    multi_package_resolution: bool | None = None
    add_package: LockedPackage | None = None
    """``step.AddPackage``'s ``run.package_version``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrideRun(Run):
    not_acceptable: str | None = None
    eager_stop_pipeline: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapRun(Run):
    justification: tuple[Justification, ...] = ()
    advised_manifest_changes: Any = None
    """Plain YAML data (lists, dicts, scalars), unvalidated as in Thoth."""
    release_notes: ReleaseNotes | None = None
    """``wrap.GHReleaseNotes`` only."""


# --- units -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit(Generic[R]):
    """One unit as declared; its subclass names the pipeline stage, :attr:`kind` the exact type."""

    name: str
    """Full name: ``<prescription name>.<name as written>``, e.g. ``thoth.TensorFlow21H5pyStep``."""
    kind: UnitKind
    should_include: ShouldInclude
    match: tuple[Match, ...]
    """Empty when the type allows leaving ``match`` out (boot, wrap) and it was."""
    run: R
    namespace: Namespace
    file: str
    line: int
    """The line of the unit's ``name``."""
    key: str
    """Where the unit is in its file, e.g. ``units.steps[3]``."""

    @property
    def bucket(self) -> Bucket:
        return bucket_of(self.kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Boot(Unit[BootRun]):
    """Runs once before resolution (a package-specific boot only for a direct dependency)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pseudonym(Unit[PseudonymRun]):
    """Offers an alternative package for a matched candidate."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sieve(Unit[SieveRun]):
    """``sieve`` removes matching candidates; ``sieve.SkipPackage`` drops a package and its subgraph."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step(Unit[StepRun]):
    """Scores or vetoes adding a candidate (``step``), skips (``.SkipPackage``), adds
    (``.AddPackage``) or vetoes a combination (``.Group``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stride(Unit[StrideRun]):
    """Runs on every complete resolution; may discard it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Wrap(Unit[WrapRun]):
    """Annotates a result (``wrap``) or links release notes (``wrap.GHReleaseNotes``)."""
