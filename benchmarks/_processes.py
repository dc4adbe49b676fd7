"""What the benchmark scripts share: starting and measuring server processes, and small helpers.

Not a test helper: only the scripts in this folder import it (run them from the repository root,
e.g. ``.venv/bin/python benchmarks/serve.py``; Python puts this folder on the path).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "Server",
    "cpu_ticks",
    "first_line",
    "free_port",
    "http_status",
    "log",
    "other_busy_processes",
    "process_tree",
    "version_of",
    "yes",
]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def version_of(command: Sequence[str]) -> str:
    found = re.search(r"\d+\.\d+(?:\.\d+)*", first_line(command))
    return found.group() if found else "?"


def http_status(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def yes(met: bool) -> str:
    return "yes" if met else "**no**"


def process_tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                queue.extend(int(child) for child in task.read_text().split())
    return pids


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


class Server:
    """One server process group, stopped by its own process-group id."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if http_status(url, timeout=2) < 500:
                    return
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready at {url}; its log ends with:\n{tail}")

    def cpu_seconds(self) -> float:
        """User plus system CPU of the process and all its descendants."""
        return sum(cpu_ticks(pid) for pid in self.pids()) / os.sysconf("SC_CLK_TCK")

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


def other_busy_processes(seconds: float = 1.0, label: Callable[[int, str], str] | None = None) -> str:
    """Processes outside this benchmark that used over 10% of a core in a short sample, by name."""

    def snapshot() -> dict[int, tuple[str, int]]:
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                text = stat.read_text()
                name = text[text.index("(") + 1 : text.rindex(")")]
                fields = text.rsplit(")", 1)[1].split()
                found[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))
        return found

    ours = set(process_tree(os.getpid()))
    before = snapshot()
    time.sleep(seconds)
    after = snapshot()
    tick = os.sysconf("SC_CLK_TCK")
    busy: collections.Counter[str] = collections.Counter()
    for pid, (name, ticks) in after.items():
        if pid in ours or pid not in before:
            continue
        busy[label(pid, name) if label else name] += (ticks - before[pid][1]) / tick / seconds
    shown = [f"{name} {share:.0%}" for name, share in busy.most_common() if share >= 0.1]
    return ", ".join(shown) or "none"


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for one benchmark run, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cpu_model_and_memory() -> tuple[str, str]:
    """This machine's CPU model name and memory ("?" where /proc does not say), for result notes."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    return model, memory
