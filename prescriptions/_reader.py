"""Reading typed values out of composed YAML nodes, collecting every problem instead of stopping.

:class:`Reader` is the toolbox the schema modules use: each method reads one kind of value, reports
what is wrong with it (with the node's line and the key path) and returns ``None`` (or
:data:`INVALID` where ``None`` is a valid value) so the caller can carry on.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Collection, Sequence
from typing import Final, TypeVar, cast
from urllib.parse import urlsplit

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from prescriptions import _yaml
from prescriptions.model import OneOf, VersionSpec
from prescriptions.problems import Problem

__all__ = ["INVALID", "Reader", "join", "parse_specifier"]


def __dir__() -> list[str]:
    return __all__


T = TypeVar("T")


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()
"""Returned by item readers whose valid values include ``None``."""

_LINK_ID = re.compile(r"[a-z0-9_-]+")


def join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


@functools.lru_cache(maxsize=1 << 16)
def parse_specifier(text: str) -> SpecifierSet:
    """*text* parsed, shared between equal texts (rule databases repeat them a lot).

    :raises InvalidSpecifier:
    """
    return SpecifierSet(text)


def _did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {_yaml.quote(close[0])}?" if close else ""


class Reader:
    """Reads one file's nodes; :attr:`problems` holds (offset, problem) pairs in report order."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[tuple[int, Problem]] = []
        self.fatal = 0
        """How many problems so far make their unit invalid (all but duplicate keys)."""

    def report(
        self, node: yaml.Node | None, key: str, message: str, *, code: str = "schema", fatal: bool = True
    ) -> None:
        line = None if node is None else _yaml.line_of(node)
        offset = -1 if node is None else _yaml.offset_of(node)
        self.problems.append((offset, Problem(self.file, line, key, message, code)))
        self.fatal += fatal

    # -- containers --

    def fields(
        self,
        node: yaml.Node,
        key: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        *,
        what: str | None = None,
    ) -> dict[str, yaml.Node] | None:
        """The values of mapping *node* by key; ``None`` (reported) when it is not a mapping.

        Unknown keys, missing required keys and keys given twice are reported; of keys given twice
        the last counts, as YAML loaders (and so Thoth) read them.
        """
        if not isinstance(node, yaml.MappingNode):
            what = what or "a mapping with " + ", ".join(allowed)
            self.report(node, key, f"expected {what}, got {_yaml.describe(node)}")
            return None
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _yaml.MERGE:
                if key_node.value in seen:
                    first = _yaml.line_of(seen[key_node.value])
                    self.report(
                        key_node,
                        join(key, key_node.value),
                        f"key given twice (first at line {first}); the last one counts, remove the other",
                        code="duplicate-key",
                        fatal=False,
                    )
                seen.setdefault(key_node.value, key_node)
        if any(k.tag == _yaml.MERGE for k, _ in node.value):
            try:
                _yaml.flatten(node)
            except (yaml.YAMLError, RecursionError) as exc:
                reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else exc
                self.report(node, key, f"cannot merge keys here: {reason}")
                return None
        fields: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.report(key_node, key, f"keys must be plain names, got {_yaml.describe(key_node)}")
                continue
            name = str(key_node.value)
            if name in allowed:
                fields[name] = value_node
            else:
                self.report(
                    key_node,
                    join(key, name),
                    f"unknown key{_did_you_mean(name, allowed)} (valid keys: {', '.join(allowed)})",
                )
        for name in required:
            if name not in fields:
                self.report(node, join(key, name), "missing required key")
        return fields

    def items(
        self, node: yaml.Node, key: str, *, nonempty: bool = True, what: str = "a list"
    ) -> list[tuple[str, yaml.Node]] | None:
        """(key, node) of each item of list *node*; ``None`` (reported) when not a (non-empty) list."""
        if not isinstance(node, yaml.SequenceNode):
            self.report(node, key, f"expected {what}, got {_yaml.describe(node)}")
            return None
        if nonempty and not node.value:
            self.report(node, key, f"expected {what} with at least one item, got an empty list")
            return None
        return [(f"{key}[{position}]", item) for position, item in enumerate(node.value)]

    def mapping_or_items(self, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node]] | None:
        """A single mapping (as one item keyed *key*) or a non-empty list of them (``key[i]``)."""
        if isinstance(node, yaml.SequenceNode):
            return self.items(node, key, what="a mapping or a list of mappings")
        return [(key, node)]

    def one_of(
        self,
        node: yaml.Node,
        key: str,
        read_item: Callable[[yaml.Node, str], T | _Invalid],
        *,
        nonempty: bool = True,
    ) -> OneOf[T] | None:
        """A list of items, or ``{not: [items]}``; ``None`` (reported) when invalid."""
        negated = False
        list_node, list_key = node, key
        if isinstance(node, yaml.MappingNode):
            fields = self.fields(node, key, ("not",), ("not",), what="a list or {not: [...]}")
            if fields is None or "not" not in fields:
                return None
            negated, list_node, list_key = True, fields["not"], join(key, "not")
        items = self.items(list_node, list_key, nonempty=nonempty, what="a list or {not: [...]}")
        if items is None:
            return None
        values: list[T] = []
        valid = True
        for item_key, item in items:
            value = read_item(item, item_key)
            if isinstance(value, _Invalid):
                valid = False
            else:
                values.append(value)
        return OneOf(tuple(values), negated, _yaml.line_of(node)) if valid else None

    # -- scalars --

    def string(self, node: yaml.Node, key: str, *, numbers: bool = False, example: str = "") -> str | None:
        """A non-empty string; with *numbers*, an unquoted number is taken as written (``8.10``)."""
        tags = (_yaml.STR, _yaml.INT, _yaml.FLOAT) if numbers else (_yaml.STR,)
        hint = f"; e.g. {example}" if example else ""
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            if isinstance(node, yaml.ScalarNode) and node.tag in (_yaml.INT, _yaml.FLOAT, _yaml.BOOL):
                hint = f"; quote it: {_yaml.quote(node.value)}"
            self.report(node, key, f"expected a string, got {_yaml.describe(node)}{hint}")
            return None
        if not node.value:
            self.report(node, key, f"must not be empty{hint}")
            return None
        return cast(str, node.value)

    def string_or_null(self, node: yaml.Node, key: str) -> str | _Invalid | None:
        if _yaml.is_null(node):
            return None
        text = self.string(node, key)
        return INVALID if text is None else text

    def boolean(self, node: yaml.Node, key: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _yaml.BOOL:
            return node.value.lower() in ("true", "yes", "on")
        self.report(node, key, f"expected true or false, got {_yaml.describe(node)}")
        return None

    def number(self, node: yaml.Node, key: str, *, example: str = "") -> float | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in (_yaml.INT, _yaml.FLOAT):
            value = float(_yaml.construct(node))
            if math.isfinite(value):
                return value
        hint = f"; e.g. {example}" if example else ""
        self.report(node, key, f"expected a number, got {_yaml.describe(node)}{hint}")
        return None

    def integer(self, node: yaml.Node, key: str) -> int | _Invalid | None:
        """A whole number, or ``None`` for an explicit null."""
        if _yaml.is_null(node):
            return None
        if isinstance(node, yaml.ScalarNode) and node.tag == _yaml.INT:
            return cast(int, _yaml.construct(node))
        self.report(node, key, f"expected a whole number or null, got {_yaml.describe(node)}")
        return INVALID

    def choice(self, node: yaml.Node, key: str, choices: Sequence[str], what: str) -> str | None:
        """One of *choices*, exactly as spelled there."""
        text = self.string(node, key)
        if text is None:
            return None
        if text not in choices:
            self.report(
                node,
                key,
                f"unknown {what} {_yaml.quote(text)}{_did_you_mean(text, choices)}"
                f" (one of {', '.join(choices)})",
            )
            return None
        return text

    # -- domain values --

    def specifier(self, node: yaml.Node, key: str) -> VersionSpec | None:
        """A PEP 440 specifier set in a string (``">=2.1,<2.4"``)."""
        if isinstance(node, yaml.ScalarNode) and node.tag in (_yaml.INT, _yaml.FLOAT):
            self.report(
                node,
                key,
                f"expected a version specifier in quotes, got {node.value};"
                f" write {_yaml.quote('==' + node.value)}",
            )
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag != _yaml.STR:
            self.report(node, key, f"expected a version specifier string, got {_yaml.describe(node)}")
            return None
        text = cast(str, node.value)
        try:
            specifier = parse_specifier(text)
        except InvalidSpecifier:
            self.report(
                node,
                key,
                f'{_yaml.quote(text)} is not a PEP 440 version specifier; e.g. ">=2.1,<2.4" or "==2.0.*"',
            )
            return None
        return VersionSpec(text, specifier, _yaml.line_of(node))

    def package_name(self, node: yaml.Node, key: str) -> str | None:
        """A package name, which Thoth requires in PEP 503-normalized form."""
        text = self.string(node, key)
        if text is None:
            return None
        normalized = canonicalize_name(text)
        if normalized != text:
            self.report(
                node,
                key,
                f"{_yaml.quote(text)} is not a normalized package name; write {_yaml.quote(normalized)}",
                code="non-normalized-name",
            )
            return None
        return text

    def link(self, node: yaml.Node, key: str) -> str | None:
        """An http(s) URL or a justification id (``tf_21_h5py``)."""
        text = self.string(node, key)
        if text is None:
            return None
        if text.startswith(("https://", "http://")):
            try:
                urlsplit(text)
            except ValueError as exc:
                self.report(node, key, f"{_yaml.quote(text)} is not a valid URL: {exc}")
                return None
        elif not _LINK_ID.fullmatch(text):
            self.report(
                node,
                key,
                f"{_yaml.quote(text)} is neither an http(s) URL nor a justification id "
                '(lowercase letters, digits, "_" and "-", e.g. "tf_21_h5py")',
            )
            return None
        return text
