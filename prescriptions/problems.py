"""What the loader and the linter report: one :class:`Problem` per defect, with file, line and key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PrescriptionError", "Problem", "sort_problems"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect in a prescription file, printed as ``file:line: key: message``.

    :attr:`code` names the class of defect, for callers that filter (``"schema"``, ``"yaml"``,
    ``"unreadable"``, ``"duplicate-key"``, ``"duplicate-name"``, ``"non-normalized-name"``,
    ``"empty-specifier"``, ``"never-registers"``, ``"conflicting-run"``, ``"score-range"``).
    """

    file: str
    line: int | None
    """1-based; ``None`` when the problem has no place in the file (e.g. the file is unreadable)."""
    key: str
    """Where in the document, e.g. ``units.steps[0].match.package_version.version``; may be empty."""
    message: str
    code: str = "schema"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """*problems* in file order (stable for problems on the same line)."""
    return sorted(problems, key=lambda problem: (problem.file, problem.line or 0))


class PrescriptionError(ValueError):
    """Prescriptions failed to load; :attr:`problems` lists every problem, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
