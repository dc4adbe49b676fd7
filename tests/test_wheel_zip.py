"""Reading METADATA from byte ranges of real wheels, the way the proxy reads an upstream's wheel."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from support.wheels import build_wheel, read_wheel_metadata

from index_proxy.wheel_zip import InvalidWheelZip, metadata_by_ranges, metadata_from_wheel


class ByteSource:
    """Answers range reads from real bytes exactly as an HTTP server with Range support would."""

    def __init__(self, data: bytes, *, honour_range: bool = True) -> None:
        self.data = data
        self.honour_range = honour_range
        self.fetched: list[tuple[int, int | None]] = []

    async def __call__(self, start: int, end: int | None) -> tuple[bytes, int, int | None, bool]:
        self.fetched.append((start, end))
        if not self.honour_range:
            return self.data, 0, len(self.data), True
        first = max(len(self.data) + start, 0) if start < 0 else start
        last = len(self.data) - 1 if end is None else min(end, len(self.data) - 1)
        return self.data[first : last + 1], first, len(self.data), False


async def test_small_wheel_needs_one_range(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "alpha", "1.0", requires_dist=["beta>=2"])
    source = ByteSource(path.read_bytes())
    metadata, whole = await metadata_by_ranges(source, path.name)
    assert metadata == read_wheel_metadata(path)
    assert b"Requires-Dist: beta>=2" in metadata
    assert whole is None
    assert len(source.fetched) == 1


async def test_large_wheel_reads_directory_and_member_only(wheel_dir: Path) -> None:
    # Incompressible payload after METADATA's local header pushes it far from the end.
    payload = {f"alpha/blob{i}.bin": os.urandom(100_000) for i in range(5)}
    path = build_wheel(wheel_dir, "alpha", "2.0", extra_files=payload)
    data = path.read_bytes()
    source = ByteSource(data)
    metadata, whole = await metadata_by_ranges(source, path.name)
    assert metadata == read_wheel_metadata(path)
    assert whole is None
    fetched_bytes = sum(
        len(data[(s if s >= 0 else len(data) + s) : (e + 1 if e is not None else None)])
        for s, e in source.fetched
    )
    assert fetched_bytes < len(data) // 4
    assert len(source.fetched) <= 3


async def test_server_without_range_gives_whole_wheel(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "alpha", "1.0")
    source = ByteSource(path.read_bytes(), honour_range=False)
    metadata, whole = await metadata_by_ranges(source, path.name)
    assert metadata == read_wheel_metadata(path)
    assert whole == path.read_bytes()


async def test_zip64_wheel(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("big/__init__.py", b"")
        with archive.open("big-1.0.dist-info/METADATA", "w", force_zip64=True) as member:
            member.write(b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n")
        archive.writestr("big-1.0.dist-info/RECORD", b"")
    data = buffer.getvalue()
    metadata, _ = await metadata_by_ranges(ByteSource(data), "big-1.0-py3-none-any.whl")
    assert metadata.startswith(b"Metadata-Version: 2.1\nName: big")


async def test_picks_the_dist_info_of_the_wheel(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("vendored-0.1.dist-info/METADATA", b"Name: vendored\n")
        archive.writestr("real-2.0.dist-info/METADATA", b"Name: real\n")
    metadata, _ = await metadata_by_ranges(ByteSource(buffer.getvalue()), "real-2.0-py3-none-any.whl")
    assert metadata == b"Name: real\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip at all" * 10, "end-of-central-directory"),
        (b"", "end-of-central-directory"),
    ],
)
async def test_not_a_zip(data: bytes, message: str) -> None:
    with pytest.raises(InvalidWheelZip, match=message):
        await metadata_by_ranges(ByteSource(data), "x-1.0-py3-none-any.whl")


async def test_wheel_without_metadata(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/__init__.py", b"")
    with pytest.raises(InvalidWheelZip, match=r"no \.dist-info/METADATA"):
        await metadata_by_ranges(ByteSource(buffer.getvalue()), "x-1.0-py3-none-any.whl")
    with pytest.raises(InvalidWheelZip, match=r"no \.dist-info/METADATA"):
        metadata_from_wheel(buffer.getvalue(), "x-1.0-py3-none-any.whl")


async def test_corrupt_member_is_detected(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "alpha", "1.0")
    data = bytearray(path.read_bytes())
    metadata = read_wheel_metadata(path)
    # Flip bytes inside the compressed METADATA member: CRC must catch it.
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("alpha-1.0.dist-info/METADATA")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 2
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    with pytest.raises(InvalidWheelZip, match=r"corrupt deflate data|CRC"):
        await metadata_by_ranges(ByteSource(bytes(data)), path.name)
    assert metadata  # the original was fine
