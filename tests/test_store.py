"""The SQL store on SQLite and on a real PostgreSQL: same models, same Alembic migrations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.postgres import PostgresServer, postgres_server
from support.wheels import build_wheel

from index_proxy.store.blobs import DigestMismatch, FolderBlobStore
from index_proxy.store.db import Database, FileRecord, GuardEvent, StoredPage


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    await database.migrate()  # idempotent: a restart migrates again
    try:
        yield database
    finally:
        await database.close()


def record(file_id: str, **changes: Any) -> FileRecord:
    values: dict[str, Any] = {
        "file_id": file_id,
        "index_name": "public",
        "project": "libb",
        "filename": f"libb-{file_id}-py3-none-any.whl",
        "upstream_url": f"http://127.0.0.1:9/files/{file_id}.whl",
        "sha256": None,
        "size": 10,
        "upstream_metadata": {"sha256": "ab" * 32},
        "metadata_sha256": None,
        "stored": False,
    }
    values.update(changes)
    return FileRecord(**values)


async def test_pages_round_trip(database: Database) -> None:
    assert await database.get_page("public", "libb") is None
    await database.put_page(StoredPage("public", "libb", True, '"e1"', 100.0, b"payload"))
    await database.put_page(StoredPage("public", "libb", True, '"e2"', 200.0, b"payload2"))
    stored = await database.get_page("public", "libb")
    assert stored == StoredPage("public", "libb", True, '"e2"', 200.0, b"payload2")
    await database.touch_page("public", "libb", 300.0)
    touched = await database.get_page("public", "libb")
    assert touched is not None and touched.fetched_at == 300.0 and touched.etag == '"e2"'


async def test_files_upsert_keeps_what_the_proxy_learned(database: Database) -> None:
    await database.upsert_files([record("a"), record("b")])
    await database.mark_stored("a", "cd" * 32, 1234)
    await database.set_metadata_sha256("a", "ef" * 32)
    # The page is refreshed: the listing changes, what we learned about the bytes does not.
    await database.upsert_files([record("a", upstream_url="http://127.0.0.1:9/moved/a.whl")])
    got = await database.get_file("a")
    assert got is not None
    assert got.upstream_url == "http://127.0.0.1:9/moved/a.whl"
    assert got.stored and got.sha256 == "cd" * 32 and got.size == 1234
    assert got.metadata_sha256 == "ef" * 32
    assert got.upstream_metadata == {"sha256": "ab" * 32}
    assert {r.file_id for r in await database.files_of_project("libb")} == {"a", "b"}
    assert await database.get_file("missing") is None


async def test_many_files_in_one_upsert(database: Database) -> None:
    await database.upsert_files([record(str(i)) for i in range(1200)])
    assert len(await database.files_of_project("libb")) == 1200


async def test_guard_events_are_recorded_once(database: Database) -> None:
    event = GuardEvent(
        "owned-elsewhere", "acme-utils", "acme_utils-99.0-py3-none-any.whl", "public", "internal", "x"
    )
    other = GuardEvent(
        "owned-elsewhere", "acme-utils", "acme_utils-100.0-py3-none-any.whl", "public", "internal", "y"
    )
    assert await database.record_guard_events([event]) == [event]
    assert await database.record_guard_events([event, other]) == [other]
    listed = await database.list_guard_events()
    assert [e.filename for e in listed] == [other.filename, event.filename]  # newest first
    assert all(e.at > time.time() - 60 for e in listed)
    assert await database.list_guard_events(project="other") == []


async def test_folder_blob_store_is_atomic_and_verified(tmp_path: Path, wheel_dir: Path) -> None:
    import hashlib

    store = FolderBlobStore(tmp_path / "blobs")
    data = build_wheel(wheel_dir, "libb", "1.0").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    writer = await store.open_writer()
    await writer.write(data[:100])
    assert not await store.exists(digest)  # nothing visible before commit
    await writer.write(data[100:])
    assert await writer.commit(digest) == digest
    assert await store.read(digest) == data
    with pytest.raises(DigestMismatch, match="sha256 mismatch"):
        await store.put(
            b"tampered", expected_sha256=digest.replace(digest[0], "0" if digest[0] != "0" else "1")
        )
    assert store.count() == 1
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_throwaway_cluster_when_no_server_runs() -> None:
    # CI and dev machines run a server on 5432; this proves the fallback a bare machine relies on.
    with postgres_server(prefer_running=False) as server:
        assert server.port != 5432
        name = server.create_database()
        server.drop_database(name)


def test_proxy_on_postgresql_keeps_state_across_restarts(
    postgres: PostgresServer, upstreams: Any, wheel_dir: Path, proxy: Any, tmp_path: Path
) -> None:
    import yaml
    from support.proxy import free_port

    internal = upstreams(style="html", name="internal")
    public = upstreams(style="json", metadata=True, name="public")
    internal.add(build_wheel(wheel_dir, "acme-utils", "1.0"))
    public.add(build_wheel(wheel_dir, "acme-utils", "99.0"))
    name = postgres.create_database()
    try:
        config = yaml.safe_dump(
            {
                "server": {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token"},
                "storage": {"database": postgres.dsn(name), "blobs": str(tmp_path / "shared-blobs")},
                "indexes": [
                    {"name": "internal", "url": internal.url, "owns": ["acme-*"]},
                    {"name": "public", "url": public.url},
                ],
            }
        )
        first = proxy(config)
        page = first.get(
            "/simple/acme-utils/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ).json()
        assert [f["filename"] for f in page["files"]] == ["acme_utils-1.0-py3-none-any.whl"]
        url = "/" + page["files"][0]["url"].removeprefix("../../")
        assert first.get(url).status_code == 200
        first.stop()
        internal.stop()  # the file must now come from the shared blob store, the page from the database
        second = proxy(config)
        events = second.guard_events()
        assert [(e["kind"], e["filename"]) for e in events] == [
            ("owned-elsewhere", "acme_utils-99.0-py3-none-any.whl")
        ]
        assert second.get(url).status_code == 200
    finally:
        postgres.drop_database(name)


async def test_facts_of_an_older_schema_are_queued_again(database: Database) -> None:
    from index_proxy.store.analysis import AnalysisStore

    analysis = AnalysisStore(database)
    await database.upsert_files([record("old", sha256="ab" * 32), record("new", sha256="cd" * 32)])
    await analysis.enqueue(["old", "new"], "hook")
    for sha256, schema in (("ab" * 32, 0), ("cd" * 32, 1)):
        job = await analysis.lease("w", 60)
        assert job is not None
        facts = {"sha256": sha256, "schema": schema, "filename": "x.whl"}
        assert await analysis.complete(job, "w", facts, broken=False, mis_tagged=False)
    assert await analysis.requeue_outdated(1) == 1
    summary = await analysis.summary()
    assert summary["counts"] == {"done": 1, "queued": 1}
    requeued = await analysis.lease("w", 60)
    assert requeued is not None and requeued.file_id == "old"
