"""Distribution files and their core metadata, through the proxy.

Bytes from an upstream are streamed to the client while they are written to the blob store;
the sha256 is checked before the blob is kept, and the last chunk is held back until then, so a
client never receives a complete file whose hash is wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping

from packaging.metadata import parse_email

from index_proxy.metrics import Metrics
from index_proxy.pages import PageService
from index_proxy.store.analysis import AnalysisStore
from index_proxy.store.blobs import BlobStore, DigestMismatch
from index_proxy.store.db import Database, FileRecord, GuardEvent
from index_proxy.upstreams.base import Upstream, UpstreamFileError
from index_proxy.wheel_zip import InvalidWheelZip, RangeFetcher, metadata_by_ranges, metadata_from_wheel

__all__ = ["FileService", "MetadataUnavailable", "UnknownFile"]

log = logging.getLogger("index_proxy.files")

HASH_MISMATCH = "hash-mismatch"
_METADATA_CACHE_BYTES = 64 * 1024 * 1024


class UnknownFile(Exception):
    pass


class MetadataUnavailable(Exception):
    pass


class FileService:
    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        database: Database,
        blobs: BlobStore,
        pages: PageService,
        metrics: Metrics,
        analysis: AnalysisStore | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.database = database
        self.blobs = blobs
        self.pages = pages
        self.metrics = metrics
        self.analysis = analysis
        self._downloads: dict[str, asyncio.Event] = {}
        # Metadata is what resolvers fetch for every candidate: keep recent ones in memory
        # (file_id -> (filename, bytes)), bounded by _METADATA_CACHE_BYTES.
        self._metadata_cache: OrderedDict[str, tuple[str, bytes, str]] = OrderedDict()
        self._metadata_cache_size = 0
        self._requires_dist: dict[str, list[str]] = {}
        self._metadata_locks: dict[str, asyncio.Lock] = {}

    async def lookup(self, file_id: str, filename: str) -> FileRecord:
        record = await self.database.get_file(file_id)
        if record is None or record.filename != filename:
            raise UnknownFile(
                f"no file {filename!r} with id {file_id!r} is known; file links come from /simple/ pages, "
                "fetch the project's page first"
            )
        return record

    async def stored_sha256(self, record: FileRecord) -> str | None:
        """The blob key when the file's bytes are already kept."""
        if record.sha256 and await self.blobs.exists(record.sha256):
            return record.sha256
        return None

    async def wait_for_other_download(self, record: FileRecord) -> bool:
        """If another request is downloading this file, wait for it; True when it was."""
        event = self._downloads.get(record.file_id)
        if event is None:
            return False
        await event.wait()
        return True

    async def download(self, record: FileRecord) -> str:
        """Fetch the whole file into the blob store (for Range/HEAD on a cold file); its sha256."""
        digest: str | None = None
        async for _chunk in self.stream_from_upstream(record):
            pass
        refreshed = await self.database.get_file(record.file_id)
        digest = refreshed.sha256 if refreshed else None
        if digest is None:
            raise UpstreamFileError(record.upstream_url, "download did not complete")
        return digest

    async def stream_from_upstream(self, record: FileRecord) -> AsyncIterator[bytes]:
        """Yield the file's bytes from its upstream, keeping them once the hash checks out.

        The final chunk is only yielded after the digest matched; on a mismatch DigestMismatch
        is raised instead, the blob is discarded and a guard event is recorded.
        """
        done = asyncio.Event()
        self._downloads[record.file_id] = done
        upstream = self.upstreams[record.index_name]
        writer = await self.blobs.open_writer(record.sha256)
        held: bytes | None = None
        try:
            async with upstream.open_file(record.upstream_url) as stream:
                async for chunk in stream.chunks():
                    await writer.write(chunk)
                    if held is not None:
                        yield held
                    held = chunk
            try:
                digest = await writer.commit(record.sha256)
            except DigestMismatch as mismatch:
                await self._mismatch(record, mismatch)
                raise
            await self.database.mark_stored(record.file_id, digest, writer.size)
            self.metrics.files.labels("upstream").inc()
            if self.analysis is not None:
                # A first download is a file someone uses: learn what it needs.
                await self.analysis.enqueue([record.file_id], "download")
            if held is not None:
                yield held
        except BaseException:
            await writer.abort()
            raise
        finally:
            self._downloads.pop(record.file_id, None)
            done.set()

    async def _mismatch(self, record: FileRecord, mismatch: DigestMismatch) -> None:
        self.metrics.hash_mismatches.labels(record.index_name).inc()
        log.error(
            "upstream file does not match its listed sha256; not kept",
            extra={
                "index": record.index_name,
                "file": record.filename,
                "expected": mismatch.expected,
                "actual": mismatch.actual,
            },
        )
        await self.database.record_guard_events(
            [
                GuardEvent(
                    HASH_MISMATCH,
                    record.project,
                    record.filename,
                    record.index_name,
                    None,
                    f"bytes from {record.upstream_url} have sha256 {mismatch.actual}, the page listed "
                    f"{mismatch.expected}",
                )
            ]
        )

    # -- core metadata ----------------------------------------------------------------
    async def requires_dist(self, file_id: str) -> list[str]:
        """The Requires-Dist lines of a file's core metadata (parsed once per file)."""
        parsed = self._requires_dist.get(file_id)
        if parsed is not None:
            return parsed
        served = self.pages.files.get(file_id)
        cached = self.cached_metadata(file_id, served.file.filename) if served is not None else None
        data = cached[0] if cached is not None else None
        if data is None:
            record = await self.database.get_file(file_id)
            if record is None:
                raise MetadataUnavailable(f"file {file_id} is not in the store")
            data = await self.core_metadata(record)
        raw, _unparsed = parse_email(data)
        parsed = list(raw.get("requires_dist", []))
        if len(self._requires_dist) > 100_000:
            self._requires_dist.clear()
        self._requires_dist[file_id] = parsed
        return parsed

    def cached_metadata(self, file_id: str, filename: str) -> tuple[bytes, str] | None:
        """(METADATA bytes, their sha256) when held in memory."""
        cached = self._metadata_cache.get(file_id)
        if cached is None or cached[0] != filename:
            return None
        self._metadata_cache.move_to_end(file_id)
        return cached[1], cached[2]

    def _remember_metadata(self, record: FileRecord, data: bytes) -> None:
        if record.file_id in self._metadata_cache:
            return
        # The digest once here, not per request: it is the ETag of every answer.
        self._metadata_cache[record.file_id] = (record.filename, data, hashlib.sha256(data).hexdigest())
        self._metadata_cache_size += len(data)
        while self._metadata_cache_size > _METADATA_CACHE_BYTES:
            _, (_, evicted, _) = self._metadata_cache.popitem(last=False)
            self._metadata_cache_size -= len(evicted)

    async def core_metadata(self, record: FileRecord) -> bytes:
        """The file's METADATA: kept copy, else the upstream's ``.metadata``, else from the wheel."""
        lock = self._metadata_locks.setdefault(record.file_id, asyncio.Lock())
        async with lock:
            current = await self.database.get_file(record.file_id) or record
            if current.metadata_sha256 and await self.blobs.exists(current.metadata_sha256):
                self.metrics.metadata.labels("cache").inc()
                data = await self.blobs.read(current.metadata_sha256)
                self._remember_metadata(record, data)
                return data
            data, source = await self._obtain_metadata(current)
            digest = await self.blobs.put(data)
            await self.database.set_metadata_sha256(record.file_id, digest)
            self.pages.metadata_known(record.project, record.file_id, digest)
            self.metrics.metadata.labels(source).inc()
            self._remember_metadata(record, data)
            return data

    async def _obtain_metadata(self, record: FileRecord) -> tuple[bytes, str]:
        upstream = self.upstreams[record.index_name]
        advertised = record.upstream_metadata
        if advertised:
            try:
                data = await upstream.fetch_bytes(record.upstream_url + ".metadata")
            except UpstreamFileError as error:
                log.warning(
                    "upstream advertised metadata it cannot serve",
                    extra={"url": error.url, "reason": error.reason},
                )
            else:
                expected = advertised.get("sha256") if isinstance(advertised, dict) else None
                if expected is None or hashlib.sha256(data).hexdigest() == expected.lower():
                    return data, "upstream"
                log.error(
                    "upstream .metadata does not match its hash; extracting",
                    extra={"url": record.upstream_url},
                )
        if not record.filename.endswith(".whl"):
            raise MetadataUnavailable(
                f"{record.filename} is not a wheel and its index offers no core metadata"
            )
        stored = await self.stored_sha256(record)
        try:
            if stored is not None:
                return metadata_from_wheel(await self.blobs.read(stored), record.filename), "wheel"
            data, whole = await metadata_by_ranges(self._range_fetcher(upstream, record), record.filename)
        except InvalidWheelZip as error:
            raise MetadataUnavailable(str(error)) from error
        if whole is not None:
            # The upstream ignored Range: keep the whole file we were sent, once its hash checks out.
            try:
                digest = await self.blobs.put(whole, record.sha256)
                await self.database.mark_stored(record.file_id, digest, len(whole))
            except DigestMismatch as mismatch:
                await self._mismatch(record, mismatch)
                raise
            return data, "wheel-download"
        return data, "wheel-ranges"

    @staticmethod
    def _range_fetcher(upstream: Upstream, record: FileRecord) -> RangeFetcher:
        async def fetch(start: int, end: int | None) -> tuple[bytes, int, int | None, bool]:
            result = await upstream.fetch_range(record.upstream_url, start, end)
            return result.data, result.start, result.total_size, result.whole

        return fetch
