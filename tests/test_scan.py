"""``index-proxy lock --scan``: the library usage read from a source tree, and sent with the request."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.clients import CLIENT_TIMEOUT, client_env
from support.proxy import REPO_ROOT

from index_proxy.client.detect import detect_environment
from index_proxy.client.scan import check_library_usage, scan_file, scan_source


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_aliases_from_imports_and_nested_attributes() -> None:
    source = """
import numpy as np
import os.path
import xml.etree.ElementTree as ET
from tempfile import mktemp
from pickle import loads as unpickle
from __future__ import annotations

def f(x):
    y = np.linalg.inv(x).T          # the call's result: no name of numpy's
    os.path.join("a", "b")
    tree = ET.parse("f.xml")
    mktemp()
    return unpickle(y), np
"""
    assert scan_file(source) == {
        "numpy",
        "numpy.linalg.inv",
        "os.path",
        "os.path.join",
        "xml.etree.ElementTree",
        "xml.etree.ElementTree.parse",
        "tempfile",
        "tempfile.mktemp",
        "pickle",
        "pickle.loads",
    }


def test_relative_and_star_imports_and_unrelated_names() -> None:
    source = """
from . import sibling
from .pkg import thing
from yaml import *
import json
sibling.run()
thing.attr.call()
load("x")                # from the star import: unknown, not guessed
other.json.dumps()       # not the imported json
json.decoder.JSONDecoder().decode("1")
def g(json):
    json = 1             # a store, not a use
"""
    assert scan_file(source) == {"yaml", "json", "json.decoder.JSONDecoder"}


def test_imports_inside_functions_count_for_the_file() -> None:
    source = """
def late():
    return requests.get("u")

def load():
    import requests
    from subprocess import run as execute
    execute(["ls"], shell=True)
"""
    assert scan_file(source) == {"requests", "requests.get", "subprocess", "subprocess.run"}


def test_a_tree_grouped_by_top_level_module(tmp_path: Path) -> None:
    root = write(
        tmp_path / "src",
        {
            "app/__init__.py": "from app import helpers\nimport numpy as np\nnp.zeros(3)\n",
            "app/helpers.py": "import tempfile\nfrom tempfile import mktemp\nmktemp()\nimport pickle\n",
            "app/broken.py": "def f(:\n    pass\n",
            "scripts/tool.py": "import numpy\nnumpy.linalg.inv([[1]])\nimport app.helpers\n",
            "setup.py": "import setuptools\nsetuptools.setup()\n",
            "tests/test_x.py": "import pytest\n",
            ".venv/lib/site.py": "import hidden_a\n",
            "venv/x.py": "import hidden_b\n",
            "myenv/pyvenv.cfg": "home = /usr\n",
            "myenv/lib/x.py": "import hidden_c\n",
            "build/lib/x.py": "import hidden_d\n",
            "pkg.egg-info/x.py": "import hidden_e\n",
            "__pycache__/x.py": "import hidden_f\n",
            "notes.txt": "import hidden_g\n",
            "nul.py": "import a\x00\n",
        },
    )
    result = scan_source(root)
    assert result.usage == {
        "numpy": ["numpy", "numpy.linalg.inv", "numpy.zeros"],
        "pickle": ["pickle"],
        "pytest": ["pytest"],
        "setuptools": ["setuptools", "setuptools.setup"],
        "tempfile": ["tempfile", "tempfile.mktemp"],
    }
    # "app" and "setup" are the project's own modules; everything in environments and hidden,
    # build and cache directories is skipped.
    assert result.files == 7
    assert result.problems == [
        f"{root / 'nul.py'}: source code string cannot contain null bytes; file skipped",
        f"{root / 'app' / 'broken.py'}:1: invalid syntax; file skipped",
    ]
    assert json.dumps(result.usage)  # the request body is JSON


def test_src_layout_modules_are_the_projects_own(tmp_path: Path) -> None:
    root = write(tmp_path, {"src/mylib/__init__.py": "import mylib.core\nimport attr\nattr.s\n"})
    assert scan_source(root).usage == {"attr": ["attr", "attr.s"]}
    assert scan_source(root / "src" / "mylib" / "__init__.py").usage == {
        "attr": ["attr", "attr.s"],
        "mylib": ["mylib.core"],
    }


def test_check_library_usage() -> None:
    assert check_library_usage({"numpy": ["numpy", "numpy.linalg"]}) == {"numpy": ("numpy", "numpy.linalg")}
    with pytest.raises(ValueError, match="library_usage: expected"):
        check_library_usage(["numpy"])
    with pytest.raises(ValueError, match=r"library_usage\.numpy: expected a list of dotted names"):
        check_library_usage({"numpy": "numpy"})
    with pytest.raises(ValueError, match="module names must be non-empty"):
        check_library_usage({"": []})


# --- the request --------------------------------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    """Keeps each POSTed JSON body and answers as the resolve endpoint does for a one-package lock."""

    bodies: list[Any]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        answer = json.dumps(
            {"locks": {"requirements.txt": "a==1.0\n"}, "pins": [], "stats": {}, "justification": []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[tuple[str, list[Any]]]:
    handler = type("Handler", (_Capture,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.bodies
    finally:
        server.shutdown()
        server.server_close()


def lock(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "index_proxy", "lock", *args],
        cwd=cwd,
        env=client_env(home, {"PYTHONPATH": str(REPO_ROOT)}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def test_lock_scan_sends_library_usage(tmp_path: Path, capture: tuple[str, list[Any]]) -> None:
    url, bodies = capture
    project = write(
        tmp_path / "project",
        {
            "requirements.in": "a\n",
            "machine.json": json.dumps(detect_environment()),
            "src/app.py": "import numpy as np\nnp.linalg.inv(1)\nfrom tempfile import mktemp\nmktemp()\n",
            "src/bad.py": "x = (\n",
        },
    )
    done = lock(project, tmp_path / "home", "--server", url, "--environment", "machine.json", "--scan", "src")
    assert done.returncode == 0, done.stderr
    assert "index-proxy lock: --scan: src/bad.py:1: '(' was never closed; file skipped" in done.stderr
    assert "sending the usage of 2 libraries (4 names) from src" in done.stdout
    (body,) = bodies
    assert body["library_usage"] == {
        "numpy": ["numpy", "numpy.linalg.inv"],
        "tempfile": ["tempfile", "tempfile.mktemp"],
    }
    assert (project / "requirements.txt").read_text() == "a==1.0\n"

    done = lock(project, tmp_path / "home", "--server", url, "--environment", "machine.json")
    assert done.returncode == 0, done.stderr
    assert "library_usage" not in bodies[1]


def test_lock_scan_of_a_missing_or_empty_directory(tmp_path: Path, capture: tuple[str, list[Any]]) -> None:
    url, bodies = capture
    project = write(
        tmp_path / "project", {"requirements.in": "a\n", "machine.json": json.dumps(detect_environment())}
    )
    args = ("--server", url, "--environment", "machine.json", "--scan")
    done = lock(project, tmp_path / "home", *args, "nowhere")
    assert (done.returncode, done.stderr) == (
        2,
        "index-proxy lock: --scan nowhere: no such file or directory\n",
    )
    (project / "empty" / ".venv").mkdir(parents=True)
    (project / "empty" / ".venv" / "x.py").write_text("import a\n")
    done = lock(project, tmp_path / "home", *args, "empty")
    assert done.returncode == 2
    assert "--scan empty: no .py files there" in done.stderr
    assert bodies == []


def test_lock_sends_the_recommendation_type_and_labels(
    tmp_path: Path, capture: tuple[str, list[Any]]
) -> None:
    url, bodies = capture
    project = write(
        tmp_path / "project", {"requirements.in": "a\n", "machine.json": json.dumps(detect_environment())}
    )
    args = ("--server", url, "--environment", "machine.json")
    done = lock(project, tmp_path / "home", *args, "--recommendation-type", "security", "--label", "team=ml")
    assert done.returncode == 0, done.stderr
    assert (bodies[0]["recommendation_type"], bodies[0]["labels"]) == ("security", {"team": "ml"})
    done = lock(project, tmp_path / "home", *args, "--label", "no-equals-sign")
    assert done.returncode == 2
    assert "expected KEY=VALUE" in done.stderr
