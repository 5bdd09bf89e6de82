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


def round_path(relpath: str) -> Path:
    """What a version's training run hands on (pseudo-labels, out-of-fold predictions), beside its weights."""
    return model_path(relpath).with_suffix(".round.npz")


def predictions_path(relpath: str) -> Path:
    """Every item's prediction by a version (``formats.predictions``), beside its weights."""
    return model_path(relpath).with_suffix(".predictions.npy")


def import_roots() -> list[Path]:
    """Server folders that managers may import from (``IMPORT_ROOTS``), resolved."""
    return [Path(root).resolve() for root in settings.IMPORT_ROOTS]


def is_under(path: Path, roots: list[Path]) -> bool:
    """Whether ``path``, with links resolved, lies inside one of ``roots``."""
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def backbone_file(name: str) -> Path:
    """A backbone file name as given: absolute, or relative to ``DATA_DIR/backbones``."""
    path = Path(name)
    return (path if path.is_absolute() else data_dir() / "backbones" / path).resolve()


def is_allowed_backbone(name: str) -> bool:
    """A TorchScript backbone file may come from ``DATA_DIR/backbones`` or an import root."""
    path = backbone_file(name)
    roots = [(data_dir() / "backbones").resolve(), *import_roots()]
    return path.suffix in {".pt", ".pth"} and path.is_file() and is_under(path, roots)
