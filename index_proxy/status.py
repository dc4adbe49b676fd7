"""What the proxy knows about each upstream's health, for /readyz, metrics and logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["UpstreamHealth", "UpstreamStatus"]


@dataclass
class UpstreamStatus:
    ok: bool = True
    last_ok_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    stale_served: int = 0


@dataclass
class UpstreamHealth:
    by_index: dict[str, UpstreamStatus] = field(default_factory=dict)

    def status(self, index: str) -> UpstreamStatus:
        return self.by_index.setdefault(index, UpstreamStatus())

    def succeeded(self, index: str) -> None:
        status = self.status(index)
        status.ok = True
        status.last_ok_at = time.time()

    def failed(self, index: str, reason: str) -> None:
        status = self.status(index)
        status.ok = False
        status.last_error = reason
        status.last_error_at = time.time()

    def report(self) -> dict[str, dict[str, object]]:
        return {
            name: {
                "ok": status.ok,
                "last_ok_at": status.last_ok_at,
                "last_error": status.last_error,
                "last_error_at": status.last_error_at,
                "stale_pages_served": status.stale_served,
            }
            for name, status in self.by_index.items()
        }
