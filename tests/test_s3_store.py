"""The S3 blob store against a real S3-compatible server (moto, on loopback).

What a reader can see is checked from outside, with a separate client listing the bucket: no
object under a blob key before the digest checked out, none after a mismatch or an abort, and no
multipart upload left behind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.proxy import REPO_ROOT, free_port
from support.s3 import S3Bucket, S3Server

from index_proxy.config import S3Config, StorageConfig
from index_proxy.store.blobs import BlobStoreUnavailable, DigestMismatch, open_blob_store
from index_proxy.store.s3 import PART_SIZE, S3BlobStore, open_s3_blob_store

# Over two parts: the multipart path, with a short last part.
LARGE = os.urandom(PART_SIZE * 2 + 12345)
LARGE_SHA = hashlib.sha256(LARGE).hexdigest()
SMALL = b"small blob\n" * 100
SMALL_SHA = hashlib.sha256(SMALL).hexdigest()
WRONG_SHA = "0" * 64


def settings(bucket: S3Bucket) -> S3Config:
    return S3Config(endpoint_url=bucket.endpoint_url)


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


async def write_in_chunks(store: S3BlobStore, data: bytes, expected: str | None) -> str:
    writer = await store.open_writer(expected)
    for start in range(0, len(data), 1024 * 1024):
        await writer.write(data[start : start + 1024 * 1024])
    return await writer.commit(expected)


async def test_small_blob_round_trip(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        assert not await store.exists(SMALL_SHA)
        assert await store.size(SMALL_SHA) is None
        assert await store.put(SMALL) == SMALL_SHA
        assert await store.exists(SMALL_SHA)
        assert await store.size(SMALL_SHA) == len(SMALL)
        assert await store.read(SMALL_SHA) == SMALL
        assert store.local_path(SMALL_SHA) is None
    assert s3_bucket.keys() == [blob_key(SMALL_SHA)]
    assert s3_bucket.get(blob_key(SMALL_SHA)) == SMALL


async def test_large_blob_is_invisible_until_verified(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        writer = await store.open_writer(LARGE_SHA)
        await writer.write(LARGE[: PART_SIZE + 1])
        await writer.write(LARGE[PART_SIZE + 1 : 2 * PART_SIZE + 2])
        # Two parts are on the server, and still nothing can be read.
        assert s3_bucket.keys() == []
        assert s3_bucket.open_uploads() == [blob_key(LARGE_SHA)]
        assert not await store.exists(LARGE_SHA)
        await writer.write(LARGE[2 * PART_SIZE + 2 :])
        assert await writer.commit(LARGE_SHA) == LARGE_SHA
        await writer.abort()  # after a commit (a client that went away at the end): changes nothing
    assert s3_bucket.keys() == [blob_key(LARGE_SHA)]
    assert s3_bucket.open_uploads() == []
    assert hashlib.sha256(s3_bucket.get(blob_key(LARGE_SHA))).hexdigest() == LARGE_SHA


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["one-put", "multipart"])
async def test_hash_mismatch_leaves_nothing(s3_bucket: S3Bucket, data: bytes) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        with pytest.raises(DigestMismatch, match="sha256 mismatch") as raised:
            await write_in_chunks(store, data, WRONG_SHA)
        assert raised.value.actual == hashlib.sha256(data).hexdigest()
        assert not await store.exists(WRONG_SHA)
        assert not await store.exists(hashlib.sha256(data).hexdigest())
    assert s3_bucket.keys() == []
    assert s3_bucket.open_uploads() == []


async def test_expected_hash_given_only_at_commit_is_checked(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        writer = await store.open_writer()
        await writer.write(LARGE)
        with pytest.raises(DigestMismatch):
            await writer.commit(WRONG_SHA)
    assert s3_bucket.keys() == []
    assert s3_bucket.open_uploads() == []


async def test_unknown_digest_goes_through_a_temporary_key(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        writer = await store.open_writer()
        await writer.write(LARGE[: PART_SIZE + 10])
        [temporary] = s3_bucket.open_uploads()
        assert temporary.startswith("blobs/tmp/")
        await writer.write(LARGE[PART_SIZE + 10 :])
        assert await writer.commit(None) == LARGE_SHA
        assert await store.read(LARGE_SHA) == LARGE
    # Copied to its content address, and the temporary object is gone.
    assert s3_bucket.keys() == [blob_key(LARGE_SHA)]
    assert s3_bucket.open_uploads() == []


async def test_aborted_writer_leaves_nothing(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        for expected in (LARGE_SHA, None):
            writer = await store.open_writer(expected)
            await writer.write(LARGE[: 2 * PART_SIZE])
            await writer.abort()
            await writer.abort()
    assert s3_bucket.keys() == []
    assert s3_bucket.open_uploads() == []


async def test_ranges_are_read_from_the_server(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(s3_bucket.url, settings(s3_bucket)) as store:
        await write_in_chunks(store, LARGE, LARGE_SHA)

        async def joined(start: int = 0, end: int | None = None) -> bytes:
            return b"".join([chunk async for chunk in store.stream(LARGE_SHA, start, end)])

        assert await joined() == LARGE
        assert await joined(0, 0) == LARGE[:1]
        assert await joined(PART_SIZE - 3, PART_SIZE + 3) == LARGE[PART_SIZE - 3 : PART_SIZE + 4]
        assert await joined(len(LARGE) - 22) == LARGE[-22:]


async def test_prefix_free_location_and_shared_bucket(s3_bucket: S3Bucket) -> None:
    async with open_s3_blob_store(f"s3://{s3_bucket.name}", settings(s3_bucket)) as first:
        await first.put(SMALL, SMALL_SHA)
    # A second store (another replica) on the same bucket sees what the first one wrote.
    async with open_s3_blob_store(f"s3://{s3_bucket.name}/", settings(s3_bucket)) as second:
        assert await second.read(SMALL_SHA) == SMALL
    assert s3_bucket.keys() == [f"sha256/{SMALL_SHA[:2]}/{SMALL_SHA}"]


async def test_open_blob_store_chooses_by_location(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3 = StorageConfig("sqlite+aiosqlite://", s3_bucket.url, settings(s3_bucket))
    async with open_blob_store(s3) as store:
        assert isinstance(store, S3BlobStore) and store.location == s3_bucket.url
    folder = StorageConfig("sqlite+aiosqlite://", str(tmp_path / "blobs"))
    async with open_blob_store(folder) as store:
        assert store.local_path(SMALL_SHA) is None
        await store.put(SMALL)
        assert store.local_path(SMALL_SHA) == tmp_path / "blobs" / "sha256" / SMALL_SHA[:2] / SMALL_SHA
        assert b"".join([c async for c in store.stream(SMALL_SHA, 5, 9)]) == SMALL[5:10]


async def test_missing_bucket_is_a_clear_error(s3_server: S3Server) -> None:
    with pytest.raises(BlobStoreUnavailable) as raised:
        async with open_s3_blob_store(
            "s3://no-such-bucket/blobs", S3Config(endpoint_url=s3_server.endpoint_url), "proxy.yaml"
        ):
            pass
    message = str(raised.value)
    assert message.startswith("proxy.yaml: storage.blobs s3://no-such-bucket/blobs")
    assert "bucket 'no-such-bucket' does not exist at " + s3_server.endpoint_url in message
    assert "create it" in message


async def test_unreachable_endpoint_is_a_clear_error(s3_server: S3Server) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BlobStoreUnavailable) as raised:
        async with open_s3_blob_store("s3://wheels/blobs", S3Config(endpoint_url=nobody), "proxy.yaml"):
            pass
    message = str(raised.value)
    assert f"cannot reach the S3 endpoint {nobody}" in message
    assert "storage.s3.endpoint_url" in message


def test_serve_refuses_to_start_without_the_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    config = tmp_path / "proxy.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"host": "127.0.0.1", "port": free_port()},
                "storage": {
                    "database": f"sqlite:///{tmp_path / 'proxy.db'}",
                    "blobs": "s3://not-created-yet/blobs",
                    "s3": {"endpoint_url": s3_server.endpoint_url},
                },
                "indexes": [{"name": "local", "kind": "folder", "url": str(tmp_path)}],
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for command in ("serve", "worker"):
        result = subprocess.run(
            [sys.executable, "-m", "index_proxy", command, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 2, result.stderr
        assert "index-proxy: the blob store cannot be used:" in result.stderr
        assert (
            f"{config}: storage.blobs s3://not-created-yet/blobs: bucket 'not-created-yet'" in result.stderr
        )
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "proxy.db").exists(), "nothing is migrated before the store is known to work"
