"""Wheel analysis: what a distribution needs, learned from its bytes alone.

A pure library: bytes (or a path) in, :class:`Facts` out. No network, no database, and no
import of ``index_proxy``.
"""

from analyzers.analyze import analyze
from analyzers.facts import (
    SCHEMA_VERSION,
    AbiFacts,
    CoreMetadataFacts,
    CpuFacts,
    CudaFacts,
    ElfFacts,
    Facts,
    Finding,
)

__all__ = [
    "SCHEMA_VERSION",
    "AbiFacts",
    "CoreMetadataFacts",
    "CpuFacts",
    "CudaFacts",
    "ElfFacts",
    "Facts",
    "Finding",
    "analyze",
]
