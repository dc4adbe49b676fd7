"""ELF facts from the bytes of one file: architecture, DT_NEEDED, versioned-symbol needs, ISA notes.

A self-contained reader (``struct`` only) for ELF32/ELF64 in either byte order. It reads what an
index needs to judge a binary without loading it:

* ``e_machine`` (with class and byte order) as the wheel-tag architecture name;
* ``DT_NEEDED`` sonames, from ``.dynamic`` or, for files without section headers, ``PT_DYNAMIC``;
* the ``.gnu.version_r`` (verneed) version names such as ``GLIBC_2.34`` or ``GLIBCXX_3.4.29``,
  grouped by the prefix before their last ``_`` (``GLIBC_PRIVATE`` is skipped: no policy allows it
  and no release defines it as a version);
* ``.note.gnu.property``: ``GNU_PROPERTY_X86_ISA_1_NEEDED`` (the x86-64 level the loader enforces)
  and ``GNU_PROPERTY_X86_FEATURE_2_NEEDED``;
* runtime-dispatch evidence: ``STT_GNU_IFUNC`` symbols ("ifunc") and symbols of libgcc's CPU model
  (``__cpu_model``/``__cpu_indicator_init``, behind ``__builtin_cpu_supports``: "cpu-model");
* for x86-64, the executable sections handed to :func:`analyzers.isa.scan_x86_64`.

Anything inconsistent (truncation, offsets past the end, loops in the verneed chain) yields a
``corrupt-elf`` :class:`Finding` instead of an exception.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from analyzers.facts import ElfFacts, Finding
from analyzers.isa import scan_x86_64

__all__ = ["analyze_elf"]

_MAGIC = b"\x7fELF"
_ELFCLASS32, _ELFCLASS64 = 1, 2
_ELFDATA2LSB, _ELFDATA2MSB = 1, 2

_EM_386, _EM_PPC, _EM_PPC64, _EM_S390, _EM_ARM = 3, 20, 21, 22, 40
_EM_X86_64, _EM_AARCH64, _EM_RISCV, _EM_LOONGARCH = 62, 183, 243, 258

_SHT_SYMTAB, _SHT_DYNAMIC, _SHT_NOTE, _SHT_NOBITS, _SHT_DYNSYM = 2, 6, 7, 8, 11
_SHT_GNU_VERNEED = 0x6FFFFFFE
_SHF_EXECINSTR = 0x4
_PT_LOAD, _PT_DYNAMIC, _PT_NOTE, _PT_GNU_PROPERTY = 1, 2, 4, 0x6474E553
_PF_X = 0x1
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ = 0, 1, 5, 10
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
_SHN_XINDEX = 0xFFFF

_NT_GNU_PROPERTY_TYPE_0 = 5
_GNU_PROPERTY_X86_FEATURE_2_NEEDED = 0xC0008001
_GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002
_ISA_LEVEL_BITS = (("x86_64", 1), ("x86_64_v2", 2), ("x86_64_v3", 4), ("x86_64_v4", 8))
_FEATURE_2_BITS = (
    ("x86", 1 << 0),
    ("x87", 1 << 1),
    ("mmx", 1 << 2),
    ("xmm", 1 << 3),
    ("ymm", 1 << 4),
    ("zmm", 1 << 5),
    ("fxsr", 1 << 6),
    ("xsave", 1 << 7),
    ("xsaveopt", 1 << 8),
    ("xsavec", 1 << 9),
    ("tmm", 1 << 10),
    ("mask", 1 << 11),
)
_STT_GNU_IFUNC = 10
# Any st_info byte whose type nibble is STT_GNU_IFUNC, whatever the binding in the high nibble.
_IFUNC_INFO = re.compile(
    b"[" + b"".join(re.escape(bytes([b << 4 | _STT_GNU_IFUNC])) for b in range(16)) + b"]"
)
_CPU_MODEL_SYMBOLS = (b"\x00__cpu_model\x00", b"\x00__cpu_indicator_init\x00")
_IGNORED_VERSIONS = frozenset({"GLIBC_PRIVATE"})
# Far more than any real file holds; a count beyond it comes from a corrupt header.
_MAX_ENTRIES = 1 << 20


class _CorruptElf(Exception):
    """Raised inside the parser; turned into a ``corrupt-elf`` finding at the public boundary."""


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


@dataclass(frozen=True, slots=True)
class _Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    align: int


class _Reader:
    """Bounds-checked, byte-order-aware access to the file."""

    def __init__(self, data: bytes, is64: bool, little: bool) -> None:
        self.data = data
        self.is64 = is64
        self.order = "<" if little else ">"

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        if offset < 0:
            raise _CorruptElf(f"negative offset {offset}")
        try:
            return struct.unpack_from(self.order + fmt, self.data, offset)
        except struct.error as exc:
            raise _CorruptElf(f"truncated at offset {offset}") from exc

    def slice(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise _CorruptElf(f"range {offset}+{size} outside the file ({len(self.data)} bytes)")
        return self.data[offset : offset + size]

    def cstring(self, table: bytes, offset: int) -> str:
        end = table.find(b"\x00", offset)
        if offset < 0 or offset >= len(table) or end < 0:
            raise _CorruptElf(f"string offset {offset} outside its table")
        return table[offset:end].decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class _Elf:
    reader: _Reader
    machine: int
    sections: tuple[_Section, ...]
    segments: tuple[_Segment, ...]


def analyze_elf(data: bytes, path: str) -> ElfFacts | Finding:
    """Facts about one ELF file, or a ``corrupt-elf`` finding when the bytes are not a readable ELF."""
    try:
        return _analyze(data, path)
    except _CorruptElf as exc:
        return Finding("corrupt-elf", "error", f"unreadable ELF file: {exc}", path)
    except (struct.error, IndexError, ValueError, OverflowError) as exc:  # a case the checks missed
        return Finding("corrupt-elf", "error", f"unreadable ELF file: {exc!r}", path)


def _analyze(data: bytes, path: str) -> ElfFacts:
    elf = _parse(data)
    machine = _machine_name(elf.machine, elf.reader.is64, elf.reader.order == "<")
    needed, verneed = _dynamic_needs(elf)
    isa_note, note_features = _isa_note(elf)
    features: frozenset[str] = frozenset()
    dispatch = set(_symbol_dispatch_evidence(elf))
    if machine == "x86_64":
        for code in _executable_code(elf):
            observed, evidence = scan_x86_64(code)
            features |= observed
            dispatch |= evidence
    return ElfFacts(
        path=path,
        machine=machine,
        elf_class=64 if elf.reader.is64 else 32,
        needed=needed,
        symbol_versions=_group_versions(verneed),
        isa_note=isa_note,
        isa_note_features=note_features,
        features_observed=tuple(sorted(features)),
        dispatch_evidence=tuple(sorted(dispatch)),
    )


# --- headers --------------------------------------------------------------------------------------------


def _parse(data: bytes) -> _Elf:
    if not data.startswith(_MAGIC):
        raise _CorruptElf("no ELF magic" if data else "empty file")
    if len(data) < 16:
        raise _CorruptElf("truncated ELF identification")
    elf_class, encoding = data[4], data[5]
    if elf_class not in (_ELFCLASS32, _ELFCLASS64) or encoding not in (_ELFDATA2LSB, _ELFDATA2MSB):
        raise _CorruptElf(f"unknown ELF class {elf_class} or data encoding {encoding}")
    reader = _Reader(data, elf_class == _ELFCLASS64, encoding == _ELFDATA2LSB)
    # e_entry, e_phoff and e_shoff are the only header fields whose width follows the class.
    header = "HIQQQIHHHHHH" if reader.is64 else "HIIIIIHHHHHH"
    (
        machine,
        _version,
        _entry,
        phoff,
        shoff,
        _flags,
        _ehsize,
        phentsize,
        phnum,
        shentsize,
        shnum,
        shstrndx,
    ) = reader.unpack(header, 18)
    segments = _segments(reader, phoff, phentsize, phnum)
    sections = _sections(reader, shoff, shentsize, shnum, shstrndx)
    return _Elf(reader, machine, sections, segments)


def _segments(reader: _Reader, phoff: int, phentsize: int, phnum: int) -> tuple[_Segment, ...]:
    if not phoff or not phnum:
        return ()
    if phentsize < (56 if reader.is64 else 32):
        raise _CorruptElf(f"program header entry size {phentsize} too small")
    segments = []
    for index in range(phnum):
        at = phoff + index * phentsize
        if reader.is64:
            p_type, p_flags, offset, vaddr, _paddr, filesz, _memsz, align = reader.unpack("IIQQQQQQ", at)
        else:
            p_type, offset, vaddr, _paddr, filesz, _memsz, p_flags, align = reader.unpack("IIIIIIII", at)
        segments.append(_Segment(p_type, p_flags, offset, vaddr, filesz, align))
    return tuple(segments)


def _sections(reader: _Reader, shoff: int, shentsize: int, shnum: int, shstrndx: int) -> tuple[_Section, ...]:
    if not shoff:
        return ()
    if shentsize < (64 if reader.is64 else 40):
        raise _CorruptElf(f"section header entry size {shentsize} too small")
    first = _raw_section(reader, shoff)
    if shnum == 0:  # extended numbering: the real count is in section 0
        shnum = first[5]
    if shstrndx == _SHN_XINDEX:
        shstrndx = first[6]
    if shnum > _MAX_ENTRIES or shoff + shnum * shentsize > len(reader.data):
        raise _CorruptElf(f"{shnum} section headers do not fit in the file")
    raw = [_raw_section(reader, shoff + index * shentsize) for index in range(shnum)]
    names = b""
    if 0 < shstrndx < shnum:
        _n, _t, _f, _a, name_offset, name_size, *_rest = raw[shstrndx]
        names = reader.slice(name_offset, name_size)
    return tuple(_Section(reader.cstring(names, name) if names else "", *fields) for name, *fields in raw)


def _raw_section(reader: _Reader, at: int) -> tuple[int, ...]:
    """(name, type, flags, addr, offset, size, link, info, addralign, entsize) of one header."""
    if reader.is64:
        return reader.unpack("IIQQQQIIQQ", at)
    return reader.unpack("IIIIIIIIII", at)


def _machine_name(machine: int, is64: bool, little: bool) -> str:
    names = {
        _EM_X86_64: "x86_64",
        _EM_AARCH64: "aarch64",
        _EM_386: "i686",
        _EM_PPC64: "ppc64le" if little else "ppc64",
        _EM_PPC: "ppc",
        _EM_S390: "s390x" if is64 else "s390",
        _EM_ARM: "armv7l",
        _EM_RISCV: "riscv64" if is64 else "riscv32",
        _EM_LOONGARCH: "loongarch64",
    }
    return names.get(machine, f"unknown-{machine}")


# --- dynamic section and verneed ---------------------------------------------------------------------


def _file_offset(elf: _Elf, vaddr: int) -> int:
    """Where a virtual address of a loaded segment lives in the file (for files without sections)."""
    for segment in elf.segments:
        if segment.type == _PT_LOAD and segment.vaddr <= vaddr < segment.vaddr + segment.filesz:
            return segment.offset + (vaddr - segment.vaddr)
    raise _CorruptElf(f"address {vaddr:#x} is in no loaded segment")


def _dynamic_entries(elf: _Elf) -> tuple[list[tuple[int, int]], bytes]:
    """The (tag, value) pairs of the dynamic table and its string table."""
    section = next((s for s in elf.sections if s.type == _SHT_DYNAMIC), None)
    if section is not None:
        table = elf.reader.slice(section.offset, section.size)
        strings_section = elf.sections[section.link] if section.link < len(elf.sections) else None
    else:
        segment = next((s for s in elf.segments if s.type == _PT_DYNAMIC), None)
        if segment is None:
            return [], b""
        table = elf.reader.slice(segment.offset, segment.filesz)
        strings_section = None
    fmt, size = ("qQ", 16) if elf.reader.is64 else ("iI", 8)
    entries = []
    for at in range(0, len(table) - size + 1, size):
        tag, value = struct.unpack_from(elf.reader.order + fmt, table, at)
        if tag == _DT_NULL:
            break
        entries.append((tag, value))
    if strings_section is not None:
        return entries, elf.reader.slice(strings_section.offset, strings_section.size)
    values = dict(entries)
    if _DT_STRTAB not in values:
        return entries, b""
    return entries, elf.reader.slice(_file_offset(elf, values[_DT_STRTAB]), values.get(_DT_STRSZ, 0))


def _dynamic_needs(elf: _Elf) -> tuple[tuple[str, ...], list[str]]:
    """DT_NEEDED sonames (in order, once each) and the version names of the verneed table."""
    entries, strings = _dynamic_entries(elf)
    needed = tuple(
        dict.fromkeys(elf.reader.cstring(strings, value) for tag, value in entries if tag == _DT_NEEDED)
    )
    return needed, list(_verneed_names(elf, dict(entries), strings))


def _verneed_names(elf: _Elf, dynamic: dict[int, int], dynamic_strings: bytes) -> Iterator[str]:
    section = next((s for s in elf.sections if s.type == _SHT_GNU_VERNEED), None)
    if section is not None:
        table_offset, count = section.offset, section.info
        linked = elf.sections[section.link] if section.link < len(elf.sections) else None
        strings = elf.reader.slice(linked.offset, linked.size) if linked else dynamic_strings
    elif _DT_VERNEED in dynamic:
        table_offset, count = _file_offset(elf, dynamic[_DT_VERNEED]), dynamic.get(_DT_VERNEEDNUM, 0)
        strings = dynamic_strings
    else:
        return
    for at in _chain(elf, table_offset, count):
        _version, aux_count, _file, aux_offset, _next = elf.reader.unpack("HHIII", at)
        for aux_at in _chain(elf, at + aux_offset, aux_count):
            _hash, _flags, _other, name, _next = elf.reader.unpack("IHHII", aux_at)
            yield elf.reader.cstring(strings, name)


def _chain(elf: _Elf, first: int, count: int) -> Iterator[int]:
    """Offsets of a verneed (or vernaux) list: ``count`` entries linked by the relative ``next`` field
    both structures keep at offset 12. A zero ``next`` ends the list early; as offsets only grow, a
    corrupt list runs off the end of the file rather than looping."""
    if count > _MAX_ENTRIES:
        raise _CorruptElf(f"version list of {count} entries is implausible")
    at = first
    for _ in range(count):
        yield at
        (next_offset,) = elf.reader.unpack("I", at + 12)
        if next_offset == 0:
            return
        at += next_offset


def _version_key(version: str) -> tuple[int, tuple[int, ...], str]:
    """Numeric order for dotted versions; anything else (``FLOAT128``) after them, alphabetically."""
    parts = version.split(".")
    if all(part.isdigit() for part in parts):
        return (0, tuple(int(part) for part in parts), "")
    return (1, (), version)


def _group_versions(names: list[str]) -> dict[str, tuple[str, ...]]:
    groups: dict[str, set[str]] = {}
    for name in names:
        if name in _IGNORED_VERSIONS or "_" not in name:
            continue  # unversioned names (a private library's own soname) carry no policy meaning
        prefix, _, version = name.rpartition("_")
        groups.setdefault(prefix, set()).add(version)
    return {prefix: tuple(sorted(versions, key=_version_key)) for prefix, versions in sorted(groups.items())}


# --- property notes -------------------------------------------------------------------------------------


def _note_blobs(elf: _Elf) -> Iterator[tuple[bytes, int]]:
    """(contents, alignment) of every note section, or of the note segments without sections."""
    notes = [s for s in elf.sections if s.type == _SHT_NOTE]
    if notes:
        for section in notes:
            yield elf.reader.slice(section.offset, section.size), section.addralign
        return
    for segment in elf.segments:
        if segment.type in (_PT_NOTE, _PT_GNU_PROPERTY):
            yield elf.reader.slice(segment.offset, segment.filesz), segment.align


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) & ~(alignment - 1)


def _gnu_properties(elf: _Elf) -> Iterator[tuple[int, bytes]]:
    """(pr_type, pr_data) of every property in NT_GNU_PROPERTY_TYPE_0 notes owned by "GNU"."""
    order = elf.reader.order
    for blob, section_align in _note_blobs(elf):
        alignment = 8 if section_align == 8 else 4
        at = 0
        while at + 12 <= len(blob):
            name_size, desc_size, note_type = struct.unpack_from(order + "III", blob, at)
            name_end = at + 12 + name_size
            desc_start = _align(name_end, alignment)
            desc_end = desc_start + desc_size
            if desc_end > len(blob):
                raise _CorruptElf("note runs past its section")
            if note_type == _NT_GNU_PROPERTY_TYPE_0 and blob[at + 12 : name_end] == b"GNU\x00":
                yield from _properties(blob[desc_start:desc_end], order, 8 if elf.reader.is64 else 4)
            at = _align(desc_end, alignment)


def _properties(desc: bytes, order: str, alignment: int) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at + 8 <= len(desc):
        pr_type, size = struct.unpack_from(order + "II", desc, at)
        data_end = at + 8 + size
        if data_end > len(desc):
            raise _CorruptElf("GNU property runs past its note")
        yield pr_type, desc[at + 8 : data_end]
        at = _align(data_end, alignment)


def _isa_note(elf: _Elf) -> tuple[str | None, tuple[str, ...]]:
    """The level of GNU_PROPERTY_X86_ISA_1_NEEDED (highest bit) and the names the note sets."""
    level: str | None = None
    named: list[str] = []
    for pr_type, pr_data in _gnu_properties(elf):
        if (
            pr_type not in (_GNU_PROPERTY_X86_ISA_1_NEEDED, _GNU_PROPERTY_X86_FEATURE_2_NEEDED)
            or len(pr_data) < 4
        ):
            continue
        (bits,) = struct.unpack_from(elf.reader.order + "I", pr_data)
        if pr_type == _GNU_PROPERTY_X86_ISA_1_NEEDED:
            levels = [name for name, bit in _ISA_LEVEL_BITS if bits & bit]
            named.extend(levels)
            level = levels[-1] if levels else level
        else:
            named.extend(name for name, bit in _FEATURE_2_BITS if bits & bit)
    return level, tuple(dict.fromkeys(named))


# --- symbols and code -----------------------------------------------------------------------------------


def _symbol_dispatch_evidence(elf: _Elf) -> Iterator[str]:
    """ "ifunc" for any STT_GNU_IFUNC symbol; "cpu-model" when libgcc's CPU model is referenced."""
    info_offset, default_size = (4, 24) if elf.reader.is64 else (12, 16)
    ifunc = cpu_model = False
    for section in elf.sections:
        if section.type not in (_SHT_SYMTAB, _SHT_DYNSYM):
            continue
        table = elf.reader.slice(section.offset, section.size)
        # Only the st_info bytes, taken with a stride: no Python loop over (possibly) millions of symbols.
        ifunc = ifunc or bool(_IFUNC_INFO.search(table[info_offset :: section.entsize or default_size]))
        if section.link < len(elf.sections):
            names = elf.sections[section.link]
            strings = elf.reader.slice(names.offset, names.size)
            cpu_model = cpu_model or any(symbol in strings for symbol in _CPU_MODEL_SYMBOLS)
    if ifunc:
        yield "ifunc"
    if cpu_model:
        yield "cpu-model"


def _executable_code(elf: _Elf) -> Iterator[bytes]:
    """Each executable section (or executable loaded segment when there are no sections)."""
    if elf.sections:
        for section in elf.sections:
            if section.flags & _SHF_EXECINSTR and section.type != _SHT_NOBITS:
                yield elf.reader.slice(section.offset, section.size)
        return
    for segment in elf.segments:
        if segment.type == _PT_LOAD and segment.flags & _PF_X:
            yield elf.reader.slice(segment.offset, segment.filesz)
