"""``should_include`` judged for one request: does a unit take part in this resolution?

Thoth's semantics, with its defects fixed (see docs/prescriptions.md):

- ``library_usage`` considers every symbol the client reported, not only the first: a unit
  registers when, for each library it names, the client used one of the listed symbols;
- ``cuda_version: null`` (and the other versions) means "not present", not "anything";
- ``hardware`` entries must all hold, as in Thoth's engine (its documentation reads them as
  alternatives; the linter reports entries that contradict each other);
- specifiers match pre-releases too;
- checks on base-image content (``abi``, ``rpm_packages``, ``python_packages``) all apply; when
  the request carries no such content, a unit that asks about it is not included.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from packaging.version import InvalidVersion, Version

from prescriptions.context import RequestContext, RuntimeFacts
from prescriptions.model import (
    Hardware,
    NoVersion,
    OneOf,
    RuntimeEnvironments,
    ShouldInclude,
    VersionSpec,
)

__all__ = ["should_include"]


def __dir__() -> list[str]:
    return __all__


_OS_ALIASES = {"ubi": "rhel"}


def should_include(
    gate: ShouldInclude, context: RequestContext, included: Callable[[str, str], bool]
) -> bool:
    """Whether a unit with *gate* registers for *context*; *included(bucket, name)* answers the
    ``dependencies`` check for other units."""
    if gate.times == 0 or not gate.adviser_pipeline:
        return False
    if gate.recommendation_types is not None and not gate.recommendation_types.admits(
        context.recommendation_type
    ):
        return False
    if gate.authenticated is not None and gate.authenticated != context.authenticated:
        return False
    if gate.labels and not any(context.labels.get(key) == value for key, value in gate.labels):
        return False
    if gate.library_usage and not _uses_libraries(gate.library_usage, context.library_usage):
        return False
    if gate.dependencies is not None:
        for bucket, names in gate.dependencies.items():
            if not all(included(bucket, name) for name in names):
                return False
    return gate.runtime_environments is None or _runtime_matches(gate.runtime_environments, context.runtime)


def _uses_libraries(
    wanted: tuple[tuple[str, tuple[str, ...]], ...], used: dict[str, tuple[str, ...]] | object
) -> bool:
    if not isinstance(used, dict) and not hasattr(used, "get"):
        return False
    for library, symbols in wanted:
        reported = used.get(library) or ()  # type: ignore[union-attr]
        if not any(_symbol_matches(pattern, symbol) for pattern in symbols for symbol in reported):
            return False
    return True


def _symbol_matches(pattern: str, symbol: str) -> bool:
    if pattern.endswith(".*"):
        prefix = pattern[:-2]
        return symbol == prefix or symbol.startswith(prefix + ".")
    return symbol == pattern


def _runtime_matches(wanted: RuntimeEnvironments, runtime: RuntimeFacts) -> bool:
    if wanted.operating_systems is not None and not any(
        (entry.name is None or _OS_ALIASES.get(entry.name, entry.name) == _os_name(runtime))
        and (entry.version is None or entry.version == runtime.operating_system_version)
        for entry in wanted.operating_systems
    ):
        return False
    if wanted.hardware is not None and not all(
        _hardware_matches(entry, runtime) for entry in wanted.hardware
    ):
        return False
    versions = (
        (wanted.python_version, runtime.python_version),
        (wanted.cuda_version, runtime.cuda_version),
        (wanted.cudnn_version, runtime.cudnn_version),
        (wanted.mkl_version, runtime.mkl_version),
        (wanted.openblas_version, runtime.openblas_version),
        (wanted.openmpi_version, runtime.openmpi_version),
    )
    if not all(_version_matches(spec, value) for spec, value in versions):
        return False
    if wanted.platforms is not None and not wanted.platforms.admits(runtime.platform):
        return False
    if wanted.base_images is not None and not _image_matches(wanted.base_images, runtime.base_image):
        return False
    abi = runtime.abi
    if wanted.abi is not None and (abi is None or not _all_or_none(wanted.abi, lambda symbol: symbol in abi)):
        return False
    if wanted.rpm_packages is not None:
        rpms = runtime.rpm_packages
        if rpms is None or not _all_or_none(wanted.rpm_packages, lambda rpm: rpm.package_name in rpms):
            return False
    if wanted.python_packages is not None:
        packages = runtime.python_packages
        if packages is None or not _all_or_none(
            wanted.python_packages,
            lambda package: (
                package.name in packages
                # A request reports no install locations: a ``location`` pattern is not checked.
                and (package.version is None or _in_spec(package.version, packages[package.name]))
            ),
        ):
            return False
    return True


def _os_name(runtime: RuntimeFacts) -> str | None:
    name = runtime.operating_system
    return _OS_ALIASES.get(name, name) if name is not None else None


def _all_or_none(values: OneOf[object], present: Callable[[object], bool]) -> bool:  # type: ignore[type-arg]
    """A list: every value present; ``not:`` a list: none of them present."""
    if values.negated:
        return not any(present(value) for value in values.values)
    return all(present(value) for value in values.values)


def _hardware_matches(entry: Hardware, runtime: RuntimeFacts) -> bool:
    if entry.cpu_families is not None and not entry.cpu_families.admits(runtime.cpu_family):
        return False
    if entry.cpu_models is not None and not entry.cpu_models.admits(runtime.cpu_model):
        return False
    if entry.cpu_flags is not None:
        flags = {_flag(flag) for flag in runtime.cpu_flags}
        if not _all_or_none(entry.cpu_flags, lambda flag: _flag(str(flag)) in flags):
            return False
    return entry.gpu_models is None or entry.gpu_models.admits(runtime.gpu_model)


def _flag(name: str) -> str:
    # Thoth's CPU table calls the AVX-512 foundation "avx512"; the kernel and archspec "avx512f".
    return "avx512" if name.lower() in ("avx512", "avx512f") else name.lower()


def _version_matches(spec: VersionSpec | NoVersion | None, value: str | None) -> bool:
    if spec is None:
        return True
    if isinstance(spec, NoVersion):
        return value is None
    return value is not None and _in_spec(spec, value)


def _in_spec(spec: VersionSpec, value: str) -> bool:
    try:
        return spec.specifier.contains(Version(value), prereleases=True)
    except InvalidVersion:
        return False


def _image_matches(images: OneOf[str | None], image: str | None) -> bool:
    def matches(pattern: str | None) -> bool:
        if pattern is None or image is None:
            return pattern is image
        name, _, tag = image.partition(":")
        want_name, colon, want_tag = pattern.partition(":")
        if want_name != name:
            return False
        if not colon:
            return True
        return fnmatch.fnmatchcase(tag, want_tag) if "*" in want_tag else tag == want_tag

    return any(matches(pattern) for pattern in images.values) != images.negated
