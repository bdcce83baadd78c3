"""The autograd sweep, which serves every unit without a hand-written one.

It must equal the hand-written sweeps where both exist, and plain autograd, one
backward pass per row, for units that only it serves.
"""

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from models.connectivity import COMPLETENESS_TOLERANCE, METHODS, connectivity_rows, integrated_gradients, record, record_continuing
from models.net import AutocompleteNet, ModelConfig
from models.text import encode
from models.units import Unit, register_unit, unregister_unit
from tests.test_connectivity import IG_STEPS, TEXT, assert_continued_recording_equals_a_fresh_one, assert_relative_close, reference_rows


class LeakyGatedUnit(nn.Module):
    """A toy unit written step by step in Python, with a tuple state (h, c).

    c_t = decay * c_{t-1} + x_t is a leaky sum of the inputs; h_t mixes h_{t-1} with a
    candidate that reads x_t, h_{t-1} and c_t, through a sigmoid gate.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.gate = nn.Linear(3 * hidden_size, hidden_size)
        self.candidate = nn.Linear(3 * hidden_size, hidden_size)
        self.decay = 0.8

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state if state is not None else (x.new_zeros(x.shape[0], x.shape[2]), x.new_zeros(x.shape[0], x.shape[2]))
        outputs = []
        for step in range(x.shape[1]):
            c = self.decay * c + x[:, step]
            both = torch.cat([x[:, step], h, c], dim=-1)
            gate = torch.sigmoid(self.gate(both))
            h = gate * torch.tanh(self.candidate(both)) + (1 - gate) * h
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


class ThresholdUnit(nn.Module):
    """h_t = tanh(W x_t) + 1[(x_t - p) · n > 0]: a step where the input crosses a plane, which no gradient sees.

    The plane (`point` p, `normal` n) is set by the test; at first no input crosses it.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, hidden_size)
        self.register_buffer("point", torch.full((hidden_size,), 1e6))
        self.register_buffer("normal", torch.ones(hidden_size))

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        outputs = torch.tanh(self.linear(x)) + (((x - self.point) @ self.normal) > 0).to(x.dtype)[..., None]
        return outputs, outputs[:, -1]


class RenamedGRU(nn.GRU):
    """A subclass may compute anything, so only the exact nn.GRU gets the hand-written sweep."""


# The first two have hand-written sweeps (nn.RNN's), checked here against autograd row by row; the others only the autograd sweep serves.
TEST_UNITS = [
    Unit("test-tanh-rnn", "tanh RNN", "nn.RNN, two layers", lambda hidden, layers, depth: nn.RNN(hidden, hidden, layers, batch_first=True)),
    Unit("test-relu-rnn", "ReLU RNN", "nn.RNN, ReLU", lambda hidden, layers, depth: nn.RNN(hidden, hidden, layers, nonlinearity="relu", batch_first=True)),
    Unit("test-rnn-no-bias", "RNN without biases", "nn.RNN, bias=False", lambda hidden, layers, depth: nn.RNN(hidden, hidden, layers, bias=False, batch_first=True)),
    Unit("test-leaky-gated", "leaky gated", "a Python loop with a tuple state", lambda hidden, layers, depth: LeakyGatedUnit(hidden)),
    Unit("test-gru-no-bias", "GRU without biases", "nn.GRU, bias=False", lambda hidden, layers, depth: nn.GRU(hidden, hidden, layers, bias=False, batch_first=True)),
    Unit("test-gru-subclass", "GRU subclass", "a subclass of nn.GRU", lambda hidden, layers, depth: RenamedGRU(hidden, hidden, layers, batch_first=True)),
]
THRESHOLD_UNIT = Unit("test-threshold", "threshold", "a step of the input", lambda hidden, layers, depth: ThresholdUnit(hidden))


@pytest.fixture(scope="module")
def test_units_registered() -> Iterator[None]:
    for unit in [*TEST_UNITS, THRESHOLD_UNIT]:
        register_unit(unit)
    try:
        yield
    finally:
        for unit in [*TEST_UNITS, THRESHOLD_UNIT]:
            unregister_unit(unit.name)


def seeded_net(unit: str) -> AutocompleteNet:
    torch.manual_seed(3)
    net = AutocompleteNet(ModelConfig(unit=unit, hidden_size=12, num_layers=2, num_words=40)).eval()
    with torch.no_grad():
        net.embedding.weight.mul_(2)  # inputs large enough that the tanh and sigmoid are far from linear
    return net


@pytest.fixture(scope="module", params=[unit.name for unit in TEST_UNITS])
def plug_in_net(request: pytest.FixtureRequest, test_units_registered: None) -> AutocompleteNet:
    return seeded_net(request.param)


@pytest.mark.parametrize("method", METHODS)
def test_autograd_sweep_equals_hand_written_sweeps(tiny_net: AutocompleteNet, method: str) -> None:
    chars = torch.tensor(encode(TEXT))
    positions = list(range(len(TEXT))) if method != "integrated_gradients" else [len(TEXT) - 1, 20, 9, 9]
    word_ids = [position % 50 + 2 for position in positions]
    hand_written = connectivity_rows(tiny_net, record(tiny_net, chars, method, IG_STEPS), positions, word_ids, method)
    autograd = connectivity_rows(tiny_net, record(tiny_net, chars, method, IG_STEPS, force_autograd=True), positions, word_ids, method)
    assert autograd.values.shape == (len(positions), len(TEXT))
    assert_relative_close(autograd.values, hand_written.values)
    if method == "integrated_gradients":
        # Both errors are float noise here; they agree to within that of the rows' sums.
        scale = hand_written.values.abs().sum(dim=1)
        assert torch.all((autograd.completeness_errors - hand_written.completeness_errors).abs() <= 1e-4 * scale)


@pytest.mark.parametrize("unit", ["test-tanh-rnn", "test-relu-rnn"])
@pytest.mark.parametrize("method", METHODS)
def test_autograd_sweep_equals_the_elman_rnn_sweep(test_units_registered: None, unit: str, method: str) -> None:
    plug_in_net = seeded_net(unit)
    chars = torch.tensor(encode(TEXT))
    positions = list(range(len(TEXT))) if method != "integrated_gradients" else [len(TEXT) - 1, 20, 9]
    word_ids = [position % 30 + 2 for position in positions]
    hand_written = record(plug_in_net, chars, method, IG_STEPS)
    assert all(type(layer).__name__ == "_RNNLayer" for layer in hand_written.layers) and len(hand_written.layers) == 2
    autograd = record(plug_in_net, chars, method, IG_STEPS, force_autograd=True)
    assert_relative_close(
        connectivity_rows(plug_in_net, autograd, positions, word_ids, method).values,
        connectivity_rows(plug_in_net, hand_written, positions, word_ids, method).values,
    )


@pytest.mark.parametrize("unit", ["test-tanh-rnn", "test-relu-rnn", "test-leaky-gated"])
def test_a_continued_recording_equals_a_fresh_one(test_units_registered: None, unit: str) -> None:
    """The Elman RNN's recording continues from the original's layers; a unit without a hand-written sweep from its kept states."""
    assert_continued_recording_equals_a_fresh_one(seeded_net(unit))


def test_a_continued_autograd_recording_reuses_the_chunks_before_the_word(test_units_registered: None) -> None:
    """Over several of the autograd recording's chunks: the states kept before the replaced word are the original's own,
    and the outputs and rows (one row, which skips vmap, and several) are those of a fresh recording."""
    net = seeded_net("test-leaky-gated")
    text = " ".join([TEXT] * 4)
    start = text.index("mat", 100)
    edited = text[:start] + "dog" + text[start + 3 :] + " more"
    original = record(net, torch.tensor(encode(text)), "gradient")
    continued = record_continuing(net, original, start, torch.tensor(encode(edited)))
    fresh = record(net, torch.tensor(encode(edited)), "gradient")
    kept_before = {step: state for step, state in continued.layers[0].kept_states.items() if step < start}
    assert len(kept_before) > 1 and all(state is original.layers[0].kept_states[step] for step, state in kept_before.items())
    assert torch.allclose(continued.outputs, fresh.outputs, atol=1e-6)
    chars = torch.tensor(encode(edited))
    for positions in ([len(edited) - 1], [len(edited) - 1, start + 1, 40]):
        word_ids = [3, 7, 11][: len(positions)]
        rows = connectivity_rows(net, continued, positions, word_ids, "gradient").values
        assert_relative_close(rows, connectivity_rows(net, fresh, positions, word_ids, "gradient").values, 1e-5)
        assert_relative_close(rows, reference_rows(net, chars, positions, word_ids, "gradient"))


@pytest.mark.parametrize("method", METHODS)
def test_plug_in_units_equal_autograd_row_by_row(plug_in_net: AutocompleteNet, method: str) -> None:
    chars = torch.tensor(encode(TEXT))
    positions = [len(TEXT) - 1, 0, 9, 9, 33] if method != "integrated_gradients" else [len(TEXT) - 1, 9]
    word_ids = [2, 5, 7, 8, 30][: len(positions)]
    rows = connectivity_rows(plug_in_net, record(plug_in_net, chars, method, IG_STEPS), positions, word_ids, method)
    assert rows.values.shape == (len(positions), len(TEXT))
    assert_relative_close(rows.values, reference_rows(plug_in_net, chars, positions, word_ids, method))
    for row, position in enumerate(positions):
        assert torch.all(rows.values[row, position + 1 :] == 0)


def test_plug_in_full_matrix_and_recorded_outputs(plug_in_net: AutocompleteNet) -> None:
    chars = torch.tensor(encode(TEXT))
    recording = record(plug_in_net, chars, "gradient")
    with torch.no_grad():
        expected_outputs = plug_in_net.features(chars[None])[0][0]
    assert recording.outputs.shape == (len(TEXT), 12)
    assert torch.allclose(recording.outputs, expected_outputs, atol=1e-6)
    positions = list(range(len(TEXT)))
    word_ids = [position % 30 + 2 for position in positions]
    matrix = connectivity_rows(plug_in_net, recording, positions, word_ids, "gradient").values
    assert_relative_close(matrix, reference_rows(plug_in_net, chars, positions, word_ids, "gradient"))


def test_plug_in_integrated_gradients_are_complete(plug_in_net: AutocompleteNet) -> None:
    chars = torch.tensor(encode(TEXT))
    rows = integrated_gradients(plug_in_net, chars, [len(TEXT) - 1, 12], [3, 4], steps=32, max_steps=2000, force_autograd=True)
    assert rows.completeness_errors is not None and rows.score_changes is not None
    assert torch.all(rows.completeness_errors <= COMPLETENESS_TOLERANCE * rows.score_changes.abs())
    assert rows.values.shape == (2, len(TEXT)) and torch.all(rows.values[1, 13:] == 0)


def test_a_jump_on_the_path_is_reported_and_not_cut_for_ever(test_units_registered: None) -> None:
    """The score of the last position steps up by the output weights' sum where alpha passes 0.3: the gradients never see
    it, so the row misses it whatever the steps. The slices around it are cut until float32 cannot cut them, then no more."""
    net = seeded_net("test-threshold")
    chars = torch.tensor(encode(TEXT))
    last, word_id = len(TEXT) - 1, 5
    with torch.no_grad():
        letter, space = net.embedding(chars[last]), net.embedding(torch.tensor(encode(" ")))[0]
        net.rnn.point.copy_(space + 0.3 * (letter - space))
        net.rnn.normal.copy_(letter - space)
        jump = float(net.output.weight[word_id].sum())
    rows = integrated_gradients(net, chars, [last], [word_id], steps=32, max_steps=2000)
    assert rows.unresolved_jumps is not None and rows.completeness_errors is not None and rows.integration_steps is not None
    assert abs(float(rows.unresolved_jumps[0]) - abs(jump)) < 1e-3 * abs(jump)
    assert abs(float(rows.completeness_errors[0]) - abs(jump)) < 1e-3 * abs(jump)
    assert rows.integration_steps < 200, "the cuts went on where float32 cannot cut"
    # Without the jump (the plane out of reach), the same row adds up and reports none.
    with torch.no_grad():
        net.rnn.point.fill_(1e6)
    smooth = integrated_gradients(net, chars, [last], [word_id], steps=32, max_steps=2000)
    assert smooth.unresolved_jumps is not None and float(smooth.unresolved_jumps[0]) == 0
    assert float(smooth.completeness_errors[0]) <= COMPLETENESS_TOLERANCE * abs(float(smooth.score_changes[0]))
