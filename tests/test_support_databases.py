"""The test database switch (INDEX_PROXY_TEST_DATABASE): if it lied, the PostgreSQL run would test SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from support.databases import BACKEND_ENV, FreshDatabases, selected_backend
from support.postgres import PostgresServer
from support.proxy import RunningProxy
from support.wheels import build_wheel


def database_names(server: PostgresServer) -> set[str]:
    async def names() -> set[str]:
        connection = await asyncpg.connect(server.dsn(), timeout=10)
        try:
            return {row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")}
        finally:
            await connection.close()

    return asyncio.run(names())


def stored_pages(dsn: str) -> list[tuple[str, str]]:
    async def pages() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            rows = await connection.fetch("SELECT index_name, project FROM upstream_pages ORDER BY project")
            return [(row["index_name"], row["project"]) for row in rows]
        finally:
            await connection.close()

    return asyncio.run(pages())


def test_backend_is_read_from_the_environment() -> None:
    assert selected_backend({}) == "sqlite"
    assert selected_backend({BACKEND_ENV: ""}) == "sqlite"
    assert selected_backend({BACKEND_ENV: "sqlite"}) == "sqlite"
    assert selected_backend({BACKEND_ENV: " PostgreSQL "}) == "postgresql"
    with pytest.raises(ValueError, match=f"{BACKEND_ENV}='mysql' is not a test database"):
        selected_backend({BACKEND_ENV: "mysql"})


def test_postgresql_databases_are_new_and_dropped(postgres: PostgresServer) -> None:
    databases = FreshDatabases("postgresql", postgres)
    first, second = databases.for_proxy(), databases.for_proxy()
    assert first is not None and second is not None and first != second
    names = {url.rsplit("/", 1)[1] for url in (first, second)}
    assert names <= database_names(postgres)
    databases.drop_all()
    assert not names & database_names(postgres)


def test_sqlite_leaves_the_proxy_its_own_file(tmp_path: Path) -> None:
    databases = FreshDatabases("sqlite", None)
    assert databases.for_proxy() is None
    assert databases.url(tmp_path, "state") == f"sqlite:///{tmp_path / 'state.db'}"


def test_url_for_own_storage_sections_is_a_new_postgresql_database(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    databases = FreshDatabases("postgresql", postgres)
    url = databases.url(tmp_path)
    assert url.startswith(postgres.dsn("index_proxy_test_"))
    assert url.rsplit("/", 1)[1] in database_names(postgres)
    databases.drop_all()
    assert url.rsplit("/", 1)[1] not in database_names(postgres)


def test_a_proxy_keeps_its_state_in_the_selected_backend(
    request: pytest.FixtureRequest,
    proxy: Any,
    folder_index: Any,
    wheel_dir: Path,
    fresh_databases: FreshDatabases,
) -> None:
    local = folder_index("local")
    local.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(
        yaml.safe_dump({"indexes": [{"name": "local", "kind": "folder", "url": local.url}]})
    )
    assert running.get("/simple/libb/").status_code == 200
    database = yaml.safe_load(running.config_path.read_text())["storage"]["database"]
    if selected_backend() == "sqlite":
        assert database == f"sqlite:///{running.workdir / 'proxy.db'}"
        assert (running.workdir / "proxy.db").is_file()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    assert database.startswith(server.dsn("index_proxy_test_"))
    assert stored_pages(database) == [("local", "libb")]
    running.stop()
    fresh_databases.drop_all()
    assert database.rsplit("/", 1)[1] not in database_names(server)
