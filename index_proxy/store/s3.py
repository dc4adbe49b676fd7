"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, moto), through aioboto3.

Layout under ``s3://bucket/prefix``: ``prefix/sha256/<first 2 hex>/<sha256>`` for blobs and
``prefix/tmp/<uuid>`` for the rare upload whose digest is not known before it ends.

S3 has no rename, but an object becomes visible only when its upload completes: a PutObject or a
CompleteMultipartUpload.  A writer holds back that last call until the sha256 of everything
written has checked out, so a reader never sees a partial or unverified object:

* a blob smaller than one part is buffered and sent with one PutObject to its final key, after
  the check;
* a larger one is sent in parts while it arrives, to its final key when the expected sha256 is
  known up front (the usual case: the upstream page lists it); the multipart upload is completed
  after the check, or aborted;
* with no expected sha256, the parts go to a temporary key, which is completed, copied server-side
  to the final key once the digest is known, and deleted.

A writer that dies (a killed worker) leaves at most an incomplete multipart upload, which no
reader sees and which a bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans up, or an
object under ``prefix/tmp/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aioboto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from index_proxy.config import S3Config
from index_proxy.store.blobs import BlobStoreUnavailable, BlobWriter, DigestMismatch

__all__ = ["S3BlobStore", "open_s3_blob_store"]

log = logging.getLogger("index_proxy.store.s3")

PART_SIZE = 8 * 1024 * 1024
"""Bytes per multipart part; S3 wants at least 5 MiB for every part but the last."""
_COPY_LIMIT = 5 * 1024**3  # one CopyObject call copies at most 5 GiB; above, copy in parts
_CHUNK = 256 * 1024
_KNOWN_SIZES_LIMIT = 200_000


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return _status(error) == 404 or code in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    """A :class:`~index_proxy.store.blobs.BlobStore` in one bucket under one key prefix."""

    def __init__(self, client: Any, location: str, *, part_size: int = PART_SIZE) -> None:
        parts = urlsplit(location)
        self.location = location
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self._base = f"{prefix}/" if prefix else ""
        self.part_size = part_size
        self.client = client
        # Blobs never change once stored, so what a HEAD learned stays true: the hot path of a
        # cached file then costs no S3 round trip before the GET that streams it.
        self._sizes: dict[str, int] = {}

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    def key_for(self, sha256: str) -> str:
        return f"{self._base}sha256/{sha256[:2]}/{sha256}"

    def temp_key(self) -> str:
        return f"{self._base}tmp/{uuid.uuid4().hex}"

    def failure(self, action: str, key: str, error: Exception) -> BlobStoreUnavailable:
        return BlobStoreUnavailable(
            f"S3 {action} of s3://{self.bucket}/{key} at {self.endpoint} failed: {error}"
        )

    def remember(self, sha256: str, size: int) -> None:
        if len(self._sizes) >= _KNOWN_SIZES_LIMIT:
            self._sizes.clear()
        self._sizes[sha256] = size

    # -- reading ------------------------------------------------------------------------------
    async def size(self, sha256: str) -> int | None:
        known = self._sizes.get(sha256)
        if known is not None:
            return known
        key = self.key_for(sha256)
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise self.failure("HEAD", key, error) from error
        except BotoCoreError as error:
            raise self.failure("HEAD", key, error) from error
        size = int(head["ContentLength"])
        self.remember(sha256, size)
        return size

    async def exists(self, sha256: str) -> bool:
        return await self.size(sha256) is not None

    def local_path(self, sha256: str) -> None:
        return None

    async def _get(self, key: str, byte_range: str | None = None) -> Any:
        extra = {"Range": byte_range} if byte_range else {}
        try:
            return await self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as error:
            if _is_missing(error):
                raise FileNotFoundError(f"no blob at s3://{self.bucket}/{key}") from error
            raise self.failure("GET", key, error) from error
        except BotoCoreError as error:
            raise self.failure("GET", key, error) from error

    async def stream(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        ranged = start > 0 or end is not None
        response = await self._get(
            self.key_for(sha256), f"bytes={start}-{'' if end is None else end}" if ranged else None
        )
        body = response["Body"]
        # Leaving the block releases the connection, also when the client stops reading early.
        async with body:
            async for chunk in body.iter_chunks(_CHUNK):
                yield chunk

    async def read(self, sha256: str) -> bytes:
        response = await self._get(self.key_for(sha256))
        body = response["Body"]
        async with body:
            return bytes(await body.read())

    # -- writing ------------------------------------------------------------------------------
    async def open_writer(self, expected_sha256: str | None = None) -> BlobWriter:
        return _S3Writer(self, expected_sha256.lower() if expected_sha256 else None)

    async def put(self, data: bytes, expected_sha256: str | None = None) -> str:
        writer = await self.open_writer(expected_sha256)
        try:
            await writer.write(data)
            return await writer.commit(expected_sha256)
        except BaseException:
            await writer.abort()
            raise

    async def copy(self, source: str, target: str) -> None:
        """Server-side copy within the bucket, in parts above the 5 GiB a single CopyObject allows."""
        await self.client.copy(
            {"Bucket": self.bucket, "Key": source},
            self.bucket,
            target,
            Config=TransferConfig(multipart_threshold=_COPY_LIMIT, multipart_chunksize=_COPY_LIMIT // 8),
        )

    # -- start-up check -----------------------------------------------------------------------
    async def check(self, where: str) -> None:
        """Fail early, with the fix, when the bucket cannot be used.

        :raises BlobStoreUnavailable: naming *where* (config file and key), the endpoint and the fix.
        """
        endpoint = self.endpoint
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise BlobStoreUnavailable(
                f"{where}: no S3 credentials found; export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                " (or AWS_PROFILE) in the environment of index-proxy"
            ) from None
        except EndpointConnectionError as error:
            raise BlobStoreUnavailable(
                f"{where}: cannot reach the S3 endpoint {endpoint} ({error}); check storage.s3.endpoint_url"
                " (or AWS_ENDPOINT_URL) and that the server is running"
            ) from None
        except ClientError as error:
            status = _status(error)
            if _is_missing(error):
                raise BlobStoreUnavailable(
                    f"{where}: bucket {self.bucket!r} does not exist at {endpoint}; create it (e.g. "
                    f"`aws s3 mb s3://{self.bucket}` or `mc mb ALIAS/{self.bucket}`) or fix the bucket name"
                ) from None
            if status in (401, 403):
                raise BlobStoreUnavailable(
                    f"{where}: access to bucket {self.bucket!r} at {endpoint} was refused ({status}); check"
                    " AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy"
                ) from None
            raise BlobStoreUnavailable(
                f"{where}: checking bucket {self.bucket!r} at {endpoint} failed: {error}"
            ) from None
        except BotoCoreError as error:
            raise BlobStoreUnavailable(
                f"{where}: checking bucket {self.bucket!r} at {endpoint} failed: {error}; check"
                " storage.s3 (endpoint_url, region, addressing_style) and the AWS_* environment"
            ) from None


class _S3Writer:
    """One blob on its way into the bucket; see the module docstring for the commit scheme."""

    def __init__(self, store: S3BlobStore, expected: str | None) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._store = store
        self._expected = expected
        # Known digest: parts go straight to the final key, invisible until completed.
        self._key = store.key_for(expected) if expected else store.temp_key()
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._next_part = 1
        # One part uploads while the next one arrives from the upstream.
        self._in_flight: asyncio.Task[dict[str, Any]] | None = None
        self._temp_object = False
        self._finished = False

    async def write(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.size += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= self._store.part_size:
            await self._send_part()

    async def _send_part(self) -> None:
        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            try:
                created = await client.create_multipart_upload(Bucket=bucket, Key=self._key)
            except (ClientError, BotoCoreError) as error:
                raise self._store.failure("multipart upload", self._key, error) from error
            self._upload_id = str(created["UploadId"])
        await self._wait_in_flight()
        data, number = bytes(self._buffer), self._next_part
        self._buffer.clear()
        self._next_part += 1
        self._in_flight = asyncio.create_task(self._upload_part(self._upload_id, number, data))

    async def _upload_part(self, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        try:
            sent = await self._store.client.upload_part(
                Bucket=self._store.bucket, Key=self._key, UploadId=upload_id, PartNumber=number, Body=data
            )
        except (ClientError, BotoCoreError) as error:
            raise self._store.failure(f"upload of part {number}", self._key, error) from error
        return {"PartNumber": number, "ETag": sent["ETag"]}

    async def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            self._parts.append(await task)

    async def commit(self, expected_sha256: str | None) -> str:
        digest = self.sha256.hexdigest()
        for wanted in (expected_sha256.lower() if expected_sha256 else None, self._expected):
            if wanted is not None and wanted != digest:
                await self.abort()
                raise DigestMismatch(wanted, digest)
        store, client, bucket = self._store, self._store.client, self._store.bucket
        final = store.key_for(digest)
        try:
            if self._upload_id is None:
                await client.put_object(Bucket=bucket, Key=final, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    await self._send_part()
                await self._wait_in_flight()
                await client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
                self._upload_id = None
                if self._key != final:
                    self._temp_object = True
                    await store.copy(self._key, final)
        except (ClientError, BotoCoreError) as error:
            await self.abort()
            raise store.failure("commit", final, error) from error
        except BaseException:
            await self.abort()
            raise
        self._finished = True
        store.remember(digest, self.size)
        if self._temp_object:
            # The blob is kept already; a temporary object left behind only takes space.
            try:
                await self._delete_temp()
            except (ClientError, BotoCoreError) as error:
                log.warning(
                    "could not delete a temporary S3 object", extra={"key": self._key, "error": str(error)}
                )
        return digest

    async def _delete_temp(self) -> None:
        self._temp_object = False
        await self._store.client.delete_object(Bucket=self._store.bucket, Key=self._key)

    async def abort(self) -> None:
        """Drop whatever was sent; nothing of it was ever visible under a blob key."""
        if self._finished:
            return
        self._finished = True
        self._buffer.clear()
        if self._in_flight is not None:
            self._in_flight.cancel()
            with contextlib.suppress(BaseException):
                await self._in_flight
            self._in_flight = None
        try:
            if self._upload_id is not None:
                upload_id, self._upload_id = self._upload_id, None
                await self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._key, UploadId=upload_id
                )
            if self._temp_object:
                await self._delete_temp()
        except (ClientError, BotoCoreError) as error:
            # Invisible leftovers only: the bucket's lifecycle rule removes them; the blob was not kept.
            log.warning(
                "could not clean up an aborted S3 upload", extra={"key": self._key, "error": str(error)}
            )


@contextlib.asynccontextmanager
async def open_s3_blob_store(
    location: str, settings: S3Config, source: str | None = None, *, part_size: int = PART_SIZE
) -> AsyncIterator[S3BlobStore]:
    """An S3 client for *location* (``s3://bucket/prefix``), checked against the bucket, closed on exit.

    Credentials come from the environment as boto reads them (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ...); ``AWS_ENDPOINT_URL`` applies when
    ``storage.s3.endpoint_url`` is not set.
    """
    boto_config = BotoConfig(
        s3={"addressing_style": settings.addressing_style},
        # Every concurrent file response holds a connection while it streams.
        max_pool_connections=64,
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    session = aioboto3.Session()
    async with session.client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=boto_config
    ) as client:
        store = S3BlobStore(client, location, part_size=part_size)
        await store.check(f"{source or 'the configuration'}: storage.blobs {location}")
        yield store
