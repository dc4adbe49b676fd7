"""Analysis benchmark: ``analyzers.analyze()`` against ``auditwheel show`` on the same wheels.

Run from the repository root::

    .venv/bin/python benchmarks/analyze.py [--quick] [--repeat N] [--markdown FRAGMENT.md]

One run does all of this, sending no traffic except pip's own downloads from the index pip is
configured with:

1. Corpus: ``pip download --only-binary :all: --no-deps`` (this machine's pip configuration) of
   compiled projects in several builds each (the best one for this machine, a ``manylinux2014`` one,
   a ``manylinux_2_28`` one), a few ``musllinux`` and ``aarch64`` builds and some pure wheels, into
   ``benchmarks/.cache/analyze-wheels``. A manifest there remembers what each request gave (or that it
   gave nothing), so later runs reuse the cache and ask pip only for what is missing.
2. Peers: ``auditwheel`` in ``benchmarks/.venv-peers`` (created with ``python3 -m venv`` on first use;
   nothing is installed into the project's environment).
3. Timing, ``--repeat`` passes (median per wheel), ours and auditwheel's alternating wheel by wheel so
   that load from other work on a shared machine hits both alike: ``analyze(path)`` in this process;
   ``auditwheel show <wheel>``, one subprocess each. Then auditwheel's bare start-up (``auditwheel
   --version``, the interpreter and auditwheel's entry point) on its own, so the comparison can be
   given with that start-up subtracted; and auditwheel in-process: one peer-venv interpreter imports
   ``analyze_wheel_abi`` and loops over all wheels (its per-file cache cleared before each call).
4. Answers: the minimal platform tag, ours (``facts.abi.computed_tag``) against auditwheel's
   (``is consistent with the following platform tag: ...``), legacy aliases normalized
   (``manylinux2014`` = ``manylinux_2_17``, ``manylinux2010`` = ``manylinux_2_12``, ``manylinux1`` =
   ``manylinux_2_5``). Each disagreement is explained from both sides' evidence: our facts
   (symbol versions, libraries, findings, CPU note) and ``auditwheel show --json`` (its symbol tag,
   ISA verdict, external libraries, blacklisted symbols), run once more, untimed.

It prints a table per wheel, the totals and the ratios against the goal (at least 5x faster than
auditwheel with the same answers). ``--markdown`` writes the totals and the disagreements as a
fragment for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = HERE / ".cache" / "analyze-wheels"
MANIFEST = CORPUS / "manifest.json"
PEERS = HERE / ".venv-peers"
AUDITWHEEL = PEERS / "bin" / "auditwheel"

sys.path.insert(0, str(ROOT))
from _processes import cpu_model_and_memory  # noqa: E402  (this folder is on the path when run as a script)

from analyzers import Facts, analyze  # noqa: E402  (the repository root is put on the path above)

GOAL = 5.0
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"

COMPILED = (
    "numpy",
    "scipy",
    "pillow",
    "cryptography",
    "pandas",
    "lxml",
    "psutil",
    "pyyaml",
    "markupsafe",
    "orjson",
    "grpcio",
    "pydantic-core",
    "regex",
    "ujson",
    "zstandard",
    "msgpack",
    "cffi",
    "charset-normalizer",
    "multidict",
    "frozenlist",
    "yarl",
    "aiohttp",
)
PURE = ("requests", "six", "attrs", "packaging", "idna", "click")
MUSL = ("numpy", "orjson", "psutil", "ujson", "msgpack")
AARCH64 = ("numpy", "orjson")
QUICK = ("numpy", "psutil", "markupsafe", "orjson", "cffi", "regex", "requests")

# variant -> the pip arguments selecting it (None: pip's own choice for this interpreter and machine).
_TARGET = ["--python-version", PY, "--implementation", "cp", "--abi", CP, "--abi", "abi3", "--abi", "none"]
VARIANTS: dict[str, list[str] | None] = {
    "native": None,
    "manylinux2014": ["--platform", "manylinux2014_x86_64", *_TARGET],
    "manylinux_2_28": ["--platform", "manylinux_2_28_x86_64", *_TARGET],
    "musllinux": ["--platform", "musllinux_1_2_x86_64", "--platform", "musllinux_1_1_x86_64", *_TARGET],
    "aarch64": ["--platform", "manylinux2014_aarch64", *_TARGET],
}
_ALIASES = (("manylinux1_", "manylinux_2_5_"), ("manylinux2010_", "manylinux_2_12_"))
_ALIASES += (("manylinux2014_", "manylinux_2_17_"),)
_CONSISTENT = re.compile(r'consistent with the following platform tag:\s*"([^"]+)"')


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- corpus ----------------------------------------------------------------------------------------


def requests_wanted(quick: bool) -> list[tuple[str, str]]:
    """(project, variant) pairs of the corpus; the quick run's is a subset of the full one."""
    wanted = [
        (name, variant) for name in COMPILED for variant in ("native", "manylinux2014", "manylinux_2_28")
    ]
    wanted += [(name, "native") for name in PURE]
    wanted += [(name, "musllinux") for name in MUSL]
    wanted += [(name, "aarch64") for name in AARCH64]
    return [pair for pair in wanted if not quick or pair[0] in QUICK]


def _wanted(variant: str, name: str) -> bool:
    """A platform-targeted request is for a binary wheel ("--abi none" also admits pure ones)."""
    return VARIANTS[variant] is None or not name.endswith("-any.whl")


def _download(project: str, variant: str) -> list[str]:
    """The wheel(s) pip picks for one request, moved into the corpus; [] when there is none."""
    with tempfile.TemporaryDirectory(dir=CORPUS) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--no-deps"]
        command += ["--dest", scratch, *(VARIANTS[variant] or []), project]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = [wheel for wheel in sorted(Path(scratch).glob("*.whl")) if _wanted(variant, wheel.name)]
        if done.returncode != 0 or not wheels:
            reason = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            log(f"  {project} ({variant}): none: {reason[:120]}")
            return []
        for wheel in wheels:
            shutil.move(str(wheel), CORPUS / wheel.name)
        return [wheel.name for wheel in wheels]


def build_corpus(quick: bool, refresh: bool) -> list[Path]:
    """The corpus wheels (downloading only the requests the manifest does not answer yet)."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, list[str]] = {}
    if MANIFEST.exists() and not refresh:
        manifest = json.loads(MANIFEST.read_text())
    wanted = requests_wanted(quick)
    missing = [
        (project, variant)
        for project, variant in wanted
        if f"{project}|{variant}" not in manifest
        or not all((CORPUS / name).exists() for name in manifest[f"{project}|{variant}"])
    ]
    if missing:
        log(f"downloading {len(missing)} of {len(wanted)} corpus requests into {CORPUS.relative_to(ROOT)}")
    for project, variant in missing:
        manifest[f"{project}|{variant}"] = _download(project, variant)
        MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    names = {
        name
        for project, variant in wanted
        for name in manifest[f"{project}|{variant}"]
        if _wanted(variant, name)
    }
    return sorted((CORPUS / name for name in names), key=lambda path: path.name.lower())


# -- peers -----------------------------------------------------------------------------------------


def ensure_auditwheel() -> str:
    """auditwheel in benchmarks/.venv-peers (created on first use); returns its version."""
    python = PEERS / "bin" / "python"
    if not python.exists():
        log("creating benchmarks/.venv-peers")
        # python3 -m venv, with this interpreter's own base (auditwheel then runs on the same Python).
        base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(PEERS)], check=True)
    if not AUDITWHEEL.exists():
        log("installing auditwheel into benchmarks/.venv-peers")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "auditwheel"], check=True)
    done = subprocess.run([str(AUDITWHEEL), "--version"], capture_output=True, text=True, check=True)
    found = re.search(r"\d+\.\d+(?:\.\d+)*", done.stdout + done.stderr)
    return found.group() if found else "?"


# -- measurements ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    path: Path
    size: int
    ours_wall: list[float] = dataclasses.field(default_factory=list)
    ours_cpu: list[float] = dataclasses.field(default_factory=list)
    show_wall: list[float] = dataclasses.field(default_factory=list)
    show_cpu: list[float] = dataclasses.field(default_factory=list)
    inproc_wall: list[float] = dataclasses.field(default_factory=list)
    inproc_cpu: list[float] = dataclasses.field(default_factory=list)
    facts: Facts | None = None
    ours_tag: str | None = None
    show_tag: str | None = None
    show_error: str | None = None
    inproc_tag: str | None = None
    inproc_error: str | None = None

    @property
    def agree(self) -> bool:
        return self.ours_tag == self.show_tag


def normalize(tag: str | None) -> str | None:
    if tag is None:
        return None
    for legacy, pep600 in _ALIASES:
        if tag.startswith(legacy):
            return pep600 + tag[len(legacy) :]
    return tag


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_ours(row: Row) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    facts = analyze(row.path)
    row.ours_wall.append(time.perf_counter() - wall)
    row.ours_cpu.append(time.process_time() - cpu)
    row.facts = facts
    row.ours_tag = normalize(facts.abi.computed_tag if facts.abi is not None else None)


def _show_answer(stdout: str, stderr: str, returncode: int) -> tuple[str | None, str | None]:
    """(tag, error) from ``auditwheel show``'s text; a pure wheel is (None, "not a platform wheel")."""
    found = _CONSISTENT.search(" ".join(stdout.split()))
    if found:
        return normalize(found.group(1)), None
    if "does not look like a platform wheel" in stdout + stderr:
        return None, "not a platform wheel"
    lines = [line for line in (stderr or stdout).strip().splitlines() if line.strip()]
    return None, lines[-1][:160] if lines else f"exit {returncode}"


def time_show(row: Row) -> None:
    cpu = _children_cpu()
    wall = time.perf_counter()
    done = subprocess.run(
        [str(AUDITWHEEL), "show", str(row.path)], capture_output=True, text=True, check=False
    )
    row.show_wall.append(time.perf_counter() - wall)
    row.show_cpu.append(_children_cpu() - cpu)
    row.show_tag, row.show_error = _show_answer(done.stdout, done.stderr, done.returncode)


def time_startup(walls: list[float], cpus: list[float]) -> None:
    """One sample of ``auditwheel --version``: the interpreter plus auditwheel's entry point."""
    cpu = _children_cpu()
    wall = time.perf_counter()
    subprocess.run([str(AUDITWHEEL), "--version"], capture_output=True, check=True)
    walls.append(time.perf_counter() - wall)
    cpus.append(_children_cpu() - cpu)


# Runs in the peer venv: auditwheel's own analysis (what ``show`` calls) in one process, per wheel.
_IN_PROCESS = r"""
import json, logging, sys, time
from pathlib import Path
from auditwheel.error import NonPlatformWheelError, WheelToolsError
from auditwheel.wheel_abi import analyze_wheel_abi, get_wheel_elfdata
from auditwheel.wheeltools import get_wheel_architecture, get_wheel_libc

logging.disable(logging.CRITICAL)
paths, repeat = json.loads(sys.stdin.read()), int(sys.argv[1])
for _ in range(repeat):
    for path in paths:
        get_wheel_elfdata.cache_clear()  # lru_cache'd per file: every pass must do the work
        wall, cpu = time.perf_counter(), time.process_time()
        tag = error = None
        name = Path(path).name
        try:
            arch = get_wheel_architecture(name)
        except (WheelToolsError, NonPlatformWheelError):
            arch = None
        try:
            libc = get_wheel_libc(name)
        except WheelToolsError:
            libc = None
        try:
            info = analyze_wheel_abi(
                libc, arch, Path(path), frozenset(), disable_isa_ext_check=False, allow_graft=False
            )
            tag = info.overall_policy.name
        except NonPlatformWheelError:
            error = "not a platform wheel"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:160]
        print(json.dumps({"path": path, "wall": time.perf_counter() - wall,
                          "cpu": time.process_time() - cpu, "tag": tag, "error": error}), flush=True)
"""


def time_in_process(rows: Sequence[Row], repeat: int) -> float:
    """auditwheel's analysis in one peer interpreter; returns that process's total wall seconds."""
    by_path = {str(row.path): row for row in rows}
    wall = time.perf_counter()
    done = subprocess.run(
        [str(PEERS / "bin" / "python"), "-c", _IN_PROCESS, str(repeat)],
        input=json.dumps(list(by_path)),
        capture_output=True,
        text=True,
        check=True,
    )
    total = time.perf_counter() - wall
    for line in done.stdout.splitlines():
        result = json.loads(line)
        row = by_path[result["path"]]
        row.inproc_wall.append(result["wall"])
        row.inproc_cpu.append(result["cpu"])
        row.inproc_tag, row.inproc_error = normalize(result["tag"]), result["error"]
    return total


class _Stopwatch:
    """Wall seconds spent in a few of the analyzers' functions, by wrapping them for one pass."""

    # (label, module, attribute): each call site looks the name up in that module at call time.
    POINTS = (
        ("zip headers", "analyzers.analyze", "inspect_archive"),
        ("RECORD", "analyzers.analyze", "verify_record"),
        ("ELF read", "analyzers.analyze", "_elf_result"),
        ("ELF parse", "analyzers.analyze", "analyze_elf"),
        ("ISA scan", "analyzers.elf", "scan_x86_64"),
    )

    def __init__(self) -> None:
        self.seconds = dict.fromkeys((label for label, _, _ in self.POINTS), 0.0)
        self.seconds["total"] = 0.0
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _Stopwatch:
        for label, module_name, attribute in self.POINTS:
            module = sys.modules[module_name]
            original = getattr(module, attribute)
            self._saved.append((module, attribute, original))
            setattr(module, attribute, self._wrap(label, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for module, attribute, original in reversed(self._saved):
            setattr(module, attribute, original)

    def _wrap(self, label: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        return timed


def breakdown(rows: Sequence[Row]) -> dict[str, float]:
    """Where ``analyze()`` spends its time, over one untimed pass: exclusive seconds per part."""
    with _Stopwatch() as watch:
        for row in rows:
            start = time.perf_counter()
            analyze(row.path)
            watch.seconds["total"] += time.perf_counter() - start
    seconds = watch.seconds
    parts = {
        "RECORD check (inflate and sha256 every member)": seconds["RECORD"],
        "ELF members inflated for analysis": seconds["ELF read"] - seconds["ELF parse"],
        "ELF parse (headers, DT_NEEDED, verneed, notes, symbols)": seconds["ELF parse"] - seconds["ISA scan"],
        "x86-64 instruction scan": seconds["ISA scan"],
        "zip header checks": seconds["zip headers"],
    }
    parts["the rest (read file, sha256 of the wheel, METADATA, WHEEL, summaries)"] = seconds["total"] - sum(
        parts.values()
    )
    parts["total"] = seconds["total"]
    return parts


# -- explanations ----------------------------------------------------------------------------------


def _show_json(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(AUDITWHEEL), "show", "--json", str(path)], capture_output=True, text=True, check=False
    )
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}


def _node_key(node: str) -> tuple[str, tuple[int, ...]]:
    family, _, version = node.rpartition("_")
    return family, tuple(int(p) for p in version.split(".") if p.isdigit())


def _highest_nodes(nodes: Iterable[str]) -> list[str]:
    best: dict[str, str] = {}
    for node in nodes:
        family, number = _node_key(node)
        if family not in best or number > _node_key(best[family])[1]:
            best[family] = node
    return sorted(best.values())


def _our_nodes(facts: Facts) -> set[str]:
    """The version nodes of the ELF files of the wheel's (most common) architecture."""
    machines = [elf.machine for elf in facts.elf_files]
    arch = max(set(machines), key=machines.count, default=None)
    return {
        f"{prefix}_{version}"
        for elf in facts.elf_files
        if elf.machine == arch
        for prefix, versions in elf.symbol_versions.items()
        for version in versions
    }


def explain(row: Row) -> list[str]:
    """Why ours and auditwheel's tags differ, from both sides' evidence (auditwheel's --json)."""
    facts = row.facts
    assert facts is not None
    shown = _show_json(row.path)
    lines = []
    if "error" in shown:
        return [f"auditwheel: {shown['error']}"]
    theirs = {node for nodes in shown.get("versioned_symbols", {}).values() for node in nodes}
    ours = _our_nodes(facts)
    abi, cpu = facts.abi, facts.cpu
    lines.append(
        f"auditwheel: overall {shown.get('overall_tag')}, symbols {shown.get('sym_tag')}, "
        f"unsupported ISA {shown.get('unsupported_isa')}, external libs "
        f"{sorted(shown.get('external_libs', {})) or 'none'}; highest nodes {_highest_nodes(theirs)}"
    )
    if abi is not None:
        lines.append(
            f"ours: {abi.computed_tag}, libc {abi.libc}, min glibc {abi.min_glibc}, external "
            f"{list(abi.needed_external) or 'none'}; highest nodes {_highest_nodes(ours)}; CPU "
            f"{cpu and cpu.level} (source {cpu and cpu.source}, note {cpu and cpu.level_from_note})"
        )
    only_ours, only_theirs = sorted(ours - theirs), sorted(theirs - ours)
    if only_ours or only_theirs:
        lines.append(
            f"version nodes only we count: {only_ours or 'none'}; only auditwheel: {only_theirs or 'none'}"
        )
    upgrades = shown.get("policy_upgrades", {})
    for policy, entry in sorted(upgrades.items()):
        if entry.get("blacklisted_symbols"):
            lines.append(f"auditwheel blacklist blocks {policy}: {entry['blacklisted_symbols']}")
    lines.append("why: " + _verdict(row, shown, only_ours))
    return lines


def _verdict(row: Row, shown: dict[str, Any], only_ours: Sequence[str]) -> str:
    ours, theirs = row.ours_tag or "", row.show_tag or ""
    facts = row.facts
    assert facts is not None
    if ours.startswith("musllinux_") and theirs.startswith("musllinux_"):
        return (
            "musl has no symbol versions, so the musllinux minor cannot come from the binary: auditwheel "
            "keeps the one policy matching the host's musl (none on this glibc host: the newest), ours "
            "reports the lowest"
        )
    if shown.get("unsupported_isa"):
        note = facts.cpu.level_from_note if facts.cpu else None
        return (
            f"an ELF file's GNU property note needs {note}: auditwheel's ISA check drops the tag to linux; "
            "ours keeps the glibc-derived tag and reports the level as cpu.level (the resolver matches it)"
        )
    if any(entry.get("blacklisted_symbols") for entry in shown.get("policy_upgrades", {}).values()):
        return "auditwheel's per-policy symbol blacklist, which ours does not check"
    if shown.get("sym_tag") != shown.get("overall_tag"):
        return "auditwheel's external-library check (resolved on this host) lowered its tag"
    if only_ours:
        return (
            f"version nodes we count and auditwheel does not (e.g. the dynamic loader's): {list(only_ours)}"
        )
    return "not classified: compare the nodes and libraries above"


# -- report ----------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _label(path: Path) -> str:
    return path.name.removesuffix(".whl")


def per_wheel_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| wheel | MB | ours ms | auditwheel show ms | auditwheel in-process ms "
        "| ours | auditwheel | agree |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        theirs = row.show_tag or f"({row.show_error})"
        lines.append(
            f"| {_label(row.path)} | {row.size / 1e6:.2f} | {_ms(_median(row.ours_wall))} | "
            f"{_ms(_median(row.show_wall))} | {_ms(_median(row.inproc_wall))} | {row.ours_tag or '(pure)'} | "
            f"{theirs} | {'yes' if row.agree else '**no**'} |"
        )
    return lines


@dataclasses.dataclass(frozen=True)
class Side:
    label: str
    walls: list[float]  # per wheel, median over passes
    cpus: list[float]

    @property
    def total(self) -> float:
        return sum(self.walls)

    @property
    def cpu(self) -> float:
        return sum(self.cpus)


def _show_ratio(row: Row) -> float:
    return _median(row.show_wall) / _median(row.ours_wall)


def _ratio_median(side: Side, ours: Side) -> float:
    return _median([theirs / mine for theirs, mine in zip(side.walls, ours.walls, strict=True) if mine])


def totals_table(sides: Sequence[Side], megabytes: float, ours: Side) -> list[str]:
    lines = [
        "| | total s | wheels/s | MB/s | median ms/wheel | CPU s | vs ours: wall | CPU "
        "| median per-wheel ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        count = len(side.walls)
        lines.append(
            f"| {side.label} | {side.total:.2f} | {count / side.total:.2f} | {megabytes / side.total:.1f} | "
            f"{_ms(_median(side.walls))} | {side.cpu:.2f} | {side.total / ours.total:.2f}x | "
            f"{side.cpu / ours.cpu:.2f}x | {_ratio_median(side, ours):.1f}x |"
        )
    return lines


def machine_notes(auditwheel_version: str, load_before: str, load_after: str, repeat: int) -> list[str]:
    model, _ = cpu_model_and_memory()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "analyzers"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"CPU: {os.cpu_count()} x {model} (shared with other work); Linux {platform.release()}; "
        f"Python {platform.python_version()}",
        f"auditwheel {auditwheel_version} (pyelftools, in benchmarks/.venv-peers, same Python)",
        f"{repeat} pass(es), ours and `auditwheel show` alternating wheel by wheel; per-wheel median of "
        "the passes; totals are sums of those medians; wall time (perf_counter) and CPU time (ours: "
        "process time; subprocesses: RUSAGE_CHILDREN)",
        f"load average (1/5/15 min) before: {load_before}; after: {load_after}",
        f"analyzers source: {head}{' + uncommitted changes' if dirty else ''}",
    ]


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help=f"a small corpus ({', '.join(QUICK)}), one pass")
    parser.add_argument("--repeat", type=int, help="timed passes over the corpus (default 3, quick 1)")
    parser.add_argument("--refresh", action="store_true", help="download the corpus again")
    parser.add_argument("--markdown", type=Path, help="also write the totals and disagreements here")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)

    auditwheel_version = ensure_auditwheel()
    paths = build_corpus(args.quick, args.refresh)
    rows = [Row(path, path.stat().st_size) for path in paths]
    megabytes = sum(row.size for row in rows) / 1e6
    log(f"{len(rows)} wheels, {megabytes:.1f} MB; {repeat} pass(es)")
    load_before = _loadavg()

    for row in rows:  # warm the page cache and the imports, untimed
        row.path.read_bytes()
    analyze(rows[0].path)
    startup_walls: list[float] = []
    startup_cpus: list[float] = []
    for number in range(1, repeat + 1):
        log(f"pass {number}/{repeat}: ours, auditwheel show and auditwheel --version, wheel by wheel")
        for row in rows:
            time_ours(row)
            time_show(row)
            time_startup(startup_walls, startup_cpus)
    startup_wall, startup_cpu = _median(startup_walls), _median(startup_cpus)
    log(f"auditwheel in-process: {repeat} pass(es) in one interpreter")
    inproc_process = time_in_process(rows, repeat)
    log("where ours spends its time: one more pass, with stopwatches")
    parts = breakdown(rows)
    load_after = _loadavg()

    ours = Side(
        "ours: `analyze()` in-process",
        [_median(r.ours_wall) for r in rows],
        [_median(r.ours_cpu) for r in rows],
    )
    show = Side(
        "`auditwheel show` (subprocess each)",
        [_median(r.show_wall) for r in rows],
        [_median(r.show_cpu) for r in rows],
    )
    bare = Side(
        "`auditwheel show` minus start-up",
        [max(w - startup_wall, 0.0) for w in show.walls],
        [max(c - startup_cpu, 0.0) for c in show.cpus],
    )
    inproc = Side(
        "auditwheel `analyze_wheel_abi` in-process",
        [_median(r.inproc_wall) for r in rows],
        [_median(r.inproc_cpu) for r in rows],
    )
    disagreements = [row for row in rows if not row.agree]
    inproc_differs = [row for row in rows if row.inproc_tag != row.show_tag]

    out: list[str] = ["## Per wheel", "", *per_wheel_table(rows), ""]
    summary = [
        f"Command: `.venv/bin/python benchmarks/analyze.py{' --quick' if args.quick else ''}"
        f"{f' --repeat {args.repeat}' if args.repeat else ''}`",
        "",
        *(f"* {note}" for note in machine_notes(auditwheel_version, load_before, load_after, repeat)),
        f"* corpus: {len(rows)} wheels, {megabytes:.1f} MB "
        f"({sum(1 for r in rows if r.facts and r.facts.abi is None)} pure), "
        "`benchmarks/.cache/analyze-wheels`",
        f"* auditwheel start-up (`auditwheel --version` after each wheel, median of {len(startup_walls)}): "
        f"{_ms(startup_wall)} ms wall, {_ms(startup_cpu)} ms CPU; the in-process loop's interpreter "
        f"ran {inproc_process:.1f} s in all, imports included",
        "",
        *totals_table([ours, show, bare, inproc], megabytes, ours),
        "",
    ]

    def verdict(ratio: float) -> str:
        return f"{ratio:.2f}x ({'met' if ratio >= GOAL else '**not met**'})"

    summary += [
        f"Goal: at least {GOAL:g}x faster than auditwheel (total over the corpus) with the same answers.",
        "",
        *(
            f"* vs {side.label}: wall {verdict(side.total / ours.total)}, CPU {verdict(side.cpu / ours.cpu)}"
            for side in (show, bare, inproc)
        ),
        "* lowest per-wheel ratios (`auditwheel show` / ours, wall): "
        + ", ".join(
            f"`{_label(row.path)}` ({row.size / 1e6:.1f} MB) {_show_ratio(row):.1f}x"
            for row in sorted(rows, key=_show_ratio)[:4]
        ),
        f"* same tag: {len(rows) - len(disagreements)} of {len(rows)} wheels"
        + (
            f"; in-process auditwheel differs from `auditwheel show` on {len(inproc_differs)}"
            if inproc_differs
            else ""
        ),
        "",
    ]
    extra = parts["RECORD check (inflate and sha256 every member)"] + parts["x86-64 instruction scan"]
    same_work = ours.total * (1 - extra / parts["total"])
    summary += [
        "Where ours spends its time (one more pass, stopwatches around the analyzers' steps; the RECORD",
        "check and the instruction scan are work auditwheel does not do):",
        "",
        "| part | s | share |",
        "|---|---:|---:|",
        *(
            f"| {label} | {seconds:.2f} | {100 * seconds / parts['total']:.0f}% |"
            for label, seconds in parts.items()
        ),
        "",
        f"Without those two, ours would take about {same_work:.2f} s: {inproc.total / same_work:.2f}x faster "
        f"than auditwheel in-process, {bare.total / same_work:.2f}x than `auditwheel show` minus start-up.",
        "",
    ]
    if disagreements:
        summary += ["Disagreements:", ""]
        for row in disagreements:
            summary.append(
                f"* `{row.path.name}`: ours {row.ours_tag}, auditwheel {row.show_tag or row.show_error}"
            )
            summary += [f"  * {line}" for line in explain(row)]
        summary.append("")
    out += ["## Totals", "", *summary]
    print("\n".join(out))
    if args.markdown:
        args.markdown.write_text("\n".join(summary))
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
