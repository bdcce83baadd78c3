"""minGRU (Feng et al., 2024, "Were RNNs All We Needed?") as a plug-in unit for rnn-connectivity.

The GRU with its gates cut loose from the past: the update gate and the candidate read
only the current input, so that the state is a linear recurrence in h,

    z_t = σ(W_z x_t + b_z)                        update gate
    h̃_t = W_h x_t + b_h                          candidate, with no tanh and no reset gate
    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t         new state

Layers stack as the paper stacks them: layer l's states are layer l + 1's inputs, with
nothing in between (no normalisation, residual or MLP), so the only non-linearity beyond the
gate is that the next layer's gate reads this layer's state. Two layers of the preset's width
by default, like the GRU.

With a_t = 1 − z_t and b_t = z_t ⊙ h̃_t the state is h_t = a_t ⊙ h_{t−1} + b_t, which any
stretch of characters computes at once with a parallel scan over the time axis. Here it is
the Hillis–Steele scan: ⌈log₂ T⌉ passes that each combine every step with the one 2ᵏ before
it, (a, b)_t ← (a_t a_{t−2ᵏ}, b_t + a_t b_{t−2ᵏ}), so training runs no loop over characters.
Its every product and sum is of numbers in [0, 1] times bounded values, computed in float32
also under bf16 autocast: unlike a cumulative product divided back out, nothing can overflow
when a gate shuts. (The paper's own log-space scan needs h̃ > 0, and so replaces it with
a positive function of W_h x; this scan takes the equations as they are.) For one character (a keystroke on the server, a step of the connectivity
recording) the scan is exactly the recurrence above, one step from the state passed in.
The state is h of every layer, [layers, batch, width], PyTorch's layout.
"""

import torch
from torch import Tensor, nn

from models.units import Unit


def scan(coefficients: Tensor, offsets: Tensor, initial: Tensor) -> Tensor:
    """h_t = coefficients_t ⊙ h_{t−1} + offsets_t for every t of [batch, time, width], from h_{−1} = `initial` [batch, width].

    Without autograd's record: `LinearScan` is its differentiable form.
    """
    a, b = coefficients, offsets.clone()
    b[:, 0] += a[:, 0] * initial
    shift = 1
    while shift < b.shape[1]:
        # After this pass, step t has folded in the steps t − 2·shift < s ≤ t; steps before `shift` were complete already.
        folded = b.clone()
        folded[:, shift:] += a[:, shift:] * b[:, :-shift]
        b = folded
        if 2 * shift < b.shape[1]:
            spans = a.clone()
            spans[:, shift:].mul_(a[:, :-shift])
            a = spans
        shift *= 2
    return b


class LinearScan(torch.autograd.Function):
    """`scan` with its gradient, itself a scan: the adjoint λ_t = g_t + a_{t+1} ⊙ λ_{t+1} runs backwards in time.

    Written out, because autograd through the passes of `scan` would keep every pass and, in the
    connectivity sweep's batched vector-Jacobian products, spend most of its time on the slices.
    """

    generate_vmap_rule = True  # every op below is batchable, so torch.func's vmap may run it as written

    @staticmethod
    def forward(coefficients: Tensor, offsets: Tensor, initial: Tensor) -> Tensor:
        return scan(coefficients, offsets, initial)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        coefficients, _, initial = inputs
        ctx.save_for_backward(coefficients, initial, output)

    @staticmethod
    def backward(ctx, output_grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        coefficients, initial, states = ctx.saved_tensors
        # In reversed time, step t's adjoint takes the next step's coefficient: shift them by one, ending with zero.
        following = torch.cat([coefficients[:, 1:], torch.zeros_like(coefficients[:, :1])], dim=1)
        adjoints = scan(following.flip(1), output_grad.flip(1), torch.zeros_like(initial)).flip(1)
        previous = torch.cat([initial[:, None], states[:, :-1]], dim=1)
        return adjoints * previous, adjoints, coefficients[:, 0] * adjoints[:, 0]


class MinGRULayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gate = nn.Linear(input_size, hidden_size)
        self.candidate = nn.Linear(input_size, hidden_size)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """The states [batch, time, width] for inputs x [batch, time, input], from the state h [batch, width] before them."""
        gate_logits = self.gate(x).float()
        # 1 − σ(k) as σ(−k): exact where the gate is nearly shut, and the scan in float32 whatever autocast does.
        keep, update = torch.sigmoid(-gate_logits), torch.sigmoid(gate_logits)
        return LinearScan.apply(keep, update * self.candidate(x).float(), h.float())


class MinGRU(nn.Module):
    """Stacked minGRU layers, batch-first. State: h [layers, batch, width]."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(MinGRULayer(size, hidden_size) for size in sizes)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = x.new_zeros(len(self.layers), x.shape[0], self.hidden_size, dtype=torch.float32)
        finals = []
        for layer, h in zip(self.layers, state):
            x = layer(x, h)
            finals.append(x[:, -1])
        return x, torch.stack(finals)


def build(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    return MinGRU(hidden_size, hidden_size, num_layers)


DIAGRAM = """\
<svg xmlns="http://www.w3.org/2000/svg" width="620" height="300" viewBox="0 0 620 300" font-family="Helvetica, Arial, sans-serif">
 <title>One minGRU step</title>
 <desc>The update gate z (a sigmoid layer) and the candidate h̃ (a linear layer) both read the input x alone, never the previous state. The new state keeps 1 − z of the previous state and adds z times the candidate.</desc>
 <rect width="620" height="300" fill="#fff" />
 <defs>
  <marker id="arrow-mingru" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto">
   <path d="M0,0 L10,5 L0,10 z" fill="#444" />
  </marker>
 </defs>
 <g fill="none">
  <polyline points="40,50 388,50" marker-end="url(#arrow-mingru)" stroke="#1f1f1f" stroke-width="2.2" />
  <polyline points="412,50 528,50" marker-end="url(#arrow-mingru)" stroke="#1f1f1f" stroke-width="2.2" />
  <polyline points="552,50 588,50" marker-end="url(#arrow-mingru)" stroke="#1f1f1f" stroke-width="2.2" />
  <polyline points="120,278 120,240 540,240" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="250,240 250,190" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="540,240 540,212" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="250,150 250,90 388,90" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="400,78 400,62" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="320,90 320,110 528,110" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="540,172 540,122" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="540,98 540,62" marker-end="url(#arrow-mingru)" stroke="#6b6b6b" stroke-width="1.4" />
 </g>
 <g>
  <g transform="translate(250,170)">
   <rect x="-25" y="-20" width="50" height="40" rx="4" fill="#fde9a6" stroke="#b59a3a" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">σ</text>
   <text x="30" y="-24" fill="#1f1f1f" font-size="13" font-style="italic" dominant-baseline="central">z</text>
  </g>
  <g transform="translate(540,192)">
   <rect x="-25" y="-20" width="50" height="40" rx="4" fill="#fde9a6" stroke="#b59a3a" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">linear</text>
   <text x="-36" y="0" fill="#1f1f1f" font-size="13" font-style="italic" text-anchor="end" dominant-baseline="central">h̃</text>
  </g>
 </g>
 <g>
  <g transform="translate(400,90)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">1−</text>
  </g>
  <g transform="translate(400,50)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">×</text>
  </g>
  <g transform="translate(540,110)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">×</text>
  </g>
  <g transform="translate(540,50)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">+</text>
  </g>
 </g>
 <g fill="#1f1f1f" font-size="13" font-style="italic" dominant-baseline="central">
  <text x="6" y="50">h<tspan baseline-shift="sub" font-size="10px">t−1</tspan></text>
  <text x="594" y="50">h<tspan baseline-shift="sub" font-size="10px">t</tspan></text>
  <text x="112" y="292">x<tspan baseline-shift="sub" font-size="10px">t</tspan></text>
 </g>
 <text x="150" y="272" fill="#6b6b6b" font-size="11">z and h̃ read only x, never h</text>
</svg>
"""

UNIT = Unit(
    name="mingru",
    display_name="minGRU",
    description=(
        "minGRU (Feng et al., 2024): a GRU whose update gate and candidate read only the input, "
        "so the state is a gated running average that trains as a parallel scan."
    ),
    build=build,
    diagram=DIAGRAM,
)
