"""CUDA requirements of a wheel: from DT_NEEDED sonames, Requires-Dist and the local version label.

Evidence, strongest first:

* **Sonames** the ELF files need (``libcudart.so.12``; auditwheel-renamed ``libcudart-1a2b3c4d.so.11.0``
  too). The CUDA major comes from the runtime-versioned libraries (cudart, cuBLAS/cuBLASLt, NVRTC,
  nvJitLink, CUPTI), whose soname major is the CUDA major. Math libraries have their own numbering and
  only count where it maps to one CUDA major: cuFFT 10/11/12 = CUDA 11/12/13, cuSPARSE 11 = CUDA 11,
  cuSOLVER 12 = CUDA 13 (cuSPARSE 12 and cuSOLVER 11 span two CUDA majors; cuRAND 10 spans all).
  cuDNN and NCCL majors are independent of CUDA; they and the driver (``libcuda.so.1``) are recorded
  as libraries without implying a major.
* **Requires-Dist**: ``nvidia-*-cuNN`` names carry the CUDA major; for CUDA 13 NVIDIA dropped the
  suffix, so the unsuffixed runtime, NVRTC and cuBLAS packages give it by their version. An exact pin
  of the runtime (else NVRTC, else cuBLAS), ``nvidia-cuda-runtime-cu12==12.1.105``, gives the minor.
  Requirements behind an extra are optional and ignored; so are the ``-cu110``..``-cu116`` placeholder
  packages.
* **Local version label** of third-party indexes: ``+cu121`` is CUDA 12.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from analyzers.facts import CudaFacts, ElfFacts

__all__ = ["summarize_cuda"]

_CUDA_SONAME = re.compile(
    r"lib(?P<lib>cudart|cublasLt|cublas|cufft|curand|cusparseLt|cusparse|cusolver|nvrtc-builtins|nvrtc"
    r"|nvJitLink|cupti|cudnn|nccl|cufile|nvToolsExt|cuda)(?:-[0-9a-f]{8})?\.so\.(?P<major>\d+)(?:\.\d+)*"
)
# Libraries whose soname major is the CUDA major.
_RUNTIME_VERSIONED = frozenset(
    {"cudart", "cublas", "cublasLt", "nvrtc", "nvrtc-builtins", "nvJitLink", "cupti"}
)
# Math libraries numbered on their own: soname major -> CUDA major, where that is unambiguous.
_MAPPED_MAJOR: dict[str, dict[int, int]] = {
    "cufft": {10: 11, 11: 12, 12: 13},
    "cusparse": {11: 11},
    "cusolver": {12: 13},
}
_SUFFIXED = re.compile(r"nvidia-[a-z0-9-]+-cu(?P<major>\d{2})")
_OTHER_CARRIERS = re.compile(r"cupy-cuda(?P<major>\d{2})x|jax-cuda(?P<jax>\d{2})-(?:plugin|pjrt)")
# Packages versioned like the toolkit, by preference for the exact minor.
_TOOLKIT_VERSIONED = ("nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cublas")
_LOCAL_LABEL = re.compile(r"cu(?P<major>\d{1,2})(?P<minor>\d)")


def summarize_cuda(
    elfs: Sequence[ElfFacts], requires_dist: Sequence[str], version: str | None
) -> CudaFacts | None:
    """The CUDA a wheel needs, or None when nothing points at CUDA."""
    libraries, soname_major, soname_evidence = _from_sonames(elfs)
    dist_major, dist_version, dist_evidence = _from_requirements(requires_dist)
    label, label_version = _from_local_label(version)
    evidence = soname_evidence + dist_evidence + ((f"local-label:{label}",) if label else ())
    if not evidence:
        return None
    cuda_version = dist_version or label_version
    version_major = int(cuda_version.split(".")[0]) if cuda_version else None
    major = soname_major or dist_major or version_major
    if version_major != major:
        cuda_version = None  # metadata naming another major than the binaries link: trust neither minor
    return CudaFacts(cuda_major=major, cuda_version=cuda_version, libraries=libraries, evidence=evidence)


def _from_sonames(elfs: Sequence[ElfFacts]) -> tuple[tuple[str, ...], int | None, tuple[str, ...]]:
    """(CUDA sonames needed, the CUDA major they imply, their evidence strings)."""
    matches = {
        name: match
        for elf in elfs
        for name in elf.needed
        if (match := _CUDA_SONAME.fullmatch(name)) is not None
    }
    direct, mapped = [], []
    for match in matches.values():
        lib, major = match.group("lib"), int(match.group("major"))
        if lib in _RUNTIME_VERSIONED:
            direct.append(major)
        elif major in _MAPPED_MAJOR.get(lib, {}):
            mapped.append(_MAPPED_MAJOR[lib][major])
    # Files needing two runtimes need both: the newer one bounds the driver.
    cuda_major = max(direct or mapped, default=None)
    libraries = tuple(sorted(matches))
    return libraries, cuda_major, tuple(f"soname:{name}" for name in libraries)


def _requirements(requires_dist: Sequence[str]) -> Iterator[Requirement]:
    for line in requires_dist:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue  # only installed on request
        yield requirement


def _from_requirements(requires_dist: Sequence[str]) -> tuple[int | None, str | None, tuple[str, ...]]:
    """(CUDA major, exact CUDA version from a pin, evidence strings) from Requires-Dist."""
    majors: list[int] = []
    pins: dict[str, str] = {}
    evidence: list[str] = []
    for requirement in _requirements(requires_dist):
        name = canonicalize_name(requirement.name)
        base, major = _cuda_major_of(name, requirement)
        if major is None:
            continue
        majors.append(major)
        evidence.append(f"requires-dist:{name}")
        pinned = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
        if base in _TOOLKIT_VERSIONED and pinned and re.match(r"\d+\.\d+", pinned[0]):
            pins.setdefault(base, ".".join(pinned[0].split(".")[:2]))
    cuda_version = next((pins[base] for base in _TOOLKIT_VERSIONED if base in pins), None)
    return max(majors, default=None), cuda_version, tuple(dict.fromkeys(evidence))


def _cuda_major_of(name: str, requirement: Requirement) -> tuple[str, int | None]:
    """The package name without its ``-cuNN`` suffix, and the CUDA major the requirement implies."""
    if match := _SUFFIXED.fullmatch(name):
        return name.rsplit("-", 1)[0], int(match.group("major"))
    if match := _OTHER_CARRIERS.fullmatch(name):
        return name, int(match.group("major") or match.group("jax"))
    if name in _TOOLKIT_VERSIONED:  # CUDA 13 on: unsuffixed, versioned like the toolkit
        versions = [
            spec.version for spec in requirement.specifier if spec.operator in ("==", "===", ">=", "~=")
        ]
        leading = re.match(r"\d+", versions[0]) if versions else None
        if leading and int(leading.group()) >= 13:
            return name, int(leading.group())
    return name, None


def _from_local_label(version: str | None) -> tuple[str | None, str | None]:
    """The ``cuXYZ`` segment of a local version label and the CUDA version it names."""
    if not version or "+" not in version:
        return None, None
    for segment in re.split(r"[._-]", version.split("+", 1)[1].lower()):
        if match := _LOCAL_LABEL.fullmatch(segment):
            return segment, f"{int(match.group('major'))}.{match.group('minor')}"
    return None, None
