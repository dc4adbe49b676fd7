"""Per Pulp index, the newest repository version already read: polling resumes from here."""

from __future__ import annotations

import time
from dataclasses import dataclass

from index_proxy.store.db import Database
from index_proxy.store.models import PulpCursorRow

__all__ = ["PulpCursor", "PulpCursorStore"]


@dataclass(frozen=True, slots=True)
class PulpCursor:
    repository_href: str
    version: int


class PulpCursorStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, index_name: str) -> PulpCursor | None:
        async with self.database.sessions() as session:
            row = await session.get(PulpCursorRow, index_name)
            return None if row is None else PulpCursor(row.repository_href, row.version)

    async def put(self, index_name: str, cursor: PulpCursor) -> None:
        values = {
            "index_name": index_name,
            "repository_href": cursor.repository_href,
            "version": cursor.version,
            "updated_at": time.time(),
        }
        statement = self.database.insert(PulpCursorRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["index_name"],
            set_={key: statement.excluded[key] for key in ("repository_href", "version", "updated_at")},
        )
        async with self.database.sessions.begin() as session:
            await session.execute(statement)
