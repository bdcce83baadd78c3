"""The mLSTM of xLSTM (Beck et al., 2024) in its residual block, as a plug-in unit for rnn-connectivity.

The LSTM's memory cell becomes a matrix per head, written with an exponential input gate
and read with a query: attention over whatever the forget gate has kept. A block maps
x_t to y_t:

    u_t = LayerNorm(x_t)
    [q_t, k_t, v_t, o_t] = W_up u_t                          up-projection
    [ĩ_t, f̃_t] = W_g u_t + b_g                               an input and a forget gate pre-activation per head

and in each head, with its slices of q_t, k_t (divided by √d_k) and v_t, and the
stabiliser state m_t, which keeps every exp() at most 1,

    m_t = max(log σ(f̃_t) + m_{t−1}, ĩ_t)
    i_t = exp(ĩ_t − m_t),  f_t = exp(log σ(f̃_t) + m_{t−1} − m_t)    exponential input gate, sigmoid forget gate
    C_t = f_t C_{t−1} + i_t v_t k_tᵀ                         matrix memory, d_v × d_k
    n_t = f_t n_{t−1} + i_t k_t                               normaliser
    h̃_t = C_t q_t / max(|n_tᵀ q_t|, exp(−m_t))

then, over all heads,

    h_t = (GroupNorm(h̃_t) + s ⊙ v_t) ⊙ swish(o_t)            learned skip s, output gate o
    y_t = x_t + W_down h_t                                    down-projection, residual

Two blocks at the preset's width, each with 4 heads, and a LayerNorm after the last, as
in xLSTM's block stack. v, o and h are 1.25 × the width (320 at 256), q and k half that,
as in xLSTM 7B; the gates' weights start at zero and the forget gates' biases spread over
[3, 6], as xLSTM starts them. m_t only sets the scale the memory is stored at (C_t and n_t
hold it times exp(−m_t), and h̃_t does not depend on it), so its running maximum passes no
gradient. (xLSTM's code adds 1e-6 to h̃'s denominator, which makes h̃ depend on m_t where
m_t is large; here the denominator is only kept above zero.)

What differs from xLSTM's block, and why: its up-projection is 2 × the width, and it
passes the q and k branch through a causal convolution of width 4, maps q, k and v by 4 × 4
block-diagonal matrices, and computes the gates from q, k and v. On a CPU the convolution
and the small blocks each cost about what a dense layer does, for 2 % of the parameters,
and a block of the LSTM's parameter count trains at two thirds of the GRU's speed. Here q,
k, v and o come straight from the up-projection (without the convolution a map after it
would compose two linear maps), the gates from the same normalised input (q, k and v are
linear in it, so they could learn no more) and the skip reads v; the inner width is what
keeps a training step within 0.8 × the GRU's speed (bench/train_throughput.py): at width
256 the unit has 661,520 parameters, the GRU 789,504 and the LSTM 1,052,672 (the GRU's
count, at 1.5 × the width, trains at 0.77 × its speed).

Training runs the stabilised parallel form over chunks of 50 characters: in every head a
[50, 50] matrix holds exp(F_t − F_s + ĩ_s − m_t), the share of step s's write left in step
t's memory (F_t the sum of log σ(f̃) up to t), and h̃ follows from two matrix products, as
in attention, plus what the memory left by the chunk before contributes. (One [200, 200]
matrix would cost the same matrix products and four times the element-wise work; four
chunks are a loop of four, not of 200.) The row maxima need no pass over the matrix:
F_t − F_s + ĩ_s is F_t plus a term of s alone, so m_t is F_t plus a running maximum. A
single character (a keystroke on the server) runs the recurrent form above. Both forms
give the same m_t, state and outputs.

The state: every block's memory, normaliser and stabiliser in turn, float32,
(C₁, n₁, m₁, C₂, n₂, m₂) with C [batch, heads, d_k, d_v] (stored as Σ k vᵀ, so the
equations' C q is qᵀ C), n [batch, heads, d_k] and m [batch, heads].
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.units import Unit

HEADS = 4
PROJECTION_FACTOR = 1.25  # the inner width (v, o, h) over the block's width
KEY_FACTOR = 0.5  # the width of q and k over that of v
CHUNK = 50

# One block's memory C (stored as Σ k vᵀ: [batch, heads, d_k, d_v]), normaliser n [batch, heads, d_k] and stabiliser m [batch, heads].
Memory = tuple[Tensor, Tensor, Tensor]
# What the unit returns and takes as its state: every block's memory in turn, (C₁, n₁, m₁, C₂, n₂, m₂, ...), unstacked
# (a stack would cost the connectivity sweep a copy of every block's C per row and step).
State = tuple[Tensor, ...]


def denominator(normalised_query: Tensor, stabiliser: Tensor) -> Tensor:
    """max(|nᵀq|, exp(−m)), kept above zero where exp(−m) underflows (m > 87, from an input gate beyond e^87)."""
    return torch.maximum(normalised_query.abs(), torch.exp(-stabiliser)).clamp(min=torch.finfo(stabiliser.dtype).tiny)


def mlstm_parallel(queries: Tensor, keys: Tensor, values: Tensor, log_input: Tensor, log_forget: Tensor,
                   memory: Memory | None) -> tuple[Tensor, Memory]:
    """h̃ [batch, heads, T, d_v] of T steps at once, and the memory after them.

    `queries` and `keys` (already divided by √d_k) are [batch, heads, T, d_k], `values`
    [batch, heads, T, d_v]; `log_input` is ĩ and `log_forget` log σ(f̃), [batch, heads, T];
    `memory` is the state before the first step (None: empty, with m = 0).
    """
    steps = queries.shape[2]
    cumulative = log_forget.cumsum(dim=-1)  # F_t
    # log D[t, s] = F_t − F_s + ĩ_s = F_t + written_s: what is left at t of step s's write, in log.
    written = log_input - cumulative
    # The stabiliser less F_t: the largest log share in row t, the memory passed in (F_t + m_prev, m_prev = 0 if none) included.
    running = written.cummax(dim=-1).values
    offset = (running.clamp(min=0) if memory is None else torch.maximum(running, memory[2][..., None])).detach()
    causal = torch.ones(steps, steps, dtype=torch.bool, device=queries.device).tril()
    weights = torch.exp((written[..., None, :] - offset[..., :, None]).masked_fill(~causal, -math.inf))  # D[t, s] exp(−m_t)
    scores = (queries @ keys.transpose(-1, -2)) * weights
    numerator = scores @ values
    normaliser = scores.sum(dim=-1)
    stabiliser = cumulative + offset  # m_t
    if memory is not None:
        carried = torch.exp(memory[2][..., None] - offset)  # exp(F_t + m_prev − m_t): what is left of the memory passed in
        numerator = numerator + carried[..., None] * (queries @ memory[0].to(queries.dtype))
        normaliser = normaliser + carried * (queries @ memory[1][..., None].to(queries.dtype))[..., 0]
    outputs = numerator * torch.reciprocal(denominator(normaliser, stabiliser))[..., None]

    # The last step's memory: every write with its share in the last row, plus what is left of the memory passed in.
    last = weights[..., -1, :, None] * keys
    new_memory = (last.transpose(-1, -2) @ values).float()
    new_normaliser = last.sum(dim=-2).float()
    if memory is not None:
        new_memory = new_memory + carried[..., -1, None, None] * memory[0]
        new_normaliser = new_normaliser + carried[..., -1, None] * memory[1]
    return outputs, (new_memory, new_normaliser, stabiliser[..., -1])


def mlstm_step(query: Tensor, key: Tensor, value: Tensor, log_input: Tensor, log_forget: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
    """One step of the recurrent form: h̃ [batch, heads, d_v] and the new memory, for q, k, v [batch, heads, d] and gates [batch, heads]."""
    cells, normaliser, stabiliser = memory
    decayed = log_forget + stabiliser
    new_stabiliser = torch.maximum(decayed, log_input).detach()
    forget = torch.exp(decayed - new_stabiliser)[..., None]
    written_key = torch.exp(log_input - new_stabiliser)[..., None] * key
    # C is stored as Σ k vᵀ (d_k × d_v), so the equations' C q is qᵀ C here. Few, fused operations: a step is paid
    # per operation (and per node of its gradient), not per element.
    cells = torch.addcmul(forget[..., None] * cells, written_key[..., :, None], value[..., None, :])
    normaliser = torch.addcmul(written_key, forget, normaliser)
    read = (query[..., None] * cells).sum(dim=-2)  # a product and a sum: fewer nodes than a batched matrix product's
    output = read / denominator((query * normaliser).sum(dim=-1), new_stabiliser)[..., None]
    return output, (cells, normaliser, new_stabiliser)


class MLSTMBlock(nn.Module):
    def __init__(self, width: int, heads: int, key_size: int, value_size: int, blocks_in_stack: int) -> None:
        super().__init__()
        self.heads, self.key_size, self.value_size = heads, key_size, value_size
        inner = heads * value_size
        self.norm = nn.LayerNorm(width, bias=False)
        self.up = nn.Linear(width, 2 * heads * key_size + 2 * inner, bias=False)  # q, k, v, o
        self.gates = nn.Linear(width, 2 * heads)  # ĩ, f̃
        self.head_norm_weight = nn.Parameter(torch.ones(inner))
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = nn.Linear(inner, width, bias=False)
        # xLSTM's initialisation: a small normal map in, a smaller one out, gates that start open to the past.
        nn.init.normal_(self.up.weight, std=math.sqrt(2 / (5 * width)))
        nn.init.normal_(self.down.weight, std=2 / blocks_in_stack / math.sqrt(width))
        nn.init.zeros_(self.gates.weight)
        input_bias, forget_bias = self.gates.bias.data.chunk(2)
        nn.init.normal_(input_bias, std=0.1)
        forget_bias.copy_(torch.linspace(3.0, 6.0, heads))

    def empty_memory(self, batch: int, device: torch.device) -> Memory:
        return (torch.zeros(batch, self.heads, self.key_size, self.value_size, device=device),
                torch.zeros(batch, self.heads, self.key_size, device=device), torch.zeros(batch, self.heads, device=device))

    def forward(self, x: Tensor, memory: Memory | None) -> tuple[Tensor, Memory]:
        batch, steps = x.shape[:2]
        key_width, inner = self.heads * self.key_size, self.skip.shape[0]
        # One character (a keystroke, a step of the unrolled figure) drops the time axis: a step costs per tensor
        # operation, not per element, and each axis moved or index taken is one more, with its own gradient.
        features = x.squeeze(1) if steps == 1 else x  # [batch, (T,) width]
        normed_x = self.norm(features)
        queries, keys, values, output_gate = self.up(normed_x).split([key_width, key_width, inner, inner], dim=-1)
        log_input, forget_logits = self.gates(normed_x).float().chunk(2, dim=-1)  # [batch, (T,) heads] each
        log_forget = F.logsigmoid(forget_logits)
        root_key_size = math.sqrt(self.key_size)
        if steps == 1:
            queries, keys, head_values = (features.view(batch, self.heads, -1) for features in (queries, keys, values))
            if memory is None:
                memory = self.empty_memory(batch, x.device)
            cell_output, memory = mlstm_step(queries, keys / root_key_size, head_values, log_input, log_forget, memory)
        else:
            def heads(features: Tensor) -> Tensor:  # [batch, T, heads × d] -> [batch, heads, T, d]
                return features.unflatten(-1, (self.heads, -1)).transpose(1, 2)

            queries, keys, head_values = heads(queries), heads(keys) / root_key_size, heads(values)
            log_input, log_forget = log_input.transpose(1, 2), log_forget.transpose(1, 2)  # [batch, heads, T]
            outputs = []
            for start in range(0, steps, CHUNK):
                chunk = slice(start, start + CHUNK)
                output, memory = mlstm_parallel(queries[:, :, chunk], keys[:, :, chunk], head_values[:, :, chunk],
                                                log_input[..., chunk], log_forget[..., chunk], memory)
                outputs.append(output.transpose(1, 2))
            cell_output = torch.cat(outputs, dim=1)  # [batch, T, heads, d_v]
            assert memory is not None, "a sequence of more than one step passes through at least one chunk"
        # GroupNorm: each head's h̃ normalised on its own.
        normed = F.group_norm(cell_output.reshape(-1, inner), self.heads, self.head_norm_weight).view(values.shape)
        # In the projections' precision (bf16 under autocast): W_down reads it in that precision anyway.
        hidden = torch.addcmul(normed.to(values.dtype), self.skip.to(values.dtype), values) * F.silu(output_gate)
        update = self.down(hidden)
        return x + (update[:, None] if steps == 1 else update), memory


class MLSTM(nn.Module):
    """Stacked mLSTM blocks and a final LayerNorm, batch-first."""

    def __init__(self, width: int, num_blocks: int, heads: int = HEADS) -> None:
        super().__init__()
        # Per head: q and k of KEY_FACTOR × v's width; all heads' v together about PROJECTION_FACTOR × the width.
        key_size = math.ceil(PROJECTION_FACTOR * KEY_FACTOR * width / heads)
        value_size = round(key_size / KEY_FACTOR)
        self.blocks = nn.ModuleList(MLSTMBlock(width, heads, key_size, value_size, num_blocks) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(width, bias=False)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        new_state: list[Tensor] = []
        for index, block in enumerate(self.blocks):
            memory = None if state is None else (state[3 * index], state[3 * index + 1], state[3 * index + 2])
            x, memory = block(x, memory)
            new_state.extend(memory)
        return self.norm(x), tuple(new_state)


def build(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    return MLSTM(hidden_size, num_layers)


DIAGRAM = """\
<svg xmlns="http://www.w3.org/2000/svg" width="620" height="300" viewBox="0 0 620 300" font-family="Helvetica, Arial, sans-serif">
 <title>One mLSTM step</title>
 <desc>The block normalises the input and projects it up to a query q, a key k, a value v and an output gate o; the gates i (exponential) and f (sigmoid) read the normalised input too. The matrix memory C, with its normaliser n and stabiliser m, is scaled by f and adds the write i v kᵀ; the query reads it, normalised by n. After a per-head norm, a skip from v and the output gate, W_down maps the result back, and the block's input is added.</desc>
 <rect width="620" height="300" fill="#fff" />
 <defs>
  <marker id="arrow-mlstm" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto">
   <path d="M0,0 L10,5 L0,10 z" fill="#444" />
  </marker>
 </defs>
 <g fill="none">
  <polyline points="72,50 248,50" marker-end="url(#arrow-mlstm)" stroke="#1f1f1f" stroke-width="2.2" />
  <polyline points="272,50 368,50" marker-end="url(#arrow-mlstm)" stroke="#1f1f1f" stroke-width="2.2" />
  <polyline points="392,50 528,50" marker-end="url(#arrow-mlstm)" stroke="#1f1f1f" stroke-width="2.2" />
  <polyline points="28,250 63,250" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="40,250 40,285 555,285 555,264" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="175,250 505,250" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="260,250 260,152" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="330,250 330,232" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="380,250 380,147" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="460,250 460,152" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="505,250 505,195 525,195" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="260,110 260,62" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="330,190 330,130 343,130" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="380,115 380,62" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="460,50 460,108" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="500,130 555,130 555,173" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="555,215 555,236" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
  <polyline points="567,250 588,250" marker-end="url(#arrow-mlstm)" stroke="#6b6b6b" stroke-width="1.4" />
 </g>
 <g>
  <g transform="translate(120,250)">
   <rect x="-55" y="-20" width="110" height="40" rx="4" fill="#fde9a6" stroke="#b59a3a" />
   <text fill="#222222" font-size="12" text-anchor="middle" dominant-baseline="central">LayerNorm, W<tspan baseline-shift="sub" font-size="9px">up</tspan></text>
  </g>
  <g transform="translate(260,130)">
   <rect x="-25" y="-20" width="50" height="40" rx="4" fill="#fde9a6" stroke="#b59a3a" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">σ</text>
   <text x="30" y="-24" fill="#1f1f1f" font-size="13" font-style="italic" dominant-baseline="central">f</text>
  </g>
  <g transform="translate(330,210)">
   <rect x="-25" y="-20" width="50" height="40" rx="4" fill="#fde9a6" stroke="#b59a3a" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">exp</text>
   <text x="30" y="-24" fill="#1f1f1f" font-size="13" font-style="italic" dominant-baseline="central">i</text>
  </g>
  <g transform="translate(555,195)">
   <rect x="-28" y="-20" width="56" height="40" rx="4" fill="#fde9a6" stroke="#b59a3a" />
   <text fill="#222222" font-size="12" text-anchor="middle" dominant-baseline="central">W<tspan baseline-shift="sub" font-size="9px">down</tspan></text>
  </g>
 </g>
 <g>
  <g transform="translate(380,130)">
   <rect x="-35" y="-15" width="70" height="30" rx="15" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="12" text-anchor="middle" dominant-baseline="central">i v kᵀ</text>
  </g>
  <g transform="translate(460,130)">
   <rect x="-40" y="-20" width="80" height="40" rx="15" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="12" text-anchor="middle" dominant-baseline="central">C q ÷ |nᵀq|</text>
  </g>
  <g transform="translate(260,50)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">×</text>
  </g>
  <g transform="translate(380,50)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">+</text>
  </g>
  <g transform="translate(555,250)">
   <ellipse rx="12" ry="12" fill="#ffffff" stroke="#555555" />
   <text fill="#222222" font-size="13" text-anchor="middle" dominant-baseline="central">+</text>
  </g>
 </g>
 <g fill="#1f1f1f" font-size="13" font-style="italic" dominant-baseline="central">
  <text x="6" y="50">C, n, m<tspan baseline-shift="sub" font-size="10px">t−1</tspan></text>
  <text x="534" y="50">C, n, m<tspan baseline-shift="sub" font-size="10px">t</tspan></text>
  <text x="6" y="250">x<tspan baseline-shift="sub" font-size="10px">t</tspan></text>
  <text x="594" y="250">y<tspan baseline-shift="sub" font-size="10px">t</tspan></text>
 </g>
 <g fill="#6b6b6b" font-size="11" font-style="italic">
  <text x="384" y="242">k, v</text>
  <text x="464" y="242">q</text>
  <text x="509" y="242">o</text>
 </g>
 <g fill="#6b6b6b" font-size="10">
  <text x="562" y="140">norm,</text>
  <text x="562" y="152">skip,</text>
  <text x="562" y="164">⊙ swish(o)</text>
 </g>
</svg>
"""

UNIT = Unit(
    name="mlstm",
    display_name="mLSTM",
    description=(
        "The mLSTM of xLSTM (Beck et al., 2024): a matrix memory per head, written with an exponential "
        "input gate and read with a query, in a residual block; it trains in parallel, like attention."
    ),
    build=build,
    diagram=DIAGRAM,
)
