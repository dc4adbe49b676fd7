"""``analyze``: real wheels and sdists in, Facts out; broken files give named findings, never exceptions."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib
import io
import struct
import subprocess
import tarfile
import tracemalloc
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.wheels import build_sdist, build_wheel

import analyzers
from analyzers import Facts, analyze
from analyzers.integrity import ZipFiles

# `analyzers.analyze` is the re-exported function, which shadows the submodule of the same name.
analyze_module = importlib.import_module("analyzers.analyze")

MiB = 1024 * 1024
DATE = (1980, 1, 1, 0, 0, 0)
GETRANDOM_C = """
#include <sys/random.h>
int fill(void *buf, unsigned long n) { return (int)getrandom(buf, n, 0); }
"""
SIMPLE_C = "int answer(void) { return 42; }\n"

Entries = list[tuple[str, bytes]]


def codes(facts: Facts) -> list[str]:
    return [finding.code for finding in facts.findings]


def entries_of(path: Path) -> Entries:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def write_zip(path: Path, entries: Entries, *, zeros: tuple[str, int] | None = None) -> Path:
    """Entries as given (duplicates too); ``zeros`` adds a member of that many zero bytes, streamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are the point of some tests
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(zipfile.ZipInfo(name, date_time=DATE), data, zipfile.ZIP_DEFLATED)
            if zeros is not None:
                _write_zeros(archive, *zeros)
    return path


def _write_zeros(archive: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name, date_time=DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = bytes(MiB)
    with archive.open(info, "w") as member:
        for _ in range(size // MiB):
            member.write(chunk)


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@functools.cache
def zeros_record_hash(size: int) -> str:
    digest = hashlib.sha256()
    for _ in range(size // MiB):
        digest.update(bytes(MiB))
    return "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def edit(entries: Entries, name: str, change: Callable[[bytes], bytes]) -> Entries:
    return [(n, change(d) if n == name else d) for n, d in entries]


def rewrite(path: Path, out_dir: Path, change: Callable[[Entries], Entries]) -> Path:
    return write_zip(out_dir / path.name, change(entries_of(path)))


def make_targz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def tar_entry(name: str, *, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


# --- good distributions ------------------------------------------------------------------------


def test_pure_wheel(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "Acme.Utils", "1.0", requires_dist=["beta>=2"], requires_python=">=3.9")
    facts = analyze(path)
    assert facts.filename == path.name
    assert facts.kind == "wheel"
    assert facts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts.size == path.stat().st_size
    assert facts.metadata is not None
    assert (facts.metadata.name, facts.metadata.version) == ("Acme.Utils", "1.0")
    assert facts.metadata.requires_dist == ("beta>=2",)
    assert facts.metadata.requires_python == ">=3.9"
    # Documented choice: no ELF files means no ABI or CPU facts at all (None, not libc "none").
    assert facts.elf_files == ()
    assert facts.abi is None
    assert facts.cpu is None
    assert facts.cuda is None
    assert facts.findings == ()
    assert not facts.broken


def test_bytes_str_and_path_give_the_same_facts(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    assert analyze(path) == analyze(str(path)) == analyze(path.read_bytes(), path.name)
    assert analyze(path, "renamed-1.0-py3-none-any.whl").filename == "renamed-1.0-py3-none-any.whl"


def test_facts_survive_json(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0", tag="cp311-cp311-linux_x86_64", extension_c=GETRANDOM_C)
    facts = analyze(path)
    assert Facts.from_json(facts.to_json()) == facts


def test_cuda_from_requires_dist_of_a_pure_wheel(wheel_dir: Path) -> None:
    path = build_wheel(
        wheel_dir, "gpu-meta", "2.1.0+cu121", requires_dist=["nvidia-cuda-runtime-cu12==12.1.105"]
    )
    facts = analyze(path)
    assert facts.cuda is not None
    assert facts.cuda.cuda_major == 12
    assert facts.abi is None


def test_native_wheel_is_mis_tagged(wheel_dir: Path) -> None:
    # getrandom appeared in glibc 2.25; the filename promises 2.17.
    path = build_wheel(
        wheel_dir, "acme", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", extension_c=GETRANDOM_C
    )
    facts = analyze(path)
    assert [elf.path for elf in facts.elf_files] == ["acme/_native.so"]
    assert facts.elf_files[0].machine == "x86_64"
    assert facts.abi is not None
    assert facts.abi.libc == "glibc"
    assert facts.abi.min_glibc == "2.25"
    assert "manylinux_2_17_x86_64" in facts.abi.claimed_tags
    assert facts.abi.mis_tagged
    assert facts.cpu is not None


def test_bundled_libraries_and_elf_magic(wheel_dir: Path, tmp_path: Path) -> None:
    lib = tmp_path / "libdep-1a2b3c4d.so.1"
    src = tmp_path / "dep.c"
    src.write_text("int dep(void) { return 42; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libdep-1a2b3c4d.so.1", "-o", str(lib), str(src)], check=True
    )
    path = build_wheel(
        wheel_dir,
        "acme",
        "1.0",
        tag="cp311-cp311-manylinux_2_28_x86_64",
        extension_c="int dep(void);\nint call(void) { return dep(); }\n",
        # build_wheel puts flags before the source, where the default --as-needed would drop the lib.
        extension_flags=["-Wl,--no-as-needed", str(lib)],
        extra_files={
            "acme.libs/libdep-1a2b3c4d.so.1": lib.read_bytes(),
            "acme/bin/helper": lib.read_bytes(),  # ELF without an .so name: found by its magic
        },
    )
    facts = analyze(path)
    assert sorted(elf.path for elf in facts.elf_files) == [
        "acme.libs/libdep-1a2b3c4d.so.1",
        "acme/_native.so",
        "acme/bin/helper",
    ]
    native = next(elf for elf in facts.elf_files if elf.path == "acme/_native.so")
    assert "libdep-1a2b3c4d.so.1" in native.needed
    assert facts.abi is not None
    assert "libdep-1a2b3c4d.so.1" not in facts.abi.needed_external
    assert not facts.abi.mis_tagged


def count_inflations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each member gets inflated (read or hashed) from now on."""
    counts: Counter[str] = Counter()
    chunks = ZipFiles._chunks

    def counted(self: ZipFiles, name: str) -> Iterator[bytes]:
        counts[name] += 1
        return chunks(self, name)

    monkeypatch.setattr(ZipFiles, "_chunks", counted)
    return counts


def test_elf_files_are_inflated_once(wheel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_wheel(
        wheel_dir, "acme", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", extension_c=SIMPLE_C
    )
    expected = analyze(path)
    inflated = count_inflations(monkeypatch)
    facts = analyze(path)
    assert facts == expected
    assert [elf.path for elf in facts.elf_files] == ["acme/_native.so"]
    assert facts.findings == ()  # RECORD verified, the .so included
    # Read for analysis and hashed for RECORD in one go; METADATA and WHEEL are parsed, then hashed.
    assert inflated["acme/_native.so"] == 1
    assert {name for name, count in inflated.items() if count > 1} == {
        "acme-1.0.dist-info/METADATA",
        "acme-1.0.dist-info/WHEEL",
    }


def test_record_first_when_the_budget_could_run_out(wheel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_wheel(
        wheel_dir, "acme", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", extension_c=SIMPLE_C
    )
    expected = analyze(path)
    # A budget too small for the worst case: RECORD is checked first and the ELF file read again
    # afterwards, the order the budget was sized for (here it suffices, so nothing else changes).
    monkeypatch.setattr(analyze_module, "INFLATE_BUDGET", 100 * MiB)
    inflated = count_inflations(monkeypatch)
    assert analyze(path) == expected
    assert inflated["acme/_native.so"] == 2


def test_sdist(wheel_dir: Path) -> None:
    path = build_sdist(wheel_dir, "Acme.Utils", "2.0", requires_dist=["beta"])
    facts = analyze(path)
    assert facts.kind == "sdist"
    assert facts.metadata is not None
    assert facts.metadata.source == "sdist"
    assert (facts.metadata.name, facts.metadata.version) == ("Acme.Utils", "2.0")
    assert facts.metadata.requires_dist == ("beta",)
    assert (facts.abi, facts.cpu, facts.cuda, facts.elf_files) == (None, None, None, ())
    assert facts.findings == ()


def test_zip_sdist(tmp_path: Path) -> None:
    pkg_info = b"Metadata-Version: 2.1\nName: acme\nVersion: 3.0\n\n"
    path = write_zip(tmp_path / "acme-3.0.zip", [("acme-3.0/PKG-INFO", pkg_info), ("acme-3.0/setup.py", b"")])
    facts = analyze(path)
    assert facts.kind == "sdist"
    assert facts.metadata is not None and facts.metadata.version == "3.0"
    assert facts.findings == ()


# --- broken wheels -----------------------------------------------------------------------------


def test_bad_record_hash(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    bad = rewrite(
        path, tmp_path / "bad", lambda e: edit(e, "acme/__init__.py", lambda d: d.replace(b"1", b"2"))
    )
    facts = analyze(bad)
    assert [(f.code, f.path) for f in facts.findings] == [("record-hash-mismatch", "acme/__init__.py")]
    assert facts.broken


def test_zip_bomb_in_bounded_memory(wheel_dir: Path, tmp_path: Path) -> None:
    size = 200 * MiB
    entries = entries_of(build_wheel(wheel_dir, "bomb", "1.0"))
    entries = edit(
        entries,
        "bomb-1.0.dist-info/RECORD",
        lambda d: d + f"bomb/zeros.bin,{zeros_record_hash(size)},{size}\n".encode(),
    )
    path = write_zip(tmp_path / "bomb-1.0-py3-none-any.whl", entries, zeros=("bomb/zeros.bin", size))
    assert path.stat().st_size < 1 * MiB
    tracemalloc.start()
    try:
        facts = analyze(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(f.code, f.path) for f in facts.findings] == [("zip-bomb", "bomb/zeros.bin")]
    assert peak < 32 * MiB
    assert facts.metadata is not None and facts.metadata.name == "bomb"


def test_path_escape(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    evil = rewrite(path, tmp_path / "evil", lambda e: [("../evil.pth", b"import os"), *e])
    facts = analyze(evil)
    assert ("path-escape", "../evil.pth") in [(f.code, f.path) for f in facts.findings]
    assert ("unrecorded-file", "../evil.pth") in [(f.code, f.path) for f in facts.findings]


def test_truncated_wheel(wheel_dir: Path) -> None:
    data = build_wheel(wheel_dir, "acme", "1.0").read_bytes()
    facts = analyze(data[: len(data) // 2], "acme-1.0-py3-none-any.whl")
    assert codes(facts) == ["truncated-zip"]
    assert facts.size == len(data) // 2
    assert facts.metadata is None


def test_metadata_name_mismatch(wheel_dir: Path) -> None:
    facts = analyze(build_wheel(wheel_dir, "acme", "1.0", metadata_name="other-project"))
    assert codes(facts) == ["metadata-name-mismatch"]
    assert facts.metadata is not None and facts.metadata.name == "other-project"


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "not-a-zip"), (b"<html>not found</html>", "not-a-zip"), (gzip.compress(b"x"), "not-a-zip")],
)
def test_not_a_zip_and_empty(data: bytes, code: str) -> None:
    facts = analyze(data, "acme-1.0-py3-none-any.whl")
    assert codes(facts) == [code]
    assert facts.kind == "wheel"
    assert facts.sha256 == hashlib.sha256(data).hexdigest()


def test_duplicate_member_names(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    dup = rewrite(path, tmp_path / "dup", lambda e: [("acme/__init__.py", b"import evil\n"), *e])
    facts = analyze(dup)
    assert codes(facts) == ["duplicate-name"]


def test_local_central_header_mismatch(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("acme/__init__.py").header_offset
    struct.pack_into("<I", data, offset + 22, 999)  # the local header's uncompressed size
    facts = analyze(bytes(data), path.name)
    assert [(f.code, f.path) for f in facts.findings] == [("header-mismatch", "acme/__init__.py")]


def test_missing_and_multiple_dist_info(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    none = rewrite(path, tmp_path / "none", lambda e: [(n, d) for n, d in e if ".dist-info/" not in n])
    assert codes(analyze(none)) == ["missing-dist-info", "missing-metadata"]
    two = rewrite(path, tmp_path / "two", lambda e: [*e, ("other-2.0.dist-info/METADATA", b"")])
    facts = analyze(two)
    assert codes(facts) == ["multiple-dist-info", "unrecorded-file"]
    assert facts.metadata is not None and facts.metadata.name == "acme"


def test_missing_record_and_wheel_file(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")
    stripped = rewrite(
        path, tmp_path / "s", lambda e: [(n, d) for n, d in e if not n.endswith(("RECORD", "WHEEL"))]
    )
    assert codes(analyze(stripped)) == ["missing-wheel-file", "missing-record"]


def test_wheel_tag_mismatch_is_a_warning(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")

    def retag(entries: Entries) -> Entries:
        wheel = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\n"
        entries = edit(entries, "acme-1.0.dist-info/WHEEL", lambda _: wheel)
        row = f"acme-1.0.dist-info/WHEEL,{record_hash(wheel)},{len(wheel)}".encode()
        return edit(
            entries,
            "acme-1.0.dist-info/RECORD",
            lambda d: b"\n".join(
                row if r.startswith(b"acme-1.0.dist-info/WHEEL,") else r for r in d.split(b"\n")
            ),
        )

    facts = analyze(rewrite(path, tmp_path / "t", retag))
    assert [(f.code, f.severity) for f in facts.findings] == [("wheel-tag-mismatch", "warning")]
    assert not facts.broken


def test_several_problems_are_reported_together(wheel_dir: Path, tmp_path: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0", metadata_name="impostor")

    def vandalize(entries: Entries) -> Entries:
        entries = edit(entries, "acme/__init__.py", lambda d: d + b"import os\n")
        return [*entries, ("../escape.py", b""), ("acme-1.0.dist-info/WHEEL", b"Tag: py3-none-any\n")]

    facts = analyze(rewrite(path, tmp_path / "many", vandalize))
    assert set(codes(facts)) >= {
        "metadata-name-mismatch",
        "record-hash-mismatch",
        "record-size-mismatch",
        "path-escape",
        "duplicate-name",
        "unrecorded-file",
    }
    assert facts.broken


# --- broken sdists and other files -------------------------------------------------------------


def test_unsafe_sdist(tmp_path: Path) -> None:
    pkg_info = b"Metadata-Version: 2.1\nName: acme\nVersion: 1.0\n\n"
    path = make_targz(
        tmp_path / "acme-1.0.tar.gz",
        [
            (tar_entry("acme-1.0/PKG-INFO"), pkg_info),
            (tar_entry("acme-1.0/../../evil"), b"x"),
            (tar_entry("/etc/cron.d/evil"), b"x"),
            (tar_entry("acme-1.0/passwd", kind=tarfile.SYMTYPE, link="/etc/passwd"), b""),
            (tar_entry("acme-1.0/up", kind=tarfile.SYMTYPE, link="../../.."), b""),
            (tar_entry("acme-1.0/hard", kind=tarfile.LNKTYPE, link="../outside"), b""),
            (tar_entry("acme-1.0/inside", kind=tarfile.SYMTYPE, link="PKG-INFO"), b""),
            (tar_entry("acme-1.0/fifo", kind=tarfile.FIFOTYPE), b""),
        ],
    )
    facts = analyze(path)
    assert facts.kind == "sdist"
    assert [(f.code, f.path) for f in facts.findings] == [
        ("path-escape", "acme-1.0/../../evil"),
        ("path-escape", "/etc/cron.d/evil"),
        ("path-escape", "acme-1.0/passwd"),
        ("path-escape", "acme-1.0/up"),
        ("path-escape", "acme-1.0/hard"),
        ("symlink", "acme-1.0/inside"),
        ("special-file", "acme-1.0/fifo"),
    ]
    assert facts.metadata is not None and facts.metadata.name == "acme"


def test_sdist_version_mismatch_and_truncation(wheel_dir: Path) -> None:
    path = build_sdist(wheel_dir, "acme", "1.0")
    renamed = analyze(path.read_bytes(), "acme-1.1.tar.gz")
    assert codes(renamed) == ["metadata-version-mismatch", "metadata-version-mismatch"]
    data = path.read_bytes()
    assert codes(analyze(data[: len(data) // 2], path.name)) == ["truncated-tar"]
    assert codes(analyze(b"", path.name)) == ["not-a-tar"]
    assert codes(analyze(b"plain text", path.name)) == ["not-a-tar"]


def test_sdist_without_pkg_info(tmp_path: Path) -> None:
    path = make_targz(tmp_path / "acme-1.0.tar.gz", [(tar_entry("acme-1.0/setup.py"), b"")])
    assert codes(analyze(path)) == ["missing-metadata"]


def test_unknown_suffix(tmp_path: Path) -> None:
    facts = analyze(b"whatever", "acme-1.0.exe")
    assert facts.kind == "unknown"
    assert codes(facts) == ["not-a-distribution"]
    assert codes(analyze(b"whatever")) == ["not-a-distribution"]  # bytes without a name


def test_nothing_escapes(wheel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0")

    def explode(data: bytes, source: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(analyze_module, "parse_core_metadata", explode)
    facts = analyze(path)
    assert [(f.code, f.severity, f.message) for f in facts.findings] == [
        ("analysis-failed", "error", "RuntimeError: boom")
    ]
    assert facts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts.kind == "wheel"


def test_unreadable_path_is_a_finding(tmp_path: Path) -> None:
    facts = analyze(tmp_path / "absent-1.0-py3-none-any.whl")
    assert codes(facts) == ["analysis-failed"]
    assert "FileNotFoundError" in facts.findings[0].message


def test_package_exports() -> None:
    assert analyzers.analyze is analyze_module.analyze
    assert "analyze" in analyzers.__all__
    assert {"Facts", "Finding", "SCHEMA_VERSION"} <= set(analyzers.__all__)


def test_tar_bomb_stops_at_the_header(tmp_path: Path) -> None:
    pkg_info = b"Metadata-Version: 2.1\nName: acme\nVersion: 1.0\n\n"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tar_entry("acme-1.0/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
        huge = tar_entry("acme-1.0/huge.bin")
        huge.size = 5 * 1024 * MiB  # declared only: the scan must stop before skipping its data
        archive.addfile(huge)
    path = tmp_path / "acme-1.0.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    facts = analyze(path)
    assert codes(facts) == ["zip-bomb"]
    assert facts.metadata is not None and facts.metadata.name == "acme"


def test_sdist_members_with_dot_slash(tmp_path: Path) -> None:
    pkg_info = b"Metadata-Version: 2.1\nName: acme\nVersion: 1.0\n\n"
    path = make_targz(tmp_path / "acme-1.0.tar.gz", [(tar_entry("./acme-1.0/PKG-INFO"), pkg_info)])
    facts = analyze(path)
    assert facts.findings == ()
    assert facts.metadata is not None and facts.metadata.version == "1.0"
