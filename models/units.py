"""The three recurrent units, all batch-first, all returning every position's hidden state.

`gru` and `lstm` are PyTorch's own modules. `nlstm` is the Nested LSTM of Moniz &
Krueger (2017) as the paper's code writes it: the outer LSTM's memory cell is
itself an LSTM, `depth` levels deep.
"""

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UNITS = ("gru", "lstm", "nlstm")


class NestedLSTMCell(nn.Module):
    """One depth level: a single affine map to the four gates i, j, f, o."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.weight = nn.Parameter(torch.empty(4 * hidden_size, input_size + hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        nn.init.uniform_(self.weight, -bound, bound)


def nested_lstm_step(
    input_gates: Tensor, h: Tensor, cells: Tensor, weights: list[Tensor], biases: list[Tensor]
) -> tuple[Tensor, Tensor]:
    """One time step of one Nested LSTM layer.

    `input_gates` is the outermost level's input already multiplied by its
    weights (done for all steps at once by the caller), `cells` is
    [depth, batch, hidden], `weights[0]` is only the outermost level's
    hidden-to-gate block. Returns the new h and cells.
    """
    depth = len(weights)
    outer = input_gates + h @ weights[0].t()
    output_gates = []
    inner_input, inner_hidden = None, None
    for d in range(depth):
        if d == 0:
            gates = outer
        else:
            gates = torch.cat([inner_input, inner_hidden], dim=1) @ weights[d].t() + biases[d]
        i, j, f, o = gates.chunk(4, dim=1)
        inner_hidden = torch.sigmoid(f + 1.0) * cells[d]
        inner_input = torch.sigmoid(i) * (j if d == 0 else torch.tanh(j))
        output_gates.append(o)
    new_cells = [None] * depth
    # The innermost memory is a plain sum; each level above takes the h of the level below as its cell.
    cell = inner_hidden + inner_input
    for d in reversed(range(depth)):
        new_cells[d] = cell
        h = torch.sigmoid(output_gates[d]) * torch.tanh(cell)
        cell = h
    return h, torch.stack(new_cells)


@functools.cache
def compiled_nested_lstm_step():
    """`nested_lstm_step` through torch.compile, built on first use because compiling takes seconds."""
    return torch.compile(nested_lstm_step, dynamic=False)


class NestedLSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, depth: int) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (depth - 1)
        self.cells = nn.ModuleList(NestedLSTMCell(size, hidden_size) for size in sizes)

    def forward(self, x: Tensor, h: Tensor, cells: Tensor, compiled: bool) -> tuple[Tensor, Tensor, Tensor]:
        outer = self.cells[0]
        input_gates = F.linear(x, outer.weight[:, : outer.input_size], outer.bias)
        weights = [outer.weight[:, outer.input_size :]] + [cell.weight for cell in self.cells[1:]]
        biases = [outer.bias] + [cell.bias for cell in self.cells[1:]]
        step = compiled_nested_lstm_step() if compiled else nested_lstm_step
        outputs = []
        for t in range(x.shape[1]):
            h, cells = step(input_gates[:, t], h, cells, weights, biases)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h, cells


class NestedLSTM(nn.Module):
    """Stacked Nested LSTM layers. State: (h [layers, batch, H], cells [layers, depth, batch, H])."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, depth: int = 2) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.depth = depth
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(NestedLSTMLayer(size, hidden_size, depth) for size in sizes)
        # torch.compile of the step is the fastest CPU path measured (see bench/); eager stays the reference.
        self.compiled = False

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        batch = x.shape[0]
        if state is None:
            zeros = x.new_zeros(len(self.layers), batch, self.hidden_size)
            state = (zeros, x.new_zeros(len(self.layers), self.depth, batch, self.hidden_size))
        hs, cells = [], []
        for index, layer in enumerate(self.layers):
            x, h, c = layer(x, state[0][index], state[1][index], self.compiled)
            hs.append(h)
            cells.append(c)
        return x, (torch.stack(hs), torch.stack(cells))


def make_unit(unit: str, hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    """The recurrent unit named `unit`, taking and returning `hidden_size` features per position."""
    if unit == "gru":
        return nn.GRU(hidden_size, hidden_size, num_layers, batch_first=True)
    if unit == "lstm":
        lstm = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True)
        # The paper's LSTM cell adds 1 to the forget gate: start the effective forget bias at +1.
        for name, bias in lstm.named_parameters():
            if name.startswith("bias"):
                nn.init.zeros_(bias)
                if name.startswith("bias_ih"):
                    bias.data[hidden_size : 2 * hidden_size] = 1.0
        return lstm
    if unit == "nlstm":
        return NestedLSTM(hidden_size, hidden_size, num_layers, depth)
    raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
