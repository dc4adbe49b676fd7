"""The x86-64 instruction scan and CPU levels: shared objects built with gcc for each extension."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from analyzers.cpu import summarize_cpu
from analyzers.elf import analyze_elf
from analyzers.facts import CpuFacts, ElfFacts
from analyzers.isa import level_of, scan_x86_64

AVX2_SOURCE = """
#include <immintrin.h>
void add(int *a, const int *b, int n) {
    for (int i = 0; i + 8 <= n; i += 8) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        _mm256_storeu_si256((__m256i *)(a + i), _mm256_add_epi32(x, y));
    }
}
"""
SCALAR_SOURCE = """
void add(int *a, const int *b, int n) {
    for (int i = 0; i < n; i++) {
        a[i] += b[i];
        __asm__ volatile("" ::: "memory");  /* keeps the loop scalar: no SSE2 vectorisation either */
    }
}
"""
FMA_SOURCE = """
#include <immintrin.h>
void axpy(float *y, const float *x, float a, int n) {
    __m256 va = _mm256_set1_ps(a);
    for (int i = 0; i + 8 <= n; i += 8) {
        __m256 r = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        _mm256_storeu_ps(y + i, r);
    }
}
"""
AVX512_SOURCE = """
#include <immintrin.h>
void add(int *a, const int *b, int n) {
    for (int i = 0; i + 16 <= n; i += 16) {
        __m512i x = _mm512_loadu_si512((const void *)(a + i));
        __m512i y = _mm512_loadu_si512((const void *)(b + i));
        _mm512_storeu_si512((void *)(a + i), _mm512_add_epi32(x, y));
    }
}
"""
# What NumPy-style runtime dispatch looks like: an AVX2 kernel, a baseline one, CPUID-based choice
# through libgcc's __builtin_cpu_supports, and an ifunc resolver.
DISPATCH_SOURCE = """
#include <immintrin.h>
__attribute__((target("avx2"))) static void add_avx2(int *a, const int *b, int n) {
    for (int i = 0; i + 8 <= n; i += 8) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        _mm256_storeu_si256((__m256i *)(a + i), _mm256_add_epi32(x, y));
    }
}
static void add_plain(int *a, const int *b, int n) { for (int i = 0; i < n; i++) a[i] += b[i]; }
static void (*pick(void))(int *, const int *, int) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? add_avx2 : add_plain;
}
void add(int *a, const int *b, int n) __attribute__((ifunc("pick")));
"""


def compile_shared(directory: Path, name: str, source: str, *flags: str) -> Path:
    source_path = directory / f"{name}.c"
    source_path.write_text(source)
    output = directory / f"{name}.so"
    command = ["gcc", "-shared", "-fPIC", "-O2", *flags, "-o", str(output), str(source_path)]
    subprocess.run(command, check=True, capture_output=True)
    return output


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ElfFacts]:
    """ELF facts of this module's shared objects, compiled once."""
    if shutil.which("gcc") is None or platform.machine() != "x86_64":
        pytest.skip("needs gcc on x86-64")
    directory = tmp_path_factory.mktemp("isa")
    builds = {
        "avx2": compile_shared(directory, "avx2", AVX2_SOURCE, "-mavx2"),
        "baseline": compile_shared(directory, "baseline", SCALAR_SOURCE),
        "note": compile_shared(directory, "note", SCALAR_SOURCE, "-Wl,-z,x86-64-v3"),
        "fma": compile_shared(directory, "fma", FMA_SOURCE, "-mfma"),
        "avx512": compile_shared(directory, "avx512", AVX512_SOURCE, "-mavx512f"),
        "dispatch": compile_shared(directory, "dispatch", DISPATCH_SOURCE),
    }
    result = {}
    for name, path in builds.items():
        analyzed = analyze_elf(path.read_bytes(), path.name)
        assert isinstance(analyzed, ElfFacts), analyzed
        result[name] = analyzed
    return result


def cpu_of(*elfs: ElfFacts) -> CpuFacts:
    summary = summarize_cpu(list(elfs))
    assert summary is not None
    return summary


def test_avx2_without_dispatch_is_needed(facts: dict[str, ElfFacts]) -> None:
    assert {"avx", "avx2"} <= set(facts["avx2"].features_observed)
    assert facts["avx2"].dispatch_evidence == ()
    cpu = cpu_of(facts["avx2"])
    assert (cpu.level, cpu.source, cpu.runtime_dispatch) == ("x86_64_v3", "scan", False)
    assert "avx2" in cpu.features


def test_baseline_code_shows_nothing(facts: dict[str, ElfFacts]) -> None:
    assert facts["baseline"].features_observed == ()
    cpu = cpu_of(facts["baseline"])
    assert (cpu.level, cpu.level_observed, cpu.features) == ("x86_64", "x86_64", ())


def test_property_note_is_authoritative(facts: dict[str, ElfFacts]) -> None:
    assert facts["note"].isa_note == "x86_64_v3"
    cpu = cpu_of(facts["note"])
    assert (cpu.level, cpu.level_from_note, cpu.source) == ("x86_64_v3", "x86_64_v3", "note")
    assert cpu.level_observed == "x86_64"  # the marker, not the (scalar) code, makes the need


def test_fma(facts: dict[str, ElfFacts]) -> None:
    assert "fma" in facts["fma"].features_observed
    assert cpu_of(facts["fma"]).level == "x86_64_v3"


def test_avx512(facts: dict[str, ElfFacts]) -> None:
    assert "avx512f" in facts["avx512"].features_observed
    cpu = cpu_of(facts["avx512"])
    assert (cpu.level, cpu.source) == ("x86_64_v4", "scan")


def test_dispatch_keeps_the_baseline(facts: dict[str, ElfFacts]) -> None:
    dispatching = facts["dispatch"]
    assert {"ifunc", "cpuid"} <= set(dispatching.dispatch_evidence)
    assert "avx2" in dispatching.features_observed
    cpu = cpu_of(dispatching)
    assert (cpu.level, cpu.runtime_dispatch, cpu.level_observed) == ("x86_64", True, "x86_64_v3")
    assert "avx2" in cpu.features_observed
    assert cpu.features == ()


def test_wheel_level_is_the_highest_need(facts: dict[str, ElfFacts]) -> None:
    cpu = cpu_of(facts["dispatch"], facts["avx512"], facts["note"])
    assert cpu.level == "x86_64_v4"  # the undispatched AVX-512 file
    assert cpu.source == "scan"
    assert cpu.level_from_note == "x86_64_v3"
    assert cpu.runtime_dispatch is True


def x86(note: str | None = None, observed: tuple[str, ...] = (), dispatch: tuple[str, ...] = ()) -> ElfFacts:
    return ElfFacts(
        path="pkg/_ext.so",
        machine="x86_64",
        elf_class=64,
        isa_note=note,
        isa_note_features=(note,) if note else (),
        features_observed=observed,
        dispatch_evidence=dispatch,
    )


def test_a_baseline_note_does_not_hide_unguarded_avx2() -> None:
    """Start files stamp a baseline note on objects built with -mavx2 but without -mneeded."""
    cpu = cpu_of(x86(note="x86_64", observed=("avx", "avx2")))
    assert (cpu.level, cpu.level_from_note, cpu.source) == ("x86_64_v3", "x86_64", "scan")


def test_a_note_with_dispatched_extras_keeps_the_note_level() -> None:
    cpu = cpu_of(x86(note="x86_64_v2", observed=("avx512f", "avx"), dispatch=("cpuid",)))
    assert (cpu.level, cpu.source, cpu.runtime_dispatch, cpu.level_observed) == (
        "x86_64_v2",
        "note",
        True,
        "x86_64_v4",
    )
    assert cpu.features == ("x86_64_v2",)


def test_no_x86_64_file_means_no_cpu_facts() -> None:
    arm = ElfFacts(path="a.so", machine="aarch64", elf_class=64)
    i686 = ElfFacts(path="b.so", machine="i686", elf_class=32)
    assert summarize_cpu([arm, i686]) is None
    assert summarize_cpu([]) is None


# --- the scan on hand-assembled bytes -------------------------------------------------------------------

NOPS = b"\x90" * 80
VPADDD_YMM = bytes.fromhex("c5f5fec1")  # vpaddd ymm0, ymm1, ymm1
VFMADD_YMM = bytes.fromhex("c4e2f5a8c2")  # vfmadd213pd ymm0, ymm1, ymm2
VPADDD_ZMM = bytes.fromhex("62f17548fec1")  # vpaddd zmm0, zmm1, zmm1
RET = b"\xc3"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (NOPS + VPADDD_YMM + RET, {"avx", "avx2"}),
        (NOPS + VFMADD_YMM + RET, {"avx", "fma"}),
        (NOPS + VPADDD_ZMM + RET, {"avx", "avx512f"}),
        (NOPS + bytes.fromhex("c4e278f2c1") + RET, {"bmi1"}),  # andn eax, eax, ecx
        (NOPS + bytes.fromhex("c4e2fbf6c1") + RET, {"bmi2"}),  # mulx rax, rax, rcx
        (NOPS + bytes.fromhex("f3480fb8c1") + RET, {"popcnt"}),  # popcnt rax, rcx
        (NOPS + bytes.fromhex("660f3800c1") + RET, {"ssse3"}),  # pshufb xmm0, xmm1
        (NOPS + bytes.fromhex("f20f38f1c1") + RET, {"sse4_2"}),  # crc32 eax, ecx
        (NOPS + bytes.fromhex("0f38f007") + RET, {"movbe"}),  # movbe eax, [rdi]
        (VPADDD_YMM + RET, {"avx", "avx2"}),  # at the very start of a section
    ],
)
def test_scan_finds_encodings(code: bytes, expected: set[str]) -> None:
    features, dispatch = scan_x86_64(code)
    assert features == expected
    assert dispatch == frozenset()


@pytest.mark.parametrize(
    "code",
    [
        NOPS + b"\xb8" + VPADDD_YMM + RET,  # mov eax, imm32: the "VEX" bytes are an immediate
        NOPS + b"\x48\x89\xc5" + b"\xf5\xfe\xc1\x90" + RET,  # mov rbp, rax: C5 is a ModRM byte
        NOPS + b"\x48\x8d\x88" + VPADDD_ZMM[:4] + RET,  # lea rcx, [rax+disp32]: EVEX-like displacement
        NOPS + b"\xeb\x04" + b"\x00\x00\x00\x00" + RET,  # plain code
        b"",
    ],
    ids=["imm32", "modrm", "disp32", "plain", "empty"],
)
def test_scan_ignores_bytes_inside_instructions(code: bytes) -> None:
    assert scan_x86_64(code) == (frozenset(), frozenset())


def test_dispatch_instructions() -> None:
    cpuid = NOPS + b"\xb8\x07\x00\x00\x00" + b"\x31\xc9" + b"\x0f\xa2" + RET  # mov eax,7; xor ecx,ecx; cpuid
    xgetbv = NOPS + b"\x31\xc9" + b"\x0f\x01\xd0" + RET
    assert scan_x86_64(cpuid) == (frozenset(), frozenset({"cpuid"}))
    assert scan_x86_64(xgetbv) == (frozenset(), frozenset({"xgetbv"}))
    assert scan_x86_64(NOPS + b"\xb8\x0f\xa2\x00\x00" + RET) == (frozenset(), frozenset())  # in an imm32


def test_crc32_is_not_movbe() -> None:
    features, _ = scan_x86_64(NOPS + bytes.fromhex("f2480f38f107") + RET)  # crc32 rax, qword [rdi]
    assert features == {"sse4_2"}


def test_scan_survives_truncated_instructions() -> None:
    for cut in range(1, len(VPADDD_ZMM)):
        scan_x86_64(NOPS + VPADDD_ZMM[:cut])  # must not raise


# --- levels -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "level"),
    [
        ((), "x86_64"),
        (("sse2", "unknown-thing"), "x86_64"),
        (("popcnt",), "x86_64_v2"),
        (("ssse3", "sse4_1", "sse4_2"), "x86_64_v2"),
        (("avx",), "x86_64_v3"),
        (("avx2",), "x86_64_v3"),
        (("fma", "popcnt"), "x86_64_v3"),
        (("bmi2",), "x86_64_v3"),
        (("avx512f",), "x86_64_v4"),
        (("avx512bw", "avx2"), "x86_64_v4"),
        (("AVX512VL",), "x86_64_v4"),
        (("x86_64_v2",), "x86_64_v2"),
        (("x86_64_v3", "popcnt"), "x86_64_v3"),
    ],
)
def test_level_of(features: tuple[str, ...], level: str) -> None:
    assert level_of(features) == level
