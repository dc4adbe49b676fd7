"""Profiles encoded in /env/ paths, and which files a machine view lists."""

from __future__ import annotations

import pytest

from index_proxy.config import HardwareSpec
from index_proxy.machine import hardware_fits, machine_files, parse_profile_token
from index_proxy.merge import ServedFile
from index_proxy.simple.model import DistributionFile


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("x86_64_v3+avx2+cu121", HardwareSpec(("avx2",), "x86_64_v3", "12.1")),
        ("cu12.4", HardwareSpec((), None, "12.4")),
        ("x86_64_v2+cu118", HardwareSpec((), "x86_64_v2", "11.8")),
        ("cu12", HardwareSpec((), None, "12")),  # a major alone: any CUDA 12 build
        ("cpu", HardwareSpec((), None, None)),
        ("x86_64_v4+avx512f+fma", HardwareSpec(("avx512f", "fma"), "x86_64_v4", None)),
    ],
)
def test_profile_tokens(token: str, expected: HardwareSpec) -> None:
    assert parse_profile_token(token) == expected


def test_bad_profile_token() -> None:
    assert parse_profile_token("x86_64_v3+<script>") is None


def served(filename: str, index: str, hardware: HardwareSpec | None = None) -> ServedFile:
    file = DistributionFile(filename=filename, url=f"http://x/{filename}", hashes={"sha256": filename[:8]})
    return ServedFile(file, index, filename, "1.0", hardware)


def test_machine_view_prefers_the_build_made_for_it() -> None:
    avx2 = served("fm-1.0-cp311-cp311-linux_x86_64.whl", "avx2", HardwareSpec(("avx2",)))
    generic = served("fm-1.0-cp311-cp311-manylinux2014_x86_64.whl", "public")
    other_python = served("fm-1.0-cp312-cp312-manylinux2014_x86_64.whl", "public")
    priority = {"avx2": 0, "public": 1}
    files = [generic, avx2, other_python]
    # The AVX2 build hides the generic build for the same interpreter, not the one for another.
    assert machine_files(files, HardwareSpec(("avx2",), "x86_64_v3"), {}, priority) == [avx2, other_python]
    assert machine_files(files, HardwareSpec((), "x86_64_v2"), {}, priority) == [generic, other_python]


@pytest.mark.parametrize(
    ("required", "profile", "shown"),
    [
        (None, None, True),  # a generic file: every view
        (HardwareSpec(("avx2",)), None, False),  # a variant build: never the plain view
        (HardwareSpec(("avx2",)), HardwareSpec(("avx2", "fma")), True),
        (HardwareSpec(("avx2",)), HardwareSpec(cpu_level="x86_64_v3"), True),  # the level implies it
        (HardwareSpec(("avx512f",)), HardwareSpec(cpu_level="x86_64_v3"), False),
        (HardwareSpec(cuda="12.1"), HardwareSpec(cuda="12.4"), True),
        (HardwareSpec(cuda="12.1"), HardwareSpec(cuda="11.8"), False),
        (HardwareSpec(cuda="12.1"), HardwareSpec(("avx2",)), False),  # no GPU
    ],
)
def test_hardware_fits(required: HardwareSpec | None, profile: HardwareSpec | None, shown: bool) -> None:
    assert hardware_fits(required, profile) is shown
