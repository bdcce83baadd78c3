"""The memory profile: shares by distance, the engine against autograd, and the paper's reference figures."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint
from models.memory import DISTANCE_BUCKETS, row_shares, summarise, text_profile, word_starts
from models.text import encode, normalise
from models.units import PAPER_UNITS
from models.vocab import Vocabulary
from tests.test_connectivity import reference_rows
from training.evaluate import memory_sample, sequence_shares, text_targets
from training.reference import paper_profile

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "static" / "data" / "paper"
# The table: mean over the example sentence's 198 positions (before the current word, more than 10 back).
PAPER_FIGURES = {"gru": (0.409, 0.169), "lstm": (0.392, 0.106), "nlstm": (0.139, 0.002)}


def test_shares_of_a_hand_made_row() -> None:
    chars = np.array(encode(" ab cde"))  # the word "cde" starts at the space at index 3
    assert word_starts(chars).tolist() == [0, 0, 0, 3, 3, 3, 3]
    row = np.array([[1.0, 0, 2, 0, 0, 3, 4, 5]])  # position 6; index 7 lies after it and must not count
    shares = row_shares(row, np.array([6]), np.array([3]))
    assert shares["before_word"][0] == pytest.approx(3 / 10)
    assert shares["reach_10"][0] == 0
    by_distance = dict(zip(DISTANCE_BUCKETS, shares["by_distance"][0]))
    assert by_distance[(0, 0)] == pytest.approx(0.4) and by_distance[(1, 1)] == pytest.approx(0.3)
    assert by_distance[(3, 5)] == pytest.approx(0.2) and by_distance[(6, 10)] == pytest.approx(0.1)


def test_zero_rows_are_left_out_and_shares_sum_to_one() -> None:
    rows = np.random.default_rng(0).random((30, 30))
    rows[4] = 0
    profile = text_profile(rows, np.array(encode(normalise("one two three four five six seven"))[:30]))
    assert profile.rows == 29
    assert sum(profile.by_distance) == pytest.approx(1.0)
    assert profile.reach_10 == pytest.approx(sum(profile.by_distance[5:]))


@pytest.mark.parametrize("unit", ["gru", "lstm", "nlstm"])
def test_profile_from_the_engine_equals_the_one_from_autograd_rows(unit: str, tiny_checkpoint_dir: Path) -> None:
    net = load_checkpoint(tiny_checkpoint_dir / f"{unit}.safetensors")
    vocabulary = Vocabulary.load(tiny_checkpoint_dir / "vocab.json")
    chars, targets = text_targets("the cat sat on the mat and then it was time for the dog", vocabulary)
    engine = summarise(sequence_shares(net, chars, targets, real_words_only=True))
    positions = np.flatnonzero(targets > 1)
    rows = reference_rows(net, torch.from_numpy(chars), positions.tolist(), targets[positions].tolist(), "gradient")
    autograd = summarise(row_shares(rows.detach().numpy(), positions, word_starts(chars)[positions]))
    assert engine.rows == autograd.rows == len(positions) > 20
    assert engine.before_word == pytest.approx(autograd.before_word, rel=1e-4)
    assert engine.reach_10 == pytest.approx(autograd.reach_10, rel=1e-4, abs=1e-9)
    assert engine.by_distance == pytest.approx(autograd.by_distance, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("unit", PAPER_UNITS)
def test_paper_reference_matches_the_published_figures(unit: str) -> None:
    positions = json.loads((PAPER / f"{unit}.json").read_text())["positions"]
    profile = paper_profile(positions)
    before_word, reach_10 = PAPER_FIGURES[unit]
    assert profile["rows"] == 198
    assert profile["before_word"] == pytest.approx(before_word, abs=0.001)
    assert profile["reach_10"] == pytest.approx(reach_10, abs=0.001)
    served = json.loads((PAPER / "memory.json").read_text())["units"][unit]
    drifted = "static/data/paper/memory.json drifted; rerun python -m training reference"
    assert served["by_distance"] == pytest.approx(profile["by_distance"]), drifted
    assert (served["before_word"], served["reach_10"]) == pytest.approx((profile["before_word"], profile["reach_10"])), drifted
    # Each row's share before its word, as the walkthrough notes quote it (static/reach.js shareBeforeWord).
    text = "".join(position["char"] for position in positions)
    for index in (0, 40, 159, 197):
        start = max(0, text.rfind(" ", 0, index + 1))
        row = positions[index]["connectivity"]
        assert served["before_word_by_position"][index] == pytest.approx(sum(row[:start]) / sum(row), abs=1e-4), drifted


def test_memory_sample_is_seeded_and_just_large_enough() -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 5, size=(50, 20))
    chars = np.ones_like(targets)
    first, again = memory_sample(chars, targets, 100, seed=3), memory_sample(chars, targets, 100, seed=3)
    assert first.tolist() == again.tolist()
    real_words = (targets[first] > 1).sum()
    assert real_words >= 100 and real_words - (targets[first[-1]] > 1).sum() < 100
    assert memory_sample(chars, targets, 10**6, seed=3).size == 50


def test_paper_training_curve_ends_at_the_papers_final_validation_loss() -> None:
    served = json.loads((PAPER / "training.json").read_text())
    paper = json.loads((PAPER.parent / "paper.json").read_text())["training"]
    assert served["characters_per_step"] == round(0.9 * 100_000_000 * paper["epochs"] / paper["minibatches"])
    assert sorted(served["validation"]) == sorted(paper["final_loss"])
    for model, curve in served["validation"].items():
        steps = [step for step, _ in curve]
        assert steps[0] == 1 and steps == sorted(steps) and len(steps) <= 151
        # The last logged point is the paper's reported final validation loss.
        assert curve[-1][1] == paper["final_loss"][model]["valid"]
