"""A real PostgreSQL for the tests: the one on 127.0.0.1:5432 if it answers, else a throwaway cluster.

The throwaway cluster is made from the server binaries with initdb (as the ``postgres`` user
when the tests run as root, since the server refuses to run as root) and removed afterwards.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg
import pytest

from support.proxy import free_port

__all__ = ["PostgresServer", "pg_database", "postgres_server"]


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        name = name or f"index_proxy_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(self._execute(f'CREATE DATABASE "{name}"'))
        return name

    def drop_database(self, name: str) -> None:
        asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    async def _execute(self, statement: str) -> None:
        connection = await asyncpg.connect(self.dsn(), timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()


def _answers(server: PostgresServer) -> bool:
    async def probe() -> None:
        connection = await asyncpg.connect(server.dsn(), timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    return True


def _binaries() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server(*, prefer_running: bool = True) -> Iterator[PostgresServer]:
    existing = PostgresServer("127.0.0.1", 5432, "postgres")
    if prefer_running and _answers(existing):
        yield existing
        return
    bindir = _binaries()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL on 127.0.0.1:5432 and no server binaries (initdb) to start one; "
            "install the postgresql package (make test does on CI)"
        )
    root = tempfile.mkdtemp(prefix="index-proxy-pg-")
    os.chmod(root, 0o777)
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = (
        f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        _as_postgres(
            [f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    server = PostgresServer("127.0.0.1", port, "postgres")
    try:
        deadline = time.monotonic() + 30
        while not _answers(server):
            if time.monotonic() > deadline:
                raise RuntimeError(f"throwaway PostgreSQL did not answer on port {port}")
            time.sleep(0.2)
        yield server
    finally:
        subprocess.run(
            _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    """A new database on the session's server (the ``postgres`` fixture), dropped afterwards; its DSN."""
    name = postgres.create_database()
    try:
        yield postgres.dsn(name)
    finally:
        postgres.drop_database(name)
