"""Archive safety and RECORD verification: what an installer trusts before unpacking a wheel.

``inspect_archive`` looks only at headers (central directory and local headers), so it costs
nothing on a zip bomb. ``verify_record`` hashes members, and :class:`ZipFiles` makes that safe on a
bomb too: members are decompressed in chunks, never held whole, and never beyond a shared budget.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise

from analyzers.facts import Finding

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_MEMBERS",
    "MAX_READ_BYTES",
    "MAX_TOTAL_UNCOMPRESSED",
    "OPEN_ERRORS",
    "RATIO_MIN_SIZE",
    "READ_CHUNK",
    "READ_ERRORS",
    "Measurement",
    "MemberTooLarge",
    "ZipFiles",
    "ZipMember",
    "inspect_archive",
    "measure_bytes",
    "path_escape_reason",
    "unreadable_member",
    "verify_record",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

# A zip bomb: the archive expands to more than this in total (every real wheel, even CUDA ones, is
# well below; PyPI's own size limit is far smaller) ...
MAX_TOTAL_UNCOMPRESSED = 4 * GiB
# ... or one member is compressed better than this ratio while being big enough to matter (text
# compresses 5-10x; real shared libraries with zero padding reach ~250x, e.g. a bundled libXau at
# 224x; a deflate stream cannot exceed ~1032x, so bombs sit near that).
MAX_COMPRESSION_RATIO = 500
RATIO_MIN_SIZE = 16 * MiB
# Entries in one archive: millions of empty members are a CPU/memory bomb even without large sizes.
MAX_MEMBERS = 100_000
# The most ZipFiles.__getitem__ puts in memory for one member.
MAX_READ_BYTES = 2 * GiB
READ_CHUNK = 1 * MiB

# Everything opening a hostile zip can raise (NotImplementedError: a "needs zip version N" field).
OPEN_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    struct.error,
    NotImplementedError,
)
# Everything reading a member of a hostile zip can raise.
READ_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,  # CRC mismatch, local header name differs from the directory's
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,  # unsupported compression method
    RuntimeError,  # encrypted member
)

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_FLAG_DATA_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_ZIP64_EXTRA = 0x0001
_ZIP64_MARKER = 0xFFFFFFFF
_S_IFMT = 0o170000
_S_IFLNK = 0o120000
_DRIVE = re.compile(r"^[A-Za-z]:")
_STRONG_HASHES = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


class MemberTooLarge(ValueError):
    """A member is larger than the caller allowed to hold in memory."""


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One central-directory entry, with sizes as the directory declares them."""

    name: str
    size: int
    compressed_size: int
    method: int
    flags: int
    crc: int
    header_offset: int
    mode: int  # Unix st_mode from the external attributes; 0 when the archiver stored none

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def is_symlink(self) -> bool:
        return self.mode & _S_IFMT == _S_IFLNK


@dataclass(frozen=True, slots=True)
class Measurement:
    """A member's digest and size; ``complete`` False when the budget ran out before its end."""

    digest: str  # urlsafe base64 without padding, as RECORD writes it
    size: int
    complete: bool


def path_escape_reason(name: str) -> str | None:
    """Why extracting ``name`` could write outside the target directory, or None when it cannot."""
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "contains a '..' segment"
    return None


def _member(info: zipfile.ZipInfo) -> ZipMember:
    return ZipMember(
        name=info.filename,
        size=info.file_size,
        compressed_size=info.compress_size,
        method=info.compress_type,
        flags=info.flag_bits,
        crc=info.CRC,
        header_offset=info.header_offset,
        mode=info.external_attr >> 16,
    )


def _open_failure(data: bytes, error: Exception) -> Finding:
    if not data:
        return Finding("not-a-zip", "error", "the file is empty")
    if isinstance(error, zipfile.BadZipFile) and data.startswith(_LOCAL_SIGNATURE):
        # Starts like a zip but its end (central directory) is missing or unreadable.
        return Finding("truncated-zip", "error", f"zip without a readable central directory: {error}")
    return Finding("not-a-zip", "error", f"not a zip archive: {error}")


def _path_findings(members: list[ZipMember]) -> list[Finding]:
    found: list[Finding] = []
    for member in members:
        reason = path_escape_reason(member.name)
        if reason is not None:
            found.append(Finding("path-escape", "error", f"member name {reason}", path=member.name))
        if member.is_symlink:
            found.append(Finding("symlink", "warning", "member is a symbolic link", path=member.name))
    return found


def _duplicate_findings(members: list[ZipMember]) -> list[Finding]:
    counts = Counter(member.name for member in members)
    return [
        Finding("duplicate-name", "error", f"{count} members share this name", path=name)
        for name, count in counts.items()
        if count > 1
    ]


def _bomb_findings(members: list[ZipMember]) -> list[Finding]:
    found: list[Finding] = []
    if len(members) > MAX_MEMBERS:
        found.append(Finding("zip-bomb", "error", f"{len(members)} members (limit {MAX_MEMBERS})"))
    total = sum(member.size for member in members)
    if total > MAX_TOTAL_UNCOMPRESSED:
        found.append(
            Finding("zip-bomb", "error", f"expands to {total} bytes (limit {MAX_TOTAL_UNCOMPRESSED})")
        )
    for member in members:
        ratio = member.size / max(member.compressed_size, 1)
        if member.size > RATIO_MIN_SIZE and ratio > MAX_COMPRESSION_RATIO:
            found.append(
                Finding(
                    "zip-bomb",
                    "error",
                    f"compression ratio {ratio:.0f} (limit {MAX_COMPRESSION_RATIO}) for {member.size} bytes",
                    path=member.name,
                )
            )
    return found


@dataclass(frozen=True, slots=True)
class _LocalHeader:
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    raw_name: bytes
    end: int  # offset of the member's data


def _zip64_sizes(extra: bytes, size: int, compressed_size: int) -> tuple[int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if kind == _ZIP64_EXTRA:
            values = [v for (v,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            # The zip64 extra lists, in this order, only the fields whose 32-bit value is the marker.
            if size == _ZIP64_MARKER and values:
                size = values.pop(0)
            if compressed_size == _ZIP64_MARKER and values:
                compressed_size = values.pop(0)
            break
        pos += 4 + length
    return size, compressed_size


def _local_header(data: bytes, offset: int) -> _LocalHeader | None:
    if offset < 0 or offset + _LOCAL_HEADER.size > len(data):
        return None
    sig, _, flags, method, _, _, crc, csize, size, name_len, extra_len = _LOCAL_HEADER.unpack_from(
        data, offset
    )
    if sig != _LOCAL_SIGNATURE:
        return None
    name_start = offset + _LOCAL_HEADER.size
    extra = data[name_start + name_len : name_start + name_len + extra_len]
    size, csize = _zip64_sizes(extra, size, csize)
    return _LocalHeader(
        flags=flags,
        method=method,
        crc=crc,
        compressed_size=csize,
        size=size,
        raw_name=data[name_start : name_start + name_len],
        end=name_start + name_len + extra_len,
    )


def _header_differences(member: ZipMember, local: _LocalHeader, directory_name: bytes) -> list[str]:
    differences: list[str] = []
    if local.raw_name != directory_name:
        differences.append(f"name {local.raw_name!r} vs {directory_name!r}")
    if local.method != member.method:
        differences.append(f"method {local.method} vs {member.method}")
    # With a data descriptor the local header legitimately carries zeros for CRC and sizes.
    if not member.flags & _FLAG_DATA_DESCRIPTOR and not local.flags & _FLAG_DATA_DESCRIPTOR:
        if local.compressed_size != member.compressed_size:
            differences.append(f"compressed size {local.compressed_size} vs {member.compressed_size}")
        if local.size != member.size:
            differences.append(f"size {local.size} vs {member.size}")
        if local.crc != member.crc:
            differences.append(f"CRC {local.crc:#010x} vs {member.crc:#010x}")
    return differences


def _header_findings(data: bytes, archive: zipfile.ZipFile) -> tuple[list[Finding], dict[int, int]]:
    """Local headers against the central directory; also returns each member's data end offset."""
    found: list[Finding] = []
    ends: dict[int, int] = {}
    for info in archive.infolist():
        member = _member(info)
        local = _local_header(data, info.header_offset)
        if local is None:
            code = (
                "truncated-zip" if info.header_offset + _LOCAL_HEADER.size > len(data) else "header-mismatch"
            )
            found.append(
                Finding(code, "error", f"no local header at offset {info.header_offset}", info.filename)
            )
            continue
        ends[info.header_offset] = local.end + member.compressed_size
        encoding = "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437"
        differences = _header_differences(member, local, info.orig_filename.encode(encoding))
        if differences:
            message = "local header disagrees with the central directory: " + "; ".join(differences)
            found.append(Finding("header-mismatch", "error", message, path=info.filename))
    return found, ends


def _overlap_findings(members: list[ZipMember], ends: dict[int, int]) -> list[Finding]:
    # Members sharing compressed bytes are how non-recursive zip bombs multiply a small payload.
    found: list[Finding] = []
    ordered = sorted((m for m in members if m.header_offset in ends), key=lambda m: m.header_offset)
    for previous, current in pairwise(ordered):
        if current.header_offset < ends[previous.header_offset]:
            found.append(
                Finding("zip-bomb", "error", f"member overlaps the data of {previous.name!r}", current.name)
            )
    return found


def inspect_archive(data: bytes) -> tuple[list[ZipMember], list[Finding]]:
    """The members of a zip and every structural problem found in its headers (nothing is inflated).

    A zip that cannot be opened at all gives no members and one "not-a-zip"/"truncated-zip" finding.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except OPEN_ERRORS as error:
        return [], [_open_failure(data, error)]
    with archive:
        members = [_member(info) for info in archive.infolist()]
        header_found, ends = _header_findings(data, archive)
    found = (
        _path_findings(members)
        + _duplicate_findings(members)
        + _bomb_findings(members)
        + header_found
        + _overlap_findings(members, ends)
    )
    return members, found


class ZipFiles(Mapping[str, bytes]):
    """The regular files of an open zip by name, decompressed on demand.

    Every byte inflated through one instance counts against ``budget``; once it is spent,
    :meth:`measure` stops early (``complete`` False) and :meth:`read` refuses, so a bomb costs at
    most ``budget`` bytes of inflation and never more than one chunk (or ``cap``) of memory.
    With duplicate names the last entry wins, as in :mod:`zipfile`.
    """

    def __init__(self, archive: zipfile.ZipFile, *, budget: int = MAX_TOTAL_UNCOMPRESSED) -> None:
        self._archive = archive
        self._infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        self._budget = budget

    def __getitem__(self, name: str) -> bytes:
        return self.read(name, cap=MAX_READ_BYTES)

    def __contains__(self, name: object) -> bool:
        # Mapping's default would call __getitem__, inflating the member just to test membership.
        return name in self._infos

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)

    def _chunks(self, name: str) -> Iterator[bytes]:
        with self._archive.open(self._infos[name]) as stream:
            while self._budget > 0:
                chunk = stream.read(min(READ_CHUNK, self._budget))
                if not chunk:
                    return
                self._budget -= len(chunk)
                yield chunk
            # Budget spent: one more byte tells whether the member had more to give.
            if stream.read(1):
                raise MemberTooLarge(f"{name}: decompression budget exhausted")

    def declared_size(self, name: str) -> int:
        """The size the central directory declares; reading never yields more (:mod:`zipfile` stops there)."""
        return self._infos[name].file_size

    def head(self, name: str, length: int) -> bytes:
        """The first ``length`` bytes (to sniff a magic number without inflating the member)."""
        with self._archive.open(self._infos[name]) as stream:
            return stream.read(length)

    def read(self, name: str, *, cap: int) -> bytes:
        """The whole member, or :class:`MemberTooLarge` when it (or the budget) exceeds ``cap``."""
        if self._infos[name].file_size > cap:
            raise MemberTooLarge(f"{name}: declares {self._infos[name].file_size} bytes (cap {cap})")
        chunks = []
        size = 0
        for chunk in self._chunks(name):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                raise MemberTooLarge(f"{name}: more than {cap} bytes")
        return b"".join(chunks)  # one copy (none for a single chunk)

    def measure(self, name: str, algorithm: str) -> Measurement:
        """Digest and size of a member, streamed; incomplete when the budget ran out."""
        digest = hashlib.new(algorithm)
        size = 0
        try:
            for chunk in self._chunks(name):
                digest.update(chunk)
                size += len(chunk)
        except MemberTooLarge:
            return Measurement(_b64(digest.digest()), size, complete=False)
        return Measurement(_b64(digest.digest()), size, complete=True)


def unreadable_member(path: str, error: Exception) -> Finding:
    """The finding for a member that cannot be inflated (bad CRC, bad stream, unknown method...)."""
    return Finding("corrupt-member", "error", f"cannot read: {type(error).__name__}: {error}", path=path)


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def measure_bytes(data: bytes, algorithm: str) -> Measurement:
    """The measurement of contents already in memory (to hand to :func:`verify_record`)."""
    return Measurement(_b64(hashlib.new(algorithm, data).digest()), len(data), complete=True)


def _measure(
    files: Mapping[str, bytes], name: str, algorithm: str, measured: Mapping[tuple[str, str], Measurement]
) -> Measurement:
    known = measured.get((name, algorithm))
    if known is not None:
        return known
    if isinstance(files, ZipFiles):
        return files.measure(name, algorithm)
    return measure_bytes(files[name], algorithm)


def _parse_record(record_text: str) -> tuple[dict[str, tuple[str, str]], list[Finding]]:
    rows: dict[str, tuple[str, str]] = {}
    found: list[Finding] = []
    try:
        for number, row in enumerate(csv.reader(io.StringIO(record_text)), start=1):
            if not row:
                continue
            if len(row) != 3:
                found.append(Finding("invalid-record", "error", f"RECORD row {number} has {len(row)} fields"))
                continue
            rows.setdefault(row[0], (row[1], row[2]))
    except csv.Error as error:
        found.append(Finding("invalid-record", "error", f"RECORD is not valid CSV: {error}"))
    return rows, found


def _size_findings(path: str, recorded: str, actual: int) -> list[Finding]:
    if not recorded.strip().isdigit():
        return [Finding("record-size-mismatch", "error", f"RECORD gives size {recorded!r}", path=path)]
    if int(recorded) != actual:
        return [
            Finding("record-size-mismatch", "error", f"RECORD says {recorded} bytes, file has {actual}", path)
        ]
    return []


def _algorithm_finding(path: str, algorithm: str) -> Finding | None:
    if not algorithm:
        return Finding("record-hash-mismatch", "error", "RECORD gives no hash", path=path)
    if algorithm not in _STRONG_HASHES:
        return Finding(
            "weak-record-hash", "error", f"hash algorithm {algorithm!r} is not sha256 or stronger", path=path
        )
    return None


def _entry_findings(
    files: Mapping[str, bytes],
    path: str,
    recorded_hash: str,
    size: str,
    measured: Mapping[tuple[str, str], Measurement],
) -> list[Finding]:
    algorithm, _, expected = recorded_hash.partition("=")
    algorithm = algorithm.strip().lower()
    problem = _algorithm_finding(path, algorithm)
    if problem is not None:
        return [problem]
    try:
        measurement = _measure(files, path, algorithm, measured)
    except READ_ERRORS as error:
        return [unreadable_member(path, error)]
    if not measurement.complete:
        return [Finding("record-unverified", "warning", "not hashed: decompression budget exhausted", path)]
    found = _size_findings(path, size, measurement.size)
    if expected.strip().rstrip("=") != measurement.digest:
        found.insert(
            0, Finding("record-hash-mismatch", "error", f"{algorithm} digest differs from RECORD", path)
        )
    return found


def verify_record(
    files: Mapping[str, bytes],
    record_text: str | None,
    dist_info: str,
    *,
    measured: Mapping[tuple[str, str], Measurement] | None = None,
) -> list[Finding]:
    """Every file listed in RECORD with a matching strong hash and size, and every file listed.

    ``files`` maps member names to contents (a :class:`ZipFiles` is hashed by streaming);
    ``record_text`` ``None`` means the wheel has no RECORD; ``dist_info`` is the
    ``<name>-<version>.dist-info`` directory (RECORD and its signatures live there).
    ``measured`` holds complete measurements by (member, algorithm) of members the caller already
    read whole (see :func:`measure_bytes`); those are taken as they are instead of inflated again.
    """
    measured = measured or {}
    dist_info = dist_info.rstrip("/")
    if record_text is None:
        return [Finding("missing-record", "error", f"no {dist_info}/RECORD in the wheel")]
    exempt = {f"{dist_info}/RECORD", *(f"{dist_info}/{name}" for name in _SIGNATURES)}
    rows, found = _parse_record(record_text)
    for path, (recorded_hash, size) in rows.items():
        if path in exempt:
            continue
        if path not in files:
            found.append(Finding("record-missing-file", "error", "listed in RECORD but absent", path=path))
            continue
        found += _entry_findings(files, path, recorded_hash, size, measured)
    found += [
        Finding("unrecorded-file", "error", "file not listed in RECORD", path=path)
        for path in files
        if path not in rows and path not in exempt
    ]
    return found
