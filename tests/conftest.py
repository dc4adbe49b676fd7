"""Shared fixtures: built distributions, upstream servers and proxies, all torn down after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol

import pytest
from support.postgres import pg_database, pg_server  # noqa: F401 - fixtures for every test module
from support.proxy import RunningProxy, start_proxy
from support.s3 import s3_bucket, s3_server  # noqa: F401 - fixtures for every test module
from support.upstream import FolderIndex, UpstreamServer


class UpstreamFactory(Protocol):
    def __call__(
        self,
        *,
        style: Literal["html", "json"] = "html",
        range_support: bool = False,
        metadata: bool = False,
        etag: bool = True,
        name: str | None = None,
    ) -> UpstreamServer: ...


class FolderFactory(Protocol):
    def __call__(self, name: str = "local") -> FolderIndex: ...


class ProxyFactory(Protocol):
    def __call__(self, config_yaml: str, *, token: str = "test-token") -> RunningProxy: ...


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    """Where a test builds its distributions before adding them to indexes."""
    path = tmp_path / "dists"
    path.mkdir()
    return path


@pytest.fixture
def upstreams(tmp_path: Path) -> Iterator[UpstreamFactory]:
    """``upstreams(style=..., range_support=..., metadata=...)`` -> a started UpstreamServer."""
    servers: list[UpstreamServer] = []

    def make(
        *,
        style: Literal["html", "json"] = "html",
        range_support: bool = False,
        metadata: bool = False,
        etag: bool = True,
        name: str | None = None,
    ) -> UpstreamServer:
        label = name or f"upstream{len(servers)}"
        server = UpstreamServer(
            tmp_path / "upstreams" / label,
            style=style,
            range_support=range_support,
            metadata=metadata,
            etag=etag,
        )
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def folder_index(tmp_path: Path) -> FolderFactory:
    """``folder_index(name)`` -> an empty FolderIndex directory (``kind: folder`` in the config)."""

    def make(name: str = "local") -> FolderIndex:
        return FolderIndex(tmp_path / "folders" / name)

    return make


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ProxyFactory]:
    """``proxy(config_yaml)`` -> a RunningProxy; stopped at teardown, its log printed for failures."""
    running: list[RunningProxy] = []

    def make(config_yaml: str, *, token: str = "test-token") -> RunningProxy:
        started = start_proxy(tmp_path, config_yaml, token=token)
        running.append(started)
        return started

    yield make
    for item in running:
        item.stop()
        # pytest shows teardown output only for failing tests, which is exactly when the log matters.
        tail = "\n".join(item.log().splitlines()[-80:])
        print(f"--- proxy log {item.log_path} (tail) ---\n{tail}")
