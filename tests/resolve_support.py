"""Helpers for the ``POST /api/v1/resolve`` tests: this machine's environment, calls, polling, pages.

Everything talks to a real proxy process on 127.0.0.1 (see support.proxy); nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from packaging.markers import default_environment
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name
from support.clients import CLIENT_TIMEOUT, _run, client_env, make_venv, uv_bin, venv_python
from support.proxy import RunningProxy

__all__ = [
    "JSON_V1",
    "Pins",
    "analysis_of",
    "announce",
    "compiled_pins",
    "env_page_filenames",
    "machine_glibc",
    "micropipenv_deploy",
    "pins_of",
    "post_resolve",
    "rejected_of",
    "this_machine",
    "uv_compile",
    "uv_compile_ok",
    "wait_analysed",
    "with_provides_extra",
]

JSON_V1 = "application/vnd.pypi.simple.v1+json"
_RESOLVE_TIMEOUT = 120.0
_ANALYSIS_DEADLINE = 90.0

Pins = dict[str, str]

_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_")


def machine_glibc() -> str:
    """This machine's glibc version, e.g. "2.36" (from confstr, as ``index-proxy env`` would)."""
    value = os.confstr("CS_GNU_LIBC_VERSION") or ""
    name, _, version = value.partition(" ")
    if name != "glibc" or not version:
        raise RuntimeError(f"not a glibc system: {value!r}")
    return version


def this_machine(
    *,
    cpu_level: str | None = "x86_64_v2",
    features: Sequence[str] = (),
    cuda: str | None = None,
    glibc: str | None = None,
    linux_last: bool = False,
) -> dict[str, Any]:
    """The environment JSON of the interpreter running the tests (markers and tags are real).

    ``glibc`` other than this machine's also trims the manylinux tags to what such a machine
    supports (a glibc 2.28 machine has no ``manylinux_2_34`` tags), as a client there would send.
    ``linux_last`` orders each interpreter's ``linux_<arch>`` tag after its manylinux tags, as
    packaging before 26 (and so pip 23-25, e.g. the one ensurepip brings here) does; packaging 26
    puts it first.
    """
    real_glibc = machine_glibc()
    glibc = glibc or real_glibc
    limit = tuple(int(part) for part in glibc.split("."))
    tags: list[str] = []
    for tag in sys_tags():
        text = str(tag)
        match = _MANYLINUX.search(tag.platform)
        if match is not None and (int(match.group(1)), int(match.group(2))) > limit:
            continue
        tags.append(text)
    if linux_last:
        groups: dict[tuple[str, str], int] = {}
        for text in tags:
            interpreter, abi, _platform = text.split("-")
            groups.setdefault((interpreter, abi), len(groups))

        def legacy(text: str) -> tuple[int, bool]:
            interpreter, abi, platform = text.split("-")
            return groups[(interpreter, abi)], platform.startswith("linux_")

        tags.sort(key=legacy)
    return {
        "markers": dict(default_environment()),
        "tags": tags,
        "cpu": {"level": cpu_level, "features": list(features)},
        "cuda": cuda,
        "glibc": glibc,
    }


def post_resolve(proxy: RunningProxy, payload: Any) -> httpx.Response:
    """POST the payload (any JSON value, or raw bytes) to ``/api/v1/resolve``."""
    with httpx.Client(trust_env=False, timeout=_RESOLVE_TIMEOUT) as client:
        if isinstance(payload, bytes):
            return client.post(
                proxy.url + "/api/v1/resolve",
                content=payload,
                headers={"Content-Type": "application/json"},
            )
        return client.post(proxy.url + "/api/v1/resolve", json=payload)


def pins_of(body: Mapping[str, Any]) -> Pins:
    return {pin["name"]: pin["version"] for pin in body["pins"]}


def rejected_of(body: Mapping[str, Any], package: str) -> dict[str, str]:
    """{filename: reason} of the files the resolver turned down for the pinned version of ``package``."""
    for entry in body["justification"]:
        if entry["package"] == package:
            return {item["filename"]: item["reason"] for item in entry["rejected_files"]}
    raise AssertionError(f"no justification for {package}: {body['justification']}")


def env_page_filenames(proxy: RunningProxy, profile: str, project: str) -> list[str]:
    """The filenames ``/env/<profile>/simple/<project>/`` lists (JSON page), in page order."""
    response = proxy.get(f"/env/{profile}/simple/{project}/", headers={"Accept": JSON_V1})
    assert response.status_code == 200, response.text
    return [item["filename"] for item in response.json()["files"]]


def announce(proxy: RunningProxy, index: str, projects: Iterable[str]) -> dict[str, Any]:
    """``POST /api/v1/hooks/new-files`` as an index's plugin would: the projects' files get queued."""
    with httpx.Client(trust_env=False, timeout=30.0) as client:
        response = client.post(
            proxy.url + "/api/v1/hooks/new-files",
            json={"index": index, "projects": list(projects)},
            headers=proxy.admin_headers(),
        )
    assert response.status_code == 202, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def analysis_of(proxy: RunningProxy, project: str, version: str) -> dict[str, Any]:
    response = proxy.get(f"/api/v1/analysis/{project}/{version}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def wait_analysed(proxy: RunningProxy, project: str, version: str) -> dict[str, Any]:
    """Poll until every file of the release is analysed ("done"); fail on "failed" or a deadline.

    The deadline only bounds a hang: nothing is asserted about how long analysis takes.
    """
    deadline = time.monotonic() + _ANALYSIS_DEADLINE
    while True:
        body = analysis_of(proxy, project, version)
        states = {item["filename"]: item["state"] for item in body["files"]}
        if all(state == "done" for state in states.values()):
            return body
        failed = {item["filename"]: item["error"] for item in body["files"] if item["state"] == "failed"}
        assert not failed, f"analysis failed: {failed}"
        if time.monotonic() > deadline:
            raise AssertionError(f"analysis of {project} {version} not done: {states}")
        time.sleep(0.2)


def compiled_pins(compiled: str) -> Pins:
    """``name==version`` lines of a ``uv pip compile`` output, names normalized."""
    pins: Pins = {}
    for raw in compiled.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")) or "==" not in line:
            continue
        requirement = line.split(";", 1)[0].split(" \\", 1)[0].strip()
        name, _, version = requirement.partition("==")
        pins[canonicalize_name(name.split("[", 1)[0])] = version.strip()
    return pins


def uv_compile(index_url: str, requirements_in: str, home: Path) -> tuple[int, str, str]:
    """``uv pip compile`` for this interpreter against ``index_url`` alone: (exit code, stdout, stderr).

    Unlike support.clients.uv_pip_compile this does not insist on success, so a scenario can
    check that uv fails where the proxy's resolver does.
    """
    req_file = home / "requirements.in"
    home.mkdir(parents=True, exist_ok=True)
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
        "--no-annotate",
        req_file,
    ]
    proc = _run(cmd, env=client_env(home), timeout=CLIENT_TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def uv_compile_ok(index_url: str, requirements_in: str, home: Path) -> Pins:
    code, out, err = uv_compile(index_url, requirements_in, home)
    assert code == 0, f"uv pip compile failed ({code}):\n{out}\n{err}"
    return compiled_pins(out)


def with_provides_extra(path: Path, extras: Sequence[str]) -> Path:
    """Add ``Provides-Extra`` lines to a built wheel's METADATA (and its RECORD row), in place.

    support.wheels.build_wheel writes Requires-Dist with ``extra == "..."`` markers but no
    Provides-Extra; pip and uv ignore an extra a distribution does not declare, so a wheel that
    really offers an extra needs both.
    """
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    metadata_name = next(
        info.filename for info, _ in entries if info.filename.endswith(".dist-info/METADATA")
    )
    record_name = metadata_name.removesuffix("METADATA") + "RECORD"
    rewritten: list[tuple[zipfile.ZipInfo, bytes]] = []
    new_metadata = b""
    for info, data in entries:
        if info.filename == metadata_name:
            head, sep, rest = data.partition(b"\nSummary:")
            added = "".join(f"\nProvides-Extra: {extra}" for extra in extras).encode()
            data = new_metadata = head + added + sep + rest
        elif info.filename == record_name:
            digest = base64.urlsafe_b64encode(hashlib.sha256(new_metadata).digest()).rstrip(b"=")
            rows = [
                f"{metadata_name},sha256={digest.decode()},{len(new_metadata)}".encode()
                if row.startswith(metadata_name.encode() + b",")
                else row
                for row in data.split(b"\n")
            ]
            data = b"\n".join(rows)
        rewritten.append((info, data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in rewritten:
            target.writestr(info, data)
    path.write_bytes(buffer.getvalue())
    return path


def micropipenv_deploy(project_dir: Path, venv: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """``micropipenv install --deploy`` of ``project_dir`` (Pipfile and Pipfile.lock) into a fresh venv.

    ``--deploy`` is how Thoth's and OpenShift's s2i images install: micropipenv then checks the
    lock's Python version and that the lock's ``_meta.hash`` is the Pipfile's (as pipenv does).
    Set up like support.clients.micropipenv_install: micropipenv.py alone on PYTHONPATH.
    """
    import micropipenv

    make_venv(venv, home=home)
    tools = home / "micropipenv-src"
    tools.mkdir(parents=True, exist_ok=True)
    shutil.copy2(str(micropipenv.__file__), tools / "micropipenv.py")
    env = client_env(
        home,
        {
            "PYTHONPATH": str(tools),
            "MICROPIPENV_PIP_BIN": str(venv / "bin" / "pip"),
            "MICROPIPENV_NO_LOCKFILE_PRINT": "1",
        },
    )
    cmd = [venv_python(venv), "-m", "micropipenv", "install", "--deploy", "--method", "pipenv"]
    return _run(cmd, env=env, timeout=CLIENT_TIMEOUT, cwd=project_dir)
