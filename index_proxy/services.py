"""Everything a proxy process holds, opened and closed in one place (the app and the worker share it)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import httpx

from analyzers.facts import SCHEMA_VERSION
from index_proxy.config import Config, IndexConfig
from index_proxy.files import FileService
from index_proxy.metrics import Metrics
from index_proxy.pages import PageService
from index_proxy.status import UpstreamHealth
from index_proxy.store.analysis import AnalysisStore
from index_proxy.store.blobs import BlobStore, open_blob_store
from index_proxy.store.db import Database
from index_proxy.upstreams.base import Upstream
from index_proxy.upstreams.folder import FolderUpstream
from index_proxy.upstreams.http import HttpUpstream, make_http_client
from index_proxy.upstreams.pip_index import pip_index_url

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


def make_upstream(index: IndexConfig, client: httpx.AsyncClient) -> Upstream:
    if index.kind == "folder":
        return FolderUpstream(index)
    url = pip_index_url() if index.url == "pip" else index.url
    return HttpUpstream(index, url, client)


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
        yield Services(config, database, blobs, upstreams, pages, files, analysis, metrics, health)
