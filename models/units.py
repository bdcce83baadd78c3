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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENTRY_POINT_GROUP = "rnn_connectivity.units"
# The built-in units' step diagrams, standalone SVG files the article shows as images.
DIAGRAMS = Path(__file__).parent / "diagrams"


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
    input_gates: Tensor, h: Tensor, cells: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]
) -> tuple[Tensor, Tensor]:
    """One time step of one Nested LSTM layer.

    `input_gates` is the outermost level's input already multiplied by its
    weights (done for all steps at once by the caller), `cells` is
    [depth, batch, hidden], `weights[0]` is only the outermost level's
    hidden-to-gate block. Returns the new h and cells.
    """
    depth = len(weights)
    gates = input_gates + h @ weights[0].t()
    output_gates = []
    for d in range(depth):
        i, j, f, o = gates.chunk(4, dim=1)
        inner_hidden = torch.sigmoid(f + 1.0) * cells[d]
        inner_input = torch.sigmoid(i) * (j if d == 0 else torch.tanh(j))
        output_gates.append(o)
        if d + 1 < depth:
            gates = torch.cat([inner_input, inner_hidden], dim=1) @ weights[d + 1].t() + biases[d + 1]
    # The innermost memory is a plain sum; each level above takes the h of the level below as its cell.
    cell = inner_hidden + inner_input
    new_cells = []
    for d in reversed(range(depth)):
        new_cells.append(cell)
        h = torch.sigmoid(output_gates[d]) * torch.tanh(cell)
        cell = h
    return h, torch.stack(new_cells[::-1])


@functools.cache
def compiled_nested_lstm_step():
    """`nested_lstm_step` through torch.compile, built on first use because compiling takes seconds."""
    return torch.compile(nested_lstm_step, dynamic=False)


class NestedLSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, depth: int) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (depth - 1)
        self.cells = nn.ModuleList(NestedLSTMCell(size, hidden_size) for size in sizes)

    @property
    def levels(self) -> list[NestedLSTMCell]:
        """The depth levels, outermost first (a ModuleList only knows it holds Modules)."""
        return cast(list[NestedLSTMCell], list(self.cells))

    def forward(self, x: Tensor, h: Tensor, cells: Tensor, compiled: bool) -> tuple[Tensor, Tensor, Tensor]:
        outer, *inner = self.levels
        input_gates = F.linear(x, outer.weight[:, : outer.input_size], outer.bias)
        weights = [outer.weight[:, outer.input_size :]] + [level.weight for level in inner]
        biases = [outer.bias] + [level.bias for level in inner]
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


BUILTIN_UNITS = (
    Unit(
        name="gru",
        display_name="GRU",
        description="Gated recurrent unit (Cho et al., 2014): an update gate blends the old state with a candidate.",
        build=build_gru,
        diagram=(DIAGRAMS / "gru.svg").read_text(),
    ),
    Unit(
        name="lstm",
        display_name="LSTM",
        description="Long short-term memory (Hochreiter & Schmidhuber, 1997): a memory cell behind input, forget and output gates.",
        build=build_lstm,
        diagram=(DIAGRAMS / "lstm.svg").read_text(),
    ),
    Unit(
        name="nlstm",
        display_name="Nested LSTM",
        description="Nested LSTM (Moniz & Krueger, 2017): the LSTM's memory cell is itself an LSTM.",
        build=build_nested_lstm,
        default_layers=1,
        uses_depth=True,
        diagram=(DIAGRAMS / "nlstm.svg").read_text(),
    ),
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
