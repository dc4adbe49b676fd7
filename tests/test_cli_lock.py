"""``index-proxy env`` and ``index-proxy lock`` as a user runs them: real processes, a real proxy over a
folder index of built wheels, and the locks installed by real pip and micropipenv."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import micropipenv
import pytest
from packaging.pylock import Pylock
from support.clients import (
    CLIENT_TIMEOUT,
    assert_ok,
    client_env,
    installed_versions,
    micropipenv_install,
    uv_bin,
    venv_site_packages,
)
from support.proxy import REPO_ROOT, RunningProxy, free_port
from support.wheels import build_wheel, sha256_file
from test_proxy_pages import proxy_config

from index_proxy import cli
from index_proxy.api_resolve import FORMATS as SERVER_FORMATS
from index_proxy.client import lock
from resolver.environment import Environment

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def hashes() -> dict[str, str]:
    """filename -> sha256 of the wheels the fixture index serves."""
    return {}


@pytest.fixture
def served(folder_index: Any, wheel_dir: Path, proxy: Any, hashes: dict[str, str]) -> RunningProxy:
    """A proxy over one folder index: a 1.0 (needs b>=1), b 1.0 and 2.0, c 1.0 (a dev tool)."""
    local = folder_index("local")
    for path in (
        build_wheel(wheel_dir, "a", "1.0", requires_dist=["b>=1"]),
        build_wheel(wheel_dir, "b", "1.0"),
        build_wheel(wheel_dir, "b", "2.0"),
        build_wheel(wheel_dir, "c", "1.0"),
    ):
        local.add(path)
        hashes[path.name] = sha256_file(path)
    running: RunningProxy = proxy(proxy_config([{"name": "local", "kind": "folder", "url": local.url}]))
    return running


@pytest.fixture
def run(tmp_path: Path) -> Cli:
    """``run(*args, cwd=..., env=...)``: ``python -m index_proxy ARGS`` with no pip/proxy settings of
    this machine (client_env), so loopback requests cannot be rerouted and nothing leaks in."""

    def call(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"PYTHONPATH": str(REPO_ROOT), **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "index_proxy", *args],
            cwd=cwd,
            env=client_env(tmp_path / "home", extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )

    return call


@pytest.fixture
def project(tmp_path: Path, run: Cli) -> Path:
    """A project directory holding machine.json, written by ``index-proxy env --output``."""
    directory = tmp_path / "project"
    directory.mkdir()
    assert_ok(run("env", "--output", "machine.json", cwd=directory))
    return directory


def _pins(requirements: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from a hashed requirements.txt."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in requirements.replace("\\\n", "\n").splitlines():
        line = line.strip()
        if "==" in line and not line.startswith(("#", "-")):
            current, version = line.split("==")
            pins[current] = (version.strip(), [])
        elif line.startswith("--hash=sha256:") and current:
            pins[current][1].append(line.removeprefix("--hash=sha256:"))
    return pins


def test_env_prints_what_the_server_schema_accepts(project: Path, run: Cli) -> None:
    written = json.loads((project / "machine.json").read_text())
    printed = json.loads(assert_ok(run("env", cwd=project)).stdout)
    assert printed == written
    environment = Environment.from_json(written)
    assert environment.markers["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert written["cuda"] is None  # no GPU on this machine


def test_lock_requirements_in_and_install_with_hashes(
    served: RunningProxy, project: Path, run: Cli, hashes: dict[str, str], tmp_path: Path
) -> None:
    (project / "requirements.in").write_text("a\n")
    done = assert_ok(
        run(
            "lock",
            "requirements.in",
            "--server",
            served.url,
            "--environment",
            "machine.json",
            "--format",
            "requirements.txt",
            "--format",
            "pylock.toml",
            cwd=project,
        )
    )
    # The summary and the justification: one line per package, saying why its file was chosen.
    assert "locked 2 packages" in done.stdout
    assert "decisions" in done.stdout
    assert "  a 1.0: best tag (py3-none-any)" in done.stdout
    assert "  b 2.0: best tag (py3-none-any)" in done.stdout

    requirements = (project / "requirements.txt").read_text()
    pins = _pins(requirements)
    assert pins == {
        "a": ("1.0", [hashes["a-1.0-py3-none-any.whl"]]),
        "b": ("2.0", [hashes["b-2.0-py3-none-any.whl"]]),
    }
    assert f"--index-url {served.url}/all/simple/" in requirements

    pylock = Pylock.from_dict(tomllib.loads((project / "pylock.toml").read_text()))
    by_name = {str(package.name): package for package in pylock.packages}
    assert set(by_name) == {"a", "b"}
    wheel = (by_name["b"].wheels or [])[0]
    assert wheel.name == "b-2.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": hashes["b-2.0-py3-none-any.whl"]}
    assert wheel.url is not None and wheel.url.startswith(served.url)

    # pip installs exactly the pinned files, through the view the lock names, hashes enforced.
    target = tmp_path / "installed"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--require-hashes",
            "-r",
            "requirements.txt",
            "--target",
            str(target),
        ],
        cwd=project,
        env=client_env(tmp_path / "pip-home"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    assert_ok(pip)
    assert installed_versions(target) == {"a": "1.0", "b": "2.0"}

    # uv installs the pylock.toml: each wheel by its URL through the proxy, its sha256 checked.
    uv_target = tmp_path / "uv-installed"
    uv = subprocess.run(
        [
            str(uv_bin()),
            "pip",
            "install",
            "--python",
            sys.executable,
            "--target",
            str(uv_target),
            "-r",
            "pylock.toml",
        ],
        cwd=project,
        env=client_env(tmp_path / "uv-home"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    assert_ok(uv)
    assert installed_versions(uv_target) == {"a": "1.0", "b": "2.0"}


def test_constraint_file_limits_versions(served: RunningProxy, project: Path, run: Cli) -> None:
    (project / "requirements.in").write_text("a\n")
    (project / "constraints.txt").write_text("b<2\n")
    args = [
        "lock",
        "--server",
        served.url,
        "--environment",
        "machine.json",
        "--constraint",
        "constraints.txt",
    ]
    printed = assert_ok(run(*args, "--output", "-", cwd=project))
    # With --output -, the lock alone is on stdout (pipeable); the summary is on stderr.
    assert _pins(printed.stdout)["b"][0] == "1.0"
    assert "locked 2 packages" in printed.stderr
    assert not (project / "requirements.txt").exists()


def test_pipfile_locks_to_pipfile_lock_with_sources(
    served: RunningProxy, project: Path, run: Cli, hashes: dict[str, str], tmp_path: Path
) -> None:
    (project / "Pipfile").write_text(
        '[[source]]\nname = "proxy"\nurl = "http://example.invalid/simple"\nverify_ssl = true\n\n'
        '[packages]\na = "*"\n\n[dev-packages]\nc = "*"\n\n[requires]\npython_version = "'
        f'{sys.version_info.major}.{sys.version_info.minor}"\n'
    )
    # No FILE: the Pipfile is found in the working directory; the server comes from INDEX_PROXY_URL.
    env = {"INDEX_PROXY_URL": served.url}
    assert_ok(run("lock", "--environment", "machine.json", cwd=project, env=env))
    locked = json.loads((project / "Pipfile.lock").read_text())
    assert locked["_meta"]["pipfile-spec"] == 6
    assert locked["_meta"]["sources"] == [
        {"name": "local", "url": f"{served.url}/index/local/simple/", "verify_ssl": True}
    ]
    assert set(locked["default"]) == {"a", "b"}
    assert locked["default"]["b"]["version"] == "==2.0"
    assert locked["default"]["b"]["hashes"] == [f"sha256:{hashes['b-2.0-py3-none-any.whl']}"]
    assert locked["default"]["b"]["index"] == "local"
    # Like `pipenv lock`, [dev-packages] is locked too, apart, and _meta.hash is the Pipfile's own, as
    # micropipenv computes it for `micropipenv install --deploy`.
    assert set(locked["develop"]) == {"c"}
    assert locked["_meta"]["hash"]["sha256"] == micropipenv._compute_pipfile_hash(
        tomllib.loads((project / "Pipfile").read_text())
    )

    # One request gives every lock the same packages, so mixing Pipfile.lock with a format that has
    # no dev section is refused unless --dev says the dev tools may go into both.
    mixed = run(
        "lock",
        "--environment",
        "machine.json",
        "--format",
        "Pipfile.lock",
        "--format",
        "requirements.txt",
        cwd=project,
        env=env,
    )
    assert mixed.returncode == 2 and "--dev" in mixed.stderr

    # micropipenv installs each package from the index its entry names, hashes checked by pip.
    assert_ok(micropipenv_install(project, venv_dir=tmp_path / "deploy"))
    installed = installed_versions(venv_site_packages(tmp_path / "deploy"))
    # The venv's own pip and setuptools aside; no c: micropipenv installs [dev-packages] only with --dev.
    assert {name: v for name, v in installed.items() if name not in ("pip", "setuptools")} == {
        "a": "1.0",
        "b": "2.0",
    }


def test_pyproject_dev_group_only_with_dev(served: RunningProxy, project: Path, run: Cli) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\ndependencies = ["a"]\n[dependency-groups]\ndev = ["c"]\n'
    )
    args = ("lock", "--server", served.url, "--environment", "machine.json")
    assert_ok(run(*args, cwd=project))
    assert set(_pins((project / "requirements.lock.txt").read_text())) == {"a", "b"}
    assert_ok(run(*args, "--dev", cwd=project))
    assert set(_pins((project / "requirements.lock.txt").read_text())) == {"a", "b", "c"}


def test_unsatisfiable_prints_the_report_and_exits_1(served: RunningProxy, project: Path, run: Cli) -> None:
    (project / "requirements.in").write_text("a\nb>=3\n")
    done = run("lock", "--server", served.url, "--environment", "machine.json", cwd=project)
    assert done.returncode == 1, done.stderr
    assert "cannot be satisfied" in done.stderr
    assert "b" in done.stderr.split("cannot be satisfied", 1)[1]  # the report names the culprit
    assert not (project / "requirements.txt").exists()


def test_request_the_server_refuses_exits_2(served: RunningProxy, project: Path, run: Cli) -> None:
    (project / "requirements.in").write_text("# nothing yet\n")
    done = run("lock", "--server", served.url, "--environment", "machine.json", cwd=project)
    assert done.returncode == 2
    assert "the server refused the request: nothing to resolve" in done.stderr


def test_unreachable_server_exits_2_naming_the_url(project: Path, run: Cli) -> None:
    (project / "requirements.in").write_text("a\n")
    url = f"http://127.0.0.1:{free_port()}"
    done = run("lock", "--server", url, "--environment", "machine.json", cwd=project)
    assert done.returncode == 2
    assert f"cannot reach {url}/api/v1/resolve" in done.stderr


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda env: env.pop("tags"), "tags:"),
        (lambda env: env["cpu"].update(level="x86_64_v9"), "cpu.level:"),
        (lambda env: env.update(cuda="twelve"), "cuda:"),
    ],
)
def test_bad_environment_file_exits_2_naming_the_key(
    project: Path, run: Cli, change: Callable[[dict[str, Any]], object], key: str
) -> None:
    environment = json.loads((project / "machine.json").read_text())
    change(environment)
    (project / "bad.json").write_text(json.dumps(environment))
    (project / "requirements.in").write_text("a\n")
    # The environment is checked before any request, so no server is needed to see the problem.
    url = f"http://127.0.0.1:{free_port()}"
    done = run("lock", "--server", url, "--environment", "bad.json", cwd=project)
    assert done.returncode == 2
    assert key in done.stderr and "bad.json" in done.stderr


def test_bad_manifest_names_the_line(project: Path, run: Cli) -> None:
    (project / "requirements.in").write_text("a\nb >= = 2\n")
    done = run("lock", "--environment", "machine.json", "--server", "http://127.0.0.1:9", cwd=project)
    assert done.returncode == 2
    assert "requirements:2:" in done.stderr


# --- the pure parts -------------------------------------------------------------------------------


def test_format_lists_agree() -> None:
    assert cli.LOCK_FORMATS == lock.FORMATS == SERVER_FORMATS
    assert cli.DEFAULT_SERVER == lock.DEFAULT_SERVER


def test_manifest_discovery_order(tmp_path: Path) -> None:
    for name in reversed(lock.MANIFEST_NAMES):
        (tmp_path / name).write_text("")
        assert lock.find_manifest(tmp_path).name == name
    with pytest.raises(lock.LockFailed, match=r"no requirements\.in"):
        lock.find_manifest(tmp_path / "missing")


@pytest.mark.parametrize(
    ("manifest", "fmt", "expected"),
    [
        ("requirements.in", "requirements.txt", "requirements.txt"),
        ("dev.in", "requirements.txt", "dev.txt"),
        ("requirements.txt", "requirements.txt", "requirements.lock.txt"),
        ("Pipfile", "requirements.txt", "requirements.lock.txt"),
        ("Pipfile", "Pipfile.lock", "Pipfile.lock"),
        ("pyproject.toml", "pylock.toml", "pylock.toml"),
    ],
)
def test_default_lock_paths(manifest: str, fmt: lock.LockFormat, expected: str) -> None:
    assert lock.default_lock_path(Path("/p") / manifest, fmt) == Path("/p") / expected


def test_without_dev_keeps_everything_else() -> None:
    pipfile = '[packages]\na = "*"\n[dev-packages]\nc = "*"\n[requires]\npython_version = "3.11"\n'
    stripped = tomllib.loads(lock.without_dev(pipfile, "pipfile"))
    assert stripped == {"packages": {"a": "*"}, "requires": {"python_version": "3.11"}}
    pyproject = (
        '[project]\nname = "x"\ndependencies = ["a"]\nrequires-python = ">=3.11"\n'
        '[dependency-groups]\ndev = ["c"]\ndocs = ["d"]\n'
    )
    stripped = tomllib.loads(lock.without_dev(pyproject, "pyproject"))
    assert stripped["dependency-groups"] == {"docs": ["d"]}
    assert stripped["project"]["requires-python"] == ">=3.11"
    assert lock.without_dev("a\n", "requirements") == "a\n"
