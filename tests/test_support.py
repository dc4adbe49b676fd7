"""Tests of the test support code: if these parts lie, every proxy test built on them lies too."""

from __future__ import annotations

import base64
import email.parser
import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import requests
from conftest import FolderFactory, UpstreamFactory
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from pypi_simple import ACCEPT_HTML_ONLY, ACCEPT_JSON_ONLY, PyPISimple
from support.clients import (
    call_native,
    client_env,
    import_version,
    installed_versions,
    micropipenv_install,
    pip_install,
    pipenv_lock,
    read_pipfile_lock,
    uv_pip_compile,
    venv_python,
    venv_site_packages,
    write_pipfile,
)
from support.upstream import JSON_TYPE, UpstreamServer
from support.wheels import build_sdist, build_wheel, native_tag, read_wheel_metadata

ANSWER_C = "int answer(void) { return 42; }\n"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # trust_env=False: no machine proxy settings between the test and its loopback servers.
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        yield client


def _b64_sha256(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- wheels ----------------------------------------------------------------------------------------


def test_wheel_record_hashes_and_metadata(wheel_dir: Path) -> None:
    path = build_wheel(
        wheel_dir,
        "Acme.Utils",
        "1.0",
        requires_dist=["libb>=1", "extra-thing; extra == 'x'"],
        requires_python=">=3.9",
        extra_files={"acme_utils/data.txt": b"payload"},
    )
    assert path.name == "acme_utils-1.0-py3-none-any.whl"
    assert parse_wheel_filename(path.name)[0] == "acme-utils"
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert {
            "acme_utils/__init__.py",
            "acme_utils/data.txt",
            "acme_utils-1.0.dist-info/METADATA",
            "acme_utils-1.0.dist-info/WHEEL",
            "acme_utils-1.0.dist-info/RECORD",
        } == names
        rows = [line.split(",") for line in zf.read("acme_utils-1.0.dist-info/RECORD").decode().splitlines()]
        recorded = {row[0]: (row[1], row[2]) for row in rows}
        assert recorded.pop("acme_utils-1.0.dist-info/RECORD") == ("", "")
        assert set(recorded) == names - {"acme_utils-1.0.dist-info/RECORD"}
        for member, (digest, size) in recorded.items():
            data = zf.read(member)
            assert digest == _b64_sha256(data), member
            assert int(size) == len(data), member
        meta = email.parser.BytesParser().parsebytes(zf.read("acme_utils-1.0.dist-info/METADATA"))
        wheel = email.parser.BytesParser().parsebytes(zf.read("acme_utils-1.0.dist-info/WHEEL"))
        assert zf.read("acme_utils/__init__.py") == b'__version__ = "1.0"\n'
    assert meta["Metadata-Version"] == "2.1"
    assert meta["Name"] == "Acme.Utils"
    assert meta["Version"] == "1.0"
    assert meta["Requires-Python"] == ">=3.9"
    assert meta.get_all("Requires-Dist") == ["libb>=1", "extra-thing; extra == 'x'"]
    assert wheel["Root-Is-Purelib"] == "true"
    assert wheel.get_all("Tag") == ["py3-none-any"]


def test_wheel_compressed_tags_are_expanded(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "multi", "2.0", tag="py2.py3-none-any")
    assert path.name == "multi-2.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(path) as zf:
        wheel = email.parser.BytesParser().parsebytes(zf.read("multi-2.0.dist-info/WHEEL"))
    assert sorted(wheel.get_all("Tag")) == ["py2-none-any", "py3-none-any"]


def test_wheel_extension_is_a_real_elf_and_platlib(wheel_dir: Path) -> None:
    path = build_wheel(
        wheel_dir,
        "fastcalc",
        "1.0",
        tag="cp311-cp311-linux_x86_64",
        extension_c=ANSWER_C,
        extension_flags=["-DUNUSED=1"],
    )
    with zipfile.ZipFile(path) as zf:
        so = zf.read("fastcalc/_native.so")
        wheel = email.parser.BytesParser().parsebytes(zf.read("fastcalc-1.0.dist-info/WHEEL"))
        mode = (zf.getinfo("fastcalc/_native.so").external_attr >> 16) & 0o777
    assert so[:4] == b"\x7fELF"
    assert wheel["Root-Is-Purelib"] == "false"
    assert mode == 0o755


def test_wheel_metadata_name_override(wheel_dir: Path) -> None:
    path = build_wheel(wheel_dir, "good-name", "1.0", metadata_name="evil-name")
    assert path.name == "good_name-1.0-py3-none-any.whl"
    meta = email.parser.BytesParser().parsebytes(read_wheel_metadata(path))
    assert meta["Name"] == "evil-name"


def test_wheel_build_is_reproducible_and_content_sensitive(tmp_path: Path) -> None:
    first = build_wheel(tmp_path / "a", "same", "1.0").read_bytes()
    second = build_wheel(tmp_path / "b", "same", "1.0").read_bytes()
    different = build_wheel(tmp_path / "c", "same", "1.0", extra_files={"same/x": b"1"}).read_bytes()
    assert first == second
    assert _sha256(first) != _sha256(different)


def test_broken_c_source_raises(wheel_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="gcc failed"):
        build_wheel(wheel_dir, "broken", "1.0", tag="py3-none-linux_x86_64", extension_c="int x( {")


def test_sdist_layout(wheel_dir: Path) -> None:
    path = build_sdist(wheel_dir, "Acme.Utils", "2.0", requires_dist=["libb>=1"])
    assert path.name == "acme_utils-2.0.tar.gz"
    assert parse_sdist_filename(path.name) == (
        "acme-utils",
        parse_wheel_filename("x-2.0-py3-none-any.whl")[1],
    )
    with tarfile.open(path) as tf:
        names = set(tf.getnames())
        pkg_info = tf.extractfile("acme_utils-2.0/PKG-INFO")
        assert pkg_info is not None
        meta = email.parser.BytesParser().parsebytes(pkg_info.read())
    assert {"acme_utils-2.0/PKG-INFO", "acme_utils-2.0/pyproject.toml", "acme_utils-2.0/setup.py"} <= names
    assert meta["Name"] == "Acme.Utils"
    assert meta["Version"] == "2.0"
    assert meta.get_all("Requires-Dist") == ["libb>=1"]


def test_pip_installs_built_wheels_and_the_so_loads(wheel_dir: Path, tmp_path: Path) -> None:
    """A real installer accepts the wheels (RECORD, WHEEL, tags) and the ELF is loadable."""
    build_wheel(wheel_dir, "fastcalc", "1.0", tag=native_tag(), extension_c=ANSWER_C)
    build_wheel(wheel_dir, "app", "3.1", requires_dist=["fastcalc==1.0"])
    target = tmp_path / "target"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheel_dir),
            "--target",
            str(target),
            "app",
        ],
        env=client_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert installed_versions(target) == {"app": "3.1", "fastcalc": "1.0"}
    python = Path(sys.executable)
    assert import_version(python, "app", pythonpath=target) == "3.1"
    assert call_native(python, "fastcalc", "answer", pythonpath=target) == 42


# -- upstream servers --------------------------------------------------------------------------------


def _populate(server: UpstreamServer, wheel_dir: Path) -> dict[str, Path]:
    built = {
        "libb1": build_wheel(wheel_dir, "libb", "1.0"),
        "libb2": build_wheel(wheel_dir, "libb", "2.0", requires_python=">=3.8,<4"),
        "sdist": build_sdist(wheel_dir, "libb", "2.0"),
        "app": build_wheel(wheel_dir, "App", "1.0", requires_dist=["libb>=1"]),
    }
    for path in built.values():
        server.add(path)
    return built


def _pypi_simple(server: UpstreamServer) -> PyPISimple:
    session = requests.Session()
    session.trust_env = False
    return PyPISimple(endpoint=server.url, session=session)


def test_html_upstream_pages_parse(upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client) -> None:
    server = upstreams(style="html", metadata=True)
    built = _populate(server, wheel_dir)
    with _pypi_simple(server) as client:
        index = client.get_index_page()
        assert sorted(index.projects) == ["app", "libb"]
        page = client.get_project_page("libb")
    by_name = {p.filename: p for p in page.packages}
    assert set(by_name) == {built["libb1"].name, built["libb2"].name, built["sdist"].name}
    for key in ("libb1", "libb2", "sdist"):
        pkg = by_name[built[key].name]
        assert pkg.digests == {"sha256": _sha256(built[key].read_bytes())}
        assert pkg.url == f"{server.base_url}/files/{built[key].name}"
    assert by_name[built["libb2"].name].requires_python == ">=3.8,<4"
    assert by_name[built["libb1"].name].has_metadata is True
    assert by_name[built["sdist"].name].has_metadata is None

    response = http.get(server.url + "libb/", headers={"Accept": PIP_ACCEPT})
    assert response.headers["content-type"].startswith("text/html")
    assert "Accept-Ranges" not in response.headers
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in response.text
    assert 'href="../../files/libb-1.0-py3-none-any.whl#sha256=' in response.text
    metadata = read_wheel_metadata(built["libb1"])
    assert f'data-core-metadata="sha256={_sha256(metadata)}"' in response.text
    meta_response = http.get(f"{server.base_url}/files/{built['libb1'].name}.metadata")
    assert meta_response.status_code == 200
    assert meta_response.content == metadata


def test_metadata_not_advertised_or_served_when_disabled(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="json", metadata=False)
    built = _populate(server, wheel_dir)
    html_page = http.get(server.url + "libb/").text
    json_page = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE}).json()
    assert "data-core-metadata" not in html_page
    assert all("core-metadata" not in f for f in json_page["files"])
    assert http.get(f"{server.base_url}/files/{built['libb1'].name}.metadata").status_code == 404


def test_json_upstream_negotiation_and_fields(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="json", metadata=True)
    built = _populate(server, wheel_dir)

    as_json = http.get(server.url + "libb/", headers={"Accept": PIP_ACCEPT})
    assert as_json.headers["content-type"] == JSON_TYPE
    assert as_json.headers["vary"] == "Accept"
    doc = as_json.json()
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "libb"
    assert doc["versions"] == ["1.0", "2.0"]
    files = {f["filename"]: f for f in doc["files"]}
    wheel2 = files[built["libb2"].name]
    assert wheel2["url"] == f"../../files/{built['libb2'].name}"
    assert wheel2["hashes"] == {"sha256": _sha256(built["libb2"].read_bytes())}
    assert wheel2["size"] == built["libb2"].stat().st_size
    assert wheel2["requires-python"] == ">=3.8,<4"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", wheel2["upload-time"])
    datetime.strptime(wheel2["upload-time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    metadata = http.get(f"{server.base_url}/files/{built['libb2'].name}.metadata").content
    assert wheel2["core-metadata"] == {"sha256": _sha256(metadata)}
    assert "core-metadata" not in files[built["sdist"].name]

    # No Accept header, a wildcard, or HTML preferred by q-value: HTML, as a browser or legacy client expects.
    for accept in (None, "*/*", f"{JSON_TYPE}; q=0.1, text/html"):
        headers = {"Accept": accept} if accept else {}
        response = http.get(server.url + "libb/", headers=headers)
        assert response.headers["content-type"].startswith("text/html"), accept
    by_query = http.get(server.url + "libb/", params={"format": JSON_TYPE})
    assert by_query.headers["content-type"] == JSON_TYPE
    latest = http.get(server.url, headers={"Accept": "application/vnd.pypi.simple.latest+json"})
    assert latest.headers["content-type"] == JSON_TYPE
    assert {p["name"] for p in latest.json()["projects"]} == {"app", "libb"}

    with _pypi_simple(server) as client:
        page = client.get_project_page("libb", accept=ACCEPT_JSON_ONLY)
        assert {p.filename for p in page.packages} == set(files)
        html_page = client.get_project_page("libb", accept=ACCEPT_HTML_ONLY)
        assert {p.filename for p in html_page.packages} == set(files)


def test_html_style_never_answers_json(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="html")
    _populate(server, wheel_dir)
    response = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE})
    assert response.headers["content-type"].startswith("text/html")
    assert "pypi:repository-version" not in response.text


def test_names_are_normalized_and_unknown_is_404(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="html")
    original = build_wheel(wheel_dir, "acme-utils", "100.0")
    # Index filenames in the wild are not always normalized; the page must still group them.
    odd = original.rename(wheel_dir / "Acme_Utils-100.0-py3-none-any.whl")
    server.add(odd)
    server.add(build_wheel(wheel_dir, "acme-utils", "1.0"))
    for spelling in ("acme-utils", "Acme_Utils", "ACME.utils"):
        response = http.get(f"{server.url}{spelling}/")
        assert response.status_code == 200, spelling
        assert "Acme_Utils-100.0-py3-none-any.whl" in response.text
        assert "acme_utils-1.0-py3-none-any.whl" in response.text
    no_slash = http.get(f"{server.url}acme-utils")
    assert no_slash.status_code == 301
    assert no_slash.headers["location"] == "/simple/acme-utils/"
    assert http.get(f"{server.url}nothing-here/").status_code == 404
    assert http.get(f"{server.base_url}/files/missing-1.0-py3-none-any.whl").status_code == 404


def test_pages_reflect_added_files_and_etag_revalidation(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="json")
    server.add(build_wheel(wheel_dir, "libb", "1.0"))
    first = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE})
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    # The ETag depends on the representation: the HTML page must not validate against the JSON tag.
    html_page = http.get(server.url + "libb/", headers={"If-None-Match": etag})
    assert html_page.status_code == 200

    server.add(build_wheel(wheel_dir, "libb", "2.0"))
    changed = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["versions"] == ["1.0", "2.0"]


def test_etag_disabled(upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client) -> None:
    server = upstreams(style="html", etag=False)
    server.add(build_wheel(wheel_dir, "libb", "1.0"))
    response = http.get(server.url + "libb/", headers={"If-None-Match": "*"})
    assert response.status_code == 200
    assert "etag" not in response.headers


def test_range_requests(upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client) -> None:
    server = upstreams(style="json", range_support=True)
    wheel = build_wheel(wheel_dir, "libb", "1.0", extra_files={"libb/blob.bin": bytes(range(256)) * 8})
    server.add(wheel)
    data = wheel.read_bytes()
    size = len(data)
    url = f"{server.base_url}/files/{wheel.name}"

    cases = {
        "bytes=0-9": (0, 9),
        "bytes=10-": (10, size - 1),
        "bytes=-22": (size - 22, size - 1),
        f"bytes=5-{size + 100}": (5, size - 1),
    }
    for header, (start, end) in cases.items():
        response = http.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}", header
        assert response.content == data[start : end + 1], header
        assert response.headers["accept-ranges"] == "bytes"

    unsatisfiable = http.get(url, headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"
    multi = http.get(url, headers={"Range": "bytes=0-1,4-5"})
    assert multi.status_code == 200
    assert multi.content == data

    head = http.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == size
    assert head.content == b""
    head_range = http.head(url, headers={"Range": "bytes=-10"})
    assert head_range.status_code == 206
    assert int(head_range.headers["content-length"]) == 10


def test_no_range_support_sends_whole_body(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="html", range_support=False)
    wheel = build_wheel(wheel_dir, "libb", "1.0")
    server.add(wheel)
    response = http.get(f"{server.base_url}/files/{wheel.name}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == wheel.read_bytes()
    assert "accept-ranges" not in response.headers
    assert "content-range" not in response.headers


def test_tamper_serves_other_bytes_under_the_advertised_hash(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="json")
    wheel = build_wheel(wheel_dir, "libb", "1.0")
    server.add(wheel)
    advertised = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE}).json()["files"][0]
    server.tamper(wheel.name)
    after = http.get(server.url + "libb/", headers={"Accept": JSON_TYPE}).json()["files"][0]
    served = http.get(f"{server.base_url}/files/{wheel.name}").content
    assert after["hashes"] == advertised["hashes"] == {"sha256": _sha256(wheel.read_bytes())}
    assert len(served) == advertised["size"]
    assert _sha256(served) != advertised["hashes"]["sha256"]


def test_yanked_files_are_marked(upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client) -> None:
    server = upstreams(style="json")
    wheel = build_wheel(wheel_dir, "libb", "1.0")
    server.add(wheel)
    server.yank(wheel.name, "broken build")
    assert http.get(server.url + "libb/", headers={"Accept": JSON_TYPE}).json()["files"][0]["yanked"] == (
        "broken build"
    )
    assert 'data-yanked="broken build"' in http.get(server.url + "libb/").text


def test_stop_refuses_connections_and_restart_reuses_port(
    upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client
) -> None:
    server = upstreams(style="html")
    server.add(build_wheel(wheel_dir, "libb", "1.0"))
    url = server.url
    # The pooled client holds a keep-alive connection: stop() must cut it, not just stop accepting.
    assert http.get(url + "libb/").status_code == 200
    server.stop()
    with pytest.raises(httpx.TransportError):
        http.get(url + "libb/")
    with httpx.Client(trust_env=False, timeout=5.0) as fresh, pytest.raises(httpx.ConnectError):
        fresh.get(url + "libb/")
    server.start()
    assert server.url == url
    assert http.get(url + "libb/").status_code == 200


def test_request_log_and_delay(upstreams: UpstreamFactory, wheel_dir: Path, http: httpx.Client) -> None:
    server = upstreams(style="html")
    wheel = build_wheel(wheel_dir, "libb", "1.0")
    server.add(wheel)
    http.get(server.url + "libb/", headers={"X-Probe": "one"})
    http.get(server.url + "libb/")
    http.head(f"{server.base_url}/files/{wheel.name}")
    assert server.count() == 2
    assert server.count("GET", "/simple/libb/") == 2
    assert server.count("HEAD", "/files/") == 1
    assert server.count("GET", "/files/") == 0
    assert server.requests[0].header("x-probe") == "one"
    server.reset_log()
    assert server.count() == 0

    server.set_delay(5.0)
    # A client that gives up long before the delay ends proves the response really is held back.
    with pytest.raises(httpx.ReadTimeout):
        http.get(server.url + "libb/", timeout=0.3)
    server.set_delay(0)
    assert server.count("GET", "/simple/libb/") == 1


def test_folder_index(folder_index: FolderFactory, wheel_dir: Path) -> None:
    folder = folder_index("local")
    wheel = build_wheel(wheel_dir, "libb", "1.0")
    folder.add(wheel)
    assert folder.url == str(folder.root)
    assert (folder.root / wheel.name).read_bytes() == wheel.read_bytes()


# -- client isolation and the client helpers against plain upstreams --------------------------------


def test_client_env_hides_machine_pip_configuration(tmp_path: Path) -> None:
    env = client_env(tmp_path / "home")
    ours = {
        "PIP_CONFIG_FILE",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_NO_INPUT",
        "PIP_DEFAULT_TIMEOUT",
        "UV_NO_CONFIG",
        "UV_CACHE_DIR",
        "UV_PYTHON_DOWNLOADS",
        "UV_NO_PROGRESS",
    }
    client_vars = {k for k in env if k.startswith(("PIP_", "UV_", "PIPENV_", "MICROPIPENV_"))}
    assert client_vars == ours
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert "PIP_FIND_LINKS" not in env
    assert "PIP_EXTRA_INDEX_URL" not in env
    assert "UV_INDEX_URL" not in env
    assert "VIRTUAL_ENV" not in env
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Whatever /etc/pip.conf or the environment configure on this machine, pip must see none of it.
    configured = {line.split("=", 1)[0] for line in proc.stdout.splitlines() if "=" in line}
    assert configured <= {
        ":env:.config-file",
        ":env:.no-cache-dir",
        ":env:.disable-pip-version-check",
        ":env:.no-input",
        ":env:.default-timeout",
    }, proc.stdout


def _graph(server: UpstreamServer, wheel_dir: Path) -> None:
    server.add(build_wheel(wheel_dir, "app", "1.0", requires_dist=["libb>=1"]))
    server.add(build_wheel(wheel_dir, "libb", "1.0"))
    server.add(build_wheel(wheel_dir, "libb", "2.0"))
    # A lower bound no interpreter meets: every client must skip it (uv ignores upper bounds).
    server.add(build_wheel(wheel_dir, "libb", "3.0", requires_python=">=3.99"))


@pytest.mark.clients
def test_pip_and_uv_against_upstreams_directly(
    upstreams: UpstreamFactory, wheel_dir: Path, tmp_path: Path
) -> None:
    html = upstreams(style="html")
    json_server = upstreams(style="json", metadata=True, range_support=True)
    _graph(html, wheel_dir)
    _graph(json_server, wheel_dir)

    target = tmp_path / "pip-target"
    proc = pip_install(html.url, ["app"], target)
    assert proc.returncode == 0, proc.stderr
    assert installed_versions(target) == {"app": "1.0", "libb": "2.0"}

    compiled = uv_pip_compile(json_server.url, "app\n")
    pins = dict(
        line.split("==") for line in compiled.splitlines() if "==" in line and not line.startswith("#")
    )
    assert pins == {"app": "1.0", "libb": "2.0"}
    # With PEP 658 metadata on the page, resolving needs no wheel download; the prefix of the wheel's
    # path also matches its .metadata, hence the subtraction.
    metadata_gets = json_server.count("GET", "/files/app-1.0-py3-none-any.whl.metadata")
    wheel_gets = json_server.count("GET", "/files/app-1.0-py3-none-any.whl") - metadata_gets
    assert metadata_gets >= 1
    assert wheel_gets == 0


@pytest.mark.clients
def test_pipenv_and_micropipenv_against_upstream_directly(
    upstreams: UpstreamFactory, wheel_dir: Path, tmp_path: Path
) -> None:
    server = upstreams(style="json", metadata=True)
    _graph(server, wheel_dir)
    project = tmp_path / "project"
    write_pipfile(project, server.url, {"app": "*"})
    proc = pipenv_lock(project)
    assert proc.returncode == 0, proc.stderr
    lock = read_pipfile_lock(project)
    default = lock["default"]
    assert isinstance(default, dict)
    assert {name: entry["version"] for name, entry in default.items()} == {"app": "==1.0", "libb": "==2.0"}
    installed = micropipenv_install(project)
    assert installed.returncode == 0, installed.stderr
    venv = project / "deploy-venv"
    versions = installed_versions(venv_site_packages(venv))
    assert versions["app"] == "1.0"
    assert versions["libb"] == "2.0"
    assert import_version(venv_python(venv), "libb") == "2.0"
    meta = lock["_meta"]
    assert isinstance(meta, dict)
    assert meta["sources"][0]["url"] == server.url
