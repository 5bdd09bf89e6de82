"""The streaming zip writer: archives that zipfile and unzip read back, ZIP64 where needed."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from annotator.formats import zipstream
from annotator.formats.zipstream import ZipWriter


def write(members: dict[str, bytes], path: Path) -> None:
    with path.open("wb") as out, ZipWriter(out) as archive:
        for name, data in members.items():
            archive.add(name, io.BytesIO(data))


def assert_reads_back(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == list(members)
        assert {name: archive.read(name) for name in members} == members
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tqq", str(path)], check=True)


def test_members_read_back_with_their_names_and_bytes(tmp_path):
    members = {"cat/1.png": b"\x89PNG" + bytes(range(256)) * 9, "dog/é 2.png": b"", "labels.csv": b"a,b\n"}
    write(members, tmp_path / "a.zip")
    assert_reads_back(tmp_path / "a.zip", members)


def test_an_empty_archive_is_valid(tmp_path):
    write({}, tmp_path / "empty.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip") as archive:
        assert archive.namelist() == []


def test_zip64_records_for_sizes_offsets_and_counts_read_back(tmp_path, monkeypatch):
    # Given thresholds low enough that every size, offset and the member count need ZIP64 records
    monkeypatch.setattr(zipstream, "ZIP64_FROM", 100)
    monkeypatch.setattr(zipstream, "ZIP64_COUNT_FROM", 3)
    members = {f"m{i}.bin": bytes([i]) * (50 + 40 * i) for i in range(5)}
    # When they are written, Then zipfile and unzip read every member back
    write(members, tmp_path / "z64.zip")
    assert_reads_back(tmp_path / "z64.zip", members)
    assert b"PK\x06\x06" in (tmp_path / "z64.zip").read_bytes()  # the ZIP64 end record is there


def test_a_file_that_changes_while_zipped_is_an_error(tmp_path):
    class Growing(io.BytesIO):
        """Grows by four bytes whenever it is rewound (between the CRC pass and the copy)."""

        def seek(self, *args):
            super().seek(0, io.SEEK_END)
            self.write(b"more")
            return super().seek(*args)

    with pytest.raises(OSError, match="changed"), (tmp_path / "x.zip").open("wb") as out:
        ZipWriter(out).add("x", Growing(b"data"))


def test_memory_does_not_hold_members(tmp_path):
    # Many members: the writer keeps a count and an offset, not a record per member
    with (tmp_path / "many.zip").open("wb") as out, ZipWriter(out) as archive:
        for i in range(2000):
            archive.add(f"{i}.txt", io.BytesIO(b"x"))
        assert set(vars(archive)) == {"out", "offset", "count", "central", "central_size", "dos_time", "dos_date"}
    with zipfile.ZipFile(tmp_path / "many.zip") as archive:
        assert len(archive.infolist()) == 2000
