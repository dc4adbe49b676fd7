"""Lock file writers: requirements.txt with hashes, Pipfile.lock (pipfile-spec 6), PEP 751 pylock.toml.

Each lock pins one file per package, by its sha256: pip's hash checking then makes the client
install exactly the build the resolver chose, not another file of the same version that pip's own
tag order would prefer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import tomli_w
from packaging.markers import Marker
from packaging.pylock import Package, PackageWheel, Pylock
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = ["LockSource", "LockedPackage", "pipfile_lock", "pylock_toml", "requirements_txt"]


@dataclass(frozen=True, slots=True)
class LockSource:
    """An index as clients see it through the proxy."""

    name: str
    url: str  # a simple index URL
    verify_ssl: bool = True


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str
    version: str
    filename: str
    url: str  # absolute URL of the file through the proxy
    sha256: str
    source: str  # LockSource.name the file comes from
    size: int | None = None
    upload_time: str | None = None
    requires_python: str | None = None
    extras: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # normalized names this package requires (in this resolution)
    required_by: tuple[str, ...] = ()  # who requires it ("" = the user's requirements)
    dev: bool = False


def requirements_txt(packages: Sequence[LockedPackage], index_url: str, *, header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    lines.append(f"--index-url {index_url}")
    lines.append("")
    for package in sorted(packages, key=lambda p: p.name):
        extras = f"[{','.join(package.extras)}]" if package.extras else ""
        lines.append(f"{package.name}{extras}=={package.version} \\")
        lines.append(f"    --hash=sha256:{package.sha256}")
        via = [who or "-r requirements" for who in package.required_by]
        if via:
            lines.append(f"    # via {', '.join(sorted(via))}")
    return "\n".join(lines) + "\n"


def pipfile_lock(
    packages: Sequence[LockedPackage],
    sources: Sequence[LockSource],
    *,
    pipfile_sha256: str | None = None,
    requires_python: str | None = None,
    requires: Mapping[str, object] | None = None,
) -> str:
    """``requires`` is the Pipfile's ``[requires]`` table, copied as pipenv does; without one,
    ``requires_python`` becomes ``python_version``."""
    default: dict[str, dict[str, object]] = {}
    develop: dict[str, dict[str, object]] = {}
    for package in sorted(packages, key=lambda p: p.name):
        entry: dict[str, object] = {
            "hashes": [f"sha256:{package.sha256}"],
            "index": package.source,
            "version": f"=={package.version}",
        }
        if package.extras:
            entry["extras"] = list(package.extras)
        (develop if package.dev else default)[package.name] = entry
    meta: dict[str, object] = {
        "hash": {
            "sha256": pipfile_sha256
            or hashlib.sha256(json.dumps(default, sort_keys=True).encode()).hexdigest()
        },
        "pipfile-spec": 6,
        "requires": dict(requires)
        if requires is not None
        else ({"python_version": requires_python} if requires_python else {}),
        "sources": [{"name": s.name, "url": s.url, "verify_ssl": s.verify_ssl} for s in sources],
    }
    return (
        json.dumps({"_meta": meta, "default": default, "develop": develop}, indent=4, sort_keys=True) + "\n"
    )


def pylock_toml(
    packages: Sequence[LockedPackage],
    sources: Mapping[str, LockSource],
    *,
    environment_marker: str | None = None,
    requires_python: str | None = None,
    tool: Mapping[str, object] | None = None,
) -> str:
    locked = Pylock(
        lock_version=Version("1.0"),
        environments=[Marker(environment_marker)] if environment_marker else None,
        requires_python=SpecifierSet(requires_python) if requires_python else None,
        created_by="index-proxy",
        packages=[
            Package(
                name=canonicalize_name(package.name),
                version=Version(package.version),
                index=sources[package.source].url,
                requires_python=SpecifierSet(package.requires_python) if package.requires_python else None,
                dependencies=[{"name": name} for name in package.dependencies] or None,
                wheels=[
                    PackageWheel(
                        name=package.filename,
                        url=package.url,
                        size=package.size,
                        upload_time=_timestamp(package.upload_time),
                        hashes={"sha256": package.sha256},
                    )
                ],
            )
            for package in sorted(packages, key=lambda p: p.name)
        ],
        tool=dict(tool) if tool else None,
    )
    return tomli_w.dumps(locked.to_dict())


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
