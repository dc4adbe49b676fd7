"""Hardware-matched pins and views: AVX2 builds, CUDA variants and glibc needs learnt by analysis.

Real proxies over real loopback upstreams, real wheels with compiled ELF files (gcc), real pip,
and the proxy's own analysis worker for the facts.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ProxyFactory, UpstreamFactory
from resolve_support import (
    announce,
    env_page_filenames,
    machine_glibc,
    pins_of,
    post_resolve,
    rejected_of,
    this_machine,
    wait_analysed,
)
from support.clients import (
    _run,
    assert_ok,
    call_native,
    client_env,
    installed_versions,
    pip_install,
    uv_bin,
    venv_python,
    venv_site_packages,
)
from support.proxy import RunningProxy
from support.upstream import UpstreamServer
from support.wheels import build_wheel, native_tag
from test_proxy_pages import JSON_V1, proxy_config

NATIVE_TAG = native_tag()  # cpXY-cpXY-linux_x86_64: how AICoE tags its optimized builds
PY = NATIVE_TAG.split("-", 1)[0]
MANYLINUX_TAG = f"{PY}-{PY}-manylinux2014_x86_64"

pytestmark = pytest.mark.clients

# AVX2 intrinsics on a value the compiler cannot fold: the .so really holds VEX-encoded AVX2.
AVX2_C = """
#include <immintrin.h>
static volatile int seed = 20;
int answer(void) {
    __m256i x = _mm256_set1_epi32(seed);
    __m256i y = _mm256_set1_epi32(seed + 2);
    return _mm256_extract_epi32(_mm256_add_epi32(x, y), 3);
}
"""
GENERIC_C = "int answer(void) { return 42; }\n"
# pthread_create@GLIBC_2.34 when built on glibc >= 2.34 (libpthread was merged into libc then).
PTHREAD_C = """
#include <pthread.h>
static void *work(void *arg) { return arg; }
int answer(void) {
    pthread_t thread;
    void *result = 0;
    if (pthread_create(&thread, 0, work, (void *)(long)42) != 0) return -1;
    pthread_join(thread, &result);
    return (int)(long)result;
}
"""

AVX2_FILE = f"fastmath-1.0-{NATIVE_TAG}.whl"
GENERIC_FILE = f"fastmath-1.0-{MANYLINUX_TAG}.whl"


def _cpu_has(flag: str) -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in line.split() for line in text.splitlines() if line.startswith("flags"))


def _refresh(proxy: RunningProxy, project: str) -> None:
    """Drop the cached merged page, so views are rendered with the facts analysed since."""
    with httpx.Client(trust_env=False, timeout=30.0) as client:
        response = client.post(
            proxy.url + "/api/v1/admin/refresh", params={"project": project}, headers=proxy.admin_headers()
        )
    assert response.status_code == 200, response.text


def _pin(body: dict[str, Any], name: str) -> dict[str, Any]:
    for pin in body["pins"]:
        if pin["name"] == name:
            assert isinstance(pin, dict)
            return pin
    raise AssertionError(f"{name} not pinned: {body['pins']}")


def _resolve_ok(proxy: RunningProxy, requirements: list[str], environment: dict[str, Any]) -> dict[str, Any]:
    response = post_resolve(
        proxy, {"requirements": requirements, "environment": environment, "formats": ["requirements.txt"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def _installed_wheel_tags(site: Path, dist: str) -> set[str]:
    found = list(site.glob(f"{dist}-*.dist-info/WHEEL"))
    assert len(found) == 1, found
    return {
        line.split(":", 1)[1].strip() for line in found[0].read_text().splitlines() if line.startswith("Tag:")
    }


# -- AVX2 -----------------------------------------------------------------------------------------


@dataclass
class Avx2Setup:
    proxy: RunningProxy
    avx2: UpstreamServer
    public: UpstreamServer


@pytest.fixture
def avx2_setup(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> Avx2Setup:
    avx2 = upstreams(style="html", name="avx2")
    public = upstreams(style="json", range_support=True, metadata=True, name="public")
    optimized = build_wheel(
        wheel_dir / "avx2", "fastmath", "1.0", tag=NATIVE_TAG, extension_c=AVX2_C, extension_flags=["-mavx2"]
    )
    generic = build_wheel(wheel_dir / "generic", "fastmath", "1.0", tag=MANYLINUX_TAG, extension_c=GENERIC_C)
    assert (optimized.name, generic.name) == (AVX2_FILE, GENERIC_FILE)
    avx2.add(optimized)
    public.add(generic)
    running = proxy(
        proxy_config(
            [
                {
                    "name": "avx2",
                    "url": avx2.url,
                    "only": ["fastmath"],
                    "hardware": {"cpu_features": ["avx2"]},
                },
                {"name": "public", "url": public.url},
            ]
        )
    )
    return Avx2Setup(running, avx2, public)


def _check_avx2_choices(proxy: RunningProxy) -> None:
    for linux_last in (True, False):
        machine = this_machine(cpu_level="x86_64_v3", features=["avx2", "fma"], linux_last=linux_last)
        if linux_last:
            # As pip < 26 ranks tags: manylinux2014 above linux_x86_64, so the tag order alone
            # would pick the generic build.
            assert machine["tags"].index(MANYLINUX_TAG) < machine["tags"].index(NATIVE_TAG)
        body = _resolve_ok(proxy, ["fastmath"], machine)
        pin = _pin(body, "fastmath")
        assert pin["index"] == "avx2", json.dumps(body["justification"])
        assert pin["filename"] == AVX2_FILE
        assert pin["filename"].endswith("linux_x86_64.whl")
        assert "built for this machine" in body["justification"][0]["message"]
        assert "/all/simple/" in body["locks"]["requirements.txt"]

    baseline = _resolve_ok(proxy, ["fastmath"], this_machine(cpu_level="x86_64_v2", features=[]))
    pin = _pin(baseline, "fastmath")
    assert pin["index"] == "public"
    assert pin["filename"] == GENERIC_FILE
    # Before analysis the index's hardware: (avx2) says why; after it, the level the code needs.
    reason = rejected_of(baseline, "fastmath")[AVX2_FILE]
    assert reason in ("needs CPU features avx2", "needs CPU level x86_64_v3"), reason


def test_avx2_machine_gets_the_avx2_build_before_analysis(avx2_setup: Avx2Setup) -> None:
    """What the index's ``hardware:`` says is enough: no facts are known yet."""
    _check_avx2_choices(avx2_setup.proxy)
    assert not avx2_setup.proxy.error_lines()


def test_avx2_machine_gets_the_avx2_build_after_analysis(avx2_setup: Avx2Setup) -> None:
    """Once analysed, the facts (AVX and AVX2 instructions seen, x86_64_v3) must not turn the
    choice around: a machine at x86_64_v3 has AVX whether or not its feature list repeats it."""
    proxy = avx2_setup.proxy
    announce(proxy, "avx2", ["fastmath"])
    announce(proxy, "public", ["fastmath"])
    analysed = {item["filename"]: item["facts"] for item in wait_analysed(proxy, "fastmath", "1.0")["files"]}
    assert analysed[AVX2_FILE]["cpu"]["level"] == "x86_64_v3"
    assert "avx2" in analysed[AVX2_FILE]["cpu"]["features"]
    assert analysed[GENERIC_FILE]["cpu"]["level"] == "x86_64"
    _check_avx2_choices(proxy)
    # The profile token names avx2 alone; x86_64_v3 implies the AVX the analysis also saw.
    _refresh(proxy, "fastmath")
    assert env_page_filenames(proxy, "x86_64_v3+avx2", "fastmath") == [AVX2_FILE]
    assert env_page_filenames(proxy, "x86_64_v2", "fastmath") == [GENERIC_FILE]
    assert not proxy.error_lines()


def test_env_views_and_plain_pip_pick_the_build_for_the_machine(
    avx2_setup: Avx2Setup, tmp_path: Path
) -> None:
    proxy = avx2_setup.proxy
    assert env_page_filenames(proxy, "x86_64_v2", "fastmath") == [GENERIC_FILE]
    assert env_page_filenames(proxy, "x86_64_v3+avx2", "fastmath") == [AVX2_FILE]
    assert env_page_filenames(proxy, "x86_64_v3+avx2+fma+cpu", "fastmath") == [AVX2_FILE]
    # A level implies its features: an x86_64_v4 (or v3) machine has AVX2 without naming it.
    assert env_page_filenames(proxy, "x86_64_v4", "fastmath") == [AVX2_FILE]
    assert env_page_filenames(proxy, "x86_64_v3", "fastmath") == [AVX2_FILE]
    assert env_page_filenames(proxy, "x86_64+avx", "fastmath") == [GENERIC_FILE]
    # Rule 4: the plain view leaves variant builds out.
    plain = proxy.get("/simple/fastmath/", headers={"Accept": JSON_V1}).json()
    assert [item["filename"] for item in plain["files"]] == [GENERIC_FILE]

    target = tmp_path / "target"
    proc = assert_ok(pip_install(f"{proxy.url}/env/x86_64_v3+avx2/simple/", ["fastmath"], target))
    assert AVX2_FILE in proc.stdout
    assert installed_versions(target) == {"fastmath": "1.0"}
    assert _installed_wheel_tags(target, "fastmath") == {NATIVE_TAG}
    if _cpu_has("avx2"):  # the build really runs AVX2 code here
        assert call_native(Path(sys.executable), "fastmath", "answer", pythonpath=target) == 42

    generic_target = tmp_path / "generic"
    assert_ok(pip_install(f"{proxy.url}/env/x86_64_v2/simple/", ["fastmath"], generic_target))
    assert _installed_wheel_tags(generic_target, "fastmath") == {MANYLINUX_TAG}
    assert call_native(Path(sys.executable), "fastmath", "answer", pythonpath=generic_target) == 42
    assert not proxy.error_lines()


# -- CUDA -----------------------------------------------------------------------------------------


@pytest.fixture
def cuda_proxy(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> RunningProxy:
    cu118 = upstreams(style="json", metadata=True, name="cu118")
    cu121 = upstreams(style="html", name="cu121")
    public = upstreams(style="json", range_support=True, metadata=True, name="public")
    cu118.add(build_wheel(wheel_dir, "minitorch", "2.1.0+cu118"))
    cu121.add(build_wheel(wheel_dir, "minitorch", "2.1.0+cu121"))
    public.add(build_wheel(wheel_dir, "minitorch", "2.1.0+cpu"))
    public.add(build_wheel(wheel_dir, "minitorch", "2.0.0+cpu"))
    return proxy(
        proxy_config(
            [
                {"name": "cu121", "url": cu121.url, "only": ["minitorch"], "hardware": {"cuda": "12.1"}},
                {"name": "cu118", "url": cu118.url, "only": ["minitorch"], "hardware": {"cuda": "11.8"}},
                {"name": "public", "url": public.url},
            ]
        )
    )


@pytest.mark.parametrize(
    ("cuda", "version", "index"),
    [("12.4", "2.1.0+cu121", "cu121"), (None, "2.1.0+cpu", "public"), ("11.8", "2.1.0+cu118", "cu118")],
)
def test_cuda_variant_follows_the_driver(
    cuda_proxy: RunningProxy, cuda: str | None, version: str, index: str
) -> None:
    body = _resolve_ok(cuda_proxy, ["minitorch==2.1.0"], this_machine(cuda=cuda))
    pin = _pin(body, "minitorch")
    assert (pin["version"], pin["index"]) == (version, index)
    assert pin["filename"] == f"minitorch-{version}-py3-none-any.whl"


def test_cuda_views_and_lock_install(cuda_proxy: RunningProxy, tmp_path: Path) -> None:
    def listed(profile: str) -> set[str]:
        return set(env_page_filenames(cuda_proxy, profile, "minitorch"))

    cpu = {"minitorch-2.1.0+cpu-py3-none-any.whl", "minitorch-2.0.0+cpu-py3-none-any.whl"}
    assert listed("x86_64+cpu") == cpu
    assert listed("x86_64+cu118") == {"minitorch-2.1.0+cu118-py3-none-any.whl", *cpu}
    assert listed("x86_64+cu121") == {
        "minitorch-2.1.0+cu121-py3-none-any.whl",
        "minitorch-2.1.0+cu118-py3-none-any.whl",
        *cpu,
    }
    assert listed("x86_64+cu124") == listed("x86_64+cu121")
    plain = cuda_proxy.get("/simple/minitorch/", headers={"Accept": JSON_V1}).json()
    assert {item["filename"] for item in plain["files"]} == cpu

    # The requirements.txt for a CUDA 12.4 machine pins the cu121 file by hash on the all-builds
    # view: real pip installs exactly that.
    body = _resolve_ok(cuda_proxy, ["minitorch"], this_machine(cuda="12.4"))
    lock = body["locks"]["requirements.txt"]
    assert re.search(r"--index-url \S+/all/simple/", lock), lock
    path = tmp_path / "requirements.txt"
    path.write_text(lock)
    target = tmp_path / "target"
    # No --index-url on the command line: the lock's own is the one pip uses.
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", path]
    assert_ok(_run([*command, "--target", target], env=client_env(tmp_path / "home"), timeout=180))
    assert installed_versions(target) == {"minitorch": "2.1.0+cu121"}
    assert not cuda_proxy.error_lines()


# -- glibc, learnt by analysis ------------------------------------------------------------------


@pytest.fixture
def glibc_proxy(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> RunningProxy:
    public = upstreams(style="json", range_support=True, metadata=True, name="public")
    public.add(build_wheel(wheel_dir, "newlib", "1.0", tag=MANYLINUX_TAG, extension_c=GENERIC_C))
    # Mis-tagged: manylinux2014 promises glibc 2.17, the binary needs 2.34.
    public.add(
        build_wheel(
            wheel_dir,
            "newlib",
            "2.0",
            tag=MANYLINUX_TAG,
            extension_c=PTHREAD_C,
            extension_flags=["-lpthread"],
        )
    )
    return proxy(proxy_config([{"name": "public", "url": public.url}]))


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_glibc_needs_learnt_by_analysis_steer_the_pin(glibc_proxy: RunningProxy) -> None:
    if _numbers(machine_glibc()) < (2, 34):
        pytest.skip("the mis-tagged build needs glibc >= 2.34 to be built here")
    old_machine = this_machine(glibc="2.28")
    # Before analysis nothing says newlib 2.0 needs more than its tag: the tag admits glibc 2.28.
    assert pins_of(_resolve_ok(glibc_proxy, ["newlib"], old_machine)) == {"newlib": "2.0"}

    queued = announce(glibc_proxy, "public", ["newlib"])
    assert queued == {"queued": 2, "projects": ["newlib"]}
    facts = wait_analysed(glibc_proxy, "newlib", "2.0")["files"][0]["facts"]
    abi = facts["abi"]
    assert abi["min_glibc"] is not None and _numbers(abi["min_glibc"]) >= (2, 34), abi
    assert abi["mis_tagged"] is True, abi
    assert wait_analysed(glibc_proxy, "newlib", "1.0")["files"][0]["facts"]["abi"]["min_glibc"] in (
        None,
        "2.2.5",
    )

    body = _resolve_ok(glibc_proxy, ["newlib"], old_machine)
    assert pins_of(body) == {"newlib": "1.0"}
    explained = rejected_of(body, "newlib")
    reason = explained[f"newlib-2.0-{MANYLINUX_TAG}.whl"]
    assert "glibc" in reason and "2.28" in reason and abi["min_glibc"] in reason, explained

    new_machine = this_machine(glibc="2.36")
    assert pins_of(_resolve_ok(glibc_proxy, ["newlib"], new_machine)) == {"newlib": "2.0"}
    # The one who asks for 2.0 on the old machine is told why it cannot have it.
    refused = post_resolve(glibc_proxy, {"requirements": ["newlib==2.0"], "environment": old_machine})
    assert refused.status_code == 422, refused.text
    assert "newlib" in refused.json()["report"]
    assert not glibc_proxy.error_lines()


def test_glibc_is_not_part_of_a_profile(glibc_proxy: RunningProxy) -> None:
    """A profile token names CPU and CUDA only, so an /env/ view cannot leave out a build that needs
    a newer glibc: both newlib builds are listed even once analysis knows 2.0 needs glibc 2.34.
    (The resolver, which gets the machine's glibc, does leave it out.)"""
    announce(glibc_proxy, "public", ["newlib"])
    wait_analysed(glibc_proxy, "newlib", "2.0")
    wait_analysed(glibc_proxy, "newlib", "1.0")
    _refresh(glibc_proxy, "newlib")
    assert set(env_page_filenames(glibc_proxy, "x86_64", "newlib")) == {
        f"newlib-1.0-{MANYLINUX_TAG}.whl",
        f"newlib-2.0-{MANYLINUX_TAG}.whl",
    }


# -- where the /env/ view and the resolver part ways ----------------------------------------------

AVX2_PTHREAD_C = PTHREAD_C.replace("int answer(void)", "int plain_answer(void)") + AVX2_C


@pytest.fixture
def avx2_new_glibc_proxy(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> RunningProxy:
    """fastmath's AVX2 build also needs glibc 2.34 (pthread_create); the generic build needs neither."""
    avx2 = upstreams(style="html", name="avx2")
    public = upstreams(style="json", range_support=True, metadata=True, name="public")
    avx2.add(
        build_wheel(
            wheel_dir / "avx2",
            "fastmath",
            "1.0",
            tag=NATIVE_TAG,
            extension_c=AVX2_PTHREAD_C,
            extension_flags=["-mavx2", "-lpthread"],
        )
    )
    public.add(
        build_wheel(wheel_dir / "generic", "fastmath", "1.0", tag=MANYLINUX_TAG, extension_c=GENERIC_C)
    )
    return proxy(
        proxy_config(
            [
                {
                    "name": "avx2",
                    "url": avx2.url,
                    "only": ["fastmath"],
                    "hardware": {"cpu_features": ["avx2"]},
                },
                {"name": "public", "url": public.url},
            ]
        )
    )


def test_lock_for_an_avx2_machine_with_old_glibc_installs_the_generic_build(
    avx2_new_glibc_proxy: RunningProxy, tmp_path: Path
) -> None:
    """The resolver knows the machine's glibc and pins the generic build; the machine's profile view
    does not (a profile has no glibc) and shows the AVX2 build alone. The requirements.txt points at
    the all-builds view, where the pinned hash makes pip take the generic file."""
    if _numbers(machine_glibc()) < (2, 34):
        pytest.skip("the AVX2 build needs glibc >= 2.34 to be built here")
    proxy = avx2_new_glibc_proxy
    announce(proxy, "avx2", ["fastmath"])
    announce(proxy, "public", ["fastmath"])
    analysed = {item["filename"]: item["facts"] for item in wait_analysed(proxy, "fastmath", "1.0")["files"]}
    assert _numbers(analysed[AVX2_FILE]["abi"]["min_glibc"]) >= (2, 34)

    machine = this_machine(cpu_level="x86_64_v3", features=["avx2", "fma"], glibc="2.28")
    body = _resolve_ok(proxy, ["fastmath"], machine)
    assert _pin(body, "fastmath")["filename"] == GENERIC_FILE
    assert "glibc" in rejected_of(body, "fastmath")[AVX2_FILE]

    lock = body["locks"]["requirements.txt"]
    # The machine view offers only the AVX2 build; the lock's all-builds view lists both and the
    # pinned hash picks the generic one.
    assert env_page_filenames(proxy, "x86_64_v3+avx2+fma+cpu", "fastmath") == [AVX2_FILE]
    assert "/all/simple/" in lock and "fastmath==1.0" in lock, lock
    path = tmp_path / "requirements.txt"
    path.write_text(lock)
    home = tmp_path / "home"
    target = tmp_path / "target"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", path]
    assert_ok(_run([*command, "--target", target], env=client_env(home), timeout=180))
    assert _installed_wheel_tags(target, "fastmath") == {MANYLINUX_TAG}
    venv = tmp_path / "uv-venv"
    uv_target = [uv_bin(), "pip", "install", "--no-config", "--python", venv_python(venv), "-r", path]
    assert_ok(
        _run(
            [uv_bin(), "venv", "--no-config", "--python", sys.executable, venv],
            env=client_env(home),
            timeout=120,
        )
    )
    assert_ok(_run(uv_target, env=client_env(home), timeout=180))
    assert _installed_wheel_tags(venv_site_packages(venv), "fastmath") == {MANYLINUX_TAG}
