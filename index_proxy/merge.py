"""Merging upstream pages into one project page, with the dependency-confusion guards.

The rules, in order (DESIGN.md, "Merging and dependency-confusion guards"):

1. names are compared PEP 503-normalized everywhere;
2. a name matched by an index's ``owns`` is served by that index alone; every other index's
   files for it are dropped (``owned-elsewhere``);
3. ``only`` limits which projects an index may contribute (such indexes are not even asked);
   otherwise the highest-priority index that has the project serves it and lower ones are not
   mixed in (``shadowed``);
4. indexes with ``hardware`` are variant sources: their files join the serving index's page,
   marked with the hardware they need; the same filename with different hashes keeps the
   higher-priority file (``hash-conflict``);
5. a project no index has is not found.

Everything here is a pure function of the configuration and the pages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from index_proxy.config import HardwareSpec, IndexConfig, glob_matches
from index_proxy.simple.model import DistributionFile, ProjectPage
from index_proxy.store.db import GuardEvent
from index_proxy.upstreams.folder import project_of_filename

__all__ = [
    "MergeOutcome",
    "MergedProject",
    "ServedFile",
    "Undecidable",
    "file_id_of",
    "indexes_to_ask",
    "merge_project",
    "owner_of",
]

OWNED_ELSEWHERE = "owned-elsewhere"
SHADOWED = "shadowed"
HASH_CONFLICT = "hash-conflict"


@dataclass(frozen=True, slots=True)
class ServedFile:
    file: DistributionFile
    index: str
    file_id: str
    version: str | None
    hardware: HardwareSpec | None = None


@dataclass(frozen=True, slots=True)
class MergedProject:
    name: str
    source: str
    files: tuple[ServedFile, ...]
    # Versions the serving index lists (PEP 700 allows versions without files); a view adds the
    # versions of the files it shows.
    listed_versions: tuple[str, ...] = ()
    events: tuple[GuardEvent, ...] = ()
    project_status: str | None = None

    def versions_of(self, files: Sequence[ServedFile]) -> tuple[str, ...]:
        versions = {served.version for served in files if served.version is not None}
        versions.update(self.listed_versions)
        return tuple(sorted(versions))


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """What the merge serves (None: no index may serve the project) and what it dropped."""

    merged: MergedProject | None
    events: tuple[GuardEvent, ...] = ()
    owner: str | None = None


class Undecidable(Exception):
    """An index that outranks the one that has the project could not be asked.

    Serving the lower index's files then could hand out exactly the package the guard exists to
    stop, so the merge refuses (as uv's first-index strategy does on a network error).
    """

    def __init__(self, project: str, index: str, reason: str) -> None:
        super().__init__(
            f"cannot serve {project!r}: index {index!r}, which takes priority for it, is unavailable "
            f"({reason}) and no earlier copy of its page is cached; retry when it is back"
        )
        self.project = project
        self.index = index
        self.reason = reason


def owner_of(indexes: Sequence[IndexConfig], project: str) -> IndexConfig | None:
    for index in indexes:
        if index.owns and glob_matches(index.owns, project):
            return index
    return None


def _allowed(index: IndexConfig, project: str) -> bool:
    return index.only is None or glob_matches(index.only, project)


def indexes_to_ask(indexes: Sequence[IndexConfig], project: str) -> list[IndexConfig]:
    """The indexes whose page for ``project`` the merge needs, in priority order.

    For an owned name the others are asked too: their files are what the guard drops, and a
    dropped file is only an event if it was seen.
    """
    return [index for index in indexes if _allowed(index, project)]


def file_id_of(index_name: str, file: DistributionFile) -> str:
    """The id in the file's proxy URL: its sha256 when listed, else a digest of where it lives."""
    if file.sha256:
        return file.sha256.lower()
    return "u" + hashlib.sha256(f"{index_name}\0{file.url}".encode()).hexdigest()[:40]


def merge_project(
    indexes: Sequence[IndexConfig],
    project: str,
    pages: Mapping[str, ProjectPage | None],
    unavailable: Mapping[str, str],
) -> MergeOutcome:
    """Merge the pages of ``indexes`` for ``project`` (normalized) into what the proxy serves.

    ``pages`` maps an index name to its page, or None when the index does not have the project;
    ``unavailable`` maps the names of indexes that could not be asked to the reason.
    ``merged`` is None when no index may serve the project (rule 5), yet files dropped on the way
    are still events: an owned name published elsewhere is the attack the guard is for.
    Raises Undecidable (see there).
    """
    asked = indexes_to_ask(indexes, project)
    owner = owner_of(indexes, project)
    events: list[GuardEvent] = []
    if owner is not None:
        source: IndexConfig | None = owner
        if owner.name in unavailable:
            raise Undecidable(project, owner.name, unavailable[owner.name])
        if pages.get(owner.name) is None:
            source = None
    else:
        source = _first_index(asked, project, pages, unavailable)

    kept: dict[str, ServedFile] = {}
    for index in asked:
        page = pages.get(index.name)
        if page is None:
            continue
        if owner is not None and index is not owner:
            events += _drop_all(page, project, index, owner.name, OWNED_ELSEWHERE, "owned by")
            continue
        if source is None:
            continue
        if index is not source and index.hardware is None:
            events += _drop_all(page, project, index, source.name, SHADOWED, "served by higher-priority")
            continue
        for file in page.files:
            events += _add_file(kept, file, index, project)

    owner_name = owner.name if owner is not None else None
    if source is None:
        return MergeOutcome(None, tuple(events), owner_name)
    source_page = pages[source.name]
    assert source_page is not None
    merged = MergedProject(
        name=project,
        source=source.name,
        files=tuple(kept.values()),
        listed_versions=tuple(source_page.versions),
        events=tuple(events),
        project_status=source_page.project_status,
    )
    return MergeOutcome(merged, tuple(events), owner_name)


def _first_index(
    asked: Sequence[IndexConfig],
    project: str,
    pages: Mapping[str, ProjectPage | None],
    unavailable: Mapping[str, str],
) -> IndexConfig | None:
    for index in asked:
        if index.hardware is not None:
            continue
        if index.name in unavailable:
            if any(pages.get(later.name) is not None for later in asked):
                raise Undecidable(project, index.name, unavailable[index.name])
            continue
        if pages.get(index.name) is not None:
            return index
    # Only variant sources have it: they serve it alone, still marked with their hardware.
    for index in asked:
        if pages.get(index.name) is not None:
            return index
    return None


def _add_file(
    kept: dict[str, ServedFile], file: DistributionFile, index: IndexConfig, project: str
) -> list[GuardEvent]:
    earlier = kept.get(file.filename)
    same_bytes = earlier is not None and bool(earlier.file.sha256) and earlier.file.sha256 == file.sha256
    # The same bytes on a generic index run anywhere: never let a variant source's copy hide them.
    if earlier is None or (same_bytes and earlier.hardware is not None and index.hardware is None):
        parsed = project_of_filename(file.filename)
        kept[file.filename] = ServedFile(
            file, index.name, file_id_of(index.name, file), parsed[1] if parsed else None, index.hardware
        )
        return []
    if earlier.file.sha256 and file.sha256 and earlier.file.sha256.lower() != file.sha256.lower():
        return [
            GuardEvent(
                HASH_CONFLICT,
                project,
                file.filename,
                index.name,
                earlier.index,
                f"sha256 {file.sha256} differs from {earlier.file.sha256} on higher-priority index "
                f"{earlier.index!r}; kept that one",
            )
        ]
    return []


def _drop_all(
    page: ProjectPage, project: str, index: IndexConfig, kept_index: str, kind: str, why: str
) -> list[GuardEvent]:
    return [
        GuardEvent(
            kind, project, file.filename, index.name, kept_index, f"{project!r} is {why} {kept_index!r}"
        )
        for file in page.files
    ]
