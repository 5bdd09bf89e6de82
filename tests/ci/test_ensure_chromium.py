"""``.ci/ensure-chromium``, which ``make test`` runs first: Chromium for the browser tests is there, or is
installed with apt-get when that can run (as root, or with passwordless sudo), or the run stops at once
with one line saying what to install. Run with a fake ``$CHROMIUM`` path and fake tools on ``PATH``:
nothing is installed or removed here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "ensure-chromium"
BASH = shutil.which("bash") or "/bin/bash"
#: A fake apt-get whose ``install`` puts an executable where ``$CHROMIUM`` points.
CHMOD = shutil.which("chmod") or "/bin/chmod"
APT_GET_INSTALLS = f'if [ "$1" = install ]; then echo > "$CHROMIUM_PATH"; {CHMOD} +x "$CHROMIUM_PATH"; fi'


def tool(folder: Path, name: str, body: str) -> None:
    """A fake command ``name`` on the test's ``PATH``: a shell script that appends its arguments to ``calls``."""
    path = folder / name
    path.write_text(f'#!{BASH}\necho "{name} $*" >> "{folder}/calls"\n{body}\n')
    path.chmod(0o755)


def ensure(tmp_path: Path, tools: dict[str, str], *, present: bool = False) -> tuple[subprocess.CompletedProcess, str]:
    """Run the script with only ``tools`` on ``PATH`` and ``$CHROMIUM`` pointing into ``tmp_path``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    chromium = tmp_path / "chromium"
    if present:
        chromium.write_text(f"#!{BASH}\n")
        chromium.chmod(0o755)
    for name, body in tools.items():
        tool(folder, name, body.replace("$CHROMIUM_PATH", str(chromium)))
    env = {"PATH": str(folder), "CHROMIUM": str(chromium), "HOME": str(tmp_path)}
    result = subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    calls = folder / "calls"
    return result, calls.read_text() if calls.exists() else ""


@pytest.mark.parametrize(
    "tools",
    [
        pytest.param({}, id="no-apt-get"),
        pytest.param({"apt-get": "exit 0", "id": "echo 1000"}, id="apt-get-but-not-root-and-no-sudo"),
        pytest.param({"apt-get": "exit 0", "id": "echo 1000", "sudo": "exit 1"}, id="sudo-asks-for-a-password"),
    ],
)
def test_without_chromium_and_no_usable_package_manager_it_stops_with_one_line(tmp_path, tools):
    # Given no Chromium, and apt-get missing or not usable by this user
    # When make test checks for it
    result, calls = ensure(tmp_path, tools)
    # Then it stops at once, with one line naming what to install, and installs nothing
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "chromium" in lines[0] and "apt-get install chromium" in lines[0]
    assert "apt-get" not in calls


def test_without_chromium_as_root_it_installs_debians_package(tmp_path):
    # Given no Chromium, running as root with apt-get (a fake one that "installs" it)
    # When make test checks for it
    result, calls = ensure(tmp_path, {"apt-get": APT_GET_INSTALLS, "id": "echo 0"})
    # Then it runs what .ci/run used to, and goes on
    assert result.returncode == 0, result.stderr
    assert [line for line in calls.splitlines() if line.startswith("apt-get")] == [
        "apt-get update -qq",
        "apt-get install -y -qq chromium",
    ]


def test_with_passwordless_sudo_it_installs_through_sudo(tmp_path):
    # Given no Chromium, a user with passwordless sudo (a fake sudo that runs its command)
    sudo = 'if [ "$1" = -n ]; then shift; fi; "$@"'
    result, calls = ensure(tmp_path, {"apt-get": APT_GET_INSTALLS, "id": "echo 1000", "sudo": sudo})
    # Then apt-get runs under sudo, and it goes on
    assert result.returncode == 0, result.stderr
    assert "sudo -n apt-get install -y -qq chromium" in calls
    assert "apt-get install -y -qq chromium" in calls


def test_a_failed_install_stops_with_one_line_after_apt_gets_own_output(tmp_path):
    # Given no Chromium, root, and an apt-get that fails
    failing = "echo 'E: Unable to locate package chromium' >&2; exit 100"
    result, _ = ensure(tmp_path, {"apt-get": failing, "id": "echo 0"})
    # Then it stops, and its last line says what went wrong
    assert result.returncode != 0
    assert "could not install chromium" in result.stderr.splitlines()[-1]


def test_with_chromium_present_it_does_nothing(tmp_path):
    # Given Chromium where the browser tests look for it
    result, calls = ensure(tmp_path, {"apt-get": "exit 1", "id": "echo 0"}, present=True)
    # Then nothing is said and nothing is installed
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert calls == ""


def test_make_test_runs_the_check_before_anything_else():
    # When make test is dry-run
    root = SCRIPT.parents[1]
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"], cwd=root, capture_output=True, text=True, timeout=60
    )
    # Then the Chromium check comes first (a fresh machine stops before the long install), once
    assert result.returncode == 0, result.stderr
    commands = result.stdout.splitlines()
    assert commands[0] == ".ci/ensure-chromium", commands
    # and CI has no logic of its own for it
    assert "apt-get" not in (root / ".ci" / "run").read_text()
