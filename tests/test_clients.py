"""Real installers through a real proxy: pip, uv, pipenv (lock) and micropipenv (install).

Every test installs for real into a throwaway target/venv and reads back what got installed (the
.dist-info directories, an import of ``__version__``, and for the compiled wheel a ctypes call into
its shared object). Clients see the proxy's URL and nothing else (see support.clients.client_env).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FolderFactory, ProxyFactory, UpstreamFactory
from support.clients import (
    assert_ok,
    call_native,
    import_version,
    installed_versions,
    micropipenv_install,
    pip_install,
    pipenv_lock,
    read_pipfile_lock,
    uv_pip_compile,
    uv_pip_install,
    venv_python,
    venv_site_packages,
    write_pipfile,
)
from support.proxy import RunningProxy
from support.upstream import JSON_TYPE, FolderIndex, UpstreamServer
from support.wheels import build_sdist, build_wheel, native_tag

pytestmark = pytest.mark.clients

ANSWER_C = "int answer(void) { return 42; }\n"
NATIVE_TAG = native_tag()

GRAPH_EXPECTED = {"app": "1.0", "libb": "2.0", "tinyutil": "1.0", "fastcalc": "1.0"}
CONFUSION_EXPECTED = {"acme-utils": "1.0", "pubdep": "1.0"}
DROPPED = {"acme_utils-99.0-py3-none-any.whl", "Acme_Utils-100.0-py3-none-any.whl"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pins(compiled: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in compiled.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "==" in line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.split()[0].rstrip("\\").strip()
    return pins


def _locked_versions(project: Path) -> dict[str, str]:
    default = read_pipfile_lock(project)["default"]
    assert isinstance(default, dict)
    return {name: str(entry["version"]).removeprefix("==") for name, entry in default.items()}


def _check_proxy_clean(proxy: RunningProxy) -> None:
    # pip, uv and pipenv retry 5xx answers: an install can succeed although the proxy failed a request.
    errors = proxy.error_lines()
    assert not errors, "proxy logged errors:\n" + "\n".join(line[:2000] for line in errors)


def _without_seed(versions: Mapping[str, str]) -> dict[str, str]:
    # A stdlib venv comes with pip (and on older Pythons setuptools) from ensurepip; not ours to check.
    return {k: v for k, v in versions.items() if k not in {"pip", "setuptools", "wheel"}}


# -- a small dependency graph spread over three kinds of index ---------------------------------------


@dataclass
class Graph:
    proxy: RunningProxy
    legacy: UpstreamServer
    modern: UpstreamServer
    local: FolderIndex
    files: dict[str, Path]


@pytest.fixture
def graph(
    upstreams: UpstreamFactory,
    folder_index: FolderFactory,
    proxy: ProxyFactory,
    wheel_dir: Path,
) -> Graph:
    """app (HTML-only upstream) -> libb (JSON upstream with metadata) -> tinyutil; app -> fastcalc (folder).

    libb 3.0 carries a Requires-Python no interpreter meets (a lower bound: uv ignores upper bounds),
    so every client has to read requires-python through the proxy to land on 2.0.
    """
    legacy = upstreams(style="html", range_support=False, metadata=False, name="legacy")
    modern = upstreams(style="json", range_support=True, metadata=True, name="modern")
    local = folder_index("local")
    files = {
        "app-0.9": build_wheel(wheel_dir, "app", "0.9", requires_dist=["libb>=1"]),
        "app": build_wheel(wheel_dir, "app", "1.0", requires_dist=["libb>=1", "fastcalc>=1"]),
        "tinyutil": build_wheel(wheel_dir, "tinyutil", "1.0"),
        "libb-1.0": build_wheel(wheel_dir, "libb", "1.0"),
        "libb": build_wheel(wheel_dir, "libb", "2.0", requires_dist=["tinyutil>=1"], requires_python=">=3.8"),
        "libb-sdist": build_sdist(wheel_dir, "libb", "2.0", requires_dist=["tinyutil>=1"]),
        "libb-3.0": build_wheel(wheel_dir, "libb", "3.0", requires_python=">=3.99"),
        "fastcalc": build_wheel(wheel_dir, "fastcalc", "1.0", tag=NATIVE_TAG, extension_c=ANSWER_C),
    }
    for key in ("app-0.9", "app", "tinyutil"):
        legacy.add(files[key])
    for key in ("libb-1.0", "libb", "libb-sdist", "libb-3.0"):
        modern.add(files[key])
    local.add(files["fastcalc"])
    running = proxy(
        f"""
indexes:
  - {{name: legacy, url: "{legacy.url}"}}
  - {{name: modern, url: "{modern.url}"}}
  - {{name: local, kind: folder, url: "{local.url}"}}
"""
    )
    return Graph(running, legacy, modern, local, files)


def _check_graph_install(python: Path, site: Path, *, pythonpath: Path | None = None) -> None:
    assert _without_seed(installed_versions(site)) == GRAPH_EXPECTED
    assert import_version(python, "libb", pythonpath=pythonpath) == "2.0"
    assert import_version(python, "app", pythonpath=pythonpath) == "1.0"
    assert call_native(python, "fastcalc", "answer", pythonpath=pythonpath) == 42


def test_pip_installs_graph_through_proxy(graph: Graph, tmp_path: Path) -> None:
    target = tmp_path / "target"
    proc = assert_ok(pip_install(graph.proxy.simple_url, ["app"], target))
    _check_graph_install(Path(sys.executable), target, pythonpath=target)
    # The proxy, not some other source, produced the files: each upstream was asked for its project.
    assert graph.legacy.count("GET", "/simple/app/") >= 1
    assert graph.modern.count("GET", "/simple/libb/") >= 1
    assert graph.proxy.url in proc.stdout
    _check_proxy_clean(graph.proxy)


def test_uv_compiles_and_installs_graph_through_proxy(graph: Graph, tmp_path: Path) -> None:
    compiled = uv_pip_compile(graph.proxy.simple_url, "app\n")
    assert _pins(compiled) == GRAPH_EXPECTED
    venv = tmp_path / "uv-venv"
    assert_ok(uv_pip_install(graph.proxy.simple_url, ["app"], venv))
    _check_graph_install(venv_python(venv), venv_site_packages(venv))
    _check_proxy_clean(graph.proxy)


def test_pipenv_locks_and_micropipenv_installs_graph_through_proxy(graph: Graph, tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_pipfile(project, graph.proxy.simple_url, {"app": "*"})
    assert_ok(pipenv_lock(project))
    assert _locked_versions(project) == GRAPH_EXPECTED
    default = read_pipfile_lock(project)["default"]
    assert isinstance(default, dict)
    # The hashes pipenv locked are those of the files we built, as the proxy advertised them.
    for key, name in (("app", "app"), ("fastcalc", "fastcalc"), ("tinyutil", "tinyutil"), ("libb", "libb")):
        assert f"sha256:{_sha256(graph.files[key])}" in default[name]["hashes"], name
    assert f"sha256:{_sha256(graph.files['libb-1.0'])}" not in default["libb"]["hashes"]

    assert_ok(micropipenv_install(project))
    venv = project / "deploy-venv"
    _check_graph_install(venv_python(venv), venv_site_packages(venv))
    _check_proxy_clean(graph.proxy)


# -- dependency confusion -------------------------------------------------------------------------


@dataclass
class Confusion:
    proxy: RunningProxy
    internal: UpstreamServer
    public: UpstreamServer
    internal_wheel: Path


@pytest.fixture
def confusion(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> Confusion:
    """internal owns acme-* and has acme-utils 1.0; public has 99.0 and a differently spelled 100.0.

    public is listed FIRST (highest priority), so only the ``owns`` guard keeps its files out: plain
    first-index priority alone would hand every client the attacker's 100.0.
    """
    internal = upstreams(style="json", metadata=True, range_support=True, name="internal")
    public = upstreams(style="html", name="public")
    internal_dir = wheel_dir / "internal"
    public_dir = wheel_dir / "public"
    internal_wheel = build_wheel(internal_dir, "acme-utils", "1.0", requires_dist=["pubdep>=1"])
    internal.add(internal_wheel)
    public.add(build_wheel(public_dir, "acme-utils", "99.0", extra_files={"acme_utils/evil.py": b"x = 1\n"}))
    spelled = build_wheel(public_dir, "Acme_Utils", "100.0", extra_files={"acme_utils/evil.py": b"x = 2\n"})
    # Attackers are not bound to normalized filenames; the guard must compare normalized names.
    public.add(spelled.rename(public_dir / "Acme_Utils-100.0-py3-none-any.whl"))
    public.add(build_wheel(public_dir, "pubdep", "1.0"))
    running = proxy(
        f"""
indexes:
  - {{name: public, url: "{public.url}"}}
  - {{name: internal, url: "{internal.url}", owns: ["acme-*"]}}
"""
    )
    return Confusion(running, internal, public, internal_wheel)


def _check_guard_events(proxy: RunningProxy) -> None:
    events = proxy.guard_events()
    owned = [e for e in events if e["kind"] == "owned-elsewhere"]
    by_file = {e["filename"]: e for e in owned}
    assert set(by_file) >= DROPPED, events
    for filename in DROPPED:
        event = by_file[filename]
        assert event["project"] == "acme-utils", event
        assert event["index"] == "public", event
        assert event["kept_index"] == "internal", event
    # Neither the owner's own file nor an unowned project's may ever be reported as dropped.
    assert "acme_utils-1.0-py3-none-any.whl" not in by_file
    assert not any(e["project"] == "pubdep" for e in owned), events


def test_proxy_page_hides_confusion_files(confusion: Confusion) -> None:
    doc = confusion.proxy.get("/simple/acme-utils/", headers={"Accept": JSON_TYPE}).json()
    assert {f["filename"] for f in doc["files"]} == {confusion.internal_wheel.name}
    assert doc["versions"] == ["1.0"]
    # Any spelling of the name reaches the same guarded page (directly or by redirect).
    html = confusion.proxy.get("/simple/Acme_Utils/", headers={"Accept": "text/html"}, follow_redirects=True)
    assert html.status_code == 200
    assert confusion.internal_wheel.name in html.text
    assert not any(name in html.text for name in DROPPED)
    _check_guard_events(confusion.proxy)
    _check_proxy_clean(confusion.proxy)


def test_pip_resists_dependency_confusion(confusion: Confusion, tmp_path: Path) -> None:
    target = tmp_path / "target"
    assert_ok(pip_install(confusion.proxy.simple_url, ["acme-utils"], target))
    assert installed_versions(target) == CONFUSION_EXPECTED
    assert import_version(Path(sys.executable), "acme_utils", pythonpath=target) == "1.0"
    assert not (target / "acme_utils" / "evil.py").exists()
    # Asking for the attacker's version by name must fail, not fetch it from the public index.
    pinned = pip_install(confusion.proxy.simple_url, ["acme-utils==99.0"], tmp_path / "pinned")
    assert pinned.returncode != 0
    assert not (tmp_path / "pinned" / "acme_utils").exists()
    _check_guard_events(confusion.proxy)
    _check_proxy_clean(confusion.proxy)


def test_uv_resists_dependency_confusion(confusion: Confusion, tmp_path: Path) -> None:
    assert _pins(uv_pip_compile(confusion.proxy.simple_url, "acme-utils\n")) == CONFUSION_EXPECTED
    venv = tmp_path / "uv-venv"
    assert_ok(uv_pip_install(confusion.proxy.simple_url, ["acme-utils"], venv))
    assert _without_seed(installed_versions(venv_site_packages(venv))) == CONFUSION_EXPECTED
    assert import_version(venv_python(venv), "acme_utils") == "1.0"
    _check_guard_events(confusion.proxy)
    _check_proxy_clean(confusion.proxy)


def test_pipenv_and_micropipenv_resist_dependency_confusion(confusion: Confusion, tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_pipfile(project, confusion.proxy.simple_url, {"acme-utils": "*"})
    assert_ok(pipenv_lock(project))
    assert _locked_versions(project) == CONFUSION_EXPECTED
    default = read_pipfile_lock(project)["default"]
    assert isinstance(default, dict)
    assert default["acme-utils"]["hashes"] == [f"sha256:{_sha256(confusion.internal_wheel)}"]

    assert_ok(micropipenv_install(project))
    venv = project / "deploy-venv"
    assert _without_seed(installed_versions(venv_site_packages(venv))) == CONFUSION_EXPECTED
    assert import_version(venv_python(venv), "acme_utils") == "1.0"
    _check_guard_events(confusion.proxy)
    _check_proxy_clean(confusion.proxy)
