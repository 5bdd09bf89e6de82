"""``manage.py make_shapes``: writes the generated shapes into a new folder, never over an old one."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_the_command_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("make_shapes", str(tmp_path), "--per-class", "1")
    call_command("make_shapes", str(tmp_path / "new"), "--per-class", "1", "--size", "32")
    assert len(list((tmp_path / "new").rglob("*.png"))) == 6
