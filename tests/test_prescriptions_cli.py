"""Tests for ``index-proxy prescriptions check PATH...``: output lines and exit codes for CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from index_proxy.cli import main

CASES = Path(__file__).parent / "prescription_cases"


@pytest.fixture
def cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(CASES, tmp_path / "cases")
    monkeypatch.chdir(tmp_path)
    return Path("cases")


def test_clean_tree_exits_0(cases: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prescriptions", "check", str(cases / "tree")]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "17 unit(s) in 12 file(s): no problems\n"


def test_problems_print_one_per_line_and_exit_1(cases: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prescriptions", "check", str(cases / "tree"), str(cases / "defects")]) == 1
    out, err = capsys.readouterr()
    pypi = os.path.join("cases", "defects", "_indexes", "pypi.yaml")
    cuda = os.path.join("cases", "defects", "te_", "tensorflow", "tf_cuda.yaml")
    assert out.splitlines() == [
        f"{pypi}:7: units.sieves[0].should_include.adviser_pipeline: adviser_pipeline is not true, so the"
        " unit never"
        " registers in a resolve (Thoth's default is false); add adviser_pipeline: true",
        f"{pypi}:18: units.boots[0].should_include.dependencies.sieves: depends on sieve"
        ' "thoth.NoPyPIIndexSieve",'
        " which never registers, so the unit never registers",
        f'{pypi}:20: units.boots[0].match.package_name: "Flask" is not a normalized package name; write'
        ' "flask"',
        f'{pypi}:24: units.boots[1].name: boot name "thoth.FlaskBoot" is taken (first at {pypi}:13);'
        " names must be unique per unit list within a prescription namespace",
        f'{cuda}:9: units.sieves[0].should_include.runtime_environments.cuda_version: "<1.0,>1.4" matches no'
        " version,"
        ' so the unit never registers: nothing is both <1.0 and >1.4 (a comma means "and": to match outside'
        " a range,"
        " write one entry per side)",
        f'{cuda}:13: units.sieves[0].match[0].package_version.version: ">2.0.0,<2.0.0" matches no version,'
        " so this"
        ' match entry never matches: nothing is both >2.0.0 and <2.0.0 (a comma means "and": to match'
        " outside a"
        " range, write one entry per side)",
    ]
    assert err == "6 problem(s) in 14 file(s)\n"


def test_schema_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("units:\n  steps:\n  - {name: S, type: step, should_include: {times: 2}}\n")
    assert main(["prescriptions", "check", str(bad)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{bad}:3: units.steps[0].match: missing required key (a step needs match)",
        f"{bad}:3: units.steps[0].run: missing required key (a step needs run)",
        f"{bad}:3: units.steps[0].should_include.times: expected 0 (unit off) or 1, got 2",
    ]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert main(["prescriptions", "check", str(missing)]) == 2
    assert (
        capsys.readouterr().err == f"index-proxy prescriptions check: no such file or directory: {missing}\n"
    )
    (tmp_path / "empty").mkdir()
    assert main(["prescriptions", "check", str(tmp_path / "empty")]) == 2
    assert (
        capsys.readouterr().err
        == f"index-proxy prescriptions check: no .yaml/.yml files under {tmp_path / 'empty'}\n"
    )
    for argv in (["prescriptions", "check"], ["prescriptions"], ["prescriptions", "lint", "x"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert "usage: index-proxy prescriptions" in capsys.readouterr().err
