"""Value objects for what an upstream simple index says about a project."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CoreMetadata", "DistributionFile", "ProjectList", "ProjectPage", "Yanked"]

CoreMetadata = Mapping[str, str] | bool | None
"""PEP 658/714: a hash mapping, ``True`` (exists, no hash), ``False`` (none), ``None`` (unknown)."""

Yanked = str | bool
"""PEP 592: ``False`` when not yanked, ``True`` or a non-empty reason when yanked."""


@dataclass(frozen=True, slots=True)
class DistributionFile:
    """One file an upstream lists on a project page, with every URL already absolute."""

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: Yanked = False
    core_metadata: CoreMetadata = None
    size: int | None = None
    upload_time: str | None = None
    gpg_sig: bool | None = None

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")


@dataclass(frozen=True, slots=True)
class ProjectPage:
    """One upstream's project detail page, as parsed from PEP 691 JSON or PEP 503 HTML."""

    name: str
    files: tuple[DistributionFile, ...] = ()
    versions: tuple[str, ...] = ()
    api_version: str = "1.0"
    project_status: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectList:
    """One upstream's project list (names as the upstream wrote them)."""

    names: tuple[str, ...] = ()
    api_version: str = "1.0"
