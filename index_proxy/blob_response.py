"""A stored file served from a blob store that is not on local disk (S3), with HEAD and Range.

Local blobs go through Starlette's ``FileResponse``; this is its counterpart for a store that can
only stream, answering the same way: ``Accept-Ranges: bytes``, one range as 206 with
``Content-Range``, an unsatisfiable range as 416, ``If-Range`` honoured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from index_proxy.store.blobs import BlobStore

__all__ = ["blob_response", "byte_range"]

Unsatisfiable = Literal["unsatisfiable"]


def byte_range(header: str, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """The inclusive (first, last) byte a ``Range`` header asks of a *size*-byte file.

    ``None`` means "send the whole file": the header is malformed, not in bytes, or asks for
    several ranges (a server may ignore Range; installers ask for one range at a time).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first_text:  # "-N": the last N bytes
            suffix = int(last_text)
            if suffix < 0:
                return None
            return (max(size - suffix, 0), size - 1) if suffix and size else "unsatisfiable"
        first = int(first_text)
        last = int(last_text) if last_text else None
    except ValueError:
        return None
    if first < 0 or (last is not None and last < first):
        return None
    if first >= size:
        return "unsatisfiable"
    return first, size - 1 if last is None else min(last, size - 1)


def blob_response(
    request: Request, store: BlobStore, sha256: str, size: int, headers: Mapping[str, str]
) -> Response:
    """The blob *sha256* (*size* bytes) as the answer to *request*; *headers* carry etag and caching."""
    common = {**headers, "accept-ranges": "bytes"}
    media_type = "application/octet-stream"
    wanted = None
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header and (if_range is None or if_range.strip() == headers.get("etag")):
        wanted = byte_range(range_header, size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**common, "content-range": f"bytes */{size}"})
    if wanted is None:
        first, last, status = 0, size - 1, 200
    else:
        first, last = wanted
        status = 206
        common["content-range"] = f"bytes {first}-{last}/{size}"
    common["content-length"] = str(last - first + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=common, media_type=media_type)
    if size == 0:
        return Response(b"", status_code=200, headers=common, media_type=media_type)
    body = store.stream(sha256, first, last if status == 206 else None)
    return StreamingResponse(body, status_code=status, headers=common, media_type=media_type)
