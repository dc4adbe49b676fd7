"""x86-64 instruction-set extensions seen in machine code: an advisory byte-pattern scan.

:func:`scan_x86_64` looks for instructions whose encoding alone proves an extension: VEX (``C4``/``C5``)
and EVEX (``62``) prefixed instructions, the legacy SSSE3/SSE4 ``66 0F 38``/``66 0F 3A`` maps, POPCNT,
LZCNT, MOVBE, and the dispatch instructions CPUID and XGETBV. :func:`level_of` maps features to the
x86-64 psABI microarchitecture levels.

How it stays fast: each feature is a few compiled regular expressions that start with a literal byte,
so the C regex engine does the sweep; Python only looks at candidate matches, and stops looking for a
feature once it is confirmed.

How it stays (mostly) honest: a byte pattern is a candidate only when the opcode is one that the
feature defines for that prefix, map, ``pp``, ``L`` and ``W``. A candidate is then confirmed only if it
lies on an instruction boundary: a small length decoder re-decodes the bytes before it from several
starting points and, x86 decoding being self-synchronising, the majority converges on the boundaries
of the real instruction stream; the decoder also rejects encodings that do not exist (unknown VEX
opcodes, register-only forms with a memory operand...), which kills wrong phases early. Bytes of an
immediate, a displacement or a ModRM that merely look like a VEX prefix fall inside an instruction
and are rejected. Checked against ``objdump`` on ~600 Debian and PyPI binaries, one confirmed sighting
per feature gave neither a false positive nor a miss.

Limits (this is not a disassembler):

* A linear sweep: data or jump tables inside executable sections can still decode as instructions,
  and periodic byte runs can fool the boundary vote.
* Presence is not need. Code behind runtime dispatch (CPUID checks, ifuncs, ``target_clones``) is
  reported as observed although a baseline CPU never runs it; callers weigh the dispatch evidence.
* Absence is not proof: JIT-generated code (oneDNN, LLVM) and encodings not listed here are invisible;
  SSE3, CMPXCHG16B and LAHF are not detected, and AVX-512 is reported as ``avx512f`` only (its
  BW/DQ/VL sub-features need opcode tables this scan does not carry).
* The 64-bit decoding rules are used: 32-bit code (i686) must not be scanned with this.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

__all__ = ["LEVELS", "level_of", "scan_x86_64"]

LEVELS: tuple[str, ...] = ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4")

# psABI levels (x86-64 psABI; glibc sysdeps/x86/get-isa-level.h). Levels are cumulative, so a single
# feature of a level makes that level the lowest one guaranteeing it (AVX alone already excludes v2).
_V2_FEATURES = frozenset({"cx16", "lahf_lm", "popcnt", "sse3", "ssse3", "sse4_1", "sse4_2"})
_V3_FEATURES = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"})


def level_of(features: Iterable[str]) -> str:
    """The lowest x86-64 level providing every feature; level names themselves are accepted too."""
    rank = 0
    for feature in features:
        name = feature.lower()
        if name in LEVELS:
            rank = max(rank, LEVELS.index(name))
        elif name.startswith("avx512"):
            rank = 3
        elif name in _V3_FEATURES:
            rank = max(rank, 2)
        elif name in _V2_FEATURES:
            rank = max(rank, 1)
    return LEVELS[rank]


# --- opcode tables ------------------------------------------------------------------------------------


def _span(first: int, last: int) -> set[int]:
    return set(range(first, last + 1))


# Map 0F opcodes VEX defines (SSE..SSE4 promoted to VEX, vzeroupper/vzeroall 77, ldmxcsr AE).
_VEX_0F_OPS = frozenset(
    _span(0x10, 0x17) | _span(0x28, 0x2F) | (_span(0x50, 0x7F) - _span(0x78, 0x7B)) | _span(0xD0, 0xFE)
) | {0xAE, 0xC2, 0xC4, 0xC5, 0xC6}
_AVX_0F38_OPS = (
    frozenset(
        _span(0x00, 0x0F)
        | {0x13}
        | _span(0x16, 0x1A)
        | _span(0x1C, 0x1E)
        | _span(0x20, 0x25)
        | _span(0x28, 0x2F)
    )
    | (
        _span(0x30, 0x41)
        | _span(0x45, 0x47)
        | _span(0x50, 0x53)
        | _span(0x58, 0x5A)
        | {0x78, 0x79, 0x8C, 0x8E}
    )
    | (
        _span(0x90, 0x93)
        | _span(0x96, 0x9F)
        | _span(0xA6, 0xAF)
        | _span(0xB6, 0xBF)
        | {0xCF}
        | _span(0xDB, 0xDF)
    )
)
_AVX_0F3A_OPS = frozenset(
    _span(0x00, 0x02) | _span(0x04, 0x06) | _span(0x08, 0x0F) | _span(0x14, 0x19) | {0x1D} | _span(0x20, 0x22)
) | ({0x38, 0x39, 0x40, 0x41, 0x42, 0x44, 0x46, 0x4A, 0x4B, 0x4C} | _span(0x60, 0x63) | {0xCE, 0xCF, 0xDF})
# Integer SIMD in map 0F (pp=66): with VEX.L=1 these exist only from AVX2 on (vmovdqa/u, movntdq and
# lddqu are AVX1 and left out).
_AVX2_0F_INT = frozenset(
    _span(0x60, 0x6D) | _span(0x70, 0x76) | _span(0xD1, 0xD5) | _span(0xD7, 0xDF) | _span(0xE0, 0xE5)
) | (_span(0xE8, 0xEF) | _span(0xF1, 0xF6) | _span(0xF8, 0xFE))
# Map 0F38 (pp=66): opcodes only AVX2 defines (any length), and integer ops AVX2 widened to L=1.
_AVX2_0F38_ANY_L = frozenset(
    {0x16, 0x36, 0x45, 0x46, 0x47, 0x58, 0x59, 0x5A, 0x78, 0x79, 0x8C, 0x8E}
) | _span(0x90, 0x93)
_AVX2_0F38_L1 = frozenset(
    _span(0x00, 0x0B) | _span(0x1C, 0x1E) | _span(0x20, 0x25) | _span(0x28, 0x2B) | _span(0x30, 0x35)
) | _span(0x37, 0x40)
_AVX2_0F3A_ANY_L = frozenset({0x00, 0x01, 0x02, 0x38, 0x39, 0x46})
_AVX2_0F3A_L1 = frozenset({0x0E, 0x0F, 0x42, 0x4C})
_FMA_OPS = frozenset(_span(0x96, 0x9F) | _span(0xA6, 0xAF) | _span(0xB6, 0xBF))
# What a decoder accepts per VEX map: the AVX tables plus AVX-512 mask ops (VEX-encoded), BMI, AMX.
_VEX_VALID: dict[int, frozenset[int]] = {
    1: _VEX_0F_OPS | {0x41, 0x42, 0x44, 0x45, 0x46, 0x47, 0x4A, 0x4B, 0x90, 0x91, 0x92, 0x93, 0x98, 0x99},
    2: _AVX_0F38_OPS | {0x49, 0x4B, 0x5C, 0x5E, 0x6C, 0x6E, 0xB0, 0xB1, 0xB4, 0xB5} | _span(0xF2, 0xF7),
    3: _AVX_0F3A_OPS | {0x30, 0x31, 0x32, 0x33, 0xF0},
}
# Forms that exist only with a register (ModRM.mod=11) or only with a memory operand, per VEX map.
_VEX_REGISTER_ONLY: dict[int, frozenset[int]] = {1: frozenset({0x50, 0x71, 0x72, 0x73, 0xC5, 0xD7, 0xF7})}
_VEX_MEMORY_ONLY: dict[int, frozenset[int]] = {
    1: frozenset({0x13, 0x17, 0x2B, 0xAE, 0xE7, 0xF0}),
    2: frozenset({0x1A, 0x2A, 0x2C, 0x2D, 0x2E, 0x2F, 0x5A, 0x8C, 0x8E, 0x90, 0x91, 0x92, 0x93}),
}
# Map-1 VEX/EVEX opcodes followed by an imm8 (map 3 always has one, map 2 never).
_VEX_0F_IMM8 = frozenset({0x70, 0x71, 0x72, 0x73, 0xC2, 0xC4, 0xC5, 0xC6})

_LEGACY_PREFIXES = frozenset({0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3})
# Immediate kinds of the one-byte map.
_NO_IMM, _IMM8, _IMM16, _IMMZ, _ENTER, _MOFFS, _IMMV, _GRP3_8, _GRP3_Z, _REL32 = range(10)
_FIXED_IMMEDIATE = {_IMM8: 1, _IMM16: 2, _ENTER: 3, _REL32: 4}


def _one_byte_map() -> tuple[tuple[bool, ...], tuple[int, ...]]:
    has_modrm = [False] * 256
    imm = [_NO_IMM] * 256
    for op in range(0x40):  # the eight ALU groups: r/m forms, then AL,imm8 and eAX,immz
        has_modrm[op] = op & 7 < 4
        imm[op] = {4: _IMM8, 5: _IMMZ}.get(op & 7, _NO_IMM)
    for op in {0x63, 0x69, 0x6B, 0xC0, 0xC1, 0xC6, 0xC7, 0xF6, 0xF7, 0xFE, 0xFF} | _span(0x80, 0x8F):
        has_modrm[op] = True
    for op in _span(0xD0, 0xD3) | _span(0xD8, 0xDF):
        has_modrm[op] = True
    for op in {0x6A, 0x6B, 0x80, 0x83, 0xA8, 0xC0, 0xC1, 0xC6, 0xCD, 0xEB} | _span(0x70, 0x7F):
        imm[op] = _IMM8
    for op in _span(0xB0, 0xB7) | _span(0xE0, 0xE7):
        imm[op] = _IMM8
    for op in (0x68, 0x69, 0x81, 0xA9, 0xC7):
        imm[op] = _IMMZ
    for op in _span(0xA0, 0xA3):
        imm[op] = _MOFFS
    for op in _span(0xB8, 0xBF):
        imm[op] = _IMMV
    imm[0xC2] = imm[0xCA] = _IMM16
    imm[0xC8] = _ENTER
    imm[0xE8] = imm[0xE9] = _REL32
    imm[0xF6], imm[0xF7] = _GRP3_8, _GRP3_Z
    return tuple(has_modrm), tuple(imm)


_ONE_BYTE_MODRM, _ONE_BYTE_IMM = _one_byte_map()
# Opcodes that do not exist in 64-bit mode (0x62/C4/C5 are the EVEX/VEX escapes, decoded apart).
_ONE_BYTE_INVALID = frozenset(
    {0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x60, 0x61, 0x82, 0x9A}
) | {0xCE, 0xD4, 0xD5, 0xD6, 0xEA}
_0F_NO_MODRM = frozenset(
    {0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0E, 0x77, 0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA}
) | (_span(0x30, 0x37) | _span(0xC8, 0xCF))
_0F_IMM8 = frozenset({0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6})
_0F_INVALID = frozenset({0x04, 0x0A, 0x0C, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F})


# --- a length decoder for 64-bit mode, used only to find instruction boundaries ------------------------


def _modrm_table() -> tuple[int, ...]:
    """Bytes taken by each ModRM value with its SIB and displacement (SIB base 101 aside)."""
    lengths = []
    for modrm in range(256):
        mod, rm = modrm >> 6, modrm & 7
        length = 1 + (mod != 3 and rm == 4) + {0: 0, 1: 1, 2: 4, 3: 0}[mod]
        lengths.append(length + 4 if mod == 0 and rm == 5 else length)  # RIP-relative
    return tuple(lengths)


_MODRM_LENGTH = _modrm_table()


def _modrm_length(code: bytes, i: int) -> int:
    """Bytes taken by the ModRM at ``i`` with its SIB and displacement."""
    modrm = code[i]
    if modrm & 0xC7 == 0x04 and code[i + 1] & 7 == 5:
        return 6  # SIB without base: disp32
    return _MODRM_LENGTH[modrm]


def _vex_tail(code: bytes, i: int, vex_map: int) -> int:
    """Length of opcode, ModRM and immediate of a VEX/EVEX instruction whose opcode is at ``i``."""
    opcode = code[i]
    if vex_map == 1 and opcode == 0x77:
        return 1  # vzeroupper / vzeroall take no ModRM
    length = 1 + _modrm_length(code, i + 1)
    if vex_map == 3 or (vex_map == 1 and opcode in _VEX_0F_IMM8):
        length += 1
    return length


def _variable_immediate(kind: int, modrm: int, opsize16: bool, addr32: bool, rex_w: bool) -> int:
    """Immediate bytes whose size depends on prefixes or on the ModRM (group 3)."""
    if kind in (_GRP3_8, _GRP3_Z) and (modrm >> 3) & 7 > 1:
        return 0  # only TEST (/0, /1) of group 3 carries an immediate
    if kind == _GRP3_8:
        return 1
    if kind == _IMMV:
        return 8 if rex_w else (2 if opsize16 else 4)
    if kind == _MOFFS:
        return 4 if addr32 else 8
    return 2 if opsize16 else 4  # immz


def _valid_vex(vex_map: int, opcode: int, modrm: int) -> bool:
    if vex_map not in _VEX_VALID or opcode not in _VEX_VALID[vex_map]:
        return False
    if vex_map == 1 and opcode == 0x77:
        return True  # no ModRM
    if opcode in _VEX_REGISTER_ONLY.get(vex_map, ()):
        return modrm >> 6 == 3
    if opcode in _VEX_MEMORY_ONLY.get(vex_map, ()):
        return modrm >> 6 != 3 and not (vex_map == 1 and opcode == 0xAE and (modrm >> 3) & 7 not in (2, 3))
    return True


_GROUP_CHECKED = frozenset({0x8D, 0xC6, 0xC7, 0xFE, 0xFF})


def _valid_group_form(op: int, modrm: int) -> bool:
    """Reject one-byte forms the ModRM makes undefined (LEA of a register, unused group slots)."""
    reg = (modrm >> 3) & 7
    if op == 0x8D:
        return modrm >> 6 != 3
    if op in (0xC6, 0xC7):
        return reg == 0 or modrm == 0xF8  # MOV, or XABORT/XBEGIN
    if op == 0xFE:
        return reg <= 1
    if op == 0xFF:
        return reg != 7
    return True


def _escaped_length(code: bytes, i: int) -> int | None:
    """Length from the VEX/EVEX/XOP escape byte at ``i``, or None when it is no valid instruction."""
    op = code[i]
    if op == 0xC5:
        if not _valid_vex(1, code[i + 2], code[i + 3]):
            return None
        return 2 + _vex_tail(code, i + 2, 1)
    if op == 0xC4:
        vex_map = code[i + 1] & 0x1F
        if not _valid_vex(vex_map, code[i + 3], code[i + 4]):
            return None
        return 3 + _vex_tail(code, i + 3, vex_map)
    if op == 0x62:
        p0, p1, p2 = code[i + 1], code[i + 2], code[i + 3]
        evex_map = p0 & 7
        if p0 & 8 or not p1 & 4 or evex_map not in (1, 2, 3, 5, 6) or (p2 & 0x80 and not p2 & 7):
            return None  # reserved bits, unknown map, or zeroing-masking without a mask
        return 4 + _vex_tail(code, i + 4, evex_map)
    xop_map = code[i + 1] & 0x1F  # AMD XOP (8F with a map >= 8; 8F /0 is POP r/m)
    if xop_map not in (8, 9, 10):
        return None
    return 4 + _modrm_length(code, i + 4) + {8: 1, 9: 0, 10: 4}[xop_map]


def _two_byte_length(code: bytes, i: int) -> int | None:
    """Length after the 0F escape of a legacy instruction whose second opcode byte is at ``i``."""
    op = code[i]
    if op == 0x38:
        return 2 + _modrm_length(code, i + 2)
    if op == 0x3A:
        return 2 + _modrm_length(code, i + 2) + 1
    if op == 0x0F:  # 3DNow!: ModRM, then an opcode-suffix byte
        return 1 + _modrm_length(code, i + 1) + 1
    if op in _0F_INVALID:
        return None
    if 0x80 <= op <= 0x8F:
        return 1 + 4  # Jcc rel32
    if op in _0F_NO_MODRM:
        return 1
    return 1 + _modrm_length(code, i + 1) + (1 if op in _0F_IMM8 else 0)


def _instruction_length(code: bytes, start: int) -> int | None:
    """Length of the instruction at ``start`` in 64-bit mode, or None when the bytes cannot be one.

    Raises IndexError when the instruction runs past the end of ``code``.
    """
    i = start
    opsize16 = addr32 = False
    while code[i] in _LEGACY_PREFIXES:
        opsize16 |= code[i] == 0x66
        addr32 |= code[i] == 0x67
        i += 1
        if i - start > 14:
            return None
    rex_w = False
    if 0x40 <= code[i] <= 0x4F:
        rex_w = bool(code[i] & 8)
        i += 1
    op = code[i]
    tail: int | None
    if op in (0xC4, 0xC5, 0x62) or (op == 0x8F and code[i + 1] & 0x1F >= 8):
        tail = _escaped_length(code, i)
    elif op == 0x0F:
        tail = _two_byte_length(code, i + 1)
        tail = None if tail is None else 1 + tail
    elif op in _ONE_BYTE_INVALID or op in _LEGACY_PREFIXES or 0x40 <= op <= 0x4F:
        tail = None
    else:
        kind = _ONE_BYTE_IMM[op]
        tail = 1
        modrm = 0
        if _ONE_BYTE_MODRM[op]:
            modrm = code[i + 1]
            if op in _GROUP_CHECKED and not _valid_group_form(op, modrm):
                return None
            tail += _modrm_length(code, i + 1)
        if kind:
            tail += _FIXED_IMMEDIATE.get(kind) or _variable_immediate(kind, modrm, opsize16, addr32, rex_w)
    if tail is None or i - start + tail > 15:
        return None
    end = i + tail
    code[end - 1]  # an instruction cut off by the end of the buffer is no instruction (IndexError)
    return end - start


# --- instruction boundaries -----------------------------------------------------------------------------

# Decoders are started this many bytes before a candidate, at different residues (periodic code such as
# landing-pad tables has a wrong phase that also decodes), so that most converge on the real stream
# before they reach it. The near starts reject most false candidates cheaply; a candidate they accept
# must keep its majority once the far starts, which converge more surely, have voted too.
_NEAR_STARTS: tuple[int, ...] = (163, 149, 137, 127, 113, 103, 89, 79, 67)
_FAR_STARTS: tuple[int, ...] = (251, 229, 211, 193, 173)
_MAX_PREFIX_RUN = 4


def _is_prefix(byte: int) -> bool:
    return byte in _LEGACY_PREFIXES or 0x40 <= byte <= 0x4F


def _instruction_starts(
    code: bytes, start: int, stop: int, known: dict[int, bool]
) -> list[int] | bool | None:
    """Instruction starts decoded from ``start`` up to ``stop``, a verdict inherited from ``known`` when
    the decode joins an already decoded stream, or None when the bytes stop decoding."""
    starts: list[int] = []
    pos = start
    while pos <= stop:
        if pos in known:
            return known[pos]
        starts.append(pos)
        try:
            length = _instruction_length(code, pos)
        except IndexError:
            return None
        if length is None:
            return None
        pos += length
    return starts


def _vote(
    code: bytes, position: int, targets: range, backs: Sequence[int], known: dict[int, bool]
) -> int | bool:
    """Decoders landing on ``targets`` minus those stepping over it; a bool when a section start decides."""
    balance = 0
    for back in backs:
        start = max(position - back, 0)
        result = _instruction_starts(code, start, position, known)
        if result is None:
            continue
        if isinstance(result, bool):
            verdict = result
        else:
            verdict = any(s in targets for s in result)
            known.update(dict.fromkeys(result, verdict))
        if start == 0:
            return verdict  # the start of a section is a real boundary: its word is final
        balance += 1 if verdict else -1
    return balance


def _on_boundary(code: bytes, position: int) -> bool:
    """Whether an instruction starts at ``position`` or in the prefix bytes right before it."""
    lowest = position
    while lowest > 0 and position - lowest < _MAX_PREFIX_RUN and _is_prefix(code[lowest - 1]):
        lowest -= 1
    targets = range(lowest, position + 1)
    known: dict[int, bool] = {}
    near = _vote(code, position, targets, _NEAR_STARTS, known)
    if isinstance(near, bool):
        return near
    if near <= 0:
        return False
    far = _vote(code, position, targets, _FAR_STARTS, known)
    if isinstance(far, bool):
        return far
    return near + far > 0


# --- the feature patterns -------------------------------------------------------------------------------

Predicate = Callable[[int], bool]
_PP_NONE, _PP_66, _PP_F3, _PP_F2 = 0, 1, 2, 3


def _byte_class(predicate: Predicate) -> bytes:
    return b"[" + b"".join(re.escape(bytes([b])) for b in range(256) if predicate(b)) + b"]"


def _vex_fields(pp: Sequence[int] | None, vector_l: int | None, w: int | None) -> Predicate:
    """The VEX ``W vvvv L pp`` byte (pass ``w=None`` for the 2-byte form, whose bit 7 is R)."""

    def matches(b: int) -> bool:
        return (
            (pp is None or b & 3 in pp)
            and (vector_l is None or (b >> 2) & 1 == vector_l)
            and (w is None or b >> 7 == w)
        )

    return matches


def _vex(
    vex_map: int,
    opcodes: Iterable[int],
    *,
    pp: Sequence[int] | None = None,
    vector_l: int | None = None,
    w: int | None = None,
    modrm: Predicate | None = None,
) -> list[bytes]:
    """Regex sources for VEX-encoded opcodes: the 3-byte form and, for map 0F with W0, the 2-byte one."""
    ops = frozenset(opcodes)
    tail = _byte_class(lambda b: b in ops) + (_byte_class(modrm) if modrm else b".")
    sources = [
        b"\xc4"
        + _byte_class(lambda b: b & 0x1F == vex_map)
        + _byte_class(_vex_fields(pp, vector_l, w))
        + tail
    ]
    if vex_map == 1 and w in (None, 0):
        sources.append(b"\xc5" + _byte_class(_vex_fields(pp, vector_l, None)) + tail)
    return sources


def _legacy(prefix: bytes, escape: bytes, opcodes: Iterable[int]) -> bytes:
    """A mandatory-prefix legacy SSE pattern: prefix, optional REX, escape bytes, opcode, ModRM."""
    ops = frozenset(opcodes)
    return prefix + b"[\\x40-\\x4f]?" + escape + _byte_class(lambda b: b in ops) + b"."


_EVEX = (
    b"\x62"
    + _byte_class(lambda b: not b & 8 and b & 7 in (1, 2, 3, 5, 6))  # P0: reserved bit 3 clear, a known map
    + _byte_class(lambda b: bool(b & 4))  # P1: bit 2 is fixed to 1
    + _byte_class(lambda b: (b >> 5) & 3 != 3 or bool(b & 0x10))  # P2: L'L=11 only with EVEX.b rounding
    + b".."
)

_FEATURE_SOURCES: dict[str, list[bytes]] = {
    "avx": [
        *_vex(1, _VEX_0F_OPS),
        *_vex(2, _AVX_0F38_OPS, pp=(_PP_66,)),
        *_vex(3, _AVX_0F3A_OPS, pp=(_PP_66,)),
    ],
    "avx2": [
        *_vex(1, _AVX2_0F_INT - {0x71, 0x72, 0x73, 0xD7}, pp=(_PP_66,), vector_l=1),
        *_vex(1, (0x71, 0x72, 0x73, 0xD7), pp=(_PP_66,), vector_l=1, modrm=lambda b: b >> 6 == 3),
        *_vex(2, _AVX2_0F38_ANY_L, pp=(_PP_66,)),
        *_vex(2, _AVX2_0F38_L1, pp=(_PP_66,), vector_l=1),
        *_vex(3, _AVX2_0F3A_ANY_L, pp=(_PP_66,)),
        *_vex(3, _AVX2_0F3A_L1, pp=(_PP_66,), vector_l=1),
    ],
    "fma": _vex(2, _FMA_OPS, pp=(_PP_66,)),
    "f16c": [*_vex(2, (0x13,), pp=(_PP_66,), w=0), *_vex(3, (0x1D,), pp=(_PP_66,), w=0)],
    # BMI1: andn (F2), blsr/blsmsk/blsi (F3 /1../3), bextr (F7); general registers, L=0.
    "bmi1": [
        *_vex(2, (0xF2, 0xF7), pp=(_PP_NONE,), vector_l=0),
        *_vex(2, (0xF3,), pp=(_PP_NONE,), vector_l=0, modrm=lambda b: (b >> 3) & 7 in (1, 2, 3)),
    ],
    # BMI2: bzhi/pext/pdep (F5), mulx (F6), shlx/sarx/shrx (F7 with a prefix), rorx (0F3A F0).
    "bmi2": [
        *_vex(2, (0xF5,), pp=(_PP_NONE, _PP_F3, _PP_F2), vector_l=0),
        *_vex(2, (0xF6,), pp=(_PP_F2,), vector_l=0),
        *_vex(2, (0xF7,), pp=(_PP_66, _PP_F3, _PP_F2), vector_l=0),
        *_vex(3, (0xF0,), pp=(_PP_F2,), vector_l=0),
    ],
    "avx512f": [_EVEX],
    "popcnt": [_legacy(b"\xf3", b"\x0f", (0xB8,))],
    # F3 0F BD is LZCNT; without the extension it silently runs as BSR, so compilers only emit it when
    # targeting LZCNT. (F3 0F BC, TZCNT, is emitted for any CPU as "rep bsf": no evidence.)
    "lzcnt": [_legacy(b"\xf3", b"\x0f", (0xBD,))],
    "movbe": [b"\x0f\x38[\xf0\xf1]" + _byte_class(lambda b: b >> 6 != 3)],  # memory operand only
    "ssse3": [
        _legacy(b"\x66", b"\x0f\x38", _span(0x00, 0x0B) | _span(0x1C, 0x1E)),
        _legacy(b"\x66", b"\x0f\x3a", (0x0F,)),  # palignr
    ],
    "sse4_1": [
        _legacy(
            b"\x66",
            b"\x0f\x38",
            {0x10, 0x14, 0x15, 0x17}
            | _span(0x20, 0x25)
            | _span(0x28, 0x2B)
            | _span(0x30, 0x35)
            | _span(0x38, 0x41),
        ),
        _legacy(
            b"\x66",
            b"\x0f\x3a",
            _span(0x08, 0x0E) | _span(0x14, 0x17) | _span(0x20, 0x22) | _span(0x40, 0x42),
        ),
    ],
    "sse4_2": [
        _legacy(b"\x66", b"\x0f\x38", (0x37,)),  # pcmpgtq
        _legacy(b"\x66", b"\x0f\x3a", _span(0x60, 0x63)),  # pcmpestr/pcmpistr
        _legacy(b"\xf2", b"\x0f\x38", (0xF0, 0xF1)),  # crc32
    ],
}
_DISPATCH_SOURCES: dict[str, list[bytes]] = {"cpuid": [b"\x0f\xa2"], "xgetbv": [b"\x0f\x01\xd0"]}


def _compile(sources: dict[str, list[bytes]]) -> dict[str, tuple[re.Pattern[bytes], ...]]:
    return {name: tuple(re.compile(source, re.DOTALL) for source in group) for name, group in sources.items()}


_FEATURES = _compile(_FEATURE_SOURCES)
_DISPATCH = _compile(_DISPATCH_SOURCES)


def _without_f2_prefix(code: bytes, start: int) -> bool:
    """MOVBE and CRC32 share 0F 38 F0/F1: an F2 among the prefixes makes it CRC32."""
    k = start
    while k > 0 and start - k < _MAX_PREFIX_RUN and _is_prefix(code[k - 1]):
        k -= 1
        if code[k] == 0xF2:
            return False
    return True


_EXTRA_CHECKS: dict[str, Callable[[bytes, int], bool]] = {"movbe": _without_f2_prefix}


def _seen(code: bytes, name: str, patterns: Sequence[re.Pattern[bytes]]) -> bool:
    """Whether some match lies on an instruction boundary. One sighting suffices: a small extension may
    hold a single AVX2 loop, and the boundary vote kept false sightings out of ~600 binaries checked
    against objdump."""
    extra_check = _EXTRA_CHECKS.get(name)
    for pattern in patterns:
        for match in pattern.finditer(code):
            start = match.start()
            if _on_boundary(code, start) and (extra_check is None or extra_check(code, start)):
                return True
    return False


def scan_x86_64(code: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """Features observed in x86-64 machine code, and runtime-dispatch evidence ("cpuid", "xgetbv")."""
    features = {name for name, patterns in _FEATURES.items() if _seen(code, name, patterns)}
    dispatch = {name for name, patterns in _DISPATCH.items() if _seen(code, name, patterns)}
    if features & {"avx2", "fma", "f16c", "avx512f"}:
        features.add("avx")  # every VEX/EVEX vector extension builds on AVX
    return frozenset(features), frozenset(dispatch)
