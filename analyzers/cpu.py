"""The x86-64 level a wheel's binaries need, from property notes and the instruction scan.

Per file:

* a ``GNU_PROPERTY_X86_ISA_1_NEEDED`` note is a hard, loader-enforced requirement (glibc >= 2.33
  refuses to load the file on a lower CPU): the file needs at least that level. The note is not a
  ceiling: marking is opt-in (``-mneeded``, ``-z x86-64-v3``) and distro start files stamp a baseline
  note on binaries whose own objects say nothing;
* without dispatch evidence, every extension the scan observed is needed too: nothing guards it;
* with dispatch evidence (CPUID/XGETBV, ifuncs, libgcc's CPU model) the observed extensions are most
  likely optional paths picked at run time: they stay advisory (``features_observed``,
  ``level_observed``) and ``runtime_dispatch`` is set.

The wheel needs the highest level any of its x86-64 files needs; ``source`` says whether a note
accounts for it ("note") or only the scan does ("scan").
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzers.facts import CpuFacts, ElfFacts
from analyzers.isa import LEVELS, level_of

__all__ = ["summarize_cpu"]


def _highest(levels: Sequence[str]) -> str | None:
    return max(levels, key=LEVELS.index, default=None)


def summarize_cpu(elfs: Sequence[ElfFacts]) -> CpuFacts | None:
    """The CPU level the x86-64 ELF files need, or None when there is none."""
    x86 = [elf for elf in elfs if elf.machine == "x86_64"]
    if not x86:
        return None
    noted = [elf for elf in x86 if elf.isa_note in LEVELS]
    level_from_note = _highest([elf.isa_note for elf in noted if elf.isa_note is not None])
    note_features = {feature for elf in noted for feature in elf.isa_note_features}
    scanned_needs = {feature for elf in x86 if not elf.dispatch_evidence for feature in elf.features_observed}
    observed = sorted({feature for elf in x86 for feature in elf.features_observed})
    level = _highest([level_of(scanned_needs), *filter(None, [level_from_note])]) or LEVELS[0]
    return CpuFacts(
        level=level,
        features=tuple(sorted(note_features | scanned_needs)),
        level_from_note=level_from_note,
        level_observed=level_of(observed),
        features_observed=tuple(observed),
        runtime_dispatch=any(elf.dispatch_evidence for elf in x86),
        source="note" if level_from_note == level else "scan",
    )
