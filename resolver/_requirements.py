"""Requirements as the resolver uses them: parsed once by ``packaging``, names normalized, and
markers evaluated against the one environment being resolved for."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from resolver.errors import ResolverUsageError

__all__ = [
    "ENVIRONMENT_KEYS",
    "Dependency",
    "Lru",
    "MarkerEvaluator",
    "check_environment",
    "python_version",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most ``limit`` entries; when full, the least recently used one goes. For the resolver's
    process-wide caches of parsed values; the comment where each is made says why it is kept.

    Not locked: resolutions run one at a time on the server's event loop.
    """

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.limit = limit

    def get(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        if value is not None:
            self._entries[key] = value  # now the most recently used
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# Parsing a requirement with packaging is most of a warm resolution's time, and every request
# sees the same Requires-Dist lines again (a corpus of 49 wheels has ~400): keep the parsed lines,
# least recently used out first. A Dependency is immutable, so resolutions can share one.
_PARSED: Lru[str, Dependency] = Lru(20_000)

# Marker results by marker environment, then by (marker, extra): clients of one kind of machine
# send the same environment, and the same markers come back with every request. Bounded twice:
# the least recently used environments go, and an environment's table is emptied when full.
_MARKERS_LIMIT = 20_000
_MARKER_RESULTS: Lru[tuple[tuple[str, str], ...], dict[tuple[str, str], bool]] = Lru(64)

#: The PEP 508 marker variables; the resolver needs every one (it never looks at its own host).
ENVIRONMENT_KEYS = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One requirement line: ``text`` as written, the rest normalized."""

    text: str
    name: str
    extras: tuple[str, ...]
    specifier: SpecifierSet
    marker: Marker | None
    # str(marker) and str(specifier), formatted once: the key of marker results, and the text of
    # every dependency the resolver records (formatting either is not cheap)
    marker_text: str = field(default="", compare=False, repr=False)
    specifier_text: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, requirement: str | Requirement) -> Dependency:
        """:raises InvalidRequirement: for a line packaging cannot parse or a direct URL."""
        if isinstance(requirement, Requirement):
            return cls._from_requirement(requirement)
        dependency = _PARSED.get(requirement)
        if dependency is None:
            dependency = cls._from_requirement(Requirement(requirement))
            _PARSED.put(requirement, dependency)
        return dependency

    @classmethod
    def _from_requirement(cls, parsed: Requirement) -> Dependency:
        if parsed.url:
            raise InvalidRequirement(
                f"{parsed} is a direct URL requirement, which the resolver does not support"
            )
        return cls(
            text=str(parsed),
            name=canonicalize_name(parsed.name),
            extras=tuple(sorted({canonicalize_name(e) for e in parsed.extras})),
            specifier=parsed.specifier,
            marker=parsed.marker,
            marker_text="" if parsed.marker is None else str(parsed.marker),
            specifier_text=str(parsed.specifier),
        )

    def packages(self) -> tuple[tuple[str, str | None], ...]:
        """The packages it requires: the project, or one virtual package per extra."""
        if not self.extras:
            return ((self.name, None),)
        return tuple((self.name, extra) for extra in self.extras)

    def display(self, extra: str | None) -> str:
        """The requirement without its marker, for one of :meth:`packages`."""
        package = f"{self.name}[{extra}]" if extra else self.name
        specifier = self.specifier_text if self.specifier_text is not None else str(self.specifier)
        return f"{package}{specifier}"

    def sort_key(self) -> tuple[str, tuple[str, ...], str]:
        return (self.name, self.extras, self.text)


class MarkerEvaluator:
    """Evaluates markers against one environment, with ``extra`` set; results are cached (shared
    by every evaluator of the same environment, see _MARKER_RESULTS)."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self._environment = dict(environment)
        key = tuple(sorted(self._environment.items()))
        cache = _MARKER_RESULTS.get(key)
        if cache is None:
            cache = {}
            _MARKER_RESULTS.put(key, cache)
        self._cache = cache

    def __call__(self, marker: Marker | None, extra: str = "") -> bool:
        """:raises packaging.markers.UndefinedComparison: and the other marker errors."""
        if marker is None:
            return True
        return self._evaluate(marker, str(marker), extra)

    def holds(self, dependency: Dependency, extra: str = "") -> bool:
        """The dependency's marker with ``extra`` set; as calling with its marker, without
        formatting the marker again."""
        if dependency.marker is None:
            return True
        return self._evaluate(dependency.marker, dependency.marker_text or str(dependency.marker), extra)

    def _evaluate(self, marker: Marker, text: str, extra: str) -> bool:
        key = (text, extra)
        result = self._cache.get(key)
        if result is None:
            result = marker.evaluate({**self._environment, "extra": extra})
            if len(self._cache) >= _MARKERS_LIMIT:
                self._cache.clear()
            self._cache[key] = result
        return result

    def for_extra(self, dependency: Dependency, extra: str | None) -> bool:
        """Whether a dependency holds for the project itself (``extra`` None) or only because
        of ``extra`` (true with it, false without it)."""
        if extra is None:
            return self.holds(dependency)
        if dependency.marker is None:
            return False
        try:
            return self.holds(dependency, extra) and not self.holds(dependency)
        except Exception:  # checked without extras when the metadata arrived; see provide_metadata
            return False


def check_environment(environment: Mapping[str, str]) -> dict[str, str]:
    missing = [key for key in ENVIRONMENT_KEYS if key not in environment]
    if missing:
        raise ResolverUsageError(f"the marker environment lacks {', '.join(missing)}")
    return {key: str(value) for key, value in environment.items()}


def python_version(environment: Mapping[str, str]) -> Version:
    """The Python that Requires-Python is checked against: ``python_full_version``."""
    for value in (environment["python_full_version"].rstrip("+"), environment["python_version"]):
        try:
            return Version(value)
        except InvalidVersion:
            continue
    raise ResolverUsageError(f"python_full_version {environment['python_full_version']!r} is not a version")
