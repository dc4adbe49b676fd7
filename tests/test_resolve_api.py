"""``POST /api/v1/resolve`` through a real proxy over two real upstreams, and its locks installed for real.

The graph: app 1.0 -> libb>=1, ``libc; sys_platform == "win32"`` (never on Linux) and the extra
``fast`` -> fastlib; libb 1.0 / 2.0 (-> tinyutil) / 3.0 (Requires-Python >=3.99: never usable);
fastlib 1.0 and 1.1, the newest yanked (only ``==1.1`` may pick it). app and tinyutil live on an
HTML upstream without PEP 658 metadata, the rest on a JSON upstream with it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ProxyFactory, UpstreamFactory
from resolve_support import micropipenv_deploy, pins_of, post_resolve, this_machine, with_provides_extra
from support.clients import (
    _run,
    assert_ok,
    client_env,
    installed_versions,
    make_venv,
    micropipenv_install,
    uv_bin,
    venv_python,
    venv_site_packages,
)
from support.proxy import RunningProxy
from support.upstream import UpstreamServer
from support.wheels import build_wheel
from test_proxy_pages import proxy_config

pytestmark = pytest.mark.clients

EXPECTED = {"app": "1.0", "libb": "2.0", "tinyutil": "1.0", "fastlib": "1.0"}
FORMATS = ["requirements.txt", "Pipfile.lock", "pylock.toml"]
SEED = {"pip", "setuptools", "wheel"}


@dataclass
class Graph:
    proxy: RunningProxy
    first: UpstreamServer
    second: UpstreamServer


@pytest.fixture
def graph(upstreams: UpstreamFactory, proxy: ProxyFactory, wheel_dir: Path) -> Graph:
    first = upstreams(style="html", name="first")
    second = upstreams(style="json", range_support=True, metadata=True, name="second")
    app = build_wheel(
        wheel_dir,
        "app",
        "1.0",
        requires_dist=["libb>=1", 'libc; sys_platform == "win32"', 'fastlib>=1; extra == "fast"'],
    )
    first.add(with_provides_extra(app, ["fast"]))
    first.add(build_wheel(wheel_dir, "tinyutil", "0.5"))
    first.add(build_wheel(wheel_dir, "tinyutil", "1.0"))
    second.add(build_wheel(wheel_dir, "libb", "1.0"))
    second.add(build_wheel(wheel_dir, "libb", "2.0", requires_dist=["tinyutil>=1"], requires_python=">=3.8"))
    second.add(build_wheel(wheel_dir, "libb", "3.0", requires_python=">=3.99"))
    second.add(build_wheel(wheel_dir, "libc", "1.0"))
    second.add(build_wheel(wheel_dir, "fastlib", "1.0"))
    second.add(build_wheel(wheel_dir, "fastlib", "1.1"))
    second.yank("fastlib-1.1-py3-none-any.whl", "broken build")
    running = proxy(
        proxy_config([{"name": "first", "url": first.url}, {"name": "second", "url": second.url}])
    )
    return Graph(running, first, second)


@pytest.fixture
def resolved(graph: Graph) -> dict[str, Any]:
    response = post_resolve(
        graph.proxy, {"requirements": ["app[fast]"], "environment": this_machine(), "formats": FORMATS}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def _without_seed(versions: dict[str, str]) -> dict[str, str]:
    return {name: version for name, version in versions.items() if name not in SEED}


def _pip_check(venv: Path, home: Path) -> None:
    proc = _run([venv_python(venv), "-m", "pip", "check"], env=client_env(home), timeout=120)
    assert proc.returncode == 0, f"pip check failed:\n{proc.stdout}\n{proc.stderr}"


def _check_clean(proxy: RunningProxy) -> None:
    errors = proxy.error_lines()
    assert not errors, "proxy logged errors:\n" + "\n".join(line[:2000] for line in errors)


# -- the resolution itself ------------------------------------------------------------------------


def test_pins_follow_markers_extras_requires_python_and_yanks(graph: Graph, resolved: dict[str, Any]) -> None:
    assert pins_of(resolved) == EXPECTED  # no libc (win32 only), no libb 3.0, no yanked fastlib 1.1
    by_name = {pin["name"]: pin for pin in resolved["pins"]}
    assert by_name["app"]["extras"] == ["fast"]
    assert by_name["app"]["index"] == "first"
    assert by_name["tinyutil"]["index"] == "first"
    assert {by_name[name]["index"] for name in ("libb", "fastlib")} == {"second"}
    assert by_name["libb"]["filename"] == "libb-2.0-py3-none-any.whl"
    assert by_name["app"]["required_by"] == ["<requirements>"]
    assert by_name["fastlib"]["required_by"] == ["app"]
    assert by_name["tinyutil"]["required_by"] == ["libb"]
    # Every pin points at a file the proxy serves, with the hash of what it serves.
    for pin in resolved["pins"]:
        assert pin["url"].startswith(graph.proxy.url + "/files/")
        served = graph.proxy.get(pin["url"])
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == pin["sha256"]
    assert set(resolved["locks"]) == set(FORMATS)
    assert {entry["package"] for entry in resolved["justification"]} == set(EXPECTED)
    assert resolved["stats"]["decisions"] >= len(EXPECTED)
    _check_clean(graph.proxy)


def test_yanked_version_is_pinned_only_when_asked_for_exactly(graph: Graph) -> None:
    response = post_resolve(
        graph.proxy, {"requirements": ["app[fast]", "fastlib==1.1"], "environment": this_machine()}
    )
    assert response.status_code == 200, response.text
    assert pins_of(response.json())["fastlib"] == "1.1"
    loose = post_resolve(graph.proxy, {"requirements": ["fastlib>=1.1"], "environment": this_machine()})
    assert loose.status_code == 422, loose.text
    assert "fastlib" in loose.json()["report"]


def test_a_lower_bound_elsewhere_backtracks_to_an_older_release(graph: Graph) -> None:
    # libb 2.0 needs tinyutil>=1, which the user excludes: libb 1.0 (no dependencies) it is.
    response = post_resolve(
        graph.proxy, {"requirements": ["app", "tinyutil<1"], "environment": this_machine()}
    )
    assert response.status_code == 200, response.text
    assert pins_of(response.json()) == {"app": "1.0", "libb": "1.0", "tinyutil": "0.5"}


def test_marker_dependency_is_pinned_where_its_marker_holds(graph: Graph) -> None:
    # The same request for a (described) Windows machine: libc is needed there. The tags stay this
    # machine's: every file of this graph is py3-none-any, so only the marker differs.
    environment = this_machine()
    environment["markers"] = {**environment["markers"], "sys_platform": "win32", "os_name": "nt"}
    response = post_resolve(graph.proxy, {"requirements": ["app"], "environment": environment})
    assert response.status_code == 200, response.text
    assert pins_of(response.json()) == {"app": "1.0", "libb": "2.0", "tinyutil": "1.0", "libc": "1.0"}


# -- the three lock files, each installed by a real consumer ---------------------------------------


def test_requirements_txt_installs_with_pip_require_hashes(resolved: dict[str, Any], tmp_path: Path) -> None:
    lock = resolved["locks"]["requirements.txt"]
    assert "--hash=sha256:" in lock
    assert "libc" not in lock
    assert " @ " not in lock  # name==version lines, the files chosen by hash on the all-builds view
    path = tmp_path / "requirements.txt"
    path.write_text(lock)
    home = tmp_path / "home"
    venv = make_venv(tmp_path / "venv", home=home)
    # No --index-url on the command line: the lock's own --index-url (the all-builds view) is used.
    proc = _run(
        [venv_python(venv), "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", path],
        env=client_env(home),
        timeout=180,
    )
    assert_ok(proc)
    assert _without_seed(installed_versions(venv_site_packages(venv))) == EXPECTED
    _pip_check(venv, home)


def test_pipfile_lock_installs_with_micropipenv(resolved: dict[str, Any], tmp_path: Path) -> None:
    lock = json.loads(resolved["locks"]["Pipfile.lock"])
    assert lock["_meta"]["pipfile-spec"] == 6
    assert {source["name"] for source in lock["_meta"]["sources"]} == {"first", "second"}
    assert {name: entry["version"] for name, entry in lock["default"].items()} == {
        name: f"=={version}" for name, version in EXPECTED.items()
    }
    assert lock["default"]["app"]["extras"] == ["fast"]
    assert lock["default"]["libb"]["index"] == "second"
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pipfile.lock").write_text(resolved["locks"]["Pipfile.lock"])
    home = tmp_path / "home"
    venv = tmp_path / "deploy-venv"
    assert_ok(micropipenv_install(project, venv_dir=venv, home=home))
    assert _without_seed(installed_versions(venv_site_packages(venv))) == EXPECTED
    _pip_check(venv, home)


def test_pylock_toml_installs_with_uv(resolved: dict[str, Any], tmp_path: Path) -> None:
    text = resolved["locks"]["pylock.toml"]
    document = tomllib.loads(text)
    assert str(document["lock-version"]) == "1.0"
    assert {p["name"]: p["version"] for p in document["packages"]} == EXPECTED
    path = tmp_path / "pylock.toml"
    path.write_text(text)
    home = tmp_path / "home"
    env = client_env(home)
    venv = tmp_path / "uv-venv"
    assert_ok(_run([uv_bin(), "venv", "--no-config", "--python", sys.executable, venv], env=env, timeout=120))
    assert_ok(
        _run(
            [uv_bin(), "pip", "install", "--no-config", "--python", venv_python(venv), "-r", path],
            env=env,
            timeout=180,
        )
    )
    assert _without_seed(installed_versions(venv_site_packages(venv))) == EXPECTED
    check = _run([uv_bin(), "pip", "check", "--python", venv_python(venv)], env=env, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_pylock_toml_installs_with_pip(resolved: dict[str, Any], tmp_path: Path) -> None:
    # pip reads pylock.toml since 25.1 (experimental); the test environment's pip installs into a
    # fresh venv through --python, then the venv's own pip checks the result.
    path = tmp_path / "pylock.toml"
    path.write_text(resolved["locks"]["pylock.toml"])
    home = tmp_path / "home"
    venv = make_venv(tmp_path / "venv", home=home)
    proc = _run(
        [sys.executable, "-m", "pip", "--python", venv_python(venv), "install", "-r", path],
        env=client_env(home),
        timeout=180,
    )
    assert_ok(proc)
    assert _without_seed(installed_versions(venv_site_packages(venv))) == EXPECTED
    _pip_check(venv, home)


# -- bad requests and unsatisfiable ones -----------------------------------------------------------


def _error(graph: Graph, payload: Any) -> str:
    response = post_resolve(graph.proxy, payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == 400
    message = body["error"]
    assert isinstance(message, str)
    return message


def test_bad_requests_name_the_key_at_fault(graph: Graph) -> None:
    machine = this_machine()
    assert _error(graph, {"requirements": ["app"]}).startswith("environment:")
    message = _error(graph, {"requirements": ["app", "libb >>> 2"], "environment": machine})
    assert message.startswith("requirements[1]:")
    assert "requirements[0]" not in message
    message = _error(
        graph, {"requirements": ["app"], "dev_requirements": ["ok", "x==="], "environment": machine}
    )
    assert message.startswith("dev_requirements[1]:")
    message = _error(graph, {"requirements": ["app"], "environment": machine, "formats": ["poetry.lock"]})
    assert message.startswith("formats:")
    assert "requirements.txt" in message and "pylock.toml" in message
    message = _error(graph, {"requirements": ["app"], "environment": machine, "colour": "blue"})
    assert message == "unknown keys: colour"
    manifest = {"format": "requirements", "text": "app\n# a comment\nlibb >>> 2\n"}
    message = _error(graph, {"manifest": manifest, "environment": machine})
    assert message.startswith("manifest: requirements:3:")
    message = _error(graph, {"manifest": {"format": "setup.cfg", "text": "x"}, "environment": machine})
    assert message.startswith("manifest:")
    assert _error(graph, {"environment": machine}).startswith("nothing to resolve")
    bad_cpu = {**machine, "cpu": {"level": "x86_64_v9", "features": []}}
    assert "cpu.level" in _error(graph, {"requirements": ["app"], "environment": bad_cpu})
    bad_cuda = {**machine, "cuda": 12.4}
    assert "cuda" in _error(graph, {"requirements": ["app"], "environment": bad_cuda})
    assert _error(graph, b"{not json").startswith("the body must be JSON")
    assert _error(graph, ["app"]).startswith("the body must be a JSON object")
    assert not graph.proxy.error_lines()


def test_unsatisfiable_requirements_answer_422_naming_the_conflict(graph: Graph) -> None:
    response = post_resolve(
        graph.proxy, {"requirements": ["libb==2.0", "tinyutil<1"], "environment": this_machine()}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == 422
    report = body["report"]
    assert "libb" in report and "tinyutil" in report, report
    # libb 3.0 exists but needs Python >=3.99: the report says why it does not count.
    too_new = post_resolve(graph.proxy, {"requirements": ["libb>=3"], "environment": this_machine()})
    assert too_new.status_code == 422, too_new.text
    assert "libb" in too_new.json()["report"]
    assert not graph.proxy.error_lines()


def test_pipfile_manifest_lock_deploys_with_micropipenv(graph: Graph, tmp_path: Path) -> None:
    """A Pipfile in, a Pipfile.lock out that ``micropipenv install --deploy`` accepts next to it."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    pipfile = (
        f'[[source]]\nurl = "{graph.proxy.simple_url}"\nverify_ssl = false\nname = "proxy"\n\n'
        '[packages]\napp = {version = "*", extras = ["fast"]}\n\n'
        '[dev-packages]\ntinyutil = "<1"\n\n'
        f'[requires]\npython_version = "{python}"\n'
    )
    response = post_resolve(
        graph.proxy,
        {
            "manifest": {"format": "pipfile", "text": pipfile},
            "environment": this_machine(),
            "formats": ["Pipfile.lock"],
        },
    )
    assert response.status_code == 200, response.text
    # One resolution for default and develop together, as pipenv does: tinyutil<1 pulls libb to 1.0.
    assert pins_of(response.json()) == {"app": "1.0", "libb": "1.0", "tinyutil": "0.5", "fastlib": "1.0"}
    text = response.json()["locks"]["Pipfile.lock"]
    lock = json.loads(text)
    assert set(lock["default"]) == {"app", "libb", "fastlib"}
    assert set(lock["develop"]) == {"tinyutil"}
    # pipenv copies the Pipfile's [requires] table: "3.11", not a specifier.
    assert lock["_meta"]["requires"] == {"python_version": python}
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pipfile").write_text(pipfile)
    (project / "Pipfile.lock").write_text(text)
    venv = tmp_path / "deploy-venv"
    assert_ok(micropipenv_deploy(project, venv, tmp_path / "home"))
    assert _without_seed(installed_versions(venv_site_packages(venv))) == {
        "app": "1.0",
        "libb": "1.0",
        "fastlib": "1.0",
    }
