"""Where a project's files live under ``DATA_DIR``: the decoded-array cache and model weights."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def data_dir() -> Path:
    return Path(settings.DATA_DIR)


def cache_path(project_id: int, input_size: int) -> Path:
    """The raw uint8 array file holding every item of the project at ``input_size``."""
    return data_dir() / "cache" / f"project_{project_id}" / f"images_{input_size}.u8"


def model_relpath(project_id: int, number: int) -> str:
    return f"models/project_{project_id}/v{number}.pt"


def model_path(relpath: str) -> Path:
    return data_dir() / relpath
