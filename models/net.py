"""AutocompleteNet: characters in, a distribution over whole words out, at every position.

Embedding(28 -> H) -> recurrent unit -> Linear(H -> words), as in the paper.
"""

import functools
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from models.loss import sampled_word_loss, word_loss
from models.text import CHARS, PAD
from models.units import get_unit, make_unit
from models.vocab import SPECIAL_WORDS

SPECIAL_WORDS_COUNT = len(SPECIAL_WORDS)
# A unit's state: one tensor, or a tuple of them (the LSTM's h and c).
State = Tensor | tuple[Tensor, ...]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored in every checkpoint's metadata."""

    unit: str
    hidden_size: int
    num_layers: int
    depth: int = 1
    num_chars: int = len(CHARS)
    num_words: int = SPECIAL_WORDS_COUNT + 2**14

    def __post_init__(self) -> None:
        if not get_unit(self.unit).uses_depth and self.depth != 1:
            raise ValueError(f"depth means nothing to the {self.unit} unit; it needs depth 1")

    def to_dict(self) -> dict:
        return asdict(self)


class AutocompleteNet(nn.Module):
    """The network, with one entry point per use.

    `features` runs the unit (serving and evaluation read it), `logits` maps features to
    word scores, `loss` is the training objective; `forward` is `loss`, so that DDP and
    CUDA graphs, which wrap `forward`, train the same thing.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # Row 0 (padding) stays zero and untrained, as in the paper.
        self.embedding = nn.Embedding(config.num_chars, config.hidden_size, padding_idx=PAD)
        self.rnn = make_unit(config.unit, config.hidden_size, config.num_layers, config.depth)
        self.output = nn.Linear(config.hidden_size, config.num_words)

    def features(self, chars: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The unit's output [batch, time, H] for char ids [batch, time], and its state after them."""
        return self.rnn(self.embedding(chars), state)

    def logits(self, features: Tensor) -> Tensor:
        """Scores of every word, <eos> and <unknown> included, for features [..., H]."""
        return self.output(features)

    def loss(self, chars: Tensor, targets: Tensor, sampled_words: int | None = None) -> tuple[Tensor, int]:
        """The masked mean word cross-entropy over `targets` [batch, time] and the number of positions it covers.

        Exact over the whole vocabulary unless `sampled_words` asks for the sampled
        softmax (training only), and never materialises every logit at once.
        """
        features, _ = self.features(chars)
        bf16 = torch.is_autocast_enabled(features.device.type)
        if sampled_words:
            return sampled_word_loss(features, targets, self.output, sampled_words, bf16=bf16)
        return word_loss(features, targets, self.output, bf16=bf16)

    def forward(self, chars: Tensor, targets: Tensor, sampled_words: int | None = None) -> tuple[Tensor, int]:
        return self.loss(chars, targets, sampled_words)

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
        """The preset's rules applied to `unit`; a unit the preset does not name gets its own default layer count."""
        spec = get_unit(unit)
        return ModelConfig(
            unit=unit,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers.get(unit, spec.default_layers),
            depth=self.depth if spec.uses_depth else 1,
            num_words=self.vocabulary_size + SPECIAL_WORDS_COUNT,
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
