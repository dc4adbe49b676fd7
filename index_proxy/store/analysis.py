"""The analysis queue and the facts it produces, on the same database as everything else.

Jobs are leased, not locked: a worker takes a job for ``lease`` seconds; if it dies, the lease
runs out and another worker takes the job again. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets
workers lease without waiting on each other; SQLite serializes writers, so the same single
``UPDATE ... RETURNING`` statement is atomic there too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update

from index_proxy.store.db import Database
from index_proxy.store.models import AnalysisFactsRow, AnalysisJobRow, FileRow

__all__ = ["AnalysisStore", "Job", "StoredFacts"]

MAX_ATTEMPTS = 3
_IN_CHUNK = 5_000

_LEASE_SQL = """
UPDATE analysis_jobs
SET state = 'leased', lease_owner = :owner, lease_expires = :until, attempts = attempts + 1
WHERE id = (
    SELECT id FROM analysis_jobs
    WHERE state = 'queued' OR (state = 'leased' AND lease_expires < :now)
    ORDER BY id
    LIMIT 1
    {lock}
)
RETURNING id, file_id, attempts
"""


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    file_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class StoredFacts:
    sha256: str
    filename: str
    schema: int
    analyzed_at: float
    broken: bool
    mis_tagged: bool
    facts: dict[str, Any]


class AnalysisStore:
    def __init__(self, database: Database, *, cache_seconds: float = 10.0) -> None:
        self.database = database
        # Facts change only when a worker finishes; a short-lived cache (kept current by this
        # process's own workers) spares the resolver a query per project on every request.
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, StoredFacts | None]] = {}
        lock = "FOR UPDATE SKIP LOCKED" if database.dialect == "postgresql" else ""
        self._lease = text(_LEASE_SQL.format(lock=lock))

    async def enqueue(self, file_ids: Iterable[str], reason: str) -> int:
        """Queue files not queued before; returns how many are new."""
        rows = [
            {
                "file_id": file_id,
                "reason": reason,
                "state": "queued",
                "attempts": 0,
                "created_at": time.time(),
            }
            for file_id in dict.fromkeys(file_ids)
        ]
        if not rows:
            return 0
        statement = self.database.insert(AnalysisJobRow).on_conflict_do_nothing(index_elements=["file_id"])
        new = 0
        async with self.database.sessions.begin() as session:
            for start in range(0, len(rows), 500):
                result = await session.execute(statement.values(rows[start : start + 500]))
                new += max(result.rowcount or 0, 0)
        return new

    async def lease(self, owner: str, seconds: float) -> Job | None:
        now = time.time()
        async with self.database.sessions.begin() as session:
            row = (
                await session.execute(self._lease, {"owner": owner, "until": now + seconds, "now": now})
            ).first()
        return None if row is None else Job(row.id, row.file_id, row.attempts)

    async def extend(self, job: Job, owner: str, seconds: float) -> bool:
        async with self.database.sessions.begin() as session:
            result = await session.execute(_held(job, owner).values(lease_expires=time.time() + seconds))
        return bool(result.rowcount)

    async def complete(
        self, job: Job, owner: str, facts: Mapping[str, Any], *, broken: bool, mis_tagged: bool
    ) -> bool:
        """Record the facts and close the job, if this worker still holds its lease."""
        now = time.time()
        async with self.database.sessions.begin() as session:
            result = await session.execute(
                _held(job, owner).values(state="done", finished_at=now, lease_expires=None, error=None)
            )
            if not result.rowcount:
                return False
            statement = self.database.insert(AnalysisFactsRow).values(
                sha256=facts["sha256"],
                schema=facts["schema"],
                filename=facts["filename"],
                analyzed_at=now,
                broken=broken,
                mis_tagged=mis_tagged,
                facts=json.dumps(facts),
            )
            statement = statement.on_conflict_do_update(
                index_elements=["sha256"],
                set_={
                    key: statement.excluded[key]
                    for key in ("schema", "analyzed_at", "broken", "mis_tagged", "facts")
                },
            )
            await session.execute(statement)
        self._cache.pop(facts["sha256"], None)
        return True

    async def fail(self, job: Job, owner: str, error: str) -> str:
        """Give the job back (or mark it failed after MAX_ATTEMPTS); returns the new state."""
        state = "failed" if job.attempts >= MAX_ATTEMPTS else "queued"
        async with self.database.sessions.begin() as session:
            await session.execute(
                update(AnalysisJobRow)
                .where(AnalysisJobRow.id == job.id, AnalysisJobRow.lease_owner == owner)
                .values(
                    state=state,
                    lease_owner=None,
                    lease_expires=None,
                    error=error[:4000],
                    finished_at=time.time() if state == "failed" else None,
                )
            )
        return state

    async def requeue_outdated(self, schema: int) -> int:
        """Queue again the files whose stored facts have an older schema; returns how many.

        Facts of an older schema may lack fields or mean something else: re-analysing is
        cheaper than misreading them. The old facts stay served until the new ones replace them.
        """
        outdated = (
            select(FileRow.file_id)
            .join(AnalysisFactsRow, AnalysisFactsRow.sha256 == FileRow.sha256)
            .where(AnalysisFactsRow.schema < schema)
        )
        async with self.database.sessions.begin() as session:
            result = await session.execute(
                update(AnalysisJobRow)
                .where(AnalysisJobRow.file_id.in_(outdated), AnalysisJobRow.state.in_(("done", "failed")))
                .values(state="queued", attempts=0, lease_owner=None, lease_expires=None, error=None)
            )
        return result.rowcount or 0

    async def facts_for(self, sha256s: Sequence[str]) -> dict[str, StoredFacts]:
        now = time.monotonic()
        found: dict[str, StoredFacts] = {}
        missing: list[str] = []
        for sha256 in sha256s:
            cached = self._cache.get(sha256)
            if cached is not None and cached[0] > now:
                if cached[1] is not None:
                    found[sha256] = cached[1]
            else:
                missing.append(sha256)
        if not missing:
            return found
        fetched: dict[str, StoredFacts] = {}
        async with self.database.sessions() as session:
            # The resolver asks for a whole step's files at once: keep each IN list well under
            # SQLite's limit on bound parameters.
            for start in range(0, len(missing), _IN_CHUNK):
                result = await session.execute(
                    select(AnalysisFactsRow).where(
                        AnalysisFactsRow.sha256.in_(missing[start : start + _IN_CHUNK])
                    )
                )
                fetched.update((row.sha256, _stored(row)) for row in result.scalars())
        if len(self._cache) > 200_000:
            self._cache.clear()
        expires = now + self.cache_seconds
        for sha256 in missing:
            self._cache[sha256] = (expires, fetched.get(sha256))
        found.update(fetched)
        return found

    async def job_states(self, file_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not file_ids:
            return {}
        async with self.database.sessions() as session:
            result = await session.execute(
                select(AnalysisJobRow).where(AnalysisJobRow.file_id.in_(list(file_ids)))
            )
            return {row.file_id: _job_json(row) for row in result.scalars()}

    async def summary(self, *, limit: int = 50) -> dict[str, Any]:
        async with self.database.sessions() as session:
            counts = await session.execute(
                select(AnalysisJobRow.state, func.count()).group_by(AnalysisJobRow.state)
            )
            recent = await session.execute(
                select(AnalysisJobRow).order_by(AnalysisJobRow.id.desc()).limit(limit)
            )
            return {
                "counts": {state: count for state, count in counts.all()},
                "jobs": [_job_json(row) for row in recent.scalars()],
            }

    async def problems(self, *, index: str | None = None) -> list[dict[str, Any]]:
        """Files on each index whose facts say broken or mis-tagged."""
        query = (
            select(FileRow, AnalysisFactsRow)
            .join(AnalysisFactsRow, AnalysisFactsRow.sha256 == FileRow.sha256)
            .where(AnalysisFactsRow.broken | AnalysisFactsRow.mis_tagged)
            .order_by(FileRow.index_name, FileRow.filename)
        )
        if index is not None:
            query = query.where(FileRow.index_name == index)
        async with self.database.sessions() as session:
            result = await session.execute(query)
            problems = []
            for file_row, facts_row in result.all():
                facts = json.loads(facts_row.facts)
                problems.append(
                    {
                        "index": file_row.index_name,
                        "project": file_row.project,
                        "filename": file_row.filename,
                        "sha256": facts_row.sha256,
                        "broken": facts_row.broken,
                        "mis_tagged": facts_row.mis_tagged,
                        "findings": [
                            f for f in facts.get("findings", ()) if f["severity"] in ("error", "warning")
                        ],
                        "abi": facts.get("abi"),
                    }
                )
            return problems


def _held(job: Job, owner: str) -> Any:
    """An UPDATE of the job that matches only while ``owner`` still holds its lease."""
    return update(AnalysisJobRow).where(
        AnalysisJobRow.id == job.id, AnalysisJobRow.lease_owner == owner, AnalysisJobRow.state == "leased"
    )


def _stored(row: AnalysisFactsRow) -> StoredFacts:
    return StoredFacts(
        row.sha256,
        row.filename,
        row.schema,
        row.analyzed_at,
        row.broken,
        row.mis_tagged,
        json.loads(row.facts),
    )


def _job_json(row: AnalysisJobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "file_id": row.file_id,
        "reason": row.reason,
        "state": row.state,
        "attempts": row.attempts,
        "lease_owner": row.lease_owner,
        "lease_expires": row.lease_expires,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "error": row.error,
    }
