"""AutocompleteNet: characters in, a distribution over whole words out, at every position.

Embedding(28 -> H) -> recurrent unit -> Linear(H -> words), as in the paper.
"""

import functools
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from models.loss import word_loss
from models.text import CHARS, PAD
from models.units import UNITS, make_unit


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored in every checkpoint's metadata."""

    unit: str
    hidden_size: int
    num_layers: int
    depth: int = 1
    num_chars: int = len(CHARS)
    num_words: int = 2**14 + 2

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; choose one of {', '.join(UNITS)}")
        if self.unit != "nlstm" and self.depth != 1:
            raise ValueError(f"depth is a Nested LSTM setting; {self.unit} needs depth 1")

    def to_dict(self) -> dict:
        return asdict(self)


class AutocompleteNet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # Row 0 (padding) stays zero and untrained, as in the paper.
        self.embedding = nn.Embedding(config.num_chars, config.hidden_size, padding_idx=PAD)
        self.rnn = make_unit(config.unit, config.hidden_size, config.num_layers, config.depth)
        self.output = nn.Linear(config.hidden_size, config.num_words)

    def forward(self, chars: Tensor, state=None, targets: Tensor | None = None):
        """Logits [batch, time, words] for char ids [batch, time], and the unit's final state.

        Given `targets`, returns instead the masked mean word loss and the number of
        positions it covers, computed without materialising all logits.
        """
        hidden, state = self.rnn(self.embedding(chars), state)
        if targets is not None:
            return word_loss(hidden, targets, self.output, bf16=torch.is_autocast_enabled(hidden.device.type))
        return self.output(hidden), state

    def parameter_counts(self) -> dict[str, int]:
        """Trained parameters per part, counted as the paper counts them (padding row excluded)."""
        return {
            "embedding": (self.config.num_chars - 1) * self.config.hidden_size,
            "recurrent": sum(p.numel() for p in self.rnn.parameters()),
            "dense": sum(p.numel() for p in self.output.parameters()),
        }


@dataclass(frozen=True)
class Preset:
    """A family of three models trained under the same rules, so the units compare fairly."""

    name: str
    hidden_size: int
    num_layers: dict[str, int]
    depth: int
    vocabulary_size: int
    batch_size: int
    epochs: float
    max_train_chars: int | None
    description: str

    def model_config(self, unit: str) -> ModelConfig:
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
        return ModelConfig(
            unit=unit,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers[unit],
            depth=self.depth if unit == "nlstm" else 1,
            num_words=self.vocabulary_size + 2,
        )


PAPER = Preset(
    name="paper",
    hidden_size=600,
    num_layers={"gru": 2, "lstm": 2, "nlstm": 1},
    depth=2,
    vocabulary_size=2**14,
    batch_size=64,
    epochs=2,
    max_train_chars=None,
    description="The paper's models: GRU and LSTM 2x600, Nested LSTM 1x600 depth 2, two epochs of text8.",
)

BUNDLED = Preset(
    name="bundled",
    hidden_size=256,
    num_layers={"gru": 2, "lstm": 2, "nlstm": 1},
    depth=2,
    vocabulary_size=2**14,
    batch_size=64,
    epochs=2,
    max_train_chars=None,
    description=(
        "Sized to serve on a CPU. The output layer (H x 16,386) costs most of every step, so the "
        "paper's vocabulary, batch size, optimizer, layer counts and two epochs are kept and only "
        "the width shrinks to 256."
    ),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (PAPER, BUNDLED)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def autocast(device_type: str, enabled: bool, cache_enabled: bool = True):
    """bf16 autocast, the fast path on CUDA and on CPUs with bf16 instructions.

    CUDA graph capture needs `cache_enabled=False`: cached weight casts would outlive the capture.
    """
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled, cache_enabled=cache_enabled)


@functools.cache
def cpu_bf16_supported() -> bool:
    """Whether this CPU runs every unit under bf16 autocast.

    oneDNN has bf16 recurrent kernels only for CPUs with bf16 instructions (AVX512-BF16, AMX);
    elsewhere (an AVX2-only CPU, say) PyTorch's LSTM raises under bf16 autocast.
    """
    probe = nn.LSTM(4, 4, batch_first=True)
    try:
        with autocast("cpu", True):
            probe(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True
