"""Errors raised when an upstream's simple-API response cannot be used."""

from __future__ import annotations

import re

__all__ = ["InvalidPage", "check_api_version"]


class InvalidPage(ValueError):
    """An upstream page that cannot be parsed, or that speaks an API version we must not guess at."""

    url: str
    reason: str

    def __init__(self, url: str, reason: str) -> None:
        # Both values go to the base class so that ``args`` rebuilds the exception when it is pickled
        # (for example on its way back from a worker process).
        super().__init__(url, reason)
        self.url = url
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


_API_VERSION = re.compile(r"([0-9]+)(?:\.[0-9]+)?")


def check_api_version(url: str, version: str) -> str:
    """Return ``version`` stripped, or raise `InvalidPage` when its major version is not 1.

    The spec makes an unknown major version a hard failure: its pages may mean something else entirely.
    A newer minor version is returned as is, so that the caller can decide whether to warn.
    """
    stripped = version.strip()
    # The spec's form is "M.m"; a bare "M" is tolerated because it still names the major version.
    match = _API_VERSION.fullmatch(stripped)
    if match is None:
        raise InvalidPage(url, f"malformed API version {version!r}")
    if int(match[1]) != 1:
        raise InvalidPage(url, f"unsupported API version {stripped!r} (major version must be 1)")
    return stripped
