"""Resolve a synthetic 60-project graph with 50 versions each, in memory, and print the numbers.

Run: ``.venv/bin/python tests/resolver_cases/bench.py``. Not a test: the time depends on the
machine. Each version of ``p<i>`` depends on three later projects, usually with a lower bound
that moves with its own version, and in 30% of the cases with an unrelated upper bound instead,
so the newest versions conflict and the resolver has to backtrack and learn.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resolver_cases.driver import Index, resolve

PROJECTS = 60
VERSIONS = 50


def synthetic_index(seed: int = 0) -> Index:
    rng = random.Random(seed)
    index: dict[str, dict[str, dict[str, list[str]]]] = {}
    for i in range(PROJECTS):
        index[f"p{i}"] = {}
        later = list(range(i + 1, PROJECTS))
        for v in range(1, VERSIONS + 1):
            requires = []
            for j in sorted(rng.sample(later, min(3, len(later)))):
                spec = f">={max(1, v - rng.randint(0, 5))}.0"
                if rng.random() < 0.3:
                    spec = f"<{rng.randint(2, VERSIONS)}.0"
                requires.append(f"p{j}{spec}")
            index[f"p{i}"][f"{v}.0"] = {"requires": requires}
    return index


def main(repeat: int = 7) -> None:
    index = synthetic_index()
    requested = [f"p{i}" for i in range(10)]
    walls, runs = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        runs.append(resolve(index, requested))
        walls.append(time.perf_counter() - started)
    run = runs[0]
    stats = run.outcome.stats
    assert stats is not None
    resolver_ms = sorted(r.outcome.stats.seconds * 1000 for r in runs if r.outcome.stats)
    wall_ms = sorted(w * 1000 for w in walls)
    middle = len(runs) // 2
    pins = len(run.resolution.pins)
    print(f"{PROJECTS} projects x {VERSIONS} versions, {len(requested)} requested: {pins} pins")
    print(
        f"  steps {len(run.requests) + 1} (Requests {len(run.requests)}), decisions {stats.decisions},"
        f" conflicts {stats.conflicts}, propagations {stats.propagations}"
    )
    print(f"  metadata asked {stats.metadata_requests}, candidate lists asked {stats.candidate_requests}")
    print(
        f"  resolver time min {resolver_ms[0]:.1f} ms / median {resolver_ms[middle]:.1f} ms;"
        f" wall (with the in-memory provider) min {wall_ms[0]:.1f} ms / median {wall_ms[middle]:.1f} ms"
    )


if __name__ == "__main__":
    main()
