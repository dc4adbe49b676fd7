"""An upstream simple index over HTTP: PEP 691 JSON when offered, PEP 503 HTML otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from index_proxy.config import IndexConfig
from index_proxy.simple.errors import InvalidPage
from index_proxy.simple.negotiate import UPSTREAM_ACCEPT, parse_response
from index_proxy.upstreams.base import (
    Found,
    InvalidContent,
    NotFound,
    NotModified,
    PageOutcome,
    RangeResult,
    Unavailable,
    UpstreamFileError,
)

__all__ = ["HttpUpstream", "make_http_client"]

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_USER_AGENT = "index-proxy/0.1"


def make_http_client() -> httpx.AsyncClient:
    """One pooled keep-alive client shared by every HTTP upstream."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30),
        headers={"User-Agent": _USER_AGENT},
        follow_redirects=True,
        # HTTP(S)_PROXY, NO_PROXY and SSL_CERT_FILE apply, as for pip on the same machine.
        trust_env=True,
    )


@dataclass
class _HttpFileStream:
    response: httpx.Response
    size: int | None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_bytes(256 * 1024):
            yield chunk


class HttpUpstream:
    """Pages, files and ranges from one HTTP index, with timeouts and bounded retries."""

    def __init__(self, config: IndexConfig, url: str, client: httpx.AsyncClient) -> None:
        self.config = config
        self.base_url = url if url.endswith("/") else url + "/"
        self._client = client
        self._timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0))
        self._auth = (config.username, config.password or "") if config.username else None

    @property
    def name(self) -> str:
        return self.config.name

    def project_url(self, project: str) -> str:
        return f"{self.base_url}{project}/"

    async def project_page(self, project: str, etag: str | None) -> PageOutcome:
        return await self._page(self.project_url(project), etag, project=True)

    async def project_list(self, etag: str | None) -> PageOutcome:
        return await self._page(self.base_url, etag, project=False)

    async def _page(self, url: str, etag: str | None, *, project: bool) -> PageOutcome:
        headers = {"Accept": UPSTREAM_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        try:
            response = await self._request("GET", url, headers=headers)
        except httpx.HTTPError as error:
            return Unavailable(f"{url}: {describe_error(error)}")
        if response.status_code == 304:
            return NotModified()
        if response.status_code == 404:
            return NotFound()
        if response.status_code != 200:
            return Unavailable(f"{url}: HTTP {response.status_code}")
        try:
            page = parse_response(
                response.content, response.headers.get("content-type", ""), str(response.url), project=project
            )
        except InvalidPage as error:
            return InvalidContent(str(error))
        return Found(page, response.headers.get("etag"))

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request with bounded retries on connection errors and 5xx answers."""
        attempt = 0
        while True:
            try:
                response = await self._client.request(
                    method, url, timeout=self._timeout, auth=self._auth, **kwargs
                )
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt >= self.config.retries:
                    raise
            else:
                if response.status_code not in _RETRY_STATUSES or attempt >= self.config.retries:
                    return response
            attempt += 1
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[_HttpFileStream]:
        request = self._client.build_request("GET", url, timeout=self._timeout)
        try:
            response = await self._client.send(request, stream=True, auth=self._auth)
        except httpx.HTTPError as error:
            raise UpstreamFileError(url, describe_error(error)) from error
        try:
            if response.status_code != 200:
                raise UpstreamFileError(url, f"HTTP {response.status_code}", response.status_code)
            length = response.headers.get("content-length")
            yield _HttpFileStream(response, int(length) if length and length.isdigit() else None)
        finally:
            await response.aclose()

    async def fetch_bytes(self, url: str) -> bytes:
        try:
            response = await self._request("GET", url)
        except httpx.HTTPError as error:
            raise UpstreamFileError(url, describe_error(error)) from error
        if response.status_code != 200:
            raise UpstreamFileError(url, f"HTTP {response.status_code}", response.status_code)
        return response.content

    async def fetch_range(self, url: str, start: int, end: int | None) -> RangeResult:
        spec = f"bytes={start}" if start < 0 else f"bytes={start}-{'' if end is None else end}"
        try:
            response = await self._request("GET", url, headers={"Range": spec})
        except httpx.HTTPError as error:
            raise UpstreamFileError(url, describe_error(error)) from error
        if response.status_code == 200:
            # The upstream ignores Range: we hold the whole file now.
            return RangeResult(response.content, 0, len(response.content), whole=True)
        if response.status_code != 206:
            raise UpstreamFileError(url, f"HTTP {response.status_code}", response.status_code)
        first, total = _parse_content_range(response.headers.get("content-range", ""))
        return RangeResult(response.content, first, total, whole=False)

    async def close(self) -> None:
        """The shared client is closed by its owner."""


def _parse_content_range(value: str) -> tuple[int, int | None]:
    # "bytes 100-199/1000" or "bytes 100-199/*"
    try:
        _unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        first = int(span.partition("-")[0])
        return first, None if total == "*" else int(total)
    except ValueError:
        return 0, None


def describe_error(error: httpx.HTTPError) -> str:
    """A transport error in a few words, for messages that name the URL themselves."""
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error})"
    return f"{type(error).__name__}: {error}"
