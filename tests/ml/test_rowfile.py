"""Row files: raw rows appended under a lock, read back in any order, torn tails dropped."""

from __future__ import annotations

import numpy as np
import pytest

from ml import rowfile


def test_rows_append_and_read_back_in_any_order(tmp_path):
    path = tmp_path / "sub" / "rows.f32"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = -np.arange(8, dtype=np.float32).reshape(2, 4)
    assert rowfile.append_rows(path, a) == range(0, 3)
    assert rowfile.append_rows(path, b) == range(3, 5)
    assert rowfile.row_count(path, (4,), np.float32) == 5
    np.testing.assert_array_equal(rowfile.read_rows(path, [4, 0, 4], (4,), np.float32), np.stack([b[1], a[0], b[1]]))
    # The format is the raw rows, one after the other: what the caches wrote before this module
    assert path.read_bytes() == a.tobytes() + b.tobytes()
    with pytest.raises(IndexError, match="5 rows"):
        rowfile.read_rows(path, [5], (4,), np.float32)
    assert rowfile.read_rows(tmp_path / "missing", [], (4,), np.float32).shape == (0, 4)


def test_a_torn_tail_is_dropped_before_the_next_rows(tmp_path):
    # Given a file whose last writer died after half a row
    path = tmp_path / "rows.u8"
    rowfile.append_rows(path, np.ones((2, 3), dtype=np.uint8))
    with path.open("ab") as f:
        f.write(b"\x07\x07")
    assert rowfile.row_count(path, (3,), np.uint8) == 2
    # When rows are appended, they start at the last complete row
    assert rowfile.append_rows(path, np.full((1, 3), 5, dtype=np.uint8)) == range(2, 3)
    assert path.read_bytes() == bytes([1] * 6 + [5] * 3)


def test_a_locked_writer_can_start_over(tmp_path):
    path = tmp_path / "rows.f32"
    rowfile.append_rows(path, np.zeros((4, 2), dtype=np.float32))
    with rowfile.locked(path, (2,), np.float32) as writer:
        assert writer.rows == 4
        writer.truncate(0)
        assert writer.append(np.ones((1, 2), dtype=np.float32)) == range(0, 1)
    np.testing.assert_array_equal(rowfile.read_rows(path, [0], (2,), np.float32), [[1.0, 1.0]])
    assert rowfile.row_count(path, (2,), np.float32) == 1
    with rowfile.locked(path, (2,), np.float32) as writer, pytest.raises(ValueError, match="bytes"):
        writer.append(np.ones((1, 3), dtype=np.float32))  # rows of another width
