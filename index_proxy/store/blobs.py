"""Content-addressed blob storage: file bytes keyed by their sha256, written atomically.

A blob becomes visible only after its digest has been checked, so a reader never sees a
partial or tampered file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["BlobStore", "BlobWriter", "DigestMismatch", "FolderBlobStore"]


class DigestMismatch(ValueError):
    """The bytes written do not have the sha256 the upstream listed."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: the upstream listed {expected}, the bytes have {actual}")
        self.expected = expected
        self.actual = actual


class BlobWriter(Protocol):
    sha256: hashlib._Hash
    size: int

    async def write(self, chunk: bytes) -> None: ...

    async def commit(self, expected_sha256: str | None) -> str:
        """Check the digest and make the blob visible; returns the hex sha256."""
        ...

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    async def exists(self, sha256: str) -> bool: ...

    def local_path(self, sha256: str) -> Path | None:
        """A path the web server can send directly, when the store is on local disk."""
        ...

    async def open_writer(self) -> BlobWriter: ...

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
        self._temp = self.root / "tmp"
        self._temp.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    async def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def local_path(self, sha256: str) -> Path | None:
        path = self.path_for(sha256)
        return path if path.is_file() else None

    async def open_writer(self) -> BlobWriter:
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
