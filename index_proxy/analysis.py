"""Analysis at run time: workers that take jobs from the queue, and the monitor that makes jobs.

A worker fetches the file through the same verified path clients use (so the bytes analysed are
the bytes served), runs the pure analyzers in a thread, and stores the facts by sha256. While it
works it keeps extending its lease, so a slow analysis is not taken over, and a dead worker's job
is taken over once the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from index_proxy.config import Config, MonitorRule, glob_matches
from index_proxy.pages import file_record
from index_proxy.services import Services
from index_proxy.store.analysis import Job
from index_proxy.store.pulp_cursors import PulpCursorStore
from index_proxy.upstreams.folder import project_of_filename
from index_proxy.upstreams.pulp import PulpApi, PulpChanges

__all__ = ["AnalysisWorker", "Monitor", "enqueue_project_files", "monitor_needed", "worker_name"]

log = logging.getLogger("index_proxy.analysis")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class AnalysisWorker:
    def __init__(self, services: Services, name: str | None = None, *, idle_wait: float = 1.0) -> None:
        self.services = services
        self.name = name or worker_name()
        self.lease = services.config.server.analysis_lease
        self.idle_wait = idle_wait

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("analysis worker error", extra={"worker": self.name})
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_wait)

    async def run_once(self) -> bool:
        """Take one job and finish it; False when the queue is empty."""
        job = await self.services.analysis.lease(self.name, self.lease)
        if job is None:
            return False
        log.info(
            "analysis leased",
            extra={"job": job.id, "file_id": job.file_id, "worker": self.name, "attempt": job.attempts},
        )
        heartbeat = asyncio.create_task(self._keep_lease(job))
        try:
            await self._process(job)
        except Exception as error:
            state = await self.services.analysis.fail(job, self.name, f"{type(error).__name__}: {error}")
            log.error(
                "analysis failed",
                extra={
                    "job": job.id,
                    "file_id": job.file_id,
                    "worker": self.name,
                    "error": str(error),
                    "state": state,
                },
            )
        finally:
            heartbeat.cancel()
        return True

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.services.analysis.extend(job, self.name, self.lease)

    async def _process(self, job: Job) -> None:
        from analyzers import analyze

        services = self.services
        record = await services.database.get_file(job.file_id)
        if record is None:
            raise LookupError(f"file {job.file_id} is not in the store")
        digest = await services.files.stored_sha256(record) or await services.files.download(record)
        data = await services.blobs.read(digest)
        facts = await asyncio.to_thread(analyze, data, record.filename)
        done = await services.analysis.complete(
            job,
            self.name,
            facts.to_json(),
            broken=facts.broken,
            mis_tagged=bool(facts.abi and facts.abi.mis_tagged),
        )
        log.info(
            "analysis done" if done else "analysis result dropped: lease lost",
            extra={
                "job": job.id,
                "file_id": job.file_id,
                "file": record.filename,
                "worker": self.name,
                "broken": facts.broken,
            },
        )


def _version_allowed(filename: str, versions: SpecifierSet | None) -> bool:
    if versions is None:
        return True
    parsed = project_of_filename(filename)
    if parsed is None:
        return False
    try:
        return versions.contains(Version(parsed[1]), prereleases=True)
    except InvalidVersion:
        return False


async def enqueue_project_files(
    services: Services,
    index_name: str,
    project: str,
    reason: str,
    *,
    versions: SpecifierSet | None = None,
    filenames: Iterable[str] | None = None,
) -> int:
    """Revalidate one index's page for ``project`` and queue its files (new ones only); returns how many."""
    index = services.config.index(index_name)
    page, failure, _changed = await services.pages.upstream_page(index, project, max_age=0)
    if failure is not None:
        raise ConnectionError(f"index {index_name!r}: {failure}")
    if page is None:
        return 0
    wanted = None if filenames is None else set(filenames)
    files = [
        f
        for f in page.files
        if _version_allowed(f.filename, versions) and (wanted is None or f.filename in wanted)
    ]
    records = [file_record(index.name, project, f) for f in files]
    await services.database.upsert_files(records)
    return await services.analysis.enqueue([r.file_id for r in records], reason)


def monitor_needed(config: Config) -> bool:
    """Whether anything is polled: ``monitor:`` rules, or Pulp indexes with ``api_url`` and ``repository``."""
    return bool(config.monitor) or any(index.watches_pulp for index in config.indexes)


class Monitor:
    """Polls the ``monitor:`` rules' indexes with conditional requests and queues new files.

    Pulp indexes with ``api_url`` and ``repository`` are polled too, through Pulp's REST API: the
    repository versions made since the stored cursor name exactly the new files.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self.cursors = PulpCursorStore(services.database)

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.services.config.server.monitor_interval
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:
                log.exception("monitor poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def poll_once(self) -> int:
        queued = 0
        for rule in self.services.config.monitor:
            for project in await self._projects(rule):
                try:
                    queued += await enqueue_project_files(
                        self.services,
                        rule.index,
                        project,
                        "monitor",
                        versions=SpecifierSet(rule.versions) if rule.versions else None,
                    )
                except ConnectionError as error:
                    log.warning(
                        "monitor could not poll",
                        extra={"index": rule.index, "project": project, "error": str(error)},
                    )
        for index_name, api in self.services.pulp.items():
            queued += await self.poll_pulp(index_name, api)
        if queued:
            log.info("monitor queued new files", extra={"count": queued})
        return queued

    async def poll_pulp(self, index_name: str, api: PulpApi) -> int:
        """Queue the files the index's Pulp repository gained since the cursor; returns how many.

        The cursor moves only once every new file is queued, so a failure is retried next time.
        """
        cursor = await self.cursors.get(index_name)
        outcome = await api.changes(cursor)
        if not isinstance(outcome, PulpChanges):
            log.warning("monitor could not read Pulp", extra={"index": index_name, "error": outcome.reason})
            return 0
        by_project: dict[str, set[str]] = {}
        for package in outcome.packages:
            by_project.setdefault(package.project, set()).add(package.filename)
        queued = 0
        for project, filenames in sorted(by_project.items()):
            try:
                queued += await enqueue_project_files(
                    self.services, index_name, project, "pulp", filenames=filenames
                )
            except ConnectionError as error:
                log.warning(
                    "monitor could not read the Pulp index page",
                    extra={"index": index_name, "project": project, "error": str(error)},
                )
                return queued
            self.services.pages.invalidate(project)
        if outcome.cursor != cursor:
            await self.cursors.put(index_name, outcome.cursor)
            log.info(
                "Pulp repository read",
                extra={
                    "index": index_name,
                    "repository_version": outcome.cursor.version,
                    "packages": len(outcome.packages),
                    "queued": queued,
                },
            )
        return queued

    async def _projects(self, rule: MonitorRule) -> list[str]:
        if not any(ch in pattern for pattern in rule.projects for ch in "*?["):
            return list(rule.projects)
        index = self.services.config.index(rule.index)
        listing = await self.services.pages.upstream_list(index, max_age=0)
        if listing is None:
            return []
        from packaging.utils import canonicalize_name

        return sorted({canonicalize_name(n) for n in listing.names if glob_matches(rule.projects, n)})
