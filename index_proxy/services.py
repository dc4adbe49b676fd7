"""Everything a proxy process holds, opened and closed in one place (the app and the worker share it)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from analyzers.facts import SCHEMA_VERSION
from index_proxy.config import Config, IndexConfig
from index_proxy.files import FileService
from index_proxy.metrics import Metrics
from index_proxy.pages import PageService
from index_proxy.status import UpstreamHealth
from index_proxy.store.advisories import AdvisoryStore
from index_proxy.store.analysis import AnalysisStore
from index_proxy.store.blobs import BlobStore, open_blob_store
from index_proxy.store.db import Database
from index_proxy.upstreams.base import Upstream
from index_proxy.upstreams.folder import FolderUpstream
from index_proxy.upstreams.http import HttpUpstream, make_http_client
from index_proxy.upstreams.pip_index import pip_index_url
from index_proxy.upstreams.pulp import PulpApi
from prescriptions import CompileCache, UnitIndex, load

__all__ = ["Services", "open_services"]

log = logging.getLogger("index_proxy.services")


@dataclass
class Services:
    config: Config
    database: Database
    blobs: BlobStore
    upstreams: Mapping[str, Upstream]
    pages: PageService
    files: FileService
    analysis: AnalysisStore
    metrics: Metrics
    health: UpstreamHealth
    prescriptions: UnitIndex | None = None
    """The compiled rules of ``config.prescriptions``; None when none are configured."""
    advisories_for: Callable[[Sequence[str]], Awaitable[Mapping[str, Sequence[Any]]]] | None = None
    """Known security advisories of some projects; None when none were imported."""
    pulp: Mapping[str, PulpApi] = dataclasses.field(default_factory=dict)
    """Per ``kind: pulp`` index with ``api_url`` and ``repository``: where its new content is found."""


def make_upstream(index: IndexConfig, client: httpx.AsyncClient) -> Upstream:
    if index.kind == "folder":
        return FolderUpstream(index)
    url = pip_index_url() if index.url == "pip" else index.url
    return HttpUpstream(index, url, client)


class KnownAdvisories:
    """The advisory store as resolutions ask it: no query at all while none are imported.

    Imports come from another process (``index-proxy advisories import``), so whether the store
    is empty is looked at again after :attr:`RECHECK` seconds.
    """

    RECHECK = 30.0

    def __init__(self, store: AdvisoryStore) -> None:
        self.store = store
        self._known_empty_until = 0.0

    async def for_projects(self, names: Sequence[str]) -> Mapping[str, Sequence[Any]]:
        now = time.monotonic()
        if now < self._known_empty_until:
            return {}
        if await self.store.count() == 0:
            self._known_empty_until = now + self.RECHECK
            return {}
        self._known_empty_until = 0.0
        return await self.store.for_projects(names)


def load_prescriptions(config: Config) -> UnitIndex | None:
    """The configured rules, compiled (from the cache beside the blobs when unchanged).

    :raises prescriptions.PrescriptionError: a rule file does not load; every problem is listed
        with its file, line and key, and nothing starts with half of the rules.
    """
    if not config.prescriptions:
        return None
    blobs = config.storage.blobs
    cache_dir = (
        None if "://" in blobs else os.path.join(os.path.dirname(os.path.abspath(blobs)), "prescriptions")
    )
    loaded = load(config.prescriptions, cache=CompileCache(cache_dir)).check()
    log.info(
        "prescriptions loaded",
        extra={"units": len(loaded.units), "instances": len(loaded.index), "from_cache": loaded.from_cache},
    )
    return loaded.index


@contextlib.asynccontextmanager
async def open_services(config: Config, metrics: Metrics | None = None) -> AsyncIterator[Services]:
    metrics = metrics or Metrics()
    async with contextlib.AsyncExitStack() as stack:
        # The blob store first: a missing bucket is reported before any migration runs.
        blobs = await stack.enter_async_context(open_blob_store(config.storage, config.source))
        database = Database(config.storage.database)
        stack.push_async_callback(database.close)
        await database.migrate()
        client = make_http_client()
        stack.push_async_callback(client.aclose)
        upstreams = {index.name: make_upstream(index, client) for index in config.indexes}
        health = UpstreamHealth()
        for index in config.indexes:
            health.status(index.name)
        analysis = AnalysisStore(database)
        requeued = await analysis.requeue_outdated(SCHEMA_VERSION)
        if requeued:
            log.info(
                "facts of an older schema queued again", extra={"count": requeued, "schema": SCHEMA_VERSION}
            )
        pages = PageService(config, upstreams, database, metrics, health, analysis=analysis)
        files = FileService(upstreams, database, blobs, pages, metrics, analysis)
        rules = load_prescriptions(config)
        advisories = KnownAdvisories(AdvisoryStore(database))
        pulp = {index.name: PulpApi(index, client) for index in config.indexes if index.watches_pulp}
        yield Services(
            config,
            database,
            blobs,
            upstreams,
            pages,
            files,
            analysis,
            metrics,
            health,
            prescriptions=rules,
            advisories_for=advisories.for_projects,
            pulp=pulp,
        )
