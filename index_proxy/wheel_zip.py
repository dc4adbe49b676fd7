"""Reading a wheel's ``METADATA`` from a few byte ranges of its zip (PEP 658 for upstreams without it).

Only the end of the zip (its central directory) and the one member are read, as pip's and
uv's "lazy wheel" do, so a 500 MB wheel costs two or three small requests.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["InvalidWheelZip", "RangeFetcher", "metadata_by_ranges", "metadata_from_wheel"]

TAIL_BYTES = 64 * 1024
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_METADATA = re.compile(r"^[^/]+\.dist-info/METADATA$")


class InvalidWheelZip(ValueError):
    """The bytes are not a wheel whose METADATA can be read."""


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int


# fetch(start, end) -> (bytes, first byte offset, total size or None, whole file?)
RangeFetcher = Callable[[int, int | None], Awaitable[tuple[bytes, int, int | None, bool]]]


def _dist_info_prefix(filename: str) -> str:
    name, _, rest = filename.partition("-")
    version = rest.partition("-")[0]
    return f"{name}-{version}.dist-info/".lower()


def _pick_metadata(names: list[str], filename: str) -> str:
    candidates = [name for name in names if _METADATA.match(name)]
    if not candidates:
        raise InvalidWheelZip(f"{filename}: no .dist-info/METADATA in the wheel")
    expected = _dist_info_prefix(filename)
    for name in candidates:
        if name.lower().startswith(expected):
            return name
    return candidates[0]


def metadata_from_wheel(data: bytes, filename: str) -> bytes:
    """METADATA from a whole wheel held in memory."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(_pick_metadata(archive.namelist(), filename))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError) as error:
        raise InvalidWheelZip(f"{filename}: {error}") from error


def _end_of_directory(tail: bytes, tail_start: int) -> tuple[int, int]:
    """(central directory offset, size) from the end of the zip."""
    position = tail.rfind(_EOCD)
    if position < 0 or len(tail) - position < 22:
        raise InvalidWheelZip("no end-of-central-directory record in the last bytes")
    (_sig, _disk, _cd_disk, _n_disk, _n_total, cd_size, cd_offset, _comment) = struct.unpack(
        "<4sHHHHIIH", tail[position : position + 22]
    )
    if cd_offset != 0xFFFFFFFF and cd_size != 0xFFFFFFFF:
        return cd_offset, cd_size
    locator = position - 20
    if locator < 0 or tail[locator : locator + 4] != _ZIP64_LOCATOR:
        raise InvalidWheelZip("zip64 archive without a zip64 locator")
    (zip64_offset,) = struct.unpack("<Q", tail[locator + 8 : locator + 16])
    record = zip64_offset - tail_start
    if record < 0 or tail[record : record + 4] != _ZIP64_EOCD:
        raise InvalidWheelZip("zip64 end-of-central-directory record out of reach")
    cd_size, cd_offset = struct.unpack("<QQ", tail[record + 40 : record + 56])
    return cd_offset, cd_size


def _central_directory(data: bytes) -> list[_Member]:
    members: list[_Member] = []
    position = 0
    while position + 46 <= len(data) and data[position : position + 4] == _CENTRAL:
        (method, _time, _date, crc, compressed, size, name_len, extra_len, comment_len) = struct.unpack(
            "<HHHIIIHHH", data[position + 10 : position + 34]
        )
        (offset,) = struct.unpack("<I", data[position + 42 : position + 46])
        name = data[position + 46 : position + 46 + name_len].decode("utf-8", "replace")
        extra = data[position + 46 + name_len : position + 46 + name_len + extra_len]
        compressed, size, offset = _zip64_fields(extra, compressed, size, offset)
        members.append(_Member(name, method, crc, compressed, size, offset))
        position += 46 + name_len + extra_len + comment_len
    return members


def _zip64_fields(extra: bytes, compressed: int, size: int, offset: int) -> tuple[int, int, int]:
    position = 0
    while position + 4 <= len(extra):
        header, length = struct.unpack("<HH", extra[position : position + 4])
        if header == 0x0001:
            values = iter(
                struct.unpack(f"<{length // 8}Q", extra[position + 4 : position + 4 + length - length % 8])
            )
            if size == 0xFFFFFFFF:
                size = next(values)
            if compressed == 0xFFFFFFFF:
                compressed = next(values)
            if offset == 0xFFFFFFFF:
                offset = next(values)
            break
        position += 4 + length
    return compressed, size, offset


def _inflate(member: _Member, local: bytes) -> bytes:
    if local[:4] != _LOCAL:
        raise InvalidWheelZip(f"{member.name}: no local file header at offset {member.offset}")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    start = 30 + name_len + extra_len
    raw = local[start : start + member.compressed_size]
    if len(raw) < member.compressed_size:
        raise InvalidWheelZip(f"{member.name}: member data cut short")
    if member.method == zipfile.ZIP_STORED:
        content = raw
    elif member.method == zipfile.ZIP_DEFLATED:
        try:
            content = zlib.decompressobj(-15).decompress(raw)
        except zlib.error as error:
            raise InvalidWheelZip(f"{member.name}: corrupt deflate data ({error})") from error
    else:
        raise InvalidWheelZip(f"{member.name}: unsupported compression method {member.method}")
    if zlib.crc32(content) != member.crc or len(content) != member.size:
        raise InvalidWheelZip(f"{member.name}: CRC or size does not match the central directory")
    return content


async def metadata_by_ranges(fetch: RangeFetcher, filename: str) -> tuple[bytes, bytes | None]:
    """(METADATA, the whole wheel if the server ignored Range and sent it all, else None)."""
    tail, tail_start, total, whole = await fetch(-TAIL_BYTES, None)
    if whole:
        return metadata_from_wheel(tail, filename), tail
    cd_offset, cd_size = _end_of_directory(tail, tail_start)
    if cd_offset >= tail_start:
        directory = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
    else:
        directory, _start, _total, _whole = await fetch(cd_offset, cd_offset + cd_size - 1)
    members = _central_directory(directory)
    wanted = _pick_metadata([member.name for member in members], filename)
    member = next(m for m in members if m.name == wanted)
    # The local header's name and extra field lengths may differ from the central copy: read slack.
    end = member.offset + 30 + len(member.name.encode()) + member.compressed_size + 1024
    if total is not None:
        end = min(end, total - 1)
    if member.offset >= tail_start:
        local = tail[member.offset - tail_start :]
    else:
        local, _start, _total, _whole = await fetch(member.offset, end)
    return _inflate(member, local), None
