"""The ``should_include`` block of a unit: its schema, read into :class:`~prescriptions.model.ShouldInclude`.

Faithful to Thoth's ``PRESCRIPTION_UNIT_SHOULD_INCLUDE_SCHEMA``: the same keys, types, value lists
(``recommendation_types``, ``decision_types``, ``cpu_flags``), ``not:`` forms and ``null`` entries.
"""

from __future__ import annotations

from typing import cast

import yaml

from prescriptions import _yaml
from prescriptions._reader import INVALID, Reader, _Invalid, join
from prescriptions.model import (
    BUCKETS,
    CPU_FLAGS,
    DECISION_TYPES,
    RECOMMENDATION_TYPES,
    Dependencies,
    Hardware,
    NoVersion,
    OperatingSystem,
    PythonPackage,
    RpmPackage,
    RuntimeEnvironments,
    ShouldInclude,
    VersionSpec,
)

__all__ = ["read_should_include"]


def __dir__() -> list[str]:
    return __all__


_KEYS = (
    "times",
    "adviser_pipeline",
    "dependency_monkey_pipeline",
    "recommendation_types",
    "decision_types",
    "authenticated",
    "labels",
    "library_usage",
    "dependencies",
    "runtime_environments",
)
_RUNTIME_KEYS = (
    "operating_systems",
    "hardware",
    "python_version",
    "cuda_version",
    "cudnn_version",
    "mkl_version",
    "openblas_version",
    "openmpi_version",
    "platforms",
    "base_images",
    "abi",
    "rpm_packages",
    "python_packages",
)
_VERSION_KEYS = (
    "python_version",
    "cuda_version",
    "cudnn_version",
    "mkl_version",
    "openblas_version",
    "openmpi_version",
)
_HARDWARE_KEYS = ("cpu_families", "cpu_models", "cpu_flags", "gpu_models")
_RPM_KEYS = ("package_name", "arch", "epoch", "package_identifier", "package_version", "release", "src")
_PYTHON_PACKAGE_KEYS = ("name", "version", "location")


def read_should_include(r: Reader, node: yaml.Node, key: str) -> ShouldInclude | None:
    """The ``should_include`` mapping at *node*; ``None`` when it is not a mapping (reported)."""
    fields = r.fields(node, key, _KEYS)
    if fields is None:
        return None
    values: dict[str, object] = {"line": _yaml.line_of(node)}
    for name, value_node in fields.items():
        value_key = join(key, name)
        value: object
        if name == "times":
            value = _times(r, value_node, value_key)
        elif name in ("adviser_pipeline", "dependency_monkey_pipeline", "authenticated"):
            value = r.boolean(value_node, value_key)
        elif name == "recommendation_types":
            value = r.one_of(
                value_node,
                value_key,
                lambda n, k: _choice(r, n, k, RECOMMENDATION_TYPES, "recommendation type"),
            )
        elif name == "decision_types":
            value = r.one_of(
                value_node, value_key, lambda n, k: _choice(r, n, k, DECISION_TYPES, "decision type")
            )
        elif name == "labels":
            value = _labels(r, value_node, value_key)
        elif name == "library_usage":
            value = _library_usage(r, value_node, value_key)
        elif name == "dependencies":
            value = _dependencies(r, value_node, value_key)
        else:
            value = _runtime_environments(r, value_node, value_key)
        if value is not None:
            values[name] = value
    return ShouldInclude(**values)  # type: ignore[arg-type]


def _times(r: Reader, node: yaml.Node, key: str) -> int | None:
    # Thoth's schema is All(int, Range(0, 1)), which a YAML boolean passes too.
    if isinstance(node, yaml.ScalarNode) and node.tag in (_yaml.INT, _yaml.BOOL):
        value = int(_yaml.construct(node))
        if value in (0, 1):
            return value
    r.report(node, key, f"expected 0 (unit off) or 1, got {_yaml.describe(node)}")
    return None


def _choice(r: Reader, node: yaml.Node, key: str, choices: tuple[str, ...], what: str) -> str | _Invalid:
    value = r.choice(node, key, choices, what)
    return INVALID if value is None else value


def _labels(r: Reader, node: yaml.Node, key: str) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(node, yaml.MappingNode):
        r.report(node, key, f"expected a mapping of label names to values, got {_yaml.describe(node)}")
        return None
    fields = r.fields(node, key, [str(k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)])
    if fields is None:
        return None
    labels = []
    for name, value_node in fields.items():
        value = r.string(value_node, join(key, name))
        if value is not None:
            labels.append((name, value))
    return tuple(labels)


def _library_usage(r: Reader, node: yaml.Node, key: str) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    what = "a mapping of libraries to the symbols used, e.g. {flask: [flask.Flask]}"
    if not isinstance(node, yaml.MappingNode) or not node.value:
        got = "an empty mapping" if isinstance(node, yaml.MappingNode) else _yaml.describe(node)
        r.report(node, key, f"expected {what}, got {got}")
        return None
    fields = r.fields(node, key, [str(k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)])
    if fields is None:
        return None
    usage = []
    for library, symbols_node in fields.items():
        if not library:
            r.report(symbols_node, key, "library names must not be empty")
            continue
        symbols = _strings(r, symbols_node, join(key, library))
        if symbols is not None:
            usage.append((library, symbols))
    return tuple(usage)


def _strings(r: Reader, node: yaml.Node, key: str) -> tuple[str, ...] | None:
    """A non-empty list of non-empty strings."""
    items = r.items(node, key, what="a list of strings")
    if items is None:
        return None
    strings = [r.string(item, item_key) for item_key, item in items]
    return None if None in strings else tuple(cast(list[str], strings))


def _dependencies(r: Reader, node: yaml.Node, key: str) -> Dependencies | None:
    fields = r.fields(node, key, BUCKETS)
    if fields is None:
        return None
    names = {bucket: _strings(r, value, join(key, bucket)) for bucket, value in fields.items()}
    return Dependencies(
        **{bucket: value for bucket, value in names.items() if value is not None},
        line=_yaml.line_of(node),
    )


def _runtime_environments(r: Reader, node: yaml.Node, key: str) -> RuntimeEnvironments | None:
    fields = r.fields(node, key, _RUNTIME_KEYS)
    if fields is None:
        return None
    values: dict[str, object] = {"line": _yaml.line_of(node)}
    for name, value_node in fields.items():
        value_key = join(key, name)
        value: object
        if name in _VERSION_KEYS:
            value = _runtime_version(r, value_node, value_key)
        elif name == "operating_systems":
            value = _operating_systems(r, value_node, value_key)
        elif name == "hardware":
            value = _hardware(r, value_node, value_key)
        elif name in ("platforms", "base_images"):
            value = r.one_of(value_node, value_key, r.string_or_null)
        elif name == "abi":
            value = r.one_of(value_node, value_key, lambda n, k: _or_invalid(r.string(n, k)))
        elif name == "rpm_packages":
            value = r.one_of(value_node, value_key, lambda n, k: _rpm_package(r, n, k))
        else:
            value = r.one_of(value_node, value_key, lambda n, k: _python_package(r, n, k))
        if value is not None:
            values[name] = value
    return RuntimeEnvironments(**values)  # type: ignore[arg-type]


def _or_invalid(value: str | None) -> str | _Invalid:
    return INVALID if value is None else value


def _runtime_version(r: Reader, node: yaml.Node, key: str) -> VersionSpec | NoVersion | None:
    if _yaml.is_null(node):
        return NoVersion(_yaml.line_of(node))
    return r.specifier(node, key)


def _operating_systems(r: Reader, node: yaml.Node, key: str) -> tuple[OperatingSystem, ...] | None:
    # Thoth's schema lets this list be empty, unlike the others.
    items = r.items(node, key, nonempty=False, what="a list of {name, version}")
    if items is None:
        return None
    systems = []
    for item_key, item in items:
        fields = r.fields(item, item_key, ("name", "version"))
        if fields is None:
            continue
        name = r.string(fields["name"], join(item_key, "name"), example="rhel") if "name" in fields else None
        version = (
            r.string(fields["version"], join(item_key, "version"), numbers=True, example='"8"')
            if "version" in fields
            else None
        )
        systems.append(OperatingSystem(name, version))
    return tuple(systems)


def _hardware(r: Reader, node: yaml.Node, key: str) -> tuple[Hardware, ...] | None:
    items = r.items(node, key, what="a list of {cpu_families, cpu_models, cpu_flags, gpu_models}")
    if items is None:
        return None
    entries = []
    for item_key, item in items:
        fields = r.fields(item, item_key, _HARDWARE_KEYS)
        if fields is None:
            continue
        values: dict[str, object] = {"line": _yaml.line_of(item)}
        for name, value_node in fields.items():
            value_key = join(item_key, name)
            if name in ("cpu_families", "cpu_models"):
                values[name] = r.one_of(value_node, value_key, r.integer)
            elif name == "cpu_flags":
                values[name] = r.one_of(
                    value_node, value_key, lambda n, k: _choice(r, n, k, CPU_FLAGS, "CPU flag")
                )
            else:
                values[name] = r.one_of(value_node, value_key, r.string_or_null)
        entries.append(Hardware(**{k: v for k, v in values.items() if v is not None}))  # type: ignore[arg-type]
    return tuple(entries)


def _rpm_package(r: Reader, node: yaml.Node, key: str) -> RpmPackage | _Invalid:
    fields = r.fields(node, key, _RPM_KEYS, ("package_name",))
    if fields is None or "package_name" not in fields:
        return INVALID
    values: dict[str, object] = {}
    for name, value_node in fields.items():
        value_key = join(key, name)
        values[name] = r.boolean(value_node, value_key) if name == "src" else r.string(value_node, value_key)
    if values["package_name"] is None:
        return INVALID
    return RpmPackage(**values)  # type: ignore[arg-type]


def _python_package(r: Reader, node: yaml.Node, key: str) -> PythonPackage | _Invalid:
    fields = r.fields(node, key, _PYTHON_PACKAGE_KEYS, ("name",))
    if fields is None or "name" not in fields:
        return INVALID
    name = r.package_name(fields["name"], join(key, "name"))
    version = r.specifier(fields["version"], join(key, "version")) if "version" in fields else None
    location = r.string_or_null(fields["location"], join(key, "location")) if "location" in fields else None
    if name is None or isinstance(location, _Invalid):
        return INVALID
    return PythonPackage(name, version, location)
