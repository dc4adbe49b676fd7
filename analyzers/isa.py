"""x86-64 instruction-set extensions seen in machine code: an advisory byte-pattern scan.

:func:`scan_x86_64` looks for instructions whose encoding alone proves an extension: VEX (``C4``/``C5``)
and EVEX (``62``) prefixed instructions, the legacy SSSE3/SSE4 ``66 0F 38``/``66 0F 3A`` maps, POPCNT,
LZCNT, MOVBE, and the dispatch instructions CPUID and XGETBV. :func:`level_of` maps features to the
x86-64 psABI microarchitecture levels.

How it stays fast: each feature is one compiled regular expression that starts with a literal byte,
so the C regex engine does the sweep; Python only looks at candidate matches, and stops looking for a
feature once it is confirmed.

How it stays (mostly) honest: a byte pattern is a candidate only when the opcode is one that the
feature defines for that prefix, map, ``pp``, ``L`` and ``W``. A candidate is then confirmed only if it
lies on an instruction boundary: a small length decoder re-decodes the bytes just before it from a
few starting points and x86's self-synchronisation makes them agree on the boundaries of the real
instruction stream. Bytes of an immediate, a displacement or a ModRM that merely look like a VEX
prefix fall inside an instruction and are rejected.

Limits (this is not a disassembler):

* A linear sweep: data or jump tables inside executable sections can still decode as instructions.
* Presence is not need. Code behind runtime dispatch (CPUID checks, ifuncs, ``target_clones``) is
  reported as observed although a baseline CPU never runs it; callers weigh the dispatch evidence.
* Absence is not proof: JIT-generated code (oneDNN, LLVM) and encodings not listed here are invisible;
  legacy SSE3 and CMPXCHG16B are not detected, and AVX-512 is reported as ``avx512f`` only (its
  BW/DQ/VL sub-features need opcode tables this scan does not carry).
* The 64-bit decoding rules are used: 32-bit code (i686) must not be scanned with this.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

__all__ = ["LEVELS", "level_of", "scan_x86_64"]

LEVELS: tuple[str, ...] = ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4")

# psABI levels (x86-64 psABI; glibc sysdeps/x86/get-isa-level.h). Levels are cumulative, so a single
# feature of a level means that level is the lowest one guaranteeing it (AVX alone already excludes v2).
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


# --- a length decoder for 64-bit mode, used only to check instruction boundaries ----------------------

_LEGACY_PREFIXES = frozenset({0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3})
_INVALID = -1
# Immediate kinds of the one-byte map.
_NO_IMM, _IMM8, _IMM16, _IMMZ, _ENTER, _MOFFS, _IMMV, _GRP3_8, _GRP3_Z, _REL32 = range(10)


def _one_byte_map() -> tuple[tuple[tuple[bool, int], ...], frozenset[int]]:
    has_modrm = [False] * 256
    imm = [_NO_IMM] * 256
    for op in range(0x40):
        low = op & 7
        if low < 4:
            has_modrm[op] = True
        elif low == 4:
            imm[op] = _IMM8
        elif low == 5:
            imm[op] = _IMMZ
    for op in (0x63, 0x69, 0x6B, *range(0x80, 0x90), 0xC0, 0xC1, 0xC6, 0xC7, 0xD0, 0xD1, 0xD2, 0xD3):
        has_modrm[op] = True
    for op in (*range(0xD8, 0xE0), 0xF6, 0xF7, 0xFE, 0xFF):
        has_modrm[op] = True
    for op in (0x6A, 0x6B, 0x80, 0x83, 0xA8, 0xC0, 0xC1, 0xC6, 0xCD, 0xEB, *range(0x70, 0x80)):
        imm[op] = _IMM8
    for op in (*range(0xB0, 0xB8), *range(0xE0, 0xE8)):
        imm[op] = _IMM8
    for op in (0x68, 0x69, 0x81, 0xA9, 0xC7):
        imm[op] = _IMMZ
    imm[0xC2] = imm[0xCA] = _IMM16
    imm[0xC8] = _ENTER
    imm[0xE8] = imm[0xE9] = _REL32
    imm[0xF6], imm[0xF7] = _GRP3_8, _GRP3_Z
    for op in range(0xA0, 0xA4):
        imm[op] = _MOFFS
    for op in range(0xB8, 0xC0):
        imm[op] = _IMMV
    # Opcodes that do not exist in 64-bit mode (and the 0x62/C4/C5 VEX/EVEX escapes, decoded apart).
    invalid = frozenset(
        {0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x60, 0x61, 0x82, 0x9A}
        | {0xCE, 0xD4, 0xD5, 0xD6, 0xEA}
    )
    return tuple(zip(has_modrm, imm, strict=True)), invalid


_ONE_BYTE, _ONE_BYTE_INVALID = _one_byte_map()
_0F_NO_MODRM = frozenset(
    {0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0E, 0x77, 0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA}
    | set(range(0x30, 0x38))
    | set(range(0xC8, 0xD0))
)
_0F_IMM8 = frozenset({0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6})
_0F_INVALID = frozenset({0x04, 0x0A, 0x0C, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F})
# Map-1 VEX/EVEX opcodes followed by an imm8 (map 3 always has one, map 2 never).
_VEX_0F_IMM8 = frozenset({0x70, 0x71, 0x72, 0x73, 0xC2, 0xC4, 0xC5, 0xC6})


def _modrm_length(code: bytes, i: int) -> int:
    """Bytes taken by the ModRM at ``i`` with its SIB and displacement."""
    modrm = code[i]
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return 1
    length = 1
    if rm == 4:
        length += 1
        if mod == 0 and code[i + 1] & 7 == 5:
            length += 4
    elif mod == 0 and rm == 5:
        length += 4  # RIP-relative
    return length + (1 if mod == 1 else 4 if mod == 2 else 0)


def _vex_tail(code: bytes, i: int, vex_map: int, opcode: int) -> int:
    """Length of opcode + ModRM + immediate of a VEX/EVEX instruction whose opcode is at ``i``."""
    if vex_map == 1 and opcode == 0x77:
        return 1  # vzeroupper / vzeroall take no ModRM
    length = 1 + _modrm_length(code, i + 1)
    if vex_map == 3 or (vex_map == 1 and opcode in _VEX_0F_IMM8):
        length += 1
    return length


def _immediate_length(kind: int, code: bytes, modrm_at: int, opsize16: bool, addr32: bool, rex_w: bool) -> int:
    if kind in (_NO_IMM, _INVALID):
        return 0
    if kind in (_GRP3_8, _GRP3_Z):
        if (code[modrm_at] >> 3) & 7 > 1:
            return 0  # only TEST (/0, /1) of group 3 carries an immediate
        return 1 if kind == _GRP3_8 else (2 if opsize16 else 4)
    sizes = {
        _IMM8: 1,
        _IMM16: 2,
        _IMMZ: 2 if opsize16 else 4,
        _ENTER: 3,
        _MOFFS: 4 if addr32 else 8,
        _IMMV: 8 if rex_w else (2 if opsize16 else 4),
        _REL32: 4,
    }
    return sizes[kind]


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
    if op == 0xC5:
        i += _vex_tail(code, i + 2, 1, code[i + 2]) + 2
    elif op == 0xC4:
        vex_map = code[i + 1] & 0x1F
        if vex_map not in (1, 2, 3):
            return None
        i += _vex_tail(code, i + 3, vex_map, code[i + 3]) + 3
    elif op == 0x62:
        evex_map = code[i + 1] & 7
        if code[i + 1] & 8 or not code[i + 2] & 4 or evex_map not in (1, 2, 3, 5, 6):
            return None
        i += _vex_tail(code, i + 4, evex_map, code[i + 4]) + 4
    elif op == 0x8F and code[i + 1] & 0x1F >= 8:  # AMD XOP; 8F /0 is POP r/m
        xop_map = code[i + 1] & 0x1F
        if xop_map not in (8, 9, 10):
            return None
        i += 3 + 1 + _modrm_length(code, i + 4) + {8: 1, 9: 0, 10: 4}[xop_map]
    elif op == 0x0F:
        length = _two_byte_length(code, i + 1)
        if length is None:
            return None
        i += 1 + length
    else:
        if op in _ONE_BYTE_INVALID or op in _LEGACY_PREFIXES or 0x40 <= op <= 0x4F:
            return None
        has_modrm, kind = _ONE_BYTE[op]
        i += 1
        modrm_at = i
        if has_modrm:
            i += _modrm_length(code, i)
        i += _immediate_length(kind, code, modrm_at, opsize16, addr32, rex_w)
    length = i - start
    if length > 15:
        return None
    code[i - 1]  # an instruction cut off by the end of the buffer is no instruction
    return length


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


# Starting points before a candidate from which the stream is re-decoded: x86 decoding resynchronises
# within a few instructions, so starts that are themselves mid-instruction still converge.
_SYNC_BACKTRACK: tuple[int, ...] = (64, 48, 32)
_MAX_PREFIX_RUN = 4


def _decode_until(code: bytes, start: int, stop: int, seen: dict[int, bool] | None) -> list[int] | bool | None:
    """Instruction starts from ``start`` up to ``stop``; or a verdict inherited from ``seen``; or None."""
    starts: list[int] = []
    pos = start
    while pos <= stop:
        if seen is not None and pos in seen:
            return seen[pos]
        starts.append(pos)
        try:
            length = _instruction_length(code, pos)
        except IndexError:
            return None
        if length is None:
            return None
        pos += length
    return starts


def _on_boundary(code: bytes, position: int) -> bool:
    """Whether an instruction starts at ``position`` or within the prefix bytes just before it."""
    lowest = position - _MAX_PREFIX_RUN
    while lowest < position and not _is_prefix_run(code, lowest, position):
        lowest += 1
    targets = set(range(max(lowest, 0), position + 1))
    votes_for = votes_against = 0
    seen: dict[int, bool] = {}
    for back in _SYNC_BACKTRACK:
        start = max(position - back, 0)
        result = _decode_until(code, start, position, seen if seen else None)
        if result is None:
            continue
        if isinstance(result, bool):
            verdict = result
        else:
            verdict = any(s in targets for s in result)
            seen.update(dict.fromkeys(result, verdict))
        votes_for += verdict
        votes_against += not verdict
        if start == 0:
            break  # the start of a section is a real instruction boundary: no need to vote
    return votes_for > votes_against


def _is_prefix_run(code: bytes, start: int, end: int) -> bool:
    return all(code[k] in _LEGACY_PREFIXES or 0x40 <= code[k] <= 0x4F for k in range(start, end))


# --- the feature patterns -------------------------------------------------------------------------------

Predicate = Callable[[int], bool]


def _byte_class(predicate: Predicate) -> bytes:
    return b"[" + b"".join(re.escape(bytes([b])) for b in range(256) if predicate(b)) + b"]"


def _vex_fields(pp: Sequence[int] | None, vector_l: int | None, w: int | None) -> Predicate:
    """The VEX ``W vvvv L pp`` byte (W is ignored for the 2-byte form by passing ``w=None``)."""
    return lambda b: (
        (pp is None or b & 3 in pp) and (vector_l is None or (b >> 2) & 1 == vector_l) and (w is None or b >> 7 == w)
    )


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
    opcode_class = _byte_class(lambda b: b in ops)
    modrm_class = _byte_class(modrm) if modrm else b"."
    sources = [
        b"\xc4"
        + _byte_class(lambda b: b & 0x1F == vex_map)
        + _byte_class(_vex_fields(pp, vector_l, w))
        + opcode_class
        + modrm_class
    ]
    if vex_map == 1 and w in (None, 0):
        sources.append(b"\xc5" + _byte_class(_vex_fields(pp, vector_l, None)) + opcode_class + modrm_class)
    return sources


def _range(first: int, last: int) -> range:
    return range(first, last + 1)


_PP_66, _PP_F3, _PP_F2 = 1, 2, 3
_MEMORY = lambda b: b >> 6 != 3  # noqa: E731 - a ModRM predicate, named for readability
_REGISTER = lambda b: b >> 6 == 3  # noqa: E731

# Map 0F opcodes VEX defines (SSE..SSE4 promoted to VEX, plus vzeroupper 77 and ldmxcsr AE).
_VEX_0F_OPS = frozenset(
    {*_range(0x10, 0x17), *_range(0x28, 0x2F), *_range(0x50, 0x7F), 0xAE, 0xC2, 0xC4, 0xC5, 0xC6}
    | set(_range(0xD0, 0xFE))
) - {0x5B - 0x5B + 0x78, 0x79, 0x7A, 0x7B}  # 78-7B are not VEX instructions
# Integer SIMD in map 0F (pp=66): with VEX.L=1 these exist only from AVX2 (vmovdqa/u, movnt and lddqu
# are AVX1 and excluded).
_AVX2_0F_INT = frozenset(
    {*_range(0x60, 0x6D), *_range(0x70, 0x76), *_range(0xD1, 0xD5), *_range(0xD7, 0xDF)}
    | {*_range(0xE0, 0xE5), *_range(0xE8, 0xEF), *_range(0xF1, 0xF6), *_range(0xF8, 0xFE)}
)
# Map 0F38 (pp=66): opcodes that only AVX2 defines at any length, and integer ops AVX2 widened to L=1.
_AVX2_0F38_ANY_L = frozenset({0x16, 0x36, 0x45, 0x46, 0x47, 0x58, 0x59, 0x5A, 0x78, 0x79, 0x8C, 0x8E, *_range(0x90, 0x93)})
_AVX2_0F38_L1 = frozenset(
    {*_range(0x00, 0x0B), *_range(0x1C, 0x1E), *_range(0x20, 0x25), *_range(0x28, 0x2B), *_range(0x30, 0x35)}
    | set(_range(0x37, 0x40))
)
_AVX2_0F3A_ANY_L = frozenset({0x00, 0x01, 0x02, 0x38, 0x39, 0x46})
_AVX2_0F3A_L1 = frozenset({0x0E, 0x0F, 0x42, 0x4C})
_AVX_0F38_OPS = frozenset(
    {*_range(0x00, 0x1E), *_range(0x20, 0x25), *_range(0x28, 0x2F), *_range(0x30, 0x47), 0x58, 0x59, 0x5A}
    | {0x78, 0x79, 0x8C, 0x8E, *_range(0x90, 0x93), *_range(0x96, 0x9F), *_range(0xA6, 0xAF)}
    | {*_range(0xB6, 0xBF), *_range(0xDB, 0xDF)}
)
_AVX_0F3A_OPS = frozenset(
    {*_range(0x00, 0x06), *_range(0x08, 0x0F), *_range(0x14, 0x19), 0x1D, *_range(0x20, 0x22)}
    | {0x38, 0x39, *_range(0x40, 0x42), 0x44, 0x46, *_range(0x4A, 0x4C), *_range(0x60, 0x63), 0xDF}
)
_FMA_OPS = frozenset({*_range(0x96, 0x9F), *_range(0xA6, 0xAF), *_range(0xB6, 0xBF)})


def _legacy(prefix: bytes, escape: bytes, opcodes: Iterable[int], modrm: Predicate | None = None) -> bytes:
    """A mandatory-prefix legacy-SSE pattern: prefix, optional REX, the escape bytes, opcode, ModRM."""
    ops = frozenset(opcodes)
    return prefix + b"[\\x40-\\x4f]?" + escape + _byte_class(lambda b: b in ops) + (_byte_class(modrm) if modrm else b".")


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
        *_vex(1, _AVX2_0F_INT, pp=(_PP_66,), vector_l=1),
        *_vex(2, _AVX2_0F38_ANY_L, pp=(_PP_66,)),
        *_vex(2, _AVX2_0F38_L1, pp=(_PP_66,), vector_l=1),
        *_vex(3, _AVX2_0F3A_ANY_L, pp=(_PP_66,)),
        *_vex(3, _AVX2_0F3A_L1, pp=(_PP_66,), vector_l=1),
    ],
    "fma": _vex(2, _FMA_OPS, pp=(_PP_66,)),
    "f16c": [*_vex(2, (0x13,), pp=(_PP_66,), w=0), *_vex(3, (0x1D,), pp=(_PP_66,), w=0)],
    # BMI1: andn (F2), blsr/blsmsk/blsi (F3 /1../3), bextr (F7); all pp=none, L=0, general registers.
    "bmi1": [
        *_vex(2, (0xF2, 0xF7), pp=(0,), vector_l=0),
        *_vex(2, (0xF3,), pp=(0,), vector_l=0, modrm=lambda b: (b >> 3) & 7 in (1, 2, 3)),
    ],
    # BMI2: bzhi/pext/pdep (F5), mulx (F6 F2), shlx/sarx/shrx (F7 66/F3/F2), rorx (0F3A F0 F2).
    "bmi2": [
        *_vex(2, (0xF5,), vector_l=0),
        *_vex(2, (0xF6,), pp=(_PP_F2,), vector_l=0),
        *_vex(2, (0xF7,), pp=(_PP_66, _PP_F3, _PP_F2), vector_l=0),
        *_vex(3, (0xF0,), pp=(_PP_F2,), vector_l=0),
    ],
    "avx512f": [_EVEX],
    "popcnt": [_legacy(b"\xf3", b"\x0f", (0xB8,))],
    # F3 0F BD is LZCNT; without the extension it silently runs as BSR, so compilers only emit it
    # when targeting LZCNT. (F3 0F BC, TZCNT, is emitted for baseline CPUs as "rep bsf": no evidence.)
    "lzcnt": [_legacy(b"\xf3", b"\x0f", (0xBD,))],
    "movbe": [b"[\\x40-\\x4f]?\\x0f\\x38[\\xf0\\xf1]" + _byte_class(_MEMORY)],
    "ssse3": [_legacy(b"\x66", b"\x0f\x38", (*_range(0x00, 0x0B), *_range(0x1C, 0x1E)))],
    "sse4_1": [
        _legacy(b"\x66", b"\x0f\x38", (0x10, 0x14, 0x15, 0x17, *_range(0x20, 0x25), *_range(0x28, 0x2B)))
        + b"|"
        + _legacy(b"\x66", b"\x0f\x38", (*_range(0x30, 0x35), *_range(0x37, 0x40))),
        _legacy(b"\x66", b"\x0f\x3a", (*_range(0x08, 0x0F), *_range(0x14, 0x17), *_range(0x20, 0x22), 0x40, 0x41, 0x42)),
    ],
    "sse4_2": [
        _legacy(b"\x66", b"\x0f\x3a", _range(0x60, 0x63)),
        _legacy(b"\xf2", b"\x0f\x38", (0xF0, 0xF1)),  # crc32
    ],
}
_DISPATCH_SOURCES: dict[str, list[bytes]] = {
    "cpuid": [b"\x0f\xa2"],
    "xgetbv": [b"\x0f\x01\xd0"],
}


def _compile(sources: dict[str, list[bytes]]) -> dict[str, tuple[re.Pattern[bytes], ...]]:
    return {name: tuple(re.compile(source, re.DOTALL) for source in group) for name, group in sources.items()}


_FEATURES = _compile(_FEATURE_SOURCES)
_DISPATCH = _compile(_DISPATCH_SOURCES)
# Two confirmed sightings make a feature: one decoded hit can still be data inside .text.
_FEATURE_HITS = 2
_DISPATCH_HITS = 1


def _confirmed(code: bytes, patterns: Sequence[re.Pattern[bytes]], needed: int) -> bool:
    hits = 0
    for pattern in patterns:
        for match in pattern.finditer(code):
            if _on_boundary(code, match.start()) and _not_prefixed_crc32(code, match):
                hits += 1
                if hits >= needed:
                    return True
    return False


def _not_prefixed_crc32(code: bytes, match: re.Match[bytes]) -> bool:
    """MOVBE and CRC32 share 0F 38 F0/F1; an F2 prefix makes it CRC32, not MOVBE."""
    if not match.group().startswith((b"\x0f\x38\xf0", b"\x0f\x38\xf1")) and match.group()[1:3] != b"\x0f\x38":
        return True
    start = match.start()
    return not (start and code[start - 1] == 0xF2) and not (start > 1 and code[start - 2] == 0xF2)


def scan_x86_64(code: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """Features observed in x86-64 machine code, and runtime-dispatch evidence ("cpuid", "xgetbv")."""
    features = frozenset(name for name, patterns in _FEATURES.items() if _confirmed(code, patterns, _FEATURE_HITS))
    dispatch = frozenset(name for name, patterns in _DISPATCH.items() if _confirmed(code, patterns, _DISPATCH_HITS))
    return _implied(features), dispatch


def _implied(features: frozenset[str]) -> frozenset[str]:
    """Every VEX/EVEX vector extension implies AVX: report it even if only the wider feature was seen."""
    if features & {"avx2", "fma", "f16c", "avx512f"}:
        return features | {"avx"}
    return features
