"""Files and PEP 658 core metadata through a real proxy: verified, cached, ranged."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.proxy import RunningProxy
from support.wheels import build_sdist, build_wheel, read_wheel_metadata
from test_proxy_pages import JSON_V1, proxy_config

NATIVE = "int answer(void) { return 42; }\n"


def page_files(proxy: RunningProxy, project: str) -> dict[str, dict[str, Any]]:
    data = proxy.get(f"/simple/{project}/", headers={"Accept": JSON_V1}).json()
    return {f["filename"]: f for f in data["files"]}


def file_path(proxy: RunningProxy, project: str, filename: str) -> str:
    url = page_files(proxy, project)[filename]["url"]
    assert url.startswith("../../files/")
    return "/" + url.removeprefix("../../")


def blobs_of(proxy: RunningProxy) -> list[Path]:
    root = proxy.workdir / "blobs" / "sha256"
    return sorted(root.glob("*/*")) if root.is_dir() else []


@pytest.fixture
def html_upstream_proxy(upstreams: Any, wheel_dir: Path, proxy: Any) -> tuple[RunningProxy, Any, Path]:
    """An HTML-only upstream without .metadata and without Range support, behind a proxy."""
    upstream = upstreams(style="html", name="plain")
    wheel = build_wheel(
        wheel_dir,
        "native",
        "1.0",
        tag="cp311-cp311-linux_x86_64",
        extension_c=NATIVE,
        requires_dist=["libb>=1"],
    )
    upstream.add(wheel)
    upstream.add(build_sdist(wheel_dir, "native", "1.0"))
    running: RunningProxy = proxy(proxy_config([{"name": "plain", "url": upstream.url}]))
    return running, upstream, wheel


def test_file_streamed_verified_and_cached(html_upstream_proxy: tuple[RunningProxy, Any, Path]) -> None:
    proxy, upstream, wheel = html_upstream_proxy
    path = file_path(proxy, "native", wheel.name)
    first = proxy.get(path)
    assert first.status_code == 200
    assert first.content == wheel.read_bytes()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert [blob.name for blob in blobs_of(proxy)] == [digest]
    upstream.reset_log()
    second = proxy.get(path)
    assert second.content == wheel.read_bytes()
    assert second.headers["etag"] == f'"{digest}"'
    assert "immutable" in second.headers["cache-control"]
    assert upstream.count("GET", "/files/") == 0, "a cached file must not be fetched again"


def test_tampered_file_is_refused_and_not_kept(html_upstream_proxy: tuple[RunningProxy, Any, Path]) -> None:
    proxy, upstream, wheel = html_upstream_proxy
    path = file_path(proxy, "native", wheel.name)
    upstream.tamper(wheel.name)
    response = proxy.get(path)
    assert response.status_code == 502
    assert "sha256 mismatch" in response.json()["error"]
    assert blobs_of(proxy) == []
    assert not any((proxy.workdir / "blobs" / "tmp").iterdir())
    events = proxy.guard_events()
    assert [(e["kind"], e["filename"], e["index"]) for e in events] == [
        ("hash-mismatch", wheel.name, "plain")
    ]
    assert 'index_proxy_hash_mismatches_total{index="plain"} 1.0' in proxy.get("/metrics").text


def test_large_tampered_file_is_cut_short(upstreams: Any, wheel_dir: Path, proxy: Any) -> None:
    import os

    upstream = upstreams(style="html", name="plain")
    wheel = build_wheel(wheel_dir, "big", "1.0", extra_files={"big/blob.bin": os.urandom(3 * 1024 * 1024)})
    upstream.add(wheel)
    running: RunningProxy = proxy(proxy_config([{"name": "plain", "url": upstream.url}]))
    path = file_path(running, "big", wheel.name)
    upstream.tamper(wheel.name)
    with pytest.raises(httpx.HTTPError), httpx.Client(trust_env=False) as client:
        # Streaming began before the hash could be checked: the transfer must not complete.
        client.get(running.url + path, timeout=30).raise_for_status()
    assert blobs_of(running) == []


def test_head_and_range(html_upstream_proxy: tuple[RunningProxy, Any, Path]) -> None:
    proxy, _upstream, wheel = html_upstream_proxy
    data = wheel.read_bytes()
    path = file_path(proxy, "native", wheel.name)
    with httpx.Client(trust_env=False) as client:
        head = client.head(proxy.url + path)
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == len(data)
        ranged = client.get(proxy.url + path, headers={"Range": "bytes=10-29"})
        assert ranged.status_code == 206
        assert ranged.content == data[10:30]
        assert ranged.headers["content-range"] == f"bytes 10-29/{len(data)}"
        suffix = client.get(proxy.url + path, headers={"Range": "bytes=-16"})
        assert suffix.content == data[-16:]
        warm_head = client.head(proxy.url + path)
        assert warm_head.headers["accept-ranges"] == "bytes"


def test_unknown_file_is_404(html_upstream_proxy: tuple[RunningProxy, Any, Path]) -> None:
    proxy, _upstream, _wheel = html_upstream_proxy
    response = proxy.get("/files/" + "0" * 64 + "/nothing-1.0-py3-none-any.whl")
    assert response.status_code == 404
    assert "fetch the project's page first" in response.json()["error"]


def test_metadata_extracted_when_upstream_has_none_and_no_range(
    html_upstream_proxy: tuple[RunningProxy, Any, Path],
) -> None:
    proxy, upstream, wheel = html_upstream_proxy
    files = page_files(proxy, "native")
    assert files[wheel.name]["core-metadata"] is True  # servable, hash not yet known
    assert "core-metadata" not in files["native-1.0.tar.gz"]
    response = proxy.get(file_path(proxy, "native", wheel.name) + ".metadata")
    assert response.status_code == 200
    assert response.content == read_wheel_metadata(wheel)
    assert b"Requires-Dist: libb>=1" in response.content
    # No Range support upstream: the one whole download was verified and kept as the file itself.
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in [b.name for b in blobs_of(proxy)]
    assert upstream.count("GET", f"/files/{wheel.name}.metadata") == 0
    expected = hashlib.sha256(response.content).hexdigest()
    assert page_files(proxy, "native")[wheel.name]["core-metadata"] == {"sha256": expected}
    html = proxy.get("/simple/native/", headers={"Accept": "text/html"}).text
    assert f'data-core-metadata="sha256={expected}"' in html


def test_metadata_by_range_reads(upstreams: Any, wheel_dir: Path, proxy: Any) -> None:
    import os

    upstream = upstreams(style="json", range_support=True, metadata=False, name="ranged")
    wheel = build_wheel(wheel_dir, "big", "1.0", extra_files={"big/blob.bin": os.urandom(2 * 1024 * 1024)})
    upstream.add(wheel)
    running: RunningProxy = proxy(proxy_config([{"name": "ranged", "url": upstream.url}]))
    path = file_path(running, "big", wheel.name)
    upstream.reset_log()
    response = running.get(path + ".metadata")
    assert response.content == read_wheel_metadata(wheel)
    file_requests = [r for r in upstream.requests if r.path.startswith("/files/")]
    assert file_requests and all(r.header("Range") for r in file_requests), "expected range reads only"
    assert blobs_of(running) and wheel.name not in [b.name for b in blobs_of(running)]
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() not in [b.name for b in blobs_of(running)]


def test_upstream_metadata_passed_through(upstreams: Any, wheel_dir: Path, proxy: Any) -> None:
    upstream = upstreams(style="json", range_support=True, metadata=True, name="meta")
    wheel = build_wheel(wheel_dir, "libb", "1.0")
    upstream.add(wheel)
    running: RunningProxy = proxy(proxy_config([{"name": "meta", "url": upstream.url}]))
    advertised = page_files(running, "libb")[wheel.name]["core-metadata"]
    metadata = read_wheel_metadata(wheel)
    assert advertised == {"sha256": hashlib.sha256(metadata).hexdigest()}
    upstream.reset_log()
    assert running.get(file_path(running, "libb", wheel.name) + ".metadata").content == metadata
    assert upstream.count("GET", f"/files/{wheel.name}.metadata") == 1
    assert upstream.count("GET", f"/files/{wheel.name}") == 1  # only the .metadata request


def test_folder_index_files(folder_index: Any, wheel_dir: Path, proxy: Any) -> None:
    local = folder_index("local")
    wheel = build_wheel(wheel_dir, "localpkg", "0.1")
    local.add(wheel)
    running: RunningProxy = proxy(proxy_config([{"name": "local", "kind": "folder", "url": local.url}]))
    files = page_files(running, "localpkg")
    assert files[wheel.name]["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert files[wheel.name]["size"] == wheel.stat().st_size
    path = file_path(running, "localpkg", wheel.name)
    assert running.get(path).content == wheel.read_bytes()
    assert running.get(path + ".metadata").content == read_wheel_metadata(wheel)


def test_cached_file_answers_conditional_requests(
    html_upstream_proxy: tuple[RunningProxy, Any, Path],
) -> None:
    proxy, _upstream, wheel = html_upstream_proxy
    path = file_path(proxy, "native", wheel.name)
    etag = proxy.get(path).headers["etag"]
    again = proxy.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
