"""The deployment check's figures (time to ready, the load's rate and errors, the cache's hit ratio), printed at the end.

Loaded by any pytest run that reaches tests/deploy/; prints nothing unless checks.py recorded figures.
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
    """Measured figures by name, printed in the order they were recorded."""
    return pytestconfig.stash[FIGURES_KEY]


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES_KEY, {})
    if not figures:
        return
    terminalreporter.section("deployment figures")
    for name, value in figures.items():
        terminalreporter.write_line(f"{name}: {value}")
    terminalreporter.write_line(f"whole deployment check: {time.monotonic() - config.stash[START_KEY]:.0f} s")
