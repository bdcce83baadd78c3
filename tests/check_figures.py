"""The figures a long check measures (sizes, times, rates, ratios), printed at the end of its run.

The plumbing of tests/image/conftest.py and tests/deploy/conftest.py: each calls `figure_report` once and
names what it returns, so that pytest finds the hooks and the `figures` fixture in that conftest, and each
check records into a dict of its own. A check's tests record a figure by name in the session fixture
`figures`; names starting with `_` are for the checks themselves, not the report. A run that recorded
nothing (any run that does not reach the check) prints nothing.
"""

import time
from collections.abc import Callable

import pytest


def figure_report(section: str, whole: str) -> tuple[Callable[..., None], Callable[..., dict], Callable[..., None]]:
    """`pytest_configure`, the `figures` fixture and `pytest_terminal_summary` for one check's conftest: the
    figures under the heading `section`, in the order they were recorded, then `whole`: the run's seconds."""
    figures_key = pytest.StashKey[dict]()
    start_key = pytest.StashKey[float]()

    def pytest_configure(config: pytest.Config) -> None:
        config.stash[figures_key] = {}
        config.stash[start_key] = time.monotonic()

    @pytest.fixture(scope="session")
    def figures(pytestconfig: pytest.Config) -> dict:
        """Measured figures by name, printed in the order they were recorded; names starting with `_` are not printed."""
        return pytestconfig.stash[figures_key]

    def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
        shown = {name: value for name, value in config.stash.get(figures_key, {}).items() if not name.startswith("_")}
        if not shown:
            return
        terminalreporter.section(section)
        for name, value in shown.items():
            terminalreporter.write_line(f"{name}: {value}")
        terminalreporter.write_line(f"{whole}: {time.monotonic() - config.stash[start_key]:.0f} s")

    return pytest_configure, figures, pytest_terminal_summary
