"""Prometheus metrics, one registry per app so that several apps can live in one process."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]


class _PageHits(Collector):
    """Page hits are counted with plain ints on the hot path and exported on scrape."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "index_proxy_page_responses",
            "Simple pages answered, by status and format",
            labels=["status", "format"],
        )
        for (status, page_format), count in self.hits.items():
            family.add_metric([status, page_format], count)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.page_hits = _PageHits()
        self.registry.register(self.page_hits)
        self.guard_events = Counter(
            "index_proxy_guard_events", "Files dropped by the merge guards", ["kind"], registry=self.registry
        )
        self.upstream_requests = Counter(
            "index_proxy_upstream_page_fetches",
            "Upstream page fetches by outcome",
            ["index", "outcome"],
            registry=self.registry,
        )
        self.stale_served = Counter(
            "index_proxy_stale_pages",
            "Stale pages served because an upstream failed",
            ["index"],
            registry=self.registry,
        )
        self.files = Counter(
            "index_proxy_files",
            "Files served, by where the bytes came from",
            ["source"],
            registry=self.registry,
        )
        self.hash_mismatches = Counter(
            "index_proxy_hash_mismatches",
            "Upstream files whose bytes did not match the listed sha256",
            ["index"],
            registry=self.registry,
        )
        self.metadata = Counter(
            "index_proxy_core_metadata",
            "Core metadata served, by how it was obtained",
            ["source"],
            registry=self.registry,
        )
        self.refresh_seconds = Histogram(
            "index_proxy_page_refresh_seconds",
            "Time to refresh a merged project page from its upstreams",
            registry=self.registry,
        )

    def hit(self, status: int, page_format: str) -> None:
        key = (str(status), page_format)
        self.page_hits.hits[key] = self.page_hits.hits.get(key, 0) + 1
