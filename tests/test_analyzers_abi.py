"""manylinux/musllinux tags: minimal tags of real shared objects, mis-tagged wheels, the policy table."""

from __future__ import annotations

import itertools
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from analyzers.elf import analyze_elf
from analyzers.facts import AbiFacts, ElfFacts
from analyzers.manylinux import POLICIES, abi_findings, claimed_glibc, minimal_tag, summarize_abi

PTHREAD_SOURCE = """
#include <pthread.h>
static void *work(void *arg) { return arg; }
int start(void) { pthread_t t; return pthread_create(&t, 0, work, 0); }
"""
OLD_GLIBC_SOURCE = "#include <string.h>\nint same(const char *a, const char *b) { return strcmp(a, b); }\n"
CXX_SOURCE = """
#include <string>
std::string greet(const char *name) { return std::string("hello ") + name; }
"""
FOO_SOURCE = "int foo(void) { return 42; }\n"
USES_FOO_SOURCE = "int foo(void);\nint bar(void) { return foo() + 1; }\n"


def compile_shared(directory: Path, name: str, source: str, *flags: str, cxx: bool = False) -> Path:
    source_path = directory / (name + (".cpp" if cxx else ".c"))
    source_path.write_text(source)
    output = directory / f"{name}.so"
    command = [
        "g++" if cxx else "gcc",
        "-shared",
        "-fPIC",
        "-O2",
        "-o",
        str(output),
        str(source_path),
        *flags,
    ]
    subprocess.run(command, check=True, capture_output=True)
    return output


def host_glibc() -> tuple[int, ...]:
    version = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 0"
    return tuple(int(part) for part in version.split()[-1].split("."))


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ElfFacts]:
    """ELF facts of this module's shared objects, compiled once."""
    if shutil.which("gcc") is None or shutil.which("g++") is None or platform.machine() != "x86_64":
        pytest.skip("needs gcc/g++ on x86-64")
    if host_glibc() < (2, 34):
        pytest.skip("needs glibc >= 2.34, where pthread_create is GLIBC_2.34")
    directory = tmp_path_factory.mktemp("abi")
    foo = compile_shared(directory, "libfoo", FOO_SOURCE, "-Wl,-soname,libfoo.so.1")
    foo.rename(directory / "libfoo.so.1")
    builds = {
        "pthread": compile_shared(directory, "pthread", PTHREAD_SOURCE),
        "old": compile_shared(directory, "old", OLD_GLIBC_SOURCE),
        "cxx": compile_shared(directory, "cxx", CXX_SOURCE, cxx=True),
        "uses_foo": compile_shared(
            directory, "uses_foo", USES_FOO_SOURCE, f"-L{directory}", "-l:libfoo.so.1"
        ),
    }
    result = {}
    for name, path in builds.items():
        analyzed = analyze_elf(path.read_bytes(), f"pkg/{path.name}")
        assert isinstance(analyzed, ElfFacts), analyzed
        result[name] = analyzed
    return result


def elf(needed: tuple[str, ...] = (), machine: str = "x86_64", **versions: tuple[str, ...]) -> ElfFacts:
    return ElfFacts(
        path="pkg/_ext.so", machine=machine, elf_class=64, needed=needed, symbol_versions=versions
    )


def codes(abi: AbiFacts) -> list[str]:
    return [finding.code for finding in abi_findings(abi)]


# --- real shared objects ----------------------------------------------------------------------------------


def test_recent_glibc_symbol_sets_the_minimal_tag(elfs: dict[str, ElfFacts]) -> None:
    assert max(tuple(map(int, v.split("."))) for v in elfs["pthread"].symbol_versions["GLIBC"]) == (2, 34)
    tag, findings = minimal_tag([elfs["pthread"]], "x86_64", [])
    assert (tag, findings) == ("manylinux_2_34_x86_64", [])


def test_old_glibc_symbols_allow_manylinux1(elfs: dict[str, ElfFacts]) -> None:
    assert minimal_tag([elfs["old"]], "x86_64", []) == ("manylinux_2_5_x86_64", [])


def test_claiming_manylinux2014_with_a_glibc_2_34_need_is_mis_tagged(elfs: dict[str, ElfFacts]) -> None:
    abi = summarize_abi([elfs["pthread"]], ["manylinux2014_x86_64"], [])
    assert abi.libc == "glibc"
    assert abi.min_glibc == "2.34"
    assert abi.computed_tag == "manylinux_2_34_x86_64"
    assert abi.claimed_tags == ("manylinux2014_x86_64",)
    assert abi.needed_external == ("libc.so.6",)
    assert abi.mis_tagged is True
    findings = abi_findings(abi)
    assert [(f.code, f.severity) for f in findings] == [("mis-tagged", "error")]
    assert "glibc 2.34" in findings[0].message


def test_honest_tag_is_not_mis_tagged(elfs: dict[str, ElfFacts]) -> None:
    for claimed in (["manylinux_2_34_x86_64"], ["manylinux_2_35_x86_64"], ["linux_x86_64"], []):
        abi = summarize_abi([elfs["pthread"], elfs["old"]], claimed, [])
        assert abi.mis_tagged is False, claimed
        assert abi_findings(abi) == []


def test_lowest_of_several_claimed_tags_counts(elfs: dict[str, ElfFacts]) -> None:
    abi = summarize_abi([elfs["pthread"]], ["manylinux_2_17_x86_64", "manylinux_2_34_x86_64"], [])
    assert abi.mis_tagged is True


def test_cxx_versions(elfs: dict[str, ElfFacts]) -> None:
    abi = summarize_abi([elfs["cxx"]], ["manylinux_2_28_x86_64"], [])
    assert abi.min_glibcxx is not None and abi.min_glibcxx.startswith("3.4.")
    assert abi.min_cxxabi is not None and abi.min_cxxabi.startswith("1.3")
    assert abi.min_gcc is not None
    assert {"libstdc++.so.6", "libgcc_s.so.1"} <= set(abi.needed_external)
    assert abi.computed_tag is not None and abi.computed_tag.startswith("manylinux_")
    assert abi.mis_tagged is False


def test_external_library_unless_bundled(elfs: dict[str, ElfFacts]) -> None:
    assert "libfoo.so.1" in elfs["uses_foo"].needed
    tag, findings = minimal_tag([elfs["uses_foo"]], "x86_64", [])
    assert tag == "linux_x86_64"
    assert [(f.code, f.severity) for f in findings] == [("external-library", "warning")]
    assert "libfoo.so.1" in findings[0].message
    abi = summarize_abi([elfs["uses_foo"]], ["manylinux2014_x86_64"], [])
    assert codes(abi) == ["external-library"]
    # Shipped in the wheel (auditwheel's pkg.libs/), by soname or as one of the ELF files.
    assert minimal_tag([elfs["uses_foo"]], "x86_64", ["libfoo.so.1"])[0] == "manylinux_2_5_x86_64"
    bundled = ElfFacts(path="pkg.libs/libfoo.so.1", machine="x86_64", elf_class=64)
    assert minimal_tag([elfs["uses_foo"], bundled], "x86_64", [])[0] == "manylinux_2_5_x86_64"


# --- the policy table on crafted facts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("versions", "arch", "tag"),
    [
        ({"GLIBC": ("2.2.5", "2.17")}, "x86_64", "manylinux_2_17_x86_64"),
        ({"GLIBC": ("2.18",)}, "x86_64", "manylinux_2_24_x86_64"),  # no 2.18..2.23 policy in between
        ({"GLIBC": ("2.18",)}, "aarch64", "manylinux_2_17_aarch64"),  # auditwheel allows 2.18 there
        ({"GLIBC": ("2.17",)}, "ppc64le", "manylinux_2_17_ppc64le"),
        ({"GLIBC": ("2.0",)}, "aarch64", "manylinux_2_17_aarch64"),  # aarch64 starts at manylinux2014
        ({"GLIBC": ("2.31",)}, "riscv64", "manylinux_2_31_riscv64"),
        ({"GLIBCXX": ("3.4.24",)}, "x86_64", "manylinux_2_27_x86_64"),  # the 2_26 x86_64 image is older
        ({"GLIBCXX": ("3.4.24",)}, "i686", "manylinux_2_26_i686"),
        ({"GLIBCXX": ("3.4.29",), "CXXABI": ("1.3.13",)}, "x86_64", "manylinux_2_34_x86_64"),
        ({"GLIBCXX": ("3.4.30",)}, "x86_64", "manylinux_2_35_x86_64"),
        ({"GCC": ("7.0.0",)}, "x86_64", "manylinux_2_27_x86_64"),
        ({"GCC": ("12.0.0",)}, "x86_64", "manylinux_2_35_x86_64"),
        ({"CXXABI": ("1.3.15",)}, "aarch64", "manylinux_2_39_aarch64"),
        ({"CXXABI_TM": ("1",)}, "x86_64", "manylinux_2_17_x86_64"),
        ({"CXXABI": ("1.3", "FLOAT128")}, "x86_64", "manylinux_2_24_x86_64"),
        ({"GLIBC_ABI_DT": ("RELR",)}, "x86_64", "manylinux_2_36_x86_64"),
        ({"GLIBCXX_LDBL": ("3.4.29",)}, "ppc64le", "manylinux_2_34_ppc64le"),
        ({"ZLIB": ("1.2.9",)}, "x86_64", "manylinux_2_27_x86_64"),
        ({"LIBATOMIC": ("1.0",)}, "x86_64", "manylinux_2_24_x86_64"),
        ({"LIBATOMIC": ("1.0",)}, "aarch64", "manylinux_2_17_aarch64"),
        ({"OPENSSL": ("3.0.0",), "GLIBC": ("2.2.5",)}, "x86_64", "manylinux_2_5_x86_64"),  # unknown: ignored
    ],
)
def test_policy_ceilings(versions: dict[str, tuple[str, ...]], arch: str, tag: str) -> None:
    assert minimal_tag([elf(machine=arch, **versions)], arch, []) == (tag, [])


def test_whitelist_grows_with_policies() -> None:
    assert minimal_tag([elf(("libc.so.6", "libexpat.so.1"))], "x86_64", [])[0] == "manylinux_2_12_x86_64"
    assert minimal_tag([elf(("libm.so.6", "libmvec.so.1"))], "x86_64", [])[0] == "manylinux_2_24_x86_64"
    assert (
        minimal_tag([elf(("libc.so.6", "ld-linux-x86-64.so.2"))], "x86_64", [])[0] == "manylinux_2_5_x86_64"
    )


def test_newer_glibc_than_the_table_still_gets_a_pep600_tag() -> None:
    tag, findings = minimal_tag([elf(GLIBC=("2.2.5", "2.43"))], "x86_64", [])
    assert tag == "manylinux_2_43_x86_64"
    assert [(f.code, f.severity) for f in findings] == [("policy-unknown", "info")]


def test_unknown_node_of_a_known_family_means_linux() -> None:
    tag, findings = minimal_tag([elf(GLIBCXX=("3.4.40",))], "x86_64", [])
    assert tag == "linux_x86_64"
    assert [f.code for f in findings] == ["no-manylinux-policy"]


def test_only_files_of_the_architecture_count() -> None:
    arm = elf(("libfoo.so.9",), machine="aarch64", GLIBC=("2.39",))
    x86 = elf(("libc.so.6",), GLIBC=("2.17",))
    assert minimal_tag([x86, arm], "x86_64", []) == ("manylinux_2_17_x86_64", [])
    assert minimal_tag([arm], "x86_64", []) == (None, [])
    assert summarize_abi([x86, arm, x86], ["manylinux2014_x86_64"], []).mis_tagged is False


def test_policy_table_shape() -> None:
    names = [policy.name for policy in POLICIES]
    assert names[0] == "manylinux_2_5" and "manylinux_2_39" in names
    assert [policy.glibc for policy in POLICIES] == sorted(policy.glibc for policy in POLICIES)
    assert {alias for policy in POLICIES for alias in policy.aliases} == {
        "manylinux1",
        "manylinux2010",
        "manylinux2014",
    }
    assert "ppc64" in POLICIES[2].ceilings and "ppc64" not in POLICIES[3].ceilings
    for older, newer in itertools.pairwise(POLICIES):
        assert older.whitelist <= newer.whitelist  # PEP 600: newer policies are supersets
        for arch, ceilings in older.ceilings.items():
            if arch not in newer.ceilings:
                continue  # ppc64 (big endian) was dropped after manylinux2014
            for family, ceiling in ceilings.items():
                newer_ceiling = newer.ceilings[arch][family]
                assert ceiling is None or (newer_ceiling is not None and newer_ceiling >= ceiling)


# --- musl -------------------------------------------------------------------------------------------------


def test_musl() -> None:
    musl = elf(("libc.musl-x86_64.so.1", "libz.so.1"))
    assert minimal_tag([musl], "x86_64", []) == ("musllinux_1_1_x86_64", [])
    abi = summarize_abi([musl], ["musllinux_1_2_x86_64"], [])
    assert (abi.libc, abi.computed_tag, abi.mis_tagged) == ("musl", "musllinux_1_1_x86_64", False)
    assert abi.min_glibc is None
    assert abi_findings(abi) == []


def test_musl_binary_tagged_manylinux_is_mis_tagged() -> None:
    abi = summarize_abi([elf(("libc.musl-aarch64.so.1",), machine="aarch64")], ["manylinux_2_17_aarch64"], [])
    assert abi.mis_tagged is True
    assert codes(abi) == ["mis-tagged"]
    assert "musl" in abi_findings(abi)[0].message


def test_glibc_binary_tagged_musllinux_is_mis_tagged() -> None:
    abi = summarize_abi([elf(("libc.so.6",), GLIBC=("2.2.5",))], ["musllinux_1_2_x86_64"], [])
    assert abi.mis_tagged is True


def test_musl_needs_libstdcxx_bundled() -> None:
    musl = elf(("libc.musl-x86_64.so.1", "libstdc++.so.6"))
    tag, findings = minimal_tag([musl], "x86_64", [])
    assert tag == "linux_x86_64"
    assert [f.code for f in findings] == ["external-library"]
    assert minimal_tag([musl], "x86_64", ["libstdc++.so.6"])[0] == "musllinux_1_1_x86_64"
    assert minimal_tag([elf(("libc.musl-x86.so.1",), machine="i686")], "i686", [])[0] == "musllinux_1_1_i686"


def test_mixed_libc() -> None:
    files = [elf(("libc.so.6",), GLIBC=("2.17",)), elf(("libc.musl-x86_64.so.1",))]
    tag, findings = minimal_tag(files, "x86_64", [])
    assert tag == "linux_x86_64"
    assert [(f.code, f.severity) for f in findings] == [("mixed-libc", "error")]
    assert "mixed-libc" in codes(summarize_abi(files, [], []))


def test_no_elf_files() -> None:
    assert summarize_abi([], ["manylinux2014_x86_64"], []) == AbiFacts(
        libc="none", claimed_tags=("manylinux2014_x86_64",)
    )
    assert minimal_tag([], "x86_64", []) == (None, [])


# --- claimed tags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "glibc"),
    [
        ("manylinux1_x86_64", (2, 5)),
        ("manylinux1_i686", (2, 5)),
        ("manylinux2010_x86_64", (2, 12)),
        ("manylinux2014_aarch64", (2, 17)),
        ("manylinux2014_ppc64le", (2, 17)),
        ("manylinux_2_17_x86_64", (2, 17)),
        ("manylinux_2_28_aarch64", (2, 28)),
        ("manylinux_2_5_i686", (2, 5)),
        ("manylinux_2_39", (2, 39)),
        ("musllinux_1_2_x86_64", None),
        ("linux_x86_64", None),
        ("macosx_11_0_arm64", None),
        ("win_amd64", None),
        ("any", None),
        ("manylinux", None),
    ],
)
def test_claimed_glibc(tag: str, glibc: tuple[int, int] | None) -> None:
    assert claimed_glibc(tag) == glibc
