"""A running proxy keeping its files in S3 (moto on loopback): pip installs, ranges, tampered files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.clients import assert_ok, installed_versions, pip_install
from support.databases import FreshDatabases
from support.proxy import RunningProxy, free_port
from support.s3 import S3_ENV, S3Bucket, moto_s3_server
from support.wheels import build_wheel
from test_proxy_files import file_path, page_files

from index_proxy.blob_response import byte_range
from index_proxy.store.s3 import PART_SIZE


def s3_proxy_config(database: str, storage: dict[str, Any], indexes: list[dict[str, Any]]) -> str:
    document = {
        "server": {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token"},
        "storage": {"database": database, **storage},
        "indexes": indexes,
    }
    return yaml.safe_dump(document, sort_keys=False)


def blob_key(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"blobs/sha256/{digest[:2]}/{digest}"


def test_pip_installs_through_a_proxy_on_s3(
    tmp_path: Path,
    fresh_databases: FreshDatabases,
    s3_bucket: S3Bucket,
    upstreams: Any,
    wheel_dir: Path,
    proxy: Any,
) -> None:
    # Range support and no .metadata: the proxy reads each wheel's METADATA by ranges and keeps it
    # in S3, and pip then fetches the wheels themselves.
    public = upstreams(style="json", range_support=True, name="public")
    app = build_wheel(wheel_dir, "app", "1.0", requires_dist=["libb>=2"])
    libb = build_wheel(wheel_dir, "libb", "2.0")
    public.add(app)
    public.add(libb)
    public.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(
        s3_proxy_config(
            fresh_databases.url(tmp_path),
            {"blobs": s3_bucket.url, "s3": {"endpoint_url": s3_bucket.endpoint_url}},
            [{"name": "public", "url": public.url}],
        )
    )
    target = tmp_path / "site"
    assert_ok(pip_install(running.simple_url, ["app"], target))
    assert installed_versions(target) == {"app": "1.0", "libb": "2.0"}
    stored = s3_bucket.blob_keys()
    assert blob_key(app.read_bytes()) in stored and blob_key(libb.read_bytes()) in stored
    assert s3_bucket.open_uploads() == []
    assert not any(running.workdir.rglob("sha256")), "no blob may land on local disk"
    # A second installer is served from the bucket: the upstream sees no file request at all.
    public.reset_log()
    again = tmp_path / "again"
    assert_ok(pip_install(running.simple_url, ["app"], again))
    assert installed_versions(again) == {"app": "1.0", "libb": "2.0"}
    assert public.count("GET", "/files/") == 0
    assert running.error_lines() == []


def test_large_file_from_s3_with_head_and_ranges(
    tmp_path: Path,
    fresh_databases: FreshDatabases,
    s3_bucket: S3Bucket,
    upstreams: Any,
    wheel_dir: Path,
    proxy: Any,
) -> None:
    public = upstreams(style="json", name="public")
    # Incompressible and over two parts: the proxy uploads it in parts while streaming it.
    payload = os.urandom(2 * PART_SIZE + 4096)
    wheel = build_wheel(wheel_dir, "bigpkg", "1.0", extra_files={"bigpkg/data.bin": payload})
    public.add(wheel)
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    running: RunningProxy = proxy(
        s3_proxy_config(
            fresh_databases.url(tmp_path),
            {"blobs": s3_bucket.url, "s3": {"endpoint_url": s3_bucket.endpoint_url}},
            [{"name": "public", "url": public.url}],
        )
    )
    path = file_path(running, "bigpkg", wheel.name)
    first = running.get(path)
    assert first.status_code == 200 and first.content == data
    assert s3_bucket.blob_keys() == [blob_key(data)]
    public.reset_log()

    whole = running.get(path)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["etag"] == f'"{digest}"'
    assert whole.headers["accept-ranges"] == "bytes"
    assert "immutable" in whole.headers["cache-control"]

    with httpx.Client(trust_env=False, timeout=30) as client:
        head_response = client.head(running.url + path)
    assert head_response.status_code == 200
    assert head_response.headers["content-length"] == str(len(data))
    assert head_response.content == b""

    middle = running.get(path, headers={"Range": f"bytes={PART_SIZE - 5}-{PART_SIZE + 4}"})
    assert middle.status_code == 206
    assert middle.content == data[PART_SIZE - 5 : PART_SIZE + 5]
    assert middle.headers["content-range"] == f"bytes {PART_SIZE - 5}-{PART_SIZE + 4}/{len(data)}"
    tail = running.get(path, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]
    open_ended = running.get(path, headers={"Range": f"bytes={len(data) - 7}-"})
    assert open_ended.status_code == 206 and open_ended.content == data[-7:]
    beyond = running.get(path, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    stale = running.get(path, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = running.get(path, headers={"Range": "bytes=0-9", "If-Range": f'"{digest}"'})
    assert fresh.status_code == 206 and fresh.content == data[:10]
    cached = running.get(path, headers={"If-None-Match": f'"{digest}"'})
    assert cached.status_code == 304
    assert public.count("GET", "/files/") == 0, "every answer above came from the bucket"
    assert running.error_lines() == []


def test_tampered_file_leaves_nothing_in_the_bucket(
    tmp_path: Path,
    fresh_databases: FreshDatabases,
    s3_bucket: S3Bucket,
    upstreams: Any,
    wheel_dir: Path,
    proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The endpoint from the environment, as boto reads it, instead of storage.s3.endpoint_url.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    public = upstreams(style="html", name="public")
    small = build_wheel(wheel_dir, "small", "1.0")
    large = build_wheel(wheel_dir, "large", "1.0", extra_files={"large/data.bin": os.urandom(PART_SIZE + 1)})
    public.add(small)
    public.add(large)
    running: RunningProxy = proxy(
        s3_proxy_config(
            fresh_databases.url(tmp_path),
            {"blobs": s3_bucket.url, "s3": {"addressing_style": "path"}},
            [{"name": "public", "url": public.url}],
        )
    )
    for project, wheel in (("small", small), ("large", large)):
        path = file_path(running, project, wheel.name)
        public.tamper(wheel.name)
        # Small files are held back whole (a clean 502); large ones are cut before their last bytes.
        try:
            response = running.get(path)
        except httpx.TransportError:
            assert wheel is large
        else:
            assert response.status_code == 502 and "sha256 mismatch" in response.json()["error"]
        assert (
            page_files(running, project)[wheel.name]["hashes"]["sha256"]
            == hashlib.sha256(wheel.read_bytes()).hexdigest()
        )
    assert s3_bucket.keys() == []
    assert s3_bucket.open_uploads() == []
    events = running.guard_events()
    assert sorted(e["filename"] for e in events if e["kind"] == "hash-mismatch") == sorted(
        [small.name, large.name]
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=9-0", None),
        ("bytes=0-1,5-6", None),
        ("items=0-9", None),
        ("bytes=a-b", None),
        ("bytes=5", None),
    ],
)
def test_byte_range(header: str, expected: object) -> None:
    assert byte_range(header, 100) == expected


def test_unreachable_bucket_answers_503(
    tmp_path: Path,
    fresh_databases: FreshDatabases,
    upstreams: Any,
    wheel_dir: Path,
    proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    public = upstreams(style="json", name="public")
    wheel = build_wheel(wheel_dir, "pkg", "1.0")
    public.add(wheel)
    with moto_s3_server() as own_server:  # its own server, to stop it under a running proxy
        bucket = own_server.create_bucket()
        running: RunningProxy = proxy(
            s3_proxy_config(
                fresh_databases.url(tmp_path),
                {"blobs": bucket.url, "s3": {"endpoint_url": bucket.endpoint_url}},
                [{"name": "public", "url": public.url}],
            )
        )
        path = file_path(running, "pkg", wheel.name)
    response = running.get(path)
    assert response.status_code == 503
    message = response.json()["error"]
    assert f"{wheel.name}: the blob store failed" in message and bucket.endpoint_url in message
    assert public.count("GET", "/files/") == 0, "nothing is fetched that could not be kept"
