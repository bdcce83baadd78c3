"""Connectivity: how much the logit of word w at output position t depends on each input character.

With `g[t']` the gradient of that logit with respect to the embedding output at
position t' (`e[t']`):

- `gradient`: sum over the 28 input symbols v of (g[t'] . E_v)^2, the paper's measure;
- `gradient_x_input`: |g[t'] . e[t']|;
- `integrated_gradients`: e[t'] . mean_k g_k[t'], the gradients g_k taken at the
  inputs alpha_k * e for midpoints alpha_k of `steps` equal slices of [0, 1]; the
  all-padding input (zero embeddings) is the baseline. The row sums to
  logit(e) - logit(0) up to the reported completeness error.

Many rows are computed in one reverse sweep instead of one backward pass per
row. The forward pass runs once (per integrated-gradients step) and records, for
every step, the elementwise factors of the unit's local Jacobian; the sweep then
walks time backwards carrying one adjoint per row. Rows are sorted by position,
latest first, so at step s the active rows are a prefix of the adjoint buffers: a
row joins when the sweep reaches its position and costs nothing before. Each step
is two matrix products per layer over all active rows, which is what makes the
full matrix fast; no autograd graph, vmap or double backward is involved, so the
oneDNN RNN kernels that PyTorch picks for the forward pass need no disabling.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call

from models.net import AutocompleteNet
from models.units import NestedLSTM, NestedLSTMLayer

Method = Literal["gradient", "gradient_x_input", "integrated_gradients"]
METHODS: tuple[str, ...] = ("gradient", "gradient_x_input", "integrated_gradients")


@dataclass(frozen=True)
class ConnectivityRows:
    """Rows in request order: `values` [rows, T] and, for integrated gradients, `completeness_errors` [rows]."""

    values: Tensor
    completeness_errors: Tensor | None


class _GRULayer:
    """One recorded GRU layer (PyTorch's gate order r, z, n)."""

    def __init__(self, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor, inputs: Tensor, outputs: Tensor) -> None:
        self.input_weight, self.weight_hh = weight_ih, weight_hh
        previous = torch.cat([outputs.new_zeros(outputs[:, :1].shape), outputs[:, :-1]], dim=1)
        input_r, input_z, input_n = (inputs @ weight_ih.t() + bias_ih).chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = (previous @ weight_hh.t() + bias_hh).chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        candidate_factor = (1 - update) * (1 - candidate**2)
        update_factor = (previous - candidate) * update * (1 - update)
        reset_factor = candidate_factor * hidden_n * reset * (1 - reset)
        # Factors are stored [T, B, gate, H] so each step reads one contiguous block.
        self.input_factors = torch.stack([reset_factor, update_factor, candidate_factor], dim=2).transpose(0, 1).contiguous()
        self.hidden_factors = torch.stack([reset_factor, update_factor, candidate_factor * reset], dim=2).transpose(0, 1).contiguous()
        self.carry_factor = update.transpose(0, 1).contiguous()

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        return [self.carry_factor.new_zeros(rows, batch, self.weight_hh.shape[1])]

    def backward_step(self, step: int, active: int, from_above: Tensor | None, carry: list[Tensor]) -> Tensor:
        hidden = carry[0][:active] if from_above is None else carry[0][:active] + from_above
        flat = hidden.unsqueeze(-2)
        rows = active * hidden.shape[1]
        to_input = (flat * self.input_factors[step]).view(active, hidden.shape[1], -1)
        to_hidden = (flat * self.hidden_factors[step]).reshape(rows, -1) @ self.weight_hh
        # `hidden` may be a view of carry[0], so it is read in full before carry[0] is overwritten.
        carry[0][:active] = torch.addcmul(to_hidden.view_as(hidden), hidden, self.carry_factor[step])
        return to_input


class _LSTMLayer:
    """One recorded LSTM layer (PyTorch's gate order i, f, g, o)."""

    def __init__(self, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor, inputs: Tensor, outputs: Tensor) -> None:
        self.input_weight, self.weight_hh = weight_ih, weight_hh
        previous = torch.cat([outputs.new_zeros(outputs[:, :1].shape), outputs[:, :-1]], dim=1)
        gates = inputs @ weight_ih.t() + bias_ih + previous @ weight_hh.t() + bias_hh
        input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)
        input_gate, forget_gate, output_gate = input_gate.sigmoid(), forget_gate.sigmoid(), output_gate.sigmoid()
        candidate = candidate.tanh()
        cells, cell = [], outputs.new_zeros(outputs[:, 0].shape)
        for step in range(outputs.shape[1]):
            cells.append(cell)
            cell = forget_gate[:, step] * cell + input_gate[:, step] * candidate[:, step]
        previous_cells = torch.stack(cells, dim=1)
        tanh_cells = torch.tanh(forget_gate * previous_cells + input_gate * candidate)
        factors = [
            candidate * input_gate * (1 - input_gate),
            previous_cells * forget_gate * (1 - forget_gate),
            input_gate * (1 - candidate**2),
            tanh_cells * output_gate * (1 - output_gate),
        ]
        self.gate_factors = torch.stack(factors, dim=2).transpose(0, 1).contiguous()
        self.cell_factor = (output_gate * (1 - tanh_cells**2)).transpose(0, 1).contiguous()
        self.forget = forget_gate.transpose(0, 1).contiguous()

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        size = self.weight_hh.shape[1]
        return [self.forget.new_zeros(rows, batch, size), self.forget.new_zeros(rows, batch, size)]

    def backward_step(self, step: int, active: int, from_above: Tensor | None, carry: list[Tensor]) -> Tensor:
        hidden = carry[0][:active] if from_above is None else carry[0][:active] + from_above
        cell = torch.addcmul(carry[1][:active], hidden, self.cell_factor[step])
        gates = torch.stack([cell, cell, cell, hidden], dim=-2) * self.gate_factors[step]
        rows = active * hidden.shape[1]
        gates = gates.reshape(rows, -1)
        carry[0][:active] = (gates @ self.weight_hh).view_as(hidden)
        carry[1][:active] = cell * self.forget[step]
        return gates.view(active, hidden.shape[1], -1)


class _NestedLSTMLayer:
    """One recorded Nested LSTM layer; mirrors models.units.nested_lstm_step level by level."""

    def __init__(self, layer: NestedLSTMLayer, inputs: Tensor) -> None:
        outer = layer.cells[0]
        self.input_weight = outer.weight[:, : outer.input_size]
        self.level_weights = [outer.weight[:, outer.input_size :]] + [cell.weight for cell in layer.cells[1:]]
        biases = [outer.bias] + [cell.bias for cell in layer.cells[1:]]
        depth = len(self.level_weights)
        batch, length = inputs.shape[:2]
        size = self.input_weight.shape[0] // 4
        input_gates = inputs @ self.input_weight.t() + outer.bias
        h = inputs.new_zeros(batch, size)
        cells = [inputs.new_zeros(batch, size) for _ in range(depth)]
        gate_factors = [[] for _ in range(depth)]
        cell_factors = [[] for _ in range(depth)]
        output_factors = [[] for _ in range(depth)]
        retain_factors = [[] for _ in range(depth)]
        outputs = []
        for step in range(length):
            output_gates = []
            inner_input = inner_hidden = None
            for d in range(depth):
                if d == 0:
                    gates = input_gates[:, step] + h @ self.level_weights[0].t()
                else:
                    gates = torch.cat([inner_input, inner_hidden], dim=1) @ self.level_weights[d].t() + biases[d]
                i, j, f, o = gates.chunk(4, dim=1)
                i, f, o = i.sigmoid(), torch.sigmoid(f + 1.0), o.sigmoid()
                squashed = j if d == 0 else torch.tanh(j)
                squash_slope = torch.ones_like(j) if d == 0 else 1 - squashed**2
                gate_factors[d].append(torch.stack([squashed * i * (1 - i), i * squash_slope, cells[d] * f * (1 - f)], dim=1))
                retain_factors[d].append(f)
                inner_hidden = f * cells[d]
                inner_input = i * squashed
                output_gates.append(o)
            cell = inner_hidden + inner_input
            for d in reversed(range(depth)):
                cells[d] = cell
                tanh_cell = torch.tanh(cell)
                o = output_gates[d]
                output_factors[d].append(tanh_cell * o * (1 - o))
                cell_factors[d].append(o * (1 - tanh_cell**2))
                cell = o * tanh_cell
            h = cell
            outputs.append(h)
        # Stacked [T, B, ...] per depth level, as the sweep reads them one step at a time.
        self.gate_factors = [torch.stack(factors) for factors in gate_factors]
        self.cell_factors = [torch.stack(factors) for factors in cell_factors]
        self.output_factors = [torch.stack(factors) for factors in output_factors]
        self.retain_factors = [torch.stack(factors) for factors in retain_factors]
        self.outputs = torch.stack(outputs, dim=1)

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        size = self.input_weight.shape[0] // 4
        return [self.outputs.new_zeros(rows, batch, size) for _ in range(1 + len(self.level_weights))]

    def backward_step(self, step: int, active: int, from_above: Tensor | None, carry: list[Tensor]) -> Tensor:
        depth = len(self.level_weights)
        adjoint = carry[0][:active] if from_above is None else carry[0][:active] + from_above
        output_adjoints = []
        for d in range(depth):
            output_adjoints.append(adjoint * self.output_factors[d][step])
            adjoint = torch.addcmul(carry[1 + d][:active], adjoint, self.cell_factors[d][step])
        inner_input = inner_hidden = adjoint
        batch = adjoint.shape[1]
        rows = active * batch
        for d in reversed(range(depth)):
            factors = self.gate_factors[d][step]
            gates = torch.stack(
                [inner_input * factors[:, 0], inner_input * factors[:, 1], inner_hidden * factors[:, 2], output_adjoints[d]], dim=-2
            ).reshape(rows, -1)
            carry[1 + d][:active] = inner_hidden * self.retain_factors[d][step]
            below = (gates @ self.level_weights[d]).view(active, batch, -1)
            if d > 0:
                inner_input, inner_hidden = below.chunk(2, dim=-1)
            else:
                carry[0][:active] = below
        return gates.view(active, batch, -1)


def _layer_parameters(rnn: nn.RNNBase, index: int) -> list[Tensor]:
    return [getattr(rnn, f"{name}_l{index}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def record_layers(net: AutocompleteNet, inputs: Tensor) -> list:
    """Run the unit on embedding outputs `inputs` [B, T, H] and record every layer, bottom first."""
    rnn = net.rnn
    if isinstance(rnn, NestedLSTM):
        layers = []
        for layer in rnn.layers:
            layers.append(_NestedLSTMLayer(layer, inputs))
            inputs = layers[-1].outputs
        return layers
    if rnn.bias is False or rnn.bidirectional or getattr(rnn, "proj_size", 0):
        raise ValueError("connectivity supports uni-directional GRU/LSTM with biases and no projection")
    layer_class = _GRULayer if isinstance(rnn, nn.GRU) else _LSTMLayer
    # One native single-layer call per layer: the multi-layer call would hide the lower layers' outputs.
    single = type(rnn)(rnn.input_size, rnn.hidden_size, 1, batch_first=True)
    layers = []
    for index in range(rnn.num_layers):
        parameters = _layer_parameters(rnn, index)
        names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
        outputs = functional_call(single, dict(zip(names, parameters)), (inputs,))[0]
        layers.append(layer_class(*parameters, inputs, outputs))
        inputs = outputs
    return layers


@torch.inference_mode()
def connectivity_rows(
    net: AutocompleteNet, chars: Tensor, positions: list[int], word_ids: list[int], method: Method, steps: int = 32
) -> ConnectivityRows:
    """Connectivity rows [len(positions), T] for character ids `chars` [T]."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    length = chars.shape[0]
    embeddings = net.embedding(chars[None])  # [1, T, H]
    if method == "integrated_gradients":
        alphas = (torch.arange(steps, dtype=embeddings.dtype) + 0.5) / steps
        inputs = alphas[:, None, None] * embeddings
    else:
        inputs = embeddings
    last_position = max(positions)
    layers = record_layers(net, inputs[:, : last_position + 1])
    batch = inputs.shape[0]

    order = sorted(range(len(positions)), key=lambda row: -positions[row])
    sorted_positions = [positions[row] for row in order]
    cotangents = net.output.weight[[word_ids[row] for row in order]]  # [R, H]
    buffers = [layer.adjoint_buffers(len(order), batch) for layer in layers]
    values = embeddings.new_zeros(len(order), length)
    # The bottom layer's gate adjoints go straight to what the method needs, skipping g itself:
    # [gates, 28] for the symbol embeddings, [gates, T] for the actual inputs.
    bottom_weight = layers[0].input_weight
    projection = bottom_weight @ (net.embedding.weight.t() if method == "gradient" else embeddings[0].t())
    joined = 0
    for step in range(last_position, -1, -1):
        active = joined
        while active < len(order) and sorted_positions[active] == step:
            active += 1
        if active > joined:
            buffers[-1][0][joined:active] = cotangents[joined:active, None, :]
            joined = active
        from_above = None
        for index in range(len(layers) - 1, -1, -1):
            gates = layers[index].backward_step(step, active, from_above, buffers[index])
            if index > 0:
                from_above = gates @ layers[index].input_weight
        if method == "gradient":
            values[:active, step] = (gates[:, 0] @ projection).square().sum(dim=-1)
        elif method == "gradient_x_input":
            values[:active, step] = (gates[:, 0] @ projection[:, step]).abs()
        else:
            values[:active, step] = gates.mean(dim=1) @ projection[:, step]

    unsorted = torch.empty_like(values)
    unsorted[order] = values
    errors = None
    if method == "integrated_gradients":
        errors = _completeness_errors(net, embeddings, unsorted, positions, word_ids)
    return ConnectivityRows(values=unsorted, completeness_errors=errors)


def _completeness_errors(net: AutocompleteNet, embeddings: Tensor, values: Tensor, positions: list[int], word_ids: list[int]) -> Tensor:
    """|sum of attributions - (logit at the input - logit at the zero baseline)| per row."""
    both = torch.cat([embeddings, torch.zeros_like(embeddings)])
    hidden = net.rnn(both[:, : max(positions) + 1])[0]
    weights = net.output.weight[word_ids]
    logits = (hidden[:, positions] * weights).sum(dim=-1)  # [2, R]
    return (values.sum(dim=1) - (logits[0] - logits[1])).abs()
