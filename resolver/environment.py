"""The machine a resolution is for: marker environment, supported tags, CPU, CUDA, glibc.

A client describes its machine (``index-proxy env`` writes this as JSON); the server never
looks at its own. Parsing collects every problem, each with its key, like the config does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from packaging.tags import Tag, parse_tag

from resolver._requirements import Lru

__all__ = ["CPU_LEVELS", "MARKER_KEYS", "Environment", "InvalidEnvironment"]

CPU_LEVELS = ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4")
MARKER_KEYS = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "platform_python_implementation",
    "python_version",
    "sys_platform",
)
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


class InvalidEnvironment(ValueError):
    """The environment description has problems; ``problems`` lists each as "key: message"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid environment: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Environment:
    markers: Mapping[str, str]
    tags: tuple[str, ...]  # most preferred first, as packaging.tags.sys_tags() orders them
    cpu_level: str | None = None
    cpu_features: frozenset[str] = frozenset()
    cuda: str | None = None  # the newest CUDA the driver supports, "12.4"; None: no usable GPU
    glibc: str | None = None  # "2.36"; None: not a glibc system
    tag_rank: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.tag_rank:
            object.__setattr__(self, "tag_rank", {tag: rank for rank, tag in enumerate(self.tags)})

    @property
    def arch(self) -> str:
        return self.markers.get("platform_machine", "")

    @classmethod
    def from_json(cls, data: Any) -> Environment:
        """Build from the JSON an ``index-proxy env`` writes; raises InvalidEnvironment."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise InvalidEnvironment(["environment: expected an object"])
        markers = data.get("markers")
        if not isinstance(markers, Mapping) or not all(isinstance(v, str) for v in markers.values()):
            problems.append(
                "markers: expected an object of strings (packaging.markers.default_environment())"
            )
            markers = {}
        missing = [key for key in MARKER_KEYS if key not in markers]
        if missing:
            problems.append(f"markers: missing {', '.join(missing)}")
        tags = data.get("tags")
        expanded: tuple[str, ...] = ()
        tag_rank: Mapping[str, int] = {}
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            problems.append(
                "tags: expected a non-empty list of tags, most preferred first (packaging.tags.sys_tags())"
            )
        else:
            key = tuple(tags)
            known = _TAG_LISTS.get(key)
            if known is not None:
                expanded, tag_rank = known
            else:
                found: list[str] = []
                before = len(problems)
                for position, text in enumerate(tags):
                    try:
                        found.extend(str(tag) for tag in _parse(text))
                    except ValueError:
                        problems.append(
                            f"tags[{position}]: {text!r} is not a tag like cp311-cp311-manylinux_2_17_x86_64"
                        )
                if len(problems) == before:
                    expanded = tuple(dict.fromkeys(found))
                    tag_rank = MappingProxyType({tag: rank for rank, tag in enumerate(expanded)})
                    _TAG_LISTS.put(key, (expanded, tag_rank))
        cpu = data.get("cpu") or {}
        level = cpu.get("level") if isinstance(cpu, Mapping) else None
        if level is not None and level not in CPU_LEVELS:
            problems.append(f"cpu.level: {level!r} is not one of {', '.join(CPU_LEVELS)}")
        features = cpu.get("features", []) if isinstance(cpu, Mapping) else []
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            problems.append("cpu.features: expected a list of feature names like avx2")
            features = []
        cuda, glibc = data.get("cuda"), data.get("glibc")
        for key, value in (("cuda", cuda), ("glibc", glibc)):
            if value is not None and (not isinstance(value, str) or not _VERSION.match(value)):
                problems.append(f'{key}: expected a version like "12.4" or null, got {value!r}')
        if problems:
            raise InvalidEnvironment(problems)
        return cls(
            markers=dict(markers),
            tags=expanded,
            tag_rank=tag_rank,
            cpu_level=level,
            cpu_features=frozenset(f.lower() for f in features),
            cuda=cuda,
            glibc=glibc,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "markers": dict(self.markers),
            "tags": list(self.tags),
            "cpu": {"level": self.cpu_level, "features": sorted(self.cpu_features)},
            "cuda": self.cuda,
            "glibc": self.glibc,
        }


_PARSED_TAGS: dict[str, frozenset[Tag]] = {}

# A client sends its whole tag list (~1,000 tags) with every request, and one kind of machine
# always sends the same list: keep the expanded tags and their ranks of the most recent lists.
# The ranks are read-only, as environments share them.
_TAG_LISTS: Lru[tuple[str, ...], tuple[tuple[str, ...], Mapping[str, int]]] = Lru(32)


def _parse(text: str) -> frozenset[Tag]:
    # Clients send the same ~1,000 tags with every request: parse each once per process.
    tags = _PARSED_TAGS.get(text)
    if tags is None:
        tags = parse_tag(text)
        if not tags:
            raise ValueError(text)
        if len(_PARSED_TAGS) > 50_000:
            _PARSED_TAGS.clear()
        _PARSED_TAGS[text] = tags
    return tags
