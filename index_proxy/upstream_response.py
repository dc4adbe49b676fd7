"""An ASGI response for a file that is still arriving from its upstream.

Small files are held until their hash is checked, so a mismatch becomes a clean 502; larger
ones are streamed as they arrive, and a mismatch found at the end aborts the transfer before
the last bytes, so the client never gets a complete, wrong file.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from index_proxy.store.blobs import BlobStoreUnavailable, DigestMismatch
from index_proxy.store.db import FileRecord
from index_proxy.upstreams.base import UpstreamFileError

__all__ = ["UpstreamFileResponse"]

_HOLD_LIMIT = 1024 * 1024


class UpstreamFileResponse:
    def __init__(self, chunks: AsyncIterator[bytes], record: FileRecord) -> None:
        self.chunks = chunks
        self.record = record

    def _headers(self, length: int | None) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"cache-control", b"public, max-age=31536000, immutable"),
        ]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        if self.record.sha256:
            headers.append((b"etag", f'"{self.record.sha256}"'.encode()))
        return headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        held: list[bytes] = []
        held_size = 0
        started = False
        try:
            async for chunk in self.chunks:
                if started:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    continue
                held.append(chunk)
                held_size += len(chunk)
                if held_size >= _HOLD_LIMIT:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": self._headers(self.record.size),
                        }
                    )
                    started = True
                    await send({"type": "http.response.body", "body": b"".join(held), "more_body": True})
                    held = []
        except (DigestMismatch, UpstreamFileError, BlobStoreUnavailable) as error:
            if started:
                raise  # the server closes the connection: the client sees a truncated transfer
            reason = error.reason if isinstance(error, UpstreamFileError) else str(error)
            message = f"{self.record.filename} from index {self.record.index_name!r}: {reason}; not kept"
            # A failing blob store is this side's trouble and passes; a bad upstream is a bad gateway.
            status = 503 if isinstance(error, BlobStoreUnavailable) else 502
            body = json.dumps({"error": message, "status": status}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if not started:
            body = b"".join(held)
            await send({"type": "http.response.start", "status": 200, "headers": self._headers(len(body))})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
