"""``index-proxy analyze``: run as a real subprocess on built files, directories and URLs."""

from __future__ import annotations

import functools
import http.server
import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.wheels import build_sdist, build_wheel

from analyzers import Facts

TIMEOUT = 120


def run(*args: str, stderr: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """The command's result; ``stderr`` may be a file descriptor (a pseudo-terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "index_proxy", "analyze", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def run_json(*args: str) -> tuple[int, list[dict[str, Any]]]:
    proc = run(*args, "--json")
    assert proc.stderr == "", proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def broken_wheel(directory: Path) -> Path:
    """A wheel whose bytes were cut in half (a truncated download)."""
    good = build_wheel(directory / "src", "broken", "1.0")
    target = directory / good.name
    target.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return target


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, directory) of a loopback HTTP server serving that directory."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_directory_of_good_files_as_json(tmp_path: Path) -> None:
    root = tmp_path / "dists"
    build_wheel(root, "alpha", "1.0", requires_dist=["beta>=2"], requires_python=">=3.9")
    build_sdist(root / "nested" / "deeper", "gamma", "2.0")
    (root / "notes.txt").write_text("ignored: not a distribution")
    code, facts = run_json(str(root))
    assert code == 0
    assert [(f["filename"], f["kind"]) for f in facts] == [
        ("alpha-1.0-py3-none-any.whl", "wheel"),
        ("gamma-2.0.tar.gz", "sdist"),
    ]
    alpha = Facts.from_json(facts[0])
    assert alpha.metadata is not None
    assert alpha.metadata.requires_dist == ("beta>=2",)
    assert alpha.findings == ()


def test_any_broken_file_exits_1(tmp_path: Path) -> None:
    good = build_wheel(tmp_path / "good", "alpha", "1.0")
    bad = broken_wheel(tmp_path / "bad")
    code, facts = run_json(str(good), str(bad))
    assert code == 1
    assert [f["filename"] for f in facts] == [good.name, bad.name]
    assert facts[0]["findings"] == []
    assert [f["code"] for f in facts[1]["findings"]] == ["truncated-zip"]


def test_several_findings_in_json(tmp_path: Path) -> None:
    path = build_wheel(tmp_path, "alpha", "1.0", metadata_name="impostor")
    code, facts = run_json(str(path))
    assert code == 1
    assert [(f["code"], f["severity"]) for f in facts[0]["findings"]] == [("metadata-name-mismatch", "error")]
    assert facts[0]["metadata"]["name"] == "impostor"


def test_human_table(tmp_path: Path) -> None:
    good = build_wheel(tmp_path, "alpha", "1.0", requires_python=">=3.9")
    bad = broken_wheel(tmp_path / "bad")
    proc = run(str(good), str(bad))
    assert proc.returncode == 1
    assert proc.stderr == ""  # no progress bar: stderr is not a terminal
    blocks = proc.stdout.strip().split("\n\n")
    assert len(blocks) == 2
    assert blocks[0].splitlines()[0] == good.name
    assert "alpha 1.0" in blocks[0]
    assert ">=3.9" in blocks[0]
    assert "findings" in blocks[0] and "none" in blocks[0]
    assert "error truncated-zip" in blocks[1]
    for label in ("kind", "requires-python", "min glibc", "computed tag", "mis-tagged", "cpu level", "cuda"):
        assert label in blocks[0]


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    paths = [build_wheel(tmp_path, name, "1.0") for name in ("alpha", "beta")]
    primary, secondary = pty.openpty()
    try:
        proc = run(*map(str, paths), "--json", stderr=secondary)
        os.close(secondary)
        secondary = -1
        output = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    assert proc.returncode == 0
    assert b"2/2" in output and b"#" in output
    assert len(json.loads(proc.stdout)) == 2


def test_url(file_server: tuple[str, Path]) -> None:
    base, root = file_server
    path = build_wheel(root, "alpha", "1.0")
    code, facts = run_json(f"{base}/{path.name}#sha256=ignored")
    assert code == 0
    assert facts[0]["filename"] == path.name
    assert facts[0]["sha256"] == Facts.from_json(facts[0]).sha256
    assert facts[0]["metadata"]["name"] == "alpha"


def test_url_not_found_is_a_broken_result(file_server: tuple[str, Path]) -> None:
    base, _ = file_server
    code, facts = run_json(f"{base}/missing-1.0-py3-none-any.whl")
    assert code == 1
    assert [f["code"] for f in facts[0]["findings"]] == ["download-failed"]


def test_unreadable_path_is_a_usage_error(tmp_path: Path) -> None:
    good = build_wheel(tmp_path, "alpha", "1.0")
    missing = tmp_path / "nope.whl"
    proc = run(str(good), str(missing))
    assert proc.returncode == 2
    assert str(missing) in proc.stderr
    assert proc.stdout == ""


def test_directory_without_distributions_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    proc = run(str(tmp_path))
    assert proc.returncode == 2
    assert str(tmp_path) in proc.stderr


def test_no_arguments_is_a_usage_error() -> None:
    assert run().returncode == 2


def test_explicit_file_of_unknown_kind(tmp_path: Path) -> None:
    path = tmp_path / "setup.exe"
    path.write_bytes(b"MZ")
    code, facts = run_json(str(path))
    assert code == 1
    assert facts[0]["kind"] == "unknown"
    assert [f["code"] for f in facts[0]["findings"]] == ["not-a-distribution"]
