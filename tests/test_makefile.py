"""What each make target installs, read from `make --dry-run --always-make` (nothing is run)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_INSTALL = ".venv/bin/python -m pip install --quiet -c constraints.txt -e ."
TEST_INSTALL = ".venv/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned_commands(target: str) -> list[str]:
    """The commands `make <target>` would run on a fresh clone.

    Run under `make test` itself, the inner make would inherit the outer one's flags and print
    "Entering/Leaving directory" lines: `--no-print-directory` keeps its output to commands.
    """
    result = subprocess.run(["make", "--no-print-directory", "--dry-run", "--always-make", target],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_run_installs_the_runtime_only():
    commands = planned_commands("run")
    assert RUNTIME_INSTALL in commands and "npm ci --no-audit --no-fund" in commands
    assert not [command for command in commands if "[test]" in command]
    assert commands[-1] == ".venv/bin/python -m app"


@pytest.mark.parametrize("target", ["test", "image-test"])
def test_test_targets_add_the_test_extra_after_the_runtime(target):
    commands = planned_commands(target)
    assert commands.index(RUNTIME_INSTALL) < commands.index(TEST_INSTALL) < commands.index(next(c for c in commands if "-m pytest" in c))
