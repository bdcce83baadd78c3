"""The autocomplete demo's starting prefix (static/data/demo.json) fits the shipped models.

app/demo_prefix.py chooses it from the models' output; after retraining, these tests fail until
`python -m app.demo_prefix --write` has chosen again.
"""

import importlib.util
from pathlib import Path

import pytest
from conftest import bundled_checkpoints_present

from app.registry import load_registry
from app.settings import BUNDLED_CHECKPOINTS

SCRIPT = Path(__file__).resolve().parent.parent / "app" / "demo_prefix.py"

pytestmark = pytest.mark.skipif(not bundled_checkpoints_present(), reason=f"bundled checkpoints not present in {BUNDLED_CHECKPOINTS}")


@pytest.fixture(scope="module")
def demo_prefix():
    spec = importlib.util.spec_from_file_location("demo_prefix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def registry():
    return load_registry(BUNDLED_CHECKPOINTS)


def test_the_stored_prefix_has_a_unit_name_the_word_first_and_the_units_disagree(demo_prefix, registry):
    stored = demo_prefix.stored()
    candidate = demo_prefix.evaluate(demo_prefix.engine_for(registry), stored["prefix"], stored["word"])
    assert candidate.fits, f"{stored} no longer fits the shipped models ({candidate.first_guesses}): run app/demo_prefix.py --write"


def test_the_stored_prefix_is_the_scripts_choice(demo_prefix, registry):
    choice = demo_prefix.choose(registry)
    assert choice is not None
    assert demo_prefix.stored() == {"prefix": choice.prefix.strip(), "word": choice.word}, "run app/demo_prefix.py --write"
