import warnings

import pytest
import torch

from models import units
from models.loss import word_loss
from models.net import AutocompleteNet, ModelConfig
from models.units import NestedLSTM, make_unit, nested_lstm_states, scripted


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain reference: full logits, per-position cross-entropy, mean over targets other than 0 and 1."""
    mask = targets > 1
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return (losses * mask.reshape(-1)).sum() / mask.sum(), mask.sum()


def slow_nested_lstm(model: NestedLSTM, x: torch.Tensor) -> torch.Tensor:
    """A direct transcription of the Nested LSTM equations, one level and one step at a time."""
    batch, steps, _ = x.shape
    hidden = model.hidden_size
    outputs = x
    for layer in model.layers:
        depth = len(layer.cells)
        h = torch.zeros(batch, hidden)
        c = [torch.zeros(batch, hidden) for _ in range(depth)]
        per_step = []
        for t in range(steps):
            u, v = outputs[:, t], h
            o, us, vs = [], [], []
            for d, cell in enumerate(layer.cells):
                gates = torch.cat([u, v], dim=1) @ cell.weight.t() + cell.bias
                i, j, f, og = gates.split(hidden, dim=1)
                v = torch.sigmoid(f + 1) * c[d]
                u = torch.sigmoid(i) * (j if d == 0 else torch.tanh(j))
                o.append(og)
                us.append(u)
                vs.append(v)
            new_c = [None] * depth
            new_h = [None] * depth
            for d in reversed(range(depth)):
                new_c[d] = vs[d] + us[d] if d == depth - 1 else new_h[d + 1]
                new_h[d] = torch.sigmoid(o[d]) * torch.tanh(new_c[d])
            h, c = new_h[0], new_c
            per_step.append(h)
        outputs = torch.stack(per_step, dim=1)
    return outputs


@pytest.mark.parametrize(("depth", "layers"), [(1, 1), (2, 1), (3, 1), (2, 2)])
def test_nested_lstm_matches_the_equations(depth, layers):
    torch.manual_seed(depth * 10 + layers)
    model = NestedLSTM(5, 7, num_layers=layers, depth=depth)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    x = torch.randn(3, 11, 5)
    fast, (h, cells) = model(x)
    assert fast.shape == (3, 11, 7) and cells.shape == (layers, depth, 3, 7)
    torch.testing.assert_close(fast, slow_nested_lstm(model, x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h[-1], fast[:, -1])


def test_nested_lstm_state_continues_a_sequence():
    torch.manual_seed(1)
    model = NestedLSTM(4, 6, depth=2)
    x = torch.randn(2, 9, 4)
    whole, _ = model(x)
    first, state = model(x[:, :5])
    rest, _ = model(x[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole)


def test_compiled_step_equals_eager():
    torch.manual_seed(2)
    model = NestedLSTM(8, 16, depth=2)
    x = torch.randn(4, 6, 8)
    eager, _ = model(x)
    model.recurrence = "compiled"
    compiled, _ = model(x)
    torch.testing.assert_close(compiled, eager, atol=1e-6, rtol=1e-5)



def test_scripted_states_equal_the_modules_steps(monkeypatch: pytest.MonkeyPatch):
    """`nested_lstm_states`, the steps compiled by TorchScript, gives the eager module's outputs and final state bit
    for bit, and the module runs it when it needs no gradients; quietly: TorchScript's warning stays in `scripted`."""
    torch.manual_seed(3)
    model = NestedLSTM(8, 16, num_layers=2, depth=3).eval()
    x = torch.randn(2, 7, 8)
    state = (torch.randn(2, 2, 16), torch.randn(2, 3, 2, 16))
    eager_outputs, (eager_h, eager_cells) = model(x, state)  # with gradients: the eager step, the reference
    layer = model.layers[0]
    outer = layer.levels[0]
    weights, biases = layer.step_parameters()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        input_gates = torch.nn.functional.linear(x, outer.weight[:, :8], outer.bias).transpose(0, 1)
        hidden_states, cells = nested_lstm_states(input_gates, state[0][0], state[1][0], weights, biases)
        layers_run = []
        monkeypatch.setattr(units, "nested_lstm_states", lambda *args: layers_run.append(args) or nested_lstm_states(*args))
        outputs, (h, last_cells) = model(x, state)
    assert len(layers_run) == 2
    assert hidden_states.shape == (8, 2, 16) and cells.shape == (8, 3, 2, 16)
    assert torch.equal(hidden_states[0], state[0][0]) and torch.equal(cells[0], state[1][0])
    assert torch.equal(hidden_states[-1], eager_h[0]) and torch.equal(cells[-1], eager_cells[0])
    assert torch.equal(outputs, eager_outputs) and torch.equal(h, eager_h) and torch.equal(last_cells, eager_cells)


def running_sums(x: torch.Tensor) -> list[torch.Tensor]:
    sums = [x[0]]
    for index in range(1, x.shape[0]):
        sums.append(sums[-1] + x[index])
    return sums


def test_scripted_compiles_on_first_call_and_keeps_the_python():
    compiled = scripted(running_sums)
    assert compiled.__wrapped__ is running_sums
    x = torch.arange(12.0).view(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(torch.stack(compiled(x)), torch.stack(running_sums(x)))
    with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor'"):
        compiled([1.0, 2.0])  # a TorchScript function checks its argument types, as Python would not


def test_lstm_forget_gate_starts_at_plus_one():
    lstm = make_unit("lstm", 4, 2, 1)
    for layer in range(2):
        effective = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        assert effective[4:8].tolist() == [1.0] * 4
        assert effective[:4].tolist() == [0.0] * 4 and effective[8:].tolist() == [0.0] * 8


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="unit 'no-such-unit' is not installed"):
        ModelConfig(unit="no-such-unit", hidden_size=4, num_layers=1)


@pytest.mark.parametrize("unit", ["gru", "lstm", "nlstm"])
def test_network_shapes_and_padding_row(unit):
    net = AutocompleteNet(ModelConfig(unit=unit, hidden_size=8, num_layers=2 if unit != "nlstm" else 1,
                                      depth=2 if unit == "nlstm" else 1, num_words=30))
    features, _ = net.features(torch.randint(0, 28, (3, 10)))
    logits = net.logits(features)
    assert logits.shape == (3, 10, 30)
    assert torch.all(net.embedding.weight[0] == 0)


def test_loss_ignores_eos_and_unknown_targets():
    torch.manual_seed(3)
    hidden = torch.randn(2, 6, 4, requires_grad=True)
    output = torch.nn.Linear(4, 9)
    targets = torch.tensor([[2, 2, 0, 1, 5, 8], [1, 1, 1, 3, 0, 0]])
    loss, count = word_loss(hidden, targets, output, bf16=False)
    kept = targets > 1
    reference = torch.nn.functional.cross_entropy(output(hidden)[kept], targets[kept])
    assert count == 5
    torch.testing.assert_close(loss, reference)
    loss.backward()
    assert torch.all(hidden.grad[~kept] == 0) and torch.all(hidden.grad[kept].abs().sum(-1) > 0)
    plain, plain_count = masked_cross_entropy(output(hidden), targets)
    torch.testing.assert_close(plain, reference)
    assert int(plain_count) == 5


def test_fused_loss_gradients_equal_plain_autograd():
    torch.manual_seed(4)
    hidden = torch.randn(3, 300, 8, requires_grad=True)
    output = torch.nn.Linear(8, 40)
    targets = torch.randint(0, 40, (3, 300))
    loss, _ = word_loss(hidden, targets, output, bf16=False)
    grads = torch.autograd.grad(loss, [hidden, output.weight, output.bias])
    reference, _ = masked_cross_entropy(output(hidden), targets)
    expected = torch.autograd.grad(reference, [hidden, output.weight, output.bias])
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
