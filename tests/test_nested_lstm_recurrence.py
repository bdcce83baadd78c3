"""The hand-written Nested LSTM recurrence against eager autograd over `nested_lstm_step`."""

import pytest
import torch

from models.units import NestedLSTM, NestedLSTMRecurrence


def outputs_and_gradients(model: NestedLSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], recurrence: str) -> list[torch.Tensor]:
    """Outputs, final state, and the gradients of a fixed random functional of all three w.r.t. x, state and parameters."""
    model.recurrence = recurrence
    model.zero_grad(set_to_none=True)
    x, state = x.detach().requires_grad_(), tuple(part.detach().requires_grad_() for part in state)
    outputs, (h, cells) = model(x, state)
    assert (type(outputs.grad_fn).__name__ == "NestedLSTMRecurrenceBackward") == (recurrence == "hand-written")
    generator = torch.Generator().manual_seed(7)
    # Random weights on every output, so each part of the backward carries its own adjoint.
    loss = sum((part * torch.randn(part.shape, generator=generator, dtype=part.dtype)).sum() for part in (outputs, h, cells))
    loss.backward()
    return [outputs.detach(), h.detach(), cells.detach(), x.grad, *(part.grad for part in state), *(p.grad for p in model.parameters())]


@pytest.mark.parametrize(("depth", "layers"), [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)])
@pytest.mark.parametrize("state_in", [False, True], ids=["zero-state", "state-in"])
def test_hand_written_recurrence_equals_eager_autograd(depth, layers, state_in):
    torch.manual_seed(depth * 10 + layers)
    model = NestedLSTM(5, 6, num_layers=layers, depth=depth).double()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    # Two sequences padded to the longer one's length, as a training batch holds them.
    x = torch.randn(2, 9, 5, dtype=torch.float64)
    x[1, 6:] = 0.0
    if state_in:
        state = (torch.randn(layers, 2, 6, dtype=torch.float64), torch.randn(layers, depth, 2, 6, dtype=torch.float64))
    else:
        state = (torch.zeros(layers, 2, 6, dtype=torch.float64), torch.zeros(layers, depth, 2, 6, dtype=torch.float64))
    eager = outputs_and_gradients(model, x, state, "eager")
    fast = outputs_and_gradients(model, x, state, "hand-written")
    assert len(fast) == 6 + 2 * depth * layers
    for expected, actual in zip(eager, fast, strict=True):
        assert actual.shape == expected.shape and actual.dtype == torch.float64
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_hand_written_recurrence_passes_gradcheck():
    torch.manual_seed(3)
    depth, batch, steps, size = 3, 2, 4, 3
    input_gates = torch.randn(batch, steps, 4 * size, dtype=torch.float64, requires_grad=True)
    h = torch.randn(batch, size, dtype=torch.float64, requires_grad=True)
    cells = torch.randn(depth, batch, size, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(4 * size, size, dtype=torch.float64, requires_grad=True)]
    weights += [torch.randn(4 * size, 2 * size, dtype=torch.float64, requires_grad=True) for _ in range(depth - 1)]
    biases = [torch.randn(4 * size, dtype=torch.float64, requires_grad=True) for _ in range(depth - 1)]
    assert torch.autograd.gradcheck(NestedLSTMRecurrence.apply, (input_gates, h, cells, *weights, *biases))


def test_only_training_with_gradients_takes_the_hand_written_recurrence():
    torch.manual_seed(4)
    model = NestedLSTM(8, 16, depth=2)
    x = torch.randn(3, 20, 8)
    trained, (h, cells) = model(x)
    assert type(trained.grad_fn).__name__ == "NestedLSTMRecurrenceBackward"
    assert trained.dtype == h.dtype == cells.dtype == torch.float32
    with torch.no_grad():
        served, _ = model(x)
    evaluated, _ = model.eval()(x)
    assert served.grad_fn is None and type(evaluated.grad_fn).__name__ == "StackBackward0"
    torch.testing.assert_close(trained, served, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(evaluated, served, rtol=0, atol=0)


def test_unknown_recurrence_is_refused():
    model = NestedLSTM(2, 3)
    model.recurrence = "fused"
    with pytest.raises(ValueError, match="hand-written"):
        model(torch.zeros(1, 2, 2))
