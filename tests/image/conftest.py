"""The image check's figures (image size, build time, time to healthy), printed at the end of its run.

Loaded by any pytest run that reaches tests/; prints nothing unless checks.py recorded figures.
"""

import time

import pytest

FIGURES_KEY = pytest.StashKey[dict]()
START_KEY = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES_KEY] = {}
    config.stash[START_KEY] = time.monotonic()


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> dict:
    """Measured figures by name; names starting with `_` are for the checks, not the report."""
    return pytestconfig.stash[FIGURES_KEY]


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    figures = {name: value for name, value in config.stash.get(FIGURES_KEY, {}).items() if not name.startswith("_")}
    if not figures:
        return
    terminalreporter.section("container image figures")
    for name, value in figures.items():
        terminalreporter.write_line(f"{name}: {value}")
    terminalreporter.write_line(f"whole image check: {time.monotonic() - config.stash[START_KEY]:.0f} s")
