"""Merged project pages: fetched from upstreams, cached (memory, then database), rendered once.

A warm request costs a dict lookup: each (project, view, format) is rendered to bytes once,
with its gzip form and ETag, and kept until the page's TTL runs out. Refreshes are
single-flight (concurrent misses for one page make one round of upstream requests), revalidate
with If-None-Match, and fall back to the stale page when an upstream fails.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from index_proxy.config import Config, HardwareSpec, IndexConfig, glob_matches
from index_proxy.machine import hardware_fits, machine_files
from index_proxy.merge import (
    MergedProject,
    ServedFile,
    Undecidable,
    file_id_of,
    indexes_to_ask,
    merge_project,
    owner_of,
)
from index_proxy.metrics import Metrics
from index_proxy.render import (
    render_list_html,
    render_list_json,
    render_project_html,
    render_project_json,
)
from index_proxy.simple.model import DistributionFile, ProjectList, ProjectPage
from index_proxy.simple.negotiate import PageFormat
from index_proxy.status import UpstreamHealth
from index_proxy.store.analysis import AnalysisStore
from index_proxy.store.codec import decode_list, decode_page, encode_list, encode_page
from index_proxy.store.db import Database, FileRecord, GuardEvent, StoredPage
from index_proxy.upstreams.base import Found, NotFound, NotModified, PageOutcome, Upstream

__all__ = ["PageService", "ProjectUnavailable", "RenderedPage", "Undecidable", "View", "file_record"]

log = logging.getLogger("index_proxy.pages")

_LIST_KEY = ""


class ProjectUnavailable(Exception):
    """No page can be served: the upstreams that could have it failed and nothing is cached."""

    def __init__(self, project: str, reasons: Mapping[str, str]) -> None:
        detail = "; ".join(f"{index}: {reason}" for index, reason in reasons.items())
        super().__init__(f"cannot serve {project!r}: upstreams unavailable and no cached page ({detail})")
        self.project = project
        self.reasons = dict(reasons)


@dataclass(frozen=True, slots=True)
class View:
    """How a page is shown: where file links point from, and which files it lists.

    The plain view leaves out builds from ``hardware:`` indexes unless ``profile`` (the default
    profile) can run them. A machine view (``machine=True``) lists only what the profile's machine
    can run, judged by index and analysed facts, and hides a version's generic builds where a build
    made for the machine covers the same interpreter and ABI, so plain pip picks it. An index view
    lists one index's files, whatever hardware they need (for locks, which pin files by hash).
    """

    prefix: str
    profile: HardwareSpec | None
    key: str
    machine: bool = False
    index: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedPage:
    body: bytes
    gzip_body: bytes
    etag: bytes
    gzip_etag: bytes


@dataclass
class _Entry:
    merged: MergedProject | None
    expires: float
    metadata_hashes: dict[str, str]
    facts: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # sha256 -> analysed facts
    rendered: dict[tuple[str, PageFormat], RenderedPage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Revalidated:
    """What an index said: ``payload`` (stored form) or ``fresh`` (just parsed), or neither."""

    payload: bytes | None
    fresh: ProjectPage | ProjectList | None = None
    failure: str | None = None
    changed: bool = False


@dataclass
class _ListEntry:
    names: tuple[str, ...]
    expires: float
    rendered: dict[PageFormat, RenderedPage] = field(default_factory=dict)


def _rendered(body: bytes, suffix: str) -> RenderedPage:
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    return RenderedPage(
        body=body,
        gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
        etag=f'"{digest}-{suffix}"'.encode(),
        gzip_etag=f'"{digest}-{suffix}-gz"'.encode(),
    )


class PageService:
    def __init__(
        self,
        config: Config,
        upstreams: Mapping[str, Upstream],
        database: Database,
        metrics: Metrics,
        health: UpstreamHealth,
        clock: Callable[[], float] = time.time,
        analysis: AnalysisStore | None = None,
    ) -> None:
        self.config = config
        self.indexes: Sequence[IndexConfig] = config.indexes
        self.upstreams = upstreams
        self.database = database
        self.metrics = metrics
        self.health = health
        self.clock = clock
        self._projects: dict[str, _Entry] = {}
        self._list: _ListEntry | None = None
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        # Projects whose stored upstream pages must be revalidated, whatever their age.
        self._forced: set[str] = set()
        self.files: dict[str, ServedFile] = {}
        self.priority = {index.name: position for position, index in enumerate(config.indexes)}
        self.analysis = analysis or AnalysisStore(database)

    # -- the hot path -------------------------------------------------------------------
    def cached_project(self, project: str, view: View, page_format: PageFormat) -> RenderedPage | None:
        """The rendered page if it is fresh; None means ``load_project`` must run first."""
        entry = self._projects.get(project)
        if entry is None or entry.merged is None or entry.expires < self.clock():
            return None
        rendered = entry.rendered.get((view.key, page_format))
        if rendered is None:
            rendered = self._render(entry, entry.merged, view, page_format)
        return rendered

    def cached_list(self, page_format: PageFormat) -> RenderedPage | None:
        entry = self._list
        if entry is None or entry.expires < self.clock():
            return None
        rendered = entry.rendered.get(page_format)
        if rendered is None:
            body = (
                render_list_json(entry.names)
                if page_format is PageFormat.JSON
                else render_list_html(entry.names)
            )
            rendered = entry.rendered[page_format] = _rendered(
                body, "j" if page_format is PageFormat.JSON else "h"
            )
        return rendered

    def _render(
        self, entry: _Entry, merged: MergedProject, view: View, page_format: PageFormat
    ) -> RenderedPage:
        files = self._visible(entry, merged, view)
        if page_format is PageFormat.JSON:
            body = render_project_json(
                merged.name,
                files,
                merged.versions_of(files),
                view.prefix,
                entry.metadata_hashes,
                merged.project_status,
            )
        else:
            body = render_project_html(merged.name, files, view.prefix, entry.metadata_hashes)
        rendered = _rendered(body, "j" if page_format is PageFormat.JSON else "h")
        entry.rendered[(view.key, page_format)] = rendered
        return rendered

    def _visible(self, entry: _Entry, merged: MergedProject, view: View) -> list[ServedFile]:
        if view.index == "*":
            return list(merged.files)
        if view.index is not None:
            return [served for served in merged.files if served.index == view.index]
        if not view.machine:
            return [served for served in merged.files if hardware_fits(served.hardware, view.profile)]
        return machine_files(merged.files, view.profile, entry.facts, self.priority)

    # -- loading ------------------------------------------------------------------------
    async def load_project(self, project: str) -> MergedProject | None:
        """The merged page, refreshed if stale; None when no index has the project.

        Raises Undecidable or ProjectUnavailable when the answer cannot be known.
        """
        entry = self._projects.get(project)
        if entry is not None and entry.expires >= self.clock():
            return entry.merged
        return await self._single_flight(project, lambda: self._refresh_project(project))

    async def load_list(self) -> tuple[str, ...]:
        if self._list is not None and self._list.expires >= self.clock():
            return self._list.names
        return await self._single_flight(_LIST_KEY, self._refresh_list)

    async def _single_flight(self, key: str, work: Callable[[], Awaitable[Any]]) -> Any:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work()
        except BaseException as error:
            future.set_exception(error)
            # Mark retrieved: waiters may be absent, and an unobserved exception is only noise.
            future.exception()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]

    def invalidate(self, project: str | None = None) -> None:
        """Make the next request revalidate with the upstreams (admin refresh, hooks)."""
        if project is None:
            self._forced.update(self._projects)
            self._projects.clear()
            self._list = None
        else:
            self._projects.pop(project, None)
            self._forced.add(project)

    def metadata_known(self, project: str, file_id: str, sha256: str) -> None:
        """Extracted metadata now has a hash: advertise it from the next render on."""
        entry = self._projects.get(project)
        if entry is not None:
            entry.metadata_hashes[file_id] = sha256
            entry.rendered.clear()

    async def _refresh_project(self, project: str) -> MergedProject | None:
        started = time.perf_counter()
        asked = indexes_to_ask(self.indexes, project)
        max_age = 0.0 if project in self._forced else None
        self._forced.discard(project)
        results = await asyncio.gather(
            *(self.upstream_page(index, project, max_age=max_age) for index in asked)
        )
        pages: dict[str, ProjectPage | None] = {}
        unavailable: dict[str, str] = {}
        changed = project not in self._projects
        for index, (page, failure, fresh) in zip(asked, results, strict=True):
            if failure is not None:
                unavailable[index.name] = failure
            else:
                pages[index.name] = page
            changed = changed or fresh
        outcome = merge_project(self.indexes, project, pages, unavailable)
        merged = outcome.merged
        if changed and outcome.events:
            await self._record_events(outcome.events)
        if merged is None and unavailable:
            raise ProjectUnavailable(project, unavailable)
        metadata_hashes: dict[str, str] = {}
        facts: dict[str, Mapping[str, Any]] = {}
        if merged is not None:
            for served in merged.files:
                self.files[served.file_id] = served
            if changed:
                await self.database.upsert_files(
                    [file_record(served.index, merged.name, served.file) for served in merged.files]
                )
            metadata_hashes = {
                record.file_id: record.metadata_sha256
                for record in await self.database.files_of_project(project)
                if record.metadata_sha256
            }
            stored = await self.analysis.facts_for([s.file.sha256 for s in merged.files if s.file.sha256])
            facts = {sha256: item.facts for sha256, item in stored.items()}
        ttl = min((self._ttl(index) for index in asked), default=self.config.server.page_ttl)
        self._projects[project] = _Entry(merged, self.clock() + ttl, metadata_hashes, facts)
        self.metrics.refresh_seconds.observe(time.perf_counter() - started)
        return merged

    async def _record_events(self, events: Sequence[GuardEvent]) -> None:
        for event in await self.database.record_guard_events(events):
            self.metrics.guard_events.labels(event.kind).inc()
            log.warning(
                "guard dropped a file",
                extra={
                    "kind": event.kind,
                    "project": event.project,
                    "file": event.filename,
                    "index": event.index_name,
                    "kept_index": event.kept_index,
                },
            )

    def _ttl(self, index: IndexConfig) -> float:
        return index.ttl if index.ttl is not None else self.config.server.page_ttl

    async def upstream_page(
        self, index: IndexConfig, project: str, *, max_age: float | None = None
    ) -> tuple[ProjectPage | None, str | None, bool]:
        """One index's page: (page or None if the index lacks it, failure reason, whether it changed).

        ``max_age`` overrides the index's TTL (the monitor passes 0 to revalidate now).
        """
        upstream = self.upstreams[index.name]
        result = await self._revalidate(
            index, project, lambda etag: upstream.project_page(project, etag), encode_page, max_age
        )
        page = result.fresh if isinstance(result.fresh, ProjectPage) else None
        if page is None and result.payload is not None:
            page = decode_page(result.payload)
        return page, result.failure, result.changed

    async def _revalidate(
        self,
        index: IndexConfig,
        key: str,
        fetch: Callable[[str | None], Awaitable[PageOutcome]],
        encode: Callable[[Any], bytes],
        max_age: float | None,
    ) -> _Revalidated:
        """The stored page if young enough, else a conditional fetch; stale on failure."""
        stored = await self.database.get_page(index.name, key)
        now = self.clock()
        age_limit = self._ttl(index) if max_age is None else max_age
        kept = stored.payload if stored is not None and stored.found else None
        if stored is not None and now - stored.fetched_at < age_limit:
            return _Revalidated(kept)
        outcome = await fetch(stored.etag if kept is not None else None)
        self.metrics.upstream_requests.labels(index.name, type(outcome).__name__).inc()
        match outcome:
            case Found(page=page, etag=etag):
                self.health.succeeded(index.name)
                await self.database.put_page(StoredPage(index.name, key, True, etag, now, encode(page)))
                return _Revalidated(None, fresh=page, changed=True)
            case NotModified() if stored is not None:
                self.health.succeeded(index.name)
                await self.database.touch_page(index.name, key, now)
                return _Revalidated(kept)
            case NotFound():
                self.health.succeeded(index.name)
                await self.database.put_page(StoredPage(index.name, key, False, None, now, b""))
                return _Revalidated(None, changed=stored is None or stored.found)
        reason = getattr(outcome, "reason", f"unexpected answer {type(outcome).__name__}")
        self.health.failed(index.name, reason)
        where = {"index": index.name, "project": key or "/", "reason": reason}
        if stored is None:
            log.error("upstream failed, nothing cached", extra=where)
            return _Revalidated(None, failure=reason)
        self.health.status(index.name).stale_served += 1
        self.metrics.stale_served.labels(index.name).inc()
        log.warning("upstream failed, serving stale page", extra=where)
        return _Revalidated(kept)

    async def _refresh_list(self) -> tuple[str, ...]:
        names: set[str] = set()
        results = await asyncio.gather(*(self.upstream_list(index) for index in self.indexes))
        for index, project_list in zip(self.indexes, results, strict=True):
            if project_list is None:
                continue
            for raw in project_list.names:
                name = canonicalize_name(raw)
                if index.only is not None and not glob_matches(index.only, name):
                    continue
                owner = owner_of(self.indexes, name)
                if owner is not None and owner is not index:
                    continue
                names.add(name)
        ttl = min((self._ttl(index) for index in self.indexes), default=self.config.server.page_ttl)
        result = tuple(sorted(names))
        self._list = _ListEntry(result, self.clock() + ttl)
        return result

    async def upstream_list(self, index: IndexConfig, *, max_age: float | None = None) -> ProjectList | None:
        upstream = self.upstreams[index.name]
        result = await self._revalidate(index, _LIST_KEY, upstream.project_list, encode_list, max_age)
        if isinstance(result.fresh, ProjectList):
            return result.fresh
        return decode_list(result.payload) if result.payload is not None else None


def file_record(index_name: str, project: str, file: DistributionFile) -> FileRecord:
    """What the store keeps of a listed file, so that its ``/files/`` URL works on any replica."""
    core_metadata = file.core_metadata
    return FileRecord(
        file_id=file_id_of(index_name, file),
        index_name=index_name,
        project=project,
        filename=file.filename,
        upstream_url=file.url,
        sha256=file.sha256,
        size=file.size,
        upstream_metadata=dict(core_metadata) if isinstance(core_metadata, Mapping) else core_metadata,
        metadata_sha256=None,
        stored=False,
    )
