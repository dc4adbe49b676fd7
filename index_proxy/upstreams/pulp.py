"""Pulp's REST API, read for one thing: which Python packages a repository gained since a cursor.

Pages and files of a Pulp index come from its distribution's simple index like any other
upstream's (``upstreams/http.py``); this client only discovers new content, so the monitor can
queue it for analysis without a plugin in Pulp. A repository version's ``added`` content is what
it brought in; when Pulp deletes old versions it folds their changes into the next one, so walking
the versions after the cursor misses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
from packaging.utils import canonicalize_name

from index_proxy.config import IndexConfig
from index_proxy.store.pulp_cursors import PulpCursor
from index_proxy.upstreams.http import describe_error

__all__ = [
    "PulpApi",
    "PulpChanges",
    "PulpOutcome",
    "PulpPackage",
    "PulpUnavailable",
    "RepositoryNotFound",
]

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class PulpPackage:
    project: str
    """PEP 503-normalized."""
    filename: str
    sha256: str | None


@dataclass(frozen=True, slots=True)
class PulpChanges:
    """Packages added after the old cursor (all of the latest version's without one), and the new cursor."""

    cursor: PulpCursor
    packages: tuple[PulpPackage, ...]


@dataclass(frozen=True, slots=True)
class PulpUnavailable:
    """Pulp could not be asked or refused: connection, timeout, 5xx, 401/403, an unreadable answer."""

    reason: str


@dataclass(frozen=True, slots=True)
class RepositoryNotFound:
    repository: str
    api_url: str

    @property
    def reason(self) -> str:
        return (
            f"Pulp at {self.api_url} has no Python repository named {self.repository!r}; "
            "fix the index's repository: key (GET repositories/python/python/ lists them)"
        )


PulpOutcome = PulpChanges | PulpUnavailable | RepositoryNotFound


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PulpApi:
    """The REST API of the Pulp behind one ``kind: pulp`` index (``api_url`` and ``repository`` set)."""

    def __init__(self, config: IndexConfig, client: httpx.AsyncClient) -> None:
        if config.api_url is None or config.repository is None:
            raise ValueError(f"index {config.name!r} has no api_url and repository to watch")
        self.config = config
        self.api_url = config.api_url
        self.repository = config.repository
        self._client = client
        self._timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0))
        self._auth = (config.username, config.password or "") if config.username else None

    async def changes(self, cursor: PulpCursor | None) -> PulpOutcome:
        """What the repository gained after ``cursor``; without one, everything its latest version holds."""
        try:
            repository = await self._repository()
            if repository is None:
                return RepositoryNotFound(self.repository, self.api_url)
            href, latest_href = repository["pulp_href"], repository["latest_version_href"]
            latest = _version_number(latest_href)
            if cursor is None or cursor.repository_href != href:
                packages = [p async for p in self._packages({"repository_version": latest_href})]
                return PulpChanges(PulpCursor(href, latest), tuple(packages))
            if latest <= cursor.version:
                return PulpChanges(cursor, ())
            packages = []
            newest = cursor.version
            async for version in self._pages(
                urljoin(self.api_url, f"{href}versions/"),
                {"number__gt": cursor.version, "ordering": "number", "fields": "pulp_href,number"},
            ):
                packages.extend(
                    [p async for p in self._packages({"repository_version_added": version["pulp_href"]})]
                )
                newest = max(newest, int(version["number"]))
            return PulpChanges(PulpCursor(href, newest), tuple(packages))
        except _Failed as failure:
            return PulpUnavailable(failure.reason)

    async def _repository(self) -> dict[str, Any] | None:
        async for repository in self._pages(
            urljoin(self.api_url, "repositories/python/python/"),
            {"name": self.repository, "fields": "pulp_href,latest_version_href"},
        ):
            return repository
        return None

    async def _packages(self, query: dict[str, str]) -> AsyncIterator[PulpPackage]:
        url = urljoin(self.api_url, "content/python/packages/")
        async for item in self._pages(url, {**query, "fields": "filename,name,sha256"}):
            try:
                yield PulpPackage(canonicalize_name(item["name"]), item["filename"], item.get("sha256"))
            except (KeyError, TypeError) as error:
                raise _Failed(f"{url}: a package without {error}; is this a Pulp python plugin?") from None

    async def _pages(self, url: str, query: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The results of a paginated list, following ``next`` links."""
        next_url: str | None = f"{url}?{urlencode({**query, 'limit': _PAGE_SIZE})}"
        while next_url:
            body = await self._get_json(next_url)
            results = body.get("results")
            if not isinstance(results, list):
                raise _Failed(f"{next_url}: not a Pulp list answer (no results); is api_url Pulp's API root?")
            for item in results:
                yield item
            next_url = body.get("next")

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._request(url)
        if response.status_code in (401, 403):
            raise _Failed(
                f"{url}: HTTP {response.status_code}; give this index a username and password "
                "(or password_env) of a Pulp user that may read the repository"
            )
        if response.status_code == 404:
            raise _Failed(f"{url}: HTTP 404; api_url must be Pulp's REST API root, e.g. .../pulp/api/v3/")
        if response.status_code != 200:
            raise _Failed(f"{url}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise _Failed(f"{url}: the answer is not JSON; is api_url Pulp's REST API root?") from None
        if not isinstance(body, dict):
            raise _Failed(f"{url}: expected a JSON object")
        return body

    async def _request(self, url: str) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._client.get(url, timeout=self._timeout, auth=self._auth)
            except httpx.HTTPError as error:
                if attempt >= self.config.retries:
                    raise _Failed(
                        f"Pulp at {self.api_url} does not answer: {url}: {describe_error(error)}"
                    ) from None
            else:
                if response.status_code not in _RETRY_STATUSES or attempt >= self.config.retries:
                    return response
            attempt += 1
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))


def _version_number(version_href: str) -> int:
    # ".../repositories/python/python/<uuid>/versions/<number>/"
    try:
        return int(version_href.rstrip("/").rsplit("/", 1)[1])
    except (IndexError, ValueError):
        raise _Failed(f"cannot read a version number from {version_href!r}") from None
