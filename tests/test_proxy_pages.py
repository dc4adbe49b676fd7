"""The merged simple index served by a real proxy process in front of real loopback upstreams."""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pypi_simple
import pytest
import yaml
from support.proxy import RunningProxy, free_port
from support.wheels import build_sdist, build_wheel

JSON_V1 = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
)


def proxy_config(indexes: list[dict[str, Any]], **server: Any) -> str:
    section = {"host": "127.0.0.1", "port": free_port(), "admin_token": "test-token", **server}
    return yaml.safe_dump({"server": section, "indexes": indexes}, sort_keys=False)


@pytest.fixture
def three_indexes(upstreams: Any, folder_index: Any, wheel_dir: Path, proxy: Any) -> dict[str, Any]:
    """internal (HTML, owns acme-*), public (JSON with metadata), local folder; a proxy in front."""
    internal = upstreams(style="html", name="internal")
    public = upstreams(style="json", range_support=True, metadata=True, name="public")
    local = folder_index("local")
    internal.add(build_wheel(wheel_dir, "acme-utils", "1.0"))
    public.add(build_wheel(wheel_dir, "acme-utils", "99.0"))
    public.add(build_wheel(wheel_dir, "Acme_Utils", "100.0"))
    public.add(build_wheel(wheel_dir, "libb", "1.0", requires_python=">=3.8"))
    public.add(build_wheel(wheel_dir, "libb", "2.0", requires_python=">=3.8"))
    public.add(build_sdist(wheel_dir, "libb", "2.0"))
    public.yank("libb-1.0-py3-none-any.whl", "broken build")
    local.add(build_wheel(wheel_dir, "localpkg", "0.1"))
    running: RunningProxy = proxy(
        proxy_config(
            [
                {"name": "internal", "url": internal.url, "owns": ["acme-*"]},
                {"name": "public", "url": public.url},
                {"name": "local", "kind": "folder", "url": local.url},
            ]
        )
    )
    return {"proxy": running, "internal": internal, "public": public, "local": local}


def test_json_page_carries_api_1_1_fields(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    response = proxy.get("/simple/libb/", headers={"Accept": PIP_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_V1
    assert "Accept" in response.headers["vary"]
    data = response.json()
    assert data["meta"]["api-version"] == "1.1"
    assert data["name"] == "libb"
    assert set(data["versions"]) == {"1.0", "2.0"}
    files = {f["filename"]: f for f in data["files"]}
    assert set(files) == {"libb-1.0-py3-none-any.whl", "libb-2.0-py3-none-any.whl", "libb-2.0.tar.gz"}
    wheel = files["libb-2.0-py3-none-any.whl"]
    assert wheel["requires-python"] == ">=3.8"
    assert isinstance(wheel["size"], int) and wheel["size"] > 0
    assert wheel["upload-time"].endswith("Z")
    assert len(wheel["hashes"]["sha256"]) == 64
    assert wheel["core-metadata"]  # the public index has .metadata
    assert wheel["url"].startswith("../../files/")
    assert files["libb-1.0-py3-none-any.whl"]["yanked"] == "broken build"
    # pypi-simple, an independent client library, reads the same page.
    page = pypi_simple.ProjectPage.from_json_data(data, base_url=proxy.simple_url + "libb/")
    by_name = {p.filename: p for p in page.packages}
    assert by_name["libb-2.0-py3-none-any.whl"].has_metadata
    assert by_name["libb-2.0-py3-none-any.whl"].requires_python == ">=3.8"
    assert by_name["libb-1.0-py3-none-any.whl"].yanked_reason == "broken build"
    assert by_name["libb-2.0-py3-none-any.whl"].size == wheel["size"]
    assert page.versions is not None and set(page.versions) == {"1.0", "2.0"}


def test_html_page_parses_with_pypi_simple(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    response = proxy.get("/simple/libb/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = pypi_simple.ProjectPage.from_html("libb", response.text, base_url=proxy.simple_url + "libb/")
    by_name = {p.filename: p for p in page.packages}
    assert by_name["libb-2.0-py3-none-any.whl"].requires_python == ">=3.8"
    assert by_name["libb-2.0-py3-none-any.whl"].digests["sha256"]
    assert by_name["libb-2.0-py3-none-any.whl"].has_metadata
    assert by_name["libb-1.0-py3-none-any.whl"].is_yanked
    assert by_name["libb-2.0.tar.gz"].has_metadata is None  # an sdist: nothing advertised it cannot serve
    assert page.repository_version is not None


def test_negotiation_406_format_param_and_vary(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    refused = proxy.get("/simple/libb/", headers={"Accept": "application/xml"})
    assert refused.status_code == 406
    assert "application/vnd.pypi.simple.v1+json" in refused.json()["error"]
    forced = proxy.get(
        "/simple/libb/?format=application/vnd.pypi.simple.v1%2Bhtml", headers={"Accept": JSON_V1}
    )
    assert forced.headers["content-type"].startswith("application/vnd.pypi.simple.v1+html")
    zero = proxy.get("/simple/libb/", headers={"Accept": f"{JSON_V1};q=0, text/html;q=0.5"})
    assert zero.headers["content-type"].startswith("text/html")


def test_project_list_merges_and_guards(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    data = proxy.get("/simple/", headers={"Accept": JSON_V1}).json()
    assert {p["name"] for p in data["projects"]} == {"acme-utils", "libb", "localpkg"}
    html = proxy.get("/simple/", headers={"Accept": "text/html"}).text
    assert 'href="libb/"' in html


def test_dependency_confusion_guard(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    data = proxy.get("/simple/acme-utils/", headers={"Accept": JSON_V1}).json()
    assert [f["filename"] for f in data["files"]] == ["acme_utils-1.0-py3-none-any.whl"]
    assert data["versions"] == ["1.0"]
    events = proxy.guard_events()
    dropped = {(e["kind"], e["filename"], e["index"], e["kept_index"]) for e in events}
    assert ("owned-elsewhere", "acme_utils-99.0-py3-none-any.whl", "public", "internal") in dropped
    assert ("owned-elsewhere", "acme_utils-100.0-py3-none-any.whl", "public", "internal") in dropped
    metrics = proxy.get("/metrics").text
    assert 'index_proxy_guard_events_total{kind="owned-elsewhere"} 2.0' in metrics


def test_non_normalized_name_redirects(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    for path in ("/simple/Acme_Utils/", "/simple/acme.utils", "/simple/acme-utils"):
        response = proxy.get(path, follow_redirects=False)
        assert response.status_code == 301, path
        assert response.headers["location"] == "/simple/acme-utils/"


def test_etag_304_and_gzip(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    first = proxy.get("/simple/libb/", headers={"Accept": JSON_V1, "Accept-Encoding": "identity"})
    etag = first.headers["etag"]
    again = proxy.get("/simple/libb/", headers={"Accept": JSON_V1, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other_format = proxy.get("/simple/libb/", headers={"Accept": "text/html", "If-None-Match": etag})
    assert other_format.status_code == 200
    with httpx.Client(trust_env=False) as client:
        raw = client.get(proxy.url + "/simple/libb/", headers={"Accept": JSON_V1, "Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert (
        json.loads(raw.content) == first.json()
    )  # httpx decodes; equality proves the gzip body is the same page
    assert raw.headers["etag"] != etag
    compressed = gzip.compress(first.content)
    assert len(compressed) < len(first.content)


def test_unknown_project_is_a_clear_404(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    response = proxy.get("/simple/no-such-thing/", headers={"Accept": JSON_V1})
    assert response.status_code == 404
    message = response.json()["error"]
    assert "no-such-thing" in message and "internal, public, local" in message


def test_upstream_down_serves_stale_and_reports(upstreams: Any, wheel_dir: Path, proxy: Any) -> None:
    public = upstreams(style="json", name="public")
    public.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(
        proxy_config([{"name": "public", "url": public.url, "retries": 0, "timeout": 2}], page_ttl=0.2)
    )
    warm = running.get("/simple/libb/", headers={"Accept": JSON_V1})
    assert warm.status_code == 200
    public.stop()
    time.sleep(0.4)  # past the TTL: the next request must revalidate and will find the upstream gone
    stale = running.get("/simple/libb/", headers={"Accept": JSON_V1})
    assert stale.status_code == 200
    assert stale.json()["files"] == warm.json()["files"]
    ready = running.get("/readyz").json()
    assert ready["status"] == "degraded"
    assert ready["degraded"] == ["public"]
    assert "cannot connect" in ready["upstreams"]["public"]["last_error"]
    assert ready["upstreams"]["public"]["stale_pages_served"] >= 1
    assert 'index_proxy_stale_pages_total{index="public"}' in running.get("/metrics").text
    never_seen = running.get("/simple/never-seen/", headers={"Accept": JSON_V1})
    assert never_seen.status_code == 502
    assert "public" in never_seen.json()["error"] and "no cached page" in never_seen.json()["error"]
    public.start()
    time.sleep(0.3)
    assert running.get("/simple/never-seen/", headers={"Accept": JSON_V1}).status_code == 404
    assert running.get("/readyz").json()["status"] == "ok"


def test_concurrent_cold_misses_make_one_upstream_request(
    upstreams: Any, wheel_dir: Path, proxy: Any
) -> None:
    public = upstreams(style="json", name="public")
    public.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(proxy_config([{"name": "public", "url": public.url}]))
    public.set_delay(0.5)
    public.reset_log()
    with httpx.Client(trust_env=False, limits=httpx.Limits(max_connections=60)) as client:

        def fetch(_: int) -> int:
            return client.get(
                running.url + "/simple/libb/", headers={"Accept": JSON_V1}, timeout=30
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(fetch, range(50)))
    assert statuses == [200] * 50
    assert public.count("GET", "/simple/libb/") == 1


def test_revalidation_uses_if_none_match(upstreams: Any, wheel_dir: Path, proxy: Any) -> None:
    public = upstreams(style="json", name="public")
    public.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(proxy_config([{"name": "public", "url": public.url}], page_ttl=0.2))
    running.get("/simple/libb/", headers={"Accept": JSON_V1})
    time.sleep(0.3)
    public.add(build_wheel(wheel_dir, "libb", "2.0"))
    time.sleep(0.05)
    data = running.get("/simple/libb/", headers={"Accept": JSON_V1}).json()
    assert set(data["versions"]) == {"1.0", "2.0"}
    time.sleep(0.3)
    running.get("/simple/libb/", headers={"Accept": JSON_V1})
    conditional = [r for r in public.requests if r.path == "/simple/libb/" and r.header("If-None-Match")]
    assert conditional, "the proxy never revalidated with If-None-Match"


def test_malformed_upstream_page_keeps_last_good_page(
    upstreams: Any, wheel_dir: Path, proxy: Any, tmp_path: Path
) -> None:
    public = upstreams(style="json", name="public")
    public.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(
        proxy_config([{"name": "public", "url": public.url, "retries": 0}], page_ttl=0.2)
    )
    assert running.get("/simple/libb/", headers={"Accept": JSON_V1}).status_code == 200
    public.stop()
    broken = _BrokenIndex(public.port)
    try:
        time.sleep(0.3)
        response = running.get("/simple/libb/", headers={"Accept": JSON_V1})
        assert response.status_code == 200
        assert [f["filename"] for f in response.json()["files"]] == ["libb-1.0-py3-none-any.whl"]
        health = running.get("/readyz").json()["upstreams"]["public"]
        assert "files" in health["last_error"]  # the parser's precise complaint reaches the operator
    finally:
        broken.stop()


class _BrokenIndex:
    """A server on the upstream's port that answers JSON pages with a wrong shape."""

    def __init__(self, port: int) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"meta": {"api-version": "1.1"}, "name": "libb", "files": {"not": "a list"}}'
                self.send_response(200)
                self.send_header("Content-Type", JSON_V1)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_admin_api_needs_the_token(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    assert proxy.get("/api/v1/admin/guard-events").status_code == 401
    assert (
        proxy.get("/api/v1/admin/guard-events", headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    indexes = proxy.get("/api/v1/admin/indexes", headers=proxy.admin_headers()).json()["indexes"]
    assert [i["name"] for i in indexes] == ["internal", "public", "local"]
    assert indexes[0]["owns"] == ["acme-*"]


def test_operations_endpoints(three_indexes: dict[str, Any]) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    assert proxy.get("/healthz").json() == {"status": "ok"}
    schema = proxy.get("/openapi.json").json()
    assert "/api/v1/admin/guard-events" in schema["paths"]
    assert "/simple/{project}/" in schema["paths"]
    proxy.get("/simple/libb/", headers={"Accept": JSON_V1})
    metrics = proxy.get("/metrics").text
    assert 'index_proxy_page_responses_total{format="json",status="200"}' in metrics
    # Structured logs: every line the proxy wrote is a JSON object.
    lines = [line for line in proxy.log().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines)


def test_owned_name_published_only_elsewhere_is_refused_and_recorded(
    three_indexes: dict[str, Any], wheel_dir: Path
) -> None:
    proxy: RunningProxy = three_indexes["proxy"]
    three_indexes["public"].add(build_wheel(wheel_dir, "acme-secret", "5.0"))
    response = proxy.get("/simple/acme-secret/", headers={"Accept": JSON_V1})
    assert response.status_code == 404
    assert "owned by index 'internal'" in response.json()["error"]
    events = {(e["kind"], e["filename"], e["index"]) for e in proxy.guard_events()}
    assert ("owned-elsewhere", "acme_secret-5.0-py3-none-any.whl", "public") in events


def test_admin_refresh_revalidates_now(upstreams: Any, wheel_dir: Path, proxy: Any) -> None:
    public = upstreams(style="json", name="public")
    public.add(build_wheel(wheel_dir, "libb", "1.0"))
    running: RunningProxy = proxy(proxy_config([{"name": "public", "url": public.url}], page_ttl=3600))
    assert running.get("/simple/libb/", headers={"Accept": JSON_V1}).json()["versions"] == ["1.0"]
    public.add(build_wheel(wheel_dir, "libb", "2.0"))
    assert running.get("/simple/libb/", headers={"Accept": JSON_V1}).json()["versions"] == [
        "1.0"
    ]  # within TTL
    with httpx.Client(trust_env=False) as client:
        refreshed = client.post(
            running.url + "/api/v1/admin/refresh?project=LibB", headers=running.admin_headers()
        )
    assert refreshed.json() == {"refreshed": "libb"}
    assert running.get("/simple/libb/", headers={"Accept": JSON_V1}).json()["versions"] == ["1.0", "2.0"]
