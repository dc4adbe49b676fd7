"""Clients for upstream indexes: one per kind, all answering with typed outcomes."""

from index_proxy.upstreams.base import (
    FileStream,
    Found,
    InvalidContent,
    NotFound,
    NotModified,
    PageOutcome,
    RangeResult,
    Unavailable,
    Upstream,
)

__all__ = [
    "FileStream",
    "Found",
    "InvalidContent",
    "NotFound",
    "NotModified",
    "PageOutcome",
    "RangeResult",
    "Unavailable",
    "Upstream",
]
