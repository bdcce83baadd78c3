"""The minGRU package's own tests: its scan against the equations, its state, its causality,
the project's connectivity on it, and a short training through the project.

`make test` collects them (pyproject.toml's testpaths names examples/); they need the package
installed, as `make install` does (pip install -e examples/mingru).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from mingru import UNIT, LinearScan, MinGRU
from torch import Tensor

from models.connectivity import autograd_rows, connectivity_rows, record
from models.net import BUNDLED, AutocompleteNet, ModelConfig, cpu_bf16_supported
from models.units import installed_units
from training.dataset import prepare_dataset
from training.train import TrainOptions, train

WIDTH = 16


def seeded_unit(width: int = WIDTH, layers: int = 2) -> MinGRU:
    torch.manual_seed(0)
    unit = MinGRU(width, width, layers)
    with torch.no_grad():
        for layer in unit.layers:
            layer.gate.weight.mul_(3)  # gates from nearly shut to nearly open, not all near 1/2
    return unit


def equations(unit: MinGRU, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The module docstring's recurrence, one step at a time, in float64."""
    h_all = torch.zeros(len(unit.layers), x.shape[0], unit.hidden_size, dtype=torch.float64) if state is None else state.double()
    inputs, finals = x.double(), []
    for layer, h in zip(unit.layers, h_all):
        gate_weight, gate_bias = layer.gate.weight.double(), layer.gate.bias.double()
        candidate_weight, candidate_bias = layer.candidate.weight.double(), layer.candidate.bias.double()
        states = []
        for t in range(inputs.shape[1]):
            z = torch.sigmoid(inputs[:, t] @ gate_weight.t() + gate_bias)
            candidate = inputs[:, t] @ candidate_weight.t() + candidate_bias
            h = (1 - z) * h + z * candidate
            states.append(h)
        inputs = torch.stack(states, dim=1)
        finals.append(h)
    return inputs, torch.stack(finals)


def test_the_package_registers_the_unit_with_its_diagram() -> None:
    assert installed_units()["mingru"] is UNIT and UNIT.display_name == "minGRU"
    net = AutocompleteNet(BUNDLED.model_config("mingru"))
    assert isinstance(net.rnn, MinGRU) and (net.config.num_layers, net.config.hidden_size) == (2, 256)
    # Per layer W_z, W_h and their biases: the vanilla RNN's count, two thirds of the GRU's per-layer input half.
    assert net.parameter_counts()["recurrent"] == 2 * (2 * 256 * 256 + 2 * 256)
    assert UNIT.diagram is not None and "<title>One minGRU step</title>" in UNIT.diagram


@pytest.mark.parametrize("steps", [1, 2, 7, 64, 200])
def test_the_parallel_scan_is_the_recurrence(steps: int) -> None:
    unit = seeded_unit()
    x = torch.randn(3, steps, WIDTH)
    state = torch.randn(2, 3, WIDTH)
    for initial in (None, state):
        outputs, final = unit(x, initial)
        expected_outputs, expected_final = equations(unit, x, initial)
        torch.testing.assert_close(outputs.double(), expected_outputs, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(final.double(), expected_final, rtol=1e-5, atol=1e-5)


def test_the_scans_gradient_is_autograds_through_the_recurrence() -> None:
    coefficients = torch.rand(2, 37, 5, dtype=torch.float64, requires_grad=True)
    offsets = torch.randn(2, 37, 5, dtype=torch.float64, requires_grad=True)
    initial = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LinearScan.apply, (coefficients, offsets, initial))


def test_chunks_with_the_state_continue_the_sequence() -> None:
    """As the server feeds text: a keystroke at a time or a few characters, the state carried between."""
    unit = seeded_unit()
    x = torch.randn(2, 90, WIDTH)
    whole, whole_state = unit(x)
    for cuts in ([1, 2, 3, 40, 41, 90], list(range(1, 91))):
        pieces, state, start = [], None, 0
        for end in cuts:
            output, state = unit(x[:, start:end], state)
            pieces.append(output)
            start = end
        torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(state, whole_state, rtol=1e-5, atol=1e-6)


def test_an_output_depends_on_no_later_input() -> None:
    unit = seeded_unit()
    x = torch.randn(2, 50, WIDTH, requires_grad=True)
    outputs, _ = unit(x)
    gradient = torch.autograd.grad(outputs[:, 20].sum(), x)[0]
    assert gradient[:, 21:].abs().max() == 0 and gradient[:, :21].abs().sum(dim=-1).min() > 0
    changed = x.detach().clone()
    changed[:, 30:] += 5
    torch.testing.assert_close(unit(changed)[0][:, :30], outputs[:, :30].detach(), rtol=0, atol=0)


def test_bf16_autocast_keeps_the_scan_in_float32_and_close() -> None:
    unit = seeded_unit(width=256)
    x = torch.randn(4, 200, 256)
    with torch.no_grad():
        outputs, _ = unit(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_precision, _ = unit(x)
    assert low_precision.dtype == torch.float32
    torch.testing.assert_close(low_precision, outputs, rtol=0.05, atol=0.02 * float(outputs.abs().max()))


@pytest.mark.parametrize("bf16", [False, True])
def test_saturated_gates_stay_finite(bf16: bool) -> None:
    unit = seeded_unit(width=256)
    with torch.no_grad():
        for layer in unit.layers:
            layer.gate.weight.mul_(100)  # gate logits in the hundreds: z is exactly 0 or 1 in float32
    x = torch.randn(4, 200, 256, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        outputs, _ = unit(x)
    outputs.square().mean().backward()
    assert outputs.isfinite().all() and x.grad is not None and x.grad.isfinite().all()


def test_connectivity_equals_row_by_row_autograd() -> None:
    torch.manual_seed(1)
    net = AutocompleteNet(ModelConfig(unit="mingru", hidden_size=WIDTH, num_layers=2, num_words=30)).eval()
    chars = torch.randint(1, 28, (75,))
    positions = [74, 0, 31, 32, 43, 60, 61, 10]
    word_ids = [3, 5, 7, 3, 9, 11, 2, 4]
    rows = connectivity_rows(net, record(net, chars, "gradient"), positions, word_ids, "gradient").values
    expected = autograd_rows(net, chars, positions, word_ids)
    torch.testing.assert_close(rows, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def corpus_text(words: int = 30_000) -> str:
    rng = np.random.default_rng(0)
    phrases = ["the cat sat on the mat", "a dog ran in the park", "birds fly over green hills", "she reads books at night"]
    return " ".join(phrases[i] for i in rng.integers(0, len(phrases), words // 5))


def test_training_through_the_project_lowers_the_loss(tmp_path: Path) -> None:
    prepare_dataset(corpus_text(), tmp_path / "data", {"name": "phrases", "sha256": "0" * 64}, vocabulary_size=30)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainOptions(unit="mingru", preset=BUNDLED, data=tmp_path / "data", out=tmp_path / "run", bf16=cpu_bf16_supported(),
                           hidden_size=32, epochs=20, max_steps=30, eval_every=10, eval_sequences=32, sampled_words=8,
                           warm_start=None))
    finally:
        torch.set_num_threads(threads)
    log = np.genfromtxt(tmp_path / "run" / "log.csv", delimiter=",", names=True)
    assert list(log["step"]) == [10, 20, 30]
    for loss in (log["train_loss"], log["valid_loss"]):
        assert (np.diff(loss) < 0).all() and loss[0] - loss[-1] > 0.15  # nats per word, falling at every row
