"""A directory of wheels and sdists served as an index (``kind: folder``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from index_proxy.config import IndexConfig
from index_proxy.simple.model import DistributionFile, ProjectList, ProjectPage
from index_proxy.upstreams.base import Found, NotFound, PageOutcome, RangeResult, UpstreamFileError

__all__ = ["FolderUpstream", "project_of_filename"]


def project_of_filename(filename: str) -> tuple[str, str] | None:
    """(normalized project, version) of a distribution filename, or None if it is not one."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, str(version)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return name, str(version)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


@dataclass(frozen=True, slots=True)
class _Entry:
    project: str
    file: DistributionFile


@dataclass
class _LocalFileStream:
    path: Path
    size: int | None

    async def chunks(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, 256 * 1024):
                yield chunk


class FolderUpstream:
    """Lists the distributions in one directory; each file's sha256 is computed once per change."""

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.root = Path(config.url)
        # (filename, size, mtime_ns) -> sha256: a replaced file is hashed again, an unchanged one never.
        self._digests: dict[tuple[str, int, int], str] = {}
        # One scan at a time: concurrent scans of a new folder would each hash every file.
        self._scanning = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    async def _entries(self) -> list[_Entry]:
        async with self._scanning:
            return await asyncio.to_thread(self._scan)

    async def project_page(self, project: str, etag: str | None) -> PageOutcome:
        entries = await self._entries()
        files = tuple(entry.file for entry in entries if entry.project == project)
        if not files:
            return NotFound()
        return Found(ProjectPage(name=project, files=files, api_version="1.1"))

    async def project_list(self, etag: str | None) -> PageOutcome:
        entries = await self._entries()
        return Found(ProjectList(names=tuple(sorted({entry.project for entry in entries}))))

    def _scan(self) -> list[_Entry]:
        entries: list[_Entry] = []
        try:
            listing = list(os.scandir(self.root))
        except OSError:
            return entries
        for item in listing:
            if not item.is_file():
                continue
            parsed = project_of_filename(item.name)
            if parsed is None:
                continue
            stat = item.stat()
            key = (item.name, stat.st_size, stat.st_mtime_ns)
            digest = self._digests.get(key)
            if digest is None:
                digest = _sha256_of(Path(item.path))
                self._digests[key] = digest
            upload_time = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            entries.append(
                _Entry(
                    parsed[0],
                    DistributionFile(
                        filename=item.name,
                        url=Path(item.path).resolve().as_uri(),
                        hashes={"sha256": digest},
                        size=stat.st_size,
                        upload_time=upload_time,
                    ),
                )
            )
        return entries

    def _path(self, url: str) -> Path:
        path = Path(unquote(urlsplit(url).path))
        if path.parent.resolve() != self.root.resolve():
            raise UpstreamFileError(url, "not a file of this folder index")
        return path

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[_LocalFileStream]:
        path = self._path(url)
        try:
            size = path.stat().st_size
        except OSError as error:
            raise UpstreamFileError(url, f"gone from the folder ({error.strerror})") from error
        yield _LocalFileStream(path, size)

    async def fetch_bytes(self, url: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(url).read_bytes)
        except OSError as error:
            raise UpstreamFileError(url, f"cannot read ({error.strerror})", 404) from error

    async def fetch_range(self, url: str, start: int, end: int | None) -> RangeResult:
        path = self._path(url)

        def read() -> RangeResult:
            with path.open("rb") as handle:
                total = os.fstat(handle.fileno()).st_size
                first = max(total + start, 0) if start < 0 else start
                last = total - 1 if end is None else min(end, total - 1)
                handle.seek(first)
                return RangeResult(handle.read(last - first + 1), first, total, whole=False)

        try:
            return await asyncio.to_thread(read)
        except OSError as error:
            raise UpstreamFileError(url, f"cannot read ({error.strerror})") from error

    async def close(self) -> None:
        return None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
