"""Connectivity: how much the logit of word w at output position t depends on each input character.

With `g[t']` the gradient of that logit with respect to the embedding output at
position t' (`e[t']`):

- `gradient`: sum over the 28 input symbols v of (g[t'] . E_v)^2, the paper's measure;
- `gradient_x_input`: |g[t'] . e[t']|;
- `integrated_gradients`: (e[t'] - b[t']) . sum_k w_k g_k[t'], the gradients g_k
  taken at the inputs b + alpha_k (e - b) along the straight path from the baseline
  b, the text with every letter replaced by a space (a character the network was
  trained on: from the all-padding zero input the recurrent dynamics amplify the
  first characters' gradients so much that no affordable sum converges). The row
  sums to logit(e) - logit(b), the score change, up to the reported completeness
  error. `integrated_gradients()` places the nodes alpha_k adaptively: it starts
  from equal slices of [0, 1] and splits the slices whose midpoint rule misses
  their own score change (known exactly from forward passes) the most, until the
  error is within COMPLETENESS_TOLERANCE of the score change or the step budget
  is spent. Spaces equal the baseline, so their attribution is 0.

Each method is one `Attribution` below; everything else is shared.

Many rows are computed in one reverse sweep instead of one backward pass per
row. The forward pass runs once (per integrated-gradients step) and is kept as
one `RecordedLayer` per layer; the sweep then walks time backwards carrying one
adjoint per row. Rows are sorted by position, latest first, so at step s the
active rows are a prefix of the adjoint buffers: a row joins when the sweep
reaches its position and costs nothing before. Time is cut into blocks; within a
block each layer, top first, sweeps alone and only then sends its gate adjoints
through its input weights, for the whole block at once, to the layer below or,
at the bottom, to the method. Batching rows is what makes the full matrix fast;
batching steps is what makes a single row fast.

GRU, LSTM, Nested LSTM and PyTorch's Elman RNN (tanh or ReLU) have hand-written
sweeps: their recordings keep, for
every step, the elementwise factors of the unit's local Jacobian, and a step
costs one product with the recurrent weights over all active rows. With few
rows a block is a plain loop of a few tensor operations a step into buffers
made once a block, every row at every step (a row that has not joined yet
stays zero): per-operation overhead, not arithmetic, is what a single row's
step costs, and the loop is compiled by TorchScript so that it runs without
Python's interpreter lock, beside another unit's sweep in another thread. A gated unit's gate adjoints are a few vectors (the output's and
the cells' adjoints) times those factors, so with many rows each step first
folds its factors into the weights, once, and the rows multiply by that: a
GRU step then costs a third of the products, an LSTM step half (`_composite`). No autograd
graph, vmap or double backward is involved, so no RNN kernel needs disabling for
them (see app.pool for the one that is disabled, and why). Any other unit (one
that follows the contract of models.units, with outputs that depend on earlier
inputs only) is recorded as its state at the start of every block, and a block is
a vector-Jacobian product from torch.func of the unit run over the block from the
state before it, vmapped over the active rows: exact, and several rows per
backward pass, but each step pays autograd's overhead (and oneDNN's LSTM kernel,
which vmap cannot batch, is off meanwhile).
"""

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vjp, vmap

from models.net import AutocompleteNet, State
from models.text import SPACE
from models.units import NestedLSTM, NestedLSTMLayer, nested_lstm_states, scripted

Method = Literal["gradient", "gradient_x_input", "integrated_gradients"]
METHODS: tuple[str, ...] = get_args(Method)
# Steps per block: within a block each layer sweeps alone, then its input products run as one batch.
TIME_BLOCK = 32
# A hand-written sweep shortens its blocks so that one layer's gate adjoints for a block stay within
# L2-sized buffers; an autograd block may be larger, as each block costs a vjp call over every step.
BLOCK_FLOATS = 1 << 18
# From this many active rows on, a product with a weight folds the step's gate factors into the weight
# first (_composite): forming that matrix costs about what this many rows save.
COMPOSITE_ROWS = 16
AUTOGRAD_BLOCK_FLOATS = 1 << 22
# An autograd block costs a vjp call of fixed overhead however many steps it spans, so with few rows its
# blocks grow to about this many row-steps: one row of a 200-character text is then one block, not seven
# (minGRU's row took a third of the time, mLSTM's under half); with many rows, TIME_BLOCK steps batch best.
AUTOGRAD_BLOCK_ROW_STEPS = 256
# Integrated gradients refine their path until the completeness error is at most this fraction of the
# score change: under half the 5 % a reader is warned at, so float noise and one unlucky row stay clear of it.
COMPLETENESS_TOLERANCE = 0.02
# A slice is cut only if it misses by at least this share of the worst slice's miss (see integrated_gradients).
CUT_SHARE = 0.1
# Path nodes recorded at once: one recording holds a few floats per node, step and gate.
PATH_NODES_PER_RECORDING = 32


@dataclass(frozen=True)
class IntegrationPath:
    """The nodes of integrated gradients on the straight path from `baseline` to the text's embeddings."""

    baseline: Tensor  # [1, T, H]: the embeddings of the text with every letter replaced by a space
    alphas: Tensor  # [K]: the node k is the input baseline + alphas[k] * (embeddings - baseline)
    weights: Tensor  # [K]: the quadrature weight of each node's gradient (the width of its slice of [0, 1])


@dataclass(frozen=True)
class Recording:
    """One forward pass over a text, kept for reverse sweeps; never modified, so requests may share it."""

    embeddings: Tensor  # [1, T, H]: the embedding outputs of the text
    layers: list["RecordedLayer"]  # bottom first; a unit without a hand-written sweep is one layer
    outputs: Tensor  # [T, H]: the unit's output at every position
    path: IntegrationPath | None  # set when the layers were recorded at the nodes of integrated gradients


@dataclass(frozen=True)
class ConnectivityRows:
    """Rows in request order: `values` [rows, T]; for integrated gradients also, per row, the score change
    logit(text) - logit(baseline) the row should sum to, the completeness error |sum - change|, the path
    nodes used, and the unresolved jump: what the score does in slices of the path that float32 inputs
    cannot cut finer, beyond what their gradients say (a jump no number of steps can see)."""

    values: Tensor
    completeness_errors: Tensor | None = None
    score_changes: Tensor | None = None
    integration_steps: int | None = None
    unresolved_jumps: Tensor | None = None


class RecordedLayer(Protocol):
    """One layer of a recorded forward pass, as the reverse sweep uses it.

    Adjoints are laid out [steps, rows, batch, width]: `batch` is the recording's
    (the integrated-gradients steps, or 1), rows are sorted latest position first.
    A block of the sweep hands back, per row and step, either the layer's gate
    adjoints or, for a block of many rows (`folds`), its *sources*: the few vectors
    (the output's adjoint, a cell's) from which the gate adjoints follow elementwise.
    Products with input weights go through `gate_products` and `gate_dots`, which
    know which of the two they were given.
    """

    outputs: Tensor  # [batch, T, H]: the layer's output at every step

    def block_start(self, block_end: int, active_rows: list[int], batch: int) -> int:
        """Where the sweep's block that ends before step `block_end` should begin, given how many rows are active at each step."""
        ...

    @property
    def input_weight(self) -> Tensor | None:
        """[gates, inputs]: gate adjoints times this are the input adjoints; None: they are the input adjoints."""
        ...

    @property
    def adjoint_width(self) -> int:
        """The width of the gate adjoints."""
        ...

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        """Zeroed adjoints of the layer's state for `rows` rows, carried from block to block."""
        ...

    def backward_block(self, start: int, end: int, active_rows: list[int], output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        """Sweep steps end - 1 down to `start`.

        `output_adjoints` [steps, rows, batch, H] is what reaches the layer's outputs, for
        the `rows` rows active at `start` (`active_rows[step]` of them at each step; the
        others are zero there); `carry` holds the state adjoints after `end - 1` and is left
        holding those before `start`. Returns the gate adjoints, or the sources when the
        layer folds that many rows, [steps, rows, batch, width]: zero for rows not yet active.
        """
        ...

    def gate_products(self, adjoints: Tensor, start: int, matrix: Tensor) -> Tensor:
        """The gate adjoints of a block (from step `start` on) times `matrix` [gates, K]: [steps, rows, batch, K]."""
        ...

    def gate_dots(self, adjoints: Tensor, start: int, columns: Tensor) -> Tensor:
        """Each step's gate adjoints dotted with its own column of `columns` [gates, steps]: [steps, rows, batch]."""
        ...


def _per_step(factors: Tensor) -> tuple[Tensor, ...]:
    """[B, T, ...] factors as T contiguous [B, ...] blocks, one per step."""
    return factors.transpose(0, 1).contiguous().unbind(0)


def folds(rows: int, batch: int) -> bool:
    """Whether products over these rows fold the gate factors into the weight first (see COMPOSITE_ROWS).

    Not with a batch (integrated gradients): one folded matrix per batch element outgrows the caches.
    """
    return batch == 1 and rows >= COMPOSITE_ROWS


def _composite(factors: Tensor, weight: Tensor, gate_sources: tuple[int, ...]) -> Tensor:
    """[B, S * H, K]: the matrix J with sources @ J = gate adjoints @ `weight` [G * H, K], per batch element.

    Gate g's adjoint is source `gate_sources[g]` times `factors[:, g]` ([B, G, H]), so J
    stacks, for each source, the rows of `weight` of its gates scaled by their factors:
    a product then costs S * H rows of weight, not G * H.
    """
    batch, gates, size = factors.shape
    blocks = weight.view(gates, size, -1)
    folded = weight.new_empty(batch, max(gate_sources) + 1, size, blocks.shape[-1])
    written: set[int] = set()
    for gate, source in enumerate(gate_sources):
        if source in written:
            folded[:, source].addcmul_(factors[:, gate, :, None], blocks[gate])
        else:
            torch.mul(factors[:, gate, :, None], blocks[gate], out=folded[:, source])
            written.add(source)
    return folded.view(batch, -1, blocks.shape[-1])


def _times(sources: Tensor, matrices: Tensor, out: Tensor) -> Tensor:
    """[rows, 1, W] sources times the one matrix of `matrices` [1, W, K], into `out` [rows, 1, K] (folding needs batch 1)."""
    rows = sources.shape[0]
    torch.mm(sources.view(rows, -1), matrices[0], out=out.view(rows, -1))
    return out


def _plain_products(adjoints: Tensor, matrix: Tensor) -> Tensor:
    """Gate adjoints [steps, rows, batch, gates] times `matrix` [gates, K]."""
    return adjoints @ matrix


def _plain_dots(adjoints: Tensor, columns: Tensor) -> Tensor:
    """Each step's gate adjoints [steps, rows, batch, gates] dotted with its column of `columns` [gates, steps]."""
    return torch.einsum("srbg,gs->srb", adjoints, columns)


class _PlainInputs:
    """A layer whose blocks are always gate adjoints."""

    def gate_products(self, adjoints: Tensor, start: int, matrix: Tensor) -> Tensor:
        return _plain_products(adjoints, matrix)

    def gate_dots(self, adjoints: Tensor, start: int, columns: Tensor) -> Tensor:
        return _plain_dots(adjoints, columns)


def _source_runs(gate_sources: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """The gates in runs of neighbours that take the same source: (the source, the run's first gate, the gate after it)."""
    runs: list[tuple[int, int, int]] = []
    first = 0
    for gate in range(1, len(gate_sources) + 1):
        if gate == len(gate_sources) or gate_sources[gate] != gate_sources[first]:
            runs.append((gate_sources[first], first, gate))
            first = gate
    return runs


def _gate_adjoints(sources: list[Tensor], runs: list[tuple[int, int, int]], factors: Tensor, out: Tensor) -> None:
    """One step's gate adjoints into `out` [rows, batch, gates, H], run by run: the run's source [rows, batch, 1, H]
    times its gates' factors, of `factors` [batch, gates, H]."""
    for source, first, end in runs:
        torch.mul(sources[source], factors[:, first:end], out=out[:, :, first:end])


class _SteppedLayer:
    """A layer with a hand-written local Jacobian, swept one step at a time.

    Its gate adjoints at step s are `sources[..., input_sources[g]] * input_factors[s][:, g]`
    for gate g. Few rows take `plain_block`: a few tensor ops a step into buffers made once
    a block, every row at every step (a row that has not joined yet has zero adjoints and
    keeps them, which costs less than cutting it out). With many rows, `folded_step` first
    folds a step's factors into the weight (`_composite`), which is cheaper than forming
    every row's gate adjoints, as there are fewer sources than gates.
    """

    input_weight: Tensor
    input_factors: tuple[Tensor, ...]  # per step [B, gates, H]
    input_sources: tuple[int, ...]  # the source each gate takes
    outputs: Tensor  # [B, T, H]
    # The attributes holding one entry per step: tuples of them, or lists of such tuples (one per level).
    per_step_fields: tuple[str, ...]

    def block_start(self, block_end: int, active_rows: list[int], batch: int) -> int:
        rows = active_rows[block_end - 1] * batch
        return max(0, block_end - min(TIME_BLOCK, max(1, BLOCK_FLOATS // (rows * self.adjoint_width))))

    def state_after(self, step: int) -> State:
        """The layer's state after `step`, as its unit takes it to go on."""
        return self.outputs[:, step]

    def joined(self, prefix: Self, start: int) -> Self:
        """This layer, recorded over a text's steps from `start` on (from `prefix`'s state after step start - 1),
        after `prefix`'s first `start` steps: the recording of the whole text, its first steps taken as they are."""
        layer = copy.copy(self)
        for name in self.per_step_fields:
            ours, theirs = getattr(self, name), getattr(prefix, name)
            setattr(layer, name, [t[:start] + o for t, o in zip(theirs, ours)] if isinstance(ours, list) else theirs[:start] + ours)
        layer.outputs = torch.cat([prefix.outputs[:, :start], self.outputs], dim=1)
        return layer

    @property
    def adjoint_width(self) -> int:
        return self.input_weight.shape[0]

    @property
    def source_width(self) -> int:
        return (max(self.input_sources) + 1) * self.adjoint_width // len(self.input_sources)

    def backward_block(self, start: int, end: int, active_rows: list[int], output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        rows, batch = output_adjoints.shape[1:3]
        if not folds(rows, batch):
            return self.plain_block(start, end, output_adjoints, [part[:rows] for part in carry])
        sources = output_adjoints.new_empty(end - start, rows, batch, self.source_width)
        for step in range(end - 1, start - 1, -1):
            active = active_rows[step]
            if active < rows:  # rows that have not joined yet contribute nothing at this step
                sources[step - start, active:] = 0
            sources[step - start, :active] = self.folded_step(step, active, output_adjoints[step - start, :active], carry)
        return sources

    def folded_step(self, step: int, active: int, output_adjoint: Tensor, carry: list[Tensor]) -> Tensor:
        """One step of many rows, the `active` ones: the state adjoints in `carry` move one step back; returns the rows' sources."""
        raise NotImplementedError

    def plain_block(self, start: int, end: int, output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        """`backward_block` for rows that do not fold, whose state adjoints are `carry` [rows, batch, H]: the gate adjoints.
        It may overwrite `output_adjoints`."""
        raise NotImplementedError

    def gate_products(self, adjoints: Tensor, start: int, matrix: Tensor) -> Tensor:
        steps, rows, batch = adjoints.shape[:3]
        if not folds(rows, batch):
            return _plain_products(adjoints, matrix)
        products = adjoints.new_empty(steps, rows, batch, matrix.shape[-1])
        for index in range(steps):
            _times(adjoints[index], _composite(self.input_factors[start + index], matrix, self.input_sources), out=products[index])
        return products

    def gate_dots(self, adjoints: Tensor, start: int, columns: Tensor) -> Tensor:
        steps, rows, batch = adjoints.shape[:3]
        if not folds(rows, batch):
            return _plain_dots(adjoints, columns)
        factors = torch.stack(self.input_factors[start : start + steps])  # [steps, B, G, H]
        weighted = factors * columns.t().view(steps, 1, *factors.shape[2:])
        folded = weighted.new_zeros(steps, batch, max(self.input_sources) + 1, factors.shape[-1])
        folded.index_add_(2, torch.tensor(self.input_sources), weighted)
        return torch.einsum("srbw,sbw->srb", adjoints, folded.view(steps, batch, -1))


# The plain blocks' loops, one per unit, are scripted (models.units.scripted): a single row's sweep is a few
# small ops a step, and two server threads sweeping two units side by side would otherwise take turns at every op.
# Each takes the block's output adjoints [steps, rows, batch, H], its steps' factors, and the state adjoints
# carried into the step after the block, [rows, batch, H], which it leaves as those carried into its first step.


@scripted
def _gru_steps_back(output_adjoints: Tensor, hidden_factors: list[Tensor], carry_factors: list[Tensor], weight_hh: Tensor, carry: Tensor) -> None:
    """The output adjoints become, in place, each step's hidden adjoint."""
    rows, batch, size = carry.shape
    carried, carried_flat = carry.unsqueeze(-2), carry.view(rows * batch, size)
    scaled = output_adjoints.new_empty(rows, batch, 3, size)  # the hidden adjoint times each gate's recurrent factor
    scaled_flat = scaled.view(rows * batch, 3 * size)
    for index in range(output_adjoints.shape[0] - 1, -1, -1):
        hidden = output_adjoints[index].unsqueeze(-2)
        hidden.add_(carried)
        torch.mul(hidden, hidden_factors[index], out=scaled)
        torch.mm(scaled_flat, weight_hh, out=carried_flat)
        carried.addcmul_(hidden, carry_factors[index])


@scripted
def _rnn_steps_back(output_adjoints: Tensor, slopes: list[Tensor], weight_hh: Tensor, carry: Tensor) -> None:
    """The output adjoints become, in place, each step's pre-activation adjoint."""
    rows, batch, size = carry.shape
    carried, carried_flat = carry.unsqueeze(-2), carry.view(rows * batch, size)
    for index in range(output_adjoints.shape[0] - 1, -1, -1):
        pre_activation = output_adjoints[index].unsqueeze(-2)
        pre_activation.add_(carried).mul_(slopes[index])
        torch.mm(pre_activation.view(rows * batch, size), weight_hh, out=carried_flat)


@scripted
def _lstm_steps_back(
    output_adjoints: Tensor,
    gate_factors: list[Tensor],
    cell_factors: list[Tensor],
    forget: list[Tensor],
    runs: list[tuple[int, int, int]],
    weight_hh: Tensor,
    carry_hidden: Tensor,
    carry_cell: Tensor,
) -> Tensor:
    """Each step writes its gate adjoints into the block's [steps, rows, batch, 4H], which it returns; the recurrent product reads them."""
    rows, batch, size = carry_hidden.shape
    steps = output_adjoints.shape[0]
    carried_hidden, carried_cell = carry_hidden.unsqueeze(-2), carry_cell.unsqueeze(-2)
    hidden_flat = carry_hidden.view(rows * batch, size)
    gates = output_adjoints.new_empty(steps, rows, batch, 4, size)
    cell = output_adjoints.new_empty(rows, batch, 1, size)
    for index in range(steps - 1, -1, -1):
        hidden = output_adjoints[index].unsqueeze(-2)
        hidden.add_(carried_hidden)
        torch.addcmul(carried_cell, hidden, cell_factors[index], out=cell)
        torch.mul(cell, forget[index], out=carried_cell)
        _gate_adjoints([cell, hidden], runs, gate_factors[index], gates[index])
        torch.mm(gates[index].view(rows * batch, 4 * size), weight_hh, out=hidden_flat)
    return gates.flatten(-2)


@scripted
def _nested_lstm_steps_back(
    output_adjoints: Tensor,
    gate_factors: list[list[Tensor]],
    cell_factors: list[list[Tensor]],
    retain_factors: list[list[Tensor]],
    level_runs: list[list[tuple[int, int, int]]],
    level_weights: list[Tensor],
    carry: list[Tensor],
) -> Tensor:
    """`_NestedLSTMLayer.folded_step`'s levels into buffers made once a block (per level, outermost first: the steps'
    factors, the gates' runs, the weight; `carry` holds h's adjoint, then each level's cell's): returns the outermost
    level's gate adjoints [steps, rows, batch, 4H]."""
    rows, batch, size = carry[0].shape
    depth, steps = len(level_weights), output_adjoints.shape[0]
    carried = [part.unsqueeze(-2) for part in carry]
    hidden_flat = carry[0].view(rows * batch, size)
    outer_gates = output_adjoints.new_empty(steps, rows, batch, 4, size)
    # An inner level's buffers, one step at a time: its gate adjoints, their product with its weight, its cell's adjoint.
    inner_gates = output_adjoints.new_empty(depth, rows, batch, 4, size)
    products = output_adjoints.new_empty(depth, rows, batch, 1, 2 * size)
    cells = output_adjoints.new_empty(depth, rows, batch, 1, size)
    for index in range(steps - 1, -1, -1):
        hidden = output_adjoints[index].unsqueeze(-2)
        hidden.add_(carried[0])
        # Each level's output adjoint is the adjoint of the cell of the level above it.
        level_outputs, adjoint = [hidden], hidden
        for d in range(depth):
            adjoint = torch.addcmul(carried[1 + d], adjoint, cell_factors[d][index], out=cells[d])
            level_outputs.append(adjoint)
        inner_input = inner_hidden = adjoint
        for d in range(depth - 1, -1, -1):
            torch.mul(inner_hidden, retain_factors[d][index], out=carried[1 + d])
            sources = [inner_input, level_outputs[d]] if d == depth - 1 else [inner_input, inner_hidden, level_outputs[d]]
            gates = outer_gates[index] if d == 0 else inner_gates[d]
            _gate_adjoints(sources, level_runs[d], gate_factors[d][index], gates)
            if d > 0:
                torch.mm(gates.view(rows * batch, 4 * size), level_weights[d], out=products[d].view(rows * batch, 2 * size))
                inner_input, inner_hidden = products[d][..., :size], products[d][..., size:]
            else:
                torch.mm(gates.view(rows * batch, 4 * size), level_weights[0], out=hidden_flat)
    return outer_gates.flatten(-2)


class _GRULayer(_SteppedLayer):
    """One recorded GRU layer (PyTorch's gate order r, z, n); its one source is the output's adjoint."""

    input_sources = (0, 0, 0)
    per_step_fields = ("input_factors", "hidden_factors", "carry_factor")

    def __init__(
        self, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor, inputs: Tensor, outputs: Tensor, initial: Tensor | None = None
    ) -> None:
        self.input_weight, self.weight_hh, self.outputs = weight_ih, weight_hh, outputs
        first = outputs.new_zeros(outputs[:, :1].shape) if initial is None else initial[:, None]
        previous = torch.cat([first, outputs[:, :-1]], dim=1)
        input_r, input_z, input_n = (inputs @ weight_ih.t() + bias_ih).chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = (previous @ weight_hh.t() + bias_hh).chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        candidate_factor = (1 - update) * (1 - candidate**2)
        update_factor = (previous - candidate) * update * (1 - update)
        reset_factor = candidate_factor * hidden_n * reset * (1 - reset)
        # Factors are kept as one contiguous [B, gate, H] block per step, indexed without a tensor op;
        # the carry's as [B, 1, H], to meet adjoints laid out [rows, batch, 1, H].
        self.input_factors = _per_step(torch.stack([reset_factor, update_factor, candidate_factor], dim=2))
        self.hidden_factors = _per_step(torch.stack([reset_factor, update_factor, candidate_factor * reset], dim=2))
        self.carry_factor = _per_step(update.unsqueeze(2))

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        return [self.weight_hh.new_zeros(rows, batch, self.weight_hh.shape[1])]

    def folded_step(self, step: int, active: int, output_adjoint: Tensor, carry: list[Tensor]) -> Tensor:
        hidden = carry[0][:active] + output_adjoint
        if folds(active, hidden.shape[1]):
            recurrence = _composite(self.hidden_factors[step], self.weight_hh, self.input_sources)
            recurrence.diagonal(dim1=1, dim2=2).add_(self.carry_factor[step][:, 0])
            _times(hidden, recurrence, out=carry[0][:active])
        else:  # a step before the block's later rows join
            to_hidden = (hidden.unsqueeze(-2) * self.hidden_factors[step]).reshape(active, -1) @ self.weight_hh
            torch.addcmul(to_hidden.view_as(hidden), hidden, self.carry_factor[step], out=carry[0][:active])
        return hidden

    def plain_block(self, start: int, end: int, output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        """The output adjoints become, in place, each step's hidden adjoint; the gate adjoints follow for the whole block at once."""
        _gru_steps_back(output_adjoints, list(self.hidden_factors[start:end]), list(self.carry_factor[start:end]), self.weight_hh, carry[0])
        factors = torch.stack(self.input_factors[start:end])  # [steps, B, gates, H]
        return (output_adjoints.unsqueeze(-2) * factors.unsqueeze(1)).flatten(-2)


class _RNNLayer(_PlainInputs, _SteppedLayer):
    """One recorded Elman RNN layer, h_t = f(W x_t + b + U h_{t-1} + b') with f tanh or ReLU.

    Its one gate is its pre-activation: nothing to fold, so every block is a plain one.
    """

    input_sources = (0,)
    per_step_fields = ("slopes",)

    def __init__(self, weight_ih: Tensor, weight_hh: Tensor, inputs: Tensor, outputs: Tensor, nonlinearity: str) -> None:
        self.input_weight, self.weight_hh, self.outputs = weight_ih, weight_hh, outputs
        # f' from the output alone: 1 - h^2 for tanh, 1 where h > 0 for ReLU.
        slopes = 1 - outputs**2 if nonlinearity == "tanh" else (outputs > 0).to(outputs.dtype)
        self.slopes = _per_step(slopes.unsqueeze(2))

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        return [self.weight_hh.new_zeros(rows, batch, self.weight_hh.shape[1])]

    def backward_block(self, start: int, end: int, active_rows: list[int], output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        return self.plain_block(start, end, output_adjoints, [part[: output_adjoints.shape[1]] for part in carry])

    def plain_block(self, start: int, end: int, output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        """The output adjoints become, in place, each step's pre-activation adjoint: the gate adjoints."""
        _rnn_steps_back(output_adjoints, list(self.slopes[start:end]), self.weight_hh, carry[0])
        return output_adjoints


# Which source each gate's adjoint takes: an LSTM's i, f, g take the cell's adjoint and o the output's;
# an outer Nested LSTM level's i, j take the inner level's input adjoint, f its hidden one, o the output's.
LSTM_SOURCES = (0, 0, 0, 1)
NESTED_SOURCES = (0, 0, 1, 2)


def _folded_gate_step(sources: list[Tensor], factors: Tensor, weight: Tensor, gate_sources: tuple[int, ...], out: Tensor) -> Tensor:
    """The gate adjoints of `sources` [rows, batch, H] times `weight` into `out`, folded when the rows are many; returns the sources joined."""
    active, batch = sources[0].shape[:2]
    joined = torch.cat(sources, dim=-1)
    if folds(active, batch):
        _times(joined, _composite(factors, weight, gate_sources), out=out)
    else:  # a step before the block's later rows join
        gates = (torch.stack([sources[source] for source in gate_sources], dim=-2) * factors).view(active * batch, -1)
        torch.mm(gates, weight, out=out.view(active * batch, -1))
    return joined


@scripted
def _lstm_cells(cell_inputs: Tensor, forget_gate: Tensor, first_cell: Tensor) -> list[Tensor]:
    """An LSTM's cells [B, H] from `first_cell` on, one after each step: c = f * c + i * g, with `forget_gate` f
    and `cell_inputs` i * g [B, T, H]."""
    cells = [first_cell]
    for step in range(cell_inputs.shape[1]):
        cells.append(torch.addcmul(cell_inputs[:, step], forget_gate[:, step], cells[-1]))
    return cells


class _LSTMLayer(_SteppedLayer):
    """One recorded LSTM layer (PyTorch's gate order i, f, g, o); its sources are the cell's and the output's adjoints."""

    input_sources = LSTM_SOURCES
    runs = _source_runs(LSTM_SOURCES)
    per_step_fields = ("input_factors", "cell_factor", "forget", "cells")

    def __init__(
        self,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
        inputs: Tensor,
        outputs: Tensor,
        initial: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.input_weight, self.weight_hh, self.outputs = weight_ih, weight_hh, outputs
        first_hidden, first_cell = (outputs.new_zeros(outputs[:, 0].shape),) * 2 if initial is None else initial
        previous = torch.cat([first_hidden[:, None], outputs[:, :-1]], dim=1)
        gates = inputs @ weight_ih.t() + bias_ih + previous @ weight_hh.t() + bias_hh
        input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)
        input_gate, forget_gate, output_gate = input_gate.sigmoid(), forget_gate.sigmoid(), output_gate.sigmoid()
        candidate = candidate.tanh()
        cell_inputs = input_gate * candidate
        cells = _lstm_cells(cell_inputs, forget_gate, first_cell)
        all_cells = torch.stack(cells, dim=1)  # [B, T + 1, H]: the zero state, then each step's cell
        previous_cells, tanh_cells = all_cells[:, :-1], torch.tanh(all_cells[:, 1:])
        factors = [
            candidate * input_gate * (1 - input_gate),
            previous_cells * forget_gate * (1 - forget_gate),
            input_gate * (1 - candidate**2),
            tanh_cells * output_gate * (1 - output_gate),
        ]
        stacked = torch.stack(factors, dim=2).transpose(0, 1).contiguous()  # [T, B, gates, H]
        self.input_factors = stacked.unbind(0)
        # [B, 1, H] per step, to meet adjoints laid out [rows, batch, 1, H].
        self.cell_factor = _per_step((output_gate * (1 - tanh_cells**2)).unsqueeze(2))
        self.forget = _per_step(forget_gate.unsqueeze(2))
        self.cells = tuple(cells[1:])

    def state_after(self, step: int) -> State:
        return self.outputs[:, step], self.cells[step]

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        size = self.weight_hh.shape[1]
        return [self.weight_hh.new_zeros(rows, batch, size), self.weight_hh.new_zeros(rows, batch, size)]

    def folded_step(self, step: int, active: int, output_adjoint: Tensor, carry: list[Tensor]) -> Tensor:
        hidden = carry[0][:active] + output_adjoint
        cell = torch.addcmul(carry[1][:active], hidden, self.cell_factor[step])
        torch.mul(cell, self.forget[step], out=carry[1][:active])
        return _folded_gate_step([cell, hidden], self.input_factors[step], self.weight_hh, self.input_sources, carry[0][:active])

    def plain_block(self, start: int, end: int, output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        steps = slice(start, end)
        return _lstm_steps_back(
            output_adjoints, list(self.input_factors[steps]), list(self.cell_factor[steps]), list(self.forget[steps]), self.runs, self.weight_hh, *carry
        )


class _NestedLSTMLayer(_SteppedLayer):
    """One recorded Nested LSTM layer; mirrors models.units.nested_lstm_step level by level.

    Its sources are those of the outermost level: the inner level's input and hidden
    adjoints and the output's (the innermost level's input and hidden adjoints are one).
    """

    per_step_fields = ("gate_factors", "retain_factors", "cell_factors", "cells")

    def __init__(self, layer: NestedLSTMLayer, inputs: Tensor, initial: tuple[Tensor, Tensor] | None = None) -> None:
        outer = layer.levels[0]
        self.input_weight = outer.weight[:, : outer.input_size]
        self.level_weights, biases = layer.step_parameters()
        depth = len(self.level_weights)
        batch = inputs.shape[0]
        input_gates = F.linear(inputs, self.input_weight, outer.bias).transpose(0, 1)  # [T, B, 4H]
        size = input_gates.shape[-1] // 4
        h, cells = (inputs.new_zeros(batch, size), inputs.new_zeros(depth, batch, size)) if initial is None else initial
        # Only the state is kept per step: every factor is then computed for all steps at once.
        hidden_states, cell_states = nested_lstm_states(input_gates, h, cells, self.level_weights, biases)  # [T + 1, B, H], [T + 1, depth, B, H]
        previous_cells, new_cells = cell_states[:-1], cell_states[1:]
        self.outputs = hidden_states[1:].transpose(0, 1)
        self.cells = new_cells.unbind(0)
        self.level_sources = [NESTED_SOURCES] * (depth - 1) + [LSTM_SOURCES]
        self.level_runs = [_source_runs(sources) for sources in self.level_sources]
        self.input_sources = self.level_sources[0]
        self.gate_factors: list[tuple[Tensor, ...]] = []
        self.cell_factors, self.retain_factors = [], []
        gates = input_gates + hidden_states[:-1] @ self.level_weights[0].t()
        for d in range(depth):
            i, j, f, o = gates.chunk(4, dim=-1)
            i, f, o = i.sigmoid(), torch.sigmoid(f + 1.0), o.sigmoid()
            squashed = j if d == 0 else torch.tanh(j)
            squash_slope = torch.ones_like(j) if d == 0 else 1 - squashed**2
            tanh_cell = torch.tanh(new_cells[:, d])
            # Gates i, j, f, o: one factor each, applied to the cell input's, the retained cell's and the output's adjoint.
            stacked = torch.stack([squashed * i * (1 - i), i * squash_slope, previous_cells[:, d] * f * (1 - f), tanh_cell * o * (1 - o)], dim=2)
            self.gate_factors.append(stacked.unbind(0))
            # [B, 1, H] per step, to meet adjoints laid out [rows, batch, 1, H].
            self.retain_factors.append(f.unsqueeze(2).unbind(0))
            self.cell_factors.append((o * (1 - tanh_cell**2)).unsqueeze(2).unbind(0))
            inner_hidden, inner_input = f * previous_cells[:, d], i * squashed
            if d + 1 < depth:
                gates = torch.cat([inner_input, inner_hidden], dim=-1) @ self.level_weights[d + 1].t() + biases[d + 1]
        self.input_factors = self.gate_factors[0]

    def state_after(self, step: int) -> State:
        return self.outputs[:, step], self.cells[step]

    def joined(self, prefix: Self, start: int) -> Self:
        layer = super().joined(prefix, start)
        layer.input_factors = layer.gate_factors[0]
        return layer

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        size = self.input_weight.shape[0] // 4
        return [self.outputs.new_zeros(rows, batch, size) for _ in range(1 + len(self.level_weights))]

    def folded_step(self, step: int, active: int, output_adjoint: Tensor, carry: list[Tensor]) -> Tensor:
        depth = len(self.level_weights)
        adjoint = carry[0][:active] + output_adjoint
        # The adjoint reaching each level's output: h for the outermost, the outer level's cell for the next.
        output_adjoints = []
        for d in range(depth):
            output_adjoints.append(adjoint)
            adjoint = torch.addcmul(carry[1 + d][:active], adjoint, self.cell_factors[d][step])
        inner_input = inner_hidden = adjoint
        for d in reversed(range(depth)):
            sources = [inner_input, output_adjoints[d]] if d == depth - 1 else [inner_input, inner_hidden, output_adjoints[d]]
            torch.mul(inner_hidden, self.retain_factors[d][step], out=carry[1 + d][:active])
            if d > 0:
                products = adjoint.new_empty(active, adjoint.shape[1], self.level_weights[d].shape[1])
                _folded_gate_step(sources, self.gate_factors[d][step], self.level_weights[d], self.level_sources[d], products)
                inner_input, inner_hidden = products.chunk(2, dim=-1)
        return _folded_gate_step(sources, self.gate_factors[0][step], self.level_weights[0], self.level_sources[0], carry[0][:active])

    def plain_block(self, start: int, end: int, output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        steps = slice(start, end)
        gate_factors, cell_factors, retain_factors = (
            [list(level[steps]) for level in factors] for factors in (self.gate_factors, self.cell_factors, self.retain_factors)
        )
        return _nested_lstm_steps_back(output_adjoints, gate_factors, cell_factors, retain_factors, self.level_runs, self.level_weights, carry)


def _state_tensors(state: State) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


@contextmanager
def _without_onednn() -> Iterator[None]:
    """oneDNN's LSTM kernel has no batching rule for its backward, so vmap cannot use it.

    The server turns oneDNN off for good at start-up (see app.pool), so this touches
    nothing there; elsewhere it is off only for the duration.
    """
    if not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # a settable flag that torch types as its descriptor
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True  # type: ignore[assignment]


class _AutogradUnit(_PlainInputs):
    """Any unit as one recorded layer, swept by vector-Jacobian products.

    A block replays the unit from the state before it under torch.func.vjp and vmaps the
    pullback over the rows, so one backward pass serves every row active in the block.
    The unit runs over the text in chunks of TIME_BLOCK steps counted back from its end,
    where the sweep's blocks begin, keeping the state before each chunk: a unit whose state
    is large (a matrix memory) costs a few states, not one per step, and a unit that runs
    a chunk in parallel records at that speed. A block that begins elsewhere (with very
    many rows) replays the unit from the nearest kept state before it.
    """

    input_weight: Tensor | None = None
    outputs: Tensor  # [B, T, H]

    def __init__(self, unit: nn.Module, inputs: Tensor, prefix: Self | None = None, shared: int = 0) -> None:
        """Run `unit` over `inputs` [B, T, H]; with `prefix`, the recording of a text whose first `shared` steps are
        these inputs' too, its outputs and kept states there are taken as they are and only the rest is run."""
        self.unit, self.inputs = unit, inputs
        self.adjoint_width = inputs.shape[-1]
        length = inputs.shape[1]
        starts = {0, *range(length % TIME_BLOCK, length, TIME_BLOCK)}
        outputs: list[Tensor] = []
        state: State | None = None
        self.kept_states: dict[int, State | None] = {}  # chunk start -> the state before it
        if prefix is not None and shared > 0:
            self.kept_states = {start: kept for start, kept in prefix.kept_states.items() if start < shared}
            outputs, state = [prefix.outputs[:, :shared]], prefix.state_before(shared)
            starts = {shared, *(start for start in starts if start > shared)}
        ordered = sorted(starts)
        for start, end in zip(ordered, ordered[1:] + [length]):
            self.kept_states[start] = state
            output, state = unit(inputs[:, start:end], state)
            outputs.append(output)
        assert state is not None, "a recording holds at least one step"
        self.final_state: State = state
        self.outputs = torch.cat(outputs, dim=1)

    def block_start(self, block_end: int, active_rows: list[int], batch: int) -> int:
        most_steps = max(1, AUTOGRAD_BLOCK_FLOATS // (active_rows[block_end - 1] * batch * self.adjoint_width))
        start = max(0, block_end - min(TIME_BLOCK, most_steps))
        # Few rows: go on back while the block stays within AUTOGRAD_BLOCK_ROW_STEPS of rows joined so far times steps.
        while start > 0 and block_end - start < most_steps and active_rows[start - 1] * batch * (block_end - start + 1) <= AUTOGRAD_BLOCK_ROW_STEPS:
            start -= 1
        return start

    def state_before(self, step: int) -> State | None:
        start = max(kept for kept in self.kept_states if kept <= step)
        state = self.kept_states[start]
        return state if start == step else self.unit(self.inputs[:, start:step], state)[1]

    def adjoint_buffers(self, rows: int, batch: int) -> list[Tensor]:
        return [part.new_zeros(rows, *part.shape) for part in _state_tensors(self.final_state)]

    def backward_block(self, start: int, end: int, active_rows: list[int], output_adjoints: Tensor, carry: list[Tensor]) -> Tensor:
        rows = output_adjoints.shape[1]
        carried = [part[:rows] for part in carry]
        state_adjoints = carried[0] if isinstance(self.final_state, Tensor) else tuple(carried)
        primals = (self.inputs[:, start:end],) if start == 0 else (self.inputs[:, start:end], self.state_before(start))
        cotangents = (output_adjoints.permute(1, 2, 0, 3), state_adjoints)
        # Autograd is needed here alone; the parameters' own gradients are not.
        with torch.inference_mode(False), _without_onednn():
            if rows == 1:  # a hover, a counterfactual
                adjoints = _with_batch(_one_row_pullback(self.unit, primals, _without_batch(cotangents)))
            else:
                with torch.no_grad():
                    adjoints = vmap(vjp(lambda inputs, state=None: self.unit(inputs, state), *primals)[1])(cotangents)
        if start > 0:
            for part, adjoint in zip(carry, _state_tensors(adjoints[1])):
                part[:rows] = adjoint
        return adjoints[0].permute(2, 0, 1, 3)


def _one_row_pullback(unit: nn.Module, primals: tuple[Any, ...], cotangents: tuple[Tensor, State]) -> tuple[Any, ...]:
    """What vjp's pullback of `unit` at `primals` (inputs, and the state before them if any) gives for one row's
    `cotangents` (of the outputs and of the state after), by plain autograd: without vmap to batch rows, functorch's
    wrapping of every operation only costs (a tenth of the mLSTM's row at T = 200: 19.2 ms against 17.4 ms)."""
    inputs = primals[0].clone().requires_grad_()  # the recording's tensors are inference tensors: copies take gradients
    state = None if len(primals) == 1 else _state_like(primals[1], [part.clone().requires_grad_() for part in _state_tensors(primals[1])])
    with torch.enable_grad():
        outputs, new_state = unit(inputs, state)
    # A state tensor outside the graph (a unit may detach one, such as a stabiliser) passes nothing back.
    reached = [
        (target, cotangent)
        for target, cotangent in zip([outputs, *_state_tensors(new_state)], [cotangents[0], *_state_tensors(cotangents[1])])
        if target.requires_grad
    ]
    sources = [inputs, *([] if state is None else _state_tensors(state))]
    found = torch.autograd.grad([target for target, _ in reached], sources, [cotangent for _, cotangent in reached], allow_unused=True)
    gradients = [torch.zeros_like(source) if gradient is None else gradient for source, gradient in zip(sources, found)]
    return (gradients[0],) if state is None else (gradients[0], _state_like(state, gradients[1:]))


def _state_like(state: State, parts: list[Tensor]) -> State:
    """`parts` shaped as `state` is: its one tensor, or a tuple of them."""
    return parts[0] if isinstance(state, Tensor) else tuple(parts)


def _without_batch(tensors: Any) -> Any:
    """A tensor or nested tuple of tensors, each without its leading axis of one."""
    return tensors[0] if isinstance(tensors, Tensor) else tuple(_without_batch(part) for part in tensors)


def _with_batch(tensors: Any) -> Any:
    """A tensor or nested tuple of tensors, each with a leading axis of one."""
    return tensors[None] if isinstance(tensors, Tensor) else tuple(_with_batch(part) for part in tensors)


def _layer_parameters(rnn: nn.RNNBase, index: int) -> list[Tensor]:
    return [getattr(rnn, f"{name}_l{index}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _has_hand_written_sweep(rnn: nn.Module) -> bool:
    """Whether `rnn` is exactly a module type the sweeps above are written for (a subclass may compute anything)."""
    if type(rnn) is NestedLSTM:
        return True
    if type(rnn) in (nn.GRU, nn.LSTM, nn.RNN):
        return bool(rnn.bias) and not rnn.bidirectional and not rnn.proj_size
    return False


def record_layers(
    net: AutocompleteNet, inputs: Tensor, force_autograd: bool = False, states: list[State] | None = None
) -> list[RecordedLayer]:
    """Run the unit on embedding outputs `inputs` [B, T, H] and record every layer, bottom first.

    A unit without a hand-written sweep (or any unit, with `force_autograd`) is recorded
    as one layer that the sweep differentiates with autograd. `states`, one per layer
    (hand-written sweeps only), are the layers' states before the first step; by default zero.
    """
    rnn = net.rnn
    if force_autograd or not _has_hand_written_sweep(rnn):
        assert states is None, "a recording that starts from a state has hand-written sweeps"
        return [_AutogradUnit(rnn, inputs)]
    layers: list[RecordedLayer] = []
    if isinstance(rnn, NestedLSTM):
        for index, layer in enumerate(cast(list[NestedLSTMLayer], list(rnn.layers))):
            initial = None if states is None else cast(tuple[Tensor, Tensor], states[index])
            layers.append(_NestedLSTMLayer(layer, inputs, initial))
            inputs = layers[-1].outputs
        return layers
    rnn = cast(nn.RNNBase, rnn)
    # One native single-layer call per layer, as the multi-layer call would hide the lower layers' outputs.
    # The single-layer module only lends its forward to functional_call: on the meta device it costs no memory.
    options = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    module_type: Callable[..., nn.RNNBase] = type(rnn)  # nn.GRU, nn.LSTM or nn.RNN: (input, hidden, layers) first
    single = module_type(rnn.input_size, rnn.hidden_size, 1, batch_first=True, device="meta", **options)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    for index in range(rnn.num_layers):
        parameters = _layer_parameters(rnn, index)
        state = None if states is None else states[index]
        # The native modules take a state per layer: [layers = 1, B, H], a pair of them for the LSTM.
        native_state = None if state is None else tuple(part[None] for part in state) if isinstance(state, tuple) else state[None]
        outputs = functional_call(single, dict(zip(names, parameters)), (inputs, native_state))[0]
        weight_ih, weight_hh, bias_ih, bias_hh = parameters
        if isinstance(rnn, nn.RNN):
            layers.append(_RNNLayer(weight_ih, weight_hh, inputs, outputs, rnn.nonlinearity))
        elif isinstance(rnn, nn.GRU):
            layers.append(_GRULayer(weight_ih, weight_hh, bias_ih, bias_hh, inputs, outputs, cast(Tensor | None, state)))
        else:
            layers.append(_LSTMLayer(weight_ih, weight_hh, bias_ih, bias_hh, inputs, outputs, cast(tuple[Tensor, Tensor] | None, state)))
        inputs = outputs
    return layers


class Attribution:
    """One method: what each input gradient g[t] is dotted with, and how the dots make row entries.

    The sweep never forms g itself: it hands over the bottom layer and its sources, whose
    gate adjoints `a` [steps, rows, batch, gates] give g = a W for that layer's input
    weight W. So a method names its `targets` [H, K] once, the sweep multiplies them by W
    once (`projected`, [gates, K]), and `entries` has the layer dot the adjoints with those.
    """

    def targets(self, net: AutocompleteNet, recording: Recording) -> Tensor:
        raise NotImplementedError

    def entries(self, layer: RecordedLayer, sources: Tensor, projected: Tensor, start: int, end: int) -> Tensor:
        """The rows' entries [steps, rows, batch] for steps `start` to `end` - 1, one per recorded batch element."""
        raise NotImplementedError


class Gradient(Attribution):
    """The paper's measure: sum over the input symbols v of (g[t] . E_v)^2."""

    def targets(self, net: AutocompleteNet, recording: Recording) -> Tensor:
        return net.embedding.weight.t()  # every step meets every symbol's embedding

    def entries(self, layer: RecordedLayer, sources: Tensor, projected: Tensor, start: int, end: int) -> Tensor:
        return layer.gate_products(sources, start, projected).square().sum(dim=-1)


class GradientXInput(Attribution):
    """|g[t] . e[t]|."""

    def targets(self, net: AutocompleteNet, recording: Recording) -> Tensor:
        return recording.embeddings[0].t()  # step t meets its own input, column t

    def entries(self, layer: RecordedLayer, sources: Tensor, projected: Tensor, start: int, end: int) -> Tensor:
        return layer.gate_dots(sources, start, projected[:, start:end]).abs()


class IntegratedGradients(Attribution):
    """(e[t] - b[t]) . g_k[t] for each path node k the recording's batch holds; the nodes' weights sum them."""

    def targets(self, net: AutocompleteNet, recording: Recording) -> Tensor:
        assert recording.path is not None, "checked by connectivity_rows"
        return (recording.embeddings - recording.path.baseline)[0].t()

    def entries(self, layer: RecordedLayer, sources: Tensor, projected: Tensor, start: int, end: int) -> Tensor:
        return layer.gate_dots(sources, start, projected[:, start:end])


def space_baseline(net: AutocompleteNet, chars: Tensor) -> Tensor:
    """The embeddings [1, T, H] of `chars` [T] with every letter replaced by a space: the baseline of integrated gradients."""
    return net.embedding(torch.full_like(chars, SPACE)[None])


def path_scores(net: AutocompleteNet, embeddings: Tensor, baseline: Tensor, alphas: Tensor, positions: list[int], word_ids: list[int]) -> Tensor:
    """The logits [len(alphas), rows] (without the bias) of each row's word at its position, at the inputs baseline + alpha (e - baseline)."""
    length = max(positions) + 1
    start, end = baseline[:, :length], embeddings[:, :length]
    outputs = net.rnn(start + alphas.to(start.dtype)[:, None, None] * (end - start))[0]  # [K, T, H]
    return (outputs[:, positions] * net.output.weight[word_ids]).sum(dim=-1)


ATTRIBUTIONS: dict[str, Attribution] = {
    "gradient": Gradient(),
    "gradient_x_input": GradientXInput(),
    "integrated_gradients": IntegratedGradients(),
}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def midpoints(steps: int) -> tuple[Tensor, Tensor]:
    """The midpoints of `steps` equal slices of [0, 1] and the slices' widths: the midpoint rule's nodes and weights."""
    return (torch.arange(steps, dtype=torch.float32) + 0.5) / steps, torch.full((steps,), 1 / steps)


@torch.inference_mode()
def record(
    net: AutocompleteNet, chars: Tensor, method: Method, steps: int = 32, force_autograd: bool = False, nodes: tuple[Tensor, Tensor] | None = None
) -> Recording:
    """The forward pass over character ids `chars` [T] that `method`'s reverse sweeps need.

    `gradient` and `gradient_x_input` share one recording; `integrated_gradients`
    records the inputs at every node of its path at once: `nodes` (alphas and
    weights), by default the midpoints of `steps` equal slices. `force_autograd`
    records for the autograd sweep even where a hand-written one exists (to compare them).
    """
    _check_method(method)
    embeddings = net.embedding(chars[None])
    if method != "integrated_gradients":
        layers = record_layers(net, embeddings, force_autograd)
        return Recording(embeddings=embeddings, layers=layers, outputs=layers[-1].outputs[0], path=None)
    alphas, weights = nodes if nodes is not None else midpoints(steps)
    path = IntegrationPath(baseline=space_baseline(net, chars), alphas=alphas, weights=weights)
    inputs = path.baseline + alphas.to(embeddings.dtype)[:, None, None] * (embeddings - path.baseline)
    layers = record_layers(net, inputs, force_autograd)
    return Recording(embeddings=embeddings, layers=layers, outputs=net.rnn(embeddings)[0][0], path=path)


@torch.inference_mode()
def record_continuing(net: AutocompleteNet, recording: Recording, start: int, chars: Tensor) -> Recording:
    """The plain-gradient recording of character ids `chars` [T], whose first `start` characters are those of
    `recording`'s text (a plain-gradient recording too): its first `start` steps are reused and only the rest is run.

    This is a counterfactual's edited text: a word replaced leaves the text before it, and so the
    recording of it, as it was. A unit without a hand-written sweep goes on from the state it kept
    before the chunk that holds `start`.
    """
    if recording.path is not None:
        raise ValueError("a recording at integrated gradients' path nodes is not continued; record the text afresh")
    if not 0 < start <= recording.embeddings.shape[1] or start >= chars.shape[0]:
        return record(net, chars, "gradient")
    suffix_embeddings = net.embedding(chars[None, start:])
    embeddings = torch.cat([recording.embeddings[:, :start], suffix_embeddings], dim=1)
    if isinstance(recording.layers[0], _AutogradUnit):
        layer = _AutogradUnit(net.rnn, embeddings, recording.layers[0], start)
        return Recording(embeddings=embeddings, layers=[layer], outputs=layer.outputs[0], path=None)
    prefixes = cast(list[_SteppedLayer], recording.layers)
    states = [layer.state_after(start - 1) for layer in prefixes]
    suffixes = cast(list[_SteppedLayer], record_layers(net, suffix_embeddings, states=states))
    layers = [suffix.joined(prefix, start) for prefix, suffix in zip(prefixes, suffixes)]
    return Recording(embeddings=embeddings, layers=cast(list[RecordedLayer], layers), outputs=layers[-1].outputs[0], path=None)


def round_significant(values: list[float], digits: int) -> list[float]:
    """Each value rounded to `digits` significant decimal digits: the double nearest that short decimal, so JSON prints it short."""
    return list(map(float, map(f"{{:.{digits}g}}".format, values)))  # a third faster than an f-string per value


def _active_rows(sorted_positions: list[int]) -> list[int]:
    """For each step up to the latest position: how many rows (sorted latest first) have reached it."""
    counts = [0] * (sorted_positions[0] + 2)
    for position in sorted_positions:
        counts[position] += 1
    for step in range(len(counts) - 2, -1, -1):
        counts[step] += counts[step + 1]
    return counts


def _sweep(layers: list[RecordedLayer], sorted_positions: list[int], cotangents: Tensor, batch: int, attribution: Attribution, projected: Tensor, width: int) -> Tensor:
    """Entries [rows, width, batch] of rows sorted latest position first, whose output adjoints are `cotangents` [rows, H]."""
    active_rows = _active_rows(sorted_positions)  # one past the latest position too: no row is active there
    positions = torch.tensor(sorted_positions)
    buffers = [layer.adjoint_buffers(len(sorted_positions), batch) for layer in layers]
    values = cotangents.new_zeros(len(sorted_positions), width, batch)
    block_end = sorted_positions[0] + 1
    while block_end > 0:
        block_start = max(layer.block_start(block_end, active_rows, batch) for layer in layers)
        rows = active_rows[block_start]  # every row active anywhere in the block
        # Rows joining in this block start at their own position, with their word's output weights.
        adjoints = cotangents.new_zeros(block_end - block_start, rows, batch, cotangents.shape[1])
        joining = slice(active_rows[block_end], rows)
        adjoints[positions[joining] - block_start, torch.arange(joining.start, joining.stop)] = cotangents[joining, None, :]
        for index in range(len(layers) - 1, -1, -1):
            layer = layers[index]
            sources = layer.backward_block(block_start, block_end, active_rows, adjoints, buffers[index])
            if index > 0:
                assert layer.input_weight is not None, "a unit recorded as one layer has no layer below"
                adjoints = layer.gate_products(sources, block_start, layer.input_weight)
        values[:rows, block_start:block_end] = attribution.entries(layers[0], sources, projected, block_start, block_end).transpose(0, 1)
        block_end = block_start
    return values


@torch.inference_mode()
def connectivity_rows(
    net: AutocompleteNet, recording: Recording, positions: list[int], word_ids: list[int], method: Method, width: int | None = None
) -> ConnectivityRows:
    """Connectivity rows [len(positions), width] of the recorded text, each for its position and word id.

    `width` defaults to the recorded length; a wider row is zero past the
    recording, as every entry after the row's position is. Integrated gradients
    sum the recorded nodes with their weights (see `integrated_gradients` for the
    adaptive path).
    """
    node_values = _node_rows(net, recording, positions, word_ids, method, width)
    if recording.path is None:
        return ConnectivityRows(values=node_values[..., 0])
    values = node_values @ recording.path.weights
    scores = path_scores(net, recording.embeddings, recording.path.baseline, torch.tensor([0.0, 1.0]), positions, word_ids)
    changes = scores[1] - scores[0]
    return ConnectivityRows(
        values=values, completeness_errors=(values.sum(dim=1) - changes).abs(), score_changes=changes, integration_steps=len(recording.path.alphas)
    )



def autograd_rows(net: AutocompleteNet, chars: Tensor, positions: list[int], word_ids: list[int], method: Method = "gradient") -> Tensor:
    """The rows [len(positions), T] of `gradient` or `gradient_x_input` computed the plain way, to check a sweep against:
    the whole text through the unit once per row and one autograd backward pass from that row's word score."""
    if method not in ("gradient", "gradient_x_input"):
        raise ValueError(f"autograd_rows computes 'gradient' and 'gradient_x_input', not {method!r}")
    embeddings = net.embedding(chars[None]).detach()
    rows = []
    for position, word_id in zip(positions, word_ids):
        inputs = embeddings.clone().requires_grad_()
        logit = net.logits(net.rnn(inputs)[0])[0, position, word_id]
        gradient = torch.autograd.grad(logit, inputs)[0][0]
        if method == "gradient":  # the squared norm over the one-hot inputs: the gradient through each row of the embedding
            rows.append((gradient @ net.embedding.weight.t()).square().sum(dim=-1))
        else:
            rows.append((gradient * embeddings[0]).sum(dim=-1).abs())
    return torch.stack(rows).detach()

def _node_rows(net: AutocompleteNet, recording: Recording, positions: list[int], word_ids: list[int], method: Method, width: int | None) -> Tensor:
    """Rows [len(positions), width, batch] in request order, one entry per recorded batch element (path node)."""
    _check_method(method)
    if (method == "integrated_gradients") != (recording.path is not None):
        made_for = "integrated gradients" if recording.path is not None else "plain gradients"
        raise ValueError(f"this recording was made for {made_for}, not for {method}")
    embeddings, layers = recording.embeddings, recording.layers
    if max(positions) >= embeddings.shape[1]:
        raise ValueError(f"position {max(positions)} is past the {embeddings.shape[1]} recorded characters")
    attribution = ATTRIBUTIONS[method]
    targets = attribution.targets(net, recording)
    bottom_weight = layers[0].input_weight
    projected = targets if bottom_weight is None else bottom_weight @ targets

    order = sorted(range(len(positions)), key=lambda row: -positions[row])
    cotangents = net.output.weight[[word_ids[row] for row in order]]  # [R, H]
    batch = len(recording.path.alphas) if recording.path is not None else 1
    width = embeddings.shape[1] if width is None else width
    values = _sweep(layers, [positions[row] for row in order], cotangents, batch, attribution, projected, width)
    unsorted = torch.empty_like(values)
    unsorted[order] = values
    return unsorted


@torch.inference_mode()
def integrated_gradients(
    net: AutocompleteNet,
    chars: Tensor,
    positions: list[int],
    word_ids: list[int],
    steps: int,
    max_steps: int,
    tolerance: float = COMPLETENESS_TOLERANCE,
    force_autograd: bool = False,
) -> ConnectivityRows:
    """Integrated-gradients rows of character ids `chars` [T], with nodes placed where the integrand needs them.

    The path starts as `steps` equal slices of [0, 1], one node at each midpoint.
    The score at every slice's ends comes from a forward pass, so each slice knows
    how far its midpoint rule (width x the node's path derivative, the sum of its
    row) misses its own score change. While some row's completeness error exceeds
    `tolerance` of its score change, the slices that miss by more than their share
    of that are cut in three (the middle third keeps its node; the outer two get
    new ones), worst first, as long as the total stays within `max_steps` nodes.
    A slice whose ends are float32 neighbours (within two steps) is not cut: its
    inner nodes would be inputs it already has. Where the score jumps within such a
    slice (the vanilla RNN's does, by 0.3 at one point of a path: its state is that
    sensitive), the jump is reported and the cuts stop once only such slices miss.
    """
    length = max(positions) + 1
    chars = chars[:length]
    embeddings = net.embedding(chars[None])
    baseline = space_baseline(net, chars)
    # The path's bookkeeping is in float64: slices around a sharp turn get narrower than float32 resolves near 1.
    edges = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    scores = path_scores(net, embeddings, baseline, edges, positions, word_ids)  # [slices + 1, rows]
    node_values = _path_node_rows(net, chars, positions, word_ids, (edges[:-1] + edges[1:]) / 2, force_autograd).double()  # [rows, T, slices]
    while True:
        widths = edges.diff()
        values = node_values @ widths
        changes = scores[-1] - scores[0]
        errors = (values.sum(dim=1) - changes).abs()
        allowed = tolerance * changes.abs()
        room = (max_steps - len(widths)) // 2
        # How far each slice's midpoint rule misses its own score change (signed, [rows, slices]).
        slice_misses = node_values.sum(dim=1) * widths - scores.diff(dim=0).t()
        lows, highs = edges[:-1].float(), edges[1:].float()
        uncuttable = torch.nextafter(torch.nextafter(lows, highs), highs) >= highs
        # The misses in allowances of the row, for the worst row still over its allowance, in the slices that can be cut:
        # none once every row is within its allowance, or once what cuts could still mend is half an allowance at most.
        over = errors > allowed
        misses = slice_misses.abs()[over] / allowed[over, None].clamp_min(torch.finfo(allowed.dtype).tiny)
        misses = misses.amax(dim=0).masked_fill(uncuttable, 0) if bool(over.any()) else widths.new_zeros(len(widths))
        if room < 1 or float(misses.sum()) <= 0.5:
            return ConnectivityRows(
                values=values.float(),
                completeness_errors=errors.float(),
                score_changes=changes,
                integration_steps=len(widths),
                unresolved_jumps=slice_misses[:, uncuttable].sum(dim=1).abs().float(),
            )
        # The slices cut are the fewest, worst first, that leave the others missing by half an allowance at most in all,
        # but none that misses by less than CUT_SHARE of the worst: a cut shrinks a smooth slice's miss ninefold, while a
        # sharp turn (a jump of the score over a millionth of the path) needs many cuts in a row, which the budget must
        # not have spent on slices that hardly miss.
        order = misses.argsort(descending=True)
        left_after = misses.sum() - misses[order].cumsum(dim=0)
        cuts = min(room, int((left_after > 0.5).sum()) + 1, int((misses >= CUT_SHARE * misses.max()).sum()))
        worst = order[:cuts].sort().values
        edges, node_values, scores = _cut_in_three(net, chars, embeddings, baseline, positions, word_ids, edges, node_values, scores, worst, force_autograd)


def _cut_in_three(
    net: AutocompleteNet,
    chars: Tensor,
    embeddings: Tensor,
    baseline: Tensor,
    positions: list[int],
    word_ids: list[int],
    edges: Tensor,
    node_values: Tensor,
    scores: Tensor,
    slices: Tensor,
    force_autograd: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The path with each of `slices` (sorted indices) cut into thirds: its new edges, node rows and edge scores."""
    starts, widths = edges[slices], edges[slices + 1] - edges[slices]
    new_edges = torch.stack([starts + widths / 3, starts + 2 * widths / 3], dim=1).flatten()
    new_nodes = torch.stack([starts + widths / 6, starts + 5 * widths / 6], dim=1).flatten()
    new_scores = path_scores(net, embeddings, baseline, new_edges, positions, word_ids)
    new_values = _path_node_rows(net, chars, positions, word_ids, new_nodes, force_autograd).double()
    # Every node sits inside its slice, so sorting slices by their node keeps edges, nodes and scores in step.
    all_edges, edge_order = torch.cat([edges, new_edges]).sort()
    nodes = torch.cat([(edges[:-1] + edges[1:]) / 2, new_nodes])
    node_order = nodes.argsort()
    return all_edges, torch.cat([node_values, new_values], dim=-1)[..., node_order], torch.cat([scores, new_scores])[edge_order]


def _path_node_rows(net: AutocompleteNet, chars: Tensor, positions: list[int], word_ids: list[int], alphas: Tensor, force_autograd: bool) -> Tensor:
    """Rows [rows, T, len(alphas)]: each node's entries (e - b) . g at the input b + alpha (e - b), a few nodes per recording."""
    parts = []
    for chunk in alphas.split(PATH_NODES_PER_RECORDING):
        recording = record(net, chars, "integrated_gradients", force_autograd=force_autograd, nodes=(chunk, torch.ones_like(chunk)))
        parts.append(_node_rows(net, recording, positions, word_ids, "integrated_gradients", None))
    return torch.cat(parts, dim=-1)
