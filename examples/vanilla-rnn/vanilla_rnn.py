"""The vanilla RNN, h_t = tanh(W x_t + U h_{t-1} + b), as a plug-in unit for rnn-connectivity.

No gate decides what to keep: every step multiplies the old state by U and squashes it, so
the gradient from far back shrinks geometrically. The article shows that vanishing gradient
beside the gated units.
"""

from torch import nn

from models.units import Unit


def build(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    # PyTorch's RNN already follows the unit contract: batch-first, (outputs, state) with state = h.
    return nn.RNN(hidden_size, hidden_size, num_layers, nonlinearity="tanh", batch_first=True)


UNIT = Unit(
    name="rnn",
    display_name="Vanilla RNN",
    description="The plain tanh RNN (Elman, 1990): no gates, so what it remembers fades with every step.",
    build=build,
)
