"""What this machine is, as the JSON ``resolver.environment.Environment.from_json`` reads.

Every parser takes the raw text a source produces (a /proc/cpuinfo dump, /proc/driver/nvidia/version,
nvidia-smi output, the confstr answer), so tests feed it real sample text from machines that are not
this one; only the ``detect_*`` functions read the machine.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

from packaging.markers import default_environment
from packaging.tags import sys_tags

from resolver.environment import CPU_LEVELS

__all__ = [
    "CUDA_DRIVER_TABLE",
    "CpuJSON",
    "EnvironmentJSON",
    "cpu_from_cpuinfo",
    "cpu_from_flags",
    "cuda_for_driver",
    "cuda_from_smi_header",
    "detect_cpu",
    "detect_cuda",
    "detect_environment",
    "detect_glibc",
    "driver_from_proc_version",
    "driver_from_smi_query",
    "glibc_from_confstr",
    "level_from_flags",
]


class CpuJSON(TypedDict):
    level: str | None
    features: list[str]


class EnvironmentJSON(TypedDict):
    markers: dict[str, str]
    tags: list[str]
    cpu: CpuJSON
    cuda: str | None
    glibc: str | None


# --- CPU ----------------------------------------------------------------------------------------

_X86_MACHINES = frozenset({"x86_64", "amd64", "x64"})

# The x86-64 psABI levels, cumulative (archspec-json's x86_64_v2..v4 entries). Names are the kernel's
# /proc/cpuinfo flags after _ALIASES, which is also how the analyzers name what a binary uses.
_LEVEL_FEATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("x86_64_v2", frozenset({"cx16", "lahf_lm", "popcnt", "sse3", "ssse3", "sse4_1", "sse4_2"})),
    (
        "x86_64_v3",
        frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"}),
    ),
    ("x86_64_v4", frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
)

# The kernel names some CPUID bits differently from the ISA manuals, archspec and the analyzers:
# "pni" is SSE3 and "abm" is the LZCNT bit. Both spellings are kept so either kind of need matches.
_ALIASES = {"pni": "sse3", "abm": "lzcnt"}

# Instruction-set flags only: /proc/cpuinfo also lists ~80 flags about the kernel, the hypervisor and
# errata (hypervisor, constant_tsc, pti...) that no wheel can need. Leaving them out keeps the
# environment, and the /env/<profile>/ view URL a lock names (it carries every feature), short.
# The list is every feature archspec's x86 knowledge base (0.2.7) names, less its few non-ISA ones
# (tsc_adjust, flush_l1d), plus lzcnt and the x86-64 baseline that resolver/fit.py names (cmov, cx8,
# fpu, fxsr); the prefixes keep future AVX/AMX extensions.
# fmt: off
_X86_ISA = frozenset({
    "3dnow", "3dnowext", "abm", "adx", "aes", "amx_bf16", "amx_int8", "amx_tile", "avx", "avx2",
    "avx512_bf16", "avx512_bitalg", "avx512_fp16", "avx512_vbmi2", "avx512_vnni", "avx512_vp2intersect",
    "avx512_vpopcntdq", "avx512bw", "avx512cd", "avx512dq", "avx512er", "avx512f", "avx512ifma", "avx512pf",
    "avx512vbmi", "avx512vl", "avx_ifma", "avx_ne_convert", "avx_vnni", "avx_vnni_int16", "avx_vnni_int8",
    "bmi1", "bmi2", "cldemote", "clflushopt", "clwb", "clzero", "cmov", "cmpccxadd", "cx16", "cx8", "f16c",
    "fma", "fma4", "fpu", "fsgsbase", "fxsr", "gfni", "lahf_lm", "lzcnt", "mmx", "movbe", "movdir64b",
    "movdiri", "pclmulqdq", "pku", "popcnt", "rdpid", "rdrand", "rdseed", "serialize", "sha512", "sha_ni",
    "sm3", "sm4", "sse", "sse2", "sse3", "sse4_1", "sse4_2", "sse4a", "ssse3", "tbm", "vaes", "vpclmulqdq",
    "waitpkg", "xop", "xsave", "xsavec", "xsaveopt",
})
# fmt: on
_X86_ISA_PREFIXES = ("avx512", "avx10", "amx_", "avx_")


def level_from_flags(flags: Iterable[str]) -> str:
    """The highest x86-64 level all of whose features (and all lower levels' features) are present."""
    have = _with_aliases(flags)
    level = "x86_64"
    for name, needed in _LEVEL_FEATURES:
        if not needed <= have:
            break
        level = name
    return level


def _with_aliases(flags: Iterable[str]) -> set[str]:
    have = {flag.lower() for flag in flags}
    have.update(_ALIASES[flag] for flag in list(have) if flag in _ALIASES)
    return have


def _isa_only(flags: Iterable[str]) -> list[str]:
    return sorted(f for f in _with_aliases(flags) if f in _X86_ISA or f.startswith(_X86_ISA_PREFIXES))


def cpu_from_flags(flags: Iterable[str], machine: str) -> CpuJSON:
    """The ``cpu`` object for a CPU with these kernel flags; ``machine`` is platform.machine()."""
    if machine.lower() not in _X86_MACHINES:
        # Levels are an x86-64 notion; other architectures' cpuinfo "Features" are all ISA features.
        return {"level": None, "features": sorted({flag.lower() for flag in flags})}
    flags = list(flags)
    return {"level": level_from_flags(flags), "features": _isa_only(flags)}


def cpu_from_cpuinfo(text: str, machine: str) -> CpuJSON:
    """The ``cpu`` object from /proc/cpuinfo text: the first processor's ``flags`` (x86) or
    ``Features`` (ARM) line. No such line gives no features and, on x86, the baseline level."""
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip() in ("flags", "Features"):
            return cpu_from_flags(value.split(), machine)
    return cpu_from_flags((), machine)


def detect_cpu(machine: str | None = None) -> CpuJSON:
    """This machine's CPU, from archspec when installed, else from /proc/cpuinfo."""
    machine = machine or platform.machine()
    try:
        return _archspec_cpu(machine)
    except ImportError:
        pass
    except Exception as error:
        # archspec has failed on CPUs and VMs its knowledge base did not expect; the kernel's flags
        # still describe the machine.
        warnings.warn(f"archspec could not identify this CPU ({error}); using /proc/cpuinfo", stacklevel=2)
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        # No archspec and no /proc (macOS, Windows without it): claim nothing rather than guess.
        return {"level": None, "features": []}
    return cpu_from_cpuinfo(text, machine)


def _archspec_cpu(machine: str) -> CpuJSON:
    import archspec.cpu
    from archspec.cpu import detect as archspec_detect

    host = archspec.cpu.host()
    if host.family.name != "x86_64" or machine.lower() not in _X86_MACHINES:
        return {"level": None, "features": sorted(f.lower() for f in host.features)}
    # host is a concrete microarchitecture (zen4, haswell) or a generic level itself; its ancestors
    # include the generic levels it implies, and .generic is the best of them.
    names = {host.name, host.generic.name, *(ancestor.name for ancestor in host.ancestors)}
    level = max((n for n in names if n in CPU_LEVELS), key=CPU_LEVELS.index, default="x86_64")
    # host.features is the knowledge base's list for the matched microarchitecture, which misses what a
    # CPU has beyond it (a VM that hides one flag matches only a generic level); the detected flags,
    # instruction-set ones only, fill that in.
    detected = _isa_only(archspec_detect.detected_info().features)
    return {"level": level, "features": sorted({*(f.lower() for f in host.features), *detected})}


# --- CUDA ---------------------------------------------------------------------------------------

# The oldest Linux driver that runs each CUDA release natively: NVIDIA's CUDA toolkit release notes,
# "CUDA Toolkit and Corresponding Driver Versions" (GA rows), newest first. This is the release
# nvidia-smi's "CUDA Version" header reports for a driver. (uv's --torch-backend table instead
# applies minor-version compatibility, so any 12.x needs only 525.60.13; that is looser than what
# the driver itself says, and a build needing 12.8 features can fail on 525.) 12.7 was never released.
CUDA_DRIVER_TABLE: tuple[tuple[str, str], ...] = (
    ("13.0", "580.65.06"),
    ("12.9", "575.51.03"),
    ("12.8", "570.26"),
    ("12.6", "560.28.03"),
    ("12.5", "555.42.02"),
    ("12.4", "550.54.14"),
    ("12.3", "545.23.06"),
    ("12.2", "535.54.03"),
    ("12.1", "530.30.02"),
    ("12.0", "525.60.13"),
    ("11.8", "520.61.05"),
    ("11.7", "515.43.04"),
    ("11.6", "510.39.01"),
    ("11.5", "495.29.05"),
    ("11.4", "470.42.01"),
    ("11.3", "465.19.01"),
    ("11.2", "460.27.03"),
    ("11.1", "455.23"),
    ("11.0", "450.36.06"),
    ("10.2", "440.33"),
    ("10.1", "418.39"),
    ("10.0", "410.48"),
    ("9.2", "396.26"),
    ("9.1", "390.46"),
    ("9.0", "384.81"),
    ("8.0", "375.26"),
)
_DRIVER = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
_SMI_TIMEOUT = 15.0


def _driver_key(version: str) -> tuple[int, int, int]:
    # Padded so "570.26" and "570.26.0" compare equal, and "570.26" < "570.124.06" still holds.
    major, minor, patch = ([int(part) for part in version.split(".")[:3]] + [0, 0, 0])[:3]
    return major, minor, patch


def cuda_for_driver(driver: str) -> str | None:
    """The newest CUDA a Linux driver version runs, or None for a driver older than CUDA 8."""
    if not _DRIVER.match(driver):
        return None
    have = _driver_key(driver)
    for cuda, minimum in CUDA_DRIVER_TABLE:
        if have >= _driver_key(minimum):
            return cuda
    return None


def driver_from_proc_version(text: str) -> str | None:
    """The driver version from /proc/driver/nvidia/version, e.g.
    ``NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024`` or the
    open module's ``NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build ...``.
    """
    for line in text.splitlines():
        if line.startswith("NVRM version:"):
            # The first version-shaped word after "Module": the architecture word never is one.
            match = re.search(r"Module\b.*?\s(\d+\.\d+(?:\.\d+)?)(?:\s|$)", line)
            if match:
                return match.group(1)
    return None


def driver_from_smi_query(text: str) -> str | None:
    """The driver version from ``nvidia-smi --query-gpu=driver_version --format=csv,noheader`` (one
    line per GPU, all the same driver)."""
    for line in text.splitlines():
        if _DRIVER.match(line.strip()):
            return line.strip()
    return None


def cuda_from_smi_header(text: str) -> str | None:
    """The ``CUDA Version: 12.4`` that plain ``nvidia-smi`` prints in its header: the driver's own
    statement of the newest CUDA it runs."""
    match = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", text)
    return match.group(1) if match else None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _nvidia_smi(*args: str) -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, *args], capture_output=True, text=True, timeout=_SMI_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # nvidia-smi exits non-zero when the driver is not loaded: that machine has no usable GPU.
    return done.stdout if done.returncode == 0 else None


def _driver_version() -> str | None:
    # uv's order: the module's own file, the kernel's proc entry, then asking nvidia-smi.
    module = (_read("/sys/module/nvidia/version") or "").strip()
    if _DRIVER.match(module):
        return module
    proc = _read("/proc/driver/nvidia/version")
    if proc is not None and (found := driver_from_proc_version(proc)) is not None:
        return found
    query = _nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    return driver_from_smi_query(query) if query is not None else None


def detect_cuda() -> str | None:
    """The newest CUDA this machine's NVIDIA driver runs; None without a driver."""
    if sys.platform != "linux":
        # The driver table is Linux's (Windows drivers are numbered differently): ask the driver.
        header = _nvidia_smi()
        return cuda_from_smi_header(header) if header is not None else None
    driver = _driver_version()
    if driver is None:
        return None
    cuda = cuda_for_driver(driver)
    if cuda == CUDA_DRIVER_TABLE[0][0]:
        # A driver past the table's newest row may run a CUDA newer than the table knows of.
        header = _nvidia_smi()
        newer = cuda_from_smi_header(header) if header is not None else None
        if newer is not None and _driver_key(newer) > _driver_key(cuda):
            return newer
    return cuda


# --- glibc --------------------------------------------------------------------------------------


def glibc_from_confstr(text: str | None) -> str | None:
    """``"glibc 2.36"`` (os.confstr("CS_GNU_LIBC_VERSION")) -> ``"2.36"``; None for anything else."""
    match = re.fullmatch(r"glibc (\d+\.\d+)(?:\.\d+)?", (text or "").strip())
    return match.group(1) if match else None


def detect_glibc() -> str | None:
    """This process's glibc version; None on musl and on systems without glibc."""
    try:
        found = glibc_from_confstr(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        # No confstr (Windows) or a libc that does not know the name (musl).
        found = None
    if found is not None:
        return found
    try:
        # packaging's fallback asks glibc itself through ctypes; private, so guarded.
        from packaging._manylinux import _glibc_version_string

        return glibc_from_confstr(f"glibc {_glibc_version_string()}")
    except (ImportError, AttributeError, OSError, TypeError):
        return None


# --- all together -------------------------------------------------------------------------------


def detect_environment() -> EnvironmentJSON:
    """This machine, as ``index-proxy env`` prints it."""
    return {
        "markers": {key: str(value) for key, value in default_environment().items()},
        "tags": [str(tag) for tag in sys_tags()],
        "cpu": detect_cpu(),
        "cuda": detect_cuda(),
        "glibc": detect_glibc(),
    }
