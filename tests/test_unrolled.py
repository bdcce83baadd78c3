"""The unrolled gradient norms (models/unrolled.py) against plain autograd, one position at a time, written independently.

Each reference runs the network one step at a time with PyTorch's own modules (or the unit's own step), makes every
layer's hidden state a node of the graph that feeds both the next step and the layer above, and takes the gradient
of one position's word score with one backward pass: no batching over positions, no narrowing, no detection of which
state tensor is the output.
"""

import pytest
import torch
from torch import Tensor, nn

from models.net import AutocompleteNet, ModelConfig
from models.text import encode, normalise
from models.units import Unit, get_unit, nested_lstm_step, register_unit, unit_names, unregister_unit
from models.unrolled import unit_layers, unrolled_gradient_norms

TEXT = normalise("the formal study of grammar is an important part of")
CHARS = torch.tensor(encode(TEXT))
WORDS = 40
POSITIONS = [len(TEXT) - 1, 0, 17, 5, 17]


def first_guess(net: AutocompleteNet):
    return lambda outputs: net.output(outputs).argmax(dim=-1).tolist()


def reference(net: AutocompleteNet, position: int, word: int) -> tuple[Tensor, Tensor]:
    """|| dS / e[t] || and, per layer, || dS / (h[t], c[t]) || for steps 0..position (c: an LSTM's or Nested LSTM's cells)."""
    rnn = net.rnn
    embeddings = net.embedding(CHARS[None, : position + 1]).detach().requires_grad_()
    below = [embeddings[:, step] for step in range(position + 1)]
    layers: list[list[list[Tensor]]] = []
    if isinstance(rnn, nn.RNNBase):
        for index in range(rnn.num_layers):
            options = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
            single = type(rnn)(rnn.hidden_size, rnn.hidden_size, 1, batch_first=True, **options)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(single, f"{name}_l0").data = getattr(rnn, f"{name}_l{index}").data.clone()
            state, nodes, outputs = None, [], []
            for step in range(position + 1):
                _, state = single(below[step][:, None], state)
                parts = list(state) if isinstance(state, tuple) else [state]
                nodes.append(parts)
                outputs.append(parts[0][0])  # h feeds the layer above and, as part of the state, the next step
            layers.append(nodes)
            below = outputs
    else:
        for layer in rnn.layers:
            outer = layer.levels[0]
            weights, biases = layer.step_parameters()
            h, cells = torch.zeros(1, rnn.hidden_size), torch.zeros(len(layer.levels), 1, rnn.hidden_size)
            nodes, outputs = [], []
            for step in range(position + 1):
                gates = below[step] @ outer.weight[:, : outer.input_size].t() + outer.bias
                h, cells = nested_lstm_step(gates, h, cells, weights, biases)
                nodes.append([h, cells])
                outputs.append(h)
            layers.append(nodes)
            below = outputs
    score = (below[position][0] * net.output.weight[word]).sum()
    flat = [node for nodes in layers for parts in nodes for node in parts]
    gradients = torch.autograd.grad(score, [embeddings, *flat], allow_unused=True)
    remaining = iter(gradients[1:])
    norms = []
    for nodes in layers:
        squared = []
        for parts in nodes:
            squared.append(sum(gradient.square().sum() for gradient in (next(remaining) for _ in parts) if gradient is not None))
        norms.append(torch.stack([torch.as_tensor(value) for value in squared]).sqrt())
    return gradients[0][0].norm(dim=-1), torch.stack(norms)


@pytest.mark.parametrize("unit,layers,depth", [("gru", 2, 1), ("lstm", 2, 1), ("nlstm", 2, 2), ("rnn", 2, 1)])
def test_every_served_unit_matches_autograd_one_position_at_a_time(unit: str, layers: int, depth: int) -> None:
    torch.manual_seed(0)
    net = AutocompleteNet(ModelConfig(unit=unit, hidden_size=12, num_layers=layers, depth=depth, num_words=WORDS)).eval()
    net.requires_grad_(False)
    with torch.inference_mode():
        norms = unrolled_gradient_norms(net, CHARS, POSITIONS, first_guess(net))
    assert norms.layers.shape == (layers, len(POSITIONS), len(TEXT)) and norms.inputs.shape == (len(POSITIONS), len(TEXT))
    assert norms.layers_resolved
    for row, position in enumerate(POSITIONS):
        word = norms.word_ids[row]
        assert word == first_guess(net)(net.features(CHARS[None])[0][0, position : position + 1])[0]
        inputs, states = reference(net, position, word)
        torch.testing.assert_close(norms.inputs[row, : position + 1], inputs, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(norms.layers[:, row, : position + 1], states, rtol=1e-4, atol=1e-7)
        # The units read forwards: nothing after the position.
        assert (norms.inputs[row, position + 1 :] == 0).all() and (norms.layers[:, row, position + 1 :] == 0).all()


class LeakyLayer(nn.Module):
    """h_t = h_{t-1} / 2 + tanh(W x_t + U h_{t-1}) / 2; its state is h in PyTorch's layout [1, batch, H]."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input, self.recurrent = nn.Linear(size, size), nn.Linear(size, size, bias=False)

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        return 0.5 * h + 0.5 * torch.tanh(self.input(x) + self.recurrent(h))

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x.new_zeros(x.shape[0], self.recurrent.in_features) if state is None else state[0]
        outputs = []
        for step in range(x.shape[1]):
            h = self.step(x[:, step], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h[None]


class LeakyStack(nn.Module):
    """Two leaky layers under the unit contract, shown to the unrolled figure through `layers`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([LeakyLayer(size), LeakyLayer(size)])

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        states = []
        for index, layer in enumerate(self.layers):
            x, h = layer(x, None if state is None else state[index : index + 1])
            states.append(h[0])
        return x, torch.stack(states)


class MemoryUnit(nn.Module):
    """One layer that shows no layers: m_t = 0.9 m_{t-1} + 0.1 tanh(W x_t), h_t = tanh(m_t + U h_{t-1}).

    Its state is (h [batch, H], m laid out [H, batch]), so the batch dimension is not first everywhere.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input, self.recurrent = nn.Linear(size, size), nn.Linear(size, size, bias=False)
        self.size = size

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, m = (x.new_zeros(x.shape[0], self.size), x.new_zeros(self.size, x.shape[0])) if state is None else state
        outputs = []
        for step in range(x.shape[1]):
            m = 0.9 * m + 0.1 * torch.tanh(self.input(x[:, step])).t()
            h = torch.tanh(m.t() + self.recurrent(h))
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, m)


class CountedReadout(torch.autograd.Function):
    """tanh, counting the steps whose gradient passes back through it."""

    backward_calls = 0

    @staticmethod
    def forward(ctx, h: Tensor) -> Tensor:
        output = torch.tanh(h)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, gradient: Tensor) -> Tensor:
        CountedReadout.backward_calls += 1
        (output,) = ctx.saved_tensors
        return gradient * (1 - output**2)


class ReadoutUnit(nn.Module):
    """h_t = tanh(W x_t + U h_{t-1}), and an output tanh(h_t) that no later step reads: its state is h alone."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input, self.recurrent = nn.Linear(size, size), nn.Linear(size, size, bias=False)
        self.size = size

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x.new_zeros(x.shape[0], self.size) if state is None else state
        outputs = []
        for step in range(x.shape[1]):
            h = torch.tanh(self.input(x[:, step]) + self.recurrent(h))
            outputs.append(CountedReadout.apply(h))
        return torch.stack(outputs, dim=1), h


PLUG_INS = (
    Unit("test-leaky-stack", "Leaky stack", "Two leaky tanh layers.", lambda hidden, layers, depth: LeakyStack(hidden)),
    Unit("test-memory", "Memory unit", "A leaky memory behind a tanh.", lambda hidden, layers, depth: MemoryUnit(hidden)),
    Unit("test-readout", "Readout unit", "A tanh layer read out through a tanh.", lambda hidden, layers, depth: ReadoutUnit(hidden)),
)


@pytest.fixture(scope="module")
def plug_ins():
    for unit in PLUG_INS:
        register_unit(unit)
    yield
    for unit in PLUG_INS:
        unregister_unit(unit.name)


def plug_in_net(name: str) -> AutocompleteNet:
    torch.manual_seed(1)
    net = AutocompleteNet(ModelConfig(unit=name, hidden_size=10, num_layers=1, num_words=WORDS)).eval()
    net.requires_grad_(False)
    return net


def test_a_plug_in_that_shows_its_layers_gets_a_row_each_matching_autograd(plug_ins: None) -> None:
    net = plug_in_net("test-leaky-stack")
    with torch.inference_mode():
        norms = unrolled_gradient_norms(net, CHARS, POSITIONS, first_guess(net))
    assert norms.layers_resolved and norms.layers.shape[0] == 2
    for row, position in enumerate(POSITIONS):
        embeddings = net.embedding(CHARS[None, : position + 1]).detach().requires_grad_()
        below = [embeddings[:, step] for step in range(position + 1)]
        nodes: list[list[Tensor]] = []
        for layer in net.rnn.layers:
            h = torch.zeros(1, 10)
            hs = []
            for step in range(position + 1):
                h = layer.step(below[step], h)
                hs.append(h)
            nodes.append(hs)
            below = hs
        score = (below[position][0] * net.output.weight[norms.word_ids[row]]).sum()
        gradients = torch.autograd.grad(score, [h for hs in nodes for h in hs])
        expected = torch.stack([gradient.norm() for gradient in gradients]).view(2, position + 1)
        torch.testing.assert_close(norms.layers[:, row, : position + 1], expected, rtol=1e-4, atol=1e-7)


def test_a_plug_in_without_layers_is_one_layer_whose_state_counts_beside_its_output(plug_ins: None) -> None:
    net = plug_in_net("test-memory")
    with torch.inference_mode():
        norms = unrolled_gradient_norms(net, CHARS, POSITIONS, first_guess(net))
    assert not norms.layers_resolved and norms.layers.shape[0] == 1
    unit = net.rnn
    for row, position in enumerate(POSITIONS):
        x = net.embedding(CHARS[None, : position + 1]).detach().requires_grad_()
        h, m = torch.zeros(1, 10), torch.zeros(10, 1)
        handed = []
        for step in range(position + 1):
            m = 0.9 * m + 0.1 * torch.tanh(unit.input(x[:, step])).t()
            h = torch.tanh(m.t() + unit.recurrent(h))
            m = m.view_as(m)  # the memory as handed on to the next step: its own node, apart from the h it made
            handed.append([h, m])
        score = (h[0] * net.output.weight[norms.word_ids[row]]).sum()
        gradients = iter(torch.autograd.grad(score, [node for pair in handed for node in pair], allow_unused=True))
        expected = torch.stack([
            torch.as_tensor(sum(g.square().sum() for g in (next(gradients), next(gradients)) if g is not None)).sqrt() for _ in handed
        ])
        torch.testing.assert_close(norms.layers[0, row, : position + 1], expected, rtol=1e-4, atol=1e-7)


def test_the_backward_pass_reads_a_units_output_only_where_a_row_ends(plug_ins: None) -> None:
    net = plug_in_net("test-readout")
    with torch.inference_mode():
        CountedReadout.backward_calls = 0
        single = unrolled_gradient_norms(net, CHARS, [40], first_guess(net))
        assert CountedReadout.backward_calls == 1  # not once per step: the outputs before 40 reach no word score
        CountedReadout.backward_calls = 0
        unrolled_gradient_norms(net, CHARS, POSITIONS, first_guess(net))
        assert CountedReadout.backward_calls == len(set(POSITIONS))
    # The state's norms are still there: h at each step reaches the score at 40 through the steps after it.
    assert (single.layers[0, 0, :41] > 0).all() and (single.layers[0, 0, 41:] == 0).all()


def test_layers_that_do_not_compose_to_the_unit_are_not_taken_for_its_layers(plug_ins: None) -> None:
    net = plug_in_net("test-leaky-stack")
    layers, found = unit_layers(net.rnn, net.embedding(CHARS[None]))
    assert found and layers == list(net.rnn.layers)
    net.rnn.forward = lambda x, state=None: (torch.flip(LeakyStack.forward(net.rnn, x, state)[0], dims=[2]), None)  # type: ignore[method-assign]
    layers, found = unit_layers(net.rnn, net.embedding(CHARS[None]))
    assert not found and layers == [net.rnn]


def test_the_vanilla_rnn_gradient_vanishes_with_distance() -> None:
    torch.manual_seed(0)
    net = AutocompleteNet(ModelConfig(unit="rnn", hidden_size=16, num_layers=2, num_words=WORDS)).eval()
    net.requires_grad_(False)
    position = len(TEXT) - 1
    with torch.inference_mode():
        top = unrolled_gradient_norms(net, CHARS, [position], first_guess(net)).layers[-1, 0]
    assert top[position - 1] > top[position - 10] > top[position - 30] > 0
    assert top[position - 30] < 1e-3 * top[position - 1]


def test_positions_outside_the_text_are_refused() -> None:
    net = AutocompleteNet(ModelConfig(unit="gru", hidden_size=8, num_layers=1, num_words=WORDS)).eval()
    for positions in ([], [len(TEXT)], [-1]):
        with pytest.raises(ValueError, match="positions"):
            unrolled_gradient_norms(net, CHARS, positions, first_guess(net))


@pytest.mark.parametrize("unit", unit_names())
def test_every_installed_unit_run_step_by_step_gives_the_input_gradient_of_its_whole_forward_pass(unit: str) -> None:
    """Any unit, plug-ins included: the input row is || dS / e[t] ||, which autograd gives from the unit's own forward pass."""
    torch.manual_seed(2)
    spec = get_unit(unit)
    net = AutocompleteNet(ModelConfig(unit=unit, hidden_size=32, num_layers=spec.default_layers, depth=2 if spec.uses_depth else 1, num_words=WORDS)).eval()
    net.requires_grad_(False)
    position = 30
    with torch.inference_mode():
        norms = unrolled_gradient_norms(net, CHARS, [position], first_guess(net))
    embeddings = net.embedding(CHARS[None, : position + 1]).detach().requires_grad_()
    score = (net.rnn(embeddings)[0][0, position] * net.output.weight[norms.word_ids[0]]).sum()
    expected = torch.autograd.grad(score, embeddings)[0][0].norm(dim=-1)
    torch.testing.assert_close(norms.inputs[0, : position + 1], expected, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(norms.layers).all() and (norms.layers[:, 0, position + 1 :] == 0).all()
    assert (norms.layers[:, 0, position] > 0).all()
