"""CUDA needs from linked sonames (a real stand-in libcudart), Requires-Dist and local version labels."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from analyzers.cuda import summarize_cuda
from analyzers.elf import analyze_elf
from analyzers.facts import CudaFacts, ElfFacts

CUDART_SOURCE = "int cudaGetDeviceCount(int *count) { *count = 0; return 0; }\n"
EXTENSION_SOURCE = """
int cudaGetDeviceCount(int *count);
int devices(void) { int n = 0; cudaGetDeviceCount(&n); return n; }
"""


def elf(*needed: str) -> ElfFacts:
    return ElfFacts(path="pkg/_C.so", machine="x86_64", elf_class=64, needed=needed)


@pytest.fixture(scope="module")
def linked_extension(tmp_path_factory: pytest.TempPathFactory) -> ElfFacts:
    """A shared object linked against a stand-in ``libcudart.so.12`` (the soname is what counts)."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    directory = tmp_path_factory.mktemp("cuda")
    (directory / "cudart.c").write_text(CUDART_SOURCE)
    (directory / "ext.c").write_text(EXTENSION_SOURCE)
    cudart = directory / "libcudart.so.12"
    extension = directory / "_ext.so"
    compile_cudart = ["gcc", "-shared", "-fPIC", "-O2", "-Wl,-soname,libcudart.so.12", "-o", str(cudart)]
    subprocess.run([*compile_cudart, str(directory / "cudart.c")], check=True, capture_output=True)
    compile_extension = ["gcc", "-shared", "-fPIC", "-O2", "-o", str(extension), str(directory / "ext.c")]
    subprocess.run(
        [*compile_extension, f"-L{directory}", "-l:libcudart.so.12"], check=True, capture_output=True
    )
    facts = analyze_elf(extension.read_bytes(), "pkg/_ext.so")
    assert isinstance(facts, ElfFacts), facts
    return facts


def test_linked_cudart_gives_the_major(linked_extension: ElfFacts) -> None:
    assert "libcudart.so.12" in linked_extension.needed
    assert summarize_cuda([linked_extension], [], "1.0") == CudaFacts(
        cuda_major=12, libraries=("libcudart.so.12",), evidence=("soname:libcudart.so.12",)
    )


@pytest.mark.parametrize(
    ("needed", "major"),
    [
        (("libcudart.so.11.0",), 11),
        (("libcublas.so.12", "libcublasLt.so.12"), 12),
        (("libnvrtc.so.11.2",), 11),
        (("libnvJitLink.so.13",), 13),
        (("libcudart-e409df54.so.11.0",), 11),  # renamed and bundled by auditwheel
        (("libcufft.so.10",), 11),  # cuFFT numbers itself: 10 shipped with CUDA 11
        (("libcufft.so.11",), 12),
        (("libcusolver.so.12",), 13),
        (("libcudnn.so.9",), None),  # cuDNN 9 exists for CUDA 11, 12 and 13
        (("libcurand.so.10",), None),  # cuRAND 10 in every CUDA
        (("libcusparse.so.12",), None),  # CUDA 12 or 13
        (("libnccl.so.2", "libcuda.so.1"), None),
        (("libcudnn.so.8", "libcudart.so.12", "libcufft.so.10"), 12),  # the runtime outranks cuFFT
        (("libcudart.so.11.0", "libcudart.so.12"), 12),
    ],
)
def test_soname_majors(needed: tuple[str, ...], major: int | None) -> None:
    facts = summarize_cuda([elf("libc.so.6", *needed)], [], None)
    assert facts is not None
    assert facts.cuda_major == major
    assert facts.libraries == tuple(sorted(needed))
    assert facts.evidence == tuple(f"soname:{name}" for name in sorted(needed))
    assert facts.cuda_version is None


def test_no_evidence_is_none() -> None:
    assert summarize_cuda([elf("libc.so.6", "libm.so.6", "libcudax.so.1")], ["numpy>=1.26"], "2.5.1") is None
    assert summarize_cuda([], [], None) is None
    assert summarize_cuda([], [], "2.5.1+cpu") is None


def test_torch_style_requires_dist() -> None:
    marker = "; platform_system == 'Linux' and platform_machine == 'x86_64'"
    requires = [
        "filelock",
        f"nvidia-cuda-nvrtc-cu12==12.1.105{marker}",
        f"nvidia-cuda-runtime-cu12==12.1.105{marker}",
        f"nvidia-cudnn-cu12==8.9.2.26{marker}",
        f"nvidia-cublas-cu12==12.1.3.1{marker}",
        "triton==2.3.0",
    ]
    facts = summarize_cuda([], requires, "2.3.0")
    assert facts == CudaFacts(
        cuda_major=12,
        cuda_version="12.1",
        evidence=(
            "requires-dist:nvidia-cuda-nvrtc-cu12",
            "requires-dist:nvidia-cuda-runtime-cu12",
            "requires-dist:nvidia-cudnn-cu12",
            "requires-dist:nvidia-cublas-cu12",
        ),
    )


@pytest.mark.parametrize(
    ("requirement", "major", "version", "name"),
    [
        ("nvidia-cuda-runtime-cu12", 12, None, "nvidia-cuda-runtime-cu12"),
        ("nvidia-cuda-runtime-cu11==11.8.89", 11, "11.8", "nvidia-cuda-runtime-cu11"),
        ("nvidia_cuda_runtime_cu12 == 12.6.77", 12, "12.6", "nvidia-cuda-runtime-cu12"),  # normalized
        ("nvidia-cublas-cu12==12.4.5.8", 12, "12.4", "nvidia-cublas-cu12"),
        ("nvidia-cufft-cu12>=11", 12, None, "nvidia-cufft-cu12"),  # the suffix, not cuFFT's version
        ("nvidia-cuda-runtime==13.0.48", 13, "13.0", "nvidia-cuda-runtime"),  # CUDA 13 dropped the suffix
        ("nvidia-cublas>=13.0", 13, None, "nvidia-cublas"),
        ("cupy-cuda12x>=13", 12, None, "cupy-cuda12x"),
        ("jax-cuda12-plugin==0.4.30", 12, None, "jax-cuda12-plugin"),
    ],
)
def test_requirement(requirement: str, major: int, version: str | None, name: str) -> None:
    facts = summarize_cuda([], [requirement], None)
    assert facts == CudaFacts(cuda_major=major, cuda_version=version, evidence=(f"requires-dist:{name}",))


@pytest.mark.parametrize(
    "requirement",
    [
        "nvidia-cublas-cu12; extra == 'cuda'",  # optional
        "nvidia-cuda-runtime-cu116",  # the 0.0.1.dev5 placeholder family
        "nvidia-cufft>=12",  # unsuffixed cuFFT: its version is not CUDA's
        "nvidia-cuda-runtime>=12",  # unsuffixed before CUDA 13: not a CUDA package name
        "not a requirement ===",
        "torch==2.5.1",
    ],
)
def test_requirements_that_say_nothing(requirement: str) -> None:
    assert summarize_cuda([], [requirement], None) is None


@pytest.mark.parametrize(
    ("version", "label", "cuda"),
    [
        ("2.5.1+cu121", "cu121", "12.1"),
        ("2.0.1+cu118", "cu118", "11.8"),
        ("2.4.0+cu124", "cu124", "12.4"),
        ("1.12.1+cu102", "cu102", "10.2"),
        ("1.4.0+cu92", "cu92", "9.2"),
        ("2.9.0+cu130", "cu130", "13.0"),
        ("0.18.0+cu121.with.pypi.cudnn", "cu121", "12.1"),
    ],
)
def test_local_version_label(version: str, label: str, cuda: str) -> None:
    facts = summarize_cuda([], [], version)
    assert facts == CudaFacts(
        cuda_major=int(cuda.split(".")[0]), cuda_version=cuda, evidence=(f"local-label:{label}",)
    )


def test_all_evidence_together() -> None:
    facts = summarize_cuda(
        [elf("libcudart.so.12", "libcudnn.so.9")], ["nvidia-cuda-runtime-cu12==12.4.127"], "2.5.1+cu124"
    )
    assert facts == CudaFacts(
        cuda_major=12,
        cuda_version="12.4",
        libraries=("libcudart.so.12", "libcudnn.so.9"),
        evidence=(
            "soname:libcudart.so.12",
            "soname:libcudnn.so.9",
            "requires-dist:nvidia-cuda-runtime-cu12",
            "local-label:cu124",
        ),
    )


def test_a_minor_of_another_major_is_dropped() -> None:
    facts = summarize_cuda([elf("libcudart.so.12")], [], "2.0.1+cu118")
    assert facts is not None
    assert (facts.cuda_major, facts.cuda_version) == (12, None)
    assert facts.evidence == ("soname:libcudart.so.12", "local-label:cu118")
