"""The mLSTM package's own tests: its parallel form against the equations and the recurrent
form, its state, its causality, the project's connectivity on it, and a short training
through the project.

`make test` collects them (pyproject.toml's testpaths names examples/); they need the package
installed, as `make install` does (pip install -e examples/mlstm).
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mlstm import CHUNK, MLSTM, UNIT, mlstm_parallel
from torch import Tensor

from models.connectivity import autograd_rows, connectivity_rows, record
from models.net import BUNDLED, AutocompleteNet, ModelConfig, cpu_bf16_supported
from models.units import installed_units
from training.dataset import prepare_dataset
from training.train import TrainOptions, train

WIDTH = 16


def seeded_unit(width: int = WIDTH, gate_scale: float = 1.0) -> MLSTM:
    """An mLSTM whose gates vary with the input (a new one's gate weights are zero)."""
    torch.manual_seed(0)
    unit = MLSTM(width, 2)
    with torch.no_grad():
        for block in unit.blocks:
            block.gates.weight.normal_(std=gate_scale)
    return unit


def cell_inputs(batch: int, steps: int, key_size: int = 6, value_size: int = 10, heads: int = 3) -> tuple[Tensor, ...]:
    torch.manual_seed(2)
    queries, keys = torch.randn(2, batch, heads, steps, key_size).unbind(0)
    values = torch.randn(batch, heads, steps, value_size)
    log_input = 2 * torch.randn(batch, heads, steps)
    log_forget = torch.nn.functional.logsigmoid(2 + 2 * torch.randn(batch, heads, steps))
    return queries, keys / math.sqrt(key_size), values, log_input, log_forget


def cell_equations(queries: Tensor, keys: Tensor, values: Tensor, log_input: Tensor, log_forget: Tensor,
                   memory: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The docstring's recurrence without the stabiliser, in float64: C_t = f_t C_{t−1} + exp(ĩ_t) v_t k_tᵀ and
    h̃_t = C_t q_t / max(|n_tᵀ q_t|, 1), the stabilised form's value. Returns h̃ and the final C and n, unstabilised."""
    batch, heads, steps, key_size = queries.shape
    cells = torch.zeros(batch, heads, key_size, values.shape[-1], dtype=torch.float64)
    normaliser = torch.zeros(batch, heads, key_size, dtype=torch.float64)
    if memory is not None:  # a stabilised memory holds the true one times exp(−m)
        scale = memory[2].double().exp()
        cells, normaliser = memory[0].double() * scale[..., None, None], memory[1].double() * scale[..., None]
    outputs = []
    for t in range(steps):
        q, k, v = queries[:, :, t].double(), keys[:, :, t].double(), values[:, :, t].double()
        forget, write = log_forget[..., t].double().exp(), log_input[..., t].double().exp()
        cells = forget[..., None, None] * cells + write[..., None, None] * k[..., :, None] * v[..., None, :]
        normaliser = forget[..., None] * normaliser + write[..., None] * k
        denominator = (q * normaliser).sum(dim=-1).abs().clamp(min=1)
        outputs.append((q[..., None, :] @ cells)[..., 0, :] / denominator[..., None])
    return torch.stack(outputs, dim=2), cells, normaliser


def test_the_package_registers_the_unit_with_its_diagram() -> None:
    assert installed_units()["mlstm"] is UNIT and UNIT.display_name == "mLSTM"
    net = AutocompleteNet(BUNDLED.model_config("mlstm"))
    assert isinstance(net.rnn, MLSTM) and net.config.num_layers == 2
    block = net.rnn.blocks[0]
    assert (block.heads, block.key_size, block.value_size) == (4, 40, 80)
    # Per block: LayerNorm, W_up to q, k (160 each), v, o (320 each), the gates, the head norm, the skip, W_down; a final LayerNorm.
    per_block = 256 + 256 * (2 * 160 + 2 * 320) + (256 * 8 + 8) + 320 + 320 + 320 * 256
    assert net.parameter_counts()["recurrent"] == 2 * per_block + 256 == 661_520
    assert UNIT.diagram is not None and "<title>One mLSTM step</title>" in UNIT.diagram


@pytest.mark.parametrize("steps", [1, 2, 17, 64])
def test_the_stabilised_parallel_form_is_the_recurrence(steps: int) -> None:
    queries, keys, values, log_input, log_forget = cell_inputs(2, steps)
    outputs, (cells, normaliser, stabiliser) = mlstm_parallel(queries, keys, values, log_input, log_forget, None)
    expected, expected_cells, expected_normaliser = cell_equations(queries, keys, values, log_input, log_forget)
    torch.testing.assert_close(outputs.double(), expected, rtol=1e-4, atol=1e-5)
    scale = stabiliser.double().exp()
    torch.testing.assert_close(cells.double() * scale[..., None, None], expected_cells, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(normaliser.double() * scale[..., None], expected_normaliser, rtol=1e-4, atol=1e-5)
    # From a carried memory: the continuation of the same sequence.
    memory = mlstm_parallel(*(part[:, :, :5] if part.dim() == 4 else part[..., :5] for part in (queries, keys, values, log_input, log_forget)),
                            None)[1]
    rest = [part[:, :, 5:] if part.dim() == 4 else part[..., 5:] for part in (queries, keys, values, log_input, log_forget)]
    if steps > 5:
        continued = mlstm_parallel(*rest, memory)[0]
        torch.testing.assert_close(continued.double(), cell_equations(*rest, memory)[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(continued, outputs[:, :, 5:], rtol=1e-4, atol=1e-5)


def test_extreme_gates_stay_finite_and_exact() -> None:
    """exp(ĩ) of e^100 and forget gates of e^-40 overflow or vanish in float32 unstabilised; the stabiliser keeps every
    exp() at most 1. Its logs then reach the hundreds, where float32 keeps about 4 decimals of their differences."""
    queries, keys, values, log_input, log_forget = cell_inputs(2, 40)
    log_input = log_input * 50
    log_forget = torch.nn.functional.logsigmoid(20 * torch.randn_like(log_forget))
    outputs, memory = mlstm_parallel(queries, keys, values, log_input, log_forget, None)
    assert log_input.max() > 89 and outputs.isfinite().all() and all(part.isfinite().all() for part in memory)
    expected = cell_equations(queries, keys, values, log_input, log_forget)[0]
    torch.testing.assert_close(outputs.double(), expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))


def run_in_pieces(unit: MLSTM, x: Tensor, cuts: list[int]) -> tuple[Tensor, tuple[Tensor, ...]]:
    pieces, state, start = [], None, 0
    for end in cuts:
        output, state = unit(x[:, start:end], state)
        pieces.append(output)
        start = end
    assert state is not None
    return torch.cat(pieces, dim=1), state


@pytest.mark.parametrize("cuts", [list(range(1, 131)), [1, 2, 3, 49, 50, 51, 99, 130], [60, 130]], ids=["steps", "chunks", "two"])
def test_the_recurrent_form_and_chunks_continue_the_sequence(cuts: list[int]) -> None:
    """The server's keystrokes (one character each: the recurrent form) and short chunks, the state carried between,
    against the whole text at once (the parallel form, CHUNK steps at a time)."""
    unit = seeded_unit().eval()
    x = torch.randn(2, 130, WIDTH)
    with torch.no_grad():
        whole, whole_state = unit(x)
        pieces, state = run_in_pieces(unit, x, cuts)
    assert 130 > 2 * CHUNK and len(state) == 6
    torch.testing.assert_close(pieces, whole, rtol=1e-4, atol=1e-5)
    for part, expected in zip(state, whole_state):
        torch.testing.assert_close(part, expected, rtol=1e-4, atol=1e-5)


def test_the_recurrent_and_parallel_forms_have_the_same_gradients() -> None:
    unit = seeded_unit()
    x = torch.randn(2, 70, WIDTH, requires_grad=True)
    weights = torch.randn(2, 70, WIDTH)
    gradients = []
    for cuts in ([70], list(range(1, 71))):
        unit.zero_grad()
        outputs, _ = run_in_pieces(unit, x, cuts)
        (outputs * weights).sum().backward()
        gradients.append([x.grad.clone()] + [parameter.grad.clone() for parameter in unit.parameters()])
        x.grad = None
    for parallel, recurrent in zip(*gradients):
        torch.testing.assert_close(parallel, recurrent, rtol=1e-4, atol=1e-4 * float(parallel.abs().max()))


def test_an_output_depends_on_no_later_input() -> None:
    unit = seeded_unit()
    x = torch.randn(2, 120, WIDTH, requires_grad=True)
    outputs, _ = unit(x)
    # A weighted sum: the plain sum of the final LayerNorm's outputs is 0 whatever the input.
    gradient = torch.autograd.grad((outputs[:, 70] * torch.randn(WIDTH)).sum(), x)[0]
    assert gradient[:, 71:].abs().max() == 0 and gradient[:, 60:71].abs().sum(dim=-1).min() > 0
    changed = x.detach().clone()
    changed[:, 80:] += 5
    torch.testing.assert_close(unit(changed)[0][:, :80], outputs[:, :80].detach(), rtol=0, atol=0)


@pytest.mark.parametrize("gate_scale", [0.05, 1.0])
def test_bf16_autocast_trains_finite_and_close_to_float32(gate_scale: float) -> None:
    """At the bundled width and T = 200; with gate pre-activations up to about ±50 too (gate_scale 1)."""
    unit = seeded_unit(width=256, gate_scale=gate_scale)
    x = torch.randn(4, 200, 256, requires_grad=True)
    with torch.no_grad():
        outputs, _ = unit(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low_precision, _ = unit(x)
    low_precision.float().square().mean().backward()
    assert x.grad is not None and x.grad.isfinite().all()
    assert all(parameter.grad is not None and parameter.grad.isfinite().all() for parameter in unit.parameters())
    # bf16 keeps about 3 significant digits of q, k, v and the gates: close on average, not element by element.
    assert (low_precision.float() - outputs).abs().mean() < 0.02 * outputs.abs().mean()


@pytest.mark.parametrize("method", ["gradient", "gradient_x_input"])
def test_connectivity_equals_row_by_row_autograd(method: str) -> None:
    torch.manual_seed(1)
    net = AutocompleteNet(ModelConfig(unit="mlstm", hidden_size=WIDTH, num_layers=2, num_words=30)).eval()
    with torch.no_grad():
        for block in net.rnn.blocks:
            block.gates.weight.normal_()
    chars = torch.randint(1, 28, (75,))
    positions = [74, 0, 31, 32, 43, 60, 61, 10]
    word_ids = [3, 5, 7, 3, 9, 11, 2, 4]
    rows = connectivity_rows(net, record(net, chars, method), positions, word_ids, method).values
    expected = autograd_rows(net, chars, positions, word_ids, method)
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
        train(TrainOptions(unit="mlstm", preset=BUNDLED, data=tmp_path / "data", out=tmp_path / "run", bf16=cpu_bf16_supported(),
                           hidden_size=32, epochs=20, max_steps=30, eval_every=10, eval_sequences=32, sampled_words=8,
                           warm_start=None))
    finally:
        torch.set_num_threads(threads)
    log = np.genfromtxt(tmp_path / "run" / "log.csv", delimiter=",", names=True)
    assert list(log["step"]) == [10, 20, 30]
    for loss in (log["train_loss"], log["valid_loss"]):
        assert (np.diff(loss) < 0).all() and loss[0] - loss[-1] > 0.15  # nats per word, falling at every row
