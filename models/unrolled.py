"""The vanishing gradient, unrolled: how much one output's word score depends on each layer's state at each step.

For a text of T characters, an output position p and a word w (the model's first guess there,
unless told otherwise), take the word's score S = logit_w(p). For every recurrent layer l and
every step t <= p this computes

    norm[l, t] = || dS / dz[l, t] ||

where z[l, t] is everything layer l hands on after step t: its output h (up to the layer above,
or to the word scores) and its state (along to its own next step). Where a state tensor holds
the very values of the output (the h of the GRU, of the vanilla RNN, and the LSTM's h beside
its memory cell c) it is the same quantity and counts once: for the GRU and the vanilla RNN the
norm is the textbook || dS / dh_t ||, for the LSTM that of (dS / dh_t, dS / dc_t). The input row is
|| dS / e[t] || for the embedding output e[t]. Every entry past p is 0: the units read forwards.

The values are exact: plain autograd through the network run one step at a time, so that every
z[l, t] is a node of the graph. All T output positions are answered by one backward pass: the
text is copied once per position into the batch, row r for position T - 1 - r, and each row
stops at its own position, so a step runs only the rows still active.

How a unit's layers are found (the contract for plug-in units, on top of models.units'):

- PyTorch's nn.RNN, nn.GRU and nn.LSTM (one direction, with biases, without projections): one
  layer per stacked layer, run through PyTorch's own cell functions.
- The Nested LSTM: one layer per level of its stack.
- Any other unit with a `layers` attribute, a sequence of modules that each follow the unit
  contract and whose outputs, fed one into the next, are the unit's outputs: one layer each.
  This is checked on the text itself; a unit whose layers do not compose to it is one layer.
- Any other unit: one layer, the whole unit, whose z is its output and its whole state.

Every tensor of a layer's state must keep the batch dimension, anywhere in its shape (PyTorch's
[layers, batch, H] does); a state tensor without one cannot be split between the rows.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from models.net import AutocompleteNet, State
from models.units import NestedLSTM, NestedLSTMLayer

# How closely a unit's `layers`, run one after another, must reproduce its outputs to be drawn as layers.
COMPOSE_RTOL = 1e-4
COMPOSE_ATOL = 1e-5


@dataclass(frozen=True)
class UnrolledNorms:
    """Gradient norms of the requested rows: entry [row, t] belongs to the row's position p and step t (0 past p)."""

    inputs: Tensor  # [rows, T]: || dS_p / e[t] ||
    layers: Tensor  # [layers, rows, T]: || dS_p / z[l, t] ||
    word_ids: list[int]  # the word whose score S_p is, per row
    layers_resolved: bool  # whether the unit's own layers were found (False: the whole unit is one layer)


class _CellLayer(nn.Module):
    """One layer of PyTorch's nn.RNN, nn.GRU or nn.LSTM, run with the matching cell function, under the unit contract.

    Its state is h [batch, H], or (h, c) for the LSTM.
    """

    def __init__(self, cell: Callable[..., Tensor | tuple[Tensor, Tensor]], parameters: Sequence[Tensor], hidden_size: int, lstm: bool) -> None:
        super().__init__()
        self.cell, self.parameters_, self.hidden_size, self.lstm = cell, list(parameters), hidden_size, lstm

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        zeros = x.new_zeros(x.shape[0], self.hidden_size)
        current: State = ((zeros, zeros) if self.lstm else zeros) if state is None else state
        outputs = []
        for step in range(x.shape[1]):
            current = self.cell(x[:, step], current, *self.parameters_)
            outputs.append(current[0] if isinstance(current, tuple) else current)
        return torch.stack(outputs, dim=1), current


class _NestedLSTMLayer(nn.Module):
    """One layer of the Nested LSTM under the unit contract; its state is (h [batch, H], cells [depth, batch, H])."""

    def __init__(self, layer: NestedLSTMLayer, hidden_size: int) -> None:
        super().__init__()
        self.layer, self.hidden_size = layer, hidden_size

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if state is None:
            state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(len(self.layer.levels), x.shape[0], self.hidden_size))
        outputs, h, cells = self.layer(x, state[0], state[1], "eager")
        return outputs, (h, cells)


_CELLS: dict[type, Callable[..., Tensor | tuple[Tensor, Tensor]]] = {nn.GRU: torch.gru_cell, nn.LSTM: torch.lstm_cell}


def _pytorch_layers(rnn: nn.RNNBase) -> list[nn.Module]:
    cell: Callable[..., Tensor | tuple[Tensor, Tensor]]
    if isinstance(rnn, nn.RNN):
        cell = torch.rnn_tanh_cell if rnn.nonlinearity == "tanh" else torch.rnn_relu_cell
    else:
        cell = _CELLS[type(rnn)]
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return [
        _CellLayer(cell, [getattr(rnn, f"{name}_l{index}") for name in names], rnn.hidden_size, isinstance(rnn, nn.LSTM))
        for index in range(rnn.num_layers)
    ]


def _composes(unit: nn.Module, layers: Sequence[nn.Module], inputs: Tensor) -> bool:
    """Whether `layers`, run one after another on `inputs` [1, T, H], give the unit's outputs."""
    with torch.no_grad():
        expected = unit(inputs)[0]
        outputs = inputs
        for layer in layers:
            outputs = layer(outputs)[0]
    return outputs.shape == expected.shape and torch.allclose(outputs, expected, rtol=COMPOSE_RTOL, atol=COMPOSE_ATOL)


def unit_layers(unit: nn.Module, inputs: Tensor) -> tuple[list[nn.Module], bool]:
    """The unit's layers under the unit contract, bottom first, and whether they are its own (see the module docstring)."""
    if type(unit) in (nn.GRU, nn.LSTM, nn.RNN):
        rnn = cast(nn.RNNBase, unit)
        if rnn.bias and not rnn.bidirectional and not rnn.proj_size:
            return _pytorch_layers(rnn), True
    if type(unit) is NestedLSTM:
        nested = cast(NestedLSTM, unit)
        return [_NestedLSTMLayer(layer, nested.hidden_size) for layer in cast(list[NestedLSTMLayer], list(nested.layers))], True
    layers = getattr(unit, "layers", None)
    if isinstance(layers, Sequence | nn.ModuleList) and len(layers) > 0 and all(isinstance(layer, nn.Module) for layer in layers):
        candidates = list(layers)
        try:
            if _composes(unit, candidates, inputs):
                return candidates, True
        except (TypeError, RuntimeError, ValueError):
            pass  # layers that do not follow the unit contract: the unit is drawn whole
    return [unit], False


def _parts(state: State) -> list[Tensor]:
    return [state] if isinstance(state, Tensor) else list(state)


def _rebuild(state: State, parts: list[Tensor]) -> State:
    return parts[0] if isinstance(state, Tensor) else type(state)(parts)


def _batch_dims(layer: nn.Module, inputs: Tensor, state: State) -> list[int]:
    """The batch dimension of each tensor of `state`, the layer's state after a first step on `inputs` [rows, 1, H]."""
    with torch.no_grad():
        single = _parts(layer(inputs[:1])[1])
    dims = []
    for full, one in zip(_parts(state), single):
        differing = [dim for dim, (size, size_one) in enumerate(zip(full.shape, one.shape)) if size != size_one]
        if len(differing) != 1 or full.dim() != one.dim():
            raise ValueError(
                f"a state tensor of shape {tuple(full.shape)} has no single batch dimension (with batch 1: {tuple(one.shape)}); "
                "the unrolled gradient needs every state tensor to keep the batch dimension"
            )
        dims.append(differing[0])
    return dims


def _tie(output: Tensor, parts: list[Tensor], dims: list[int]) -> tuple[list[Tensor], list[bool]]:
    """The state as handed on: tensors holding exactly the output's values become views of it, so that they count once."""
    rows = output.shape[0]
    flat = output.reshape(rows, -1)
    tied_parts, tied = [], []
    for part, dim in zip(parts, dims):
        # The batch dimension holds the rows, so only a tensor of the output's size can hold its values.
        same = part.numel() == output.numel() and torch.equal(part.movedim(dim, 0).reshape(rows, -1), flat)
        # An untied tensor is handed on as an alias, a node of its own: its gradient then counts only the paths
        # through the next step, not those through the output, which a cell may have computed from it.
        tied_parts.append(output.reshape(part.movedim(dim, 0).shape).movedim(0, dim) if same else part.view_as(part))
        tied.append(same)
    return tied_parts, tied


def _row_norms(gradients: list[Tensor | None], dims: list[int], rows: int) -> Tensor:
    """Each row's gradient norm over tensors whose batch dimensions are `dims` (None: an unused tensor, whose gradient is 0).

    One concatenation, then one norm: a norm per tensor cost the mLSTM's unrolled row a tenth more operations.
    """
    flat = [gradient.movedim(dim, 0).reshape(rows, -1) for gradient, dim in zip(gradients, dims) if gradient is not None]
    return torch.cat(flat, dim=1).norm(dim=1) if flat else torch.zeros(rows)


def unrolled_gradient_norms(
    net: AutocompleteNet, chars: Tensor, positions: list[int], choose_words: Callable[[Tensor], list[int]]
) -> UnrolledNorms:
    """The norms of the rows at `positions` of character ids `chars` [T], in request order, each as wide as the text.

    `choose_words` picks the word of each requested position from the unit's outputs there [rows, H].
    """
    length = chars.shape[0]
    if not positions or not all(0 <= position < length for position in positions):
        raise ValueError(f"positions must be a non-empty list of indices below the text's {length} characters")
    # Rows sorted latest position first: the rows still active at step t, those whose position is t or later, are a prefix.
    order = sorted(range(len(positions)), key=lambda row: -positions[row])
    sorted_positions = [positions[row] for row in order]
    steps = sorted_positions[0] + 1
    active = [sum(position >= step for position in sorted_positions) for step in range(steps)]
    with torch.inference_mode(False), torch.enable_grad():
        embeddings = net.embedding(chars[None, :steps]).detach()[0]  # [steps, H]
        with torch.no_grad():
            # Each row's word is chosen from the unit's own forward pass, as every other answer chooses it.
            word_ids = choose_words(net.features(chars[None, :steps])[0][0, sorted_positions])
        layers, resolved = unit_layers(net.rnn, embeddings[None])
        inputs = [embeddings[step].expand(active[step], -1).clone().requires_grad_() for step in range(steps)]
        below: list[Tensor] = inputs
        emitted: list[list[tuple[list[Tensor], list[int]]]] = []  # per layer, per step: the tensors z[l, t] and their batch dims
        for layer in layers:
            state: State | None = None
            dims: list[int] = []
            outputs, handed_on = [], []
            for step in range(steps):
                if state is not None and active[step] < active[step - 1]:
                    state = _rebuild(state, [part.narrow(dim, 0, active[step]) for part, dim in zip(_parts(state), dims)])
                output, state = layer(below[step][:, None], state)
                output = output.squeeze(1)  # a view whose gradient is one too (an index's is a zero-filled copy)
                if step == 0:
                    dims = _batch_dims(layer, below[0][:, None], state) if active[0] > 1 else [0] * len(_parts(state))
                parts, tied = _tie(output, _parts(state), dims)
                state = _rebuild(state, parts)
                own = [(part, dim) for part, dim, same in zip(parts, dims, tied) if not same]
                handed_on.append(([output, *(part for part, _ in own)], [0, *(dim for _, dim in own)]))
                outputs.append(output)
            emitted.append(handed_on)
            below = outputs
        # A row's score is read from the top layer's output at its own position, where it is the last active row but
        # for the rows of the same position: rows active[t + 1] to active[t] - 1 end at step t.
        ends = [active[step + 1] if step + 1 < steps else 0 for step in range(steps)]
        # Only the steps where a row ends: an empty slice of another step's output would put that output, and its
        # cell's whole output path, into the backward pass for nothing but zeros (a seventh of the mLSTM's row).
        top = torch.cat([below[step][ends[step] :] for step in reversed(range(steps)) if ends[step] < active[step]])  # [rows, H], sorted
        score = (top * net.output.weight[word_ids]).sum()
        nodes = inputs + [tensor for handed_on in emitted for tensors, _ in handed_on for tensor in tensors]
        # A state tensor outside the graph (a unit may detach one, such as a stabiliser) has no gradient: 0.
        linked = [node for node in nodes if node.requires_grad]
        found = dict(zip(map(id, linked), torch.autograd.grad(score, linked, allow_unused=True)))
        gradients = iter([found.get(id(node)) for node in nodes])

        input_norms = torch.zeros(len(positions), length)
        layer_norms = torch.zeros(len(layers), len(positions), length)
        for step in range(steps):
            input_norms[: active[step], step] = _row_norms([next(gradients)], [0], active[step])
        for index, handed_on in enumerate(emitted):
            for step, (_, dims) in enumerate(handed_on):
                layer_norms[index, : active[step], step] = _row_norms([next(gradients) for _ in dims], dims, active[step])
    unsorted = torch.empty(len(positions), dtype=torch.long)
    unsorted[order] = torch.arange(len(positions))
    return UnrolledNorms(
        inputs=input_norms[unsorted],
        layers=layer_norms[:, unsorted],
        word_ids=[word_ids[index] for index in unsorted.tolist()],
        layers_resolved=resolved,
    )
