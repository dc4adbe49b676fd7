"""The analysis result: JSON-serializable value objects with a versioned schema.

Bump :data:`SCHEMA_VERSION` whenever a field changes meaning or is removed; stored facts with an
older version are re-analysed rather than misread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = [
    "SCHEMA_VERSION",
    "AbiFacts",
    "CoreMetadataFacts",
    "CpuFacts",
    "CudaFacts",
    "ElfFacts",
    "Facts",
    "Finding",
    "Severity",
]

SCHEMA_VERSION = 1

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One named problem or observation. ``code`` is stable (documented in docs/analysis.md)."""

    code: str
    severity: Severity
    message: str
    path: str | None = None


@dataclass(frozen=True, slots=True)
class CoreMetadataFacts:
    """Core metadata as parsed by ``packaging.metadata`` (every validation error kept)."""

    source: str  # "wheel" (.dist-info/METADATA) or "sdist" (PKG-INFO)
    metadata_version: str | None = None
    name: str | None = None
    version: str | None = None
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    provides_extra: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ElfFacts:
    """One ELF file inside the wheel."""

    path: str
    machine: str  # "x86_64", "aarch64", ... (e_machine)
    elf_class: int  # 32 or 64
    needed: tuple[str, ...] = ()  # DT_NEEDED sonames
    # Required symbol versions per prefix from .gnu.version_r, e.g. {"GLIBC": ("2.2.5", "2.34")}
    symbol_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    isa_note: str | None = None  # from .note.gnu.property: "x86_64_v2" | "x86_64_v3" | "x86_64_v4" | None
    isa_note_features: tuple[str, ...] = ()  # x86 features named by the note (if any)
    features_observed: tuple[str, ...] = ()  # from the instruction scan: "avx", "avx2", "fma", "avx512f", ...
    dispatch_evidence: tuple[str, ...] = ()  # "cpuid", "xgetbv", "ifunc"


@dataclass(frozen=True, slots=True)
class AbiFacts:
    libc: Literal["glibc", "musl", "none"]
    min_glibc: str | None = None
    min_glibcxx: str | None = None
    min_cxxabi: str | None = None
    min_gcc: str | None = None
    needed_external: tuple[str, ...] = ()  # DT_NEEDED libraries not bundled in the wheel
    computed_tag: str | None = None  # the minimal manylinux_X_Y_<arch> / musllinux tag the ELF files need
    claimed_tags: tuple[str, ...] = ()  # the platform tags of the filename
    mis_tagged: bool = False  # the claimed tag promises an older glibc than the files need


@dataclass(frozen=True, slots=True)
class CpuFacts:
    level: str | None = None  # what the files need: "x86_64" | "x86_64_v2" | "x86_64_v3" | "x86_64_v4"
    features: tuple[str, ...] = ()  # features needed (note, or scan without dispatch evidence)
    level_from_note: str | None = None
    level_observed: str | None = None  # what the instruction scan saw (advisory)
    features_observed: tuple[str, ...] = ()
    runtime_dispatch: bool = False  # cpuid/xgetbv/ifunc seen: observed instructions may be optional
    source: Literal["note", "scan", "none"] = "none"


@dataclass(frozen=True, slots=True)
class CudaFacts:
    cuda_major: int | None = None
    cuda_version: str | None = None  # "12.1" when known (local label +cu121, nvidia-* pins)
    libraries: tuple[str, ...] = ()  # CUDA sonames needed: libcudart.so.12, libcublas.so.12, ...
    evidence: tuple[
        str, ...
    ] = ()  # "soname:libcudart.so.12", "requires-dist:nvidia-cuda-runtime-cu12", "local-label:cu121"


@dataclass(frozen=True, slots=True)
class Facts:
    filename: str
    sha256: str
    size: int
    kind: Literal["wheel", "sdist", "unknown"]
    schema: int = SCHEMA_VERSION
    metadata: CoreMetadataFacts | None = None
    abi: AbiFacts | None = None
    cpu: CpuFacts | None = None
    cuda: CudaFacts | None = None
    elf_files: tuple[ElfFacts, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def broken(self) -> bool:
        """A finding of severity ``error``: the file should not be installed."""
        return any(finding.severity == "error" for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Facts:
        def build(kind: type[Any], value: dict[str, Any] | None) -> Any:
            if value is None:
                return None
            known = {f.name for f in fields(kind)}
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items() if k in known})

        return cls(
            filename=data["filename"],
            sha256=data["sha256"],
            size=data["size"],
            kind=data["kind"],
            schema=data["schema"],
            metadata=build(CoreMetadataFacts, data.get("metadata")),
            abi=build(AbiFacts, data.get("abi")),
            cpu=build(CpuFacts, data.get("cpu")),
            cuda=build(CudaFacts, data.get("cuda")),
            elf_files=tuple(
                build(
                    ElfFacts, {**e, "symbol_versions": {k: tuple(v) for k, v in e["symbol_versions"].items()}}
                )
                for e in data.get("elf_files", ())
            ),
            findings=tuple(build(Finding, f) for f in data.get("findings", ())),
        )
