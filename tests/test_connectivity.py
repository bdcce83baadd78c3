"""The batched connectivity sweep against plain autograd, one backward pass per row."""

import pytest
import torch

from models import connectivity
from models.checkpoint import load_checkpoint
from models.connectivity import METHODS, autograd_rows, connectivity_rows, record, record_continuing
from models.net import AutocompleteNet, ModelConfig
from models.text import SPACE, encode, normalise

TEXT = normalise("The cat sat on the mat, and then it was time")
IG_STEPS = 32


def reference_rows(net: AutocompleteNet, chars: torch.Tensor, positions: list[int], word_ids: list[int], method: str) -> torch.Tensor:
    """The definitions of the issue, computed the slow and obvious way: plain autograd per row (`autograd_rows`) for the
    gradient methods, and integrated gradients as the midpoint sum over the path from the spaces baseline."""
    if method != "integrated_gradients":
        return autograd_rows(net, chars, positions, word_ids, method)
    embeddings = net.embedding(chars[None]).detach()
    # Integrated gradients' baseline: the text with every letter replaced by a space.
    baseline = net.embedding(torch.full_like(chars, SPACE)[None]).detach()
    rows = []
    for position, word_id in zip(positions, word_ids):
        total = torch.zeros_like(embeddings)
        for step in range(IG_STEPS):
            scaled = (baseline + (step + 0.5) / IG_STEPS * (embeddings - baseline)).requires_grad_()
            logit = net.output(net.rnn(scaled)[0])[0, position, word_id]
            total += torch.autograd.grad(logit, scaled)[0]
        rows.append((total / IG_STEPS * (embeddings - baseline))[0].sum(dim=-1))
    return torch.stack(rows).detach()


def assert_relative_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-4) -> None:
    scale = expected.abs().max().item()
    assert scale > 0
    assert torch.allclose(actual, expected, rtol=tolerance, atol=tolerance * scale), (actual - expected).abs().max() / scale


@pytest.mark.parametrize("method", METHODS)
def test_rows_equal_autograd_reference(tiny_net: AutocompleteNet, method: str) -> None:
    chars = torch.tensor(encode(TEXT))
    last = len(TEXT) - 1
    positions = [last, 0, 9, 9, 20] if method != "integrated_gradients" else [last, 9]
    word_ids = [2, 5, 7, 8, 30][: len(positions)]
    rows = connectivity_rows(tiny_net, record(tiny_net, chars, method, IG_STEPS), positions, word_ids, method)
    expected = reference_rows(tiny_net, chars, positions, word_ids, method)
    assert rows.values.shape == (len(positions), len(TEXT))
    assert_relative_close(rows.values, expected)


def test_one_recording_serves_both_gradient_methods_and_any_rows(tiny_net: AutocompleteNet) -> None:
    chars = torch.tensor(encode(TEXT))
    shared = record(tiny_net, chars, "gradient")
    for method, positions, word_ids in [("gradient", [3, 30], [9, 2]), ("gradient_x_input", [len(TEXT) - 1], [4]), ("gradient", [0], [6])]:
        reused = connectivity_rows(tiny_net, shared, positions, word_ids, method).values
        assert torch.equal(reused, connectivity_rows(tiny_net, record(tiny_net, chars, method), positions, word_ids, method).values)
    with pytest.raises(ValueError, match="made for plain gradients"):
        connectivity_rows(tiny_net, shared, [3], [2], "integrated_gradients")


def test_full_matrix_equals_reference_and_is_causal(tiny_net: AutocompleteNet) -> None:
    chars = torch.tensor(encode(TEXT))
    positions = list(range(len(TEXT)))
    word_ids = [position % 50 + 2 for position in positions]
    matrix = connectivity_rows(tiny_net, record(tiny_net, chars, "gradient"), positions, word_ids, "gradient").values
    assert_relative_close(matrix, reference_rows(tiny_net, chars, positions, word_ids, "gradient"))
    after = torch.triu(torch.ones_like(matrix, dtype=torch.bool), diagonal=1)
    assert torch.all(matrix[after] == 0)
    assert torch.all(matrix[~after] > 0)


def test_integrated_gradients_are_complete(tiny_net: AutocompleteNet) -> None:
    chars = torch.tensor(encode(TEXT))
    rows = connectivity_rows(tiny_net, record(tiny_net, chars, "integrated_gradients", IG_STEPS), [len(TEXT) - 1, 12], [3, 4], "integrated_gradients")
    assert rows.completeness_errors is not None and rows.score_changes is not None
    assert torch.allclose(rows.completeness_errors, (rows.values.sum(dim=1) - rows.score_changes).abs())
    assert torch.all(rows.completeness_errors <= 1e-2 * rows.score_changes.abs() + 1e-6)
    assert torch.all(rows.values[1, 13:] == 0)
    # Spaces are the baseline's own characters: they carry nothing.
    spaces = torch.tensor([char == " " for char in TEXT])
    assert torch.all(rows.values[:, spaces] == 0)


EDITED = TEXT.replace("on the mat", "in the box")


def assert_continued_recording_equals_a_fresh_one(net: AutocompleteNet) -> None:
    """A counterfactual's edited text, recorded from the original's recording on from the replaced word: every row as fresh."""
    start = TEXT.index("on the mat")
    original, edited = torch.tensor(encode(TEXT + " and more")), torch.tensor(encode(EDITED))
    continued = record_continuing(net, record(net, original, "gradient"), start, edited)
    fresh = record(net, edited, "gradient")
    assert torch.allclose(continued.outputs, fresh.outputs, atol=1e-6)
    positions = [len(EDITED) - 1, start + 3, start, 4]
    word_ids = [2, 9, 5, 7]
    for method in ("gradient", "gradient_x_input"):
        expected = connectivity_rows(net, fresh, positions, word_ids, method).values
        assert_relative_close(connectivity_rows(net, continued, positions, word_ids, method).values, expected, 1e-5)
    assert_relative_close(connectivity_rows(net, continued, positions, word_ids, "gradient").values, reference_rows(net, edited, positions, word_ids, "gradient"))


def test_a_continued_recording_equals_a_fresh_one(tiny_net: AutocompleteNet) -> None:
    assert_continued_recording_equals_a_fresh_one(tiny_net)


@pytest.mark.parametrize("unit,layers,depth", [("gru", 3, 1), ("lstm", 1, 1), ("nlstm", 2, 3)])
def test_other_shapes_of_unit(unit: str, layers: int, depth: int) -> None:
    torch.manual_seed(1)
    net = AutocompleteNet(ModelConfig(unit=unit, hidden_size=8, num_layers=layers, depth=depth, num_words=20)).eval()
    chars = torch.tensor(encode(" a quick test"))
    for method in ("gradient", "gradient_x_input"):
        rows = connectivity_rows(net, record(net, chars, method), [12, 4], [2, 19], method)
        assert_relative_close(rows.values, reference_rows(net, chars, [12, 4], [2, 19], method))
    assert_continued_recording_equals_a_fresh_one(net)


@pytest.mark.parametrize("unit", ["gru", "lstm", "nlstm"])
def test_bundled_checkpoints_equal_reference(unit: str) -> None:
    from app.settings import BUNDLED_CHECKPOINTS

    path = BUNDLED_CHECKPOINTS / f"{unit}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    net = load_checkpoint(path)
    chars = torch.tensor(encode(TEXT[:30]))
    for method in ("gradient", "gradient_x_input"):
        rows = connectivity_rows(net, record(net, chars, method), [29, 10], [2, 100], method)
        assert_relative_close(rows.values, reference_rows(net, chars, [29, 10], [2, 100], method))


@pytest.mark.parametrize("composite_rows", [1, 10**9], ids=["folded", "gate-by-gate"])
def test_folded_and_gate_by_gate_products_equal_reference(tiny_net: AutocompleteNet, composite_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many rows fold the gate factors into the weights (connectivity.COMPOSITE_ROWS); both ways give the reference."""
    monkeypatch.setattr(connectivity, "COMPOSITE_ROWS", composite_rows)
    chars = torch.tensor(encode(TEXT))
    positions = list(range(len(TEXT)))
    word_ids = [position % 50 + 2 for position in positions]
    for method in ("gradient", "gradient_x_input"):
        matrix = connectivity_rows(tiny_net, record(tiny_net, chars, method), positions, word_ids, method).values
        assert_relative_close(matrix, reference_rows(tiny_net, chars, positions, word_ids, method))


@pytest.mark.parametrize("gate_sources", [(0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 2)])
def test_composite_matrix_equals_the_gate_adjoints_product(gate_sources: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    size, sources_count, width = 5, max(gate_sources) + 1, 7
    sources = torch.randn(3, 1, sources_count * size)
    factors = torch.randn(1, len(gate_sources), size)
    weight = torch.randn(len(gate_sources) * size, width)
    gates = torch.cat([sources[..., source * size : (source + 1) * size] * factors[:, gate] for gate, source in enumerate(gate_sources)], dim=-1)
    composite = connectivity._composite(factors, weight, gate_sources)
    assert composite.shape == (1, sources_count * size, width)
    torch.testing.assert_close(sources @ composite[0], gates @ weight)


def test_the_plain_autograd_reference_refuses_integrated_gradients(tiny_net: AutocompleteNet) -> None:
    with pytest.raises(ValueError, match="not 'integrated_gradients'"):
        autograd_rows(tiny_net, torch.tensor(encode(TEXT)), [3], [2], "integrated_gradients")


# The loops the hand-written sweeps run compiled by TorchScript (models.units.scripted).
SCRIPTED_LOOPS = ("_gru_steps_back", "_rnn_steps_back", "_lstm_steps_back", "_nested_lstm_steps_back", "_lstm_cells", "nested_lstm_states")


@pytest.mark.parametrize("unit", ["gru", "lstm", "nlstm", "rnn"])
def test_scripted_loops_compute_what_they_do_as_python(unit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled or run as Python (as with PYTORCH_JIT=0), the loops give the same rows bit for bit, for every method:
    a single row's plain blocks, and integrated gradients' batch of path nodes."""
    torch.manual_seed(2)
    net = AutocompleteNet(ModelConfig(unit=unit, hidden_size=8, num_layers=2, depth=2 if unit == "nlstm" else 1, num_words=20)).eval()
    chars = torch.tensor(encode(TEXT))

    def rows() -> list[torch.Tensor]:
        return [connectivity_rows(net, record(net, chars, method, 4), [len(TEXT) - 1, 9], [2, 19], method).values for method in METHODS]

    compiled = rows()
    for name in SCRIPTED_LOOPS:
        monkeypatch.setattr(connectivity, name, getattr(connectivity, name).__wrapped__)
    for scripted_rows, python_rows in zip(compiled, rows(), strict=True):
        assert torch.equal(scripted_rows, python_rows)
