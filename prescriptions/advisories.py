"""Security advisories in the OSV format (the PyPA advisory database's), as typed, comparable objects.

One OSV record names a vulnerability and the packages it affects; here it becomes one
:class:`Advisory` per affected PyPI package (names PEP 503-normalized), so that a resolver asks
"which advisories does pillow 8.3.0 have?" with a lookup and :meth:`Advisory.affects`.

Affected versions follow the OSV rules: a version is affected when it is listed in ``versions`` or
lies in one of the ``ECOSYSTEM``/``SEMVER`` ranges (``GIT`` ranges name commits, not releases, and
are ignored). Versions are compared with :class:`packaging.version.Version`. A version text that is
not PEP 440 does not stop the parse: it is reported in :attr:`Advisory.problems`, an unusable range
is left out, and the rest of the record still counts. A withdrawn record is kept but never affects.

Pure: text or parsed data in, objects out; reading files is the caller's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "Advisory",
    "Event",
    "InvalidAdvisory",
    "OsvRecord",
    "VersionRange",
    "by_package",
    "parse_osv",
    "parse_osv_text",
]

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
RangeType = Literal["ECOSYSTEM", "SEMVER"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
_RANGE_TYPES: tuple[str, ...] = ("ECOSYSTEM", "SEMVER", "GIT")
# Reference types in the order a reader wants them as "the" link of an advisory.
_LINK_TYPES = ("ADVISORY", "WEB")


class InvalidAdvisory(ValueError):
    """A record that is not OSV: ``str()`` is ``"<source>: <key path>: <what is wrong>"``."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")
        self.source = source
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class Event:
    """One OSV range event. ``version`` is None only for ``introduced: "0"`` (before every release)."""

    kind: EventKind
    version: Version | None

    def to_json(self) -> dict[str, str]:
        return {self.kind: "0" if self.version is None else str(self.version)}


def _event_order(event: Event) -> tuple[int, Version]:
    return (0, Version("0")) if event.version is None else (1, event.version)


@dataclass(frozen=True, slots=True)
class VersionRange:
    """An ``ECOSYSTEM`` or ``SEMVER`` range: events in version order, as OSV evaluates them."""

    type: RangeType
    events: tuple[Event, ...]

    def contains(self, version: Version) -> bool:
        limits = [e.version for e in self.events if e.kind == "limit" and e.version is not None]
        if limits and not any(version < limit for limit in limits):
            return False
        # The OSV algorithm: walk the sorted events; the last one at or below the version decides.
        affected = False
        for event in self.events:
            bound = event.version
            if event.kind == "introduced":
                affected = affected or bound is None or bound <= version
            elif event.kind in ("fixed", "last_affected") and bound is not None:
                # fixed: that release is clean; last_affected: that release still has the flaw
                past = bound <= version if event.kind == "fixed" else bound < version
                affected = affected and not past
        return affected

    def specifiers(self) -> list[str]:
        """The affected intervals as PEP 440 specifier texts, e.g. ``[">=2.5,<2.5.2"]``; ``"*"`` for all."""
        intervals: list[str] = []
        start: str | None = None
        open_ = False
        for event in self.events:
            if event.kind == "introduced" and not open_:
                open_ = True
                start = None if event.version is None else f">={event.version}"
            elif event.kind in ("fixed", "last_affected") and open_:
                open_ = False
                end = f"<{event.version}" if event.kind == "fixed" else f"<={event.version}"
                intervals.append(end if start is None else f"{start},{end}")
        if open_:
            intervals.append(start or "*")
        limits = [e.version for e in self.events if e.kind == "limit" and e.version is not None]
        if limits:
            cap = f"<{max(limits)}"
            intervals = [cap if text == "*" else f"{text},{cap}" for text in intervals]
        return intervals

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "events": [event.to_json() for event in self.events]}


@dataclass(frozen=True, slots=True)
class Advisory:
    """One OSV record as it applies to one PyPI package."""

    id: str
    package: str  # PEP 503-normalized
    modified: datetime
    summary: str = ""
    details: str = ""
    aliases: tuple[str, ...] = ()
    published: datetime | None = None
    withdrawn: datetime | None = None
    link: str = ""
    ranges: tuple[VersionRange, ...] = ()
    versions: tuple[Version, ...] = ()
    # What was left out and why, e.g. a version text that is not PEP 440; never fatal.
    problems: tuple[str, ...] = ()
    # ``versions`` as a set, made on the first ``affects``: hashing thousands of versions is most of
    # the cost of loading a popular project's advisories, and many are never asked about.
    _listed: frozenset[Version] | None = field(default=None, repr=False, compare=False)

    @property
    def cves(self) -> tuple[str, ...]:
        """The CVE ids among the id and the aliases."""
        return tuple(name for name in (self.id, *self.aliases) if name.startswith("CVE-"))

    @property
    def title(self) -> str:
        """The summary, else the first line of the details (for one-line reports)."""
        text = self.summary or self.details.strip().split("\n", 1)[0]
        return text if len(text) <= 200 else text[:197] + "..."

    def affects(self, version: Version) -> bool:
        if self.withdrawn is not None:
            return False
        listed = self._listed
        if listed is None:
            listed = frozenset(self.versions)
            object.__setattr__(self, "_listed", listed)
        if version in listed:
            return True
        return any(version_range.contains(version) for version_range in self.ranges)

    @property
    def version_range(self) -> str:
        """The affected versions as compact specifier-like text, alternatives joined by ``" || "``.

        ``"<2.3.2 || >=2.5,<2.5.2"``; explicit versions that no range covers follow as ``==X``.
        """
        parts: list[str] = []
        for version_range in self.ranges:
            parts.extend(text for text in version_range.specifiers() if text not in parts)
        uncovered = [v for v in self.versions if not any(r.contains(v) for r in self.ranges)]
        parts.extend(f"=={version}" for version in uncovered)
        return " || ".join(parts) if parts else "(no versions)"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_json` turns back into an equal Advisory."""
        return {
            "id": self.id,
            "package": self.package,
            "modified": self.modified.isoformat(),
            "summary": self.summary,
            "details": self.details,
            "aliases": list(self.aliases),
            "published": None if self.published is None else self.published.isoformat(),
            "withdrawn": None if self.withdrawn is None else self.withdrawn.isoformat(),
            "link": self.link,
            "ranges": [version_range.to_json() for version_range in self.ranges],
            "versions": [str(version) for version in self.versions],
            "problems": list(self.problems),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Advisory:
        """The inverse of :meth:`to_json` (trusted input: what this module wrote)."""
        return cls(
            id=data["id"],
            package=data["package"],
            modified=datetime.fromisoformat(data["modified"]),
            summary=data["summary"],
            details=data["details"],
            aliases=tuple(data["aliases"]),
            published=None if data["published"] is None else datetime.fromisoformat(data["published"]),
            withdrawn=None if data["withdrawn"] is None else datetime.fromisoformat(data["withdrawn"]),
            link=data["link"],
            ranges=tuple(
                VersionRange(
                    item["type"],
                    tuple(
                        Event(kind, None if text == "0" else _stored_version(text))
                        for event in item["events"]
                        for kind, text in event.items()
                    ),
                )
                for item in data["ranges"]
            ),
            versions=tuple(_stored_version(text) for text in data["versions"]),
            problems=tuple(data["problems"]),
        )


# The advisories of one project list the same releases over and over (every TensorFlow advisory
# names its ~300 affected versions): parse each text once per process. Bounded, cleared when full.
_STORED_VERSIONS: dict[str, Version] = {}
_STORED_VERSIONS_LIMIT = 200_000


def _stored_version(text: str) -> Version:
    version = _STORED_VERSIONS.get(text)
    if version is None:
        if len(_STORED_VERSIONS) >= _STORED_VERSIONS_LIMIT:
            _STORED_VERSIONS.clear()
        version = _STORED_VERSIONS[text] = Version(text)
    return version


@dataclass(frozen=True, slots=True)
class OsvRecord:
    """A parsed OSV file: its id and ``modified`` time, and its advisories for PyPI packages.

    ``advisories`` is empty for a record that names no PyPI package.
    """

    id: str
    modified: datetime
    source: str
    advisories: tuple[Advisory, ...]

    @property
    def withdrawn(self) -> bool:
        return any(advisory.withdrawn is not None for advisory in self.advisories)


# --- parsing ------------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML where numbers and dates stay text: an unquoted ``fixed: 1.10`` is version 1.10, not 1.1."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_osv_text(text: str | bytes, source: str) -> OsvRecord:
    """A record from the text of an OSV ``.json`` or ``.yaml``/``.yml`` file named *source*.

    :raises InvalidAdvisory: for text that is not JSON/YAML, or a record that is not OSV.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidAdvisory(source, "", f"not UTF-8 text ({error})") from error
    if source.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as error:
            raise InvalidAdvisory(source, "", f"invalid JSON: {error}") from error
    else:
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as error:
            raise InvalidAdvisory(source, "", f"invalid YAML: {_yaml_message(error)}") from error
    return parse_osv(data, source)


def _yaml_message(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        return f"line {error.problem_mark.line + 1}: {error.problem}"
    return str(error)


def parse_osv(data: Any, source: str) -> OsvRecord:
    """A record from parsed JSON/YAML data; *source* names it in errors and problems.

    :raises InvalidAdvisory: naming the key that is missing or of the wrong kind.
    """
    reader = _Reader(source)
    if not isinstance(data, Mapping):
        raise InvalidAdvisory(source, "", "expected an OSV record (a mapping with id, modified, affected)")
    record_id = reader.text(data, "id", "id")
    modified = reader.time(data, "modified", "modified")
    published = reader.optional_time(data, "published")
    withdrawn = reader.optional_time(data, "withdrawn")
    summary = reader.optional_text(data, "summary")
    details = reader.optional_text(data, "details")
    aliases = tuple(reader.texts(data, "aliases"))
    link = _link(reader, data, record_id)

    # name -> (ranges, versions as an ordered set, problems)
    packages: dict[str, tuple[list[VersionRange], dict[Version, None], list[str]]] = {}
    affected = data.get("affected", [])
    if not isinstance(affected, list):
        raise InvalidAdvisory(source, "affected", "expected a list of affected packages")
    for position, entry in enumerate(affected):
        key = f"affected[{position}]"
        if not isinstance(entry, Mapping):
            raise InvalidAdvisory(source, key, "expected a mapping with package, ranges and/or versions")
        package = entry.get("package")
        if not isinstance(package, Mapping):
            raise InvalidAdvisory(
                source, f"{key}.package", "missing, or not a mapping with name and ecosystem"
            )
        ecosystem = reader.text(package, "ecosystem", f"{key}.package.ecosystem")
        name = reader.text(package, "name", f"{key}.package.name")
        problems: list[str] = []
        parsed_ranges = _ranges(reader, entry, key, problems)
        parsed_versions = _versions(reader, entry, key, problems)
        if ecosystem != "PyPI":
            continue  # checked all the same, so a broken record is reported whatever it covers
        # A package named in several entries (one per branch, say) is one advisory with all of them.
        ranges, versions, known = packages.setdefault(canonicalize_name(name), ([], {}, []))
        ranges.extend(parsed_ranges)
        versions.update(dict.fromkeys(parsed_versions))
        known.extend(problems)

    advisories = tuple(
        Advisory(
            id=record_id,
            package=name,
            modified=modified,
            summary=summary,
            details=details,
            aliases=aliases,
            published=published,
            withdrawn=withdrawn,
            link=link,
            ranges=tuple(ranges),
            versions=tuple(versions),
            problems=tuple(problems),
        )
        for name, (ranges, versions, problems) in sorted(packages.items())
    )
    return OsvRecord(record_id, modified, source, advisories)


def _link(reader: _Reader, data: Mapping[str, Any], record_id: str) -> str:
    references = data.get("references", [])
    if not isinstance(references, list):
        raise InvalidAdvisory(reader.source, "references", "expected a list of {type, url}")
    urls: dict[str, str] = {}
    for position, reference in enumerate(references):
        key = f"references[{position}]"
        if not isinstance(reference, Mapping):
            raise InvalidAdvisory(reader.source, key, "expected a mapping with type and url")
        kind = reader.text(reference, "type", f"{key}.type")
        url = reader.text(reference, "url", f"{key}.url")
        urls.setdefault(kind, url)
    for kind in _LINK_TYPES:
        if kind in urls:
            return urls[kind]
    if urls:
        return next(iter(urls.values()))
    # The OSV database has a page for every id it knows; a record without links still gets one.
    return f"https://osv.dev/vulnerability/{record_id}"


def _ranges(reader: _Reader, entry: Mapping[str, Any], key: str, problems: list[str]) -> list[VersionRange]:
    raw = entry.get("ranges", [])
    if not isinstance(raw, list):
        raise InvalidAdvisory(reader.source, f"{key}.ranges", "expected a list of {type, events}")
    result: list[VersionRange] = []
    for position, item in enumerate(raw):
        range_key = f"{key}.ranges[{position}]"
        if not isinstance(item, Mapping):
            raise InvalidAdvisory(reader.source, range_key, "expected a mapping with type and events")
        kind = reader.text(item, "type", f"{range_key}.type")
        if kind not in _RANGE_TYPES:
            raise InvalidAdvisory(
                reader.source, f"{range_key}.type", f"{kind!r} is not one of {', '.join(_RANGE_TYPES)}"
            )
        events = item.get("events")
        if not isinstance(events, list) or not events:
            raise InvalidAdvisory(reader.source, f"{range_key}.events", "expected a non-empty list of events")
        parsed: list[Event] = []
        usable = True
        for number, event in enumerate(events):
            event_key = f"{range_key}.events[{number}]"
            if not isinstance(event, Mapping) or len(event) != 1:
                raise InvalidAdvisory(
                    reader.source, event_key, f"expected one of {', '.join(_EVENT_KINDS)} with a version"
                )
            ((event_kind, text),) = event.items()
            if event_kind not in _EVENT_KINDS:
                raise InvalidAdvisory(
                    reader.source,
                    f"{event_key}.{event_kind}",
                    f"unknown event; expected one of {', '.join(_EVENT_KINDS)}",
                )
            if not isinstance(text, str) or not text:
                raise InvalidAdvisory(reader.source, f"{event_key}.{event_kind}", "expected a version string")
            if kind == "GIT":
                continue
            if event_kind == "introduced" and text == "0":
                parsed.append(Event("introduced", None))
                continue
            try:
                parsed.append(Event(event_kind, Version(text)))
            except InvalidVersion:
                usable = False
                problems.append(
                    f"{reader.source}: {event_key}.{event_kind}: {text!r} is not a PEP 440 version; "
                    "this range is ignored"
                )
        if kind != "GIT" and usable:
            if not any(event.kind == "introduced" for event in parsed):
                raise InvalidAdvisory(reader.source, f"{range_key}.events", "no introduced event")
            result.append(VersionRange(kind, tuple(sorted(parsed, key=_event_order))))  # type: ignore[arg-type]
    return result


def _versions(reader: _Reader, entry: Mapping[str, Any], key: str, problems: list[str]) -> list[Version]:
    result: list[Version] = []
    for position, text in enumerate(reader.texts(entry, "versions", f"{key}.versions")):
        try:
            result.append(Version(text))
        except InvalidVersion:
            problems.append(
                f"{reader.source}: {key}.versions[{position}]: {text!r} is not a PEP 440 version; ignored"
            )
    return result


@dataclass(frozen=True, slots=True)
class _Reader:
    """Typed reads of record keys that name the file and the key path when they fail."""

    source: str

    def text(self, data: Mapping[str, Any], name: str, key: str) -> str:
        value = data.get(name)
        if value is None:
            raise InvalidAdvisory(self.source, key, "missing")
        if not isinstance(value, str) or not value:
            raise InvalidAdvisory(self.source, key, f"expected a non-empty string, got {value!r}")
        return value

    def optional_text(self, data: Mapping[str, Any], name: str) -> str:
        value = data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidAdvisory(self.source, name, f"expected a string, got {type(value).__name__}")
        return value

    def texts(self, data: Mapping[str, Any], name: str, key: str | None = None) -> Sequence[str]:
        value = data.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidAdvisory(self.source, key or name, "expected a list of strings")
        return value

    def time(self, data: Mapping[str, Any], name: str, key: str) -> datetime:
        return _timestamp(self.source, key, self.text(data, name, key))

    def optional_time(self, data: Mapping[str, Any], name: str) -> datetime | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidAdvisory(self.source, name, f"expected an RFC 3339 time string, got {value!r}")
        return _timestamp(self.source, name, value)


def _timestamp(source: str, key: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise InvalidAdvisory(
            source, key, f"{text!r} is not an RFC 3339 time (like 2024-01-31T12:00:00Z)"
        ) from error
    # Records that leave the zone out mean UTC; comparing aware and naive times would fail.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def by_package(advisories: Iterable[Advisory]) -> dict[str, list[Advisory]]:
    """Advisories grouped by (normalized) package, in id order."""
    grouped: dict[str, list[Advisory]] = {}
    for advisory in sorted(advisories, key=lambda a: a.id):
        grouped.setdefault(advisory.package, []).append(advisory)
    return grouped
