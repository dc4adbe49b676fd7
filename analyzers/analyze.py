"""The library's entry point: one distribution file in, one :class:`Facts` out, never an exception.

Members are inflated one at a time and only as far as the integrity budget allows, so a hostile
upload costs bounded memory and time; everything that goes wrong becomes a :class:`Finding`.

A wheel without ELF files (a pure wheel) gets ``abi`` and ``cpu`` ``None`` (nothing native to
describe, rather than a libc "none" that would claim native code needing no libc) and
``elf_files`` ``()``; ``cuda`` is still computed, since Requires-Dist alone can pin a CUDA
runtime. Sdists get ``abi``, ``cpu`` and ``cuda`` ``None``: nothing is built, nothing is known.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import os
import posixpath
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.tags import Tag, parse_tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from analyzers.cpu import summarize_cpu
from analyzers.cuda import summarize_cuda
from analyzers.elf import analyze_elf
from analyzers.facts import AbiFacts, CoreMetadataFacts, CpuFacts, CudaFacts, ElfFacts, Facts, Finding
from analyzers.integrity import (
    MAX_MEMBERS,
    MAX_TOTAL_UNCOMPRESSED,
    OPEN_ERRORS,
    READ_CHUNK,
    READ_ERRORS,
    Measurement,
    MemberTooLarge,
    ZipFiles,
    ZipMember,
    inspect_archive,
    measure_bytes,
    path_escape_reason,
    unreadable_member,
    verify_record,
)
from analyzers.manylinux import abi_findings, summarize_abi
from analyzers.metadata import check_consistency, parse_core_metadata

__all__ = ["INFLATE_BUDGET", "MAX_ELF_BYTES", "MAX_TEXT_BYTES", "analyze"]

MiB = 1024 * 1024
# METADATA, PKG-INFO, WHEEL and RECORD are text; a long description stays far below this.
MAX_TEXT_BYTES = 64 * MiB
# The largest ELF file held in memory for analysis (CUDA kernels libraries reach ~1.5 GB).
MAX_ELF_BYTES = 2048 * MiB
# Inflation allowed per wheel: RECORD hashing reads every member once and an ELF file may be read
# a second time for analysis, so a legitimate wheel just under the bomb threshold still fits.
INFLATE_BUDGET = 2 * MAX_TOTAL_UNCOMPRESSED

_ELF_MAGIC = b"\x7fELF"
_SDIST_SUFFIXES = (".tar.gz", ".zip")
_PKG_INFO = re.compile(r"^([^/]+)/PKG-INFO$")
_TAR_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, ValueError)
_DRIVE = re.compile(r"^[A-Za-z]:")

Kind = Literal["wheel", "sdist", "unknown"]
# Digests of members already read whole, by (member, algorithm), for the RECORD check.
_Measured = dict[tuple[str, str], Measurement]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _facts(
    data: bytes,
    filename: str,
    kind: Kind,
    findings: Iterable[Finding],
    *,
    metadata: CoreMetadataFacts | None = None,
    abi: AbiFacts | None = None,
    cpu: CpuFacts | None = None,
    cuda: CudaFacts | None = None,
    elf_files: Iterable[ElfFacts] = (),
) -> Facts:
    return Facts(
        filename=filename,
        sha256=_digest(data),
        size=len(data),
        kind=kind,
        metadata=metadata,
        abi=abi,
        cpu=cpu,
        cuda=cuda,
        elf_files=tuple(elf_files),
        # Several checks can report the same unreadable member in the same words; say it once.
        findings=tuple(dict.fromkeys(findings)),
    )


# --- wheels ------------------------------------------------------------------------------------


def _is_shared_object_name(name: str) -> bool:
    base = posixpath.basename(name)
    return base.endswith(".so") or ".so." in base


def _dist_info_dirs(members: Iterable[ZipMember]) -> list[str]:
    tops = {m.name.split("/", 1)[0] for m in members if "/" in m.name}
    return sorted(top for top in tops if top.endswith(".dist-info"))


def _pick_dist_info(filename: str, members: list[ZipMember]) -> tuple[str | None, list[Finding]]:
    candidates = _dist_info_dirs(members)
    if not candidates:
        return None, [Finding("missing-dist-info", "error", "no top-level *.dist-info directory")]
    if len(candidates) == 1:
        return candidates[0], []
    wanted = canonicalize_name(filename.partition("-")[0])
    matching = [c for c in candidates if canonicalize_name(c.partition("-")[0]) == wanted]
    finding = Finding(
        "multiple-dist-info", "error", "several .dist-info directories: " + ", ".join(candidates)
    )
    return (matching or candidates)[0], [finding]


def _read_text(files: ZipFiles, path: str) -> bytes | None:
    """The member's bytes, ``None`` when absent; read errors propagate (MemberTooLarge included)."""
    if path not in files:
        return None
    return files.read(path, cap=MAX_TEXT_BYTES)


def _wheel_metadata(files: ZipFiles, dist_info: str | None) -> CoreMetadataFacts | None:
    if dist_info is None:
        return None
    try:
        data = _read_text(files, f"{dist_info}/METADATA")
    except READ_ERRORS as error:
        return CoreMetadataFacts(source="wheel", errors=(f"cannot read METADATA: {error}",))
    return None if data is None else parse_core_metadata(data, "wheel")


def _filename_tags(filename: str) -> frozenset[Tag] | None:
    try:
        return parse_wheel_filename(filename)[3]
    except (InvalidWheelFilename, ValueError):
        return None


def _wheel_file_tags(text: str) -> frozenset[Tag]:
    headers = email.parser.Parser().parsestr(text, headersonly=True)
    tags: set[Tag] = set()
    for line in headers.get_all("Tag") or ():
        tags |= parse_tag(line.strip())
    return frozenset(tags)


def _tag_findings(files: ZipFiles, dist_info: str, filename: str) -> list[Finding]:
    path = f"{dist_info}/WHEEL"
    try:
        data = _read_text(files, path)
    except READ_ERRORS as error:
        return [unreadable_member(path, error)]
    if data is None:
        return [Finding("missing-wheel-file", "error", "no WHEEL file in the .dist-info directory", path)]
    claimed = _filename_tags(filename)
    if claimed is None:
        return []  # check_consistency reported the unparseable filename
    try:
        listed = _wheel_file_tags(data.decode("utf-8", errors="replace"))
    except ValueError as error:
        return [Finding("wheel-tag-mismatch", "warning", f"unparseable Tag line in WHEEL: {error}", path)]
    if listed == claimed:
        return []
    missing = sorted(str(t) for t in claimed - listed)
    extra = sorted(str(t) for t in listed - claimed)
    message = f"filename tags absent from WHEEL: {missing}; WHEEL tags absent from filename: {extra}"
    return [Finding("wheel-tag-mismatch", "warning", message, path)]


def _record_findings(files: ZipFiles, dist_info: str, measured: _Measured) -> list[Finding]:
    path = f"{dist_info}/RECORD"
    try:
        data = _read_text(files, path)
    except READ_ERRORS as error:
        return [unreadable_member(path, error)]
    if data is None:
        return verify_record(files, None, dist_info)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [Finding("invalid-record", "error", f"RECORD is not UTF-8: {error}", path)]
    return verify_record(files, text, dist_info, measured=measured)


def _is_elf_candidate(files: ZipFiles, member: ZipMember) -> bool:
    if _is_shared_object_name(member.name):
        return True
    if member.size < len(_ELF_MAGIC):
        return False
    try:
        return files.head(member.name, len(_ELF_MAGIC)) == _ELF_MAGIC
    except READ_ERRORS:
        return False  # verify_record reports the unreadable member


def _elf_names(files: ZipFiles, members: list[ZipMember]) -> list[str]:
    # With duplicate names the last entry is the one ZipFiles reads, so examine that one once.
    return [
        member.name
        for member in {m.name: m for m in members}.values()
        if member.name in files and not member.is_symlink and _is_elf_candidate(files, member)
    ]


def _elf_result(files: ZipFiles, name: str, measured: _Measured | None) -> ElfFacts | Finding:
    """Analyse one ELF member; with ``measured``, also record its sha256 for the RECORD check."""
    try:
        data = files.read(name, cap=MAX_ELF_BYTES)
    except MemberTooLarge as error:
        return Finding("elf-skipped", "warning", f"not analysed: {error}", name)
    except READ_ERRORS as error:
        return unreadable_member(name, error)
    if measured is not None:
        measured[name, "sha256"] = measure_bytes(data, "sha256")
    return analyze_elf(data, name)


@dataclass(slots=True)
class _ElfFiles:
    elfs: list[ElfFacts] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _elf_files(files: ZipFiles, names: list[str], measured: _Measured | None) -> _ElfFiles:
    read = _ElfFiles()
    for name in names:
        result = _elf_result(files, name, measured)
        if isinstance(result, Finding):
            read.findings.append(result)
        else:
            read.elfs.append(result)
    return read


def _read_order_is_free(files: ZipFiles, elf_names: list[str]) -> bool:
    """Whether the ELF files may be read before the RECORD check without changing any outcome.

    A read never inflates more than the member's declared size. All reads together (RECORD hashing
    each member, each ELF file once more, METADATA, WHEEL and RECORD at their cap) staying a chunk
    below the budget means it never runs out, so no read depends on what was read before it. Only a
    wheel declaring several GiB (a zip bomb by then) fails this and keeps RECORD first, the order
    the budget was sized for.
    """
    worst = sum(map(files.declared_size, files)) + sum(map(files.declared_size, elf_names))
    return worst + 3 * MAX_TEXT_BYTES + READ_CHUNK <= INFLATE_BUDGET


def _claimed_platforms(filename: str) -> list[str]:
    tags = _filename_tags(filename)
    return sorted({tag.platform for tag in tags}) if tags else []


def _bundled(members: Iterable[ZipMember]) -> set[str]:
    # Whatever the wheel ships satisfies a DT_NEEDED of that name, wherever it sits (auditwheel
    # grafts into <pkg>.libs/ and sets RPATH accordingly).
    return {posixpath.basename(m.name) for m in members if _is_shared_object_name(m.name)}


def _version_for_cuda(filename: str, metadata: CoreMetadataFacts | None) -> str | None:
    if metadata is not None and metadata.version:
        return metadata.version
    parts = filename.split("-")
    return parts[1] if len(parts) >= 2 else None


@dataclass(slots=True)
class _Native:
    elfs: list[ElfFacts] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    abi: AbiFacts | None = None
    cpu: CpuFacts | None = None
    cuda: CudaFacts | None = None


def _native(
    read: _ElfFiles, members: list[ZipMember], filename: str, metadata: CoreMetadataFacts | None
) -> _Native:
    native = _Native(elfs=read.elfs, findings=list(read.findings))
    if native.elfs:
        abi = summarize_abi(native.elfs, _claimed_platforms(filename), _bundled(members))
        native.abi = abi
        native.findings += abi_findings(abi)
        native.cpu = summarize_cpu(native.elfs)
    requires_dist = metadata.requires_dist if metadata is not None else ()
    native.cuda = summarize_cuda(native.elfs, requires_dist, _version_for_cuda(filename, metadata))
    return native


def _wheel_checks(
    files: ZipFiles, members: list[ZipMember], filename: str, measured: _Measured
) -> tuple[CoreMetadataFacts | None, list[Finding]]:
    dist_info, found = _pick_dist_info(filename, members)
    metadata = _wheel_metadata(files, dist_info)
    found += check_consistency(filename, dist_info, metadata)
    if dist_info is not None:
        found += _tag_findings(files, dist_info, filename)
        found += _record_findings(files, dist_info, measured)
    return metadata, found


def _checks_and_elf_files(
    files: ZipFiles, members: list[ZipMember], filename: str
) -> tuple[CoreMetadataFacts | None, list[Finding], _ElfFiles]:
    elf_names = _elf_names(files, members)
    measured: _Measured = {}
    if _read_order_is_free(files, elf_names):
        # ELF files first, their digests handed to the RECORD check: each is inflated once.
        read = _elf_files(files, elf_names, measured)
        metadata, found = _wheel_checks(files, members, filename, measured)
    else:
        metadata, found = _wheel_checks(files, members, filename, measured)
        read = _elf_files(files, elf_names, None)
    return metadata, found, read


def _open_zip(data: bytes) -> zipfile.ZipFile | None:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except OPEN_ERRORS:
        return None  # inspect_archive has already said why


def _analyze_wheel(data: bytes, filename: str) -> Facts:
    members, found = inspect_archive(data)
    archive = _open_zip(data)
    if archive is None:
        return _facts(data, filename, "wheel", found)
    with archive:
        files = ZipFiles(archive, budget=INFLATE_BUDGET)
        metadata, checks, read = _checks_and_elf_files(files, members, filename)
        native = _native(read, members, filename, metadata)
    return _facts(
        data,
        filename,
        "wheel",
        [*found, *checks, *native.findings],
        metadata=metadata,
        abi=native.abi,
        cpu=native.cpu,
        cuda=native.cuda,
        elf_files=native.elfs,
    )


# --- sdists ------------------------------------------------------------------------------------


def _sdist_stem(filename: str) -> str:
    for suffix in _SDIST_SUFFIXES:
        if filename.lower().endswith(suffix):
            return filename[: -len(suffix)]
    return filename


def _pick_pkg_info(
    filename: str, found: dict[str, bytes | Exception]
) -> tuple[str | None, bytes | Exception]:
    if not found:
        return None, b""
    stem = _sdist_stem(filename)
    top = stem if stem in found else next(iter(found))
    return top, found[top]


def _sdist_facts(
    data: bytes, filename: str, pkg_infos: dict[str, bytes | Exception], found: list[Finding]
) -> Facts:
    top, content = _pick_pkg_info(filename, pkg_infos)
    metadata: CoreMetadataFacts | None
    if top is None:
        metadata = None
    elif isinstance(content, Exception):
        metadata = CoreMetadataFacts(source="sdist", errors=(f"cannot read PKG-INFO: {content}",))
    else:
        metadata = parse_core_metadata(content, "sdist")
    found += check_consistency(filename, top, metadata)
    return _facts(data, filename, "sdist", found, metadata=metadata)


def _link_target_escapes(member: tarfile.TarInfo) -> bool:
    if member.linkname.startswith("/") or _DRIVE.match(member.linkname):
        return True
    # Symlinks resolve against their own directory, hard links against the archive root.
    base = posixpath.dirname(member.name) if member.issym() else ""
    target = posixpath.normpath(posixpath.join(base, member.linkname))
    return target == ".." or target.startswith("../")


def _tar_member_findings(member: tarfile.TarInfo) -> list[Finding]:
    found: list[Finding] = []
    reason = path_escape_reason(member.name)
    if reason is not None:
        found.append(Finding("path-escape", "error", f"member name {reason}", member.name))
    if (member.issym() or member.islnk()) and _link_target_escapes(member):
        found.append(
            Finding(
                "path-escape", "error", f"link to {member.linkname!r} points outside the archive", member.name
            )
        )
    elif member.issym():
        found.append(Finding("symlink", "warning", f"symbolic link to {member.linkname!r}", member.name))
    if member.ischr() or member.isblk() or member.isfifo():
        found.append(Finding("special-file", "error", "device or FIFO member", member.name))
    return found


def _tar_members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    # One header at a time (next() hands out the member open() already read first), so the scan
    # can stop before the next header forces inflating the current member's data.
    member = archive.next()
    while member is not None:
        yield member
        member = archive.next()


@dataclass(slots=True)
class _TarScan:
    findings: list[Finding] = field(default_factory=list)
    pkg_infos: dict[str, bytes | Exception] = field(default_factory=dict)
    total: int = 0
    count: int = 0


def _read_tar_pkg_info(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | Exception:
    if member.size > MAX_TEXT_BYTES:
        return MemberTooLarge(f"{member.name}: {member.size} bytes (cap {MAX_TEXT_BYTES})")
    stream = archive.extractfile(member)
    return b"" if stream is None else stream.read()


def _over_budget(scan: _TarScan) -> Finding | None:
    if scan.count > MAX_MEMBERS:
        return Finding("zip-bomb", "error", f"more than {MAX_MEMBERS} members")
    if scan.total > MAX_TOTAL_UNCOMPRESSED:
        return Finding("zip-bomb", "error", f"expands to more than {MAX_TOTAL_UNCOMPRESSED} bytes")
    return None


def _scan_tar(archive: tarfile.TarFile, scan: _TarScan) -> None:
    for member in _tar_members(archive):
        scan.count += 1
        scan.total += member.size
        scan.findings += _tar_member_findings(member)
        # Some old sdist tools wrote "./name-version/..." member names.
        match = _PKG_INFO.match(member.name.removeprefix("./"))
        if match is not None and member.isfile() and match.group(1) not in scan.pkg_infos:
            scan.pkg_infos[match.group(1)] = _read_tar_pkg_info(archive, member)
        bomb = _over_budget(scan)
        if bomb is not None:
            # Stop before asking for the next header, which would inflate this member's data.
            scan.findings.append(bomb)
            return


def _tar_failure(error: Exception, scan: _TarScan) -> Finding:
    if isinstance(error, tarfile.ReadError) and scan.count == 0:
        return Finding("not-a-tar", "error", f"not a gzipped tar archive: {error}")
    # The gzip stream or a header ended early: the file was cut short (or corrupted).
    return Finding("truncated-tar", "error", f"{type(error).__name__}: {error}")


def _analyze_tar_sdist(data: bytes, filename: str) -> Facts:
    scan = _TarScan()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            _scan_tar(archive, scan)
    except _TAR_READ_ERRORS as error:
        scan.findings.append(_tar_failure(error, scan))
        if not scan.pkg_infos:
            # Unreadable before PKG-INFO came by: "missing metadata" would blame the wrong thing.
            return _facts(data, filename, "sdist", scan.findings)
    return _sdist_facts(data, filename, scan.pkg_infos, scan.findings)


def _zip_pkg_infos(files: ZipFiles) -> dict[str, bytes | Exception]:
    found: dict[str, bytes | Exception] = {}
    for name in files:
        match = _PKG_INFO.match(name)
        if match is None:
            continue
        try:
            found[match.group(1)] = files.read(name, cap=MAX_TEXT_BYTES)
        except READ_ERRORS as error:
            found[match.group(1)] = error
    return found


def _analyze_zip_sdist(data: bytes, filename: str) -> Facts:
    _, found = inspect_archive(data)
    archive = _open_zip(data)
    if archive is None:
        return _facts(data, filename, "sdist", found)
    with archive:
        pkg_infos = _zip_pkg_infos(ZipFiles(archive))
    return _sdist_facts(data, filename, pkg_infos, found)


# --- entry point -------------------------------------------------------------------------------


def _analyze_bytes(data: bytes, filename: str) -> Facts:
    kind = _kind_of(filename)
    if kind == "wheel":
        return _analyze_wheel(data, filename)
    if kind == "sdist":
        zipped = filename.lower().endswith(".zip")
        return _analyze_zip_sdist(data, filename) if zipped else _analyze_tar_sdist(data, filename)
    finding = Finding("not-a-distribution", "error", "not a .whl, .tar.gz or .zip file name")
    return _facts(data, filename, "unknown", [finding])


def _display_name(source: bytes | str | os.PathLike[str], filename: str | None) -> str:
    if filename is not None:
        return filename
    if isinstance(source, bytes):
        return "<bytes>"
    return Path(source).name


def _kind_of(filename: str) -> Kind:
    lowered = filename.lower()
    if lowered.endswith(".whl"):
        return "wheel"
    return "sdist" if lowered.endswith(_SDIST_SUFFIXES) else "unknown"


def _failed(filename: str, data: bytes | None, error: Exception) -> Facts:
    finding = Finding("analysis-failed", "error", f"{type(error).__name__}: {error}")
    return Facts(
        filename=filename,
        sha256="" if data is None else _digest(data),
        size=0 if data is None else len(data),
        kind=_kind_of(filename),
        findings=(finding,),
    )


def analyze(source: bytes | str | os.PathLike[str], filename: str | None = None) -> Facts:
    """Analyse one wheel or sdist given as bytes or as a path; never raises.

    ``filename`` is the distribution's file name (what decides wheel/sdist and carries the name,
    version and tags); it defaults to the path's base name, and bytes without it are "unknown".
    A path is read whole (the compressed archive); members are inflated one at a time.
    """
    name = filename if filename is not None else "<unknown>"
    data: bytes | None = None
    try:
        name = _display_name(source, filename)
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        return _analyze_bytes(data, name)
    except Exception as error:  # the contract: every failure is a finding, nothing escapes
        return _failed(name, data, error)
