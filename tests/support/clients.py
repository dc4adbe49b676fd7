"""Real pip, uv, pipenv and micropipenv runs, isolated from this machine's configuration.

The machine has pip configuration (find-links, extra-index-url pointing at local mirrors, a
constraints file) in environment variables and in /etc; any of it leaking into a client run would let
the client install from somewhere other than the proxy and make a test pass for the wrong reason.
Every run therefore gets a scrubbed environment, a throwaway HOME and its own caches.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = [
    "CLIENT_TIMEOUT",
    "PIPENV_TIMEOUT",
    "ClientFailed",
    "assert_ok",
    "call_native",
    "client_env",
    "import_version",
    "installed_versions",
    "make_venv",
    "micropipenv_install",
    "pip_install",
    "pipenv_lock",
    "read_pipfile_lock",
    "uv_bin",
    "uv_pip_compile",
    "uv_pip_install",
    "venv_python",
    "venv_site_packages",
    "write_pipfile",
]

CLIENT_TIMEOUT = 180
PIPENV_TIMEOUT = 300

_DROP_PREFIXES = ("PIP_", "UV_", "PIPENV_", "VIRTUALENV_", "MICROPIPENV_", "CONDA_")
_DROP_NAMES = {
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
}


class ClientFailed(AssertionError):
    """A client exited non-zero; the message carries its command line and output."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.proc = proc
        super().__init__(describe(proc))


def _tail(text: str | None, lines: int = 80) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    cmd = " ".join(str(a) for a in proc.args) if isinstance(proc.args, list) else str(proc.args)
    return (
        f"command: {cmd}\nexit code: {proc.returncode}\n"
        f"--- stdout (tail) ---\n{_tail(proc.stdout)}\n--- stderr (tail) ---\n{_tail(proc.stderr)}"
    )


def assert_ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        raise ClientFailed(proc)
    return proc


def client_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without any client configuration, with HOME, caches and config dirs under ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(_DROP_PREFIXES) and key.upper() not in _DROP_NAMES
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            # A throwaway HOME/XDG: user-level pip.conf, uv.toml, pipenv settings and .netrc stay out.
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PYTHONNOUSERSITE": "1",
            # os.devnull as PIP_CONFIG_FILE makes pip skip the global and site files as well.
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_DEFAULT_TIMEOUT": "60",
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(home / "uv-cache"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            "VIRTUALENV_NO_PERIODIC_UPDATE": "1",
            "VIRTUALENV_NO_DOWNLOAD": "1",
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
        }
    )
    if extra:
        env.update(extra)
    return env


@contextmanager
def _home(home: Path | None) -> Iterator[Path]:
    if home is not None:
        yield home
        return
    with tempfile.TemporaryDirectory(prefix="client-home-") as tmp:
        yield Path(tmp)


def _run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(c) for c in cmd],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise AssertionError(
            f"client timed out after {timeout}s: {' '.join(str(c) for c in cmd)}\n"
            f"--- stdout (tail) ---\n{_tail(out)}\n--- stderr (tail) ---\n{_tail(err)}"
        ) from exc


def uv_bin() -> Path:
    from uv import find_uv_bin

    return Path(find_uv_bin())


# -- pip -----------------------------------------------------------------------------------------


def pip_install(
    index_url: str,
    reqs: Sequence[str],
    target_dir: Path,
    *,
    extra_args: Sequence[str] = (),
    home: Path | None = None,
    timeout: float = CLIENT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``pip install --target`` from ``index_url`` alone, wheels only."""
    with _home(home) as h:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--index-url",
            index_url,
            "--target",
            str(target_dir),
            "--only-binary",
            ":all:",
            *extra_args,
            *reqs,
        ]
        return _run(cmd, env=client_env(h), timeout=timeout)


# -- uv ------------------------------------------------------------------------------------------


def uv_pip_compile(
    index_url: str,
    requirements_in: str,
    *,
    extra_args: Sequence[str] = (),
    home: Path | None = None,
    timeout: float = CLIENT_TIMEOUT,
) -> str:
    """``uv pip compile`` of ``requirements_in`` (file content) for this interpreter; returns the output."""
    with _home(home) as h:
        req_file = h / "requirements.in"
        req_file.write_text(requirements_in)
        cmd = [
            uv_bin(),
            "pip",
            "compile",
            "--no-config",
            "--index-url",
            index_url,
            "--python",
            sys.executable,
            "--no-header",
            "--quiet",
            *extra_args,
            req_file,
        ]
        return assert_ok(_run(cmd, env=client_env(h), timeout=timeout)).stdout


def uv_pip_install(
    index_url: str,
    reqs: Sequence[str],
    venv_dir: Path,
    *,
    extra_args: Sequence[str] = (),
    home: Path | None = None,
    timeout: float = CLIENT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Create a fresh ``uv venv`` at ``venv_dir`` and ``uv pip install`` into it from ``index_url``."""
    with _home(home) as h:
        env = client_env(h)
        assert_ok(
            _run(
                [uv_bin(), "venv", "--no-config", "--python", sys.executable, venv_dir],
                env=env,
                timeout=timeout,
            )
        )
        cmd = [
            uv_bin(),
            "pip",
            "install",
            "--no-config",
            "--python",
            venv_python(venv_dir),
            "--index-url",
            index_url,
            "--only-binary",
            ":all:",
            *extra_args,
            *reqs,
        ]
        return _run(cmd, env=env, timeout=timeout)


# -- venvs and what is installed in them ---------------------------------------------------------


def make_venv(venv_dir: Path, *, home: Path | None = None, timeout: float = CLIENT_TIMEOUT) -> Path:
    """A fresh stdlib venv with pip from ensurepip (bundled, so no index is contacted)."""
    with _home(home) as h:
        assert_ok(_run([sys.executable, "-m", "venv", venv_dir], env=client_env(h), timeout=timeout))
    return venv_dir


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def venv_site_packages(venv_dir: Path) -> Path:
    found = sorted(venv_dir.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise AssertionError(f"expected one site-packages under {venv_dir}, found {found}")
    return found[0]


def installed_versions(site_dir: Path) -> dict[str, str]:
    """{normalized name: version} from the .dist-info directories installed in ``site_dir``."""
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[str(site_dir)])
    }


def _run_python(
    python: Path, code: str, pythonpath: Path | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    with _home(None) as h:
        extra = {"PYTHONPATH": str(pythonpath)} if pythonpath is not None else None
        # -I would also drop PYTHONPATH, which --target installs need; -s keeps user site out.
        return assert_ok(_run([python, "-s", "-c", code], env=client_env(h, extra), timeout=timeout))


def import_version(python: Path, module: str, *, pythonpath: Path | None = None, timeout: float = 60) -> str:
    """``module.__version__`` as a real import in ``python`` sees it."""
    proc = _run_python(python, f"import {module}; print({module}.__version__)", pythonpath, timeout)
    return proc.stdout.strip()


def call_native(
    python: Path, module: str, function: str, *, pythonpath: Path | None = None, timeout: float = 60
) -> int:
    """Load ``<module>/_native.so`` with ctypes in ``python`` and return ``function()``."""
    code = (
        "import ctypes, os, sys\n"
        f"import {module} as m\n"
        "lib = ctypes.CDLL(os.path.join(os.path.dirname(m.__file__), '_native.so'))\n"
        f"print(lib.{function}())\n"
    )
    return int(_run_python(python, code, pythonpath, timeout).stdout.strip())


# -- pipenv and micropipenv ----------------------------------------------------------------------


def write_pipfile(
    project_dir: Path,
    index_url: str,
    packages: Mapping[str, str],
    *,
    python_version: str | None = None,
) -> Path:
    """A Pipfile whose only source is ``index_url``; ``packages`` maps names to specifiers ("*", ">=1")."""
    project_dir.mkdir(parents=True, exist_ok=True)
    pyver = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = [
        "[[source]]",
        f'url = "{index_url}"',
        "verify_ssl = false",
        'name = "proxy"',
        "",
        "[packages]",
        *(f"{json.dumps(name)} = {json.dumps(spec)}" for name, spec in packages.items()),
        "",
        "[dev-packages]",
        "",
        "[requires]",
        f'python_version = "{pyver}"',
        "",
    ]
    path = project_dir / "Pipfile"
    path.write_text("\n".join(lines))
    return path


def _pipenv_env(home: Path) -> dict[str, str]:
    return client_env(
        home,
        {
            "PIPENV_VENV_IN_PROJECT": "1",
            "PIPENV_IGNORE_VIRTUALENVS": "1",
            "PIPENV_NOSPIN": "1",
            "PIPENV_YES": "1",
            "PIPENV_DONT_LOAD_ENV": "1",
            "PIPENV_CACHE_DIR": str(home / "pipenv-cache"),
            "CI": "1",
        },
    )


def pipenv_lock(
    project_dir: Path, *, home: Path | None = None, timeout: float = PIPENV_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``pipenv lock`` in ``project_dir`` (which holds a Pipfile); writes Pipfile.lock there."""
    with _home(home) as h:
        cmd = [sys.executable, "-m", "pipenv", "--python", sys.executable, "lock"]
        return _run(cmd, env=_pipenv_env(h), timeout=timeout, cwd=project_dir)


def read_pipfile_lock(project_dir: Path) -> dict[str, object]:
    data = json.loads((project_dir / "Pipfile.lock").read_text())
    assert isinstance(data, dict)
    return data


def micropipenv_install(
    project_dir: Path,
    *,
    venv_dir: Path | None = None,
    home: Path | None = None,
    timeout: float = CLIENT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Install ``project_dir/Pipfile.lock`` with micropipenv into a fresh venv (``<dir>/deploy-venv``).

    micropipenv is one module that needs pip importable next to it, so the venv gets pip from
    ensurepip and micropipenv.py is put on PYTHONPATH from a private copy: pointing PYTHONPATH at the
    test virtualenv's site-packages would make every test dependency visible in the deploy venv.
    """
    import micropipenv

    venv = venv_dir if venv_dir is not None else project_dir / "deploy-venv"
    with _home(home) as h:
        make_venv(venv, home=h, timeout=timeout)
        tools = h / "micropipenv-src"
        tools.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(micropipenv.__file__), tools / "micropipenv.py")
        env = client_env(
            h,
            {
                "PYTHONPATH": str(tools),
                # micropipenv runs "pip" from PATH by default, which would be whatever pip is first there.
                "MICROPIPENV_PIP_BIN": str(venv / "bin" / "pip"),
                "MICROPIPENV_NO_LOCKFILE_PRINT": "1",
            },
        )
        cmd = [venv_python(venv), "-m", "micropipenv", "install", "--method", "pipenv"]
        return _run(cmd, env=env, timeout=timeout, cwd=project_dir)
