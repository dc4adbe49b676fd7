# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The PubGrub solver core, on integer ids.

Everything here is numbers: a *package* is an int id (0 is the root), a *version* is an index
into that package's sorted candidate array (0 = oldest), and a *version set* is a sorted list of
half-open index intervals ``[b0, b1) ∪ [b2, b3) ∪ ...`` stored as its boundaries
``b0 < b1 < b2 < ...`` (so ``[0, n)`` is "any version" and ``[]`` is "no version").
Intervals are disjoint and never adjacent, so equal sets have equal boundaries. Union,
intersection and difference are one merge sweep over two boundary lists; emptiness tests sweep
without allocating.

The algorithm is PubGrub (Weizenbaum, "PubGrub: Next-Generation Version Solving", 2018) as
pubgrub-rs implements it: incompatibilities, unit propagation, conflict resolution that learns
a new incompatibility and backjumps, and decisions. What names, specifiers and metadata mean is
the business of the Python layer (``resolver.resolver``), which asks this core what to decide
next, feeds it dependencies as incompatibilities, and renders the derivation when it fails.

A *term* is ``(package, positive, set)``: positive means "the package is selected at a version
in set"; negative means "the package is not selected, or is selected outside set". An
*incompatibility* is a set of terms (one per package) that must not all hold.
"""

cimport cython
from libc.stdlib cimport free, malloc

import numpy as np

cdef enum:
    _AND = 0
    _OR = 1
    _DIFF = 2

cdef enum:
    _SATISFIED = 0
    _ALMOST = 1
    _CONTRADICTED = 2
    _INCONCLUSIVE = 3

#: Packages that conflicted this often are decided before the others (uv's rule of five).
cdef int _HIGHLY_CONFLICTING = 5


@cython.final
cdef class VersionSet:
    """An immutable set of version indices: the boundaries of half-open intervals."""

    cdef int size
    cdef int* bounds

    def __dealloc__(self):
        if self.bounds != NULL:
            free(self.bounds)

    def to_array(self):
        out = np.empty(self.size, dtype=np.intc)
        cdef int[::1] view = out
        cdef int i
        for i in range(self.size):
            view[i] = self.bounds[i]
        return out


cdef VersionSet _EMPTY = VersionSet.__new__(VersionSet)


cdef inline bint _apply(int op, bint a, bint b) noexcept:
    if op == _AND:
        return a and b
    if op == _OR:
        return a or b
    return a and not b


cdef VersionSet _combine(VersionSet a, VersionSet b, int op):
    """``a op b`` by one sweep over both boundary lists."""
    cdef int na = a.size, nb = b.size, i = 0, j = 0, n = 0, x
    cdef bint ina = False, inb = False, cur = False, nxt
    cdef int* out
    cdef VersionSet result
    if na + nb == 0:
        return _EMPTY
    out = <int*>malloc((na + nb) * sizeof(int))
    if out == NULL:
        raise MemoryError()
    while i < na or j < nb:
        if j >= nb or (i < na and a.bounds[i] <= b.bounds[j]):
            x = a.bounds[i]
        else:
            x = b.bounds[j]
        if i < na and a.bounds[i] == x:
            ina = not ina
            i += 1
        if j < nb and b.bounds[j] == x:
            inb = not inb
            j += 1
        nxt = _apply(op, ina, inb)
        if nxt != cur:
            out[n] = x
            n += 1
            cur = nxt
    if n == 0:
        free(out)
        return _EMPTY
    result = VersionSet.__new__(VersionSet)
    result.size = n
    result.bounds = out
    return result


cdef bint _combine_is_empty(VersionSet a, VersionSet b, int op) noexcept:
    """Whether ``a op b`` is empty, without building it."""
    cdef int na = a.size, nb = b.size, i = 0, j = 0, x
    cdef bint ina = False, inb = False
    while i < na or j < nb:
        if j >= nb or (i < na and a.bounds[i] <= b.bounds[j]):
            x = a.bounds[i]
        else:
            x = b.bounds[j]
        if i < na and a.bounds[i] == x:
            ina = not ina
            i += 1
        if j < nb and b.bounds[j] == x:
            inb = not inb
            j += 1
        # The state after boundary x holds on [x, next boundary), which is never empty.
        if _apply(op, ina, inb):
            return False
    return True


cdef VersionSet _interval(int lo, int hi):
    cdef VersionSet result
    if hi <= lo:
        return _EMPTY
    result = VersionSet.__new__(VersionSet)
    result.bounds = <int*>malloc(2 * sizeof(int))
    if result.bounds == NULL:
        raise MemoryError()
    result.size = 2
    result.bounds[0] = lo
    result.bounds[1] = hi
    return result


cdef int _count(VersionSet s) noexcept:
    cdef int i, total = 0
    for i in range(0, s.size, 2):
        total += s.bounds[i + 1] - s.bounds[i]
    return total


cdef bint _contains(VersionSet s, int v) noexcept:
    cdef int i
    for i in range(0, s.size, 2):
        if s.bounds[i] <= v < s.bounds[i + 1]:
            return True
    return False


cdef bint _equal(VersionSet a, VersionSet b) noexcept:
    cdef int i
    if a.size != b.size:
        return False
    for i in range(a.size):
        if a.bounds[i] != b.bounds[i]:
            return False
    return True


@cython.final
cdef class Term:
    cdef readonly int package
    cdef readonly bint positive
    cdef VersionSet versions


cdef Term _term(int package, bint positive, VersionSet versions):
    cdef Term t = Term.__new__(Term)
    t.package = package
    t.positive = positive
    t.versions = versions
    return t


cdef inline Term _negate(Term t):
    return _term(t.package, not t.positive, t.versions)


cdef inline bint _is_any(Term t) noexcept:
    return not t.positive and t.versions.size == 0


cdef Term _intersection(Term a, Term b):
    if a.positive:
        if b.positive:
            return _term(a.package, True, _combine(a.versions, b.versions, _AND))
        return _term(a.package, True, _combine(a.versions, b.versions, _DIFF))
    if b.positive:
        return _term(a.package, True, _combine(b.versions, a.versions, _DIFF))
    return _term(a.package, False, _combine(a.versions, b.versions, _OR))


cdef Term _union(Term a, Term b):
    if a.positive:
        if b.positive:
            return _term(a.package, True, _combine(a.versions, b.versions, _OR))
        return _term(a.package, False, _combine(b.versions, a.versions, _DIFF))
    if b.positive:
        return _term(a.package, False, _combine(a.versions, b.versions, _DIFF))
    return _term(a.package, False, _combine(a.versions, b.versions, _AND))


cdef bint _subset(Term a, Term t) noexcept:
    """Every outcome ``a`` allows, ``t`` allows too ("a satisfies t")."""
    if a.positive:
        if t.positive:
            return _combine_is_empty(a.versions, t.versions, _DIFF)
        return _combine_is_empty(a.versions, t.versions, _AND)
    if t.positive:
        return False
    return _combine_is_empty(t.versions, a.versions, _DIFF)


cdef bint _disjoint(Term a, Term t) noexcept:
    """No outcome is allowed by both ("a contradicts t")."""
    if a.positive:
        if t.positive:
            return _combine_is_empty(a.versions, t.versions, _AND)
        return _combine_is_empty(a.versions, t.versions, _DIFF)
    if t.positive:
        return _combine_is_empty(t.versions, a.versions, _DIFF)
    return False


@cython.final
cdef class Incompatibility:
    cdef list terms          # of Term, at most one per package
    cdef object payload      # what the Python layer needs to explain it; None when derived
    cdef int cause1, cause2  # the two incompatibilities it was derived from, or -1

    cdef Term get(self, int package):
        cdef Term t
        for t in self.terms:
            if t.package == package:
                return t
        return None


@cython.final
cdef class Assignment:
    cdef int package, level, cause  # cause -1: a decision
    cdef Term term                  # what this assignment says
    cdef Term accumulated           # the intersection of the package's assignments up to here


cdef class Solver:
    """The partial solution, the incompatibility store, propagation and conflict resolution.

    Package 0 is the root: create it first, with one version. The caller adds the external
    incompatibilities (``add_incompatibility``, ``add_dependency``), calls ``propagate`` until
    it returns -1, then ``pick_package`` and, once the chosen version's dependencies are in,
    ``add_version``. ``propagate`` returns the id of a terminal incompatibility when there is
    no solution; ``derivation`` walks its causes.
    """

    cdef list _n_versions        # per package: number of candidate versions
    cdef list _keys              # per package: the tie-break key for decisions (its name)
    cdef list _package_incompats # per package: ids of the incompatibilities that mention it
    cdef list _package_assigned  # per package: indices into _assignments, oldest first
    cdef list _current           # per package: its accumulated Term, or None
    cdef list _decided           # per package: decided version index, or -1
    cdef list _conflict_counts   # per package: how often it was the satisfier of a conflict
    cdef list _incompats         # of Incompatibility, by id
    cdef list _contradicted      # per incompatibility: level it was found contradicted at, or -1
    cdef list _contradicted_at   # per decision level: ids marked contradicted at that level
    cdef list _assignments       # of Assignment, in order
    cdef list _buffer            # packages whose incompatibilities need a propagation pass
    cdef dict _dependency_index  # (dependant, dependency) -> ids of mergeable dependencies
    cdef int _level
    cdef readonly long decisions
    cdef readonly long conflicts
    cdef readonly long propagations

    def __init__(self):
        self._n_versions = []
        self._keys = []
        self._package_incompats = []
        self._package_assigned = []
        self._current = []
        self._decided = []
        self._conflict_counts = []
        self._incompats = []
        self._contradicted = []
        self._contradicted_at = [[]]
        self._assignments = []
        self._buffer = []
        self._dependency_index = {}
        self._level = 0
        self.decisions = 0
        self.conflicts = 0
        self.propagations = 0

    # -- building ------------------------------------------------------------------------

    def add_package(self, int n_versions, str key):
        cdef int package = len(self._n_versions)
        if n_versions < 0:
            raise ValueError("n_versions must be >= 0")
        self._n_versions.append(n_versions)
        self._keys.append(key)
        self._package_incompats.append([])
        self._package_assigned.append([])
        self._current.append(None)
        self._decided.append(-1)
        self._conflict_counts.append(0)
        return package

    @property
    def n_packages(self):
        return len(self._n_versions)

    @property
    def n_incompatibilities(self):
        return len(self._incompats)

    cdef VersionSet _make_set(self, int package, object bounds):
        cdef int n = self._n_versions[package]
        arr = np.ascontiguousarray(bounds, dtype=np.intc)
        if arr.ndim != 1 or arr.shape[0] % 2:
            raise ValueError("a version set is an even-length 1-d sequence of interval boundaries")
        cdef const int[::1] view = arr
        cdef int size = view.shape[0], i
        for i in range(size):
            if view[i] < 0 or view[i] > n or (i and view[i] <= view[i - 1]):
                raise ValueError(f"bad interval boundaries {list(arr)} for {n} versions")
        if size == 0:
            return _EMPTY
        cdef VersionSet result = VersionSet.__new__(VersionSet)
        result.bounds = <int*>malloc(size * sizeof(int))
        if result.bounds == NULL:
            raise MemoryError()
        result.size = size
        for i in range(size):
            result.bounds[i] = view[i]
        return result

    cdef Term _make_term(self, int package, bint positive, object bounds):
        if not 0 <= package < len(self._n_versions):
            raise ValueError(f"unknown package id {package}")
        return _term(package, positive, self._make_set(package, bounds))

    cdef list _normalize(self, list terms):
        """One term per package (intersected); None when the terms can never all hold."""
        cdef list out = []
        cdef Term t, u
        cdef int k
        for t in terms:
            for k in range(len(out)):
                u = out[k]
                if u.package == t.package:
                    out[k] = _intersection(u, t)
                    break
            else:
                out.append(t)
        for t in out:
            if t.positive and t.versions.size == 0:
                return None
        return [t for t in out if not _is_any(t)]

    cdef int _store(self, list terms, object payload, int cause1, int cause2, bint register):
        cdef Incompatibility incompat = Incompatibility.__new__(Incompatibility)
        cdef int iid = len(self._incompats)
        cdef Term t
        incompat.terms = terms
        incompat.payload = payload
        incompat.cause1 = cause1
        incompat.cause2 = cause2
        self._incompats.append(incompat)
        self._contradicted.append(-1)
        if register:
            for t in terms:
                (<list>self._package_incompats[t.package]).append(iid)
        return iid

    cdef void _schedule(self, int package):
        if package not in self._buffer:
            self._buffer.append(package)

    def add_incompatibility(self, terms, payload):
        """Add an external incompatibility: ``terms`` is ``[(package, positive, bounds), ...]``.

        Returns its id, or -1 when the terms can never all hold (nothing is stored). Its
        packages are propagated by the next ``propagate``.
        """
        cdef list made = [self._make_term(p, positive, bounds) for p, positive, bounds in terms]
        cdef list normal = self._normalize(made)
        cdef Term t
        if normal is None:
            return -1
        iid = self._store(normal, payload, -1, -1, True)
        for t in normal:
            self._schedule(t.package)
        return iid

    def add_dependency(self, int package, int version, int dependency, bounds, payload):
        """``package == version`` depends on ``dependency`` in ``bounds``.

        Dependencies of consecutive versions with the same dependency set are merged into one
        incompatibility, as pubgrub-rs does, so that "a>=1.0,<2.0 depends on b>=2" is learned
        and explained once. Returns the id (the merged one, if merged), or -1.
        """
        if not 0 <= version < self._n_versions[package]:
            raise ValueError(f"version index {version} out of range for package {package}")
        cdef Term dependant = _term(package, True, _interval(version, version + 1))
        cdef Term needed = _negate(self._make_term(dependency, True, bounds))
        cdef list normal = self._normalize([dependant, needed])
        cdef list candidates
        cdef Incompatibility old
        cdef Term old_dependant, old_needed
        cdef int k, iid, old_id
        if normal is None:
            return -1
        if len(normal) != 2 or package == dependency:
            return self._store(normal, payload, -1, -1, True)
        key = (package, dependency)
        candidates = self._dependency_index.setdefault(key, [])
        for k in range(len(candidates)):
            old_id = candidates[k]
            old = self._incompats[old_id]
            old_dependant = old.get(package)
            old_needed = old.get(dependency)
            if old_needed.positive == needed.positive and _equal(old_needed.versions, needed.versions):
                merged = [_union(old_dependant, dependant), old_needed]
                iid = self._store(merged, old.payload, -1, -1, False)
                self._replace(package, old_id, iid)
                self._replace(dependency, old_id, iid)
                candidates[k] = iid
                return iid
        iid = self._store(normal, payload, -1, -1, True)
        candidates.append(iid)
        return iid

    cdef void _replace(self, int package, int old_id, int new_id):
        cdef list ids = self._package_incompats[package]
        cdef int k
        for k in range(len(ids)):
            if ids[k] == old_id:
                ids[k] = new_id
                return
        ids.append(new_id)

    def add_version(self, int package, int version, dependencies):
        """Decide ``package == version`` once its dependency incompatibilities are stored.

        The decision is skipped when one of them is already violated with it (propagation
        will then rule the version out). Returns whether the decision was made.
        """
        cdef Term exact = _term(package, True, _interval(version, version + 1))
        cdef int iid, almost
        cdef bint ok = True
        for iid in dependencies:
            if iid >= 0 and self._relation(self._incompats[iid], package, exact, &almost) == _SATISFIED:
                ok = False
                break
        if ok:
            self._add_decision(package, version)
        self._schedule(package)
        return ok

    # -- partial solution ----------------------------------------------------------------

    cdef void _push(self, int package, Term term, int cause):
        cdef Assignment a = Assignment.__new__(Assignment)
        current = self._current[package]
        a.package = package
        a.level = self._level
        a.cause = cause
        a.term = term
        a.accumulated = term if current is None else _intersection(<Term>current, term)
        (<list>self._package_assigned[package]).append(len(self._assignments))
        self._assignments.append(a)
        self._current[package] = a.accumulated

    cdef void _add_decision(self, int package, int version):
        self._level += 1
        self._contradicted_at.append([])
        self._push(package, _term(package, True, _interval(version, version + 1)), -1)
        self._decided[package] = version
        self.decisions += 1

    cdef void _add_derivation(self, int package, int cause):
        self._push(package, _negate((<Incompatibility>self._incompats[cause]).get(package)), cause)
        self.propagations += 1

    cdef void _mark_contradicted(self, int iid):
        self._contradicted[iid] = self._level
        (<list>self._contradicted_at[self._level]).append(iid)

    cdef void _backtrack(self, int level):
        cdef Assignment a
        cdef list assigned
        cdef int lvl, iid
        while self._assignments and (<Assignment>self._assignments[len(self._assignments) - 1]).level > level:
            a = self._assignments.pop()
            assigned = self._package_assigned[a.package]
            assigned.pop()
            if a.cause < 0:
                self._decided[a.package] = -1
            if assigned:
                self._current[a.package] = (
                    <Assignment>self._assignments[assigned[len(assigned) - 1]]
                ).accumulated
            else:
                self._current[a.package] = None
        for lvl in range(level + 1, len(self._contradicted_at)):
            for iid in self._contradicted_at[lvl]:
                self._contradicted[iid] = -1
        del self._contradicted_at[level + 1:]
        self._level = level

    cdef int _relation(self, Incompatibility incompat, int override, Term override_term, int* almost):
        """Satisfied, almost satisfied (``almost`` = the one open package), contradicted or
        inconclusive, against the partial solution (``override`` replaced by its term)."""
        cdef Term t, current
        cdef int unsatisfied = -1
        for t in incompat.terms:
            if t.package == override:
                current = override_term
            else:
                current = self._current[t.package]
            if current is None:
                # Nothing is known: only "any" would be satisfied, and it is never stored.
                if unsatisfied >= 0:
                    return _INCONCLUSIVE
                unsatisfied = t.package
                continue
            if _subset(current, t):
                continue
            if _disjoint(current, t):
                return _CONTRADICTED
            if unsatisfied >= 0:
                return _INCONCLUSIVE
            unsatisfied = t.package
        if unsatisfied < 0:
            return _SATISFIED
        almost[0] = unsatisfied
        return _ALMOST

    # -- propagation and conflict resolution ---------------------------------------------

    def propagate(self):
        """Unit propagation over the scheduled packages. Returns -1, or the id of a terminal
        incompatibility (the requirements are unsatisfiable)."""
        cdef int current, iid, k, relation, almost = -1, conflict, package = -1
        cdef list ids
        while self._buffer:
            current = self._buffer.pop()
            conflict = -1
            ids = self._package_incompats[current]
            k = len(ids) - 1
            while k >= 0:
                iid = ids[k]
                k -= 1
                if <int>self._contradicted[iid] >= 0:
                    continue
                relation = self._relation(self._incompats[iid], -1, None, &almost)
                if relation == _SATISFIED:
                    conflict = iid
                    break
                if relation == _ALMOST:
                    self._schedule(almost)
                    self._add_derivation(almost, iid)
                    self._mark_contradicted(iid)
                elif relation == _CONTRADICTED:
                    self._mark_contradicted(iid)
            if conflict >= 0:
                self.conflicts += 1
                conflict = self._resolve_conflict(conflict, &package)
                if package < 0:
                    self._buffer.clear()
                    return conflict
                self._buffer.clear()
                self._buffer.append(package)
                self._add_derivation(package, conflict)
                self._mark_contradicted(conflict)
        return -1

    cdef bint _is_terminal(self, Incompatibility incompat):
        cdef Term t
        if not incompat.terms:
            return True
        if len(incompat.terms) > 1:
            return False
        t = incompat.terms[0]
        return t.package == 0 and t.positive and _contains(t.versions, 0)

    cdef int _satisfier(self, int package, Term term, Term start):
        """Index of the earliest assignment after which ``package`` satisfies ``term``
        (intersecting each accumulated term with ``start`` when given)."""
        cdef Assignment a
        cdef Term acc
        for i in self._package_assigned[package]:
            a = self._assignments[i]
            acc = a.accumulated if start is None else _intersection(a.accumulated, start)
            if _subset(acc, term):
                return i
        raise AssertionError("conflict resolution: the incompatibility is not satisfied")

    cdef int _resolve_conflict(self, int iid, int* package_out) except? -2:
        """Learn from a satisfied incompatibility and backjump.

        Returns the learned incompatibility and sets ``package_out`` to the package to derive
        on, or -1 with the terminal incompatibility when there is no solution.
        """
        cdef Incompatibility incompat
        cdef Assignment satisfier, a
        cdef Term t
        cdef int k, best, best_k, index, previous
        cdef bint changed = False
        while True:
            incompat = self._incompats[iid]
            if self._is_terminal(incompat):
                package_out[0] = -1
                return iid
            best = -1
            best_k = -1
            indices = []
            for k in range(len(incompat.terms)):
                t = incompat.terms[k]
                index = self._satisfier(t.package, t, None)
                indices.append(index)
                if index > best:
                    best = index
                    best_k = k
            satisfier = self._assignments[best]
            previous = 1  # the root's decision level: never undone
            for k in range(len(incompat.terms)):
                if k != best_k:
                    a = self._assignments[indices[k]]
                    previous = max(previous, a.level)
            index = self._satisfier(satisfier.package, incompat.terms[best_k], satisfier.term)
            a = self._assignments[index]
            previous = max(previous, a.level)
            self._conflict_counts[satisfier.package] += 1
            if satisfier.cause < 0 or previous < satisfier.level:
                self._backtrack(previous)
                if changed:
                    for t in incompat.terms:
                        (<list>self._package_incompats[t.package]).append(iid)
                package_out[0] = satisfier.package
                return iid
            iid = self._prior_cause(iid, satisfier.cause, satisfier.package)
            changed = True

    cdef int _prior_cause(self, int iid, int cause, int package):
        """The resolvent of two incompatibilities on ``package``."""
        cdef Incompatibility a = self._incompats[iid], b = self._incompats[cause]
        cdef list terms = []
        cdef Term t, u, ta = None, tb = None
        cdef int k
        for t in a.terms:
            if t.package == package:
                ta = t
            else:
                terms.append(t)
        for t in b.terms:
            if t.package == package:
                tb = t
                continue
            for k in range(len(terms)):
                u = terms[k]
                if u.package == t.package:
                    terms[k] = _intersection(u, t)
                    break
            else:
                terms.append(t)
        u = _union(ta, tb)
        if not _is_any(u):
            terms.append(u)
        return self._store(terms, None, iid, cause, False)

    # -- decisions -----------------------------------------------------------------------

    def pick_package(self):
        """The next package to decide, or -1 when every required package is decided.

        Order: packages with one version left (``==`` pins), then packages that conflicted at
        least five times, then the fewest remaining versions; ties by key (the name), so the
        order of the requirements never matters.
        """
        cdef int p, n = len(self._n_versions), best = -1, tier, count
        cdef int best_tier = 3, best_count = 0
        cdef Term current
        for p in range(n):
            if <int>self._decided[p] >= 0:
                continue
            current = self._current[p]
            if current is None or not current.positive:
                continue
            count = _count(current.versions)
            if count <= 1:
                tier = 0
            elif <int>self._conflict_counts[p] >= _HIGHLY_CONFLICTING:
                tier = 1
            else:
                tier = 2
            if (
                best < 0
                or tier < best_tier
                or (tier == best_tier and count < best_count)
                or (tier == best_tier and count == best_count and self._keys[p] < self._keys[best])
            ):
                best, best_tier, best_count = p, tier, count
        return best

    def newest_versions(self, int package, int count):
        """Up to ``count`` newest version indices the partial solution still allows."""
        current = self._current[package]
        if current is None or not (<Term>current).positive:
            return []
        cdef VersionSet s = (<Term>current).versions
        cdef list out = []
        cdef int i = s.size - 2, v
        while i >= 0 and len(out) < count:
            v = s.bounds[i + 1] - 1
            while v >= s.bounds[i] and len(out) < count:
                out.append(v)
                v -= 1
            i -= 2
        return out

    def decided_version(self, int package):
        return self._decided[package]

    def conflict_count(self, int package):
        return self._conflict_counts[package]

    # -- explanation ---------------------------------------------------------------------

    def incompatibility(self, int iid):
        """``(terms, payload, cause1, cause2)`` with terms ``[(package, positive, bounds)]``."""
        cdef Incompatibility incompat = self._incompats[iid]
        cdef Term t
        terms = [(t.package, t.positive, t.versions.to_array()) for t in incompat.terms]
        return terms, incompat.payload, incompat.cause1, incompat.cause2

    def derivation(self, int iid):
        """The ids of ``iid`` and everything it was derived from, causes first."""
        cdef list order = []
        cdef set seen = set()
        cdef list stack = [(iid, False)]
        cdef Incompatibility incompat
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            incompat = self._incompats[node]
            if incompat.cause2 >= 0:
                stack.append((incompat.cause2, False))
            if incompat.cause1 >= 0:
                stack.append((incompat.cause1, False))
        return order
