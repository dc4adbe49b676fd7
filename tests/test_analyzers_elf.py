"""ELF facts from real shared objects built with gcc, and from hand-made ELF files gcc cannot produce."""

from __future__ import annotations

import os
import platform
import random
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzers.elf import analyze_elf
from analyzers.facts import ElfFacts, Finding

X86_64 = platform.machine() == "x86_64"
needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("g++") is None or not X86_64,
    reason="needs gcc/g++ on x86-64",
)

PTHREAD_SOURCE = """
#include <pthread.h>
static void *work(void *arg) { return arg; }
int start(void) { pthread_t t; return pthread_create(&t, 0, work, 0); }
"""
CXX_SOURCE = """
#include <string>
std::string greet(const char *name) { return std::string("hello ") + name; }
"""
IFUNC_SOURCE = """
static int one(void) { return 1; }
static int (*pick(void))(void) { return one; }
int chosen(void) __attribute__((ifunc("pick")));
"""
SCALAR_SOURCE = "int twice(int x) { return 2 * x; }\n"


def compile_shared(directory: Path, name: str, source: str, *flags: str, cxx: bool = False) -> Path:
    source_path = directory / (name + (".cpp" if cxx else ".c"))
    source_path.write_text(source)
    output = directory / f"{name}.so"
    compiler = "g++" if cxx else "gcc"
    command = [compiler, "-shared", "-fPIC", "-O2", *flags, "-o", str(output), str(source_path)]
    subprocess.run(command, check=True, capture_output=True)
    return output


def analyze(path: Path) -> ElfFacts:
    facts = analyze_elf(path.read_bytes(), path.name)
    assert isinstance(facts, ElfFacts), facts
    return facts


def readelf_notes(path: Path) -> str:
    return subprocess.run(["readelf", "-n", str(path)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shared objects of this module, compiled once."""
    if shutil.which("gcc") is None or shutil.which("g++") is None or not X86_64:
        pytest.skip("needs gcc/g++ on x86-64")
    libc = (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 0").split()[-1]
    if tuple(int(part) for part in libc.split(".")) < (2, 34):
        pytest.skip("needs glibc >= 2.34, where pthread_create is GLIBC_2.34")
    directory = tmp_path_factory.mktemp("elf")
    return {
        "pthread": compile_shared(directory, "pthread", PTHREAD_SOURCE),
        "cxx": compile_shared(directory, "cxx", CXX_SOURCE, cxx=True),
        "ifunc": compile_shared(directory, "ifunc", IFUNC_SOURCE),
        "scalar": compile_shared(directory, "scalar", SCALAR_SOURCE),
        "note_v3": compile_shared(directory, "note_v3", SCALAR_SOURCE, "-Wl,-z,x86-64-v3"),
        "mneeded": compile_shared(directory, "mneeded", SCALAR_SOURCE, "-march=x86-64-v3", "-mneeded"),
    }


# --- real shared objects ----------------------------------------------------------------------------------


@needs_gcc
def test_needed_and_glibc_versions(built: dict[str, Path]) -> None:
    facts = analyze(built["pthread"])
    assert facts.machine == "x86_64"
    assert facts.elf_class == 64
    assert facts.needed == ("libc.so.6",)
    glibc = facts.symbol_versions["GLIBC"]
    # pthread_create moved into libc as GLIBC_2.34; this machine's glibc is 2.36.
    assert "2.34" in glibc
    assert glibc == tuple(sorted(glibc, key=lambda v: tuple(map(int, v.split(".")))))
    assert "PRIVATE" not in glibc


@needs_gcc
def test_cxx_library_versions(built: dict[str, Path]) -> None:
    facts = analyze(built["cxx"])
    assert "libstdc++.so.6" in facts.needed
    assert facts.symbol_versions["GLIBCXX"][0] == "3.4"
    assert len(facts.symbol_versions["GLIBCXX"]) >= 2
    assert "CXXABI" in facts.symbol_versions


@needs_gcc
def test_linker_isa_marker_is_read(built: dict[str, Path]) -> None:
    assert "x86 ISA needed: x86-64-v3" in readelf_notes(built["note_v3"])
    facts = analyze(built["note_v3"])
    assert facts.isa_note == "x86_64_v3"
    assert "x86_64_v3" in facts.isa_note_features


@needs_gcc
def test_mneeded_marks_every_level_up_to_the_target(built: dict[str, Path]) -> None:
    assert "x86-64-v3" in readelf_notes(built["mneeded"])
    facts = analyze(built["mneeded"])
    assert facts.isa_note == "x86_64_v3"
    assert {"x86_64", "x86_64_v2", "x86_64_v3"} <= set(facts.isa_note_features)


@needs_gcc
def test_no_note_without_marker(built: dict[str, Path]) -> None:
    facts = analyze(built["scalar"])
    assert facts.isa_note is None
    assert facts.isa_note_features == ()
    assert facts.dispatch_evidence == ()


@needs_gcc
def test_ifunc_symbol_is_dispatch_evidence(built: dict[str, Path]) -> None:
    assert "ifunc" in analyze(built["ifunc"]).dispatch_evidence


@needs_gcc
def test_files_without_section_headers_use_program_headers(built: dict[str, Path]) -> None:
    """Section headers are optional (``sstrip``): the loader's view still yields needs and the note."""
    for name in ("pthread", "note_v3"):
        original = analyze(built[name])
        data = bytearray(built[name].read_bytes())
        struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
        struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
        stripped = analyze_elf(bytes(data), name)
        assert isinstance(stripped, ElfFacts)
        assert stripped.needed == original.needed
        assert stripped.symbol_versions == original.symbol_versions
        assert stripped.isa_note == original.isa_note


@needs_gcc
def test_i686_object(tmp_path: Path) -> None:
    source = tmp_path / "f.c"
    source.write_text(SCALAR_SOURCE)
    result = subprocess.run(
        ["gcc", "-m32", "-c", "-o", str(tmp_path / "f.o"), str(source)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip("gcc cannot target i686 here")
    facts = analyze(tmp_path / "f.o")
    assert (facts.machine, facts.elf_class) == ("i686", 32)
    assert facts.features_observed == ()  # 32-bit code is not scanned with 64-bit rules


# --- hand-made ELF files ----------------------------------------------------------------------------------


@dataclass
class Blob:
    name: str
    type: int
    data: bytes
    link: int = 0
    info: int = 0
    align: int = 1
    entsize: int = 0


def craft_elf(
    *,
    is64: bool = True,
    little: bool = True,
    machine: int = 62,
    needed: Sequence[str] = (),
    verneed: dict[str, Sequence[str]] | None = None,
    isa_bits: int | None = None,
    ifunc: bool = False,
) -> bytes:
    """A relocatable-looking ELF with just the sections the analyzer reads."""
    order = "<" if little else ">"
    word = "Q" if is64 else "I"
    dynstr = bytearray(b"\x00")

    def string(text: str) -> int:
        dynstr.extend(text.encode() + b"\x00")
        return len(dynstr) - len(text) - 1

    sections: list[Blob] = []
    dynamic = b"".join(struct.pack(order + ("qQ" if is64 else "iI"), 1, string(n)) for n in needed)
    dynamic += struct.pack(order + ("qQ" if is64 else "iI"), 0, 0)
    verneed_data = bytearray()
    for index, (soname, names) in enumerate((verneed or {}).items()):
        last = index == len(verneed or {}) - 1
        verneed_data += struct.pack(
            order + "HHIII", 1, len(names), string(soname), 16, 0 if last else 16 + 16 * len(names)
        )
        for aux, name in enumerate(names):
            nxt = 0 if aux == len(names) - 1 else 16
            verneed_data += struct.pack(order + "IHHII", 0, 0, 0, string(name), nxt)
    note = b""
    if isa_bits is not None:
        pad = 8 if is64 else 4
        desc = struct.pack(order + "III", 0xC0008002, 4, isa_bits).ljust(16 if is64 else 12, b"\x00")
        note = struct.pack(order + "III", 4, len(desc), 5) + b"GNU\x00" + desc
        assert len(note) % pad == 0
    symbols = b""
    if ifunc:
        if is64:
            entry = struct.Struct(order + "IBBHQQ")
            symbols = entry.pack(0, 0, 0, 0, 0, 0) + entry.pack(string("pick"), 0x10 | 10, 0, 1, 0, 0)
        else:
            entry = struct.Struct(order + "IIIBBH")
            symbols = entry.pack(0, 0, 0, 0, 0, 0) + entry.pack(string("pick"), 0, 0, 0x10 | 10, 0, 1)
    sections.append(Blob(".dynstr", 3, b""))  # filled below, index 1
    sections.append(Blob(".dynamic", 6, dynamic, link=1, align=8))
    if verneed:
        sections.append(
            Blob(".gnu.version_r", 0x6FFFFFFE, bytes(verneed_data), link=1, info=len(verneed), align=4)
        )
    if note:
        sections.append(Blob(".note.gnu.property", 7, note, align=8 if is64 else 4))
    if symbols:
        sections.append(Blob(".dynsym", 11, symbols, link=1, align=8, entsize=24 if is64 else 16))
    sections[0].data = bytes(dynstr)
    names = bytearray(b"\x00")
    name_offsets = []
    for blob in [*sections, Blob(".shstrtab", 3, b"")]:
        name_offsets.append(len(names))
        names.extend(blob.name.encode() + b"\x00")
    sections.append(Blob(".shstrtab", 3, bytes(names)))

    header_size = 64 if is64 else 52
    body = bytearray()
    offsets = []
    for blob in sections:
        while (header_size + len(body)) % 8:
            body.append(0)
        offsets.append(header_size + len(body))
        body.extend(blob.data)
    while (header_size + len(body)) % 8:
        body.append(0)
    shoff = header_size + len(body)
    section_format = order + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    table = struct.pack(section_format, *([0] * 10))
    for blob, offset, name in zip(sections, offsets, name_offsets, strict=True):
        table += struct.pack(
            section_format,
            name,
            blob.type,
            0,
            0,
            offset,
            len(blob.data),
            blob.link,
            blob.info,
            blob.align,
            blob.entsize,
        )
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1, 0]) + b"\x00" * 8
    header = ident + struct.pack(
        order + f"HHI{word}{word}{word}IHHHHHH",
        3,
        machine,
        1,
        0,
        0,
        shoff,
        0,
        header_size,
        0,
        0,
        64 if is64 else 40,
        len(sections) + 1,
        len(sections),
    )
    return header + bytes(body) + table


@pytest.mark.parametrize(
    ("is64", "little", "machine", "expected"),
    [
        (True, True, 62, "x86_64"),
        (True, True, 183, "aarch64"),
        (False, True, 3, "i686"),
        (True, True, 21, "ppc64le"),
        (True, False, 21, "ppc64"),
        (True, False, 22, "s390x"),
        (False, True, 40, "armv7l"),
        (True, True, 243, "riscv64"),
        (True, True, 258, "loongarch64"),
        (True, True, 9999 % 65536, "unknown-9999"),
    ],
)
def test_machine_names(is64: bool, little: bool, machine: int, expected: str) -> None:
    facts = analyze_elf(craft_elf(is64=is64, little=little, machine=machine), "x")
    assert isinstance(facts, ElfFacts)
    assert facts.machine == expected
    assert facts.elf_class == (64 if is64 else 32)


@pytest.mark.parametrize(("is64", "little"), [(True, True), (True, False), (False, True), (False, False)])
def test_crafted_dynamic_verneed_note_and_ifunc_in_every_layout(is64: bool, little: bool) -> None:
    data = craft_elf(
        is64=is64,
        little=little,
        machine=62 if little else 21,
        needed=["libc.so.6", "libstdc++.so.6", "libc.so.6"],
        verneed={
            "libc.so.6": ["GLIBC_2.17", "GLIBC_2.2.5", "GLIBC_PRIVATE", "GLIBC_2.28"],
            "libstdc++.so.6": ["GLIBCXX_3.4.9", "GLIBCXX_3.4.21", "CXXABI_1.3.13", "CXXABI_FLOAT128"],
            "libgcc_s.so.1": ["GCC_7.0.0", "GCC_3.0"],
        },
        isa_bits=0b0011,
        ifunc=True,
    )
    facts = analyze_elf(data, "pkg/_ext.so")
    assert isinstance(facts, ElfFacts)
    assert facts.path == "pkg/_ext.so"
    assert facts.needed == ("libc.so.6", "libstdc++.so.6")
    assert facts.symbol_versions == {
        "CXXABI": ("1.3.13", "FLOAT128"),
        "GCC": ("3.0", "7.0.0"),
        "GLIBC": ("2.2.5", "2.17", "2.28"),
        "GLIBCXX": ("3.4.9", "3.4.21"),
    }
    assert facts.isa_note == "x86_64_v2"
    assert facts.isa_note_features == ("x86_64", "x86_64_v2")
    assert facts.dispatch_evidence == ("ifunc",)


def test_v4_note_takes_the_highest_bit() -> None:
    facts = analyze_elf(craft_elf(isa_bits=0b1111), "x")
    assert isinstance(facts, ElfFacts)
    assert facts.isa_note == "x86_64_v4"


# --- corrupt input ----------------------------------------------------------------------------------------


def assert_corrupt(result: ElfFacts | Finding) -> None:
    assert isinstance(result, Finding), result
    assert (result.code, result.severity, result.path) == ("corrupt-elf", "error", "bad.so")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7fELF",
        b"not an elf at all, just text",
        b"\x7fELF" + bytes(random.Random(1).randrange(256) for _ in range(4000)),
        b"\x7fELF\x03\x01\x01" + b"\x00" * 100,  # unknown class
    ],
    ids=["empty", "magic-only", "text", "random-after-magic", "bad-class"],
)
def test_garbage_is_a_finding(data: bytes) -> None:
    assert_corrupt(analyze_elf(data, "bad.so"))


def test_truncated_crafted_file_is_a_finding() -> None:
    data = craft_elf(needed=["libc.so.6"], verneed={"libc.so.6": ["GLIBC_2.17"]}, isa_bits=4)
    for cut in (10, 40, 63, len(data) // 2, len(data) - 1):
        assert_corrupt(analyze_elf(data[:cut], "bad.so"))


def verneed_offset(data: bytes) -> int:
    """File offset of the .gnu.version_r section of a :func:`craft_elf` file (its fourth header)."""
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    return struct.unpack_from("<Q", data, shoff + 3 * 64 + 24)[0]


def test_verneed_pointing_past_the_end_is_a_finding() -> None:
    data = bytearray(craft_elf(needed=["libc.so.6"], verneed={"libc.so.6": ["GLIBC_2.17", "GLIBC_2.28"]}))
    struct.pack_into("<I", data, verneed_offset(data) + 8, 1 << 30)  # vn_aux far beyond the file
    assert_corrupt(analyze_elf(bytes(data), "bad.so"))


def test_implausible_verneed_count_is_a_finding() -> None:
    data = bytearray(craft_elf(needed=["libc.so.6"], verneed={"libc.so.6": ["GLIBC_2.17"]}))
    struct.pack_into("<H", data, verneed_offset(data) + 2, 60000)  # vn_cnt: entries run off the end
    struct.pack_into("<I", data, verneed_offset(data) + 16 + 12, 16)  # and the auxiliaries keep going
    assert_corrupt(analyze_elf(bytes(data), "bad.so"))


@needs_gcc
def test_truncated_real_library_is_a_finding(built: dict[str, Path]) -> None:
    data = built["pthread"].read_bytes()
    for cut in (20, 64, 500, len(data) // 3, len(data) - 200):
        assert_corrupt(analyze_elf(data[:cut], "bad.so"))


@needs_gcc
def test_random_mutations_never_raise(built: dict[str, Path]) -> None:
    original = built["cxx"].read_bytes()
    rng = random.Random(20240607)
    for _ in range(400):
        data = bytearray(original)
        for _ in range(rng.randrange(1, 8)):
            # Mostly the headers and tables the parser trusts, sometimes anywhere.
            limit = 4096 if rng.random() < 0.8 else len(data)
            data[rng.randrange(limit)] = rng.randrange(256)
        result = analyze_elf(bytes(data), "bad.so")
        assert isinstance(result, ElfFacts | Finding)
