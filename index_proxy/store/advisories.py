"""Security advisories in the database: imported from OSV records, looked up by package for a resolve.

An import is an upsert by record id: a record not seen before is added, one whose ``modified`` time
is newer than the stored one replaces it (all of its packages' rows at once), anything else is left
as it is. Importing the same files twice therefore changes nothing and reports them unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from sqlalchemy import delete, func, select

from index_proxy.store.db import Database
from index_proxy.store.models import AdvisoryRow
from prescriptions.advisories import Advisory, OsvRecord

__all__ = ["AdvisoryStore", "ImportStats"]

# Records per transaction, so ids per IN list stay well under SQLite's bound-parameter limit.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ImportStats:
    """What an import did with each record."""

    new: int = 0
    updated: int = 0  # a newer ``modified`` replaced the stored record
    unchanged: int = 0  # stored already with the same or a newer ``modified``
    not_pypi: int = 0  # names no PyPI package: nothing to store

    @property
    def total(self) -> int:
        return self.new + self.updated + self.unchanged + self.not_pypi

    def __add__(self, other: ImportStats) -> ImportStats:
        return ImportStats(
            self.new + other.new,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.not_pypi + other.not_pypi,
        )


class AdvisoryStore:
    """Advisories by package. Parsed advisories are kept in memory, keyed by (id, package, modified),
    so a resolve pays for the query, not for parsing thousands of version texts again; an import
    that changes a record changes its ``modified`` and so its key."""

    def __init__(self, database: Database, *, cache_size: int = 20_000) -> None:
        self.database = database
        self._parsed: dict[tuple[str, str, float], Advisory] = {}
        self._cache_size = cache_size

    async def import_records(self, records: Iterable[OsvRecord]) -> ImportStats:
        """Upsert records by id; the newest ``modified`` wins. Idempotent."""
        stats = ImportStats()
        chunk: dict[str, OsvRecord] = {}
        for record in records:
            if not record.advisories:
                stats += ImportStats(not_pypi=1)
                continue
            previous = chunk.get(record.id)
            if previous is not None:
                # The same id twice in one import (two copies of a file): the newer one counts once.
                stats += ImportStats(unchanged=1)
                if previous.modified >= record.modified:
                    continue
            chunk[record.id] = record
            if len(chunk) >= _CHUNK:
                stats += await self._import_chunk(list(chunk.values()))
                chunk = {}
        if chunk:
            stats += await self._import_chunk(list(chunk.values()))
        return stats

    async def _import_chunk(self, records: list[OsvRecord]) -> ImportStats:
        now = time.time()
        async with self.database.sessions.begin() as session:
            result = await session.execute(
                select(AdvisoryRow.id, func.max(AdvisoryRow.modified))
                .where(AdvisoryRow.id.in_([record.id for record in records]))
                .group_by(AdvisoryRow.id)
            )
            stored: dict[str, float] = {row[0]: row[1] for row in result}
            new = updated = unchanged = 0
            replace: list[OsvRecord] = []
            for record in records:
                known = stored.get(record.id)
                if known is None:
                    new += 1
                elif record.modified.timestamp() > known:
                    updated += 1
                else:
                    unchanged += 1
                    continue
                replace.append(record)
            if replace:
                # Delete first: a newer version of a record may name fewer packages than the old one.
                await session.execute(delete(AdvisoryRow).where(AdvisoryRow.id.in_([r.id for r in replace])))
                await session.execute(
                    self.database.insert(AdvisoryRow),
                    [
                        {
                            "id": advisory.id,
                            "package": advisory.package,
                            "modified": record.modified.timestamp(),
                            "withdrawn": advisory.withdrawn is not None,
                            "imported_at": now,
                            "advisory": json.dumps(advisory.to_json(), separators=(",", ":")),
                        }
                        for record in replace
                        for advisory in record.advisories
                    ],
                )
        return ImportStats(new=new, updated=updated, unchanged=unchanged)

    async def for_projects(
        self, names: Iterable[str], *, include_withdrawn: bool = False
    ) -> dict[str, list[Advisory]]:
        """The advisories of each named project (any spelling; keys are normalized), by id.

        Projects without advisories are left out. Withdrawn advisories never affect a version and
        are left out too unless asked for (``advisories show`` lists them).
        """
        wanted = sorted({canonicalize_name(name) for name in names})
        found: dict[str, list[Advisory]] = {}
        if not wanted:
            return found
        query = select(AdvisoryRow.id, AdvisoryRow.package, AdvisoryRow.modified, AdvisoryRow.advisory).where(
            AdvisoryRow.package.in_(wanted)
        )
        if not include_withdrawn:
            query = query.where(AdvisoryRow.withdrawn.is_(False))
        async with self.database.sessions() as session:
            result = await session.execute(query.order_by(AdvisoryRow.package, AdvisoryRow.id))
            rows = result.all()
        for record_id, package, modified, text in rows:
            key = (record_id, package, modified)
            advisory = self._parsed.get(key)
            if advisory is None:
                advisory = Advisory.from_json(json.loads(text))
                if len(self._parsed) >= self._cache_size:
                    self._parsed.clear()  # rare (the whole PyPA database is ~3,000): start over
                self._parsed[key] = advisory
            found.setdefault(package, []).append(advisory)
        return found

    async def count(self) -> int:
        """Stored advisories (one per record and package)."""
        async with self.database.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(AdvisoryRow))).scalar_one())
