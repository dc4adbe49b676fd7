"""The upstream interface and its outcomes: a fetch never answers with None plus a log line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from index_proxy.config import IndexConfig
from index_proxy.simple.model import ProjectList, ProjectPage

__all__ = [
    "FileStream",
    "Found",
    "InvalidContent",
    "NotFound",
    "NotModified",
    "PageOutcome",
    "RangeResult",
    "Unavailable",
    "Upstream",
    "UpstreamFileError",
]


@dataclass(frozen=True, slots=True)
class Found:
    page: ProjectPage | ProjectList
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """The page is unchanged since the ETag we sent."""


@dataclass(frozen=True, slots=True)
class NotFound:
    """The upstream does not have this project."""


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The upstream could not be asked: connection refused, timeout, 5xx, 401/403."""

    reason: str


@dataclass(frozen=True, slots=True)
class InvalidContent:
    """The upstream answered, but with a page we cannot read."""

    reason: str


PageOutcome = Found | NotModified | NotFound | Unavailable | InvalidContent


class UpstreamFileError(Exception):
    """A file could not be fetched from its upstream (status, network, or it is gone)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class RangeResult:
    """Bytes of a file from ``start``; ``whole`` means the upstream ignored Range and sent it all."""

    data: bytes
    start: int
    total_size: int | None
    whole: bool


class FileStream(Protocol):
    size: int | None

    def chunks(self) -> AsyncIterator[bytes]: ...


class Upstream(Protocol):
    config: IndexConfig

    @property
    def name(self) -> str: ...

    async def project_page(self, project: str, etag: str | None) -> PageOutcome: ...

    async def project_list(self, etag: str | None) -> PageOutcome: ...

    def open_file(self, url: str) -> AbstractAsyncContextManager[FileStream]:
        """Stream a file's bytes; raises UpstreamFileError when it cannot."""
        ...

    async def fetch_bytes(self, url: str) -> bytes:
        """A small file (a ``.metadata``) whole; raises UpstreamFileError."""
        ...

    async def fetch_range(self, url: str, start: int, end: int | None) -> RangeResult:
        """Bytes ``start..end`` (inclusive; ``start < 0`` = a suffix); raises UpstreamFileError."""
        ...

    async def close(self) -> None: ...
