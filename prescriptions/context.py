"""What a resolve request tells the rules about itself: the facts ``should_include`` is judged on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RequestContext", "RuntimeFacts"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    """The client's runtime environment; ``None`` means not known (or, for versions, not present).

    ``cpu_flags`` are the CPU features the client detected (``avx2``, ``avx512f``...); Thoth
    derived them from family and model through a table that knew two flags, index-proxy's client
    reports them. ``gpu_model`` is ``None`` when the machine has no GPU.
    """

    operating_system: str | None = None
    operating_system_version: str | None = None
    python_version: str | None = None  # "3.11"
    cuda_version: str | None = None
    cudnn_version: str | None = None
    mkl_version: str | None = None
    openblas_version: str | None = None
    openmpi_version: str | None = None
    cpu_family: int | None = None
    cpu_model: int | None = None
    cpu_flags: frozenset[str] = frozenset()
    gpu_model: str | None = None
    platform: str | None = None  # "linux-x86_64"
    base_image: str | None = None
    abi: frozenset[str] | None = None  # symbol versions in the base image, when it was analysed
    rpm_packages: frozenset[str] | None = None  # names of RPM packages in the base image
    python_packages: Mapping[str, str] | None = None  # name -> version in the base image


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One resolve request as the rules see it."""

    recommendation_type: str = "latest"
    runtime: RuntimeFacts = field(default_factory=RuntimeFacts)
    labels: Mapping[str, str] = field(default_factory=dict)
    library_usage: Mapping[str, tuple[str, ...]] | None = None
    """Top-level module -> dotted names the client's code uses; None: the client sent none."""
    authenticated: bool = False
