"""Content-addressed blob storage: file bytes keyed by their sha256, written atomically.

A blob becomes visible only after its digest has been checked, so a reader never sees a
partial or tampered file.  Two stores implement :class:`BlobStore`: a local folder (the default)
and an S3-compatible bucket (:mod:`index_proxy.store.s3`), which replicas on several machines share.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from index_proxy.config import StorageConfig

__all__ = [
    "BlobStore",
    "BlobStoreUnavailable",
    "BlobWriter",
    "DigestMismatch",
    "FolderBlobStore",
    "open_blob_store",
]

_CHUNK = 256 * 1024


class DigestMismatch(ValueError):
    """The bytes written do not have the sha256 the upstream listed."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: the upstream listed {expected}, the bytes have {actual}")
        self.expected = expected
        self.actual = actual


class BlobStoreUnavailable(RuntimeError):
    """The blob store cannot be used (a missing bucket, refused credentials, an unreachable server).

    The message says what failed, where (the configured location) and how to fix it.
    """


class BlobWriter(Protocol):
    sha256: hashlib._Hash
    size: int

    async def write(self, chunk: bytes) -> None: ...

    async def commit(self, expected_sha256: str | None) -> str:
        """Check the digest and make the blob visible; returns the hex sha256."""
        ...

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    """Where verified bytes are kept, keyed by their lowercase hex sha256.

    Blobs are immutable: once :meth:`exists` is true for a key it stays true and the bytes never
    change, so callers may cache what they learned about a key.
    """

    location: str
    """What the operator configured (a folder path or ``s3://bucket/prefix``), for messages."""

    async def exists(self, sha256: str) -> bool: ...

    async def size(self, sha256: str) -> int | None:
        """The blob's length in bytes; ``None`` when it is not stored."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """A path the web server can send directly, when the store is on local disk."""
        ...

    def stream(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start..end`` (inclusive; ``None``: to the end) of a stored blob, in chunks."""
        ...

    async def open_writer(self, expected_sha256: str | None = None) -> BlobWriter:
        """A writer for one new blob; *expected_sha256*, when known up front, lets a store aim at
        the final key at once (it is still checked by :meth:`BlobWriter.commit`)."""
        ...

    async def read(self, sha256: str) -> bytes: ...

    async def put(self, data: bytes, expected_sha256: str | None = None) -> str: ...


@dataclass
class _FolderWriter:
    store: FolderBlobStore
    temp_path: Path
    sha256: hashlib._Hash
    size: int = 0

    def __post_init__(self) -> None:
        self._file = self.temp_path.open("wb")

    async def write(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.size += len(chunk)
        self._file.write(chunk)

    async def commit(self, expected_sha256: str | None) -> str:
        digest = self.sha256.hexdigest()
        self._file.close()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            self.temp_path.unlink(missing_ok=True)
            raise DigestMismatch(expected_sha256.lower(), digest)
        final = self.store.path_for(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.temp_path, final)
        return digest

    async def abort(self) -> None:
        self._file.close()
        self.temp_path.unlink(missing_ok=True)


class FolderBlobStore:
    """Blobs as files under ``root/sha256/ab/<hex>``; temporary files live in ``root/tmp``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self._temp = self.root / "tmp"
        self._temp.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    async def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    async def size(self, sha256: str) -> int | None:
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def local_path(self, sha256: str) -> Path | None:
        path = self.path_for(sha256)
        return path if path.is_file() else None

    async def stream(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        with self.path_for(sha256).open("rb") as file:
            file.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = file.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def open_writer(self, expected_sha256: str | None = None) -> BlobWriter:
        # Same filesystem as the final path, so os.replace is an atomic rename.
        return _FolderWriter(self, self._temp / f"{uuid.uuid4().hex}.part", hashlib.sha256())

    async def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    async def put(self, data: bytes, expected_sha256: str | None = None) -> str:
        writer = await self.open_writer()
        await writer.write(data)
        return await writer.commit(expected_sha256)

    def count(self) -> int:
        """How many blobs are stored (for tests and the admin API)."""
        return sum(1 for _ in (self.root / "sha256").glob("*/*")) if (self.root / "sha256").is_dir() else 0


@contextlib.asynccontextmanager
async def open_blob_store(storage: StorageConfig, source: str | None = None) -> AsyncIterator[BlobStore]:
    """The store ``storage.blobs`` names, checked to be usable, closed on exit.

    *source* (the config file) is named in the :class:`BlobStoreUnavailable` message.
    :raises BlobStoreUnavailable: when an S3 bucket is missing or unreachable.
    """
    if not storage.blobs.startswith("s3://"):
        yield FolderBlobStore(storage.blobs)
        return
    try:
        from index_proxy.store.s3 import open_s3_blob_store
    except ImportError as error:
        raise BlobStoreUnavailable(
            f"{source or 'the configuration'}: storage.blobs: {storage.blobs} needs aioboto3, which is not "
            f"installed ({error}); install index-proxy with the s3 extra: pip install 'index-proxy[s3]'"
        ) from None
    async with open_s3_blob_store(storage.blobs, storage.s3, source) as store:
        yield store
