"""manylinux / musllinux: the policy table, the minimal tag ELF files need, and mis-tagged wheels.

The table transcribes auditwheel's ``policy/manylinux-policy.json`` (pypa/auditwheel 6.8) as ceilings:
for each policy and architecture, the highest version allowed per version-node family (``GLIBC``,
``GLIBCXX``, ``CXXABI``, ``GCC``, ``ZLIB``, ``LIBATOMIC``), plus the whitelisted sonames. auditwheel
checks set membership; a ceiling is equivalent for every node that exists, because a library only
ever requires version nodes its provider defines, and later policies are supersets of earlier ones.

How the minimal tag is found (auditwheel's ``analyze_wheel_abi``, without a host to resolve against):
walk the policies from the oldest glibc up and take the first whose ceilings cover every required
version node of every ELF file of the wheel's architecture, and whose whitelist holds every
``DT_NEEDED`` soname that the wheel does not bundle. Families a policy does not list (``OPENSSL_3.0``,
a private library's nodes) are ignored, as auditwheel does. A needed library that is neither bundled
nor whitelisted means no manylinux tag: ``linux_<arch>`` and an ``external-library`` finding.

musl has no symbol versioning, so only the libc family and the whitelist (the musl libc and
``libz.so.1``) can be checked; the ``musllinux_1_1``/``1_2`` minor cannot be derived from a binary
(auditwheel takes it from the host), so the lowest, ``musllinux_1_1``, is reported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from analyzers.facts import AbiFacts, ElfFacts, Finding

__all__ = [
    "POLICIES",
    "Policy",
    "abi_findings",
    "claimed_glibc",
    "minimal_tag",
    "required_nodes",
    "summarize_abi",
]

Version = tuple[int, ...]
# A family's ceiling; None when the policy lists the family with no version at all.
Ceilings = Mapping[str, Version | None]


@dataclass(frozen=True, slots=True)
class Policy:
    """One manylinux policy: ceilings per architecture and the sonames assumed present."""

    glibc: tuple[int, int]
    aliases: tuple[str, ...]
    ceilings: Mapping[str, Ceilings]  # arch -> family -> highest allowed version
    whitelist: frozenset[str]

    @property
    def name(self) -> str:
        return f"manylinux_{self.glibc[0]}_{self.glibc[1]}"

    def tag(self, arch: str) -> str:
        return f"{self.name}_{arch}"


def _v(text: str | None) -> Version | None:
    return None if text is None else tuple(int(part) for part in text.split("."))


# x86_64 ceilings per glibc minor: GLIBCXX, CXXABI, GCC, ZLIB, LIBATOMIC (None: family allowed no node).
_X86_64: dict[int, tuple[str, str, str, str | None, str | None]] = {
    5: ("3.4.8", "1.3.1", "4.2.0", None, None),
    12: ("3.4.13", "1.3.3", "4.3.0", "1.2.2.4", None),
    17: ("3.4.19", "1.3.7", "4.8.0", "1.2.5.2", None),
    24: ("3.4.22", "1.3.10", "4.8.0", "1.2.5.2", "1.2"),
    26: ("3.4.22", "1.3.10", "4.8.0", "1.2.5.2", "1.2"),
    27: ("3.4.24", "1.3.11", "7.0.0", "1.2.9", "1.2"),
    28: ("3.4.24", "1.3.11", "7.0.0", "1.2.9", "1.2"),
    31: ("3.4.28", "1.3.12", "7.0.0", "1.2.9", "1.2"),
    34: ("3.4.29", "1.3.13", "7.0.0", "1.2.9", "1.2"),
    35: ("3.4.30", "1.3.13", "12.0.0", "1.2.9", "1.2"),
    36: ("3.4.30", "1.3.13", "12.0.0", "1.2.9", "1.2"),
    37: ("3.4.30", "1.3.13", "12.0.0", "1.2.12", "1.2"),
    38: ("3.4.30", "1.3.13", "12.0.0", "1.2.12", "1.2"),
    39: ("3.4.33", "1.3.15", "14.0.0", "1.2.12", "1.2"),
    40: ("3.4.33", "1.3.15", "14.0.0", "1.2.12", "1.2"),
    41: ("3.4.33", "1.3.15", "14.0.0", "1.2.12", "1.2"),
}
_FAMILIES = ("GLIBCXX", "CXXABI", "GCC", "ZLIB", "LIBATOMIC")
_ARCHES_FROM: dict[str, int] = {  # the first policy (glibc minor) defined for each architecture
    "x86_64": 5,
    "i686": 5,
    "aarch64": 17,
    "ppc64le": 17,
    "s390x": 17,
    "armv7l": 17,
    "riscv64": 31,
    "loongarch64": 36,
}
_ARCHES_UNTIL = {"ppc64": (17, 17)}  # big-endian ppc64 only ever had manylinux2014
_LATER_CXX_ARCH = {"GLIBCXX": "3.4.24", "CXXABI": "1.3.11", "GCC": "7.0.0"}
# Where another architecture's image differs from x86_64: (arch, glibc minor) -> family -> ceiling.
_OVERRIDES: dict[tuple[str, int], dict[str, str | None]] = {
    ("i686", 12): {"GCC": "4.5.0"},
    ("i686", 17): {"LIBATOMIC": "1.0"},
    ("i686", 26): {**_LATER_CXX_ARCH, "ZLIB": "1.2.9"},
    ("i686", 36): {"ZLIB": "1.2.12"},
    ("ppc64", 17): {"LIBATOMIC": "1.0"},
    ("aarch64", 17): {"GLIBC": "2.18", "GCC": "4.7.0", "LIBATOMIC": "1.0"},
    ("aarch64", 24): {"GCC": "4.7.0"},
    ("aarch64", 26): _LATER_CXX_ARCH,
    **{("aarch64", minor): {"GCC": "11.0"} for minor in (34, 35, 36, 37, 38)},
    **{(arch, 17): {"GCC": "4.7.0", "LIBATOMIC": "1.0"} for arch in ("ppc64le", "armv7l")},
    ("s390x", 17): {"GCC": "4.7.0"},
    **{(arch, 24): {"GCC": "4.7.0"} for arch in ("ppc64le", "s390x", "armv7l")},
    **{(arch, 26): {**_LATER_CXX_ARCH, "ZLIB": "1.2.9"} for arch in ("ppc64le", "s390x", "armv7l")},
    **{
        (arch, minor): {"GCC": "7.0.0"}
        for arch in ("ppc64le", "s390x", "armv7l", "riscv64", "loongarch64")
        for minor in (35, 36, 37, 38)
    },
    **{("loongarch64", minor): {"GLIBCXX": "3.4.32"} for minor in (39, 40, 41)},
}
_WHITELIST_2_5 = frozenset(
    {"libatomic.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libanl.so.1", "libdl.so.2"}
    | {"librt.so.1", "libc.so.6", "libnsl.so.1", "libutil.so.1", "libpthread.so.0", "libX11.so.6"}
    | {"libXext.so.6", "libXrender.so.1", "libICE.so.6", "libSM.so.6", "libGL.so.1", "libresolv.so.2"}
    | {"libgobject-2.0.so.0", "libgthread-2.0.so.0", "libglib-2.0.so.0", "libz.so.1"}
)
_ALIASES = {5: ("manylinux1",), 12: ("manylinux2010",), 17: ("manylinux2014",)}


def _whitelist(minor: int) -> frozenset[str]:
    extra = {"libexpat.so.1"} if minor >= 12 else set()
    return _WHITELIST_2_5 | extra | ({"libmvec.so.1"} if minor >= 24 else set())


def _arch_ceilings(arch: str, minor: int) -> Ceilings:
    values: dict[str, str | None] = {
        "GLIBC": f"2.{minor}",
        **dict(zip(_FAMILIES, _X86_64[minor], strict=True)),
    }
    values.update(_OVERRIDES.get((arch, minor), {}))
    return {family: _v(value) for family, value in values.items()}


def _build_policies() -> tuple[Policy, ...]:
    policies = []
    for minor in sorted(_X86_64):
        arches = [arch for arch, first in _ARCHES_FROM.items() if minor >= first]
        arches += [arch for arch, (first, last) in _ARCHES_UNTIL.items() if first <= minor <= last]
        ceilings = {arch: _arch_ceilings(arch, minor) for arch in arches}
        policies.append(Policy((2, minor), _ALIASES.get(minor, ()), ceilings, _whitelist(minor)))
    return tuple(policies)


POLICIES: tuple[Policy, ...] = _build_policies()  # oldest glibc (most portable) first

# Version nodes without a number, and the glibc of the first policy allowing them.
_SPECIAL_NODES: dict[str, tuple[int, int]] = {
    "CXXABI_TM_1": (2, 17),
    "CXXABI_ARM_1.3.3": (2, 17),
    "CXXABI_FLOAT128": (2, 24),
    "GLIBC_ABI_DT_RELR": (2, 36),  # DT_RELR relocations: ld.so 2.36 or later
}
# Qualified nodes (long double / IEEE 128 variants on ppc64le and s390x) follow their base numbering.
_QUALIFIERS = ("LDBL_", "IEEE128_")
_MUSL_ARCH = {"i686": "x86", "armv7l": "armv7"}
_MUSL_LOWEST = "musllinux_1_1"  # of musllinux_1_1 and 1_2: a binary cannot tell them apart


# --- version nodes --------------------------------------------------------------------------------------


def _numeric(text: str) -> Version | None:
    parts = text.split(".")
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else None


def required_nodes(elfs: Iterable[ElfFacts]) -> frozenset[str]:
    """Every required version node (``GLIBC_2.34``) of the files, rebuilt from their grouped form."""
    return frozenset(
        f"{prefix}_{version}"
        for elf in elfs
        for prefix, versions in elf.symbol_versions.items()
        for version in versions
    )


def _node_version(node: str) -> tuple[str, Version | None]:
    """A node's family (text before the first ``_``) and its number, qualifiers stripped."""
    family, _, rest = node.partition("_")
    for qualifier in _QUALIFIERS:
        if rest.startswith(qualifier):
            rest = rest[len(qualifier) :]
    return family, _numeric(rest)


def _covers(ceilings: Ceilings, glibc: tuple[int, int], node: str) -> bool:
    family, version = _node_version(node)
    if family not in ceilings:
        return True  # auditwheel ignores families a policy does not list
    if node in _SPECIAL_NODES:
        return glibc >= _SPECIAL_NODES[node]
    ceiling = ceilings[family]
    return version is not None and ceiling is not None and version <= ceiling


def _glibc_needed(nodes: Iterable[str]) -> Version | None:
    """The glibc the nodes need: the highest ``GLIBC_x.y``, or what a special node implies."""
    versions = [version for family, version in map(_node_version, nodes) if family == "GLIBC" and version]
    versions += [
        _SPECIAL_NODES[node] for node in nodes if node.startswith("GLIBC_") and node in _SPECIAL_NODES
    ]
    return max(versions, default=None)


def _highest(elfs: Iterable[ElfFacts], prefix: str) -> str | None:
    versions = [v for elf in elfs for v in elf.symbol_versions.get(prefix, ()) if _numeric(v) is not None]
    return max(versions, key=lambda v: _numeric(v) or (), default=None)


# --- libraries ------------------------------------------------------------------------------------------


def _is_loader(soname: str) -> bool:
    return soname.startswith(("ld-linux", "ld-musl-", "ld.so")) or soname in ("ld64.so.1", "ld64.so.2")


def _libc(elfs: Iterable[ElfFacts]) -> Literal["glibc", "musl", "none", "mixed"]:
    musl = glibc = False
    for elf in elfs:
        musl |= any(name.startswith(("libc.musl-", "ld-musl-")) for name in elf.needed)
        glibc |= "GLIBC" in elf.symbol_versions or any(
            name == "libc.so.6" or name.startswith(("ld-linux", "ld64.so")) for name in elf.needed
        )
    if musl and glibc:
        return "mixed"
    return "musl" if musl else "glibc" if glibc else "none"


def _shipped(elfs: Iterable[ElfFacts], bundled: Collection[str]) -> frozenset[str]:
    """File names the wheel ships: ``bundled`` (names or paths) and every ELF file's own name."""
    names = [*bundled, *(elf.path for elf in elfs)]
    return frozenset(names) | {name.rsplit("/", 1)[-1] for name in names}


def _external(elfs: Iterable[ElfFacts], shipped: Collection[str]) -> tuple[str, ...]:
    """Needed sonames neither shipped in the wheel nor the dynamic loader, sorted."""
    return tuple(sorted({n for elf in elfs for n in elf.needed if n not in shipped and not _is_loader(n)}))


def _musl_whitelist(arch: str) -> frozenset[str]:
    return frozenset({f"libc.musl-{_MUSL_ARCH.get(arch, arch)}.so.1", "libz.so.1"})


def _external_finding(soname: str) -> Finding:
    return Finding(
        "external-library",
        "warning",
        f"{soname} is needed but neither bundled in the wheel nor guaranteed by any manylinux/musllinux "
        "policy: installs work only where the system happens to provide it",
    )


# --- the minimal tag ------------------------------------------------------------------------------------


def minimal_tag(
    elfs: Sequence[ElfFacts], arch: str, bundled: Collection[str]
) -> tuple[str | None, list[Finding]]:
    """The most portable tag the ELF files of ``arch`` allow, and findings explaining a ``linux`` tag.

    ``bundled`` holds the sonames (or file names) of libraries shipped inside the wheel; the basenames
    of the ELF files count as shipped too. None when the wheel has no ELF file of ``arch``.
    """
    relevant = [elf for elf in elfs if elf.machine == arch]
    if not relevant:
        return None, []
    external = _external(relevant, _shipped(elfs, bundled))
    libc = _libc(relevant)
    if libc == "mixed":
        message = "ELF files link against both glibc and musl: no single platform can load them all"
        return f"linux_{arch}", [Finding("mixed-libc", "error", message)]
    if libc == "musl":
        foreign = [soname for soname in external if soname not in _musl_whitelist(arch)]
        tag = f"linux_{arch}" if foreign else f"{_MUSL_LOWEST}_{arch}"
        return tag, [_external_finding(soname) for soname in foreign]
    return _manylinux_tag(relevant, arch, external)


def _manylinux_tag(elfs: Sequence[ElfFacts], arch: str, external: Sequence[str]) -> tuple[str, list[Finding]]:
    policies = [policy for policy in POLICIES if arch in policy.ceilings]
    if not policies:
        return f"linux_{arch}", [
            Finding("unknown-architecture", "info", f"no manylinux policy covers {arch}")
        ]
    foreign = [soname for soname in external if soname not in policies[-1].whitelist]
    if foreign:
        return f"linux_{arch}", [_external_finding(soname) for soname in foreign]
    nodes = required_nodes(elfs)
    for policy in policies:
        ceilings = policy.ceilings[arch]
        if set(external) <= policy.whitelist and all(_covers(ceilings, policy.glibc, n) for n in nodes):
            return policy.tag(arch), []
    return _beyond_known_policies(nodes, policies[-1], arch)


def _beyond_known_policies(nodes: Collection[str], newest: Policy, arch: str) -> tuple[str, list[Finding]]:
    """Needs newer than the table: PEP 600 still names the tag after glibc if only GLIBC is too new."""
    ceilings = newest.ceilings[arch]
    uncovered = sorted(n for n in nodes if not _covers(ceilings, newest.glibc, n))
    glibc = _glibc_needed(nodes)
    if glibc and all(_node_version(n)[0] == "GLIBC" and _node_version(n)[1] for n in uncovered):
        message = f"needs glibc {_dotted(glibc)}, newer than the policies known here ({newest.name})"
        return f"manylinux_{glibc[0]}_{glibc[1]}_{arch}", [Finding("policy-unknown", "info", message)]
    message = f"no manylinux policy allows {', '.join(uncovered)}"
    return f"linux_{arch}", [Finding("no-manylinux-policy", "warning", message)]


def _dotted(version: Iterable[int]) -> str:
    return ".".join(map(str, version))


# --- claimed tags ---------------------------------------------------------------------------------------

_PEP600 = re.compile(r"manylinux_(\d+)_(\d+)(?:_\w+)?")
_LEGACY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)(?:_\w+)?")
_LEGACY_GLIBC = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def claimed_glibc(tag: str) -> tuple[int, int] | None:
    """The glibc a manylinux platform tag promises (``manylinux2014_x86_64`` -> (2, 17)), else None."""
    if match := _PEP600.fullmatch(tag):
        return int(match.group(1)), int(match.group(2))
    if match := _LEGACY.fullmatch(tag):
        return _LEGACY_GLIBC[match.group(1)]
    return None


def _policy_for(glibc: tuple[int, int]) -> Policy | None:
    return next((policy for policy in POLICIES if policy.glibc == glibc), None)


# --- summary --------------------------------------------------------------------------------------------


def _wheel_arch(elfs: Sequence[ElfFacts], claimed: Sequence[str]) -> str | None:
    """The architecture most ELF files have; a claimed tag's architecture breaks ties."""
    counts = Counter(elf.machine for elf in elfs)
    if not counts:
        return None
    best = max(counts.values())
    candidates = [machine for machine, count in counts.items() if count == best]
    for tag in claimed:
        for machine in candidates:
            if tag.endswith("_" + machine):
                return machine
    return candidates[0]


def summarize_abi(
    elfs: Sequence[ElfFacts], claimed_platform_tags: Sequence[str], bundled: Collection[str]
) -> AbiFacts:
    """What the ELF files of the wheel's architecture need, and whether the filename's tags say so."""
    claimed = tuple(claimed_platform_tags)
    arch = _wheel_arch(elfs, claimed)
    relevant = [elf for elf in elfs if elf.machine == arch]
    if arch is None or not relevant:
        return AbiFacts(libc="none", claimed_tags=claimed)
    libc = _libc(relevant)
    nodes = required_nodes(relevant)
    glibc = _glibc_needed(nodes)
    computed, _findings = minimal_tag(elfs, arch, bundled)  # abi_findings re-derives the findings
    return AbiFacts(
        libc="glibc" if libc == "mixed" else libc,
        min_glibc=_dotted(glibc) if glibc else None,
        min_glibcxx=_highest(relevant, "GLIBCXX"),
        min_cxxabi=_highest(relevant, "CXXABI"),
        min_gcc=_highest(relevant, "GCC"),
        needed_external=_external(relevant, _shipped(elfs, bundled)),
        computed_tag=computed,
        claimed_tags=claimed,
        mis_tagged=bool(_tag_violations(claimed, arch, libc, nodes)),
    )


def _tag_violations(claimed: Sequence[str], arch: str, libc: str, nodes: Collection[str]) -> list[str]:
    """Why the claimed platform tags promise more than the files deliver (empty: they do not)."""
    reasons = []
    promised = [glibc for glibc in map(claimed_glibc, claimed) if glibc]
    if promised:
        # An installer on the oldest promised glibc picks the wheel: that promise must hold.
        oldest = min(promised)
        if libc in ("musl", "mixed"):
            reasons.append("a manylinux tag on binaries linked against musl")
        needed = _glibc_needed(nodes)
        if needed and needed > oldest:
            reasons.append(f"glibc {_dotted(needed)} needed, {_dotted(oldest)} promised")
        policy = _policy_for(oldest)
        if policy is not None and arch in policy.ceilings:
            beyond = sorted(
                n
                for n in nodes
                if _node_version(n)[0] != "GLIBC" and not _covers(policy.ceilings[arch], oldest, n)
            )
            if beyond:
                reasons.append(f"{', '.join(beyond)} beyond {policy.name}")
    if libc in ("glibc", "mixed") and any(tag.startswith("musllinux_") for tag in claimed):
        reasons.append("a musllinux tag on binaries linked against glibc")
    return reasons


def abi_findings(abi: AbiFacts) -> list[Finding]:
    """Findings an :class:`AbiFacts` implies: ``mis-tagged``, ``external-library``, ``mixed-libc``."""
    findings = []
    musl_libc = [n for n in abi.needed_external if n.startswith("libc.musl-")]
    if musl_libc and "libc.so.6" in abi.needed_external:
        findings.append(Finding("mixed-libc", "error", "ELF files link against both glibc and musl"))
    if abi.mis_tagged:
        findings.append(Finding("mis-tagged", "error", _mis_tag_message(abi)))
    allowed = POLICIES[-1].whitelist
    findings += [
        _external_finding(soname)
        for soname in abi.needed_external
        if soname not in allowed and soname not in musl_libc
    ]
    return findings


def _mis_tag_message(abi: AbiFacts) -> str:
    claimed = ", ".join(abi.claimed_tags)
    if abi.libc == "musl":
        return f"tagged {claimed}, but its binaries link against musl, not glibc"
    if any(tag.startswith("musllinux_") for tag in abi.claimed_tags):
        return f"tagged {claimed}, but its binaries link against glibc, not musl"
    needs = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("glibc", abi.min_glibc),
            ("GLIBCXX", abi.min_glibcxx),
            ("CXXABI", abi.min_cxxabi),
            ("GCC", abi.min_gcc),
        )
        if value
    )
    best = f"; {abi.computed_tag} at best" if abi.computed_tag else ""
    return f"tagged {claimed}, but its binaries need {needs}: systems the tag admits cannot load them{best}"
