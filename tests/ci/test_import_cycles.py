"""``.ci/import_cycles.py``, which ``make lint`` runs: it fails on an import cycle between project modules
(imports inside functions included) and on ml/ importing the web side, and lets a package's face
re-export its own submodules. Each case is a small tree of packages written to a temporary folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "import_cycles.py"


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path -> source) under ``root``, with an empty ``ml`` and ``annotator`` package."""
    for package in ("annotator", "ml"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT)], cwd=root, capture_output=True, text=True, timeout=60)


def test_a_cycle_through_an_import_inside_a_function_fails(tmp_path):
    # Given two modules that import each other, one of them inside a function
    root = tree(
        tmp_path,
        {
            "annotator/services.py": "from annotator import tasks\n",
            "annotator/tasks.py": "def run():\n    from annotator.services import job_run\n",
        },
    )
    # When the check runs, then it fails naming the cycle
    done = check(root)
    assert done.returncode == 1
    assert "import cycle: annotator.services <-> annotator.tasks" in done.stdout


def test_a_package_face_re_exporting_its_modules_is_no_cycle(tmp_path):
    # Given a package whose __init__ re-exports its modules, which import each other directly
    root = tree(
        tmp_path,
        {
            "annotator/services/__init__.py": "from annotator.services.a import f\nfrom .b import g\n",
            "annotator/services/a.py": "from annotator.services.b import g\n",
            "annotator/services/b.py": "from annotator import models\ndef g(): pass\n",
            "annotator/models.py": "",
            "annotator/views.py": "from annotator import services\n",
        },
    )
    # Then the check passes
    done = check(root)
    assert done.returncode == 0, done.stdout
    assert "0 problems" in done.stdout


def test_a_module_importing_through_its_own_package_face_fails(tmp_path):
    # Given a submodule that imports a sibling's function through the package's __init__
    root = tree(
        tmp_path,
        {
            "annotator/services/__init__.py": "from .a import f\nfrom .b import g\n",
            "annotator/services/a.py": "from annotator.services import g\ndef f(): pass\n",
            "annotator/services/b.py": "def g(): pass\n",
        },
    )
    # Then that is a cycle: the face imports the module, which imports the face
    done = check(root)
    assert done.returncode == 1
    assert "annotator.services <-> annotator.services.a" in done.stdout


def test_imports_only_for_type_checking_are_left_out(tmp_path):
    root = tree(
        tmp_path,
        {
            "annotator/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from annotator import b\n",
            "annotator/b.py": "from annotator import a\n",
        },
    )
    assert check(root).returncode == 0


def test_ml_importing_django_or_the_app_fails(tmp_path):
    root = tree(
        tmp_path,
        {"ml/loop.py": "def f():\n    from django.conf import settings\n    from annotator import paths\n"},
    )
    done = check(root)
    assert done.returncode == 1
    assert "ml imports django.conf.settings" in done.stdout and "ml imports annotator.paths" in done.stdout


def test_the_project_itself_passes():
    done = check(SCRIPT.parents[1])
    assert done.returncode == 0, done.stdout
