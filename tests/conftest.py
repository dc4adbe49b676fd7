"""Shared fixtures: built distributions, upstream servers and proxies, all torn down after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol

import pytest
import yaml
from support.databases import BACKEND_ENV, FreshDatabases, selected_backend
from support.postgres import PostgresServer, pg_database, postgres_server  # noqa: F401 - a fixture for every module
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


def pytest_configure(config: pytest.Config) -> None:
    try:
        selected_backend()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header() -> str:
    return f"test database: {selected_backend()} ({BACKEND_ENV})"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The test PostgreSQL: the server on 127.0.0.1:5432, or a throwaway cluster for the session."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store database on each backend in turn, for tests of the store itself."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    try:
        yield server.sqlalchemy_url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def fresh_databases(request: pytest.FixtureRequest) -> Iterator[FreshDatabases]:
    """Databases for the proxies of one test, on the backend INDEX_PROXY_TEST_DATABASE selects."""
    backend = selected_backend()
    server: PostgresServer | None = request.getfixturevalue("postgres") if backend == "postgresql" else None
    databases = FreshDatabases(backend, server)
    yield databases
    databases.drop_all()


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
def proxy(tmp_path: Path, fresh_databases: FreshDatabases) -> Iterator[ProxyFactory]:
    """``proxy(config_yaml)`` -> a RunningProxy; stopped at teardown, its log printed for failures.

    A config without ``storage:`` gets a database of its own (see ``support.databases``).
    """
    running: list[RunningProxy] = []

    def make(config_yaml: str, *, token: str = "test-token") -> RunningProxy:
        parsed = yaml.safe_load(config_yaml)
        has_storage = isinstance(parsed, dict) and "storage" in parsed
        database = None if has_storage else fresh_databases.for_proxy()
        started = start_proxy(tmp_path, config_yaml, token=token, database=database)
        running.append(started)
        return started

    yield make
    for item in running:
        item.stop()
        # pytest shows teardown output only for failing tests, which is exactly when the log matters.
        tail = "\n".join(item.log().splitlines()[-80:])
        print(f"--- proxy log {item.log_path} (tail) ---\n{tail}")
