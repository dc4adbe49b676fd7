"""The prescription file schema: a composed YAML document in, typed units and problems out.

Faithful to Thoth's v1 schema (``thoth/adviser/prescription/v1/schema.py``): every file valid there
loads here with the same meaning; unknown keys and wrong types are errors. Deliberate differences:

- accepted in addition: ``metadata`` (any data, ignored) at the top, in units and in
  stack_info/justification entries (Thoth's generated database carries it); a whole-number
  ``score``; numbers taken as written where an OS version or a metadata release is a string;
- required although Thoth's schema left them optional (its units then failed at run time):
  ``package_version`` in pseudonym and sieve match entries, ``yield.package_version``,
  ``release_notes``, and ``not`` in ``index_url: {not: URL}``;
- ``step.Group`` (``match: {group: [{package_version: {name, ...}}, ...]}``, two or more members;
  ``run`` as a step's) follows Thoth's documentation and group unit, as its published schema
  snapshot predates it.

A unit with a problem is left out of the result; the other units of the file still load, so one
run reports every problem of every file.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import yaml

from prescriptions import _yaml
from prescriptions._reader import Reader, join
from prescriptions.model import (
    BUCKETS,
    KINDS,
    Boot,
    BootRun,
    Bucket,
    IndexUrl,
    Justification,
    LockedPackage,
    Log,
    Match,
    Namespace,
    PackageVersion,
    Pseudonym,
    PseudonymRun,
    ReleaseNotes,
    Run,
    Severity,
    Sieve,
    SieveRun,
    StackInfo,
    StateMatch,
    Step,
    StepRun,
    Stride,
    StrideRun,
    Unit,
    UnitKind,
    Wrap,
    WrapRun,
    bucket_of,
)
from prescriptions.should_include import read_should_include

__all__ = ["read_document"]


def __dir__() -> list[str]:
    return __all__


_SEVERITIES: tuple[Severity, ...] = ("WARNING", "INFO", "ERROR")
_UNIT_KEYS = ("name", "type", "should_include", "match", "run", "metadata")
_PACKAGE_VERSION_KEYS = ("name", "version", "index_url", "develop")
_STACK_INFO_KEYS = ("type", "message", "link", "metadata")
_JUSTIFICATION_KEYS = (
    "type",
    "message",
    "link",
    "package_name",
    "advisory",
    "cve_id",
    "cve_name",
    "version_range",
    "metadata",
)
_BASE_RUN_KEYS = ("stack_info", "log")
_ALL_KINDS: tuple[UnitKind, ...] = tuple(kind for bucket in BUCKETS for kind in KINDS[bucket])


def read_document(r: Reader, root: yaml.Node | None, namespace: Namespace) -> list[Unit[Any]]:
    """The valid units of one prescription file whose composed document is *root*."""
    if root is None:
        r.report(None, "", "the file is empty; a prescription file is a mapping with units:")
        return []
    fields = r.fields(root, "", ("units", "metadata"), ("units",), what="a mapping with units:")
    if fields is None or "units" not in fields:
        return []
    buckets = r.fields(fields["units"], "units", BUCKETS)
    units: list[Unit[Any]] = []
    for bucket, bucket_node in (buckets or {}).items():
        if _yaml.is_null(bucket_node):
            continue
        key = f"units.{bucket}"
        for unit_key, unit_node in r.items(bucket_node, key, nonempty=False, what="a list of units") or ():
            unit = _unit(r, unit_node, unit_key, cast(Bucket, bucket), namespace)
            if unit is not None:
                units.append(unit)
    return units


# --- units ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """What ``match`` and ``run`` look like for one unit type."""

    read_match: Callable[[Reader, yaml.Node, str], Match | None]
    match_required: bool
    match_list: bool
    run_keys: tuple[str, ...]
    run_required_keys: tuple[str, ...]
    run_required: bool


def _unit(r: Reader, node: yaml.Node, key: str, bucket: Bucket, namespace: Namespace) -> Unit[Any] | None:
    before = r.fatal
    fields = r.fields(node, key, _UNIT_KEYS, ("name", "type", "should_include"), what="a unit mapping")
    if fields is None:
        return None
    name = r.string(fields["name"], join(key, "name")) if "name" in fields else None
    kind = _kind(r, fields["type"], join(key, "type"), bucket) if "type" in fields else None
    should_include = (
        read_should_include(r, fields["should_include"], join(key, "should_include"))
        if "should_include" in fields
        else None
    )
    if kind is None:
        return None
    shape = _SHAPES[kind]
    matches: list[Match] = []
    if "match" in fields:
        matches = _matches(r, fields["match"], key, shape)
    elif shape.match_required:
        r.report(node, join(key, "match"), f"missing required key (a {kind} needs match)")
    run_fields: dict[str, Any] = {"line": 0}
    if "run" in fields:
        run_fields = _run(r, fields["run"], join(key, "run"), shape)
    elif shape.run_required:
        r.report(node, join(key, "run"), f"missing required key (a {kind} needs run)")
    if r.fatal > before or name is None or should_include is None:
        return None
    unit_class, run_class = _CLASSES[bucket]
    try:
        run = run_class(**run_fields)
    except TypeError:  # a required run field was reported missing; r.fatal covers it
        return None
    return unit_class(
        name=sys.intern(f"{namespace.name}.{name}"),
        kind=kind,
        should_include=should_include,
        match=tuple(matches),
        run=run,
        namespace=namespace,
        file=r.file,
        line=_yaml.line_of(fields["name"]),
        key=key,
    )


def _kind(r: Reader, node: yaml.Node, key: str, bucket: Bucket) -> UnitKind | None:
    text = r.string(node, key)
    if text is None:
        return None
    allowed = KINDS[bucket]
    if text in allowed:
        return text
    if text in _ALL_KINDS:
        home = bucket_of(text)
        message = (
            f"a {text} goes under units.{home}, not units.{bucket} "
            f"(units.{bucket} takes {', '.join(allowed)})"
        )
    else:
        close = difflib.get_close_matches(text, allowed, n=1)
        hint = f"; did you mean {_yaml.quote(close[0])}?" if close else ""
        message = f"unknown unit type {_yaml.quote(text)}{hint} (units.{bucket} takes {', '.join(allowed)})"
    r.report(node, key, message)
    return None


def _matches(r: Reader, node: yaml.Node, unit_key: str, shape: _Shape) -> list[Match]:
    key = join(unit_key, "match")
    if isinstance(node, yaml.SequenceNode) and not shape.match_list:
        r.report(node, key, "expected a single mapping here, not a list (this unit type takes one match)")
        return []
    matches = []
    for entry_key, entry in r.mapping_or_items(node, key) or ():
        match = shape.read_match(r, entry, entry_key)
        if match is not None:
            # Kept relative to the unit ("match" or "match[2]"), interned: the same few strings everywhere.
            matches.append(dataclasses.replace(match, key=sys.intern(entry_key[len(unit_key) + 1 :])))
    return matches


# --- match entries -----------------------------------------------------------------------------------


def _package_name_match(required: bool) -> Callable[[Reader, yaml.Node, str], Match | None]:
    """boot (``package_name`` optional) and sieve.SkipPackage (required) entries."""

    def read(r: Reader, node: yaml.Node, key: str) -> Match | None:
        fields = r.fields(node, key, ("package_name",), ("package_name",) if required else ())
        if fields is None:
            return None
        # Not required to be normalized by Thoth's schema here: the linter reports it instead.
        name = (
            r.string(fields["package_name"], join(key, "package_name")) if "package_name" in fields else None
        )
        return Match(package_name=name, line=_yaml.line_of(node))

    return read


def _package_version_match(name_required: bool) -> Callable[[Reader, yaml.Node, str], Match | None]:
    """pseudonym (name required) and sieve entries: ``{package_version: {...}}``."""

    def read(r: Reader, node: yaml.Node, key: str) -> Match | None:
        fields = r.fields(node, key, ("package_version",), ("package_version",))
        if fields is None or "package_version" not in fields:
            return None
        package = _package_version(r, fields["package_version"], join(key, "package_version"), name_required)
        return Match(package_version=package, line=_yaml.line_of(node))

    return read


def _step_match(r: Reader, node: yaml.Node, key: str) -> Match | None:
    fields = r.fields(node, key, ("package_version", "state"), ("package_version",))
    if fields is None or "package_version" not in fields:
        return None
    package = _package_version(r, fields["package_version"], join(key, "package_version"), False)
    state = _step_state(r, fields["state"], join(key, "state")) if "state" in fields else None
    return Match(package_version=package, state=state, line=_yaml.line_of(node))


def _group_match(r: Reader, node: yaml.Node, key: str) -> Match | None:
    fields = r.fields(node, key, ("group",), ("group",))
    if fields is None or "group" not in fields:
        return None
    group_key = join(key, "group")
    items = r.items(fields["group"], group_key, what="a list of {package_version: ...}")
    if items is None:
        return None
    if len(items) < 2:
        r.report(fields["group"], group_key, "a group needs at least two packages that must not coexist")
    members = []
    for item_key, item in items:
        item_fields = r.fields(item, item_key, ("package_version",), ("package_version",))
        if item_fields and "package_version" in item_fields:
            package = _package_version(
                r, item_fields["package_version"], join(item_key, "package_version"), True
            )
            if package is not None:
                members.append(package)
    return Match(group=tuple(members), line=_yaml.line_of(node))


def _state_only_match(required: bool, single: bool) -> Callable[[Reader, yaml.Node, str], Match | None]:
    """stride (state required), wrap (optional) and wrap.GHReleaseNotes (one named package) entries."""

    def read(r: Reader, node: yaml.Node, key: str) -> Match | None:
        fields = r.fields(node, key, ("state",), ("state",) if required else ())
        if fields is None:
            return None
        state = None
        if "state" in fields:
            state_key = join(key, "state")
            state_fields = r.fields(
                fields["state"], state_key, ("resolved_dependencies",), ("resolved_dependencies",)
            )
            if state_fields and "resolved_dependencies" in state_fields:
                deps_node = state_fields["resolved_dependencies"]
                deps_key = join(state_key, "resolved_dependencies")
                if single:
                    packages = _single_package(r, deps_node, deps_key)
                else:
                    packages = _package_versions(r, deps_node, deps_key, name_required=False, nonempty=False)
                state = StateMatch(resolved_dependencies=packages or (), line=_yaml.line_of(fields["state"]))
        return Match(state=state, line=_yaml.line_of(node))

    return read


def _single_package(r: Reader, node: yaml.Node, key: str) -> tuple[PackageVersion, ...] | None:
    if isinstance(node, yaml.SequenceNode):
        if len(node.value) != 1:
            r.report(node, key, f"expected exactly one package, got {len(node.value)}")
            return None
        node, key = node.value[0], f"{key}[0]"
    package = _package_version(r, node, key, True)
    return None if package is None else (package,)


def _step_state(r: Reader, node: yaml.Node, key: str) -> StateMatch | None:
    fields = r.fields(
        node, key, ("resolved_dependencies", "package_version_from", "package_version_from_allow_other")
    )
    if fields is None:
        return None
    resolved = from_ = None
    allow_other = None
    if "resolved_dependencies" in fields:
        resolved = _package_versions(
            r, fields["resolved_dependencies"], join(key, "resolved_dependencies"), name_required=True
        )
    if "package_version_from" in fields:
        from_ = _package_versions(
            r, fields["package_version_from"], join(key, "package_version_from"), name_required=True
        )
    if "package_version_from_allow_other" in fields:
        allow_other = r.boolean(
            fields["package_version_from_allow_other"], join(key, "package_version_from_allow_other")
        )
    return StateMatch(resolved or (), from_ or (), bool(allow_other), _yaml.line_of(node))


def _package_versions(
    r: Reader, node: yaml.Node, key: str, *, name_required: bool, nonempty: bool = True
) -> tuple[PackageVersion, ...] | None:
    items = r.items(
        node, key, nonempty=nonempty, what="a list of packages ({name, version, index_url, develop})"
    )
    if items is None:
        return None
    packages = [_package_version(r, item, item_key, name_required) for item_key, item in items]
    return tuple(package for package in packages if package is not None)


def _package_version(r: Reader, node: yaml.Node, key: str, name_required: bool) -> PackageVersion | None:
    fields = r.fields(node, key, _PACKAGE_VERSION_KEYS, ("name",) if name_required else ())
    if fields is None:
        return None
    name = r.package_name(fields["name"], join(key, "name")) if "name" in fields else None
    version = r.specifier(fields["version"], join(key, "version")) if "version" in fields else None
    index_url = _index_url(r, fields["index_url"], join(key, "index_url")) if "index_url" in fields else None
    develop = r.boolean(fields["develop"], join(key, "develop")) if "develop" in fields else None
    return PackageVersion(name, version, index_url, develop, _yaml.line_of(node))


def _index_url(r: Reader, node: yaml.Node, key: str) -> IndexUrl | None:
    if isinstance(node, yaml.MappingNode):
        fields = r.fields(node, key, ("not",), ("not",), what="a URL or {not: URL}")
        if not fields or "not" not in fields:
            return None
        url = r.string(fields["not"], join(key, "not"))
        return None if url is None else IndexUrl(url, negated=True)
    url = r.string(node, key, example="https://index.example/simple")
    return None if url is None else IndexUrl(url)


# --- run ---------------------------------------------------------------------------------------------


def _run(r: Reader, node: yaml.Node, key: str, shape: _Shape) -> dict[str, Any]:
    fields = r.fields(node, key, shape.run_keys, shape.run_required_keys)
    values: dict[str, Any] = {"line": _yaml.line_of(node)}
    for name, value_node in (fields or {}).items():
        value_key = join(key, name)
        value: Any
        if name == "stack_info":
            value = _entries(r, value_node, value_key, _stack_info, nonempty=False)
        elif name == "justification":
            value = _entries(r, value_node, value_key, _justification, nonempty=True)
        elif name == "log":
            value = _log(r, value_node, value_key)
        elif name in ("not_acceptable", "eager_stop_pipeline"):
            value = r.string(value_node, value_key)
        elif name == "score":
            value = r.number(value_node, value_key, example="0.2 or -0.5")
        elif name in ("multi_package_resolution",):
            value = r.boolean(value_node, value_key)
        elif name == "package_version":  # step.AddPackage
            name, value = "add_package", _locked(r, value_node, value_key, add=True)
        elif name == "yield":
            values.update(_yield(r, value_node, value_key))
            continue
        elif name == "release_notes":
            value = _release_notes(r, value_node, value_key)
        else:  # advised_manifest_changes: any data, as in Thoth
            value = _yaml.construct(value_node)
        if value is not None:
            values[name] = value
    return values


def _entries(
    r: Reader, node: yaml.Node, key: str, read: Callable[[Reader, yaml.Node, str], Any], *, nonempty: bool
) -> tuple[Any, ...] | None:
    items = r.items(node, key, nonempty=nonempty, what="a list of {type, message, link}")
    if items is None:
        return None
    entries = [read(r, item, item_key) for item_key, item in items]
    return tuple(entry for entry in entries if entry is not None)


def _stack_info(r: Reader, node: yaml.Node, key: str) -> StackInfo | None:
    fields = r.fields(node, key, _STACK_INFO_KEYS, ("type", "message", "link"))
    if fields is None or not {"type", "message", "link"} <= fields.keys():
        return None
    severity = r.choice(fields["type"], join(key, "type"), _SEVERITIES, "type")
    message = r.string(fields["message"], join(key, "message"))
    link = r.link(fields["link"], join(key, "link"))
    if severity is None or message is None or link is None:
        return None
    return StackInfo(cast(Severity, severity), message, link, _yaml.line_of(node))


def _justification(r: Reader, node: yaml.Node, key: str) -> Justification | None:
    fields = r.fields(node, key, _JUSTIFICATION_KEYS, ("type", "message", "link"))
    if fields is None or not {"type", "message", "link"} <= fields.keys():
        return None
    severity = r.choice(fields["type"], join(key, "type"), _SEVERITIES, "type")
    message = r.string(fields["message"], join(key, "message"))
    link = r.link(fields["link"], join(key, "link"))
    extra: dict[str, Any] = {}
    for name in ("package_name", "advisory", "cve_id", "cve_name", "version_range"):
        if name in fields:
            value_key = join(key, name)
            if name == "package_name":
                extra[name] = r.package_name(fields[name], value_key)
            elif name == "version_range":
                extra[name] = r.specifier(fields[name], value_key)
            else:
                extra[name] = r.string(fields[name], value_key)
    if severity is None or message is None or link is None:
        return None
    return Justification(cast(Severity, severity), message, link, **extra, line=_yaml.line_of(node))


def _log(r: Reader, node: yaml.Node, key: str) -> Log | None:
    fields = r.fields(node, key, ("type", "message"), ("type", "message"))
    if fields is None or not {"type", "message"} <= fields.keys():
        return None
    severity = r.choice(fields["type"], join(key, "type"), _SEVERITIES, "type")
    message = r.string(fields["message"], join(key, "message"))
    return None if severity is None or message is None else Log(cast(Severity, severity), message)


def _yield(r: Reader, node: yaml.Node, key: str) -> dict[str, Any]:
    fields = r.fields(node, key, ("yield_matched_version", "package_version"), ("package_version",))
    values: dict[str, Any] = {}
    if fields and "yield_matched_version" in fields:
        values["yield_matched_version"] = r.boolean(
            fields["yield_matched_version"], join(key, "yield_matched_version")
        )
    if fields and "package_version" in fields:
        values["yield_package"] = _locked(
            r, fields["package_version"], join(key, "package_version"), add=False
        )
    return values


def _locked(r: Reader, node: yaml.Node, key: str, *, add: bool) -> LockedPackage | None:
    """``yield.package_version`` ({name, locked_version?, index_url?}) or AddPackage's (all four required)."""
    allowed = (
        ("name", "locked_version", "index_url", "develop") if add else ("name", "locked_version", "index_url")
    )
    fields = r.fields(node, key, allowed, allowed if add else ("name",))
    if fields is None:
        return None
    name = r.package_name(fields["name"], join(key, "name")) if "name" in fields else None
    locked = None
    if "locked_version" in fields and not _yaml.is_null(fields["locked_version"]):
        locked_key = join(key, "locked_version")
        locked = r.string(fields["locked_version"], locked_key, example='"==1.0.0"')
        if locked is not None and not locked.startswith("=="):
            r.report(
                fields["locked_version"],
                locked_key,
                f"{_yaml.quote(locked)} is not a locked version;"
                f" write {_yaml.quote('==' + locked.lstrip('=<>!~ '))}",
            )
    index_url = r.string(fields["index_url"], join(key, "index_url")) if "index_url" in fields else None
    develop = r.boolean(fields["develop"], join(key, "develop")) if "develop" in fields else None
    return LockedPackage(name, locked, index_url, develop, _yaml.line_of(node))


def _release_notes(r: Reader, node: yaml.Node, key: str) -> ReleaseNotes | None:
    fields = r.fields(
        node, key, ("organization", "repository", "tag_version_prefix"), ("organization", "repository")
    )
    if fields is None:
        return None
    values = {name: r.string(value, join(key, name)) for name, value in fields.items()}
    if values.get("organization") is None or values.get("repository") is None:
        return None
    return ReleaseNotes(**values)  # type: ignore[arg-type]


# --- the table ---------------------------------------------------------------------------------------

_STEP_RUN = ("score", "justification", "not_acceptable", "eager_stop_pipeline", "multi_package_resolution")
_SHAPES: dict[UnitKind, _Shape] = {
    "boot": _Shape(
        _package_name_match(False),
        False,
        True,
        ("not_acceptable", "eager_stop_pipeline", *_BASE_RUN_KEYS),
        (),
        True,
    ),
    "pseudonym": _Shape(
        _package_version_match(True), True, True, ("yield", *_BASE_RUN_KEYS), ("yield",), True
    ),
    "sieve": _Shape(_package_version_match(False), True, True, _BASE_RUN_KEYS, (), False),
    "sieve.SkipPackage": _Shape(_package_name_match(True), True, True, _BASE_RUN_KEYS, (), False),
    "step": _Shape(_step_match, True, True, (*_STEP_RUN, *_BASE_RUN_KEYS), (), True),
    "step.SkipPackage": _Shape(
        _step_match, True, False, ("multi_package_resolution", *_BASE_RUN_KEYS), (), False
    ),
    "step.AddPackage": _Shape(
        _step_match,
        True,
        True,
        ("multi_package_resolution", "package_version", *_BASE_RUN_KEYS),
        ("package_version",),
        True,
    ),
    "step.Group": _Shape(_group_match, True, True, (*_STEP_RUN, *_BASE_RUN_KEYS), (), True),
    "stride": _Shape(
        _state_only_match(True, False),
        True,
        True,
        ("not_acceptable", "eager_stop_pipeline", *_BASE_RUN_KEYS),
        (),
        True,
    ),
    "wrap": _Shape(
        _state_only_match(False, False),
        False,
        True,
        ("justification", "advised_manifest_changes", *_BASE_RUN_KEYS),
        (),
        True,
    ),
    "wrap.GHReleaseNotes": _Shape(
        _state_only_match(True, True), True, True, ("release_notes",), ("release_notes",), True
    ),
}
_CLASSES: dict[Bucket, tuple[type[Unit[Any]], type[Run]]] = {
    "boots": (Boot, BootRun),
    "pseudonyms": (Pseudonym, PseudonymRun),
    "sieves": (Sieve, SieveRun),
    "steps": (Step, StepRun),
    "strides": (Stride, StrideRun),
    "wraps": (Wrap, WrapRun),
}
