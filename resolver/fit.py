"""Does a file fit a machine, and which fitting file of a version is best? Pure comparisons.

A file fits when one of its tags is supported and what it needs (CPU level and features, CUDA,
glibc) the machine has. Among fitting files, one made for this machine (a build from an index
flagged with ``hardware:``, or an optimized build the machine can run) beats a generic one;
then the environment's tag order decides, then index priority. AVX2 builds tagged
``linux_x86_64`` thus beat ``manylinux`` generic builds that the tag order alone would prefer.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from resolver.environment import CPU_LEVELS, Environment

__all__ = ["FileNeeds", "RankKey", "rank_key", "unmet_need", "wheel_tags"]


@dataclass(frozen=True, slots=True)
class FileNeeds:
    """What one file needs from a machine, from its name, its index and its analysed facts."""

    filename: str
    tags: frozenset[str]
    cpu_level: str | None = None
    cpu_features: frozenset[str] = frozenset()
    cuda: str | None = None  # "12.1", or a major alone ("12")
    min_glibc: str | None = None
    made_for_hardware: bool = False
    index_priority: int = 0


@dataclass(frozen=True, slots=True, order=True)
class RankKey:
    """Smaller is better."""

    generic: bool
    tag_rank: int
    index_priority: int


# What each x86-64 psABI level guarantees (cumulative), named as /proc/cpuinfo and the analyzers
# name them: a machine at a level has these whether or not its feature list repeats them.
_LEVEL_FEATURES = (
    frozenset({"cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"}),
    frozenset({"cx16", "lahf_lm", "popcnt", "sse3", "ssse3", "sse4_1", "sse4_2"}),
    frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"}),
    frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
)


def _level_features(level: str | None) -> frozenset[str]:
    rank = CPU_LEVELS.index(level) if level in CPU_LEVELS else 0
    return frozenset().union(*_LEVEL_FEATURES[: rank + 1])


def wheel_tags(filename: str) -> frozenset[str]:
    try:
        return frozenset(str(tag) for tag in parse_wheel_filename(filename)[3])
    except InvalidWheelFilename:
        return frozenset()


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def unmet_need(needs: FileNeeds, environment: Environment, *, check_tags: bool = True) -> str | None:
    """Why the file does not fit the machine, or None when it does.

    ``check_tags=False`` judges hardware only, for a view whose client applies its own tags.
    """
    if check_tags and not any(tag in environment.tag_rank for tag in needs.tags):
        return "no supported tag"
    if needs.cpu_level is not None:
        have = CPU_LEVELS.index(environment.cpu_level) if environment.cpu_level in CPU_LEVELS else 0
        if CPU_LEVELS.index(needs.cpu_level) > have:
            return f"needs CPU level {needs.cpu_level}"
    missing = needs.cpu_features - environment.cpu_features - _level_features(environment.cpu_level)
    if missing:
        return f"needs CPU features {', '.join(sorted(missing))}"
    if needs.cuda is not None:
        if environment.cuda is None:
            return f"needs CUDA {needs.cuda}; the machine has none"
        need, have = _numbers(needs.cuda), _numbers(environment.cuda)
        # A driver runs the CUDA versions up to its own; a bare major is compared as a major.
        if have[: len(need)] < need:
            return f"needs CUDA {needs.cuda}; the driver supports {environment.cuda}"
    glibc = environment.glibc
    if needs.min_glibc is not None and glibc is not None and _numbers(glibc) < _numbers(needs.min_glibc):
        return f"needs glibc {needs.min_glibc}; the machine has {glibc}"
    return None


def rank_key(needs: FileNeeds, environment: Environment) -> RankKey:
    tag_rank = min(
        (environment.tag_rank[tag] for tag in needs.tags if tag in environment.tag_rank), default=1 << 30
    )
    return RankKey(not needs.made_for_hardware, tag_rank, needs.index_priority)
