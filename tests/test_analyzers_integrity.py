"""Zip safety (headers only) and RECORD verification, on real wheels and hand-broken zips."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest
from support.wheels import build_wheel

from analyzers.integrity import (
    MAX_COMPRESSION_RATIO,
    MAX_TOTAL_UNCOMPRESSED,
    RATIO_MIN_SIZE,
    MemberTooLarge,
    ZipFiles,
    inspect_archive,
    measure_bytes,
    verify_record,
)

MiB = 1024 * 1024
DATE = (1980, 1, 1, 0, 0, 0)


def codes(findings: list) -> list[str]:
    return [finding.code for finding in findings]


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], *, seekable: bool = True) -> bytes:
    """A zip of exactly these entries, duplicates and odd names included."""
    buffer = io.BytesIO()
    target: io.RawIOBase | io.BytesIO = buffer if seekable else _Unseekable(buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": exactly what we want
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3)."""

    def __init__(self, sink: io.BytesIO) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self.sink.write(data)


def zero_bomb(size: int) -> bytes:
    """A zip with one member of ``size`` zero bytes, deflated while streaming (about 1/1000 of it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("zeros.bin", date_time=DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        chunk = bytes(MiB)
        with archive.open(info, "w") as member:
            for _ in range(size // MiB):
                member.write(chunk)
    return buffer.getvalue()


def local_offsets(data: bytes) -> dict[str, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: info.header_offset for info in archive.infolist()}


def central_offsets(data: bytes) -> list[int]:
    found, pos = [], data.find(b"PK\x01\x02")
    while pos != -1:
        found.append(pos)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return found


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


def record_hash(data: bytes, algorithm: str = "sha256") -> str:
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()
    return f"{algorithm}={digest}"


# --- inspect_archive ---------------------------------------------------------------------------


def test_real_wheel_is_clean(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0", extra_files={"acme/data/x.txt": b"x"})
    members, findings = inspect_archive(path.read_bytes())
    assert findings == []
    assert {m.name for m in members} == {
        "acme/__init__.py",
        "acme/data/x.txt",
        "acme-1.0.dist-info/METADATA",
        "acme-1.0.dist-info/WHEEL",
        "acme-1.0.dist-info/RECORD",
    }


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not-a-zip"),
        (b"#!/bin/sh\necho this is not a zip\n" * 20, "not-a-zip"),
        (b"\x1f\x8b\x08\x00" + bytes(200), "not-a-zip"),
    ],
)
def test_not_a_zip(data: bytes, code: str) -> None:
    members, findings = inspect_archive(data)
    assert members == []
    assert codes(findings) == [code]
    assert findings[0].severity == "error"


def test_truncated_wheel(wheel_dir: Path) -> None:
    data = build_wheel(wheel_dir, "acme", "1.0").read_bytes()
    members, findings = inspect_archive(data[: len(data) // 2])
    assert members == []
    assert codes(findings) == ["truncated-zip"]


@pytest.mark.parametrize(
    "name", ["../evil.py", "acme/../../evil.py", "/etc/evil", "acme\\evil.py", "C:/evil.py"]
)
def test_path_escape(name: str) -> None:
    _, findings = inspect_archive(make_zip([("ok.py", b""), (name, b"boom")]))
    assert codes(findings) == ["path-escape"]
    assert findings[0].path == name
    assert findings[0].severity == "error"


def test_duplicate_names() -> None:
    _, findings = inspect_archive(make_zip([("a.py", b"1"), ("b.py", b""), ("a.py", b"2")]))
    assert codes(findings) == ["duplicate-name"]
    assert findings[0].path == "a.py"


def test_symlink_is_a_warning() -> None:
    info = zipfile.ZipInfo("acme/link", date_time=DATE)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    _, findings = inspect_archive(make_zip([(info, b"/etc/passwd")]))
    assert [(f.code, f.severity) for f in findings] == [("symlink", "warning")]


def test_ratio_bomb_found_from_headers_alone() -> None:
    size = 200 * MiB
    assert size > RATIO_MIN_SIZE
    data = zero_bomb(size)
    assert size / len(data) > MAX_COMPRESSION_RATIO
    members, findings = inspect_archive(data)
    assert members[0].size == size
    assert codes(findings) == ["zip-bomb"]
    assert findings[0].path == "zeros.bin"


def test_lying_central_directory_sizes_exceed_total() -> None:
    data = make_zip([("a.bin", b"a" * 100), ("b.bin", b"b" * 100)])
    for entry in central_offsets(data):
        data = patch(data, entry + 24, "<I", 0xFFFFFFFE)  # uncompressed size: ~4 GiB each
    _, findings = inspect_archive(data)
    assert MAX_TOTAL_UNCOMPRESSED < 2 * 0xFFFFFFFE
    assert any(f.code == "zip-bomb" and f.path is None for f in findings)  # the total
    assert codes(findings).count("header-mismatch") == 2  # the local headers tell the truth


def test_overlapping_members() -> None:
    data = make_zip([("a.bin", b"a" * 1000), ("b.bin", b"b" * 1000)])
    first, second = central_offsets(data)
    data = patch(data, second + 42, "<I", struct.unpack_from("<I", data, first + 42)[0])
    _, findings = inspect_archive(data)
    assert ("zip-bomb", "b.bin") in [(f.code, f.path) for f in findings]


def test_local_header_size_mismatch() -> None:
    data = make_zip([("a.py", b"print(1)\n" * 10), ("b.py", b"")])
    data = patch(data, local_offsets(data)["a.py"] + 22, "<I", 12345)  # local uncompressed size
    _, findings = inspect_archive(data)
    assert codes(findings) == ["header-mismatch"]
    assert findings[0].path == "a.py"
    assert "size 12345 vs 90" in findings[0].message


def test_local_header_name_and_method_mismatch() -> None:
    data = make_zip([("acme/a.py", b"x = 1\n")])
    offset = local_offsets(data)["acme/a.py"]
    data = patch(data, offset + 8, "<H", zipfile.ZIP_STORED)
    data = data[: offset + 30] + b"evil/" + data[offset + 35 :]
    _, findings = inspect_archive(data)
    assert codes(findings) == ["header-mismatch"]
    assert "name b'evil/a.py'" in findings[0].message and "method 0 vs 8" in findings[0].message


def test_data_descriptor_sizes_are_not_compared() -> None:
    data = make_zip([("a.py", b"x = 1\n" * 50)], seekable=False)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.infolist()[0].flag_bits & 0x08
    assert inspect_archive(data)[1] == []


# --- verify_record -----------------------------------------------------------------------------

DIST = "acme-1.0.dist-info"


def good_files() -> dict[str, bytes]:
    return {"acme/__init__.py": b"x = 1\n", f"{DIST}/METADATA": b"Name: acme\n", f"{DIST}/RECORD": b""}


def record_for(files: dict[str, bytes]) -> str:
    rows = [f"{p},{record_hash(d)},{len(d)}" for p, d in files.items() if not p.endswith("/RECORD")]
    return "\n".join([*rows, f"{DIST}/RECORD,,"]) + "\n"


def test_record_of_a_real_wheel_verifies(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "acme", "1.0", extra_files={"acme/big.bin": bytes(3 * MiB)})
    with zipfile.ZipFile(path) as archive:
        files = ZipFiles(archive)
        assert verify_record(files, files[f"{DIST}/RECORD"].decode(), DIST) == []


def test_good_record() -> None:
    files = good_files()
    assert verify_record(files, record_for(files), DIST) == []


def test_hash_mismatch() -> None:
    files = good_files()
    record = record_for(files)
    files["acme/__init__.py"] = b"x = 2\n"  # same size, other bytes
    findings = verify_record(files, record, DIST)
    assert [(f.code, f.path) for f in findings] == [("record-hash-mismatch", "acme/__init__.py")]


def test_size_mismatch() -> None:
    files = good_files()
    record = record_for(files).replace(",6\n", ",7\n")
    findings = verify_record(files, record, DIST)
    assert [(f.code, f.path) for f in findings] == [("record-size-mismatch", "acme/__init__.py")]


def test_unrecorded_and_missing_files() -> None:
    files = good_files()
    record = record_for(files) + "acme/gone.py,sha256=AAAA,1\n"
    files["acme/sneaky.py"] = b"import os\n"
    files[f"{DIST}/RECORD.jws"] = b"signature"
    files[f"{DIST}/RECORD.p7s"] = b"signature"
    findings = verify_record(files, record, DIST)
    assert sorted((f.code, f.path) for f in findings) == [
        ("record-missing-file", "acme/gone.py"),
        ("unrecorded-file", "acme/sneaky.py"),
    ]


def test_measured_members_are_taken_as_given() -> None:
    files = good_files()
    record = record_for(files)
    # A measurement the caller made while reading the member whole replaces inflating it again...
    measured = {("acme/__init__.py", "sha256"): measure_bytes(b"x = 2\n", "sha256")}
    findings = verify_record(files, record, DIST, measured=measured)
    assert [(f.code, f.path) for f in findings] == [("record-hash-mismatch", "acme/__init__.py")]
    # ... for the algorithm RECORD names only.
    measured = {("acme/__init__.py", "sha512"): measure_bytes(b"x = 2\n", "sha512")}
    assert verify_record(files, record, DIST, measured=measured) == []


def test_missing_record() -> None:
    assert codes(verify_record(good_files(), None, DIST)) == ["missing-record"]


@pytest.mark.parametrize("algorithm", ["md5", "sha1"])
def test_weak_hash(algorithm: str) -> None:
    files = good_files()
    record = record_for(files).replace(
        record_hash(files["acme/__init__.py"]), record_hash(files["acme/__init__.py"], algorithm)
    )
    findings = verify_record(files, record, DIST)
    assert [(f.code, f.path) for f in findings] == [("weak-record-hash", "acme/__init__.py")]


def test_stronger_hash_is_accepted() -> None:
    files = good_files()
    record = record_for(files).replace(
        record_hash(files["acme/__init__.py"]), record_hash(files["acme/__init__.py"], "sha512")
    )
    assert verify_record(files, record, DIST) == []


def test_malformed_rows() -> None:
    files = good_files()
    record = record_for(files) + "just-a-path\n"
    assert codes(verify_record(files, record, DIST)) == ["invalid-record"]


def test_corrupt_member_is_reported_not_raised() -> None:
    data = make_zip([("acme/__init__.py", b"x = 1\n" * 100)])
    central = central_offsets(data)[0]
    data = patch(data, central + 16, "<I", 0xDEADBEEF)  # CRC in the central directory
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = ZipFiles(archive)
        findings = verify_record(files, f"acme/__init__.py,{record_hash(b'x = 1' * 100)},600\n", DIST)
    assert codes(findings) == ["corrupt-member"]


def test_bomb_is_hashed_in_bounded_memory() -> None:
    size = 200 * MiB
    data = zero_bomb(size)
    digest = hashlib.sha256()
    for _ in range(size // MiB):
        digest.update(bytes(MiB))
    recorded = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        tracemalloc.start()
        try:
            findings = verify_record(ZipFiles(archive), f"zeros.bin,{recorded},{size}\n", "x-1.dist-info")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert findings == []
    assert peak < 16 * MiB


def test_budget_stops_inflation() -> None:
    data = zero_bomb(8 * MiB)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = ZipFiles(archive, budget=2 * MiB)
        findings = verify_record(
            files, f"zeros.bin,{record_hash(bytes(8 * MiB))},{8 * MiB}\n", "x-1.dist-info"
        )
        assert [(f.code, f.severity) for f in findings] == [("record-unverified", "warning")]
        with pytest.raises(MemberTooLarge):
            files.read("zeros.bin", cap=100 * MiB)


def test_read_cap() -> None:
    data = make_zip([("a.bin", bytes(5000))])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = ZipFiles(archive)
        assert files.read("a.bin", cap=5000) == bytes(5000)
        with pytest.raises(MemberTooLarge):
            files.read("a.bin", cap=4999)
