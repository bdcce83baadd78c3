"""The recurrent units, and the registry through which every part of the project finds them.

A unit is an `nn.Module` called as `unit(x, state=None) -> (outputs, state)`, batch-first:
`x` and `outputs` are [batch, time, hidden], `state` is a tensor or a tuple of tensors
that, passed back in, continues the sequence where it stopped (`None` starts from zero).
Nothing else is asked of it: connectivity falls back to autograd for units that have no
hand-written sweep.

The three units of the paper ship here: `gru` and `lstm` are PyTorch's own modules;
`nlstm` is the Nested LSTM of Moniz & Krueger (2017) as the paper's code writes it, the
outer LSTM's memory cell itself an LSTM, `depth` levels deep. Other packages add units
through the `rnn_connectivity.units` entry-point group (README, "Add your own unit").
"""

import functools
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import ParamSpec, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENTRY_POINT_GROUP = "rnn_connectivity.units"
# The built-in units' step diagrams, standalone SVG files the article shows as images.
DIAGRAMS = Path(__file__).parent / "diagrams"
P = ParamSpec("P")
R = TypeVar("R")


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
    hidden-to-gate block. Returns the new h and cells. TorchScript compiles it
    too (`nested_lstm_states`), hence names bound before the loops that set them.
    """
    depth = len(weights)
    gates = input_gates + h @ weights[0].t()
    output_gates: list[Tensor] = []
    inner_hidden = inner_input = cells[0]
    for d in range(depth):
        i, j, f, o = gates.chunk(4, dim=1)
        inner_hidden = torch.sigmoid(f + 1.0) * cells[d]
        inner_input = torch.sigmoid(i) * (j if d == 0 else torch.tanh(j))
        output_gates.append(o)
        if d + 1 < depth:
            gates = torch.cat([inner_input, inner_hidden], dim=1) @ weights[d + 1].t() + biases[d + 1]
    # The innermost memory is a plain sum; each level above takes the h of the level below as its cell.
    cell = inner_hidden + inner_input
    new_cells: list[Tensor] = []
    for d in range(depth - 1, -1, -1):
        new_cells.append(cell)
        h = torch.sigmoid(output_gates[d]) * torch.tanh(cell)
        cell = h
    return h, torch.stack(new_cells[::-1])


def scripted(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, compiled by TorchScript on its first call: a call then runs the function's whole loop of
    small tensor ops in C++, without taking Python's interpreter lock between them.

    A server thread computing one unit's answer beside another's (app.pool's `spread`) otherwise waits for
    the lock at every op: two threads each running a loop of 200 small matmuls took 1.5 times the loop's CPU
    time and finished no sooner than one after the other; scripted, they ran side by side, each in about
    1.05 times its time alone. TorchScript is deprecated as a way to export models, hence the warning left
    out here, but it is what PyTorch has for running a loop written in Python without the lock, with no C++
    compiler at run time (torch.compile needs one).
    `function` must be in TorchScript's subset of Python; with PYTORCH_JIT=0 it runs as Python.
    """

    lock = threading.Lock()  # two threads' first calls compile once
    compiled: Callable[P, R] | None = None

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal compiled
        if compiled is None:
            with lock, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)
                if compiled is None:
                    compiled = cast(Callable[P, R], torch.jit.script(function))
        # Without the executor's optimizations: on a CPU they fuse nothing, but they profile and specialise again for
        # new shapes (every text length), which made a server's first twenty counterfactuals a quarter slower.
        with torch.jit.optimized_execution(False):
            return compiled(*args, **kwargs)

    return call


@scripted
def nested_lstm_states(
    input_gates: Tensor, h: Tensor, cells: Tensor, weights: list[Tensor], biases: list[Tensor]
) -> tuple[Tensor, Tensor]:
    """`nested_lstm_step` over every step of `input_gates` [T, batch, 4H] from `h` and `cells`:
    the hidden states [T + 1, batch, H] and the cells [T + 1, depth, batch, H], the starting state first."""
    hs, all_cells = [h], [cells]
    for step in range(input_gates.shape[0]):
        h, cells = nested_lstm_step(input_gates[step], h, cells, weights, biases)
        hs.append(h)
        all_cells.append(cells)
    return torch.stack(hs), torch.stack(all_cells)


@functools.cache
def compiled_nested_lstm_step():
    """`nested_lstm_step` through torch.compile, built on first use because compiling takes seconds."""
    return torch.compile(nested_lstm_step, dynamic=False)


class NestedLSTMRecurrence(torch.autograd.Function):
    """A whole Nested LSTM layer's recurrence with a hand-written backward: the same function as
    `nested_lstm_step` in a loop, for training.

    Eager autograd records some twenty small ops per step and replays them one by one; here
    the forward runs the loop without a graph, keeping each level's gate pre-activations, and
    the backward walks time in reverse with one small matmul per level and step, leaving the
    weight and bias gradients to one large matmul per level at the end (issue #15).

    Arguments: `input_gates` [batch, time, 4H], `h` [batch, H], `cells` [depth, batch, H], then
    the `depth` level weights as `nested_lstm_step` takes them, then the biases of levels 1 and
    deeper (the outermost bias is already in `input_gates`). Returns outputs, final h and cells.
    """

    @staticmethod
    def forward(ctx, input_gates: Tensor, h: Tensor, cells: Tensor, *parameters: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        depth = (len(parameters) + 1) // 2
        weights, biases = parameters[:depth], parameters[depth:]
        batch, steps, _ = input_gates.shape
        size = h.shape[1]
        gates = input_gates.new_empty(depth, steps, batch, 4 * size)
        # What each level's affine map read: h for the outermost, [inner input, inner hidden] below it.
        hs = input_gates.new_empty(steps + 1, batch, size)
        level_inputs = input_gates.new_empty(depth - 1, steps, batch, 2 * size)
        all_cells = input_gates.new_empty(steps + 1, depth, batch, size)
        hs[0], all_cells[0] = h, cells
        for t in range(steps):
            torch.addmm(input_gates[:, t], hs[t], weights[0].t(), out=gates[0, t])
            for d in range(depth):
                i, j, f, o = gates[d, t].chunk(4, dim=1)
                inner_hidden = torch.sigmoid(f + 1.0) * all_cells[t, d]
                inner_input = torch.sigmoid(i) * (j if d == 0 else torch.tanh(j))
                if d + 1 < depth:
                    torch.cat([inner_input, inner_hidden], dim=1, out=level_inputs[d, t])
                    torch.addmm(biases[d], level_inputs[d, t], weights[d + 1].t(), out=gates[d + 1, t])
            cell = inner_hidden + inner_input
            for d in reversed(range(depth)):
                all_cells[t + 1, d] = cell
                cell = torch.sigmoid(gates[d, t, :, 3 * size :]) * torch.tanh(cell)
            hs[t + 1] = cell
        ctx.save_for_backward(gates, hs, level_inputs, all_cells, *weights)
        return hs[1:].transpose(0, 1), hs[-1].clone(), all_cells[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, output_grad: Tensor, h_grad: Tensor, cells_grad: Tensor) -> tuple[Tensor | None, ...]:
        gates, hs, level_inputs, all_cells, *weights = ctx.saved_tensors
        depth, steps, batch, _ = gates.shape
        size = hs.shape[-1]
        # Every local derivative at once, for all steps: the loop below only multiplies and adds.
        gate_factors, cell_factors, retain_factors = [], [], []
        for d in range(depth):
            i, j, f, o = gates[d].chunk(4, dim=-1)
            i, f, o = torch.sigmoid(i), torch.sigmoid(f + 1.0), torch.sigmoid(o)
            squashed = j if d == 0 else torch.tanh(j)
            squash_slope = torch.ones_like(j) if d == 0 else 1 - squashed**2
            tanh_cell = torch.tanh(all_cells[1:, d])
            # Applied to the adjoints of the inner input (i, j), the inner hidden (f) and the level's output (o).
            gate_factors.append((squashed * i * (1 - i), i * squash_slope, all_cells[:-1, d] * f * (1 - f), tanh_cell * o * (1 - o)))
            cell_factors.append(o * (1 - tanh_cell**2))
            retain_factors.append(f)
        gate_grads = torch.empty_like(gates)
        h_carry, cells_carry = h_grad, cells_grad.clone()
        for t in reversed(range(steps)):
            adjoint = h_carry + output_grad[:, t]
            for d in range(depth):
                torch.mul(adjoint, gate_factors[d][3][t], out=gate_grads[d, t, :, 3 * size :])
                # The cell of level d is the output of level d + 1; the innermost cell is inner input + inner hidden.
                adjoint = torch.addcmul(cells_carry[d], adjoint, cell_factors[d][t])
            inner_input = inner_hidden = adjoint
            for d in reversed(range(depth)):
                grads = gate_grads[d, t]
                torch.mul(inner_input, gate_factors[d][0][t], out=grads[:, :size])
                torch.mul(inner_input, gate_factors[d][1][t], out=grads[:, size : 2 * size])
                torch.mul(inner_hidden, gate_factors[d][2][t], out=grads[:, 2 * size : 3 * size])
                torch.mul(inner_hidden, retain_factors[d][t], out=cells_carry[d])
                if d > 0:
                    inner_input, inner_hidden = (grads @ weights[d]).chunk(2, dim=1)
                else:
                    h_carry = grads @ weights[0]
        flat_grads = gate_grads.flatten(1, 2)  # [depth, time * batch, 4H]
        weight_grads = [flat_grads[0].t() @ hs[:-1].flatten(0, 1)]
        weight_grads += [flat_grads[d].t() @ level_inputs[d - 1].flatten(0, 1) for d in range(1, depth)]
        bias_grads = [flat_grads[d].sum(0) for d in range(1, depth)]
        return gate_grads[0].transpose(0, 1), h_carry, cells_carry, *weight_grads, *bias_grads


class NestedLSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, depth: int) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (depth - 1)
        self.cells = nn.ModuleList(NestedLSTMCell(size, hidden_size) for size in sizes)

    @property
    def levels(self) -> list[NestedLSTMCell]:
        """The depth levels, outermost first (a ModuleList only knows it holds Modules)."""
        return cast(list[NestedLSTMCell], list(self.cells))

    def step_parameters(self) -> tuple[list[Tensor], list[Tensor]]:
        """The weights and biases `nested_lstm_step` takes: the outermost level's hidden-to-gate block, then each
        inner level's whole map; every level's bias (the outermost one's goes into the input gates too)."""
        outer, *inner = self.levels
        return [outer.weight[:, outer.input_size :], *(level.weight for level in inner)], [level.bias for level in self.levels]

    def forward(self, x: Tensor, h: Tensor, cells: Tensor, recurrence: str) -> tuple[Tensor, Tensor, Tensor]:
        outer = self.levels[0]
        input_gates = F.linear(x, outer.weight[:, : outer.input_size], outer.bias)
        weights, biases = self.step_parameters()
        # Only in training: the Function has no torch.func rules, which connectivity's vjp and vmap of an
        # eval-mode unit need; and under autocast the eager step's bf16 matmuls and float32 state stay as they are.
        training = self.training and torch.is_grad_enabled()
        if recurrence == "hand-written" and training and not torch.is_autocast_enabled(x.device.type):
            return NestedLSTMRecurrence.apply(input_gates, h, cells, *weights, *biases[1:])
        if recurrence != "compiled" and not torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type):
            # Serving and evaluation: the same steps, scripted, a fifth faster and without the interpreter lock.
            hidden_states, all_cells = nested_lstm_states(input_gates.transpose(0, 1), h, cells, weights, biases)
            return hidden_states[1:].transpose(0, 1).contiguous(), hidden_states[-1], all_cells[-1]
        step = compiled_nested_lstm_step() if recurrence == "compiled" else nested_lstm_step
        outputs = []
        for t in range(x.shape[1]):
            h, cells = step(input_gates[:, t], h, cells, weights, biases)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h, cells


RECURRENCES = ("hand-written", "compiled", "eager")


class NestedLSTM(nn.Module):
    """Stacked Nested LSTM layers. State: (h [layers, batch, H], cells [layers, depth, batch, H])."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, depth: int = 2) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.depth = depth
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(NestedLSTMLayer(size, hidden_size, depth) for size in sizes)
        # How training runs the recurrence (one of RECURRENCES): "hand-written" is NestedLSTMRecurrence,
        # the fastest measured (bench/train_throughput.py); "compiled" is torch.compile of the step;
        # "eager" is autograd over nested_lstm_step, the reference. In eval mode every choice but "compiled"
        # runs the eager step, or without gradients the same steps scripted (nested_lstm_states).
        self.recurrence = "hand-written"

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"unknown Nested LSTM recurrence {self.recurrence!r} (one of {', '.join(RECURRENCES)})")
        batch = x.shape[0]
        if state is None:
            zeros = x.new_zeros(len(self.layers), batch, self.hidden_size)
            state = (zeros, x.new_zeros(len(self.layers), self.depth, batch, self.hidden_size))
        hs, cells = [], []
        for index, layer in enumerate(self.layers):
            x, h, c = layer(x, state[0][index], state[1][index], self.recurrence)
            hs.append(h)
            cells.append(c)
        return x, (torch.stack(hs), torch.stack(cells))


def build_gru(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    return nn.GRU(hidden_size, hidden_size, num_layers, batch_first=True)


def build_lstm(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    lstm = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True)
    # The paper's LSTM cell adds 1 to the forget gate: start the effective forget bias at +1.
    for name, bias in lstm.named_parameters():
        if name.startswith("bias"):
            nn.init.zeros_(bias)
            if name.startswith("bias_ih"):
                bias.data[hidden_size : 2 * hidden_size] = 1.0
    return lstm


def build_nested_lstm(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    return NestedLSTM(hidden_size, hidden_size, num_layers, depth)


@dataclass(frozen=True)
class Unit:
    """A recurrent unit as the project knows it: how to build it and how to present it."""

    name: str  # the id in checkpoints, the CLI and the API: lowercase letters, digits, '-' or '_'
    display_name: str
    description: str  # one or two sentences for the article's model cards
    build: Callable[[int, int, int], nn.Module]  # (hidden_size, num_layers, depth) -> the unit module
    default_layers: int = 2  # layers in a preset that does not name the unit
    uses_depth: bool = False  # whether `depth` means anything to it (the Nested LSTM's levels)
    diagram: str | None = None  # an SVG drawing of one step; the article draws a generic one without it


def _diagram(name: str) -> str:
    return (DIAGRAMS / f"{name}.svg").read_text()


BUILTIN_UNITS = (
    Unit("gru", "GRU", "Gated recurrent unit (Cho et al., 2014): an update gate blends the old state with a candidate.",
         build_gru, diagram=_diagram("gru")),
    Unit("lstm", "LSTM", "Long short-term memory (Hochreiter & Schmidhuber, 1997): a memory cell behind input, forget and output gates.",
         build_lstm, diagram=_diagram("lstm")),
    Unit("nlstm", "Nested LSTM", "Nested LSTM (Moniz & Krueger, 2017): the LSTM's memory cell is itself an LSTM.",
         build_nested_lstm, default_layers=1, uses_depth=True, diagram=_diagram("nlstm")),
)
PAPER_UNITS = tuple(unit.name for unit in BUILTIN_UNITS)  # the paper's three, in its order
# Units registered at run time (a test's toy unit, a notebook's experiment), after the installed ones.
_runtime_units: dict[str, Unit] = {}


class UnknownUnitError(ValueError):
    """A unit name that no installed package registers."""


def register_unit(unit: Unit) -> None:
    """Make `unit` available in this process, as if a package had declared it."""
    if unit.name in registered_units():
        raise ValueError(f"a unit named {unit.name!r} is already registered")
    _runtime_units[unit.name] = unit


def unregister_unit(name: str) -> None:
    """Forget a unit registered with `register_unit`."""
    del _runtime_units[name]


@functools.cache
def installed_units() -> dict[str, Unit]:
    """The built-in units, then those declared in the entry-point group by installed packages, by name."""
    units = {unit.name: unit for unit in BUILTIN_UNITS}
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda entry: entry.name):
        unit = entry_point.load()
        if not isinstance(unit, Unit):
            raise TypeError(f"entry point {entry_point.value!r} ({ENTRY_POINT_GROUP}) is a {type(unit).__name__}, not a models.units.Unit")
        if unit.name != entry_point.name or unit.name in units:
            raise ValueError(f"entry point {entry_point.name!r} ({ENTRY_POINT_GROUP}) registers unit {unit.name!r}, a name that is taken or differs from its own")
        units[unit.name] = unit
    return units


def registered_units() -> dict[str, Unit]:
    """Every unit this process can build, in order: built-in, installed, registered at run time."""
    return {**installed_units(), **_runtime_units}


def unit_names() -> list[str]:
    return list(registered_units())


def get_unit(name: str) -> Unit:
    """The unit registered under `name`, or an UnknownUnitError saying how to get it."""
    units = registered_units()
    if name not in units:
        raise UnknownUnitError(
            f"unit {name!r} is not installed (installed: {', '.join(units)}). A unit comes from a package that "
            f"declares it in the {ENTRY_POINT_GROUP!r} entry-point group: install the package that provides "
            f"{name!r} with pip (this project's own example units: pip install -e examples/<folder>, e.g. examples/vanilla-rnn)"
        )
    return units[name]


def make_unit(unit: str, hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    """The recurrent unit named `unit`, taking and returning `hidden_size` features per position."""
    return get_unit(unit).build(hidden_size, num_layers, depth)
