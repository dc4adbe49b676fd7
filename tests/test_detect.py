"""Machine detection for ``index-proxy env``: parsers fed text in the formats real machines produce,
then this machine itself (no GPU here)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys

import pytest
from packaging.markers import default_environment
from packaging.tags import sys_tags
from support.proxy import REPO_ROOT

from index_proxy.client.detect import (
    CUDA_DRIVER_TABLE,
    cpu_from_cpuinfo,
    cuda_for_driver,
    cuda_from_smi_header,
    detect_cpu,
    detect_cuda,
    detect_environment,
    detect_glibc,
    driver_from_proc_version,
    driver_from_smi_query,
    glibc_from_confstr,
    level_from_flags,
)
from resolver.environment import CPU_LEVELS, Environment

# /proc/cpuinfo of real CPUs (first processor block; later blocks repeat it). The kernel spells SSE3
# "pni" and LZCNT "abm", which the levels must see through.
CORE2 = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr "
    "sse sse2 ss ht tm pbe syscall nx lm constant_tsc arch_perfmon pebs bts rep_good nopl cpuid aperfmperf "
    "pni dtes64 monitor ds_cpl vmx est tm2 ssse3 cx16 xtpr pdcm lahf_lm dtherm"
)
NEHALEM = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr "
    "sse sse2 ss ht tm pbe syscall nx rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl "
    "xtopology nonstop_tsc cpuid aperfmperf pni dtes64 monitor ds_cpl vmx est tm2 ssse3 cx16 xtpr pdcm "
    "sse4_1 sse4_2 popcnt lahf_lm pti ssbd ibrs ibpb stibp tpr_shadow vnmi flexpriority ept vpid dtherm ida"
)
HASWELL = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr "
    "sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl "
    "xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx est tm2 ssse3 sdbg "
    "fma cx16 xtpr pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c "
    "rdrand lahf_lm abm cpuid_fault epb invpcid_single pti ssbd ibrs ibpb stibp tpr_shadow vnmi "
    "flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid xsaveopt dtherm "
    "ida arat pln pts md_clear flush_l1d"
)
SKYLAKE_SP = HASWELL + (
    " mpx rdt_a avx512f avx512dq rdseed adx smap clflushopt clwb intel_pt avx512cd avx512bw avx512vl "
    "xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc"
)
CPUINFO_HASWELL = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 60\n"
    "model name\t: Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz\nstepping\t: 3\n"
    f"flags\t\t: {HASWELL}\nbogomips\t: 6784.57\n\n"
    "processor\t: 1\nvendor_id\t: GenuineIntel\n"
    "flags\t\t: fpu vme de pse tsc msr\n"
)
CPUINFO_GRAVITON2 = (
    "processor\t: 0\nBogoMIPS\t: 243.75\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc "
    "dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\n"
    "CPU part\t: 0xd0c\nCPU revision\t: 1\n"
)


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        (CORE2, "x86_64"),  # no POPCNT or SSE4.2
        (NEHALEM, "x86_64_v2"),
        (HASWELL, "x86_64_v3"),
        (SKYLAKE_SP, "x86_64_v4"),
        # A VM that hides MOVBE cannot claim v3 however much AVX2 it has: levels are all-or-nothing.
        (HASWELL.replace(" movbe", ""), "x86_64_v2"),
        # AVX-512F alone (Knights Landing lacks BW/DQ/VL) is not v4.
        (HASWELL + " avx512f avx512cd", "x86_64_v3"),
    ],
)
def test_level_from_kernel_flags(flags: str, level: str) -> None:
    assert level_from_flags(flags.split()) == level


def test_cpuinfo_x86_first_processor_isa_flags_only() -> None:
    cpu = cpu_from_cpuinfo(CPUINFO_HASWELL, "x86_64")
    assert cpu["level"] == "x86_64_v3"
    features = set(cpu["features"])
    assert {"avx2", "fma", "bmi2", "aes", "pclmulqdq", "sse4_2"} <= features
    # The kernel's names and the ISA names both, so an analyzer's "lzcnt"/"sse3" need matches.
    assert {"abm", "lzcnt", "sse3"} <= features
    # Kernel, hypervisor and errata flags are not instruction sets: no wheel needs them.
    assert not features & {"hypervisor", "pti", "md_clear", "flush_l1d", "constant_tsc", "tsc_adjust"}
    assert {"cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"} <= features  # the x86-64 baseline
    assert cpu["features"] == sorted(cpu["features"])


def test_cpuinfo_avx512() -> None:
    cpu = cpu_from_cpuinfo(f"processor\t: 0\nflags\t\t: {SKYLAKE_SP}\n", "x86_64")
    assert cpu["level"] == "x86_64_v4"
    assert {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx2"} <= set(cpu["features"])


def test_cpuinfo_aarch64_has_features_and_no_level() -> None:
    cpu = cpu_from_cpuinfo(CPUINFO_GRAVITON2, "aarch64")
    assert cpu["level"] is None
    assert {"asimd", "atomics", "sha2", "asimddp"} <= set(cpu["features"])


def test_cpuinfo_without_flags() -> None:
    assert cpu_from_cpuinfo("processor\t: 0\n", "x86_64") == {"level": "x86_64", "features": []}


@pytest.mark.parametrize(
    ("text", "driver"),
    [
        (
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
            "550.54.14",
        ),
        (
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build  "
            "(dvs-builder@U16-I3-B03-4-3)  Fri Aug 16 21:42:42 UTC 2024\n"
            "GCC version:  gcc version 13.2.0 (Ubuntu 13.2.0-23ubuntu4)\n",
            "560.35.03",
        ),
        (
            "NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.104.05  Sat Aug 19 01:13:15 UTC 2023\n",
            "535.104.05",
        ),
        ("GCC version:  gcc version 12.2.0\n", None),
    ],
)
def test_driver_from_proc_version(text: str, driver: str | None) -> None:
    assert driver_from_proc_version(text) == driver


def test_proc_version_550_54_14_is_cuda_12_4() -> None:
    text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
    driver = driver_from_proc_version(text)
    assert driver is not None and cuda_for_driver(driver) == "12.4"


def test_driver_from_smi_query() -> None:
    assert driver_from_smi_query("535.104.05\n535.104.05\n") == "535.104.05"
    assert driver_from_smi_query("") is None
    assert driver_from_smi_query("No devices were found\n") is None


SMI_550 = """\
Thu Feb 29 10:12:01 2024
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.14              Driver Version: 550.54.14      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA A100-SXM4-80GB          On  |   00000000:07:00.0 Off |                    0 |
+-----------------------------------------------------------------------------------------+
"""
SMI_470 = """\
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 470.82.01    Driver Version: 470.82.01    CUDA Version: 11.4     |
|-------------------------------+----------------------+----------------------+
"""


def test_cuda_from_smi_header() -> None:
    assert cuda_from_smi_header(SMI_550) == "12.4"
    assert cuda_from_smi_header(SMI_470) == "11.4"
    assert cuda_from_smi_header("NVIDIA-SMI has failed because it couldn't communicate") is None


# (driver, the "CUDA Version" nvidia-smi prints for it): the table must say what the driver says.
SMI_PAIRS = [
    ("580.65.06", "13.0"),
    ("575.57.08", "12.9"),
    ("570.86.15", "12.8"),
    ("560.35.03", "12.6"),
    ("555.42.02", "12.5"),
    ("550.54.14", "12.4"),
    ("545.23.08", "12.3"),
    ("535.104.05", "12.2"),
    ("530.30.02", "12.1"),
    ("525.85.12", "12.0"),
    ("520.61.05", "11.8"),
    ("515.65.01", "11.7"),
    ("510.47.03", "11.6"),
    ("495.29.05", "11.5"),
    ("470.82.01", "11.4"),
    ("460.32.03", "11.2"),
    ("455.32.00", "11.1"),
    ("450.80.02", "11.0"),
    ("440.33.01", "10.2"),
    ("418.67", "10.1"),
]


@pytest.mark.parametrize(("driver", "cuda"), SMI_PAIRS)
def test_driver_table_agrees_with_nvidia_smi(driver: str, cuda: str) -> None:
    assert cuda_for_driver(driver) == cuda


def test_driver_table_edges() -> None:
    assert cuda_for_driver("525.60.13") == "12.0"
    assert cuda_for_driver("525.60.12") == "11.8"
    assert cuda_for_driver("570.26") == "12.8"  # two-part driver versions exist
    assert cuda_for_driver("570.124.06") == "12.8"  # 124 > 26 numerically, not as text
    assert cuda_for_driver("375.26") == "8.0"
    assert cuda_for_driver("367.48") is None  # older than any CUDA the table knows
    assert cuda_for_driver("not a version") is None
    # Newest first, each row needing a newer driver than the next.
    keys = [tuple(int(p) for p in minimum.split(".")) for _, minimum in CUDA_DRIVER_TABLE]
    assert keys == sorted(keys, reverse=True)


def test_glibc_from_confstr() -> None:
    assert glibc_from_confstr("glibc 2.36") == "2.36"
    assert glibc_from_confstr("glibc 2.17.1") == "2.17"
    assert glibc_from_confstr(None) is None
    assert glibc_from_confstr("musl 1.2.4") is None


# --- this machine ---------------------------------------------------------------------------------


def _nvidia_driver_present() -> bool:
    return (
        os.path.exists("/proc/driver/nvidia/version")
        or os.path.exists("/sys/module/nvidia/version")
        or shutil.which("nvidia-smi") is not None
    )


def test_this_machine_environment_is_accepted_by_the_server_schema() -> None:
    data = detect_environment()
    environment = Environment.from_json(json.loads(json.dumps(data)))  # as it travels: through JSON
    assert data["tags"] == [str(tag) for tag in sys_tags()]
    assert list(environment.tags) == data["tags"]
    assert data["markers"] == dict(default_environment())
    if _nvidia_driver_present():
        assert data["cuda"] is not None and environment.cuda == data["cuda"]
    else:
        assert data["cuda"] is None  # the project's machines and CI have no GPU
        assert environment.cuda is None
    if sys.platform == "linux":
        assert data["glibc"] == glibc_from_confstr(os.confstr("CS_GNU_LIBC_VERSION"))
    if platform.machine() == "x86_64":
        assert data["cpu"]["level"] in CPU_LEVELS


@pytest.mark.skipif(_nvidia_driver_present(), reason="this machine has an NVIDIA driver")
def test_this_machine_has_no_cuda() -> None:
    assert detect_cuda() is None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not a glibc system")
def test_this_machine_glibc() -> None:
    glibc = detect_glibc()
    assert glibc is not None and glibc.count(".") == 1


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="reads /proc/cpuinfo")
def test_archspec_and_cpuinfo_agree_and_fallback_works() -> None:
    """With archspec (the default) and without it (a subprocess where importing it fails), the same
    level, and the fallback's features are all among archspec's."""
    with_archspec = detect_cpu()
    code = (
        "import json, sys\n"
        "sys.modules['archspec'] = None  # makes `import archspec` raise ImportError\n"
        "sys.modules['archspec.cpu'] = None\n"
        "from index_proxy.client.detect import detect_cpu\n"
        "print(json.dumps(detect_cpu()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    without = json.loads(done.stdout)
    with open("/proc/cpuinfo") as handle:
        assert without == cpu_from_cpuinfo(handle.read(), platform.machine())
    assert without["level"] == with_archspec["level"]
    assert set(without["features"]) <= set(with_archspec["features"])
