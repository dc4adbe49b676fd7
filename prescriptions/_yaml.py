"""Position-keeping YAML: ``yaml.compose`` (libyaml when present) so every value knows its line.

Scalars are resolved with YAML 1.1's implicit types, exactly as Thoth's ``yaml.CLoader`` did, so
``off`` is a boolean and ``1.10`` a float here too; values a string was meant for are reported with
a hint to quote them.
"""

from __future__ import annotations

import json
from typing import Any, cast

import yaml

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "MERGE",
    "NULL",
    "STR",
    "compose",
    "construct",
    "describe",
    "flatten",
    "is_null",
    "line_of",
    "offset_of",
    "quote",
    "syntax_error",
]


def __dir__() -> list[str]:
    return __all__


_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MERGE = (
    _TAG + name for name in ("str", "int", "float", "bool", "null", "merge")
)
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def compose(text: str) -> yaml.Node | None:
    """The node tree of the single YAML document in *text*; ``None`` for an empty document.

    :raises yaml.YAMLError: for invalid YAML (see :func:`syntax_error`).
    """
    return yaml.compose(text, Loader=_LOADER)


def syntax_error(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(line, message) for a YAML error raised by :func:`compose`."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return None, f"invalid YAML: {exc}"
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.problem.startswith("but "):
        message = f"invalid YAML: {exc.context}, {exc.problem}"
    elif exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    hint = "indent with spaces, not tabs" if "\\t" in message else "check the indentation and quoting here"
    return (mark.line + 1 if mark else None), f"{message}; {hint}"


def line_of(node: yaml.Node) -> int:
    """The 1-based line *node* starts on."""
    return cast(int, node.start_mark.line) + 1


def offset_of(node: yaml.Node) -> int:
    return cast(int, node.start_mark.index)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL


def quote(text: str) -> str:
    """*text* in double quotes, escaped as JSON (which YAML reads back)."""
    return json.dumps(text, ensure_ascii=False)


def describe(node: yaml.Node) -> str:
    """*node* in a message: ``a mapping``, ``a list``, ``nothing``, ``"text"`` or the plain value."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == NULL:
        return "nothing"
    if node.tag == STR:
        return quote(node.value)
    if not node.tag.startswith(_TAG):
        return f"a value tagged {node.tag}"
    return str(node.value)


def construct(node: yaml.Node) -> Any:
    """*node* as plain Python data (what ``yaml.safe_load`` would give for it)."""
    # A fresh constructor each time: it keeps per-document state (anchors already built).
    return yaml.constructor.SafeConstructor().construct_document(node)


def flatten(node: yaml.MappingNode) -> None:
    """Resolve ``<<: *anchor`` merge keys in place (``compose`` leaves them)."""
    _CONSTRUCTOR.flatten_mapping(node)
