"""Write a failed resolution's derivation as prose, the way PubGrub reports do.

Pure Python over :class:`~resolver.incompatibilities.Incompatibility` values. The walk is the
one in the PubGrub documentation ("Error Reporting") as pubgrub-rs's ``DefaultStringReporter``
implements it: the derivation is a DAG whose leaves are external facts; each derived
incompatibility becomes "Because X and Y, Z.", chains of one derived and one external cause
become "And because ..." lines, and an incompatibility used more than once gets a line number
``(1)`` so that later lines can refer back to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from resolver.incompatibilities import Incompatibility, Term

__all__ = ["describe", "report"]

_UNSATISFIABLE = "your requirements are unsatisfiable"


def _subject(term: Term) -> tuple[str, bool]:
    """How a dependant is named, and whether the verb is plural."""
    if term.all_versions and len(term.versions) > 1:
        return f"all versions of {term.package}", True
    return str(term), False


def _join(terms: Sequence[Term], word: str = "and") -> str:
    names = [str(t) for t in terms]
    if len(names) <= 2:
        return f" {word} ".join(names)
    return ", ".join(names[:-1]) + f" {word} {names[-1]}"


def _nothing_matches(dependency: str | None, hint: str | None) -> str:
    return f"there is no version of {dependency}" + (f" ({hint})" if hint else "")


def _external(incompat: Incompatibility) -> str:
    kind, terms = incompat.kind, incompat.terms
    if kind == "root":
        text = f"you require {incompat.dependency}"
        if incompat.hint:
            text += f", but {_nothing_matches(incompat.dependency, incompat.hint)}"
        return text
    if kind == "dependency":
        subject, plural = _subject(terms[0])
        text = f"{subject} {'depend' if plural else 'depends'} on {incompat.dependency}"
        if incompat.hint:
            text += f", but {_nothing_matches(incompat.dependency, incompat.hint)}"
        return text
    if kind == "constraint":
        return f"your constraint {incompat.dependency} forbids {_join(terms, 'and')}"
    if kind == "requires-python":
        subject, plural = _subject(terms[0])
        return (
            f"{subject} {'require' if plural else 'requires'} Python {incompat.requires_python}"
            f" (the environment has Python {incompat.python_version})"
        )
    if kind == "unavailable":
        return f"the metadata of {_join(terms)} is unavailable ({incompat.reason})"
    if kind == "vetoed":
        if len(terms) == 1:
            return f"{terms[0]} is ruled out by {incompat.dependency} ({incompat.reason})"
        return f"{_join(terms)} are ruled out together by {incompat.dependency} ({incompat.reason})"
    if kind == "root-required":
        return "your requirements must be resolved"
    raise ValueError(f"not an external incompatibility kind: {kind!r}")


def _derived(incompat: Incompatibility) -> str:
    terms = incompat.terms
    positive = [t for t in terms if t.positive]
    negative = [t for t in terms if not t.positive]
    if not terms:
        return _UNSATISFIABLE
    if len(terms) == 1:
        (term,) = terms
        if term.positive:
            return f"{term} cannot be used"
        return f"you require {term}" if incompat.involves_root else f"{term} is required"
    if len(positive) == 1 and len(negative) == 1:
        subject, plural = _subject(positive[0])
        return f"{subject} {'depend' if plural else 'depends'} on {negative[0]}"
    if not negative:
        return f"{_join(positive)} are incompatible"
    if not positive:
        return f"one of {_join(negative, 'or')} is required"
    verb = "is" if len(positive) == 1 else "are"
    return f"if {_join(positive)} {verb} used, one of {_join(negative, 'or')} is required"


def describe(incompat: Incompatibility) -> str:
    """The incompatibility as a clause: "a==1.0 depends on b>=2", "b<1.0 cannot be used"."""
    if incompat.kind == "derived":
        return _derived(incompat)
    return _external(incompat)


def _and(first: Incompatibility, second: Incompatibility) -> str:
    if first.kind == second.kind == "root" and first.terms and second.terms:
        return f"you require {first.dependency} and {second.dependency}"
    return f"{describe(first)} and {describe(second)}"


class _Writer:
    def __init__(self, incompatibilities: Sequence[Incompatibility]) -> None:
        self._by_id = {i.id: i for i in incompatibilities}
        uses = Counter(cause for i in incompatibilities if i.causes for cause in i.causes)
        self._shared = {i.id for i in incompatibilities if i.causes is not None and uses[i.id] > 1}
        self._line_of: dict[int, int] = {}
        self._refs = 0
        self.lines: list[str] = []

    def _causes(self, incompat: Incompatibility) -> tuple[Incompatibility, Incompatibility]:
        assert incompat.causes is not None
        first, second = incompat.causes
        return self._by_id[first], self._by_id[second]

    def _add_line_ref(self) -> int:
        self._refs += 1
        self.lines[-1] += f" ({self._refs})"
        return self._refs

    def build(self, current: Incompatibility) -> None:
        self._build(current)
        if current.id in self._shared and current.id not in self._line_of:
            self._line_of[current.id] = self._add_line_ref()

    def _build(self, current: Incompatibility) -> None:
        first, second = self._causes(current)
        derived1, derived2 = first.causes is not None, second.causes is not None
        if not derived1 and not derived2:
            self.lines.append(f"Because {_and(first, second)}, {describe(current)}.")
        elif derived1 and not derived2:
            self._one_each(first, second, current)
        elif derived2 and not derived1:
            self._one_each(second, first, current)
        else:
            self._both_derived(first, second, current)

    def _both_derived(
        self, first: Incompatibility, second: Incompatibility, current: Incompatibility
    ) -> None:
        ref1, ref2 = self._line_of.get(first.id), self._line_of.get(second.id)
        if ref1 and ref2:
            self.lines.append(
                f"Because {describe(first)} ({ref1}) and {describe(second)} ({ref2}), {describe(current)}."
            )
        elif ref1:
            self.build(second)
            self.lines.append(f"And because {describe(first)} ({ref1}), {describe(current)}.")
        elif ref2:
            self.build(first)
            self.lines.append(f"And because {describe(second)} ({ref2}), {describe(current)}.")
        else:
            self.build(first)
            if first.id in self._shared:
                self.lines.append("")
                self._build(current)
            else:
                ref1 = self._add_line_ref()
                self.lines.append("")
                self.build(second)
                self.lines.append(f"And because {describe(first)} ({ref1}), {describe(current)}.")

    def _one_each(
        self, derived: Incompatibility, external: Incompatibility, current: Incompatibility
    ) -> None:
        ref = self._line_of.get(derived.id)
        if ref:
            self.lines.append(
                f"Because {describe(derived)} ({ref}) and {describe(external)}, {describe(current)}."
            )
            return
        prior1, prior2 = self._causes(derived)
        if prior1.causes is not None and prior2.causes is None:
            prior_derived, prior_external = prior1, prior2
        elif prior2.causes is not None and prior1.causes is None:
            prior_derived, prior_external = prior2, prior1
        else:
            self.build(derived)
            self.lines.append(f"And because {describe(external)}, {describe(current)}.")
            return
        self.build(prior_derived)
        self.lines.append(f"And because {_and(prior_external, external)}, {describe(current)}.")


def report(incompatibilities: Sequence[Incompatibility]) -> str:
    """The derivation of the last incompatibility (the terminal one), causes listed before it."""
    if not incompatibilities:
        return "The requirements are unsatisfiable."
    terminal = incompatibilities[-1]
    if terminal.causes is None:
        return f"Because {describe(terminal)}, {_UNSATISFIABLE}."
    writer = _Writer(incompatibilities)
    writer.build(terminal)
    return "\n".join(writer.lines)
