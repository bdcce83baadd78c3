"""The vanilla RNN package's own tests: the module against its equation, its state, its causality,
the geometric fading its docstring promises, and the project's connectivity on it.

`make test` collects them (pyproject.toml's testpaths names examples/); they need the package
installed, as `make install` does (pip install -e examples/vanilla-rnn). Copy them with the folder
when you start your own unit.
"""

import torch
from torch import Tensor, nn
from vanilla_rnn import UNIT, build

from models.connectivity import autograd_rows, connectivity_rows, record
from models.net import BUNDLED, AutocompleteNet, ModelConfig
from models.units import installed_units

WIDTH = 16


def seeded_unit(width: int = WIDTH, layers: int = 2) -> nn.RNN:
    torch.manual_seed(0)
    return build(width, layers, depth=1)


def equation(unit: nn.RNN, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """h_t = tanh(W x_t + U h_{t-1} + b) per layer, one step at a time, in float64."""
    inputs, finals = x.double(), []
    for layer in range(unit.num_layers):
        weight_ih, weight_hh = (getattr(unit, f"{name}_l{layer}").double() for name in ("weight_ih", "weight_hh"))
        bias = (getattr(unit, f"bias_ih_l{layer}") + getattr(unit, f"bias_hh_l{layer}")).double()
        h = torch.zeros(x.shape[0], unit.hidden_size, dtype=torch.float64) if state is None else state[layer].double()
        states = []
        for t in range(inputs.shape[1]):
            h = torch.tanh(inputs[:, t] @ weight_ih.t() + h @ weight_hh.t() + bias)
            states.append(h)
        inputs = torch.stack(states, dim=1)
        finals.append(h)
    return inputs, torch.stack(finals)


def test_the_package_registers_the_unit() -> None:
    assert installed_units()["rnn"] is UNIT and UNIT.display_name == "Vanilla RNN"
    net = AutocompleteNet(BUNDLED.model_config("rnn"))
    assert isinstance(net.rnn, nn.RNN) and net.rnn.nonlinearity == "tanh" and net.rnn.batch_first
    assert (net.config.num_layers, net.config.hidden_size) == (2, 256)
    # Per layer W, U and their two biases: a quarter of the LSTM's recurrent weights.
    assert net.parameter_counts()["recurrent"] == 2 * (2 * 256 * 256 + 2 * 256)


def test_the_module_is_the_equation() -> None:
    unit = seeded_unit()
    x, state = torch.randn(3, 40, WIDTH), torch.randn(2, 3, WIDTH)
    with torch.no_grad():
        outputs, final = unit(x, state)
    expected_outputs, expected_final = equation(unit, x, state)
    torch.testing.assert_close(outputs.double(), expected_outputs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final.double(), expected_final, rtol=1e-5, atol=1e-6)


def test_chunks_with_the_state_continue_the_sequence() -> None:
    """As the server feeds text: a keystroke at a time or a few characters, the state carried between."""
    unit = seeded_unit()
    x = torch.randn(2, 60, WIDTH)
    with torch.no_grad():
        whole, whole_state = unit(x)
        pieces, state, start = [], None, 0
        for end in [1, 2, 3, 30, 31, 60]:
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


def test_the_gradient_from_far_back_shrinks_geometrically() -> None:
    """With ||U|| = 1/2 and tanh' <= 1, d h_T / d x_{T-d} is at most ||W|| / 2^d: the docstring's fading, as a bound."""
    unit = seeded_unit(layers=1)
    with torch.no_grad():
        unit.weight_hh_l0.mul_(0.5 / torch.linalg.matrix_norm(unit.weight_hh_l0, ord=2))
    x = torch.randn(1, 30, WIDTH, requires_grad=True)
    last = unit(x)[0][0, -1]
    # d h_T / d x_t for every t, one coordinate of h_T at a time: [H, T, H].
    jacobian = torch.stack([torch.autograd.grad(last[i], x, retain_graph=True)[0][0] for i in range(WIDTH)])
    norms = torch.stack([torch.linalg.matrix_norm(jacobian[:, t], ord=2) for t in range(30)])
    bound = torch.linalg.matrix_norm(unit.weight_ih_l0, ord=2) * 0.5 ** torch.arange(29, -1, -1)
    assert (norms <= bound * (1 + 1e-5)).all() and norms[-1] > 0


def test_connectivity_equals_row_by_row_autograd() -> None:
    torch.manual_seed(1)
    net = AutocompleteNet(ModelConfig(unit="rnn", hidden_size=WIDTH, num_layers=2, num_words=30)).eval()
    chars = torch.randint(1, 28, (75,))
    positions = [74, 0, 31, 32, 43, 60, 61, 10]
    word_ids = [3, 5, 7, 3, 9, 11, 2, 4]
    rows = connectivity_rows(net, record(net, chars, "gradient"), positions, word_ids, "gradient").values
    expected = autograd_rows(net, chars, positions, word_ids)
    torch.testing.assert_close(rows, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
