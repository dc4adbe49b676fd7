"""What a file needs from a machine, and which files a machine should see.

Shared by the resolver's driver (full environments) and the ``/env/<profile>/simple/`` views
(hardware profiles, where the client applies its own tags).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from index_proxy.config import CPU_LEVELS, HardwareSpec
from index_proxy.merge import ServedFile
from resolver.environment import Environment
from resolver.fit import FileNeeds, rank_key, unmet_need, wheel_tags

__all__ = ["file_needs", "hardware_fits", "machine_environment", "machine_files", "parse_profile_token"]

_LOCAL_CUDA = re.compile(r"\+cu(\d{2,3})(?:\.|$)")
_CUDA_TOKEN = re.compile(r"^cu(?:(\d+)\.(\d+)|(\d{2})(\d)?)$")


def _cuda_of_label(version: str) -> str | None:
    match = _LOCAL_CUDA.search(version)
    if match is None:
        return None
    digits = match.group(1)
    return f"{digits[:-1]}.{digits[-1]}"


def _level_index(level: str | None) -> int:
    return CPU_LEVELS.index(level) if level in CPU_LEVELS else 0


def file_needs(served: ServedFile, facts: Mapping[str, Any] | None, priority: int) -> FileNeeds:
    """What a file needs: from its tags, its index's ``hardware:``, its version label and its facts."""
    hardware = served.hardware
    cpu_level = hardware.cpu_level if hardware else None
    features = set(hardware.cpu_features) if hardware else set()
    cuda = (hardware.cuda if hardware else None) or (
        _cuda_of_label(served.version) if served.version else None
    )
    min_glibc = None
    optimized = False
    if facts:
        cpu = facts.get("cpu") or {}
        level = cpu.get("level")
        # Only the GNU property note is authoritative; the instruction scan is advisory (it can
        # mistake data or another instruction's bytes for AVX) and never excludes a file.
        if cpu.get("source") == "note" and level:
            cpu_level = max((cpu_level or "x86_64", level), key=_level_index)
            features.update(cpu.get("features") or ())
            optimized = _level_index(level) > 0
        gpu = facts.get("cuda") or {}
        if gpu.get("cuda_version") or gpu.get("cuda_major"):
            cuda = cuda or gpu.get("cuda_version") or str(gpu["cuda_major"])
            optimized = True
        min_glibc = (facts.get("abi") or {}).get("min_glibc")
    return FileNeeds(
        filename=served.file.filename,
        tags=wheel_tags(served.file.filename),
        cpu_level=cpu_level,
        cpu_features=frozenset(features),
        cuda=cuda,
        min_glibc=min_glibc,
        made_for_hardware=hardware is not None or optimized,
        index_priority=priority,
    )


def hardware_fits(required: HardwareSpec | None, profile: HardwareSpec | None) -> bool:
    """Whether a variant source's files (``required``) may be shown to a profile's machine.

    Without a profile (the plain view) no variant build is shown, whatever it needs: a machine
    that cannot run an AVX2 build would crash on it.
    """
    if required is None:
        return True
    if profile is None:
        return False
    needs = FileNeeds(
        filename="",
        tags=frozenset(),
        cpu_level=required.cpu_level,
        cpu_features=frozenset(required.cpu_features),
        cuda=required.cuda,
    )
    return unmet_need(needs, machine_environment(profile), check_tags=False) is None


def machine_environment(profile: HardwareSpec | None) -> Environment:
    """A tag-less environment for judging hardware needs only."""
    profile = profile or HardwareSpec()
    return Environment(
        markers={},
        tags=(),
        cpu_level=profile.cpu_level,
        cpu_features=frozenset(profile.cpu_features),
        cuda=profile.cuda,
    )


def _interpreter_abis(filename: str) -> frozenset[tuple[str, str]]:
    try:
        return frozenset((tag.interpreter, tag.abi) for tag in parse_wheel_filename(filename)[3])
    except InvalidWheelFilename:
        return frozenset()


def machine_files(
    files: Sequence[ServedFile],
    profile: HardwareSpec | None,
    facts: Mapping[str, Mapping[str, Any]],
    priority: Mapping[str, int],
) -> list[ServedFile]:
    """The files a machine can run, best build first; a version's generic builds are hidden where a
    build made for the machine covers the same interpreter and ABI (pip would otherwise prefer the
    generic one by its tag order)."""
    environment = machine_environment(profile)
    fitting: list[tuple[ServedFile, FileNeeds]] = []
    for served in files:
        needs = file_needs(served, facts.get(served.file.sha256 or ""), priority.get(served.index, 99))
        if unmet_need(needs, environment, check_tags=False) is None:
            fitting.append((served, needs))
    special: dict[str | None, set[tuple[str, str]]] = {}
    for served, needs in fitting:
        if needs.made_for_hardware:
            special.setdefault(served.version, set()).update(_interpreter_abis(served.file.filename))
    kept = [
        (served, needs)
        for served, needs in fitting
        if needs.made_for_hardware
        or not served.file.filename.endswith(".whl")
        or not (_interpreter_abis(served.file.filename) & special.get(served.version, set()))
    ]
    kept.sort(key=lambda pair: rank_key(pair[1], environment))
    return [served for served, _ in kept]


def parse_profile_token(token: str) -> HardwareSpec | None:
    """``x86_64_v3+avx2+fma+cu121`` -> a profile; None when a part is not understood."""
    level: str | None = None
    cuda: str | None = None
    features: list[str] = []
    for part in filter(None, token.lower().split("+")):
        if part in CPU_LEVELS:
            level = part
        elif match := _CUDA_TOKEN.match(part):
            # cu121 and cu12.1 are CUDA 12.1; cu12 is any CUDA 12 (a major alone).
            major, minor = match.group(1) or match.group(3), match.group(2) or match.group(4)
            cuda = f"{major}.{minor}" if minor else major
        elif part == "cpu":
            continue
        elif re.fullmatch(r"[a-z0-9_.]+", part):
            features.append(part)
        else:
            return None
    return HardwareSpec(cpu_features=tuple(sorted(features)), cpu_level=level, cuda=cuda)
