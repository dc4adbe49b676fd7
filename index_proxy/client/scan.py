"""``index-proxy lock --scan SRC_DIR``: which libraries the code uses, and which of their names.

Every ``.py`` file under SRC_DIR is parsed with :mod:`ast` (never imported or run). What is collected:
the modules imported, and every dotted name used through an import, resolved through aliases:

    import numpy as np           ->  numpy
    np.linalg.inv(x)             ->  numpy.linalg.inv
    from tempfile import mktemp  ->  tempfile, tempfile.mktemp
    mktemp()                     ->  tempfile.mktemp

grouped by top-level module, each list sorted: ``{"numpy": ["numpy", "numpy.linalg.inv"], ...}``.
That is the ``library_usage`` a resolve request carries; prescriptions match their
``should_include.library_usage`` symbols against it.

Left out: relative imports and the project's own top-level modules (the code's own names are no
library, and need not leave the machine), ``__future__``, virtual environments, hidden and build
directories. A file that does not parse is reported (``file:line: message``) and skipped.
An import anywhere in a file (in a function, say) counts for the whole file: this is a
conservative scan, not a type checker, and it ignores shadowing.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LibraryUsage", "ScanResult", "check_library_usage", "scan_file", "scan_source"]

LibraryUsage = dict[str, list[str]]

# Directory names never scanned: environments, caches, build output, other tools' trees.
SKIPPED_DIRECTORIES = frozenset(
    {"venv", "env", "build", "dist", "node_modules", "site-packages", "__pycache__", "__pypackages__"}
)


@dataclass(slots=True)
class ScanResult:
    usage: LibraryUsage = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file:line: message", the file skipped
    files: int = 0  # files scanned (parsed or not)


def scan_source(root: Path) -> ScanResult:
    """The library usage of every ``.py`` file under *root* (a directory or one file)."""
    result = ScanResult()
    own = _own_modules(root)
    found: dict[str, set[str]] = {}
    for path in _python_files(root):
        result.files += 1
        shown = str(path)  # as SRC_DIR was given, so relative SRC_DIRs give short messages
        try:
            names = scan_file(path.read_bytes(), shown)
        except SyntaxError as error:
            line = f":{error.lineno}" if error.lineno else ""
            result.problems.append(f"{shown}{line}: {error.msg}; file skipped")
            continue
        except (OSError, ValueError) as error:  # unreadable, or a null byte in the source
            result.problems.append(f"{shown}: cannot read: {error}; file skipped")
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top not in own:
                found.setdefault(top, set()).add(name)
    result.usage = {top: sorted(names) for top, names in sorted(found.items())}
    return result


def scan_file(source: bytes | str, filename: str = "<source>") -> set[str]:
    """The imported modules and resolved dotted names of one file's source.

    :raises SyntaxError: when the source does not parse.
    """
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name)
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    # ``import a.b`` binds ``a``; ``a.b.c`` then resolves through it.
                    top = alias.name.split(".", 1)[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "__future__":
                continue
            names.add(node.module)
            for alias in node.names:
                if alias.name == "*":
                    continue
                full = f"{node.module}.{alias.name}"
                names.add(full)
                aliases[alias.asname or alias.name] = full
    if aliases:
        _Uses(aliases, names).visit(tree)
    return names


class _Uses(ast.NodeVisitor):
    """Dotted names used through imported names: the longest chain, as written."""

    def __init__(self, aliases: Mapping[str, str], names: set[str]) -> None:
        self.aliases = aliases
        self.names = names

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        if isinstance(current, ast.Name) and current.id in self.aliases:
            self.names.add(".".join([self.aliases[current.id], *reversed(parts)]))
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases and isinstance(node.ctx, ast.Load):
            self.names.add(self.aliases[node.id])

    def visit_Import(self, node: ast.Import) -> None:
        return None  # the import itself is no use

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return None


def _python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        subdirectories[:] = sorted(name for name in subdirectories if not _skipped(here / name))
        for name in sorted(files):
            if name.endswith(".py") and not name.startswith("."):
                yield here / name


def _skipped(directory: Path) -> bool:
    name = directory.name
    return (
        name.startswith(".")
        or name in SKIPPED_DIRECTORIES
        or name.endswith(".egg-info")
        or (directory / "pyvenv.cfg").exists()  # a virtual environment under any name
    )


def _own_modules(root: Path) -> frozenset[str]:
    """Top-level module names the project itself defines: in SRC_DIR and in its ``src/`` layout."""
    if root.is_file():
        return frozenset()
    own: set[str] = set()
    for base in (root, root / "src"):
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            if entry.is_file() and entry.suffix == ".py":
                own.add(entry.stem)
            elif entry.is_dir() and (entry / "__init__.py").is_file() and not _skipped(entry):
                own.add(entry.name)
    return frozenset(own)


def check_library_usage(value: object) -> dict[str, tuple[str, ...]]:
    """A request's ``library_usage`` checked: a mapping of module names to lists of dotted names.

    :raises ValueError: naming the key that is wrong (for a server's 400 answer).
    """
    if not isinstance(value, Mapping):
        raise ValueError('library_usage: expected {"module": ["module.name", ...]}')
    checked: dict[str, tuple[str, ...]] = {}
    for module, names in value.items():
        if not isinstance(module, str) or not module:
            raise ValueError("library_usage: module names must be non-empty strings")
        if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"library_usage.{module}: expected a list of dotted names")
        checked[module] = tuple(names)
    return checked
