"""The proxy's resolver agrees with uv: the same requirements, the same index, the same pins.

Every scenario is resolved twice against one real proxy: by ``POST /api/v1/resolve`` with this
machine's environment, and by real ``uv pip compile --python <this interpreter>`` reading the
proxy's ``/simple/``. Each scenario also states the pins a person works out by hand, so that two
resolvers agreeing on a wrong answer still fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ProxyFactory, UpstreamFactory
from resolve_support import (
    Pins,
    compiled_pins,
    pins_of,
    post_resolve,
    this_machine,
    uv_compile,
    with_provides_extra,
)
from support.proxy import RunningProxy
from support.wheels import build_wheel
from test_proxy_pages import proxy_config

pytestmark = pytest.mark.clients


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    requires: Sequence[str] = ()
    extras: Sequence[str] = ()
    requires_python: str | None = None
    yanked: bool = False


@dataclass(frozen=True)
class Scenario:
    requirements: Sequence[str]
    expected: Pins | None  # None: no solution exists
    dists: Sequence[Dist] = field(default_factory=tuple)
    min_conflicts: int = 0  # how many conflicts the proxy's resolver must at least have learnt


SCENARIOS: dict[str, Scenario] = {
    # top -> left, right; both reach base with different bounds: base 2.0 satisfies both, and the
    # newest base (3.0) is excluded by left.
    "diamond": Scenario(
        ["top"],
        {"top": "1.0", "left": "1.0", "right": "2.0", "base": "2.0"},
        (
            Dist("top", "1.0", ["left>=1", "right>=1"]),
            Dist("left", "1.0", ["base>=1,<3"]),
            Dist("right", "1.0", ["base>=1"]),
            Dist("right", "2.0", ["base>=2"]),
            Dist("base", "1.0"),
            Dist("base", "2.0"),
            Dist("base", "3.0"),
        ),
    ),
    # Extras on the user's requirement, on a dependency's requirement, and an extra that names
    # another extra of the same project (all -> speed + tls).
    "extras": Scenario(
        ["service[all]", "client"],
        {
            "service": "1.0",
            "client": "1.0",
            "accel": "2.0",
            "certs": "1.0",
            "codec": "1.0",
            "zlibx": "1.0",
        },
        (
            Dist(
                "service",
                "1.0",
                [
                    'accel>=2; extra == "speed"',
                    'certs; extra == "tls"',
                    'service[speed,tls]; extra == "all"',
                    'unused-extra-dep; extra == "docs"',
                ],
                extras=["speed", "tls", "all", "docs"],
            ),
            Dist("client", "1.0", ["codec[compress]"]),
            Dist("codec", "1.0", ['zlibx; extra == "compress"'], extras=["compress"]),
            Dist("accel", "1.0"),
            Dist("accel", "2.0"),
            Dist("certs", "1.0"),
            Dist("zlibx", "1.0"),
            Dist("unused-extra-dep", "1.0"),
        ),
    ),
    # Markers judged against this machine (CPython on Linux, Python 3); Requires-Python and a yanked
    # release are skipped too.
    "markers": Scenario(
        ["host"],
        {"host": "1.0", "on-linux": "1.0", "on-cpython": "1.0", "modern": "1.0"},
        (
            Dist(
                "host",
                "1.0",
                [
                    'on-linux; sys_platform == "linux"',
                    'on-windows; sys_platform == "win32"',
                    'on-cpython; implementation_name == "cpython" and python_version >= "3.8"',
                    'legacy; python_version < "3"',
                    'on-arm; platform_machine == "aarch64"',
                    "modern",
                ],
            ),
            Dist("on-linux", "1.0"),
            Dist("on-windows", "1.0"),
            Dist("on-cpython", "1.0"),
            Dist("legacy", "1.0"),
            Dist("on-arm", "1.0"),
            Dist("modern", "1.0"),
            Dist("modern", "2.0", requires_python=">=3.99"),
            Dist("modern", "1.5", yanked=True),
        ),
    ),
    # Only one solution, reached after several backtracks: each alpha N pins chain N, which pins
    # gadget N, which (for N >= 2) forbids the delta 4.0 that beta needs. Every alpha above 1.0
    # fails for a reason of its own, learnt one conflict at a time; beta 2.0 drags in an echo that
    # no alpha can satisfy.
    "backtracking": Scenario(
        ["alpha", "beta"],
        {"alpha": "1.0", "beta": "1.0", "chain": "1.0", "gadget": "1.0", "delta": "4.0"},
        (
            *(Dist("alpha", f"{n}.0", [f"chain=={n}"]) for n in range(1, 5)),
            *(Dist("chain", f"{n}.0", [f"gadget=={n}"]) for n in range(1, 5)),
            Dist("gadget", "1.0"),
            *(Dist("gadget", f"{n}.0", [f"delta<{n}"]) for n in range(2, 5)),
            *(Dist("delta", f"{n}.0") for n in range(1, 5)),
            Dist("beta", "2.0", ["delta==4", "echo>=1"]),
            Dist("beta", "1.0", ["delta==4"]),
            Dist("echo", "1.0", ["alpha>=5"]),
            Dist("echo", "2.0", ["alpha>=6"]),
        ),
        min_conflicts=3,
    ),
    # Pre-releases: not chosen by default, chosen when the specifier names one.
    "prereleases": Scenario(
        ["early", "late>=3.0b1"],
        {"early": "1.0", "late": "3.0b2"},
        (
            Dist("early", "1.0"),
            Dist("early", "2.0a1"),
            Dist("late", "2.0"),
            Dist("late", "3.0b1"),
            Dist("late", "3.0b2"),
        ),
    ),
    # hammer needs nail>=2, anvil needs nail<2: nothing satisfies both.
    "unsatisfiable": Scenario(
        ["hammer", "anvil"],
        None,
        (
            Dist("hammer", "1.0", ["nail>=2"]),
            Dist("anvil", "1.0", ["nail<2"]),
            Dist("nail", "1.0"),
            Dist("nail", "2.0"),
        ),
    ),
}


@pytest.fixture
def index(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> RunningProxy:
    """Every scenario's distributions on one JSON upstream (with PEP 658 metadata), behind a proxy."""
    upstream = upstreams(style="json", range_support=True, metadata=True, name="scenarios")
    seen: set[tuple[str, str]] = set()
    for scenario in SCENARIOS.values():
        for dist in scenario.dists:
            assert (dist.name, dist.version) not in seen, f"{dist.name} {dist.version} defined twice"
            seen.add((dist.name, dist.version))
            path = build_wheel(
                wheel_dir,
                dist.name,
                dist.version,
                requires_dist=list(dist.requires),
                requires_python=dist.requires_python,
            )
            if dist.extras:
                with_provides_extra(path, dist.extras)
            upstream.add(path)
            if dist.yanked:
                upstream.yank(path.name, "bad release")
    return proxy(proxy_config([{"name": "scenarios", "url": upstream.url}]))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_proxy_and_uv_agree(index: RunningProxy, name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    response = post_resolve(
        index, {"requirements": list(scenario.requirements), "environment": this_machine()}
    )
    code, out, err = uv_compile(index.simple_url, "\n".join(scenario.requirements) + "\n", tmp_path / "home")
    if scenario.expected is None:
        assert response.status_code == 422, response.text
        report = response.json()["report"]
        assert all(name in report for name in ("hammer", "anvil", "nail")), report
        assert code != 0, f"uv found a solution where none exists:\n{out}"
        assert "unsatisfiable" in err or "No solution found" in err, err
    else:
        assert response.status_code == 200, response.text
        assert code == 0, f"uv pip compile failed:\n{out}\n{err}"
        uv_pins = compiled_pins(out)
        proxy_pins = pins_of(response.json())
        assert proxy_pins == uv_pins, f"proxy {proxy_pins} != uv {uv_pins}"
        assert proxy_pins == scenario.expected
        assert response.json()["stats"]["conflicts"] >= scenario.min_conflicts
    assert not index.error_lines()


def test_variant_builds_differ_from_uv_on_the_plain_view_only(
    upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path, tmp_path: Path
) -> None:
    """Where they legitimately differ: the plain ``/simple/`` leaves variant builds out (DESIGN.md,
    merging rule 4), so uv reading it finds only the CPU build, while the resolver, told the
    machine has CUDA 12.4, pins the cu121 build. uv reading that machine's ``/env/`` view agrees."""
    cu121 = upstreams(style="json", metadata=True, name="cu121")
    public = upstreams(style="json", metadata=True, name="public")
    cu121.add(build_wheel(wheel_dir, "minitorch", "2.1.0+cu121"))
    public.add(build_wheel(wheel_dir, "minitorch", "2.1.0+cpu"))
    running = proxy(
        proxy_config(
            [
                {"name": "cu121", "url": cu121.url, "only": ["minitorch"], "hardware": {"cuda": "12.1"}},
                {"name": "public", "url": public.url},
            ]
        )
    )
    response = post_resolve(
        running, {"requirements": ["minitorch"], "environment": this_machine(cuda="12.4")}
    )
    assert response.status_code == 200, response.text
    assert pins_of(response.json()) == {"minitorch": "2.1.0+cu121"}
    code, out, err = uv_compile(running.simple_url, "minitorch\n", tmp_path / "plain")
    assert code == 0, err
    assert compiled_pins(out) == {"minitorch": "2.1.0+cpu"}
    code, out, err = uv_compile(f"{running.url}/env/x86_64_v2+cu124/simple/", "minitorch\n", tmp_path / "env")
    assert code == 0, err
    assert compiled_pins(out) == {"minitorch": "2.1.0+cu121"}
    assert not running.error_lines()
