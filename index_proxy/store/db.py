"""The SQL store: one async engine (SQLite by default, PostgreSQL through asyncpg), migrated by Alembic."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from index_proxy.store.models import FileRow, GuardEventRow, UpstreamPageRow

__all__ = ["Database", "FileRecord", "GuardEvent", "StoredPage"]

_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class StoredPage:
    index_name: str
    project: str
    found: bool
    etag: str | None
    fetched_at: float
    payload: bytes


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    index_name: str
    project: str
    filename: str
    upstream_url: str
    sha256: str | None
    size: int | None
    upstream_metadata: Any  # None, bool or {algo: hex}
    metadata_sha256: str | None
    stored: bool


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """A file the merge left out. ``kind`` is one of the guard rules (see ``merge``)."""

    kind: str
    project: str
    filename: str
    index_name: str
    kept_index: str | None
    detail: str
    at: float = 0.0


def _record(row: FileRow) -> FileRecord:
    return FileRecord(
        file_id=row.file_id,
        index_name=row.index_name,
        project=row.project,
        filename=row.filename,
        upstream_url=row.upstream_url,
        sha256=row.sha256,
        size=row.size,
        upstream_metadata=None if row.upstream_metadata is None else json.loads(row.upstream_metadata),
        metadata_sha256=row.metadata_sha256,
        stored=row.stored,
    )


class Database:
    """Typed queries over the store; callers never see sessions or rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **_engine_options(url))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        if self.dialect == "sqlite":
            database = self.engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # -- upstream pages -------------------------------------------------------------------
    async def get_page(self, index_name: str, project: str) -> StoredPage | None:
        async with self.sessions() as session:
            row = await session.get(UpstreamPageRow, (index_name, project))
            if row is None:
                return None
            return StoredPage(row.index_name, row.project, row.found, row.etag, row.fetched_at, row.payload)

    async def put_page(self, page: StoredPage) -> None:
        values = {
            "index_name": page.index_name,
            "project": page.project,
            "found": page.found,
            "etag": page.etag,
            "fetched_at": page.fetched_at,
            "payload": page.payload,
        }
        statement = self.insert(UpstreamPageRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["index_name", "project"],
            set_={key: statement.excluded[key] for key in ("found", "etag", "fetched_at", "payload")},
        )
        async with self.sessions.begin() as session:
            await session.execute(statement)

    async def touch_page(self, index_name: str, project: str, fetched_at: float) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(UpstreamPageRow)
                .where(UpstreamPageRow.index_name == index_name, UpstreamPageRow.project == project)
                .values(fetched_at=fetched_at)
            )

    # -- files ----------------------------------------------------------------------------
    async def upsert_files(self, records: Sequence[FileRecord]) -> None:
        """Insert or refresh listed files; ``stored`` and our own metadata hash are kept."""
        if not records:
            return
        rows = [
            {
                "file_id": r.file_id,
                "index_name": r.index_name,
                "project": r.project,
                "filename": r.filename,
                "upstream_url": r.upstream_url,
                "sha256": r.sha256,
                "size": r.size,
                "upstream_metadata": None if r.upstream_metadata is None else json.dumps(r.upstream_metadata),
                "metadata_sha256": r.metadata_sha256,
                "stored": r.stored,
            }
            for r in records
        ]
        statement = self.insert(FileRow)
        statement = statement.on_conflict_do_update(
            index_elements=["file_id"],
            set_={
                key: statement.excluded[key] for key in ("index_name", "upstream_url", "upstream_metadata")
            },
        )
        async with self.sessions.begin() as session:
            # Chunked because SQLite limits bound parameters per statement.
            for start in range(0, len(rows), 500):
                await session.execute(statement, rows[start : start + 500])

    async def get_file(self, file_id: str) -> FileRecord | None:
        async with self.sessions() as session:
            row = await session.get(FileRow, file_id)
            return None if row is None else _record(row)

    async def files_of_project(self, project: str) -> list[FileRecord]:
        async with self.sessions() as session:
            result = await session.execute(select(FileRow).where(FileRow.project == project))
            return [_record(row) for row in result.scalars()]

    async def mark_stored(self, file_id: str, sha256: str, size: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(FileRow)
                .where(FileRow.file_id == file_id)
                .values(stored=True, sha256=sha256, size=size)
            )

    async def set_metadata_sha256(self, file_id: str, sha256: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(FileRow).where(FileRow.file_id == file_id).values(metadata_sha256=sha256)
            )

    # -- guard events ---------------------------------------------------------------------
    async def record_guard_events(self, events: Iterable[GuardEvent]) -> list[GuardEvent]:
        """Store events not seen before; returns those that were new."""
        events = list(events)
        rows = [
            {
                "at": event.at or time.time(),
                "kind": event.kind,
                "project": event.project,
                "filename": event.filename,
                "index_name": event.index_name,
                "kept_index": event.kept_index,
                "detail": event.detail,
            }
            for event in events
        ]
        statement = self.insert(GuardEventRow).on_conflict_do_nothing(
            index_elements=["kind", "project", "filename", "index_name"]
        )
        new: list[GuardEvent] = []
        async with self.sessions.begin() as session:
            for event, row in zip(events, rows, strict=True):
                result = await session.execute(statement.values(**row))
                if result.rowcount:
                    new.append(event)
        return new

    async def list_guard_events(self, *, project: str | None = None, limit: int = 1000) -> list[GuardEvent]:
        query = select(GuardEventRow).order_by(GuardEventRow.id.desc()).limit(limit)
        if project is not None:
            query = query.where(GuardEventRow.project == project)
        async with self.sessions() as session:
            result = await session.execute(query)
            return [
                GuardEvent(r.kind, r.project, r.filename, r.index_name, r.kept_index, r.detail, r.at)
                for r in result.scalars()
            ]

    def insert(self, model: type[Any]) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(model)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # One file, many coroutines: a generous busy timeout instead of "database is locked", and
        # enough pooled connections that a burst of lookups does not open (and close) new ones.
        return {"connect_args": {"timeout": 30}, "pool_size": 20, "max_overflow": 20}
    return {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _upgrade(connection: Any) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
