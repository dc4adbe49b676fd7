"""Advisories in the store (SQLite and a real PostgreSQL), read from folders and archives, and the CLI."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from index_proxy import cli
from index_proxy.advisory_files import UnreadableSource, read_advisory_files
from index_proxy.store.advisories import AdvisoryStore, ImportStats
from index_proxy.store.db import Database
from prescriptions.advisories import Advisory, OsvRecord, parse_osv_text

DATA = Path(__file__).parent / "data" / "advisories"
RECORDS = 16  # files under DATA/vulns
STORED = 16  # one advisory per record and package: every record there names one package


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[AdvisoryStore]:
    database = Database(database_url)
    await database.migrate()
    try:
        yield AdvisoryStore(database)
    finally:
        await database.close()


def records() -> list[OsvRecord]:
    found = read_advisory_files(DATA)
    assert found.invalid == []
    return found.records


def edited(record: OsvRecord, text_change: tuple[str, str], later: bool) -> OsvRecord:
    """The record's file with one text replaced and its ``modified`` moved a day (later or earlier)."""
    path = DATA / record.source
    data = yaml.safe_load(path.read_text().replace(*text_change))
    moved = record.modified + timedelta(days=1 if later else -1)
    data["modified"] = moved.isoformat()
    return parse_osv_text(yaml.safe_dump(data), record.source)


async def test_import_then_look_up_by_any_spelling(store: AdvisoryStore) -> None:
    stats = await store.import_records(records())
    assert stats == ImportStats(new=RECORDS)
    assert await store.count() == STORED
    found = await store.for_projects(["Pillow", "URLLIB3", "jinja2", "nothing-here", "d8s_json"])
    assert sorted(found) == ["jinja2", "pillow", "urllib3"]  # d8s-json's only advisory is withdrawn
    assert [a.id for a in found["pillow"]] == ["PYSEC-2021-317", "PYSEC-2022-42980"]
    pillow = found["pillow"][0]
    assert pillow.affects(Version("8.3.0")) and not pillow.affects(Version("8.3.2"))
    assert pillow == next(a for r in records() for a in r.advisories if a.id == "PYSEC-2021-317")
    withdrawn = await store.for_projects(["d8s-json"], include_withdrawn=True)
    assert [a.id for a in withdrawn["d8s-json"]] == ["PYSEC-2022-43078"]
    assert await store.for_projects([]) == {}


async def test_import_is_idempotent_and_newer_records_replace_older(store: AdvisoryStore) -> None:
    originals = records()
    await store.import_records(originals)
    assert await store.import_records(originals) == ImportStats(unchanged=RECORDS)
    assert await store.count() == STORED

    numpy = next(r for r in originals if r.id == "PYSEC-2021-855")
    newer = edited(numpy, ("fixed: 1.10.0", "fixed: 1.11.0"), later=True)
    older = edited(numpy, ("fixed: 1.10.0", "fixed: 1.9.1"), later=False)
    assert await store.import_records([older]) == ImportStats(unchanged=1)
    # Looked up (and so kept parsed in memory) before the update: the update must still show.
    assert (await store.for_projects(["numpy"]))["numpy"][1].version_range == ">=1.9.0,<1.10.0"
    assert await store.import_records([newer]) == ImportStats(updated=1)
    (stored,) = (await store.for_projects(["numpy"]))["numpy"][1:]
    assert stored.id == "PYSEC-2021-855"
    assert stored.version_range == ">=1.9.0,<1.11.0"
    assert stored.modified == newer.modified
    assert await store.import_records([newer, older]) == ImportStats(unchanged=2)


async def test_a_newer_record_naming_other_packages_replaces_all_rows(store: AdvisoryStore) -> None:
    (jinja,) = [r for r in records() if r.id == "PYSEC-2014-82"]
    await store.import_records([jinja])
    renamed = edited(jinja, ("name: jinja2", "name: markupsafe"), later=True)
    assert [a.package for a in renamed.advisories] == ["markupsafe"]
    assert await store.import_records([renamed]) == ImportStats(updated=1)
    found = await store.for_projects(["jinja2", "markupsafe"])
    assert list(found) == ["markupsafe"]
    assert await store.count() == 1


async def test_records_without_pypi_packages_and_duplicates(store: AdvisoryStore) -> None:
    (jinja,) = [r for r in records() if r.id == "PYSEC-2014-82"]
    not_pypi = replace(jinja, id="X-npm", advisories=())
    newer = edited(jinja, ("fixed: 2.7.3", "fixed: 2.7.4"), later=True)
    stats = await store.import_records([not_pypi, jinja, newer])
    assert stats == ImportStats(new=1, unchanged=1, not_pypi=1)
    assert (await store.for_projects(["jinja2"]))["jinja2"][0].version_range == "<2.7.4"


async def test_large_imports_go_in_chunks(store: AdvisoryStore) -> None:
    (template,) = [r for r in records() if r.id == "PYSEC-2021-855"]
    many = [
        replace(
            template,
            id=f"X-{n}",
            advisories=tuple(replace(a, id=f"X-{n}", package=f"pkg-{n % 7}") for a in template.advisories),
        )
        for n in range(1_234)
    ]
    assert await store.import_records(many) == ImportStats(new=1_234)
    assert await store.import_records(many) == ImportStats(unchanged=1_234)
    found = await store.for_projects([f"pkg-{n}" for n in range(7)])
    assert sum(len(advisories) for advisories in found.values()) == 1_234


# --- reading folders and archives ---------------------------------------------------------------


def archives(tmp_path: Path) -> dict[str, Path]:
    """The test data as a folder (with a hidden workflow and a non-OSV file), a .zip and a .tar.gz."""
    folder = tmp_path / "advisory-db-main"
    shutil.copytree(DATA, folder)
    (folder / ".github" / "workflows").mkdir(parents=True)
    (folder / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    zipped = tmp_path / "db.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    tarred = tmp_path / "db.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(folder, folder.name)
    return {"folder": folder, "zip": zipped, "tar.gz": tarred}


@pytest.mark.parametrize("kind", ["folder", "zip", "tar.gz"])
def test_folder_zip_and_tar_give_the_same_records(tmp_path: Path, kind: str) -> None:
    found = read_advisory_files(archives(tmp_path)[kind])
    assert found.invalid == []
    assert sorted(r.id for r in found.records) == sorted(r.id for r in records())

    def same(found: list[OsvRecord]) -> list[Advisory]:
        # Problems name the file, whose name differs by archive: compare their number only.
        advisories = [replace(a, problems=(str(len(a.problems)),)) for r in found for a in r.advisories]
        return sorted(advisories, key=lambda advisory: (advisory.id, advisory.package))

    assert same(found.records) == same(records())
    sources = {r.source for r in found.records}
    prefix = {"folder": "", "zip": "db.zip:advisory-db-main/", "tar.gz": "db.tar.gz:advisory-db-main/"}[kind]
    assert f"{prefix}vulns/pillow/PYSEC-2021-317.yaml" in sources


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(UnreadableSource, match="no such file or directory"):
        read_advisory_files(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UnreadableSource, match=r"notes\.txt: not a folder, a \.zip or a \.tar\.gz"):
        read_advisory_files(tmp_path / "notes.txt")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(UnreadableSource, match=r"broken\.zip: cannot read"):
        read_advisory_files(tmp_path / "broken.zip")


# --- the CLI ------------------------------------------------------------------------------------


def config_file(tmp_path: Path, database: str) -> Path:
    (tmp_path / "folder-index").mkdir(exist_ok=True)
    config = {
        "storage": {"database": database, "blobs": str(tmp_path / "blobs")},
        "indexes": [{"name": "local", "kind": "folder", "url": str(tmp_path / "folder-index")}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_import_counts_and_exit_codes(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(config_file(tmp_path, database_url))
    source = tmp_path / "db"
    shutil.copytree(DATA, source)
    bad = source / "vulns" / "broken"
    bad.mkdir()
    (bad / "PYSEC-0000-1.yaml").write_text(
        "id: PYSEC-0000-1\nmodified: '2024-01-01T00:00:00Z'\naffected: {}\n"
    )
    (bad / "PYSEC-0000-2.json").write_text("{")

    code, out, err = run(capsys, "advisories", "import", str(source), "--config", config)
    assert code == 1
    assert out.strip() == (
        "18 file(s): 16 new, 0 updated, 0 unchanged, 0 not about PyPI packages, 2 invalid; "
        "1 version text(s) ignored; 16 advisories stored (one per record and package)"
    )
    assert "invalid: vulns/broken/PYSEC-0000-1.yaml: affected: expected a list of affected packages\n" in err
    assert "invalid: vulns/broken/PYSEC-0000-2.json: invalid JSON: " in err
    assert "warning: vulns/steam/PYSEC-2019-125.yaml: affected[0].ranges[0].events[1].fixed" in err

    shutil.rmtree(bad)
    code, out, err = run(capsys, "advisories", "import", str(source), "--config", config)
    assert code == 0
    assert out.startswith("16 file(s): 0 new, 0 updated, 16 unchanged, 0 not about PyPI packages, 0 invalid;")
    assert "invalid:" not in err

    code, out, _ = run(capsys, "advisories", "show", "Pillow", "8.3.0", "--config", config)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Pillow 8.3.0: 1 advisory"
    assert lines[
        1
    ] == "PYSEC-2021-317  [CVE-2021-23437, SNYK-PYTHON-PILLOW-1319443, GHSA-98vv-pw6r-q6q4]  " + (
        "affected: <8.3.2"
    )
    assert lines[2].startswith("    The package pillow from 0 and before 8.3.2")
    code, out, _ = run(capsys, "advisories", "show", "pillow", "--config", config)
    assert out.splitlines()[0] == "pillow: 2 advisories"
    code, out, _ = run(capsys, "advisories", "show", "pillow", "10.0", "--config", config)
    assert out == "pillow 10.0: no advisories affect it\n"
    code, out, _ = run(capsys, "advisories", "show", "d8s-json", "--config", config)
    assert "PYSEC-2022-43078 (withdrawn)  [CVE-2022-38882]  affected: *" in out
    code, _, err = run(capsys, "advisories", "show", "pillow", "not a version", "--config", config)
    assert code == 2
    assert "'not a version' is not a PEP 440 version" in err


def test_cli_import_of_nothing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(config_file(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))
    code, _, err = run(capsys, "advisories", "import", str(tmp_path / "missing"), "--config", config)
    assert (code, err) == (
        2,
        f"index-proxy advisories import: {tmp_path / 'missing'}: no such file or directory\n",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("nothing")
    code, _, err = run(capsys, "advisories", "import", str(empty), "--config", config)
    assert (code, err) == (2, f"index-proxy advisories import: no .json, .yaml or .yml files in {empty}\n")


def test_cli_import_from_an_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(config_file(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((DATA / "vulns").rglob("*.yaml")):
            archive.write(path, path.relative_to(DATA).as_posix())
    (tmp_path / "db.zip").write_bytes(buffer.getvalue())
    code, out, _ = run(capsys, "advisories", "import", str(tmp_path / "db.zip"), "--config", config)
    assert code == 0
    assert out.startswith("16 file(s): 16 new,")
