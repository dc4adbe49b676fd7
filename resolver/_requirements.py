"""Requirements as the resolver uses them: parsed once by ``packaging``, names normalized, and
markers evaluated against the one environment being resolved for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from resolver.errors import ResolverUsageError

__all__ = ["ENVIRONMENT_KEYS", "Dependency", "MarkerEvaluator", "check_environment", "python_version"]

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

    @classmethod
    def parse(cls, requirement: str | Requirement) -> Dependency:
        """:raises InvalidRequirement: for a line packaging cannot parse or a direct URL."""
        parsed = requirement if isinstance(requirement, Requirement) else Requirement(requirement)
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
        )

    def packages(self) -> tuple[tuple[str, str | None], ...]:
        """The packages it requires: the project, or one virtual package per extra."""
        if not self.extras:
            return ((self.name, None),)
        return tuple((self.name, extra) for extra in self.extras)

    def display(self, extra: str | None) -> str:
        """The requirement without its marker, for one of :meth:`packages`."""
        package = f"{self.name}[{extra}]" if extra else self.name
        return f"{package}{self.specifier}"

    def sort_key(self) -> tuple[str, tuple[str, ...], str]:
        return (self.name, self.extras, self.text)


class MarkerEvaluator:
    """Evaluates markers against one environment, with ``extra`` set; results are cached."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self._environment = dict(environment)
        self._cache: dict[tuple[str, str], bool] = {}

    def __call__(self, marker: Marker | None, extra: str = "") -> bool:
        """:raises packaging.markers.UndefinedComparison: and the other marker errors."""
        if marker is None:
            return True
        key = (str(marker), extra)
        result = self._cache.get(key)
        if result is None:
            result = marker.evaluate({**self._environment, "extra": extra})
            self._cache[key] = result
        return result

    def for_extra(self, dependency: Dependency, extra: str | None) -> bool:
        """Whether a dependency holds for the project itself (``extra`` None) or only because
        of ``extra`` (true with it, false without it)."""
        if extra is None:
            return self(dependency.marker)
        if dependency.marker is None:
            return False
        try:
            return self(dependency.marker, extra) and not self(dependency.marker)
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
